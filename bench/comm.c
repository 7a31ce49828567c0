/* Data movement: mproc's Pipe and Queue against Python's multiprocessing
   (bench/py_comm.py, Debian's /usr/bin/python3) and raw OS channels
   written in C, in the same run. One producer process, the consumer is
   this process; each run is timed from the first message received to the
   last; the table shows medians of RUNS runs. Then round trips of a 64-byte
   message to an echoing process.

   usage: bench_comm [count64 [count1m [runs]]]   (count1m 0: 64-byte table only) */
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic.h"
#include "mproc.h"

#define MIB ((size_t)1 << 20)

typedef struct job {
    mproc_ref ref;
    uint64_t size, count;
    int kind; /* 0 conn, 1 queue */
} job;

/* ---- mproc producers (children) ------------------------------------------- */
static int mproc_producer(const void *arg, size_t len)
{
    job j;
    if (len != sizeof j) return 2;
    memcpy(&j, arg, sizeof j);
    unsigned char *msg = calloc(1, (size_t)j.size);
    if (!msg) return 3;
    mproc_conn *c = NULL;
    mproc_queue *q = NULL;
    if (j.kind == 0 ? mproc_conn_attach(&j.ref, &c) : mproc_queue_attach(&j.ref, &q)) return 4;
    for (uint64_t i = 0; i < j.count; i++) {
        int rc = c ? mproc_conn_send(c, msg, (size_t)j.size)
                   : mproc_queue_put(q, msg, (size_t)j.size, MPROC_FOREVER);
        if (rc) return 5;
    }
    mproc_conn_destroy(c);
    mproc_queue_destroy(q);
    free(msg);
    return 0;
}

static double elapsed_rate(uint64_t t0, uint64_t count)
{
    return (double)(count - 1) / ((double)(bench_now_ns() - t0) / 1e9);
}

/* Messages per second through an mproc conn (duplex or one-way). into:
   receive into one reused buffer instead of a new block per message. */
static double run_conn(int duplex, size_t size, uint64_t count, int into)
{
    mproc_conn *r, *w;
    if (mproc_pipe(&r, &w, duplex)) return 0;
    job j = {{{0}}, size, count, 0};
    mproc_conn_ref(w, &j.ref);
    mproc_process *p;
    if (mproc_process_create(&p, mproc_producer, &j, sizeof j, NULL) || mproc_process_start(p)) return 0;
    mproc_conn_destroy(w);
    unsigned char *buf = malloc(size ? size : 1);
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < count; i++) {
        size_t n;
        void *m;
        int rc = into ? mproc_conn_recv_into(r, buf, size, &n, MPROC_FOREVER)
                      : mproc_conn_recv(r, &m, &n, MPROC_FOREVER);
        if (rc) return 0;
        if (!into) mproc_free(m);
        if (i == 0) t0 = bench_now_ns();
    }
    double rate = elapsed_rate(t0, count);
    mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
    free(buf);
    return rate;
}

static double run_queue(size_t size, uint64_t count)
{
    mproc_queue *q;
    if (mproc_queue_create(&q, 0)) return 0;
    job j = {{{0}}, size, count, 1};
    mproc_queue_ref(q, &j.ref);
    mproc_process *p;
    if (mproc_process_create(&p, mproc_producer, &j, sizeof j, NULL) || mproc_process_start(p)) return 0;
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < count; i++) {
        size_t n;
        void *m;
        if (mproc_queue_get(q, &m, &n, MPROC_FOREVER)) return 0;
        mproc_free(m);
        if (i == 0) t0 = bench_now_ns();
    }
    double rate = elapsed_rate(t0, count);
    mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);
    mproc_queue_destroy(q);
    return rate;
}

/* ---- raw OS channels in C -------------------------------------------------- */
enum { RAW_PIPE, RAW_PIPE_1M, RAW_SOCKETPAIR };

static int raw_channel(int kind, int fds[2])
{
    if (kind == RAW_SOCKETPAIR) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) return -1;
        int sz = (int)MIB; /* as large as the system allows */
        setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        return 0;
    }
    if (pipe(fds)) return -1;
#ifdef F_SETPIPE_SZ
    if (kind == RAW_PIPE_1M) fcntl(fds[1], F_SETPIPE_SZ, (int)MIB);
#endif
    return 0;
}

