/* Compiled, never run, by the format_check tests: mproc_task_fail's
   arguments are checked against its format (MPROC_PRINTF_FORMAT). The
   good form must compile with -Werror=format; the bad one must not. */
#include "mproc.h"

void format_check_use(int v);
void format_check_use(int v)
{
#ifdef MPROC_BAD_FORMAT
    mproc_task_fail("item %s failed", v); /* an int for %s */
#else
    mproc_task_fail("item %d failed", v);
#endif
}
