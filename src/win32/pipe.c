/* Win32 message channels: overlapped named pipes (unique random names,
   local clients only, handles not inheritable), waits on any number of
   handles, the queue's doorbell (a semaphore) and owner liveness. See the
   "message channels" section of os.h for the contract. */
#include "w32.h"

#include <stdio.h>

#define CHAN_BUF (1 << 20)              /* advisory kernel buffer size */
#define CHAN_IO_MAX ((DWORD)16 << 20)   /* bytes per ReadFile / WriteFile */
#define WAIT_GROUP (MAXIMUM_WAIT_OBJECTS - 1)

enum { ARM_NONE, ARM_PENDING, ARM_DONE, ARM_EOF };

struct mproc__os_chan {
    HANDLE h;
    int flags;
    OVERLAPPED rov, wov;  /* one read and one write may run at once */
    int armed;
    DWORD armed_got;
};

static int closed_error(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA || e == ERROR_PIPE_NOT_CONNECTED ||
           e == ERROR_HANDLE_EOF;
}

/* ---- set-up --------------------------------------------------------------- */
static int chan_new(HANDLE h, int flags, mproc__os_chan **out)
{
    mproc__os_chan *c = mproc__calloc(1, sizeof *c);
    if (c) {
        c->rov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        c->wov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    }
    if (!c || !c->rov.hEvent || !c->wov.hEvent) {
        int rc = c ? mproc__fail_os_last() : MPROC_ENOMEM;
        if (c && c->rov.hEvent) CloseHandle(c->rov.hEvent);
        if (c && c->wov.hEvent) CloseHandle(c->wov.hEvent);
        free(c);
        CloseHandle(h);
        return rc;
    }
    c->h = h;
    c->flags = flags;
    *out = c;
    return 0;
}

static void pipe_name(wchar_t *name, size_t cap, const unsigned char r[16])
{
    _snwprintf(name, cap, L"\\\\.\\pipe\\mproc-%lu-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
               (unsigned long)GetCurrentProcessId(), r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
               r[8], r[9], r[10], r[11]);
    name[cap - 1] = 0;
}

/* The server end (a: reads, or duplex), then the client end opened on it. */
static int named_pair(HANDLE *srv, HANDLE *cli, int duplex)
{
    unsigned char r[16];
    wchar_t name[96];
    int rc = mproc__os_random(r, sizeof r);
    if (rc) return rc;
    pipe_name(name, sizeof name / sizeof *name, r);
    DWORD open_mode = (duplex ? PIPE_ACCESS_DUPLEX : PIPE_ACCESS_INBOUND) | FILE_FLAG_OVERLAPPED |
                      FILE_FLAG_FIRST_PIPE_INSTANCE;
    *srv = CreateNamedPipeW(name, open_mode,
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                            1, CHAN_BUF, CHAN_BUF, 0, NULL);
    if (*srv == INVALID_HANDLE_VALUE) return mproc__fail_os_last();
    DWORD access = duplex ? (GENERIC_READ | GENERIC_WRITE) : (GENERIC_WRITE | FILE_READ_ATTRIBUTES);
    *cli = CreateFileW(name, access, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    if (*cli == INVALID_HANDLE_VALUE) {
        rc = mproc__fail_os_last();
        CloseHandle(*srv);
        return rc;
    }
    /* The client is already there: ConnectNamedPipe says so at once. */
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ov.hEvent) rc = mproc__fail_os_last();
    else if (!ConnectNamedPipe(*srv, &ov)) {
        DWORD e = GetLastError(), n;
        if (e == ERROR_IO_PENDING && !GetOverlappedResult(*srv, &ov, &n, TRUE)) e = GetLastError();
        else if (e == ERROR_IO_PENDING) e = ERROR_PIPE_CONNECTED;
        if (e != ERROR_PIPE_CONNECTED) rc = mproc__fail_os(e);
    }
    if (ov.hEvent) CloseHandle(ov.hEvent);
    if (rc) {
        CloseHandle(*srv);
        CloseHandle(*cli);
    }
    return rc;
}

