/* libFuzzer harness: the message framing of connections. The input is
   written raw into a pipe, as a corrupt or malicious peer would; reading
   it back must give whole messages, then an error code (MPROC_EPROTO,
   MPROC_ECLOSED) — never a crash, a hang or a message longer than what
   was sent. */
#include <stdlib.h>
#include <string.h>

#include "ref.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The OS handle behind a conn end, from this process's registry. */
static mproc__handle conn_handle(mproc_conn *c)
{
    mproc_ref ref;
    mproc__entry e;
    if (mproc_conn_ref(c, &ref) || mproc__ref_resolve(&ref, MPROC__KIND_CONN, &e) || !e.nhandles)
        abort();
    return e.handles[0];
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    mproc_conn *r, *w;
    if (size > 60000 || mproc_pipe(&r, &w, 0)) return 0; /* fits a pipe's buffer */
    if (size && mproc__os_write_all(conn_handle(w), data, size)) abort();
    mproc_conn_destroy(w);
    size_t total = 0;
    for (;;) {
        void *msg;
        size_t len;
        if (mproc_conn_recv(r, &msg, &len, 0) != 0) break;
        total += len;
        mproc_free(msg);
        if (total > size) abort(); /* more message bytes than were sent */
    }
    mproc_conn_destroy(r);
    return 0;
}
