/* Encoding and validation of the bootstrap message (see bootstrap.h).
   Layout: header (magic 8, version u32, total length u32, field count u32,
   reserved u32), then fields (type u32, length u32, value), then a u64
   checksum of everything before it. */
#include "bootstrap.h"

static const unsigned char BOOT_MAGIC[8] = {'m', 'p', 'r', 'o', 'c', 'B', 'S', 0x1a};
#define BOOT_VERSION 1
#define BOOT_TRAILER 8

enum {
    F_TARGET = 1, F_IMAGE, F_NAME, F_PARENT, F_FLAGS, F_ARG, F_ARG_SHM, F_OBJECT, F_MAX_
};
#define OBJECT_FIXED (24 + 4 + 4 + MPROC__REF_INFO)

typedef struct writer { unsigned char *p; size_t used, cap; uint32_t fields; } writer;

static unsigned char *field(writer *w, uint32_t type, size_t len)
{
    unsigned char *at = w->p + w->used;
    mproc__put_u32(at, type);
    mproc__put_u32(at + 4, (uint32_t)len);
    w->used += 8 + len;
    w->fields++;
    return at + 8;
}

static size_t encoded_size(const mproc__boot *b)
{
    size_t n = MPROC__BOOT_HEADER + BOOT_TRAILER;
    n += 8 + 24 + strlen(b->target.module);
    n += 8 + 32 + 8 + strlen(b->name) + 8 + 8 + 8 + 4;
    n += b->arg_in_shm ? 8 + 16 : 8 + b->arg_len;
    for (size_t i = 0; i < b->nobjects; i++)
        n += 8 + OBJECT_FIXED + 8 * b->objects[i].nhandles;
    return n;
}

static void put_object(writer *w, const mproc__entry *e)
{
    unsigned char *v = field(w, F_OBJECT, OBJECT_FIXED + 8 * e->nhandles);
    mproc__put_u64(v, e->id.pid);
    mproc__put_u64(v + 8, e->id.serial);
    mproc__put_u64(v + 16, e->id.nonce);
    mproc__put_u32(v + 24, (uint32_t)e->kind);
    mproc__put_u32(v + 28, (uint32_t)e->nhandles);
    memcpy(v + 32, e->info, MPROC__REF_INFO);
    for (size_t h = 0; h < e->nhandles; h++)
        mproc__put_u64(v + OBJECT_FIXED + 8 * h, (uint64_t)e->handles[h]);
}

int mproc__boot_encode(const mproc__boot *b, unsigned char **buf, size_t *len)
{
    size_t total = encoded_size(b);
    if (total > MPROC__BOOT_MAX || b->nobjects > MPROC__BOOT_MAX_OBJECTS) return MPROC_EINVAL;
    writer w = {malloc(total), MPROC__BOOT_HEADER, total, 0};
    if (!w.p) return MPROC_ENOMEM;
    size_t mlen = strlen(b->target.module), nlen = strlen(b->name);
    unsigned char *v = field(&w, F_TARGET, 24 + mlen);
    mproc__put_u64(v, b->target.offset);
    memcpy(v + 8, b->target.digest, 16);
    memcpy(v + 24, b->target.module, mlen);
    memcpy(field(&w, F_IMAGE, 32), b->image_id, 32);
    memcpy(field(&w, F_NAME, nlen), b->name, nlen);
    mproc__put_u64(field(&w, F_PARENT, 8), (uint64_t)b->parent_pid);
    mproc__put_u32(field(&w, F_FLAGS, 4), b->flags);
    if (b->arg_in_shm) {
        v = field(&w, F_ARG_SHM, 16);
        mproc__put_u64(v, (uint64_t)b->arg_shm);
        mproc__put_u64(v + 8, (uint64_t)b->arg_len);
    } else if (b->arg_len) {
        memcpy(field(&w, F_ARG, b->arg_len), b->arg, b->arg_len);
    } else {
        field(&w, F_ARG, 0);
    }
    for (size_t i = 0; i < b->nobjects; i++) put_object(&w, &b->objects[i]);
    memcpy(w.p, BOOT_MAGIC, 8);
    mproc__put_u32(w.p + 8, BOOT_VERSION);
    mproc__put_u32(w.p + 12, (uint32_t)total);
    mproc__put_u32(w.p + 16, w.fields);
    mproc__put_u32(w.p + 20, 0);
    mproc__put_u64(w.p + w.used, mproc__fnv1a64(w.p, w.used, MPROC__FNV_SEED));
    *buf = w.p;
    *len = total;
    return 0;
}

int mproc__boot_header_len(const unsigned char header[MPROC__BOOT_HEADER], size_t *total)
{
    uint32_t len = mproc__get_u32(header + 12);
    if (memcmp(header, BOOT_MAGIC, 8) != 0 || mproc__get_u32(header + 8) != BOOT_VERSION ||
        mproc__get_u32(header + 20) != 0 || len < MPROC__BOOT_HEADER + BOOT_TRAILER ||
        len > MPROC__BOOT_MAX)
        return MPROC_EPROTO;
    *total = len;
    return 0;
}

