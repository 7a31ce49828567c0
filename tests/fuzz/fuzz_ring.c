/* libFuzzer harness: the records of the shared-memory ring that carries
   conns and queues (ring.c). The input is published raw into a pipe's
   ring, as a corrupt or malicious process that maps it could, starting at
   a position the first two bytes choose (so records wrap around the
   ring's end too); then the writer goes. Reading back must give whole
   messages, then an error code (MPROC_EPROTO, MPROC_ECLOSED) — never a
   crash, a hang or more message bytes than were published. */
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "ring.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The block behind a conn end, mapped again here. */
static mproc__conn_shared *map_block(mproc_conn *c, size_t *len)
{
    mproc_ref ref;
    mproc__entry e;
    void *p = NULL;
    if (mproc_conn_ref(c, &ref) || mproc__ref_resolve(&ref, MPROC__KIND_CONN, &e)) abort();
    *len = (size_t)mproc__get_u64(e.info + 8);
    if (mproc__os_map(e.handles[0], *len, 1, &p)) abort();
    return p;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    mproc_conn *r, *w;
    if (size < 2 || size > 200000 || mproc_pipe(&r, &w, 0)) return 0;
    size_t len;
    mproc__conn_shared *sh = map_block(w, &len);
    mproc__ring_shared *ring = &sh->ring[0];
    uint64_t start = (ring->capacity - 4096) + (((uint64_t)data[0] << 8 | data[1]) & 4095 & ~7u);
    ring->head = ring->tail = start; /* an empty ring, positioned near its end */
    mproc__ring_write_raw(ring, (unsigned char *)sh + MPROC__CONN_DATA_OFF, data + 2, size - 2);
    mproc__os_unmap(sh, len);
    mproc_conn_destroy(w);
    size_t total = 0;
    for (;;) {
        void *msg;
        size_t n;
        if (mproc_conn_recv(r, &msg, &n, 0) != 0) break;
        total += n;
        mproc_free(msg);
        if (total > size) abort(); /* more message bytes than were published */
    }
    mproc_conn_destroy(r);
    return 0;
}
