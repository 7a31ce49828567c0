/* Lock, RLock, Semaphore, Event, Condition and Barrier across real
   processes: semantics, timeouts, dead holders, refs, bad input, leaks.
   Children are sequenced with mproc's own events/semaphores, never sleeps. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#ifndef _WIN32
#  include <dirent.h>
#endif

#define LONG_MS 60000   /* "forever" in a test: far beyond any real wait */
enum { HOLD_LOCK = 1, HOLD_RLOCK = 2 };

/* The argument every child gets: refs to the objects it uses, and a number. */
typedef struct targ {
    mproc_ref r[4];
    int n;
} targ;

/* Copied out, so an argument of the wrong length reads as zeros. */
static const targ *child_arg(targ *buf, const void *arg, size_t len)
{
    memset(buf, 0, sizeof *buf);
    if (len == sizeof *buf) memcpy(buf, arg, len);
    return buf;
}

static targ arg_of(int n) { targ a; memset(&a, 0, sizeof a); a.n = n; return a; }

static uint64_t now_ms(void) { return mproc__os_now_ms(); }

/* Shared counters for children: a generated shared-memory segment. */
static mproc_shm *counters(volatile int **p)
{
    mproc_shm *s = NULL;
    assert_int_equal(mproc_shm_create(&s, NULL, 4096), 0);
    *p = mproc_shm_ptr(s);
    return s;
}

/* ---- Lock ------------------------------------------------------------------ */
static void lock_basic(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_lock_release(l), 0);
    assert_int_equal(mproc_lock_release(l), MPROC_ESTATE);
    assert_int_equal(mproc_lock_acquire(l, MPROC_FOREVER), 0);
    assert_int_equal(mproc_lock_release(l), 0);
    assert_int_equal(mproc_lock_acquire(l, -2), MPROC_EINVAL);
    mproc_lock_destroy(l);
}

static void lock_timed_wait(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_lock_acquire(l, 300), MPROC_ETIMEDOUT);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 300 && dt < 300 + 5000);
    mproc_lock_destroy(l);
}

/* Child: releases a lock the parent holds (Lock has no owner). */
static int child_release_lock(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_lock *l = NULL;
    if (len != sizeof *a || mproc_lock_attach(&a->r[0], &l) != 0) return 10;
    int rc = mproc_lock_release(l);
    mproc_lock_destroy(l);
    return rc == 0 ? 0 : 11;
}

static void lock_released_by_other_process(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    assert_int_equal(tu_run_child(child_release_lock, &a, sizeof a), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    mproc_lock_destroy(l);
}

/* Child: a.n rounds of a deliberately racy read-yield-write under the lock. */
static int child_count_under_lock(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_lock *l = NULL;
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_lock_attach(&a->r[0], &l) || mproc_shm_attach(&a->r[1], &s))
        return 10;
    volatile int *c = mproc_shm_ptr(s);
    for (int i = 0; i < a->n; i++) {
        if (mproc_lock_acquire(l, LONG_MS) != 0) return 11;
        int v = c[0];
        if ((i & 63) == 0) mproc__os_sleep_ms(0);
        c[0] = v + 1;
        if (mproc_lock_release(l) != 0) return 12;
    }
    mproc_shm_destroy(s);
    mproc_lock_destroy(l);
    return 0;
}

static void lock_mutual_exclusion(void **state)
{
    (void)state;
    volatile int *c;
    mproc_shm *s = counters(&c);
    mproc_lock *l = NULL;
    targ a = arg_of(20000);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    assert_int_equal(mproc_shm_ref(s, &a.r[1]), 0);
    mproc_process *p[3];
    for (int i = 0; i < 3; i++) p[i] = tu_start(child_count_under_lock, &a, sizeof a);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tu_join(p[i]), 0);
        mproc_process_destroy(p[i]);
    }
    assert_int_equal(c[0], 3 * 20000);
    mproc_lock_destroy(l);
    mproc_shm_destroy(s);
}

/* Child: takes the lock (r[0]), reports it (event r[1]) and waits to die. */
static int child_hold_and_hang(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_event *e = NULL;
    if (len != sizeof *a || mproc_event_attach(&a->r[1], &e)) return 10;
    int rc;
    if (a->n == HOLD_RLOCK) {
        mproc_rlock *l = NULL;
        if (mproc_rlock_attach(&a->r[0], &l)) return 11;
        rc = mproc_rlock_acquire(l, LONG_MS);
        if (rc == 0) rc = mproc_rlock_acquire(l, LONG_MS); /* depth 2 */
    } else {
        mproc_lock *l = NULL;
        if (mproc_lock_attach(&a->r[0], &l)) return 11;
        rc = mproc_lock_acquire(l, LONG_MS);
    }
    if (rc) return 12;
    mproc_event_set(e);
    for (;;) mproc__os_sleep_ms(1000);
}

/* Kills a child holding the object behind a.r[0]; returns it unreaped. */
static mproc_process *kill_holder(targ *a, int kind)
{
    mproc_event *e = NULL;
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_event_ref(e, &a->r[1]), 0);
    a->n = kind;
    mproc_process *p = tu_start(child_hold_and_hang, a, sizeof *a);
    assert_int_equal(mproc_event_wait(e, LONG_MS), 0);
    assert_int_equal(mproc_process_kill(p), 0);
    mproc_event_destroy(e);
    return p;
}

