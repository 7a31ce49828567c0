/* The process pool's life cycle: create, close, terminate, join, destroy,
   the task-timeout watcher, counters and the function table. */
#include "pool_transport.h"
#include "process.h"

#include <stdio.h>

int mproc__pool_accepting(const mproc_pool *pool)
{
    if (pool->closed) return MPROC_ECLOSED;
    if (!pool->broken_error) return 0;
    /* Broken only when no worker is left to do the work. */
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state != MPROC__SLOT_DONE) return 0;
    return pool->broken_error;
}

int mproc__pool_fn_id(mproc_pool *pool, const void *addr, uint32_t *id)
{
    for (size_t i = 0; i < pool->nfns; i++)
        if (pool->fns[i].addr == addr) {
            *id = (uint32_t)i;
            return 0;
        }
    if (pool->nfns == pool->fns_cap) {
        size_t cap = pool->fns_cap ? 2 * pool->fns_cap : 8;
        mproc__pool_fn *f = realloc(pool->fns, cap * sizeof *f);
        if (!f) return MPROC_ENOMEM;
        pool->fns = f;
        pool->fns_cap = cap;
    }
    int rc = mproc__fnref_make(addr, &pool->fns[pool->nfns].ref);
    if (rc) return rc;
    pool->fns[pool->nfns].addr = (void *)addr;
    *id = (uint32_t)pool->nfns++;
    return 0;
}

/* ---- the task-timeout watcher (mproc__pool_check_timeouts) ----------------------- */
static void timer_thread(void *arg)
{
    mproc_pool *pool = arg;
    int period = pool->opt.task_timeout_ms / 8;
    if (period < 5) period = 5;
    if (period > 200) period = 200;
    mproc__os_mutex_lock(pool->mu);
    while (!pool->timer_stop) {
        mproc__pool_check_timeouts(pool, mproc__os_now_ms());
        mproc__os_cond_wait(pool->timer_cond, pool->mu, period);
    }
    mproc__os_mutex_unlock(pool->mu);
}

static void free_pool(mproc_pool *pool);

/* ---- create -------------------------------------------------------------------- */
static int check_options(const mproc_pool_options *opt)
{
    if (!opt) return 0;
    if (opt->processes < 0 || opt->processes > 4096 || opt->maxtasksperchild < 0 ||
        opt->task_timeout_ms < 0 || opt->max_retries < 0 || opt->max_pending < 0 ||
        (opt->initarg_len && !opt->initarg))
        return MPROC_EINVAL;
    mproc_start_method m;
    return mproc__method_resolve(opt->method, &m);
}

static int alloc_pool(mproc_pool **out, const mproc_pool_options *opt,
                      const mproc__pool_transport *transport)
{
    mproc_pool *pool = mproc__calloc(1, sizeof *pool);
    if (!pool) return MPROC_ENOMEM;
    *out = pool;
    pool->refs = 1;
    if (opt) pool->opt = *opt;
    mproc__method_resolve(pool->opt.method, &pool->opt.method); /* checked already */
    pool->nslots = pool->opt.processes ? pool->opt.processes : mproc_process_cpu_count();
    if (pool->nslots < 1) pool->nslots = 1;
    pool->transport = transport;
    if (pool->opt.initarg_len) {
        if (!(pool->initarg = malloc(pool->opt.initarg_len))) return MPROC_ENOMEM;
        memcpy(pool->initarg, pool->opt.initarg, pool->opt.initarg_len);
    }
    pool->opt.initarg = NULL; /* the copy is used from now on */
    int rc = 0;
    if (pool->opt.initializer) {
        void *addr;
        memcpy(&addr, &pool->opt.initializer, sizeof addr);
        pool->has_init = 1;
        rc = mproc__fnref_make(addr, &pool->init_ref);
    }
    if (!rc) rc = mproc__os_mutex_create(&pool->mu);
    if (!rc) rc = mproc__os_cond_create(&pool->cond);
    if (!rc) rc = mproc__os_cond_create(&pool->timer_cond);
    if (!rc) rc = mproc__os_cond_create(&pool->start_cond);
    if (!rc) rc = mproc__os_mutex_create(&pool->start_mu);
    if (!rc && !(pool->slots = mproc__calloc((size_t)pool->nslots, sizeof *pool->slots)))
        rc = MPROC_ENOMEM;
    for (int i = 0; !rc && i < pool->nslots; i++) {
        pool->slots[i].pool = pool;
        pool->slots[i].index = i;
        rc = pool->transport->init(&pool->slots[i]);
    }
    return rc;
}

