/* Process start-up: start+join of a no-op child with each mproc start
   method (spawn, fork, forkserver) against the raw OS floor (posix_spawn
   of this same binary; fork + _exit + waitpid of this same process) and
   Python's multiprocessing (spawn, fork, forkserver); and Pool(2) creation
   + first result with spawn and forkserver against Python's. Interleaved
   in rounds so all see the same machine; medians. The forkserver is
   started once before timing (on both sides): its rows are the steady
   state; its own start-up is one spawn. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "mproc.h"

extern char **environ;

enum { ROUNDS = 10, PER_ROUND = 12, POOLS_PER_ROUND = 3, PY_PER_ROUND = 10, PY_POOLS_PER_ROUND = 3 };
enum {
    V_SPAWN, V_FORK, V_FORKSERVER, V_RAW_SPAWN, V_RAW_FORK, V_PY_SPAWN, V_PY_FORK, V_PY_FORKSERVER,
    V_POOL_SPAWN, V_POOL_FORKSERVER, V_PY_POOL_SPAWN, V_PY_POOL_FORKSERVER, NV
};
static const char *names[NV] = {
    "mproc spawn", "mproc fork", "mproc forkserver",
    "raw posix_spawn of this binary (exits at once)", "raw fork + _exit + waitpid of this process",
    "Python multiprocessing spawn", "Python multiprocessing fork", "Python multiprocessing forkserver",
    "mproc Pool(2), spawn", "mproc Pool(2), forkserver", "Python Pool(2), spawn",
    "Python Pool(2), forkserver"};

static double samples[NV][ROUNDS * PER_ROUND];
static size_t nsamples[NV];

static void add(int v, double ms) { samples[v][nsamples[v]++] = ms; }
static double med(int v) { return bench_median(samples[v], nsamples[v]); }

static int noop(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s failed: %s\n", what, mproc_strerror(rc));
    exit(1);
}

static double time_mproc(mproc_start_method method)
{
    mproc_process_options opt = {NULL, 0, method};
    mproc_process *p;
    uint64_t t0 = bench_now_ns();
    int rc = mproc_process_create(&p, noop, NULL, 0, &opt);
    if (!rc) rc = mproc_process_start(p);
    if (!rc) rc = mproc_process_join(p, MPROC_FOREVER);
    if (rc) die("mproc start/join", rc);
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    mproc_process_destroy(p);
    return ms;
}

static double time_raw_spawn(void)
{
    char *argv[] = {"/proc/self/exe", "--exit-now", NULL};
    pid_t pid;
    int status;
    uint64_t t0 = bench_now_ns();
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid) {
        fprintf(stderr, "raw posix_spawn failed\n");
        exit(1);
    }
    return (double)(bench_now_ns() - t0) / 1e6;
}

static double time_raw_fork(void)
{
    int status;
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        fprintf(stderr, "raw fork failed\n");
        exit(1);
    }
    return (double)(bench_now_ns() - t0) / 1e6;
}

static void run_python(int variant, const char *method, int count, const char *mode)
{
    char cmd[1024], out[8192];
    const char *py = bench_python();
    if (!py) return;
    snprintf(cmd, sizeof cmd, "%s %s/py_spawn.py %s %d %s", py, MPROC_BENCH_DIR, method, count, mode);
    if (bench_capture(cmd, out, sizeof out) != 0) return;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) add(variant, atof(line));
}

static void print_row(int v, double base)
{
    if (!nsamples[v]) {
        printf("| %s | n/a | | |\n", names[v]);
        return;
    }
    printf("| %s | %.3f | %zu | %.2fx |\n", names[v], med(v), nsamples[v], med(v) / base);
}

static void goal(const char *what, double ratio, const char *target, int met)
{
    printf("| %s | %.2fx | %s | %s |\n", what, ratio, target, met ? "met" : "NOT met");
}

static void print_goals(void)
{
    double fs = med(V_FORKSERVER), raw_fork = med(V_RAW_FORK), pool_fs = med(V_POOL_FORKSERVER);
    printf("\n| goal (forkserver) | measured | target | |\n|---|---|---|---|\n");
    goal("start+join vs raw fork+_exit+wait (time ratio)", fs / raw_fork, "<= 2x", fs <= 2 * raw_fork);
    if (nsamples[V_PY_SPAWN] && nsamples[V_PY_FORKSERVER]) {
        goal("start+join: faster than Python spawn", med(V_PY_SPAWN) / fs, ">= 100x",
             med(V_PY_SPAWN) >= 100 * fs);
        goal("start+join: faster than Python forkserver", med(V_PY_FORKSERVER) / fs, ">= 30x",
             med(V_PY_FORKSERVER) >= 30 * fs);
    }
    if (nsamples[V_PY_POOL_SPAWN])
        goal("Pool(2) create + first result: faster than Python's spawn Pool",
             med(V_PY_POOL_SPAWN) / pool_fs, ">= 100x", med(V_PY_POOL_SPAWN) >= 100 * pool_fs);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--exit-now") == 0) return 0;
    if (mproc_main_guard(argc, argv) != 0) return 1;
    time_mproc(MPROC_FORKSERVER); /* the server's start is not a start+join */
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            add(V_SPAWN, time_mproc(MPROC_SPAWN));
            add(V_RAW_SPAWN, time_raw_spawn());
            add(V_FORK, time_mproc(MPROC_FORK));
            add(V_FORKSERVER, time_mproc(MPROC_FORKSERVER));
            add(V_RAW_FORK, time_raw_fork());
        }
        for (int i = 0; i < POOLS_PER_ROUND; i++) {
            add(V_POOL_SPAWN, bench_pool_startup_ms(MPROC_SPAWN));
            add(V_POOL_FORKSERVER, bench_pool_startup_ms(MPROC_FORKSERVER));
        }
        run_python(V_PY_SPAWN, "spawn", PY_PER_ROUND, "");
        run_python(V_PY_FORK, "fork", PY_PER_ROUND, "");
        run_python(V_PY_FORKSERVER, "forkserver", PY_PER_ROUND, "");
        run_python(V_PY_POOL_SPAWN, "spawn", PY_POOLS_PER_ROUND, "pool");
        run_python(V_PY_POOL_FORKSERVER, "forkserver", PY_POOLS_PER_ROUND, "pool");
    }
#ifdef MPROC_BENCH_STATIC
    bench_print_header("Process start+join of a no-op child, statically linked binary (medians)");
#else
    bench_print_header("Process start+join of a no-op child, dynamically linked binary (medians)");
#endif
    printf("| variant | median ms | n | vs raw fork+wait |\n|---|---|---|---|\n");
    double raw = med(V_RAW_FORK);
    for (int v = V_SPAWN; v <= V_PY_FORKSERVER; v++) print_row(v, raw);
    printf("\n| Pool(2) create + first result | median ms | n | vs mproc forkserver |\n|---|---|---|---|\n");
    for (int v = V_POOL_SPAWN; v < NV; v++) print_row(v, med(V_POOL_FORKSERVER));
    print_goals();
    printf("\nmproc spawn: %.1fx faster than Python's spawn, %.2fx the raw posix_spawn; "
           "mproc fork: %.1fx faster than Python's fork (python: %s). The forkserver rows "
           "exclude its one-time start (one spawn).\n",
           nsamples[V_PY_SPAWN] ? med(V_PY_SPAWN) / med(V_SPAWN) : 0, med(V_SPAWN) / med(V_RAW_SPAWN),
           nsamples[V_PY_FORK] ? med(V_PY_FORK) / med(V_FORK) : 0,
           bench_python() ? bench_python() : "none");
    return 0;
}