int mproc__os_chan_pair(mproc__os_chan **a, mproc__os_chan **b, int duplex)
{
    HANDLE srv, cli;
    int rc = named_pair(&srv, &cli, duplex);
    if (rc) return rc;
    int fa = duplex ? (MPROC__CHAN_READ | MPROC__CHAN_WRITE) : MPROC__CHAN_READ;
    int fb = duplex ? fa : MPROC__CHAN_WRITE;
    rc = chan_new(srv, fa, a);
    if (rc) {
        CloseHandle(cli);
        return rc;
    }
    rc = chan_new(cli, fb, b);
    if (rc) {
        mproc__os_chan_free(*a);
        *a = NULL;
    }
    return rc;
}

int mproc__os_chan_wrap(mproc__handle h, int flags, mproc__os_chan **out)
{
    if (h == MPROC__NO_HANDLE || h == 0) return MPROC_EINVAL;
    return chan_new(mproc__w32_handle(h), flags, out);
}

mproc__handle mproc__os_chan_handle(const mproc__os_chan *c) { return (mproc__handle)c->h; }
int mproc__os_chan_flags(const mproc__os_chan *c) { return c->flags; }

void mproc__os_chan_free(mproc__os_chan *c)
{
    if (!c) return;
    if (c->armed == ARM_PENDING) {
        size_t got;
        mproc__os_chan_disarm(c, &got);
    }
    CloseHandle(c->h);
    CloseHandle(c->rov.hEvent);
    CloseHandle(c->wov.hEvent);
    free(c);
}

int mproc__os_chan_dup(mproc__handle h, int flags, mproc__os_chan **out)
{
    HANDLE self = GetCurrentProcess(), n;
    if (!DuplicateHandle(self, mproc__w32_handle(h), self, &n, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return mproc__fail_os_last();
    return chan_new(n, flags, out);
}

/* ---- writing ----------------------------------------------------------------- */
static int write_all(mproc__os_chan *c, const unsigned char *p, size_t len)
{
    while (len) {
        DWORD want = len > CHAN_IO_MAX ? CHAN_IO_MAX : (DWORD)len, n = 0;
        ResetEvent(c->wov.hEvent);
        c->wov.Offset = c->wov.OffsetHigh = 0;
        if (!WriteFile(c->h, p, want, NULL, &c->wov)) {
            DWORD e = GetLastError();
            if (e != ERROR_IO_PENDING) return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e);
        }
        if (!GetOverlappedResult(c->h, &c->wov, &n, TRUE)) {
            DWORD e = GetLastError();
            return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e);
        }
        p += n;
        len -= n;
    }
    return 0;
}

int mproc__os_chan_send(mproc__os_chan *c, const void *hdr, size_t hdr_len,
                        const void *body, size_t body_len)
{
    if (!(c->flags & MPROC__CHAN_WRITE)) return MPROC_ESTATE;
    /* Small messages go out in one write. */
    unsigned char one[4096];
    if (hdr_len + body_len <= sizeof one) {
        memcpy(one, hdr, hdr_len);
        if (body_len) memcpy(one + hdr_len, body, body_len);
        return write_all(c, one, hdr_len + body_len);
    }
    int rc = write_all(c, hdr, hdr_len);
    return rc ? rc : write_all(c, body, body_len);
}

/* ---- reading ------------------------------------------------------------------- */
/* Posts an overlapped read: 0 pending, 1 done at once (*got), or ECLOSED. */
static int post_read(mproc__os_chan *c, void *buf, size_t cap, DWORD *got)
{
    DWORD want = cap > CHAN_IO_MAX ? CHAN_IO_MAX : (DWORD)cap;
    ResetEvent(c->rov.hEvent);
    c->rov.Offset = c->rov.OffsetHigh = 0;
    if (ReadFile(c->h, buf, want, NULL, &c->rov)) {
        if (!GetOverlappedResult(c->h, &c->rov, got, FALSE)) return mproc__fail_os_last();
        return 1;
    }
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING) return 0;
    return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e);
}

/* Ends a pending read: 0 with *got (possibly 0 if it was cancelled), or
   ECLOSED. A read that completed while being cancelled keeps its bytes. */
