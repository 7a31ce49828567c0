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

/* printf-style argument checks where the compiler has them (GCC, Clang,
   MinGW with its own printf flavour); nothing with MSVC or clang-cl. */
#if defined(_MSC_VER)
#  define MPROC_PRINTF_FORMAT(fmt, first)
#elif defined(__MINGW32__) && defined(__MINGW_PRINTF_FORMAT)
#  define MPROC_PRINTF_FORMAT(fmt, first) __attribute__((format(__MINGW_PRINTF_FORMAT, fmt, first)))
#elif defined(__GNUC__) || defined(__clang__)
#  define MPROC_PRINTF_FORMAT(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#  define MPROC_PRINTF_FORMAT(fmt, first)
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
    MPROC_EINTR = -17,      /* interrupted (e.g. SIGINT while a pool call waited) */
    MPROC_ESHUTDOWN = -18,  /* the queue was shut down (mproc_queue_shutdown) */
    MPROC_ETASKTIMEOUT = -19 /* a pool task ran longer than task_timeout_ms: killed */
};

/* A static English name for an error code ("MPROC_ETIMEDOUT: timed out"). */
MPROC_API const char *mproc_strerror(int err);
/* errno / GetLastError() behind the last MPROC_EOS on this thread. */
MPROC_API int mproc_os_error(void);

#define MPROC_FOREVER (-1)

/* ---- bootstrap --------------------------------------------------------- */
/*
 * Start methods (Python's names and meanings):
 * - MPROC_SPAWN, the default everywhere: the child is the program started
 *   afresh; mproc_main_guard() runs its target. It sees the environment,
 *   working directory and standard streams of the moment it starts.
 * - MPROC_FORK (POSIX): fork() without exec. The child is a copy of the
 *   caller, descriptors, signal handlers and all, but only of the calling
 *   thread (unsafe if other threads hold locks, as in Python).
 * - MPROC_FORKSERVER (POSIX): on first use mproc spawns a server (the
 *   program again, single-threaded, inside its guard), reachable only over
 *   a socketpair it inherited; each child is forked from that server and
 *   then runs exactly the bootstrap a spawned child runs, with exactly its
 *   channels and the objects of its argument. Much cheaper than spawn, safe
 *   with threads, but a child sees the environment, working directory,
 *   standard streams and mproc_set_executable() of the moment the server
 *   started. The server ends once the program has ended (however: SIGKILL
 *   included) and its last child has ended. If the server is killed, its
 *   children die with it, their join returns MPROC_ECHILD (exit code -9),
 *   and the next start starts a new server (saying so on stderr).
 * Choose one for every later start with mproc_set_start_method(), or per
 * process / pool with the method field of their options.
 */
typedef enum mproc_start_method {
    MPROC_METHOD_DEFAULT = 0,
    MPROC_SPAWN = 1,      /* re-execute the program (default everywhere) */
    MPROC_FORK = 2,       /* POSIX only: fork() without exec */
    MPROC_FORKSERVER = 3  /* POSIX only: fork from a single-threaded server */
} mproc_start_method;

/*
 * Call first in main(). In an ordinary run it returns 0 at once. In a process
 * that mproc spawned it reads the child's target and argument from the
 * bootstrap channel, runs the target and exits with its result: it never
 * returns there. A malformed or missing bootstrap makes the child exit with
 * status MPROC_EXIT_BOOTSTRAP, which the parent reports as MPROC_EBOOTSTRAP.
 * argc and argv are not read (a child learns its target from its environment
 * and an inherited channel): a Windows program entered through wmain passes
 * 0 and NULL.
 */
MPROC_API int mproc_main_guard(int argc, char **argv);
#define MPROC_EXIT_BOOTSTRAP 121

/* The same for a program run under mpirun: defined in libmproc_mpi
   (mproc::mpi, see mproc_mpi.h), declared here so that a program moves
   its Pool onto MPI ranks by changing this one call. */
#if defined(__GNUC__) && __GNUC__ >= 4 && !defined(_WIN32)
#  define MPROC_MPI_API __attribute__((visibility("default")))
#else
#  define MPROC_MPI_API
#endif
MPROC_MPI_API int mproc_mpi_guard(int argc, char **argv);

/* Spawn PATH (a program that calls mproc_main_guard and contains the same
   targets, i.e. the same image) instead of the current program. NULL resets. */
MPROC_API int mproc_set_executable(const char *path);
/* Stdin of spawned children and pool workers, process-wide. By default (0)
   it is the null device (/dev/null, NUL), as Python gives its children: a
   child never consumes the parent's input. 1: children inherit the
   parent's stdin (the old way). Stdout and stderr are always inherited.
   Children started by MPROC_FORK follow the same setting (their other
   descriptors stay as fork leaves them); MPROC_FORKSERVER children always
   get the null device. MPROC_EINVAL for other values. */
MPROC_API int mproc_set_keep_stdin(int keep);
/* Process-wide default start method (MPROC_METHOD_DEFAULT: back to spawn);
   MPROC_ENOTSUP for fork and forkserver on Windows, MPROC_EINVAL for an
   unknown method. Until it is set, a child's default is the method that
   started it (as in Python), so its own children start the same way. */
MPROC_API int mproc_set_start_method(mproc_start_method method);
MPROC_API mproc_start_method mproc_get_start_method(void);
/* The start methods available here (Python's get_all_start_methods), the
   platform default (MPROC_SPAWN) first: writes at most cap of them to out
   and returns how many there are (1 on Windows, 3 on POSIX). */
MPROC_API int mproc_get_all_start_methods(mproc_start_method *out, size_t cap);

