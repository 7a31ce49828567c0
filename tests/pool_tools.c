/* The pool as real tools use it, across real worker processes: per-item
   outcomes (code, message and the task function's own return value) on
   async results, iterator steps and map's status array; a task timeout
   told apart from a wait timeout; items dropped by iter_destroy in the
   stats; the documented size limit and terminate's code; the worker
   count; progress a task reports inside a record. Tasks that must stay
   busy wait on an Event that is never set. */
#include "testutil.h"
#include "os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
#else
#  include <unistd.h>
#endif

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

/* A record's result: its bytes reversed, then its length (8 bytes LE). A
   record starting with 'F' fails with its second byte as the value. */
static int reverse_record(const void *in, size_t len, mproc_buf *out)
{
    const unsigned char *p = in;
    unsigned char tail[8];
    if (len >= 2 && p[0] == 'F') return p[1];
    for (size_t i = 0; i < len; i++)
        if (mproc_buf_append(out, p + len - 1 - i, 1)) return 100;
    for (int i = 0; i < 8; i++) tail[i] = (unsigned char)((uint64_t)len >> (8 * i));
    return mproc_buf_append(out, tail, sizeof tail) ? 100 : 0;
}

/* Writes its result in place: n bytes (n = the input's first int) of a
   pattern, in two reserved pieces; a commit beyond the reservation fails. */
static int in_place(const void *in, size_t len, mproc_buf *out)
{
    int n;
    if (len != sizeof n) return 90;
    memcpy(&n, in, sizeof n);
    unsigned char *p = mproc_buf_reserve(out, (size_t)n);
    if (!p) return 91;
    for (int i = 0; i < n / 2; i++) p[i] = (unsigned char)(i * 31 + 7);
    if (mproc_buf_commit(out, (size_t)n + 1) != MPROC_EINVAL) return 92;
    if (mproc_buf_commit(out, (size_t)(n / 2))) return 93;
    if (mproc_buf_commit(out, 1) != MPROC_EINVAL) return 94; /* nothing reserved now */
    p = mproc_buf_reserve(out, (size_t)(n - n / 2));
    if (!p) return 95;
    for (int i = n / 2; i < n; i++) p[i - n / 2] = (unsigned char)(i * 31 + 7);
    if (mproc_buf_commit(out, (size_t)(n - n / 2))) return 96;
    return mproc_buf_reserve(NULL, 1) == NULL && mproc_buf_commit(NULL, 0) == MPROC_EINVAL ? 0 : 97;
}

/* ---- helpers ------------------------------------------------------------------ */
typedef struct hang_pool {
    mproc_pool *pool;
    mproc_event *never, *started;
} hang_pool;

static hang_pool make_pool_max(int processes, int task_timeout_ms, int max_pending)
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
    opt.max_pending = max_pending;
    assert_int_equal(mproc_pool_create(&hp.pool, &opt), 0);
    return hp;
}

static hang_pool make_pool(int processes, int task_timeout_ms)
{
    return make_pool_max(processes, task_timeout_ms, 0);
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

/* A program that forgot mproc_main_guard: its worker re-runs main() and
   never reaches the guard. The pool starts no other and fails the work
   with MPROC_EBOOTSTRAP, naming mproc_main_guard. */
static void test_missing_guard(void **state)
{
    (void)state;
    mproc_pool_options opt = {0};
    mproc_pool *pool = NULL;
    mproc_task_error err;
    mproc_pool_stats st;
    int in[4] = {1, 2, 3, 4}, out[4];
    opt.processes = 1;
    assert_int_equal(mproc_set_executable(MPROC_NOGUARD_HELPER), 0);
    int created = mproc_pool_create(&pool, &opt);
    int mapped = created ? created : mproc_pool_map(pool, judge, in, sizeof *in, 4, out, sizeof *out, 1);
    assert_int_equal(mproc_set_executable(NULL), 0); /* before any assert can fail */
    assert_int_equal(created, 0);
    assert_int_equal(mapped, MPROC_EBOOTSTRAP);
    assert_int_equal(mproc_pool_last_error(pool, &err), 0);
    assert_int_equal(err.code, MPROC_EBOOTSTRAP);
    assert_non_null(strstr(err.message, "mproc_main_guard"));
    /* later calls fail the same way at once; no worker was started again */
    assert_int_equal(mproc_pool_map(pool, judge, in, sizeof *in, 4, out, sizeof *out, 1), MPROC_EBOOTSTRAP);
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_int_equal(st.workers_replaced, 0);
    mproc_pool_destroy(pool);
}

/* ---- stdin ---------------------------------------------------------------------------- */
/* Bytes this process can read from its stdin (at most 64; 200 if it has
   no readable stdin at all). */
static int stdin_bytes(void)
{
    char buf[64];
    int total = 0;
    for (;;) {
#ifdef _WIN32
        DWORD got = 0;
        HANDLE h = GetStdHandle(STD_INPUT_HANDLE);
        if (h == NULL || h == INVALID_HANDLE_VALUE) return 200;
        if (!ReadFile(h, buf, sizeof buf, &got, NULL))
            return GetLastError() == ERROR_BROKEN_PIPE ? total : 200;
#else
        ssize_t got = read(0, buf, sizeof buf);
        if (got < 0) return 200;
#endif
        if (got == 0 || total >= 64) return total;
        total += (int)got;
    }
}

static int stdin_target(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return stdin_bytes();
}

static int stdin_task(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    int n = stdin_bytes();
    return mproc_buf_append(out, &n, sizeof n);
}

/* Makes this process's stdin a pipe holding "hello" (then its end);
   returns what to give restore_stdin. */
#ifdef _WIN32
typedef HANDLE saved_stdin;
static saved_stdin stdin_with_hello(void)
{
    HANDLE r, w, old = GetStdHandle(STD_INPUT_HANDLE);
    DWORD put;
    assert_true(CreatePipe(&r, &w, NULL, 0));
    assert_true(WriteFile(w, "hello", 5, &put, NULL));
    CloseHandle(w);
    assert_true(SetStdHandle(STD_INPUT_HANDLE, r));
    return old;
}
static void restore_stdin(saved_stdin old)
{
    CloseHandle(GetStdHandle(STD_INPUT_HANDLE));
    SetStdHandle(STD_INPUT_HANDLE, old);
}
#else
typedef int saved_stdin;
static saved_stdin stdin_with_hello(void)
{
    int fds[2], old = dup(0);
    assert_true(old >= 0);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "hello", 5), 5);
    close(fds[1]);
    assert_int_equal(dup2(fds[0], 0), 0);
    close(fds[0]);
    return old;
}
static void restore_stdin(saved_stdin old)
{
    assert_int_equal(dup2(old, 0), 0);
    close(old);
}
#endif

