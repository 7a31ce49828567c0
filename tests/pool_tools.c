/* The pool as real tools use it, across real worker processes: per-item
   outcomes (code, message and the task function's own return value) on
   async results, iterator steps and map's status array; a task timeout
   told apart from a wait timeout; items dropped by iter_destroy in the
   stats; the documented size limit and terminate's code; the worker
   count. Tasks that must stay busy wait on an Event that is never set. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- worker-side functions --------------------------------------------------- */
static mproc_event *never;   /* from the initarg, never set */
static mproc_event *started; /* set by a task as it starts to hang */

static int hang_init(const void *arg, size_t len)
{
    mproc_ref ref[2];
    if (len != sizeof ref) return 1;
    memcpy(ref, arg, sizeof ref);
    return mproc_event_attach(&ref[0], &never) || mproc_event_attach(&ref[1], &started);
}

/* v > 0: doubled; v < 0: returns v (its own failure value); v == -1000:
   fails with a message and returns 0; v == 0: hangs. */
static int judge(const void *item, void *result)
{
    int v;
    memcpy(&v, item, sizeof v);
    if (v == 0) {
        mproc_event_set(started);
        mproc_event_wait(never, MPROC_FOREVER);
    }
    if (v == -1000) {
        mproc_task_fail("item %d rejected", v);
        return 0;
    }
    if (v < 0) return v;
    v *= 2;
    memcpy(result, &v, sizeof v);
    return 0;
}

static int judge_apply(const void *in, size_t len, mproc_buf *out)
{
    int v, r = 0;
    if (len != sizeof v) return 99;
    memcpy(&v, in, sizeof v);
    int rc = judge(&v, &r);
    if (!rc) rc = mproc_buf_append(out, &r, sizeof r);
    return rc;
}

