/* The forkserver start method (POSIX).

   On first use the program starts a server: this program again, spawned
   like any child (posix_spawn of a fresh image that enters
   mproc_main_guard), but with MPROC_CHILD=forkserver,3. Its guard never
   returns to main: it serves, single-threaded, so forking it is safe
   whatever threads the program has.

   The program reaches it only through a socketpair the server inherited
   at fd 3: no name in the filesystem or the abstract namespace that
   another user could connect to (Python's abstract-socket forkserver was
   CVE-2022-42919). Each start request carries, as SCM_RIGHTS, a report
   pipe and the child's channels exactly as a spawn request lists them.
   The server hands them to a spare (a child it forked ahead of requests,
   holding nothing but its own hand-off socket) or, with none left, forks;
   the child lays them out at 3, 4, ... and returns from the guard's
   channel lookup into the same bootstrap a spawned child runs. The server
   writes the child's pid into the report pipe (and, once requests pause,
   forks new spares), and later writes the exit status once it has reaped
   the child (the program is not the parent). The server is started with
   LD_BIND_NOW (removed from its environment again), so its children find
   every symbol bound.

   Faults: a child killed while the server lives is reaped and reported
   like any other end (-9); a spare killed is reaped and replaced (one
   killed just before its hand-off fails the send: the next spare, or a
   fork, takes the request). The server ends when the program has gone
   (end of stream on the socketpair, SIGKILL included): it kills the
   program's daemon children (a start request says whether the child is
   one, and a served daemon keeps no watch of its own), its spares leave
   at end of stream on their sockets, and it exits once they and its last
   child have been reaped. Should the server die first, its children die
   with it (PR_SET_PDEATHSIG on Linux: the server has one thread, so
   "parent thread" is the server; elsewhere a watch thread reading a pipe
   only the server holds), and so do its spares (the same signal, or end
   of stream on their sockets); the children's report pipes end without a
   status (join: MPROC_ECHILD), and the next start notices the broken
   socketpair and starts a new server. */
#include "../internal.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
#  include <sys/prctl.h>
#  define USE_PDEATHSIG 1
#endif
#if !defined(MSG_NOSIGNAL)
#  define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE on the socket instead */
#endif

/* ---- wire: requests (program -> server), reports (server -> program) ---- */
#define FS_MAGIC 0x7366706dU /* "mpfs" */
#define REQ_SIZE 24          /* magic, kind, pid (i64), arg, flags */
#define REP_SIZE 16          /* magic, kind, value (i64) */
#define MAX_FDS (MPROC__MAX_PASS + 3)
enum { REQ_START = 1, REQ_SIGNAL = 2 };  /* START arg: fd count; SIGNAL arg: hard */
#define REQ_DAEMON 0x1u              /* START flags: the child is a daemon */
enum { REP_PID = 1, REP_STATUS = 2, REP_FAILED = 3 }; /* FAILED value: errno */

static void encode(unsigned char *b, size_t len, uint32_t kind, int64_t value, uint32_t arg,
                   uint32_t flags)
{
    memset(b, 0, len);
    mproc__put_u32(b, FS_MAGIC);
    mproc__put_u32(b + 4, kind);
    mproc__put_u64(b + 8, (uint64_t)value);
    if (len > 16) {
        mproc__put_u32(b + 16, arg);
        mproc__put_u32(b + 20, flags);
    }
}

static int64_t record_value(const unsigned char *b) { return (int64_t)mproc__get_u64(b + 8); }

static int write_report(int fd, uint32_t kind, int64_t value)
{
    unsigned char rec[REP_SIZE];
    encode(rec, sizeof rec, kind, value, 0, 0);
    /* A program that closed its end no longer wants it: nothing to do. */
    int rc = mproc__os_write_all(fd, rec, sizeof rec);
    return rc == MPROC_ECLOSED ? 0 : rc;
}

