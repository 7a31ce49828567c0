/* The pool's wire format: batches of records with fixed 48-byte headers,
   little-endian, and the function references that T_DEFINE carries (see
   pool.h). Both sides parse what the other sent only through
   mproc__pool_read_batch and mproc__pool_map_fits (fuzzed by
   tests/fuzz/fuzz_pool.c). */
#include "pool.h"

void mproc__pool_msg_encode(const mproc__pool_msg *m, unsigned char out[MPROC__POOL_HDR])
{
    mproc__put_u32(out, m->type);
    mproc__put_u32(out + 4, m->fn);
    mproc__put_u64(out + 8, m->seq);
    mproc__put_u64(out + 16, m->off);
    mproc__put_u64(out + 24, m->total);
    mproc__put_u32(out + 32, m->len);
    mproc__put_u32(out + 36, m->a);
    mproc__put_u32(out + 40, m->b);
    mproc__put_u32(out + 44, (uint32_t)m->code);
}

void mproc__pool_msg_decode(const unsigned char in[MPROC__POOL_HDR], mproc__pool_msg *m)
{
    m->type = mproc__get_u32(in);
    m->fn = mproc__get_u32(in + 4);
    m->seq = mproc__get_u64(in + 8);
    m->off = mproc__get_u64(in + 16);
    m->total = mproc__get_u64(in + 24);
    m->len = mproc__get_u32(in + 32);
    m->a = mproc__get_u32(in + 36);
    m->b = mproc__get_u32(in + 40);
    m->code = (int32_t)mproc__get_u32(in + 44);
}

size_t mproc__pool_fnref_encode(const mproc__fnref *f, unsigned char *out)
{
    size_t n = strlen(f->module);
    mproc__put_u64(out, f->offset);
    memcpy(out + 8, f->digest, 16);
    memcpy(out + 24, f->module, n);
    return 24 + n;
}

int mproc__pool_known_define(mproc__pool_known *k, uint32_t fn, const mproc__fnref *ref,
                             mproc__pool_msg *m, unsigned char payload[MPROC__FNREF_WIRE_MAX])
{
    if (fn < k->cap && k->defined[fn]) return 1;
    if (fn >= k->cap) {
        size_t cap = (size_t)fn + 16;
        unsigned char *d = realloc(k->defined, cap);
        if (!d) return MPROC_ENOMEM;
        memset(d + k->cap, 0, cap - k->cap);
        k->defined = d;
        k->cap = cap;
    }
    memset(m, 0, sizeof *m);
    m->type = MPROC__T_DEFINE;
    m->fn = fn;
    m->len = (uint32_t)mproc__pool_fnref_encode(ref, payload);
    return 0;
}

void mproc__pool_known_set(mproc__pool_known *k, uint32_t fn) { k->defined[fn] = 1; }

void mproc__pool_known_reset(mproc__pool_known *k)
{
    if (k->defined) memset(k->defined, 0, k->cap);
}

void mproc__pool_known_fini(mproc__pool_known *k)
{
    free(k->defined);
    k->defined = NULL;
    k->cap = 0;
}

int mproc__pool_fnref_decode(const unsigned char *in, size_t len, mproc__fnref *f)
{
    if (len < 24 || len - 24 >= sizeof f->module) return MPROC_EPROTO;
    memset(f, 0, sizeof *f);
    f->offset = mproc__get_u64(in);
    memcpy(f->digest, in + 8, 16);
    memcpy(f->module, in + 24, len - 24);
    if (memchr(f->module, '\0', len - 24)) return MPROC_EPROTO;
    return 0;
}

static int fits_size(uint64_t n) { return n <= MPROC__POOL_MAX_PAYLOAD && n < SIZE_MAX / 2; }

/* Payload bytes after a header, or SIZE_MAX if the header is not one this
   direction carries or its lengths are out of bounds. */
static size_t payload_len(const mproc__pool_msg *m, int to_worker)
{
    if (to_worker) {
        switch (m->type) {
        case MPROC__T_DEFINE: return m->len <= MPROC__FNREF_WIRE_MAX ? m->len : SIZE_MAX;
        case MPROC__T_MAP:
        case MPROC__T_STOP: return 0;
        case MPROC__T_APPLY: return fits_size(m->total) ? (size_t)m->total : SIZE_MAX;
        case MPROC__T_MAPDATA:
            return fits_size((uint64_t)m->len * m->a) ? (size_t)m->len * m->a : SIZE_MAX;
        default: return SIZE_MAX;
        }
    }
    if (m->len > MPROC__POOL_MSG_MAX) return SIZE_MAX;
    switch (m->type) {
    case MPROC__R_READY:
    case MPROC__R_ITEMFAIL: return m->len;
    case MPROC__R_ALIVE:
    case MPROC__R_BYE: return 0;
    case MPROC__R_DONE:
        return fits_size(m->total) ? (size_t)m->total + m->len : SIZE_MAX;
    default: return SIZE_MAX;
    }
}

int mproc__pool_read_batch(const unsigned char *buf, size_t len, int to_worker,
                           mproc__pool_rec_fn fn, void *ctx)
{
    size_t at = 0;
    while (at < len) {
        mproc__pool_rec r;
        if (len - at < MPROC__POOL_HDR) return MPROC_EPROTO;
        mproc__pool_msg_decode(buf + at, &r.m);
        size_t plen = payload_len(&r.m, to_worker);
        if (plen == SIZE_MAX || plen > len - at - MPROC__POOL_HDR) return MPROC_EPROTO;
        r.payload = buf + at + MPROC__POOL_HDR;
        r.payload_len = plen;
        at += MPROC__POOL_HDR + plen;
        int rc = fn(ctx, &r);
        if (rc) return rc;
    }
    return 0;
}

uint64_t mproc__pool_map_bytes(uint64_t n, uint64_t isz, uint64_t rsz)
{
    return MPROC__POOL_RESULTS_AT(n, isz) + n * rsz;
}

int mproc__pool_map_fits(const mproc__pool_msg *m, uint64_t arena_cap)
{
    uint64_t isz = m->a, rsz = m->b, n = m->len;
    if (!isz || !n || n > arena_cap / isz || (rsz && n > arena_cap / rsz)) return 0;
    uint64_t need = mproc__pool_map_bytes(n, isz, rsz);
    return m->off <= arena_cap && need <= arena_cap - m->off;
}

int mproc__pool_event_decode(const mproc__pool_rec *r, mproc__pool_event *ev)
{
    const mproc__pool_msg *m = &r->m;
    memset(ev, 0, sizeof *ev);
    ev->type = m->type;
    ev->seq = m->seq;
    ev->msg = r->payload;
    ev->msg_len = r->payload_len;
    switch (m->type) {
    case MPROC__R_READY:
    case MPROC__R_ALIVE: return 0;
    case MPROC__R_BYE:
        ev->code = m->code;
        return 0;
    case MPROC__R_ITEMFAIL:
        ev->pos = m->a;
        ev->code = MPROC_ETASK;
        ev->status = (int32_t)m->fn;
        return 0;
    case MPROC__R_DONE:
        /* mproc's codes are small negative numbers */
        if (m->code > 0 || m->code < -100) return MPROC_EPROTO;
        ev->code = m->code;
        ev->took_us = m->b;
        ev->status = (int32_t)m->fn;
        ev->reported = m->off;
        ev->result = r->payload;
        ev->result_len = (size_t)m->total;
        ev->msg = r->payload + m->total;
        ev->msg_len = m->len;
        return 0;
    default: return MPROC_EPROTO;
    }
}
