/*
 * The OS seam: every capability mproc needs from the operating system, on
 * one page. Implemented twice, in src/posix/ and src/win32/; the portable
 * core (the .c files in src/) calls only these and never asks which OS it runs on.
 *
 * Conventions: functions return 0 or a negative MPROC_E* code; an OS failure
 * is reported through mproc__fail_os() (so mproc_os_error() can name it) and
 * returns MPROC_EOS. Every handle created here is close-on-exec / not
 * inheritable: a handle reaches a child only by being listed in a spawn
 * request. Blocking calls retry on EINTR and honour timeout_ms
 * (MPROC_FOREVER = -1, 0 = poll).
 */
#ifndef MPROC_OS_H
#define MPROC_OS_H

#include <stddef.h>
#include <stdint.h>

/* An fd on POSIX, a HANDLE on Windows. */
typedef intptr_t mproc__handle;
#define MPROC__NO_HANDLE ((mproc__handle)-1)

/* ---- errors, time, identity --------------------------------------------- */
int mproc__os_last_error(void);            /* errno / GetLastError() now */
uint64_t mproc__os_now_ms(void);           /* monotonic */
uint64_t mproc__os_now_ns(void);           /* monotonic */
void mproc__os_sleep_ms(int ms);
int64_t mproc__os_getpid(void);
int64_t mproc__os_getppid(void);
int mproc__os_random(void *buf, size_t len); /* OS CSPRNG */
/* 1 if process pid may still run; 0 once it has ended (exited, killed, or
   a zombie not yet reaped — lock owner-death detection depends on that).
   When the OS cannot tell, 1: a live holder's lock is never taken. */
int mproc__os_pid_alive(int64_t pid);

/* 1 if this program runs with privileges its invoker lacks (setuid/setgid:
   AT_SECURE, issetugid); child mode is refused there. 0 on Windows. */
int mproc__os_privileged_exec(void);

/* ---- environment (the child-mode marker) --------------------------------- */
/* Copies the variable into buf; 0, or MPROC_ENOENT if unset, MPROC_EINVAL if
   it does not fit. */
int mproc__os_getenv(const char *name, char *buf, size_t cap);
void mproc__os_unsetenv(const char *name);

/* ---- handles and byte pipes ---------------------------------------------- */
void mproc__os_close(mproc__handle h);
/* A one-way anonymous pipe, both ends close-on-exec / non-inheritable. */
int mproc__os_pipe(mproc__handle *read_end, mproc__handle *write_end);
/* Write all of buf (blocking). MPROC_ECLOSED if the reader has gone. */
int mproc__os_write_all(mproc__handle h, const void *buf, size_t len);
/* Read exactly len bytes, waiting at most timeout_ms in all.
   MPROC_ECLOSED at end of stream before len bytes (*got says how many),
   MPROC_ETIMEDOUT on timeout. got may be NULL. */
int mproc__os_read_all(mproc__handle h, void *buf, size_t len, size_t *got, int timeout_ms);
/* 1 if h is readable (data or end of stream) within timeout_ms, else 0. */
int mproc__os_wait_readable(mproc__handle h, int timeout_ms);

/* ---- anonymous shared memory (large bootstrap payloads) ------------------ */
/* A shared memory object of size bytes with no name in any namespace. */
int mproc__os_anon_shm_create(size_t size, mproc__handle *h);
int mproc__os_map(mproc__handle h, size_t size, int writable, void **addr);
void mproc__os_unmap(void *addr, size_t size);

/* ---- code modules (targets are sent as module + offset) ------------------ */
#define MPROC__MODULE_PATH_MAX 1024
/* The module (shared object / DLL / main program) that contains addr:
   path ("" for the main program) and addr's offset from its base. */
int mproc__os_addr_to_module(const void *addr, char *path, size_t cap, uint64_t *offset);
/* The inverse, in this process: MPROC_ENOENT if the module is not loaded or
   offset is not inside one of its executable segments. */
int mproc__os_module_to_addr(const char *path, uint64_t offset, void **addr);
/* An identity of this program's executable file (device, inode, size and
   mtime, or the Windows equivalents), equal in parent and spawned child
   when both run the same image. */
int mproc__os_image_id(unsigned char id[32]);

