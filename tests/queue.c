/* Queue / SimpleQueue / JoinableQueue within a process and across real
   processes: order, sizes, bounds and timeouts, many producers and
   consumers, exit right after put, join before drain, a producer killed
   mid-message, refs, and mproc_wait on a queue. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

#define LONG_MS 120000

static int put_pattern(mproc_queue *q, size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p) return MPROC_ENOMEM;
    tu_fill(p, n, seed);
    int rc = mproc_queue_put(q, p, n, LONG_MS);
    free(p);
    return rc;
}

static void get_pattern(mproc_queue *q, size_t n, uint64_t seed)
{
    void *buf = NULL;
    size_t len = 12345;
    assert_int_equal(mproc_queue_get(q, &buf, &len, LONG_MS), 0);
    assert_int_equal(len, n);
    assert_true(tu_check(buf, len, seed));
    mproc_free(buf);
}

static int huge_ok(void)
{
#ifdef MPROC_TEST_NO_HUGE
    return 0;
#else
    return getenv("MPROC_TEST_SMALL") == NULL;
#endif
}

/* ---- in-process ------------------------------------------------------------- */
static void test_fifo_and_size(void **state)
{
    (void)state;
    mproc_queue *q;
    size_t n = 99;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, 0);
    static const size_t sizes[] = {0, 1, 7, 8, 9, 64, 4096, 65537, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        assert_int_equal(put_pattern(q, sizes[i], i), 0);
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, sizeof sizes / sizeof *sizes);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) get_pattern(q, sizes[i], i);
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, 0);
    /* many small ones wrap the ring several times */
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < 20000; i++) assert_int_equal(put_pattern(q, 100 + i % 300, i), 0);
        for (size_t i = 0; i < 20000; i++) get_pattern(q, 100 + i % 300, i);
    }
    mproc_queue_destroy(q);
    mproc_queue_destroy(NULL);
}

/* Lengths around a quarter of the ring (8 MiB), where whole records end
   and streams begin, each followed by a small message; a JoinableQueue's
   counts come out even. */
