/*
 * SharedMemory: named or generated segments, opened by name or attached by
 * ref. The backend (posix/shm.c, win32/shm.c) makes and finds the OS
 * objects; this file validates, maps and keeps a small header in front of
 * the user's bytes so that every process sees the exact size and the name
 * (page rounding on macOS and Windows would otherwise hide the size, and a
 * process attached by ref would not know the name).
 *
 * Header (HDR bytes at offset 0): "mprocSHM", user size (u64 LE), FNV-1a of
 * size and name, name (NUL-terminated). A segment without a valid header
 * (made by another program) is used whole. unlink turns the magic into
 * "mprocSHU" (once, atomically): opens by name refuse such a segment, which
 * is how a process removes a name the OS lets only another remove.
 */
#include "atomic.h"
#include "comm.h"
#include "ref.h"

#include <stdio.h>

#define HDR 128
#define HDR_NAME_OFF 24
#define USER_NAME_MAX 30 /* macOS: PSHMNAMLEN 31 with the leading '/' */
#define SHM_MAGIC 0x6d53686du
static const unsigned char HDR_MAGIC[8] = {'m', 'p', 'r', 'o', 'c', 'S', 'H', 'M'};
static const unsigned char HDR_UNLINKED[8] = {'m', 'p', 'r', 'o', 'c', 'S', 'H', 'U'};

typedef char hdr_fits[(HDR_NAME_OFF + MPROC__SHM_NAME_MAX <= HDR) ? 1 : -1];

struct mproc_shm {
    uint32_t magic;
    int created;      /* made by this process */
    int generated;    /* name generated (not the user's) */
    int unlinked;
    int has_hdr;      /* the segment starts with our header */
    int registered;   /* this process added the registry entry (owns id) */
    mproc__objid id;
    mproc__handle h;  /* own handle: for refs, unlink */
    unsigned char *base;
    size_t total;     /* mapped bytes */
    unsigned char *ptr;
    size_t size;
    char name[MPROC__SHM_NAME_MAX];
};

/* [A-Za-z0-9._-]{1,max} after an optional '/', which is dropped. */
static const char *check_name(const char *name, size_t max)
{
    if (!name) return NULL;
    if (name[0] == '/') name++;
    size_t n = 0;
    for (; name[n]; n++) {
        char ch = name[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= max) return NULL;
    }
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return NULL;
    return name;
}

static uint64_t hdr_sum(const unsigned char *hdr)
{
    uint64_t h = mproc__fnv1a64(hdr + 8, 8, MPROC__FNV_SEED);
    return mproc__fnv1a64(hdr + HDR_NAME_OFF, MPROC__SHM_NAME_MAX, h);
}

static void hdr_write(mproc_shm *s)
{
    memcpy(s->base, HDR_MAGIC, 8);
    mproc__put_u64(s->base + 8, s->size);
    memset(s->base + HDR_NAME_OFF, 0, MPROC__SHM_NAME_MAX);
    memcpy(s->base + HDR_NAME_OFF, s->name, strlen(s->name));
    mproc__put_u64(s->base + 16, hdr_sum(s->base));
}

/* 1 if the header says the name was unlinked. */
static int hdr_unlinked(const mproc_shm *s)
{
    return s->has_hdr && memcmp((const void *)s->base, HDR_UNLINKED, 8) == 0;
}

/* 1 if the mapping starts with a valid header for total bytes (unlinked
   or not). */
static int hdr_read(mproc_shm *s)
{
    const unsigned char *b = s->base;
    if (s->total < HDR || (memcmp(b, HDR_MAGIC, 8) != 0 && memcmp(b, HDR_UNLINKED, 8) != 0) ||
        mproc__get_u64(b + 16) != hdr_sum(b))
        return 0;
    uint64_t size = mproc__get_u64(b + 8);
    if (size == 0 || size > s->total - HDR || b[HDR_NAME_OFF + MPROC__SHM_NAME_MAX - 1] != 0)
        return 0;
    s->size = (size_t)size;
    s->ptr = s->base + HDR;
    s->has_hdr = 1;
    memcpy(s->name, b + HDR_NAME_OFF, MPROC__SHM_NAME_MAX);
    return 1;
}

static int map_all(mproc_shm *s)
{
    void *p;
    int rc = mproc__os_map(s->h, s->total, 1, &p);
    if (rc == 0) s->base = p;
    return rc;
}

/* Registers this process's handle so that refs to s reach children. */
static int shm_register(mproc_shm *s)
{
    mproc__entry e;
    memset(&e, 0, sizeof e);
    int rc = mproc__objid_new(&s->id);
    if (rc) return rc;
    e.id = s->id;
    e.kind = MPROC__KIND_SHM;
    e.nhandles = 1;
    e.handles[0] = s->h;
    mproc__put_u64(e.info, s->total);
    rc = mproc__registry_add(&e);
    if (rc == 0) s->registered = 1;
    return rc;
}

static void shm_free(mproc_shm *s)
{
    if (s->registered) mproc__registry_remove(&s->id);
    if (s->base) mproc__os_unmap(s->base, s->total);
    if (s->h != MPROC__NO_HANDLE) mproc__os_close(s->h);
    s->magic = 0;
    free(s);
}

static mproc_shm *shm_new(void)
{
    mproc_shm *s = mproc__calloc(1, sizeof *s);
    if (s) {
        s->magic = SHM_MAGIC;
        s->h = MPROC__NO_HANDLE;
    }
    return s;
}

