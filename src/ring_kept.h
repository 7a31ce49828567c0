/* A ring's receive of a small message while this object keeps the get
   lock (ring.c, "the two locks"), inline in the receives of conn.c and
   queue.c, with the helpers it shares with ring.c. Between two busy
   processes a 64-byte message costs the consumer its instructions and
   its stores more than its copy, and a call from conn.c into ring.c cost
   both: the saved registers of two functions. take_kept_small calls
   nothing; what it cannot finish itself it leaves, as KEPT_* flags, to
   mproc__ring_get_kept_rest in ring.c. (The producer's counterpart,
   put_kept, stays in ring.c: mproc_conn_send reaches it by a jump.) */
#ifndef MPROC_RING_KEPT_H
#define MPROC_RING_KEPT_H

#include "ring.h"

#define REC_HDR MPROC__REC_HDR
#define TAG_MAGIC MPROC__REC_TAG
enum { REC_WHOLE = MPROC__REC_WHOLE, REC_FIRST, REC_MIDDLE, REC_LAST, REC_ABORT };
/* Lock words (see the two locks). */
#define LOCK_BIAS ((uint64_t)1 << 62)
#define LOCK_REVOKE ((uint64_t)1 << 63)
#define LOCK_ID (LOCK_BIAS - 1)
enum { PUT_LOCK, GET_LOCK };

static inline uint32_t hdr32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t hdr64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }
static inline uint64_t capacity(const mproc__ring *r) { return r->mask + 1; }
static inline size_t chunk_max(const mproc__ring *r) { return (size_t)(capacity(r) / 4 - REC_HDR); }

/* Up to SMALL_MSG bytes, inline and without a call: a call to memcpy
   and its dispatch on the size cost as much as copying 64 bytes, and
   would make the kept-lock paths save registers. Two fixed-size copies
   that may overlap cover each range of sizes. */
#define SMALL_MSG 64

