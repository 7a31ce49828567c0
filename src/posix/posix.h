/* Helpers shared by the POSIX backend's files (not part of the seam). */
#ifndef MPROC_POSIX_H
#define MPROC_POSIX_H

#include <stddef.h>
#include <time.h>

/* Path of this program's executable: resolved once from /proc/self/exe
   (or _NSGetExecutablePath). Under valgrind, which virtualises the link
   but not an exec of it, this names the real program. */
int mproc__posix_self_exe(char *buf, size_t cap);

/* The CLOCK_MONOTONIC time timeout_ms (>= 0) from now, as futex waits and
   monotonic condition variables take it. */
void mproc__posix_deadline_ts(int timeout_ms, struct timespec *ts);

#endif
