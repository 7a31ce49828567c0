/* The process pool against Python's multiprocessing.Pool (spawn, Debian's
   /usr/bin/python3) and against a minimal C pool written here (2 forked
   workers fed over pipes: batched, and one message per task with 16 in
   flight), all in one run, interleaved in rounds; medians.
   Rows: map of x*2 (1,000,000 ints with default chunks; 20,000 ints with
   chunksize 1 on every side, as Python needs ~20 s for 1M at chunksize 1),
   apply_async round trip vs a raw pipe round trip and vs mproc's own duplex
   Pipe (64-byte round trip to an echoing process), pool start-up (create +
   first result), a CPU-bound map (~20 ms per item) on 2 workers vs 1, and
   short tasks: 1000 tasks of ~1 ms busy CPU through apply_async with 8 in
   flight (results taken in order, as a pigz-like tool does), 1 worker vs 2,
   with the tasks each worker ran. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "mproc.h"

enum { BIG = 1000000, SMALL = 20000, ROUNDS = 5, RTT_N = 2000, PY_RTT_N = 500, CONN_RTT_N = 20000 };

static int doubler(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 2;
    return 0;
}

static int echo(const void *in, size_t len, mproc_buf *out) { return mproc_buf_append(out, in, len); }

/* ~20 ms of arithmetic; the iteration count is the item. */
static volatile uint64_t sink;
static uint64_t spin(uint64_t iters)
{
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static int cpu_task(const void *item, void *result)
{
    uint64_t x = spin(*(const uint64_t *)item);
    memcpy(result, &x, sizeof x);
    return 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_pool: %s: %s\n", what, mproc_strerror(rc));
    exit(1);
}

static mproc_pool *pool_of(int n)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    opt.processes = n;
    int rc = mproc_pool_create(&pool, &opt);
    if (rc) die("pool create", rc);
    return pool;
}

/* ---- mproc ------------------------------------------------------------------------ */
static double mproc_map_rate(mproc_pool *pool, const int *in, int *out, size_t n, size_t chunk)
{
    uint64_t t0 = bench_now_ns();
    int rc = mproc_pool_map(pool, doubler, in, sizeof *in, n, out, sizeof *out, chunk);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    if (rc) die("map", rc);
    for (size_t i = 0; i < n; i += 9973)
        if (out[i] != in[i] * 2) die("map result", MPROC_EPROTO);
    return (double)n / s;
}

/* Median microseconds of RTT_N apply_async().get() round trips. */
static double mproc_rtt_us(mproc_pool *pool)
{
    static double t[RTT_N];
    int v = 1;
    for (int i = 0; i < RTT_N; i++) {
        mproc_async *r;
        void *out = NULL;
        size_t len;
        uint64_t t0 = bench_now_ns();
        int rc = mproc_pool_apply_async(pool, echo, &v, sizeof v, &r);
        if (!rc) rc = mproc_async_get(r, &out, &len, MPROC_FOREVER);
        t[i] = (double)(bench_now_ns() - t0) / 1e3;
        if (rc) die("apply_async", rc);
        mproc_free(out);
        mproc_async_destroy(r);
    }
    return bench_median(t, RTT_N);
}

static double mproc_startup_ms(void)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    void *out = NULL;
    size_t len;
    int v = 1;
    opt.processes = 2;
    uint64_t t0 = bench_now_ns();
    int rc = mproc_pool_create(&pool, &opt);
    if (!rc) rc = mproc_pool_apply(pool, echo, &v, sizeof v, &out, &len);
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    if (rc) die("startup", rc);
    mproc_free(out);
    mproc_pool_destroy(pool);
    return ms;
}

static double cpu_map_s(int workers, const uint64_t *iters, size_t n)
{
    uint64_t out[64];
    mproc_pool *pool = pool_of(workers);
    uint64_t t0 = bench_now_ns();
    int rc = mproc_pool_map(pool, cpu_task, iters, sizeof *iters, n, out, sizeof *out, 0);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    if (rc) die("cpu map", rc);
    mproc_pool_destroy(pool);
    return s;
}

/* ---- short tasks through apply_async, a bounded window in flight ------------------ */
enum { SHORT_N = 1000, SHORT_WINDOW = 8 };

/* Busy work for the iteration count in the input; the result is the pid of
   the worker that ran it, so the parent can count tasks per worker. */
