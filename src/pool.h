/*
 * The process pool, internal view: the wire format between the parent and
 * its workers, the per-worker shared block, and the scheduler's state.
 *
 * The pool is a scheduler (pool_sched.c, pool_jobs.c, pool.c, pool_api.c)
 * over a transport (pool_transport.h; the local one is pool_local.c, its
 * worker pool_worker.c). The scheduler owns the queue of units, windows,
 * fairness, retries and failure accounting, imap windows, timeouts and the
 * pool's life cycle; the transport starts workers, hands them units and
 * reports what happens to them.
 *
 * Local data path. Each worker has a duplex conn (conn.c: two rings in
 * shared memory and a link) and a shared block: a status block followed by
 * an arena. Parent and worker send each other batches of records (48-byte
 * headers, payloads) through the conn. A map unit's items are copied into
 * the arena and the worker writes its results next to them; an apply's
 * input and result travel whole inside the records. Map results stay in
 * the arena rather than in the worker's records because a worker that
 * dies mid-unit must not take the results it already wrote with it: the
 * parent reads them from the arena after the death (an apply has one
 * result, which a death loses anyway).
 *
 * Death. Before each item the worker publishes (unit seq, position, phase)
 * in its status block. When its conn reports the end of the worker, the
 * transport reads that block and tells the scheduler, per unit it held:
 * finished, running at item k (results before k are in the arena and are
 * kept; item k failed; the rest run again elsewhere), or never started.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include "atomic.h"
#include "fnref.h"
#include "ref.h"

/* ---- wire format (both directions: 48-byte little-endian headers) ------ */
#define MPROC__POOL_HDR 48

/* parent -> worker */
enum {
    MPROC__T_DEFINE = 1, /* function id -> fnref; payload: encoded fnref */
    MPROC__T_MAP = 2,    /* run fn over items in the arena */
    MPROC__T_APPLY = 3,  /* run fn over the payload (the whole input) */
    MPROC__T_STOP = 4,   /* finish and exit 0 */
    MPROC__T_MAPDATA = 5 /* run fn over the items in the payload (a remote worker:
                            no shared arena); results come back in R_DONE's payload */
};
/* worker -> parent */
enum {
    MPROC__R_READY = 1,    /* initializer done */
    MPROC__R_DONE = 2,     /* unit finished; apply: payload = result, message */
    MPROC__R_ITEMFAIL = 3, /* one item failed; payload = message */
    MPROC__R_ALIVE = 4,    /* a remote worker's heartbeat */
    MPROC__R_BYE = 5       /* a remote worker left the pool (after T_STOP, or its
                              initializer failed: code = what it returned) */
};

/* One decoded header. Field meaning per type:
   T_DEFINE: fn, len = payload bytes.
   T_MAP:    fn, seq, off (arena), len = items, a = item size, b = result size.
   T_APPLY:  fn, seq, total = input bytes (the payload).
   T_MAPDATA: as T_MAP without off; the payload is the len items.
   R_READY:  seq = the worker's pid, len = bytes of its machine's name (payload).
   R_DONE:   seq, code (0, or a code for every item of the unit: the
             function could not be resolved), total = result bytes (an
             apply's result, or a T_MAPDATA unit's results), off = the
             sub-items the unit reported (a remote worker; 0 from a local
             one, whose status block carries them),
             len = message bytes, b = microseconds the unit took,
             fn = a failed apply's own return value (int32).
   R_ITEMFAIL: seq, code, a = position in the unit, len = message bytes,
             fn = the map function's own return value (int32). */
typedef struct mproc__pool_msg {
    uint32_t type, fn;
    uint64_t seq, off, total;
    uint32_t len, a, b;
    int32_t code;
} mproc__pool_msg;

/* Largest payload of a worker's message besides an apply result. */
#define MPROC__POOL_MSG_MAX 65536u
/* Largest apply input or result (1 TiB, as a conn message): a sanity
   bound on lengths read back. */
#define MPROC__POOL_MAX_PAYLOAD ((uint64_t)1 << 40)

