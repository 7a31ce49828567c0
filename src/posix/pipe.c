/* POSIX message channels (socketpair / pipe), multi-handle waits, the
   queue's doorbell and owner-liveness checks. See the "message channels"
   section of os.h for the contract. */
#include "../internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
#  define MPROC_LINUX_ISLAND 1
#endif

/* Kernel buffer we ask for: big enough that a 1 MiB message is a few
   system calls, small enough not to pin much memory per channel. */
#define CHAN_KERNEL_BUF (1 << 20)
/* One read()/write() never moves more than this (Linux caps at ~2 GiB). */
#define CHAN_IO_MAX ((size_t)1 << 30)

struct mproc__os_chan {
    int fd;
    int flags;
};

/* ---- descriptor set-up ---------------------------------------------------- */
static int fd_set_flag(int fd, int get, int set, int flag)
{
    int fl = fcntl(fd, get);
    if (fl < 0) return mproc__fail_os_last();
    if ((fl & flag) == flag) return 0;
    if (fcntl(fd, set, fl | flag) != 0) return mproc__fail_os_last();
    return 0;
}

#if !defined(MPROC_LINUX_ISLAND)
static int fd_cloexec(int fd) { return fd_set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC); }
#endif
static int fd_nonblock(int fd) { return fd_set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK); }

