/* Start+join of a no-op child: mproc (spawn, fork) against a raw
   posix_spawn of this same binary and Python's multiprocessing (spawn,
   fork), interleaved in rounds so all see the same machine; medians. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "mproc.h"

extern char **environ;

enum { ROUNDS = 10, PER_ROUND = 12, PY_PER_ROUND = 10 };
enum { V_SPAWN, V_FORK, V_RAW, V_PY_SPAWN, V_PY_FORK, NV };
static const char *names[NV] = {
    "mproc spawn", "mproc fork", "raw posix_spawn of this binary (exits at once)",
    "Python multiprocessing spawn", "Python multiprocessing fork"};

static double samples[NV][ROUNDS * PER_ROUND];
static size_t nsamples[NV];

static int noop(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static double time_mproc(mproc_start_method method)
{
    mproc_process_options opt = {NULL, 0, method};
    mproc_process *p;
    uint64_t t0 = bench_now_ns();
    if (mproc_process_create(&p, noop, NULL, 0, &opt) || mproc_process_start(p) ||
        mproc_process_join(p, MPROC_FOREVER)) {
        fprintf(stderr, "mproc start/join failed\n");
        exit(1);
    }
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

static void run_python(int variant, const char *method)
{
    char cmd[1024], out[8192];
    const char *py = bench_python();
    if (!py) return;
    snprintf(cmd, sizeof cmd, "%s %s/py_spawn.py %s %d", py, MPROC_BENCH_DIR, method, PY_PER_ROUND);
    if (bench_capture(cmd, out, sizeof out) != 0) return;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        samples[variant][nsamples[variant]++] = atof(line);
}

static void print_row(int v, double base)
{
    if (!nsamples[v]) {
        printf("| %s | n/a | | |\n", names[v]);
        return;
    }
    double m = bench_median(samples[v], nsamples[v]);
    printf("| %s | %.3f | %zu | %.2fx |\n", names[v], m, nsamples[v], m / base);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--exit-now") == 0) return 0;
    if (mproc_main_guard(argc, argv) != 0) return 1;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            samples[V_SPAWN][nsamples[V_SPAWN]++] = time_mproc(MPROC_SPAWN);
            samples[V_RAW][nsamples[V_RAW]++] = time_raw_spawn();
            samples[V_FORK][nsamples[V_FORK]++] = time_mproc(MPROC_FORK);
        }
        run_python(V_PY_SPAWN, "spawn");
        run_python(V_PY_FORK, "fork");
    }
#ifdef MPROC_BENCH_STATIC
    bench_print_header("Process start+join of a no-op child, statically linked binary (medians)");
#else
    bench_print_header("Process start+join of a no-op child, dynamically linked binary (medians)");
#endif
    printf("| variant | median ms | n | vs raw posix_spawn |\n|---|---|---|---|\n");
    double raw = bench_median(samples[V_RAW], nsamples[V_RAW]);
    for (int v = 0; v < NV; v++) print_row(v, raw);
    double sp = bench_median(samples[V_SPAWN], nsamples[V_SPAWN]);
    if (nsamples[V_PY_SPAWN])
        printf("\nmproc spawn is %.1fx faster than Python's spawn method, %.2fx the raw posix_spawn "
               "(python: %s).\n",
               bench_median(samples[V_PY_SPAWN], nsamples[V_PY_SPAWN]) / sp, sp / raw, bench_python());
    if (nsamples[V_PY_FORK])
        printf("mproc fork is %.1fx faster than Python's fork method.\n",
               bench_median(samples[V_PY_FORK], nsamples[V_PY_FORK]) /
                   bench_median(samples[V_FORK], nsamples[V_FORK]));
    return 0;
}