/* Reads one report: 0 with *kind and *value, MPROC_ECLOSED at end of
   stream (the server has gone), MPROC_EPROTO if malformed. */
static int read_report(int fd, uint32_t *kind, int64_t *value)
{
    unsigned char rec[REP_SIZE];
    size_t got = 0;
    int rc = mproc__os_read_all(fd, rec, sizeof rec, &got, MPROC_FOREVER);
    if (rc == MPROC_ECLOSED && got == 0) return MPROC_ECLOSED;
    if (rc == MPROC_ECLOSED) return MPROC_EPROTO;
    if (rc) return rc;
    *kind = mproc__get_u32(rec + 4);
    *value = record_value(rec);
    if (mproc__get_u32(rec) != FS_MAGIC || *kind < REP_PID || *kind > REP_FAILED) return MPROC_EPROTO;
    return 0;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) close(fds[i]);
}

static int make_socketpair(int sv[2])
{
#if defined(SOCK_CLOEXEC)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return mproc__fail_os_last();
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return mproc__fail_os_last();
    if (fcntl(sv[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(sv[1], F_SETFD, FD_CLOEXEC) != 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return mproc__fail_os(err);
    }
#endif
#if defined(SO_NOSIGPIPE)
    int one = 1; /* macOS: no MSG_NOSIGNAL */
    if (setsockopt(sv[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return mproc__fail_os(err);
    }
#endif
    return 0;
}

/* Sends one whole record, the descriptors (if any) with its first byte.
   MPROC_ECLOSED if the receiver has gone. */
static int send_message(int sock, const unsigned char *rec, size_t len, const int *fds, size_t nfds)
{
    union { struct cmsghdr align; char buf[CMSG_SPACE(MAX_FDS * sizeof(int))]; } ctrl;
    size_t sent = 0;
    memset(&ctrl, 0, sizeof ctrl); /* the padding after the descriptors too */
    while (sent < len) {
        struct iovec iov = {(void *)(rec + sent), len - sent};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        if (nfds && !sent) {
            m.msg_control = ctrl.buf;
            m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return MPROC_ECLOSED;
            return mproc__fail_os_last();
        }
        sent += (size_t)n;
    }
    return 0;
}

/* ---- the server ------------------------------------------------------------ */
typedef struct served_child {
    pid_t pid;
    int report; /* write end of the program's report pipe */
    int daemon; /* ended by the server when the program has gone */
} served_child;

/* A spare: a child forked ahead of any request, waiting on its own
   socketpair for the next start request's descriptors. Handing one over
   takes the fork off the start's path (as Android's zygote keeps an
   unspecialised app process pool). The server forks the next spares
   once requests have paused for REFILL_QUIET_MS: a fork right after a
   hand-off takes a CPU from the child just started and from the program,
   which may be starting more (a pool). A request that finds no spare
   forks for itself. */
enum { SPARES = 2, REFILL_QUIET_MS = 1 };
typedef struct spare {
    pid_t pid;
    int hand; /* our end of its socketpair; -1 once closed (it is leaving) */
} spare;

static struct {
    int ctl;              /* the socketpair; -1 once the program has gone */
    int wake_r, wake_w;   /* SIGCHLD self-pipe */
    int alive_r, alive_w; /* without PR_SET_PDEATHSIG: children watch alive_r */
    served_child *kids;
    size_t nkids, cap;
    spare spares[SPARES]; /* not reaped yet, waiting or leaving */
    size_t nspares;
    int spare_failed; /* the last spare's fork failed: serve by forking */
    pid_t self;
    struct sigaction old_chld, old_int, old_pipe;
} srv = {.ctl = -1, .wake_r = -1, .wake_w = -1, .alive_r = -1, .alive_w = -1};

static void on_sigchld(int sig)
{
    int saved = errno;
    char b = 0;
    ssize_t n = write(srv.wake_w, &b, 1); /* full pipe: a wake is pending anyway */
    (void)n;
    (void)sig;
    errno = saved;
}

static int nonblocking_pipe(int *r, int *w)
{
    mproc__handle hr, hw;
    int rc = mproc__os_pipe(&hr, &hw);
    if (rc) return rc;
    *r = (int)hr;
    *w = (int)hw;
    if (fcntl(*r, F_SETFL, O_NONBLOCK) != 0 || fcntl(*w, F_SETFL, O_NONBLOCK) != 0)
        return mproc__fail_os_last();
    return 0;
}

static int server_setup(int ctl)
{
    struct sigaction sa;
    char exe[4096];
    srv.ctl = ctl;
    srv.self = getpid();
    /* Resolved once here, every child inherits it for its image check. */
    (void)mproc__posix_self_exe(exe, sizeof exe);
    int rc = nonblocking_pipe(&srv.wake_r, &srv.wake_w);
#if !defined(USE_PDEATHSIG)
    if (!rc) rc = nonblocking_pipe(&srv.alive_r, &srv.alive_w);
    if (!rc && fcntl(srv.alive_r, F_SETFL, 0) != 0) rc = mproc__fail_os_last();
#endif
    if (rc) return rc;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, &srv.old_chld) != 0) return mproc__fail_os_last();
    /* Ctrl-C goes to the whole process group: the program decides what
       happens to its children, not the server. A vanished program is seen
       as end of stream, never as SIGPIPE. */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, &srv.old_int) != 0 || sigaction(SIGPIPE, &sa, &srv.old_pipe) != 0)
        return mproc__fail_os_last();
    return 0;
}

