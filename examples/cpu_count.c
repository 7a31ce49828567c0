/* Seed example 4: print("Number of cpu : ", multiprocessing.cpu_count()) */
#include <stdio.h>

#include <mproc.h>

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    printf("Number of cpu :  %d\n", mproc_cpu_count());
    printf("Usable by this process: %d\n", mproc_process_cpu_count());
    return 0;
}
