/* POSIX: errors, time, identity, randomness, environment, byte pipes and
   anonymous shared memory. */
#include "../internal.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#  include <sys/sysctl.h>
#  include <sys/user.h>
#endif
#if defined(__linux__)
#  include <sys/auxv.h>
#  include <sys/random.h>
#endif

int mproc__os_last_error(void) { return errno; }

uint64_t mproc__os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mproc__os_now_ms(void) { return mproc__os_now_ns() / 1000000u; }

void mproc__posix_deadline_ts(int timeout_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void mproc__os_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int64_t mproc__os_getpid(void) { return (int64_t)getpid(); }
int64_t mproc__os_getppid(void) { return (int64_t)getppid(); }


int mproc__os_random(void *buf, size_t len)
{
    unsigned char *p = buf;
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return mproc__fail_os_last();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
#else
    int fd;
    do fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
    if (fd < 0) return mproc__fail_os_last();
    int rc = mproc__os_read_all(fd, p, len, NULL, MPROC_FOREVER);
    close(fd);
    return rc;
#endif
}

/* A zombie has ended: it only waits for its parent to reap it. Lock
   owner-death detection depends on seeing it as dead. */
static int is_zombie(int64_t pid)
{
#if defined(__linux__)
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
    /* Gone between kill() and here, or no /proc at all (not mounted,
       another pid namespace): only the first is a sure death. */
    if (fd < 0) return errno == ENOENT && kill((pid_t)pid, 0) != 0;
    ssize_t n;
    do n = read(fd, buf, sizeof buf - 1); while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may contain ')' */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
#elif defined(__APPLE__) || defined(__FreeBSD__)
    struct kinfo_proc info;
    size_t size = sizeof info;
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid};
    if (sysctl(mib, 4, &info, &size, NULL, 0) != 0 || size == 0) return 0;
#  if defined(__APPLE__)
    return info.kp_proc.p_stat == SZOMB;
#  else
    return info.ki_stat == SZOMB;
#  endif
#else
    (void)pid;
    return 0;
#endif
}

int mproc__os_pid_alive(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX) return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) return 0;
    return !is_zombie(pid);
}

int mproc__os_privileged_exec(void)
{
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
    return getauxval(AT_SECURE) != 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    return issetugid() != 0;
#else
    return getuid() != geteuid() || getgid() != getegid();
#endif
}

int mproc__os_getenv(const char *name, char *buf, size_t cap)
{
    const char *v = getenv(name);
    if (!v) return MPROC_ENOENT;
    if (strlen(v) >= cap) return MPROC_EINVAL;
    strcpy(buf, v);
    return 0;
}

void mproc__os_unsetenv(const char *name) { unsetenv(name); }

void mproc__os_close(mproc__handle h)
{
    /* Not retried on EINTR: on Linux the descriptor is gone either way. */
    if (h >= 0) close((int)h);
}

#if !defined(__linux__) || defined(MPROC_PORTABLE_POSIX)
#  define MPROC_NEED_SET_CLOEXEC 1
static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return mproc__fail_os_last();
    return 0;
}
#endif

int mproc__os_pipe(mproc__handle *read_end, mproc__handle *write_end)
{
    int fds[2];
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
    if (pipe2(fds, O_CLOEXEC) != 0) return mproc__fail_os_last();
#else
    /* Without pipe2 another thread's fork+exec may see these fds for a
       moment; mproc's own spawn closes everything not listed, so only
       foreign spawns are exposed. */
    if (pipe(fds) != 0) return mproc__fail_os_last();
    if (set_cloexec(fds[0]) || set_cloexec(fds[1])) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        return mproc__fail_os(err);
    }
#endif
    *read_end = fds[0];
    *write_end = fds[1];
    return 0;
}

/* write() with SIGPIPE blocked on this thread, so a vanished reader is an
   error code (MPROC_ECLOSED) and not the death of the process; a SIGPIPE
   we caused is consumed before the mask is restored. */
int mproc__os_write_all(mproc__handle h, const void *buf, size_t len)
{
    sigset_t pipe_set, old;
    const char *p = buf;
    int rc = 0, saw_epipe = 0;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    while (len) {
        ssize_t n = write((int)h, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) { saw_epipe = 1; rc = MPROC_ECLOSED; }
            else rc = mproc__fail_os_last();
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (saw_epipe && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int mproc__os_wait_readable(mproc__handle h, int timeout_ms)
{
    struct pollfd pfd = {(int)h, POLLIN, 0};
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        int n = poll(&pfd, 1, mproc__remaining_ms(deadline, timeout_ms));
        if (n > 0) return 1;
        if (n == 0) return 0;
        if (errno != EINTR) return mproc__fail_os_last();
    }
}

int mproc__os_read_all(mproc__handle h, void *buf, size_t len, size_t *got, int timeout_ms)
{
    char *p = buf;
    size_t done = 0;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = 0;
    /* Without a deadline a blocking read waits by itself: poll only once a
       read has said EAGAIN (a non-blocking descriptor). */
    int must_poll = timeout_ms != MPROC_FOREVER;
    while (done < len) {
        if (must_poll) {
            int ready = mproc__os_wait_readable(h, mproc__remaining_ms(deadline, timeout_ms));
            if (ready < 0) { rc = ready; break; }
            if (ready == 0) { rc = MPROC_ETIMEDOUT; break; }
        }
        ssize_t n = read((int)h, p + done, len - done);
        if (n < 0) {
            if (errno == EAGAIN) must_poll = 1;
            if (errno == EINTR || errno == EAGAIN) continue;
            rc = mproc__fail_os_last();
            break;
        }
        if (n == 0) { rc = MPROC_ECLOSED; break; }
        done += (size_t)n;
    }
    if (got) *got = done;
    return rc;
}

/* ---- anonymous shared memory --------------------------------------------- */
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
static int anon_shm_fd(void) { return memfd_create("mproc", MFD_CLOEXEC); }
#else
/* No memfd: a random name, unlinked at once (the window between the two
   calls is the only moment a name exists). */
static int anon_shm_fd(void)
{
    unsigned char r[8];
    char name[32];
    if (mproc__os_random(r, sizeof r)) return -1;
    snprintf(name, sizeof name, "/mpa%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7]);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return -1;
    shm_unlink(name);
    if (set_cloexec(fd) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
#endif

int mproc__os_anon_shm_create(size_t size, mproc__handle *h)
{
    int fd = anon_shm_fd();
    if (fd < 0) return mproc__fail_os_last();
    int rc;
    do rc = ftruncate(fd, (off_t)size); while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int err = errno;
        close(fd);
        return mproc__fail_os(err);
    }
    *h = fd;
    return 0;
}

int mproc__os_map(mproc__handle h, size_t size, int writable, void **addr)
{
    void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, (int)h, 0);
    if (p == MAP_FAILED) return mproc__fail_os_last();
    *addr = p;
    return 0;
}

void mproc__os_unmap(void *addr, size_t size)
{
    if (addr) munmap(addr, size);
}
