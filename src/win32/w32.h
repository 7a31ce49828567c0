/*
 * Shared by the Win32 backend files: one place that fixes the Windows
 * headers' configuration, plus the few helpers several files need (UTF-8 /
 * UTF-16 conversion, the program's own path, overlapped waits).
 */
#ifndef MPROC_W32_H
#define MPROC_W32_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
/* Windows 8: nested job objects (daemon children of a process that already
   runs inside a job, as CI runners and ctest often do). */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602
#endif
#include <windows.h>

#include "internal.h"

static inline HANDLE mproc__w32_handle(mproc__handle h)
{
    return (HANDLE)h;
}

/* UTF-8 -> a malloc'd UTF-16 string: 0, MPROC_EINVAL (invalid UTF-8),
   MPROC_ENOMEM. */
int mproc__w32_to_utf16(const char *s, wchar_t **out);
/* UTF-16 -> UTF-8 into buf: 0, or MPROC_EINVAL if it does not fit or is
   not valid UTF-16. */
int mproc__w32_to_utf8(const wchar_t *w, char *buf, size_t cap);
/* The full path of module mod (NULL: the program) in a malloc'd string. */
int mproc__w32_module_path(HMODULE mod, wchar_t **out);

#endif
