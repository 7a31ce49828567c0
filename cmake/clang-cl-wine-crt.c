/*
 * The pieces of MSVC's static C runtime (vcruntime / msvcrt.lib) that every
 * MSVC program and DLL links and that Wine does not ship, for the clang-cl
 * lane only: cmake/clang-cl-wine.cmake compiles this file into
 * mproc-wine-crt.lib and links it everywhere; the linker takes its one
 * object only into programs that refer to _tls_index or atexit.
 */
#include <windows.h>

/* ---- __declspec(thread): the image's TLS directory (MSVC's tlssup.c) --- */
/* The compiler puts thread-local variables in .tls$ sections; the linker
   sorts .tls < .tls$ < .tls$ZZZ, so these two bracket them. lld-link makes
   _tls_used the image's TLS directory; the loader writes the slot of the
   image's TLS block into _tls_index, which compiled code reads. */
ULONG _tls_index = 0;

#pragma data_seg(".tls")
char _tls_start = 0;
#pragma data_seg(".tls$ZZZ")
char _tls_end = 0;
#pragma data_seg()

/* An empty, NULL-terminated list of TLS callbacks. */
#pragma section(".CRT$XLA", long, read)
#pragma section(".CRT$XLZ", long, read)
__declspec(allocate(".CRT$XLA")) PIMAGE_TLS_CALLBACK __xl_a = 0;
__declspec(allocate(".CRT$XLZ")) PIMAGE_TLS_CALLBACK __xl_z = 0;

const IMAGE_TLS_DIRECTORY64 _tls_used = {
    (ULONGLONG)&_tls_start, (ULONGLONG)&_tls_end, (ULONGLONG)&_tls_index,
    (ULONGLONG)(&__xl_a + 1), 0, 0
};

/* ---- atexit ---------------------------------------------------------------
   MSVC's atexit is static CRT code over ucrtbase's _crt_atexit; Wine's
   <stdlib.h> declares it dllimport (msvcrt.dll has one, ucrtbase.dll does
   not), so callers load it through __imp_atexit. */
__declspec(dllimport) int __cdecl _crt_atexit(void(__cdecl *fn)(void));

static int __cdecl lane_atexit(void(__cdecl *fn)(void))
{
    return _crt_atexit(fn);
}

int(__cdecl *__imp_atexit)(void(__cdecl *)(void)) = lane_atexit;
