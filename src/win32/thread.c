/*
 * Win32: threads, mutexes and condition variables for the parent's own
 * background work.
 * SRW locks need no destruction and have a static initialiser, which is what
 * the global lock needs to be usable before anything is initialised.
 */
#include "w32.h"

#include <malloc.h> /* _msize */

struct mproc__os_thread {
    HANDLE handle;
    void (*fn)(void *);
    void *arg;
};

struct mproc__os_mutex {
    SRWLOCK lock;
};

struct mproc__os_cond {
    CONDITION_VARIABLE cv;
};

static DWORD WINAPI thread_main(LPVOID param)
{
    mproc__os_thread *t = param;
    t->fn(t->arg);
    return 0;
}

int mproc__os_thread_start(mproc__os_thread **out, void (*fn)(void *), void *arg)
{
    mproc__os_thread *t = mproc__calloc(1, sizeof *t);
    if (t == NULL)
        return MPROC_ENOMEM;
    t->fn = fn;
    t->arg = arg;
    /* CreateThread rather than _beginthreadex: failures then come with
       GetLastError(), and today's C runtimes set up per-thread state
       lazily for threads made either way. */
    t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    if (t->handle == NULL) {
        int rc = mproc__fail_os_last();
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void mproc__os_thread_join(mproc__os_thread *t)
{
    if (t == NULL)
        return;
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
    free(t);
}

int mproc__os_mutex_create(mproc__os_mutex **out)
{
    mproc__os_mutex *m = mproc__calloc(1, sizeof *m);
    if (m == NULL)
        return MPROC_ENOMEM;
    InitializeSRWLock(&m->lock);
    *out = m;
    return 0;
}

void mproc__os_mutex_lock(mproc__os_mutex *m)
{
    AcquireSRWLockExclusive(&m->lock);
}

void mproc__os_mutex_unlock(mproc__os_mutex *m)
{
    ReleaseSRWLockExclusive(&m->lock);
}

void mproc__os_mutex_destroy(mproc__os_mutex *m)
{
    free(m);
}

int mproc__os_cond_create(mproc__os_cond **out)
{
    mproc__os_cond *c = mproc__calloc(1, sizeof *c);
    if (c == NULL)
        return MPROC_ENOMEM;
    InitializeConditionVariable(&c->cv);
    *out = c;
    return 0;
}

int mproc__os_cond_wait(mproc__os_cond *c, mproc__os_mutex *m, int timeout_ms)
{
    DWORD ms = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    if (SleepConditionVariableSRW(&c->cv, &m->lock, ms, 0))
        return 0;
    /* The lock is held again on failure too. */
    return GetLastError() == ERROR_TIMEOUT ? MPROC_ETIMEDOUT : mproc__fail_os_last();
}

void mproc__os_cond_broadcast(mproc__os_cond *c)
{
    WakeAllConditionVariable(&c->cv);
}

void mproc__os_cond_destroy(mproc__os_cond *c)
{
    free(c); /* condition variables need no cleanup */
}

static SRWLOCK global_lock = SRWLOCK_INIT;

void mproc__os_global_lock(void)
{
    AcquireSRWLockExclusive(&global_lock);
}

void mproc__os_global_unlock(void)
{
    ReleaseSRWLockExclusive(&global_lock);
}

/* ---- a hook at thread exit, and malloc's block sizes ------------------------ */
/* A fiber-local slot with a callback: Windows calls it at the exit of
   every thread whose value is not NULL, with that value (the hook). */
static DWORD exit_slot = FLS_OUT_OF_INDEXES;
static INIT_ONCE exit_once = INIT_ONCE_STATIC_INIT;

static void WINAPI exit_hook(PVOID hook)
{
    if (hook) ((const mproc__os_exit_hook *)hook)->fn();
}

static BOOL CALLBACK exit_slot_make(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    exit_slot = FlsAlloc(exit_hook);
    return TRUE;
}

int mproc__os_at_thread_exit(const mproc__os_exit_hook *hook)
{
    InitOnceExecuteOnce(&exit_once, exit_slot_make, NULL, NULL);
    if (exit_slot == FLS_OUT_OF_INDEXES) return MPROC_EOS;
    return FlsSetValue(exit_slot, (PVOID)(uintptr_t)hook) ? 0 : MPROC_EOS;
}

size_t mproc__os_block_size(void *p)
{
    size_t n = _msize(p);
    return n == (size_t)-1 ? 0 : n;
}
