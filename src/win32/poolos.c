/* Win32: the pool's OS call (see the "pool" section of os.h). */
#include "w32.h"

#include <psapi.h>

void mproc__os_ignore_interrupts(void)
{
    /* Failure leaves Ctrl-C's default, which is what a worker had anyway. */
    (void)SetConsoleCtrlHandler(NULL, TRUE);
}

int mproc__os_rss_bytes(uint64_t *bytes)
{
    PROCESS_MEMORY_COUNTERS pmc;
    /* psapi.h maps this to kernel32's K32GetProcessMemoryInfo (Windows 7+) */
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return mproc__fail_os_last();
    *bytes = pmc.WorkingSetSize;
    return 0;
}
