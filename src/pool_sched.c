/* The pool's scheduler, the part that deals with workers: which worker
   gets the next unit, how many units each may hold, what their events
   mean for the units, task timeouts, and each slot's life (start, serve,
   settle the dead worker's units, replace it). It talks to workers only
   through the transport (pool_transport.h); the jobs' side is
   pool_jobs.c. With the pool's lock held unless said otherwise. */
#include "pool_transport.h"

#include <stdio.h>

#define SLOW_UNIT_MS 2  /* units slower than this: keep only two in flight */
#define STAGGER_MS 5    /* see wait_first_worker */
#define START_WINDOW 2

static int others_may_start(const mproc_pool *pool);

/* Held-back slot threads (wait_first_worker) are released last: when a
   wake-up reaches threads waiting on the pool (a result has come), the
   first of them to run releases them, so that it gets a CPU before a
   worker start does. */
static void release_held_back(mproc_pool *pool)
{
    if (pool->held_back && !pool->release_after_wake && others_may_start(pool))
        mproc__os_cond_broadcast(pool->start_cond);
}

void mproc__pool_wake(mproc_pool *pool)
{
    if (pool->waiters) {
        mproc__os_cond_broadcast(pool->cond);
        if (pool->held_back) pool->release_after_wake = 1;
    }
    if (pool->bell_waiters) mproc__os_bell_ring(pool->bell_wr, pool->bell_waiters);
    release_held_back(pool);
}

void mproc__pool_woken(mproc_pool *pool)
{
    if (!pool->release_after_wake) return;
    pool->release_after_wake = 0;
    release_held_back(pool);
}

static mproc__pool_unit *unit_at(mproc__pool_slot *s, size_t i)
{
    return &s->units[(s->u_first + i) % MPROC__POOL_WINDOW];
}

/* ---- handing out units -------------------------------------------------------- */
/* How many units a worker may hold: it starts at two (one running, one
   waiting) and doubles with every quick unit up to the full window, like
   TCP's slow start; a slow unit sets it back to two. Short units thus get
   deep pipelining, while a short list of long tasks is spread over all
   workers instead of being queued behind the first one.
   While another worker is starting (a new pool's, a replacement), a
   worker whose units have not proved quick holds only the one it runs:
   the next long task waits for the starting worker rather than queueing
   behind the first (two long tasks given to a new Pool(2) run side by
   side). */
static int may_take(const mproc__pool_slot *s, int others_starting)
{
    const mproc_pool *pool = s->pool;
    if (s->state != MPROC__SLOT_RUNNING) return 0; /* a starting slot's fields are its thread's */
    size_t win = others_starting && s->win <= START_WINDOW ? 1 : s->win;
    if (s->stop_sent || s->u_count >= win) return 0;
    return !pool->opt.maxtasksperchild || s->tasks_sent < (unsigned)pool->opt.maxtasksperchild;
}

static int any_starting(const mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state == MPROC__SLOT_STARTING) return 1;
    return 0;
}

/* Hands one unit of queued work to s: 1, or 0 if there is none or s has
   no room for it. */
static int give_one(mproc__pool_slot *s)
{
    mproc_pool *pool = s->pool;
    mproc__pool_unit *u = unit_at(s, s->u_count);
    memset(u, 0, sizeof *u);
    if (!mproc__pool_peek_unit(pool, u)) return 0;
    u->seq = s->next_seq + 1;
    if (!pool->transport->put_unit(s, u)) return 0;
    s->next_seq++;
    mproc__pool_take_unit(pool, u);
    s->u_count++;
    s->wire_held += u->wire_bytes;
    s->tasks_sent++;
    return 1;
}

/* 1 if s will start a new unit sooner than best: it holds fewer units;
   or both are idle and s became idle last (it is likely still spinning
   on its conn, while one idle longer sleeps and must be woken). */
static int sooner(const mproc__pool_slot *s, const mproc__pool_slot *best)
{
    if (s->u_count != best->u_count) return s->u_count < best->u_count;
    return !s->u_count && s->idle_mark > best->idle_mark;
}

