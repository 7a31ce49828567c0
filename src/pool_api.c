/* The pool's calls: map, imap and its iterator, apply and async results.
   Each builds a job, queues it, lets the pump hand it out, and waits on
   the pool's condition variable; the reader threads finish the items. */
#include "pool_transport.h"

#include <stdio.h>

struct mproc_async {
    mproc_pool *pool;
    mproc__pool_job *job;
};

/* How often a waiting call looks for mproc_pool_interrupt(): a signal
   handler cannot signal a condition variable, so waits are sliced. */
#define INTERRUPT_POLL_MS 50

/* (pool.h) */
/* The first thread to see mproc_pool_interrupt's flag acts on it. */
static void act_on_interrupt(mproc_pool *pool)
{
    if (mproc__load32(&pool->interrupted) && !pool->interrupt_done) {
        pool->interrupt_done = 1;
        mproc__pool_terminate_locked(pool, MPROC_EINTR, "pool interrupted");
    }
}

/* A waiting caller reads the workers' events itself for as long as they
   come within SERVE_IDLE_US of each other (serve_ready in
   pool_transport.h): a short task's round trip is then this thread and
   the worker, with no serving thread woken in between (each wake-up costs
   tens of microseconds on a VM). Then it leaves the reading to the
   serving threads and sleeps on the condition, in slices that start at
   1 ms and double up to INTERRUPT_POLL_MS while little happens; when
   more than QUICK_UNITS_PER_MS units finished during a slice (a map of
   small chunks, whose first results came only after the workers woke
   up), it reads the events itself again.
   A wait that lasts longer than SERVE_WORTH_US (the results of long tasks)
   halves the first spin of the next wait, down to none: the spin would
   only take the CPU from the workers. A short wait restores it. */
#define SERVE_IDLE_US 50
#define SERVE_WORTH_US 100
#define SERVE_BACKOFF_MAX 6 /* SERVE_IDLE_US >> 6 = 0: no spin */
#define QUICK_UNITS_PER_MS 8

/* 1 if a worker will send something: the results of units it holds, or
   word that it is ready. (A starting slot belongs to its own thread.) */
static int events_expected(const mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++) {
        const mproc__pool_slot *s = &pool->slots[i];
        if (s->state == MPROC__SLOT_RUNNING && (s->u_count || !s->ready)) return 1;
    }
    return 0;
}

/* 1 if a worker that holds units has said it is ready: only such a one
   can answer within a spin (one still starting takes hundreds of
   microseconds, and a spin would take a CPU from its start). */
static int ready_worker_busy(const mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++) {
        const mproc__pool_slot *s = &pool->slots[i];
        if (s->state == MPROC__SLOT_RUNNING && s->ready && s->u_count) return 1;
    }
    return 0;
}

/* Without the lock: one look at every worker; 1 if something came. */
static int serve_pass(mproc_pool *pool)
{
    int got = 0;
    for (int i = 0; i < pool->nslots; i++) got |= pool->transport->serve_ready(&pool->slots[i]);
    return got;
}

/* With the lock held, as on return. Stops after idle_us without an
   event. */
static void serve_while_quick(mproc_pool *pool, const void *what, int (*done)(const void *),
                              unsigned idle_us, uint64_t deadline, int timeout_ms)
{
    if (!pool->transport->serve_ready || !idle_us || !ready_worker_busy(pool)) return;
    mproc__add32(&pool->callers_serving, 1);
    uint64_t quiet_since = mproc__os_now_ns(), finished = pool->units_finished;
    while (!done(what) && !mproc__load32(&pool->interrupted)) {
        mproc__os_mutex_unlock(pool->mu);
        int got = serve_pass(pool);
        if (!got)
            for (int k = 0; k < 4; k++) mproc__cpu_relax();
        uint64_t now = mproc__os_now_ns();
        mproc__os_mutex_lock(pool->mu);
        /* Progress counts whoever made it: a serving thread delivers until
           it has given way. */
        if (got || pool->units_finished != finished) quiet_since = now;
        finished = pool->units_finished;
        if (now - quiet_since > idle_us * 1000u || mproc__remaining_ms(deadline, timeout_ms) == 0)
            break;
    }
    /* The last caller to leave while workers owe events (units they hold,
       a worker not ready yet) hands them back to the serving threads at
       once; otherwise they take over within a few milliseconds unless a
       caller comes back first (the next get). */
    if (mproc__add32(&pool->callers_serving, (uint32_t)-1) == 1 && events_expected(pool)) {
        mproc__os_mutex_unlock(pool->mu);
        for (int i = 0; i < pool->nslots; i++) pool->transport->serve_resume(&pool->slots[i]);
        mproc__os_mutex_lock(pool->mu);
    }
}

