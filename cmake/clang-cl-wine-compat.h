/*
 * Force-included (/FI) into every file compiled by cmake/clang-cl-wine.cmake,
 * and only there: what Wine 8's MSVC-style headers lack and every Windows
 * SDK mproc supports (Windows 8 and later) has. The code keeps using the
 * SDK's names; nothing here is seen by a build against a real SDK.
 *
 * It comes before any header, so it spells Windows types with the C types
 * they are on Windows (DWORD = unsigned long, WORD/USHORT = unsigned short,
 * BOOL = int, HANDLE = void *), and constants as macros that are expanded
 * only where the code uses them, after <windows.h>.
 */
#ifndef MPROC_CLANG_CL_WINE_COMPAT_H
#define MPROC_CLANG_CL_WINE_COMPAT_H

/* clang's <intrin.h> declares _InterlockedCompareExchange128 as a builtin;
   Wine's <winnt.h> then defines a function of that name for clang and
   fails ("definition of builtin function") when <intrin.h> came first.
   Renaming Wine's definition lets the two headers come in either order,
   as they can with a real SDK. */
#include <intrin.h>
#define _InterlockedCompareExchange128 mproc__wine_InterlockedCompareExchange128

/* <winbase.h>: named-pipe mode flag (Vista). */
#ifndef PIPE_REJECT_REMOTE_CLIENTS
#define PIPE_REJECT_REMOTE_CLIENTS 0x00000008
#endif

/* <winnt.h>: InterlockedExchange64 is the compiler's intrinsic. */
#ifndef InterlockedExchange64
#define InterlockedExchange64 _InterlockedExchange64
#endif

/* <winnt.h>: job CPU rate control (Windows 8). */
#define JobObjectCpuRateControlInformation ((JOBOBJECTINFOCLASS)15)
#define JOB_OBJECT_CPU_RATE_CONTROL_ENABLE 0x1
#define JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED 0x2
#define JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP 0x4
#define JOB_OBJECT_CPU_RATE_CONTROL_NOTIFY 0x8
#define JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE 0x10
typedef struct _JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
    unsigned long ControlFlags;
    union {
        unsigned long CpuRate;
        unsigned long Weight;
        struct {
            unsigned short MinRate;
            unsigned short MaxRate;
        };
    };
} JOBOBJECT_CPU_RATE_CONTROL_INFORMATION, *PJOBOBJECT_CPU_RATE_CONTROL_INFORMATION;

/* <winbase.h> (processtopologyapi.h): Windows 7; kernel32 exports it. */
__declspec(dllimport) int __stdcall GetProcessGroupAffinity(void *hProcess,
                                                           unsigned short *GroupCount,
                                                           unsigned short *GroupArray);

/* <bcrypt.h> */
#ifndef BCRYPT_SUCCESS
#define BCRYPT_SUCCESS(Status) (((long)(Status)) >= 0)
#endif

#endif