/* ---- processes ------------------------------------------------------------ */
typedef struct mproc__os_proc mproc__os_proc;

#define MPROC__CHILD_ENV "MPROC_CHILD"
#define MPROC__MAX_PASS 64

typedef struct mproc__os_spawn_req {
    const char *exe;               /* NULL: the current program */
    mproc__handle boot_read;       /* child's end of the bootstrap pipe */
    mproc__handle status_write;    /* child's end of the status pipe */
    const mproc__handle *pass;     /* further handles the child receives */
    size_t npass;
    mproc__handle *pass_in_child;  /* out: their values in the child */
    int daemon;                    /* see mproc__os_proc_free */
    /* Optional (mproc__os_serve): sends the child its bootstrap, once
       pass_in_child is final; called as soon as the request is on its
       way, so the message travels while the server forks. 0 or an error,
       which fails the start. Without it, or for mproc__os_spawn, the
       caller sends the bootstrap after the call. */
    int (*deliver)(void *ctx);
    void *ctx;
    int keep_stdin;                /* 0: the child's stdin is the null device */
    /* mproc__os_serve only: return once the request and the bootstrap are
       on their way, without waiting for the server's answer; the pid is
       read from it when first needed, and a start the server could not
       carry out then reads as a child that ended with its status lost
       (wait: MPROC_ECHILD). Spawn ignores it. */
    int pid_later;
} mproc__os_spawn_req;

/* Start the program again in child mode: the child gets an environment
   variable MPROC__CHILD_ENV naming its two channel handles (decoded by
   mproc__os_child_channels) and the listed handles, and no other handle
   of the parent's beyond stdin/stdout/stderr. req->boot_read and
   req->status_write are consumed, on success and failure alike: the
   backend closes the parent's copies as soon as the child no longer needs
   them (POSIX: before returning; Windows, where the child pulls them out
   of the parent: when the process has ended or at mproc__os_proc_free). */
int mproc__os_spawn(const mproc__os_spawn_req *req, mproc__os_proc **out);
/* In a spawned child: decode MPROC__CHILD_ENV's value into the two channel
   handles (on Windows this duplicates them out of the parent). */
int mproc__os_child_channels(const char *env_value, mproc__handle *boot_read,
                             mproc__handle *status_write);
/* The forkserver start method: the same request, child layout and
   bootstrap as mproc__os_spawn, but the child is forked by a
   single-threaded server process (started on first use from req->exe,
   reached only over a socketpair it inherited) instead of being spawned.
   The returned process works with every mproc__os_proc_* call; its wait
   may also return MPROC_ECHILD (with *exitcode -9) when the server died
   before it could report the status: its children die with it, and the
   next request starts a new server. MPROC_ENOTSUP on Windows. */
int mproc__os_serve(const mproc__os_spawn_req *req, mproc__os_proc **out);
/* 1 if the fork start method exists here. */
int mproc__os_has_fork(void);
/* fork(): *is_child is set to 1 in the child (out is then NULL), whose
   stdin is the null device if null_stdin (the child ends at once with
   MPROC_EXIT_BOOTSTRAP if it cannot open it). MPROC_ENOTSUP on Windows. */
int mproc__os_fork(mproc__os_proc **out, int *is_child, int null_stdin);
/* Terminate the calling process at once with code, skipping atexit. */
#if defined(_MSC_VER)
__declspec(noreturn)
#else
_Noreturn
#endif
void mproc__os_exit_now(int code);
/* 0 for a served child whose start failed (see pid_later). */
int64_t mproc__os_proc_pid(mproc__os_proc *p);
/* Wait up to timeout_ms for the process to end: 0 with *exitcode set
   (>= 0 exit status, -N signal N), or MPROC_ETIMEDOUT. Reaps it. Calling
   again after it ended returns the same code (and the same MPROC_ECHILD
   for a served child whose status was lost). */
int mproc__os_proc_wait(mproc__os_proc *p, int timeout_ms, int *exitcode);
/* hard 0: SIGTERM (Windows: TerminateProcess, exit code reads as -15);
   hard 1: SIGKILL (-9). 0 if the process has already ended. */