int mproc__pool_wait(mproc_pool *pool, const void *what, int (*done)(const void *), int timeout_ms)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms), t0 = mproc__os_now_ns();
    unsigned idle_us = SERVE_IDLE_US >> pool->serve_backoff;
    int nap_ms = 1;
    for (;;) {
        serve_while_quick(pool, what, done, idle_us, deadline, timeout_ms);
        act_on_interrupt(pool);
        if (done(what)) {
            int quick = mproc__os_now_ns() - t0 < SERVE_WORTH_US * 1000u;
            pool->serve_backoff = quick ? 0 : pool->serve_backoff + (pool->serve_backoff < SERVE_BACKOFF_MAX);
            return pool->interrupt_done ? MPROC_EINTR : 0;
        }
        int left = mproc__remaining_ms(deadline, timeout_ms);
        if (left == 0) return pool->interrupt_done ? MPROC_EINTR : MPROC_ETIMEDOUT;
        int slice = left < 0 || left > nap_ms ? nap_ms : left;
        uint64_t finished = pool->units_finished;
        pool->waiters++;
        mproc__os_cond_wait(pool->cond, pool->mu, slice);
        pool->waiters--;
        mproc__pool_woken(pool);
        int quick = pool->units_finished - finished > (uint64_t)slice * QUICK_UNITS_PER_MS;
        idle_us = quick ? SERVE_IDLE_US : 0;
        nap_ms = quick ? 1 : nap_ms * 2 > INTERRUPT_POLL_MS ? INTERRUPT_POLL_MS : nap_ms * 2;
    }
}

void mproc__pool_fill_error(mproc_task_error *e, size_t index, int code, int status, const char *msg)
{
    memset(e, 0, sizeof *e);
    e->index = index;
    e->code = code;
    e->status = status;
    snprintf(e->message, sizeof e->message, "%s", msg);
}

static void set_last(mproc_pool *pool, const mproc__pool_job *job)
{
    pool->has_last = 1;
    mproc__pool_fill_error(&pool->last, job->err_index, job->err_code, job->err_status, job->err_msg);
}

static mproc__pool_job *new_job(int kind, uint32_t fn)
{
    mproc__pool_job *job = mproc__calloc(1, sizeof *job);
    if (!job) return NULL;
    job->kind = kind;
    job->fn = fn;
    job->refs = 1; /* the caller's */
    return job;
}

int mproc__pool_admit(mproc_pool *pool, const void *fn_addr, uint32_t *fn)
{
    int rc = mproc__pool_accepting(pool);
    return rc ? rc : mproc__pool_fn_id(pool, fn_addr, fn);
}

static size_t auto_chunk(const mproc_pool *pool, size_t count)
{
    size_t per = 4 * (size_t)pool->nslots;
    return (count + per - 1) / per; /* Python's ceil(N / (4 * workers)) */
}

static int check_map_args(mproc_pool *pool, mproc_map_fn fn, const void *items, size_t isz,
                          size_t count, size_t rsz)
{
    if (!pool || !fn || (count && (!items || !isz))) return MPROC_EINVAL;
    /* item and result together, as the header says */
    if (isz > MPROC__POOL_MAX_ITEM || rsz > MPROC__POOL_MAX_ITEM ||
        isz + rsz > MPROC__POOL_MAX_ITEM || isz + rsz > pool->unit_max ||
        (count && SIZE_MAX / count < isz + rsz))
        return MPROC_EINVAL;
    return 0;
}

