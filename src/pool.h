/*
 * The process pool, internal view: the wire format between the parent and
 * its workers, the per-worker shared status block, and the parent's state.
 *
 * Data path. Each worker slot owns one anonymous shared memory object: a
 * status block followed by a byte ring. The parent copies a unit's items
 * into the ring and sends a 48-byte descriptor over the slot's task pipe;
 * the worker runs the function over the items, writing results next to them
 * in the ring, and answers with a 48-byte completion on its result pipe. The
 * pipes carry only descriptors (and apply results, which have any size), so
 * a map moves its data with two memcpys and a few system calls per unit.
 *
 * Death. Before each item the worker publishes (unit seq, position, phase)
 * in its status block. When its result pipe reaches end of stream the
 * parent reads that block and knows, per unit it had sent: finished, running
 * at item k (results before k are in the ring and are kept; item k failed;
 * the rest run again elsewhere), or never started (run again).
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
    MPROC__T_MAP = 2,    /* run fn over items in the ring */
    MPROC__T_PIECE = 3,  /* a piece of an apply input (the last one runs it) */
    MPROC__T_STOP = 4    /* finish and exit 0 */
};
/* worker -> parent */
enum {
    MPROC__R_READY = 1,    /* initializer done */
    MPROC__R_DONE = 2,     /* unit finished; apply: payload = result, message */
    MPROC__R_ITEMFAIL = 3  /* one item failed; payload = message */
};

/* One decoded header. Field meaning per type:
   T_DEFINE: fn, len = payload bytes.
   T_MAP:    fn, seq, off (ring), len = items, a = item size, b = result size.
   T_PIECE:  fn, seq, off, len = piece bytes, a = flags, total = input size.
   R_DONE:   seq, code (0, or a code for every item of the unit: the
             function could not be resolved), total = result bytes,
             len = message bytes, b = microseconds the unit took.
   R_ITEMFAIL: seq, code, a = position in the unit, len = message bytes. */
typedef struct mproc__pool_msg {
    uint32_t type, fn;
    uint64_t seq, off, total;
    uint32_t len, a, b;
    int32_t code;
} mproc__pool_msg;

#define MPROC__PIECE_FIRST 0x1u
#define MPROC__PIECE_FINAL 0x2u

void mproc__pool_msg_encode(const mproc__pool_msg *m, unsigned char out[MPROC__POOL_HDR]);
void mproc__pool_msg_decode(const unsigned char in[MPROC__POOL_HDR], mproc__pool_msg *m);
/* fnref <-> payload of a T_DEFINE (offset, digest, module path). */
#define MPROC__FNREF_WIRE_MAX (8 + 16 + MPROC__MODULE_PATH_MAX)
size_t mproc__pool_fnref_encode(const mproc__fnref *f, unsigned char *out);
int mproc__pool_fnref_decode(const unsigned char *in, size_t len, mproc__fnref *f);

/* ---- the shared status block (start of each slot's shared memory) ------ */
enum { MPROC__PHASE_IDLE = 0, MPROC__PHASE_RUNNING = 1, MPROC__PHASE_FINISHED = 2 };
typedef struct mproc__pool_status {
    volatile uint64_t seq;    /* unit being run / last run (0: none yet) */
    volatile uint32_t pos;    /* item position in that unit */
    volatile uint32_t phase;  /* MPROC__PHASE_* */
    volatile uint32_t ticks;  /* +1 at each item start: the timeout clock */
    uint32_t reserved[11];
} mproc__pool_status;
#define MPROC__POOL_STATUS_BYTES 64

/* ---- the worker's argument ---------------------------------------------- */
#define MPROC__POOL_MAGIC 0x4c4f4f50u /* "POOL" */
#define MPROC__POOL_VERSION 1u
typedef struct mproc__pool_config {
    uint32_t magic, version;
    uint32_t slot;
    uint32_t maxtasks;        /* 0: unlimited */
    uint64_t ring_cap;
    int64_t parent_pid;
    uint32_t watch_parent;    /* 1: poll for the parent's death (fork) */
    uint32_t has_init;
    mproc__fnref init;
    mproc_ref chan;           /* MPROC__KIND_POOLCHAN: task_r, result_w, shm */
    uint64_t initarg_len;     /* the initarg follows the struct */
} mproc__pool_config;

