/* Shared helpers for mproc's CMocka tests. Every test program is also the
   child program of its own tests: main() passes mproc_main_guard() first. */
#ifndef MPROC_TESTUTIL_H
#define MPROC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mproc.h"

/* Generous: tests must pass on a loaded 2-core machine and under Wine. */
#define TU_JOIN_TIMEOUT_MS 60000

/* Start target(arg) in a new process, join it and return its exit code
   (asserts that start and join succeed). */
int tu_run_child(mproc_target target, const void *arg, size_t arg_len);
/* Start a process and return it running (asserts success). */
mproc_process *tu_start(mproc_target target, const void *arg, size_t arg_len);
/* Join with the generous timeout and return the exit code (asserts). */
int tu_join(mproc_process *p);

/* A message body that depends on every byte's position and a seed, and
   its check (1 if intact): torn, reordered or mixed messages fail it. */
void tu_fill(unsigned char *p, size_t n, uint64_t seed);
int tu_check(const unsigned char *p, size_t n, uint64_t seed);

/* main() for a test program: guard first, then the group. */
#define TU_MAIN(tests)                                                       \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        int guard_rc_ = mproc_main_guard(argc, argv);                        \
        if (guard_rc_ != 0) return 3;                                        \
        return cmocka_run_group_tests(tests, NULL, NULL);                    \
    }

#endif
