/* Lock cost: mproc's Lock against the raw OS primitives in the same run
   (a process-shared pthread mutex; an unnamed process-shared semaphore),
   uncontended in one process and contended by two processes pinned to
   CPUs 0 and 1 incrementing one shared counter; Python's
   multiprocessing.Lock for reference (bench/py_lock.py). Interleaved
   rounds, medians. */
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mproc.h"

enum { ROUNDS = 7, PAIRS = 10000000, CONTENDED = 1000000 };
enum { K_MPROC, K_MUTEX, K_SEM, NK };
static const char *kind_name[NK] = {"mproc Lock", "pthread mutex (PROCESS_SHARED)",
                                    "unnamed sem (pshared) sem_wait+sem_post"};

/* What the contended workers share: the raw primitives, the counter, the
   start flag and each worker's timing. */
typedef struct shared {
    pthread_mutex_t mutex;
    sem_t sem;
    volatile int go, ready;
    volatile long counter;
    uint64_t t0[2], t1[2];
} shared;

typedef struct warg {
    mproc_ref lock, shm;
    int kind, cpu;
} warg;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_lock: %s: %s\n", what, mproc_strerror(rc));
    exit(1);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set); /* best effort */
}

static void init_raw(shared *sh)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (pthread_mutex_init(&sh->mutex, &ma) != 0 || sem_init(&sh->sem, 1, 1) != 0) {
        fprintf(stderr, "bench_lock: raw primitives unavailable\n");
        exit(1);
    }
    pthread_mutexattr_destroy(&ma);
}

/* n acquire+release pairs of one kind; ns per pair. */
static double pairs(int kind, mproc_lock *l, shared *sh, long n)
{
    uint64_t t0 = bench_now_ns();
    switch (kind) {
    case K_MPROC:
        for (long i = 0; i < n; i++) {
            mproc_lock_acquire(l, MPROC_FOREVER);
            mproc_lock_release(l);
        }
        break;
    case K_MUTEX:
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&sh->mutex);
            pthread_mutex_unlock(&sh->mutex);
        }
        break;
    default:
        for (long i = 0; i < n; i++) {
            sem_wait(&sh->sem);
            sem_post(&sh->sem);
        }
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}

static int worker(const void *arg, size_t len)
{
    warg buf; /* the argument bytes carry no alignment promise */
    const warg *a = &buf;
    mproc_lock *l;
    mproc_shm *s;
    if (len != sizeof buf) return 1;
    memcpy(&buf, arg, sizeof buf);
    if (mproc_lock_attach(&a->lock, &l) || mproc_shm_attach(&a->shm, &s)) return 1;
    shared *sh = mproc_shm_ptr(s);
    pin(a->cpu);
    __atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {}
    sh->t0[a->cpu] = bench_now_ns();
    for (int i = 0; i < CONTENDED; i++) {
        if (a->kind == K_MPROC) {
            mproc_lock_acquire(l, MPROC_FOREVER);
            sh->counter++;
            mproc_lock_release(l);
        } else {
            pthread_mutex_lock(&sh->mutex);
            sh->counter++;
            pthread_mutex_unlock(&sh->mutex);
        }
    }
    sh->t1[a->cpu] = bench_now_ns();
    mproc_shm_destroy(s);
    mproc_lock_destroy(l);
    return 0;
}

/* Two pinned workers, CONTENDED increments each; ns per increment. */
static double contended(int kind, mproc_lock *l, mproc_shm *s)
{
    shared *sh = mproc_shm_ptr(s);
    mproc_process *p[2];
    sh->go = sh->ready = 0;
    sh->counter = 0;
    for (int i = 0; i < 2; i++) {
        warg a;
        memset(&a, 0, sizeof a);
        a.kind = kind;
        a.cpu = i;
        mproc_lock_ref(l, &a.lock);
        mproc_shm_ref(s, &a.shm);
        int rc = mproc_process_create(&p[i], worker, &a, sizeof a, NULL);
        if (rc == 0) rc = mproc_process_start(p[i]);
        if (rc) die("start", rc);
    }
    while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < 2) sched_yield();
    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        int code = -1;
        if (mproc_process_join(p[i], MPROC_FOREVER) || mproc_process_exitcode(p[i], &code) || code)
            die("worker", MPROC_ECHILD);
        mproc_process_destroy(p[i]);
    }
    if (sh->counter != 2L * CONTENDED) {
        fprintf(stderr, "bench_lock: counter %ld, expected %ld\n", sh->counter, 2L * CONTENDED);
        exit(1);
    }
    uint64_t start = sh->t0[0] < sh->t0[1] ? sh->t0[0] : sh->t0[1];
    uint64_t end = sh->t1[0] > sh->t1[1] ? sh->t1[0] : sh->t1[1];
    return (double)(end - start) / (2.0 * CONTENDED);
}