/* The worker process's target (pool_worker.c). */
int mproc__pool_worker_main(const void *arg, size_t len);

/* ---- parent side ---------------------------------------------------------- */
#define MPROC__POOL_WINDOW 32         /* units in flight per worker */
#define MPROC__POOL_PIPE_BUDGET 3600  /* unread descriptor bytes per task pipe */
#define MPROC__POOL_MAX_ITEM (256u * 1024u) /* item_size + result_size */

enum { JOB_MAP = 1, JOB_IMAP, JOB_APPLY };

typedef struct pool_range { size_t lo, n; } pool_range;

/* imap: a failed item's message until the consumer reaches it. */
typedef struct pool_failure {
    struct pool_failure *next;
    size_t index;
    char msg[256];
} pool_failure;

typedef struct pool_job {
    struct pool_job *next_q; /* in the pool's queue while it has work to hand out */
    int kind, queued, cancelled, refs;
    uint32_t fn;
    /* map / imap */
    const unsigned char *items;
    size_t isz, rsz, count, chunk;
    unsigned char *results;  /* map: the caller's array; imap: the window */
    size_t next;             /* first item never handed out */
    pool_range *retry;       /* items to hand out again (their worker died) */
    size_t nretry, retry_cap;
    size_t remaining;        /* items not yet finished */
    int has_err, err_code;
    size_t err_index;
    char err_msg[256];
    /* imap: a window of `window` items from `low` (lowest not yet consumed) */
    size_t window, low;
    unsigned char *state;    /* IS_* per window position */
    int *codes;
    size_t *readyq, rq_head, rq_count; /* unordered: finished, not consumed */
    int unordered;
    size_t consumed;
    pool_failure *failures;
    int abort_code;          /* imap: items never handed out fail with this */
    char abort_msg[256];
    /* apply */
    unsigned char *in;
    size_t in_len;
    struct pool_slot *streamer; /* the slot its pieces are going to */
    size_t stream_off;
    unsigned char *out;
    size_t out_len;
    volatile uint32_t done;  /* apply: finished (read without the lock to spin) */
} pool_job;

enum { IS_PENDING = 0, IS_DONE, IS_FAILED, IS_CONSUMED };

typedef struct pool_unit {
    uint64_t seq;
    pool_job *job;
    size_t lo, n;            /* map: items; piece: input offset, bytes */
    size_t ring_off, ring_len;
    size_t wire_bytes;       /* descriptor bytes it put in the task pipe */
    int piece, final;
    uint32_t *fails;         /* positions already failed (R_ITEMFAIL) */
    size_t nfails, fails_cap;
} pool_unit;

enum { SLOT_STARTING, SLOT_RUNNING, SLOT_EXITING, SLOT_DONE };

typedef struct pool_slot {
    struct mproc_pool *pool;
    int index, state;
    mproc_process *proc;
    int64_t pid;
    mproc__handle task_w, result_r, shm;
    mproc__handle proc_h;    /* ready when the worker process has ended */
    unsigned char *mem;      /* status block + ring */
    mproc__pool_status *st;
    unsigned char *ring;
    size_t ring_cap, ring_tail;
    pool_unit units[MPROC__POOL_WINDOW];
    size_t u_first, u_count;
    uint64_t next_seq;
    unsigned char *known;    /* per function id: defined in this worker */
    size_t known_cap;
    unsigned char *batch;    /* descriptors waiting for one write */
    size_t batch_len, pipe_bytes;
    unsigned tasks_sent;
    pool_job *stream;        /* apply whose pieces are going to this worker */
    int ready, stop_sent, start_failures;
    size_t win;              /* units it may hold now (grows while units are quick) */
    /* task timeout */
    uint32_t seen_ticks;
    uint64_t seen_since_ms;
    int timed_out;
    uint64_t to_seq;
    uint32_t to_pos;
    int proto_error;
    unsigned char *rbuf;     /* the reader thread's buffer */
    mproc__os_thread *thread;
} pool_slot;

