/* The process pool across real worker processes: map / imap / apply, the
   initializer, maxtasksperchild, worker deaths of every kind (the exact
   item is reported, the rest of its chunk kept or run again), task errors,
   the task timeout, close / terminate / join, bad input, two submitting
   threads, 100 workers. Tasks that must stay busy wait on an Event that is
   never set (no sleeps as synchronisation). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "os.h"
#ifdef _WIN32
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
#else
#  include <fcntl.h>
#  include <signal.h>
#  include <unistd.h>
#endif

/* ThreadSanitizer cannot follow a fork of a multi-threaded process. */
#if defined(__SANITIZE_THREAD__)
#  define MPROC_TEST_NO_FORK 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define MPROC_TEST_NO_FORK 1
#  endif
#endif

#define POISON_ABORT 1000001
#define POISON_KILL 1000002
#define POISON_EXIT 1000003
#define POISON_CRASH 1000004
#define POISON_HANG 1000005
#define POISON_FAIL 1000006

/* ---- worker-side functions --------------------------------------------------- */
static mproc_event *never;  /* a worker's Event from the initarg, never set */
static mproc_event *started; /* set by a task as it starts to hang */
static int init_value;      /* set by the initializer */

static void die_by(int how)
{
    switch (how) {
    case POISON_ABORT: abort();
    case POISON_EXIT: exit(3);
#ifdef _WIN32
    case POISON_KILL: TerminateProcess(GetCurrentProcess(), 9); break;
#else
    case POISON_KILL: raise(SIGKILL); break;
#endif
    case POISON_CRASH: {
        volatile int *volatile p = NULL;
        *p = 1;
        break;
    }
    case POISON_HANG:
        if (started) mproc_event_set(started);
        if (never) mproc_event_wait(never, MPROC_FOREVER);
        break;
    default: break;
    }
}

static int doubler(const void *item, void *result)
{
    int v;
    memcpy(&v, item, sizeof v);
    if (v >= POISON_ABORT && v <= POISON_HANG) die_by(v);
    if (v == POISON_FAIL || v < 0) {
        mproc_task_fail("bad item %d", v);
        return 1;
    }
    v *= 2;
    memcpy(result, &v, sizeof v);
    return 0;
}

static int returns_nonzero(const void *item, void *result)
{
    (void)item;
    (void)result;
    return 42;
}

static int pid_of_worker(const void *in, size_t len, mproc_buf *out)
{
    int64_t pid = mproc_current_pid();
    (void)in;
    (void)len;
    return mproc_buf_append(out, &pid, sizeof pid);
}

/* Two tasks that can finish only side by side: the first waits (30 s at
   most) for the second to set the pool's `started` Event. Each returns
   its worker's pid. */
static int wait_for_partner(const void *in, size_t len, mproc_buf *out)
{
    if (mproc_event_wait(started, 30000) != 0) return 7;
    return pid_of_worker(in, len, out);
}

static int wake_partner(const void *in, size_t len, mproc_buf *out)
{
    if (mproc_event_set(started) != 0) return 8;
    return pid_of_worker(in, len, out);
}

/* Output: the input reversed, then the input's length as 8 bytes. */
static int reverse(const void *in, size_t len, mproc_buf *out)
{
    const unsigned char *p = in;
    unsigned char buf[4096];
    uint64_t n = len;
    for (size_t done = 0; done < len;) {
        size_t k = len - done < sizeof buf ? len - done : sizeof buf;
        for (size_t i = 0; i < k; i++) buf[i] = p[len - 1 - done - i];
        if (mproc_buf_append(out, buf, k)) return 1;
        done += k;
    }
    return mproc_buf_append(out, &n, sizeof n);
}

static int big_output(const void *in, size_t len, mproc_buf *out)
{
    uint32_t n;
    if (len != sizeof n) return 1;
    memcpy(&n, in, sizeof n);
    for (uint32_t i = 0; i < n; i++)
        if (mproc_buf_append(out, &i, sizeof i)) return 1;
    return 0;
}

static int apply_fails(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)out;
    mproc_task_fail("cannot handle %u bytes", (unsigned)len);
    return 7;
}

static int apply_dies(const void *in, size_t len, mproc_buf *out)
{
    int how;
    (void)out;
    if (len != sizeof how) return 1;
    memcpy(&how, in, sizeof how);
    die_by(how);
    return 0;
}

static int read_init_value(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    return mproc_buf_append(out, &init_value, sizeof init_value);
}

/* initarg: an int, then optionally the refs of two Events (never,
   started): shared objects reach workers through the initarg. */
static int initializer(const void *arg, size_t len)
{
    mproc_ref ref[2];
    if (len < sizeof init_value) return 1;
    memcpy(&init_value, arg, sizeof init_value);
    if (len >= sizeof init_value + sizeof ref) {
        memcpy(ref, (const unsigned char *)arg + sizeof init_value, sizeof ref);
        if (mproc_event_attach(&ref[0], &never) || mproc_event_attach(&ref[1], &started)) return 2;
    }
    return 0;
}

static int failing_initializer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 5;
}

/* ---- helpers ------------------------------------------------------------------ */
static mproc_pool *make_pool(int processes)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool = NULL;
    opt.processes = processes;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    return pool;
}

/* A pool whose workers hold an Event that is never set (POISON_HANG) and
   one they set when they start hanging. */
typedef struct hang_pool {
    mproc_pool *pool;
    mproc_event *ev, *started;
} hang_pool;