/* The worker that will start a new unit soonest among those not yet tried
   in this pump: an idle one first (the one idle for the shortest time),
   then the one holding the fewest units, whatever each one's window.
   Equal ones take turns from where the last choice left off. NULL if none
   can take a unit. */
static mproc__pool_slot *soonest(mproc_pool *pool, const unsigned char *tried, int starting)
{
    mproc__pool_slot *best = NULL;
    for (int k = 0; k < pool->nslots; k++) {
        mproc__pool_slot *s = &pool->slots[(pool->turn + k) % pool->nslots];
        if (tried[s->index] || !may_take(s, starting)) continue;
        if (!best || sooner(s, best)) best = s;
    }
    return best;
}

/* An idle worker of a closed pool with nothing left to do is told to stop. */
static void flush_slot(mproc__pool_slot *s)
{
    mproc_pool *pool = s->pool;
    if (s->state != MPROC__SLOT_RUNNING) return; /* a starting slot belongs to its thread */
    int stop = pool->closed && !s->stop_sent && !s->u_count && !pool->qhead;
    if (stop) s->stop_sent = 1;
    pool->transport->flush(s, stop);
}

/* Hands out queued work one unit at a time, each to the worker that will
   start it soonest; a worker that cannot take the next unit (no room in
   its transport) is not asked again in this pump. Then every batch goes
   out. */
void mproc__pool_pump_all(mproc_pool *pool)
{
    unsigned char small[64], *tried = small;
    int starting = pool->qhead && any_starting(pool);
    if (pool->nslots > (int)sizeof small) tried = malloc((size_t)pool->nslots);
    if (tried) {
        mproc__pool_slot *s;
        memset(tried, 0, (size_t)pool->nslots);
        while (pool->qhead && (s = soonest(pool, tried, starting))) {
            if (give_one(s)) pool->turn = (s->index + 1) % pool->nslots;
            else tried[s->index] = 1;
        }
        if (tried != small) free(tried);
    } else {
        /* No memory for the fair choice: in slot order, as far as each goes. */
        for (int i = 0; i < pool->nslots; i++)
            while (may_take(&pool->slots[i], starting) && give_one(&pool->slots[i])) {}
    }
    for (int i = 0; i < pool->nslots; i++) flush_slot(&pool->slots[i]);
    release_held_back(pool);
}

/* ---- the worker's events --------------------------------------------------------- */
static void kill_broken(mproc__pool_slot *s)
{
    if (s->state == MPROC__SLOT_RUNNING) s->pool->transport->kill(s);
}

void mproc__pool_ev_ready(mproc__pool_slot *s)
{
    s->ready = 1;
    s->start_failures = 0;
}

/* The oldest unit leaves the window; took_us: how long the worker ran it. */
static void pop_unit(mproc__pool_slot *s, uint32_t took_us)
{
    mproc__pool_unit *u = unit_at(s, 0);
    free(u->fails);
    u->fails = NULL;
    s->wire_held -= u->wire_bytes;
    s->u_first = (s->u_first + 1) % MPROC__POOL_WINDOW;
    s->pool->units_finished++;
    if (!--s->u_count) s->idle_mark = ++s->pool->idle_clock;
    if (took_us > SLOW_UNIT_MS * 1000) s->win = START_WINDOW;
    else if (s->win < MPROC__POOL_WINDOW) s->win *= 2;
}

int mproc__pool_ev_done(mproc__pool_slot *s, uint64_t seq, int code, const char *msg,
                        unsigned char *out, size_t out_len, uint32_t took_us)
{
    return mproc__pool_ev_done_status(s, seq, code, 0, msg, out, out_len, took_us);
}