static int make_socketpair(int fds[2])
{
#if defined(MPROC_LINUX_ISLAND)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return mproc__fail_os_last();
    return 0;
#else
    /* Not atomic, but mproc's own spawn passes only listed descriptors, so
       the window only matters to other code that forks and execs. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return mproc__fail_os_last();
    int rc = fd_cloexec(fds[0]);
    if (!rc) rc = fd_cloexec(fds[1]);
#  if defined(SO_NOSIGPIPE)
    int one = 1; /* macOS: no MSG_NOSIGNAL on older systems */
    if (!rc && setsockopt(fds[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) rc = mproc__fail_os_last();
    if (!rc && setsockopt(fds[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) rc = mproc__fail_os_last();
#  endif
    if (rc) { close(fds[0]); close(fds[1]); }
    return rc;
#endif
}

static int make_pipe(int fds[2])
{
#if defined(MPROC_LINUX_ISLAND)
    if (pipe2(fds, O_CLOEXEC) != 0) return mproc__fail_os_last();
    return 0;
#else
    if (pipe(fds) != 0) return mproc__fail_os_last();
    int rc = fd_cloexec(fds[0]);
    if (!rc) rc = fd_cloexec(fds[1]);
    if (rc) { close(fds[0]); close(fds[1]); }
    return rc;
#endif
}

/* Best effort: a failure (limits, unprivileged caps) only costs speed. */
static void enlarge_buffers(int fd, int is_sock)
{
    int sz = CHAN_KERNEL_BUF;
    if (is_sock) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
#if defined(MPROC_LINUX_ISLAND) && defined(F_SETPIPE_SZ)
    else {
        (void)fcntl(fd, F_SETPIPE_SZ, sz);
    }
#endif
}

static int chan_new(int fd, int flags, mproc__os_chan **out)
{
    mproc__os_chan *c = mproc__calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return MPROC_ENOMEM;
    }
    c->fd = fd;
    c->flags = flags;
    *out = c;
    return 0;
}

int mproc__os_chan_pair(mproc__os_chan **a, mproc__os_chan **b, int duplex)
{
    int fds[2];
    int rc = duplex ? make_socketpair(fds) : make_pipe(fds);
    if (rc) return rc;
    enlarge_buffers(fds[0], duplex);
    enlarge_buffers(fds[1], duplex);
    int fa = duplex ? (MPROC__CHAN_READ | MPROC__CHAN_WRITE | MPROC__CHAN_SOCK) : MPROC__CHAN_READ;
    int fb = duplex ? fa : MPROC__CHAN_WRITE;
    rc = chan_new(fds[0], fa, a);
    if (rc) {
        close(fds[1]);
        return rc;
    }
    rc = chan_new(fds[1], fb, b);
    if (rc) {
        mproc__os_chan_free(*a);
        *a = NULL;
    }
    return rc;
}

int mproc__os_chan_wrap(mproc__handle h, int flags, mproc__os_chan **out)
{
    if (h < 0 || h > INT_MAX) return MPROC_EINVAL;
    return chan_new((int)h, flags, out);
}

mproc__handle mproc__os_chan_handle(const mproc__os_chan *c) { return c->fd; }
int mproc__os_chan_flags(const mproc__os_chan *c) { return c->flags; }

void mproc__os_chan_free(mproc__os_chan *c)
{
    if (!c) return;
    close(c->fd);
    free(c);
}

int mproc__os_chan_dup(mproc__handle h, int flags, mproc__os_chan **out)
{
    if (h < 0 || h > INT_MAX) return MPROC_EINVAL;
    int fd = fcntl((int)h, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return mproc__fail_os_last();
    return chan_new(fd, flags, out);
}

/* ---- writing without SIGPIPE ---------------------------------------------- */
/* A library must not change the process's signal dispositions, so on a
   pipe SIGPIPE is blocked on this thread around the write and a SIGPIPE
   the write raised is consumed before unblocking. If the caller already
   blocks SIGPIPE and one is pending from elsewhere, it is left alone. */
static ssize_t pipe_writev_nosig(int fd, const struct iovec *iov, int cnt)
{
    sigset_t pipe_set, old, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0) return -1;
    int caller_blocks = sigismember(&old, SIGPIPE) == 1;
    int was_pending = 0;
    if (caller_blocks && sigpending(&pend) == 0) was_pending = sigismember(&pend, SIGPIPE) == 1;
    ssize_t n = writev(fd, iov, cnt);
    int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
    }
    if (!caller_blocks) pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

static ssize_t chan_writev(const mproc__os_chan *c, struct iovec *iov, int cnt)
{
    if (c->flags & MPROC__CHAN_SOCK) {
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)cnt;
#if defined(MSG_NOSIGNAL)
        return sendmsg(c->fd, &mh, MSG_NOSIGNAL);
#else
        return sendmsg(c->fd, &mh, 0); /* SO_NOSIGPIPE is set on the socket */
#endif
    }
    return pipe_writev_nosig(c->fd, iov, cnt);
}

/* Drops n written bytes from the front of iov[*first..cnt). */
static void iov_advance(struct iovec *iov, int cnt, int *first, size_t n)
{
    while (*first < cnt && n >= iov[*first].iov_len) {
        n -= iov[*first].iov_len;
        (*first)++;
    }
    if (*first < cnt) {
        iov[*first].iov_base = (char *)iov[*first].iov_base + n;
        iov[*first].iov_len -= n;
    }
}

int mproc__os_chan_send(mproc__os_chan *c, const void *hdr, size_t hdr_len,
                        const void *body, size_t body_len)
{
    if (!(c->flags & MPROC__CHAN_WRITE)) return MPROC_ESTATE;
    struct iovec iov[2] = {{(void *)(uintptr_t)hdr, hdr_len}, {(void *)(uintptr_t)body, body_len}};
    int first = hdr_len ? 0 : 1;
    while (first < 2) {
        struct iovec part[2];
        int cnt = 0;
        for (int i = first; i < 2; i++) {
            if (!iov[i].iov_len) continue;
            part[cnt] = iov[i];
            if (part[cnt].iov_len > CHAN_IO_MAX) part[cnt].iov_len = CHAN_IO_MAX;
            cnt++;
        }
        if (!cnt) break;
        ssize_t n = chan_writev(c, part, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return MPROC_ECLOSED;
            return mproc__fail_os_last();
        }
        iov_advance(iov, 2, &first, (size_t)n);
    }
    return 0;
}

/* ---- reading -------------------------------------------------------------- */
/* Read ends stay blocking. Waiting forever is one blocking read() — the
   cheapest way to wait for a stream of small messages (a non-blocking read
   that finds the pipe empty costs read + poll + read). A finite timeout
   polls first; a conn end has one reader at a time, so the read that
   follows a "readable" finds its data. */
static ssize_t chan_read(const mproc__os_chan *c, void *buf, size_t cap, int dontwait)
{
    if (c->flags & MPROC__CHAN_SOCK) return recv(c->fd, buf, cap, dontwait ? MSG_DONTWAIT : 0);
    return read(c->fd, buf, cap);
}

int mproc__os_chan_recv(mproc__os_chan *c, void *buf, size_t cap, size_t *got,
                        int timeout_ms)
{
    *got = 0;
    if (!(c->flags & MPROC__CHAN_READ)) return MPROC_ESTATE;
    if (cap > CHAN_IO_MAX) cap = CHAN_IO_MAX;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        if (timeout_ms >= 0) {
            unsigned char ready = 0;
            mproc__handle h = c->fd;
            int rc = mproc__os_wait_any(&h, 1, &ready, mproc__remaining_ms(deadline, timeout_ms));
            if (rc < 0) return rc;
        }
        ssize_t n = chan_read(c, buf, cap, timeout_ms >= 0);
        if (n > 0) {
            *got = (size_t)n;
            return 0;
        }
        if (n == 0) return MPROC_ECLOSED;
        if (errno == ECONNRESET) return MPROC_ECLOSED;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return mproc__fail_os_last();
    }
}

int mproc__os_chan_arm(mproc__os_chan *c, void *buf, size_t cap, mproc__handle *waitable)
{
    (void)buf;
    (void)cap;
    *waitable = c->fd;
    return 0;
}

int mproc__os_chan_disarm(mproc__os_chan *c, size_t *got)
{
    *got = 0;
    mproc__handle h = c->fd;
    unsigned char r = 0;
    int rc = mproc__os_wait_any(&h, 1, &r, 0);
    return rc == MPROC_ETIMEDOUT ? 0 : rc < 0 ? rc : r;
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

/* ---- doorbell ------------------------------------------------------------- */
int mproc__os_bell_create(mproc__handle *rd, mproc__handle *wr)
{
    int fds[2];
    int rc = make_pipe(fds);
    if (rc) return rc;
    rc = fd_nonblock(fds[0]);
    if (!rc) rc = fd_nonblock(fds[1]);
    if (rc) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    *rd = fds[0];
    *wr = fds[1];
    return 0;
}

/* A full pipe (EAGAIN) holds tokens enough; every holder of wr also holds
   rd, so EPIPE cannot happen, but the write is still made SIGPIPE-safe. */
void mproc__os_bell_ring(mproc__handle wr, unsigned n)
{
    char b[64] = {0};
    struct iovec iov = {b, n < sizeof b ? (n ? n : 1) : sizeof b};
    while (pipe_writev_nosig((int)wr, &iov, 1) < 0 && errno == EINTR) {}
}

void mproc__os_bell_take(mproc__handle rd)
{
    char b;
    while (read((int)rd, &b, 1) < 0 && errno == EINTR) {}
}

void mproc__os_yield(void) { sched_yield(); }