void mproc__pool_msg_encode(const mproc__pool_msg *m, unsigned char out[MPROC__POOL_HDR]);
void mproc__pool_msg_decode(const unsigned char in[MPROC__POOL_HDR], mproc__pool_msg *m);

/* One record of a batch: its header and payload (inside the batch). */
typedef struct mproc__pool_rec {
    mproc__pool_msg m;
    const unsigned char *payload;
    size_t payload_len;
} mproc__pool_rec;
/* Splits a batch (one conn message) into records, calling fn for each in
   order until fn returns non-zero (returned). A record whose type is not
   of this direction or whose lengths do not fit is MPROC_EPROTO, with the
   records before it delivered. to_worker: 1 for what a worker reads, 0
   for what the parent reads. */
typedef int (*mproc__pool_rec_fn)(void *ctx, const mproc__pool_rec *r);
int mproc__pool_read_batch(const unsigned char *buf, size_t len, int to_worker,
                           mproc__pool_rec_fn fn, void *ctx);
/* A worker's record as the parent reads it. */
typedef struct mproc__pool_event {
    uint32_t type;            /* MPROC__R_* */
    uint64_t seq;
    int code;                 /* R_DONE: 0 or a code for the unit's items */
    uint32_t pos;             /* R_ITEMFAIL: the item */
    uint32_t took_us;         /* R_DONE */
    int status;               /* R_ITEMFAIL, R_DONE of a failed apply: the
                                 task function's own return value (in the
                                 header's fn field) */
    const unsigned char *result; /* R_DONE of an apply: its result */
    size_t result_len;
    const unsigned char *msg; /* not terminated */
    size_t msg_len;
    uint64_t reported;        /* R_DONE from a remote worker: sub-items the
                                 unit reported (mproc_task_progress) */
} mproc__pool_event;
/* Decodes a record mproc__pool_read_batch gave the parent: 0, or
   MPROC_EPROTO for a code no worker sends. */
int mproc__pool_event_decode(const mproc__pool_rec *r, mproc__pool_event *ev);
/* 1 if a T_MAP's items and results lie inside an arena of arena_cap bytes. */
int mproc__pool_map_fits(const mproc__pool_msg *m, uint64_t arena_cap);
/* Bytes a map unit of n items takes in the arena (items padded to 16,
   then the results). */
uint64_t mproc__pool_map_bytes(uint64_t n, uint64_t isz, uint64_t rsz);
#define MPROC__POOL_RESULTS_AT(n, isz) (((uint64_t)(n) * (isz) + 15) & ~(uint64_t)15)
/* fnref <-> payload of a T_DEFINE (offset, digest, module path). */
#define MPROC__FNREF_WIRE_MAX (8 + 16 + MPROC__MODULE_PATH_MAX)
size_t mproc__pool_fnref_encode(const mproc__fnref *f, unsigned char *out);
int mproc__pool_fnref_decode(const unsigned char *in, size_t len, mproc__fnref *f);

/* The function ids one worker has been told about (T_DEFINE), so that each
   goes to a worker once. All zero is empty; fini frees. */
typedef struct mproc__pool_known {
    unsigned char *defined; /* per function id */
    size_t cap;
} mproc__pool_known;
/* 1: the worker knows fn. 0: it does not; *m and payload are the T_DEFINE
   record (ref's wire form) that tells it: send them, then known_set.
   MPROC_ENOMEM. */
int mproc__pool_known_define(mproc__pool_known *k, uint32_t fn, const mproc__fnref *ref,
                             mproc__pool_msg *m, unsigned char payload[MPROC__FNREF_WIRE_MAX]);
void mproc__pool_known_set(mproc__pool_known *k, uint32_t fn);
/* A new worker (or session) knows nothing. */
void mproc__pool_known_reset(mproc__pool_known *k);
void mproc__pool_known_fini(mproc__pool_known *k);