static void lock_owner_dies(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    mproc_process *p = kill_holder(&a, HOLD_LOCK);
    /* Not joined yet: the dead holder may still be an unreaped zombie. */
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_lock_acquire(l, LONG_MS), MPROC_EOWNERDEAD);
    assert_true(now_ms() - t0 < 10000);
    assert_int_equal(mproc_lock_acquire(l, 0), MPROC_ETIMEDOUT); /* we hold it */
    assert_int_equal(mproc_lock_release(l), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    assert_int_equal(mproc_lock_release(l), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    mproc_lock_destroy(l);
}

static void lock_owner_dies_try(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    mproc_process *p = kill_holder(&a, HOLD_LOCK);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    assert_int_equal(mproc_lock_acquire(l, 0), MPROC_EOWNERDEAD);
    assert_int_equal(mproc_lock_release(l), 0);
    mproc_lock_destroy(l);
}

/* ---- RLock ----------------------------------------------------------------- */
static void rlock_recursion(void **state)
{
    (void)state;
    mproc_rlock *l = NULL;
    assert_int_equal(mproc_rlock_create(&l), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_rlock_acquire(l, 0), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_rlock_release(l), 0);
    assert_int_equal(mproc_rlock_release(l), MPROC_ESTATE);
    mproc_rlock_destroy(l);
}

/* Child: the parent holds the rlock: release is ESTATE, acquire times out. */
static int child_rlock_not_owner(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_rlock *l = NULL;
    if (len != sizeof *a || mproc_rlock_attach(&a->r[0], &l)) return 10;
    if (mproc_rlock_release(l) != MPROC_ESTATE) return 11;
    if (mproc_rlock_acquire(l, 0) != MPROC_ETIMEDOUT) return 12;
    if (mproc_rlock_acquire(l, 200) != MPROC_ETIMEDOUT) return 13;
    mproc_rlock_destroy(l);
    return 0;
}

static void rlock_other_process(void **state)
{
    (void)state;
    mproc_rlock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_rlock_create(&l), 0);
    assert_int_equal(mproc_rlock_ref(l, &a.r[0]), 0);
    assert_int_equal(mproc_rlock_acquire(l, 0), 0);
    assert_int_equal(tu_run_child(child_rlock_not_owner, &a, sizeof a), 0);
    assert_int_equal(mproc_rlock_release(l), 0);
    mproc_rlock_destroy(l);
}

static void rlock_owner_dies(void **state)
{
    (void)state;
    mproc_rlock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_rlock_create(&l), 0);
    assert_int_equal(mproc_rlock_ref(l, &a.r[0]), 0);
    mproc_process *p = kill_holder(&a, HOLD_RLOCK);
    assert_int_equal(mproc_rlock_acquire(l, LONG_MS), MPROC_EOWNERDEAD);
    /* Ours now, once: the dead owner's depth of 2 is gone. */
    assert_int_equal(mproc_rlock_release(l), 0);
    assert_int_equal(mproc_rlock_release(l), MPROC_ESTATE);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    mproc_rlock_destroy(l);
}