/* ---- process ----------------------------------------------------------- */
typedef struct mproc_process mproc_process;
/* A process target: runs in the child; its return value is the exit status
   (0..255). arg points at the child's own copy of the argument bytes,
   aligned for any type as malloc's memory is. */
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
   MPROC_EBOOTSTRAP (the child never read its bootstrap: no main guard),
   MPROC_ECHILD (forkserver only: the server was killed before it could
   report the end; the child died with it, its exit code reads -9). */
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
/* SIGINT (Python 3.14's Process.interrupt): a child without a handler
   ends with exit code -2. MPROC_ESTATE if not started; 0 if it has already
   ended. Windows: MPROC_ENOTSUP -- there is no signal for one process
   (console Ctrl-C events go to a whole console process group, and mproc's
   children share the parent's); terminate is the nearest equivalent. */
MPROC_API int mproc_process_interrupt(mproc_process *p);
MPROC_API const char *mproc_process_name(const mproc_process *p);
/* Frees the handle. A still-running process is not killed (unless daemon)
   and is reaped later; a running daemon is killed. */
MPROC_API void mproc_process_destroy(mproc_process *p);

/*
 * This process's children (Python's active_children): every process it
 * started whose handle it has not destroyed. The call polls each of them,
 * which reaps those that have ended (as Python's does), and writes at most
 * cap of those still running to out; returns how many are running.
 * Processes a pool started are listed too (they belong to the pool: do
 * not join or destroy them). A forked child starts with no children: it
 * inherits its parent's process objects in memory, not its children.
 */
MPROC_API int mproc_active_children(mproc_process **out, size_t cap);
/*
 * Joins every running non-daemon child (whose handle is not destroyed):
 * 0 when none is left, MPROC_ETIMEDOUT, or an error.
 *
 * Decision on Python's exit behaviour: Python joins its non-daemon
 * children when the main program ends; mproc does not do it by itself. A
 * C program's exit may come from anywhere (exit() deep in a library, a
 * fatal path) and must not hang there, and C programs commonly leave
 * helpers running. Call this before returning from main() to get Python's
 * behaviour. Daemon children are killed when their parent exits, as in
 * Python (atexit in the process that started them; with it killed, they
 * notice its death and exit).
 */
MPROC_API int mproc_join_children(int timeout_ms);

/*
 * An exit handler that belongs to the calling process: it runs (most
 * recent first) when this process exits through exit() or by returning
 * from main(), and when a child's target returns -- whatever the start
 * method -- but never in another process, even one that inherited it by
 * fork. This is Python 3.12's rule for atexit in children.
 *
 * What C can promise about C's own atexit(): a spawned child is a fresh
 * program, so its atexit handlers run when its target returns, as in any
 * program. A forked child ends with _exit() when its target returns,
 * because C's handler list (and stdio buffers) are copies of its parent's
 * and cannot be told apart: no atexit() handler runs there, neither the
 * parent's nor the child's own -- register with mproc_atexit instead. A
 * forked target that calls exit() itself runs every C handler, inherited
 * ones included; mproc's own (daemon clean-up, mproc_atexit) still act
 * only in the process they belong to.
 */
MPROC_API int mproc_atexit(void (*fn)(void));

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
/*
 * Locks, semaphores, events, conditions and barriers shared between
 * processes. Share one with a child by copying its ref (mproc_X_ref) into
 * the child's argument or a pool initializer's argument; the child calls
 * mproc_X_attach on it. Attaching a forged, zeroed or wrong-kind ref is
 * MPROC_EINVAL; a ref whose object was destroyed by its creator before the
 * child started (or never handed to this process) is MPROC_ENOENT.
 *
 * Lifetime: the creator's destroy removes the object from its registry
 * (new children can no longer receive it); processes that attached keep
 * using it until they destroy their handle. The objects have no name in
 * any namespace -- on Linux a memfd, on macOS an shm object unlinked at
 * creation, on Windows an unnamed section + semaphore -- so nothing of them
 * can outlive the processes using them, even when these are SIGKILLed.
 *
 * Every wait takes timeout_ms: MPROC_FOREVER waits without limit, 0 only
 * tries, a positive value gives up with MPROC_ETIMEDOUT after that many
 * milliseconds -- never earlier, and typically within 0.1-0.2 ms after it
 * (Linux futex, macOS back-off sleep, Windows high-resolution timer; about
 * a millisecond on real Windows). Below -1 is MPROC_EINVAL.
 *
 * Dead holders: a Lock or RLock whose holder process ends while holding it
 * (crash, kill) is not lost: the next acquirer gets it with
 * MPROC_EOWNERDEAD (it holds the lock; the data it protects may be half
 * updated). Waiters notice within about 0.2 s. If the dead holder's pid is
 * reused by a new process before any waiter looks, the lock stays held until
 * that process ends too. Other objects have no owner: a process that dies
 * while it waits on a Condition may use up one notify, and one that never
 * reaches a Barrier leaves the others waiting until their timeout (as in
 * Python).
 */
typedef struct mproc_lock mproc_lock;
typedef struct mproc_rlock mproc_rlock;
typedef struct mproc_sem mproc_sem;
typedef struct mproc_event mproc_event;
typedef struct mproc_cond mproc_cond;
typedef struct mproc_barrier mproc_barrier;

/* Lock (multiprocessing.Lock): not recursive, and any thread of any process
   may release it. acquire returns 0, MPROC_ETIMEDOUT, or MPROC_EOWNERDEAD
   (acquired; the last holder died holding it). Acquiring it twice from one
   thread without a release waits for the timeout, as in Python. */
MPROC_API int mproc_lock_create(mproc_lock **l);
MPROC_API int mproc_lock_acquire(mproc_lock *l, int timeout_ms);
MPROC_API int mproc_lock_release(mproc_lock *l);  /* ESTATE if not held */
/* 1 if some thread of some process holds it, 0 if not, or an error (a
   snapshot: Python's Lock.locked()). */
MPROC_API int mproc_lock_locked(mproc_lock *l);
MPROC_API void mproc_lock_destroy(mproc_lock *l);
MPROC_API int mproc_lock_ref(const mproc_lock *l, mproc_ref *ref);
MPROC_API int mproc_lock_attach(const mproc_ref *ref, mproc_lock **l);