static void test_record_size_boundary(void **state)
{
    (void)state;
    mproc_queue *q;
    assert_int_equal(mproc_queue_create_ex(&q, 0, MPROC_QUEUE_JOINABLE), 0);
    size_t quarter = (size_t)2 << 20;
    for (size_t n = quarter - 40; n <= quarter + 8; n++) {
        assert_int_equal(put_pattern(q, n, n), 0);
        assert_int_equal(put_pattern(q, 3, n + 1), 0);
        get_pattern(q, n, n);
        get_pattern(q, 3, n + 1);
        assert_int_equal(mproc_queue_task_done(q), 0);
        assert_int_equal(mproc_queue_task_done(q), 0);
    }
    size_t size = 99;
    assert_int_equal(mproc_queue_size(q, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(mproc_queue_join(q, 10000), 0);
    mproc_queue_destroy(q);
}

static void test_timeouts_and_bounds(void **state)
{
    (void)state;
    mproc_queue *q;
    void *buf = NULL;
    size_t len;
    assert_int_equal(mproc_queue_create(&q, 2), 0);
    assert_int_equal(mproc_queue_get(q, &buf, &len, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_queue_get(q, &buf, &len, 30), MPROC_ETIMEDOUT);
    assert_null(buf);
    assert_int_equal(mproc_queue_put(q, "a", 1, 0), 0);
    assert_int_equal(mproc_queue_put(q, "b", 1, 0), 0);
    assert_int_equal(mproc_queue_put(q, "c", 1, 0), MPROC_ETIMEDOUT);  /* full */
    assert_int_equal(mproc_queue_put(q, "c", 1, 30), MPROC_ETIMEDOUT);
    get_pattern(q, 1, 'a' - 0); /* tu_fill(1 byte, seed) == seed */
    assert_int_equal(mproc_queue_put(q, "c", 1, 0), 0);
    get_pattern(q, 1, 'b');
    get_pattern(q, 1, 'c');
    /* a message larger than the ring cannot finish without a consumer */
    if (huge_ok()) {
        size_t big = (size_t)32 << 20;
        unsigned char *p = calloc(1, big);
        assert_non_null(p);
        assert_int_equal(mproc_queue_put(q, p, big, 50), MPROC_ETIMEDOUT);
        free(p);
        assert_int_equal(mproc_queue_get(q, &buf, &len, 30), MPROC_ETIMEDOUT);
        assert_int_equal(mproc_queue_put(q, "d", 1, 0), 0); /* still usable */
        get_pattern(q, 1, 'd');
    }
    mproc_queue_destroy(q);
}

static void test_kinds_and_bad_input(void **state)
{
    (void)state;
    mproc_queue *q = NULL;
    size_t n;
    void *buf;
    assert_int_equal(mproc_queue_create(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_create_ex(&q, 0, 0x100), MPROC_EINVAL);
    assert_int_equal(mproc_queue_create_ex(&q, 5, MPROC_QUEUE_SIMPLE), MPROC_EINVAL);
    assert_int_equal(mproc_queue_create_ex(&q, 0, MPROC_QUEUE_SIMPLE | MPROC_QUEUE_JOINABLE), MPROC_EINVAL);
    assert_null(q);
    assert_int_equal(mproc_queue_create_ex(&q, 0, MPROC_QUEUE_SIMPLE), 0);
    assert_int_equal(mproc_queue_size(q, &n), MPROC_ENOTSUP);
    assert_int_equal(mproc_queue_task_done(q), MPROC_ENOTSUP);
    assert_int_equal(mproc_queue_join(q, 0), MPROC_ENOTSUP);
    assert_int_equal(mproc_queue_put(q, NULL, 3, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_put(q, NULL, 0, 0), 0);
    get_pattern(q, 0, 0);
    assert_int_equal(mproc_queue_get(q, NULL, &n, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_close(q), 0);
    assert_int_equal(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_get(q, &buf, &n, 0), MPROC_ECLOSED);
    mproc_queue_destroy(q);
    assert_int_equal(mproc_queue_put(NULL, "x", 1, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_get(NULL, &buf, &n, 0), MPROC_EINVAL);
}

static void test_joinable_in_process(void **state)
{
    (void)state;
    mproc_queue *q;
    assert_int_equal(mproc_queue_create_ex(&q, 0, MPROC_QUEUE_JOINABLE), 0);
    assert_int_equal(mproc_queue_join(q, 0), 0);
    assert_int_equal(mproc_queue_task_done(q), MPROC_ESTATE);
    assert_int_equal(put_pattern(q, 3, 1), 0);
    assert_int_equal(mproc_queue_join(q, 20), MPROC_ETIMEDOUT);
    get_pattern(q, 3, 1);
    assert_int_equal(mproc_queue_join(q, 0), MPROC_ETIMEDOUT); /* got, not done */
    assert_int_equal(mproc_queue_task_done(q), 0);
    assert_int_equal(mproc_queue_join(q, 0), 0);
    assert_int_equal(mproc_queue_task_done(q), MPROC_ESTATE);
    mproc_queue_destroy(q);
}

static void test_refs_bad(void **state)
{
    (void)state;
    mproc_queue *q, *q2 = NULL;
    mproc_ref ref, bad;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(mproc_queue_ref(q, &ref), 0);
    memset(&bad, 0, sizeof bad);
    assert_int_equal(mproc_queue_attach(&bad, &q2), MPROC_EINVAL);
    bad = ref;
    bad.bytes[20] ^= 0x40;
    assert_int_equal(mproc_queue_attach(&bad, &q2), MPROC_EINVAL);
    mproc_conn *a, *b;
    assert_int_equal(mproc_pipe(&a, &b, 1), 0);
    assert_int_equal(mproc_conn_ref(a, &bad), 0);
    assert_int_equal(mproc_queue_attach(&bad, &q2), MPROC_EINVAL);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    assert_null(q2);
    /* attach in the creator: the same queue */
    assert_int_equal(mproc_queue_attach(&ref, &q2), 0);
    assert_int_equal(put_pattern(q, 10, 5), 0);
    get_pattern(q2, 10, 5);
    mproc_queue_destroy(q2);
    mproc_queue_destroy(q);
    assert_int_equal(mproc_queue_attach(&ref, &q2), MPROC_ENOENT);
}

/* ---- across processes ---------------------------------------------------------- */
typedef struct qarg {
    mproc_ref ref, ref2, ref3;
    uint32_t id, count, size, flags;
} qarg;

static int attach_arg(const void *argp, size_t len, qarg *a, mproc_queue **q)
{
    if (len != sizeof *a) return 10;
    memcpy(a, argp, sizeof *a);
    return mproc_queue_attach(&a->ref, q) ? 11 : 0;
}

/* A new queue (mproc_queue_create_ex) and a child's argument naming it
   (a.ref; the rest zero). */
static mproc_queue *queue_for_child(qarg *a, size_t maxsize, int flags)
{
    mproc_queue *q = NULL;
    assert_int_equal(mproc_queue_create_ex(&q, maxsize, flags), 0);
    memset(a, 0, sizeof *a);
    assert_int_equal(mproc_queue_ref(q, &a->ref), 0);
    return q;
}

/* Puts count messages {id, seq, padding} and exits at once. */
static int producer(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    unsigned char msg[256];
    for (uint32_t i = 0; i < a.count; i++) {
        size_t n = 8 + (i * 13) % 200;
        tu_fill(msg, n, ((uint64_t)a.id << 32) | i);
        memcpy(msg, &a.id, 4);
        memcpy(msg + 4, &i, 4);
        if (mproc_queue_put(q, msg, n, LONG_MS)) return 12;
    }
    mproc_queue_destroy(q);
    return 0;
}

#define MAXPROD 8
/* Gets until an empty message; checks that every producer's messages come
   in order; reports {count, sum of seq} on the second queue. */
static int consumer(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q, *out;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    if (mproc_queue_attach(&a.ref2, &out)) return 13;
    int64_t last[MAXPROD];
    for (int i = 0; i < MAXPROD; i++) last[i] = -1;
    uint64_t report[2] = {0, 0};
    for (;;) {
        void *buf;
        size_t n;
        if (mproc_queue_get(q, &buf, &n, LONG_MS)) return 14;
        if (n == 0) {
            mproc_free(buf);
            break;
        }
        uint32_t id, seq;
        memcpy(&id, buf, 4);
        memcpy(&seq, (unsigned char *)buf + 4, 4);
        int ok = n >= 8 && id < MAXPROD && (int64_t)seq > last[id] && n == 8 + (seq * 13) % 200 &&
                 tu_check((unsigned char *)buf + 8, n - 8, (((uint64_t)id << 32) | seq) + 8);
        mproc_free(buf);
        if (!ok) return 15;
        last[id] = seq;
        report[0]++;
        report[1] += seq;
    }
    rc = mproc_queue_put(out, report, sizeof report, LONG_MS) ? 16 : 0;
    mproc_queue_destroy(q);
    mproc_queue_destroy(out);
    return rc;
}

static void test_many_producers_consumers(void **state)
{
    (void)state;
    enum { P = 4, C = 3, M = 3000 };
    mproc_queue *q, *out;
    assert_int_equal(mproc_queue_create(&q, 64), 0); /* bounded: producers block too */
    assert_int_equal(mproc_queue_create(&out, 0), 0);
    qarg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_queue_ref(q, &a.ref), 0);
    assert_int_equal(mproc_queue_ref(out, &a.ref2), 0);
    a.count = M;
    mproc_process *pp[P], *cp[C];
    for (int i = 0; i < C; i++) cp[i] = tu_start(consumer, &a, sizeof a);
    for (int i = 0; i < P; i++) {
        a.id = (uint32_t)i;
        pp[i] = tu_start(producer, &a, sizeof a);
    }
    for (int i = 0; i < P; i++) {
        assert_int_equal(tu_join(pp[i]), 0);
        mproc_process_destroy(pp[i]);
    }
    for (int i = 0; i < C; i++) assert_int_equal(mproc_queue_put(q, NULL, 0, LONG_MS), 0);
    uint64_t total = 0, sum = 0;
    for (int i = 0; i < C; i++) {
        void *buf;
        size_t n;
        assert_int_equal(mproc_queue_get(out, &buf, &n, LONG_MS), 0);
        assert_int_equal(n, 16);
        uint64_t r[2];
        memcpy(r, buf, sizeof r);
        mproc_free(buf);
        total += r[0];
        sum += r[1];
    }
    for (int i = 0; i < C; i++) {
        assert_int_equal(tu_join(cp[i]), 0);
        mproc_process_destroy(cp[i]);
    }
    assert_int_equal(total, (uint64_t)P * M);
    assert_int_equal(sum, (uint64_t)P * ((uint64_t)M * (M - 1) / 2));
    mproc_queue_destroy(q);
    mproc_queue_destroy(out);
}

/* Python's traps: the producer exits right after its puts, and the parent
   joins it before reading anything. Nothing is lost, nothing blocks. */
static void test_exit_after_put_join_before_drain(void **state)
{
    (void)state;
    qarg a;
    mproc_queue *q = queue_for_child(&a, 0, 0);
    a.count = 20000; /* ~2 MB: far more than a pipe buffer */
    a.id = 1;
    mproc_process *p = tu_start(producer, &a, sizeof a);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    size_t n = 0;
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, a.count);
    for (uint32_t i = 0; i < a.count; i++) {
        void *buf;
        size_t len;
        assert_int_equal(mproc_queue_get(q, &buf, &len, 0), 0);
        uint32_t seq;
        memcpy(&seq, (unsigned char *)buf + 4, 4);
        assert_int_equal(seq, i);
        assert_int_equal(len, 8 + (i * 13) % 200);
        mproc_free(buf);
    }
    mproc_queue_destroy(q);
}

static int big_producer(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    static const size_t sizes[] = {0, 1, 1 << 20, 2 << 20, 3 << 20, 40 << 20};
    for (uint32_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (put_pattern(q, sizes[i], i)) return 12;
    if (a.flags && put_pattern(q, (size_t)256 << 20, 99)) return 13;
    mproc_queue_destroy(q);
    return 0;
}

static void test_big_messages_cross_process(void **state)
{
    (void)state;
    qarg a;
    mproc_queue *q = queue_for_child(&a, 0, 0);
    a.flags = (uint32_t)huge_ok();
    mproc_process *p = tu_start(big_producer, &a, sizeof a);
    static const size_t sizes[] = {0, 1, 1 << 20, 2 << 20, 3 << 20, 40 << 20};
    for (uint32_t i = 0; i < sizeof sizes / sizeof *sizes; i++) get_pattern(q, sizes[i], i);
    if (a.flags) get_pattern(q, (size_t)256 << 20, 99);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    mproc_queue_destroy(q);
}

/* Two small messages, then a message that must stream through the ring:
   blocked mid-message when killed. */
static int producer_then_block(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    if (put_pattern(q, 100, 1) || put_pattern(q, 100, 2)) return 12;
    put_pattern(q, (size_t)64 << 20, 3);
    return 14; /* not reached */
}

/* Once p's big message has begun (it is counted once its first chunk is
   in), kills p: the partial message is discarded, never delivered, and
   the queue goes on. */
static void kill_mid_message(mproc_queue *q, mproc_process *p)
{
    mproc_waitable w = {MPROC_WAIT_QUEUE, q, 0};
    assert_int_equal(mproc_wait(&w, 1, LONG_MS), 1);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), 0);
    mproc_process_destroy(p);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(mproc_queue_get(q, &buf, &len, 200), MPROC_ETIMEDOUT);
    assert_null(buf);
    assert_int_equal(put_pattern(q, 50, 4), 0);
    get_pattern(q, 50, 4);
}

static void test_producer_killed_mid_message(void **state)
{
    (void)state;
    qarg a;
    mproc_queue *q = queue_for_child(&a, 0, 0);
    mproc_process *p = tu_start(producer_then_block, &a, sizeof a);
    get_pattern(q, 100, 1);
    get_pattern(q, 100, 2);
    kill_mid_message(q, p);
    size_t n = 9;
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, 0);
    mproc_queue_destroy(q);
}

/* Enough puts or gets in a row that their owner keeps the lock between
   calls (ring.c: BIAS_AFTER, where the system has the fence for it). A
   run keeps it only while nobody sleeps on the queue, so the other side
   waits for the run's end on another queue. */
#define KEPT_RUN 200

/* A run of small messages (the put lock kept), "ran" on ref3; idle until
   told on ref2; another run and "ran", then a message that streams and
   blocks mid-way (the put lock held inside). */
static int producer_keeps_lock(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q, *ctl, *ran;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    if (mproc_queue_attach(&a.ref2, &ctl) || mproc_queue_attach(&a.ref3, &ran)) return 13;
    for (uint32_t i = 0; i < KEPT_RUN; i++)
        if (put_pattern(q, 40, i)) return 12;
    if (put_pattern(ran, 1, 0)) return 17;
    void *buf;
    size_t n;
    if (mproc_queue_get(ctl, &buf, &n, LONG_MS)) return 14;
    mproc_free(buf);
    for (uint32_t i = 0; i < KEPT_RUN; i++)
        if (put_pattern(q, 40, 1000 + i)) return 15;
    if (put_pattern(ran, 1, 1)) return 18;
    put_pattern(q, (size_t)64 << 20, 3);
    return 16; /* not reached */
}

/* A lock kept by a live owner that sits idle is taken from it when
   another process needs it; one kept by an owner that dies inside it
   mid-message is taken over, and the stream it cut short is discarded. */
static void test_kept_locks_revoked_and_taken_over(void **state)
{
    (void)state;
    mproc_queue *q, *ctl, *ran;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(mproc_queue_create(&ctl, 0), 0);
    assert_int_equal(mproc_queue_create(&ran, 0), 0);
    qarg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_queue_ref(q, &a.ref), 0);
    assert_int_equal(mproc_queue_ref(ctl, &a.ref2), 0);
    assert_int_equal(mproc_queue_ref(ran, &a.ref3), 0);
    mproc_process *p = tu_start(producer_keeps_lock, &a, sizeof a);
    get_pattern(ran, 1, 0);
    for (uint32_t i = 0; i < KEPT_RUN; i++) get_pattern(q, 40, i); /* our get lock kept */
    /* the producer is alive and idle, its put lock kept: ours to take */
    assert_int_equal(put_pattern(q, 24, 77), 0);
    get_pattern(q, 24, 77);
    assert_int_equal(put_pattern(ctl, 1, 0), 0); /* go on: it takes the put lock back */
    get_pattern(ran, 1, 1);
    for (uint32_t i = 0; i < KEPT_RUN; i++) get_pattern(q, 40, 1000 + i);
    kill_mid_message(q, p);
    mproc_queue_destroy(ran);
    mproc_queue_destroy(ctl);
    mproc_queue_destroy(q);
}

/* A run of KEPT_RUN messages of 40 bytes (the put lock kept), then one
   of each size from 0 to a.size (seed: its size). */
static int producer_each_size(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    for (uint32_t i = 0; i < KEPT_RUN; i++)
        if (put_pattern(q, 40, i)) return 12;
    for (uint32_t n = 0; n <= a.size; n++)
        if (put_pattern(q, n, n)) return 13;
    mproc_queue_destroy(q);
    return 0;
}

/* The kept-lock get copies up to 64 bytes with moves of its own for each
   range of sizes, into the thread's spare block when that suits the
   message: every size up to it and past it arrives whole. All is put
   before the first get, so both locks are kept. */
static void test_kept_lock_every_small_size(void **state)
{
    (void)state;
    qarg a;
    mproc_queue *q = queue_for_child(&a, 0, 0);
    a.size = 140;
    mproc_process *p = tu_start(producer_each_size, &a, sizeof a);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    for (uint32_t i = 0; i < KEPT_RUN; i++) get_pattern(q, 40, i);
    for (uint32_t n = 0; n <= a.size; n++) get_pattern(q, n, n);
    mproc_queue_destroy(q);
}

static int worker_task_done(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    for (uint32_t i = 0; i < a.count; i++) {
        void *buf;
        size_t n;
        if (mproc_queue_get(q, &buf, &n, LONG_MS)) return 12;
        mproc_free(buf);
        if (mproc_queue_task_done(q)) return 13;
    }
    mproc_queue_destroy(q);
    return 0;
}

static void test_joinable_cross_process(void **state)
{
    (void)state;
    qarg a;
    mproc_queue *q = queue_for_child(&a, 0, MPROC_QUEUE_JOINABLE);
    a.count = 500;
    for (uint32_t i = 0; i < a.count; i++) assert_int_equal(put_pattern(q, 32, i), 0);
    mproc_process *p = tu_start(worker_task_done, &a, sizeof a);
    assert_int_equal(mproc_queue_join(q, LONG_MS), 0);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    assert_int_equal(mproc_queue_task_done(q), MPROC_ESTATE);
    mproc_queue_destroy(q);
}

static int put_one_later(const void *argp, size_t len)
{
    qarg a;
    mproc_queue *q;
    int rc = attach_arg(argp, len, &a, &q);
    if (rc) return rc;
    rc = put_pattern(q, 5, 5) ? 12 : 0;
    mproc_queue_destroy(q);
    return rc;
}

static void test_wait_mixed(void **state)
{
    (void)state;
    mproc_queue *q;
    mproc_conn *r, *w;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    mproc_waitable items[3] = {{MPROC_WAIT_CONN, r, 0}, {MPROC_WAIT_QUEUE, q, 0}};
    assert_int_equal(mproc_wait(items, 2, 30), MPROC_ETIMEDOUT);
    qarg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_queue_ref(q, &a.ref), 0);
    mproc_process *p = tu_start(put_one_later, &a, sizeof a);
    assert_int_equal(mproc_wait(items, 2, LONG_MS), 1);
    assert_int_equal(items[0].ready, 0);
    assert_int_equal(items[1].ready, 1);
    get_pattern(q, 5, 5);
    items[2].kind = MPROC_WAIT_PROCESS;
    items[2].obj = p;
    assert_int_equal(mproc_wait(&items[2], 1, LONG_MS), 1);
    assert_int_equal(tu_join(p), 0);
    assert_int_equal(mproc_wait(items, 3, 0), 1); /* only the ended process */
    assert_int_equal(items[2].ready, 1);
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_queue_destroy(q);
}

/* ---- Python parity (issue 15): empty/full, size after close, shutdown ---------- */
static void test_empty_full_closed(void **state)
{
    (void)state;
    mproc_queue *q, *s;
    size_t n = 0;
    assert_int_equal(mproc_queue_create(&q, 2), 0);
    assert_int_equal(mproc_queue_empty(q), 1);
    assert_int_equal(mproc_queue_full(q), 0);
    assert_int_equal(put_pattern(q, 10, 1), 0);
    assert_int_equal(mproc_queue_empty(q), 0);
    assert_int_equal(mproc_queue_full(q), 0);
    assert_int_equal(put_pattern(q, 10, 2), 0);
    assert_int_equal(mproc_queue_full(q), 1);
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(mproc_queue_close(q), 0);
    assert_int_equal(mproc_queue_size(q, &n), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_empty(q), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_full(q), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_shutdown(q, 0), MPROC_ECLOSED);
    mproc_queue_destroy(q);
    /* SimpleQueue: no size, but empty and full */
    assert_int_equal(mproc_queue_create_ex(&s, 0, MPROC_QUEUE_SIMPLE), 0);
    assert_int_equal(mproc_queue_empty(s), 1);
    assert_int_equal(put_pattern(s, 3, 3), 0);
    assert_int_equal(mproc_queue_empty(s), 0);
    assert_int_equal(mproc_queue_full(s), 0);
    assert_int_equal(mproc_queue_size(s, &n), MPROC_ENOTSUP);
    get_pattern(s, 3, 3);
    assert_int_equal(mproc_queue_empty(s), 1);
    mproc_queue_destroy(s);
    assert_int_equal(mproc_queue_empty(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_queue_full(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_queue_shutdown(NULL, 0), MPROC_EINVAL);
}

static void test_shutdown_graceful_in_process(void **state)
{
    (void)state;
    mproc_queue *q;
    void *buf;
    size_t len;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(put_pattern(q, 100, 1), 0);
    assert_int_equal(put_pattern(q, 3 << 20, 2), 0); /* streamed */
    assert_int_equal(mproc_queue_shutdown(q, 2), MPROC_EINVAL);
    assert_int_equal(mproc_queue_shutdown(q, 0), 0);
    assert_int_equal(mproc_queue_put(q, "x", 1, 0), MPROC_ESHUTDOWN);
    mproc_waitable w = {MPROC_WAIT_QUEUE, q, 0};
    assert_int_equal(mproc_wait(&w, 1, 0), 1); /* messages left */
    get_pattern(q, 100, 1);
    get_pattern(q, 3 << 20, 2);
    assert_int_equal(mproc_queue_empty(q), 1);
    assert_int_equal(mproc_wait(&w, 1, LONG_MS), 1); /* ready: get says why */
    assert_int_equal(mproc_queue_get(q, &buf, &len, MPROC_FOREVER), MPROC_ESHUTDOWN);
    assert_int_equal(mproc_queue_shutdown(q, 0), 0); /* again: allowed */
    mproc_queue_destroy(q);
}

static void test_shutdown_immediate_discards(void **state)
{
    (void)state;
    mproc_queue *q;
    void *buf;
    size_t len, n = 9;
    assert_int_equal(mproc_queue_create_ex(&q, 0, MPROC_QUEUE_JOINABLE), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(put_pattern(q, 1000, (uint64_t)i), 0);
    assert_int_equal(put_pattern(q, 5 << 20, 9), 0);
    assert_int_equal(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_queue_shutdown(q, 1), 0);
    assert_int_equal(mproc_queue_size(q, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mproc_queue_join(q, LONG_MS), 0); /* discarded ones count as done */
    assert_int_equal(mproc_queue_get(q, &buf, &len, 0), MPROC_ESHUTDOWN);
    assert_int_equal(mproc_queue_put(q, "x", 1, 0), MPROC_ESHUTDOWN);
    assert_int_equal(mproc_queue_shutdown(q, 0), 0); /* stays immediate */
    mproc_queue_destroy(q);
}

typedef struct shut_arg {
    mproc_ref q, started;
    int op; /* 0: get, 1: put */
} shut_arg;

/* Announces itself, then blocks in get (empty queue) or put (full queue)
   until the parent shuts the queue down: 0 if that call said so. */
static int blocked_until_shutdown(const void *arg, size_t len)
{
    const shut_arg *a = arg;
    mproc_queue *q;
    mproc_sem *started;
    void *buf = NULL;
    size_t n;
    if (len != sizeof *a || mproc_queue_attach(&a->q, &q) || mproc_sem_attach(&a->started, &started))
        return 2;
    mproc_sem_release(started);
    int rc = a->op ? mproc_queue_put(q, "y", 1, LONG_MS) : mproc_queue_get(q, &buf, &n, LONG_MS);
    mproc_free(buf);
    mproc_queue_destroy(q);
    mproc_sem_destroy(started);
    return rc == MPROC_ESHUTDOWN ? 0 : 3;
}

/* Blocked getters and putters in other processes wake with ESHUTDOWN. */
static void test_shutdown_wakes_blocked(void **state)
{
    (void)state;
    for (int op = 0; op < 2; op++) {
        mproc_queue *q;
        mproc_sem *started;
        shut_arg a;
        mproc_process *p[3];
        assert_int_equal(mproc_queue_create(&q, 1), 0);
        if (op) assert_int_equal(put_pattern(q, 8, 8), 0); /* full */
        assert_int_equal(mproc_sem_create(&started, 0, 0), 0);
        a.op = op;
        assert_int_equal(mproc_queue_ref(q, &a.q), 0);
        assert_int_equal(mproc_sem_ref(started, &a.started), 0);
        for (int i = 0; i < 3; i++) p[i] = tu_start(blocked_until_shutdown, &a, sizeof a);
        for (int i = 0; i < 3; i++) assert_int_equal(mproc_sem_acquire(started, LONG_MS), 0);
        /* Each child is in its call now or about to be: either way the
           call must end with ESHUTDOWN, never with its 120 s timeout (the
           pause only makes the blocked case the likely one). */
        mproc__os_sleep_ms(100);
        assert_int_equal(mproc_queue_shutdown(q, 0), 0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(tu_join(p[i]), 0);
            mproc_process_destroy(p[i]);
        }
        if (op) get_pattern(q, 8, 8); /* graceful: what was put still comes */
        mproc_queue_destroy(q);
        mproc_sem_destroy(started);
    }
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_size),
        cmocka_unit_test(test_record_size_boundary),
        cmocka_unit_test(test_timeouts_and_bounds),
        cmocka_unit_test(test_kinds_and_bad_input),
        cmocka_unit_test(test_joinable_in_process),
        cmocka_unit_test(test_refs_bad),
        cmocka_unit_test(test_many_producers_consumers),
        cmocka_unit_test(test_exit_after_put_join_before_drain),
        cmocka_unit_test(test_big_messages_cross_process),
        cmocka_unit_test(test_producer_killed_mid_message),
        cmocka_unit_test(test_kept_locks_revoked_and_taken_over),
        cmocka_unit_test(test_kept_lock_every_small_size),
        cmocka_unit_test(test_joinable_cross_process),
        cmocka_unit_test(test_wait_mixed),
        cmocka_unit_test(test_empty_full_closed),
        cmocka_unit_test(test_shutdown_graceful_in_process),
        cmocka_unit_test(test_shutdown_immediate_discards),
        cmocka_unit_test(test_shutdown_wakes_blocked),
    };
    return TU_RUN(argc, argv, tests);
}