int mproc__os_proc_signal(mproc__os_proc *p, int hard);
/* SIGINT (Python's Process.interrupt); 0 if the process has already ended.
   Windows has no signal to send one process (console control events go to
   whole process groups sharing a console): MPROC_ENOTSUP there. */
int mproc__os_proc_interrupt(mproc__os_proc *p);
/* A handle that becomes readable/signalled when the process ends (pidfd,
   sentinel pipe, process HANDLE), for mproc_wait; owned by p. */
mproc__handle mproc__os_proc_wait_handle(mproc__os_proc *p);
/* Frees p. A process that has not been reaped is killed first if kill_it,
   else handed to a reaper so it does not stay a zombie. */
void mproc__os_proc_free(mproc__os_proc *p, int kill_it);

/* ---- cpu counts ----------------------------------------------------------- */
int mproc__os_cpu_count(void);
int mproc__os_process_cpu_count(void);

/* ---- threads and locks for the parent's own background work ------------- */
typedef struct mproc__os_thread mproc__os_thread;
typedef struct mproc__os_mutex mproc__os_mutex;
int mproc__os_thread_start(mproc__os_thread **t, void (*fn)(void *), void *arg);
void mproc__os_thread_join(mproc__os_thread *t);
/* Calls hook->fn when the calling thread exits, once armed on that
   thread (not for the thread that calls exit()). One hook per thread: the
   last one armed. hook stays valid for the program's life (a static).
   0, or an error: not armed. */
typedef struct mproc__os_exit_hook {
    void (*fn)(void);
} mproc__os_exit_hook;
int mproc__os_at_thread_exit(const mproc__os_exit_hook *hook);
/* The bytes malloc's block p can hold (>= what was asked), or 0 where the
   system cannot tell. */
size_t mproc__os_block_size(void *p);
int mproc__os_mutex_create(mproc__os_mutex **m);
void mproc__os_mutex_lock(mproc__os_mutex *m);
void mproc__os_mutex_unlock(mproc__os_mutex *m);
void mproc__os_mutex_destroy(mproc__os_mutex *m);
/* Condition variable paired with an mproc__os_mutex. wait returns 0 when
   signalled (or spuriously), MPROC_ETIMEDOUT after timeout_ms. */
typedef struct mproc__os_cond mproc__os_cond;
int mproc__os_cond_create(mproc__os_cond **c);
int mproc__os_cond_wait(mproc__os_cond *c, mproc__os_mutex *m, int timeout_ms);
void mproc__os_cond_broadcast(mproc__os_cond *c);
void mproc__os_cond_destroy(mproc__os_cond *c);
/* A mutex usable before anything is initialised (registry, counters). */
void mproc__os_global_lock(void);
void mproc__os_global_unlock(void);

/* ---- synchronisation objects (sync.c) ------------------------------------ */
/* A sync block: MPROC__SYNC_BLOCK bytes of memory shared between processes
   that hold the atomic state words of one Lock, RLock, Semaphore, Event,
   Condition or Barrier (the algorithms are written once, in src/sync.c),
   plus whatever the backend needs to sleep and wake on those words. It has
   no name in any namespace: it reaches other processes only through its
   handles (the registry passes them to children), so nothing can outlive
   the processes using it. The last MPROC__SYNC_RESERVED bytes belong to the
   backend. */
#define MPROC__SYNC_BLOCK 4096
#define MPROC__SYNC_RESERVED 64
#define MPROC__SYNC_MAX_HANDLES 2
typedef struct mproc__os_sync mproc__os_sync;
/* A new zero-filled block. */
int mproc__os_sync_create(mproc__os_sync **b);
/* A block over handles valid in this process (e.g. inherited ones). The
   handles stay the caller's: the block maps them / keeps its own copies. */
int mproc__os_sync_open(const mproc__handle *h, size_t n, mproc__os_sync **b);
/* The handles that make up the block (at most MPROC__SYNC_MAX_HANDLES), for
   a registry entry; owned by the block. Returns how many. */
size_t mproc__os_sync_handles(const mproc__os_sync *b, mproc__handle *h);
void *mproc__os_sync_mem(const mproc__os_sync *b);
/* Unmaps and closes the block's own handles. */
void mproc__os_sync_free(mproc__os_sync *b);
/* Sleep while *word == expected, at most timeout_ms (MPROC_FOREVER: no
   limit). 0 when woken, when *word differs, or spuriously; MPROC_ETIMEDOUT.
   word lies inside b's memory. Callers always loop and re-check. */
