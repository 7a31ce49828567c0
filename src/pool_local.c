/* The pool's local transport (pool_transport.h): each worker is a process
   of this machine with a duplex conn (the shared rings of conn.c and a
   link) and a shared block (status block + arena, see pool.h).

   On each event:
   - start: a fresh conn pair and arena; the worker gets its end of the
     conn and the block through its argument's refs.
   - put_unit: a map unit's items are copied into the arena and a T_MAP
     record is batched; an apply goes out at once as one T_APPLY message
     whose payload is the input (built in place in the job's buffer).
   - flush: the batch goes out as one conn message.
   - serve: receives batches of worker records and delivers them as
     ready / done / item-failed events; an apply's result arrives inside its
     R_DONE record. The conn says when the worker has ended (its end of the
     link closed); a worker that ended while a grandchild keeps that end
     open is seen by looking at its process every READ_SLICE_MS.
   - serve_ready / serve_resume: one reader at a time (the `reader` token
     below). While threads wait in the pool, the serving thread parks
     after its next batch, without announcing itself on the conn, so the
     worker rings no doorbell and the waiting caller reads the conn.
   - reap: joins the process and reads the status block: the exact unit,
     item and phase it was at (death->exact = 1), and the sub-items its
     tasks reported (the running unit's taken back).
   - reported: the slot's dead workers' sub-items plus the live count in
     the running worker's status block: a bar moves inside a task with no
     message.
   - kill: kills the process; serve then sees the end.

   Nothing here blocks on a worker with the pool's lock held: a worker is
   given units only while their records fit in TASK_BUDGET bytes of its
   1 MiB task ring, except one apply input larger than that, which goes
   only to a ready worker holding nothing (it is waiting in its receive and
   drains the stream as it comes). */
#include "pool_transport.h"
#include "process.h"
#include "comm.h"

#include <stdio.h>

#define RBUF (64 * 1024)
/* Half the ring: records of up to ~250 KiB (a compressor's block and its
   dictionary) still go two to a worker, so it starts the next one as it
   finishes one instead of sleeping until the parent has heard of it. The
   other half is slack (defines, a stop, the ring's framing): a send never
   waits for room. */
#define TASK_BUDGET (512u * 1024u)
/* How often a serving thread that heard nothing looks at its worker's
   process (a grandchild holding the link open hides the worker's end). */
#define READ_SLICE_MS 200
/* How long a waiting thread (serving thread or worker) spins on the ring
   before it sleeps: a round trip of a short task fits in it. It spins
   only while messages come within SPIN_WORTH_US of the start of its
   waits: one that came that soon after a sleep would have come sooner to
   a spinner (a sleep and a wake-up cost tens of microseconds on a VM),
   and a thread that slept once must be able to start spinning again. */
#define SPIN_US 10
#define SPIN_WORTH_US 100

typedef struct local {
    mproc_process *proc;
    mproc_conn *conn;        /* the parent's end */
    mproc__handle shm;
    unsigned char *mem;      /* status block + arena */
    mproc__pool_status *st;
    unsigned char *arena;
    size_t arena_cap, arena_tail;
    mproc__pool_known known;   /* function ids defined in this worker */
    unsigned char *batch;    /* records waiting for one send */
    size_t batch_len, batch_cap;
    unsigned char *rbuf;     /* the serving thread's receive buffer */
    unsigned spin_us;        /* how long it spins before sleeping */
    int proto_error;
    /* Who reads the conn (and rbuf): only the one holding the token. rx_mu
       guards reader and wake_now, and is held by a caller for its whole
       read and delivery (a batch is delivered before the next is read). */
    mproc__os_mutex *rx_mu;
    mproc__os_cond *rx_cond; /* the parked serving thread waits here */
    int reader;              /* READER_* */
    int wake_now;            /* serve_resume: take the conn back now */
    volatile uint32_t wanted; /* a caller found serve reading: give way
                                 (atomic: serve's spin reads it) */
    uint64_t probe_at_ns;    /* callers ask the link whether the worker went
                                (PROBE_EVERY_NS) */
    uint64_t reported_before; /* sub-items reported by this slot's dead
                                 workers (mproc_task_progress) */
} local;

enum {
    READER_NONE,   /* no worker is being served: nobody touches the conn */
    READER_THREAD, /* serve reads (it may sleep on the conn) */
    READER_CALLERS /* serve is parked; waiting callers read */
};
/* How often the parked serving thread looks whether callers still serve,
   and how many looks in a row must find none before it takes over again:
   a caller that comes back within that time (the next apply's get) finds
   the thread still parked and needs no wake-up. */
