/* The pool's scheduler over an in-process transport: fairness, windows,
   retries and failure accounting, decided without real workers. The
   transport here records the units it is given and lets each test play
   the workers: finish a unit, fail an item, die at an exact item or die
   knowing only which units it held. What a real process can do (crash,
   hang, exit early) is tested through the local transport in pool.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "pool_transport.h"

#define ARENA 65536
#define PLACE 1024 /* arena bytes per unit: every test's units fit */

typedef struct fake {
    int ended, killed, starts, stops;
    mproc__pool_death death;
    unsigned char arena[ARENA];
} fake;

typedef struct handed {
    int slot;
    uint64_t seq;
    size_t lo, n;
} handed;

/* Units handed out, in order (written with the pool's lock held). */
static handed log_[4096];
static size_t nlog;

static int f_init(mproc__pool_slot *s)
{
    s->pool->unit_max = PLACE;
    s->tx = calloc(1, sizeof(fake));
    return s->tx ? 0 : MPROC_ENOMEM;
}

static void f_fini(mproc__pool_slot *s) { free(s->tx); }

static int f_start(mproc__pool_slot *s)
{
    fake *f = s->tx;
    f->ended = f->killed = 0;
    f->starts++;
    memset(&f->death, 0, sizeof f->death);
    s->pid = 1000 + s->index;
    return 0;
}

/* Until the test ends this worker or the pool kills it. */
static void f_serve(mproc__pool_slot *s)
{
    fake *f = s->tx;
    mproc__os_mutex_lock(s->pool->mu);
    while (!f->ended && !f->killed) mproc__os_cond_wait(s->pool->cond, s->pool->mu, 20);
    mproc__os_mutex_unlock(s->pool->mu);
}

static void f_reap(mproc__pool_slot *s, mproc__pool_death *d)
{
    fake *f = s->tx;
    *d = f->death;
    if (!d->how[0]) snprintf(d->how, sizeof d->how, "fake worker ended");
}

static int f_put_unit(mproc__pool_slot *s, mproc__pool_unit *u)
{
    handed h = {s->index, u->seq, u->lo, u->n};
    if (nlog < sizeof log_ / sizeof *log_) log_[nlog++] = h;
    u->place = (size_t)(u->seq % (ARENA / PLACE)) * PLACE;
    return 1;
}

static void f_flush(mproc__pool_slot *s, int stop)
{
    fake *f = s->tx;
    f->stops += stop;
}

static const unsigned char *f_results(mproc__pool_slot *s, const mproc__pool_unit *u)
{
    fake *f = s->tx;
    return f->arena + u->place;
}

static int f_progress(mproc__pool_slot *s, uint64_t *seq, uint32_t *pos, uint32_t *ticks)
{
    (void)s;
    *seq = 0;
    *pos = *ticks = 0;
    return 0;
}

static void f_kill(mproc__pool_slot *s)
{
    fake *f = s->tx;
    f->killed = 1;
    mproc__os_cond_broadcast(s->pool->cond);
}

static const mproc__pool_transport fake_transport = {
    f_init, f_fini, f_start, f_serve, f_reap, f_put_unit, f_flush, f_results, f_progress, f_kill,
    NULL, /* counts no sub-items */
    NULL,
    NULL,
};

/* ---- playing the workers --------------------------------------------------------- */
static int dummy_map(const void *item, void *result)
{
    (void)item;
    (void)result;
    return 0;
}

static int dummy_task(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 0;
}

static int all_running(mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state != MPROC__SLOT_RUNNING) return 0;
    return 1;
}

/* A pool of n fake workers, all running. */
static mproc_pool *make_pool(int n)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    opt.processes = n;
    nlog = 0;
    assert_int_equal(mproc__pool_create_on(&pool, &opt, &fake_transport), 0);
    for (int k = 0;; k++) {
        mproc__os_mutex_lock(pool->mu);
        int ok = all_running(pool);
        mproc__os_mutex_unlock(pool->mu);
        if (ok) break;
        assert_true(k < TU_JOIN_TIMEOUT_MS);
        mproc__os_sleep_ms(1);
    }
    return pool;
}