/* ---- map ------------------------------------------------------------------------ */
static int map_done(const void *job) { return ((const mproc__pool_job *)job)->remaining == 0; }

int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn, const void *items, size_t item_size,
                   size_t count, void *results, size_t result_size, size_t chunksize)
{
    return mproc_pool_map_status(pool, fn, items, item_size, count, results, result_size,
                                 chunksize, NULL);
}

int mproc_pool_map_status(mproc_pool *pool, mproc_map_fn fn, const void *items, size_t item_size,
                          size_t count, void *results, size_t result_size, size_t chunksize,
                          int *status)
{
    void *addr;
    uint32_t id;
    int rc = check_map_args(pool, fn, items, item_size, count, result_size);
    if (rc) return rc;
    if (result_size && count && !results) return MPROC_EINVAL;
    memcpy(&addr, &fn, sizeof addr);
    mproc__os_mutex_lock(pool->mu);
    if ((rc = mproc__pool_admit(pool, addr, &id)) || !count) {
        mproc__os_mutex_unlock(pool->mu);
        return rc;
    }
    mproc__pool_job *job = new_job(MPROC__JOB_MAP, id);
    if (!job) {
        mproc__os_mutex_unlock(pool->mu);
        return MPROC_ENOMEM;
    }
    job->items = items;
    job->isz = item_size;
    job->rsz = result_size;
    job->count = job->remaining = count;
    job->chunk = chunksize ? chunksize : auto_chunk(pool, count);
    job->results = results;
    job->status_out = status;
    pool->stats.submitted += count;
    mproc__pool_enqueue(pool, job);
    mproc__pool_pump_all(pool);
    rc = mproc__pool_wait(pool, job, map_done, MPROC_FOREVER);
    if (rc != MPROC_EINTR) rc = job->has_err ? job->err_code : 0;
    if (rc) set_last(pool, job);
    mproc__pool_job_unref(pool, job);
    mproc__os_mutex_unlock(pool->mu);
    return rc;
}

/* ---- imap ----------------------------------------------------------------------- */
static int imap_window(mproc__pool_job *job, const mproc_pool *pool)
{
    /* Enough finished-but-unread items for every worker to stay busy,
       independent of count: memory stays flat however long the input. */
    size_t w = 8 * (size_t)pool->nslots * job->chunk;
    if (w < 64) w = 64;
    if (w > job->count) w = job->count ? job->count : 1;
    job->window = w;
    job->state = mproc__calloc(w, 1);
    job->codes = mproc__calloc(w, sizeof *job->codes);
    job->readyq = mproc__calloc(w, sizeof *job->readyq);
    job->results = mproc__calloc(w, job->rsz ? job->rsz : 1);
    return job->state && job->codes && job->readyq && job->results ? 0 : MPROC_ENOMEM;
}

static mproc__pool_job *imap_job(mproc_pool *pool, uint32_t id, const void *items, size_t isz,
                          size_t count, size_t rsz, size_t chunksize, int flags)
{
    mproc__pool_job *job = new_job(MPROC__JOB_IMAP, id);
    if (!job) return NULL;
    job->items = items;
    job->isz = isz;
    job->rsz = rsz;
    job->count = job->remaining = count;
    job->unordered = (flags & MPROC_UNORDERED) != 0;
    job->chunk = chunksize ? chunksize : auto_chunk(pool, count);
    if (!chunksize && job->chunk > 4096) job->chunk = 4096;
    if (!job->chunk) job->chunk = 1;
    if (imap_window(job, pool)) {
        mproc__pool_job_unref(pool, job);
        return NULL;
    }
    return job;
}