static int short_task(const void *in, size_t len, mproc_buf *out)
{
    uint64_t iters;
    if (len != sizeof iters) return 1;
    memcpy(&iters, in, sizeof iters);
    sink = spin(iters);
    int64_t pid = (int64_t)getpid();
    return mproc_buf_append(out, &pid, sizeof pid);
}

typedef struct short_run {
    double s;
    int64_t pid[4];
    unsigned count[4];
} short_run;

static void count_pid(short_run *r, int64_t pid)
{
    for (int k = 0; k < 4; k++) {
        if (r->count[k] && r->pid[k] != pid) continue;
        r->pid[k] = pid;
        r->count[k]++;
        return;
    }
}

static void take_oldest(mproc_async **win, size_t i, short_run *r)
{
    void *out;
    size_t len;
    int64_t pid;
    int rc = mproc_async_get(win[i % SHORT_WINDOW], &out, &len, MPROC_FOREVER);
    if (rc || len != sizeof pid) die("short task", rc ? rc : MPROC_EPROTO);
    memcpy(&pid, out, sizeof pid);
    count_pid(r, pid);
    mproc_free(out);
    mproc_async_destroy(win[i % SHORT_WINDOW]);
}

/* SHORT_N tasks of `iters` spins, SHORT_WINDOW in flight, taken in order. */
static short_run short_tasks(int workers, uint64_t iters)
{
    mproc_async *win[SHORT_WINDOW];
    short_run r;
    memset(&r, 0, sizeof r);
    mproc_pool *pool = pool_of(workers);
    mproc_pool_map(pool, doubler, &workers, sizeof workers, 1, NULL, 0, 1); /* workers up */
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < SHORT_N + SHORT_WINDOW; i++) {
        if (i >= SHORT_WINDOW) take_oldest(win, i - SHORT_WINDOW, &r);
        if (i >= SHORT_N) continue;
        int rc = mproc_pool_apply_async(pool, short_task, &iters, sizeof iters, &win[i % SHORT_WINDOW]);
        if (rc) die("short task submit", rc);
    }
    r.s = (double)(bench_now_ns() - t0) / 1e9;
    mproc_pool_destroy(pool);
    return r;
}

static void per_worker(const short_run *r, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < 4 && r->count[k] && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%u", k ? "/" : "", r->count[k]);
}

/* ---- mproc's own duplex Pipe: 64-byte round trips to an echoing process ------------ */
#define CONN_RTT_SIZE 64
typedef struct echo_job {
    mproc_ref ref;
    uint64_t count;
} echo_job;

static int conn_echo(const void *arg, size_t len)
{
    echo_job j;
    unsigned char m[CONN_RTT_SIZE];
    size_t n;
    mproc_conn *c;
    if (len != sizeof j) return 2;
    memcpy(&j, arg, sizeof j);
    if (mproc_conn_attach(&j.ref, &c)) return 3;
    for (uint64_t i = 0; i < j.count; i++)
        if (mproc_conn_recv_into(c, m, sizeof m, &n, MPROC_FOREVER) || mproc_conn_send(c, m, n))
            return 4;
    mproc_conn_destroy(c);
    return 0;
}

/* Median microseconds of CONN_RTT_N round trips (one untimed first). */
static double conn_rtt_us(void)
{
    static double t[CONN_RTT_N];
    mproc_conn *a, *b;
    mproc_process *p;
    echo_job j;
    unsigned char m[CONN_RTT_SIZE] = {0};
    size_t n;
    memset(&j, 0, sizeof j);
    j.count = CONN_RTT_N + 1;
    int rc = mproc_pipe(&a, &b, 1);
    if (!rc) rc = mproc_conn_ref(b, &j.ref);
    if (!rc) rc = mproc_process_create(&p, conn_echo, &j, sizeof j, NULL);
    if (!rc) rc = mproc_process_start(p);
    if (rc) die("conn rtt", rc);
    mproc_conn_destroy(b);
    for (int i = -1; i < CONN_RTT_N; i++) {
        uint64_t t0 = bench_now_ns();
        rc = mproc_conn_send(a, m, sizeof m);
        if (!rc) rc = mproc_conn_recv_into(a, m, sizeof m, &n, MPROC_FOREVER);
        if (rc) die("conn rtt", rc);
        if (i >= 0) t[i] = (double)(bench_now_ns() - t0) / 1e3;
    }
    mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);
    mproc_conn_destroy(a);
    return bench_median(t, CONN_RTT_N);
}

