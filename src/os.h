/*
 * The OS seam: every capability mproc needs from the operating system, on
 * one page. Implemented twice, in src/posix/ and src/win32/; the portable
 * core (src/*.c) calls only these and never asks which OS it runs on.
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
uint64_t mproc__os_thread_id(void);        /* unique within the process */
int mproc__os_random(void *buf, size_t len); /* OS CSPRNG */
/* 1 if a process with this pid exists, 0 if not. */
int mproc__os_pid_alive(int64_t pid);

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
} mproc__os_spawn_req;

/* Start the program again in child mode: the child gets an environment
   variable MPROC__CHILD_ENV naming its two channel handles (decoded by
   mproc__os_child_channels) and the listed handles, and no other handle
   of the parent's beyond stdin/stdout/stderr. */
int mproc__os_spawn(const mproc__os_spawn_req *req, mproc__os_proc **out);
/* In a spawned child: decode MPROC__CHILD_ENV's value into the two channel
   handles (on Windows this duplicates them out of the parent). */
int mproc__os_child_channels(const char *env_value, mproc__handle *boot_read,
                             mproc__handle *status_write);
/* fork(): *is_child is set to 1 in the child (out is then NULL).
   MPROC_ENOTSUP on Windows. */
int mproc__os_fork(mproc__os_proc **out, int *is_child);
/* Terminate the calling process at once with code, skipping atexit. */
void mproc__os_exit_now(int code);
int64_t mproc__os_proc_pid(const mproc__os_proc *p);
/* Wait up to timeout_ms for the process to end: 0 with *exitcode set
   (>= 0 exit status, -N signal N), or MPROC_ETIMEDOUT. Reaps it. Calling
   again after it ended returns the same code. */
int mproc__os_proc_wait(mproc__os_proc *p, int timeout_ms, int *exitcode);
/* hard 0: SIGTERM (Windows: TerminateProcess, exit code reads as -15);
   hard 1: SIGKILL (-9). 0 if the process has already ended. */
int mproc__os_proc_signal(mproc__os_proc *p, int hard);
/* A handle that becomes readable/signalled when the process ends (pidfd,
   sentinel pipe, process HANDLE), for mproc_wait; owned by p. */
mproc__handle mproc__os_proc_wait_handle(const mproc__os_proc *p);
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
int mproc__os_mutex_create(mproc__os_mutex **m);
void mproc__os_mutex_lock(mproc__os_mutex *m);
void mproc__os_mutex_unlock(mproc__os_mutex *m);
void mproc__os_mutex_destroy(mproc__os_mutex *m);
/* A mutex usable before anything is initialised (registry, counters). */
void mproc__os_global_lock(void);
void mproc__os_global_unlock(void);

/* ---- synchronisation objects (sync.c) ------------------------------------ */
/* (added by the synchronisation work) */

/* ---- shared memory (shm.c) ------------------------------------------------ */
/* (added by the synchronisation work) */

/* ---- message channels (pipe.c) ------------------------------------------- */
/* (added by the pipes-and-queues work) */

#endif