/* RLock: owned by one thread of one process, recursive (each acquire needs
   a release). acquire: 0, MPROC_ETIMEDOUT, MPROC_EOWNERDEAD (acquired once,
   the dead owner's recursion is forgotten). */
MPROC_API int mproc_rlock_create(mproc_rlock **l);
MPROC_API int mproc_rlock_acquire(mproc_rlock *l, int timeout_ms);
MPROC_API int mproc_rlock_release(mproc_rlock *l); /* ESTATE if not the owner */
MPROC_API void mproc_rlock_destroy(mproc_rlock *l);
MPROC_API int mproc_rlock_ref(const mproc_rlock *l, mproc_ref *ref);
MPROC_API int mproc_rlock_attach(const mproc_ref *ref, mproc_rlock **l);

/* Semaphore with an initial value; max > 0 makes it a BoundedSemaphore
   (value <= max, else create is MPROC_EINVAL). Values are limited to
   2^31-1. release: MPROC_EINVAL if it would pass max (or 2^31-1). A
   semaphore has no owner: a process that dies does not give back what it
   acquired. */
MPROC_API int mproc_sem_create(mproc_sem **s, unsigned value, unsigned max);
MPROC_API int mproc_sem_acquire(mproc_sem *s, int timeout_ms); /* 0 or ETIMEDOUT */
MPROC_API int mproc_sem_release(mproc_sem *s);
/* The current value (a snapshot; Python's get_value, also on macOS). */
MPROC_API int mproc_sem_value(mproc_sem *s, unsigned *value);
MPROC_API void mproc_sem_destroy(mproc_sem *s);
MPROC_API int mproc_sem_ref(const mproc_sem *s, mproc_ref *ref);
MPROC_API int mproc_sem_attach(const mproc_ref *ref, mproc_sem **s);

/* Event: a flag. wait returns 0 once the flag is set (also if it was set
   and cleared again while this waiter slept, as in Python), or
   MPROC_ETIMEDOUT. */
MPROC_API int mproc_event_create(mproc_event **e);
MPROC_API int mproc_event_set(mproc_event *e);
MPROC_API int mproc_event_clear(mproc_event *e);
MPROC_API int mproc_event_is_set(mproc_event *e);           /* 1, 0 or error */
MPROC_API int mproc_event_wait(mproc_event *e, int timeout_ms); /* 0 or ETIMEDOUT */
MPROC_API void mproc_event_destroy(mproc_event *e);
MPROC_API int mproc_event_ref(const mproc_event *e, mproc_ref *ref);
MPROC_API int mproc_event_attach(const mproc_ref *ref, mproc_event **e);

/* Condition over an RLock (its own when lock is NULL; a given lock must
   outlive the condition). wait and notify need the lock held by the
   calling thread (MPROC_ESTATE otherwise). wait releases the lock
   completely (whatever its recursion depth), sleeps until notified or the
   timeout, and re-acquires it before returning in every case: 0 if
   notified, MPROC_ETIMEDOUT, or MPROC_EOWNERDEAD (notified or not, the lock
   is held again; its previous holder died). notify(n) wakes at most n of
   the processes/threads waiting at the time of the call (never one that
   starts waiting later); notify_all wakes all of them. The condition's ref
   carries its lock: mproc_cond_lock() in the attaching process gives it. */
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

/* Barrier for parties (1..2^31-1) waiters. wait returns the arrival index
   (0 for the first to arrive .. parties-1 for the one that trips it), or:
   MPROC_EBROKEN if the barrier is or becomes broken (aborted, reset while
   this waiter waited, or another waiter timed out); MPROC_ETIMEDOUT for
   the waiter whose timeout expired, which also breaks the barrier. A broken
   barrier fails every wait until mproc_barrier_reset(). */
MPROC_API int mproc_barrier_create(mproc_barrier **b, unsigned parties);
/* Python's Barrier(parties, action, timeout). action (may be NULL) runs
   once per trip, in the process and thread of the party that trips it,
   before any waiter is released; it must be a function of the program or
   of a library loaded at start-up (found in every process like a target).
   If it returns non-zero the barrier breaks: that party's wait returns
   MPROC_ETASK and the others' MPROC_EBROKEN. timeout_ms is the default of
   waits given MPROC_DEFAULT_TIMEOUT (MPROC_FOREVER: none). */
typedef int (*mproc_barrier_action)(void);
MPROC_API int mproc_barrier_create_ex(mproc_barrier **b, unsigned parties,
                                      mproc_barrier_action action, int timeout_ms);
/* As a timeout: the object's default (Barrier; MPROC_FOREVER if none). */
#define MPROC_DEFAULT_TIMEOUT (-2)
MPROC_API int mproc_barrier_wait(mproc_barrier *b, int timeout_ms);
MPROC_API int mproc_barrier_abort(mproc_barrier *b);
MPROC_API int mproc_barrier_reset(mproc_barrier *b);
MPROC_API int mproc_barrier_parties(mproc_barrier *b);
MPROC_API int mproc_barrier_n_waiting(mproc_barrier *b);  /* 0 while broken */
MPROC_API int mproc_barrier_broken(mproc_barrier *b);     /* 1, 0 or error */
MPROC_API void mproc_barrier_destroy(mproc_barrier *b);
MPROC_API int mproc_barrier_ref(const mproc_barrier *b, mproc_ref *ref);
MPROC_API int mproc_barrier_attach(const mproc_ref *ref, mproc_barrier **b);

