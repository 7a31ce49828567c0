/* POSIX processes: spawn self (posix_spawn, or fork+exec on the portable
   path), fork, wait without a SIGCHLD handler (pidfd on Linux, a sentinel
   pipe elsewhere), signals. */
#include "../internal.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#  include <sys/syscall.h>
#endif

extern char **environ;

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX) && defined(SYS_pidfd_open)
#  define USE_PIDFD 1
#endif
/* posix_spawn where the child can be made to close every descriptor not
   listed: macOS (POSIX_SPAWN_CLOEXEC_DEFAULT) and glibc 2.34+
   (addclosefrom_np). The portable build takes this path too, as macOS
   does; fork + exec is left for the other systems. */
#if defined(__APPLE__) || (defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34))
#  define USE_POSIX_SPAWN 1
#endif

struct mproc__os_proc {
    pid_t pid;
    int wait_fd;    /* pidfd, the sentinel pipe's read end, a served child's
                       report pipe, or -1 */
    unsigned served; /* forked by forkserver number `served` (0: not): it
                        reaps and reports */
    int reaped;
    int status_lost; /* served, and the server died before reporting */
    int exitcode;
    int pid_pending; /* served with pid_later: the pid is still on wait_fd */
};

int mproc__os_has_fork(void) { return 1; }

/* ---- reaping processes nobody waits for any more ------------------------- */
/* The list has a lock of its own, taken last: the forkserver's client
   adopts its dead server with client_mu held, and kill_daemons_at_exit
   holds the global lock on its way to client_mu. A fork copy of the
   program gets it unlocked. */
static pid_t orphans[256];
static size_t n_orphans;
static pthread_mutex_t orphan_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t orphan_once = PTHREAD_ONCE_INIT;

static void orphan_unlock_in_child(void) { pthread_mutex_init(&orphan_mu, NULL); }
static void orphan_register(void) { pthread_atfork(NULL, NULL, orphan_unlock_in_child); }

static void reap_orphans_locked(void)
{
    size_t i = 0;
    while (i < n_orphans) {
        pid_t r;
        do r = waitpid(orphans[i], NULL, WNOHANG); while (r < 0 && errno == EINTR);
        if (r == 0) i++;
        else orphans[i] = orphans[--n_orphans]; /* reaped, or not ours any more */
    }
}

void mproc__posix_adopt_orphan(pid_t pid)
{
    pthread_once(&orphan_once, orphan_register);
    pthread_mutex_lock(&orphan_mu);
    reap_orphans_locked();
    if (n_orphans < sizeof orphans / sizeof orphans[0]) orphans[n_orphans++] = pid;
    pthread_mutex_unlock(&orphan_mu);
}

/* ---- the child's environment and program --------------------------------- */
static int exe_path(const char *exe, char *buf, size_t cap)
{
    if (!exe) return mproc__posix_self_exe(buf, cap);
    if (strlen(exe) >= cap) return MPROC_EINVAL;
    strcpy(buf, exe);
    return 0;
}

/* environ without any MPROC_CHILD, plus our own entry and extra (or NULL). */
static char **child_environment(char *own_entry, char *extra)
{
    size_t n = 0, k = 0, name_len = strlen(MPROC__CHILD_ENV);
    while (environ[n]) n++;
    char **env = malloc((n + 3) * sizeof *env);
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], MPROC__CHILD_ENV, name_len) == 0 && environ[i][name_len] == '='))
            env[k++] = environ[i];
    env[k++] = own_entry;
    if (extra) env[k++] = extra;
    env[k] = NULL;
    return env;
}

void mproc__posix_plan_fds(mproc__posix_fd_plan *plan, int boot_read, int status_write, int watch,
                           const mproc__handle *pass, size_t npass)
{
    plan->n = 0;
    plan->null_stdin = 0;
    plan->src[plan->n++] = boot_read;
    plan->src[plan->n++] = status_write;
    plan->src[plan->n++] = watch; /* -1 when nothing needs it */
    for (size_t i = 0; i < npass; i++) plan->src[plan->n++] = (int)pass[i];
    plan->high = MPROC__POSIX_FD_BASE + plan->n;
    for (int i = 0; i < plan->n; i++)
        if (plan->src[i] >= plan->high) plan->high = plan->src[i] + 1;
}

