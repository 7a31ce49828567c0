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

/* ---- start methods and single cases -------------------------------------
   Every test program runs its cases under a start method:
     test_x                          every case once, under the default method
     test_x --list                   "case method..." lines ("case -" for a case
                                     that runs once, whatever the method)
     test_x --method M [--case C]    the cases that run under M (or case C)
   ctest registers one entry per case and method from --list (tests/
   CMakeLists.txt), so a hang names its case. The method reaches the
   program's children through MPROC_TEST_METHOD, so their own starts use it
   too (nested starts, pools created in a child).
   Which methods a case runs under: the program's (all the platform has
   when CMake defines TU_EVERY_METHOD, else once), unless the case says
   otherwise with tu_test_methods() / tu_test_once(); never fork when CMake
   defines TU_NO_FORK. */
#define TU_M(method) (1u << (method))
#define TU_ONCE 1u /* does not depend on the method: run once */
#define TU_EXCEPT_FORK (TU_M(MPROC_SPAWN) | TU_M(MPROC_FORKSERVER))
#define tu_test_methods(f, mask) {#f, f, NULL, NULL, (void *)(uintptr_t)(mask)}
#define tu_test_once(f) tu_test_methods(f, TU_ONCE)

/* First thing in main(): takes the method from --method or
   MPROC_TEST_METHOD, then passes mproc_main_guard() (exits 3 if it fails). */
void tu_guard(int argc, char **argv);
/* The group, as selected by the command line. */
int tu_run(int argc, char **argv, const struct CMUnitTest *tests, size_t n);
#define TU_RUN(argc, argv, tests) tu_run(argc, argv, tests, sizeof(tests) / sizeof((tests)[0]))
/* The method the current run uses (the default when none was given). */
mproc_start_method tu_method(void);

/* A child target: exits with its one-byte argument (100 if not one byte). */
int tu_exit_with_arg_byte(const void *arg, size_t len);
/* The pids of pid's children (of its main thread) where the OS lists them
   (Linux: /proc/PID/task/PID/children); 0 elsewhere. */
size_t tu_children_of(int64_t pid, int64_t *out, size_t cap);
/* Starts and joins one child: a forkserver (which keeps one descriptor
   for the program's life) is then up before a test counts descriptors. */
void tu_start_method_ready(void);

/* main() for a test program with a file-scope tests[] array. */
#define TU_MAIN(tests)                                                       \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        tu_guard(argc, argv);                                                \
        return TU_RUN(argc, argv, tests);                                    \
    }

#endif