/* ---- the shared status block (start of each worker's shared block) ------ */
enum { MPROC__PHASE_IDLE = 0, MPROC__PHASE_RUNNING = 1, MPROC__PHASE_FINISHED = 2 };
typedef struct mproc__pool_status {
    volatile uint64_t seq;    /* unit being run / last run (0: none yet) */
    volatile uint32_t pos;    /* item position in that unit */
    volatile uint32_t phase;  /* MPROC__PHASE_* */
    volatile uint32_t ticks;  /* +1 at each item start: the timeout clock */
    uint32_t reserved0;
    /* mproc_task_progress: sub-items the worker's tasks reported since it
       started, and that count when the unit seq began (what a death of
       the unit takes back). Written by the worker alone. */
    volatile uint64_t progress;
    volatile uint64_t progress_at_start;
    uint32_t reserved[6];
} mproc__pool_status;
#define MPROC__POOL_STATUS_BYTES 64

/* ---- the worker's argument ---------------------------------------------- */
#define MPROC__POOL_MAGIC 0x4c4f4f50u /* "POOL" */
#define MPROC__POOL_VERSION 3u
typedef struct mproc__pool_config {
    uint32_t magic, version;
    uint32_t slot;
    uint32_t maxtasks;        /* 0: unlimited */
    uint64_t arena_cap;
    int64_t parent_pid;
    uint32_t watch_parent;    /* 1: poll for the parent's death (fork) */
    uint32_t has_init;
    mproc__fnref init;
    mproc_ref block;          /* MPROC__KIND_POOLCHAN: the shared block */
    mproc_ref conn;           /* the worker's end of its duplex conn */
    uint64_t max_rss;         /* 0: none; else exit after a task once the
                                 worker's resident memory passed it */
    uint64_t initarg_len;     /* the initarg follows the struct */
} mproc__pool_config;

/* Waits until conn c has a message (or its other end went): 1, 0 after
   timeout_ms, or an error. Spins on the ring for *spin_us first without
   yielding the CPU, then sleeps in the OS, and adapts *spin_us: it spins
   only while messages come within the spin (pool_local.c). */
int mproc__pool_await(mproc_conn *c, unsigned *spin_us, int timeout_ms);
/* mproc__pool_await whose spin also ends, returning MPROC__POOL_GIVE_WAY,
   once *give_way is set (a serving thread that waiting callers want out
   of the way: pool_local.c). */
#define MPROC__POOL_GIVE_WAY 2
int mproc__pool_await_or(mproc_conn *c, unsigned *spin_us, const volatile uint32_t *give_way,
                         int timeout_ms);
/* Receives one message after mproc__pool_await: into buf if it fits, else
   into a malloc'd *big. MPROC_ETIMEDOUT if none came in time. */
int mproc__pool_receive(mproc_conn *c, unsigned *spin_us, unsigned char *buf, size_t cap,
                        unsigned char **big, size_t *len, int timeout_ms);

/* The worker process's target (pool_worker.c). */
int mproc__pool_worker_main(const void *arg, size_t len);
/* A worker's functions by id, as T_DEFINE records define them (each
   resolved and checked once). */
typedef struct mproc__pool_fntab { void **fns; int *err; size_t n; } mproc__pool_fntab;
int mproc__pool_fntab_define(mproc__pool_fntab *t, const mproc__pool_rec *r);
/* 0 and *addr, or why id has no function (MPROC_EPROTO: never defined). */
int mproc__pool_fntab_lookup(const mproc__pool_fntab *t, uint32_t id, void **addr);
/* Every id unknown again (a new session of a remote worker). */
void mproc__pool_fntab_forget(mproc__pool_fntab *t);
/* Runs one map item / apply task as a worker does (mproc_task_fail
   included): 0, or MPROC_ETASK with the task's message in msg. The
   apply's *out stays valid until the next call. */
int mproc__pool_call_item(mproc_map_fn fn, const void *item, void *result, char *msg, size_t cap);
int mproc__pool_call_task(mproc_task_fn fn, const void *in, size_t len, const unsigned char **out,
                          size_t *out_len, char *msg, size_t cap);
/* Sub-items the tasks mproc__pool_call_item / call_task ran in this
   process have reported (mproc_task_progress) so far. */
uint64_t mproc__pool_task_reported(void);