static hang_pool make_hang_pool(int processes, int task_timeout_ms)
{
    hang_pool hp;
    unsigned char initarg[sizeof(int) + 2 * sizeof(mproc_ref)];
    mproc_ref ref[2];
    int v = 0;
    mproc_pool_options opt = {0};
    assert_int_equal(mproc_event_create(&hp.ev), 0);
    assert_int_equal(mproc_event_create(&hp.started), 0);
    assert_int_equal(mproc_event_ref(hp.ev, &ref[0]), 0);
    assert_int_equal(mproc_event_ref(hp.started, &ref[1]), 0);
    memcpy(initarg, &v, sizeof v);
    memcpy(initarg + sizeof v, ref, sizeof ref);
    opt.processes = processes;
    opt.initializer = initializer;
    opt.initarg = initarg;
    opt.initarg_len = sizeof initarg;
    opt.task_timeout_ms = task_timeout_ms;
    assert_int_equal(mproc_pool_create(&hp.pool, &opt), 0);
    return hp;
}

static void free_hang_pool(hang_pool *hp)
{
    mproc_pool_destroy(hp->pool);
    mproc_event_destroy(hp->ev);
    mproc_event_destroy(hp->started);
}

static int *numbers(size_t n)
{
    int *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (int)i + 1;
    return v;
}

static void check_doubled(const int *in, const int *out, size_t n, size_t skip)
{
    for (size_t i = 0; i < n; i++)
        if (i != skip) assert_int_equal(out[i], in[i] * 2);
}

static void finish(mproc_pool *pool)
{
    assert_int_equal(mproc_pool_close(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    mproc_pool_destroy(pool);
}

/* ---- map ----------------------------------------------------------------------- */
static void test_map_chunk_sizes(void **state)
{
    (void)state;
    enum { N = 5000 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    size_t chunks[] = {0, 1, 7, N, 3 * N};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        memset(out, 0, N * sizeof *out);
        assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, chunks[c]), 0);
        check_doubled(in, out, N, SIZE_MAX);
    }
    /* Large enough to cycle each worker's ring many times. */
    enum { BIG = 1000000 };
    int *bin = numbers(BIG), *bout = calloc(BIG, sizeof *bout);
    assert_int_equal(mproc_pool_map(pool, doubler, bin, sizeof *bin, BIG, bout, sizeof *bout, 0), 0);
    check_doubled(bin, bout, BIG, SIZE_MAX);
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_true(st.submitted == 5 * N + BIG && st.done == st.submitted && st.failed == 0);
    finish(pool);
    free(in);
    free(out);
    free(bin);
    free(bout);
}

static void test_map_zero_items_and_bad_input(void **state)
{
    (void)state;
    mproc_pool *pool = make_pool(1);
    int in[4] = {1, 2, 3, 4}, out[4];
    assert_int_equal(mproc_pool_map(pool, doubler, NULL, 0, 0, NULL, 0, 0), 0);
    assert_int_equal(mproc_pool_map(NULL, doubler, in, 4, 4, out, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(pool, NULL, in, 4, 4, out, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(pool, doubler, NULL, 4, 4, out, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(pool, doubler, in, 0, 4, out, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(pool, doubler, in, 4, 4, NULL, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(pool, doubler, in, (size_t)1 << 30, 4, out, 4, 0), MPROC_EINVAL);
    mproc_iter *it = (mproc_iter *)1;
    assert_int_equal(mproc_pool_imap(pool, doubler, in, 4, 4, 4, 0, 0x80, &it), MPROC_EINVAL);
    assert_null(it);
    assert_int_equal(mproc_pool_imap(pool, doubler, in, 4, 4, 4, 0, 0, NULL), MPROC_EINVAL);
    mproc_async *r = (mproc_async *)1;
    assert_int_equal(mproc_pool_apply_async(pool, NULL, in, 4, &r), MPROC_EINVAL);
    assert_null(r);
    assert_int_equal(mproc_pool_apply_async(pool, reverse, NULL, 4, &r), MPROC_EINVAL);
    assert_int_equal(mproc_iter_next(NULL, out, NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_async_wait(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_async_ready(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_async_get(NULL, NULL, NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_buf_append(NULL, in, 4), MPROC_EINVAL);
    mproc_pool_stats st;
    mproc_task_error err;
    assert_int_equal(mproc_pool_stats_get(NULL, &st), MPROC_EINVAL);
    assert_int_equal(mproc_pool_last_error(pool, &err), MPROC_ENOENT);
    assert_int_equal(mproc_pool_join(pool), MPROC_ESTATE);
    mproc_pool_options opt = {0};
    mproc_pool *p2 = (mproc_pool *)1;
    opt.processes = -1;
    assert_int_equal(mproc_pool_create(&p2, &opt), MPROC_EINVAL);
    assert_null(p2);
    opt.processes = 1;
    opt.initarg_len = 3;
    assert_int_equal(mproc_pool_create(&p2, &opt), MPROC_EINVAL);
    assert_int_equal(mproc_pool_create(NULL, NULL), MPROC_EINVAL);
    mproc_iter_destroy(NULL);
    mproc_async_destroy(NULL);
    mproc_pool_destroy(NULL);
    finish(pool);
}

/* ---- imap ---------------------------------------------------------------------- */
static void test_imap_ordered(void **state)
{
    (void)state;
    enum { N = 3000 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N);
    size_t chunks[] = {1, 0};
    for (size_t c = 0; c < 2; c++) {
        mproc_iter *it;
        int v;
        size_t idx;
        assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, N, sizeof v, chunks[c], 0, &it), 0);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS), 0);
            assert_int_equal(idx, i);
            assert_int_equal(v, in[i] * 2);
        }
        assert_int_equal(mproc_iter_next(it, &v, &idx, 0), MPROC_EDONE);
        assert_int_equal(mproc_iter_next(it, &v, &idx, MPROC_FOREVER), MPROC_EDONE);
        mproc_iter_destroy(it);
    }
    mproc_iter *empty;
    assert_int_equal(mproc_pool_imap(pool, doubler, NULL, 0, 0, 4, 0, 0, &empty), 0);
    assert_int_equal(mproc_iter_next(empty, NULL, NULL, MPROC_FOREVER), MPROC_EDONE);
    mproc_iter_destroy(empty);
    finish(pool);
    free(in);
}

static void test_imap_unordered(void **state)
{
    (void)state;
    enum { N = 2000 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N);
    unsigned char *seen = calloc(N, 1);
    mproc_iter *it;
    int v, rc;
    size_t idx, got = 0;
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, N, sizeof v, 1, MPROC_UNORDERED, &it), 0);
    while ((rc = mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS)) == 0) {
        assert_true(idx < N && !seen[idx]);
        seen[idx] = 1;
        assert_int_equal(v, in[idx] * 2);
        got++;
    }
    assert_int_equal(rc, MPROC_EDONE);
    assert_int_equal(got, N);
    mproc_iter_destroy(it);
    finish(pool);
    free(in);
    free(seen);
}

/* Backpressure: however long the input, the pool runs only a bounded
   number of items ahead of the consumer. */
static void test_imap_backpressure(void **state)
{
    (void)state;
    enum { N = 200000, AHEAD = 4096 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N);
    mproc_iter *it;
    mproc_pool_stats st;
    int v;
    size_t idx;
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, N, sizeof v, 1, 0, &it), 0);
    for (size_t i = 0; i < N; i++) {
        if (i % 997 == 0) {
            assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
            assert_true(st.done <= i + AHEAD);
        }
        assert_int_equal(mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(v, in[i] * 2);
    }
    mproc_iter_destroy(it);
    /* Dropping an iterator half-way leaves the pool usable. */
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, N, sizeof v, 1, 0, &it), 0);
    assert_int_equal(mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS), 0);
    mproc_iter_destroy(it);
    int out[100];
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, 100, out, sizeof *out, 1), 0);
    check_doubled(in, out, 100, SIZE_MAX);
    finish(pool);
    free(in);
}

