/* The Pool over MPI ranks, run as `mpirun -n 3 test_mpi_pool [death]`
   (tests/mpi/run.sh): rank 0 runs the CMocka tests, ranks 1 and 2 are the
   workers. `death`: a task kills its rank; what rank 0 then sees is
   checked by run.sh under plain mpirun and under --enable-recovery. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mproc_mpi.h>

static int doubler(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 2;
    return 0;
}

static int offset_by_init; /* set by the initializer on each rank */

static int init_offset(const void *arg, size_t len)
{
    if (len != sizeof offset_by_init) return 3;
    memcpy(&offset_by_init, arg, len);
    return 0;
}

static int add_offset(const void *item, void *result)
{
    *(int *)result = *(const int *)item + offset_by_init;
    return 0;
}

static int fail_on_7(const void *item, void *result)
{
    int v = *(const int *)item;
    if (v % 100 == 7) mproc_task_fail("item %d is unlucky", v);
    *(int *)result = -v;
    return 0;
}

static int returns_5(const void *item, void *result)
{
    (void)item;
    (void)result;
    return 5;
}

/* Items of 64 KiB, results of 128 KiB: a pattern from the item's first int. */
enum { BIG_ITEM = 64 * 1024, BIG_RESULT = 128 * 1024 };
static int big_map(const void *item, void *result)
{
    int seed;
    memcpy(&seed, item, sizeof seed);
    for (size_t i = 0; i < BIG_RESULT; i++) ((unsigned char *)result)[i] = (unsigned char)(seed + i * 7);
    return 0;
}

/* Doubles, and reports three sub-items (mproc_task_progress). */
static int doubler_reports(const void *item, void *result)
{
    return mproc_task_progress(3) || doubler(item, result);
}

/* apply: the input reversed, then its length (any size). */
static int reverse(const void *in, size_t len, mproc_buf *out)
{
    const unsigned char *p = in;
    unsigned char tmp[4096];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof tmp ? len - done : sizeof tmp;
        for (size_t k = 0; k < n; k++) tmp[k] = p[len - 1 - done - k];
        if (mproc_buf_append(out, tmp, n)) return 1;
        done += n;
    }
    uint64_t l = len;
    return mproc_buf_append(out, &l, sizeof l);
}

static int apply_fails(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)out;
    mproc_task_fail("apply saw %zu bytes and refused", len);
    return 1;
}

static int sleeper(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    /* long enough for terminate to come first; a busy loop, no sleep API */
    double x = 0;
    for (long i = 0; i < 400000000L; i++) x += (double)i * 1e-9;
    return x < 0;
}

/* Results of 64 KiB: each completion leaves by MPI's rendezvous protocol,
   not in one eager packet, so the rank must see it out before the next
   unit (the one that kills it) for rank 0 to blame the right item. */
enum { DEATH_RESULT = 64 * 1024 };
static int kill_own_rank(const void *item, void *result)
{
    int v = *(const int *)item, r = v * 3;
    if (v == 5) raise(SIGKILL);
    memset(result, 0x5a, DEATH_RESULT);
    memcpy(result, &r, sizeof r);
    return 0;
}

static mproc_pool *new_pool(const mproc_pool_options *opt)
{
    mproc_pool *pool = NULL;
    assert_int_equal(mproc_pool_create(&pool, opt), 0);
    return pool;
}

static void end_pool(mproc_pool *pool)
{
    assert_int_equal(mproc_pool_close(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    mproc_pool_destroy(pool);
}

static void test_map_imap_stats(void **state)
{
    (void)state;
    enum { N = 5000 };
    static int in[N], out[N];
    mproc_pool_stats st;
    mproc_iter *it;
    for (int i = 0; i < N; i++) in[i] = i;
    mproc_pool *pool = new_pool(NULL);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof in[0], N, out, sizeof out[0], 0), 0);
    for (int i = 0; i < N; i++) assert_int_equal(out[i], 2 * i);
    /* many small chunks */
    memset(out, 0, sizeof out);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof in[0], N, out, sizeof out[0], 1), 0);
    for (int i = 0; i < N; i++) assert_int_equal(out[i], 2 * i);
    assert_int_equal(mproc_pool_imap(pool, doubler, in, sizeof in[0], N, sizeof out[0], 7, 0, &it), 0);
    for (int i = 0; i < N; i++) {
        int r;
        size_t idx;
        assert_int_equal(mproc_iter_next(it, &r, &idx, 60000), 0);
        assert_int_equal(idx, (size_t)i);
        assert_int_equal(r, 2 * i);
    }
    assert_int_equal(mproc_iter_next(it, NULL, NULL, 60000), MPROC_EDONE);
    mproc_iter_destroy(it);
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_int_equal(st.submitted, 3 * N);
    assert_int_equal(st.done, 3 * N);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.progress, 0);
    /* sub-items reported on the ranks reach rank 0 with their units */
    assert_int_equal(mproc_pool_map(pool, doubler_reports, in, sizeof in[0], N, out, sizeof out[0], 0), 0);
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_int_equal(st.progress, 3 * N);
    end_pool(pool);
}