/* ---- the scheduler's state ------------------------------------------------ */
#define MPROC__POOL_WINDOW 1024       /* units in flight per worker */
#define MPROC__POOL_MAX_ITEM (256u * 1024u) /* item_size + result_size */

enum { MPROC__JOB_MAP = 1, MPROC__JOB_IMAP, MPROC__JOB_APPLY };

typedef struct mproc__pool_range { size_t lo, n; } mproc__pool_range;

/* imap: a failed item's message until the consumer reaches it. */
typedef struct mproc__pool_failure {
    struct mproc__pool_failure *next;
    size_t index;
    int status;              /* the task function's return value */
    char msg[256];
} mproc__pool_failure;

typedef struct mproc__pool_job {
    struct mproc__pool_job *next_q; /* in the pool's queue while it has work to hand out */
    int kind, queued, cancelled, refs;
    uint32_t fn;
    /* map / imap */
    const unsigned char *items;
    size_t isz, rsz, count, chunk;
    unsigned char *results;  /* map: the caller's array; imap: the window */
    size_t next;             /* first item never handed out */
    mproc__pool_range *retry; /* items to hand out again (their worker died) */
    size_t nretry, retry_cap;
    mproc__pool_range *tries; /* opt.max_retries: (item, runs its worker died in) */
    size_t ntries;
    size_t remaining;        /* items not yet finished */
    int has_err, err_code, err_status;
    size_t err_index;
    int *status_out;         /* map: the caller's per-item codes (NULL: none) */
    char err_msg[256];
    /* imap: a window of `window` items from `low` (lowest not yet consumed) */
    size_t window, low;
    unsigned char *state;    /* MPROC__IS_* per window position */
    int *codes;
    size_t *readyq, rq_head, rq_count; /* unordered: finished, not consumed */
    int unordered;
    size_t consumed;
    mproc__pool_failure *failures;
    int abort_code;          /* imap: items never handed out fail with this */
    char abort_msg[256];
    /* apply */
    unsigned char *in;
    size_t in_len;
    int handed;              /* apply: held by a worker now */
    unsigned char *out;
    size_t out_len;
    volatile uint32_t done;  /* apply: finished (read without the lock to spin) */
    int pending;             /* apply_async: counted in pool->pending */
    int taken;               /* apply: out handed over by mproc_async_take */
} mproc__pool_job;

enum { MPROC__IS_PENDING = 0, MPROC__IS_DONE, MPROC__IS_FAILED, MPROC__IS_CONSUMED };

/* A unit: a range of a map job's items, or one apply. */
typedef struct mproc__pool_unit {
    uint64_t seq;            /* per worker, from 1, in the order handed out */
    mproc__pool_job *job;
    size_t lo, n;            /* map: items; apply: 0, 1 */
    size_t place, place_len; /* where the transport put it (local: arena) */
    size_t wire_bytes;       /* bytes it takes in the transport until done */
    uint32_t *fails;         /* positions already failed (R_ITEMFAIL) */
    size_t nfails, fails_cap;
} mproc__pool_unit;

enum { MPROC__SLOT_STARTING, MPROC__SLOT_RUNNING, MPROC__SLOT_EXITING, MPROC__SLOT_DONE };

/* A place for one worker at a time. */
typedef struct mproc__pool_slot {
    struct mproc_pool *pool;
    int index, state;
    int64_t pid;             /* of the worker now, for messages */
    mproc__pool_unit units[MPROC__POOL_WINDOW];
    size_t u_first, u_count;
    size_t wire_held;        /* the wire_bytes of the units it holds */
    uint64_t next_seq;
    unsigned tasks_sent;
    int ready, stop_sent, start_failures;
    size_t win;              /* units it may hold now (grows while units are quick) */
    uint64_t idle_mark;      /* pool->idle_clock when it last became idle (0: never) */
    /* task timeout */
    uint32_t seen_ticks;
    uint64_t seen_since_ms;
    int timed_out;
    uint64_t to_seq;
    uint32_t to_pos;
    void *tx;                /* the transport's state for this slot */
    mproc__os_thread *thread; /* serves the worker, replaces it */
} mproc__pool_slot;

