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
int mproc__queue_wait_prepare(mproc_queue *q, mproc__handle *h);
int mproc__queue_wait_finish(mproc_queue *q, int woke);
/* A queue's doorbell or a conn's link can lose a wake to another waiter
   (each sleeper takes one token, not necessarily its own); sleepers and
   mproc_wait look again at least this often. */
#define MPROC__WAIT_SLICE_MS 100

/* Atomics on memory shared between processes. GCC/Clang builtins (lock-free
   on every supported target for 32/64-bit words) or MSVC Interlocked*. */
#if defined(_MSC_VER) && !defined(__clang__)
#  include <intrin.h>
static inline uint64_t mproc__a_load(volatile uint64_t *p) { return (uint64_t)_InterlockedOr64((volatile __int64 *)p, 0); }
static inline void mproc__a_store(volatile uint64_t *p, uint64_t v) { _InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
static inline void mproc__a_store_rel(volatile uint64_t *p, uint64_t v) { _InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
static inline uint64_t mproc__a_add(volatile uint64_t *p, uint64_t v) { return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v) + v; }
static inline int mproc__a_cas(volatile uint64_t *p, uint64_t expect, uint64_t want)
{
    return (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, (__int64)want, (__int64)expect) == expect;
}
#  define mproc__cpu_relax() _mm_pause()
#else
/* Sequentially consistent throughout: the waiter/waker handshake of the
   queue (announce, then re-check; publish, then look for waiters) needs
   the store-load ordering that only seq_cst gives. */
static inline uint64_t mproc__a_load(volatile uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void mproc__a_store(volatile uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
/* For words no waiter handshake depends on (counters, markers read after
   taking a lock): ordered after earlier writes, but no full fence. */
static inline void mproc__a_store_rel(volatile uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t mproc__a_add(volatile uint64_t *p, uint64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int mproc__a_cas(volatile uint64_t *p, uint64_t expect, uint64_t want)
{
    return __atomic_compare_exchange_n(p, &expect, want, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
#  if defined(__x86_64__) || defined(__i386__)
#    define mproc__cpu_relax() __builtin_ia32_pause()
#  elif defined(__aarch64__)
#    define mproc__cpu_relax() __asm__ __volatile__("yield")
#  else
#    define mproc__cpu_relax() ((void)0)
#  endif
#endif

#endif