/* A reaped pid that was a spare: forgotten (one killed from outside is
   simply replaced). 1 if it was one. */
static int forget_spare(pid_t pid)
{
    for (size_t i = 0; i < srv.nspares; i++)
        if (srv.spares[i].pid == pid) {
            if (srv.spares[i].hand >= 0) close(srv.spares[i].hand);
            srv.spares[i] = srv.spares[--srv.nspares];
            return 1;
        }
    return 0;
}

static void reap_children(void)
{
    char drain[64];
    while (read(srv.wake_r, drain, sizeof drain) > 0) {}
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) return;
        if (forget_spare(pid)) continue;
        for (size_t i = 0; i < srv.nkids; i++)
            if (srv.kids[i].pid == pid) {
                write_report(srv.kids[i].report, REP_STATUS, mproc__posix_decode_status(status));
                close(srv.kids[i].report);
                srv.kids[i] = srv.kids[--srv.nkids];
                break;
            }
    }
}

/* Receives one whole request and the descriptors sent with it from sock
   (the program's socketpair, or a spare's hand-off socket). 1 at end of
   stream (the sender has gone), 0, or -1 for a malformed request. */
static int recv_request(int sock, unsigned char *rec, int *fds, size_t *nfds)
{
    size_t got = 0;
    int bad = 0;
    *nfds = 0;
    while (got < REQ_SIZE) {
        union { struct cmsghdr align; char buf[CMSG_SPACE(MAX_FDS * sizeof(int))]; } ctrl;
        struct iovec iov = {rec + got, REQ_SIZE - got};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl.buf;
        m.msg_controllen = sizeof ctrl.buf;
        ssize_t n = recvmsg(sock, &m, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close_all(fds, *nfds);
            return 1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (*nfds < MAX_FDS) {
                    fds[(*nfds)++] = fd;
                } else {
                    close(fd);
                    bad = 1;
                }
            }
        }
        if (m.msg_flags & MSG_CTRUNC) bad = 1;
        got += (size_t)n;
    }
    return bad ? -1 : 0;
}

/* Portable path: a child ends when the server does (the only holder of
   the pipe's write end), killed as PR_SET_PDEATHSIG would kill it. */
#if !defined(USE_PDEATHSIG)
static void *watch_server(void *arg)
{
    char b;
    int fd = (int)(intptr_t)arg;
    while (read(fd, &b, 1) != 0 && (errno == EINTR || errno == EAGAIN)) {}
    raise(SIGKILL);
    return NULL;
}
#endif

