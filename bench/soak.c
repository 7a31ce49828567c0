/* Soak test (not run in CI): many process start/join cycles and pool
   create/destroy cycles, checking that descriptors and memory stay flat.
   Usage: bench_soak [process_cycles (100000)] [pool_cycles (10000)]
   Prints the fd count and RSS at checkpoints; exits 1 if either grew. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mproc.h"

static int noop(const void *arg, size_t len)
{
    (void)arg;
    return (int)(len & 0x7f);
}

static int double_it(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 2;
    return 0;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static long rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss * 4;
}

typedef struct checkpoint { int fds; long rss; } checkpoint;

static int process_cycle(long i)
{
    mproc_process *p;
    int code = -1;
    size_t len = (size_t)(i % 100);
    char arg[100] = {0};
    if (mproc_process_create(&p, noop, arg, len, NULL) || mproc_process_start(p) ||
        mproc_process_join(p, MPROC_FOREVER) || mproc_process_exitcode(p, &code))
        return -1;
    mproc_process_destroy(p);
    return code == (int)len ? 0 : -1;
}

static int pool_cycle(void)
{
    mproc_pool *pool;
    mproc_pool_options opt = {0};
    int items[8] = {1, 2, 3, 4, 5, 6, 7, 8}, results[8];
    opt.processes = 2;
    if (mproc_pool_create(&pool, &opt)) return -1;
    int rc = mproc_pool_map(pool, double_it, items, sizeof items[0], 8, results, sizeof results[0], 0);
    mproc_pool_destroy(pool);
    return rc || results[7] != 16 ? -1 : 0;
}

/* Runs cycles of one kind, reporting every tenth; 1 if fds or RSS grew
   between the first checkpoint (after warm-up) and the last. */
static int soak(const char *what, long cycles, int (*cycle)(long))
{
    checkpoint first = {0, 0}, now;
    long step = cycles >= 10 ? cycles / 10 : 1;
    uint64_t t0 = bench_now_ns();
    for (long i = 1; i <= cycles; i++) {
        if (cycle(i) != 0) {
            fprintf(stderr, "%s cycle %ld failed\n", what, i);
            return 1;
        }
        if (i % step == 0 || i == cycles) {
            now.fds = count_fds();
            now.rss = rss_kib();
            if (!first.rss) first = now;
            printf("| %s | %ld | %d | %ld | %.1f |\n", what, i, now.fds, now.rss,
                   (double)(bench_now_ns() - t0) / 1e9);
            fflush(stdout);
        }
    }
    /* RSS may wobble by a few pages (malloc arenas); growth would be steady. */
    return now.fds > first.fds || now.rss > first.rss + 256;
}

static int pool_cycle_any(long i)
{
    (void)i;
    return pool_cycle();
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    long procs = argc > 1 ? atol(argv[1]) : 100000, pools = argc > 2 ? atol(argv[2]) : 10000;
    bench_print_header("Soak: fds and RSS over many cycles");
    printf("| cycles of | done | open fds | RSS KiB | seconds |\n|---|---|---|---|---|\n");
    int grew = soak("process start/join", procs, process_cycle);
    if (pools > 0) grew |= soak("pool create/map/destroy", pools, pool_cycle_any);
    printf("\n%s\n", grew ? "GROWTH DETECTED" : "flat: no descriptor or memory growth");
    return grew;
}
