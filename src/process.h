/* Internal view of a process object, for modules that manage processes
   (the pool) or wait on them (mproc_wait). */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include "internal.h"

/* For mproc_wait: 0 with *h a handle that becomes ready when the running
   process ends, 1 if it has ended already, MPROC_ESTATE if never started. */
int mproc__process_wait_prepare(mproc_process *p, mproc__handle *h);

/* mproc_process_start, except that a forkserver start returns as soon as
   the request and the bootstrap are on their way: the server's answer
   (the pid) is read when first needed. A pool starting its first worker
   goes on with its threads meanwhile instead of waiting a wake-up for a
   pid it does not need yet. A start the server could not carry out then
   shows as a child that ended with its status lost (join: MPROC_ECHILD). */
int mproc__process_start_pid_later(mproc_process *p);

/* The start method m stands for (MPROC_METHOD_DEFAULT: the process-wide
   default), if it exists on this platform: 0 and *out, MPROC_EINVAL for
   an unknown method, MPROC_ENOTSUP for one this platform lacks. Every
   check of a method (processes, pools, the default) goes through here. */
int mproc__method_resolve(mproc_start_method m, mproc_start_method *out);

#endif