static int start_thread(mproc__pool_slot *s)
{
    int rc = mproc__os_thread_start(&s->thread, mproc__pool_slot_thread, s);
    if (!rc) s->pool->threads_live++;
    return rc;
}

/* The first worker starts here, so that a pool that cannot start a
   process fails at create; the others are started by their slot threads
   once it is ready (wait_first_worker in pool_sched.c). Those threads are
   made before the first worker's start: made after it, they would take
   the CPU that the forkserver or the new child needs next. With fork,
   all start here, one after another (see mproc__pool_slot_start). */
static int start_workers(mproc_pool *pool)
{
    int rc = 0;
    if (pool->opt.method == MPROC_FORK) {
        for (int i = 0; !rc && i < pool->nslots; i++)
            if (!(rc = mproc__pool_slot_start(&pool->slots[i]))) pool->slots[i].state = MPROC__SLOT_RUNNING;
        for (int i = 0; !rc && i < pool->nslots; i++) rc = start_thread(&pool->slots[i]);
    } else {
        int made = 1;
        pool->creating = 1; /* the others wait (no lock needed: no thread yet) */
        for (int i = 1; i < pool->nslots; i++) pool->slots[i].state = MPROC__SLOT_STARTING;
        while (!rc && made < pool->nslots && !(rc = start_thread(&pool->slots[made]))) made++;
        if (!rc) rc = mproc__pool_slot_start(&pool->slots[0]);
        mproc__os_mutex_lock(pool->mu);
        if (!rc) pool->slots[0].state = MPROC__SLOT_RUNNING;
        for (int i = made; i < pool->nslots; i++) pool->slots[i].state = MPROC__SLOT_DONE; /* no thread */
        pool->creating = 0;
        mproc__os_mutex_unlock(pool->mu);
        if (!rc) rc = start_thread(&pool->slots[0]);
    }
    if (!rc && pool->opt.task_timeout_ms)
        rc = mproc__os_thread_start(&pool->timer, timer_thread, pool);
    return rc;
}

static mproc__pool_create_fn default_create;

void mproc__pool_set_default_create(mproc__pool_create_fn fn) { default_create = fn; }

int mproc_pool_create(mproc_pool **out, const mproc_pool_options *opt)
{
    if (default_create) return default_create(out, opt);
    return mproc__pool_create_on(out, opt, &mproc__pool_local_transport);
}

int mproc__pool_create_on(mproc_pool **out, const mproc_pool_options *opt,
                          const mproc__pool_transport *transport)
{
    if (!out || !transport) return MPROC_EINVAL;
    *out = NULL;
    int rc = check_options(opt);
    if (!rc) rc = mproc__check_may_start();
    if (rc) return rc;
    mproc_pool *pool = NULL;
    rc = alloc_pool(&pool, opt, transport);
    if (rc) {
        free_pool(pool); /* nothing started yet */
        return rc;
    }
    if ((rc = start_workers(pool))) {
        mproc_pool_destroy(pool);
        return rc;
    }
    *out = pool;
    return 0;
}

/* ---- close, terminate, join ----------------------------------------------------- */
int mproc_pool_close(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    mproc__os_mutex_lock(pool->mu);
    pool->closed = 1;
    mproc__pool_pump_all(pool); /* idle workers get their STOP now */
    mproc__os_mutex_unlock(pool->mu);
    return 0;
}

void mproc__pool_terminate_locked(mproc_pool *pool, int code, const char *msg)
{
    if (!pool->terminating) {
        pool->terminate_code = code;
        snprintf(pool->terminate_msg, sizeof pool->terminate_msg, "%s", msg);
    }
    pool->closed = pool->terminating = 1;
    mproc__pool_fail_queued(pool, code, msg);
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state == MPROC__SLOT_RUNNING) pool->transport->kill(&pool->slots[i]);
}

int mproc_pool_terminate(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    mproc__os_mutex_lock(pool->mu);
    mproc__pool_terminate_locked(pool, MPROC_ECLOSED, "pool terminated");
    mproc__os_mutex_unlock(pool->mu);
    return 0;
}

/* Only a lock-free atomic store: safe in a signal handler running on any
   thread. The threads waiting in pool calls look at it (wait_for in
   pool_api.c). */
int mproc_pool_interrupt(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    mproc__store32(&pool->interrupted, 1);
    return 0;
}

static void join_threads(mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++) {
        mproc__os_thread_join(pool->slots[i].thread);
        pool->slots[i].thread = NULL;
    }
    if (pool->timer) {
        mproc__os_mutex_lock(pool->mu);
        pool->timer_stop = 1;
        mproc__os_cond_broadcast(pool->timer_cond);
        mproc__os_mutex_unlock(pool->mu);
        mproc__os_thread_join(pool->timer);
        pool->timer = NULL;
    }
}