static void close_from(int first)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34) || defined(__FreeBSD__)
    closefrom(first);
#else
    for (int fd = first; fd < 65536; fd++) close(fd);
#endif
}

/* Two rounds of dup2 (sources to a staging area, then down to 3, 4, ...)
   so no source is overwritten before it is copied. keep_fd (or -1)
   survives too, moved just above the staging area: its new number is
   returned (0 without one). */
int mproc__posix_apply_plan(const mproc__posix_fd_plan *plan, int keep_fd)
{
    const int base = MPROC__POSIX_FD_BASE;
    int high = keep_fd >= plan->high ? keep_fd + 1 : plan->high, kept = 0;
    for (int i = 0; i < plan->n; i++)
        if (plan->src[i] >= 0 && dup2(plan->src[i], high + i) < 0) return -1;
    if (keep_fd >= 0) {
        if (dup2(keep_fd, high + plan->n) < 0) return -1;
        kept = high + plan->n;
        fcntl(kept, F_SETFD, FD_CLOEXEC);
    }
    for (int i = 0; i < plan->n; i++) {
        if (plan->src[i] < 0) close(base + i);
        else if (dup2(high + i, base + i) < 0) return -1;
    }
    if (plan->null_stdin) { /* after the moves: fd 0 may have been a source */
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || (null_fd != 0 && dup2(null_fd, 0) < 0)) return -1;
        if (null_fd != 0) close(null_fd);
    }
    for (int fd = base + plan->n; fd < high + plan->n; fd++) close(fd);
    close_from(high + plan->n + (keep_fd >= 0));
    return kept;
}

#if defined(USE_POSIX_SPAWN)
/* The plan as file actions; then close the rest. */
static int spawn_with_posix_spawn(const char *path, char **argv, char **env,
                                  const mproc__posix_fd_plan *plan, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return mproc__fail_os(rc);
    if ((rc = posix_spawnattr_init(&attr))) {
        posix_spawn_file_actions_destroy(&fa);
        return mproc__fail_os(rc);
    }
    short flags = POSIX_SPAWN_SETSIGMASK;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    for (int i = 0; i < plan->n && !rc; i++)
        if (plan->src[i] >= 0) rc = posix_spawn_file_actions_adddup2(&fa, plan->src[i], plan->high + i);
    for (int i = 0; i < plan->n && !rc; i++) {
        if (plan->src[i] >= 0)
            rc = posix_spawn_file_actions_adddup2(&fa, plan->high + i, MPROC__POSIX_FD_BASE + i);
#if !defined(__APPLE__) /* there, POSIX_SPAWN_CLOEXEC_DEFAULT empties it */
        else /* an empty slot: an inheritable descriptor of ours must not sit there */
            rc = posix_spawn_file_actions_addclose(&fa, MPROC__POSIX_FD_BASE + i);
#endif
    }
    if (!rc && plan->null_stdin) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
#if defined(__APPLE__)
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
    for (int i = 0; i < plan->n && !rc; i++)
        if (plan->src[i] >= 0)
            rc = posix_spawn_file_actions_addinherit_np(&fa, MPROC__POSIX_FD_BASE + i);
#else
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, MPROC__POSIX_FD_BASE + plan->n);
#endif
    if (!rc) rc = posix_spawnattr_setflags(&attr, flags);
    if (!rc) rc = posix_spawn(pid, path, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc ? mproc__fail_os(rc) : 0;
}
#else
/* In the forked child: only async-signal-safe calls from here on. */
static void exec_child(const char *path, char **argv, char **env, const mproc__posix_fd_plan *plan,
                       int err_fd)
{
    sigset_t none;
    sigemptyset(&none);
    if ((err_fd = mproc__posix_apply_plan(plan, err_fd)) < 0) goto fail;
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, env);
fail:;
    int e = errno;
    while (err_fd >= 0 && write(err_fd, &e, sizeof e) < 0 && errno == EINTR) {}
    _exit(127);
}

