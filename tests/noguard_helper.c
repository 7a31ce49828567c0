/* A program that links mproc but never calls mproc_main_guard(): spawned as
   a child (tests/process.c uses mproc_set_executable), its own attempt to
   start a process must be refused with MPROC_EBOOTSTRAP — never a fork
   bomb — and its parent's join must report MPROC_EBOOTSTRAP. */
#include <stdio.h>

#include "mproc.h"

static int never_runs(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

int main(void)
{
    mproc_process *p;
    if (mproc_process_create(&p, never_runs, NULL, 0, NULL) != 0) return 1;
    int rc = mproc_process_start(p);
    mproc_process_destroy(p);
    return rc == MPROC_EBOOTSTRAP ? 42 : 1;
}
