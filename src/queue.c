/* Queue, SimpleQueue and JoinableQueue (Python's multiprocessing.Queue).

   Storage. Messages live in a ring in anonymous shared memory owned by the
   queue (ring.c: records, streaming of large messages, the put and get
   locks and their repair after a dead owner), not in a pipe: put copies
   the message in and returns, so a process that exits right after put
   loses nothing (Python's feeder-thread trap), and a parent may join a
   child before draining what the child put (no writer ever blocks on a
   reader). The ring is RING_BYTES of address space; the OS allocates its
   pages as they are first touched. The ring counts messages in and out
   (maxsize, size); a JoinableQueue also counts unfinished tasks (join).

   Waiting. The ring spins briefly (a busy producer/consumer pair then
   never sleeps), then announces the wait in shared counters and sleeps on
   a doorbell (a socketpair or a Windows semaphore) that whoever changes
   the state rings when such waiters exist. The doorbell is pollable, so
   mproc_wait covers queues. A sleeper looks again at least every
   WAIT_SLICE_MS, which bounds a wake lost to another waiter and lets it
   notice a dead lock owner.

   Shutdown. A word in the shared header says graceful or immediate; put
   and get look at it once on entry, and a sleeper looks at it each time
   it would sleep (q_sleep_once), so the fast path pays one load of a line
   it reads anyway. shutdown rings the doorbell for every sleeper.

   A queue object is used by one thread at a time; use one object (attach
   the ref again) per thread for concurrent use within a process. */
#include "ring_kept.h"
#include "ref.h"

#define Q_MAGIC 0x3451636f72706dULL /* "mprocQ4": the ring layout of issue 16 */
#define RING_BYTES ((uint64_t)8 << 20)
#define DATA_OFF 4096
#define WAIT_SLICE_MS MPROC__WAIT_SLICE_MS

/* The shared block's header. Immutable fields are set before the block is
   shared. */
typedef struct qshared {
    uint64_t magic, maxsize, flags;
    volatile uint64_t shutdown; /* SHUT_NONE, SHUT_GRACEFUL, SHUT_IMMEDIATE */
    uint64_t pad0[4];
    volatile uint64_t unfinished; /* JoinableQueue: puts not yet task_done */
    uint64_t pad1[7];
    mproc__ring_shared ring;
} qshared;

struct mproc_queue {
    qshared *sh;
    mproc__ring ring;
    size_t map_size;
    mproc__handle shm, bell_rd, bell_wr;
    mproc__objid id;
    int creator, closed, flags;
    /* What this object is doing now (one thread per object), for the
       shutdown rules of q_sleep_once. */
    int taking, draining;
};

enum { SHUT_NONE, SHUT_GRACEFUL, SHUT_IMMEDIATE };

/* ---- doorbell and waiting -------------------------------------------------------- */
static uint64_t all_waiters(qshared *sh)
{
    uint64_t n = 0;
    for (int k = 0; k < MPROC__RING_KINDS; k++) n += mproc__load64(&sh->ring.waiters[k]);
    return n;
}

/* One doorbell serves every kind of waiter: wake them all, each looks. */
static void q_wake(mproc__ring *r, int kind)
{
    (void)kind;
    mproc_queue *q = r->user;
    uint64_t n = all_waiters(q->sh);
    mproc__os_bell_ring(q->bell_wr, n > 64 ? 64 : (unsigned)(n ? n : 1));
}

/* MPROC_ESHUTDOWN if the queue's shutdown ends a wait of this kind now:
   every put; a get once it is immediate, or once the queue is empty and
   the get is not in the middle of a message (graceful). Joins and the
   draining shutdown itself wait on. */
static int shut_wait(mproc_queue *q, int kind)
{
    uint64_t s = mproc__load64(&q->sh->shutdown);
    if (s == SHUT_NONE || kind == MPROC__RING_JOIN || q->draining) return 0;
    if (q->ring.putting || s == SHUT_IMMEDIATE) return MPROC_ESHUTDOWN;
    return !q->taking && mproc__ring_count(&q->ring) == 0 ? MPROC_ESHUTDOWN : 0;
}

static int q_sleep_once(mproc__ring *r, int kind, mproc__ring_cond cond, void *arg, int slice)
{
    mproc_queue *q = r->user;
    mproc__ring_announce(r, kind, 1);
    int ok = cond(r, arg, 1);
    if (!ok) ok = shut_wait(q, kind);
    if (!ok) {
        unsigned char ready = 0;
        int rc = mproc__os_wait_any(&q->bell_rd, 1, &ready, slice);
        if (rc > 0) mproc__os_bell_take(q->bell_rd);
        ok = rc < 0 && rc != MPROC_ETIMEDOUT ? rc : cond(r, arg, 1);
    }
    mproc__ring_announce(r, kind, -1);
    return ok;
}

