/*
 * Shareable objects: refs (the 64-byte tokens users copy into a child's
 * argument) and the per-process registry of OS handles behind them.
 *
 * How an object reaches a child, in C as in Python, is by inheritance: when
 * a process starts, mproc scans its argument bytes for refs (they carry a
 * magic and a checksum, so they are found wherever they sit), looks each up
 * in this process's registry and hands exactly those objects' handles to the
 * child — nothing else. The child's registry starts with them, and
 * mproc_X_attach() finds them there. A ref whose object was never handed to
 * this process (or was destroyed) is MPROC_ENOENT; a malformed or forged ref
 * is MPROC_EINVAL, as is a ref of another kind.
 */
#ifndef MPROC_REF_H
#define MPROC_REF_H

#include "internal.h"

typedef enum mproc__kind {
    MPROC__KIND_LOCK = 1,
    MPROC__KIND_RLOCK,
    MPROC__KIND_SEM,
    MPROC__KIND_EVENT,
    MPROC__KIND_COND,
    MPROC__KIND_BARRIER,
    MPROC__KIND_SHM,
    MPROC__KIND_CONN,
    MPROC__KIND_QUEUE,
    MPROC__KIND_POOLCHAN,   /* a pool worker's channels and shared memory (pool.c) */
    MPROC__KIND_MAX_
} mproc__kind;

/* Identity of a shared object: creator pid, a per-process serial and a
   random nonce, so refs cannot be guessed or confused after pid reuse. */
typedef struct mproc__objid {
    uint64_t pid, serial, nonce;
} mproc__objid;

#define MPROC__REF_INFO 16   /* kind-specific bytes carried in the ref */
#define MPROC__ENTRY_HANDLES 4

/* What the registry holds for one object. */
typedef struct mproc__entry {
    mproc__objid id;
    int kind;
    size_t nhandles;
    mproc__handle handles[MPROC__ENTRY_HANDLES];
    unsigned char info[MPROC__REF_INFO];
} mproc__entry;

/* A fresh identity for an object created by this process. */
int mproc__objid_new(mproc__objid *id);
/* Encode / decode a ref. parse checks magic, version, checksum and kind
   (MPROC_EINVAL on any mismatch). */
void mproc__ref_make(int kind, const mproc__objid *id,
                     const unsigned char info[MPROC__REF_INFO], mproc_ref *ref);
int mproc__ref_parse(const mproc_ref *ref, int kind, mproc__objid *id,
                     unsigned char info[MPROC__REF_INFO]);

/* Registry. add copies the entry (the registry does not own the handles of
   objects this process created; it owns inherited ones). */
int mproc__registry_add(const mproc__entry *e);
void mproc__registry_remove(const mproc__objid *id);
/* Look up by id and kind: 0 and a copy in *out, MPROC_ENOENT, or
   MPROC_EINVAL if the id is there with another kind. */
int mproc__registry_find(const mproc__objid *id, int kind, mproc__entry *out);
/* Resolve a ref to its entry: parse + find. */
int mproc__ref_resolve(const mproc_ref *ref, int kind, mproc__entry *out);
/* Like find, but removes the entry: the caller owns its handles. For
   objects such as pipe ends, where a lingering copy would hide EOF. */
int mproc__registry_take(const mproc__objid *id, int kind, mproc__entry *out);
int mproc__ref_take(const mproc_ref *ref, int kind, mproc__entry *out);

/* Spawn support: every registered object whose ref appears in data
   (deduplicated), at most max entries. Returns the count found. */
size_t mproc__registry_scan(const void *data, size_t len, mproc__entry *out, size_t max);

#endif
