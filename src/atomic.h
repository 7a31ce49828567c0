/*
 * The few atomic operations the synchronisation objects need, on 32-bit and
 * 64-bit words that may live in memory shared between processes. All are
 * sequentially consistent: the wait/wake protocols in sync.c are Dekker-style
 * ("I announce I wait, then look" against "I change, then look for
 * waiters"), which needs a full fence between the store and the load.
 *
 * GCC and Clang (also MinGW): the __atomic builtins. MSVC's C compiler has
 * no usable <stdatomic.h> in the versions mproc supports: Interlocked*.
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
static inline uint64_t mproc__load64(const volatile uint64_t *p)
{ return (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, 0, 0); }
static inline void mproc__store64(volatile uint64_t *p, uint64_t v)
{ (void)_InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
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