/* fork+exec with an error pipe: EOF means exec succeeded. */
static int spawn_with_fork(const char *path, char **argv, char **env,
                           const mproc__posix_fd_plan *plan, pid_t *pid)
{
    mproc__handle er, ew;
    int rc = mproc__os_pipe(&er, &ew), child_errno = 0;
    if (rc) return rc;
    pid_t child = fork();
    if (child == 0) exec_child(path, argv, env, plan, (int)ew);
    int fork_errno = errno;
    mproc__os_close(ew);
    if (child < 0) {
        mproc__os_close(er);
        return mproc__fail_os(fork_errno);
    }
    size_t got = 0;
    mproc__os_read_all(er, &child_errno, sizeof child_errno, &got, MPROC_FOREVER);
    mproc__os_close(er);
    if (got == sizeof child_errno) {
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
        return mproc__fail_os(child_errno);
    }
    *pid = child;
    return 0;
}
#endif

int mproc__posix_spawn_image(const char *exe, const char *env_value, char *extra_env,
                             const mproc__posix_fd_plan *plan, pid_t *pid)
{
    char path[PATH_MAX], env_entry[96];
    char *argv[] = {path, "--mproc-child", NULL};
    int rc = exe_path(exe, path, sizeof path);
    if (rc) return rc;
    snprintf(env_entry, sizeof env_entry, "%s=%s", MPROC__CHILD_ENV, env_value);
    char **env = child_environment(env_entry, extra_env);
    if (!env) return MPROC_ENOMEM;
#if defined(USE_POSIX_SPAWN)
    rc = spawn_with_posix_spawn(path, argv, env, plan, pid);
#else
    rc = spawn_with_fork(path, argv, env, plan, pid);
#endif
    free(env);
    return rc;
}

/* ---- waiting -------------------------------------------------------------- */
static int open_wait_fd(pid_t pid, int sentinel_read)
{
#if defined(USE_PIDFD)
    (void)sentinel_read;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd; /* -1 (old kernel): waits fall back to polling waitpid */
#else
    (void)pid;
    return sentinel_read;
#endif
}

static int make_sentinel(int *r, int *w)
{
#if defined(USE_PIDFD)
    *r = *w = -1;
    return 0;
#else
    mproc__handle hr, hw;
    int rc = mproc__os_pipe(&hr, &hw);
    *r = (int)hr;
    *w = (int)hw;
    return rc;
#endif
}

static mproc__os_proc *new_proc(pid_t pid, int wait_fd)
{
    mproc__os_proc *p = mproc__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->pid = pid;
    p->wait_fd = wait_fd;
    return p;
}

/* One lock for every pending pid: two threads must not both read a
   child's report pipe (a pid() beside a join), and the server answers at
   once, so nobody holds it long. A fork copy of the program gets it
   unlocked: the thread that may have held it at the fork is not there. */
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pending_once = PTHREAD_ONCE_INIT;

static void pending_unlock_in_child(void) { pthread_mutex_init(&pending_mu, NULL); }
static void pending_register(void) { pthread_atfork(NULL, NULL, pending_unlock_in_child); }

mproc__os_proc *mproc__posix_served_proc(pid_t pid, int report_fd, unsigned server)
{
    mproc__os_proc *p = new_proc(pid, report_fd);
    if (p) {
        p->served = server;
        p->pid_pending = pid == 0;
        if (p->pid_pending) pthread_once(&pending_once, pending_register);
    }
    return p;
}

/* Reads a served child's pid once the server has answered (within
   timeout_ms: MPROC_ETIMEDOUT). A start the server could not carry out
   leaves the child ended with its status lost, as if the server had died. */