int mproc__pool_ev_done_status(mproc__pool_slot *s, uint64_t seq, int code, int status,
                               const char *msg, unsigned char *out, size_t out_len,
                               uint32_t took_us)
{
    mproc__pool_unit *u = s->u_count ? unit_at(s, 0) : NULL;
    if (!u || u->seq != seq || (out_len && u->job->kind != MPROC__JOB_APPLY)) {
        kill_broken(s);
        return MPROC_EPROTO;
    }
    const unsigned char *res = u->job->kind == MPROC__JOB_APPLY || code ? NULL
                               : s->pool->transport->results(s, u);
    mproc__pool_unit_done(s->pool, u, code, status, msg, res, out, out_len);
    pop_unit(s, took_us);
    return 0;
}

int mproc__pool_ev_item_failed(mproc__pool_slot *s, uint64_t seq, uint32_t pos, int code,
                               const char *msg)
{
    return mproc__pool_ev_item_failed_status(s, seq, pos, code, 0, msg);
}

int mproc__pool_ev_item_failed_status(mproc__pool_slot *s, uint64_t seq, uint32_t pos, int code,
                                      int status, const char *msg)
{
    for (size_t i = 0; i < s->u_count; i++) {
        mproc__pool_unit *u = unit_at(s, i);
        if (u->seq != seq) continue;
        if (u->job->kind == MPROC__JOB_APPLY || pos >= u->n) break;
        mproc__pool_item_failed(s->pool, u, pos, code, status, msg);
        return 0;
    }
    kill_broken(s);
    return MPROC_EPROTO;
}

/* ---- task timeouts ------------------------------------------------------------------ */
/* A worker whose item clock has not moved for task_timeout_ms while it
   runs an item is killed; its death then fails that item with
   MPROC_ETIMEDOUT. Measured on the parent's clock from when the parent
   first saw the clock's value, so a task is never cut short. */
void mproc__pool_check_timeouts(mproc_pool *pool, uint64_t now)
{
    for (int i = 0; i < pool->nslots; i++) {
        mproc__pool_slot *s = &pool->slots[i];
        uint64_t seq;
        uint32_t pos, ticks;
        if (s->state != MPROC__SLOT_RUNNING || s->timed_out) continue;
        int running = pool->transport->progress(s, &seq, &pos, &ticks);
        if (!running || ticks != s->seen_ticks) {
            s->seen_ticks = ticks;
            s->seen_since_ms = now;
            continue;
        }
        if (now - s->seen_since_ms < (uint64_t)pool->opt.task_timeout_ms) continue;
        s->timed_out = 1;
        s->to_seq = seq;
        s->to_pos = pos;
        pool->transport->kill(s);
    }
}

/* ---- a worker ended ------------------------------------------------------------------ */
/* Every unit the dead worker held, in order, against what the transport
   says it was doing (see pool_transport.h). */
static void settle_units(mproc__pool_slot *s, const mproc__pool_death *d)
{
    mproc_pool *pool = s->pool;
    char msg[256];
    int first = 1;
    while (s->u_count) {
        mproc__pool_unit *u = unit_at(s, 0);
        int is_map = u->job->kind != MPROC__JOB_APPLY;
        const unsigned char *res = is_map ? pool->transport->results(s, u) : NULL;
        if (!d->exact && first) {
            /* Only the units it held are known: the oldest was running. */
            snprintf(msg, sizeof msg, "%s while holding this item", d->how);
            mproc__pool_unit_died(pool, u, 1, 0, MPROC_ECHILD, msg, NULL);
        } else if (!d->exact) {
            mproc__pool_unit_died(pool, u, 0, 0, 0, NULL, NULL);
        } else if (u->seq < d->seq || (u->seq == d->seq && d->phase == MPROC__PHASE_FINISHED)) {
            /* finished; its completion never came (an apply's result with it) */
            if (is_map) mproc__pool_unit_done(pool, u, 0, 0, "", res, NULL, 0);
            else mproc__pool_unit_died(pool, u, 1, 0, MPROC_ECHILD, d->how, NULL);
        } else if (u->seq == d->seq && d->phase == MPROC__PHASE_RUNNING) {
            uint32_t pos = d->pos;
            if (is_map && pos >= u->n) pos = (uint32_t)(u->n - 1); /* a scribbled block */
            int timed_out = s->timed_out && s->to_seq == u->seq && s->to_pos == pos;
            if (timed_out)
                snprintf(msg, sizeof msg, "task timed out after %d ms; worker %d (pid %lld) was killed",
                         pool->opt.task_timeout_ms, s->index + 1, (long long)s->pid);
            else
                snprintf(msg, sizeof msg, "%s while running this item", d->how);
            int code = timed_out ? MPROC_ETASKTIMEOUT : MPROC_ECHILD;
            if (pool->terminating && !timed_out) {
                /* killed by terminate (or an interrupt): as the header says */
                code = pool->terminate_code;
                snprintf(msg, sizeof msg, "%s", pool->terminate_msg);
            }
            mproc__pool_unit_died(pool, u, 1, pos, code, msg, res);
        } else {
            mproc__pool_unit_died(pool, u, 0, 0, 0, NULL, NULL);
        }
        first = 0;
        free(u->fails);
        u->fails = NULL;
        s->wire_held -= u->wire_bytes;
        s->u_first = (s->u_first + 1) % MPROC__POOL_WINDOW;
        s->u_count--;
    }
}

