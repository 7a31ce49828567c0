/* Internal helpers shared by the portable core. No OS headers here. */
#ifndef MPROC_INTERNAL_H
#define MPROC_INTERNAL_H

#include "mproc.h"
#include "os.h"
#include "atomic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER)
#  define MPROC__NORETURN __declspec(noreturn)
#else
#  define MPROC__NORETURN _Noreturn
#endif
/* Keeps a rarely taken path out of its caller, so that the common path
   saves and restores few registers. */
#if defined(_MSC_VER)
#  define MPROC__NOINLINE __declspec(noinline)
#else
#  define MPROC__NOINLINE __attribute__((noinline))
#endif
/* Puts a per-message step into each of its callers even where the
   compiler would rather keep one copy (a call costs the message its
   saved registers). */
#if defined(_MSC_VER)
#  define MPROC__ALWAYS_INLINE __forceinline
#else
#  define MPROC__ALWAYS_INLINE inline __attribute__((always_inline))
#endif
#if defined(_MSC_VER) /* cl.exe, and clang-cl in the same code */
#  define MPROC__THREAD_LOCAL __declspec(thread)
#else
#  define MPROC__THREAD_LOCAL _Thread_local
#endif

/* Record an OS error code for mproc_os_error() and return MPROC_EOS. */
int mproc__fail_os(int os_error);
/* The same, taking the error from errno / GetLastError(). */
int mproc__fail_os_last(void);

/* Allocation that reports failure as NULL (callers return MPROC_ENOMEM). */
void *mproc__calloc(size_t n, size_t size);
/* A block for a received message of n bytes (msgblock.c): the thread's
   spare that mproc_free kept, or malloc's; NULL when out of memory. */
void *mproc__msg_alloc(size_t n);
/* The thread's spare block (msgblock.c), inline for the receive paths
   that call nothing: taken for a message of n bytes if it suits one (at
   most twice the bytes, and a line: a kept block is not worth much more
   memory than the message holds), else NULL. */
extern MPROC__THREAD_LOCAL void *mproc__spare;
extern MPROC__THREAD_LOCAL size_t mproc__spare_size;
static inline void *mproc__msg_take_spare(size_t n)
{
    void *p = mproc__spare;
    if (!p || n > mproc__spare_size || mproc__spare_size > 2 * n + 64) return NULL;
    mproc__spare = NULL;
    return p;
}

/* Milliseconds left before deadline_ms (mproc__os_now_ms() based), clamped
   at 0; MPROC_FOREVER passes through. */
int mproc__remaining_ms(uint64_t deadline_ms, int timeout_ms);
/* Deadline for a timeout (UINT64_MAX for MPROC_FOREVER). */
uint64_t mproc__deadline_ms(int timeout_ms);

/* 64-bit FNV-1a, used as an integrity check (not a MAC) on framed data. */
uint64_t mproc__fnv1a64(const void *data, size_t len, uint64_t seed);
#define MPROC__FNV_SEED 0xcbf29ce484222325ULL

/* Little-endian fixed-width encoding for data that crosses processes. */
static inline void mproc__put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static inline uint32_t mproc__get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline void mproc__put_u64(unsigned char *p, uint64_t v)
{
    mproc__put_u32(p, (uint32_t)v);
    mproc__put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t mproc__get_u64(const unsigned char *p)
{
    return (uint64_t)mproc__get_u32(p) | ((uint64_t)mproc__get_u32(p + 4) << 32);
}

/* This process's pid, cached (sync.c; refreshed in forked children): a
   load on the paths that take a lock per message. */
extern volatile uint64_t mproc__self_pid_cache;
uint64_t mproc__self_pid_first(void);
static inline uint64_t mproc__self_pid(void)
{
    uint64_t pid = mproc__load64(&mproc__self_pid_cache);
    return pid ? pid : mproc__self_pid_first();
}

/* Process-wide state of the bootstrap (bootstrap.c). */
/* 1 when this process was spawned by mproc and has not passed the guard:
   starting processes from here is refused with MPROC_EBOOTSTRAP. */
int mproc__bootstrap_pending(void);
/* Refuse to start a process from a child that has not passed the guard:
   returns MPROC_EBOOTSTRAP (and says why on stderr) or 0. */
int mproc__check_may_start(void);

#endif