static int resolve_pid(mproc__os_proc *p, int timeout_ms)
{
    pid_t pid = 0;
    int rc = 0;
    pthread_mutex_lock(&pending_mu);
    if (p->pid_pending) {
        rc = mproc__posix_served_pid(p->wait_fd, p->served, timeout_ms, &pid);
        if (rc != MPROC_ETIMEDOUT) {
            p->pid_pending = 0;
            p->pid = pid;
            if (rc) {
                p->reaped = p->status_lost = 1;
                p->exitcode = -SIGKILL;
            }
            rc = 0;
        }
    }
    pthread_mutex_unlock(&pending_mu);
    return rc;
}

/* MPROC_CHILD's numbers are written and read without the printf and
   scanf families: a child forked by the forkserver would otherwise fault
   in their code (which the server never ran) just for three numbers. */
static char *put_number(char *p, char *end, int v)
{
    char digits[12];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) > 0 && n < (int)sizeof digits);
    while (n && p < end) *p++ = digits[--n];
    return p;
}

/* A number of at most six digits at *s: its value, *s moved past it; -1
   without one. */
static int get_number(const char **s)
{
    int v = 0, n = 0;
    for (; **s >= '0' && **s <= '9' && n < 6; (*s)++, n++) v = v * 10 + (**s - '0');
    return n ? v : -1;
}

void mproc__posix_channels_env(const mproc__posix_fd_plan *plan, char *buf, size_t cap)
{
    const int numbers[3] = {MPROC__POSIX_FD_BASE, MPROC__POSIX_FD_BASE + 1, plan->n};
    char *p = buf, *end = buf + cap - 1;
    for (int i = 0; i < 3; i++) {
        if (i && p < end) *p++ = ',';
        p = put_number(p, end, numbers[i]);
    }
    *p = 0;
}

void mproc__posix_child_layout(const mproc__os_spawn_req *req, int watch,
                                mproc__posix_fd_plan *plan)
{
    mproc__posix_plan_fds(plan, (int)req->boot_read, (int)req->status_write, watch, req->pass,
                          req->npass);
    plan->null_stdin = !req->keep_stdin;
    for (size_t i = 0; i < req->npass; i++)
        req->pass_in_child[i] = MPROC__POSIX_FD_BASE + 3 + (int)i;
}

int mproc__os_spawn(const mproc__os_spawn_req *req, mproc__os_proc **out)
{
    char env_value[64];
    mproc__posix_fd_plan plan;
    int sentinel_r, sentinel_w;
    pid_t pid = -1;
    int rc = req->npass > MPROC__MAX_PASS ? MPROC_EINVAL : 0;
    if (!rc) rc = make_sentinel(&sentinel_r, &sentinel_w);
    if (rc) {
        mproc__os_close(req->boot_read);
        mproc__os_close(req->status_write);
        return rc;
    }
    mproc__posix_child_layout(req, sentinel_w, &plan);
    mproc__posix_channels_env(&plan, env_value, sizeof env_value);
    rc = mproc__posix_spawn_image(req->exe, env_value, NULL, &plan, &pid);
    mproc__os_close(req->boot_read);
    mproc__os_close(req->status_write);
    mproc__os_close(sentinel_w);
    if (!rc && !(*out = new_proc(pid, open_wait_fd(pid, sentinel_r)))) {
        kill(pid, SIGKILL);
        mproc__posix_adopt_orphan(pid);
        rc = MPROC_ENOMEM;
    }
    if (rc) mproc__os_close(sentinel_r);
    return rc;
}