static int finish_read(mproc__os_chan *c, int cancel, DWORD *got)
{
    if (cancel) CancelIoEx(c->h, &c->rov);
    *got = 0;
    if (GetOverlappedResult(c->h, &c->rov, got, TRUE)) return 0;
    DWORD e = GetLastError();
    if (e == ERROR_OPERATION_ABORTED) return 0;
    return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e);
}

int mproc__os_chan_recv(mproc__os_chan *c, void *buf, size_t cap, size_t *got,
                        int timeout_ms)
{
    *got = 0;
    if (!(c->flags & MPROC__CHAN_READ)) return MPROC_ESTATE;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        DWORD n = 0;
        int rc = post_read(c, buf, cap, &n);
        if (rc == 0) {
            int left = mproc__remaining_ms(deadline, timeout_ms);
            DWORD w = WaitForSingleObject(c->rov.hEvent, left < 0 ? INFINITE : (DWORD)left);
            if (w == WAIT_FAILED) {
                rc = mproc__fail_os_last();
                finish_read(c, 1, &n);
                return rc;
            }
            rc = finish_read(c, w != WAIT_OBJECT_0, &n);
            if (rc == 0 && n == 0 && w != WAIT_OBJECT_0) return MPROC_ETIMEDOUT;
        }
        if (rc < 0) return rc;
        if (n > 0) {
            *got = n;
            return 0;
        }
        if (mproc__remaining_ms(deadline, timeout_ms) == 0) return MPROC_ETIMEDOUT;
    }
}

/* ---- readiness ------------------------------------------------------------------- */
int mproc__os_chan_arm(mproc__os_chan *c, void *buf, size_t cap, mproc__handle *waitable)
{
    *waitable = (mproc__handle)c->rov.hEvent;
    if (cap == 0) {
        /* nowhere to read into: the caller has data buffered anyway */
        c->armed = ARM_DONE;
        c->armed_got = 0;
        SetEvent(c->rov.hEvent);
        return 0;
    }
    DWORD n = 0;
    int rc = post_read(c, buf, cap, &n);
    if (rc < 0 && rc != MPROC_ECLOSED) return rc;
    c->armed = rc == 0 ? ARM_PENDING : rc == 1 ? ARM_DONE : ARM_EOF;
    c->armed_got = n;
    if (c->armed != ARM_PENDING) SetEvent(c->rov.hEvent);
    return 0;
}

int mproc__os_chan_disarm(mproc__os_chan *c, size_t *got)
{
    DWORD n = c->armed_got;
    int rc = 0;
    if (c->armed == ARM_PENDING) rc = finish_read(c, 1, &n);
    else if (c->armed == ARM_EOF) rc = MPROC_ECLOSED;
    c->armed = ARM_NONE;
    *got = n;
    if (rc < 0 || n > 0) return rc;
    DWORD avail = 0;
    if (!PeekNamedPipe(c->h, NULL, 0, NULL, &avail, NULL)) {
        DWORD e = GetLastError();
        return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e);
    }
    return avail > 0;
}

/* ---- waiting on many ---------------------------------------------------------------- */
/* WaitForMultipleObjects takes at most 64 handles: larger sets are waited
   on in groups of 63 by helper threads, each also waiting on a shared
   cancel event. A signalled semaphore (the queue's doorbell) gives its
   token to the wait that reports it, so each handle is asked once. */
typedef struct group {
    const HANDLE *h;
    DWORD n;
    HANDLE cancel;
    DWORD fired; /* index in the group, or MAXDWORD */
} group;

static DWORD WINAPI group_thread(void *arg)
{
    group *g = arg;
    HANDLE hs[MAXIMUM_WAIT_OBJECTS];
    memcpy(hs, g->h, g->n * sizeof *hs);
    hs[g->n] = g->cancel;
    DWORD w = WaitForMultipleObjects(g->n + 1, hs, FALSE, INFINITE);
    g->fired = w - WAIT_OBJECT_0 < g->n ? w - WAIT_OBJECT_0 : MAXDWORD; /* WAIT_OBJECT_0 is 0 */
    return 0;
}

