/* Helpers shared by the POSIX backend's files (not part of the seam). */
#ifndef MPROC_POSIX_H
#define MPROC_POSIX_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "../os.h"

/* Path of this program's executable: resolved once from /proc/self/exe
   (or _NSGetExecutablePath). Under valgrind, which virtualises the link
   but not an exec of it, this names the real program. */
int mproc__posix_self_exe(char *buf, size_t cap);

/* The CLOCK_MONOTONIC time timeout_ms (>= 0) from now, as futex waits and
   monotonic condition variables take it. */
void mproc__posix_deadline_ts(int timeout_ms, struct timespec *ts);

/* ---- processes (spawn.c, forkserver.c) ---------------------------------- */
/* First descriptor number a child's channels and passed handles take. */
#define MPROC__POSIX_FD_BASE 3

/* The descriptors a child receives, in order: they become 3, 4, ...
   (boot_read, status_write, a watch descriptor or -1, the passed ones). */
typedef struct mproc__posix_fd_plan {
    int src[MPROC__MAX_PASS + 3];
    int n;
    int high; /* staging area above every source and target */
    int null_stdin; /* stdin becomes /dev/null, as Python's children get (0 from plan_fds) */
} mproc__posix_fd_plan;

void mproc__posix_plan_fds(mproc__posix_fd_plan *plan, int boot_read, int status_write, int watch,
                           const mproc__handle *pass, size_t npass);
/* In a child (after fork): moves the plan's descriptors to 3, 4, ... and
   closes every other one above stderr. Async-signal-safe. 0 or -1. */
int mproc__posix_apply_plan(const mproc__posix_fd_plan *plan, int keep_fd);
/* Starts this program (or exe) afresh with MPROC_CHILD=env_value (and the
   "NAME=value" extra_env, or NULL) and the plan's descriptors; the caller
   still owns the plan's sources. */
int mproc__posix_spawn_image(const char *exe, const char *env_value, char *extra_env,
                             const mproc__posix_fd_plan *plan, pid_t *pid);
/* The child layout of a spawn request (watch: the descriptor in slot 5,
   or -1); fills req->pass_in_child. */
void mproc__posix_child_layout(const mproc__os_spawn_req *req, int watch,
                                mproc__posix_fd_plan *plan);
/* The value of MPROC_CHILD for a child laid out by plan ("3,4,N"). */
void mproc__posix_channels_env(const mproc__posix_fd_plan *plan, char *buf, size_t cap);
/* A wait status as an exit code: >= 0 exit status, -N signal N. */
int mproc__posix_decode_status(int status);
/* Hands a child nobody waits for any more to the reaper. */
void mproc__posix_adopt_orphan(pid_t pid);
/* A process object for a child that the forkserver forked: report_fd
   carries its exit status (and first its pid, if pid is 0: not read yet);
   server: which server (1, 2, ...) forked it. */
mproc__os_proc *mproc__posix_served_proc(pid_t pid, int report_fd, unsigned server);

/* ---- the forkserver (forkserver.c) ---------------------------------------- */
/* The value of MPROC_CHILD that makes a started image the forkserver. */
#define MPROC__POSIX_SERVER_ENV "forkserver"
/* Its suffix (",3,bindnow") when the program started the server with an
   LD_BIND_NOW of its own that the server removes again. */
#define MPROC__POSIX_SERVER_BIND_NOW ",bindnow"
/* In the server's image: serves the program over ctl; returns only in the
   children it forks, with their channels in place (3, 4, ...) and the
   value of MPROC_CHILD a spawned child would have had. */
int mproc__posix_forkserver_main(int ctl, char *env_value, size_t cap);
/* Program side of a served child: the server's answer to its start
   request, the pid (0, *pid set), MPROC_ETIMEDOUT, or the start's failure
   (MPROC_ECHILD when the server died with it). */
int mproc__posix_served_pid(int report_fd, unsigned server, int timeout_ms, pid_t *pid);
/* Program side of a served child: its exit status (0, *code set; or
   MPROC_ECHILD when the server died first), within timeout_ms. */
int mproc__posix_served_wait(int report_fd, int timeout_ms, int *code);
/* Sends SIGTERM (hard 0) or SIGKILL to a child of that server that it has
   not reaped; 0 without effect if that server has gone. */
int mproc__posix_served_signal(pid_t pid, unsigned server, int hard);

#endif