typedef struct mproc__pool_fn { void *addr; mproc__fnref ref; } mproc__pool_fn;

struct mproc__pool_transport;

struct mproc_pool {
    mproc__os_mutex *mu;
    mproc__os_cond *cond;
    mproc__os_mutex *start_mu; /* fork: one worker start at a time */
    const struct mproc__pool_transport *transport;
    int refs;                /* the pool itself + each live iter / async */
    int nslots;
    mproc__pool_slot *slots;
    int turn;                /* where the next search for a worker starts */
    uint64_t idle_clock;     /* counts workers becoming idle (slot idle_mark) */
    uint64_t units_finished; /* a serving caller sees progress by it */
    unsigned serve_backoff;  /* a waiting caller's first spin is halved this
                                many times (pool_api.c) */
    size_t unit_max;         /* bytes of one map unit (items + results) */
    mproc_pool_options opt;
    unsigned char *initarg;
    int has_init;
    mproc__fnref init_ref;   /* the initializer, as workers find it */
    mproc__pool_fn *fns;
    size_t nfns, fns_cap;
    mproc__pool_job *qhead, *qtail; /* jobs with work not yet handed out */
    int closed, terminating, joined, joining, threads_live;
    int terminate_code;      /* what terminate fails running items with */
    char terminate_msg[64];
    volatile uint32_t interrupted;     /* set by mproc_pool_interrupt (atomic) */
    volatile uint32_t callers_serving; /* waiting threads reading the workers'
                                          events themselves (atomic; see
                                          serve_ready in pool_transport.h) */
    int interrupt_done;                /* ...and acted upon */
    int broken_error;        /* every worker failed to start: this code */
    char broken_msg[256];
    mproc_task_error last;
    int has_last;
    mproc_pool_stats stats;
    int waiters;             /* threads in a cond wait: broadcast only then */
    int creating;            /* create is starting the first worker */
    int held_back;           /* slot threads waiting for the first worker
                                (wait_first_worker in pool_sched.c) ... */
    mproc__os_cond *start_cond; /* ...here, released after the other waiters */
    int release_after_wake;  /* by the first woken of those (mproc__pool_woken) */
    size_t pending;          /* apply_async jobs not finished (opt.max_pending) */
    mproc__handle bell_rd, bell_wr; /* mproc_wait's doorbell (made on first use) */
    int bell_made;
    unsigned bell_waiters;   /* mproc_wait calls armed on it */
    mproc__os_thread *timer;
    mproc__os_cond *timer_cond;
    int timer_stop;
};

/* An iterator: over a fixed-size imap job, or a stream of records
   (pool_stream.c). */
struct mproc__pool_stream;
struct mproc_iter {
    mproc_pool *pool;
    mproc__pool_job *job;            /* imap */
    struct mproc__pool_stream *stream; /* record streams */
    mproc_task_error last;           /* the outcome of the last step */
    int last_failed;
};

/* pool_api.c: shared by the calls */
/* Waits on the pool's condition until done(what) or the timeout. With the
   lock held. 0, MPROC_ETIMEDOUT, or MPROC_EINTR once the pool has been
   interrupted (the first waiter to see it terminates the pool). */
int mproc__pool_wait(mproc_pool *pool, const void *what, int (*done)(const void *), int timeout_ms);
void mproc__pool_fill_error(mproc_task_error *e, size_t index, int code, int status, const char *msg);
/* A new apply job holding a copy of the input (room for a header before
   it); NULL when out of memory. */
mproc__pool_job *mproc__pool_apply_job(const void *in, size_t in_len);
/* Registers the function and checks the pool takes work. With the lock. */
int mproc__pool_admit(mproc_pool *pool, const void *fn_addr, uint32_t *fn);

/* mproc_wait over an async result (iter 0) or an iterator (iter 1): 1 if
   ready now, 0 with *h the pool's doorbell (rung at every wake), or an
   error; finish after the wait: 1 if ready. */