static int io_full(int fd, unsigned char *p, size_t n, int wr)
{
    while (n) {
        ssize_t k = wr ? write(fd, p, n) : read(fd, p, n);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static double run_raw(int kind, size_t size, uint64_t count)
{
    int fds[2];
    if (raw_channel(kind, fds)) return 0;
    unsigned char *buf = calloc(1, size);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (uint64_t i = 0; i < count; i++)
            if (io_full(fds[1], buf, size, 1)) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (io_full(fds[0], buf, size, 0)) break;
        if (i == 0) t0 = bench_now_ns();
    }
    double rate = elapsed_rate(t0, count);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    free(buf);
    return rate;
}

/* ---- the hardware's limit: a raw SPSC ring in shared memory ------------------ */
/* Lamport's single-producer single-consumer ring of fixed 64-byte records,
   as small as it gets: each index alone on its cache line, each side
   caching the other's index and reading it again only when the cached one
   shows no room (no data), release stores to publish, acquire loads to
   look. Two copies per message, no system call, both sides busy (a side
   that finds nothing for a while yields, so a loaded machine does not
   starve the other). No checks, no locks, no liveness, no waking: what
   the same memory and the same two CPUs can do at best. */
#define RAW_RING_SLOTS 16384 /* 1 MiB of records, as a conn's ring */
#define RAW_REC 64

typedef struct raw_ring {
    uint64_t tail;
    char pad0[56];
    uint64_t head;
    char pad1[56];
    unsigned char slot[RAW_RING_SLOTS][RAW_REC];
} raw_ring;

static void raw_ring_wait(unsigned *spins)
{
    if (++*spins % 1024 == 0) sched_yield();
    else mproc__cpu_relax();
}

static void raw_ring_produce(raw_ring *q, uint64_t count)
{
    unsigned char msg[RAW_REC] = {0};
    uint64_t head = 0;
    for (uint64_t i = 0; i < count; i++) {
        unsigned spins = 0;
        while (i - head == RAW_RING_SLOTS) {
            head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
            if (i - head == RAW_RING_SLOTS) raw_ring_wait(&spins);
        }
        memcpy(msg, &i, sizeof i);
        memcpy(q->slot[i % RAW_RING_SLOTS], msg, RAW_REC);
        __atomic_store_n(&q->tail, i + 1, __ATOMIC_RELEASE);
    }
}

/* Consumes count records; 0 if every one carried its sequence number. */
static int raw_ring_consume(raw_ring *q, uint64_t count, uint64_t *t0)
{
    unsigned char msg[RAW_REC];
    uint64_t tail = 0;
    for (uint64_t i = 0; i < count; i++) {
        unsigned spins = 0;
        while (i == tail) {
            tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
            if (i == tail) raw_ring_wait(&spins);
        }
        memcpy(msg, q->slot[i % RAW_RING_SLOTS], RAW_REC);
        __atomic_store_n(&q->head, i + 1, __ATOMIC_RELEASE);
        uint64_t seq;
        memcpy(&seq, msg, sizeof seq);
        if (seq != i) return -1;
        if (i == 0) *t0 = bench_now_ns();
    }
    return 0;
}

static double run_raw_ring(uint64_t count)
{
    raw_ring *q = mmap(NULL, sizeof *q, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        raw_ring_produce(q, count);
        _exit(0);
    }
    uint64_t t0 = 0;
    int bad = pid < 0 || raw_ring_consume(q, count, &t0);
    double rate = bad ? 0 : elapsed_rate(t0, count);
    if (pid > 0) waitpid(pid, NULL, 0);
    munmap(q, sizeof *q);
    return rate;
}

/* ---- round trips: 64 bytes to an echoing process and back ------------------ */
#define RTT_SIZE 64

static int mproc_echo(const void *arg, size_t len)
{
    job j;
    if (len != sizeof j) return 2;
    memcpy(&j, arg, sizeof j);
    mproc_conn *c;
    unsigned char m[RTT_SIZE];
    size_t n;
    if (mproc_conn_attach(&j.ref, &c)) return 4;
    for (uint64_t i = 0; i < j.count; i++)
        if (mproc_conn_recv_into(c, m, sizeof m, &n, MPROC_FOREVER) || mproc_conn_send(c, m, n))
            return 5;
    mproc_conn_destroy(c);
    return 0;
}

/* Round trips per second (the first one, which meets a fresh process, is
   not timed). */
static double run_conn_rtt(uint64_t count)
{
    mproc_conn *a, *b;
    if (mproc_pipe(&a, &b, 1)) return 0;
    job j = {{{0}}, RTT_SIZE, count + 1, 0};
    mproc_conn_ref(b, &j.ref);
    mproc_process *p;
    if (mproc_process_create(&p, mproc_echo, &j, sizeof j, NULL) || mproc_process_start(p)) return 0;
    mproc_conn_destroy(b);
    unsigned char m[RTT_SIZE] = {0};
    size_t n;
    uint64_t t0 = 0;
    for (uint64_t i = 0; i <= count; i++) {
        if (mproc_conn_send(a, m, sizeof m) || mproc_conn_recv_into(a, m, sizeof m, &n, MPROC_FOREVER))
            return 0;
        if (i == 0) t0 = bench_now_ns();
    }
    double rate = (double)count / ((double)(bench_now_ns() - t0) / 1e9);
    mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);
    mproc_conn_destroy(a);
    return rate;
}