/* ---- shared memory ------------------------------------------------------- */
/*
 * A block of memory shared between processes (multiprocessing.shared_memory).
 *
 * Names: 1 to 30 characters of [A-Za-z0-9._-], optionally after one '/'
 * (dropped: mproc_shm_name gives the name without it). 30 is macOS's limit;
 * anything else is MPROC_EINVAL.
 *
 * name NULL: a generated, unguessable name. The segment can be opened with
 * mproc_shm_open(name) by any process of the same user while its creator's
 * handle lives; it disappears when the creator destroys it or ends --
 * even by SIGKILL: on Linux it is a memfd reached through /proc/<pid>/fd (no
 * file in /dev/shm at all), on macOS a cleaner process started on first use
 * unlinks it, on Windows a named section dies with its last handle.
 *
 * A name given by the caller: created exclusively (MPROC_EEXIST if such a
 * segment exists), owner-only (0600 / the default DACL). On POSIX it lives
 * until mproc_shm_unlink(), even after every process ended, as POSIX shared
 * memory does. On Windows ("Local\<name>") it lives only while some process
 * holds a handle to it, and unlink does nothing.
 *
 * The memory starts zero-filled, 64-byte aligned. mproc_shm_size is the size
 * asked for at create on every platform. A segment that another program
 * made can be opened by name too; it is then used whole.
 */
typedef struct mproc_shm mproc_shm;
MPROC_API int mproc_shm_create(mproc_shm **s, const char *name, size_t size); /* size > 0 */
/* MPROC_ENOENT if there is no such segment. */
MPROC_API int mproc_shm_open(mproc_shm **s, const char *name);
MPROC_API void *mproc_shm_ptr(mproc_shm *s);
MPROC_API size_t mproc_shm_size(const mproc_shm *s);
MPROC_API const char *mproc_shm_name(const mproc_shm *s);
/* Remove the name: later opens fail with MPROC_ENOENT; mappings stay valid
   and refs still attach. MPROC_ENOENT if the name is already gone. Any
   process may unlink (as in Python). Where the OS name cannot be removed
   by this process -- a generated name unlinked by a process other than its
   creator, any name on Windows -- the segment's header is marked unlinked,
   so mproc_shm_open refuses it with MPROC_ENOENT from then on; the OS name
   itself goes when its creator's handle (Windows: the last handle) goes. */
MPROC_API int mproc_shm_unlink(mproc_shm *s);
/* Unmaps and closes this process's handle (see above for the name). */
MPROC_API void mproc_shm_destroy(mproc_shm *s);
MPROC_API int mproc_shm_ref(const mproc_shm *s, mproc_ref *ref);
MPROC_API int mproc_shm_attach(const mproc_ref *ref, mproc_shm **s);

/* ---- pipes and queues ---------------------------------------------------- */
typedef struct mproc_conn mproc_conn;
typedef struct mproc_queue mproc_queue;

/* A connected pair (Python's Pipe). duplex 0: a is the read end, b the
   write end; duplex 1: both ends send and receive. Messages arrive whole
   and in order, any size (0 bytes up; tested to 1 GiB). They travel
   through a ring of 1 MiB per direction in shared memory (address space:
   pages are allocated as they are first used), with no system call per
   message while both sides are busy; send waits only while the ring is
   full. Beside the ring the ends hold a kernel link that tells each end
   when every holder of the other has gone (closed, exited or killed):
   - receiving: messages sent before the sender went are still delivered,
     then MPROC_ECLOSED. A message cut short by its sender going, or a
     corrupt record in the ring, is MPROC_EPROTO and the conn goes on with
     the next message; never a hang or a torn message.
   - sending: MPROC_ECLOSED once the reading end has gone: at once if it
     went before this end's first send, otherwise within 64 sends if it
     was taking messages until it went, within 1024 if it had stopped
     reading before (the link is asked less often while the reader does
     not move; on Windows the answer can lag while wake-up tokens from the
     reader are still unread), and at the latest when a send would wait
     for room. Sending never raises SIGPIPE.
   Hand an end to a child with mproc_conn_ref + the child's argument; the
   parent keeps its copy open (as in Python): destroy it so the other side
   sees end of stream. One thread per direction at a time. */
MPROC_API int mproc_pipe(mproc_conn **a, mproc_conn **b, int duplex);
MPROC_API int mproc_conn_send(mproc_conn *c, const void *buf, size_t len);
/* *buf is freed with mproc_free(). MPROC_ECLOSED at end of stream,
   MPROC_ETIMEDOUT if no whole message came in time: a message partly
   received stays in the conn and the next call resumes it. */
MPROC_API int mproc_conn_recv(mproc_conn *c, void **buf, size_t *len, int timeout_ms);
/* Into a caller buffer; a message larger than cap is MPROC_EINVAL with *len
   set to its size and the message left in place. */
MPROC_API int mproc_conn_recv_into(mproc_conn *c, void *buf, size_t cap, size_t *len,
                                   int timeout_ms);
/* 1 if data (or end of stream) is there to receive, 0 if not in time. */
MPROC_API int mproc_conn_poll(mproc_conn *c, int timeout_ms);   /* 1 ready, 0 not */
MPROC_API void mproc_conn_destroy(mproc_conn *c);
/* Hand an OS handle to the process at the other end (Python's
   reduction.send_handle/recv_handle), e.g. a pre-forked server's accepted
   sockets to its workers. POSIX: a file descriptor or socket, passed with
   SCM_RIGHTS over the conn's socket link. Windows: a HANDLE; the sender
   keeps a private duplicate that the receiving process moves into itself
   (DuplicateHandle with DUPLICATE_CLOSE_SOURCE), so it reaches whichever
   process receives the message -- the sender must still be running then,
   else recv_handle is MPROC_EPROTO (Python's DupHandle does the same when
   no destination pid is known). The receiver gets its own handle to the
   same object (close-on-exec / not inheritable) to close when done; the
   sender keeps and closes its own. The handle travels as one message in
   order with the others: receive it with recv_handle where send_handle
   was used. recv_handle: MPROC_EPROTO if the next message is not a handle
   (consumed; one larger than a handle's note is left in place). A handle
   message taken by plain recv arrives as its raw note and its handle is
   never handed to a later recv_handle (POSIX closes it; on Windows the
   sender's private duplicate stays until the sender exits). Sockets on Windows: pass
   the SOCKET as a HANDLE (WSADuplicateSocket is the documented way for
   overlapped sockets). */