/* In a new child (a spare or one forked for a request): it dies with the
   server; it forgets the server's bookkeeping. */
static int leave_server(void)
{
#if defined(USE_PDEATHSIG)
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return mproc__fail_os_last();
    if (getppid() != srv.self) raise(SIGKILL); /* the server died before prctl */
#endif
    free(srv.kids);
    srv.kids = NULL;
    srv.nkids = srv.cap = srv.nspares = 0;
    return 0;
}

/* In a child given a request's descriptors: the program's signal
   dispositions back, the channels at 3, 4, ..., nothing else of the
   server's; env_value: its MPROC_CHILD. watch: the descriptor that ends
   with the server, or -1. */
static int take_channels(const int *fds, size_t nfds, int watch, char *env_value, size_t cap)
{
    mproc__handle pass[MPROC__MAX_PASS];
    mproc__posix_fd_plan plan;
    sigaction(SIGCHLD, &srv.old_chld, NULL);
    sigaction(SIGINT, &srv.old_int, NULL);
    sigaction(SIGPIPE, &srv.old_pipe, NULL);
    for (size_t i = 3; i < nfds; i++) pass[i - 3] = fds[i];
    mproc__posix_plan_fds(&plan, fds[1], fds[2], watch, pass, nfds - 3);
    if (mproc__posix_apply_plan(&plan, -1) < 0) return mproc__fail_os_last();
#if !defined(USE_PDEATHSIG)
    pthread_t t;
    int rc = pthread_create(&t, NULL, watch_server, (void *)(intptr_t)(MPROC__POSIX_FD_BASE + 2));
    if (rc) return mproc__fail_os(rc);
    pthread_detach(t);
#endif
    mproc__posix_channels_env(&plan, env_value, cap);
    return 0;
}

/* The descriptor a child watches for the server's end: none where the
   kernel's parent-death signal does it. */
static int server_watch_fd(void)
{
#if defined(USE_PDEATHSIG)
    return -1;
#else
    return srv.alive_r;
#endif
}

MPROC__NORETURN static void child_setup_failed(int rc)
{
    fprintf(stderr, "mproc: forkserver child set-up failed: %s\n", mproc_strerror(rc));
    _exit(MPROC_EXIT_BOOTSTRAP);
}

/* A new spare, between its fork and its hand-off: it keeps only its end
   of the hand-off socketpair and the watch descriptor, then waits. It
   returns with its channels in place once given a request; it leaves
   quietly at end of stream (the server is shutting down, or has gone). */
static void run_spare(int hand, char *env_value, size_t cap)
{
    unsigned char rec[REQ_SIZE];
    int fds[MAX_FDS];
    size_t nfds;
    mproc__posix_fd_plan idle = {{server_watch_fd()}, 1, MPROC__POSIX_FD_BASE + 1, 0};
    if (idle.src[0] >= idle.high) idle.high = idle.src[0] + 1;
    int rc = leave_server();
    if (rc) child_setup_failed(rc);
    if ((hand = mproc__posix_apply_plan(&idle, hand)) < 0) child_setup_failed(mproc__fail_os_last());
    rc = recv_request(hand, rec, fds, &nfds);
    if (rc == 1) _exit(0);
    close(hand);
    /* the server checked the request before handing it over */
    if (rc || nfds < 3) child_setup_failed(MPROC_EPROTO);
    rc = take_channels(fds, nfds, idle.src[0] < 0 ? -1 : MPROC__POSIX_FD_BASE, env_value, cap);
    if (rc) child_setup_failed(rc);
}

/* Forks spares until there are SPARES of them: 1 in a new spare (given
   its request, its channels in place), 0 in the server. A failed fork
   is not retried until a request comes: that request forks for itself. */