static double run_raw_rtt(uint64_t count)
{
    int fds[2];
    if (raw_channel(RAW_SOCKETPAIR, fds)) return 0;
    unsigned char m[RTT_SIZE] = {0};
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (uint64_t i = 0; i <= count; i++)
            if (io_full(fds[1], m, sizeof m, 0) || io_full(fds[1], m, sizeof m, 1)) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    uint64_t t0 = 0;
    for (uint64_t i = 0; i <= count; i++) {
        if (io_full(fds[0], m, sizeof m, 1) || io_full(fds[0], m, sizeof m, 0)) break;
        if (i == 0) t0 = bench_now_ns();
    }
    double rate = (double)count / ((double)(bench_now_ns() - t0) / 1e9);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return rate;
}

/* ---- Python ---------------------------------------------------------------------- */
/* Every side needs two messages: the first starts the clock (a smaller
   count left Python's Queue consumer waiting for ever). */
static uint64_t at_least_two(uint64_t n) { return n < 2 ? 2 : n; }

static double run_python(const char *kind, size_t size, uint64_t count, int runs)
{
    const char *py = bench_python();
    if (!py) return 0;
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s %s/py_comm.py %s %zu %llu %d 2>/dev/null", py, MPROC_BENCH_DIR,
             kind, size, (unsigned long long)count, runs);
    if (bench_capture(cmd, out, sizeof out) != 0) return 0;
    double v[64];
    int n = 0;
    for (char *s = strtok(out, "\n"); s && n < 64; s = strtok(NULL, "\n")) v[n++] = atof(s);
    return bench_median(v, (size_t)n);
}

/* ---- table ------------------------------------------------------------------------- */
static int g_runs = 5;

static double median_of(double (*fn)(int, size_t, uint64_t, int), int a, size_t size,
                        uint64_t count, int d)
{
    double v[32];
    for (int i = 0; i < g_runs; i++) v[i] = fn(a, size, count, d);
    return bench_median(v, (size_t)g_runs);
}

static double conn_adapter(int duplex, size_t size, uint64_t count, int into)
{
    return run_conn(duplex, size, count, into);
}

static double queue_adapter(int unused, size_t size, uint64_t count, int unused2)
{
    (void)unused;
    (void)unused2;
    return run_queue(size, count);
}

static double raw_adapter(int kind, size_t size, uint64_t count, int unused)
{
    (void)unused;
    return run_raw(kind, size, count);
}

static void print_row(const char *name, double v, double unit, const char *uname, double raw,
                      double py)
{
    printf("| %s | %.2f %s |", name, v / unit, uname);
    if (raw > 0) printf(" %.0f%% |", 100.0 * v / raw);
    else printf(" – |");
    if (py > 0) printf(" %.1fx |\n", v / py);
    else printf(" – |\n");
}

/* The 64-byte rows. The raw SPSC ring and every mproc row are measured
   in turn within each run, so each run gives its own ratios: the table
   shows median rates, the median ratio to the raw ring and the worst
   run's ratio (machine load swings between runs, less within one). */
enum { SMALL_RING, SMALL_PIPE, SMALL_PIPE_INTO, SMALL_DUPLEX, SMALL_QUEUE, SMALL_KINDS };

