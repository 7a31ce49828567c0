/* CPU counts: the OS layer does the counting; never report less than 1. */
#include "internal.h"

int mproc_cpu_count(void)
{
    int n = mproc__os_cpu_count();
    return n > 0 ? n : 1;
}

int mproc_process_cpu_count(void)
{
    int n = mproc__os_process_cpu_count();
    int all = mproc_cpu_count();
    if (n <= 0) return all;
    return n < all ? n : all;
}