int mproc__os_child_channels(const char *env_value, mproc__handle *boot_read,
                             mproc__handle *status_write)
{
    int numbers[3];
    char served[64];
    const size_t skip = strlen(MPROC__POSIX_SERVER_ENV ",");
    /* The forkserver's image: it serves until the program has gone, and
       returns here only in each child it forks, laid out as if spawned. */
    if (strncmp(env_value, MPROC__POSIX_SERVER_ENV ",", skip) == 0) {
        const char *s = env_value + skip;
        int ctl = get_number(&s), bind_now = strcmp(s, MPROC__POSIX_SERVER_BIND_NOW) == 0;
        if (ctl != MPROC__POSIX_FD_BASE || (*s && !bind_now)) return MPROC_EPROTO;
        /* LD_BIND_NOW was the server's own: its children get the
           program's environment. */
        if (bind_now) unsetenv("LD_BIND_NOW");
        int rc = mproc__posix_forkserver_main(ctl, served, sizeof served);
        if (rc) return rc;
        env_value = served;
    }
    for (int i = 0; i < 3; i++) /* "3,4,N" */
        if ((numbers[i] = get_number(&env_value)) < 0 || *env_value++ != (i < 2 ? ',' : 0))
            return MPROC_EPROTO;
    int r = numbers[0], w = numbers[1], n = numbers[2];
    if (r != MPROC__POSIX_FD_BASE || w != MPROC__POSIX_FD_BASE + 1 || n < 3 || n > MPROC__MAX_PASS + 3)
        return MPROC_EPROTO;
    /* Everything the parent handed over stays private to this process. */
    for (int fd = MPROC__POSIX_FD_BASE; fd < MPROC__POSIX_FD_BASE + n; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 && (fd == r || fd == w)) return mproc__fail_os_last();
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    *boot_read = r;
    *status_write = w;
    return 0;
}

/* In a forked child: stdin becomes /dev/null, as a spawned child's does. */
static void null_stdin_or_exit(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (fd != 0 && dup2(fd, 0) < 0)) {
        fprintf(stderr, "mproc: a forked child could not open /dev/null as its stdin\n");
        _exit(MPROC_EXIT_BOOTSTRAP);
    }
    if (fd != 0) close(fd); /* dup2 left 0 without close-on-exec */
}

int mproc__os_fork(mproc__os_proc **out, int *is_child, int null_stdin)
{
    int sentinel_r, sentinel_w;
    int rc = make_sentinel(&sentinel_r, &sentinel_w);
    if (rc) return rc;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        mproc__os_close(sentinel_r);
        mproc__os_close(sentinel_w);
        return mproc__fail_os(err);
    }
    if (pid == 0) {
        mproc__os_close(sentinel_r); /* the write end stays open until exit */
        if (null_stdin) null_stdin_or_exit();
        *is_child = 1;
        *out = NULL;
        return 0;
    }
    mproc__os_close(sentinel_w);
    *is_child = 0;
    if (!(*out = new_proc(pid, open_wait_fd(pid, sentinel_r)))) {
        kill(pid, SIGKILL);
        mproc__posix_adopt_orphan(pid);
        mproc__os_close(sentinel_r);
        return MPROC_ENOMEM;
    }
    return 0;
}

void mproc__os_exit_now(int code) { _exit(code); }

int64_t mproc__os_proc_pid(mproc__os_proc *p)
{
    if (!p) return 0;
    resolve_pid(p, MPROC_FOREVER);
    return (int64_t)p->pid;
}

int mproc__posix_decode_status(int status)
{
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1;
}

/* Reaping a child and signalling it exclude each other: once waitpid has
   taken a child its pid may be given to another process, which a signal
   sent a moment later by another thread (a pool killing a worker while
   its serving thread polls it) would reach. Both steps are short: waitpid
   with WNOHANG, kill, a request to the server. Taken after the global
   lock where both are held (kill_daemons_at_exit). A fork copy of the
   program gets it unlocked, as pending_mu. */
static pthread_mutex_t reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reap_once = PTHREAD_ONCE_INIT;

static void reap_unlock_in_child(void) { pthread_mutex_init(&reap_mu, NULL); }
static void reap_register(void) { pthread_atfork(NULL, NULL, reap_unlock_in_child); }

static void reap_lock(void)
{
    pthread_once(&reap_once, reap_register);
    pthread_mutex_lock(&reap_mu);
}

static void reap_unlock(void) { pthread_mutex_unlock(&reap_mu); }

/* 1 reaped, 0 still running, or an error. */
static int try_reap(mproc__os_proc *p)
{
    int status, rc = 1;
    pid_t r;
    reap_lock();
    do r = waitpid(p->pid, &status, WNOHANG); while (r < 0 && errno == EINTR);
    if (r < 0) {
        rc = mproc__fail_os_last();
    } else if (r == 0) {
        rc = 0;
    } else {
        p->reaped = 1;
        p->exitcode = mproc__posix_decode_status(status);
    }
    reap_unlock();
    return rc;
}