int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn, const void *items, size_t item_size,
                    size_t count, size_t result_size, size_t chunksize, int flags,
                    mproc_iter **out)
{
    void *addr;
    uint32_t id;
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    int rc = check_map_args(pool, fn, items, item_size, count, result_size);
    if (rc || (flags & ~MPROC_UNORDERED)) return rc ? rc : MPROC_EINVAL;
    mproc_iter *it = mproc__calloc(1, sizeof *it);
    if (!it) return MPROC_ENOMEM;
    memcpy(&addr, &fn, sizeof addr);
    mproc__os_mutex_lock(pool->mu);
    rc = mproc__pool_admit(pool, addr, &id);
    mproc__pool_job *job = rc ? NULL : imap_job(pool, id, items, item_size, count, result_size, chunksize, flags);
    if (!rc && !job) rc = MPROC_ENOMEM;
    if (rc) {
        mproc__os_mutex_unlock(pool->mu);
        free(it);
        return rc;
    }
    it->pool = pool;
    it->job = job;
    pool->refs++;
    pool->stats.submitted += count;
    if (count) mproc__pool_enqueue(pool, job);
    mproc__pool_pump_all(pool);
    mproc__os_mutex_unlock(pool->mu);
    *out = it;
    return 0;
}

/* The window moved: positions of consumed items are free again. */
static void advance_low(mproc_pool *pool, mproc__pool_job *job)
{
    size_t before = job->low;
    while (job->low < job->count && job->state[job->low % job->window] == MPROC__IS_CONSUMED) {
        job->state[job->low % job->window] = MPROC__IS_PENDING;
        job->low++;
    }
    if (job->low != before && job->queued) mproc__pool_pump_all(pool);
}

/* The next item to give back, or SIZE_MAX if none is ready. */
static size_t ready_index(const mproc__pool_job *job)
{
    if (job->unordered) {
        if (job->rq_count) return job->readyq[job->rq_head];
    } else if (job->low < job->count && job->state[job->low % job->window] != MPROC__IS_PENDING) {
        return job->low;
    }
    return SIZE_MAX;
}

/* Items the pool gave up on before handing them out (terminate). */
static size_t aborted_index(const mproc__pool_job *job)
{
    if (!job->abort_code || job->nretry) return SIZE_MAX;
    if (job->unordered) return job->next < job->count ? job->next : SIZE_MAX;
    return job->low >= job->next && job->low < job->count ? job->low : SIZE_MAX;
}

static int iter_ready(const void *what)
{
    const mproc__pool_job *job = what;
    return job->consumed == job->count || ready_index(job) != SIZE_MAX ||
           aborted_index(job) != SIZE_MAX;
}

static int take_aborted(mproc_iter *it, size_t i)
{
    mproc_pool *pool = it->pool;
    mproc__pool_job *job = it->job;
    job->consumed++;
    job->remaining--;
    pool->stats.failed++;
    if (job->unordered) job->next++;
    else job->low++;
    if (!job->unordered && job->next < job->low) job->next = job->low;
    mproc__pool_fill_error(&it->last, i, job->abort_code, 0, job->abort_msg);
    it->last_failed = 1;
    pool->has_last = 1;
    pool->last = it->last;
    return job->abort_code;
}

/* Sets the iterator's and the pool's last error to item i's failure (and
   forgets it). */
static void report_failure(mproc_iter *it, size_t i, int code)
{
    mproc__pool_job *job = it->job;
    mproc__pool_fill_error(&it->last, i, code, 0, job->err_msg);
    for (mproc__pool_failure **at = &job->failures; *at; at = &(*at)->next) {
        if ((*at)->index != i) continue;
        mproc__pool_failure *f = *at;
        mproc__pool_fill_error(&it->last, i, code, f->status, f->msg);
        *at = f->next;
        free(f);
        break;
    }
    it->last_failed = 1;
    it->pool->has_last = 1;
    it->pool->last = it->last;
}

