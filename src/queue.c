/* Queue, SimpleQueue and JoinableQueue (Python's multiprocessing.Queue).

   Storage. Messages live in a ring in anonymous shared memory owned by the
   queue, not in a pipe: put copies the message in and returns, so a
   process that exits right after put loses nothing (Python's feeder-thread
   trap), and a parent may join a child before draining what the child put
   (no writer ever blocks on a reader). The ring is RING_BYTES of address
   space; the OS allocates its pages as they are first touched.

   Records. Each message is one record {tag, chunk length, total length}
   followed by its bytes, padded to 8. A message too large for a quarter of
   the ring is streamed as FIRST / MIDDLE... / LAST chunks while the
   consumer drains them, so any size works. A record is published by
   advancing the tail after its bytes are copied: a producer that dies
   mid-copy leaves nothing visible.

   Locking. One producer at a time holds the put lock and one consumer the
   get lock, which makes the ring single-producer single-consumer: head and
   tail are plain atomics and the copies run outside any shared critical
   section, producer and consumer in parallel. A lock word holds the
   owner's pid; a waiter that finds the owner gone (exited, killed, or a
   zombie) takes the lock over and repairs what the owner left: a stream
   cut short gets an ABORT record, so the consumer discards the partial
   message; a consumer cut short mid-stream makes the next one skip the
   rest of that message. (Our own lock rather than mproc_lock: the queue
   needs exactly this repair step, and must be waitable by mproc_wait.)

   Waiting. Spin briefly (a busy producer/consumer pair then never sleeps),
   then announce the wait in shared counters and sleep on a doorbell (a
   pipe or a Windows semaphore) that whoever changes the state rings when
   such waiters exist. The doorbell is pollable, so mproc_wait covers
   queues. A sleeper looks again at least every WAIT_SLICE_MS, which bounds
   a wake lost to another waiter and lets it notice a dead lock owner.

   A queue object is used by one thread at a time; use one object (attach
   the ref again) per thread for concurrent use within a process. */
#include "comm.h"
#include "ref.h"

#define Q_MAGIC 0x3151636f72706dULL /* "mprocQ1" */
#define RING_BYTES ((uint64_t)8 << 20)
#define DATA_OFF 4096
#define REC_HDR 16
#define MAX_MSG ((uint64_t)1 << 40)
#define WAIT_SLICE_MS MPROC__QUEUE_WAIT_SLICE_MS
#define SPIN_CHECKS 2000
#define SPIN_YIELDS 8

enum { REC_WHOLE = 1, REC_FIRST, REC_MIDDLE, REC_LAST, REC_ABORT };
#define TAG_MAGIC 0x51520000u
enum { W_DATA, W_SPACE, W_LOCK, W_JOIN, W_KINDS };

/* The shared block's header; producer and consumer fields on their own
   cache lines. Immutable fields are set before the block is shared. */
typedef struct qshared {
    uint64_t magic, capacity, maxsize, flags;
    uint64_t pad0[4];
    volatile uint64_t put_owner, tail, put_stream;
    uint64_t pad1[5];
    volatile uint64_t get_owner, head, get_stream;
    uint64_t pad2[5];
    volatile uint64_t count, unfinished, waiters, w[W_KINDS];
    uint64_t pad3;
} qshared;

struct mproc_queue {
    qshared *sh;
    unsigned char *data;
    size_t map_size;
    uint64_t mask;
    mproc__handle shm, bell_rd, bell_wr;
    mproc__objid id;
    int creator, closed, flags;
    uint64_t me; /* our pid, the lock owner value */
};

static uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* ---- ring bytes ------------------------------------------------------------ */
static void ring_write(mproc_queue *q, uint64_t pos, const void *src, size_t n)
{
    size_t off = (size_t)(pos & q->mask), cap = (size_t)q->sh->capacity;
    size_t first = n < cap - off ? n : cap - off;
    if (first) memcpy(q->data + off, src, first);
    if (n > first) memcpy(q->data, (const unsigned char *)src + first, n - first);
}

static void ring_read(mproc_queue *q, uint64_t pos, void *dst, size_t n)
{
    size_t off = (size_t)(pos & q->mask), cap = (size_t)q->sh->capacity;
    size_t first = n < cap - off ? n : cap - off;
    if (first) memcpy(dst, q->data + off, first);
    if (n > first) memcpy((unsigned char *)dst + first, q->data, n - first);
}

