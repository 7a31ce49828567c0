/*
 * Force-included into mproc's own files when clang-cl compiles them
 * (CMakeLists.txt): clang-cl accepts GNU C that cl.exe refuses, so this
 * makes each use of a GNU keyword or builtin an error ("attempt to use a
 * poisoned identifier"), and CMakeLists.txt adds -Werror=gnu and
 * -Werror=vla for statement expressions, VLAs and the other GNU syntax.
 * Code that only GCC and Clang accept then fails in the clang-cl lane, as
 * it would with MSVC, instead of after it lands. Keep GNU code behind the
 * compiler tests of internal headers (atomic.h, internal.h), where a
 * _MSC_VER branch gives cl.exe and clang-cl the same code.
 *
 * A poisoned name is refused wherever it is read, system headers included.
 * clang's <intrin.h> family is written with __attribute__, so it is read
 * first, here; its macros stay usable (their expansions are not checked).
 */
#ifndef MPROC_CLANG_CL_NO_GNU_H
#define MPROC_CLANG_CL_NO_GNU_H

#include <intrin.h>

#pragma clang poison __attribute__ __attribute __thread __extension__ __label__ __auto_type
#pragma clang poison typeof __typeof__ __typeof asm __int128
#pragma clang poison __builtin_expect __builtin_unreachable __builtin_trap __builtin_prefetch
#pragma clang poison __builtin_constant_p __builtin_types_compatible_p __builtin_choose_expr
#pragma clang poison __builtin_ctz __builtin_ctzl __builtin_ctzll __builtin_clz __builtin_clzl
#pragma clang poison __builtin_clzll __builtin_popcount __builtin_popcountl __builtin_popcountll
#pragma clang poison __builtin_ffs __builtin_bswap16 __builtin_bswap32 __builtin_bswap64
#pragma clang poison __builtin_add_overflow __builtin_sub_overflow __builtin_mul_overflow
#pragma clang poison __builtin_ia32_pause
#pragma clang poison __atomic_load_n __atomic_load __atomic_store_n __atomic_store
#pragma clang poison __atomic_exchange_n __atomic_exchange __atomic_compare_exchange_n
#pragma clang poison __atomic_compare_exchange __atomic_fetch_add __atomic_fetch_sub
#pragma clang poison __atomic_fetch_and __atomic_fetch_or __atomic_fetch_xor __atomic_add_fetch
#pragma clang poison __atomic_sub_fetch __atomic_and_fetch __atomic_or_fetch __atomic_xor_fetch
#pragma clang poison __atomic_thread_fence __atomic_signal_fence
#pragma clang poison __sync_synchronize __sync_fetch_and_add __sync_fetch_and_sub
#pragma clang poison __sync_fetch_and_or __sync_fetch_and_and __sync_add_and_fetch
#pragma clang poison __sync_sub_and_fetch __sync_bool_compare_and_swap
#pragma clang poison __sync_val_compare_and_swap __sync_lock_test_and_set __sync_lock_release

#endif