static int take_item(mproc_iter *it, size_t i, void *result)
{
    mproc_pool *pool = it->pool;
    mproc__pool_job *job = it->job;
    size_t at = i % job->window;
    int rc = job->state[at] == MPROC__IS_FAILED ? job->codes[at] : 0;
    if (!rc && result && job->rsz) memcpy(result, job->results + at * job->rsz, job->rsz);
    if (rc) report_failure(it, i, rc);
    if (job->unordered) {
        job->rq_head = (job->rq_head + 1) % job->window;
        job->rq_count--;
    }
    job->state[at] = MPROC__IS_CONSUMED;
    job->consumed++;
    advance_low(pool, job);
    return rc;
}

int mproc_iter_next(mproc_iter *it, void *result, size_t *index, int timeout_ms)
{
    if (index) *index = SIZE_MAX;
    if (!it || !it->job) return MPROC_EINVAL; /* a record stream: mproc_iter_next_record */
    mproc_pool *pool = it->pool;
    mproc__pool_job *job = it->job;
    mproc__os_mutex_lock(pool->mu);
    int rc = mproc__pool_wait(pool, job, iter_ready, timeout_ms);
    size_t i = rc ? SIZE_MAX : ready_index(job);
    it->last_failed = 0;
    if (rc) {
        /* timed out: rc says so, *index stays SIZE_MAX */
    } else if (i != SIZE_MAX) {
        rc = take_item(it, i, result);
    } else if ((i = aborted_index(job)) != SIZE_MAX) {
        rc = take_aborted(it, i);
    } else {
        rc = MPROC_EDONE;
    }
    mproc__os_mutex_unlock(pool->mu);
    if (index && i != SIZE_MAX) *index = i;
    return rc;
}

int mproc_iter_error(mproc_iter *it, mproc_task_error *err)
{
    if (!it || !err) return MPROC_EINVAL;
    mproc__os_mutex_lock(it->pool->mu);
    int failed = it->last_failed;
    if (failed) *err = it->last;
    mproc__os_mutex_unlock(it->pool->mu);
    return failed ? 0 : MPROC_ENOENT;
}

void mproc_iter_destroy(mproc_iter *it)
{
    if (!it) return;
    mproc_pool *pool = it->pool;
    mproc__os_mutex_lock(pool->mu);
    if (it->stream) {
        mproc__pool_stream_free(it);
    } else {
        mproc__pool_cancel(pool, it->job); /* units in flight finish and are dropped */
        mproc__pool_job_unref(pool, it->job);
    }
    if (!mproc__pool_unref(pool)) mproc__os_mutex_unlock(pool->mu);
    free(it);
}

/* ---- apply ---------------------------------------------------------------------- */
mproc__pool_job *mproc__pool_apply_job(const void *in, size_t in_len)
{
    mproc__pool_job *job = new_job(MPROC__JOB_APPLY, 0);
    if (!job) return NULL;
    /* Room before the input for the header the transport puts there
       (pool_local.c sends header and input as one message). */
    if (in_len > SIZE_MAX - MPROC__POOL_HDR || !(job->in = malloc(MPROC__POOL_HDR + in_len))) {
        free(job);
        return NULL;
    }
    if (in_len) memcpy(job->in + MPROC__POOL_HDR, in, in_len);
    job->in_len = in_len;
    job->count = job->remaining = 1;
    return job;
}

int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn, const void *in, size_t in_len,
                           mproc_async **out)
{
    return mproc_pool_apply_async_timeout(pool, fn, in, in_len, MPROC_FOREVER, out);
}

static int has_room(const void *pool)
{
    const mproc_pool *p = pool;
    return p->pending < (size_t)p->opt.max_pending || mproc__pool_accepting(p);
}

