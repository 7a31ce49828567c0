/* POSIX: the pool's OS call (see the "pool" section of os.h). */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#if defined(__APPLE__)
#  include <mach/mach.h>
#elif !defined(__linux__)
#  include <sys/resource.h>
#endif

void mproc__os_ignore_interrupts(void)
{
    /* Cannot fail for SIGINT with a valid disposition. */
    (void)signal(SIGINT, SIG_IGN);
}

int mproc__os_rss_bytes(uint64_t *bytes)
{
#if defined(__linux__)
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f) return mproc__fail_os_last();
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2) return MPROC_EPROTO;
    *bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
#elif defined(__APPLE__)
    mach_task_basic_info_data_t info;
    mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
    if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, (task_info_t)&info, &count) != KERN_SUCCESS)
        return MPROC_EOS;
    *bytes = info.resident_size;
    return 0;
#else
    struct rusage ru; /* the peak: the best a portable call gives */
    if (getrusage(RUSAGE_SELF, &ru) != 0) return mproc__fail_os_last();
    *bytes = (uint64_t)ru.ru_maxrss * 1024;
    return 0;
#endif
}