static int child_stdin_bytes(int keep, mproc_start_method method)
{
    mproc_process_options opt = {NULL, 0, method};
    mproc_process *p;
    int code;
    assert_int_equal(mproc_set_keep_stdin(keep), 0);
    saved_stdin old = stdin_with_hello();
    int rc = mproc_process_create(&p, stdin_target, NULL, 0, &opt);
    if (!rc) rc = mproc_process_start(p);
    restore_stdin(old);
    assert_int_equal(rc, 0);
    code = tu_join(p);
    mproc_process_destroy(p);
    return code;
}

static int worker_stdin_bytes(int keep)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    void *out;
    size_t len;
    int n;
    opt.processes = 1; /* started inside create, while stdin is the pipe */
    assert_int_equal(mproc_set_keep_stdin(keep), 0);
    saved_stdin old = stdin_with_hello();
    int rc = mproc_pool_create(&pool, &opt);
    restore_stdin(old);
    assert_int_equal(rc, 0);
    assert_int_equal(mproc_pool_apply(pool, stdin_task, NULL, 0, &out, &len), 0);
    assert_int_equal(len, sizeof n);
    memcpy(&n, out, sizeof n);
    mproc_free(out);
    mproc_pool_destroy(pool);
    return n;
}

/* Children (spawned or forked) and workers read the null device unless
   mproc_set_keep_stdin(1): they never consume the parent's input. */
static void test_null_stdin(void **state)
{
    (void)state;
    assert_int_equal(child_stdin_bytes(0, MPROC_SPAWN), 0);
    assert_int_equal(child_stdin_bytes(1, MPROC_SPAWN), 5);
    mproc_start_method all[3];
    if (mproc_get_all_start_methods(all, 3) > 1) { /* fork exists: the same rule */
        assert_int_equal(child_stdin_bytes(0, MPROC_FORK), 0);
        assert_int_equal(child_stdin_bytes(1, MPROC_FORK), 5);
    }
    assert_int_equal(worker_stdin_bytes(0), 0);
    assert_int_equal(worker_stdin_bytes(1), 5);
    assert_int_equal(mproc_set_keep_stdin(0), 0);
    assert_int_equal(mproc_set_keep_stdin(2), MPROC_EINVAL);
    assert_int_equal(worker_stdin_bytes(0), 0);
}

/* ---- Ctrl-C on Windows --------------------------------------------------------------- */
/* A console control handler (what Ctrl-C really raises on Windows) calls
   mproc_pool_interrupt; the map blocked on a hanging worker returns
   MPROC_EINTR. The event goes to every process of the console: workers
   have disabled it for themselves and keep running until terminated. */
#ifdef _WIN32
static mproc_pool *ctrl_target;

static BOOL WINAPI on_ctrl(DWORD type)
{
    if (type != CTRL_C_EVENT) return FALSE;
    mproc_pool_interrupt(ctrl_target);
    return TRUE;
}

static volatile LONG ctrl_sent; /* 1: sent, 2: the console refused */

static void press_ctrl_c(void *arg)
{
    hang_pool *hp = arg;
    mproc_event_wait(hp->started, TU_JOIN_TIMEOUT_MS);
    if (GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) {
        InterlockedExchange(&ctrl_sent, 1);
    } else {
        InterlockedExchange(&ctrl_sent, 2);
        mproc_event_set(hp->never); /* no console: let the map finish */
    }
}
#endif

static void test_windows_ctrl_c(void **state)
{
    (void)state;
#ifndef _WIN32
    skip(); /* POSIX: tests/pool.c's SIGINT handler test */
#else
    hang_pool hp = make_pool(2, 0);
    int in[4] = {0, 0, 3, 4}, out[4];
    ctrl_target = hp.pool;
    assert_true(SetConsoleCtrlHandler(on_ctrl, TRUE));
    mproc__os_thread *t;
    assert_int_equal(mproc__os_thread_start(&t, press_ctrl_c, &hp), 0);
    int rc = mproc_pool_map(hp.pool, judge, in, sizeof *in, 4, out, sizeof *out, 1);
    mproc__os_thread_join(t);
    SetConsoleCtrlHandler(on_ctrl, FALSE);
    if (ctrl_sent == 2) {
        free_pool(&hp);
        print_message("no console to send Ctrl-C to (Wine without one): skipped\n");
        skip();
    }
    assert_int_equal(rc, MPROC_EINTR);
    assert_int_equal(mproc_pool_join(hp.pool), 0);
    free_pool(&hp);
#endif
}