int mproc_pool_apply_async_timeout(mproc_pool *pool, mproc_task_fn fn, const void *in,
                                   size_t in_len, int timeout_ms, mproc_async **out)
{
    void *addr;
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (!pool || !fn || (in_len && !in)) return MPROC_EINVAL;
    mproc_async *r = mproc__calloc(1, sizeof *r);
    mproc__pool_job *job = r ? mproc__pool_apply_job(in, in_len) : NULL;
    if (!job) {
        free(r);
        return MPROC_ENOMEM;
    }
    memcpy(&addr, &fn, sizeof addr);
    mproc__os_mutex_lock(pool->mu);
    int rc = timeout_ms < MPROC_FOREVER ? MPROC_EINVAL : 0;
    /* backpressure: at most max_pending applies queued or running */
    if (!rc && pool->opt.max_pending) rc = mproc__pool_wait(pool, pool, has_room, timeout_ms);
    if (!rc) rc = mproc__pool_admit(pool, addr, &job->fn);
    if (rc) {
        mproc__os_mutex_unlock(pool->mu);
        mproc__pool_job_unref(pool, job);
        free(r);
        return rc;
    }
    r->pool = pool;
    r->job = job;
    job->pending = 1;
    pool->pending++;
    pool->refs++;
    pool->stats.submitted++;
    mproc__pool_enqueue(pool, job);
    mproc__pool_pump_all(pool);
    mproc__os_mutex_unlock(pool->mu);
    *out = r;
    return 0;
}

static int apply_done(const void *job) { return ((const mproc__pool_job *)job)->done != 0; }

/* Over a transport whose events only its serving thread reads, a round
   trip is a few tens of microseconds: a short spin before sleeping saves
   the sleeping caller's wake-up, which costs as much again. (Where callers
   may read events themselves, mproc__pool_wait does that instead.) */
static void spin_briefly(const mproc_async *r)
{
    if (r->pool->transport->serve_ready) return;
    uint64_t until = mproc__os_now_ns() + 50000;
    while (!mproc__load32(&r->job->done) && mproc__os_now_ns() < until) mproc__os_yield();
}

int mproc_async_wait(mproc_async *r, int timeout_ms)
{
    if (!r) return MPROC_EINVAL;
    if (timeout_ms != 0) spin_briefly(r);
    mproc__os_mutex_lock(r->pool->mu);
    int rc = mproc__pool_wait(r->pool, r->job, apply_done, timeout_ms);
    mproc__os_mutex_unlock(r->pool->mu);
    return rc;
}

int mproc_async_ready(mproc_async *r)
{
    if (!r) return MPROC_EINVAL;
    mproc_pool *pool = r->pool;
    /* A caller polling for readiness reads what has come, as a waiting one
       does (serving threads may be parked for it). */
    if (!mproc__load32(&r->job->done) && pool->transport->serve_ready) {
        mproc__add32(&pool->callers_serving, 1);
        serve_pass(pool);
        mproc__add32(&pool->callers_serving, (uint32_t)-1);
    }
    return mproc__load32(&r->job->done) ? 1 : 0;
}

/* With the lock, once done: the task's code, and a copy of its result. */
static int async_result(mproc_async *r, void **out, size_t *out_len)
{
    mproc__pool_job *job = r->job;
    if (job->has_err) {
        set_last(r->pool, job);
        return job->err_code;
    }
    if (job->taken) return MPROC_ESTATE;
    if (!out) return 0;
    *out = NULL;
    if (out_len) *out_len = job->out_len;
    if (!job->out_len) return 0;
    if (!(*out = malloc(job->out_len))) return MPROC_ENOMEM;
    memcpy(*out, job->out, job->out_len);
    return 0;
}

int mproc_async_get(mproc_async *r, void **out, size_t *out_len, int timeout_ms)
{
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r) return MPROC_EINVAL;
    if (timeout_ms != 0) spin_briefly(r);
    mproc__os_mutex_lock(r->pool->mu);
    int rc = mproc__pool_wait(r->pool, r->job, apply_done, timeout_ms);
    if (!rc) rc = async_result(r, out, out_len);
    mproc__os_mutex_unlock(r->pool->mu);
    return rc;
}

int mproc_async_error(mproc_async *r, mproc_task_error *err)
{
    if (!r || !err) return MPROC_EINVAL;
    mproc__os_mutex_lock(r->pool->mu);
    const mproc__pool_job *job = r->job;
    int rc = !job->done ? MPROC_ESTATE : !job->has_err ? MPROC_ENOENT : 0;
    if (!rc) mproc__pool_fill_error(err, 0, job->err_code, job->err_status, job->err_msg);
    mproc__os_mutex_unlock(r->pool->mu);
    return rc;
}