/* ---- Semaphore --------------------------------------------------------------- */
static void sem_basic(void **state)
{
    (void)state;
    mproc_sem *s = NULL;
    unsigned v = 99;
    assert_int_equal(mproc_sem_create(&s, 2, 0), 0);
    assert_int_equal(mproc_sem_value(s, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(mproc_sem_acquire(s, 0), 0);
    assert_int_equal(mproc_sem_acquire(s, 0), 0);
    assert_int_equal(mproc_sem_acquire(s, 0), MPROC_ETIMEDOUT);
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_sem_acquire(s, 250), MPROC_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 250);
    for (int i = 0; i < 5; i++) assert_int_equal(mproc_sem_release(s), 0);
    assert_int_equal(mproc_sem_value(s, &v), 0);
    assert_int_equal(v, 5);
    mproc_sem_destroy(s);
}

static void sem_bounded(void **state)
{
    (void)state;
    mproc_sem *s = NULL;
    unsigned v;
    assert_int_equal(mproc_sem_create(&s, 3, 2), MPROC_EINVAL);
    assert_int_equal(mproc_sem_create(&s, 1, 2), 0);
    assert_int_equal(mproc_sem_release(s), 0);
    assert_int_equal(mproc_sem_release(s), MPROC_EINVAL);
    assert_int_equal(mproc_sem_value(s, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(mproc_sem_acquire(s, 0), 0);
    assert_int_equal(mproc_sem_release(s), 0);
    mproc_sem_destroy(s);
}

/* Child: a.n releases of the semaphore r[0]. */
static int child_sem_release(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_sem *s = NULL;
    if (len != sizeof *a || mproc_sem_attach(&a->r[0], &s)) return 10;
    for (int i = 0; i < a->n; i++)
        if (mproc_sem_release(s)) return 11;
    mproc_sem_destroy(s);
    return 0;
}

static void sem_across_processes(void **state)
{
    (void)state;
    mproc_sem *s = NULL;
    targ a = arg_of(3);
    assert_int_equal(mproc_sem_create(&s, 0, 0), 0);
    assert_int_equal(mproc_sem_ref(s, &a.r[0]), 0);
    mproc_process *p = tu_start(child_sem_release, &a, sizeof a);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_sem_acquire(s, LONG_MS), 0);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    assert_int_equal(mproc_sem_acquire(s, 0), MPROC_ETIMEDOUT);
    mproc_sem_destroy(s);
}

/* ---- Event ------------------------------------------------------------------ */
static void event_basic(void **state)
{
    (void)state;
    mproc_event *e = NULL;
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_event_is_set(e), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_event_wait(e, 200), MPROC_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 200);
    assert_int_equal(mproc_event_wait(e, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_event_set(e), 0);
    assert_int_equal(mproc_event_is_set(e), 1);
    assert_int_equal(mproc_event_wait(e, 0), 0);
    assert_int_equal(mproc_event_wait(e, MPROC_FOREVER), 0);
    assert_int_equal(mproc_event_clear(e), 0);
    assert_int_equal(mproc_event_is_set(e), 0);
    mproc_event_destroy(e);
}

/* Child: counts itself in (sem r[1]), waits for the event r[0]. */
static int child_event_wait(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_event *e = NULL;
    mproc_sem *in = NULL;
    if (len != sizeof *a || mproc_event_attach(&a->r[0], &e) || mproc_sem_attach(&a->r[1], &in))
        return 10;
    mproc_sem_release(in);
    int rc = mproc_event_wait(e, LONG_MS);
    mproc_event_destroy(e);
    mproc_sem_destroy(in);
    return rc == 0 ? 0 : 11;
}

static void event_wakes_all(void **state)
{
    (void)state;
    mproc_event *e = NULL;
    mproc_sem *in = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_sem_create(&in, 0, 0), 0);
    assert_int_equal(mproc_event_ref(e, &a.r[0]), 0);
    assert_int_equal(mproc_sem_ref(in, &a.r[1]), 0);
    mproc_process *p[3];
    for (int i = 0; i < 3; i++) p[i] = tu_start(child_event_wait, &a, sizeof a);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_sem_acquire(in, LONG_MS), 0);
    assert_int_equal(mproc_event_set(e), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tu_join(p[i]), 0);
        mproc_process_destroy(p[i]);
    }
    mproc_event_destroy(e);
    mproc_sem_destroy(in);
}

/* ---- Condition ---------------------------------------------------------------- */
static void cond_needs_lock(void **state)
{
    (void)state;
    mproc_cond *c = NULL;
    assert_int_equal(mproc_cond_create(&c, NULL), 0);
    assert_non_null(mproc_cond_lock(c));
    assert_int_equal(mproc_cond_wait(c, 0), MPROC_ESTATE);
    assert_int_equal(mproc_cond_notify(c, 1), MPROC_ESTATE);
    assert_int_equal(mproc_cond_notify_all(c), MPROC_ESTATE);
    assert_int_equal(mproc_cond_acquire(c, 0), 0);
    assert_int_equal(mproc_cond_acquire(c, 0), 0); /* recursive */
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_cond_wait(c, 200), MPROC_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 200);
    /* Held again, at depth 2. */
    assert_int_equal(mproc_cond_notify(c, 1), 0);
    assert_int_equal(mproc_cond_release(c), 0);
    assert_int_equal(mproc_cond_release(c), 0);
    assert_int_equal(mproc_cond_release(c), MPROC_ESTATE);
    mproc_cond_destroy(c);
}

/* Child: waits on the condition r[0], counting itself in with sem r[1]
   (while holding the lock, so the parent can only take the lock once the
   child sleeps), then reports each wake-up on sem r[2]. */
static int child_cond_wait(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_cond *c = NULL;
    mproc_sem *in = NULL, *woken = NULL;
    if (len != sizeof *a || mproc_cond_attach(&a->r[0], &c) || mproc_sem_attach(&a->r[1], &in) ||
        mproc_sem_attach(&a->r[2], &woken))
        return 10;
    if (mproc_cond_acquire(c, LONG_MS)) return 11;
    mproc_sem_release(in);
    int rc = mproc_cond_wait(c, LONG_MS);
    mproc_sem_release(woken);
    if (mproc_cond_release(c)) return 12;
    mproc_cond_destroy(c);
    mproc_sem_destroy(in);
    mproc_sem_destroy(woken);
    return rc == 0 ? 0 : 13;
}