static void test_initializer_and_processes(void **state)
{
    (void)state;
    int in[100], out[100], offset = 1000;
    mproc_pool_options opt = {0};
    opt.initializer = init_offset;
    opt.initarg = &offset;
    opt.initarg_len = sizeof offset;
    opt.processes = 9; /* more than there are ranks: all of them */
    for (int i = 0; i < 100; i++) in[i] = i;
    mproc_pool *pool = new_pool(&opt);
    assert_int_equal(mproc_pool_map(pool, add_offset, in, sizeof in[0], 100, out, sizeof out[0], 3), 0);
    for (int i = 0; i < 100; i++) assert_int_equal(out[i], i + 1000);
    end_pool(pool);
}

static void test_task_errors(void **state)
{
    (void)state;
    int in[300], out[300];
    void *res = NULL;
    size_t res_len = 0;
    mproc_task_error err;
    for (int i = 0; i < 300; i++) in[i] = i;
    mproc_pool *pool = new_pool(NULL);
    assert_int_equal(mproc_pool_map(pool, fail_on_7, in, sizeof in[0], 300, out, sizeof out[0], 10),
                     MPROC_ETASK);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.index, 7);
    assert_int_equal(err.code, MPROC_ETASK);
    assert_string_equal(err.message, "item 7 is unlucky");
    for (int i = 0; i < 300; i++)
        if (i % 100 != 7) assert_int_equal(out[i], -i);
    assert_int_equal(mproc_pool_map(pool, returns_5, in, sizeof in[0], 4, out, sizeof out[0], 0), MPROC_ETASK);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_string_equal(err.message, "task function returned 5");
    assert_int_equal(mproc_pool_apply(pool, apply_fails, "abc", 3, &res, &res_len), MPROC_ETASK);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_string_equal(err.message, "apply saw 3 bytes and refused");
    end_pool(pool);
}

static void test_large_items_and_results(void **state)
{
    (void)state;
    enum { N = 40 };
    size_t in_len = (size_t)24 << 20; /* 24 MiB apply input and result */
    unsigned char *items = calloc(N, BIG_ITEM), *results = malloc((size_t)N * BIG_RESULT);
    unsigned char *in = malloc(in_len);
    void *out = NULL;
    size_t out_len = 0;
    assert_non_null(items);
    assert_non_null(results);
    assert_non_null(in);
    for (int i = 0; i < N; i++) memcpy(items + (size_t)i * BIG_ITEM, &i, sizeof i);
    for (size_t i = 0; i < in_len; i++) in[i] = (unsigned char)(i * 13 + 5);
    mproc_pool *pool = new_pool(NULL);
    assert_int_equal(mproc_pool_map(pool, big_map, items, BIG_ITEM, N, results, BIG_RESULT, 0), 0);
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < BIG_RESULT; k += 997)
            assert_int_equal(results[(size_t)i * BIG_RESULT + k], (unsigned char)(i + k * 7));
    assert_int_equal(mproc_pool_apply(pool, reverse, in, in_len, &out, &out_len), 0);
    assert_int_equal(out_len, in_len + 8);
    const unsigned char *o = out;
    for (size_t i = 0; i < in_len; i += 4099) assert_int_equal(o[i], in[in_len - 1 - i]);
    uint64_t l;
    memcpy(&l, o + in_len, sizeof l);
    assert_int_equal(l, in_len);
    mproc_free(out);
    end_pool(pool);
    free(items);
    free(results);
    free(in);
}

