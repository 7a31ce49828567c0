/*
 * mproc — Python's multiprocessing model for C, on Linux, macOS and Windows.
 *
 * One header. Every fallible function returns 0 on success or a negative
 * MPROC_E* code; mproc_strerror() names it. Objects are opaque pointers made
 * by mproc_X_create() and freed by mproc_X_destroy() (which accepts NULL).
 * Timeouts are milliseconds: MPROC_FOREVER waits forever, 0 polls.
 *
 * The contract behind these names is docs/API.md.
 */
#ifndef MPROC_H
#define MPROC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- export macro ------------------------------------------------------ */
#if defined(MPROC_STATIC)
#  define MPROC_API
#elif defined(_WIN32)
#  if defined(MPROC_BUILDING)
#    define MPROC_API __declspec(dllexport)
#  else
#    define MPROC_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define MPROC_API __attribute__((visibility("default")))
#else
#  define MPROC_API
#endif

#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0

/* ---- errors ------------------------------------------------------------ */
enum {
    MPROC_OK = 0,
    MPROC_EINVAL = -1,      /* bad argument: NULL, zero size, unknown flag, bad ref */
    MPROC_ENOMEM = -2,      /* out of memory */
    MPROC_ETIMEDOUT = -3,   /* the timeout expired (also: queue full/empty) */
    MPROC_EOS = -4,         /* an OS call failed: see mproc_os_error() */
    MPROC_ESTATE = -5,      /* wrong state: start twice, join before start, ... */
    MPROC_ECHILD = -6,      /* a child or worker died unexpectedly */
    MPROC_ETASK = -7,       /* a task function reported failure */
    MPROC_EPROTO = -8,      /* malformed data between processes */
    MPROC_EOWNERDEAD = -9,  /* lock acquired, but its previous holder died holding it */
    MPROC_ECLOSED = -10,    /* the other end closed, or the object was closed */
    MPROC_EBOOTSTRAP = -11, /* process started before mproc_main_guard ran */
    MPROC_ENOTSUP = -12,    /* not available on this platform */
    MPROC_EDONE = -13,      /* iterator exhausted */
    MPROC_ENOENT = -14,     /* no such object: destroyed, unknown name, not inherited */
    MPROC_EEXIST = -15,     /* an object of that name exists already */
    MPROC_EBROKEN = -16,    /* barrier broken (aborted, or a waiter timed out) */
    MPROC_EINTR = -17       /* interrupted (e.g. SIGINT while a pool call waited) */
};

/* A static English name for an error code ("MPROC_ETIMEDOUT: timed out"). */
MPROC_API const char *mproc_strerror(int err);
/* errno / GetLastError() behind the last MPROC_EOS on this thread. */
MPROC_API int mproc_os_error(void);

#define MPROC_FOREVER (-1)

/* ---- bootstrap --------------------------------------------------------- */
typedef enum mproc_start_method {
    MPROC_METHOD_DEFAULT = 0,
    MPROC_SPAWN = 1,      /* re-execute the program (default everywhere) */
    MPROC_FORK = 2,       /* POSIX only: fork() without exec */
    MPROC_FORKSERVER = 3  /* POSIX only: accepted, currently behaves as spawn */
} mproc_start_method;

/*
 * Call first in main(). In an ordinary run it returns 0 at once. In a process
 * that mproc spawned it reads the child's target and argument from the
 * bootstrap channel, runs the target and exits with its result: it never
 * returns there. A malformed or missing bootstrap makes the child exit with
 * status MPROC_EXIT_BOOTSTRAP, which the parent reports as MPROC_EBOOTSTRAP.
 */
MPROC_API int mproc_main_guard(int argc, char **argv);
#define MPROC_EXIT_BOOTSTRAP 121

/* Spawn PATH (a program that calls mproc_main_guard and contains the same
   targets, i.e. the same image) instead of the current program. NULL resets. */
MPROC_API int mproc_set_executable(const char *path);
/* Process-wide default start method; MPROC_ENOTSUP for fork on Windows. */
MPROC_API int mproc_set_start_method(mproc_start_method method);
MPROC_API mproc_start_method mproc_get_start_method(void);

/* ---- process ----------------------------------------------------------- */
typedef struct mproc_process mproc_process;
/* A process target: runs in the child; its return value is the exit status
   (0..255). arg points at the child's own copy of the argument bytes. */
typedef int (*mproc_target)(const void *arg, size_t arg_len);

typedef struct mproc_process_options {
    const char *name;          /* NULL: "Process-N" */
    int daemon;                /* killed when the parent exits */
    mproc_start_method method; /* 0: the default */
} mproc_process_options;

