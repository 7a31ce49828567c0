/* mproc_wait: Python's multiprocessing.connection.wait over conns, queues
   and processes. Each object gives a handle to wait on (a conn may arm an
   overlapped read on Windows; a queue announces itself as a waiter so
   producers ring its doorbell); the OS layer waits on all of them at once
   with no limit on their number. A queue's doorbell can ring for a message
   another consumer then takes, so readiness is re-checked after every wake
   and the wait resumes if nothing is really ready. */
#include "pool.h" /* before comm.h: atomic.h's mproc__cpu_relax, then comm.h's */
#include "comm.h"
#include "process.h"

static int item_prepare(mproc_waitable *it, mproc__handle *h)
{
    switch (it->kind) {
    case MPROC_WAIT_CONN: return mproc__conn_wait_prepare(it->obj, h);
    case MPROC_WAIT_QUEUE: return mproc__queue_wait_prepare(it->obj, h);
    case MPROC_WAIT_PROCESS: return mproc__process_wait_prepare(it->obj, h);
    case MPROC_WAIT_ASYNC:
    case MPROC_WAIT_ITER: return mproc__pool_wait_prepare(it->kind == MPROC_WAIT_ITER, it->obj, h);
    case MPROC_WAIT_OS: {
        /* the caller's own: an int descriptor on POSIX, a HANDLE on Windows */
        mproc__handle own = mproc__os_user_handle(it->obj);
        if (own == MPROC__NO_HANDLE) return MPROC_EINVAL;
        *h = own;
        return 0;
    }
    default: return MPROC_EINVAL;
    }
}

static int item_finish(mproc_waitable *it, int woke)
{
    switch (it->kind) {
    case MPROC_WAIT_CONN: return mproc__conn_wait_finish(it->obj);
    case MPROC_WAIT_QUEUE: return mproc__queue_wait_finish(it->obj, woke);
    case MPROC_WAIT_ASYNC:
    case MPROC_WAIT_ITER: return mproc__pool_wait_finish(it->kind == MPROC_WAIT_ITER, it->obj, woke);
    default: return woke;
    }
}

/* Arms every item (prepared[i] = 1 when armed). Returns how many are
   ready already, or an error. */
static int prepare_all(mproc_waitable *items, size_t count, mproc__handle *h,
                       unsigned char *prepared)
{
    int nready = 0;
    for (size_t i = 0; i < count; i++) {
        int rc = item_prepare(&items[i], &h[i]);
        if (rc < 0) return rc;
        items[i].ready = rc;
        prepared[i] = rc == 0;
        nready += rc;
    }
    return nready;
}

/* Disarms every armed item; returns how many are ready, or the first error. */
static int finish_all(mproc_waitable *items, size_t count, const unsigned char *prepared,
                      const unsigned char *woke)
{
    int nready = 0, err = 0;
    for (size_t i = 0; i < count; i++) {
        if (prepared[i]) {
            int rc = item_finish(&items[i], woke ? woke[i] : 0);
            if (rc < 0 && !err) err = rc;
            items[i].ready = rc > 0;
        }
        nready += items[i].ready;
    }
    return err ? err : nready;
}

static int wait_round(mproc_waitable *items, size_t count, mproc__handle *h,
                      unsigned char *prepared, unsigned char *woke, int timeout_ms)
{
    memset(prepared, 0, count);
    memset(woke, 0, count);
    int rc = prepare_all(items, count, h, prepared);
    if (rc >= 0) {
        /* Only armed handles go to the OS wait; if something is ready
           already, the others are only polled. */
        size_t n = 0;
        for (size_t i = 0; i < count; i++)
            if (prepared[i]) h[n++] = h[i];
        unsigned char *r = woke + count;
        memset(r, 0, n);
        int wrc = n ? mproc__os_wait_any(h, n, r, rc > 0 ? 0 : timeout_ms) : 0;
        for (size_t i = 0, j = 0; i < count; i++)
            if (prepared[i]) woke[i] = r[j++];
        rc = wrc == MPROC_ETIMEDOUT ? 0 : wrc;
    }
    int fin = finish_all(items, count, prepared, woke);
    return rc < 0 ? rc : fin;
}

int mproc_wait(mproc_waitable *items, size_t count, int timeout_ms)
{
    if (!items || !count) return MPROC_EINVAL;
    for (size_t i = 0; i < count; i++) {
        if (!items[i].obj) return MPROC_EINVAL;
        items[i].ready = 0;
    }
    mproc__handle *h = mproc__calloc(count, sizeof *h);
    unsigned char *flags = mproc__calloc(count, 3);
    int rc = (h && flags) ? 0 : MPROC_ENOMEM;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int has_ring = 0; /* a queue or a conn: wakes can be lost (comm.h) */
    for (size_t i = 0; i < count; i++)
        has_ring |= items[i].kind != MPROC_WAIT_PROCESS && items[i].kind != MPROC_WAIT_OS;
    while (rc == 0) {
        int slice = mproc__remaining_ms(deadline, timeout_ms);
        if (has_ring && (slice < 0 || slice > MPROC__WAIT_SLICE_MS))
            slice = MPROC__WAIT_SLICE_MS;
        rc = wait_round(items, count, h, flags, flags + count, slice);
        if (rc == 0 && mproc__remaining_ms(deadline, timeout_ms) == 0) rc = MPROC_ETIMEDOUT;
    }
    free(h);
    free(flags);
    return rc;
}