int mproc__os_park(mproc__os_sync *b, uint32_t *word, uint32_t expected, int timeout_ms);
/* Wake up to n sleepers parked on word (UINT32_MAX: all). */
void mproc__os_unpark(mproc__os_sync *b, uint32_t *word, uint32_t n);
/* Run fn in the child after every fork() (refreshes cached pids); a no-op
   where there is no fork. Registers at most once per fn. */
void mproc__os_sync_atfork(void (*fn)(void));

/* ---- shared memory (shm.c) ------------------------------------------------ */
/* Segments for mproc_shm_*: names were validated by shm.c (1..30 characters
   of [A-Za-z0-9._-], without any leading '/'); the handle is mapped with
   mproc__os_map. Sizes are the whole object's, as created. */
#define MPROC__SHM_NAME_MAX 104 /* generated names included, with the NUL */
/* A user-named object: owner-only, exclusive (MPROC_EEXIST if it exists). */
int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h);
/* An object with a generated, unguessable name written to name[cap]: it can
   be opened by that name while this process lives and vanishes with the
   process, even when it is SIGKILLed. */
int mproc__os_shm_create_private(size_t size, char *name, size_t cap, mproc__handle *h);
/* Open either kind by name: MPROC_ENOENT if there is none. *size is the
   object's size as far as the OS knows it (may be rounded up to pages). */
int mproc__os_shm_open(const char *name, mproc__handle *h, size_t *size);
/* Remove the name (the memory lives on while mapped). For a private object
   created here, *h may be replaced by another handle to the same memory.
   MPROC_ENOTSUP where this process cannot remove it: a private name made
   by another process (its name is its creator's handle), and any name on
   Windows (a section's name goes with its last handle). */
int mproc__os_shm_unlink(const char *name, int created_here, mproc__handle *h);
/* Size of the object behind h as far as the OS knows it. */
int mproc__os_shm_size(mproc__handle h, size_t *size);
/* A duplicate of h owned by the caller (close-on-exec / not inheritable). */
int mproc__os_shm_dup(mproc__handle h, mproc__handle *out);

/* ---- conn links (pipe.c) -------------------------------------------------- */
/* The two ends of a conn share a ring in shared memory for their messages
   (conn.c); the link beside it carries no data. It carries wake-up tokens
   (one byte each) from one end to the other, and it tells an end when
   every holder of the other end has gone (closed it, exited or been
   killed), which the kernel knows and shared memory cannot.
   POSIX: a socketpair end. Windows: an overlapped duplex named-pipe handle
   plus the OVERLAPPED state of a timed read and of a readiness wait.
   A link owns its handle: free closes it. */
typedef struct mproc__os_link mproc__os_link;
int mproc__os_link_pair(mproc__os_link **a, mproc__os_link **b);
/* Wrap a handle received from another process (takes ownership, also on
   failure). */
int mproc__os_link_wrap(mproc__handle h, mproc__os_link **out);
/* A link of its own around a duplicate of h (h stays open). */
int mproc__os_link_dup(mproc__handle h, mproc__os_link **out);
mproc__handle mproc__os_link_handle(const mproc__os_link *l);
void mproc__os_link_free(mproc__os_link *l);
/* Send n (1..64) tokens to the other end without blocking and without
   SIGPIPE: 0 (a full channel drops them: it holds tokens enough), or
   MPROC_ECLOSED if the other end has gone. */
int mproc__os_link_ring(mproc__os_link *l, unsigned n);
/* Wait at most timeout_ms for a token and take one: 0 (woken: took one,
   or, on POSIX, saw one that another sleeper of the same end took first;
   callers look at their condition again either way), MPROC_ETIMEDOUT, or
   MPROC_ECLOSED when the other end has gone and no token is left. */