static void test_imap_wait_timeout(void **state)
{
    (void)state;
    hang_pool hp = make_hang_pool(1, 0);
    int items[2] = {POISON_HANG, 5}, v;
    size_t idx = 0;
    mproc_iter *it;
    assert_int_equal(mproc_pool_imap(hp.pool, doubler, items, sizeof *items, 2, sizeof v, 1, 0, &it), 0);
    assert_int_equal(mproc_iter_next(it, &v, &idx, 0), MPROC_ETIMEDOUT);
    assert_int_equal(idx, SIZE_MAX);
    assert_int_equal(mproc_iter_next(it, &v, &idx, 50), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_event_set(hp.ev), 0);
    assert_int_equal(mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(v, POISON_HANG * 2);
    assert_int_equal(mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(v, 10);
    mproc_iter_destroy(it);
    free_hang_pool(&hp);
}

/* ---- apply ---------------------------------------------------------------------- */
static void check_reversed(const unsigned char *in, size_t len, const unsigned char *out, size_t out_len)
{
    uint64_t n;
    assert_int_equal(out_len, len + sizeof n);
    for (size_t i = 0; i < len; i++) assert_int_equal(out[i], in[len - 1 - i]);
    memcpy(&n, out + len, sizeof n);
    assert_true(n == len);
}

static void test_apply_sizes(void **state)
{
    (void)state;
    mproc_pool *pool = make_pool(2);
    size_t sizes[] = {0, 1, 1000, 300000, (size_t)5 << 20}; /* the last goes in pieces */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        unsigned char *in = malloc(sizes[s] + 1);
        for (size_t i = 0; i < sizes[s]; i++) in[i] = (unsigned char)(i * 31 + s);
        void *out;
        size_t out_len;
        assert_int_equal(mproc_pool_apply(pool, reverse, in, sizes[s], &out, &out_len), 0);
        check_reversed(in, sizes[s], out, out_len);
        mproc_free(out);
        free(in);
    }
    /* A big result (16 MiB) comes back whole. */
    uint32_t n = 4u << 20;
    void *out;
    size_t out_len;
    assert_int_equal(mproc_pool_apply(pool, big_output, &n, sizeof n, &out, &out_len), 0);
    assert_int_equal(out_len, (size_t)n * 4);
    for (uint32_t i = 0; i < n; i += 4099) assert_int_equal(((uint32_t *)out)[i], i);
    mproc_free(out);
    finish(pool);
}

static void test_apply_async_calls(void **state)
{
    (void)state;
    enum { K = 20 };
    mproc_pool *pool = make_pool(2);
    mproc_async *r[K];
    char in[K][16];
    for (int i = 0; i < K; i++) {
        snprintf(in[i], sizeof in[i], "task-%d", i);
        assert_int_equal(mproc_pool_apply_async(pool, reverse, in[i], strlen(in[i]), &r[i]), 0);
    }
    for (int i = K - 1; i >= 0; i--) {
        void *out;
        size_t len;
        assert_int_equal(mproc_async_wait(r[i], TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(mproc_async_ready(r[i]), 1);
        assert_int_equal(mproc_async_get(r[i], &out, &len, 0), 0);
        check_reversed((const unsigned char *)in[i], strlen(in[i]), out, len);
        mproc_free(out);
        /* get may be called again: a fresh copy */
        assert_int_equal(mproc_async_get(r[i], &out, &len, 0), 0);
        check_reversed((const unsigned char *)in[i], strlen(in[i]), out, len);
        mproc_free(out);
        mproc_async_destroy(r[i]);
    }
    /* a failing task: ETASK with its message */
    mproc_task_error err;
    void *out = (void *)1;
    assert_int_equal(mproc_pool_apply(pool, apply_fails, "abc", 3, &out, NULL), MPROC_ETASK);
    assert_null(out);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.code, MPROC_ETASK);
    assert_string_equal(err.message, "cannot handle 3 bytes");
    /* a result nobody collects */
    mproc_async *lost;
    assert_int_equal(mproc_pool_apply_async(pool, reverse, "x", 1, &lost), 0);
    mproc_async_destroy(lost);
    finish(pool);
}

/* Two long tasks given to a new Pool(2) at once run on its two workers,
   although the second worker was still starting when both were given:
   the first worker does not take the second task into its queue. */
static void test_new_pool_spreads_long_tasks(void **state)
{
    (void)state;
    hang_pool hp = make_hang_pool(2, 0);
    mproc_async *first, *second;
    int64_t pid[2];
    assert_int_equal(mproc_pool_apply_async(hp.pool, wait_for_partner, "a", 1, &first), 0);
    assert_int_equal(mproc_pool_apply_async(hp.pool, wake_partner, "b", 1, &second), 0);
    mproc_async *r[2] = {first, second};
    for (int i = 0; i < 2; i++) {
        void *out;
        size_t len;
        assert_int_equal(mproc_async_get(r[i], &out, &len, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(len, sizeof pid[i]);
        memcpy(&pid[i], out, sizeof pid[i]);
        mproc_free(out);
        mproc_async_destroy(r[i]);
    }
    assert_true(pid[0] != pid[1]);
    free_hang_pool(&hp);
}

typedef struct submitter {
    mproc_pool *pool;
    int id, ok;
} submitter;

static void submit_many(void *arg)
{
    submitter *s = arg;
    s->ok = 1;
    for (int i = 0; i < 200 && s->ok; i++) {
        char in[32];
        void *out = NULL;
        size_t len = 0;
        mproc_async *r;
        int n = snprintf(in, sizeof in, "thread %d task %d", s->id, i);
        if (mproc_pool_apply_async(s->pool, reverse, in, (size_t)n, &r) ||
            mproc_async_get(r, &out, &len, TU_JOIN_TIMEOUT_MS) || len != (size_t)n + 8)
            s->ok = 0;
        for (int k = 0; s->ok && k < n; k++)
            if (((unsigned char *)out)[k] != (unsigned char)in[n - 1 - k]) s->ok = 0;
        mproc_free(out);
        mproc_async_destroy(r);
        int items[50], res[50];
        for (int k = 0; k < 50; k++) items[k] = s->id * 1000 + i + k;
        if (i % 20 == 0 &&
            mproc_pool_map(s->pool, doubler, items, sizeof *items, 50, res, sizeof *res, 3))
            s->ok = 0;
        for (int k = 0; i % 20 == 0 && k < 50; k++)
            if (res[k] != items[k] * 2) s->ok = 0;
    }
}

static void test_two_threads_submit(void **state)
{
    (void)state;
    mproc_pool *pool = make_pool(2);
    submitter a = {pool, 1, 0}, b = {pool, 2, 0};
    mproc__os_thread *ta, *tb;
    assert_int_equal(mproc__os_thread_start(&ta, submit_many, &a), 0);
    assert_int_equal(mproc__os_thread_start(&tb, submit_many, &b), 0);
    mproc__os_thread_join(ta);
    mproc__os_thread_join(tb);
    assert_true(a.ok);
    assert_true(b.ok);
    finish(pool);
}

/* ---- initializer, maxtasksperchild --------------------------------------------- */
static void test_initializer(void **state)
{
    (void)state;
    int v = 4242, got = 0;
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    opt.processes = 2;
    opt.initializer = initializer;
    opt.initarg = &v;
    opt.initarg_len = sizeof v;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    v = 0; /* the pool has its own copy */
    for (int i = 0; i < 4; i++) {
        void *out;
        size_t len;
        assert_int_equal(mproc_pool_apply(pool, read_init_value, NULL, 0, &out, &len), 0);
        assert_int_equal(len, sizeof got);
        memcpy(&got, out, sizeof got);
        assert_int_equal(got, 4242);
        mproc_free(out);
    }
    finish(pool);
}

static void test_failing_initializer(void **state)
{
    (void)state;
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    int in[3] = {1, 2, 3}, out[3];
    opt.processes = 1;
    opt.initializer = failing_initializer;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    /* Never a hang: the work fails once the workers keep dying at start. */
    int rc = mproc_pool_map(pool, doubler, in, sizeof *in, 3, out, sizeof *out, 1);
    assert_int_equal(rc, MPROC_ECHILD);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, 3, out, sizeof *out, 1), MPROC_ECHILD);
    mproc_pool_destroy(pool);
}

static void test_maxtasksperchild(void **state)
{
    (void)state;
    enum { K = 8 };
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    int64_t pids[K];
    opt.processes = 1;
    opt.maxtasksperchild = 2;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    for (int i = 0; i < K; i++) {
        void *out;
        size_t len;
        assert_int_equal(mproc_pool_apply(pool, pid_of_worker, NULL, 0, &out, &len), 0);
        assert_int_equal(len, sizeof pids[i]);
        memcpy(&pids[i], out, sizeof pids[i]);
        mproc_free(out);
    }
    for (int i = 0; i < K; i += 2) {
        assert_true(pids[i] == pids[i + 1]);
        if (i) assert_true(pids[i] != pids[i - 1]);
    }
    /* a map counts one task per chunk */
    int *in = numbers(40), out[40];
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, 40, out, sizeof *out, 4), 0);
    check_doubled(in, out, 40, SIZE_MAX);
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_true(st.workers_replaced >= 7);
    finish(pool);
    free(in);
}