#define PARK_LOOK_MS 1
#define PARK_QUIET_LOOKS 2
/* Callers reading a conn never sleep on its link, which is how a reader
   learns that the worker has gone (killed by a task timeout, from
   outside): they ask the link this often while the conn is empty. */
#define PROBE_EVERY_NS 1000000u

/* Arena per worker: 16 MiB shared among the workers, 1..4 MiB each.
   Memory is touched only as units use it. */
static size_t arena_cap_for(int nslots)
{
    size_t cap = ((size_t)16 << 20) / (size_t)nslots;
    if (cap > ((size_t)4 << 20)) cap = (size_t)4 << 20;
    if (cap < ((size_t)1 << 20)) cap = (size_t)1 << 20;
    return cap & ~(size_t)0xffff;
}

/* ---- set-up ------------------------------------------------------------------ */
static int l_init(mproc__pool_slot *s)
{
    local *l = mproc__calloc(1, sizeof *l);
    if (!l) return MPROC_ENOMEM;
    s->tx = l;
    l->shm = MPROC__NO_HANDLE;
    l->arena_cap = arena_cap_for(s->pool->nslots);
    /* The scheduler cuts map units to a quarter of the arena. */
    s->pool->unit_max = l->arena_cap / 4;
    l->rbuf = malloc(RBUF);
    if (!l->rbuf) return MPROC_ENOMEM;
    int rc = mproc__os_mutex_create(&l->rx_mu);
    return rc ? rc : mproc__os_cond_create(&l->rx_cond);
}

/* The shared block, made at the slot's first start rather than at init:
   only the first worker's is on the way to a new pool's first result;
   the others' are made by their slot threads. */
static int make_block(local *l)
{
    void *mem;
    size_t size = MPROC__POOL_STATUS_BYTES + l->arena_cap;
    int rc = mproc__os_anon_shm_create(size, &l->shm);
    if (!rc) rc = mproc__os_map(l->shm, size, 1, &mem);
    if (rc) return rc;
    l->mem = mem;
    l->st = mem;
    l->arena = l->mem + MPROC__POOL_STATUS_BYTES;
    return 0;
}

static void l_fini(mproc__pool_slot *s)
{
    local *l = s->tx;
    if (!l) return;
    if (l->mem) mproc__os_unmap(l->mem, MPROC__POOL_STATUS_BYTES + l->arena_cap);
    if (l->shm != MPROC__NO_HANDLE) mproc__os_close(l->shm);
    mproc_conn_destroy(l->conn);
    mproc_process_destroy(l->proc);
    free(l->batch);
    free(l->rbuf);
    if (l->rx_cond) mproc__os_cond_destroy(l->rx_cond);
    if (l->rx_mu) mproc__os_mutex_destroy(l->rx_mu);
    mproc__pool_known_fini(&l->known);
    free(l);
    s->tx = NULL;
}

/* ---- starting a worker --------------------------------------------------------- */
/* The worker's argument: configuration with refs to its block and conn,
   then initarg (whose own refs the core's scan hands to the worker too). */
static unsigned char *worker_arg(mproc__pool_slot *s, const mproc_ref *block,
                                 const mproc_ref *conn, size_t *len)
{
    mproc_pool *pool = s->pool;
    mproc__pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.magic = MPROC__POOL_MAGIC;
    cfg.version = MPROC__POOL_VERSION;
    cfg.slot = (uint32_t)s->index;
    cfg.maxtasks = (uint32_t)pool->opt.maxtasksperchild;
    cfg.arena_cap = ((const local *)s->tx)->arena_cap;
    cfg.parent_pid = mproc__os_getpid();
    cfg.watch_parent = pool->opt.method == MPROC_FORK;
    cfg.has_init = (uint32_t)pool->has_init;
    cfg.init = pool->init_ref;
    cfg.block = *block;
    cfg.conn = *conn;
    cfg.max_rss = pool->opt.max_worker_memory;
    cfg.initarg_len = pool->opt.initarg_len;
    *len = sizeof cfg + pool->opt.initarg_len;
    unsigned char *arg = malloc(*len);
    if (!arg) return NULL;
    memcpy(arg, &cfg, sizeof cfg);
    if (pool->opt.initarg_len) memcpy(arg + sizeof cfg, pool->initarg, pool->opt.initarg_len);
    return arg;
}

