/* POSIX conn links (socketpairs), multi-handle waits and the queue's
   doorbell. See the "conn links" section of os.h for the contract. */
#include "../internal.h"
#include "../atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
#  define MPROC_LINUX_ISLAND 1
#  include <linux/membarrier.h>
#  include <sys/syscall.h>
#endif

#define LINK_FDS 8
struct mproc__os_link {
    int fd;
    int nfds;                   /* descriptors received, not yet handed out, */
    int fds[LINK_FDS];          /* in order of arrival, */
    unsigned char tags[LINK_FDS]; /* each with the tag byte it came on */
    unsigned char next_tag;     /* sender: tag of the next handle */
};

/* ---- descriptor set-up ---------------------------------------------------- */
#if !defined(MPROC_LINUX_ISLAND)
static int fd_set_flag(int fd, int get, int set, int flag)
{
    int fl = fcntl(fd, get);
    if (fl < 0) return mproc__fail_os_last();
    if ((fl & flag) == flag) return 0;
    if (fcntl(fd, set, fl | flag) != 0) return mproc__fail_os_last();
    return 0;
}

static int fd_cloexec(int fd) { return fd_set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC); }
static int fd_nonblock(int fd) { return fd_set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK); }
#endif

/* Both ends non-blocking: a link is only ever read and written without
   waiting (tokens are hints; waits are poll()s). */
static int make_socketpair(int fds[2])
{
#if defined(MPROC_LINUX_ISLAND)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
        return mproc__fail_os_last();
    return 0;
#else
    /* Not atomic, but mproc's own spawn passes only listed descriptors, so
       the window only matters to other code that forks and execs. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return mproc__fail_os_last();
    int rc = fd_cloexec(fds[0]);
    if (!rc) rc = fd_cloexec(fds[1]);
    if (!rc) rc = fd_nonblock(fds[0]);
    if (!rc) rc = fd_nonblock(fds[1]);
#  if defined(SO_NOSIGPIPE)
    int one = 1; /* macOS: no MSG_NOSIGNAL on older systems */
    if (!rc && setsockopt(fds[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) rc = mproc__fail_os_last();
    if (!rc && setsockopt(fds[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) rc = mproc__fail_os_last();
#  endif
    if (rc) { close(fds[0]); close(fds[1]); }
    return rc;
#endif
}

static int link_new(int fd, mproc__os_link **out)
{
    mproc__os_link *l = mproc__calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return MPROC_ENOMEM;
    }
    l->fd = fd;
    *out = l;
    return 0;
}

int mproc__os_link_pair(mproc__os_link **a, mproc__os_link **b)
{
    int fds[2];
    int rc = make_socketpair(fds);
    if (rc) return rc;
    rc = link_new(fds[0], a);
    if (rc) {
        close(fds[1]);
        return rc;
    }
    rc = link_new(fds[1], b);
    if (rc) {
        mproc__os_link_free(*a);
        *a = NULL;
    }
    return rc;
}

int mproc__os_link_wrap(mproc__handle h, mproc__os_link **out)
{
    if (h < 0 || h > INT_MAX) return MPROC_EINVAL;
    return link_new((int)h, out);
}

int mproc__os_link_dup(mproc__handle h, mproc__os_link **out)
{
    if (h < 0 || h > INT_MAX) return MPROC_EINVAL;
    int fd = fcntl((int)h, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return mproc__fail_os_last();
    return link_new(fd, out);
}

mproc__handle mproc__os_link_handle(const mproc__os_link *l) { return l->fd; }

void mproc__os_link_free(mproc__os_link *l)
{
    if (!l) return;
    close(l->fd);
    for (int i = 0; i < l->nfds; i++) close(l->fds[i]);
    free(l);
}

/* ---- tokens ---------------------------------------------------------------- */
static int peer_gone_error(int e) { return e == EPIPE || e == ECONNRESET || e == ENOTCONN; }

int mproc__os_link_ring(mproc__os_link *l, unsigned n)
{
    static const char tokens[64];
    size_t len = n == 0 ? 1 : n > sizeof tokens ? sizeof tokens : n;
#if defined(MSG_NOSIGNAL)
    int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
#else
    int flags = MSG_DONTWAIT; /* SO_NOSIGPIPE is set on the socket */
#endif
    for (;;) {
        if (send(l->fd, tokens, len, flags) >= 0) return 0;
        if (errno == EINTR) continue;
        if (peer_gone_error(errno)) return MPROC_ECLOSED;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 0;
        return mproc__fail_os_last();
    }
}

/* Keeps the descriptors a token carried (send_handle) for recv_handle. */
static void keep_fds(mproc__os_link *l, struct msghdr *m, unsigned char tag)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
#if !defined(MSG_CMSG_CLOEXEC)
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
            if (l->nfds < LINK_FDS) {
                l->tags[l->nfds] = tag;
                l->fds[l->nfds++] = fd;
            } else {
                close(fd); /* more handles in flight than anyone asked for */
            }
        }
    }
}

/* Takes one token if there is one: 0 took one, 1 none there, ECLOSED. */
static int take_token(mproc__os_link *l)
{
#if defined(MSG_CMSG_CLOEXEC)
    int flags = MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
#else
    int flags = MSG_DONTWAIT;
#endif
    for (;;) {
        char t;
        union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * LINK_FDS)]; } ctl;
        struct iovec iov = {&t, 1};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        ssize_t n = recvmsg(l->fd, &m, flags);
        if (n > 0) {
            if (m.msg_controllen) keep_fds(l, &m, (unsigned char)t);
            return 0;
        }
        if (n == 0) return MPROC_ECLOSED;
        if (errno == EINTR) continue;
        if (peer_gone_error(errno)) return MPROC_ECLOSED;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
        return mproc__fail_os_last();
    }
}