/* ---- the message counts ------------------------------------------------------------ */
/* maxsize and the unfinished count are the ring's to keep as it puts
   (queue_bind); a message cut short is the queue's to uncount. */

/* A message cut short is never delivered, so no task_done will come. */
static void q_aborted(mproc__ring *r)
{
    mproc_queue *q = r->user;
    if ((q->flags & MPROC_QUEUE_JOINABLE) && mproc__add64(&q->sh->unfinished, (uint64_t)-1) == 1)
        mproc__ring_wake(&q->ring, MPROC__RING_JOIN);
}

static const mproc__ring_ops queue_ops = {q_sleep_once, q_wake, q_aborted};

/* ---- put and get -------------------------------------------------------------------- */
int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms)
{
    if (!q || (!buf && len) || (uint64_t)len > MPROC__RING_MAX_MSG) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    if (mproc__load64(&q->sh->shutdown)) return MPROC_ESHUTDOWN;
    /* A tail call: the ring marks a put that may wait (ring.h: putting). */
    return mproc__ring_put(&q->ring, buf, len, timeout_ms);
}

/* One message, with the get lock held. Once its first record is taken the
   rest is waited for regardless of the caller's timeout (the producer is
   writing it; ring.c ends the stream if the producer dies). 1: the
   producer aborted it, look again. */
static int get_one(mproc_queue *q, void **out, size_t *len, uint64_t deadline, int timeout_ms)
{
    int rc = mproc__ring_take_small(&q->ring, NULL, 0, out, len);
    if (rc) return rc > 0 ? 0 : rc; /* ENOMEM: the message stays queued */
    uint64_t total = 0, got = 0;
    rc = mproc__ring_peek(&q->ring, &total, deadline, timeout_ms);
    if (rc) return rc;
    uint64_t room = total < MPROC__RING_ALLOC_FIRST ? total : MPROC__RING_ALLOC_FIRST;
    unsigned char *dst = malloc(room ? (size_t)room : 1);
    if (!dst) return MPROC_ENOMEM; /* the message stays queued */
    rc = mproc__ring_take_start(&q->ring, dst, total, &got);
    q->taking = 1; /* a graceful shutdown lets this message finish */
    if (rc == 1)
        rc = mproc__ring_take_rest(&q->ring, &dst, &room, total, &got, UINT64_MAX, MPROC_FOREVER);
    q->taking = 0;
    if (rc) {
        free(dst);
        return rc;
    }
    *out = dst;
    *len = (size_t)total;
    return 0;
}

/* What take_kept_small left (kept), and every get it could not serve;
   out of line, so that the common path saves no registers. */
static MPROC__NOINLINE int get_rest(mproc_queue *q, int kept, void **buf, size_t *len,
                                    int timeout_ms)
{
    int rc = mproc__ring_get_kept_rest(&q->ring, kept, NULL, 0, buf, len);
    if (rc) return rc > 0 ? 0 : rc;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    rc = mproc__ring_get_lock(&q->ring, deadline, timeout_ms);
    if (rc) return rc;
    while ((rc = get_one(q, buf, len, deadline, timeout_ms)) == MPROC__RING_ABORTED) {}
    mproc__ring_get_unlock(&q->ring);
    return rc;
}

/* The kept-lock path is inline here (ring_kept.h): a small message costs
   no call and no saved register. */
int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms)
{
    if (!q || !buf || !len) return MPROC_EINVAL;
    *buf = NULL;
    *len = 0;
    if (q->closed) return MPROC_ECLOSED;
    if (mproc__load64(&q->sh->shutdown) && shut_wait(q, MPROC__RING_DATA)) return MPROC_ESHUTDOWN;
    int kept = take_kept_small(&q->ring, NULL, 0, buf, len);
    if (kept == KEPT_DONE) return 0;
    return get_rest(q, kept, buf, len, timeout_ms);
}

/* ---- size, close, join ---------------------------------------------------------------- */
int mproc_queue_size(mproc_queue *q, size_t *n)
{
    if (!q || !n) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    if (q->flags & MPROC_QUEUE_SIMPLE) return MPROC_ENOTSUP;
    *n = (size_t)mproc__ring_count(&q->ring);
    return 0;
}

int mproc_queue_empty(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    return mproc__ring_count(&q->ring) == 0;
}

int mproc_queue_full(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    return q->sh->maxsize && mproc__ring_count(&q->ring) >= q->sh->maxsize;
}

int mproc_queue_close(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    q->closed = 1;
    return 0;
}

/* Immediate shutdown: discard what is waiting, each message counting as a
   finished task. Getters blocked elsewhere fail and let the get lock go;
   a producer part-way through a large message gives it up. */