static uint64_t ring_used(mproc_queue *q) { return mproc__a_load(&q->sh->tail) - mproc__a_load(&q->sh->head); }

/* ---- doorbell and waiting -------------------------------------------------------- */
static void wake(mproc_queue *q, int kind)
{
    if (!mproc__a_load(&q->sh->w[kind])) return;
    uint64_t n = mproc__a_load(&q->sh->waiters);
    mproc__os_bell_ring(q->bell_wr, n > 64 ? 64 : (unsigned)(n ? n : 1));
}

static void announce(mproc_queue *q, int kind, int delta)
{
    mproc__a_add(&q->sh->w[kind], (uint64_t)(int64_t)delta);
    mproc__a_add(&q->sh->waiters, (uint64_t)(int64_t)delta);
}

/* sleeping: 1 once the spin phase is over; costly checks (is a lock owner
   still alive?) are only made then. */
typedef int (*cond_fn)(mproc_queue *q, void *arg, int sleeping);

/* Sleeps on the doorbell for one slice, announced as a waiter of kind. */
static int sleep_once(mproc_queue *q, int kind, cond_fn cond, void *arg, int slice)
{
    announce(q, kind, 1);
    int ok = cond(q, arg, 1);
    if (!ok) {
        unsigned char r = 0;
        int rc = mproc__os_wait_any(&q->bell_rd, 1, &r, slice);
        if (rc > 0) mproc__os_bell_take(q->bell_rd);
        ok = rc < 0 && rc != MPROC_ETIMEDOUT ? rc : cond(q, arg, 1);
    }
    announce(q, kind, -1);
    return ok;
}

/* Until cond holds (0), the deadline passes (ETIMEDOUT) or an error. */
static int wait_for(mproc_queue *q, int kind, cond_fn cond, void *arg, uint64_t deadline,
                    int timeout_ms)
{
    for (int i = 0; i < SPIN_CHECKS + SPIN_YIELDS; i++) {
        if (cond(q, arg, 0)) return 0;
        if (i < SPIN_CHECKS) mproc__cpu_relax();
        else mproc__os_yield();
    }
    for (;;) {
        int left = mproc__remaining_ms(deadline, timeout_ms);
        int slice = (left < 0 || left > WAIT_SLICE_MS) ? WAIT_SLICE_MS : left;
        int ok = sleep_once(q, kind, cond, arg, slice);
        if (ok) return ok > 0 ? 0 : ok;
        if (left == 0) return MPROC_ETIMEDOUT;
    }
}

/* ---- the two locks --------------------------------------------------------------- */
typedef struct lock_try {
    volatile uint64_t *word;
    int recovered;
} lock_try;

static int try_lock(mproc_queue *q, void *arg, int sleeping)
{
    lock_try *t = arg;
    uint64_t owner = mproc__a_load(t->word);
    if (owner == 0) return mproc__a_cas(t->word, 0, q->me);
    if (sleeping && owner != q->me && !mproc__os_pid_alive((int64_t)owner) && mproc__a_cas(t->word, owner, q->me)) {
        t->recovered = 1;
        return 1;
    }
    return 0;
}

/* 0 locked, 1 locked after taking it over from a dead owner, or error. */
static int q_lock(mproc_queue *q, volatile uint64_t *word, uint64_t deadline, int timeout_ms)
{
    lock_try t = {word, 0};
    if (mproc__a_cas(word, 0, q->me)) return 0;
    int rc = wait_for(q, W_LOCK, try_lock, &t, deadline, timeout_ms);
    return rc ? rc : t.recovered;
}

static void q_unlock(mproc_queue *q, volatile uint64_t *word)
{
    mproc__a_store(word, 0);
    wake(q, W_LOCK);
}

/* ---- producer side --------------------------------------------------------------- */
static void put_record(mproc_queue *q, int type, uint64_t total, const void *body, size_t n)
{
    unsigned char h[REC_HDR];
    mproc__put_u32(h, TAG_MAGIC | (uint32_t)type);
    mproc__put_u32(h + 4, (uint32_t)n);
    mproc__put_u64(h + 8, total);
    uint64_t tail = mproc__a_load(&q->sh->tail);
    ring_write(q, tail, h, REC_HDR);
    ring_write(q, tail + REC_HDR, body, n);
    mproc__a_store(&q->sh->tail, tail + pad8(REC_HDR + n)); /* publish */
}

typedef struct space_need { uint64_t bytes; int check_count; } space_need;

