/* Pool jobs, the scheduler's side that deals with work: the queue of work
   not yet handed out, cutting it into units, and finishing items (results,
   errors, counters) as units complete or their workers die. It never sees
   a worker or a transport (pool_sched.c does). Everything here runs with
   the pool's lock held. */
#include "pool.h"

#include <stdio.h>

/* ---- queue ------------------------------------------------------------------ */
void mproc__pool_enqueue(mproc_pool *pool, mproc__pool_job *job)
{
    if (job->queued) return;
    job->queued = 1;
    job->next_q = NULL;
    if (pool->qtail) pool->qtail->next_q = job;
    else pool->qhead = job;
    pool->qtail = job;
}

/* Work that must run again goes first: the caller is already waiting. */
static void enqueue_front(mproc_pool *pool, mproc__pool_job *job)
{
    if (job->queued) return;
    job->queued = 1;
    job->next_q = pool->qhead;
    pool->qhead = job;
    if (!pool->qtail) pool->qtail = job;
}

void mproc__pool_dequeue(mproc_pool *pool, mproc__pool_job *job)
{
    if (!job->queued) return;
    mproc__pool_job **at = &pool->qhead, *prev = NULL;
    while (*at && *at != job) {
        prev = *at;
        at = &(*at)->next_q;
    }
    if (*at) *at = job->next_q;
    if (pool->qtail == job) pool->qtail = prev;
    job->queued = 0;
    job->next_q = NULL;
}

void mproc__pool_job_unref(mproc_pool *pool, mproc__pool_job *job)
{
    (void)pool;
    if (--job->refs > 0) return;
    while (job->failures) {
        mproc__pool_failure *f = job->failures;
        job->failures = f->next;
        free(f);
    }
    free(job->retry);
    free(job->tries);
    free(job->state);
    free(job->codes);
    free(job->readyq);
    if (job->kind == MPROC__JOB_IMAP) free(job->results);
    free(job->in);
    free(job->out);
    free(job);
}

/* ---- finishing items --------------------------------------------------------- */
static void record_error(mproc__pool_job *job, size_t index, int code, int status, const char *msg)
{
    if (job->status_out) job->status_out[index] = code;
    if (job->has_err && job->err_index <= index) return;
    job->has_err = 1;
    job->err_index = index;
    job->err_code = code;
    job->err_status = status;
    snprintf(job->err_msg, sizeof job->err_msg, "%s", msg ? msg : "");
}

static void imap_finish(mproc__pool_job *job, size_t index, int state, int code)
{
    size_t at = index % job->window;
    job->state[at] = (unsigned char)state;
    job->codes[at] = code;
    if (job->unordered) {
        job->readyq[(job->rq_head + job->rq_count) % job->window] = index;
        job->rq_count++;
    }
}

static void items_ok(mproc_pool *pool, mproc__pool_job *job, size_t lo, size_t n, const unsigned char *res)
{
    pool->stats.done += n;
    job->remaining -= n;
    if (job->cancelled) return;
    if (job->kind == MPROC__JOB_MAP) {
        if (job->rsz) memcpy(job->results + lo * job->rsz, res, n * job->rsz);
        if (job->status_out) memset(job->status_out + lo, 0, n * sizeof *job->status_out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (job->rsz)
            memcpy(job->results + ((lo + i) % job->window) * job->rsz, res + i * job->rsz, job->rsz);
        imap_finish(job, lo + i, MPROC__IS_DONE, 0);
    }
}

/* imap: each failed item keeps its own message (failures are rare; a list
   costs nothing when there are none). */
static void keep_message(mproc__pool_job *job, size_t index, int status, const char *msg)
{
    mproc__pool_failure *f = malloc(sizeof *f);
    if (!f) return; /* the item still fails, with the job's first message */
    f->index = index;
    f->status = status;
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : "");
    f->next = job->failures;
    job->failures = f;
}

static void item_fail(mproc_pool *pool, mproc__pool_job *job, size_t index, int code, int status,
                      const char *msg)
{
    pool->stats.failed++;
    job->remaining--;
    if (job->cancelled) return;
    record_error(job, index, code, status, msg);
    if (job->kind == MPROC__JOB_IMAP) {
        keep_message(job, index, status, msg);
        imap_finish(job, index, MPROC__IS_FAILED, code);
    }
}

