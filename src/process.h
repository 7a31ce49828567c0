/* Internal view of a process object, for modules that manage processes
   (the pool) or wait on them (mproc_wait). */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include "internal.h"

/* A handle that becomes ready when the started process ends (for
   mproc_wait), or MPROC__NO_HANDLE if the process is not running. */
mproc__handle mproc__process_wait_handle(mproc_process *p);

/* Child-side state set by the guard (bootstrap.c), read by process.c. */
void mproc__set_child_identity(const char *name, int64_t parent_pid);

/* In a daemon child: end this process when the parent's end of channel
   closes (the parent has died). Starts a watcher thread. */
void mproc__watch_parent(mproc__handle channel);

#endif