/* When the wait handle cannot tell (no pidfd; a forked grandchild holding
   the sentinel): poll waitpid with a growing sleep, at most 10 ms. */
static int poll_reap(mproc__os_proc *p, uint64_t deadline, int timeout_ms)
{
    int nap = 1;
    for (;;) {
        int rc = try_reap(p);
        if (rc) return rc < 0 ? rc : 0;
        int left = mproc__remaining_ms(deadline, timeout_ms);
        if (left == 0) return MPROC_ETIMEDOUT;
        mproc__os_sleep_ms(left < 0 || left > nap ? nap : left);
        if (nap < 10) nap *= 2;
    }
}

/* The server reaps a served child and reports its status. */
static int wait_served(mproc__os_proc *p, int timeout_ms)
{
    int code = 0;
    int rc = mproc__posix_served_wait(p->wait_fd, timeout_ms, &code);
    if (rc && rc != MPROC_ECHILD) return rc;
    reap_lock();
    p->exitcode = code;
    p->reaped = 1;
    p->status_lost = rc == MPROC_ECHILD;
    reap_unlock();
    return 0;
}

int mproc__os_proc_wait(mproc__os_proc *p, int timeout_ms, int *exitcode)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = resolve_pid(p, timeout_ms);
    if (rc) return rc;
    if (!p->reaped && p->served && (rc = wait_served(p, mproc__remaining_ms(deadline, timeout_ms))))
        return rc;
    if (!p->reaped && p->wait_fd >= 0) {
        rc = mproc__os_wait_readable(p->wait_fd, timeout_ms);
        if (rc < 0) return rc;
        if (rc == 0) return MPROC_ETIMEDOUT;
    }
    if (!p->reaped && (rc = poll_reap(p, deadline, timeout_ms))) return rc;
    *exitcode = p->exitcode;
    return p->status_lost ? MPROC_ECHILD : 0;
}

/* Sends sig to a child not reaped yet (reap_mu held, so that it cannot be
   reaped meanwhile and its pid cannot have been reused). Only the parent
   knows when the pid may be reused: for a served child that is the
   server, which relays SIGTERM and SIGKILL. (SIGINT still goes to a
   served child's pid directly: the server may have reaped it before its
   report reached us.) */
static int signal_unreaped(mproc__os_proc *p, int sig)
{
    int rc = 0;
    resolve_pid(p, MPROC_FOREVER);
    reap_lock();
    if (!p->reaped) {
        if (p->served && sig != SIGINT)
            rc = mproc__posix_served_signal(p->pid, p->served, sig == SIGKILL);
        else if (kill(p->pid, sig) != 0 && errno != ESRCH)
            rc = mproc__fail_os_last();
    }
    reap_unlock();
    return rc;
}

int mproc__os_proc_signal(mproc__os_proc *p, int hard)
{
    return signal_unreaped(p, hard ? SIGKILL : SIGTERM);
}

int mproc__os_proc_interrupt(mproc__os_proc *p) { return signal_unreaped(p, SIGINT); }

mproc__handle mproc__os_proc_wait_handle(mproc__os_proc *p)
{
    if (!p) return MPROC__NO_HANDLE;
    /* Read past the pid: the pipe is then readable only at the end. */
    resolve_pid(p, MPROC_FOREVER);
    reap_lock(); /* another thread may be reaping it */
    int reaped = p->reaped;
    reap_unlock();
    return reaped ? MPROC__NO_HANDLE : p->wait_fd;
}

void mproc__os_proc_free(mproc__os_proc *p, int kill_it)
{
    if (!p) return;
    if (!p->reaped && kill_it) {
        int code;
        mproc__os_proc_signal(p, 1);
        mproc__os_proc_wait(p, MPROC_FOREVER, &code);
    } else if (!p->reaped && !p->served) {
        mproc__posix_adopt_orphan(p->pid); /* a served one is the server's to reap */
    }
    if (p->wait_fd >= 0) close(p->wait_fd);
    free(p);
}