static void cond_notify_counts(void **state)
{
    (void)state;
    mproc_cond *c = NULL;
    mproc_sem *in = NULL, *woken = NULL;
    mproc_rlock *own = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_rlock_create(&own), 0);
    assert_int_equal(mproc_cond_create(&c, own), 0);
    assert_ptr_equal(mproc_cond_lock(c), own);
    assert_int_equal(mproc_sem_create(&in, 0, 0), 0);
    assert_int_equal(mproc_sem_create(&woken, 0, 0), 0);
    assert_int_equal(mproc_cond_ref(c, &a.r[0]), 0);
    assert_int_equal(mproc_sem_ref(in, &a.r[1]), 0);
    assert_int_equal(mproc_sem_ref(woken, &a.r[2]), 0);
    mproc_process *p[3];
    for (int i = 0; i < 3; i++) p[i] = tu_start(child_cond_wait, &a, sizeof a);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_sem_acquire(in, LONG_MS), 0);
    /* All three entered wait (they held the lock when counting in). */
    assert_int_equal(mproc_rlock_acquire(own, LONG_MS), 0);
    assert_int_equal(mproc_cond_notify(c, 1), 0);
    assert_int_equal(mproc_rlock_release(own), 0);
    assert_int_equal(mproc_sem_acquire(woken, LONG_MS), 0);
    assert_int_equal(mproc_sem_acquire(woken, 500), MPROC_ETIMEDOUT); /* only one */
    assert_int_equal(mproc_cond_acquire(c, LONG_MS), 0);
    assert_int_equal(mproc_cond_notify_all(c), 0);
    assert_int_equal(mproc_cond_release(c), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(mproc_sem_acquire(woken, LONG_MS), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tu_join(p[i]), 0);
        mproc_process_destroy(p[i]);
    }
    mproc_cond_destroy(c);
    mproc_rlock_destroy(own);
    mproc_sem_destroy(in);
    mproc_sem_destroy(woken);
}

/* ---- Barrier ------------------------------------------------------------------ */
/* Child: one barrier wait; its index goes into counters[1 + index]. */
static int child_barrier(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_barrier *b = NULL;
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_barrier_attach(&a->r[0], &b) || mproc_shm_attach(&a->r[1], &s))
        return 10;
    int rc = mproc_barrier_wait(b, LONG_MS);
    volatile int *c = mproc_shm_ptr(s);
    if (rc >= 0 && rc < 3) c[1 + rc] += 1;
    mproc_barrier_destroy(b);
    mproc_shm_destroy(s);
    return rc >= 0 ? 0 : 20 - rc;
}

static void barrier_indexes(void **state)
{
    (void)state;
    volatile int *c;
    mproc_shm *s = counters(&c);
    mproc_barrier *b = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_barrier_create(&b, 3), 0);
    assert_int_equal(mproc_barrier_parties(b), 3);
    assert_int_equal(mproc_barrier_ref(b, &a.r[0]), 0);
    assert_int_equal(mproc_shm_ref(s, &a.r[1]), 0);
    mproc_process *p[2];
    for (int i = 0; i < 2; i++) p[i] = tu_start(child_barrier, &a, sizeof a);
    int mine = mproc_barrier_wait(b, LONG_MS);
    assert_true(mine >= 0 && mine < 3);
    c[1 + mine] += 1;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tu_join(p[i]), 0);
        mproc_process_destroy(p[i]);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(c[1 + i], 1);
    /* Reusable: a second round with parties = 1 more wait each. */
    mproc_barrier_destroy(b);
    mproc_shm_destroy(s);
}

/* Child: waits at barrier r[0] (arriving is seen by n_waiting); exit code
   says what the wait returned. */
static int child_barrier_result(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_barrier *b = NULL;
    if (len != sizeof *a || mproc_barrier_attach(&a->r[0], &b)) return 10;
    int rc = mproc_barrier_wait(b, LONG_MS);
    mproc_barrier_destroy(b);
    return rc == MPROC_EBROKEN ? 0 : 30 + rc;
}

/* Child: a.n rounds at barrier r[0]; the indexes it got are summed in the
   exit code's check: every round must give 0 or 1. */
static int child_barrier_rounds(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_barrier *b = NULL;
    if (len != sizeof *a || mproc_barrier_attach(&a->r[0], &b)) return 10;
    for (int i = 0; i < a->n; i++) {
        int rc = mproc_barrier_wait(b, LONG_MS);
        if (rc != 0 && rc != 1) return 11;
    }
    mproc_barrier_destroy(b);
    return 0;
}

static void barrier_many_rounds(void **state)
{
    (void)state;
    mproc_barrier *b = NULL;
    targ a = arg_of(200);
    assert_int_equal(mproc_barrier_create(&b, 2), 0);
    assert_int_equal(mproc_barrier_ref(b, &a.r[0]), 0);
    mproc_process *p = tu_start(child_barrier_rounds, &a, sizeof a);
    int first = 0;
    for (int i = 0; i < a.n; i++) {
        int rc = mproc_barrier_wait(b, LONG_MS);
        if (rc != 0 && rc != 1) fail_msg("round %d: %s", i, mproc_strerror(rc));
        first += rc == 0;
    }
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    assert_true(first <= a.n);
    assert_int_equal(mproc_barrier_n_waiting(b), 0);
    assert_int_equal(mproc_barrier_broken(b), 0);
    mproc_barrier_destroy(b);
}

