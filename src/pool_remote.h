/*
 * The pool over remote workers: a transport (pool_transport.h) whose
 * workers are other processes of a message-passing job -- MPI ranks --
 * reached only through point-to-point messages. The core knows no MPI:
 * the message layer comes in as the function table below, filled by
 * libmproc_mpi (src/mpi/mproc_mpi.c). These few functions are exported
 * from the core for that library only; they are not public API.
 *
 * Protocol. Rank 0 runs the pool; each worker rank runs
 * mproc__pool_remote_worker. Every message starts with an 8-byte session
 * number (one per pool and worker start); the rest is the pool's record
 * format (pool.h):
 *   HELLO  rank 0 -> worker: a new session; payload: has_init (u32),
 *          fnref length (u32), the initializer's fnref, the initarg.
 *   DATA   rank 0 -> worker: records T_DEFINE, T_MAPDATA, T_APPLY, T_STOP.
 *          worker -> rank 0: R_READY, R_DONE (results inside), R_ITEMFAIL,
 *          R_ALIVE (a heartbeat while nothing else goes out), R_BYE.
 *   ABORT  rank 0 -> worker: drop the session's units not yet started.
 *   EXIT   rank 0 -> worker: leave (the program on rank 0 is ending); the
 *          number is 1 if a rank was lost (then nobody may finalize).
 * The worker runs tasks on a thread of its own, so its main thread keeps
 * talking (heartbeats) while a task runs: rank 0 declares a rank lost
 * when it heard nothing for the dead timeout, or at once when the rank's
 * process, on rank 0's machine, is gone.
 */
#ifndef MPROC_POOL_REMOTE_H
#define MPROC_POOL_REMOTE_H

#include <mproc.h>

enum { MPROC__NET_HELLO = 1, MPROC__NET_DATA = 2, MPROC__NET_ABORT = 3, MPROC__NET_EXIT = 4 };

/* The message layer. No call blocks. Rank 0 makes all its calls under one
   lock; a worker makes them from its main thread only. */
typedef struct mproc__net {
    void *ctx;
    int rank, size;     /* this process's rank; ranks 0..size-1 */
    char node[64];      /* this process's machine (MPI processor name) */
    /* Sends len bytes to peer; buf stays untouched and valid until test
       says the request is done. 0 or an error. */
    int (*isend)(void *ctx, int peer, int tag, const void *buf, size_t len, void **req);
    /* 1: done (the request is freed), 0: not yet, < 0: failed (freed). */
    int (*test)(void *ctx, void *req);
    /* 1 if a message from peer is there: *tag, *len and *msg, a handle to
       receive exactly that message with irecv; 0 if none; < 0 error. */
    int (*probe)(void *ctx, int peer, int *tag, size_t *len, void **msg);
    int (*irecv)(void *ctx, void *msg, void *buf, size_t len, void **req);
} mproc__net;

/* Rank 0: the message layer is there (called once, by the MPI guard). */
MPROC_API int mproc__pool_remote_install(const mproc__net *net);
/* Rank 0: a pool over the worker ranks not lost (opt->processes of them
   at most; 0: all). MPROC_ENOTSUP for options a remote worker cannot
   honour, MPROC_ESTATE if no layer is installed or the ranks serve
   another pool, MPROC_ECHILD if no worker rank is left. */
MPROC_API int mproc__pool_remote_create(mproc_pool **out, const mproc_pool_options *opt);
/* Rank 0: 1 makes mproc_pool_create build pools over the ranks (what the
   MPI guard does when there are worker ranks); 0: on this machine again. */
MPROC_API void mproc__pool_remote_default(int on);
/* Rank 0: how long a silent rank is given before it is declared lost. */
MPROC_API void mproc__pool_remote_set_dead_ms(int ms);
/* Rank 0, at the end: tells every worker rank to leave. 1 if every rank
   is still there (a collective end such as MPI_Finalize is safe), 0 if a
   rank was lost (it would wait for it for ever). */
MPROC_API int mproc__pool_remote_shutdown(void);
/* A worker rank: serves pools until rank 0 says EXIT. 0; MPROC_ECHILD if
   a rank was lost (the caller must not finalize: see shutdown); or an
   error. */
MPROC_API int mproc__pool_remote_worker(const mproc__net *net);

#endif