/* Python's numbers: "py_uncontended_ns X" and "py_contended_ns Y" lines. */
static int python_numbers(double *unc, double *con)
{
    const char *py = bench_python();
    char cmd[512], out[1024];
    if (!py) return 0;
    snprintf(cmd, sizeof cmd, "%s %s/py_lock.py", py, MPROC_BENCH_DIR);
    if (bench_capture(cmd, out, sizeof out) != 0) return 0;
    const char *u = strstr(out, "py_uncontended_ns "), *c = strstr(out, "py_contended_ns ");
    return u && c && sscanf(u, "py_uncontended_ns %lf", unc) == 1 &&
           sscanf(c, "py_contended_ns %lf", con) == 1;
}

/* How late a 10 ms timed wait returns (Event and held Lock); ms. */
static void timed_wait_lateness(double *med, double *worst)
{
    enum { N = 40 };
    double late[N];
    mproc_event *e;
    mproc_lock *l;
    if (mproc_event_create(&e) || mproc_lock_create(&l) || mproc_lock_acquire(l, 0))
        die("timed wait setup", MPROC_EOS);
    *worst = 0;
    for (int i = 0; i < N; i++) {
        uint64_t t0 = bench_now_ns();
        int rc = (i & 1) ? mproc_lock_acquire(l, 10) : mproc_event_wait(e, 10);
        late[i] = (double)(bench_now_ns() - t0) / 1e6 - 10.0;
        if (rc != MPROC_ETIMEDOUT || late[i] < 0) die("timed wait", rc);
        if (late[i] > *worst) *worst = late[i];
    }
    *med = bench_median(late, N);
    mproc_event_destroy(e);
    mproc_lock_destroy(l);
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    mproc_lock *l;
    mproc_shm *s;
    int rc = mproc_lock_create(&l);
    if (rc == 0) rc = mproc_shm_create(&s, NULL, sizeof(shared));
    if (rc) die("create", rc);
    shared *sh = mproc_shm_ptr(s);
    init_raw(sh);

    static double unc[NK][ROUNDS], con[2][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < NK; k++) unc[k][r] = pairs(k, l, sh, PAIRS);
        con[K_MPROC][r] = contended(K_MPROC, l, s);
        con[K_MUTEX][r] = contended(K_MUTEX, l, s);
    }
    double m[NK], c[2];
    for (int k = 0; k < NK; k++) m[k] = bench_median(unc[k], ROUNDS);
    for (int k = 0; k < 2; k++) c[k] = bench_median(con[k], ROUNDS);
    double py_unc = 0, py_con = 0;
    int have_py = python_numbers(&py_unc, &py_con);

    bench_print_header("Lock: mproc vs raw OS primitives vs Python");
    printf("Uncontended: %d acquire+release pairs in one process; contended: 2 processes "
           "pinned to CPU 0/1, %d lock/counter++/unlock each. Medians of %d interleaved rounds.\n\n",
           PAIRS, CONTENDED, ROUNDS);
    printf("| case | ns per pair / op | pairs or ops per s | mproc Lock vs this |\n|---|---|---|---|\n");
    for (int k = 0; k < NK; k++)
        printf("| uncontended: %s | %.1f | %.0f | %.2fx |\n", kind_name[k], m[k], 1e9 / m[k],
               m[K_MPROC] / m[k]);
    if (have_py)
        printf("| uncontended: Python mp.Lock acquire()+release() | %.1f | %.0f | %.3fx |\n", py_unc,
               1e9 / py_unc, m[K_MPROC] / py_unc);
    for (int k = 0; k < 2; k++)
        printf("| contended: %s | %.1f | %.0f | %.2fx |\n", kind_name[k], c[k], 1e9 / c[k],
               c[K_MPROC] / c[k]);
    if (have_py)
        printf("| contended: Python mp.Lock, 2 processes | %.1f | %.0f | %.3fx |\n", py_con,
               1e9 / py_con, c[K_MPROC] / py_con);
    if (!have_py) printf("\n(Python reference skipped: /usr/bin/python3 not found or failed)\n");
    double late_med, late_max;
    timed_wait_lateness(&late_med, &late_max);
    printf("\nTimed waits of 10 ms (Event.wait, Lock.acquire on a held lock), 40 samples: "
           "returned %.3f ms late (median), %.3f ms (worst); never early.\n", late_med, late_max);
    printf("\nGoals: uncontended <= 1.5x the raw primitive, contended <= 1.5x the raw "
           "process-shared mutex (a ratio below 1 means mproc is faster).\n");
    pthread_mutex_destroy(&sh->mutex);
    sem_destroy(&sh->sem);
    mproc_shm_destroy(s);
    mproc_lock_destroy(l);
    return 0;
}