MPROC_API int mproc_conn_send_handle(mproc_conn *c, intptr_t handle);
MPROC_API int mproc_conn_recv_handle(mproc_conn *c, intptr_t *handle, int timeout_ms);
MPROC_API int mproc_conn_ref(const mproc_conn *c, mproc_ref *ref);
/* In a child the end moves into the new conn (attach each ref once); in
   the creator it gives a second handle on the same end. */
MPROC_API int mproc_conn_attach(const mproc_ref *ref, mproc_conn **c);

/* Queue (multi-producer, multi-consumer; Python's Queue). Messages are
   copied into a ring in shared memory owned by the queue: put returns once
   the message is stored, so a process may exit right after put and a
   parent may join children before draining. maxsize > 0 bounds the number
   of messages (put waits; MPROC_ETIMEDOUT when still full); a message of
   any size works (large ones stream through the ring while a consumer
   reads). get: MPROC_ETIMEDOUT when empty. A producer that dies mid-put
   never leaves a partial message visible. close: this object puts and gets
   no more (MPROC_ECLOSED; also size, empty and full). SIMPLE: size is
   MPROC_ENOTSUP (empty and full work); JOINABLE: put
   counts a task, task_done ends one (MPROC_ESTATE if none is open), join
   waits for all (MPROC_ENOTSUP on other kinds). One thread per queue
   object at a time: attach again for another thread. */

#define MPROC_QUEUE_SIMPLE   0x1  /* SimpleQueue: no size, no maxsize */
#define MPROC_QUEUE_JOINABLE 0x2  /* JoinableQueue: task_done / join */
MPROC_API int mproc_queue_create(mproc_queue **q, size_t maxsize);
MPROC_API int mproc_queue_create_ex(mproc_queue **q, size_t maxsize, int flags);
MPROC_API int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms);
MPROC_API int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms);
MPROC_API int mproc_queue_size(mproc_queue *q, size_t *n);
MPROC_API int mproc_queue_close(mproc_queue *q);
/* 1 or 0 (a snapshot, as in Python), or an error. empty: no message is
   waiting (one being put counts as waiting); full: maxsize messages are
   waiting (never for an unbounded queue). */
MPROC_API int mproc_queue_empty(mproc_queue *q);
MPROC_API int mproc_queue_full(mproc_queue *q);
/* Python 3.13's Queue.shutdown, for every process using the queue: puts
   fail with MPROC_ESHUTDOWN from now on. Graceful (immediate 0): gets go
   on until the queue is empty, then fail with MPROC_ESHUTDOWN. Immediate:
   the waiting messages are discarded (a JoinableQueue counts each as
   done) and every get fails with MPROC_ESHUTDOWN. Putters and getters
   blocked in any process wake and fail with MPROC_ESHUTDOWN (a message
   already being taken is finished first); mproc_wait reports such a queue
   ready. Shutting down again is allowed; graceful then immediate makes it
   immediate. MPROC_ECLOSED after close. */
MPROC_API int mproc_queue_shutdown(mproc_queue *q, int immediate);
MPROC_API int mproc_queue_task_done(mproc_queue *q);
MPROC_API int mproc_queue_join(mproc_queue *q, int timeout_ms);
MPROC_API void mproc_queue_destroy(mproc_queue *q);
MPROC_API int mproc_queue_ref(const mproc_queue *q, mproc_ref *ref);
MPROC_API int mproc_queue_attach(const mproc_ref *ref, mproc_queue **q);

/* Frees a block mproc handed out (a received message, a pool result).
   Every such block is malloc's: free() frees it too. mproc_free may keep
   the calling thread's last small block for its next receive, which then
   costs no malloc (freed at the thread's exit). */
MPROC_API void mproc_free(void *p);

/* Wait on any mix of objects (multiprocessing.connection.wait), including
   the pool's results and the program's own file descriptors or handles:
   this is how a tool waits for results and its own input at once.
   - MPROC_WAIT_ASYNC (mproc_async*): ready once the task has finished
     (mproc_async_get / take then return at once).
   - MPROC_WAIT_ITER (mproc_iter*): ready when the next step will not wait:
     a result (or failure) is there, or the iterator is exhausted. A record
     stream with nothing in flight is ready too: mproc_iter_next_record
     with timeout 0 pulls more input from the producer and returns
     MPROC_ETIMEDOUT if no result is there yet.
   - MPROC_WAIT_OS: obj points at the caller's own descriptor (an int:
     ready when readable or hung up, e.g. a socket or stdin as a pipe) on
     POSIX, or at a HANDLE (ready when signalled) on Windows. mproc only
     looks at it; reading it is the caller's job.
   A pool interrupted by mproc_pool_interrupt is noticed within ~100 ms by
   a wait on its objects (they become ready with MPROC_EINTR). */
typedef enum mproc_waitable_kind {
    MPROC_WAIT_CONN = 1, MPROC_WAIT_QUEUE = 2, MPROC_WAIT_PROCESS = 3,
    MPROC_WAIT_ASYNC = 4, MPROC_WAIT_ITER = 5, MPROC_WAIT_OS = 6
} mproc_waitable_kind;
typedef struct mproc_waitable {
    mproc_waitable_kind kind;
    void *obj;        /* mproc_conn*, mproc_queue*, mproc_process*, mproc_async*,
                         mproc_iter*, or int* / HANDLE* (MPROC_WAIT_OS) */
    int ready;        /* out: 1 if readable / ended / finished */
} mproc_waitable;
/* Returns the number ready (>= 1), or MPROC_ETIMEDOUT. A process that was
   never started is MPROC_ESTATE (as join gives), not "ended". */
