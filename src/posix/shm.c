/*
 * POSIX shared-memory objects for mproc_shm_*, and the shm cleaner.
 *
 * User-named segments are plain shm_open objects (O_EXCL, 0600); they live
 * until someone unlinks them, as POSIX shared memory does.
 *
 * Generated names must be openable by name while their creator lives and
 * vanish with it, even if it is SIGKILLed:
 *  - Linux: a memfd, which has no name in any namespace. The generated name
 *    "mproc-<pid>-<fd>-<token>" tells mproc_shm_open where to find it,
 *    /proc/<pid>/fd/<fd>, and the memfd's own label must carry <token> (80
 *    random bits), checked on the descriptor actually opened. Nothing ever
 *    appears in /dev/shm; the kernel frees the memory with its last user.
 *  - Elsewhere (macOS): a real shm name, registered with the cleaner before
 *    it is created. The cleaner is a small process forked (twice, into its
 *    own session, with every other descriptor closed and job-control
 *    signals ignored) on first use. It only reads names from a socket and,
 *    when the socket reports end of stream -- every process that could
 *    write to it has ended, however -- unlinks the names still listed.
 *    Unlike CPython's resource tracker it is not a second interpreter, is
 *    not shared with spawned children (so one child's exit never unlinks a
 *    segment another still uses: only the creator registers), survives a
 *    kill of the process group, and also covers mproc's sync blocks during
 *    the microseconds their names exist.
 */
#include "../internal.h"
#include "sync_track.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#  include <sys/syscall.h>
#endif

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
#  define MPROC_SHM_MEMFD 1
#endif
#if defined(MSG_NOSIGNAL)
#  define SEND_FLAGS MSG_NOSIGNAL
#else
#  define SEND_FLAGS 0
#endif

#define REC 32 /* one cleaner record: '+' or '-', then the NUL-padded name */

static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return (flags >= 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0) ? 0 : -1;
}

/* ---- the cleaner process (async-signal-safe calls only) ----------------- */
typedef struct name_table { char (*rec)[REC]; size_t n, cap; } name_table;

static int table_add(name_table *t, const char *rec)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 128;
        void *p = mmap(NULL, cap * REC, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
        if (p == MAP_FAILED) return -1;
        if (t->n) memcpy(p, t->rec, t->n * REC);
        if (t->rec) munmap(t->rec, t->cap * REC);
        t->rec = p;
        t->cap = cap;
    }
    memcpy(t->rec[t->n++], rec, REC);
    return 0;
}

static void table_forget(name_table *t, const char *rec)
{
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(t->rec[i] + 1, rec + 1, REC - 1) == 0) {
            memcpy(t->rec[i], t->rec[--t->n], REC);
            return;
        }
}

static void cleaner_close_others(int keep, int maxfd)
{
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, 0, keep - 1, 0) == 0 &&
        syscall(SYS_close_range, keep + 1, ~0u, 0) == 0)
        return;
#endif
    for (int fd = 0; fd < maxfd; fd++)
        if (fd != keep) close(fd);
}

static void cleaner_main(int fd, int maxfd)
{
    static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sigaction(ignored[i], &sa, NULL);
    cleaner_close_others(fd, maxfd);
    name_table t = {NULL, 0, 0};
    char rec[REC];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, rec + have, REC - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
        if (have < REC) continue;
        have = 0;
        rec[REC - 1] = '\0';
        if (rec[0] == '+') table_add(&t, rec);
        else table_forget(&t, rec);
    }
    for (size_t i = 0; i < t.n; i++) shm_unlink(t.rec[i] + 1);
    _exit(0);
}

static int track_fd = -1;

/* A forked child (fork start method, or the program's own fork) is not
   the creator of its parent's names: holding the parent's socket would keep
   them until the child ends too, and its own names would die only with
   the parent. It starts its own cleaner when it needs one. */
static void forget_cleaner_in_child(void)
{
    if (track_fd >= 0) close(track_fd);
    track_fd = -1;
}

/* Caller holds the global lock. */
static int cleaner_start(void)
{
    static int atfork_registered;
    if (!atfork_registered) atfork_registered = pthread_atfork(NULL, NULL, forget_cleaner_in_child) == 0;
    int sv[2];
    struct rlimit rl;
    int maxfd = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                 rl.rlim_cur < 65536) ? (int)rl.rlim_cur : 65536;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return mproc__fail_os_last();
    if (set_cloexec(sv[0]) || set_cloexec(sv[1])) goto fail;