static double small_run(int kind, uint64_t count)
{
    switch (kind) {
    case SMALL_RING: return run_raw_ring(count);
    case SMALL_PIPE: return run_conn(0, 64, count, 0);
    case SMALL_PIPE_INTO: return run_conn(0, 64, count, 1);
    case SMALL_DUPLEX: return run_conn(1, 64, count, 0);
    default: return run_queue(64, count);
    }
}

static void print_small_row(const char *name, const double *v, const double *ring, double pipe,
                            double py)
{
    double ratio[32], worst = 0;
    for (int i = 0; i < g_runs; i++) {
        ratio[i] = ring[i] > 0 ? v[i] / ring[i] : 0;
        if (i == 0 || ratio[i] < worst) worst = ratio[i];
    }
    double rate = bench_median(v, (size_t)g_runs);
    printf("| %s | %.2f M msgs/s | %.0f%% | %.0f%% | %.0f%% |", name, rate / 1e6,
           100.0 * bench_median(ratio, (size_t)g_runs), 100.0 * worst, 100.0 * rate / pipe);
    if (py > 0) printf(" %.1fx |\n", rate / py);
    else printf(" – |\n");
}

/* Each mproc row is paired with a raw ring measured just before it, in
   the same run: on this kind of machine the rate of the same ring swings
   by 2-3x between seconds (host scheduling, cache placement), so a ratio
   holds best between neighbours. */
static void small_messages(uint64_t count)
{
    size_t size = 64;
    double v[SMALL_KINDS][32], paired[SMALL_KINDS][32], all_ring[SMALL_KINDS * 32];
    size_t nring = 0;
    for (int i = 0; i < g_runs; i++)
        for (int k = SMALL_RING + 1; k < SMALL_KINDS; k++) {
            paired[k][i] = all_ring[nring++] = small_run(SMALL_RING, count);
            v[k][i] = small_run(k, count);
        }
    double raw = median_of(raw_adapter, RAW_PIPE, size, count, 0);
    double sock = median_of(raw_adapter, RAW_SOCKETPAIR, size, count, 0);
    double py_pipe = run_python("pipe", size, count, g_runs);
    double py_queue = run_python("queue", size, at_least_two(count / 4), g_runs);
    double ring_rate = bench_median(all_ring, nring);
    bench_print_header("64-byte messages, one producer process -> one consumer");
    printf("%llu messages per run (Python Queue: %llu), median of %d runs; in each run every "
           "mproc row is measured right after a raw ring of its own, \"vs raw ring\" is the "
           "median of the runs' ratios to that ring, \"worst run\" the lowest of them; the raw "
           "ring's rate is the median of all its %zu runs\n\n",
           (unsigned long long)count, (unsigned long long)at_least_two(count / 4), g_runs, nring);
    printf("| channel | rate | vs raw ring | worst run | vs raw pipe | vs Python (same kind) |\n"
           "|---|---|---|---|---|---|\n");
    printf("| raw SPSC ring in shared memory (C, 64 B records) | %.2f M msgs/s | 100%% | | %.0f%% | "
           "– |\n",
           ring_rate / 1e6, 100.0 * ring_rate / raw);
    printf("| raw pipe (C, read/write 64 B) | %.2f M msgs/s | %.0f%% | | 100%% | – |\n", raw / 1e6,
           100.0 * raw / ring_rate);
    printf("| raw socketpair (C) | %.2f M msgs/s | %.0f%% | | %.0f%% | – |\n", sock / 1e6,
           100.0 * sock / ring_rate, 100.0 * sock / raw);
    printf("| Python Pipe (duplex, send_bytes) | %.2f M msgs/s | %.0f%% | | %.0f%% | – |\n",
           py_pipe / 1e6, 100.0 * py_pipe / ring_rate, 100.0 * py_pipe / raw);
    printf("| Python Queue | %.2f M msgs/s | %.0f%% | | %.0f%% | – |\n", py_queue / 1e6,
           100.0 * py_queue / ring_rate, 100.0 * py_queue / raw);
    static const char *const names[SMALL_KINDS] = {
        NULL, "mproc Pipe one-way, recv", "mproc Pipe one-way, recv_into",
        "mproc Pipe duplex, recv", "mproc Queue"};
    for (int k = SMALL_RING + 1; k < SMALL_KINDS; k++)
        print_small_row(names[k], v[k], paired[k], raw, k == SMALL_QUEUE ? py_queue : py_pipe);
}

