/* libFuzzer harness: the pool's message parsing on both sides. The first
   input byte picks the side, the rest is one batch (one conn message):
   - worker side: what a worker reads from its parent. Records are split
     by mproc__pool_read_batch, T_DEFINE payloads go through
     mproc__pool_fnref_decode and T_MAP descriptors through
     mproc__pool_map_fits, exactly as pool_worker.c does; every byte a
     unit that passed would touch (items and results in the arena, an
     apply's input) is touched here, so ASan sees any range the checks let
     through wrongly.
   - parent side: what the parent reads from a worker: records split the
     same way and decoded by mproc__pool_event_decode, as pool_local.c does;
     every byte of a result and message it would copy is read.
   Never a crash, an overread or a record outside the batch. */
#include <stdlib.h>
#include <string.h>

#include "pool.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define ARENA_CAP 65536u
static unsigned char arena[ARENA_CAP];
static volatile unsigned sink;

typedef struct batch_ctx {
    const unsigned char *lo, *hi; /* the batch */
    size_t records;
} batch_ctx;

static void touch(const unsigned char *p, size_t n)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) x += p[i];
    sink += x;
}

static void inside(const batch_ctx *b, const unsigned char *p, size_t n)
{
    if (p < b->lo || p > b->hi || n > (size_t)(b->hi - p)) abort();
}

static int worker_record(void *ctx, const mproc__pool_rec *r)
{
    batch_ctx *b = ctx;
    mproc__fnref ref;
    inside(b, r->payload, r->payload_len);
    b->records++;
    switch (r->m.type) {
    case MPROC__T_DEFINE:
        if (!mproc__pool_fnref_decode(r->payload, r->m.len, &ref) && strlen(ref.module) >= sizeof ref.module)
            abort();
        return 0;
    case MPROC__T_MAP:
        if (mproc__pool_map_fits(&r->m, ARENA_CAP)) {
            uint64_t n = r->m.len, isz = r->m.a;
            memset(arena + r->m.off, 1, (size_t)mproc__pool_map_bytes(n, isz, r->m.b));
            touch(arena + r->m.off, (size_t)(n * isz));
        }
        return 0;
    case MPROC__T_APPLY: touch(r->payload, r->payload_len); return 0;
    case MPROC__T_MAPDATA: /* a remote worker's unit: the items are the payload */
        if ((uint64_t)r->m.len * r->m.a != r->payload_len) abort();
        touch(r->payload, r->payload_len);
        return 0;
    case MPROC__T_STOP: return 0;
    default: abort(); /* read_batch lets only this side's types through */
    }
}

static int parent_record(void *ctx, const mproc__pool_rec *r)
{
    batch_ctx *b = ctx;
    mproc__pool_event ev;
    inside(b, r->payload, r->payload_len);
    b->records++;
    if (mproc__pool_event_decode(r, &ev)) return MPROC_EPROTO;
    if (ev.result_len) inside(b, ev.result, ev.result_len);
    inside(b, ev.msg, ev.msg_len);
    touch(ev.result ? ev.result : ev.msg, ev.result_len);
    touch(ev.msg, ev.msg_len);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1) return 0;
    int to_worker = data[0] & 1;
    /* a copy of exactly the batch's size: ASan catches a read past it */
    size_t len = size - 1;
    unsigned char *batch = malloc(len ? len : 1);
    if (!batch) return 0;
    memcpy(batch, data + 1, len);
    batch_ctx b = {batch, batch + len, 0};
    int rc = mproc__pool_read_batch(batch, len, to_worker, to_worker ? worker_record : parent_record, &b);
    if (rc != 0 && rc != MPROC_EPROTO) abort();
    if (b.records > len / MPROC__POOL_HDR) abort(); /* every record has a header */
    free(batch);
    return 0;
}