static int fill_spares(char *env_value, size_t cap)
{
    while (srv.ctl >= 0 && srv.nspares < SPARES && !srv.spare_failed) {
        int sv[2];
        if (make_socketpair(sv) != 0) {
            srv.spare_failed = 1;
            return 0;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(sv[0]);
            run_spare(sv[1], env_value, cap);
            return 1;
        }
        close(sv[1]);
        if (pid < 0) {
            close(sv[0]);
            srv.spare_failed = 1;
            return 0;
        }
        srv.spares[srv.nspares].pid = pid;
        srv.spares[srv.nspares].hand = sv[0];
        srv.nspares++;
    }
    return 0;
}

/* Hands the request to a waiting spare: its pid, or -1 if there is none
   (or it died before it could take the request). */
static pid_t hand_to_spare(const unsigned char *rec, const int *fds, size_t nfds)
{
    while (srv.nspares) {
        spare *s = NULL;
        for (size_t i = 0; i < srv.nspares && !s; i++)
            if (srv.spares[i].hand >= 0) s = &srv.spares[i];
        if (!s) return -1;
        int rc = send_message(s->hand, rec, REQ_SIZE, fds, nfds);
        close(s->hand);
        s->hand = -1;
        pid_t pid = s->pid;
        if (rc == 0) {
            *s = srv.spares[--srv.nspares]; /* a child now, reaped as one */
            return pid;
        }
        kill(pid, SIGKILL); /* broken: reaped as a spare, the next one tried */
    }
    return -1;
}

/* 1 in the new child (its channels set up), 0 in the server. */
static int start_child(const unsigned char *rec, const int *fds, size_t nfds, char *env_value,
                       size_t cap)
{
    if (srv.nkids == srv.cap) {
        size_t cap2 = srv.cap ? srv.cap * 2 : 16;
        served_child *k = realloc(srv.kids, cap2 * sizeof *k);
        if (!k) {
            write_report(fds[0], REP_FAILED, ENOMEM);
            close_all(fds, nfds);
            return 0;
        }
        srv.kids = k;
        srv.cap = cap2;
    }
    pid_t pid = hand_to_spare(rec, fds, nfds);
    if (pid < 0) pid = fork();
    if (pid == 0) {
        int rc = leave_server();
        if (!rc) rc = take_channels(fds, nfds, server_watch_fd(), env_value, cap);
        if (rc) child_setup_failed(rc);
        return 1;
    }
    if (pid < 0) {
        write_report(fds[0], REP_FAILED, errno);
        close_all(fds, nfds);
        return 0;
    }
    srv.spare_failed = 0; /* a fork worked: try spares again */
    write_report(fds[0], REP_PID, pid);
    srv.kids[srv.nkids].pid = pid;
    srv.kids[srv.nkids].report = fds[0];
    srv.kids[srv.nkids].daemon = (mproc__get_u32(rec + 20) & REQ_DAEMON) != 0;
    srv.nkids++;
    close_all(fds + 1, nfds - 1); /* the child has them now */
    return 0;
}

/* Only a child not reaped yet: its pid cannot have been reused. */
static void signal_child(pid_t pid, int hard)
{
    for (size_t i = 0; i < srv.nkids; i++)
        if (srv.kids[i].pid == pid) kill(pid, hard ? SIGKILL : SIGTERM);
}

/* The program has gone: its daemon children end with it (the server
   sees it go, so they need no watch of their own), the spares leave (end
   of stream on their sockets); the server waits for them and the
   children to end. */
static void program_gone(void)
{
    close(srv.ctl);
    srv.ctl = -1;
    for (size_t i = 0; i < srv.nkids; i++)
        if (srv.kids[i].daemon) kill(srv.kids[i].pid, SIGKILL); /* not reaped: still ours */
    for (size_t i = 0; i < srv.nspares; i++)
        if (srv.spares[i].hand >= 0) {
            close(srv.spares[i].hand);
            srv.spares[i].hand = -1;
        }
}