MPROC_API int mproc_wait(mproc_waitable *items, size_t count, int timeout_ms);

/* ---- pool ---------------------------------------------------------------- */
/*
 * A pool of worker processes (Python's multiprocessing.Pool). Workers are
 * spawned (or forked) mproc processes; functions given to the pool are
 * found in the worker by module and offset, like process targets, so any
 * function of the program or of a library loaded at start-up works. Items
 * and map results travel through shared memory. Work is handed out in
 * units (a map chunk, an apply), each to the worker that will start it
 * soonest: an idle worker first, then the one holding the fewest units,
 * so even a few short tasks in flight keep every worker busy.
 *
 * A worker that dies (crash, abort, kill, exit() inside a task) fails only
 * the item it was running, with MPROC_ECHILD and a message saying how it
 * ended; items it finished keep their results and items it had not started
 * run on another worker. A replacement is started and no call hangs. All
 * calls may be made from several threads at once.
 */
typedef struct mproc_pool mproc_pool;
typedef struct mproc_iter mproc_iter;
typedef struct mproc_async mproc_async;
typedef struct mproc_buf mproc_buf;

/* A map function: reads one item, writes one result of the map's result
   size. Returns 0 for success; non-zero fails the item with MPROC_ETASK,
   and the value itself reaches the caller (mproc_task_error.status). */
typedef int (*mproc_map_fn)(const void *item, void *result);
/* An apply function: any input, a result of any size built with
   mproc_buf_append. Returns 0 for success; non-zero fails with MPROC_ETASK
   (the value in mproc_task_error.status). */
typedef int (*mproc_task_fn)(const void *in, size_t in_len, mproc_buf *out);
/* Appends to a task's result (in the worker). 0, MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_buf_append(mproc_buf *out, const void *data, size_t len);
/* Writing a result in place: reserve gives room for len more bytes at the
   end of the result (valid until the next call on out; NULL when out of
   memory or out is NULL); write at most len bytes there, then commit the
   number written (MPROC_EINVAL if more than reserved). E.g. deflate
   straight into the result, with no buffer of its own. */
MPROC_API void *mproc_buf_reserve(mproc_buf *out, size_t len);
MPROC_API int mproc_buf_commit(mproc_buf *out, size_t len);
/* In a worker, inside a task: fail the current item (also when the function
   then returns 0) with this printf-style message, which the parent reads
   with mproc_async_error / mproc_iter_error / mproc_pool_last_error (at
   most 255 bytes). The compiler checks the arguments against fmt where it
   can (MPROC_PRINTF_FORMAT). */
MPROC_API void mproc_task_fail(const char *fmt, ...) MPROC_PRINTF_FORMAT(1, 2);
/* In a worker, inside a task: n more sub-items of this task are done (the
   files of a batch, the lines of a record), so that a progress bar over
   sub-items moves while the task still runs (mproc_pool_stats.progress).
   Cheap enough to call per sub-item: it adds to a counter in memory the
   parent reads, no message. Call it from the thread running the task.
   0, or MPROC_ESTATE outside a task of a pool worker (in the parent, in a
   pool initializer, in an mproc_process). Over MPI ranks (mproc_mpi.h)
   the count reaches the parent only with the task's completion. */
MPROC_API int mproc_task_progress(size_t n);

typedef struct mproc_pool_options {
    int processes;              /* 0: mproc_process_cpu_count() */
    mproc_target initializer;   /* run once in each worker; NULL: none */
    const void *initarg; size_t initarg_len; /* copied; refs inside reach the workers */
    int maxtasksperchild;       /* 0: workers live as long as the pool; else a worker
                                   is replaced after this many tasks (a map chunk or
                                   an apply is one task) */
    mproc_start_method method;  /* 0: the default */
    int task_timeout_ms;        /* 0: none; else the worker running an item for
                                   longer is killed and replaced, and the item
                                   fails with MPROC_ETASKTIMEOUT */
    int max_retries;            /* 0: an item whose worker died fails with
                                   MPROC_ECHILD (Python's behaviour); N: it runs
                                   again, up to N more times, then fails with
                                   MPROC_ECHILD and the last death's message.
                                   Task timeouts are not retried. */
    size_t max_worker_memory;   /* 0: none; else a worker whose resident memory
                                   (RSS, the working set on Windows) is above
                                   this many bytes after a task exits and is
                                   replaced (counted in workers_replaced), like
                                   Celery's max-memory-per-child: a leaking
                                   task cannot grow a worker without bound */
    int max_pending;            /* 0: unbounded; else apply_async waits while
                                   this many of its tasks are queued or running
                                   (backpressure: flat memory for a producer
                                   that submits faster than workers finish) */
} mproc_pool_options;

#define MPROC_UNORDERED 0x1   /* imap: results in completion order */

/* Starts the workers: the first before create returns (a pool that cannot
   start a process fails here), the others once the first is ready and has
   work beyond the one task it runs, or has finished it (at most 5 ms after
   create): a new pool's first result does not wait behind their starts,
   and a second long task goes to the second worker rather than queueing
   behind the first (with MPROC_FORK all start here, one after another).
   An initializer that fails (returns non-zero) makes
   its worker exit; after three such starts in a row the pool's work fails
   with MPROC_ECHILD instead of being retried for ever. A program that
   forgot mproc_main_guard (its first worker ends without reaching the
   guard, having re-run main) gets no further worker starts: the first call
   that waits for work (or every call once all workers are gone) fails
   with MPROC_EBOOTSTRAP and a message naming mproc_main_guard. MPROC_EINVAL
   for negative counts, MPROC_ENOTSUP for fork where there is none,
   MPROC_EBOOTSTRAP in a child before its main guard. */