/* ---- records and streams -------------------------------------------------------- */
/* Record i: (i * 37) % 3001 bytes of a pattern that depends on i. */
static size_t record_len(size_t i) { return (i * 37) % 3001; }

static void fill_record(unsigned char *buf, size_t i)
{
    size_t len = record_len(i);
    for (size_t k = 0; k < len; k++) buf[k] = (unsigned char)(i * 7 + k * 13 + 1);
    if (len >= 2 && buf[0] == 'F') buf[0] = 'G'; /* only chosen items fail */
}

static void check_result(size_t i, const unsigned char *out, size_t out_len)
{
    unsigned char buf[3001];
    size_t len = record_len(i);
    fill_record(buf, i);
    assert_int_equal(out_len, len + 8);
    for (size_t k = 0; k < len; k++) assert_int_equal(out[k], buf[len - 1 - k]);
    uint64_t got = 0;
    for (int k = 0; k < 8; k++) got |= (uint64_t)out[len + k] << (8 * k);
    assert_int_equal(got, len);
}

typedef struct producer {
    size_t n, produced, consumed, window, max_ahead, fail_at, error_at;
    unsigned char buf[3001];
} producer;

/* Makes records 0..n-1 one at a time into one buffer (the pool copies
   each before the next call): a stream of any length in constant memory. */
static int produce(void *ctx, mproc_record *item)
{
    producer *p = ctx;
    if (p->produced == p->error_at) return MPROC_ENOENT;
    if (p->produced == p->n) return 0;
    size_t i = p->produced++;
    if (p->produced - p->consumed > p->max_ahead) p->max_ahead = p->produced - p->consumed;
    fill_record(p->buf, i);
    item->data = p->buf;
    item->len = record_len(i);
    if (i == p->fail_at) {
        p->buf[0] = 'F';
        p->buf[1] = 77;
    }
    return 1;
}

static void run_stream(mproc_pool *pool, int flags, size_t window)
{
    enum { N = 3000 };
    producer *p = calloc(1, sizeof *p);
    unsigned char *seen = calloc(N, 1);
    mproc_iter *it;
    mproc_task_error err;
    void *out;
    size_t len, idx;
    int rc;
    assert_non_null(p);
    assert_non_null(seen);
    p->n = N;
    p->fail_at = 1234;
    p->error_at = SIZE_MAX;
    assert_int_equal(mproc_pool_imap_stream(pool, reverse_record, produce, p, window, flags, &it), 0);
    assert_int_equal(p->produced, 0); /* pulled only as results are asked for */
    while ((rc = mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE) {
        assert_true(idx < N);
        assert_false(seen[idx]);
        seen[idx] = 1;
        if (!flags) assert_int_equal(idx, p->consumed);
        p->consumed++;
        if (idx == p->fail_at) {
            assert_int_equal(rc, MPROC_ETASK);
            assert_null(out);
            assert_int_equal(mproc_iter_error(it, &err), 0);
            assert_int_equal(err.index, idx);
            assert_int_equal(err.status, 77);
            continue;
        }
        assert_int_equal(rc, 0);
        check_result(idx, out, len);
        mproc_free(out);
    }
    assert_int_equal(p->consumed, N);
    assert_true(p->max_ahead <= (window ? window : 16 * (size_t)mproc_pool_processes(pool)));
    mproc_iter_destroy(it);
    free(p);
    free(seen);
}

static void test_stream_ordered(void **state)
{
    (void)state;
    hang_pool hp = make_pool(2, 0);
    run_stream(hp.pool, 0, 0);
    run_stream(hp.pool, 0, 5);
    free_pool(&hp);
}

static void test_stream_unordered(void **state)
{
    (void)state;
    hang_pool hp = make_pool(2, 0);
    run_stream(hp.pool, MPROC_UNORDERED, 0);
    run_stream(hp.pool, MPROC_UNORDERED, 1);
    free_pool(&hp);
}

/* A producer's error ends the stream after the items it made. */
static void test_stream_producer_error(void **state)
{
    (void)state;
    hang_pool hp = make_pool(2, 0);
    producer *p = calloc(1, sizeof *p);
    mproc_iter *it;
    mproc_pool_stats st;
    void *out;
    size_t len, idx;
    assert_non_null(p);
    p->n = 100;
    p->fail_at = SIZE_MAX;
    p->error_at = 10;
    assert_int_equal(mproc_pool_imap_stream(hp.pool, reverse_record, produce, p, 4, 0, &it), 0);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(idx, i);
        check_result(i, out, len);
        mproc_free(out);
    }
    assert_int_equal(mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS), MPROC_ENOENT);
    assert_int_equal(idx, SIZE_MAX);
    assert_int_equal(mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS), MPROC_EDONE);
    /* the other kind of step is refused */
    int v;
    assert_int_equal(mproc_iter_next(it, &v, &idx, 0), MPROC_EINVAL);
    mproc_iter_destroy(it);
    assert_int_equal(mproc_pool_stats_get(hp.pool, &st), 0);
    assert_int_equal(st.submitted, 10);
    assert_int_equal(st.done, 10);
    free(p);
    free_pool(&hp);
}