static void test_apply_async_many(void **state)
{
    (void)state;
    enum { N = 200 };
    mproc_async *r[N];
    mproc_pool *pool = new_pool(NULL);
    for (int i = 0; i < N; i++) {
        char in[32];
        int n = snprintf(in, sizeof in, "task-%d", i);
        assert_int_equal(mproc_pool_apply_async(pool, reverse, in, (size_t)n, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        void *out;
        size_t len;
        char want[32], got[32];
        int n = snprintf(want, sizeof want, "task-%d", i);
        assert_int_equal(mproc_async_get(r[i], &out, &len, 60000), 0);
        assert_int_equal(len, (size_t)n + 8);
        for (int k = 0; k < n; k++) got[k] = ((char *)out)[n - 1 - k];
        assert_memory_equal(got, want, (size_t)n);
        mproc_free(out);
        mproc_async_destroy(r[i]);
    }
    end_pool(pool);
}

static void test_refused_options(void **state)
{
    (void)state;
    mproc_pool *pool = NULL;
    mproc_pool_options opt = {0};
    opt.maxtasksperchild = 1;
    assert_int_equal(mproc_pool_create(&pool, &opt), MPROC_ENOTSUP);
    opt.maxtasksperchild = 0;
    opt.task_timeout_ms = 100;
    assert_int_equal(mproc_pool_create(&pool, &opt), MPROC_ENOTSUP);
    opt.task_timeout_ms = 0;
    opt.method = MPROC_FORK;
    assert_int_equal(mproc_pool_create(&pool, &opt), MPROC_ENOTSUP);
    assert_null(pool);
    /* one pool over the ranks at a time */
    mproc_pool *a = new_pool(NULL);
    assert_int_equal(mproc_pool_create(&pool, NULL), MPROC_ESTATE);
    end_pool(a);
}

static void test_terminate_then_new_pool(void **state)
{
    (void)state;
    mproc_async *r;
    int in[10], out[10];
    mproc_pool *pool = new_pool(NULL);
    assert_int_equal(mproc_pool_apply_async(pool, sleeper, NULL, 0, &r), 0);
    assert_int_equal(mproc_pool_terminate(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    assert_int_equal(mproc_async_wait(r, 60000), 0);
    int rc = mproc_async_get(r, NULL, NULL, 0);
    assert_true(rc == MPROC_ECLOSED || rc == MPROC_ECHILD);
    mproc_async_destroy(r);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof in[0], 10, out, sizeof out[0], 0), MPROC_ECLOSED);
    mproc_pool_destroy(pool);
    /* The ranks serve the next pool (one after its sleeper returns). */
    for (int i = 0; i < 10; i++) in[i] = i + 1;
    pool = new_pool(NULL);
    assert_int_equal(mproc_pool_map(pool, doubler, in, sizeof in[0], 10, out, sizeof out[0], 1), 0);
    for (int i = 0; i < 10; i++) assert_int_equal(out[i], 2 * (i + 1));
    end_pool(pool);
}

/* A task kills its rank: the map fails with MPROC_ECHILD for that item,
   the message names the rank, the other items are right. */
static int run_death(void)
{
    enum { N = 40 };
    int in[N], out[N];
    static unsigned char big[N][DEATH_RESULT];
    mproc_task_error err;
    mproc_pool *pool;
    for (int i = 0; i < N; i++) in[i] = i;
    mproc_mpi_set_dead_timeout(30000);
    if (mproc_pool_create(&pool, NULL)) return 1;
    int rc = mproc_pool_map(pool, kill_own_rank, in, sizeof in[0], N, big, DEATH_RESULT, 1);
    printf("map: %s\n", mproc_strerror(rc));
    if (rc != MPROC_ECHILD || mproc_pool_last_error(pool, &err)) return 1;
    printf("item %zu: %s\n", err.index, err.message);
    if (err.index != 5 || !strstr(err.message, "MPI rank")) return 1;
    for (int i = 0; i < N; i++) {
        int r;
        memcpy(&r, big[i], sizeof r);
        if (i != 5 && (r != 3 * i || big[i][DEATH_RESULT - 1] != 0x5a)) return 1;
    }
    /* the pool goes on with the rank that is left */
    rc = mproc_pool_map(pool, doubler, in, sizeof in[0], N, out, sizeof out[0], 2);
    if (rc) return 1;
    mproc_pool_close(pool);
    mproc_pool_join(pool);
    mproc_pool_destroy(pool);
    printf("DEATH-OK\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (mproc_mpi_guard(argc, argv) != 0) return 1;
    if (mproc_mpi_size() < 3) {
        fprintf(stderr, "run under mpirun -n 3\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "death") == 0) return run_death();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_imap_stats),
        cmocka_unit_test(test_initializer_and_processes),
        cmocka_unit_test(test_task_errors),
        cmocka_unit_test(test_large_items_and_results),
        cmocka_unit_test(test_apply_async_many),
        cmocka_unit_test(test_refused_options),
        cmocka_unit_test(test_terminate_then_new_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
