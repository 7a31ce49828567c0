/* Win32: the pool's OS call (see the "pool" section of os.h). */
#include "w32.h"

void mproc__os_ignore_interrupts(void)
{
    /* Failure leaves Ctrl-C's default, which is what a worker had anyway. */
    (void)SetConsoleCtrlHandler(NULL, TRUE);
}