static int spawn_worker(mproc__pool_slot *s, const mproc_ref *block, const mproc_ref *conn,
                        mproc_process **p)
{
    char name[32];
    size_t len;
    mproc_process_options popt = {name, 1, s->pool->opt.method};
    snprintf(name, sizeof name, "PoolWorker-%d", s->index + 1);
    unsigned char *arg = worker_arg(s, block, conn, &len);
    if (!arg) return MPROC_ENOMEM;
    int rc = mproc_process_create(p, mproc__pool_worker_main, arg, len, &popt);
    free(arg);
    /* The pid is read once the worker has ended (l_reap): only the
       messages about its end name it. */
    if (!rc && (rc = mproc__process_start_pid_later(*p))) {
        mproc_process_destroy(*p);
        *p = NULL;
    }
    return rc;
}

static void reset_local(local *l)
{
    memset(l->mem, 0, MPROC__POOL_STATUS_BYTES);
    l->arena_tail = 0;
    l->batch_len = 0;
    l->proto_error = 0;
    mproc__pool_known_reset(&l->known);
}

/* The block travels as a registry entry (one handle), the conn as its own
   ref; both are in the worker's argument. */
static int start_unlocked(mproc__pool_slot *s)
{
    local *l = s->tx;
    mproc__entry e;
    mproc_ref block, conn_ref;
    mproc_conn *mine = NULL, *theirs = NULL;
    mproc_process *p = NULL;
    if (!l->mem) {
        int rc = make_block(l);
        if (rc) return rc;
    }
    reset_local(l);
    int rc = mproc_pipe(&mine, &theirs, 1);
    if (!rc) rc = mproc_conn_ref(theirs, &conn_ref);
    memset(&e, 0, sizeof e);
    e.kind = MPROC__KIND_POOLCHAN;
    e.nhandles = 1;
    e.handles[0] = l->shm;
    if (!rc) rc = mproc__objid_new(&e.id);
    if (!rc) rc = mproc__registry_add(&e);
    if (!rc) {
        mproc__ref_make(MPROC__KIND_POOLCHAN, &e.id, e.info, &block);
        rc = spawn_worker(s, &block, &conn_ref, &p);
        mproc__registry_remove(&e.id);
    }
    /* The worker has its own end now; ours would hide its death. */
    mproc_conn_destroy(theirs);
    if (rc) {
        mproc_conn_destroy(mine);
        return rc;
    }
    l->proc = p;
    l->conn = mine;
    return 0;
}

/* With fork, one start at a time per pool: a worker forked while another
   slot's fresh conn ends are open would inherit them, and that slot would
   never see its worker's end. */
static int l_start(mproc__pool_slot *s)
{
    int serial = s->pool->opt.method == MPROC_FORK;
    if (serial) mproc__os_mutex_lock(s->pool->start_mu);
    int rc = start_unlocked(s);
    if (serial) mproc__os_mutex_unlock(s->pool->start_mu);
    return rc;
}

/* ---- handing out units ----------------------------------------------------------- */
/* Units are released in the order they were handed out (a worker runs
   them in order), so the arena is a FIFO of contiguous blocks. */
static int arena_alloc(mproc__pool_slot *s, size_t len, size_t *off)
{
    local *l = s->tx;
    const mproc__pool_unit *oldest = NULL;
    for (size_t i = 0; i < s->u_count && !oldest; i++) {
        const mproc__pool_unit *u = &s->units[(s->u_first + i) % MPROC__POOL_WINDOW];
        if (u->place_len) oldest = u;
    }
    len = (len + 63) & ~(size_t)63;
    if (!len) len = 64;
    if (!oldest) l->arena_tail = 0;
    size_t head = oldest ? oldest->place : 0, tail = l->arena_tail;
    if (oldest && tail <= head && tail + len < head) {
        *off = tail;                        /* wrapped: room before the head */
    } else if (!oldest || tail > head) {
        if (tail + len <= l->arena_cap) *off = tail;
        else if (len < head) *off = 0;      /* wrap around */
        else return 0;
    } else {
        return 0;
    }
    l->arena_tail = *off + len;
    return 1;
}

static int batch_room(local *l, size_t more)
{
    if (l->batch_len + more <= l->batch_cap) return 1;
    size_t cap = l->batch_cap ? l->batch_cap : 4096;
    while (cap < l->batch_len + more) cap *= 2;
    unsigned char *b = realloc(l->batch, cap);
    if (!b) return 0;
    l->batch = b;
    l->batch_cap = cap;
    return 1;
}

