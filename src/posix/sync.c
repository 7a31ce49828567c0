/*
 * POSIX sync blocks and park/unpark (the algorithms are in src/sync.c).
 *
 * Linux: the block is a memfd (no name anywhere) mapped MAP_SHARED, and
 * park/unpark are shared futexes with absolute CLOCK_MONOTONIC deadlines.
 *
 * Portable path (macOS; forced on Linux by MPROC_PORTABLE_POSIX): no memfd,
 * no futex, no sem_timedwait, no robust mutexes. The block is a shm_open
 * object under a random name that is unlinked at once; the name is given to
 * the shm cleaner first (posix/shm.c), so even a SIGKILL between the two
 * calls leaves nothing behind. Parking is a bounded back-off: spin, yield,
 * then sleep 50 us doubling to 1 ms, always cut to the deadline -- timed
 * waits end within a sleep's overshoot (~0.1 ms) of their deadline and a
 * wake-up is seen within 1 ms.
 */
#include "../internal.h"
#include "posix.h"
#include "../atomic.h"
#include "sync_track.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
#  define MPROC_SYNC_FUTEX 1
#  include <linux/futex.h>
#  include <sys/syscall.h>
#endif

struct mproc__os_sync {
    int fd;
    void *mem;
};

static int retry_ftruncate(int fd, off_t size)
{
    int rc;
    do rc = ftruncate(fd, size); while (rc != 0 && errno == EINTR);
    return rc;
}

#if defined(MPROC_SYNC_FUTEX)
static int block_fd(void)
{
    int fd = memfd_create("mproc-sync", MFD_CLOEXEC);
    return fd < 0 ? mproc__fail_os_last() : fd;
}
#else
static int block_fd(void)
{
    char name[MPROC__TRACK_NAME_MAX];
    int rc = mproc__posix_track_name('s', name, sizeof name);
    if (rc) return rc;
    int fd;
    do fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600); while (fd < 0 && errno == EINTR);
    int err = errno;
    if (fd >= 0) shm_unlink(name);
    mproc__posix_track(name, 0);
    if (fd < 0) return mproc__fail_os(err);
    /* shm_open has no O_CLOEXEC on every system; no other thread can have
       spawned with this fd yet except through a foreign fork+exec. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        err = errno;
        close(fd);
        return mproc__fail_os(err);
    }
    return fd;
}
#endif

static int block_map(int fd, mproc__os_sync **out)
{
    mproc__os_sync *b = mproc__calloc(1, sizeof *b);
    if (!b) return MPROC_ENOMEM;
    b->mem = mmap(NULL, MPROC__SYNC_BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (b->mem == MAP_FAILED) {
        int err = errno;
        free(b);
        return mproc__fail_os(err);
    }
    b->fd = fd;
    *out = b;
    return 0;
}

int mproc__os_sync_create(mproc__os_sync **b)
{
    int fd = block_fd();
    if (fd < 0) return fd;
    int rc = retry_ftruncate(fd, MPROC__SYNC_BLOCK) ? mproc__fail_os_last() : 0;
    if (rc == 0) rc = block_map(fd, b);
    if (rc) close(fd);
    return rc;
}

int mproc__os_sync_open(const mproc__handle *h, size_t n, mproc__os_sync **b)
{
    struct stat st;
    if (n != 1 || h[0] < 0) return MPROC_EPROTO;
    /* A handle that is not a block of ours must fail here, not fault later. */
    if (fstat((int)h[0], &st) != 0) return mproc__fail_os_last();
    if (!S_ISREG(st.st_mode) || st.st_size < MPROC__SYNC_BLOCK) return MPROC_EPROTO;
    int fd = fcntl((int)h[0], F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return mproc__fail_os_last();
    int rc = block_map(fd, b);
    if (rc) close(fd);
    return rc;
}

size_t mproc__os_sync_handles(const mproc__os_sync *b, mproc__handle *h)
{
    h[0] = b->fd;
    return 1;
}

void *mproc__os_sync_mem(const mproc__os_sync *b) { return b->mem; }

void mproc__os_sync_free(mproc__os_sync *b)
{
    if (!b) return;
    munmap(b->mem, MPROC__SYNC_BLOCK);
    close(b->fd);
    free(b);
}

/* ---- park / unpark --------------------------------------------------------- */
#if defined(MPROC_SYNC_FUTEX)
int mproc__os_park(mproc__os_sync *b, uint32_t *word, uint32_t expected, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    (void)b;
    if (timeout_ms >= 0) {
        mproc__posix_deadline_ts(timeout_ms, &ts);
        tsp = &ts;
    }
    /* Shared (not PRIVATE): the word is in memory mapped by several processes. */
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return (r != 0 && errno == ETIMEDOUT) ? MPROC_ETIMEDOUT : 0;
}

void mproc__os_unpark(mproc__os_sync *b, uint32_t *word, uint32_t n)
{
    (void)b;
    int cnt = n > (uint32_t)INT32_MAX ? INT32_MAX : (int)n;
    syscall(SYS_futex, word, FUTEX_WAKE, cnt, NULL, NULL, 0);
}
#else
static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int mproc__os_park(mproc__os_sync *b, uint32_t *word, uint32_t expected, int timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : mproc__os_now_ns() + (uint64_t)timeout_ms * 1000000u;
    uint64_t backoff = 50000; /* ns */
    (void)b;
    for (int i = 0; i < 16; i++) {
        if (mproc__load32(word) != expected) return 0;
        sched_yield();
    }
    for (;;) {
        if (mproc__load32(word) != expected) return 0;
        uint64_t now = mproc__os_now_ns();
        if (now >= deadline) return MPROC_ETIMEDOUT;
        sleep_ns(deadline - now < backoff ? deadline - now : backoff);
        if (backoff < 1000000) backoff *= 2;
    }
}

void mproc__os_unpark(mproc__os_sync *b, uint32_t *word, uint32_t n)
{
    /* Sleepers poll their word, and every unpark follows a change to it. */
    (void)b;
    (void)word;
    (void)n;
}
#endif

/* ---- owner liveness and fork ----------------------------------------------- */
static void (*atfork_fn)(void);
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    if (atfork_fn) atfork_fn();
}

static void atfork_register(void) { pthread_atfork(NULL, NULL, atfork_child); }

void mproc__os_sync_atfork(void (*fn)(void))
{
    atfork_fn = fn;
    pthread_once(&atfork_once, atfork_register);
}