/* 1 in a new child, 0 in the server; the program's departure closes ctl. */
static int serve_request(char *env_value, size_t cap)
{
    unsigned char rec[REQ_SIZE];
    int fds[MAX_FDS];
    size_t nfds;
    int rc = recv_request(srv.ctl, rec, fds, &nfds);
    if (rc == 1) {
        program_gone();
        return 0;
    }
    uint32_t kind = mproc__get_u32(rec + 4), arg = mproc__get_u32(rec + 16);
    int ok = rc == 0 && mproc__get_u32(rec) == FS_MAGIC;
    if (ok && kind == REQ_START && nfds >= 3 && arg == nfds)
        return start_child(rec, fds, nfds, env_value, cap);
    if (ok && kind == REQ_SIGNAL && nfds == 0) {
        signal_child((pid_t)record_value(rec), arg != 0);
        return 0;
    }
    close_all(fds, nfds); /* malformed: the program sees its report end */
    return 0;
}

int mproc__posix_forkserver_main(int ctl, char *env_value, size_t cap)
{
    int rc = server_setup(ctl);
    if (rc) return rc;
    uint64_t last_request_ns = 0;
    for (;;) {
        int timeout = -1;
        if (srv.ctl >= 0 && srv.nspares < SPARES && !srv.spare_failed) {
            uint64_t quiet_ns = mproc__os_now_ns() - last_request_ns;
            if (quiet_ns < REFILL_QUIET_MS * 1000000ull)
                timeout = (int)((REFILL_QUIET_MS * 1000000ull - quiet_ns + 999999) / 1000000);
            else if (fill_spares(env_value, cap))
                return 0;
        }
        struct pollfd pf[2] = {{srv.ctl, POLLIN, 0}, {srv.wake_r, POLLIN, 0}};
        if (poll(pf, 2, timeout) < 0) {
            if (errno == EINTR) continue;
            return mproc__fail_os_last();
        }
        if (pf[1].revents) reap_children();
        if (srv.ctl >= 0 && pf[0].revents) {
            last_request_ns = mproc__os_now_ns();
            if (serve_request(env_value, cap)) return 0;
        }
        /* The program has gone: its daemons were ended (program_gone),
           the others run on (as spawned ones would); the server stays only
           to reap them and its leaving spares. */
        if (srv.ctl < 0 && srv.nkids == 0 && srv.nspares == 0) _exit(0);
    }
}

/* ---- the program's side ---------------------------------------------------- */
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;
static int client_ctl = -1;   /* our end of the socketpair; -1: no server */
static pid_t client_server;   /* the server's pid (our child) */
static unsigned client_generation; /* which server this is: 1, 2, ... */
static pthread_once_t client_once = PTHREAD_ONCE_INIT;

/* A child forked from the program (fork start method, or the program's
   own fork()) must not keep the program's server alive, nor talk to it:
   it starts its own if it needs one. */
static void forget_server_in_child(void)
{
    if (client_ctl >= 0) close(client_ctl);
    client_ctl = -1;
    client_server = 0;
    pthread_mutex_init(&client_mu, NULL);
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_server_in_child); }

/* With client_mu held. */
static int start_server(const char *exe)
{
    int sv[2];
    mproc__posix_fd_plan plan;
    pid_t pid;
    int rc = make_socketpair(sv);
    if (rc) return rc;
    mproc__posix_plan_fds(&plan, sv[1], -1, -1, NULL, 0);
    /* The server never reads stdin, and its children, forked from it, get
       the null device as spawned children do by default. */
    plan.null_stdin = 1;
    /* Bound at its start, every symbol: otherwise each child it forks
       resolves (and copies the pages of) the same lazy bindings again. An
       LD_BIND_NOW we add is removed again by the server (",bindnow"). */
    char bind_now[] = "LD_BIND_NOW=1";
    int own = getenv("LD_BIND_NOW") == NULL;
    rc = mproc__posix_spawn_image(exe,
                                  own ? MPROC__POSIX_SERVER_ENV ",3" MPROC__POSIX_SERVER_BIND_NOW
                                      : MPROC__POSIX_SERVER_ENV ",3",
                                  own ? bind_now : NULL, &plan, &pid);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    client_ctl = sv[0];
    client_server = pid;
    client_generation++;
    return 0;
}