int mproc__pool_all_slots_done(const mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state != MPROC__SLOT_DONE) return 0;
    return 1;
}

/* 1 if the slot should start a replacement. */
static int decide_restart(mproc__pool_slot *s, const mproc__pool_death *d)
{
    mproc_pool *pool = s->pool;
    int work = pool->qhead != NULL;
    if (!s->ready) s->start_failures++;
    if (d->no_guard && pool->broken_error != MPROC_EBOOTSTRAP) {
        /* Each start would run the program's main() again: stop at once. */
        pool->broken_error = MPROC_EBOOTSTRAP;
        snprintf(pool->broken_msg, sizeof pool->broken_msg,
                 "a worker never reached mproc_main_guard(): call mproc_main_guard(argc, argv) "
                 "first in main() (%.100s)", d->how);
    }
    if (pool->broken_error == MPROC_EBOOTSTRAP) return 0;
    if (pool->terminating || (pool->closed && !work)) return 0;
    /* A worker that never got through its initializer three times in a
       row will not: better an error than Python's endless respawning. */
    if (s->start_failures >= 3) {
        if (!pool->broken_error) {
            pool->broken_error = d->exit_code == MPROC_EXIT_BOOTSTRAP ? MPROC_EBOOTSTRAP : MPROC_ECHILD;
            snprintf(pool->broken_msg, sizeof pool->broken_msg,
                     "workers die before they are ready (initializer?): %s", d->how);
        }
        return 0;
    }
    return 1;
}

/* No worker is left: what is queued can never run. */
static void fail_if_no_workers(mproc_pool *pool, int code, const char *msg)
{
    if (mproc__pool_all_slots_done(pool) && pool->qhead)
        mproc__pool_fail_queued(pool, pool->broken_error ? pool->broken_error : code,
                                pool->broken_error ? pool->broken_msg : msg);
}

/* Without the lock: the worker is gone; settle its units, then decide.
   1 if the slot should start a new worker. */
static int worker_ended(mproc__pool_slot *s)
{
    mproc_pool *pool = s->pool;
    mproc__pool_death d;
    mproc__os_mutex_lock(pool->mu);
    s->state = MPROC__SLOT_EXITING; /* nobody hands it units or kills it any more */
    mproc__os_mutex_unlock(pool->mu);
    pool->transport->reap(s, &d);
    mproc__os_mutex_lock(pool->mu);
    settle_units(s, &d);
    int restart = decide_restart(s, &d);
    s->state = restart ? MPROC__SLOT_STARTING : MPROC__SLOT_DONE;
    if (restart) pool->stats.workers_replaced++;
    fail_if_no_workers(pool, MPROC_ECHILD, d.how);
    mproc__pool_pump_all(pool); /* its units may go to the other workers */
    mproc__pool_wake(pool);
    mproc__os_mutex_unlock(pool->mu);
    return restart;
}

