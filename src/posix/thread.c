/* POSIX threads and mutexes for the parent's own background work. */
#include "../internal.h"

#include <pthread.h>

struct mproc__os_thread {
    pthread_t tid;
    void (*fn)(void *);
    void *arg;
};

struct mproc__os_mutex {
    pthread_mutex_t m;
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;

void mproc__os_global_lock(void) { pthread_mutex_lock(&global_lock); }
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