typedef struct pool_fn { void *addr; mproc__fnref ref; } pool_fn;

struct mproc_pool {
    mproc__os_mutex *mu;
    mproc__os_cond *cond;
    mproc__os_mutex *fork_mu;  /* fork: one worker start at a time */
    int refs;                /* the pool itself + each live iter / async */
    int nslots;
    pool_slot *slots;
    int turn;                /* where the next search for a worker starts */
    size_t ring_cap, piece_max;
    mproc_pool_options opt;
    unsigned char *initarg;
    int has_init;
    mproc__fnref init_ref;   /* the initializer, as workers find it */
    pool_fn *fns;
    size_t nfns, fns_cap;
    pool_job *qhead, *qtail; /* jobs with work not yet handed out */
    int closed, terminating, joined, joining, threads_live;
    volatile uint32_t interrupted;     /* set by mproc_pool_interrupt (atomic) */
    int interrupt_done;                /* ...and acted upon */
    int broken_error;        /* every worker failed to start: this code */
    char broken_msg[256];
    mproc_task_error last;
    int has_last;
    mproc_pool_stats stats;
    int waiters;             /* threads in a cond wait: broadcast only then */
    mproc__os_thread *timer;
    mproc__os_cond *timer_cond;
    int timer_stop;
};

/* pool_slot.c: workers, their reader threads, deaths, dispatch. All with
   the pool's lock held unless said otherwise. */
void mproc__pool_pump_all(mproc_pool *pool);
void mproc__pool_pump_slot(pool_slot *s);
int mproc__pool_slot_init(pool_slot *s);       /* shared memory, buffers */
void mproc__pool_slot_free(pool_slot *s);
int mproc__pool_slot_start(pool_slot *s);      /* without the lock */
void mproc__pool_slot_thread(void *arg);
int mproc__pool_ring_alloc(pool_slot *s, size_t len, size_t *off);
void mproc__pool_wake(mproc_pool *pool);       /* waiting callers look again */

/* pool.c: life cycle */
int mproc__pool_fn_id(mproc_pool *pool, const void *addr, uint32_t *id);
/* Drops a reference, with the lock held; the last one unlocks and frees
   the pool (the caller must not touch it afterwards). Returns 1 then. */
int mproc__pool_unref(mproc_pool *pool);
/* 0 if new work may be submitted, else the code to return. */
int mproc__pool_accepting(const mproc_pool *pool);

/* pool_jobs.c: finishing items, queue */
void mproc__pool_enqueue(mproc_pool *pool, pool_job *job);
void mproc__pool_dequeue(mproc_pool *pool, pool_job *job);
/* Next unit of work for a slot: 1 if *u was filled (ring space taken). */
int mproc__pool_next_unit(pool_slot *s, pool_unit *u);
/* Completion of a unit; the unit is then released. */
void mproc__pool_unit_done(pool_slot *s, pool_unit *u, int code, const char *msg,
                           unsigned char *out, size_t out_len);
void mproc__pool_item_failed(pool_slot *s, pool_unit *u, uint32_t pos, int code,
                             const char *msg);
/* A unit whose worker died: finished items kept, the item at pos (if
   running) failed with code/msg, the rest handed out again. */
void mproc__pool_unit_died(pool_slot *s, pool_unit *u, int started, size_t pos, int code,
                           const char *msg);
/* Terminate / all workers broken: fail everything queued with code. */
void mproc__pool_fail_queued(mproc_pool *pool, int code, const char *msg);
/* Close the pool, fail what is queued with code, kill running workers.
   With the lock held. */
void mproc__pool_terminate_locked(mproc_pool *pool, int code, const char *msg);
void mproc__pool_job_unref(mproc_pool *pool, pool_job *job);
int mproc__pool_has_work(mproc_pool *pool);

#endif