static void test_map_and_imap_records(void **state)
{
    (void)state;
    enum { N = 500 };
    hang_pool hp = make_pool(2, 0);
    unsigned char *bufs = calloc(N, 3001);
    mproc_record rec[N];
    void *out[N];
    size_t out_len[N];
    int status[N];
    assert_non_null(bufs);
    for (size_t i = 0; i < N; i++) {
        fill_record(bufs + i * 3001, i);
        rec[i].data = bufs + i * 3001;
        rec[i].len = record_len(i);
    }
    bufs[77 * 3001] = 'F';
    bufs[77 * 3001 + 1] = 5;
    bufs[300 * 3001] = 'F';
    bufs[300 * 3001 + 1] = 6;
    assert_int_equal(mproc_pool_map_records(hp.pool, reverse_record, rec, N, out, out_len, status),
                     MPROC_ETASK);
    for (size_t i = 0; i < N; i++) {
        if (i == 77 || i == 300) {
            assert_int_equal(status[i], MPROC_ETASK);
            assert_null(out[i]);
            continue;
        }
        assert_int_equal(status[i], 0);
        check_result(i, out[i], out_len[i]);
        mproc_free(out[i]);
    }
    /* imap over the same array, in order */
    mproc_iter *it;
    size_t idx, n = 0;
    void *o;
    size_t olen;
    int rc;
    assert_int_equal(mproc_pool_imap_records(hp.pool, reverse_record, rec, N, 0, 0, &it), 0);
    while ((rc = mproc_iter_next_record(it, &o, &olen, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE) {
        assert_int_equal(idx, n++);
        if (idx == 77 || idx == 300) {
            assert_int_equal(rc, MPROC_ETASK);
            continue;
        }
        assert_int_equal(rc, 0);
        check_result(idx, o, olen);
        mproc_free(o);
    }
    assert_int_equal(n, N);
    mproc_iter_destroy(it);
    /* a fixed-size imap iterator gives no records */
    int items[2] = {1, 2};
    assert_int_equal(mproc_pool_imap(hp.pool, judge, items, sizeof *items, 2, sizeof(int), 0, 0, &it), 0);
    assert_int_equal(mproc_iter_next_record(it, &o, &olen, &idx, 0), MPROC_EINVAL);
    mproc_iter_destroy(it);
    assert_int_equal(mproc_pool_map_records(hp.pool, reverse_record, NULL, 1, NULL, NULL, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_pool_imap_stream(hp.pool, reverse_record, NULL, NULL, 0, 0, &it), MPROC_EINVAL);
    assert_int_equal(mproc_pool_imap_records(hp.pool, reverse_record, rec, N, 0, 4, &it), MPROC_EINVAL);
    free(bufs);
    free_pool(&hp);
}

/* Ints 1, 2, 0 (hangs), 4, 5, ... 1000: an endless-looking stream. */
static int produce_ints(void *ctx, mproc_record *item)
{
    int *next = ctx;
    static int value;
    if (*next > 1000) return 0;
    value = *next == 3 ? 0 : *next;
    (*next)++;
    item->data = &value;
    item->len = sizeof value;
    return 1;
}

/* Terminate in the middle of a stream: the item running fails with
   MPROC_ECLOSED, the rest end the stream with MPROC_ECLOSED, never a hang. */
static void test_stream_terminated(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 0);
    int next = 1, rc, closed = 0, ok = 0;
    mproc_iter *it;
    void *out;
    size_t len, idx;
    assert_int_equal(mproc_pool_imap_stream(hp.pool, judge_apply, produce_ints, &next, 8, 0, &it), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(idx, (size_t)k);
        mproc_free(out);
        ok++;
    }
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_pool_terminate(hp.pool), 0);
    while ((rc = mproc_iter_next_record(it, &out, &len, &idx, TU_JOIN_TIMEOUT_MS)) != MPROC_EDONE) {
        assert_int_equal(rc, MPROC_ECLOSED);
        assert_true(++closed < 20); /* the window's items, then the end */
    }
    assert_true(closed >= 1);
    assert_true(next <= 1 + 2 + 8 + 64); /* the producer was not drained */
    mproc_iter_destroy(it);
    free_pool(&hp);
}

/* max_pending: apply_async waits for room, and gives up after its timeout
   without submitting. */
static void test_apply_backpressure(void **state)
{
    (void)state;
    hang_pool hp = make_pool_max(2, 0, 3);
    mproc_pool_stats st;
    mproc_async *r[4] = {submit(hp.pool, 0), submit(hp.pool, 0), submit(hp.pool, 0), NULL};
    int v = 4;
    assert_int_equal(mproc_pool_apply_async_timeout(hp.pool, judge_apply, &v, sizeof v, 100, &r[3]),
                     MPROC_ETIMEDOUT);
    assert_null(r[3]);
    assert_int_equal(mproc_pool_stats_get(hp.pool, &st), 0);
    assert_int_equal(st.submitted, 3);
    /* room again once one is dropped (destroyed before it ran) or done */
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_event_set(hp.never), 0);
    assert_int_equal(mproc_pool_apply_async_timeout(hp.pool, judge_apply, &v, sizeof v, TU_JOIN_TIMEOUT_MS, &r[3]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mproc_async_get(r[i], NULL, NULL, TU_JOIN_TIMEOUT_MS), 0);
        mproc_async_destroy(r[i]);
    }
    /* many submissions through a small window all finish */
    for (int i = 0; i < 200; i++) {
        mproc_async *a;
        v = i + 1;
        assert_int_equal(mproc_pool_apply_async(hp.pool, judge_apply, &v, sizeof v, &a), 0);
        mproc_async_destroy(a);
    }
    assert_int_equal(mproc_pool_apply_async_timeout(hp.pool, judge_apply, &v, sizeof v, -2, &r[0]), MPROC_EINVAL);
    assert_int_equal(mproc_pool_close(hp.pool), 0);
    assert_int_equal(mproc_pool_join(hp.pool), 0);
    assert_int_equal(mproc_pool_stats_get(hp.pool, &st), 0);
    assert_int_equal(st.submitted, 204);
    assert_int_equal(st.submitted, st.done + st.dropped);
    free_pool(&hp);
}