/* With client_mu held: the server has gone (killed, crashed). */
static void forget_dead_server(void)
{
    fprintf(stderr, "mproc: the forkserver (pid %lld) has died; starting a new one\n",
            (long long)client_server);
    close(client_ctl);
    client_ctl = -1;
    mproc__posix_adopt_orphan(client_server); /* our child: reap it */
    client_server = 0;
}

/* With client_mu held: 1 if the server (our child) has ended, whether or
   not its socket is still open: a spare it forked a moment before it was
   killed may hold the socket until its own parent-death signal lands, and
   a request sent there would be lost. Not reaped here (WNOWAIT):
   forget_dead_server hands it to the orphan reaper. */
static int server_has_ended(void)
{
    siginfo_t si;
    int rc;
    memset(&si, 0, sizeof si);
    do rc = waitid(P_PID, (id_t)client_server, &si, WEXITED | WNOHANG | WNOWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) return errno == ECHILD; /* reaped by someone else: gone */
    return si.si_pid == client_server;
}

/* With client_mu held. MPROC_ECLOSED if the server has gone. */
static int send_request(uint32_t kind, int64_t pid, uint32_t arg, uint32_t flags, const int *fds,
                        size_t nfds)
{
    unsigned char rec[REQ_SIZE];
    encode(rec, sizeof rec, kind, pid, arg, flags);
    return send_message(client_ctl, rec, sizeof rec, fds, nfds);
}

/* Sends a start request, starting the server first if there is none or
   if it has died since the last request; *server: the generation of the
   server it went to. */
static int request_start(const char *exe, const int *fds, size_t nfds, uint32_t flags,
                         unsigned *server)
{
    pthread_once(&client_once, register_atfork);
    pthread_mutex_lock(&client_mu);
    int rc = client_ctl < 0 ? start_server(exe) : 0;
    if (!rc && server_has_ended()) rc = MPROC_ECLOSED;
    else if (!rc) rc = send_request(REQ_START, 0, (uint32_t)nfds, flags, fds, nfds);
    if (rc == MPROC_ECLOSED) {
        forget_dead_server();
        rc = start_server(exe);
        if (!rc) rc = send_request(REQ_START, 0, (uint32_t)nfds, flags, fds, nfds);
        if (rc == MPROC_ECLOSED) rc = MPROC_ECHILD;
    }
    *server = client_generation;
    pthread_mutex_unlock(&client_mu);
    return rc;
}

/* The server took a request and died before answering: the next start
   starts a new one. */
static void forget_server(unsigned server)
{
    pthread_mutex_lock(&client_mu);
    if (client_ctl >= 0 && client_generation == server) forget_dead_server();
    pthread_mutex_unlock(&client_mu);
}

/* The server's answer to a start request, the first record on its
   report pipe: 0 and the child's pid, MPROC_ETIMEDOUT, or why the start
   failed (MPROC_ECHILD: the server died with the request, and the next
   start starts a new one). */
int mproc__posix_served_pid(int report_fd, unsigned server, int timeout_ms, pid_t *pid)
{
    uint32_t kind = 0;
    int64_t value = 0;
    int rc = mproc__os_wait_readable(report_fd, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 0) return MPROC_ETIMEDOUT;
    rc = read_report(report_fd, &kind, &value);
    if (rc == MPROC_ECLOSED) {
        forget_server(server);
        return MPROC_ECHILD;
    }
    if (!rc && kind == REP_FAILED) return mproc__fail_os((int)value);
    if (!rc && kind != REP_PID) return MPROC_EPROTO;
    if (!rc) *pid = (pid_t)value;
    return rc;
}