static int drain(mproc_queue *q)
{
    q->draining = 1;
    int rc = mproc__ring_get_lock(&q->ring, UINT64_MAX, MPROC_FOREVER);
    if (!rc) {
        void *msg;
        size_t len;
        while ((rc = get_one(q, &msg, &len, mproc__deadline_ms(0), 0)) != MPROC_ETIMEDOUT) {
            if (rc == MPROC__RING_ABORTED) continue;
            if (rc) break;
            free(msg);
            if (q->flags & MPROC_QUEUE_JOINABLE) (void)mproc_queue_task_done(q);
        }
        mproc__ring_get_unlock(&q->ring);
    }
    q->draining = 0;
    return rc == MPROC_ETIMEDOUT ? 0 : rc;
}

int mproc_queue_shutdown(mproc_queue *q, int immediate)
{
    if (!q || (immediate != 0 && immediate != 1)) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    uint64_t want = immediate ? SHUT_IMMEDIATE : SHUT_GRACEFUL;
    for (uint64_t s = mproc__load64(&q->sh->shutdown); s < want; s = mproc__load64(&q->sh->shutdown))
        if (mproc__cas64(&q->sh->shutdown, s, want)) break;
    q_wake(&q->ring, MPROC__RING_DATA); /* every sleeper looks again */
    return immediate ? drain(q) : 0;
}

int mproc_queue_task_done(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    if (!(q->flags & MPROC_QUEUE_JOINABLE)) return MPROC_ENOTSUP;
    for (;;) {
        uint64_t u = mproc__load64(&q->sh->unfinished);
        if (u == 0) return MPROC_ESTATE; /* more task_done than messages */
        if (mproc__cas64(&q->sh->unfinished, u, u - 1)) {
            if (u == 1) mproc__ring_wake(&q->ring, MPROC__RING_JOIN);
            return 0;
        }
    }
}

static int all_done(mproc__ring *r, void *arg, int sleeping)
{
    (void)arg;
    (void)sleeping;
    mproc_queue *q = r->user;
    return mproc__load64(&q->sh->unfinished) == 0;
}

int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    if (!q) return MPROC_EINVAL;
    if (!(q->flags & MPROC_QUEUE_JOINABLE)) return MPROC_ENOTSUP;
    return mproc__ring_wait(&q->ring, MPROC__RING_JOIN, all_done, NULL,
                            mproc__deadline_ms(timeout_ms), timeout_ms);
}

/* ---- readiness for mproc_wait ------------------------------------------------------------ */
/* A shut-down queue whose gets would fail is ready too: get says why. */
static int has_message(mproc_queue *q)
{
    if (mproc__load64(&q->sh->shutdown) && shut_wait(q, MPROC__RING_DATA)) return 1;
    return mproc__ring_readable(&q->ring);
}

int mproc__queue_wait_prepare(mproc_queue *q, mproc__handle *h)
{
    if (q->closed) return MPROC_ECLOSED;
    mproc__ring_announce(&q->ring, MPROC__RING_DATA, 1);
    if (has_message(q)) {
        mproc__ring_announce(&q->ring, MPROC__RING_DATA, -1);
        return 1;
    }
    *h = q->bell_rd;
    return 0;
}

int mproc__queue_wait_finish(mproc_queue *q, int woke)
{
    if (woke) mproc__os_bell_take(q->bell_rd);
    int ready = has_message(q);
    mproc__ring_announce(&q->ring, MPROC__RING_DATA, -1);
    return ready;
}

/* ---- lifecycle -------------------------------------------------------------------------- */
static void queue_free(mproc_queue *q)
{
    if (q->sh) mproc__os_unmap(q->sh, q->map_size);
    if (q->creator) {
        mproc__registry_remove(&q->id);
        if (q->shm != MPROC__NO_HANDLE) mproc__os_close(q->shm);
        if (q->bell_rd != MPROC__NO_HANDLE) mproc__os_close(q->bell_rd);
        if (q->bell_wr != MPROC__NO_HANDLE && q->bell_wr != q->bell_rd) mproc__os_close(q->bell_wr);
    }
    free(q);
}

void mproc_queue_destroy(mproc_queue *q)
{
    if (q) queue_free(q);
}

static mproc_queue *queue_alloc(void)
{
    mproc_queue *q = mproc__calloc(1, sizeof *q);
    if (q) q->shm = q->bell_rd = q->bell_wr = MPROC__NO_HANDLE;
    return q;
}

static int queue_map(mproc_queue *q, size_t size)
{
    void *p;
    int rc = mproc__os_map(q->shm, size, 1, &p);
    if (rc) return rc;
    q->sh = p;
    q->map_size = size;
    return 0;
}

/* The block must be one a queue made: a forged ref or registry entry
   gives EINVAL, never a wild access. */
