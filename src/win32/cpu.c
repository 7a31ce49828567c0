/*
 * Win32: CPU counts. The machine's count spans all processor groups; the
 * process's count is its affinity (across the groups it may run in),
 * capped by a hard CPU rate limit of the job it runs in, if any.
 */
#include "w32.h"

#include <limits.h>

#ifndef JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE
#define JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE 0x10
#endif
#define MAX_GROUPS 64

int mproc__os_cpu_count(void)
{
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    if (n == 0) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        n = si.dwNumberOfProcessors;
    }
    return n > 0 && n < INT_MAX ? (int)n : 1;
}

static int popcount(ULONG_PTR mask)
{
    int n = 0;
    for (; mask != 0; mask &= mask - 1)
        n++;
    return n;
}

/* CPUs the process's affinity allows. A process whose threads span several
   groups (the default on Windows 11) has no single affinity mask: it may
   use every CPU of those groups. 0 if unknown. */
static int affinity_count(void)
{
    USHORT groups[MAX_GROUPS], ngroups = MAX_GROUPS;
    if (GetProcessGroupAffinity(GetCurrentProcess(), &ngroups, groups) && ngroups > 1) {
        DWORD n = 0;
        for (USHORT i = 0; i < ngroups; i++)
            n += GetActiveProcessorCount(groups[i]);
        return n > 0 && n < INT_MAX ? (int)n : 0;
    }
    DWORD_PTR mine, sys;
    if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys))
        return 0;
    return popcount((ULONG_PTR)mine);
}

/* The number of CPUs' worth of time a hard-capped job allows (rates are in
   1/100 of a percent of the whole machine), rounded up; 0 if no cap. */
static int job_cap(int machine)
{
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION info;
    memset(&info, 0, sizeof info);
    /* NULL: the job of the calling process; fails when there is none. */
    if (!QueryInformationJobObject(NULL, JobObjectCpuRateControlInformation, &info,
                                   sizeof info, NULL))
        return 0;
    if (!(info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_ENABLE))
        return 0;
    uint64_t rate;
    if (info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP)
        rate = info.CpuRate;
    else if (info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE)
        rate = info.CpuRate >> 16; /* MaxRate: the union's high WORD */
    else
        return 0;                  /* weight-based: a share, not a cap */
    if (rate == 0 || rate >= 10000)
        return 0;
    return (int)((rate * (uint64_t)machine + 9999) / 10000);
}

int mproc__os_process_cpu_count(void)
{
    int machine = mproc__os_cpu_count();
    int n = affinity_count();
    if (n <= 0 || n > machine)
        n = machine;
    int cap = job_cap(machine);
    if (cap > 0 && cap < n)
        n = cap;
    return n >= 1 ? n : 1;
}
