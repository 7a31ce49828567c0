/* Record streams: imap over items of any size, pulled from a producer
   callback (or an array of records) only as a bounded window frees, each
   item one apply job whose result the consumer takes without a copy.
   The producer runs in the consuming thread, inside mproc_iter_next_record,
   without the pool's lock; everything else here runs with the lock. */
#include "pool.h"

#include <stdio.h>

typedef struct mproc__pool_stream {
    mproc_producer_fn next;
    void *ctx;
    const void *fn_addr;
    size_t window;
    mproc__pool_job **jobs;  /* window places; NULL: free */
    size_t *index;           /* the item in each place */
    size_t produced, consumed;
    int unordered;
    int ended;               /* the producer said end, or failed */
    int end_code;            /* its error, reported once after the items */
    /* mproc_pool_imap_records: the array the producer walks */
    const mproc_record *items;
    size_t count, at;
} stream;

#define MAX_WINDOW 65536

static int array_producer(void *ctx, mproc_record *item)
{
    stream *s = ctx;
    if (s->at == s->count) return 0;
    *item = s->items[s->at++];
    return 1;
}

static int free_place(const stream *s)
{
    for (size_t i = 0; i < s->window; i++)
        if (!s->jobs[i]) return (int)i;
    return -1;
}

/* Pulls items while the window has room: copies each (without the lock),
   then queues them 64 at a time. */
static void refill(mproc_iter *it)
{
    stream *s = it->stream;
    mproc_pool *pool = it->pool;
    mproc__pool_job *fresh[64];
    size_t nfresh = 0;
    while (!s->ended && s->produced - s->consumed + nfresh < s->window && nfresh < 64) {
        mproc_record rec = {NULL, 0};
        int rc = s->next(s->ctx, &rec);
        if (rc <= 0 || (rec.len && !rec.data)) {
            s->ended = 1;
            s->end_code = rc < 0 ? rc : rc > 0 ? MPROC_EINVAL : 0;
            break;
        }
        if (!(fresh[nfresh] = mproc__pool_apply_job(rec.data, rec.len))) {
            s->ended = 1;
            s->end_code = MPROC_ENOMEM;
            break;
        }
        nfresh++;
    }
    if (!nfresh) return;
    mproc__os_mutex_lock(pool->mu);
    uint32_t fn;
    int rc = mproc__pool_admit(pool, s->fn_addr, &fn);
    for (size_t k = 0; k < nfresh; k++) {
        mproc__pool_job *job = fresh[k];
        if (rc) {
            mproc__pool_job_unref(pool, job);
            continue;
        }
        int at = free_place(s);
        job->fn = fn;
        s->jobs[at] = job;
        s->index[at] = s->produced++;
        pool->stats.submitted++;
        mproc__pool_enqueue(pool, job);
    }
    if (rc) {
        /* closed or broken meanwhile: the input ends here with that code */
        s->ended = 1;
        s->end_code = rc;
    } else {
        mproc__pool_pump_all(pool);
    }
    mproc__os_mutex_unlock(pool->mu);
    if (nfresh == 64) refill(it);
}

/* The place of the next result to give back, or -1 if none is ready. */
static int ready_place(const stream *s)
{
    int best = -1;
    for (size_t i = 0; i < s->window; i++) {
        const mproc__pool_job *job = s->jobs[i];
        if (!job) continue;
        if (!s->unordered) {
            if (s->index[i] == s->consumed) return job->done ? (int)i : -1;
        } else if (job->done && (best < 0 || s->index[i] < s->index[best])) {
            best = (int)i;
        }
    }
    return best;
}

static int stream_ready(const void *what)
{
    const stream *s = what;
    return ready_place(s) >= 0 || s->produced == s->consumed;
}

int mproc__pool_stream_ready(const mproc_iter *it) { return stream_ready(it->stream); }

/* With the lock: gives back the result in place at. */
static int take(mproc_iter *it, int at, void **out, size_t *out_len, size_t *index)
{
    stream *s = it->stream;
    mproc__pool_job *job = s->jobs[at];
    int rc = 0;
    *index = s->index[at];
    if (job->has_err) {
        rc = job->err_code;
        mproc__pool_fill_error(&it->last, *index, job->err_code, job->err_status, job->err_msg);
        it->last_failed = 1;
        it->pool->has_last = 1;
        it->pool->last = it->last;
    } else if (out) {
        /* handed over: the result is not copied again */
        *out = job->out;
        *out_len = job->out_len;
        job->out = NULL;
    }
    s->jobs[at] = NULL;
    s->consumed++;
    mproc__pool_job_unref(it->pool, job);
    return rc;
}

int mproc__pool_stream_next(mproc_iter *it, void **out, size_t *out_len, size_t *index,
                            int timeout_ms)
{
    stream *s = it->stream;
    mproc_pool *pool = it->pool;
    it->last_failed = 0;
    refill(it);
    mproc__os_mutex_lock(pool->mu);
    int rc = mproc__pool_wait(pool, s, stream_ready, timeout_ms);
    int at = rc ? -1 : ready_place(s);
    if (at >= 0) {
        rc = take(it, at, out, out_len, index);
    } else if (!rc && s->end_code) {
        rc = s->end_code; /* the producer's error, once */
        s->end_code = 0;
        mproc__pool_fill_error(&it->last, s->produced, rc, 0, "the producer failed");
        it->last_failed = 1;
    } else if (!rc) {
        rc = MPROC_EDONE;
    }
    mproc__os_mutex_unlock(pool->mu);
    return rc;
}