static int queue_bind(mproc_queue *q)
{
    if (mproc__load64(&q->sh->magic) != Q_MAGIC || q->sh->flags != (uint64_t)q->flags)
        return MPROC_EINVAL;
    unsigned char *data = (unsigned char *)q->sh + DATA_OFF;
    uint64_t room = q->map_size - DATA_OFF;
    int rc = mproc__ring_bind(&q->ring, &q->sh->ring, data, room, &queue_ops, q, WAIT_SLICE_MS);
    if (!rc && mproc__load64(&q->sh->ring.capacity) != room) rc = MPROC_EINVAL;
    if (rc) return rc;
    q->ring.counted = 1;
    q->ring.max_msgs = q->sh->maxsize;
    q->ring.unfinished = (q->flags & MPROC_QUEUE_JOINABLE) ? &q->sh->unfinished : NULL;
    return 0;
}

static void entry_for(const mproc_queue *q, mproc__entry *e, unsigned char *info)
{
    memset(e, 0, sizeof *e);
    e->id = q->id;
    e->kind = MPROC__KIND_QUEUE;
    e->handles[0] = q->shm;
    e->handles[1] = q->bell_rd;
    e->handles[2] = q->bell_wr;
    e->nhandles = q->bell_wr == q->bell_rd ? 2 : 3;
    memset(info, 0, MPROC__REF_INFO);
    mproc__put_u64(info, (uint64_t)q->map_size);
    mproc__put_u32(info + 8, (uint32_t)q->flags);
    memcpy(e->info, info, MPROC__REF_INFO);
}

static int queue_init(mproc_queue *q, size_t maxsize, int flags)
{
    q->creator = 1;
    q->flags = flags;
    size_t size = DATA_OFF + (size_t)RING_BYTES;
    int rc = mproc__os_anon_shm_create(size, &q->shm);
    if (!rc) rc = queue_map(q, size);
    if (!rc) rc = mproc__os_bell_create(&q->bell_rd, &q->bell_wr);
    if (!rc) rc = mproc__objid_new(&q->id);
    if (rc) return rc;
    mproc__ring_format(&q->sh->ring, RING_BYTES);
    q->sh->maxsize = maxsize;
    q->sh->flags = (uint64_t)flags;
    mproc__store64(&q->sh->magic, Q_MAGIC);
    rc = queue_bind(q);
    if (rc) return rc;
    mproc__entry e;
    unsigned char info[MPROC__REF_INFO];
    entry_for(q, &e, info);
    return mproc__registry_add(&e);
}

int mproc_queue_create_ex(mproc_queue **out, size_t maxsize, int flags)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if ((flags & ~(MPROC_QUEUE_SIMPLE | MPROC_QUEUE_JOINABLE)) ||
        (flags == (MPROC_QUEUE_SIMPLE | MPROC_QUEUE_JOINABLE)) ||
        ((flags & MPROC_QUEUE_SIMPLE) && maxsize))
        return MPROC_EINVAL;
    mproc_queue *q = queue_alloc();
    if (!q) return MPROC_ENOMEM;
    int rc = queue_init(q, maxsize, flags);
    if (rc) {
        q->creator = rc != MPROC_EEXIST; /* registry_add failed: nothing to remove */
        queue_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int mproc_queue_create(mproc_queue **q, size_t maxsize)
{
    return mproc_queue_create_ex(q, maxsize, 0);
}

int mproc_queue_ref(const mproc_queue *q, mproc_ref *ref)
{
    if (!q || !ref) return MPROC_EINVAL;
    unsigned char info[MPROC__REF_INFO] = {0};
    mproc__put_u64(info, (uint64_t)q->map_size);
    mproc__put_u32(info + 8, (uint32_t)q->flags);
    mproc__ref_make(MPROC__KIND_QUEUE, &q->id, info, ref);
    return 0;
}

int mproc_queue_attach(const mproc_ref *ref, mproc_queue **out)
{
    if (!ref || !out) return MPROC_EINVAL;
    *out = NULL;
    mproc__entry e;
    int rc = mproc__ref_resolve(ref, MPROC__KIND_QUEUE, &e);
    if (rc) return rc;
    uint64_t size = mproc__get_u64(e.info);
    if (e.nhandles < 2 || e.nhandles > 3 || size <= DATA_OFF || size > DATA_OFF + ((uint64_t)1 << 40))
        return MPROC_EINVAL;
    mproc_queue *q = queue_alloc();
    if (!q) return MPROC_ENOMEM;
    q->id = e.id;
    q->flags = (int)mproc__get_u32(e.info + 8);
    q->shm = e.handles[0];
    q->bell_rd = e.handles[1];
    q->bell_wr = e.handles[e.nhandles - 1];
    rc = queue_map(q, (size_t)size);
    if (!rc) rc = queue_bind(q);
    if (rc) {
        queue_free(q);
        return rc;
    }
    *out = q;
    return 0;
}