static int big_item(const void *item, void *result)
{
    (void)item;
    (void)result;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */
typedef struct hang_pool {
    mproc_pool *pool;
    mproc_event *never, *started;
} hang_pool;

static hang_pool make_pool(int processes, int task_timeout_ms)
{
    hang_pool hp;
    mproc_ref ref[2];
    mproc_pool_options opt = {0};
    assert_int_equal(mproc_event_create(&hp.never), 0);
    assert_int_equal(mproc_event_create(&hp.started), 0);
    assert_int_equal(mproc_event_ref(hp.never, &ref[0]), 0);
    assert_int_equal(mproc_event_ref(hp.started, &ref[1]), 0);
    opt.processes = processes;
    opt.initializer = hang_init;
    opt.initarg = ref;
    opt.initarg_len = sizeof ref;
    opt.task_timeout_ms = task_timeout_ms;
    assert_int_equal(mproc_pool_create(&hp.pool, &opt), 0);
    return hp;
}

static void free_pool(hang_pool *hp)
{
    mproc_pool_destroy(hp->pool);
    mproc_event_destroy(hp->never);
    mproc_event_destroy(hp->started);
}

static mproc_async *submit(mproc_pool *pool, int v)
{
    mproc_async *r = NULL;
    assert_int_equal(mproc_pool_apply_async(pool, judge_apply, &v, sizeof v, &r), 0);
    return r;
}

/* ---- outcomes ------------------------------------------------------------------- */
static void test_async_outcomes(void **state)
{
    (void)state;
    hang_pool hp = make_pool(2, 0);
    mproc_task_error err;
    mproc_async *ok = submit(hp.pool, 21), *neg = submit(hp.pool, -7),
                *msg = submit(hp.pool, -1000), *other = submit(hp.pool, -42);
    void *out;
    size_t len;
    assert_int_equal(mproc_async_get(ok, &out, &len, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(len, sizeof(int));
    assert_int_equal(*(int *)out, 42);
    mproc_free(out);
    assert_int_equal(mproc_async_error(ok, &err), MPROC_ENOENT);

    assert_int_equal(mproc_async_get(neg, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ETASK);
    assert_int_equal(mproc_async_get(other, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ETASK);
    assert_int_equal(mproc_async_get(msg, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ETASK);
    /* each handle keeps its own outcome, whatever finished last */
    assert_int_equal(mproc_async_error(neg, &err), 0);
    assert_int_equal(err.code, MPROC_ETASK);
    assert_int_equal(err.status, -7);
    assert_string_equal(err.message, "task function returned -7");
    assert_int_equal(mproc_async_error(other, &err), 0);
    assert_int_equal(err.status, -42);
    assert_int_equal(mproc_async_error(msg, &err), 0);
    assert_int_equal(err.status, 0);
    assert_string_equal(err.message, "item -1000 rejected");

    /* not finished yet: ESTATE, and a wait timeout is ETIMEDOUT */
    mproc_async *hung = submit(hp.pool, 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_async_error(hung, &err), MPROC_ESTATE);
    assert_int_equal(mproc_async_get(hung, NULL, NULL, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_error(NULL, &err), MPROC_EINVAL);
    assert_int_equal(mproc_async_error(hung, NULL), MPROC_EINVAL);
    mproc_async_destroy(hung);
    mproc_async_destroy(ok);
    mproc_async_destroy(neg);
    mproc_async_destroy(msg);
    mproc_async_destroy(other);
    free_pool(&hp);
}

static void test_iter_outcomes(void **state)
{
    (void)state;
    enum { N = 200 };
    hang_pool hp = make_pool(2, 0);
    int in[N], out;
    for (int i = 0; i < N; i++) in[i] = i + 1;
    in[17] = -17;
    in[101] = -1000;
    in[150] = -3;
    for (int flags = 0; flags <= MPROC_UNORDERED; flags += MPROC_UNORDERED) {
        mproc_iter *it;
        mproc_task_error err;
        size_t idx, seen = 0, failed = 0;
        int rc;
        assert_int_equal(mproc_pool_imap(hp.pool, judge, in, sizeof *in, N, sizeof out, 3, flags, &it), 0);
        while ((rc = mproc_iter_next(it, &out, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE) {
            assert_true(idx < N);
            if (!flags) assert_int_equal(idx, seen);
            seen++;
            if (in[idx] > 0) {
                assert_int_equal(rc, 0);
                assert_int_equal(out, 2 * in[idx]);
                assert_int_equal(mproc_iter_error(it, &err), MPROC_ENOENT);
                continue;
            }
            failed++;
            assert_int_equal(rc, MPROC_ETASK);
            assert_int_equal(mproc_iter_error(it, &err), 0);
            assert_int_equal(err.index, idx);
            assert_int_equal(err.code, MPROC_ETASK);
            assert_int_equal(err.status, in[idx] == -1000 ? 0 : in[idx]);
            if (in[idx] == -1000) assert_string_equal(err.message, "item -1000 rejected");
        }
        assert_int_equal(seen, N);
        assert_int_equal(failed, 3);
        assert_int_equal(mproc_iter_error(it, &err), MPROC_ENOENT); /* the EDONE step */
        mproc_iter_destroy(it);
    }
    free_pool(&hp);
}

static void test_map_status(void **state)
{
    (void)state;
    enum { N = 300 };
    hang_pool hp = make_pool(2, 0);
    int in[N], out[N], status[N];
    mproc_task_error err;
    for (int i = 0; i < N; i++) {
        in[i] = i + 1;
        status[i] = 12345;
    }
    in[5] = -5;
    in[250] = -1000;
    in[299] = -9;
    assert_int_equal(mproc_pool_map_status(hp.pool, judge, in, sizeof *in, N, out, sizeof *out, 7, status),
                     MPROC_ETASK);
    for (int i = 0; i < N; i++) {
        if (in[i] > 0) {
            assert_int_equal(status[i], 0);
            assert_int_equal(out[i], 2 * in[i]);
        } else {
            assert_int_equal(status[i], MPROC_ETASK);
        }
    }
    /* the pool-wide error still names the lowest, with its own value */
    assert_int_equal(mproc_pool_last_error(hp.pool, &err), 0);
    assert_int_equal(err.index, 5);
    assert_int_equal(err.status, -5);
    /* all good: every status 0; NULL status is plain map */
    for (int i = 0; i < N; i++) in[i] = i + 1;
    assert_int_equal(mproc_pool_map_status(hp.pool, judge, in, sizeof *in, N, out, sizeof *out, 0, status), 0);
    for (int i = 0; i < N; i++) assert_int_equal(status[i], 0);
    assert_int_equal(mproc_pool_map_status(hp.pool, judge, in, sizeof *in, N, out, sizeof *out, 0, NULL), 0);
    free_pool(&hp);
}

/* A task killed by the task timeout is MPROC_ETASKTIMEOUT; a caller's own
   wait that runs out is MPROC_ETIMEDOUT. */
static void test_task_timeout_code(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 1500);
    mproc_task_error err;
    mproc_async *r = submit(hp.pool, 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_async_get(r, NULL, NULL, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ETASKTIMEOUT);
    assert_int_equal(mproc_async_wait(r, 0), 0);
    assert_int_equal(mproc_async_error(r, &err), 0);
    assert_int_equal(err.code, MPROC_ETASKTIMEOUT);
    assert_non_null(strstr(err.message, "timed out after 1500 ms"));
    mproc_async_destroy(r);
    /* the replacement worker goes on */
    r = submit(hp.pool, 4);
    assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), 0);
    mproc_async_destroy(r);
    assert_string_equal(mproc_strerror(MPROC_ETASKTIMEOUT),
                        "MPROC_ETASKTIMEOUT: a task ran past the pool's task timeout and was killed");
    free_pool(&hp);
}

/* Items never handed out when their iterator goes are counted as dropped:
   once everything settled, submitted == done + failed + dropped. */
static void test_dropped_in_stats(void **state)
{
    (void)state;
    enum { N = 5000 };
    hang_pool hp = make_pool(2, 0);
    int *in = malloc(N * sizeof *in), out;
    mproc_iter *it;
    mproc_pool_stats st;
    size_t idx;
    assert_non_null(in);
    for (int i = 0; i < N; i++) in[i] = i + 1;
    assert_int_equal(mproc_pool_imap(hp.pool, judge, in, sizeof *in, N, sizeof out, 1, 0, &it), 0);
    for (int i = 0; i < 10; i++) assert_int_equal(mproc_iter_next(it, &out, &idx, TU_JOIN_TIMEOUT_MS), 0);
    mproc_iter_destroy(it);
    /* a hung apply that is destroyed before it runs is dropped too */
    mproc_async *busy = submit(hp.pool, 0), *busy2 = submit(hp.pool, 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    mproc_async *queued = NULL;
    /* both workers hang once both started; the third waits in the queue */
    int v = 5;
    assert_int_equal(mproc_pool_apply_async(hp.pool, judge_apply, &v, sizeof v, &queued), 0);
    mproc_async_destroy(queued);
    assert_int_equal(mproc_pool_terminate(hp.pool), 0);
    assert_int_equal(mproc_pool_join(hp.pool), 0);
    assert_int_equal(mproc_pool_stats_get(hp.pool, &st), 0);
    assert_true(st.dropped >= N - 10 - 64 * 2); /* at most a window ran ahead */
    assert_int_equal(st.submitted, N + 3);
    assert_int_equal(st.submitted, st.done + st.failed + st.dropped);
    mproc_async_destroy(busy);
    mproc_async_destroy(busy2);
    free_pool(&hp);
    free(in);
}

/* ---- what the header says ------------------------------------------------------------ */
static void test_size_limit_both_sides(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 0);
    size_t k = 1024;
    unsigned char *buf = calloc(1, 512 * k);
    assert_non_null(buf);
    /* item_size + result_size at most 256 KiB */
    assert_int_equal(mproc_pool_map(hp.pool, big_item, buf, 256 * k, 1, buf + 256 * k, 256 * k, 1),
                     MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(hp.pool, big_item, buf, 128 * k + 1, 1, buf + 256 * k, 128 * k, 1),
                     MPROC_EINVAL);
    assert_int_equal(mproc_pool_map(hp.pool, big_item, buf, 128 * k, 1, buf + 256 * k, 128 * k, 1), 0);
    free(buf);
    free_pool(&hp);
}

static void test_processes_readable(void **state)
{
    (void)state;
    hang_pool hp = make_pool(3, 0);
    assert_int_equal(mproc_pool_processes(hp.pool), 3);
    assert_int_equal(mproc_pool_processes(NULL), MPROC_EINVAL);
    free_pool(&hp);
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    assert_int_equal(mproc_pool_processes(pool), mproc_process_cpu_count());
    mproc_pool_destroy(pool);
}

/* A running item, killed by terminate, fails with MPROC_ECLOSED. */
static void test_terminate_running_item(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 0);
    mproc_task_error err;
    mproc_async *r = submit(hp.pool, 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_pool_terminate(hp.pool), 0);
    assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ECLOSED);
    assert_int_equal(mproc_async_error(r, &err), 0);
    assert_int_equal(err.code, MPROC_ECLOSED);
    assert_string_equal(err.message, "pool terminated");
    mproc_async_destroy(r);
    free_pool(&hp);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_outcomes),
        cmocka_unit_test(test_iter_outcomes),
        cmocka_unit_test(test_map_status),
        cmocka_unit_test(test_task_timeout_code),
        cmocka_unit_test(test_dropped_in_stats),
        cmocka_unit_test(test_size_limit_both_sides),
        cmocka_unit_test(test_processes_readable),
        cmocka_unit_test(test_terminate_running_item),
    };
    if (mproc_main_guard(argc, argv) != 0) return 3;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
