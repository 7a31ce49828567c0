/* A long map with a live progress bar: the longest Collatz chain below
   N = 2,000,000, one item per start value, results consumed with imap as
   they come while mproc_pool_stats_get() drives a bar on stderr (drawn
   only when stderr is a terminal). The answer goes to stdout. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L /* isatty, fileno in strict C11 */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <mproc.h>

#ifdef _WIN32
#  include <io.h>
#  define stderr_is_terminal() _isatty(_fileno(stderr))
#else
#  include <unistd.h>
#  define stderr_is_terminal() isatty(fileno(stderr))
#endif

enum { N = 2000000, BAR = 40 };

static int collatz_steps(const void *item, void *result)
{
    uint64_t n = *(const uint32_t *)item;
    uint32_t steps = 0;
    while (n > 1) {
        n = n % 2 ? 3 * n + 1 : n / 2;
        steps++;
    }
    *(uint32_t *)result = steps;
    return 0;
}

static void draw(mproc_pool *pool)
{
    mproc_pool_stats st;
    if (mproc_pool_stats_get(pool, &st) != 0 || st.submitted == 0) return;
    uint64_t finished = st.done + st.failed;
    int filled = (int)(finished * BAR / st.submitted);
    fprintf(stderr, "\r[%.*s%*s] %3d%%  %llu/%llu", filled,
            "########################################", BAR - filled, "",
            (int)(finished * 100 / st.submitted), (unsigned long long)finished,
            (unsigned long long)st.submitted);
    fflush(stderr);
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    uint32_t *start = malloc(N * sizeof *start), steps, best = 0, best_start = 0;
    if (!start) return 1;
    for (uint32_t i = 0; i < N; i++) start[i] = i + 1;
    int bar = stderr_is_terminal();
    mproc_pool *pool;
    mproc_iter *it = NULL;
    size_t index;
    int rc = mproc_pool_create(&pool, NULL);
    if (rc == 0) {
        rc = mproc_pool_imap(pool, collatz_steps, start, sizeof *start, N, sizeof steps, 0, 0, &it);
        for (size_t k = 0; rc == 0; k++) {
            if ((rc = mproc_iter_next(it, &steps, &index, MPROC_FOREVER)) != 0) break;
            if (steps > best) {
                best = steps;
                best_start = start[index];
            }
            if (bar && k % 20000 == 0) draw(pool);
        }
        if (rc == MPROC_EDONE) rc = 0;
        if (bar) {
            draw(pool);
            fputc('\n', stderr);
        }
        mproc_iter_destroy(it);
        mproc_pool_close(pool);
        mproc_pool_join(pool);
        mproc_pool_destroy(pool);
    }
    free(start);
    if (rc) {
        fprintf(stderr, "progress: %s\n", mproc_strerror(rc));
        return 1;
    }
    printf("longest Collatz chain below %d starts at %u: %u steps\n", N + 1, best_start, best);
    return 0;
}