/* ---- deaths ---------------------------------------------------------------------- */
/* 100 items in chunks of 10; item 55 kills its worker. Items 50..54 keep
   their results, 56..59 run again, and the error names item 55. */
static void check_death(int how, int chunk, const char *expect)
{
    enum { N = 100, BAD = 55 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    mproc_task_error err;
    in[BAD] = how;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, (size_t)chunk),
                     MPROC_ECHILD);
    check_doubled(in, out, N, BAD);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, BAD);
    assert_int_equal(err.code, MPROC_ECHILD);
    if (expect) assert_non_null(strstr(err.message, expect));
    assert_non_null(strstr(err.message, "while running this item"));
    /* The pool carries on with a replacement worker. */
    in[BAD] = BAD + 1;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 0), 0);
    check_doubled(in, out, N, SIZE_MAX);
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_true(st.workers_replaced >= 1);
    assert_true(st.failed == 1);
    finish(pool);
    free(in);
    free(out);
}

#ifdef _WIN32
#  define ABORT_TEXT "exited with code 3"
#  define KILL_TEXT "exited with code 9"
#else
#  define ABORT_TEXT "killed by signal 6"
#  define KILL_TEXT "killed by signal 9"
#endif

static void test_death_abort(void **state) { (void)state; check_death(POISON_ABORT, 10, ABORT_TEXT); }
static void test_death_kill(void **state) { (void)state; check_death(POISON_KILL, 10, KILL_TEXT); }
static void test_death_exit(void **state) { (void)state; check_death(POISON_EXIT, 10, "exited with code 3"); }
/* A crash: SIGSEGV natively, an access violation on Windows, a report and
   exit status 1 under AddressSanitizer: the cause varies, the item does not. */