int mproc__os_link_sleep(mproc__os_link *l, int timeout_ms);
/* Without waiting: MPROC_ECLOSED if the other end has gone, else 0. */
int mproc__os_link_probe(mproc__os_link *l);
/* Readiness for mproc_wait: arm gives a handle for mproc__os_wait_any
   that becomes ready when a token arrives or the other end goes (POSIX:
   the descriptor; Windows: the event of a one-byte overlapped read).
   disarm ends the wait, taking at most one token: MPROC_ECLOSED if the
   other end has gone, else 0. */
int mproc__os_link_arm(mproc__os_link *l, mproc__handle *waitable);
int mproc__os_link_disarm(mproc__os_link *l);

/* Handing an OS handle to whichever process receives at the other end
   (conn.c's send_handle; the note travels in the ring after this call).
   POSIX: h goes with SCM_RIGHTS on one byte over the link (waiting for
   room in it; the byte, which also counts as a token, carries the note's
   tag). Windows: h is duplicated into a private handle of this process;
   the note names this process and that handle, and the receiver moves it
   into itself (DUPLICATE_CLOSE_SOURCE), so it reaches the process that
   really receives it. recv: POSIX: the descriptor of that tag (ones that
   came earlier without being asked for are closed), close-on-exec, waiting
   at most timeout_ms; Windows: the handle moved out of the sender, which
   must still be running. MPROC_ETIMEDOUT / MPROC_ECLOSED if it did not
   come, MPROC_EPROTO if the note names nothing. */
typedef struct mproc__os_handle_note {
    uint64_t pid, value;
} mproc__os_handle_note;
int mproc__os_link_send_handle(mproc__os_link *l, mproc__handle h, mproc__os_handle_note *note);
int mproc__os_link_recv_handle(mproc__os_link *l, const mproc__os_handle_note *note,
                               mproc__handle *out, int timeout_ms);

/* Wait until at least one of n handles is ready (POSIX: readable or hung
   up; Windows: signalled), with no limit on n. Sets ready[i] to 0/1 and
   returns how many are ready, or MPROC_ETIMEDOUT. */
int mproc__os_wait_any(const mproc__handle *h, size_t n, unsigned char *ready,
                       int timeout_ms);

/* mproc_wait's MPROC_WAIT_OS: the caller's own descriptor (obj points at
   an int) or HANDLE (obj points at a HANDLE); MPROC__NO_HANDLE if it
   cannot be one (negative fd, NULL or INVALID_HANDLE_VALUE). */
mproc__handle mproc__os_user_handle(const void *obj);

/* A doorbell for the queue, counting wake tokens: ring adds n tokens;
   a waiter waits for rd with mproc__os_wait_any and, when it was reported
   ready, takes one token with bell_take. POSIX: a non-blocking socketpair
   like a conn link's (a token is a byte); Windows: a semaphore (rd == wr,
   one handle; the wait itself takes the token, bell_take does nothing). Waits that end without
   their token leave it behind: a later waiter wakes once for nothing and
   looks again, which is harmless. */
int mproc__os_bell_create(mproc__handle *rd, mproc__handle *wr);
void mproc__os_bell_ring(mproc__handle wr, unsigned n);
void mproc__os_bell_take(mproc__handle rd);
/* Yield the CPU to another runnable thread (spin-then-sleep waits). */
void mproc__os_yield(void);
/* Asymmetric fences (Linux: membarrier's global expedited commands). A
   process that has joined may order its side of a handshake with compiler
   barriers only, provided the other side calls remote_fence between its
   store and its load: a full barrier on every CPU that runs a process that
   joined. join: 0 once this process has joined (a forked child joins
   again); MPROC_ENOTSUP where there is no such fence (macOS, Windows, the
   portable build, a kernel or sandbox without it). remote_fence: 0, or
   MPROC_ENOTSUP / an error, when the caller must not rely on it. */
int mproc__os_remote_fence_join(void);
int mproc__os_remote_fence(void);

/* ---- pool (pool_worker.c) ------------------------------------------------ */
/* In a pool worker: Ctrl-C is for the parent (Python's workers ignore
   SIGINT too); the parent decides what happens to its workers. */
void mproc__os_ignore_interrupts(void);
/* The calling process's resident memory in bytes (Linux: /proc/self/statm;
   macOS: task_info; Windows: the working set; elsewhere the peak from
   getrusage): 0, or an error. */
int mproc__os_rss_bytes(uint64_t *bytes);

#endif