static size_t held(mproc_pool *pool, int slot)
{
    mproc__os_mutex_lock(pool->mu);
    size_t n = pool->slots[slot].u_count;
    mproc__os_mutex_unlock(pool->mu);
    return n;
}

/* The worker in slot finishes its oldest unit: a map unit's results are
   its items doubled (ints). 0, or 1 if it held none. */
static int finish_oldest(mproc_pool *pool, int slot)
{
    mproc__pool_slot *s = &pool->slots[slot];
    mproc__os_mutex_lock(pool->mu);
    int none = !s->u_count;
    if (!none) {
        mproc__pool_unit *u = &s->units[s->u_first];
        if (u->job->kind != MPROC__JOB_APPLY) {
            int *res = (int *)(void *)((fake *)s->tx)->arena;
            res += u->place / sizeof *res;
            for (size_t i = 0; i < u->n; i++) res[i] = 2 * ((const int *)(const void *)u->job->items)[u->lo + i];
        }
        assert_int_equal(mproc__pool_ev_done(s, u->seq, 0, "", NULL, 0, 10), 0);
        mproc__pool_pump_all(pool);
    }
    mproc__os_mutex_unlock(pool->mu);
    return none;
}

/* The worker in slot dies as d says; waits for its replacement. */
static void end_worker(mproc_pool *pool, int slot, const mproc__pool_death *d)
{
    fake *f = pool->slots[slot].tx;
    mproc__os_mutex_lock(pool->mu);
    int starts = f->starts;
    f->death = *d;
    f->ended = 1;
    mproc__os_cond_broadcast(pool->cond);
    mproc__os_mutex_unlock(pool->mu);
    for (int k = 0;; k++) {
        mproc__os_mutex_lock(pool->mu);
        int back = f->starts > starts && pool->slots[slot].state == MPROC__SLOT_RUNNING;
        mproc__os_mutex_unlock(pool->mu);
        if (back) break;
        assert_true(k < TU_JOIN_TIMEOUT_MS);
        mproc__os_sleep_ms(1);
    }
}

/* Every worker finishes everything it holds and gets, until none holds any. */
static void finish_everything(mproc_pool *pool)
{
    for (int busy = 1; busy;) {
        busy = 0;
        for (int i = 0; i < pool->nslots; i++) busy |= !finish_oldest(pool, i);
    }
}

static mproc_async *submit(mproc_pool *pool)
{
    mproc_async *r;
    assert_int_equal(mproc_pool_apply_async(pool, dummy_task, "x", 1, &r), 0);
    return r;
}

/* ---- fairness ------------------------------------------------------------------- */
/* A unit goes to an idle worker first, not to the first worker with room. */
static void test_idle_worker_first(void **state)
{
    (void)state;
    mproc_async *r[4];
    mproc_pool *pool = make_pool(3);
    r[0] = submit(pool);
    r[1] = submit(pool);
    assert_int_equal(nlog, 2);
    assert_int_not_equal(log_[0].slot, log_[1].slot);
    r[2] = submit(pool);
    for (int i = 0; i < 3; i++) assert_int_equal(held(pool, i), 1);
    int idle = log_[1].slot;
    assert_int_equal(finish_oldest(pool, idle), 0);
    r[3] = submit(pool);
    assert_int_equal(log_[3].slot, idle);
    finish_everything(pool);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mproc_async_get(r[i], NULL, NULL, TU_JOIN_TIMEOUT_MS), 0);
        mproc_async_destroy(r[i]);
    }
    mproc_pool_destroy(pool);
}

/* A worker whose window has grown does not take what a less loaded one
   can start sooner. */