static inline void copy_small(unsigned char *dst, const unsigned char *src, size_t n)
{
    if (n >= 32) {
        memcpy(dst, src, 32);
        memcpy(dst + n - 32, src + n - 32, 32);
    } else if (n >= 16) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n) { /* 1 to 3 bytes; src may be NULL when n is 0 */
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/* Any length: copy_small's inline moves up to SMALL_MSG, memcpy above. */
static inline void copy_any(unsigned char *dst, const unsigned char *src, size_t n)
{
    if (n <= SMALL_MSG) copy_small(dst, src, n);
    else memcpy(dst, src, n);
}

/* The line AHEAD bytes on is fetched while a message is copied (each
   message moves on by at least 16 bytes, so every line gets its turn):
   every fence of a message (the locks) would otherwise wait for the other
   core's cache line of the next one, a whole transfer per message, where
   a ring without fences overlaps them. Only lines the other side is done
   with: published records for a consumer, free room for a producer. */
#define AHEAD 192

static inline void fetch_ahead(mproc__ring *r, uint64_t pos)
{
    if (pos + AHEAD + 64 <= r->seen_tail) mproc__prefetch(r->data + ((pos + AHEAD) & r->mask));
}

/* Bytes published and not consumed, at least need if that many are there:
   the tail is read again only when the last one seen does not show them
   (or is behind the head another consumer moved). */
static MPROC__ALWAYS_INLINE uint64_t data_avail(mproc__ring *r, uint64_t need)
{
    uint64_t head = mproc__load64(&r->sh->head);
    if (r->seen_tail >= head && r->seen_tail - head >= need) return r->seen_tail - head;
    r->seen_tail = mproc__load64(&r->sh->tail);
    return r->seen_tail >= head ? r->seen_tail - head : 0;
}

static inline mproc__ring_lock *lock_of(mproc__ring *r, int which)
{
    return which == PUT_LOCK ? &r->sh->put : &r->sh->get;
}

/* Kept locks: entering is a plain store to busy and a look at the owner
   word (see the two locks); 1 if the lock is ours now. A lock revoked
   meanwhile is left at once, and not kept by us any more: the plain path
   (lock_plain, which clears stale) takes it. */
static inline int enter_kept(mproc__ring *r, int which, uint64_t me)
{
    mproc__ring_lock *lk = lock_of(r, which);
    mproc__store64_rel(&lk->busy, 1);
    mproc__compiler_fence();
    if (mproc__load64(&lk->owner) == (me | LOCK_BIAS)) return 1;
    mproc__store64_rel(&lk->busy, 0);
    r->biased[which] = 0;
    return 0;
}

/* Leaves a kept lock: 1 if it is still kept, 0 if it was revoked
   meanwhile (unlock_plain must then run). */
static inline int leave_kept(mproc__ring *r, int which, uint64_t me)
{
    mproc__ring_lock *lk = lock_of(r, which);
    mproc__store64_rel(&lk->busy, 0);
    mproc__compiler_fence();
    return mproc__load64(&lk->owner) == (me | LOCK_BIAS);
}

/* The id the kept-lock paths compare with biased, from the pid cache
   alone (0 before the pid is known: they then miss, and the general path
   asks for it). Calling nothing keeps those paths free of saved
   registers. */
static inline uint64_t kept_id(mproc__ring *r)
{
    uint64_t pid = mproc__load64(&mproc__self_pid_cache);
    return pid ? (pid & 0xffffffffu) | r->tag << 32 : 0;
}

/* What a kept-lock path did: nothing (the general path does it all), or
   its message, with what it left to the general code: unlock_plain for a
   lock revoked meanwhile, a wake for announced sleepers. */
enum { KEPT_MISSED = 0, KEPT_DONE = 1, KEPT_UNLOCK = 2, KEPT_WAKE = 4 };

static inline int kept_leave_flags(mproc__ring *r, int which, uint64_t me, int kind)
{
    int flags = leave_kept(r, which, me) ? 0 : KEPT_UNLOCK;
    if (kind >= 0 && mproc__load64(&r->sh->waiters[kind])) flags |= KEPT_WAKE;
    return flags;
}

/* The record at head if it is one whole record lying in one piece,
   checked as peek checks a record (*n its length, *size its bytes in the
   ring), else NULL. */
static MPROC__ALWAYS_INLINE const unsigned char *whole_at(mproc__ring *r, uint64_t head, size_t *n,
                                                          uint64_t *size)
{
    uint64_t used = data_avail(r, REC_HDR), cap = capacity(r);
    size_t off = (size_t)(head & r->mask);
    if (used < REC_HDR || used > cap || cap - off < REC_HDR) return NULL;
    unsigned char h[REC_HDR];
    memcpy(h, r->data + off, REC_HDR); /* read once, then checked */
    uint32_t len = hdr32(h + 4);
    *size = pad8(REC_HDR + (uint64_t)len);
    if (hdr32(h) != (TAG_MAGIC | REC_WHOLE) || hdr64(h + 8) != len ||
        REC_HDR + (uint64_t)len > cap / 4 || *size > cap - off)
        return NULL;
    if (*size > used && data_avail(r, *size) < *size) return NULL;
    *n = len;
    return r->data + off + REC_HDR;
}

/* The record at head, of size bytes, taken (the get lock held). */
static inline void finish_take(mproc__ring *r, uint64_t head, uint64_t size)
{
    r->peeked = 0;
    if (r->counted) /* ours: locked */
        mproc__store64_rel(&r->sh->get_msgs, mproc__load64(&r->sh->get_msgs) + 1);
    mproc__store64_rel(&r->sh->head, head + size);
}

/* The consumer's counterpart of put_kept for a message of up to
   SMALL_MSG bytes, into the caller's buffer (user, cap bytes: recv_into)
   or else the thread's spare block (*out: recv, Queue get): it calls
   nothing, for the same reason. Without a spare that suits the message
   it takes nothing: the general kept path allocates. Returns KEPT_*. */
static MPROC__ALWAYS_INLINE int take_kept_small(mproc__ring *r, unsigned char *user, size_t cap,
                                                void **out, size_t *n)
{
    uint64_t me = kept_id(r), head, size;
    size_t len;
    const unsigned char *src;
    unsigned char *dst = user;
    if (!me || r->biased[GET_LOCK] != me || !enter_kept(r, GET_LOCK, me)) return KEPT_MISSED;
    head = mproc__load64(&r->sh->head);
    if (mproc__load64(&r->sh->get_stream) || !(src = whole_at(r, head, &len, &size)) ||
        len > SMALL_MSG || (user ? len > cap : !(dst = mproc__msg_take_spare(len))))
        return kept_leave_flags(r, GET_LOCK, me, -1);
    if (!user) *out = dst;
    fetch_ahead(r, head + size);
    copy_small(dst, src, len);
    finish_take(r, head, size);
    *n = len;
    /* the wake needs no fence: a sleeper ran the remote one */
    return KEPT_DONE | kept_leave_flags(r, GET_LOCK, me, MPROC__RING_SPACE);
}

/* What take_kept_small left (kept: its KEPT_* flags), in ring.c: the
   unlock after a revocation and the wake; or, if it took nothing, the
   message by the kept-lock path for any size into user (cap bytes) or a
   new block (*out). 1: taken, *n its length; 0: nothing taken (the lock
   is not kept, nothing is there yet, it is larger than cap, or a record
   for the general path: get_lock, peek, ...); MPROC_ENOMEM: the message
   stays. Wakes producers. */
int mproc__ring_get_kept_rest(mproc__ring *r, int kept, void *user, size_t cap, void **out,
                              size_t *n);

#endif