static int has_space(mproc_queue *q, void *arg, int sleeping)
{
    (void)sleeping;
    space_need *s = arg;
    if (s->check_count && q->sh->maxsize && mproc__a_load(&q->sh->count) >= q->sh->maxsize)
        return 0;
    return q->sh->capacity - ring_used(q) >= s->bytes;
}

/* Runs with the put lock taken over from a dead producer: a stream it cut
   short is ended with ABORT (the ring always keeps room for one). */
static void put_recover(mproc_queue *q)
{
    if (!mproc__a_load(&q->sh->put_stream)) return;
    put_record(q, REC_ABORT, 0, NULL, 0);
    if (q->flags & MPROC_QUEUE_JOINABLE) mproc__a_add(&q->sh->unfinished, (uint64_t)-1);
    mproc__a_store(&q->sh->put_stream, 0);
    wake(q, W_DATA);
}

static void count_new_message(mproc_queue *q)
{
    if (q->flags & MPROC_QUEUE_JOINABLE) mproc__a_add(&q->sh->unfinished, 1);
    mproc__a_add(&q->sh->count, 1);
}

static int put_whole(mproc_queue *q, const void *buf, size_t len, uint64_t deadline, int timeout_ms)
{
    space_need need = {pad8(REC_HDR + len), 1};
    int rc = wait_for(q, W_SPACE, has_space, &need, deadline, timeout_ms);
    if (rc) return rc;
    count_new_message(q);
    put_record(q, REC_WHOLE, len, buf, len);
    wake(q, W_DATA);
    return 0;
}

/* Largest chunk of a streamed message: a quarter of the ring, so the
   consumer can drain one while the producer fills the next. */
static size_t chunk_max(mproc_queue *q) { return (size_t)(q->sh->capacity / 4 - REC_HDR); }

static int put_stream(mproc_queue *q, const unsigned char *buf, size_t len, uint64_t deadline,
                      int timeout_ms)
{
    size_t off = 0, cmax = chunk_max(q);
    while (off < len) {
        size_t n = len - off < cmax ? len - off : cmax;
        int type = off == 0 ? REC_FIRST : off + n == len ? REC_LAST : REC_MIDDLE;
        space_need need = {pad8(REC_HDR + n) + REC_HDR, off == 0};
        int rc = wait_for(q, W_SPACE, has_space, &need, deadline, timeout_ms);
        if (rc && off == 0) return rc;
        if (rc) {
            /* Give up mid-stream: the consumer discards what it has. */
            put_record(q, REC_ABORT, 0, NULL, 0);
            if (q->flags & MPROC_QUEUE_JOINABLE) mproc__a_add(&q->sh->unfinished, (uint64_t)-1);
            mproc__a_store(&q->sh->put_stream, 0);
            wake(q, W_DATA);
            return rc;
        }
        if (off == 0) {
            mproc__a_store(&q->sh->put_stream, 1);
            count_new_message(q);
        }
        put_record(q, type, len, buf + off, n);
        if (type == REC_LAST) mproc__a_store(&q->sh->put_stream, 0);
        wake(q, W_DATA);
        off += n;
    }
    return 0;
}

int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms)
{
    if (!q || (!buf && len) || (uint64_t)len > MAX_MSG) return MPROC_EINVAL;
    if (q->closed) return MPROC_ECLOSED;
    q->me = (uint64_t)mproc__os_getpid(); /* per call: a forked child shares q */
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = q_lock(q, &q->sh->put_owner, deadline, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 1) put_recover(q);
    if (pad8(REC_HDR + len) + REC_HDR <= q->sh->capacity / 4)
        rc = put_whole(q, buf, len, deadline, timeout_ms);
    else
        rc = put_stream(q, buf, len, deadline, timeout_ms);
    q_unlock(q, &q->sh->put_owner);
    return rc;
}

/* ---- consumer side ---------------------------------------------------------------- */
typedef struct rec {
    int type;
    size_t n;        /* bytes in this record */
    uint64_t total;  /* message length */
    uint64_t size;   /* record size in the ring */
} rec;

