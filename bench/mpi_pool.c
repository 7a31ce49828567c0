/* The Pool over MPI ranks against the local pool and mpi4py.futures'
   MPIPoolExecutor, in one run. Run without arguments it is the driver: it
   starts `mpirun -n 3 <itself> --ranks` (rank 0 + 2 worker ranks) and
   `mpirun -n 3 python3 -m mpi4py.futures py_mpi_pool.py` (1 + 2 workers),
   reads their figures and prints the table. Work (medians of RUNS runs,
   the MPI and local pools interleaved):
     seed:  Pool.map(doubler, 1..9) on a live pool, SEED_REPS times;
     small: map of doubler over SMALL ints, default chunksize;
     cpu:   map of CPU_ITEMS items of a fixed floating-point loop; the
            speed-up is the serial time of the same items over the pool's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mproc_mpi.h>

#include "common.h"

#define RUNS 5
#define SEED_REPS 200
#define SMALL 200000
#define CPU_ITEMS 48
#define CPU_LOOP 4000000L

static int doubler(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 2;
    return 0;
}

static int cpu_item(const void *item, void *result)
{
    volatile double x = *(const int *)item; /* the serial run must not skip it */
    for (long i = 0; i < CPU_LOOP; i++) x = x * 1.0000001 + 1e-9;
    *(double *)result = x;
    return 0;
}

static double seconds(void) { return (double)bench_now_ns() / 1e9; }

/* One run of the three workloads on pool: seed and small in items/s, cpu
   in seconds. */
static int measure(mproc_pool *pool, double *seed_ips, double *small_ips, double *cpu_s)
{
    static int small_in[SMALL], small_out[SMALL];
    int nine[9], out9[9], cin[CPU_ITEMS];
    double cout[CPU_ITEMS];
    for (int i = 0; i < 9; i++) nine[i] = i + 1;
    for (int i = 0; i < SMALL; i++) small_in[i] = i;
    for (int i = 0; i < CPU_ITEMS; i++) cin[i] = i;
    double t0 = seconds();
    for (int k = 0; k < SEED_REPS; k++)
        if (mproc_pool_map(pool, doubler, nine, sizeof nine[0], 9, out9, sizeof out9[0], 0)) return 1;
    double t1 = seconds();
    if (mproc_pool_map(pool, doubler, small_in, sizeof small_in[0], SMALL, small_out, sizeof small_out[0], 0))
        return 1;
    double t2 = seconds();
    if (mproc_pool_map(pool, cpu_item, cin, sizeof cin[0], CPU_ITEMS, cout, sizeof cout[0], 1)) return 1;
    double t3 = seconds();
    *seed_ips = 9.0 * SEED_REPS / (t1 - t0);
    *small_ips = SMALL / (t2 - t1);
    *cpu_s = t3 - t2;
    return 0;
}

static double serial_cpu(void)
{
    double cout[CPU_ITEMS];
    double t0 = seconds();
    for (int i = 0; i < CPU_ITEMS; i++) cpu_item(&i, &cout[i]);
    return seconds() - t0;
}

/* The two pools side by side, runs interleaved (serial, MPI, local) so
   that the machine's load moves all three alike; medians per column and
   of the per-run speed-up ratio. */
static int ranks_mode(void)
{
    mproc_pool_options opt = {0};
    mproc_pool *mpi, *local;
    double v[6][RUNS], ratio[RUNS];
    opt.processes = 2;
    if (mproc_mpi_pool_create(&mpi, NULL)) return 1;
    mproc_mpi_pool_default(0); /* the same program's local pool */
    if (mproc_pool_create(&local, &opt)) return 1;
    for (int r = 0; r < RUNS; r++) {
        double serial = serial_cpu();
        if (measure(mpi, &v[0][r], &v[1][r], &v[2][r]) || measure(local, &v[3][r], &v[4][r], &v[5][r]))
            return 1;
        ratio[r] = (serial / v[2][r]) / (serial / v[5][r]);
        v[2][r] = serial / v[2][r]; /* speed-ups */
        v[5][r] = serial / v[5][r];
    }
    mproc_pool_destroy(mpi);
    mproc_pool_destroy(local);
    printf("mpi %.1f %.1f %.3f\nlocal %.1f %.1f %.3f\nratio %.3f\n", bench_median(v[0], RUNS),
           bench_median(v[1], RUNS), bench_median(v[2], RUNS), bench_median(v[3], RUNS), bench_median(v[4], RUNS),
           bench_median(v[5], RUNS), bench_median(ratio, RUNS));
    return 0;
}

int main(int argc, char **argv)
{
    char out[4096], cmd[2048];
    double ratio, m[3], l[3], p[4];
    if (argc > 1 && strcmp(argv[1], "--ranks") == 0) {
        if (mproc_mpi_guard(argc, argv) != 0) return 1;
        return mproc_mpi_size() == 3 ? ranks_mode() : 1;
    }
    if (mproc_main_guard(argc, argv) != 0) return 1;
    const char *env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader";
    snprintf(cmd, sizeof cmd, "env %s mpirun --oversubscribe -n 3 %s --ranks", env, argv[0]);
    if (bench_capture(cmd, out, sizeof out) ||
        sscanf(out, "mpi %lf %lf %lf local %lf %lf %lf ratio %lf", &m[0], &m[1], &m[2], &l[0], &l[1], &l[2],
               &ratio) != 7) {
        fprintf(stderr, "bench_mpi_pool: the mpirun run failed:\n%s\n", out);
        return 1;
    }
    snprintf(cmd, sizeof cmd, "env %s mpirun --oversubscribe -n 3 %s -m mpi4py.futures %s/py_mpi_pool.py", env,
             bench_python() ? bench_python() : "python3", MPROC_BENCH_DIR);
    int have_py = !bench_capture(cmd, out, sizeof out) &&
                  sscanf(out, "mpi4py %lf %lf %lf %lf", &p[0], &p[1], &p[2], &p[3]) == 4;
    bench_print_header("Pool over MPI ranks (mpirun -n 3: rank 0 + 2 worker ranks) vs local pool (2 workers) "
                       "vs mpi4py.futures MPIPoolExecutor (2 workers)");
    printf("| work | mproc over MPI | mproc local pool | mpi4py.futures | MPI / mpi4py | MPI / local |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| seed map (9 ints, x%d), items/s | %.0f | %.0f | %.0f | %.1fx | %.2f |\n", SEED_REPS, m[0], l[0],
           have_py ? p[0] : 0, have_py ? m[0] / p[0] : 0, m[0] / l[0]);
    printf("| small items (%d ints), items/s | %.0f | %.0f | %.0f | %.1fx | %.2f |\n", SMALL, m[1], l[1],
           have_py ? p[1] : 0, have_py ? m[1] / p[1] : 0, m[1] / l[1]);
    printf("| CPU-bound (%d items), speed-up over serial | %.2fx | %.2fx | %.2fx | | %.0f%% |\n", CPU_ITEMS, m[2],
           l[2], have_py ? p[3] / p[2] : 0, 100.0 * ratio);
    if (!have_py) printf("\n(mpi4py.futures did not run: %s)\n", out);
    return 0;
}