static void barrier_abort_and_reset(void **state)
{
    (void)state;
    mproc_barrier *b = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_barrier_create(&b, 2), 0);
    assert_int_equal(mproc_barrier_ref(b, &a.r[0]), 0);
    for (int round = 0; round < 2; round++) {
        mproc_process *p = tu_start(child_barrier_result, &a, sizeof a);
        /* Wait for the child to arrive: n_waiting is the signal, with an
           event-free poll bounded by a generous deadline. */
        uint64_t until = now_ms() + LONG_MS;
        while (mproc_barrier_n_waiting(b) != 1 && now_ms() < until) mproc__os_sleep_ms(1);
        assert_int_equal(mproc_barrier_n_waiting(b), 1);
        if (round == 0) {
            assert_int_equal(mproc_barrier_abort(b), 0);
            assert_int_equal(mproc_barrier_broken(b), 1);
            assert_int_equal(mproc_barrier_wait(b, 0), MPROC_EBROKEN);
        } else {
            assert_int_equal(mproc_barrier_reset(b), 0);
        }
        assert_int_equal(tu_join(p), 0);
        mproc_process_destroy(p);
        assert_int_equal(mproc_barrier_reset(b), 0);
        assert_int_equal(mproc_barrier_broken(b), 0);
    }
    mproc_barrier_destroy(b);
}

static void barrier_timeout_breaks(void **state)
{
    (void)state;
    mproc_barrier *b = NULL;
    assert_int_equal(mproc_barrier_create(&b, 0), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_create(&b, 2), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_barrier_wait(b, 200), MPROC_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 200);
    assert_int_equal(mproc_barrier_broken(b), 1);
    assert_int_equal(mproc_barrier_wait(b, 0), MPROC_EBROKEN);
    assert_int_equal(mproc_barrier_reset(b), 0);
    mproc_barrier_destroy(b);
    assert_int_equal(mproc_barrier_create(&b, 1), 0);
    assert_int_equal(mproc_barrier_wait(b, 0), 0);
    assert_int_equal(mproc_barrier_wait(b, 0), 0);
    mproc_barrier_destroy(b);
}

/* ---- Python parity (issue 15): Lock.locked, Barrier action and timeout ---------- */
static int child_lock_locked(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_lock *l = NULL;
    if (len != sizeof *a || mproc_lock_attach(&a->r[0], &l)) return 10;
    int rc = mproc_lock_locked(l);
    mproc_lock_destroy(l);
    return rc; /* 1 or 0 */
}

static void lock_locked(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_lock_locked(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    assert_int_equal(mproc_lock_locked(l), 0);
    assert_int_equal(tu_run_child(child_lock_locked, &a, sizeof a), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), 0);
    assert_int_equal(mproc_lock_locked(l), 1);
    assert_int_equal(tu_run_child(child_lock_locked, &a, sizeof a), 1);
    assert_int_equal(mproc_lock_release(l), 0);
    assert_int_equal(mproc_lock_locked(l), 0);
    mproc_lock_destroy(l);
}

/* The action counts trips in shared memory (counters[0]); every process
   points this at its own mapping before waiting. */
static volatile int *trips;
static int count_trip(void)
{
    trips[0] += 1;
    return 0;
}
static int failing_action(void) { return 1; }

/* Child: a.n rounds at barrier r[0] (with the counting action); after
   round k every party must see k + 1 trips: the action ran before anyone
   was released. */
static int child_barrier_action(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_barrier *b = NULL;
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_barrier_attach(&a->r[0], &b) || mproc_shm_attach(&a->r[1], &s))
        return 10;
    trips = mproc_shm_ptr(s);
    int bad = 0;
    for (int k = 0; k < a->n; k++) {
        int rc = mproc_barrier_wait(b, MPROC_DEFAULT_TIMEOUT);
        if (rc < 0) return 20 - rc;
        if (trips[0] != k + 1) bad = 1;
    }
    mproc_barrier_destroy(b);
    mproc_shm_destroy(s);
    return bad;
}

static void barrier_action_runs_once_per_trip(void **state)
{
    (void)state;
    mproc_shm *s = counters(&trips);
    mproc_barrier *b = NULL;
    targ a = arg_of(20);
    assert_int_equal(mproc_barrier_create_ex(&b, 3, count_trip, LONG_MS), 0);
    assert_int_equal(mproc_barrier_ref(b, &a.r[0]), 0);
    assert_int_equal(mproc_shm_ref(s, &a.r[1]), 0);
    mproc_process *p[2];
    for (int i = 0; i < 2; i++) p[i] = tu_start(child_barrier_action, &a, sizeof a);
    for (int k = 0; k < a.n; k++) {
        assert_true(mproc_barrier_wait(b, MPROC_DEFAULT_TIMEOUT) >= 0);
        assert_int_equal(trips[0], k + 1);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tu_join(p[i]), 0);
        mproc_process_destroy(p[i]);
    }
    assert_int_equal(trips[0], a.n);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(s);
    trips = NULL;
}

/* Child: one wait at r[0]; 1 if it got ETASK, 2 if EBROKEN. */
static int child_barrier_outcome(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_barrier *b = NULL;
    if (len != sizeof *a || mproc_barrier_attach(&a->r[0], &b)) return 10;
    int rc = mproc_barrier_wait(b, LONG_MS);
    mproc_barrier_destroy(b);
    return rc == MPROC_ETASK ? 1 : rc == MPROC_EBROKEN ? 2 : 30;
}

/* A failing action breaks the barrier: the party that ran it gets ETASK,
   the others EBROKEN. */