/* Reads and checks the record at head (which is published). */
static int rec_peek(mproc_queue *q, rec *r)
{
    unsigned char h[REC_HDR];
    uint64_t head = mproc__a_load(&q->sh->head), used = ring_used(q);
    if (used < REC_HDR) return MPROC_EPROTO;
    ring_read(q, head, h, REC_HDR);
    uint32_t tag = mproc__get_u32(h);
    r->type = (int)(tag & 0xffffu);
    r->n = mproc__get_u32(h + 4);
    r->total = mproc__get_u64(h + 8);
    r->size = pad8(REC_HDR + r->n);
    if ((tag & 0xffff0000u) != TAG_MAGIC || r->type < REC_WHOLE || r->type > REC_ABORT ||
        r->size > used || r->total > MAX_MSG || r->total > (uint64_t)SIZE_MAX ||
        (r->type == REC_WHOLE && r->total != r->n) || (r->type == REC_ABORT && r->n))
        return MPROC_EPROTO;
    return 0;
}

static void rec_consume(mproc_queue *q, const rec *r, void *dst)
{
    uint64_t head = mproc__a_load(&q->sh->head);
    if (dst && r->n) ring_read(q, head + REC_HDR, dst, r->n);
    mproc__a_store(&q->sh->head, head + r->size);
    wake(q, W_SPACE);
}

/* A corrupt ring (a process scribbled on shared memory) cannot be
   resynchronised: drop what is in it and report it once. */
static int ring_corrupt(mproc_queue *q)
{
    mproc__a_store(&q->sh->head, mproc__a_load(&q->sh->tail));
    mproc__a_store(&q->sh->get_stream, 0);
    wake(q, W_SPACE);
    return MPROC_EPROTO;
}

static int has_record(mproc_queue *q, void *arg, int sleeping)
{
    (void)arg;
    (void)sleeping;
    return ring_used(q) >= REC_HDR;
}

/* Mid-stream the producer is known to be writing: wait for its next chunk
   regardless of the caller's timeout, unless it died (then end its stream
   with ABORT in its place). */
static int stream_record(mproc_queue *q, void *arg, int sleeping)
{
    (void)arg;
    if (ring_used(q) >= REC_HDR) return 1;
    if (!sleeping || !mproc__a_load(&q->sh->put_stream)) return 0;
    uint64_t owner = mproc__a_load(&q->sh->put_owner);
    if (owner && owner != q->me && !mproc__os_pid_alive((int64_t)owner) &&
        mproc__a_cas(&q->sh->put_owner, owner, q->me)) {
        put_recover(q);
        q_unlock(q, &q->sh->put_owner);
    }
    return ring_used(q) >= REC_HDR;
}

static int next_stream_record(mproc_queue *q, rec *r)
{
    int rc = wait_for(q, W_DATA, stream_record, NULL, UINT64_MAX, MPROC_FOREVER);
    if (!rc) rc = rec_peek(q, r);
    return rc == MPROC_EPROTO ? ring_corrupt(q) : rc;
}

/* Discards the rest of a stream whose consumer died. */
static int skip_stream(mproc_queue *q)
{
    while (mproc__a_load(&q->sh->get_stream)) {
        rec r;
        int rc = next_stream_record(q, &r);
        if (rc) return rc;
        if (r.type == REC_WHOLE || r.type == REC_FIRST) break; /* not ours */
        rec_consume(q, &r, NULL);
        if (r.type != REC_MIDDLE) break;
    }
    mproc__a_store(&q->sh->get_stream, 0);
    return 0;
}

/* After a FIRST chunk: the rest of the message into dst. 1 if the
   producer aborted it. */
static int read_stream(mproc_queue *q, unsigned char *dst, uint64_t total, size_t got)
{
    mproc__a_store(&q->sh->get_stream, 1);
    while (got < total) {
        rec r;
        int rc = next_stream_record(q, &r);
        if (rc) return rc;
        if (r.type == REC_ABORT) {
            rec_consume(q, &r, NULL);
            mproc__a_store(&q->sh->get_stream, 0);
            return 1;
        }
        if ((r.type != REC_MIDDLE && r.type != REC_LAST) || r.total != total ||
            r.n > total - got || (r.type == REC_LAST) != (got + r.n == total))
            return ring_corrupt(q);
        rec_consume(q, &r, dst + got);
        got += r.n;
    }
    mproc__a_store(&q->sh->get_stream, 0);
    return 0;
}

/* One message, with the get lock held. 1: the record was not a message
   start (stray chunk, aborted stream): look again. */
