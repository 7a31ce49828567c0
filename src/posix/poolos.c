/* POSIX: the pool's OS call (see the "pool" section of os.h). */
#include "internal.h"

#include <signal.h>

void mproc__os_ignore_interrupts(void)
{
    /* Cannot fail for SIGINT with a valid disposition. */
    (void)signal(SIGINT, SIG_IGN);
}
