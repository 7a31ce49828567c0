/* Seed example 3: a pool of nine workers doubles 1..9.
   The C form of:
       with Pool(processes=9) as pool:
           print(pool.map(doubler, [1, 2, 3, 4, 5, 6, 7, 8, 9]))
   followed by the elapsed time in seconds. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L /* clock_gettime in strict C11 */
#endif
#include <stdio.h>

#include <mproc.h>

/* Seconds on a monotonic clock, like Python's time.perf_counter(). */
#ifdef _WIN32
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
static double seconds(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
#  include <time.h>
static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
#endif

static int doubler(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 2;
    return 0;
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1; /* if __name__ == '__main__': */
    int numbers[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, doubled[9];
    enum { N = sizeof numbers / sizeof numbers[0] };
    mproc_pool_options opt = {0};
    mproc_pool *pool;
    double t0 = seconds();
    opt.processes = 9;
    int rc = mproc_pool_create(&pool, &opt);
    if (rc == 0) {
        rc = mproc_pool_map(pool, doubler, numbers, sizeof numbers[0], N, doubled,
                            sizeof doubled[0], 0);
        mproc_pool_close(pool);
        mproc_pool_join(pool);
        mproc_pool_destroy(pool);
    }
    if (rc) {
        fprintf(stderr, "pool_map: %s\n", mproc_strerror(rc));
        return 1;
    }
    printf("[");
    for (int i = 0; i < N; i++) printf(i ? ", %d" : "%d", doubled[i]);
    printf("]\n");
    printf("%.6f\n", seconds() - t0);
    return 0;
}