#if defined(SO_NOSIGPIPE)
    int one = 1;
    if (setsockopt(sv[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) goto fail;
#endif
    pid_t pid = fork();
    if (pid < 0) goto fail;
    if (pid == 0) { /* the first child only starts the cleaner and exits */
        setsid();
        pid_t g = fork();
        if (g == 0) cleaner_main(sv[0], maxfd);
        _exit(g < 0 ? 1 : 0);
    }
    close(sv[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close(sv[1]);
        return mproc__fail_os(EAGAIN);
    }
    track_fd = sv[1];
    return 0;
fail:;
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return mproc__fail_os(err);
}

static int track_send(const char *rec)
{
    size_t done = 0;
    while (done < REC) {
        ssize_t n = send(track_fd, rec + done, REC - done, SEND_FLAGS);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

int mproc__posix_track(const char *name, int add)
{
    char rec[REC];
    size_t len = strlen(name);
    if (len >= REC - 1) return MPROC_EINVAL;
    memset(rec, 0, sizeof rec);
    rec[0] = add ? '+' : '-';
    memcpy(rec + 1, name, len);
    int rc = 0;
    mproc__os_global_lock();
    for (int attempt = 0; attempt < 2; attempt++) {
        if (track_fd < 0 && (rc = cleaner_start()) != 0) break;
        if (track_send(rec) == 0) {
            rc = 0;
            break;
        }
        /* The cleaner is gone (someone killed it): start another. */
        rc = mproc__fail_os_last();
        close(track_fd);
        track_fd = -1;
    }
    mproc__os_global_unlock();
    return rc;
}

int mproc__posix_track_name(char tag, char *name, size_t cap)
{
    unsigned char r[11];
    if (cap < MPROC__TRACK_NAME_MAX) return MPROC_EINVAL;
    int rc = mproc__os_random(r, sizeof r);
    if (rc) return rc;
    int n = snprintf(name, cap, "/mproc-%c", tag);
    for (size_t i = 0; i < sizeof r; i++) n += snprintf(name + n, cap - (size_t)n, "%02x", r[i]);
    return mproc__posix_track(name, 1);
}

/* ---- segments -------------------------------------------------------------- */
static int shm_path(const char *name, char *path, size_t cap)
{
    int n = snprintf(path, cap, "/%s", name);
    return (n > 0 && (size_t)n < cap) ? 0 : MPROC_EINVAL;
}

static int size_fd(int fd, size_t size)
{
    int rc;
    do rc = ftruncate(fd, (off_t)size); while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : mproc__fail_os_last();
}

static int open_path(const char *path, int flags, int *fd)
{
    do *fd = shm_open(path, flags, 0600); while (*fd < 0 && errno == EINTR);
    if (*fd < 0) {
        if (errno == EEXIST) return MPROC_EEXIST;
        if (errno == ENOENT) return MPROC_ENOENT;
        return mproc__fail_os_last();
    }
    if (set_cloexec(*fd) != 0) {
        int err = errno;
        close(*fd);
        return mproc__fail_os(err);
    }
    return 0;
}

int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h)
{
    char path[MPROC__SHM_NAME_MAX + 2];
    int fd, rc = shm_path(name, path, sizeof path);
    if (rc == 0) rc = open_path(path, O_RDWR | O_CREAT | O_EXCL, &fd);
    if (rc) return rc;
    if ((rc = size_fd(fd, size)) != 0) {
        shm_unlink(path);
        close(fd);
        return rc;
    }
    *h = fd;
    return 0;
}

#if defined(MPROC_SHM_MEMFD)
#define TOKEN_HEX 20

static int memfd_label_ok(int fd, const char *token)
{
    char path[64], target[128], want[96];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = '\0';
    snprintf(want, sizeof want, "/memfd:mproc-%s (deleted)", token);
    return strcmp(target, want) == 0;
}

int mproc__os_shm_create_private(size_t size, char *name, size_t cap, mproc__handle *h)
{
    unsigned char r[TOKEN_HEX / 2];
    char token[TOKEN_HEX + 1], label[32];
    int rc = mproc__os_random(r, sizeof r);
    if (rc) return rc;
    for (size_t i = 0; i < sizeof r; i++) snprintf(token + 2 * i, 3, "%02x", r[i]);
    snprintf(label, sizeof label, "mproc-%s", token);
    int fd = memfd_create(label, MFD_CLOEXEC);
    if (fd < 0) return mproc__fail_os_last();
    if (fchmod(fd, 0600) != 0 || (rc = size_fd(fd, size)) != 0) {
        rc = rc ? rc : mproc__fail_os_last();
        close(fd);
        return rc;
    }
    int n = snprintf(name, cap, "mproc-%ld-%d-%s", (long)getpid(), fd, token);
    if (n < 0 || (size_t)n >= cap) {
        close(fd);
        return MPROC_EINVAL;
    }
    *h = fd;
    return 0;
}

/* "mproc-<pid>-<fd>-<token>" -> its parts; 0 if name is not of that form. */
static int parse_private(const char *name, long *pid, int *fd, char token[TOKEN_HEX + 1])
{
    char again[MPROC__SHM_NAME_MAX];
    if (sscanf(name, "mproc-%ld-%d-%20[0-9a-f]", pid, fd, token) != 3) return 0;
    snprintf(again, sizeof again, "mproc-%ld-%d-%s", *pid, *fd, token);
    return strcmp(again, name) == 0 && strlen(token) == TOKEN_HEX && *pid > 0 && *fd >= 0;
}

static int open_private(const char *name, mproc__handle *h)
{
    long pid;
    int fd;
    char token[TOKEN_HEX + 1], path[64];
    if (!parse_private(name, &pid, &fd, token)) return MPROC_ENOENT;
    snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, fd);
    int mine;
    do mine = open(path, O_RDWR | O_CLOEXEC); while (mine < 0 && errno == EINTR);
    if (mine < 0) {
        /* Whatever /proc says (gone, a socket, someone else's), the name
           does not designate a live segment of ours -- unless we are out
           of descriptors or memory. */
        int err = errno;
        if (err == EMFILE || err == ENFILE || err == ENOMEM) return mproc__fail_os(err);
        return MPROC_ENOENT;
    }
    /* Check what was opened, not what the path named a moment before. */
    if (!memfd_label_ok(mine, token)) {
        close(mine);
        return MPROC_ENOENT;
    }
    *h = mine;
    return 0;
}

static int is_private_name(const char *name)
{
    long pid;
    int fd;
    char token[TOKEN_HEX + 1];
    return parse_private(name, &pid, &fd, token);
}
#else
int mproc__os_shm_create_private(size_t size, char *name, size_t cap, mproc__handle *h)
{
    char path[MPROC__TRACK_NAME_MAX];
    int fd, rc = mproc__posix_track_name('m', path, sizeof path);
    if (rc) return rc;
    rc = open_path(path, O_RDWR | O_CREAT | O_EXCL, &fd);
    if (rc == 0 && (rc = size_fd(fd, size)) != 0) {
        shm_unlink(path);
        close(fd);
    }
    if (rc == 0 && (size_t)snprintf(name, cap, "%s", path + 1) >= cap) {
        shm_unlink(path);
        close(fd);
        rc = MPROC_EINVAL;
    }
    if (rc) {
        mproc__posix_track(path, 0);
        return rc;
    }
    *h = fd;
    return 0;
}

static int open_private(const char *name, mproc__handle *h)
{
    (void)name;
    (void)h;
    return MPROC_ENOENT;
}

static int is_private_name(const char *name)
{
    (void)name;
    return 0;
}

/* A name made by mproc__os_shm_create_private ("mproc-m" + 22 hex). */
static int is_generated_name(const char *name)
{
    if (strncmp(name, "mproc-m", 7) != 0 || strlen(name) != 29) return 0;
    return strspn(name + 7, "0123456789abcdef") == 22;
}
#endif

int mproc__os_shm_size(mproc__handle h, size_t *size)
{
    struct stat st;
    if (fstat((int)h, &st) != 0) return mproc__fail_os_last();
    if (!S_ISREG(st.st_mode) || st.st_size < 0) return MPROC_EPROTO;
    *size = (size_t)st.st_size;
    return 0;
}

int mproc__os_shm_open(const char *name, mproc__handle *h, size_t *size)
{
    char path[MPROC__SHM_NAME_MAX + 2];
    int fd, rc;
    if (is_private_name(name)) {
        rc = open_private(name, h);
        if (rc) return rc;
        fd = (int)*h;
    } else {
        rc = shm_path(name, path, sizeof path);
        if (rc == 0) rc = open_path(path, O_RDWR, &fd);
        if (rc) return rc;
    }
    rc = mproc__os_shm_size(fd, size);
    if (rc) {
        close(fd);
        return rc;
    }
    *h = fd;
    return 0;
}

int mproc__os_shm_unlink(const char *name, int created_here, mproc__handle *h)
{
    char path[MPROC__SHM_NAME_MAX + 2];
    if (is_private_name(name)) {
        if (!created_here) return MPROC_ENOTSUP; /* it lives and dies with its creator */
        /* The name is the descriptor's number: move the memory to another. */
        int moved = fcntl((int)*h, F_DUPFD_CLOEXEC, 3);
        if (moved < 0) return mproc__fail_os_last();
        close((int)*h);
        *h = moved;
        return 0;
    }
#if !defined(MPROC_SHM_MEMFD)
    int generated = is_generated_name(name);
    if (generated && !created_here) return MPROC_ENOTSUP; /* as with memfds */
#endif
    int rc = shm_path(name, path, sizeof path);
    if (rc) return rc;
    if (shm_unlink(path) != 0) return errno == ENOENT ? MPROC_ENOENT : mproc__fail_os_last();
#if !defined(MPROC_SHM_MEMFD)
    if (generated) mproc__posix_track(path, 0);
#endif
    return 0;
}

int mproc__os_shm_dup(mproc__handle h, mproc__handle *out)
{
    int fd = fcntl((int)h, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return mproc__fail_os_last();
    *out = fd;
    return 0;
}