static int batch_put(local *l, const mproc__pool_msg *m, const void *payload, size_t len)
{
    if (!batch_room(l, MPROC__POOL_HDR + len)) return 0;
    mproc__pool_msg_encode(m, l->batch + l->batch_len);
    if (len) memcpy(l->batch + l->batch_len + MPROC__POOL_HDR, payload, len);
    l->batch_len += MPROC__POOL_HDR + len;
    return 1;
}

/* Tells the worker what function id fn means, once per worker. */
static int define_if_new(mproc__pool_slot *s, uint32_t fn)
{
    local *l = s->tx;
    unsigned char payload[MPROC__FNREF_WIRE_MAX];
    mproc__pool_msg m;
    int known = mproc__pool_known_define(&l->known, fn, &s->pool->fns[fn].ref, &m, payload);
    if (known) return known > 0;
    if (!batch_put(l, &m, payload, m.len)) return 0;
    mproc__pool_known_set(&l->known, fn);
    return 1;
}

static int put_map(mproc__pool_slot *s, mproc__pool_unit *u)
{
    local *l = s->tx;
    const mproc__pool_job *job = u->job;
    size_t off, len = (size_t)mproc__pool_map_bytes(u->n, job->isz, job->rsz);
    if (s->wire_held + l->batch_len + 2 * MPROC__POOL_HDR + MPROC__FNREF_WIRE_MAX > TASK_BUDGET)
        return 0;
    size_t before = l->batch_len;
    if (!define_if_new(s, job->fn)) return 0;
    if (!arena_alloc(s, len, &off)) return 0; /* a completion will free some */
    mproc__pool_msg m = {0};
    m.type = MPROC__T_MAP;
    m.fn = job->fn;
    m.seq = u->seq;
    m.off = off;
    m.len = (uint32_t)u->n;
    m.a = (uint32_t)job->isz;
    m.b = (uint32_t)job->rsz;
    if (!batch_put(l, &m, NULL, 0)) {
        l->arena_tail = off; /* the block just taken is free again */
        return 0;
    }
    memcpy(l->arena + off, job->items + u->lo * job->isz, u->n * job->isz);
    u->place = off;
    u->place_len = len;
    u->wire_bytes = l->batch_len - before;
    return 1;
}

/* An apply goes out at once as its own message, built in the job's input
   buffer, whose first MPROC__POOL_HDR bytes are kept free for the header:
   the input is copied only into the ring. */
static int put_apply(mproc__pool_slot *s, mproc__pool_unit *u)
{
    local *l = s->tx;
    mproc__pool_job *job = u->job;
    size_t wire = MPROC__POOL_HDR + job->in_len;
    int alone = !s->u_count && !l->batch_len;
    if (s->wire_held + l->batch_len + wire + MPROC__FNREF_WIRE_MAX > TASK_BUDGET &&
        !(alone && s->ready))
        return 0;
    if (!define_if_new(s, job->fn)) return 0;
    mproc__pool_msg m = {0};
    m.type = MPROC__T_APPLY;
    m.fn = job->fn;
    m.seq = u->seq;
    m.total = job->in_len;
    mproc__pool_msg_encode(&m, job->in);
    u->wire_bytes = wire;
    int rc = 0;
    if (l->batch_len) rc = mproc_conn_send(l->conn, l->batch, l->batch_len);
    l->batch_len = 0;
    if (!rc) rc = mproc_conn_send(l->conn, job->in, wire);
    if (rc) mproc_process_kill(l->proc); /* gone or broken: serve sees its end */
    return 1;
}

static int l_put_unit(mproc__pool_slot *s, mproc__pool_unit *u)
{
    return u->job->kind == MPROC__JOB_APPLY ? put_apply(s, u) : put_map(s, u);
}

static void l_flush(mproc__pool_slot *s, int stop)
{
    local *l = s->tx;
    if (stop) {
        mproc__pool_msg m = {0};
        m.type = MPROC__T_STOP;
        if (!batch_put(l, &m, NULL, 0)) {
            mproc_process_kill(l->proc); /* no memory for a stop: it stops anyway */
            return;
        }
    }
    if (!l->batch_len) return;
    int rc = mproc_conn_send(l->conn, l->batch, l->batch_len);
    l->batch_len = 0;
    /* A worker that cannot be written to is dead or broken: make sure it
       is gone; serve then sees its end and the scheduler settles its units. */
    if (rc) mproc_process_kill(l->proc);
}

