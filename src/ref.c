/* Refs (64-byte tokens for shareable objects) and the per-process registry
   of the OS handles behind them. See ref.h for how inheritance works. */
#include "ref.h"

/* Layout of a ref:
     0  magic (8)      8 version (1)   9 kind (1)   10 reserved (6, zero)
    16  creator pid   24 serial       32 nonce      40 info (16)
    56  checksum of bytes 0..55 */
static const unsigned char REF_MAGIC[8] = {0x89, 'm', 'p', 'R', 'e', 'f', 0x0d, 0x0a};
#define REF_VERSION 1
#define REF_SUM_OFF 56

static uint64_t ref_checksum(const unsigned char *b)
{
    return mproc__fnv1a64(b, REF_SUM_OFF, MPROC__FNV_SEED ^ 0x6d70726f63726566ULL);
}

int mproc__objid_new(mproc__objid *id)
{
    static uint64_t next_serial;
    uint64_t nonce;
    int rc = mproc__os_random(&nonce, sizeof nonce);
    if (rc) return rc;
    mproc__os_global_lock();
    id->serial = ++next_serial;
    mproc__os_global_unlock();
    id->pid = (uint64_t)mproc__os_getpid();
    id->nonce = nonce;
    return 0;
}

void mproc__ref_make(int kind, const mproc__objid *id,
                     const unsigned char info[MPROC__REF_INFO], mproc_ref *ref)
{
    unsigned char *b = ref->bytes;
    memset(b, 0, sizeof ref->bytes);
    memcpy(b, REF_MAGIC, sizeof REF_MAGIC);
    b[8] = REF_VERSION;
    b[9] = (unsigned char)kind;
    mproc__put_u64(b + 16, id->pid);
    mproc__put_u64(b + 24, id->serial);
    mproc__put_u64(b + 32, id->nonce);
    if (info) memcpy(b + 40, info, MPROC__REF_INFO);
    mproc__put_u64(b + REF_SUM_OFF, ref_checksum(b));
}

/* Validates everything but the kind; returns the kind (> 0) or EINVAL. */
static int ref_decode(const unsigned char *b, mproc__objid *id, unsigned char *info)
{
    static const unsigned char zero6[6];
    if (memcmp(b, REF_MAGIC, sizeof REF_MAGIC) != 0 || b[8] != REF_VERSION ||
        memcmp(b + 10, zero6, sizeof zero6) != 0 ||
        mproc__get_u64(b + REF_SUM_OFF) != ref_checksum(b))
        return MPROC_EINVAL;
    int kind = b[9];
    if (kind <= 0 || kind >= MPROC__KIND_MAX_) return MPROC_EINVAL;
    id->pid = mproc__get_u64(b + 16);
    id->serial = mproc__get_u64(b + 24);
    id->nonce = mproc__get_u64(b + 32);
    if (info) memcpy(info, b + 40, MPROC__REF_INFO);
    return kind;
}

int mproc__ref_parse(const mproc_ref *ref, int kind, mproc__objid *id,
                     unsigned char info[MPROC__REF_INFO])
{
    if (!ref || !id) return MPROC_EINVAL;
    int got = ref_decode(ref->bytes, id, info);
    if (got < 0) return got;
    return got == kind ? 0 : MPROC_EINVAL;
}

/* ---- registry ------------------------------------------------------------ */
static mproc__entry *reg_entries;
static size_t reg_count, reg_cap;

static int same_id(const mproc__objid *a, const mproc__objid *b)
{
    return a->pid == b->pid && a->serial == b->serial && a->nonce == b->nonce;
}

/* Index of id, or reg_count if absent. Caller holds the global lock. */
static size_t reg_index(const mproc__objid *id)
{
    size_t i = 0;
    while (i < reg_count && !same_id(&reg_entries[i].id, id)) i++;
    return i;
}

int mproc__registry_add(const mproc__entry *e)
{
    if (!e || e->nhandles > MPROC__ENTRY_HANDLES) return MPROC_EINVAL;
    int rc = 0;
    mproc__os_global_lock();
    if (reg_index(&e->id) < reg_count) {
        rc = MPROC_EEXIST;
    } else if (reg_count == reg_cap) {
        size_t cap = reg_cap ? reg_cap * 2 : 16;
        mproc__entry *n = realloc(reg_entries, cap * sizeof *n);
        if (!n) rc = MPROC_ENOMEM;
        else { reg_entries = n; reg_cap = cap; }
    }
    if (rc == 0) reg_entries[reg_count++] = *e;
    mproc__os_global_unlock();
    return rc;
}

void mproc__registry_remove(const mproc__objid *id)
{
    mproc__os_global_lock();
    size_t i = reg_index(id);
    if (i < reg_count) reg_entries[i] = reg_entries[--reg_count];
    mproc__os_global_unlock();
}

static int registry_get(const mproc__objid *id, int kind, mproc__entry *out, int remove)
{
    int rc = MPROC_ENOENT;
    mproc__os_global_lock();
    size_t i = reg_index(id);
    if (i < reg_count) {
        if (reg_entries[i].kind != kind) {
            rc = MPROC_EINVAL;
        } else {
            if (out) *out = reg_entries[i];
            if (remove) reg_entries[i] = reg_entries[--reg_count];
            rc = 0;
        }
    }
    mproc__os_global_unlock();
    return rc;
}

int mproc__registry_find(const mproc__objid *id, int kind, mproc__entry *out)
{
    return registry_get(id, kind, out, 0);
}

int mproc__registry_take(const mproc__objid *id, int kind, mproc__entry *out)
{
    return registry_get(id, kind, out, 1);
}

int mproc__ref_resolve(const mproc_ref *ref, int kind, mproc__entry *out)
{
    mproc__objid id;
    int rc = mproc__ref_parse(ref, kind, &id, NULL);
    return rc ? rc : mproc__registry_find(&id, kind, out);
}

int mproc__ref_take(const mproc_ref *ref, int kind, mproc__entry *out)
{
    mproc__objid id;
    int rc = mproc__ref_parse(ref, kind, &id, NULL);
    return rc ? rc : mproc__registry_take(&id, kind, out);
}

static int already_listed(const mproc__entry *list, size_t n, const mproc__objid *id)
{
    for (size_t i = 0; i < n; i++)
        if (same_id(&list[i].id, id)) return 1;
    return 0;
}

size_t mproc__registry_scan(const void *data, size_t len, mproc__entry *out, size_t max)
{
    const unsigned char *p = data, *end = p + len;
    size_t found = 0;
    if (!data || len < sizeof(mproc_ref)) return 0;
    while (found < max && (size_t)(end - p) >= sizeof(mproc_ref)) {
        const unsigned char *hit = memchr(p, REF_MAGIC[0], (size_t)(end - p) - sizeof(mproc_ref) + 1);
        if (!hit) break;
        mproc__objid id;
        int kind = ref_decode(hit, &id, NULL);
        if (kind > 0 && !already_listed(out, found, &id) &&
            mproc__registry_find(&id, kind, &out[found]) == 0) {
            found++;
            p = hit + sizeof(mproc_ref);
        } else {
            p = hit + 1;
        }
    }
    return found;
}