MPROC_API int mproc_pool_create(mproc_pool **pool, const mproc_pool_options *opt);
/* results[i] = fn(items[i]) for count items of item_size bytes, results of
   result_size bytes written straight into results (result_size 0: none).
   chunksize 0: Python's default, ceil(count / (4 * processes)). Returns 0
   when every item succeeded, else the code of the lowest failing item
   (MPROC_ETASK, MPROC_ECHILD, MPROC_ETASKTIMEOUT, MPROC_ECLOSED if the pool
   was terminated meanwhile); the results of the other items are still
   written. count 0 does nothing. item_size + result_size may be at most
   256 KiB (MPROC_EINVAL beyond). MPROC_ECLOSED after close. */
MPROC_API int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn,
                             const void *items, size_t item_size, size_t count,
                             void *results, size_t result_size, size_t chunksize);
/* mproc_pool_map that also fills status[i] (count ints; NULL: none) with
   item i's own outcome: 0, or its code as above. One failing item does not
   hide the others; mproc_pool_last_error keeps only the lowest. */
MPROC_API int mproc_pool_map_status(mproc_pool *pool, mproc_map_fn fn,
                                    const void *items, size_t item_size, size_t count,
                                    void *results, size_t result_size, size_t chunksize,
                                    int *status);
/* The same lazily: the items array must stay valid until the iterator is
   destroyed. Only a bounded window of results runs ahead of the consumer,
   so memory stays flat however long the input. chunksize 0: as map, at
   most 4096. flags: 0 (ordered) or MPROC_UNORDERED. */
MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn,
                              const void *items, size_t item_size, size_t count,
                              size_t result_size, size_t chunksize, int flags,
                              mproc_iter **it);
/* The next result into result (NULL: skip it) and its item's index: 0, the
   item's own error (MPROC_ETASK, MPROC_ECHILD, MPROC_ETASKTIMEOUT, ...;
   *index set, details from mproc_iter_error), MPROC_EDONE after the last
   item, or MPROC_ETIMEDOUT when nothing came within timeout_ms (*index
   SIZE_MAX). */
MPROC_API int mproc_iter_next(mproc_iter *it, void *result, size_t *index, int timeout_ms);
/* Abandons the remaining items: those running finish and are dropped,
   those never handed out are counted in mproc_pool_stats.dropped. */
MPROC_API void mproc_iter_destroy(mproc_iter *it);
/* ---- records: items and results of any size ----
   A record is bytes of any length: a path, a line, a compressed block. The
   task is an mproc_task_fn (any input, a result built with mproc_buf);
   each record runs as one task, so a record may be large (an apply's
   limits). The record iterators below give results with
   mproc_iter_next_record; mproc_iter_error, mproc_iter_destroy and the
   pool's stats work on them as on imap's. */
typedef struct mproc_record {
    const void *data;
    size_t len;
} mproc_record;
/* The streaming source of mproc_pool_imap_stream (Python's imap over a
   generator). Called in the consuming thread, from mproc_iter_next_record,
   whenever the window has room: set *item (the bytes are copied before the
   next call) and return 1; return 0 at the end of the input, or a negative
   MPROC_E* code to end it with that error. */
typedef int (*mproc_producer_fn)(void *ctx, mproc_record *item);
/* fn over the records next() produces, at most window (0: 16 per worker;
   at most 65536) of them taken from the producer and not yet given back,
   so memory stays flat however long the input (a million paths from
   stdin). flags: 0 (results in input order) or MPROC_UNORDERED (in
   completion order). One thread at a time uses an iterator. */
MPROC_API int mproc_pool_imap_stream(mproc_pool *pool, mproc_task_fn fn,
                                     mproc_producer_fn next, void *ctx, size_t window,
                                     int flags, mproc_iter **it);
/* The same over count records of an array, which must stay valid until the
   iterator is exhausted or destroyed (they are copied as the window
   reaches them). */
MPROC_API int mproc_pool_imap_records(mproc_pool *pool, mproc_task_fn fn,
                                      const mproc_record *items, size_t count,
                                      size_t window, int flags, mproc_iter **it);
/* The next result of a record iterator: *out (handed over without a copy:
   free with mproc_free; NULL when empty or out is NULL), *out_len, and
   *index (the item's position in the input): 0; the item's own error
   (MPROC_ETASK, MPROC_ECHILD, MPROC_ETASKTIMEOUT, MPROC_ECLOSED; details
   from mproc_iter_error); the producer's own negative code, once, after
   the items it produced (*index SIZE_MAX); MPROC_EDONE after the last;
   MPROC_ETIMEDOUT if nothing came in time (*index SIZE_MAX); MPROC_EINVAL
   on an imap iterator of fixed-size items (use mproc_iter_next there). */
MPROC_API int mproc_iter_next_record(mproc_iter *it, void **out, size_t *out_len,
                                     size_t *index, int timeout_ms);
/* fn over count records at once: out[i] / out_len[i] get item i's result
   (free each with mproc_free; out and out_len may be NULL), status[i] its
   outcome (0 or its code; MPROC_ECLOSED if it never ran; may be NULL).
   Returns 0 or the code of the lowest failing item. */
MPROC_API int mproc_pool_map_records(mproc_pool *pool, mproc_task_fn fn,
                                     const mproc_record *items, size_t count,
                                     void **out, size_t *out_len, int *status);

/* fn(in) in a worker; *out (free with mproc_free, NULL when empty) and
   *out_len get its result. 0, MPROC_ETASK, MPROC_ECHILD, MPROC_ETIMEDOUT,
   MPROC_ECLOSED. Inputs and results may have any size. */
MPROC_API int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *in,
                               size_t in_len, void **out, size_t *out_len);
/* Submits fn(in) (the input is copied) and returns at once; the pool works
   on it whether or not the caller waits. */
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
                                     const void *in, size_t in_len, mproc_async **res);
/* apply_async that waits at most timeout_ms for room when the pool's
   max_pending tasks are pending: MPROC_ETIMEDOUT if there is still none
   (nothing was submitted). apply_async is this with MPROC_FOREVER. */
