/* Internal interface between the message modules: conn.c and queue.c
   expose readiness hooks that wait.c (mproc_wait) drives. */
#ifndef MPROC_COMM_H
#define MPROC_COMM_H

#include "internal.h"

/* Readiness protocol for mproc_wait, the same for conns and queues:
   prepare returns 1 if the object is ready now (nothing armed), 0 with
   *h set to a handle to wait on, or a negative error; finish must follow
   every prepare that returned 0 and returns 1 if the object is ready
   (woke: the OS wait reported its handle ready). */
int mproc__conn_wait_prepare(mproc_conn *c, mproc__handle *h);
int mproc__conn_wait_finish(mproc_conn *c);
/* 1 if a message (or the other end's going) is there now: no system call,
   for callers that spin before they sleep (the pool). */
int mproc__conn_readable(mproc_conn *c);
/* 1 once the other end has gone, asking the link now (a system call): for
   a reader that never sleeps on the link, which is how a sleeper learns
   it (the pool's callers that read a worker's conn). */
int mproc__conn_peer_gone(mproc_conn *c);
int mproc__queue_wait_prepare(mproc_queue *q, mproc__handle *h);
int mproc__queue_wait_finish(mproc_queue *q, int woke);
/* A queue's doorbell or a conn's link can lose a wake to another waiter
   (each sleeper takes one token, not necessarily its own); sleepers and
   mproc_wait look again at least this often. */
#define MPROC__WAIT_SLICE_MS 100

#endif