static void test_death_crash(void **state) { (void)state; check_death(POISON_CRASH, 10, NULL); }
static void test_death_chunk1(void **state) { (void)state; check_death(POISON_ABORT, 1, ABORT_TEXT); }

static void test_death_in_apply(void **state)
{
    (void)state;
    mproc_pool *pool = make_pool(1);
    int how = POISON_KILL;
    mproc_task_error err;
    void *out;
    size_t len;
    assert_int_equal(mproc_pool_apply(pool, apply_dies, &how, sizeof how, &out, &len), MPROC_ECHILD);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.code, MPROC_ECHILD);
    assert_non_null(strstr(err.message, KILL_TEXT));
    assert_int_equal(mproc_pool_apply(pool, reverse, "ab", 2, &out, &len), 0);
    check_reversed((const unsigned char *)"ab", 2, out, len);
    mproc_free(out);
    finish(pool);
}

/* A worker dies while callers keep reading the workers' conns themselves
   (another thread's stream of quick tasks keeps them at it, so the dying
   worker's serving thread may stay parked): its death is still seen, its
   task fails with how it ended, and the stream loses nothing. */
typedef struct streamer {
    mproc_pool *pool;
    volatile uint32_t stop;
    int ok, done;
} streamer;

static void stream_quick_tasks(void *arg)
{
    streamer *st = arg;
    st->ok = 1;
    while (st->ok && !mproc__load32(&st->stop)) {
        void *out = NULL;
        size_t len = 0;
        if (mproc_pool_apply(st->pool, reverse, "abc", 3, &out, &len) || len != 3 + 8 ||
            memcmp(out, "cba", 3))
            st->ok = 0;
        mproc_free(out);
        st->done++;
    }
}

static void test_death_while_callers_read(void **state)
{
    (void)state;
    streamer st = {make_pool(2), 0, 0, 0};
    mproc__os_thread *t;
    assert_int_equal(mproc__os_thread_start(&t, stream_quick_tasks, &st), 0);
    for (int i = 0; i < 10; i++) {
        int how = POISON_KILL;
        mproc_task_error err;
        mproc_async *r;
        assert_int_equal(mproc_pool_apply_async(st.pool, apply_dies, &how, sizeof how, &r), 0);
        assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ECHILD);
        assert_int_equal(mproc_async_error(r, &err), 0);
        assert_non_null(strstr(err.message, KILL_TEXT));
        mproc_async_destroy(r);
    }
    mproc__store32(&st.stop, 1);
    mproc__os_thread_join(t);
    assert_true(st.ok);
    assert_true(st.done > 0);
    finish(st.pool);
}

/* Several deaths in one map, in different chunks and workers. */
static void test_many_deaths(void **state)
{
    (void)state;
    enum { N = 400 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    size_t bad[] = {3, 99, 100, 250, 399};
    for (size_t i = 0; i < 5; i++) in[bad[i]] = i % 2 ? POISON_KILL : POISON_EXIT;
    in[200] = POISON_FAIL;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 16), MPROC_ECHILD);
    mproc_task_error err;
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, 3);
    for (size_t i = 0; i < N; i++) {
        int skip = i == 200;
        for (size_t b = 0; b < 5; b++) skip |= i == bad[b];
        if (!skip) assert_int_equal(out[i], in[i] * 2);
    }
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_true(st.failed == 6);
    assert_true(st.done == N - 6);
    finish(pool);
    free(in);
    free(out);
}