/* Create (not start) a process. The argument bytes are copied now. */
MPROC_API int mproc_process_create(mproc_process **p, mproc_target target,
                                   const void *arg, size_t arg_len,
                                   const mproc_process_options *opt);
/* Start it. MPROC_ESTATE if already started; MPROC_EBOOTSTRAP in a child
   that has not passed mproc_main_guard. */
MPROC_API int mproc_process_start(mproc_process *p);
/* Wait for it to end: 0, MPROC_ETIMEDOUT, MPROC_ESTATE (not started),
   MPROC_EBOOTSTRAP (the child never read its bootstrap: no main guard). */
MPROC_API int mproc_process_join(mproc_process *p, int timeout_ms);
/* 1 running, 0 not started or ended, or a negative error. */
MPROC_API int mproc_process_is_alive(mproc_process *p);
/* Child pid once started, else 0. */
MPROC_API int64_t mproc_process_pid(const mproc_process *p);
/* *code >= 0: exit status; -N: ended by signal N (terminate gives -15, kill
   -9, on Windows too). MPROC_ESTATE if not started or still running. */
MPROC_API int mproc_process_exitcode(const mproc_process *p, int *code);
/* SIGTERM / TerminateProcess. MPROC_ESTATE if not started; 0 if it has
   already ended. */
MPROC_API int mproc_process_terminate(mproc_process *p);
/* SIGKILL / TerminateProcess. */
MPROC_API int mproc_process_kill(mproc_process *p);
MPROC_API const char *mproc_process_name(const mproc_process *p);
/* Frees the handle. A still-running process is not killed (unless daemon)
   and is reaped later; a running daemon is killed. */
MPROC_API void mproc_process_destroy(mproc_process *p);

MPROC_API int64_t mproc_current_pid(void);
MPROC_API int64_t mproc_parent_pid(void);
/* "MainProcess" in the parent; the child's name in a child. */
MPROC_API const char *mproc_current_name(void);

/* ---- cpu count ----------------------------------------------------------- */
/* Logical CPUs of the machine (all processor groups on Windows). >= 1. */
MPROC_API int mproc_cpu_count(void);
/* CPUs this process may use: affinity mask, capped by a cgroup CPU quota
   (Linux) or a job object's limits (Windows). >= 1. */
MPROC_API int mproc_process_cpu_count(void);

/* ---- sharing ----------------------------------------------------------- */
/* A 64-byte plain-data token naming a shareable object. Copy it into a
   child's argument (or a pool initializer's); the child attaches to it. */
typedef struct mproc_ref { unsigned char bytes[64]; } mproc_ref;

/* ---- synchronisation ----------------------------------------------------- */
typedef struct mproc_lock mproc_lock;
typedef struct mproc_rlock mproc_rlock;
typedef struct mproc_sem mproc_sem;
typedef struct mproc_event mproc_event;
typedef struct mproc_cond mproc_cond;
typedef struct mproc_barrier mproc_barrier;

/* Lock: any process may release it (like Python's). acquire returns 0,
   MPROC_ETIMEDOUT, or MPROC_EOWNERDEAD (acquired; the last holder died). */
MPROC_API int mproc_lock_create(mproc_lock **l);
MPROC_API int mproc_lock_acquire(mproc_lock *l, int timeout_ms);
MPROC_API int mproc_lock_release(mproc_lock *l);  /* ESTATE if not held */
MPROC_API void mproc_lock_destroy(mproc_lock *l);
MPROC_API int mproc_lock_ref(const mproc_lock *l, mproc_ref *ref);
MPROC_API int mproc_lock_attach(const mproc_ref *ref, mproc_lock **l);

/* RLock: owned by one thread of one process, recursive. */
MPROC_API int mproc_rlock_create(mproc_rlock **l);
MPROC_API int mproc_rlock_acquire(mproc_rlock *l, int timeout_ms);
MPROC_API int mproc_rlock_release(mproc_rlock *l); /* ESTATE if not the owner */
MPROC_API void mproc_rlock_destroy(mproc_rlock *l);
MPROC_API int mproc_rlock_ref(const mproc_rlock *l, mproc_ref *ref);
MPROC_API int mproc_rlock_attach(const mproc_ref *ref, mproc_rlock **l);

/* Semaphore; max > 0 makes it a BoundedSemaphore. */
MPROC_API int mproc_sem_create(mproc_sem **s, unsigned value, unsigned max);
MPROC_API int mproc_sem_acquire(mproc_sem *s, int timeout_ms);
MPROC_API int mproc_sem_release(mproc_sem *s);   /* EINVAL past max */
MPROC_API int mproc_sem_value(mproc_sem *s, unsigned *value);
MPROC_API void mproc_sem_destroy(mproc_sem *s);
MPROC_API int mproc_sem_ref(const mproc_sem *s, mproc_ref *ref);
MPROC_API int mproc_sem_attach(const mproc_ref *ref, mproc_sem **s);