/* One wait: a wake-up whose token another sleeper took first still
   returns 0, so the caller looks at its condition again at once. */
int mproc__os_link_sleep(mproc__os_link *l, int timeout_ms)
{
    int rc = take_token(l);
    if (rc <= 0) return rc;
    unsigned char ready = 0;
    mproc__handle h = l->fd;
    rc = mproc__os_wait_any(&h, 1, &ready, timeout_ms);
    if (rc < 0) return rc;
    rc = take_token(l);
    return rc > 0 ? 0 : rc;
}

int mproc__os_link_send_handle(mproc__os_link *l, mproc__handle h, mproc__os_handle_note *note)
{
    if (h < 0 || h > INT_MAX) return MPROC_EINVAL;
    int fd = (int)h;
    char t = (char)l->next_tag;
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = {&t, 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&ctl, 0, sizeof ctl);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
#if defined(MSG_NOSIGNAL)
    int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
#else
    int flags = MSG_DONTWAIT;
#endif
    note->pid = 0;
    note->value = l->next_tag;
    for (;;) {
        if (sendmsg(l->fd, &m, flags) == 1) {
            l->next_tag++;
            return 0;
        }
        if (errno == EINTR) continue;
        if (peer_gone_error(errno)) return MPROC_ECLOSED;
        if (errno == EBADF) return MPROC_EINVAL; /* h is no descriptor */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) return mproc__fail_os_last();
        /* Full of unread tokens: wait for room (or the other end going). */
        struct pollfd p = {l->fd, POLLOUT, 0};
        if (poll(&p, 1, 100) < 0 && errno != EINTR) return mproc__fail_os_last();
        if (p.revents & (POLLHUP | POLLERR)) return MPROC_ECLOSED;
    }
}

/* The oldest descriptor received, taken out of the link. */
static int pop_fd(mproc__os_link *l, unsigned char *tag)
{
    int fd = l->fds[0];
    *tag = l->tags[0];
    l->nfds--;
    memmove(l->fds, l->fds + 1, sizeof l->fds[0] * (size_t)l->nfds);
    memmove(l->tags, l->tags + 1, (size_t)l->nfds);
    return fd;
}

int mproc__os_link_recv_handle(mproc__os_link *l, const mproc__os_handle_note *note,
                               mproc__handle *out, int timeout_ms)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        while (l->nfds > 0) {
            unsigned char tag;
            int fd = pop_fd(l, &tag);
            if (tag == (unsigned char)note->value) {
                *out = fd;
                return 0;
            }
            close(fd); /* its note was received as plain data: nobody wants it */
        }
        int rc = take_token(l);
        if (rc == 0) continue;
        if (rc < 0) return rc;
        unsigned char ready = 0;
        mproc__handle h = l->fd;
        rc = mproc__os_wait_any(&h, 1, &ready, mproc__remaining_ms(deadline, timeout_ms));
        if (rc < 0) return rc;
    }
}