static void test_least_loaded_whatever_the_window(void **state)
{
    (void)state;
    enum { N = 8 };
    mproc_async *r[N];
    mproc_pool *pool = make_pool(2);
    mproc__os_mutex_lock(pool->mu);
    pool->slots[0].win = MPROC__POOL_WINDOW; /* as after many quick units */
    pool->slots[1].win = MPROC__POOL_WINDOW;
    mproc__os_mutex_unlock(pool->mu);
    for (int i = 0; i < N; i++) r[i] = submit(pool);
    assert_int_equal(held(pool, 0), N / 2);
    assert_int_equal(held(pool, 1), N / 2);
    /* one worker drains all it holds: the next units all go to it */
    for (int i = 0; i < N / 2; i++) assert_int_equal(finish_oldest(pool, 1), 0);
    mproc_async *more[2] = {submit(pool), submit(pool)};
    assert_int_equal(held(pool, 1), 2);
    assert_int_equal(held(pool, 0), N / 2);
    finish_everything(pool);
    for (int i = 0; i < N; i++) mproc_async_destroy(r[i]);
    mproc_async_destroy(more[0]);
    mproc_async_destroy(more[1]);
    mproc_pool_destroy(pool);
}

/* Units of one map are spread over all workers from the first unit on. */
static void test_map_chunks_spread(void **state)
{
    (void)state;
    enum { N = 40 };
    int in[N];
    mproc_iter *it;
    for (int i = 0; i < N; i++) in[i] = i;
    mproc_pool *pool = make_pool(4);
    assert_int_equal(mproc_pool_imap(pool, dummy_map, in, sizeof *in, N, sizeof(int), 10, 0, &it), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(held(pool, i), 1);
    finish_everything(pool);
    for (int i = 0; i < N; i++) {
        int v;
        size_t index;
        assert_int_equal(mproc_iter_next(it, &v, &index, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(index, (size_t)i);
        assert_int_equal(v, 2 * i);
    }
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
}

/* ---- deaths -------------------------------------------------------------------- */
/* Checks an imap of n ints: item bad failed with ECHILD, the rest doubled. */
static void check_items(mproc_pool *pool, mproc_iter *it, size_t n, size_t bad_lo, size_t bad_n)
{
    for (size_t i = 0; i < n; i++) {
        int v = -1;
        size_t index;
        int rc = mproc_iter_next(it, &v, &index, TU_JOIN_TIMEOUT_MS);
        assert_int_equal(index, i);
        if (i >= bad_lo && i < bad_lo + bad_n) {
            mproc_task_error err;
            assert_int_equal(rc, MPROC_ECHILD);
            assert_int_equal(mproc_pool_last_error(pool, &err), 0);
            assert_int_equal(err.index, i);
            assert_non_null(strstr(err.message, "fake worker died"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(v, 2 * (int)i);
        }
    }
    assert_int_equal(mproc_iter_next(it, NULL, NULL, 0), MPROC_EDONE);
}

enum { DEATH_N = 10 };

/* Two fake workers and an imap of DEATH_N ints 0, 1, ... in units of chunk. */
static mproc_pool *imap_pool(int *in, size_t chunk, mproc_iter **it)
{
    for (int i = 0; i < DEATH_N; i++) in[i] = i;
    mproc_pool *pool = make_pool(2);
    assert_int_equal(mproc_pool_imap(pool, dummy_map, in, sizeof *in, DEATH_N, sizeof(int), chunk, 0, it), 0);
    return pool;
}

static void death_of(mproc__pool_death *d, int exact, uint64_t seq, uint32_t pos)
{
    memset(d, 0, sizeof *d);
    snprintf(d->how, sizeof d->how, "fake worker died");
    d->exact = exact;
    d->seq = seq;
    d->pos = pos;
    d->phase = exact ? MPROC__PHASE_RUNNING : MPROC__PHASE_IDLE;
}

/* A worker that dies at an exact item: results before it are kept, that
   item fails, the rest of its unit runs again elsewhere. */
static void test_exact_death_keeps_finished_items(void **state)
{
    (void)state;
    enum { N = DEATH_N };
    int in[N];
    mproc_iter *it;
    mproc__pool_death d;
    mproc_pool *pool = imap_pool(in, 5, &it);
    assert_int_equal(held(pool, 0) + held(pool, 1), 2);
    int victim = log_[0].slot;
    size_t lo = log_[0].lo;
    /* it ran items 0 and 1 of its unit (results written), died in item 2 */
    mproc__os_mutex_lock(pool->mu);
    mproc__pool_slot *s = &pool->slots[victim];
    int *res = (int *)(void *)(((fake *)s->tx)->arena + s->units[s->u_first].place);
    res[0] = 2 * (int)lo;
    res[1] = 2 * (int)(lo + 1);
    mproc__os_mutex_unlock(pool->mu);
    death_of(&d, 1, log_[0].seq, 2);
    size_t before = nlog;
    end_worker(pool, victim, &d);
    /* the two items after the failed one were handed out again, alone */
    int found = 0;
    for (size_t i = before; i < nlog; i++) found |= log_[i].lo == lo + 3 && log_[i].n == 2;
    assert_true(found);
    finish_everything(pool);
    check_items(pool, it, N, lo + 2, 1);
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
}

/* A transport that knows only which units the dead worker held: the
   oldest fails as a whole, the others run again. */
static void test_coarse_death_fails_the_oldest_unit(void **state)
{
    (void)state;
    enum { N = DEATH_N };
    int in[N];
    mproc_iter *it;
    mproc__pool_death d;
    mproc_pool *pool = imap_pool(in, 2, &it);
    int victim = log_[0].slot;
    size_t lo = log_[0].lo;
    assert_int_equal(held(pool, victim), 2); /* the start window */
    death_of(&d, 0, 0, 0);
    end_worker(pool, victim, &d);
    finish_everything(pool);
    check_items(pool, it, N, lo, 2);
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
}

/* An apply whose worker died before starting it runs again; one that was
   running fails with the worker's end. */
static void test_apply_death(void **state)
{
    (void)state;
    mproc__pool_death d;
    mproc_task_error err;
    mproc_pool *pool = make_pool(1);
    mproc_async *a = submit(pool), *b = submit(pool);
    assert_int_equal(held(pool, 0), 2);
    death_of(&d, 1, log_[0].seq, 0);
    end_worker(pool, 0, &d);
    assert_int_equal(mproc_async_get(a, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ECHILD);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_non_null(strstr(err.message, "fake worker died"));
    assert_int_equal(held(pool, 0), 1); /* b, on the replacement */
    assert_int_equal(log_[nlog - 1].seq, 1);
    finish_everything(pool);
    assert_int_equal(mproc_async_get(b, NULL, NULL, TU_JOIN_TIMEOUT_MS), 0);
    mproc_async_destroy(a);
    mproc_async_destroy(b);
    mproc_pool_destroy(pool);
}

/* ---- windows ------------------------------------------------------------------- */
/* One past the highest item handed out so far. */
static size_t highest_handed(void)
{
    size_t top = 0;
    for (size_t i = 0; i < nlog; i++)
        if (log_[i].lo + log_[i].n > top) top = log_[i].lo + log_[i].n;
    return top;
}

/* imap hands out nothing beyond the consumer's window, and more as it
   consumes. */
static void test_imap_window_backpressure(void **state)
{
    (void)state;
    enum { N = 1000 };
    static int in[N];
    mproc_iter *it;
    for (int i = 0; i < N; i++) in[i] = i;
    mproc_pool *pool = make_pool(2);
    assert_int_equal(mproc_pool_imap(pool, dummy_map, in, sizeof *in, N, sizeof(int), 1, 0, &it), 0);
    finish_everything(pool);
    size_t top = highest_handed();
    assert_true(top < N); /* the window stopped it */
    for (int i = 0; i < 10; i++) assert_int_equal(mproc_iter_next(it, NULL, NULL, 0), 0);
    finish_everything(pool);
    assert_int_equal(highest_handed(), top + 10);
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_worker_first),
        cmocka_unit_test(test_least_loaded_whatever_the_window),
        cmocka_unit_test(test_map_chunks_spread),
        cmocka_unit_test(test_exact_death_keeps_finished_items),
        cmocka_unit_test(test_coarse_death_fails_the_oldest_unit),
        cmocka_unit_test(test_apply_death),
        cmocka_unit_test(test_imap_window_backpressure),
    };
    return TU_RUN(argc, argv, tests);
}