MPROC_API int mproc_event_create(mproc_event **e);
MPROC_API int mproc_event_set(mproc_event *e);
MPROC_API int mproc_event_clear(mproc_event *e);
MPROC_API int mproc_event_is_set(mproc_event *e);           /* 1, 0 or error */
MPROC_API int mproc_event_wait(mproc_event *e, int timeout_ms); /* 0 or ETIMEDOUT */
MPROC_API void mproc_event_destroy(mproc_event *e);
MPROC_API int mproc_event_ref(const mproc_event *e, mproc_ref *ref);
MPROC_API int mproc_event_attach(const mproc_ref *ref, mproc_event **e);

/* Condition over an RLock (its own when lock is NULL). wait/notify need the
   lock held by the caller (MPROC_ESTATE otherwise). */
MPROC_API int mproc_cond_create(mproc_cond **c, mproc_rlock *lock);
MPROC_API mproc_rlock *mproc_cond_lock(mproc_cond *c);
MPROC_API int mproc_cond_acquire(mproc_cond *c, int timeout_ms);
MPROC_API int mproc_cond_release(mproc_cond *c);
MPROC_API int mproc_cond_wait(mproc_cond *c, int timeout_ms);
MPROC_API int mproc_cond_notify(mproc_cond *c, unsigned n);
MPROC_API int mproc_cond_notify_all(mproc_cond *c);
MPROC_API void mproc_cond_destroy(mproc_cond *c);
MPROC_API int mproc_cond_ref(const mproc_cond *c, mproc_ref *ref);
MPROC_API int mproc_cond_attach(const mproc_ref *ref, mproc_cond **c);

/* Barrier: wait returns the arrival index (0..parties-1) or MPROC_EBROKEN. */
MPROC_API int mproc_barrier_create(mproc_barrier **b, unsigned parties);
MPROC_API int mproc_barrier_wait(mproc_barrier *b, int timeout_ms);
MPROC_API int mproc_barrier_abort(mproc_barrier *b);
MPROC_API int mproc_barrier_reset(mproc_barrier *b);
MPROC_API void mproc_barrier_destroy(mproc_barrier *b);
MPROC_API int mproc_barrier_ref(const mproc_barrier *b, mproc_ref *ref);
MPROC_API int mproc_barrier_attach(const mproc_ref *ref, mproc_barrier **b);

/* ---- shared memory ------------------------------------------------------- */
typedef struct mproc_shm mproc_shm;
/* name NULL: a generated name, openable with mproc_shm_open() while the
   program lives and removed when it ends (even by SIGKILL). A name given by
   the caller lives until mproc_shm_unlink(), as POSIX shared memory does. */
MPROC_API int mproc_shm_create(mproc_shm **s, const char *name, size_t size);
MPROC_API int mproc_shm_open(mproc_shm **s, const char *name);
MPROC_API void *mproc_shm_ptr(mproc_shm *s);
MPROC_API size_t mproc_shm_size(const mproc_shm *s);
MPROC_API const char *mproc_shm_name(const mproc_shm *s);
MPROC_API int mproc_shm_unlink(mproc_shm *s);
MPROC_API void mproc_shm_destroy(mproc_shm *s);
MPROC_API int mproc_shm_ref(const mproc_shm *s, mproc_ref *ref);
MPROC_API int mproc_shm_attach(const mproc_ref *ref, mproc_shm **s);

/* ---- pipes and queues ---------------------------------------------------- */
typedef struct mproc_conn mproc_conn;
typedef struct mproc_queue mproc_queue;

/* duplex 0: a is the read end, b the write end. */
MPROC_API int mproc_pipe(mproc_conn **a, mproc_conn **b, int duplex);
MPROC_API int mproc_conn_send(mproc_conn *c, const void *buf, size_t len);
/* *buf is freed with mproc_free(). MPROC_ECLOSED at end of stream. */
MPROC_API int mproc_conn_recv(mproc_conn *c, void **buf, size_t *len, int timeout_ms);
/* Into a caller buffer; a message larger than cap is MPROC_EINVAL with *len
   set to its size and the message left in place. */
MPROC_API int mproc_conn_recv_into(mproc_conn *c, void *buf, size_t cap, size_t *len,
                                   int timeout_ms);
MPROC_API int mproc_conn_poll(mproc_conn *c, int timeout_ms);   /* 1 ready, 0 not */
MPROC_API void mproc_conn_destroy(mproc_conn *c);
MPROC_API int mproc_conn_ref(const mproc_conn *c, mproc_ref *ref);
MPROC_API int mproc_conn_attach(const mproc_ref *ref, mproc_conn **c);

