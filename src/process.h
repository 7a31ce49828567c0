/* Internal view of a process object, for modules that manage processes
   (the pool) or wait on them (mproc_wait). */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include "internal.h"

/* A handle that becomes ready when the started process ends, or
   MPROC__NO_HANDLE if the process is not running. */
mproc__handle mproc__process_wait_handle(mproc_process *p);
/* For mproc_wait: 0 with *h a handle that becomes ready when the running
   process ends, 1 if it has ended already, MPROC_ESTATE if never started. */
int mproc__process_wait_prepare(mproc_process *p, mproc__handle *h);

/* Child-side state set by the guard (bootstrap.c) or the fork path, read
   by process.c: name, parent and the start method that made this child. */
void mproc__set_child_identity(const char *name, int64_t parent_pid, mproc_start_method method);

/* In a daemon child: end this process when the parent's end of channel
   closes (the parent has died). Starts a watcher thread. */
void mproc__watch_parent(mproc__handle channel);

#endif