int mproc__os_link_probe(mproc__os_link *l)
{
    struct pollfd p = {l->fd, POLLIN, 0};
    for (;;) {
        int rc = poll(&p, 1, 0);
        if (rc >= 0) return (p.revents & (POLLHUP | POLLERR)) ? MPROC_ECLOSED : 0;
        if (errno != EINTR) return mproc__fail_os_last();
    }
}

int mproc__os_link_arm(mproc__os_link *l, mproc__handle *waitable)
{
    *waitable = l->fd;
    return 0;
}

int mproc__os_link_disarm(mproc__os_link *l)
{
    int rc = take_token(l);
    return rc > 0 ? 0 : rc;
}

/* ---- waiting on many ------------------------------------------------------- */
static int poll_many(struct pollfd *pfd, size_t n, int timeout_ms)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        int rc = poll(pfd, (nfds_t)n, mproc__remaining_ms(deadline, timeout_ms));
        if (rc > 0) return rc;
        if (rc == 0) return MPROC_ETIMEDOUT;
        if (errno != EINTR) return mproc__fail_os_last();
    }
}

int mproc__os_wait_any(const mproc__handle *h, size_t n, unsigned char *ready,
                       int timeout_ms)
{
    struct pollfd local[16];
    struct pollfd *pfd = n <= 16 ? local : mproc__calloc(n, sizeof *pfd);
    if (!pfd) return MPROC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = (int)h[i];
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    int rc = poll_many(pfd, n, timeout_ms);
    if (rc > 0) {
        rc = 0;
        for (size_t i = 0; i < n; i++) {
            /* Hang-up and errors count as ready: the read that follows
               reports them. */
            ready[i] = (pfd[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
            rc += ready[i];
        }
    }
    if (pfd != local) free(pfd);
    return rc;
}

mproc__handle mproc__os_user_handle(const void *obj)
{
    int fd;
    memcpy(&fd, obj, sizeof fd);
    return fd >= 0 ? (mproc__handle)fd : MPROC__NO_HANDLE;
}

/* ---- doorbell ------------------------------------------------------------- */
/* A socketpair like a link's: tokens go in at wr and come out at rd. */
int mproc__os_bell_create(mproc__handle *rd, mproc__handle *wr)
{
    int fds[2];
    int rc = make_socketpair(fds);
    if (rc) return rc;
    *rd = fds[0];
    *wr = fds[1];
    return 0;
}

/* Every holder of wr also holds rd, so the other end never goes. */
void mproc__os_bell_ring(mproc__handle wr, unsigned n)
{
    mproc__os_link l = {(int)wr, 0, {0}, {0}, 0};
    (void)mproc__os_link_ring(&l, n);
}

void mproc__os_bell_take(mproc__handle rd)
{
    mproc__os_link l = {(int)rd, 0, {0}, {0}, 0};
    (void)take_token(&l);
}

void mproc__os_yield(void) { sched_yield(); }

/* ---- asymmetric fences ------------------------------------------------------ */
#if defined(MPROC_LINUX_ISLAND) && defined(SYS_membarrier)
static int membarrier(int cmd) { return (int)syscall(SYS_membarrier, cmd, 0, 0); }

/* The pid that joined: registration belongs to an address space, and a
   forked child has a new one. A refusal (an old kernel, a sandbox) is
   final: asked once per process, not per call. */
static volatile uint64_t joined_pid, refused;

int mproc__os_remote_fence_join(void)
{
    if (mproc__load64(&refused)) return MPROC_ENOTSUP;
    uint64_t me = (uint64_t)getpid();
    if (mproc__load64(&joined_pid) == me) return 0;
    if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) {
        mproc__store64(&refused, 1);
        return MPROC_ENOTSUP;
    }
    mproc__store64(&joined_pid, me);
    return 0;
}

int mproc__os_remote_fence(void)
{
    return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ? 0 : mproc__fail_os(errno);
}
#else
int mproc__os_remote_fence_join(void) { return MPROC_ENOTSUP; }
int mproc__os_remote_fence(void) { return MPROC_ENOTSUP; }
#endif