static int shm_make(mproc_shm *s, const char *name, size_t size)
{
    int rc;
    s->total = HDR + size;
    if (name) {
        snprintf(s->name, sizeof s->name, "%s", name);
        rc = mproc__os_shm_create_named(s->name, s->total, &s->h);
    } else {
        s->generated = 1;
        rc = mproc__os_shm_create_private(s->total, s->name, sizeof s->name, &s->h);
    }
    if (rc) return rc;
    s->created = 1;
    if ((rc = map_all(s)) != 0) return rc;
    s->size = size;
    s->ptr = s->base + HDR;
    s->has_hdr = 1;
    hdr_write(s);
    return shm_register(s);
}

int mproc_shm_create(mproc_shm **out, const char *name, size_t size)
{
    const char *n = NULL;
    if (!out || size == 0 || size > SIZE_MAX / 2 - HDR) return MPROC_EINVAL;
    if (name && !(n = check_name(name, USER_NAME_MAX))) return MPROC_EINVAL;
    mproc_shm *s = shm_new();
    if (!s) return MPROC_ENOMEM;
    int rc = shm_make(s, n, size);
    if (rc) {
        /* Never leave a name behind for a segment nobody got. */
        if (s->created) mproc__os_shm_unlink(s->name, 1, &s->h);
        shm_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int mproc_shm_open(mproc_shm **out, const char *name)
{
    const char *n;
    if (!out || !(n = check_name(name, MPROC__SHM_NAME_MAX - 1))) return MPROC_EINVAL;
    mproc_shm *s = shm_new();
    if (!s) return MPROC_ENOMEM;
    int rc = mproc__os_shm_open(n, &s->h, &s->total);
    if (rc == 0 && s->total == 0) rc = MPROC_EINVAL; /* nothing to map */
    if (rc == 0) rc = map_all(s);
    if (rc == 0 && !hdr_read(s)) { /* not one of ours: use it whole */
        s->ptr = s->base;
        s->size = s->total;
    }
    if (rc == 0 && hdr_unlinked(s)) rc = MPROC_ENOENT; /* its name was removed */
    if (rc == 0) {
        snprintf(s->name, sizeof s->name, "%s", n);
        rc = shm_register(s);
    }
    if (rc) {
        shm_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void *mproc_shm_ptr(mproc_shm *s)
{
    return (s && s->magic == SHM_MAGIC) ? s->ptr : NULL;
}

size_t mproc_shm_size(const mproc_shm *s)
{
    return (s && s->magic == SHM_MAGIC) ? s->size : 0;
}

const char *mproc_shm_name(const mproc_shm *s)
{
    return (s && s->magic == SHM_MAGIC) ? s->name : NULL;
}

/* Marks the header unlinked: 0 for the one process that does it first,
   MPROC_ENOENT for every other. */
static int hdr_mark_unlinked(mproc_shm *s)
{
    uint64_t linked, unlinked;
    memcpy(&linked, HDR_MAGIC, 8);
    memcpy(&unlinked, HDR_UNLINKED, 8);
    return mproc__cas64((volatile uint64_t *)(void *)s->base, linked, unlinked) ? 0 : MPROC_ENOENT;
}

int mproc_shm_unlink(mproc_shm *s)
{
    if (!s || s->magic != SHM_MAGIC) return MPROC_EINVAL;
    if (s->unlinked) return MPROC_ENOENT;
    int rc = s->has_hdr ? hdr_mark_unlinked(s) : 0;
    mproc__handle before = s->h;
    if (!rc) rc = mproc__os_shm_unlink(s->name, s->created, &s->h);
    /* The OS name stays until its owner goes; the header now refuses it. */
    if (rc == MPROC_ENOTSUP && s->has_hdr) rc = 0;
    if (rc) return rc;
    s->unlinked = 1;
    if (s->h != before && s->registered) { /* the backend moved the handle */
        mproc__registry_remove(&s->id);
        s->registered = 0;
        rc = shm_register(s);
    }
    return rc;
}

void mproc_shm_destroy(mproc_shm *s)
{
    if (!s || s->magic != SHM_MAGIC) return;
    /* A generated name lives as long as its creator's handle. */
    if (s->created && s->generated && !s->unlinked) mproc__os_shm_unlink(s->name, 1, &s->h);
    shm_free(s);
}

int mproc_shm_ref(const mproc_shm *s, mproc_ref *ref)
{
    if (!s || s->magic != SHM_MAGIC || !ref) return MPROC_EINVAL;
    unsigned char info[MPROC__REF_INFO] = {0};
    mproc__put_u64(info, s->total);
    mproc__ref_make(MPROC__KIND_SHM, &s->id, info, ref);
    return 0;
}

static int shm_attach_obj(mproc_shm *s, const mproc_ref *ref)
{
    mproc__entry e;
    size_t have;
    int rc = mproc__ref_resolve(ref, MPROC__KIND_SHM, &e);
    if (rc) return rc;
    if (e.nhandles != 1) return MPROC_EPROTO;
    s->total = (size_t)mproc__get_u64(e.info);
    /* Never map past the object's end: that faults instead of failing. */
    if ((rc = mproc__os_shm_size(e.handles[0], &have)) != 0) return rc;
    if (s->total < HDR || s->total > have) return MPROC_EPROTO;
    if ((rc = mproc__os_shm_dup(e.handles[0], &s->h)) != 0) return rc;
    if ((rc = map_all(s)) != 0) return rc;
    if (!hdr_read(s)) return MPROC_EPROTO;
    s->id = e.id;
    return 0;
}

int mproc_shm_attach(const mproc_ref *ref, mproc_shm **out)
{
    if (!ref || !out) return MPROC_EINVAL;
    mproc_shm *s = shm_new();
    if (!s) return MPROC_ENOMEM;
    int rc = shm_attach_obj(s, ref);
    if (rc) {
        shm_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