int mproc__pool_wait_prepare(int iter, void *obj, mproc__handle *h);
int mproc__pool_wait_finish(int iter, void *obj, int woke);

/* pool_stream.c: record iterators */
/* With the lock: 1 if the next step will not wait for a result. */
int mproc__pool_stream_ready(const mproc_iter *it);
int mproc__pool_stream_next(mproc_iter *it, void **out, size_t *out_len, size_t *index,
                            int timeout_ms);
void mproc__pool_stream_free(mproc_iter *it);

/* pool_sched.c: handing out units, windows, what workers report. With the
   pool's lock held unless said otherwise. */
void mproc__pool_pump_all(mproc_pool *pool);
/* Every thread that waited on pool->cond calls this once it has woken
   (with the lock): the first to wake after a result releases the slot
   threads held back at create (release_held_back in pool_sched.c). */
void mproc__pool_woken(mproc_pool *pool);
void mproc__pool_wake(mproc_pool *pool);       /* waiting callers look again */
/* Kills workers whose item has run longer than the task timeout. */
void mproc__pool_check_timeouts(mproc_pool *pool, uint64_t now_ms);
int mproc__pool_all_slots_done(const mproc_pool *pool);
/* Without the lock: starts the slot's worker (create starts the first). */
int mproc__pool_slot_start(mproc__pool_slot *s);
/* The thread of a slot: serves its worker and replaces it until the end. */
void mproc__pool_slot_thread(void *arg);

/* pool.c: life cycle */
int mproc__pool_fn_id(mproc_pool *pool, const void *addr, uint32_t *id);
/* Drops a reference, with the lock held; the last one unlocks and frees
   the pool (the caller must not touch it afterwards). Returns 1 then. */
int mproc__pool_unref(mproc_pool *pool);
/* 0 if new work may be submitted, else the code to return. */
int mproc__pool_accepting(const mproc_pool *pool);
/* Close the pool, fail what is queued with code, kill running workers.
   With the lock held. */
void mproc__pool_terminate_locked(mproc_pool *pool, int code, const char *msg);

/* pool_jobs.c: the queue, cutting jobs into units, finishing items */
void mproc__pool_enqueue(mproc_pool *pool, mproc__pool_job *job);
void mproc__pool_dequeue(mproc_pool *pool, mproc__pool_job *job);
/* The next unit of queued work into *u (job, lo, n), without taking it:
   1 if there is one. */
int mproc__pool_peek_unit(mproc_pool *pool, mproc__pool_unit *u);
/* The unit peek gave is handed out: take it from its job. */
void mproc__pool_take_unit(mproc_pool *pool, mproc__pool_unit *u);
/* A unit finished. res: a map unit's results (n * rsz bytes); out: an
   apply's result (handed over). The unit is then released.
   status: the task function's own return value of a failed apply. */
void mproc__pool_unit_done(mproc_pool *pool, mproc__pool_unit *u, int code, int status,
                           const char *msg, const unsigned char *res, unsigned char *out,
                           size_t out_len);
void mproc__pool_item_failed(mproc_pool *pool, mproc__pool_unit *u, uint32_t pos, int code,
                             int status, const char *msg);
/* A unit whose worker died: items before pos kept (results in res), the
   item at pos failed with code/msg, the rest handed out again. started 0:
   it never began, all of it is handed out again. */
void mproc__pool_unit_died(mproc_pool *pool, mproc__pool_unit *u, int started, size_t pos,
                           int code, const char *msg, const unsigned char *res);
/* The caller's handle on job goes (iter_destroy, async_destroy): what was
   never handed out is dropped (counted in stats.dropped), what runs
   finishes unseen. */
void mproc__pool_cancel(mproc_pool *pool, mproc__pool_job *job);
/* An apply_async job leaves pool->pending (finished or dropped). */
void mproc__pool_unpend(mproc_pool *pool, mproc__pool_job *job);
/* Terminate / all workers broken: fail everything queued with code. */
void mproc__pool_fail_queued(mproc_pool *pool, int code, const char *msg);
void mproc__pool_job_unref(mproc_pool *pool, mproc__pool_job *job);

#endif