MPROC_API int mproc_pool_apply_async_timeout(mproc_pool *pool, mproc_task_fn fn,
                                             const void *in, size_t in_len, int timeout_ms,
                                             mproc_async **res);
/* 0 once finished (successfully or not), or MPROC_ETIMEDOUT: not finished
   yet. A task killed by the pool's task timeout is finished, with
   MPROC_ETASKTIMEOUT from mproc_async_get. */
MPROC_API int mproc_async_wait(mproc_async *r, int timeout_ms);
/* 1 if finished, 0 if not. */
MPROC_API int mproc_async_ready(mproc_async *r);
/* Waits like mproc_async_wait, then the task's outcome; *out gets a copy of
   the result each time (free with mproc_free; out may be NULL). */
MPROC_API int mproc_async_get(mproc_async *r, void **out, size_t *out_len, int timeout_ms);
/* Waits like mproc_async_get, then hands the result over instead of
   copying it: *out (free with mproc_free; NULL when empty), *out_len. Once
   taken, later get/take calls on this handle return MPROC_ESTATE. A failed
   task returns its code, as get does. */
MPROC_API int mproc_async_take(mproc_async *r, void **out, size_t *out_len, int timeout_ms);
/* Frees the handle; a task not yet started is dropped (counted in
   mproc_pool_stats.dropped). Iterators and async results may outlive their
   pool (their outcome is then final). */
MPROC_API void mproc_async_destroy(mproc_async *r);
/* One item's failure. */
typedef struct mproc_task_error {
    size_t index;       /* the item (0 for an apply) */
    int code;           /* MPROC_ETASK, MPROC_ECHILD, MPROC_ETASKTIMEOUT, ... */
    char message[256];  /* mproc_task_fail's text, or how the worker ended */
    int status;         /* MPROC_ETASK: the task function's own return value
                           (0 if it called mproc_task_fail and returned 0) */
} mproc_task_error;
/* The outcome of one async result, for this handle only (no race with
   other threads): 0 with *err filled if the task failed, MPROC_ENOENT if
   it succeeded, MPROC_ESTATE if it has not finished. */
MPROC_API int mproc_async_error(mproc_async *r, mproc_task_error *err);
/* The outcome of the step the last mproc_iter_next on this iterator
   returned: 0 with *err filled (index, code, message, status) if that item
   failed, MPROC_ENOENT otherwise. */
MPROC_API int mproc_iter_error(mproc_iter *it, mproc_task_error *err);
/* The failure last reported by a call on this pool: the lowest failing item
   of a map, an imap item, an apply (index 0). MPROC_ENOENT if none. It is
   pool-wide: with several consuming threads prefer mproc_async_error /
   mproc_iter_error / mproc_pool_map_status. */
MPROC_API int mproc_pool_last_error(mproc_pool *pool, mproc_task_error *err);
/* Item counters for progress reporting: submitted, done (succeeded) and
   failed items (an apply is one item), items dropped (never run: their
   iterator or async handle was destroyed first), workers replaced (died,
   timed out or retired by maxtasksperchild). Once all work has settled,
   submitted == done + failed + dropped. */
typedef struct mproc_pool_stats {
    uint64_t submitted, done, failed;  /* items */
    uint64_t workers_replaced;
    uint64_t dropped;                  /* items */
    uint64_t retried;                  /* runs again after a worker died */
    uint64_t done_in_flight;           /* items already finished inside map
                                          chunks still running (not yet in
                                          done): a bar over done + failed +
                                          done_in_flight moves per item even
                                          with large chunks */
    uint64_t progress;                 /* sub-items tasks reported with
                                          mproc_task_progress, in tasks
                                          finished or running now; the
                                          task (or map chunk) a worker was
                                          running when it died takes its
                                          reports back (it fails or runs
                                          again) */
} mproc_pool_stats;
MPROC_API int mproc_pool_stats_get(mproc_pool *pool, mproc_pool_stats *st);
/* The number of workers the pool keeps (opt.processes, or the CPU count
   it chose for 0), or MPROC_EINVAL for NULL. */
MPROC_API int mproc_pool_processes(const mproc_pool *pool);
/* No new work (MPROC_ECLOSED); submitted work still runs, then the workers
   exit. */
MPROC_API int mproc_pool_close(mproc_pool *pool);
/* Kills the workers at once; unfinished work fails with MPROC_ECLOSED. */
MPROC_API int mproc_pool_terminate(mproc_pool *pool);
/* Async-signal-safe: call it from a SIGINT (Ctrl-C) handler. It only sets
   a flag; within ~50 ms a thread blocked in a pool call (map, iter_next,
   apply, async_wait/get) terminates the pool (workers killed, queued work
   failed) and that call, and every later wait on this pool's work,
   returns MPROC_EINTR; new work gets MPROC_ECLOSED. Then join/destroy as
   usual. Workers ignore SIGINT themselves: Ctrl-C reaches only the parent,
   whose handler decides. Without a handler, Ctrl-C ends the parent and the
   workers (daemons) follow it. On Windows Ctrl-C is a console control
   event, delivered on a thread the system creates: install a handler with
   SetConsoleCtrlHandler (or the CRT's signal(SIGINT, ...), built on it)
   that calls mproc_pool_interrupt and returns TRUE. The event reaches every
   process of the console; workers have disabled it for themselves
   (SetConsoleCtrlHandler(NULL, TRUE)), so only the parent's handler acts. */
MPROC_API int mproc_pool_interrupt(mproc_pool *pool);
/* After close or terminate: waits until every worker has exited.
   MPROC_ESTATE before. */
MPROC_API int mproc_pool_join(mproc_pool *pool);
/* Terminates (if still running), joins and frees the pool. */
MPROC_API void mproc_pool_destroy(mproc_pool *pool);

#ifdef __cplusplus
}
#endif
#endif /* MPROC_H */