/* Results written in place (reserve/commit) and taken without a copy. */
static void test_reserve_commit_take(void **state)
{
    (void)state;
    hang_pool hp = make_pool(2, 0);
    int sizes[3] = {1, 1000, 3 << 20};
    for (int k = 0; k < 3; k++) {
        mproc_async *r;
        void *out, *again;
        size_t len;
        assert_int_equal(mproc_pool_apply_async(hp.pool, in_place, &sizes[k], sizeof sizes[k], &r), 0);
        assert_int_equal(mproc_async_take(r, &out, &len, TU_JOIN_TIMEOUT_MS), 0);
        assert_int_equal(len, (size_t)sizes[k]);
        for (int i = 0; i < sizes[k]; i++)
            if (((unsigned char *)out)[i] != (unsigned char)(i * 31 + 7)) fail_msg("byte %d", i);
        mproc_free(out);
        /* taken once: the handle has no result left */
        assert_int_equal(mproc_async_take(r, &again, &len, 0), MPROC_ESTATE);
        assert_null(again);
        assert_int_equal(mproc_async_get(r, &again, &len, 0), MPROC_ESTATE);
        assert_int_equal(mproc_async_take(r, NULL, NULL, 0), MPROC_EINVAL);
        mproc_async_destroy(r);
    }
    /* a failed task: take gives its code */
    mproc_async *bad = submit(hp.pool, -8);
    void *out;
    assert_int_equal(mproc_async_take(bad, &out, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ETASK);
    assert_null(out);
    mproc_async_destroy(bad);
    free_pool(&hp);
}

/* ---- mproc_wait over pool results and the caller's own handle -------------------- */
/* The caller's own readiness source: a pipe's read end on POSIX, an event
   on Windows (pipes are not waitable there). */
typedef struct own_source {
#ifdef _WIN32
    HANDLE h;
#else
    int fds[2];
#endif
} own_source;

static void own_open(own_source *o)
{
#ifdef _WIN32
    o->h = CreateEventW(NULL, TRUE, FALSE, NULL);
    assert_non_null(o->h);
#else
    assert_int_equal(pipe(o->fds), 0);
#endif
}

static void *own_obj(own_source *o)
{
#ifdef _WIN32
    return &o->h;
#else
    return &o->fds[0];
#endif
}

static void own_signal(own_source *o)
{
#ifdef _WIN32
    assert_true(SetEvent(o->h));
#else
    assert_int_equal(write(o->fds[1], "x", 1), 1);
#endif
}

static void own_close(own_source *o)
{
#ifdef _WIN32
    CloseHandle(o->h);
#else
    close(o->fds[0]);
    close(o->fds[1]);
#endif
}

static void test_wait_on_results_and_own_input(void **state)
{
    (void)state;
    /* the hung task in a pool of its own: no other item waits behind it */
    hang_pool hp = make_pool(1, 0), work = make_pool(2, 0);
    own_source own;
    own_open(&own);
    mproc_async *hung = submit(hp.pool, 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    int items[3] = {1, 2, 3}, v;
    size_t idx;
    mproc_iter *it;
    assert_int_equal(mproc_pool_imap(work.pool, judge, items, sizeof *items, 3, sizeof v, 1, 0, &it), 0);
    mproc_waitable w[3] = {{MPROC_WAIT_ASYNC, hung, 0}, {MPROC_WAIT_ITER, it, 0},
                           {MPROC_WAIT_OS, own_obj(&own), 0}};
    /* the iterator's results come; the hung task and the own input do not */
    for (int k = 0; k < 3; k++) {
        assert_int_equal(mproc_wait(w, 3, TU_JOIN_TIMEOUT_MS), 1);
        assert_int_equal(w[0].ready, 0);
        assert_int_equal(w[1].ready, 1);
        assert_int_equal(w[2].ready, 0);
        assert_int_equal(mproc_iter_next(it, &v, &idx, 0), 0);
        assert_int_equal(v, 2 * items[k]);
    }
    /* exhausted: ready (the next step returns MPROC_EDONE at once) */
    assert_int_equal(mproc_wait(&w[1], 1, 0), 1);
    assert_int_equal(mproc_iter_next(it, &v, &idx, 0), MPROC_EDONE);
    mproc_iter_destroy(it);
    /* nothing ready: the caller's timeout */
    assert_int_equal(mproc_wait(w, 1, 50), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_wait(w + 2, 1, 50), MPROC_ETIMEDOUT);
    /* the caller's own input wakes the wait */
    own_signal(&own);
    mproc_waitable w2[2] = {{MPROC_WAIT_ASYNC, hung, 0}, {MPROC_WAIT_OS, own_obj(&own), 0}};
    assert_int_equal(mproc_wait(w2, 2, TU_JOIN_TIMEOUT_MS), 1);
    assert_int_equal(w2[0].ready, 0);
    assert_int_equal(w2[1].ready, 1);
    /* the task finishing wakes a wait that has no timeout */
    assert_int_equal(mproc_event_set(hp.never), 0);
    assert_int_equal(mproc_wait(w2, 1, MPROC_FOREVER), 1);
    assert_int_equal(w2[0].ready, 1);
    assert_int_equal(mproc_async_get(hung, NULL, NULL, 0), 0);
    /* a record stream with nothing in flight is ready: a step with
       timeout 0 pulls input */
    producer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->n = 4;
    p->fail_at = p->error_at = SIZE_MAX;
    assert_int_equal(mproc_pool_imap_stream(work.pool, reverse_record, produce, p, 2, 0, &it), 0);
    mproc_waitable ws = {MPROC_WAIT_ITER, it, 0};
    size_t got = 0;
    while (got < 4) {
        void *out;
        size_t len;
        assert_int_equal(mproc_wait(&ws, 1, TU_JOIN_TIMEOUT_MS), 1);
        int rc = mproc_iter_next_record(it, &out, &len, &idx, 0);
        if (rc == MPROC_ETIMEDOUT) continue;
        assert_int_equal(rc, 0);
        assert_int_equal(idx, got++);
        mproc_free(out);
    }
    assert_int_equal(mproc_wait(&ws, 1, 0), 1);
    assert_int_equal(mproc_iter_next_record(it, NULL, NULL, &idx, 0), MPROC_EDONE);
    mproc_iter_destroy(it);
    free(p);
    /* bad own handle */
    int bad_fd = -1;
    mproc_waitable wb = {MPROC_WAIT_OS, &bad_fd, 0};
#ifdef _WIN32
    HANDLE bad_h = INVALID_HANDLE_VALUE;
    wb.obj = &bad_h;
#endif
    assert_int_equal(mproc_wait(&wb, 1, 0), MPROC_EINVAL);
    mproc_async_destroy(hung);
    own_close(&own);
    free_pool(&hp);
    free_pool(&work);
}

/* ---- retries after worker deaths -------------------------------------------------------- */
static mproc_sem *deaths; /* a token per death still to come */

static int deaths_init(const void *arg, size_t len)
{
    mproc_ref ref;
    if (len != sizeof ref) return 1;
    memcpy(&ref, arg, sizeof ref);
    return mproc_sem_attach(&ref, &deaths) != 0;
}

/* Item 7 kills its worker while death tokens remain; others double. */
static int deadly_seven(const void *item, void *result)
{
    int v;
    memcpy(&v, item, sizeof v);
    if (v == 7 && mproc_sem_acquire(deaths, 0) == 0) exit(3);
    v *= 2;
    memcpy(result, &v, sizeof v);
    return 0;
}

static int deadly_apply(const void *in, size_t len, mproc_buf *out)
{
    int r;
    if (len != sizeof r) return 1;
    if (deadly_seven(in, &r)) return 2;
    return mproc_buf_append(out, &r, sizeof r);
}

typedef struct death_pool {
    mproc_pool *pool;
    mproc_sem *sem;
} death_pool;

static death_pool make_death_pool(unsigned tokens, int max_retries)
{
    death_pool dp;
    mproc_ref ref;
    mproc_pool_options opt = {0};
    assert_int_equal(mproc_sem_create(&dp.sem, tokens, 0), 0);
    assert_int_equal(mproc_sem_ref(dp.sem, &ref), 0);
    opt.processes = 2;
    opt.initializer = deaths_init;
    opt.initarg = &ref;
    opt.initarg_len = sizeof ref;
    opt.max_retries = max_retries;
    assert_int_equal(mproc_pool_create(&dp.pool, &opt), 0);
    return dp;
}

static void free_death_pool(death_pool *dp)
{
    mproc_pool_destroy(dp->pool);
    mproc_sem_destroy(dp->sem);
}

static void test_retries(void **state)
{
    (void)state;
    int seven = 7, in[20], out[20];
    void *res;
    size_t len;
    mproc_pool_stats st;
    mproc_task_error err;
    for (int i = 0; i < 20; i++) in[i] = i + 1;
    /* an apply that kills two workers, then runs: 2 retries are enough */
    death_pool dp = make_death_pool(2, 2);
    assert_int_equal(mproc_pool_apply(dp.pool, deadly_apply, &seven, sizeof seven, &res, &len), 0);
    assert_int_equal(*(int *)res, 14);
    mproc_free(res);
    assert_int_equal(mproc_pool_stats_get(dp.pool, &st), 0);
    assert_int_equal(st.retried, 2);
    assert_true(st.workers_replaced >= 2);
    /* a map item that kills one worker: run again, every result there */
    assert_int_equal(mproc_sem_release(dp.sem), 0);
    assert_int_equal(mproc_pool_map(dp.pool, deadly_seven, in, sizeof *in, 20, out, sizeof *out, 4), 0);
    for (int i = 0; i < 20; i++) assert_int_equal(out[i], 2 * in[i]);
    free_death_pool(&dp);
    /* three deaths, two retries: MPROC_ECHILD with the last death's message */
    dp = make_death_pool(3, 2);
    mproc_async *r;
    assert_int_equal(mproc_pool_apply_async(dp.pool, deadly_apply, &seven, sizeof seven, &r), 0);
    assert_int_equal(mproc_async_get(r, NULL, NULL, TU_JOIN_TIMEOUT_MS), MPROC_ECHILD);
    assert_int_equal(mproc_async_error(r, &err), 0);
    assert_non_null(strstr(err.message, "exited with code 3"));
    assert_non_null(strstr(err.message, "died 3 times"));
    mproc_async_destroy(r);
    free_death_pool(&dp);
    /* the default: no retry, the item fails */
    dp = make_death_pool(1, 0);
    assert_int_equal(mproc_pool_map(dp.pool, deadly_seven, in, sizeof *in, 20, out, sizeof *out, 4), MPROC_ECHILD);
    assert_int_equal(mproc_pool_last_error(dp.pool, &err), 0);
    assert_int_equal(err.index, 6);
    assert_int_equal(mproc_pool_stats_get(dp.pool, &st), 0);
    assert_int_equal(st.retried, 0);
    free_death_pool(&dp);
    mproc_pool_options bad = {0};
    mproc_pool *pool;
    bad.max_retries = -1;
    assert_int_equal(mproc_pool_create(&pool, &bad), MPROC_EINVAL);
}

/* ---- memory cap ------------------------------------------------------------------------ */
static void *hoard[64]; /* kept: reachable, so no leak checker complains */
static int nhoard;

/* Keeps (in MiB, the input's int) touched memory for good; returns the
   worker's pid and resident bytes after it. */
static int grow(const void *in, size_t len, mproc_buf *out)
{
    int mib;
    int64_t pid = mproc_current_pid();
    uint64_t rss = 0;
    if (len != sizeof mib || nhoard == 64) return 1;
    memcpy(&mib, in, sizeof mib);
    if (mib) {
        if (!(hoard[nhoard] = malloc((size_t)mib << 20))) return 2;
        memset(hoard[nhoard++], 1, (size_t)mib << 20);
    }
    if (mproc__os_rss_bytes(&rss)) return 3;
    if (mproc_buf_append(out, &pid, sizeof pid)) return 4;
    return mproc_buf_append(out, &rss, sizeof rss) ? 4 : 0;
}

/* Runs grow(mib) and gives the worker's pid and resident bytes. */
static void grow_in(mproc_pool *pool, int mib, int64_t *pid, uint64_t *rss)
{
    void *out;
    size_t len;
    assert_int_equal(mproc_pool_apply(pool, grow, &mib, sizeof mib, &out, &len), 0);
    assert_int_equal(len, sizeof *pid + sizeof *rss);
    memcpy(pid, out, sizeof *pid);
    memcpy(rss, (char *)out + sizeof *pid, sizeof *rss);
    mproc_free(out);
}

/* A worker whose resident memory passed max_worker_memory after a task is
   replaced; one below it is kept. */
static void test_memory_cap(void **state)
{
    (void)state;
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    mproc_pool_stats st;
    int64_t pid0, pid1, pid2, pid3;
    uint64_t base, rss;
    opt.processes = 1;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    grow_in(pool, 0, &pid0, &base); /* what a worker of this build takes */
    mproc_pool_destroy(pool);
    opt.max_worker_memory = (size_t)base + ((size_t)192 << 20);
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    grow_in(pool, 0, &pid0, &rss);
    grow_in(pool, 4, &pid1, &rss);
    assert_int_equal(pid1, pid0); /* below the cap: the same worker */
    grow_in(pool, 384, &pid2, &rss);
    assert_int_equal(pid2, pid0);
    assert_true(rss > opt.max_worker_memory);
    grow_in(pool, 0, &pid3, &rss); /* runs on the replacement */
    assert_true(pid3 != pid0);
    assert_true(rss < opt.max_worker_memory);
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    assert_int_equal(st.workers_replaced, 1);
    mproc_pool_destroy(pool);
}

/* Progress moves per item inside a chunk: 40 items in one chunk, the
   worker hanging at item 25. */
static void test_progress_inside_chunk(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 0);
    int in[40], out[40];
    mproc_iter *it;
    mproc_pool_stats st;
    for (int i = 0; i < 40; i++) in[i] = i + 1;
    in[25] = 0;
    in[10] = -3; /* one failed item before it: counted in failed, not twice */
    assert_int_equal(mproc_pool_imap(hp.pool, judge, in, sizeof *in, 40, sizeof *out, 40, 0, &it), 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_pool_stats_get(hp.pool, &st), 0);
    assert_int_equal(st.done, 0);
    /* the failure report may still be on its way: either way, counted once */
    assert_true(st.failed <= 1);
    assert_int_equal(st.done_in_flight + st.failed, 25);
    mproc_iter_destroy(it);
    free_pool(&hp);
}

/* ---- progress reported inside a task (mproc_task_progress) ----------------------------- */
/* A record of k sub-items: reports each as it goes, then (hang != 0)
   says so and waits for `never`, still running. Its result: k. */
static int report_each(const void *in, size_t len, mproc_buf *out)
{
    int k[2];
    if (len != sizeof k) return 99;
    memcpy(k, in, sizeof k);
    for (int i = 0; i < k[0]; i++)
        if (mproc_task_progress(1) != 0) return 98;
    if (k[1]) {
        mproc_event_set(started);
        if (mproc_event_wait(never, MPROC_FOREVER) != 0) return 97;
    }
    return mproc_buf_append(out, &k[0], sizeof k[0]);
}

/* A map item of two sub-items. */
static int report_two(const void *item, void *result)
{
    memcpy(result, item, sizeof(int));
    return mproc_task_progress(2);
}

static uint64_t progress_of(mproc_pool *pool)
{
    mproc_pool_stats st;
    assert_int_equal(mproc_pool_stats_get(pool, &st), 0);
    return st.progress;
}

/* The parent sees a record's sub-items while the record still runs, and
   keeps them once it finished; map items count theirs too. */
static void test_task_progress_inside_record(void **state)
{
    (void)state;
    hang_pool hp = make_pool(1, 0);
    int five[2] = {5, 1}, three[2] = {3, 0}, in[10], out[10];
    mproc_async *r;
    void *res;
    size_t len;
    assert_int_equal(progress_of(hp.pool), 0);
    assert_int_equal(mproc_pool_apply_async(hp.pool, report_each, five, sizeof five, &r), 0);
    assert_int_equal(mproc_event_wait(hp.started, TU_JOIN_TIMEOUT_MS), 0);
    /* reported before `started` was set: visible at once, with no message */
    assert_int_equal(progress_of(hp.pool), 5);
    assert_int_equal(mproc_async_ready(r), 0);
    assert_int_equal(mproc_event_set(hp.never), 0);
    assert_int_equal(mproc_async_get(r, &res, &len, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(*(int *)res, 5);
    mproc_free(res);
    mproc_async_destroy(r);
    assert_int_equal(progress_of(hp.pool), 5);
    assert_int_equal(mproc_pool_apply(hp.pool, report_each, three, sizeof three, &res, &len), 0);
    mproc_free(res);
    assert_int_equal(progress_of(hp.pool), 8);
    for (int i = 0; i < 10; i++) in[i] = i;
    assert_int_equal(mproc_pool_map(hp.pool, report_two, in, sizeof *in, 10, out, sizeof *out, 3), 0);
    assert_int_equal(progress_of(hp.pool), 28);
    free_pool(&hp);
}

/* Outside a task of a pool worker the call reports nothing and says so. */
static int init_progress_rc = 1;

static int progress_init(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    init_progress_rc = mproc_task_progress(1);
    return 0;
}

/* Result: the initializer's code and this task's own. */
static int progress_codes(const void *in, size_t len, mproc_buf *out)
{
    int rc[2] = {init_progress_rc, mproc_task_progress(1)};
    (void)in;
    (void)len;
    return mproc_buf_append(out, rc, sizeof rc);
}

static int progress_in_process(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return mproc_task_progress(1) == MPROC_ESTATE ? 0 : 1;
}

static void test_task_progress_outside_task(void **state)
{
    (void)state;
    mproc_pool *pool;
    mproc_pool_options opt = {0};
    mproc_process *p;
    void *res;
    size_t len;
    assert_int_equal(mproc_task_progress(1), MPROC_ESTATE);
    opt.processes = 1;
    opt.initializer = progress_init;
    assert_int_equal(mproc_pool_create(&pool, &opt), 0);
    assert_int_equal(mproc_pool_apply(pool, progress_codes, NULL, 0, &res, &len), 0);
    assert_int_equal(len, 2 * sizeof(int));
    assert_int_equal(((int *)res)[0], MPROC_ESTATE);
    assert_int_equal(((int *)res)[1], 0);
    mproc_free(res);
    assert_int_equal(progress_of(pool), 1); /* the task's, not the initializer's */
    mproc_pool_destroy(pool);
    assert_int_equal(mproc_process_create(&p, progress_in_process, NULL, 0, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
}

/* Reports four sub-items, then kills its worker while death tokens remain. */
static int report_then_die(const void *in, size_t len, mproc_buf *out)
{
    (void)in;
    (void)len;
    if (mproc_task_progress(4) != 0) return 98;
    if (mproc_sem_acquire(deaths, 0) == 0) exit(3);
    return mproc_buf_append(out, "ok", 2);
}

/* A task whose worker died takes its reports back: they come again only
   from the run that finishes. */
static void test_task_progress_death(void **state)
{
    (void)state;
    void *res;
    size_t len;
    death_pool dp = make_death_pool(1, 0);
    assert_int_equal(mproc_pool_apply(dp.pool, report_then_die, NULL, 0, &res, &len), MPROC_ECHILD);
    assert_int_equal(progress_of(dp.pool), 0);
    assert_int_equal(mproc_pool_apply(dp.pool, report_then_die, NULL, 0, &res, &len), 0);
    mproc_free(res);
    assert_int_equal(progress_of(dp.pool), 4);
    free_death_pool(&dp);
    /* retried after the death: counted once */
    dp = make_death_pool(1, 1);
    assert_int_equal(mproc_pool_apply(dp.pool, report_then_die, NULL, 0, &res, &len), 0);
    mproc_free(res);
    assert_int_equal(progress_of(dp.pool), 4);
    free_death_pool(&dp);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_outcomes),
        cmocka_unit_test(test_iter_outcomes),
        cmocka_unit_test(test_map_status),
        cmocka_unit_test(test_task_timeout_code),
        cmocka_unit_test(test_dropped_in_stats),
        cmocka_unit_test(test_size_limit_both_sides),
        cmocka_unit_test(test_processes_readable),
        cmocka_unit_test(test_terminate_running_item),
        cmocka_unit_test(test_stream_ordered),
        cmocka_unit_test(test_stream_unordered),
        cmocka_unit_test(test_stream_producer_error),
        cmocka_unit_test(test_map_and_imap_records),
        cmocka_unit_test(test_stream_terminated),
        cmocka_unit_test(test_apply_backpressure),
        cmocka_unit_test(test_missing_guard),
        cmocka_unit_test(test_null_stdin),
        cmocka_unit_test(test_windows_ctrl_c),
        cmocka_unit_test(test_reserve_commit_take),
        cmocka_unit_test(test_wait_on_results_and_own_input),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_progress_inside_chunk),
        cmocka_unit_test(test_task_progress_inside_record),
        cmocka_unit_test(test_task_progress_outside_task),
        cmocka_unit_test(test_task_progress_death),
    };
    return TU_RUN(argc, argv, tests);
}