/* Sends the request, then the bootstrap (while the server forks), then
   waits for the answer unless req->pid_later: 0 with the child's report
   pipe and its pid (0 if not read yet). */
static int request_child(const mproc__os_spawn_req *req, int *fds, size_t nfds, int *rep,
                         pid_t *pid, unsigned *server)
{
    mproc__handle rep_r, rep_w;
    int rc = mproc__os_pipe(&rep_r, &rep_w);
    if (!rc) {
        fds[0] = (int)rep_w;
        rc = request_start(req->exe, fds, nfds, req->daemon ? REQ_DAEMON : 0, server);
        mproc__os_close(rep_w); /* the server's copy is the only one now */
    }
    /* consumed, as a spawn request's are: the message in flight holds them,
       and a child that never comes leaves the bootstrap's writer EPIPE */
    mproc__os_close(req->boot_read);
    mproc__os_close(req->status_write);
    if (rc) return rc;
    int sent = req->deliver ? req->deliver(req->ctx) : 0;
    *pid = 0;
    if (!sent && req->pid_later) {
        *rep = (int)rep_r;
        return 0;
    }
    rc = mproc__posix_served_pid((int)rep_r, *server, MPROC_FOREVER, pid);
    if (!rc && sent) { /* the child could not get its bootstrap */
        mproc__posix_served_signal(*pid, *server, 1);
        rc = sent;
    }
    if (rc) {
        mproc__os_close(rep_r);
        return rc;
    }
    *rep = (int)rep_r;
    return 0;
}

int mproc__os_serve(const mproc__os_spawn_req *req, mproc__os_proc **out)
{
    int fds[MAX_FDS], rep = -1;
    pid_t pid = 0;
    unsigned server = 0;
    mproc__posix_fd_plan plan;
    if (req->npass > MPROC__MAX_PASS) {
        mproc__os_close(req->boot_read);
        mproc__os_close(req->status_write);
        return MPROC_EINVAL;
    }
    mproc__posix_child_layout(req, -1, &plan); /* the handles' numbers in the child */
    fds[1] = (int)req->boot_read;
    fds[2] = (int)req->status_write;
    for (size_t i = 0; i < req->npass; i++) fds[3 + i] = (int)req->pass[i];
    /* Not retried when the server dies with the request: a child it may
       have forked holds these very channels until its parent-death signal
       arrives. */
    int rc = request_child(req, fds, 3 + req->npass, &rep, &pid, &server);
    if (!rc && !(*out = mproc__posix_served_proc(pid, rep, server))) {
        if (pid || mproc__posix_served_pid(rep, server, MPROC_FOREVER, &pid) == 0)
            mproc__posix_served_signal(pid, server, 1);
        close(rep);
        rc = MPROC_ENOMEM;
    }
    return rc;
}

int mproc__posix_served_wait(int report_fd, int timeout_ms, int *code)
{
    uint32_t kind;
    int64_t value;
    int rc = mproc__os_wait_readable(report_fd, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 0) return MPROC_ETIMEDOUT;
    if ((rc = read_report(report_fd, &kind, &value)) == MPROC_ECLOSED) {
        *code = -SIGKILL; /* the server's children die with it */
        return MPROC_ECHILD;
    }
    if (!rc && kind != REP_STATUS) rc = MPROC_EPROTO;
    if (rc) return rc;
    *code = (int)value;
    return 0;
}

int mproc__posix_served_signal(pid_t pid, unsigned server, int hard)
{
    pthread_mutex_lock(&client_mu);
    /* Its server has gone (died, or this is a forked copy of the program):
       its children died with it, and the pid may be another's by now. */
    int rc = client_ctl < 0 || client_generation != server
                 ? 0
                 : send_request(REQ_SIGNAL, pid, hard != 0, 0, NULL, 0);
    pthread_mutex_unlock(&client_mu);
    return rc == MPROC_ECLOSED ? 0 : rc;
}