#define MPROC_QUEUE_SIMPLE   0x1  /* SimpleQueue: no size, no maxsize */
#define MPROC_QUEUE_JOINABLE 0x2  /* JoinableQueue: task_done / join */
MPROC_API int mproc_queue_create(mproc_queue **q, size_t maxsize);
MPROC_API int mproc_queue_create_ex(mproc_queue **q, size_t maxsize, int flags);
MPROC_API int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms);
MPROC_API int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms);
MPROC_API int mproc_queue_size(mproc_queue *q, size_t *n);
MPROC_API int mproc_queue_close(mproc_queue *q);
MPROC_API int mproc_queue_task_done(mproc_queue *q);
MPROC_API int mproc_queue_join(mproc_queue *q, int timeout_ms);
MPROC_API void mproc_queue_destroy(mproc_queue *q);
MPROC_API int mproc_queue_ref(const mproc_queue *q, mproc_ref *ref);
MPROC_API int mproc_queue_attach(const mproc_ref *ref, mproc_queue **q);

MPROC_API void mproc_free(void *p);

/* Wait on any mix of objects (multiprocessing.connection.wait). */
typedef enum mproc_waitable_kind {
    MPROC_WAIT_CONN = 1, MPROC_WAIT_QUEUE = 2, MPROC_WAIT_PROCESS = 3
} mproc_waitable_kind;
typedef struct mproc_waitable {
    mproc_waitable_kind kind;
    void *obj;        /* mproc_conn*, mproc_queue* or mproc_process* */
    int ready;        /* out: 1 if readable / ended */
} mproc_waitable;
/* Returns the number ready (>= 1), or MPROC_ETIMEDOUT. */
MPROC_API int mproc_wait(mproc_waitable *items, size_t count, int timeout_ms);

/* ---- pool ---------------------------------------------------------------- */
typedef struct mproc_pool mproc_pool;
typedef struct mproc_iter mproc_iter;
typedef struct mproc_async mproc_async;
typedef struct mproc_buf mproc_buf;

typedef int (*mproc_map_fn)(const void *item, void *result);        /* 0 = ok */
typedef int (*mproc_task_fn)(const void *in, size_t in_len, mproc_buf *out);
MPROC_API int mproc_buf_append(mproc_buf *out, const void *data, size_t len);
/* In a worker: a message for the parent describing why this task fails. */
MPROC_API void mproc_task_fail(const char *fmt, ...);

typedef struct mproc_pool_options {
    int processes;              /* 0: mproc_process_cpu_count() */
    mproc_target initializer;   /* run once in each worker; NULL: none */
    const void *initarg; size_t initarg_len;
    int maxtasksperchild;       /* 0: workers live as long as the pool */
    mproc_start_method method;  /* 0: the default */
    int task_timeout_ms;        /* 0: none; an overdue task's worker is killed */
} mproc_pool_options;

#define MPROC_UNORDERED 0x1

MPROC_API int mproc_pool_create(mproc_pool **pool, const mproc_pool_options *opt);
MPROC_API int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn,
                             const void *items, size_t item_size, size_t count,
                             void *results, size_t result_size, size_t chunksize);
MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn,
                              const void *items, size_t item_size, size_t count,
                              size_t result_size, size_t chunksize, int flags,
                              mproc_iter **it);
MPROC_API int mproc_iter_next(mproc_iter *it, void *result, size_t *index, int timeout_ms);
MPROC_API void mproc_iter_destroy(mproc_iter *it);
MPROC_API int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *in,
                               size_t in_len, void **out, size_t *out_len);
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
                                     const void *in, size_t in_len, mproc_async **res);
MPROC_API int mproc_async_wait(mproc_async *r, int timeout_ms);
MPROC_API int mproc_async_ready(mproc_async *r);
MPROC_API int mproc_async_get(mproc_async *r, void **out, size_t *out_len, int timeout_ms);
MPROC_API void mproc_async_destroy(mproc_async *r);
typedef struct mproc_task_error {
    size_t index; int code; char message[256];
} mproc_task_error;
MPROC_API int mproc_pool_last_error(mproc_pool *pool, mproc_task_error *err);
typedef struct mproc_pool_stats {
    uint64_t submitted, done, failed;  /* items */
    uint64_t workers_replaced;
} mproc_pool_stats;
MPROC_API int mproc_pool_stats_get(mproc_pool *pool, mproc_pool_stats *st);
MPROC_API int mproc_pool_close(mproc_pool *pool);
MPROC_API int mproc_pool_terminate(mproc_pool *pool);
MPROC_API int mproc_pool_join(mproc_pool *pool);
MPROC_API void mproc_pool_destroy(mproc_pool *pool);

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
