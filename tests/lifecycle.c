/* Whole-library lifecycle: a process holding a Lock and an RLock, with a
   Queue full of messages, shared memory under a generated name and a busy
   Pool, is killed with SIGKILL (TerminateProcess on Windows). Afterwards no
   worker of its pool survives, nor the workers' OS parent (with the
   forkserver start method: the doomed process's own forkserver), and its
   shared memory is gone from the system. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

enum { WORKERS = 2 };

/* What the doomed process reports before it is killed. */
typedef struct report {
    char shm_name[128];
    int64_t workers[WORKERS];
    int64_t parents[WORKERS]; /* the workers' OS parents */
} report;

typedef struct pid_table {
    mproc_ref lock_ref, shm_ref;
} pid_table;

/* Pool initializer: each worker writes its pid and its OS parent's pid
   into the shared table. */
static int record_worker_pid(const void *arg, size_t len)
{
    pid_table t;
    mproc_lock *l;
    mproc_shm *s;
    if (len != sizeof t) return 1;
    memcpy(&t, arg, sizeof t);
    if (mproc_lock_attach(&t.lock_ref, &l) || mproc_shm_attach(&t.shm_ref, &s)) return 2;
    int64_t *slots = mproc_shm_ptr(s);
    mproc_lock_acquire(l, MPROC_FOREVER);
    for (int i = 0; i < WORKERS; i++)
        if (slots[i] == 0) {
            slots[WORKERS + i] = mproc__os_getppid();
            slots[i] = mproc_current_pid();
            break;
        }
    mproc_lock_release(l);
    return 0;
}

/* A task that keeps its worker busy until the worker is killed. */
static int busy_forever(const void *in, size_t in_len, mproc_buf *out)
{
    (void)in; (void)in_len; (void)out;
    for (;;) mproc__os_sleep_ms(1000);
    return 0;
}

static int write_report(const char *path, const report *r)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return 1;
    size_t n = fwrite(r, sizeof *r, 1, f);
    fclose(f);
    return n == 1 && rename(tmp, path) == 0 ? 0 : 1;
}

/* The doomed process: takes every kind of resource, reports, then waits
   to be killed. arg: the report file's path. */
static int hold_everything(const void *arg, size_t len)
{
    char path[256];
    report r;
    mproc_lock *lock, *table_lock;
    mproc_rlock *rlock;
    mproc_queue *q;
    mproc_shm *named, *table;
    mproc_pool *pool;
    mproc_async *busy[WORKERS];
    pid_table t;
    memset(&r, 0, sizeof r);
    if (len >= sizeof path) return 2;
    memcpy(path, arg, len);
    path[len] = '\0';
    if (mproc_lock_create(&lock) || mproc_lock_acquire(lock, 0)) return 3;
    if (mproc_rlock_create(&rlock) || mproc_rlock_acquire(rlock, 0)) return 4;
    if (mproc_queue_create(&q, 0)) return 5;
    for (int i = 0; i < 100; i++)
        if (mproc_queue_put(q, "message", 7, 0)) return 6;
    if (mproc_shm_create(&named, NULL, 1 << 16)) return 7;
    snprintf(r.shm_name, sizeof r.shm_name, "%s", mproc_shm_name(named));
    /* the workers' pids, written by the pool initializer */
    if (mproc_lock_create(&table_lock) || mproc_shm_create(&table, NULL, 4096)) return 8;
    memset(mproc_shm_ptr(table), 0, 4096);
    if (mproc_lock_ref(table_lock, &t.lock_ref) || mproc_shm_ref(table, &t.shm_ref)) return 9;
    mproc_pool_options opt = {0};
    opt.processes = WORKERS;
    opt.initializer = record_worker_pid;
    opt.initarg = &t;
    opt.initarg_len = sizeof t;
    if (mproc_pool_create(&pool, &opt)) return 10;
    for (int i = 0; i < WORKERS; i++)
        if (mproc_pool_apply_async(pool, busy_forever, NULL, 0, &busy[i])) return 11;
    /* wait until both workers have written their pids */
    volatile int64_t *slots = mproc_shm_ptr(table);
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    while ((slots[0] == 0 || slots[1] == 0) && mproc__os_now_ms() < deadline) mproc__os_sleep_ms(5);
    for (int i = 0; i < WORKERS; i++) {
        r.workers[i] = slots[i];
        r.parents[i] = slots[WORKERS + i];
    }
    if (write_report(path, &r)) return 12;
    for (;;) mproc__os_sleep_ms(1000);
    return 0;
}

static int read_report(const char *path, report *r)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    size_t n = fread(r, sizeof *r, 1, f);
    fclose(f);
    return n == 1 ? 0 : 1;
}

static void test_sigkill_leaves_nothing(void **state)
{
    (void)state;
    char path[64];
    report r;
    snprintf(path, sizeof path, "lifecycle-%lld.bin", (long long)mproc_current_pid());
    remove(path);
    mproc_process *p = tu_start(hold_everything, path, strlen(path));
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    while (read_report(path, &r) != 0 && mproc_process_is_alive(p) == 1 &&
           mproc__os_now_ms() < deadline)
        mproc__os_sleep_ms(10);
    assert_int_equal(read_report(path, &r), 0);
    remove(path);
    assert_true(r.workers[0] > 0 && r.workers[1] > 0 && r.parents[0] > 0 && r.parents[1] > 0);
    assert_int_equal(mproc__os_pid_alive(r.workers[0]), 1);
    /* while it lives, its generated name opens from any process */
    mproc_shm *s = NULL;
    assert_int_equal(mproc_shm_open(&s, r.shm_name), 0);
    mproc_shm_destroy(s);

    /* Every child of the workers' parent goes too: with the forkserver,
       its spares as well (where the OS lists children). */
    int64_t kin[16];
    size_t nkin = tu_children_of(r.parents[0], kin, 16);

    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);

    /* Workers and the name go within moments; allow a loaded machine. */
    deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    int gone = 0;
    while (!gone && mproc__os_now_ms() < deadline) {
        int rc = mproc_shm_open(&s, r.shm_name);
        if (rc == 0) mproc_shm_destroy(s);
        gone = rc == MPROC_ENOENT && !mproc__os_pid_alive(r.workers[0]) &&
               !mproc__os_pid_alive(r.workers[1]) && !mproc__os_pid_alive(r.parents[0]) &&
               !mproc__os_pid_alive(r.parents[1]);
        for (size_t i = 0; i < nkin; i++) gone = gone && !mproc__os_pid_alive(kin[i]);
        if (!gone) mproc__os_sleep_ms(20);
    }
    for (size_t i = 0; i < nkin; i++) assert_int_equal(mproc__os_pid_alive(kin[i]), 0);
    assert_int_equal(mproc__os_pid_alive(r.workers[0]), 0);
    assert_int_equal(mproc__os_pid_alive(r.workers[1]), 0);
    assert_int_equal(mproc__os_pid_alive(r.parents[0]), 0);
    assert_int_equal(mproc__os_pid_alive(r.parents[1]), 0);
    assert_int_equal(mproc_shm_open(&s, r.shm_name), MPROC_ENOENT);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sigkill_leaves_nothing),
};
TU_MAIN(tests)