static void apply_finish(mproc_pool *pool, mproc__pool_job *job, int code, int status,
                         const char *msg, unsigned char *out, size_t out_len)
{
    if (code) {
        pool->stats.failed++;
        record_error(job, 0, code, status, msg);
        free(out);
    } else {
        pool->stats.done++;
        job->out = out;
        job->out_len = out_len;
    }
    job->remaining = 0;
    mproc__store32(&job->done, 1);
    mproc__pool_unpend(pool, job);
}

static int in_fails(const mproc__pool_unit *u, size_t pos)
{
    for (size_t i = 0; i < u->nfails; i++)
        if (u->fails[i] == pos) return 1;
    return 0;
}

/* Items [from, to) of a map unit succeeded, except those already failed;
   res: the unit's results. */
static void unit_items_ok(mproc_pool *pool, mproc__pool_unit *u, const unsigned char *res,
                          size_t from, size_t to)
{
    mproc__pool_job *job = u->job;
    size_t run = from;
    for (size_t i = from; i <= to; i++) {
        if (i < to && !in_fails(u, i)) continue;
        if (i > run) items_ok(pool, job, u->lo + run, i - run, res + run * job->rsz);
        run = i + 1;
    }
}

void mproc__pool_item_failed(mproc_pool *pool, mproc__pool_unit *u, uint32_t pos, int code,
                             int status, const char *msg)
{
    if (in_fails(u, pos)) return;
    if (u->nfails == u->fails_cap) {
        size_t cap = u->fails_cap ? 2 * u->fails_cap : 4;
        uint32_t *f = realloc(u->fails, cap * sizeof *f);
        if (!f) return; /* the item is then counted as finished without result */
        u->fails = f;
        u->fails_cap = cap;
    }
    u->fails[u->nfails++] = pos;
    item_fail(pool, u->job, u->lo + pos, code, status, msg);
    mproc__pool_wake(pool);
}

static void release(mproc_pool *pool, mproc__pool_unit *u)
{
    mproc__pool_job_unref(pool, u->job);
    u->job = NULL;
}

void mproc__pool_unit_done(mproc_pool *pool, mproc__pool_unit *u, int code, int status,
                           const char *msg, const unsigned char *res, unsigned char *out,
                           size_t out_len)
{
    mproc__pool_job *job = u->job;
    if (job->kind == MPROC__JOB_APPLY) {
        job->handed = 0;
        apply_finish(pool, job, code, status, msg, out, out_len);
    } else if (code) {
        for (size_t i = 0; i < u->n; i++)
            if (!in_fails(u, i)) item_fail(pool, job, u->lo + i, code, status, msg);
    } else {
        unit_items_ok(pool, u, res, 0, u->n);
    }
    if (job->remaining == 0 || job->kind == MPROC__JOB_IMAP) mproc__pool_wake(pool);
    release(pool, u);
}

/* ---- running again what a dead worker did not finish --------------------------- */
static void add_retry(mproc_pool *pool, mproc__pool_job *job, size_t lo, size_t n)
{
    if (job->cancelled) pool->stats.dropped += n;
    if (!n || job->cancelled) return;
    if (pool->terminating) {
        for (size_t i = 0; i < n; i++) item_fail(pool, job, lo + i, MPROC_ECLOSED, 0, "pool terminated");
        return;
    }
    if (job->nretry == job->retry_cap) {
        size_t cap = job->retry_cap ? 2 * job->retry_cap : 4;
        mproc__pool_range *r = realloc(job->retry, cap * sizeof *r);
        if (!r) {
            for (size_t i = 0; i < n; i++)
                item_fail(pool, job, lo + i, MPROC_ENOMEM, 0, "out of memory re-queueing items");
            return;
        }
        job->retry = r;
        job->retry_cap = cap;
    }
    job->retry[job->nretry].lo = lo;
    job->retry[job->nretry].n = n;
    job->nretry++;
    enqueue_front(pool, job);
}

