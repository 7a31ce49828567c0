#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, size_t n)
{
    if (n == 0) return 0.0;
    double *c = malloc(n * sizeof *c);
    if (!c) return 0.0;
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double m = (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2.0;
    free(c);
    return m;
}

const char *bench_python(void)
{
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
}

int bench_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

void bench_print_header(const char *title)
{
    double load[1] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load[0]) != 1) load[0] = -1;
        fclose(f);
    }
    printf("\n### %s\n\n_nproc=%ld load=%.2f_\n\n", title, sysconf(_SC_NPROCESSORS_ONLN), load[0]);
}

static int echo_task(const void *in, size_t len, mproc_buf *out) { return mproc_buf_append(out, in, len); }

double bench_pool_startup_ms(mproc_start_method method)
{
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    void *out;
    size_t len;
    int v = 1;
    opt.processes = 2;
    opt.method = method;
    uint64_t t0 = bench_now_ns();
    int rc = mproc_pool_create(&pool, &opt);
    if (!rc) rc = mproc_pool_apply(pool, echo_task, &v, sizeof v, &out, &len);
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    if (rc) {
        fprintf(stderr, "pool start-up failed: %s\n", mproc_strerror(rc));
        exit(1);
    }
    mproc_free(out);
    mproc_pool_destroy(pool);
    return ms;
}