static void barrier_failing_action_breaks(void **state)
{
    (void)state;
    mproc_barrier *b = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_barrier_create_ex(&b, 2, failing_action, MPROC_FOREVER), 0);
    assert_int_equal(mproc_barrier_ref(b, &a.r[0]), 0);
    mproc_process *p = tu_start(child_barrier_outcome, &a, sizeof a);
    int rc = mproc_barrier_wait(b, LONG_MS);
    int mine = rc == MPROC_ETASK ? 1 : rc == MPROC_EBROKEN ? 2 : 30;
    int theirs = tu_join(p);
    mproc_process_destroy(p);
    assert_true((mine == 1 && theirs == 2) || (mine == 2 && theirs == 1));
    assert_int_equal(mproc_barrier_broken(b), 1);
    assert_int_equal(mproc_barrier_wait(b, 0), MPROC_EBROKEN);
    mproc_barrier_destroy(b);
    /* one party: it trips alone, and its own failure is ETASK */
    assert_int_equal(mproc_barrier_create_ex(&b, 1, failing_action, MPROC_FOREVER), 0);
    assert_int_equal(mproc_barrier_wait(b, 0), MPROC_ETASK);
    assert_int_equal(mproc_barrier_broken(b), 1);
    mproc_barrier_destroy(b);
}

static void barrier_default_timeout(void **state)
{
    (void)state;
    mproc_barrier *b = NULL;
    assert_int_equal(mproc_barrier_create_ex(&b, 2, NULL, -2), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_create_ex(&b, 2, NULL, 200), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(mproc_barrier_wait(b, MPROC_DEFAULT_TIMEOUT), MPROC_ETIMEDOUT);
    assert_true(now_ms() - t0 >= 200);
    assert_int_equal(mproc_barrier_broken(b), 1);
    assert_int_equal(mproc_barrier_reset(b), 0);
    assert_int_equal(mproc_barrier_wait(b, 0), MPROC_ETIMEDOUT); /* an explicit one wins */
    assert_int_equal(mproc_barrier_wait(b, -3), MPROC_EINVAL);
    mproc_barrier_destroy(b);
    /* none given: the default is to wait without limit */
    assert_int_equal(mproc_barrier_create(&b, 1), 0);
    assert_int_equal(mproc_barrier_wait(b, MPROC_DEFAULT_TIMEOUT), 0);
    mproc_barrier_destroy(b);
}

/* ---- threads ------------------------------------------------------------------ */
typedef struct thread_probe { mproc_rlock *rl; mproc_lock *l; int release_rc, acquire_rc, lock_rc; } thread_probe;

static void probe_thread(void *p)
{
    thread_probe *t = p;
    t->release_rc = mproc_rlock_release(t->rl);
    t->acquire_rc = mproc_rlock_acquire(t->rl, 0);
    t->lock_rc = mproc_lock_release(t->l); /* a Lock: any thread may */
}

static void rlock_is_per_thread(void **state)
{
    (void)state;
    thread_probe t;
    memset(&t, 0, sizeof t);
    assert_int_equal(mproc_rlock_create(&t.rl), 0);
    assert_int_equal(mproc_lock_create(&t.l), 0);
    assert_int_equal(mproc_rlock_acquire(t.rl, 0), 0);
    assert_int_equal(mproc_lock_acquire(t.l, 0), 0);
    mproc__os_thread *th = NULL;
    assert_int_equal(mproc__os_thread_start(&th, probe_thread, &t), 0);
    mproc__os_thread_join(th);
    assert_int_equal(t.release_rc, MPROC_ESTATE);
    assert_int_equal(t.acquire_rc, MPROC_ETIMEDOUT);
    assert_int_equal(t.lock_rc, 0);
    assert_int_equal(mproc_rlock_release(t.rl), 0);
    mproc_rlock_destroy(t.rl);
    mproc_lock_destroy(t.l);
}

/* ---- refs and bad input ---------------------------------------------------------- */
static void refs_rejected(void **state)
{
    (void)state;
    mproc_ref zero, junk, ref;
    mproc_lock *l = NULL, *l2 = NULL;
    mproc_sem *s = NULL;
    mproc_rlock *rl = NULL;
    mproc_event *e = NULL;
    mproc_cond *c = NULL;
    mproc_barrier *b = NULL;
    memset(&zero, 0, sizeof zero);
    for (size_t i = 0; i < sizeof junk.bytes; i++) junk.bytes[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(mproc_lock_attach(&zero, &l), MPROC_EINVAL);
    assert_int_equal(mproc_lock_attach(&junk, &l), MPROC_EINVAL);
    assert_int_equal(mproc_rlock_attach(&zero, &rl), MPROC_EINVAL);
    assert_int_equal(mproc_sem_attach(&zero, &s), MPROC_EINVAL);
    assert_int_equal(mproc_event_attach(&junk, &e), MPROC_EINVAL);
    assert_int_equal(mproc_cond_attach(&zero, &c), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_attach(&junk, &b), MPROC_EINVAL);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &ref), 0);
    /* Wrong kind. */
    assert_int_equal(mproc_sem_attach(&ref, &s), MPROC_EINVAL);
    assert_int_equal(mproc_cond_attach(&ref, &c), MPROC_EINVAL);
    /* Same process: a second handle that only lets go. */
    assert_int_equal(mproc_lock_attach(&ref, &l2), 0);
    assert_int_equal(mproc_lock_acquire(l2, 0), 0);
    assert_int_equal(mproc_lock_acquire(l, 0), MPROC_ETIMEDOUT);
    mproc_lock_destroy(l2);
    assert_int_equal(mproc_lock_release(l), 0);
    /* Tampered. */
    mproc_ref bad = ref;
    bad.bytes[20] ^= 1;
    assert_int_equal(mproc_lock_attach(&bad, &l2), MPROC_EINVAL);
    /* Stale. */
    mproc_lock_destroy(l);
    assert_int_equal(mproc_lock_attach(&ref, &l2), MPROC_ENOENT);
}