static int collect(const HANDLE *h, size_t n, unsigned char *ready)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ready[i]) ready[i] = WaitForSingleObject(h[i], 0) == WAIT_OBJECT_0;
        count += ready[i];
    }
    return count;
}

static int wait_small(const HANDLE *h, size_t n, unsigned char *ready, DWORD ms)
{
    DWORD w = WaitForMultipleObjects((DWORD)n, h, FALSE, ms);
    if (w == WAIT_TIMEOUT) return MPROC_ETIMEDOUT;
    if (w == WAIT_FAILED) return mproc__fail_os_last();
    if (w >= WAIT_ABANDONED_0 && w < WAIT_ABANDONED_0 + n) w -= WAIT_ABANDONED_0 - WAIT_OBJECT_0;
    ready[w - WAIT_OBJECT_0] = 1;
    return collect(h, n, ready);
}

static int wait_groups(const HANDLE *h, size_t n, unsigned char *ready, DWORD ms)
{
    size_t ng = (n + WAIT_GROUP - 1) / WAIT_GROUP;
    if (ng > MAXIMUM_WAIT_OBJECTS) return MPROC_EINVAL; /* > 4032 handles */
    group *g = mproc__calloc(ng, sizeof *g);
    HANDLE *th = mproc__calloc(ng, sizeof *th);
    HANDLE cancel = CreateEventW(NULL, TRUE, FALSE, NULL);
    int rc = (g && th) ? (cancel ? 0 : mproc__fail_os_last()) : MPROC_ENOMEM;
    size_t started = 0;
    for (; rc == 0 && started < ng; started++) {
        size_t off = started * WAIT_GROUP;
        g[started] = (group){h + off, (DWORD)(n - off < WAIT_GROUP ? n - off : WAIT_GROUP), cancel, MAXDWORD};
        th[started] = CreateThread(NULL, 64 * 1024, group_thread, &g[started], 0, NULL);
        if (!th[started]) rc = mproc__fail_os_last();
    }
    if (rc == 0) {
        DWORD w = WaitForMultipleObjects((DWORD)started, th, FALSE, ms);
        if (w == WAIT_TIMEOUT) rc = MPROC_ETIMEDOUT;
        else if (w == WAIT_FAILED) rc = mproc__fail_os_last();
    }
    if (cancel) SetEvent(cancel);
    for (size_t i = 0; i < started; i++) {
        if (!th[i]) continue;
        WaitForSingleObject(th[i], INFINITE);
        CloseHandle(th[i]);
        if (g[i].fired != MAXDWORD) ready[i * WAIT_GROUP + g[i].fired] = 1;
    }
    if (rc == 0 || rc == MPROC_ETIMEDOUT) {
        int k = collect(h, n, ready);
        rc = k > 0 ? k : MPROC_ETIMEDOUT;
    }
    if (cancel) CloseHandle(cancel);
    free(g);
    free(th);
    return rc;
}

int mproc__os_wait_any(const mproc__handle *h, size_t n, unsigned char *ready,
                       int timeout_ms)
{
    if (n == 0) return MPROC_EINVAL;
    memset(ready, 0, n);
    DWORD ms = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    const HANDLE *hs = (const HANDLE *)h; /* mproc__handle is a HANDLE's width */
    if (n <= MAXIMUM_WAIT_OBJECTS) return wait_small(hs, n, ready, ms);
    return wait_groups(hs, n, ready, ms);
}

/* ---- doorbell ----------------------------------------------------------------- */
int mproc__os_bell_create(mproc__handle *rd, mproc__handle *wr)
{
    HANDLE s = CreateSemaphoreW(NULL, 0, 0x7fffffff, NULL);
    if (!s) return mproc__fail_os_last();
    *rd = *wr = (mproc__handle)s;
    return 0;
}

/* Past the semaphore's maximum there are tokens enough: failure is fine. */
void mproc__os_bell_ring(mproc__handle wr, unsigned n)
{
    (void)ReleaseSemaphore(mproc__w32_handle(wr), n ? (LONG)n : 1, NULL);
}

void mproc__os_bell_take(mproc__handle rd) { (void)rd; }

void mproc__os_yield(void) { SwitchToThread(); }