/* Killed from outside (an OOM killer, an operator, TerminateProcess) while
   it runs a task: the task fails with the way it ended. */
static void kill_from_outside(int64_t pid)
{
#ifdef _WIN32
    HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE, (DWORD)pid);
    assert_non_null(h);
    assert_true(TerminateProcess(h, 9));
    CloseHandle(h);
#else
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
#endif
}

static void test_killed_from_outside(void **state)
{
    (void)state;
    hang_pool hp = make_hang_pool(1, 0);
    int how = POISON_HANG;
    int64_t pid;
    void *out;
    size_t len;
    mproc_async *r;
    mproc_task_error err;
    assert_int_equal(mproc_pool_apply(hp.pool, pid_of_worker, NULL, 0, &out, &len), 0);
    memcpy(&pid, out, sizeof pid);
    mproc_free(out);
    assert_int_equal(mproc_pool_apply_async(hp.pool, apply_dies, &how, sizeof how, &r), 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    kill_from_outside(pid);
    assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ECHILD);
    assert_int_equal(mproc_pool_last_error(hp.pool, &err), 0);
    assert_non_null(strstr(err.message, KILL_TEXT));
    char pid_text[48]; /* named by its pid, which a forkserver start reads late */
    snprintf(pid_text, sizeof pid_text, "(pid %lld)", (long long)pid);
    assert_non_null(strstr(err.message, pid_text));
    mproc_async_destroy(r);
    assert_int_equal(mproc_pool_apply(hp.pool, pid_of_worker, NULL, 0, &out, &len), 0);
    int64_t pid2;
    memcpy(&pid2, out, sizeof pid2);
    mproc_free(out);
    assert_true(pid2 != pid);
    free_hang_pool(&hp);
}

/* The worker forks a grandchild (which inherits the worker's pipes) and
   dies: the pool still notices at once, from the process handle, instead
   of waiting for end of stream on a pipe the grandchild keeps open. Linux
   (pidfd); elsewhere the sentinel pipe is inherited just the same. */
#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX) && !defined(MPROC_TEST_NO_FORK)
#  define TEST_GRANDCHILD 1
static int fork_then_die(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    if (fork() == 0) {
        if (never) mproc_event_wait(never, TU_JOIN_TIMEOUT_MS);
        _exit(0);
    }
    abort();
}
#endif

static void test_grandchild_holds_pipes(void **state)
{
    (void)state;
#ifndef TEST_GRANDCHILD
    skip();
#else
    /* valgrind does not emulate pidfd_open, the only witness of a worker's
       death while a grandchild holds its pipe open */
    if (getenv("MPROC_TEST_VALGRIND")) {
        skip();
        return;
    }
    hang_pool hp = make_hang_pool(1, 0);
    mproc_async *r;
    void *out;
    size_t len;
    assert_int_equal(mproc_pool_apply_async(hp.pool, fork_then_die, NULL, 0, &r), 0);
    int rc = mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS);
    assert_int_equal(mproc_event_set(hp.ev), 0); /* lets the grandchild go */
    assert_int_equal(rc, MPROC_ECHILD);
    mproc_async_destroy(r);
    assert_int_equal(mproc_pool_apply(hp.pool, reverse, "ok", 2, &out, &len), 0);
    mproc_free(out);
    free_hang_pool(&hp);
#endif
}

/* Every new worker dies on its very first item: still not a "worker that
   cannot start" (its initializer ran), so the pool keeps replacing it. */
static void test_repeated_deaths(void **state)
{
    (void)state;
    enum { N = 9 };
    mproc_pool *pool = make_pool(1);
    int in[N] = {POISON_EXIT, POISON_KILL, POISON_EXIT, POISON_ABORT, POISON_EXIT, 6, 7, 8, 9}, out[N];
    mproc_task_error err;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 1), MPROC_ECHILD);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, 0);
    for (int i = 5; i < N; i++) assert_int_equal(out[i], in[i] * 2);
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_true(st.failed == 5 && st.done == 4 && st.workers_replaced >= 5);
    finish(pool);
}

/* ---- task errors ------------------------------------------------------------------- */
static void test_task_errors(void **state)
{
    (void)state;
    enum { N = 60 };
    mproc_pool *pool = make_pool(2);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    in[41] = -41;
    in[17] = -17;
    mproc_task_error err;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 8), MPROC_ETASK);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, 17);
    assert_int_equal(err.code, MPROC_ETASK);
    assert_string_equal(err.message, "bad item -17");
    for (int i = 0; i < N; i++)
        if (i != 17 && i != 41) assert_int_equal(out[i], in[i] * 2);
    /* without a message: a default one */
    assert_int_equal(mproc_pool_map(pool, returns_nonzero, in, sizeof *in, 3, out, sizeof *out, 0),
                     MPROC_ETASK);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, 0);
    assert_string_equal(err.message, "task function returned 42");
    /* imap reports each failed item with its index */
    mproc_iter *it;
    int v, rc;
    size_t idx, failed = 0;
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, N, sizeof v, 5, 0, &it), 0);
    for (size_t i = 0; (rc = mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE; i++) {
        assert_int_equal(idx, i);
        if (i == 17 || i == 41) {
            char expect[32];
            assert_int_equal(rc, MPROC_ETASK);
            assert_int_equal(mproc_pool_last_error(pool, &err), 0);
            snprintf(expect, sizeof expect, "bad item -%zu", i);
            assert_string_equal(err.message, expect);
            assert_int_equal(err.index, i);
            failed++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(v, in[i] * 2);
        }
    }
    assert_int_equal(failed, 2);
    mproc_iter_destroy(it);
    finish(pool);
    free(in);
    free(out);
}