static int get_one(mproc_queue *q, void **out, size_t *len, uint64_t deadline, int timeout_ms)
{
    int rc = wait_for(q, W_DATA, has_record, NULL, deadline, timeout_ms);
    if (rc) return rc;
    rec r;
    if (rec_peek(q, &r)) return ring_corrupt(q);
    if (r.type != REC_WHOLE && r.type != REC_FIRST) {
        rec_consume(q, &r, NULL);
        return 1;
    }
    unsigned char *dst = malloc(r.total ? (size_t)r.total : 1);
    if (!dst) return MPROC_ENOMEM; /* the message stays queued */
    rec_consume(q, &r, dst);
    mproc__a_add(&q->sh->count, (uint64_t)-1);
    wake(q, W_SPACE);
    if (r.type == REC_FIRST) {
        rc = read_stream(q, dst, r.total, r.n);
        if (rc) {
            free(dst);
            return rc;
        }
    }
    *out = dst;
    *len = (size_t)r.total;
    return 0;
}

int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms)
{
    if (!q || !buf || !len) return MPROC_EINVAL;
    *buf = NULL;
    *len = 0;
    if (q->closed) return MPROC_ECLOSED;
    q->me = (uint64_t)mproc__os_getpid();
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = q_lock(q, &q->sh->get_owner, deadline, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 1 || mproc__a_load(&q->sh->get_stream)) rc = skip_stream(q);
    while (rc == 0 && (rc = get_one(q, buf, len, deadline, timeout_ms)) == 1) rc = 0;
    q_unlock(q, &q->sh->get_owner);
    return rc;
}

/* ---- size, close, join ---------------------------------------------------------------- */
int mproc_queue_size(mproc_queue *q, size_t *n)
{
    if (!q || !n) return MPROC_EINVAL;
    if (q->flags & MPROC_QUEUE_SIMPLE) return MPROC_ENOTSUP;
    *n = (size_t)mproc__a_load(&q->sh->count);
    return 0;
}

int mproc_queue_close(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    q->closed = 1;
    return 0;
}

int mproc_queue_task_done(mproc_queue *q)
{
    if (!q) return MPROC_EINVAL;
    if (!(q->flags & MPROC_QUEUE_JOINABLE)) return MPROC_ENOTSUP;
    for (;;) {
        uint64_t u = mproc__a_load(&q->sh->unfinished);
        if (u == 0) return MPROC_ESTATE; /* more task_done than messages */
        if (mproc__a_cas(&q->sh->unfinished, u, u - 1)) {
            if (u == 1) wake(q, W_JOIN);
            return 0;
        }
    }
}

static int all_done(mproc_queue *q, void *arg, int sleeping)
{
    (void)arg;
    (void)sleeping;
    return mproc__a_load(&q->sh->unfinished) == 0;
}

int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    if (!q) return MPROC_EINVAL;
    if (!(q->flags & MPROC_QUEUE_JOINABLE)) return MPROC_ENOTSUP;
    return wait_for(q, W_JOIN, all_done, NULL, mproc__deadline_ms(timeout_ms), timeout_ms);
}

/* ---- readiness for mproc_wait ------------------------------------------------------------ */
static int has_message(mproc_queue *q) { return ring_used(q) >= REC_HDR; }

int mproc__queue_wait_prepare(mproc_queue *q, mproc__handle *h)
{
    if (q->closed) return MPROC_ECLOSED;
    announce(q, W_DATA, 1);
    if (has_message(q)) {
        announce(q, W_DATA, -1);
        return 1;
    }
    *h = q->bell_rd;
    return 0;
}

int mproc__queue_wait_finish(mproc_queue *q, int woke)
{
    if (woke) mproc__os_bell_take(q->bell_rd);
    int ready = has_message(q);
    announce(q, W_DATA, -1);
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
    q->data = (unsigned char *)p + DATA_OFF;
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
    q->sh->capacity = RING_BYTES;
    q->sh->maxsize = maxsize;
    q->sh->flags = (uint64_t)flags;
    q->mask = RING_BYTES - 1;
    mproc__a_store(&q->sh->magic, Q_MAGIC);
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

/* The block must be one a queue made: a forged ref or registry entry
   gives EINVAL, never a wild access. */
static int check_block(const mproc_queue *q)
{
    const qshared *sh = q->sh;
    uint64_t cap = sh->capacity;
    if (mproc__a_load((volatile uint64_t *)&q->sh->magic) != Q_MAGIC || cap < 4096 ||
        (cap & (cap - 1)) || DATA_OFF + cap != q->map_size || sh->flags != (uint64_t)q->flags)
        return MPROC_EINVAL;
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
    if (!rc) rc = check_block(q);
    if (rc) {
        queue_free(q);
        return rc;
    }
    q->mask = q->sh->capacity - 1;
    *out = q;
    return 0;
}