static void requeue_apply(mproc_pool *pool, mproc__pool_job *job)
{
    job->handed = 0;
    if (job->cancelled && !job->done) {
        pool->stats.dropped++;
        mproc__pool_unpend(pool, job);
    }
    if (job->cancelled || job->done) return;
    if (pool->terminating) apply_finish(pool, job, MPROC_ECLOSED, 0, "pool terminated", NULL, 0);
    else enqueue_front(pool, job);
}

/* opt.max_retries: may item index, whose worker just died (code), run
   again? Counts the run. The deaths of one job are few: a short list. */
static int may_retry(mproc_pool *pool, mproc__pool_job *job, size_t index, int code)
{
    if (code != MPROC_ECHILD || !pool->opt.max_retries || pool->terminating || job->cancelled)
        return 0;
    size_t i = 0;
    while (i < job->ntries && job->tries[i].lo != index) i++;
    if (i == job->ntries) {
        mproc__pool_range *t = realloc(job->tries, (job->ntries + 1) * sizeof *t);
        if (!t) return 0;
        job->tries = t;
        job->tries[job->ntries].lo = index;
        job->tries[job->ntries++].n = 0;
    }
    if (job->tries[i].n >= (size_t)pool->opt.max_retries) return 0;
    job->tries[i].n++;
    pool->stats.retried++;
    return 1;
}

/* The message of item index failing with code: for one that used up its
   retries, the last death's message and how often it died. */
static const char *death_message(const mproc_pool *pool, const mproc__pool_job *job, size_t index,
                                 int code, const char *msg, char *buf, size_t cap)
{
    size_t i = 0;
    while (i < job->ntries && job->tries[i].lo != index) i++;
    if (code != MPROC_ECHILD || i == job->ntries || job->tries[i].n < (size_t)pool->opt.max_retries)
        return msg;
    snprintf(buf, cap, "%.180s (its worker died %d times)", msg, pool->opt.max_retries + 1);
    return buf;
}

void mproc__pool_unit_died(mproc_pool *pool, mproc__pool_unit *u, int started, size_t pos,
                           int code, const char *msg, const unsigned char *res)
{
    mproc__pool_job *job = u->job;
    char buf[256];
    if (job->kind == MPROC__JOB_APPLY) {
        if (started && !may_retry(pool, job, 0, code)) {
            job->handed = 0;
            apply_finish(pool, job, code, 0, death_message(pool, job, 0, code, msg, buf, sizeof buf),
                         NULL, 0);
            mproc__pool_wake(pool);
        } else {
            requeue_apply(pool, job);
        }
    } else if (started && res) {
        unit_items_ok(pool, u, res, 0, pos);
        if (in_fails(u, pos) || !may_retry(pool, job, u->lo + pos, code)) {
            if (!in_fails(u, pos))
                item_fail(pool, job, u->lo + pos, code, 0,
                          death_message(pool, job, u->lo + pos, code, msg, buf, sizeof buf));
            pos++;
        }
        add_retry(pool, job, u->lo + pos, u->n - pos);
        mproc__pool_wake(pool);
    } else if (started && may_retry(pool, job, u->lo, code)) {
        add_retry(pool, job, u->lo, u->n); /* coarse: the whole unit again */
    } else if (started) {
        /* A coarse death (pool_transport.h): which item ran is not known,
           the whole unit fails. */
        for (size_t i = 0; i < u->n; i++)
            if (!in_fails(u, i)) item_fail(pool, job, u->lo + i, code, 0, msg);
        mproc__pool_wake(pool);
    } else {
        add_retry(pool, job, u->lo, u->n);
    }
    release(pool, u);
}

/* ---- handing out work -------------------------------------------------------------- */
static int job_has_work(const mproc__pool_job *job)
{
    if (job->kind == MPROC__JOB_APPLY) return !job->handed;
    return job->nretry || job->next < job->count;
}

/* The next range of a map job for one unit: retried items first, then
   new ones, a chunk at most, never across a chunk boundary, and for imap
   never beyond the window the consumer has room for. 0 if none now. */