/* ---- timeout ----------------------------------------------------------------------- */
static void test_task_timeout(void **state)
{
    (void)state;
    enum { N = 30, BAD = 13 };
    hang_pool hp = make_hang_pool(2, 300);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    mproc_task_error err;
    in[BAD] = POISON_HANG;
    assert_int_equal(mproc_pool_map(hp.pool, doubler, in, sizeof *in, N, out, sizeof *out, 4), MPROC_ETASKTIMEOUT);
    check_doubled(in, out, N, BAD);
    assert_int_equal(mproc_pool_last_error(hp.pool, &err), 0);
    assert_int_equal(err.index, BAD);
    assert_int_equal(err.code, MPROC_ETASKTIMEOUT);
    assert_non_null(strstr(err.message, "timed out after 300 ms"));
    in[BAD] = 1;
    assert_int_equal(mproc_pool_map(hp.pool, doubler, in, sizeof *in, N, out, sizeof *out, 4), 0);
    check_doubled(in, out, N, SIZE_MAX);
    free_hang_pool(&hp);
    free(in);
    free(out);
}

/* ---- close, terminate, join --------------------------------------------------------- */
static void test_close_join(void **state)
{
    (void)state;
    mproc_pool *pool = make_pool(2);
    mproc_async *r[6];
    for (int i = 0; i < 6; i++) assert_int_equal(mproc_pool_apply_async(pool, reverse, "abc", 3, &r[i]), 0);
    assert_int_equal(mproc_pool_close(pool), 0);
    int in[2] = {1, 2}, out[2];
    mproc_async *late;
    mproc_iter *it;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, 2, out, sizeof *out, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof *in, 2, sizeof *out, 0, 0, &it), MPROC_ECLOSED);
    assert_int_equal(mproc_pool_apply_async(pool, reverse, "x", 1, &late), MPROC_ECLOSED);
    /* join waits for the work submitted before close */
    assert_int_equal(mproc_pool_join(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(mproc_async_ready(r[i]), 1);
        void *out2;
        size_t len;
        assert_int_equal(mproc_async_get(r[i], &out2, &len, 0), 0);
        check_reversed((const unsigned char *)"abc", 3, out2, len);
        mproc_free(out2);
    }
    mproc_pool_destroy(pool);
    /* results outlive the pool */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(mproc_async_ready(r[i]), 1);
        mproc_async_destroy(r[i]);
    }
}

static void test_terminate(void **state)
{
    (void)state;
    hang_pool hp = make_hang_pool(2, 0);
    int items[40];
    mproc_async *r;
    mproc_iter *it;
    for (int i = 0; i < 40; i++) items[i] = POISON_HANG;
    int how = POISON_HANG;
    assert_int_equal(mproc_pool_apply_async(hp.pool, apply_dies, &how, sizeof how, &r), 0);
    assert_int_equal(mproc_pool_imap(hp.pool, doubler, items, sizeof *items, 40, sizeof *items, 1, 0, &it), 0);
    assert_int_equal(mproc_async_wait(r, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_pool_terminate(hp.pool), 0);
    assert_int_equal(mproc_pool_join(hp.pool), 0);
    int rc = mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS);
    assert_int_equal(rc, MPROC_ECLOSED);
    size_t n = 0, idx;
    int v;
    while ((rc = mproc_iter_next(it, &v, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE) {
        assert_int_equal(rc, MPROC_ECLOSED);
        assert_int_equal(idx, n);
        n++;
    }
    assert_int_equal(n, 40);
    mproc_iter_destroy(it);
    mproc_async_destroy(r);
    free_hang_pool(&hp);
    /* destroy without close: terminates */
    hang_pool hp2 = make_hang_pool(1, 0);
    assert_int_equal(mproc_pool_apply_async(hp2.pool, apply_dies, &how, sizeof how, &r), 0);
    mproc_async_destroy(r);
    free_hang_pool(&hp2);
}

/* ---- interrupts, descriptors ------------------------------------------------------ */
#ifndef _WIN32
static int interrupt_self(const void *item, void *result)
{
    raise(SIGINT); /* Ctrl-C goes to the parent; workers ignore it */
    return doubler(item, result);
}
#endif

static void test_workers_ignore_sigint(void **state)
{
    (void)state;
#ifdef _WIN32
    skip();
#else
    int in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    mproc_pool *pool = make_pool(2);
    assert_int_equal(mproc_pool_map(pool, interrupt_self, in, sizeof *in, 8, out, sizeof *out, 1), 0);
    check_doubled(in, out, 8, SIZE_MAX);
    finish(pool);
#endif
}

/* Ctrl-C in the parent: its own SIGINT handler calls mproc_pool_interrupt,
   and the map blocked on hanging workers returns MPROC_EINTR promptly. */
static mproc_pool *interrupt_target;

static void on_sigint(int sig)
{
    (void)sig;
    mproc_pool_interrupt(interrupt_target);
}

/* Raises SIGINT, as Ctrl-C would, once a worker has started hanging. */
static void press_ctrl_c(void *arg)
{
    hang_pool *hp = arg;
    mproc_event_wait(hp->started, TU_JOIN_TIMEOUT_MS);
    raise(SIGINT);
}

static void test_interrupt_from_sigint_handler(void **state)
{
    (void)state;
    hang_pool hp = make_hang_pool(2, 0);
    int in[4] = {POISON_HANG, POISON_HANG, 3, 4}, out[4];
    mproc__os_thread *t;
    interrupt_target = hp.pool;
    void (*old)(int) = signal(SIGINT, on_sigint);
    assert_int_equal(mproc__os_thread_start(&t, press_ctrl_c, &hp), 0);
    int rc = mproc_pool_map(hp.pool, doubler, in, sizeof *in, 4, out, sizeof *out, 1);
    mproc__os_thread_join(t);
    signal(SIGINT, old);
    assert_int_equal(rc, MPROC_EINTR);
    assert_int_equal(mproc_pool_map(hp.pool, doubler, in + 2, sizeof *in, 2, out, sizeof *out, 1),
                     MPROC_ECLOSED);
    assert_int_equal(mproc_pool_interrupt(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_pool_join(hp.pool), 0);
    free_hang_pool(&hp);
}

/* A pool's whole life, deaths included, gives back every descriptor. */
#ifndef _WIN32
static int open_descriptors(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}
#endif

static void test_no_descriptor_leak(void **state)
{
    (void)state;
#ifdef _WIN32
    skip();
#else
    tu_start_method_ready();
    int before = open_descriptors();
    for (int round = 0; round < 3; round++) {
        mproc_pool *pool = make_pool(2);
        int in[20], out[20];
        for (int i = 0; i < 20; i++) in[i] = i == 7 ? POISON_KILL : i;
        assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, 20, out, sizeof *out, 2), MPROC_ECHILD);
        if (round == 1) finish(pool);
        else mproc_pool_destroy(pool);
    }
    assert_int_equal(open_descriptors(), before);
#endif
}

/* ---- many workers, start methods ------------------------------------------------------ */
static int worker_pid(const void *item, void *result)
{
    int64_t pid = mproc_current_pid();
    (void)item;
    memcpy(result, &pid, sizeof pid);
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    int64_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x < y ? -1 : x > y;
}

static void test_hundred_workers(void **state)
{
    (void)state;
    enum { W = 100, N = 1000 };
    mproc_pool *pool = make_pool(W);
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    int64_t *pids = calloc(N, sizeof *pids);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 1), 0);
    check_doubled(in, out, N, SIZE_MAX);
    assert_int_equal(mproc_pool_map(pool, worker_pid, in, sizeof *in, N, pids, sizeof *pids, 1), 0);
    qsort(pids, N, sizeof *pids, cmp_pid);
    size_t distinct = 1;
    for (size_t i = 1; i < N; i++) distinct += pids[i] != pids[i - 1];
    /* How the items spread depends on how fast the workers start (the
       first one may do them all on a loaded machine); never more pids
       than workers. */
    assert_true(distinct >= 1 && distinct <= W);
    finish(pool);
    /* and 100 workers killed at once, each noticed by its reader */
    pool = make_pool(W);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 0), 0);
    assert_int_equal(mproc_pool_terminate(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 0), MPROC_ECLOSED);
    mproc_pool_destroy(pool);
    free(in);
    free(out);
    free(pids);
}

