/* Shared helpers for benchmark programs: timing, medians, table output. */
#ifndef MPROC_BENCH_COMMON_H
#define MPROC_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "mproc.h"

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);
/* Median of n doubles (sorts a copy). */
double bench_median(const double *v, size_t n);
/* Path of Debian's python3 (/usr/bin/python3), or NULL if absent: the pyenv
   python3 on PATH starts several times slower and is not the reference. */
const char *bench_python(void);
/* Run a command and capture its stdout (at most cap-1 bytes); exit status. */
int bench_capture(const char *cmd, char *out, size_t cap);
/* Print the standard header line: host facts and load, for the record. */
void bench_print_header(const char *title);

/* Milliseconds for mproc_pool_create (2 workers, method) + the first
   apply() result; the pool is destroyed afterwards, untimed. Exits on
   failure. */
double bench_pool_startup_ms(mproc_start_method method);

#endif