int mproc_async_take(mproc_async *r, void **out, size_t *out_len, int timeout_ms)
{
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out) return MPROC_EINVAL;
    if (timeout_ms != 0) spin_briefly(r);
    mproc__os_mutex_lock(r->pool->mu);
    mproc__pool_job *job = r->job;
    int rc = mproc__pool_wait(r->pool, job, apply_done, timeout_ms);
    if (!rc && job->has_err) {
        set_last(r->pool, job);
        rc = job->err_code;
    } else if (!rc && job->taken) {
        rc = MPROC_ESTATE;
    } else if (!rc) {
        /* handed over: no copy */
        *out = job->out;
        if (out_len) *out_len = job->out_len;
        job->out = NULL;
        job->taken = 1;
    }
    mproc__os_mutex_unlock(r->pool->mu);
    return rc;
}

/* ---- mproc_wait ------------------------------------------------------------------ */
static mproc_pool *pool_of(int iter, void *obj)
{
    return iter ? ((mproc_iter *)obj)->pool : ((mproc_async *)obj)->pool;
}

/* With the lock: the next get / next on obj will not wait. */
static int obj_ready(int iter, void *obj)
{
    if (!iter) return apply_done(((mproc_async *)obj)->job);
    const mproc_iter *it = obj;
    return it->stream ? mproc__pool_stream_ready(it) : iter_ready(it->job);
}

int mproc__pool_wait_prepare(int iter, void *obj, mproc__handle *h)
{
    mproc_pool *pool = pool_of(iter, obj);
    int rc = 0;
    /* Whoever sleeps on the doorbell needs the serving threads reading. */
    if (pool->transport->serve_resume)
        for (int i = 0; i < pool->nslots; i++) pool->transport->serve_resume(&pool->slots[i]);
    mproc__os_mutex_lock(pool->mu);
    act_on_interrupt(pool);
    if (obj_ready(iter, obj)) {
        rc = 1;
    } else if (!pool->bell_made && (rc = mproc__os_bell_create(&pool->bell_rd, &pool->bell_wr)) == 0) {
        pool->bell_made = 1;
    }
    if (rc == 0) {
        pool->bell_waiters++;
        *h = pool->bell_rd;
    }
    mproc__os_mutex_unlock(pool->mu);
    return rc;
}

int mproc__pool_wait_finish(int iter, void *obj, int woke)
{
    mproc_pool *pool = pool_of(iter, obj);
    mproc__os_mutex_lock(pool->mu);
    if (woke) mproc__os_bell_take(pool->bell_rd);
    pool->bell_waiters--;
    int ready = obj_ready(iter, obj);
    mproc__os_mutex_unlock(pool->mu);
    return ready;
}

void mproc_async_destroy(mproc_async *r)
{
    if (!r) return;
    mproc_pool *pool = r->pool;
    mproc__os_mutex_lock(pool->mu);
    mproc__pool_cancel(pool, r->job);
    mproc__pool_job_unref(pool, r->job);
    if (!mproc__pool_unref(pool)) mproc__os_mutex_unlock(pool->mu);
    free(r);
}

int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *in, size_t in_len,
                     void **out, size_t *out_len)
{
    mproc_async *r;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    int rc = mproc_pool_apply_async(pool, fn, in, in_len, &r);
    if (rc) return rc;
    rc = mproc_async_wait(r, MPROC_FOREVER);
    mproc__os_mutex_lock(pool->mu);
    if (!rc && r->job->has_err) {
        set_last(pool, r->job);
        rc = r->job->err_code;
    } else if (!rc && out) {
        /* The result buffer is handed over, not copied. */
        *out = r->job->out;
        if (out_len) *out_len = r->job->out_len;
        r->job->out = NULL;
    }
    mproc__os_mutex_unlock(pool->mu);
    mproc_async_destroy(r);
    return rc;
}