static const unsigned char *l_results(mproc__pool_slot *s, const mproc__pool_unit *u)
{
    const local *l = s->tx;
    return l->arena + u->place + MPROC__POOL_RESULTS_AT(u->n, u->job->isz);
}

static int l_progress(mproc__pool_slot *s, uint64_t *seq, uint32_t *pos, uint32_t *ticks)
{
    const mproc__pool_status *st = ((const local *)s->tx)->st;
    *ticks = st->ticks;
    *seq = st->seq;
    *pos = st->pos;
    return st->phase == MPROC__PHASE_RUNNING;
}

static void l_kill(mproc__pool_slot *s) { mproc_process_kill(((local *)s->tx)->proc); }

/* With the lock. A worker's status block counts only from its start until
   reap folds it into reported_before (a starting slot's block is being
   cleared). */
static uint64_t l_reported(mproc__pool_slot *s)
{
    const local *l = s->tx;
    int live = s->state == MPROC__SLOT_RUNNING || s->state == MPROC__SLOT_EXITING;
    return l->reported_before + (live ? mproc__load64(&l->st->progress) : 0);
}

/* After the worker's end: its reports join the slot's, but those of the
   unit it was running, which fails or runs again. Under the lock, so that
   no reader counts them twice. */
static void fold_reported(mproc__pool_slot *s)
{
    local *l = s->tx;
    mproc__os_mutex_lock(s->pool->mu);
    int running = l->st->phase == MPROC__PHASE_RUNNING;
    l->reported_before += running ? l->st->progress_at_start : l->st->progress;
    mproc__store64(&l->st->progress, 0);
    mproc__os_mutex_unlock(s->pool->mu);
}