static void test_fork_method(void **state)
{
    (void)state;
#if defined(MPROC_TEST_NO_FORK)
    skip();
#elif defined(_WIN32)
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    opt.method = MPROC_FORK;
    assert_int_equal(mproc_pool_create(&pool, &opt), MPROC_ENOTSUP);
#else
    enum { N = 1000 };
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    int *in = numbers(N), *out = calloc(N, sizeof *out);
    opt.processes = 2;
    opt.method = MPROC_FORK;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    in[500] = POISON_KILL;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 0), MPROC_ECHILD);
    check_doubled(in, out, N, 500);
    in[500] = 1;
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof *in, N, out, sizeof *out, 0), 0);
    check_doubled(in, out, N, SIZE_MAX);
    finish(pool);
    free(in);
    free(out);
#endif
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_chunk_sizes),
        cmocka_unit_test(test_map_zero_items_and_bad_input),
        cmocka_unit_test(test_imap_ordered),
        cmocka_unit_test(test_imap_unordered),
        cmocka_unit_test(test_imap_backpressure),
        cmocka_unit_test(test_imap_wait_timeout),
        cmocka_unit_test(test_apply_sizes),
        cmocka_unit_test(test_apply_async_calls),
        cmocka_unit_test(test_new_pool_spreads_long_tasks),
        cmocka_unit_test(test_two_threads_submit),
        cmocka_unit_test(test_initializer),
        cmocka_unit_test(test_failing_initializer),
        cmocka_unit_test(test_maxtasksperchild),
        cmocka_unit_test(test_death_abort),
        cmocka_unit_test(test_death_kill),
        cmocka_unit_test(test_death_exit),
        cmocka_unit_test(test_death_crash),
        cmocka_unit_test(test_death_chunk1),
        cmocka_unit_test(test_death_in_apply),
        cmocka_unit_test(test_many_deaths),
        cmocka_unit_test(test_repeated_deaths),
        cmocka_unit_test(test_killed_from_outside),
        cmocka_unit_test(test_death_while_callers_read),
        cmocka_unit_test(test_grandchild_holds_pipes),
        cmocka_unit_test(test_task_errors),
        cmocka_unit_test(test_task_timeout),
        cmocka_unit_test(test_close_join),
        cmocka_unit_test(test_terminate),
        cmocka_unit_test(test_workers_ignore_sigint),
        cmocka_unit_test(test_interrupt_from_sigint_handler),
        cmocka_unit_test(test_no_descriptor_leak),
        cmocka_unit_test(test_hundred_workers),
        cmocka_unit_test(test_fork_method),
    };
    tu_guard(argc, argv);
    return TU_RUN(argc, argv, tests);
}
