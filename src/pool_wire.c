/* The pool's wire format: fixed 48-byte headers, little-endian, and the
   function references that T_DEFINE carries (see pool.h). */
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
