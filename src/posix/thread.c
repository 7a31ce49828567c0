/* POSIX threads and mutexes for the parent's own background work. */
#include "../internal.h"
#include "posix.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#if defined(__APPLE__)
#  include <malloc/malloc.h> /* malloc_size */
#elif defined(__GLIBC__) || defined(__linux__) || defined(__FreeBSD__)
#  include <malloc.h> /* malloc_usable_size */
#endif

struct mproc__os_thread {
    pthread_t tid;
    void (*fn)(void *);
    void *arg;
};

struct mproc__os_mutex {
    pthread_mutex_t m;
};

static pthread_mutex_t global_lock;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* A fork() while another thread holds the global lock would leave the
   child's copy locked for ever (the holder does not exist there): hold it
   across every fork, ours or the program's. Recursive, because mproc may
   itself fork while holding it (the shm cleaner is started that way). The
   child gets a fresh lock: its copy names the parent's thread as owner,
   which its one thread is not. */
static void global_make(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&global_lock, &attr);
    pthread_mutexattr_destroy(&attr);
}

static void fork_prepare(void) { pthread_mutex_lock(&global_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&global_lock); }
static void fork_child(void) { global_make(); }

static void global_init(void)
{
    global_make();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void mproc__os_global_lock(void)
{
    pthread_once(&global_once, global_init);
    pthread_mutex_lock(&global_lock);
}

void mproc__os_global_unlock(void) { pthread_mutex_unlock(&global_lock); }

static void *thread_main(void *arg)
{
    mproc__os_thread *t = arg;
    t->fn(t->arg);
    return NULL;
}

int mproc__os_thread_start(mproc__os_thread **out, void (*fn)(void *), void *arg)
{
    mproc__os_thread *t = mproc__calloc(1, sizeof *t);
    if (!t) return MPROC_ENOMEM;
    t->fn = fn;
    t->arg = arg;
    int rc = pthread_create(&t->tid, NULL, thread_main, t);
    if (rc) {
        free(t);
        return mproc__fail_os(rc);
    }
    *out = t;
    return 0;
}

void mproc__os_thread_join(mproc__os_thread *t)
{
    if (!t) return;
    pthread_join(t->tid, NULL);
    free(t);
}

int mproc__os_mutex_create(mproc__os_mutex **out)
{
    mproc__os_mutex *m = mproc__calloc(1, sizeof *m);
    if (!m) return MPROC_ENOMEM;
    int rc = pthread_mutex_init(&m->m, NULL);
    if (rc) {
        free(m);
        return mproc__fail_os(rc);
    }
    *out = m;
    return 0;
}

void mproc__os_mutex_lock(mproc__os_mutex *m) { pthread_mutex_lock(&m->m); }
void mproc__os_mutex_unlock(mproc__os_mutex *m) { pthread_mutex_unlock(&m->m); }

void mproc__os_mutex_destroy(mproc__os_mutex *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->m);
    free(m);
}

struct mproc__os_cond {
    pthread_cond_t c;
};

int mproc__os_cond_create(mproc__os_cond **out)
{
    pthread_condattr_t attr;
    mproc__os_cond *c = mproc__calloc(1, sizeof *c);
    if (!c) return MPROC_ENOMEM;
    int rc = pthread_condattr_init(&attr);
#if !defined(__APPLE__)
    /* Deadlines on the monotonic clock: immune to wall-clock jumps. */
    if (!rc) rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    if (!rc) rc = pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
    if (rc) {
        free(c);
        return mproc__fail_os(rc);
    }
    *out = c;
    return 0;
}

int mproc__os_cond_wait(mproc__os_cond *c, mproc__os_mutex *m, int timeout_ms)
{
    if (timeout_ms < 0) {
        pthread_cond_wait(&c->c, &m->m);
        return 0;
    }
#if defined(__APPLE__)
    struct timespec rel = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int rc = pthread_cond_timedwait_relative_np(&c->c, &m->m, &rel);
#else
    struct timespec ts;
    mproc__posix_deadline_ts(timeout_ms, &ts);
    int rc = pthread_cond_timedwait(&c->c, &m->m, &ts);
#endif
    return rc == ETIMEDOUT ? MPROC_ETIMEDOUT : 0;
}

void mproc__os_cond_broadcast(mproc__os_cond *c) { pthread_cond_broadcast(&c->c); }

void mproc__os_cond_destroy(mproc__os_cond *c)
{
    if (!c) return;
    pthread_cond_destroy(&c->c);
    free(c);
}

/* ---- a hook at thread exit, and malloc's block sizes ------------------------ */
/* A key whose value, set by each thread that arms a hook, is the hook:
   POSIX runs a key's destructor at the exit of every thread whose value
   is not NULL, with that value. */
static pthread_key_t exit_key;
static int exit_key_ok;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void exit_hook(void *hook) { ((const mproc__os_exit_hook *)hook)->fn(); }

static void exit_key_make(void) { exit_key_ok = pthread_key_create(&exit_key, exit_hook) == 0; }

int mproc__os_at_thread_exit(const mproc__os_exit_hook *hook)
{
    if (pthread_once(&exit_once, exit_key_make) != 0 || !exit_key_ok) return MPROC_EOS;
    return pthread_setspecific(exit_key, hook) == 0 ? 0 : MPROC_EOS;
}

size_t mproc__os_block_size(void *p)
{
#if defined(__APPLE__)
    return malloc_size(p);
#elif defined(__GLIBC__) || defined(__linux__) || defined(__FreeBSD__)
    return malloc_usable_size(p);
#else
    (void)p;
    return 0;
#endif
}