/* A text field: no NUL inside, fits with its terminator. */
static int copy_text(char *dst, size_t cap, const unsigned char *v, uint32_t n)
{
    if (n >= cap || memchr(v, '\0', n)) return MPROC_EPROTO;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int decode_object(const unsigned char *v, uint32_t n, mproc__boot *out)
{
    if (n < OBJECT_FIXED || out->nobjects >= MPROC__BOOT_MAX_OBJECTS) return MPROC_EPROTO;
    mproc__entry *e = &out->objects[out->nobjects];
    uint32_t kind = mproc__get_u32(v + 24), nh = mproc__get_u32(v + 28);
    if (kind == 0 || kind >= MPROC__KIND_MAX_ || nh > MPROC__ENTRY_HANDLES ||
        n != OBJECT_FIXED + 8 * nh)
        return MPROC_EPROTO;
    e->id.pid = mproc__get_u64(v);
    e->id.serial = mproc__get_u64(v + 8);
    e->id.nonce = mproc__get_u64(v + 16);
    e->kind = (int)kind;
    e->nhandles = nh;
    memcpy(e->info, v + 32, MPROC__REF_INFO);
    for (uint32_t h = 0; h < nh; h++)
        e->handles[h] = (mproc__handle)mproc__get_u64(v + OBJECT_FIXED + 8 * h);
    out->nobjects++;
    return 0;
}

static int decode_field(uint32_t type, const unsigned char *v, uint32_t n, mproc__boot *out)
{
    switch (type) {
    case F_TARGET:
        if (n < 24) return MPROC_EPROTO;
        out->target.offset = mproc__get_u64(v);
        memcpy(out->target.digest, v + 8, 16);
        return copy_text(out->target.module, sizeof out->target.module, v + 24, n - 24);
    case F_IMAGE:
        if (n != 32) return MPROC_EPROTO;
        memcpy(out->image_id, v, 32);
        return 0;
    case F_NAME: return copy_text(out->name, sizeof out->name, v, n);
    case F_PARENT:
        if (n != 8) return MPROC_EPROTO;
        out->parent_pid = (int64_t)mproc__get_u64(v);
        return out->parent_pid > 0 ? 0 : MPROC_EPROTO;
    case F_FLAGS:
        if (n != 4) return MPROC_EPROTO;
        out->flags = mproc__get_u32(v);
        return ((out->flags & ~(MPROC__BOOT_DAEMON | MPROC__BOOT_METHOD_MASK)) ||
                (out->flags >> MPROC__BOOT_METHOD_SHIFT) > MPROC_FORKSERVER)
                   ? MPROC_EPROTO
                   : 0;
    case F_ARG:
        out->arg = v;
        out->arg_len = n;
        return 0;
    case F_ARG_SHM:
        if (n != 16) return MPROC_EPROTO;
        out->arg_in_shm = 1;
        out->arg_shm = (mproc__handle)mproc__get_u64(v);
        out->arg_len = (size_t)mproc__get_u64(v + 8);
        return out->arg_len > MPROC__BOOT_INLINE_ARG ? 0 : MPROC_EPROTO;
    case F_OBJECT: return decode_object(v, n, out);
    default: return MPROC_EPROTO;
    }
}

int mproc__boot_decode(const unsigned char *buf, size_t len, mproc__boot *out)
{
    size_t total;
    if (!buf || len < MPROC__BOOT_HEADER || mproc__boot_header_len(buf, &total) || total != len)
        return MPROC_EPROTO;
    size_t body_end = len - BOOT_TRAILER;
    if (mproc__get_u64(buf + body_end) != mproc__fnv1a64(buf, body_end, MPROC__FNV_SEED))
        return MPROC_EPROTO;
    memset(out, 0, sizeof *out);
    uint32_t seen = 0, nfields = mproc__get_u32(buf + 16), count = 0;
    for (size_t at = MPROC__BOOT_HEADER; at < body_end; count++) {
        if (body_end - at < 8) return MPROC_EPROTO;
        uint32_t type = mproc__get_u32(buf + at), n = mproc__get_u32(buf + at + 4);
        if (n > body_end - at - 8 || type == 0 || type >= F_MAX_) return MPROC_EPROTO;
        if (type != F_OBJECT && (seen & (1u << type))) return MPROC_EPROTO; /* duplicate */
        if ((type == F_ARG && (seen & (1u << F_ARG_SHM))) ||
            (type == F_ARG_SHM && (seen & (1u << F_ARG))))
            return MPROC_EPROTO;
        seen |= 1u << type;
        int rc = decode_field(type, buf + at + 8, n, out);
        if (rc) return rc;
        at += 8 + n;
    }
    uint32_t required = (1u << F_TARGET) | (1u << F_IMAGE) | (1u << F_PARENT) | (1u << F_NAME);
    if ((seen & required) != required || count != nfields) return MPROC_EPROTO;
    return 0;
}