/* With the lock held by the caller (mproc_iter_destroy). */
void mproc__pool_stream_free(mproc_iter *it)
{
    stream *s = it->stream;
    for (size_t i = 0; i < s->window; i++) {
        if (!s->jobs[i]) continue;
        mproc__pool_cancel(it->pool, s->jobs[i]);
        mproc__pool_job_unref(it->pool, s->jobs[i]);
    }
    free(s->jobs);
    free(s->index);
    free(s);
    it->stream = NULL;
}

static int new_stream(mproc_pool *pool, mproc_task_fn fn, size_t window, int flags, mproc_iter **out)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (!pool || !fn || (flags & ~MPROC_UNORDERED) || window > MAX_WINDOW) return MPROC_EINVAL;
    mproc_iter *it = mproc__calloc(1, sizeof *it);
    stream *s = mproc__calloc(1, sizeof *s);
    if (!window) window = 16 * (size_t)mproc_pool_processes(pool);
    if (s) {
        s->window = window;
        s->jobs = mproc__calloc(window, sizeof *s->jobs);
        s->index = mproc__calloc(window, sizeof *s->index);
    }
    if (!it || !s || !s->jobs || !s->index) {
        if (s) {
            free(s->jobs);
            free(s->index);
        }
        free(s);
        free(it);
        return MPROC_ENOMEM;
    }
    memcpy(&s->fn_addr, &fn, sizeof s->fn_addr);
    s->unordered = (flags & MPROC_UNORDERED) != 0;
    it->pool = pool;
    it->stream = s;
    uint32_t id;
    mproc__os_mutex_lock(pool->mu);
    int rc = mproc__pool_admit(pool, s->fn_addr, &id);
    if (!rc) pool->refs++;
    mproc__os_mutex_unlock(pool->mu);
    if (rc) {
        it->pool = NULL;
        free(s->jobs);
        free(s->index);
        free(s);
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

int mproc_pool_imap_stream(mproc_pool *pool, mproc_task_fn fn, mproc_producer_fn next, void *ctx,
                           size_t window, int flags, mproc_iter **it)
{
    if (!next) {
        if (it) *it = NULL;
        return MPROC_EINVAL;
    }
    int rc = new_stream(pool, fn, window, flags, it);
    if (rc) return rc;
    (*it)->stream->next = next;
    (*it)->stream->ctx = ctx;
    return 0;
}

int mproc_pool_imap_records(mproc_pool *pool, mproc_task_fn fn, const mproc_record *items,
                            size_t count, size_t window, int flags, mproc_iter **it)
{
    if (count && !items) {
        if (it) *it = NULL;
        return MPROC_EINVAL;
    }
    int rc = new_stream(pool, fn, window, flags, it);
    if (rc) return rc;
    stream *s = (*it)->stream;
    s->next = array_producer;
    s->ctx = s;
    s->items = items;
    s->count = count;
    return 0;
}

int mproc_iter_next_record(mproc_iter *it, void **out, size_t *out_len, size_t *index,
                           int timeout_ms)
{
    size_t idx = SIZE_MAX, len = 0;
    void *data = NULL;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (index) *index = SIZE_MAX;
    if (!it || !it->stream) return MPROC_EINVAL;
    int rc = mproc__pool_stream_next(it, out ? &data : NULL, &len, &idx, timeout_ms);
    if (out) *out = data;
    if (out_len) *out_len = len;
    if (index) *index = idx;
    return rc;
}

int mproc_pool_map_records(mproc_pool *pool, mproc_task_fn fn, const mproc_record *items,
                           size_t count, void **out, size_t *out_len, int *status)
{
    mproc_iter *it;
    int rc = mproc_pool_imap_records(pool, fn, items, count, 0, MPROC_UNORDERED, &it);
    if (rc) return rc;
    for (size_t i = 0; i < count; i++) {
        if (out) out[i] = NULL;
        if (out_len) out_len[i] = 0;
        if (status) status[i] = MPROC_ECLOSED; /* until it has run */
    }
    int first = 0;
    size_t first_index = SIZE_MAX;
    for (;;) {
        void *data = NULL;
        size_t len = 0, idx = SIZE_MAX;
        int r = mproc__pool_stream_next(it, out ? &data : NULL, &len, &idx, MPROC_FOREVER);
        if (r == MPROC_EDONE) break;
        if (idx == SIZE_MAX) { /* the pool stopped (interrupt, close): the rest never ran */
            first = r;
            break;
        }
        if (status) status[idx] = r;
        if (out) out[idx] = data;
        if (out_len) out_len[idx] = len;
        if (r && idx < first_index) {
            first = r;
            first_index = idx;
        }
    }
    mproc_iter_destroy(it);
    return first;
}