/* Waits until every worker has ended and its reader thread is done. */
int mproc_pool_join(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    mproc__os_mutex_lock(pool->mu);
    if (!pool->closed) {
        mproc__os_mutex_unlock(pool->mu);
        return MPROC_ESTATE;
    }
    while (pool->joining || (pool->threads_live && !pool->joined)) {
        pool->waiters++;
        mproc__os_cond_wait(pool->cond, pool->mu, MPROC_FOREVER);
        pool->waiters--;
        mproc__pool_woken(pool);
    }
    int mine = !pool->joined;
    pool->joining = mine;
    mproc__os_mutex_unlock(pool->mu);
    if (!mine) return 0;
    join_threads(pool);
    mproc__os_mutex_lock(pool->mu);
    pool->joined = 1;
    pool->joining = 0;
    mproc__os_cond_broadcast(pool->cond);
    mproc__os_mutex_unlock(pool->mu);
    return 0;
}

/* ---- destroy -------------------------------------------------------------------- */
static void free_pool(mproc_pool *pool)
{
    if (!pool) return;
    for (int i = 0; pool->slots && i < pool->nslots; i++) pool->transport->fini(&pool->slots[i]);
    free(pool->slots);
    free(pool->fns);
    free(pool->initarg);
    if (pool->bell_made) {
        mproc__os_close(pool->bell_rd);
        if (pool->bell_wr != pool->bell_rd) mproc__os_close(pool->bell_wr);
    }
    mproc__os_cond_destroy(pool->timer_cond);
    mproc__os_cond_destroy(pool->start_cond);
    mproc__os_cond_destroy(pool->cond);
    mproc__os_mutex_destroy(pool->mu);
    mproc__os_mutex_destroy(pool->start_mu);
    free(pool);
}

int mproc__pool_unref(mproc_pool *pool)
{
    if (--pool->refs > 0) return 0;
    mproc__os_mutex_unlock(pool->mu);
    free_pool(pool);
    return 1;
}

void mproc_pool_destroy(mproc_pool *pool)
{
    if (!pool) return;
    mproc_pool_terminate(pool);
    mproc_pool_join(pool);
    mproc__os_mutex_lock(pool->mu);
    /* Iterators and async results still held keep the pool's memory (not
       its workers) until they are destroyed. */
    if (!mproc__pool_unref(pool)) mproc__os_mutex_unlock(pool->mu);
}

/* ---- counters and errors --------------------------------------------------------- */
/* Items a worker finished inside the map unit it runs now (counted in
   done only once the unit completes), without those it reported failed. */
static uint64_t done_in_unit(mproc__pool_slot *s)
{
    uint64_t seq;
    uint32_t pos, ticks;
    if (s->state != MPROC__SLOT_RUNNING || !s->pool->transport->progress(s, &seq, &pos, &ticks))
        return 0;
    for (size_t i = 0; i < s->u_count; i++) {
        const mproc__pool_unit *u = &s->units[(s->u_first + i) % MPROC__POOL_WINDOW];
        if (u->seq != seq) continue;
        if (u->job->kind == MPROC__JOB_APPLY || pos > u->n) return 0;
        uint64_t n = pos;
        for (size_t k = 0; k < u->nfails; k++) n -= u->fails[k] < pos;
        return n;
    }
    return 0;
}

int mproc_pool_stats_get(mproc_pool *pool, mproc_pool_stats *st)
{
    if (!pool || !st) return MPROC_EINVAL;
    mproc__os_mutex_lock(pool->mu);
    *st = pool->stats;
    st->done_in_flight = 0;
    st->progress = 0;
    for (int i = 0; i < pool->nslots; i++) {
        mproc__pool_slot *s = &pool->slots[i];
        st->done_in_flight += done_in_unit(s);
        if (pool->transport->reported) st->progress += pool->transport->reported(s);
    }
    mproc__os_mutex_unlock(pool->mu);
    return 0;
}

int mproc_pool_processes(const mproc_pool *pool)
{
    return pool ? pool->nslots : MPROC_EINVAL;
}

int mproc_pool_last_error(mproc_pool *pool, mproc_task_error *err)
{
    if (!pool || !err) return MPROC_EINVAL;
    mproc__os_mutex_lock(pool->mu);
    int has = pool->has_last;
    if (has) *err = pool->last;
    mproc__os_mutex_unlock(pool->mu);
    return has ? 0 : MPROC_ENOENT;
}
