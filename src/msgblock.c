/* The blocks a receive hands out (mproc_conn_recv, mproc_queue_get), which
   the caller gives back with mproc_free.

   A receive loop allocates and frees one small block per message, and
   malloc with free cost about a third of a 64-byte receive (callgrind:
   ~125 of ~330 instructions). So the last small block a thread gives back
   with mproc_free is kept for that thread's next receive: a thread-local
   spare, no lock, freed when the thread exits. Every block stays malloc's:
   the caller may free what a receive gave with free() instead, and
   mproc_free may keep any block malloc gave, whoever asked for it. */
#include "internal.h"
#include "os.h"

#include <stdlib.h>

/* Largest block kept: small messages are the ones whose malloc costs as
   much as their copy. */
#define SPARE_MAX 1024

/* The spare and its size: extern, for mproc__msg_take_spare (internal.h). */
MPROC__THREAD_LOCAL void *mproc__spare;
MPROC__THREAD_LOCAL size_t mproc__spare_size;
static MPROC__THREAD_LOCAL int spare_hooked; /* 1: freed at thread exit; -1: cannot be */

/* At the thread's exit: later calls of mproc_free there (other exit
   hooks) free at once, since nothing would free a spare kept now. */
static void drop_spare(void)
{
    free(mproc__spare);
    mproc__spare = NULL;
    spare_hooked = -1;
}

static const mproc__os_exit_hook spare_hook = {drop_spare};

void *mproc__msg_alloc(size_t n)
{
    void *p = mproc__msg_take_spare(n);
    return p ? p : malloc(n ? n : 1);
}

/* The latest block given back is kept, not the first: a spare from one
   mid-sized message would otherwise stay, too large for the small ones
   (mproc__msg_take_spare's rule), and every small receive would allocate
   for the life of the thread. A receive loop takes the spare before it
   gives a block back, so keeping the latest frees nothing more. */
void mproc_free(void *p)
{
    if (p) {
        if (!spare_hooked) spare_hooked = mproc__os_at_thread_exit(&spare_hook) == 0 ? 1 : -1;
        size_t size = spare_hooked > 0 ? mproc__os_block_size(p) : 0;
        if (size && size <= SPARE_MAX) {
            if (mproc__spare) free(mproc__spare); /* rare: a receive loop took it first */
            mproc__spare = p;
            mproc__spare_size = size;
            return;
        }
    }
    free(p);
}
