/*
 * The pool's transport seam: everything that moves units to workers and
 * watches them, behind one small interface, so that the scheduler
 * (pool_sched.c) is written once. The local transport (pool_local.c) runs
 * workers as processes on this machine; a remote one (MPI ranks, a later
 * issue) implements the same operations.
 *
 * Who calls what. The scheduler owns one thread per slot (a place for one
 * worker at a time); that thread calls start, then serve until the worker
 * has ended, then reap, and decides whether to start a replacement. serve
 * delivers the worker's events by calling the mproc__pool_ev_* functions
 * below with the pool's lock held, then mproc__pool_pump_all. Everything
 * else is called by the scheduler with the pool's lock held.
 *
 * What a transport must guarantee:
 * - Units reach a worker in the order put_unit accepted them and the
 *   worker runs them in that order; seq numbers grow by one per unit.
 * - put_unit and flush never block on the worker: put_unit says "no room"
 *   (0) instead, and the scheduler offers the unit elsewhere or later.
 * - Every unit it accepted is reported exactly once: done (ev_done), or
 *   through the worker's death (reap). Item failures (ev_item_failed) come
 *   before their unit's done.
 * - serve returns once the worker can report nothing more (it has ended,
 *   or was killed), however it ended; kill makes that happen soon.
 *
 * What it may report coarsely: the death. The local transport knows the
 * exact unit and item a dead worker was running (its status block), so
 * the scheduler keeps the results before that item, fails that item and
 * hands out the rest again (death->exact = 1). A transport that only
 * knows which units the worker held (a remote rank that vanished) sets
 * exact = 0: the scheduler then fails the oldest held unit as a whole
 * (the one that was running, since units run in order) and hands out the
 * others again.
 */
#ifndef MPROC_POOL_TRANSPORT_H
#define MPROC_POOL_TRANSPORT_H

#include "pool.h"

/* How a worker ended, from reap. */
typedef struct mproc__pool_death {
    char how[160];   /* "worker 2 (pid 123) was killed by signal 9" */
    int exit_code;   /* as mproc_process_exitcode (MPROC_EXIT_BOOTSTRAP: never ran) */
    int exact;       /* 1: seq, pos and phase say what it was running */
    uint64_t seq;    /* the unit it ran last */
    uint32_t pos;    /* the item of that unit it was at */
    uint32_t phase;  /* MPROC__PHASE_* of that unit */
    int no_guard;    /* 1: it ended without reaching mproc_main_guard (the
                        program re-ran main instead): never start another */
} mproc__pool_death;

typedef struct mproc__pool_transport {
    /* Once per slot at pool creation, before any thread runs; fini frees
       what init made (also after a failed init). */
    int (*init)(mproc__pool_slot *s);
    void (*fini)(mproc__pool_slot *s);
    /* Starts a worker in the slot. Without the lock (only the slot's own
       thread touches its transport state while the slot is STARTING). */
    int (*start)(mproc__pool_slot *s);
    /* Receives the worker's events until it has ended. Without the lock. */
    void (*serve)(mproc__pool_slot *s);
    /* After serve: waits for the worker's end and says how it ended.
       Without the lock. */
    void (*reap)(mproc__pool_slot *s, mproc__pool_death *d);
    /* Takes unit u (job, lo, n and seq set) for the worker: 1, or 0 if it
       has no room for it now. Sets u->place and u->wire_bytes. */
    int (*put_unit)(mproc__pool_slot *s, mproc__pool_unit *u);
    /* Sends what put_unit queued; stop: then tell the worker to exit once
       it has finished its units. A worker that cannot be reached is
       killed (its death then settles its units). */
    void (*flush)(mproc__pool_slot *s, int stop);
    /* The results of a map unit the worker finished or ran part of, until
       the unit is released. */
    const unsigned char *(*results)(mproc__pool_slot *s, const mproc__pool_unit *u);
    /* The worker's item clock for task timeouts: 1 with the unit and item
       it is running and a counter that moves at each item start, 0 if it
       runs nothing now or the transport cannot tell. */
    int (*progress)(mproc__pool_slot *s, uint64_t *seq, uint32_t *pos, uint32_t *ticks);
    /* Ends the worker now (terminate, timeout, a worker that broke the
       protocol); serve then returns. */
    void (*kill)(mproc__pool_slot *s);
    /* Sub-items the slot's workers' tasks have reported with
       mproc_task_progress since the pool began: those of units finished,
       and (local transport) of the unit running now, read live; a unit
       whose worker died takes its reports back. A remote transport may
       count a unit's reports only when it finishes. Never decreases but
       for a death. NULL: the transport counts none. */
    uint64_t (*reported)(mproc__pool_slot *s);
    /* Optional (NULL: only serve reads the worker's events). A thread
       waiting in the pool reads them itself while they come quickly, so
       that a round trip involves only that thread and the worker, with no
       serving thread to wake in between.
       serve_ready: without the lock, from any thread, while
       pool->callers_serving counts the caller: delivers what the worker
       has sent by now as serve would (events with the lock held, then
       mproc__pool_pump_all), never waiting for it. 1 if it delivered
       something, else 0 (also while serve is still the reader: serve then
       steps aside at its next event and stays aside while callers serve).
       serve_resume: without the lock: serve reads again at once (the last
       caller stopped while the worker holds units nobody waits for); if
       it is not called, serve takes over again on its own within a few
       milliseconds of the last caller's leaving. */
    int (*serve_ready)(mproc__pool_slot *s);
    void (*serve_resume)(mproc__pool_slot *s);
} mproc__pool_transport;

/* Workers on this machine: processes, conns and shared memory. */
extern const mproc__pool_transport mproc__pool_local_transport;

/* mproc_pool_create over another transport (the scheduler's tests use an
   in-process one, tests/pool_sched.c). */
int mproc__pool_create_on(mproc_pool **out, const mproc_pool_options *opt,
                          const mproc__pool_transport *transport);

/* What mproc_pool_create does: NULL (the default) creates a pool on this
   machine; a remote transport may make itself the default (the MPI guard
   on rank 0, pool_remote.c). */
typedef int (*mproc__pool_create_fn)(mproc_pool **out, const mproc_pool_options *opt);
void mproc__pool_set_default_create(mproc__pool_create_fn fn);

/* ---- events: the transport's serve calls these with the lock held ------- */
/* The worker is ready (its initializer ran). */
void mproc__pool_ev_ready(mproc__pool_slot *s);
/* Unit seq finished: code 0, or a code for every item not already failed;
   out: an apply's result (malloc'd, handed over). took_us: how long the
   worker ran it. MPROC_EPROTO if seq is not the oldest unit the worker
   holds (the transport then kills the worker). */
int mproc__pool_ev_done(mproc__pool_slot *s, uint64_t seq, int code, const char *msg,
                        unsigned char *out, size_t out_len, uint32_t took_us);
/* Item pos of unit seq failed (the unit goes on). MPROC_EPROTO if the
   worker holds no such unit and item. */
int mproc__pool_ev_item_failed(mproc__pool_slot *s, uint64_t seq, uint32_t pos, int code,
                               const char *msg);
/* The same two with the task function's own return value (status) of a
   failed apply or item, which the caller then reads (mproc_task_error);
   the forms above pass 0. */
int mproc__pool_ev_done_status(mproc__pool_slot *s, uint64_t seq, int code, int status,
                               const char *msg, unsigned char *out, size_t out_len,
                               uint32_t took_us);
int mproc__pool_ev_item_failed_status(mproc__pool_slot *s, uint64_t seq, uint32_t pos, int code,
                                      int status, const char *msg);

#endif
