/*
 * The atomic operations mproc uses, on 32-bit and 64-bit words that may
 * live in memory shared between processes: the one header for them (sync
 * objects, rings, the pool). Lock-free on every supported target for both
 * widths.
 *
 * Ordering. Everything is sequentially consistent except store64_rel. The
 * wait/wake protocols (sync.c, ring.c) are Dekker-style ("I announce I
 * wait, then look" against "I change, then look for waiters"), which
 * needs a full fence between the store and the load: a seq_cst store, a
 * read-modify-write, or mproc__fence. store64_rel is for words no such
 * handshake depends on (a ring's published indices and counters, whose
 * waiters are looked for after a later fence): ordered after the writes
 * before it, but no fence, which on x86 is a plain store.
 *
 * GCC and Clang (also MinGW): the __atomic builtins. MSVC's C compiler
 * (cl.exe, and clang-cl, which compiles here exactly what cl.exe does) has
 * no usable <stdatomic.h> in the versions mproc supports:
 * Interlocked* (full barriers on every target), and on x64, whose loads
 * and stores are already ordered that way, plain volatile accesses kept in
 * place by compiler barriers for loads and release stores.
 */
#ifndef MPROC_ATOMIC_H
#define MPROC_ATOMIC_H

#include <stdint.h>

#if defined(_MSC_VER) /* cl.exe, and clang-cl in the same code */
#  include <intrin.h>
#  define MPROC__ATOMIC_MSVC 1
#endif

#if !defined(MPROC__ATOMIC_MSVC)

static inline uint32_t mproc__load32(const volatile uint32_t *p)
{ return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void mproc__store32(volatile uint32_t *p, uint32_t v)
{ __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t mproc__xchg32(volatile uint32_t *p, uint32_t v)
{ return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
/* Returns 1 if *p was expected and is now desired. */
static inline int mproc__cas32(volatile uint32_t *p, uint32_t expected, uint32_t desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
/* Returns the value before the addition. */
static inline uint32_t mproc__add32(volatile uint32_t *p, uint32_t v)
{ return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

static inline uint64_t mproc__load64(const volatile uint64_t *p)
{ return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void mproc__store64(volatile uint64_t *p, uint64_t v)
{ __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline void mproc__store64_rel(volatile uint64_t *p, uint64_t v)
{ __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int mproc__cas64(volatile uint64_t *p, uint64_t expected, uint64_t desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
/* Returns the value before the addition. */
static inline uint64_t mproc__add64(volatile uint64_t *p, uint64_t v)
{ return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
#  if defined(__SANITIZE_THREAD__)
/* GCC's TSan refuses thread fences: a read-modify-write, a full barrier
   on the hardware, in its place. */
static inline void mproc__fence(void)
{
    static volatile uint64_t word;
    (void)__atomic_fetch_add(&word, 0, __ATOMIC_SEQ_CST);
}
#  else
static inline void mproc__fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
#  endif

/* Orders nothing on the hardware, only keeps the compiler from moving
   memory accesses across it: the cheap side of an asymmetric fence
   (os.h: mproc__os_remote_fence), whose other side pays for both. */
static inline void mproc__compiler_fence(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

/* Memory hints: start fetching the line at p, to read it (prefetch) or to
   write it (prefetchw), while the code goes on. They order nothing. */
static inline void mproc__prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
static inline void mproc__prefetchw(const void *p) { __builtin_prefetch(p, 1, 3); }

/* A pause in a spin loop: lets the other hardware thread run and keeps the
   loop from flooding the memory system with loads. */
static inline void mproc__cpu_relax(void)
{
#  if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#  elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#  endif
}

#else /* MSVC */

/* An interlocked no-op gives a sequentially consistent load on every MSVC
   target (plain volatile loads are not ordered on ARM64 under /volatile:iso). */
static inline uint32_t mproc__load32(const volatile uint32_t *p)
{ return (uint32_t)_InterlockedCompareExchange((volatile long *)p, 0, 0); }
static inline void mproc__store32(volatile uint32_t *p, uint32_t v)
{ (void)_InterlockedExchange((volatile long *)p, (long)v); }
static inline uint32_t mproc__xchg32(volatile uint32_t *p, uint32_t v)
{ return (uint32_t)_InterlockedExchange((volatile long *)p, (long)v); }
static inline int mproc__cas32(volatile uint32_t *p, uint32_t expected, uint32_t desired)
{
    return (uint32_t)_InterlockedCompareExchange((volatile long *)p, (long)desired,
                                                 (long)expected) == expected;
}
static inline uint32_t mproc__add32(volatile uint32_t *p, uint32_t v)
{ return (uint32_t)_InterlockedExchangeAdd((volatile long *)p, (long)v); }

#  if defined(_M_X64)
/* x64: aligned 64-bit loads are atomic and ordered like seq_cst loads when
   seq_cst stores are interlocked (as here); the barriers keep the compiler
   from moving accesses across them. A failed interlocked compare would
   write the line and take it from the other side's cache. */
static inline uint64_t mproc__load64(const volatile uint64_t *p)
{
    _ReadWriteBarrier();
    uint64_t v = *p;
    _ReadWriteBarrier();
    return v;
}
static inline void mproc__store64_rel(volatile uint64_t *p, uint64_t v)
{
    _ReadWriteBarrier();
    *p = v;
    _ReadWriteBarrier();
}
#  else
static inline uint64_t mproc__load64(const volatile uint64_t *p)
{ return (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, 0, 0); }
static inline void mproc__store64_rel(volatile uint64_t *p, uint64_t v)
{ (void)_InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
#  endif
static inline void mproc__store64(volatile uint64_t *p, uint64_t v)
{ (void)_InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
static inline int mproc__cas64(volatile uint64_t *p, uint64_t expected, uint64_t desired)
{
    return (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, (__int64)desired,
                                                   (__int64)expected) == expected;
}
static inline uint64_t mproc__add64(volatile uint64_t *p, uint64_t v)
{ return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v); }
/* An interlocked operation is a full barrier on every MSVC target. */
static inline void mproc__fence(void)
{
    volatile long word = 0;
    (void)_InterlockedOr(&word, 0);
}
static inline void mproc__compiler_fence(void) { _ReadWriteBarrier(); }
static inline void mproc__prefetch(const void *p)
{
#  if defined(_M_X64) || defined(_M_IX86)
    _mm_prefetch((const char *)p, _MM_HINT_T0);
#  else
    (void)p;
#  endif
}
static inline void mproc__prefetchw(const void *p) { mproc__prefetch(p); }
static inline void mproc__cpu_relax(void)
{
#  if defined(_M_X64) || defined(_M_IX86)
    _mm_pause();
#  elif defined(_M_ARM64)
    __yield();
#  endif
}

#endif

#endif