static void null_arguments(void **state)
{
    (void)state;
    mproc_ref ref;
    memset(&ref, 0, sizeof ref);
    assert_int_equal(mproc_lock_create(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_lock_acquire(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_lock_release(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_lock_ref(NULL, &ref), MPROC_EINVAL);
    assert_int_equal(mproc_lock_attach(NULL, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_rlock_create(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_rlock_acquire(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_rlock_release(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_sem_create(NULL, 0, 0), MPROC_EINVAL);
    assert_int_equal(mproc_sem_acquire(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_sem_release(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_sem_value(NULL, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_event_create(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_event_set(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_event_clear(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_event_is_set(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_event_wait(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_cond_create(NULL, NULL), MPROC_EINVAL);
    assert_null(mproc_cond_lock(NULL));
    assert_int_equal(mproc_cond_wait(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_cond_notify(NULL, 1), MPROC_EINVAL);
    assert_int_equal(mproc_cond_notify_all(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_create(NULL, 2), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_wait(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_abort(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_barrier_reset(NULL), MPROC_EINVAL);
    mproc_lock_destroy(NULL);
    mproc_rlock_destroy(NULL);
    mproc_sem_destroy(NULL);
    mproc_event_destroy(NULL);
    mproc_cond_destroy(NULL);
    mproc_barrier_destroy(NULL);
    /* A lock passed where a semaphore is expected (a confused cast). */
    mproc_lock *l = NULL;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_sem_release((mproc_sem *)(void *)l), MPROC_EINVAL);
    mproc_lock_destroy(l);
}

/* Child: the ref arrives through shared memory, not its argument, so the
   object was never handed to it. */
static int child_attach_uninherited(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *s = NULL;
    mproc_lock *l = NULL;
    if (len != sizeof *a || mproc_shm_attach(&a->r[0], &s)) return 10;
    mproc_ref ref;
    memcpy(&ref, mproc_shm_ptr(s), sizeof ref);
    int rc = mproc_lock_attach(&ref, &l);
    mproc_shm_destroy(s);
    return rc == MPROC_ENOENT ? 0 : 11;
}

static void ref_not_inherited(void **state)
{
    (void)state;
    volatile int *c;
    mproc_shm *s = counters(&c);
    mproc_lock *l = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, (mproc_ref *)(void *)c), 0);
    assert_int_equal(mproc_shm_ref(s, &a.r[0]), 0);
    assert_int_equal(tu_run_child(child_attach_uninherited, &a, sizeof a), 0);
    mproc_lock_destroy(l);
    mproc_shm_destroy(s);
}

/* The fork start method: the child has the parent's registry, and its
   locks carry its own pid (or its death would go unnoticed). */
static void fork_child_dies_holding(void **state)
{
    (void)state;
    mproc_lock *l = NULL;
    mproc_event *e = NULL;
    targ a = arg_of(HOLD_LOCK);
    mproc_process_options opt;
    memset(&opt, 0, sizeof opt);
    opt.method = MPROC_FORK;
    mproc_process *p = NULL;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_lock_ref(l, &a.r[0]), 0);
    assert_int_equal(mproc_event_ref(e, &a.r[1]), 0);
    int rc = mproc_process_create(&p, child_hold_and_hang, &a, sizeof a, &opt);
    if (rc == 0) rc = mproc_process_start(p);
    if (rc == MPROC_ENOTSUP) {
        mproc_process_destroy(p);
        skip();
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mproc_event_wait(e, LONG_MS), 0);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(mproc_lock_acquire(l, LONG_MS), MPROC_EOWNERDEAD);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    mproc_lock_destroy(l);
    mproc_event_destroy(e);
}

/* ---- nothing left behind after SIGKILL ---------------------------------------- */
#define NAMES_MAX 256
typedef struct listing { int n; char name[NAMES_MAX][64]; } listing;

/* mproc's entries in /dev/shm (none to list where there is no /dev/shm). */
static void list_shm(listing *out)
{
    out->n = 0;
#ifndef _WIN32
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && out->n < NAMES_MAX)
        if (strncmp(de->d_name, "mproc", 5) == 0 &&
            strlen(de->d_name) < sizeof out->name[0])
            memcpy(out->name[out->n++], de->d_name, strlen(de->d_name) + 1);
    closedir(d);
#endif
}

/* Entries of now that were not in before. */
static int new_entries(const listing *before, const listing *now)
{
    int fresh = 0;
    for (int i = 0; i < now->n; i++) {
        int seen = 0;
        for (int j = 0; j < before->n && !seen; j++) seen = !strcmp(now->name[i], before->name[j]);
        fresh += !seen;
    }
    return fresh;
}

/* Child: makes one of everything, holds the lock, publishes its generated
   shm name in r[0]'s memory, says so on event r[1], and waits to be killed. */
static int child_leaker(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *out = NULL, *gen = NULL;
    mproc_event *ready = NULL;
    mproc_lock *l = NULL;
    mproc_rlock *rl = NULL;
    mproc_sem *s = NULL;
    mproc_event *e = NULL;
    mproc_cond *c = NULL;
    mproc_barrier *b = NULL;
    if (len != sizeof *a || mproc_shm_attach(&a->r[0], &out) || mproc_event_attach(&a->r[1], &ready))
        return 10;
    if (mproc_lock_create(&l) || mproc_rlock_create(&rl) || mproc_sem_create(&s, 1, 1) ||
        mproc_event_create(&e) || mproc_cond_create(&c, NULL) || mproc_barrier_create(&b, 2) ||
        mproc_shm_create(&gen, NULL, 1 << 20))
        return 11;
    if (mproc_lock_acquire(l, 0) || mproc_rlock_acquire(rl, 0) || mproc_sem_acquire(s, 0))
        return 12;
    snprintf(mproc_shm_ptr(out), 128, "%s", mproc_shm_name(gen));
    mproc_event_set(ready);
    for (;;) mproc__os_sleep_ms(1000);
}

static void nothing_left_after_sigkill(void **state)
{
    (void)state;
    listing *before = malloc(sizeof *before), *now = malloc(sizeof *now);
    assert_non_null(before);
    assert_non_null(now);
    mproc_shm *out = NULL, *peek = NULL;
    mproc_event *ready = NULL;
    targ a = arg_of(0);
    assert_int_equal(mproc_shm_create(&out, NULL, 4096), 0);
    assert_int_equal(mproc_event_create(&ready), 0);
    list_shm(before);
    assert_int_equal(mproc_shm_ref(out, &a.r[0]), 0);
    assert_int_equal(mproc_event_ref(ready, &a.r[1]), 0);
    mproc_process *p = tu_start(child_leaker, &a, sizeof a);
    assert_int_equal(mproc_event_wait(ready, LONG_MS), 0);
    char name[128];
    snprintf(name, sizeof name, "%s", (const char *)mproc_shm_ptr(out));
    /* While the child lives, its generated name opens. */
    assert_int_equal(mproc_shm_open(&peek, name), 0);
    assert_int_equal(mproc_shm_size(peek), 1 << 20);
    mproc_shm_destroy(peek);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    /* Cleanup of a killed process may be asynchronous (the macOS-path
       cleaner): wait for it, up to a generous deadline. */
    uint64_t until = now_ms() + LONG_MS;
    int rc;
    for (;;) {
        peek = NULL;
        rc = mproc_shm_open(&peek, name);
        mproc_shm_destroy(peek);
        list_shm(now);
        if ((rc == MPROC_ENOENT && new_entries(before, now) == 0) || now_ms() > until) break;
        mproc__os_sleep_ms(10);
    }
    assert_int_equal(rc, MPROC_ENOENT);
    assert_int_equal(new_entries(before, now), 0);
    mproc_shm_destroy(out);
    mproc_event_destroy(ready);
    free(before);
    free(now);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lock_basic),
        cmocka_unit_test(lock_timed_wait),
        cmocka_unit_test(lock_released_by_other_process),
        cmocka_unit_test(lock_mutual_exclusion),
        cmocka_unit_test(lock_owner_dies),
        cmocka_unit_test(lock_owner_dies_try),
        cmocka_unit_test(rlock_recursion),
        cmocka_unit_test(rlock_other_process),
        cmocka_unit_test(rlock_owner_dies),
        cmocka_unit_test(rlock_is_per_thread),
        cmocka_unit_test(sem_basic),
        cmocka_unit_test(sem_bounded),
        cmocka_unit_test(sem_across_processes),
        cmocka_unit_test(event_basic),
        cmocka_unit_test(event_wakes_all),
        cmocka_unit_test(cond_needs_lock),
        cmocka_unit_test(cond_notify_counts),
        cmocka_unit_test(barrier_indexes),
        cmocka_unit_test(barrier_many_rounds),
        cmocka_unit_test(barrier_abort_and_reset),
        cmocka_unit_test(barrier_timeout_breaks),
        cmocka_unit_test(refs_rejected),
        cmocka_unit_test(null_arguments),
        /* a forked child has the parent's whole registry, by nature */
        tu_test_methods(ref_not_inherited, TU_EXCEPT_FORK),
        tu_test_once(fork_child_dies_holding),
        cmocka_unit_test(nothing_left_after_sigkill),
        cmocka_unit_test(lock_locked),
        cmocka_unit_test(barrier_action_runs_once_per_trip),
        cmocka_unit_test(barrier_failing_action_breaks),
        cmocka_unit_test(barrier_default_timeout),
    };
    return TU_RUN(argc, argv, tests);
}