/* ---- serving: the worker's records ------------------------------------------------ */
static void copy_message(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int on_done(mproc__pool_slot *s, const mproc__pool_event *ev)
{
    char msg[256];
    unsigned char *out = NULL;
    int code = ev->code;
    copy_message(msg, sizeof msg, ev->msg, ev->msg_len);
    if (code == 0 && ev->result_len) {
        out = malloc(ev->result_len);
        if (out) {
            memcpy(out, ev->result, ev->result_len);
        } else {
            code = MPROC_ENOMEM;
            snprintf(msg, sizeof msg, "out of memory for a %llu-byte result",
                     (unsigned long long)ev->result_len);
        }
    }
    int rc = mproc__pool_ev_done_status(s, ev->seq, code, ev->status, msg, out,
                                        out ? ev->result_len : 0, ev->took_us);
    if (rc) free(out);
    return rc;
}

static int on_record(void *ctx, const mproc__pool_rec *r)
{
    char msg[256];
    mproc__pool_slot *s = ctx;
    mproc__pool_event ev;
    int rc = mproc__pool_event_decode(r, &ev);
    if (rc) return rc;
    switch (ev.type) {
    case MPROC__R_READY: mproc__pool_ev_ready(s); return 0;
    case MPROC__R_DONE: return on_done(s, &ev);
    default:
        copy_message(msg, sizeof msg, ev.msg, ev.msg_len);
        return mproc__pool_ev_item_failed_status(s, ev.seq, ev.pos, ev.code, ev.status, msg);
    }
}

/* One batch from the worker, with the lock held. Corrupt data: the worker
   is killed and treated as dead. */
static void deliver(mproc__pool_slot *s, const unsigned char *buf, size_t len)
{
    local *l = s->tx;
    if (l->proto_error) return;
    if (mproc__pool_read_batch(buf, len, 0, on_record, s)) {
        l->proto_error = 1;
        mproc_process_kill(l->proc);
    }
}

int mproc__pool_await(mproc_conn *c, unsigned *spin_us, int timeout_ms)
{
    return mproc__pool_await_or(c, spin_us, NULL, timeout_ms);
}

int mproc__pool_await_or(mproc_conn *c, unsigned *spin_us, const volatile uint32_t *give_way,
                         int timeout_ms)
{
    uint64_t t0 = mproc__os_now_ns(), until = t0 + (uint64_t)*spin_us * 1000;
    int rc = 0;
    /* Pure spinning, no yields: on a loaded machine a yield hands the core
       to another program for a whole time slice, and the spin is kept
       short so that it costs the producer little when it does not pay. */
    while (!rc) {
        for (int k = 0; k < 64 && !(rc = mproc__conn_readable(c)); k++) mproc__cpu_relax();
        if (!rc && give_way && mproc__load32(give_way)) return MPROC__POOL_GIVE_WAY;
        if (mproc__os_now_ns() >= until) break;
    }
    if (!rc) rc = mproc_conn_poll(c, timeout_ms);
    /* Spin next time only if this message came soon: on a loaded machine
       spinning takes the CPU from the very process being waited for. */
    uint64_t waited_us = (mproc__os_now_ns() - t0) / 1000;
    if (waited_us < SPIN_WORTH_US) *spin_us = SPIN_US;
    else *spin_us /= 2;
    return rc;
}

/* One message into buf if it fits, else into a malloc'd *big. */
static int take_batch(mproc_conn *c, unsigned char *buf, size_t cap, unsigned char **big,
                      size_t *len, int timeout_ms)
{
    *big = NULL;
    *len = 0;
    int rc = mproc_conn_recv_into(c, buf, cap, len, timeout_ms);
    if (rc == MPROC_EINVAL && *len > cap) rc = mproc_conn_recv(c, (void **)big, len, timeout_ms);
    return rc;
}

int mproc__pool_receive(mproc_conn *c, unsigned *spin_us, unsigned char *buf, size_t cap,
                        unsigned char **big, size_t *len, int timeout_ms)
{
    *big = NULL;
    *len = 0;
    int rc = mproc__pool_await(c, spin_us, timeout_ms);
    if (rc <= 0) return rc ? rc : MPROC_ETIMEDOUT;
    return take_batch(c, buf, cap, big, len, timeout_ms);
}

/* The next batch into l->rbuf, or a malloc'd *big if larger: 0,
   MPROC__POOL_GIVE_WAY when waiting callers asked for the conn before one
   came, or MPROC_ECLOSED once the worker can send nothing more. */
static int receive(mproc__pool_slot *s, unsigned char **big, size_t *len)
{
    local *l = s->tx;
    *big = NULL;
    *len = 0;
    for (;;) {
        int rc = mproc__pool_await_or(l->conn, &l->spin_us, &l->wanted, READ_SLICE_MS);
        if (rc == MPROC__POOL_GIVE_WAY) return rc;
        if (rc > 0) rc = take_batch(l->conn, l->rbuf, RBUF, big, len, READ_SLICE_MS);
        else if (rc == 0) rc = MPROC_ETIMEDOUT;
        if (rc != MPROC_ETIMEDOUT) return rc == MPROC_EPROTO ? 0 : rc; /* a lost message: skip */
        /* Ended while something else holds its end of the link open: take
           what it sent before it ended, then stop. */
        if (!mproc_process_is_alive(l->proc))
            return take_batch(l->conn, l->rbuf, RBUF, big, len, 0) ? MPROC_ECLOSED : 0;
    }
}

static void set_reader(local *l, int reader)
{
    mproc__os_mutex_lock(l->rx_mu);
    l->reader = reader;
    mproc__os_mutex_unlock(l->rx_mu);
}

/* Before each receive: while callers serve (or one found this thread
   reading since its last turn), hand them the conn and wait until they
   have stopped for PARK_QUIET_LOOKS looks in a row, or one asks for the
   conn back (serve_resume). */
static void take_turn(mproc__pool_slot *s)
{
    local *l = s->tx;
    mproc__os_mutex_lock(l->rx_mu);
    if ((mproc__load32(&l->wanted) || mproc__load32(&s->pool->callers_serving)) && !l->wake_now) {
        l->reader = READER_CALLERS;
        for (int quiet = 0; !l->wake_now && quiet < PARK_QUIET_LOOKS;) {
            mproc__os_cond_wait(l->rx_cond, l->rx_mu, PARK_LOOK_MS);
            quiet = mproc__load32(&s->pool->callers_serving) ? 0 : quiet + 1;
        }
        l->reader = READER_THREAD;
    }
    l->wake_now = 0;
    mproc__store32(&l->wanted, 0);
    mproc__os_mutex_unlock(l->rx_mu);
}

/* One batch (in rbuf, or big) delivered with the lock, then the pump. */
static void deliver_and_pump(mproc__pool_slot *s, unsigned char *big, size_t len)
{
    mproc_pool *pool = s->pool;
    mproc__os_mutex_lock(pool->mu);
    deliver(s, big ? big : ((local *)s->tx)->rbuf, len);
    mproc__pool_pump_all(pool);
    mproc__os_mutex_unlock(pool->mu);
    free(big);
}

static void l_serve(mproc__pool_slot *s)
{
    local *l = s->tx;
    set_reader(l, READER_THREAD);
    for (;;) {
        unsigned char *big;
        size_t len = 0;
        take_turn(s);
        int rc = receive(s, &big, &len);
        if (rc == MPROC__POOL_GIVE_WAY) continue;
        if (rc) break;
        deliver_and_pump(s, big, len);
    }
    set_reader(l, READER_NONE); /* reap may close the conn now */
}

static int l_serve_ready(mproc__pool_slot *s)
{
    local *l = s->tx;
    int got = 0;
    mproc__os_mutex_lock(l->rx_mu);
    if (l->reader == READER_THREAD) mproc__store32(&l->wanted, 1);
    if (l->reader == READER_CALLERS && !l->wake_now) {
        int rc = 0;
        if (mproc__conn_readable(l->conn)) {
            unsigned char *big;
            size_t len;
            rc = take_batch(l->conn, l->rbuf, RBUF, &big, &len, 0);
            if (!rc) {
                deliver_and_pump(s, big, len);
                got = 1;
            }
        } else {
            uint64_t now = mproc__os_now_ns();
            if (now >= l->probe_at_ns) {
                l->probe_at_ns = now + PROBE_EVERY_NS;
                if (mproc__conn_peer_gone(l->conn)) rc = MPROC_ECLOSED;
            }
        }
        if (rc && rc != MPROC_ETIMEDOUT && rc != MPROC_EPROTO) {
            /* The worker's end (or a broken conn): that is serve's to see. */
            l->wake_now = 1;
            mproc__os_cond_broadcast(l->rx_cond);
        }
    }
    mproc__os_mutex_unlock(l->rx_mu);
    return got;
}

static void l_serve_resume(mproc__pool_slot *s)
{
    local *l = s->tx;
    mproc__os_mutex_lock(l->rx_mu);
    mproc__store32(&l->wanted, 0);
    if (l->reader == READER_CALLERS) {
        l->wake_now = 1;
        mproc__os_cond_broadcast(l->rx_cond);
    }
    mproc__os_mutex_unlock(l->rx_mu);
}

/* ---- the end of a worker ------------------------------------------------------------ */
static void describe_end(const mproc__pool_slot *s, int code, char *buf, size_t cap)
{
    if (code < 0)
        snprintf(buf, cap, "worker %d (pid %lld) was killed by signal %d", s->index + 1,
                 (long long)s->pid, -code);
    else if (code > 255)
        snprintf(buf, cap, "worker %d (pid %lld) ended with status 0x%08X", s->index + 1,
                 (long long)s->pid, (unsigned)code);
    else
        snprintf(buf, cap, "worker %d (pid %lld) exited with code %d", s->index + 1,
                 (long long)s->pid, code);
}

/* Waits for the process after its conn closed. A worker that closed it
   but lingers is killed: nothing it does can reach us any more. */
static void l_reap(mproc__pool_slot *s, mproc__pool_death *d)
{
    local *l = s->tx;
    int code = 0, rc = mproc_process_join(l->proc, 5000);
    if (rc == MPROC_ETIMEDOUT) {
        mproc_process_kill(l->proc);
        rc = mproc_process_join(l->proc, MPROC_FOREVER);
    }
    if (mproc_process_exitcode(l->proc, &code)) code = -9;
    s->pid = mproc_process_pid(l->proc);
    memset(d, 0, sizeof *d);
    d->no_guard = rc == MPROC_EBOOTSTRAP;
    describe_end(s, code, d->how, sizeof d->how);
    d->exit_code = code;
    d->exact = 1;
    d->seq = l->st->seq;
    d->pos = l->st->pos;
    d->phase = l->st->phase;
    fold_reported(s);
    mproc_conn_destroy(l->conn);
    l->conn = NULL;
    mproc_process_destroy(l->proc);
    l->proc = NULL;
}

const mproc__pool_transport mproc__pool_local_transport = {
    l_init,  l_fini,    l_start,    l_serve,    l_reap,        l_put_unit,
    l_flush, l_results, l_progress, l_kill,     l_reported,    l_serve_ready,
    l_serve_resume,
};