static void reset_slot(mproc__pool_slot *s)
{
    s->u_first = s->u_count = 0;
    s->wire_held = 0;
    s->next_seq = 0;
    s->tasks_sent = 0;
    s->ready = s->stop_sent = s->timed_out = 0;
    s->win = START_WINDOW;
    s->idle_mark = 0;
    s->seen_ticks = 0;
    s->seen_since_ms = mproc__os_now_ms();
}

/* Without the lock; the slot is STARTING. */
int mproc__pool_slot_start(mproc__pool_slot *s)
{
    reset_slot(s);
    return s->pool->transport->start(s);
}

/* Without the lock. 1 when the replacement runs. */
static int restart_worker(mproc__pool_slot *s)
{
    mproc_pool *pool = s->pool;
    mproc__os_mutex_lock(pool->mu);
    int no_guard = pool->broken_error == MPROC_EBOOTSTRAP;
    mproc__os_mutex_unlock(pool->mu);
    /* A worker of this program never reached its guard: no other starts. */
    int rc = no_guard ? MPROC_EBOOTSTRAP : mproc__pool_slot_start(s);
    mproc__os_mutex_lock(pool->mu);
    if (rc) {
        s->state = MPROC__SLOT_DONE;
        if (!pool->broken_error) {
            pool->broken_error = rc;
            snprintf(pool->broken_msg, sizeof pool->broken_msg,
                     "a replacement worker could not be started: %s", mproc_strerror(rc));
        }
        fail_if_no_workers(pool, rc, pool->broken_msg);
        mproc__pool_wake(pool);
    } else {
        s->state = MPROC__SLOT_RUNNING;
        if (pool->terminating) pool->transport->kill(s);
        mproc__pool_pump_all(pool);
    }
    mproc__os_mutex_unlock(pool->mu);
    return rc == 0;
}

/* The workers create did not start wait until the first one is ready
   and there is work for another: more than the one unit the first holds.
   Started at once on a machine with few CPUs, their starts would take the
   CPUs from the first worker's start and from its first result, which a
   program that created a pool to run one task waits for; a map of many
   units starts them as soon as the first worker is ready. They wait at
   most STAGGER_MS (an initializer or a first task may take long). With
   the lock. */
static int others_may_start(const mproc_pool *pool)
{
    const mproc__pool_slot *first = &pool->slots[0];
    if (pool->creating) return 0;
    if (first->state != MPROC__SLOT_RUNNING || pool->closed) return 1;
    return first->ready && (first->u_count != 1 || pool->qhead);
}

static void wait_first_worker(mproc__pool_slot *s)
{
    mproc_pool *pool = s->pool;
    uint64_t deadline = mproc__deadline_ms(STAGGER_MS);
    pool->held_back++;
    while (!others_may_start(pool)) {
        int left = mproc__remaining_ms(deadline, STAGGER_MS);
        if (left == 0) break;
        mproc__os_cond_wait(pool->start_cond, pool->mu, left);
    }
    pool->held_back--;
}

/* A slot's life: start its worker unless create did, then serve it and
   replace it until the pool ends. */
void mproc__pool_slot_thread(void *arg)
{
    mproc__pool_slot *s = arg;
    mproc_pool *pool = s->pool;
    mproc__os_mutex_lock(pool->mu);
    int started = s->state == MPROC__SLOT_RUNNING;
    if (!started) wait_first_worker(s);
    /* A pool terminated (or whose create failed) before this slot's turn
       starts no worker for it. */
    int skip = !started && pool->terminating;
    if (skip) s->state = MPROC__SLOT_DONE;
    mproc__os_mutex_unlock(pool->mu);
    if (started || (!skip && restart_worker(s))) {
        do {
            pool->transport->serve(s);
        } while (worker_ended(s) && restart_worker(s));
    }
    mproc__os_mutex_lock(pool->mu);
    pool->threads_live--;
    mproc__os_cond_broadcast(pool->cond);
    mproc__os_mutex_unlock(pool->mu);
}