static int peek_range(const mproc__pool_job *job, size_t max_items, size_t *lo, size_t *n)
{
    if (job->nretry) {
        *lo = job->retry[0].lo;
        *n = job->retry[0].n < max_items ? job->retry[0].n : max_items;
        return 1;
    }
    size_t limit = job->count;
    if (job->kind == MPROC__JOB_IMAP && job->low + job->window < limit) limit = job->low + job->window;
    if (job->next >= limit) return 0;
    size_t chunk_end = (job->next / job->chunk + 1) * job->chunk;
    if (chunk_end < limit) limit = chunk_end;
    *lo = job->next;
    *n = limit - job->next < max_items ? limit - job->next : max_items;
    return 1;
}

static void take_range(mproc__pool_job *job, size_t n)
{
    if (!job->nretry) {
        job->next += n;
        return;
    }
    job->retry[0].lo += n;
    job->retry[0].n -= n;
    if (!job->retry[0].n) memmove(job->retry, job->retry + 1, --job->nretry * sizeof *job->retry);
}

int mproc__pool_peek_unit(mproc_pool *pool, mproc__pool_unit *u)
{
    for (mproc__pool_job *job = pool->qhead; job; job = job->next_q) {
        if (job->cancelled || !job_has_work(job)) continue;
        u->job = job;
        if (job->kind == MPROC__JOB_APPLY) {
            u->lo = 0;
            u->n = 1;
            return 1;
        }
        if (peek_range(job, pool->unit_max / (job->isz + job->rsz), &u->lo, &u->n)) return 1;
    }
    return 0;
}

void mproc__pool_take_unit(mproc_pool *pool, mproc__pool_unit *u)
{
    mproc__pool_job *job = u->job;
    job->refs++; /* the unit's */
    if (job->kind == MPROC__JOB_APPLY) job->handed = 1;
    else take_range(job, u->n);
    if (!job_has_work(job)) mproc__pool_dequeue(pool, job);
}

void mproc__pool_unpend(mproc_pool *pool, mproc__pool_job *job)
{
    if (!job->pending) return;
    job->pending = 0;
    pool->pending--;
    mproc__pool_wake(pool); /* an apply_async may wait for room */
}

/* ---- the caller lets go of a job --------------------------------------------------- */
void mproc__pool_cancel(mproc_pool *pool, mproc__pool_job *job)
{
    if (job->kind == MPROC__JOB_APPLY) {
        if (!job->handed && !job->done && !job->cancelled) {
            pool->stats.dropped++;
            mproc__pool_unpend(pool, job);
        }
    } else if (!job->cancelled) {
        /* never handed out: these will not run (those running finish) */
        pool->stats.dropped += job->count - job->next;
        for (size_t r = 0; r < job->nretry; r++) pool->stats.dropped += job->retry[r].n;
        job->nretry = 0;
        job->next = job->count;
    }
    job->cancelled = 1;
    mproc__pool_dequeue(pool, job);
}

/* ---- giving up on queued work ------------------------------------------------------ */
void mproc__pool_fail_queued(mproc_pool *pool, int code, const char *msg)
{
    while (pool->qhead) {
        mproc__pool_job *job = pool->qhead;
        mproc__pool_dequeue(pool, job);
        if (job->kind == MPROC__JOB_APPLY) {
            if (!job->handed && !job->done) apply_finish(pool, job, code, 0, msg, NULL, 0);
            continue;
        }
        for (size_t r = 0; r < job->nretry; r++)
            for (size_t i = 0; i < job->retry[r].n; i++)
                item_fail(pool, job, job->retry[r].lo + i, code, 0, msg);
        job->nretry = 0;
        if (job->kind == MPROC__JOB_MAP) {
            for (; job->next < job->count; job->next++) item_fail(pool, job, job->next, code, 0, msg);
        } else {
            /* imap: items beyond the window have no slot; the iterator
               reports them with this code as it reaches them. */
            job->abort_code = code;
            snprintf(job->abort_msg, sizeof job->abort_msg, "%s", msg);
        }
    }
    mproc__pool_wake(pool);
}