/* ---- a minimal C pool: forked workers, two pipes each ---------------------------- */
typedef struct mini_worker {
    pid_t pid;
    int to, from;
} mini_worker;

static void full_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) exit(2);
        p += n;
        len -= (size_t)n;
    }
}

static int full_read(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Worker: [count][count ints] in, [count ints doubled] out. */
static void mini_serve(int in, int out)
{
    static int buf[4096];
    uint32_t n;
    while (full_read(in, &n, sizeof n) == 0 && n <= 4096 && full_read(in, buf, n * sizeof *buf) == 0) {
        for (uint32_t i = 0; i < n; i++) buf[i] *= 2;
        full_write(out, buf, n * sizeof *buf);
    }
    _exit(0);
}

static void mini_start(mini_worker *w)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) exit(2);
    w->pid = fork();
    if (w->pid < 0) exit(2);
    if (w->pid == 0) {
        close(a[1]);
        close(b[0]);
        mini_serve(a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    w->to = a[1];
    w->from = b[0];
}

/* Closes every pipe first: a worker forked later holds copies of the
   earlier workers' pipe ends, so no worker sees EOF before all are closed. */
static void mini_stop(mini_worker *w, int n)
{
    for (int k = 0; k < n; k++) {
        close(w[k].to);
        close(w[k].from);
    }
    for (int k = 0; k < n; k++) waitpid(w[k].pid, NULL, 0);
}

/* Items/s over n items, `batch` per message, at most `window` messages in
   flight per worker; results land in order of each worker's FIFO. */
static double mini_rate(mini_worker *w, const int *in, int *out, size_t n, uint32_t batch, int window)
{
    size_t next = 0, fifo[2][64];
    int head[2] = {0, 0}, count[2] = {0, 0};
    uint64_t t0 = bench_now_ns();
    while (next < n || count[0] || count[1]) {
        for (int k = 0; k < 2; k++)
            while (next < n && count[k] < window) {
                uint32_t m = n - next < batch ? (uint32_t)(n - next) : batch;
                full_write(w[k].to, &m, sizeof m);
                full_write(w[k].to, in + next, m * sizeof *in);
                fifo[k][(head[k] + count[k]++) % 64] = next;
                next += m;
            }
        struct pollfd pf[2] = {{w[0].from, POLLIN, 0}, {w[1].from, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0) exit(2);
        for (int k = 0; k < 2; k++) {
            if (!(pf[k].revents & POLLIN) || !count[k]) continue;
            size_t lo = fifo[k][head[k]];
            size_t m = n - lo < batch ? n - lo : batch;
            if (full_read(w[k].from, out + lo, m * sizeof *out)) exit(2);
            head[k] = (head[k] + 1) % 64;
            count[k]--;
        }
    }
    return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* Raw pipe round trip of 4 bytes with a forked echo child, median µs. */
static double pipe_rtt_us(mini_worker *w)
{
    static double t[RTT_N];
    int v[1] = {1};
    uint32_t one = 1;
    for (int i = 0; i < RTT_N; i++) {
        uint64_t t0 = bench_now_ns();
        full_write(w->to, &one, sizeof one);
        full_write(w->to, v, sizeof v);
        if (full_read(w->from, v, sizeof v)) exit(2);
        t[i] = (double)(bench_now_ns() - t0) / 1e3;
        v[0] = 1;
    }
    return bench_median(t, RTT_N);
}

/* ---- Python ----------------------------------------------------------------------- */
static size_t run_python(const char *args, double *out, size_t max)
{
    char cmd[512], buf[4096];
    size_t n = 0;
    const char *py = bench_python();
    if (!py) return 0;
    snprintf(cmd, sizeof cmd, "%s %s/py_pool.py %s", py, MPROC_BENCH_DIR, args);
    if (bench_capture(cmd, buf, sizeof buf) != 0) return 0;
    for (char *line = strtok(buf, "\n"); line && n < max; line = strtok(NULL, "\n")) out[n++] = atof(line);
    return n;
}

/* ---- the table -------------------------------------------------------------------- */
enum {
    M_MAP, M_MAP1, PY_MAP, PY_MAP1, C_MAP, C_MAP1, M_RTT, PY_RTT, RAW_RTT, CONN_RTT, M_START, PY_START,
    NM
};
static double s[NM][128];
static size_t ns[NM];
static void add(int m, double v) { s[m][ns[m]++] = v; }
static double med(int m) { return bench_median(s[m], ns[m]); }

static void measure_round(mproc_pool *pool, mini_worker *mini, const int *in, int *out)
{
    add(M_MAP, mproc_map_rate(pool, in, out, BIG, 0));
    add(M_MAP1, mproc_map_rate(pool, in, out, SMALL, 1));
    add(C_MAP, mini_rate(mini, in, out, BIG, 1024, 4));
    add(C_MAP1, mini_rate(mini, in, out, SMALL, 1, 16));
    add(M_RTT, mproc_rtt_us(pool));
    add(RAW_RTT, pipe_rtt_us(&mini[0]));
    add(CONN_RTT, conn_rtt_us());
    for (int i = 0; i < 5; i++) add(M_START, mproc_startup_ms());
}

static void measure_python(void)
{
    char args[64];
    snprintf(args, sizeof args, "map %d 0 %d", BIG, ROUNDS);
    ns[PY_MAP] = run_python(args, s[PY_MAP], 64);
    snprintf(args, sizeof args, "map %d 1 %d", SMALL, ROUNDS);
    ns[PY_MAP1] = run_python(args, s[PY_MAP1], 64);
    snprintf(args, sizeof args, "rtt %d %d", PY_RTT_N, ROUNDS);
    ns[PY_RTT] = run_python(args, s[PY_RTT], 64);
    snprintf(args, sizeof args, "startup %d", ROUNDS);
    ns[PY_START] = run_python(args, s[PY_START], 64);
}

static void row(const char *what, double a, const char *unit, double b, const char *bname,
                double ratio, const char *goal)
{
    if (b <= 0) printf("| %s | %.4g %s | n/a | | %s |\n", what, a, unit, goal);
    else printf("| %s | %.4g %s | %.4g %s (%s) | %.2fx | %s |\n", what, a, unit, b, unit, bname, ratio, goal);
}

typedef struct extra_rows {
    double speedup, t1, t2;        /* CPU-bound map */
    short_run short1, short2;      /* short tasks: median runs, 1 and 2 workers */
} extra_rows;

static void print_table(const extra_rows *x)
{
    char w1[64], w2[64];
    bench_print_header("Pool: mproc vs Python multiprocessing.Pool (spawn) and a minimal C pool (medians)");
    printf("Python: %s. Default-chunk rows map %d ints; chunksize-1 rows map %d ints on every side.\n\n",
           bench_python() ? bench_python() : "absent", BIG, SMALL);
    printf("| metric | mproc | other | ratio | goal |\n|---|---|---|---|---|\n");
    row("map x*2, default chunks, items/s", med(M_MAP), "/s", med(PY_MAP), "Python", med(M_MAP) / med(PY_MAP), ">= 10x");
    row("map x*2, default chunks, items/s", med(M_MAP), "/s", med(C_MAP), "C pool, batch 1024", med(M_MAP) / med(C_MAP), ">= 0.7x");
    row("map x*2, chunksize 1, items/s", med(M_MAP1), "/s", med(PY_MAP1), "Python", med(M_MAP1) / med(PY_MAP1), ">= 70x");
    row("map x*2, chunksize 1, items/s", med(M_MAP1), "/s", med(C_MAP1), "C pool, 16 in flight", med(M_MAP1) / med(C_MAP1), ">= 0.7x");
    row("apply_async round trip", med(M_RTT), "us", med(PY_RTT), "Python", med(PY_RTT) / med(M_RTT), "faster");
    row("apply_async round trip vs raw pipe RTT", med(M_RTT), "us", med(RAW_RTT), "pipe", med(M_RTT) / med(RAW_RTT), "<= 1.5x (ratio = mproc/pipe)");
    row("apply_async round trip vs mproc Pipe 64 B RTT", med(M_RTT), "us", med(CONN_RTT), "mproc Pipe", med(M_RTT) / med(CONN_RTT), "<= 3x (ratio = apply/Pipe)");
    row("pool(2) create + first result", med(M_START), "ms", med(PY_START), "Python", med(PY_START) / med(M_START), ">= 50x");
    printf("| CPU-bound map, 40 x ~20 ms, 2 workers vs 1 | %.3f s vs %.3f s | | %.2fx | >= 1.9x |\n", x->t2, x->t1, x->speedup);
    per_worker(&x->short1, w1, sizeof w1);
    per_worker(&x->short2, w2, sizeof w2);
    printf("| short tasks: %d x ~1 ms apply_async, %d in flight, 2 workers vs 1 | %.3f s (tasks per worker %s) vs %.3f s (%s) | | %.2fx | >= 1.7x |\n",
           SHORT_N, SHORT_WINDOW, x->short2.s, w2, x->short1.s, w1, x->short1.s / x->short2.s);
    printf("\nRatios: rates mproc/other; times other/mproc, except the two pipe rows (mproc/pipe). "
           "%zu rounds (start-up: %zu mproc, %zu Python samples; CPU-bound and short tasks: 3 runs each).\n",
           ns[M_MAP], ns[M_START], ns[PY_START]);
}

/* Nanoseconds per spin() iteration on this machine now. */
static double spin_ns(void)
{
    uint64_t calib = 1000000, t0 = bench_now_ns();
    sink = spin(calib);
    return (double)(bench_now_ns() - t0) / (double)calib;
}

static void cpu_bound(extra_rows *x)
{
    enum { N = 40 };
    uint64_t iters[N];
    double per = spin_ns();
    for (int i = 0; i < N; i++) iters[i] = (uint64_t)(20e6 / per);
    double a[3], b[3];
    for (int r = 0; r < 3; r++) {
        a[r] = cpu_map_s(1, iters, N);
        b[r] = cpu_map_s(2, iters, N);
    }
    x->t1 = bench_median(a, 3);
    x->t2 = bench_median(b, 3);
    x->speedup = x->t1 / x->t2;
}

/* The median of three runs (by time). */
static short_run median_run(short_run *r)
{
    for (int i = 0; i < 3; i++)
        for (int k = i + 1; k < 3; k++)
            if (r[k].s < r[i].s) {
                short_run t = r[i];
                r[i] = r[k];
                r[k] = t;
            }
    return r[1];
}

static void short_bound(extra_rows *x)
{
    uint64_t iters = (uint64_t)(1e6 / spin_ns());
    short_run a[3], b[3];
    for (int r = 0; r < 3; r++) {
        a[r] = short_tasks(1, iters);
        b[r] = short_tasks(2, iters);
    }
    x->short1 = median_run(a);
    x->short2 = median_run(b);
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    int *in = malloc(BIG * sizeof *in), *out = malloc(BIG * sizeof *out);
    if (!in || !out) return 1;
    for (int i = 0; i < BIG; i++) in[i] = i;
    if (argc > 1 && !strcmp(argv[1], "short")) { /* only the short-task rows */
        extra_rows x;
        short_bound(&x);
        char w1[64], w2[64];
        per_worker(&x.short1, w1, sizeof w1);
        per_worker(&x.short2, w2, sizeof w2);
        printf("short tasks: 1 worker %.3f s (%s), 2 workers %.3f s (%s): %.2fx\n", x.short1.s, w1,
               x.short2.s, w2, x.short1.s / x.short2.s);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "map")) { /* only mproc's map rates */
        mproc_pool *pool = pool_of(2);
        double d[ROUNDS], c[ROUNDS];
        mproc_map_rate(pool, in, out, BIG, 0);
        for (int r = 0; r < ROUNDS; r++) {
            d[r] = mproc_map_rate(pool, in, out, BIG, 0);
            c[r] = mproc_map_rate(pool, in, out, SMALL, 1);
        }
        mproc_pool_destroy(pool);
        printf("map default chunks %.4g items/s, chunksize 1 %.4g items/s\n", bench_median(d, ROUNDS),
               bench_median(c, ROUNDS));
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "rtt")) { /* only the round trips */
        mproc_pool *pool = pool_of(2);
        double a[ROUNDS], c[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            a[r] = mproc_rtt_us(pool);
            c[r] = conn_rtt_us();
        }
        mproc_pool_destroy(pool);
        printf("apply_async %.2f us, Pipe 64 B %.2f us: %.2fx\n", bench_median(a, ROUNDS),
               bench_median(c, ROUNDS), bench_median(a, ROUNDS) / bench_median(c, ROUNDS));
        return 0;
    }
    mini_worker mini[2];
    mini_start(&mini[0]);
    mini_start(&mini[1]);
    mproc_pool *pool = pool_of(2);
    mproc_map_rate(pool, in, out, BIG, 0); /* warm: ring pages faulted in */
    for (int r = 0; r < ROUNDS; r++) measure_round(pool, mini, in, out);
    mproc_pool_destroy(pool);
    mini_stop(mini, 2);
    measure_python();
    extra_rows x;
    cpu_bound(&x);
    short_bound(&x);
    print_table(&x);
    free(in);
    free(out);
    return 0;
}