static void large_messages(uint64_t count)
{
    size_t size = MIB;
    double mb = (double)size / 1e9; /* rate in msgs/s * GB per msg */
    double raw = median_of(raw_adapter, RAW_PIPE, size, count, 0) * mb;
    double raw1m = median_of(raw_adapter, RAW_PIPE_1M, size, count, 0) * mb;
    double sock = median_of(raw_adapter, RAW_SOCKETPAIR, size, count, 0) * mb;
    double py_pipe = run_python("pipe", size, count, g_runs) * mb;
    double py_queue = run_python("queue", size, count, g_runs) * mb;
    double pipe1 = median_of(conn_adapter, 0, size, count, 0) * mb;
    double pipe1i = median_of(conn_adapter, 0, size, count, 1) * mb;
    double pipe2 = median_of(conn_adapter, 1, size, count, 0) * mb;
    double pipe2i = median_of(conn_adapter, 1, size, count, 1) * mb;
    double queue = median_of(queue_adapter, 0, size, count, 0) * mb;
    double best = raw > raw1m ? raw : raw1m;
    if (sock > best) best = sock;
    bench_print_header("1 MiB messages, one producer process -> one consumer");
    printf("%llu messages per run, median of %d runs; %% is of the best raw channel\n\n",
           (unsigned long long)count, g_runs);
    printf("| channel | throughput | vs best raw | vs Python (same kind) |\n|---|---|---|---|\n");
    print_row("raw pipe, default buffer (C)", raw, 1, "GB/s", best, 0);
    print_row("raw pipe, F_SETPIPE_SZ 1 MiB (C)", raw1m, 1, "GB/s", best, 0);
    print_row("raw socketpair (C)", sock, 1, "GB/s", best, 0);
    print_row("Python Pipe (duplex)", py_pipe, 1, "GB/s", best, 0);
    print_row("Python Queue", py_queue, 1, "GB/s", best, 0);
    print_row("mproc Pipe one-way, recv", pipe1, 1, "GB/s", best, py_pipe);
    print_row("mproc Pipe one-way, recv_into", pipe1i, 1, "GB/s", best, py_pipe);
    print_row("mproc Pipe duplex, recv", pipe2, 1, "GB/s", best, py_pipe);
    print_row("mproc Pipe duplex, recv_into", pipe2i, 1, "GB/s", best, py_pipe);
    print_row("mproc Queue", queue, 1, "GB/s", best, py_queue);
}

static double rtt_adapter(int raw, size_t size, uint64_t count, int unused)
{
    (void)size;
    (void)unused;
    return raw ? run_raw_rtt(count) : run_conn_rtt(count);
}

static void round_trips(uint64_t count)
{
    double mine = median_of(rtt_adapter, 0, RTT_SIZE, count, 0);
    double raw = median_of(rtt_adapter, 1, RTT_SIZE, count, 0);
    double py = run_python("rtt", RTT_SIZE, at_least_two(count / 10), g_runs);
    bench_print_header("Round trips: 64 bytes to an echoing process and back");
    printf("%llu round trips per run (Python: %llu), median of %d runs\n\n",
           (unsigned long long)count, (unsigned long long)at_least_two(count / 10), g_runs);
    printf("| channel | round trip | time vs raw socketpair | mproc vs this |\n|---|---|---|---|\n");
    printf("| raw socketpair (C, write+read each way) | %.2f us | 1.00x | %.1fx faster |\n", 1e6 / raw,
           mine / raw);
    if (py > 0)
        printf("| Python Pipe (duplex, send_bytes/recv_bytes) | %.2f us | %.2fx | %.1fx faster |\n",
               1e6 / py, raw / py, mine / py);
    printf("| mproc Pipe duplex (send + recv_into) | %.2f us | %.2fx | – |\n", 1e6 / mine, raw / mine);
}

int main(int argc, char **argv)
{
    int rc = mproc_main_guard(argc, argv);
    if (rc) return 3;
    uint64_t count64 = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t count1m = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000;
    if (argc > 3) g_runs = atoi(argv[3]);
    if (g_runs < 1 || g_runs > 32) g_runs = 5;
    if (count64 < 2) count64 = 2;
    if (count1m == 1) count1m = 2;
    if (!bench_python()) printf("(no /usr/bin/python3: Python columns skipped)\n");
    small_messages(count64);
    if (count1m == 0) return 0;
    large_messages(count1m);
    round_trips(at_least_two(count64 / 10));
    return 0;
}
