/* Error names, the thread's last OS error, and small shared utilities. */
#include "internal.h"

static MPROC__THREAD_LOCAL int last_os_error;

const char *mproc_strerror(int err)
{
    switch (err) {
    case MPROC_OK: return "MPROC_OK: success";
    case MPROC_EINVAL: return "MPROC_EINVAL: invalid argument";
    case MPROC_ENOMEM: return "MPROC_ENOMEM: out of memory";
    case MPROC_ETIMEDOUT: return "MPROC_ETIMEDOUT: timed out";
    case MPROC_EOS: return "MPROC_EOS: operating system error (see mproc_os_error)";
    case MPROC_ESTATE: return "MPROC_ESTATE: wrong state for this call";
    case MPROC_ECHILD: return "MPROC_ECHILD: a child or worker died unexpectedly";
    case MPROC_ETASK: return "MPROC_ETASK: a task reported failure";
    case MPROC_EPROTO: return "MPROC_EPROTO: malformed data between processes";
    case MPROC_EOWNERDEAD: return "MPROC_EOWNERDEAD: acquired; the previous holder died holding it";
    case MPROC_ECLOSED: return "MPROC_ECLOSED: closed";
    case MPROC_EBOOTSTRAP:
        return "MPROC_EBOOTSTRAP: process started before mproc_main_guard() ran";
    case MPROC_ENOTSUP: return "MPROC_ENOTSUP: not supported on this platform";
    case MPROC_EDONE: return "MPROC_EDONE: iterator exhausted";
    case MPROC_ENOENT: return "MPROC_ENOENT: no such object";
    case MPROC_EEXIST: return "MPROC_EEXIST: object exists already";
    case MPROC_EBROKEN: return "MPROC_EBROKEN: barrier is broken";
    case MPROC_EINTR: return "MPROC_EINTR: interrupted";
    case MPROC_ESHUTDOWN: return "MPROC_ESHUTDOWN: the queue was shut down";
    case MPROC_ETASKTIMEOUT:
        return "MPROC_ETASKTIMEOUT: a task ran past the pool's task timeout and was killed";
    default: return "unknown mproc error";
    }
}

int mproc_os_error(void) { return last_os_error; }

int mproc__fail_os(int os_error)
{
    last_os_error = os_error;
    return MPROC_EOS;
}

int mproc__fail_os_last(void) { return mproc__fail_os(mproc__os_last_error()); }

void *mproc__calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

uint64_t mproc__deadline_ms(int timeout_ms)
{
    if (timeout_ms < 0) return UINT64_MAX;
    return mproc__os_now_ms() + (uint64_t)timeout_ms;
}

int mproc__remaining_ms(uint64_t deadline_ms, int timeout_ms)
{
    if (timeout_ms < 0) return MPROC_FOREVER;
    uint64_t now = mproc__os_now_ms();
    if (now >= deadline_ms) return 0;
    uint64_t left = deadline_ms - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

uint64_t mproc__fnv1a64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

