/* Writes a valid framed stream (three messages, as mproc_conn_send puts
   them on the wire) to the file named by argv[1]: the framing fuzzer's
   seed. */
#include <stdio.h>

#include "ref.h"

int main(int argc, char **argv)
{
    mproc_conn *r, *w;
    mproc_ref ref;
    mproc__entry e;
    unsigned char wire[4096];
    size_t got = 0;
    if (argc != 2 || mproc_pipe(&r, &w, 0)) return 2;
    if (mproc_conn_send(w, "", 0) || mproc_conn_send(w, "hello", 5) ||
        mproc_conn_send(w, "a longer third message", 22))
        return 1;
    mproc_conn_destroy(w);
    if (mproc_conn_ref(r, &ref) || mproc__ref_resolve(&ref, MPROC__KIND_CONN, &e)) return 1;
    int rc = mproc__os_read_all(e.handles[0], wire, sizeof wire, &got, 1000);
    if (rc != MPROC_ECLOSED || got == 0) return 1;
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(wire, 1, got, f) != got) return 1;
    fclose(f);
    mproc_conn_destroy(r);
    return 0;
}
