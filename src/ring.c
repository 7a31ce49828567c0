/* A ring of framed messages in shared memory (see ring.h). */
#include "ring_kept.h"

#define SPIN_CHECKS 160
#define SPIN_YIELDS 8
/* Pauses between two looks at a ring that was empty (or full): looking
   pulls the other side's cache line over, which stalls its next write. */
#define SPIN_GAP_MIN 4
#define SPIN_GAP_MAX 16
#define LOCK_TAG_MAX (((uint64_t)1 << 30) - 1)

void mproc__ring_format(mproc__ring_shared *sh, uint64_t cap)
{
    memset(sh, 0, sizeof *sh);
    sh->capacity = cap;
}

/* A lock owner's tag (see the two locks), unique within the process. */
static uint64_t new_tag(void)
{
    static volatile uint64_t tags;
    return mproc__add64(&tags, 1) % LOCK_TAG_MAX + 1;
}

int mproc__ring_bind(mproc__ring *r, mproc__ring_shared *sh, unsigned char *data,
                     uint64_t data_max, const mproc__ring_ops *ops, void *user, int slice_ms)
{
    uint64_t cap = mproc__load64(&sh->capacity);
    if (cap < 4096 || (cap & (cap - 1)) || cap > data_max) return MPROC_EINVAL;
    memset(r, 0, sizeof *r);
    r->sh = sh;
    r->data = data;
    r->mask = cap - 1;
    r->ops = ops;
    r->user = user;
    r->slice_ms = slice_ms;
    r->tag = new_tag();
    return 0;
}

/* ---- ring bytes ------------------------------------------------------------ */
/* One copy unless the bytes wrap (a header's 16 then compile to a move). */
static void ring_write(mproc__ring *r, uint64_t pos, const void *src, size_t n)
{
    size_t off = (size_t)(pos & r->mask), room = (size_t)capacity(r) - off;
    if (n <= room) {
        if (n) memcpy(r->data + off, src, n); /* src may be NULL when n is 0 */
        return;
    }
    memcpy(r->data + off, src, room);
    memcpy(r->data, (const unsigned char *)src + room, n - room);
}

static void ring_read(mproc__ring *r, uint64_t pos, void *dst, size_t n)
{
    size_t off = (size_t)(pos & r->mask), room = (size_t)capacity(r) - off;
    if (n <= room) {
        if (n) memcpy(dst, r->data + off, n);
        return;
    }
    memcpy(dst, r->data + off, room);
    memcpy((unsigned char *)dst + room, r->data, n - room);
}

/* The producer's counterpart of fetch_ahead (ring_kept.h). */
static inline void fetch_ahead_w(mproc__ring *r, uint64_t pos)
{
    if (pos + AHEAD < r->seen_head + capacity(r))
        mproc__prefetchw(r->data + ((pos + AHEAD) & r->mask));
}

/* Free bytes after tail, at least need if that many are free; the head
   is read again only when the last one seen does not show them (or is
   from before another producer's records). */
static MPROC__ALWAYS_INLINE uint64_t free_after(mproc__ring *r, uint64_t tail, uint64_t need)
{
    uint64_t cap = capacity(r), used = tail - r->seen_head;
    if (tail >= r->seen_head && used <= cap && cap - used >= need) return cap - used;
    r->seen_head = mproc__load64(&r->sh->head);
    used = tail - r->seen_head;
    return used <= cap ? cap - used : 0;
}

static MPROC__ALWAYS_INLINE uint64_t free_space(mproc__ring *r, uint64_t need)
{
    return free_after(r, mproc__load64(&r->sh->tail), need);
}

int mproc__ring_readable(mproc__ring *r) { return data_avail(r, REC_HDR) >= REC_HDR; }

static inline uint64_t messages_in(mproc__ring *r)
{
    uint64_t taken = mproc__load64(&r->sh->get_msgs), started = mproc__load64(&r->sh->put_msgs);
    return started > taken ? started - taken : 0;
}

uint64_t mproc__ring_count(mproc__ring *r) { return messages_in(r); }

/* ---- waiting --------------------------------------------------------------------- */
int mproc__ring_wait(mproc__ring *r, int kind, mproc__ring_cond cond, void *arg,
                     uint64_t deadline, int timeout_ms)
{
    for (int i = 0, gap = SPIN_GAP_MIN; i < SPIN_CHECKS + SPIN_YIELDS; i++) {
        if (cond(r, arg, 0)) return 0;
        if (i >= SPIN_CHECKS) {
            mproc__os_yield();
            continue;
        }
        for (int k = 0; k < gap; k++) mproc__cpu_relax();
        if (gap < SPIN_GAP_MAX) gap *= 2;
    }
    for (;;) {
        int left = mproc__remaining_ms(deadline, timeout_ms);
        int slice = (left < 0 || left > r->slice_ms) ? r->slice_ms : left;
        int ok = r->ops->sleep_once(r, kind, cond, arg, slice);
        if (ok) return ok > 0 ? 0 : ok;
        if (left == 0) return MPROC_ETIMEDOUT;
    }
}

static int revoke_kept_locks(mproc__ring *r);

void mproc__ring_announce(mproc__ring *r, int kind, int delta)
{
    mproc__add64(&r->sh->waiters[kind], (uint64_t)(int64_t)delta);
    if (delta <= 0) return;
    mproc__add64(&r->sh->wait_seq[kind], 1);
    /* A waker leaving a kept lock looks for us with no fence of its own.
       One that keeps it only from a later take has fenced since (the
       compare-and-swap that kept it) and sees this announcement. (Should
       the fence fail here, where the owner could join, a wake may be
       missed: the sleep slice bounds it.) The remote fence costs tens of
       microseconds (an interrupt of every CPU running a registered
       process), more than a kept lock saves on a ring whose reader
       sleeps between messages, so the kept lock is given up as well: its
       owner keeps it again only after a streak with nobody asleep. */
    if (revoke_kept_locks(r)) (void)mproc__os_remote_fence();
}

/* Announcements of sleepers so far, of every kind. */
static uint64_t announcements(mproc__ring *r)
{
    uint64_t n = 0;
    for (int k = 0; k < MPROC__RING_KINDS; k++) n += mproc__load64(&r->sh->wait_seq[k]);
    return n;
}

/* After a full fence (a lock's take or release, or mproc__fence): the
   announcement of a sleeper that has not seen the change is visible. */
static MPROC__NOINLINE void wake_announced(mproc__ring *r, int kind)
{
    /* A sleeper counts itself in waiters, then in wait_seq, then looks: if
       this load missed its wait_seq, its look sees the change. */
    uint64_t seq = mproc__load64(&r->sh->wait_seq[kind]);
    if (seq == r->rung_seq[kind]) return; /* rung already; it has yet to run */
    r->rung_seq[kind] = seq;
    r->ops->wake(r, kind);
}

static inline void wake_waiters(mproc__ring *r, int kind)
{
    if (mproc__load64(&r->sh->waiters[kind])) wake_announced(r, kind);
}

void mproc__ring_wake(mproc__ring *r, int kind)
{
    mproc__fence();
    wake_waiters(r, kind);
}

/* ---- the two locks --------------------------------------------------------------- */
/* A lock word holds its owner's id: the pid (liveness is asked of it) and
   the ring object's tag (two objects of one process, say one per thread,
   are two owners). Taken plainly, a lock costs a compare-and-swap to take
   and one to release, two full fences per message and side: they drain
   the store buffer, which holds the previous message's stores to lines
   the other side is reading, so each side waits for a cache-line transfer
   per message (perf: three quarters of a producer's time on those two
   instructions). So an owner that has taken a lock BIAS_AFTER times in a
   row keeps it between calls (BIAS), where the system has an asymmetric
   fence (os.h): entering is a plain store to busy and a plain look at the
   owner word, leaving a plain store, no fence at all. A contender sets
   REVOKE in the owner word, runs the remote fence and then looks at busy:
   the fence makes the owner's store of busy visible before that look, or
   the owner's look at the word after it (which then sees REVOKE and takes
   the plain path): never both missed. Once busy is 0 the contender takes
   the lock with a compare-and-swap. The keeper it was taken from may not
   have looked since, and its next call stores to busy before it looks at
   the word: busy is then its own only if nobody else keeps the lock. So
   the contender names it in stale, nobody keeps the lock while stale
   names a live process, and the old keeper clears stale at its next call,
   after its last store to busy. Sleepers pay likewise: a waker that
   leaves a kept lock has no fence before it looks for them, so a sleeper
   runs the remote fence after announcing itself while a lock is kept
   (mproc__ring_announce). A dead owner's lock is taken over as any other,
   kept or not. */
/* Takes in a row by one owner before it keeps the lock: producers that
   take turns keep taking it plainly (a revocation costs a system call). */
#define BIAS_AFTER 64

static uint64_t lock_id(mproc__ring *r) { return (mproc__self_pid() & 0xffffffffu) | r->tag << 32; }
static int64_t owner_pid(uint64_t owner) { return (int64_t)(owner & 0xffffffffu); }

typedef struct lock_try {
    mproc__ring_lock *lk;
    int which;
    uint64_t me;
    /* The owner word and kept_seq a remote fence was run for: the same
       word can come back after its owner took the lock plainly and kept
       it again (kept_seq tells), and that keeping needs a fence of its own. */
    uint64_t fenced, fenced_seq;
    int recovered;
} lock_try;

/* A kept lock of a live owner: ask for it (REVOKE), fence, and take it
   once its owner is not inside; the owner is then stale (the two locks). */
static int revoke(lock_try *t, uint64_t owner)
{
    if (!(owner & LOCK_REVOKE)) {
        if (!mproc__cas64(&t->lk->owner, owner, owner | LOCK_REVOKE)) return 0;
        owner |= LOCK_REVOKE;
    }
    uint64_t seq = mproc__load64(&t->lk->kept_seq);
    if (t->fenced != owner || t->fenced_seq != seq) {
        if (mproc__os_remote_fence()) return 0; /* the owner's next call gives it up */
        t->fenced = owner;
        t->fenced_seq = seq;
    }
    if (mproc__load64(&t->lk->busy) || !mproc__cas64(&t->lk->owner, owner, t->me)) return 0;
    mproc__store64(&t->lk->stale, owner & LOCK_ID);
    return 1;
}

/* A keeper the lock was taken from clears stale once it is past its last
   store to busy (it has stopped keeping the lock). */
static void clear_stale(mproc__ring_lock *lk, uint64_t me)
{
    if (mproc__load64(&lk->stale) == me) (void)mproc__cas64(&lk->stale, me, 0);
}

/* Whether the lock may be kept: no stale keeper, or one that has died. */
static int no_stale_keeper(mproc__ring_lock *lk)
{
    uint64_t stale = mproc__load64(&lk->stale);
    if (!stale) return 1;
    if (mproc__os_pid_alive(owner_pid(stale))) return 0;
    return mproc__cas64(&lk->stale, stale, 0);
}

static int try_lock(mproc__ring *r, void *arg, int sleeping)
{
    lock_try *t = arg;
    uint64_t owner = mproc__load64(&t->lk->owner);
    if (owner == 0) return mproc__cas64(&t->lk->owner, 0, t->me);
    if ((owner & (LOCK_ID | LOCK_BIAS)) == (t->me | LOCK_BIAS)) { /* kept by us, being revoked */
        r->streak[t->which] = 0; /* plain for a while: the contender gets its turn */
        return mproc__cas64(&t->lk->owner, owner, t->me);
    }
    if (sleeping && !mproc__os_pid_alive(owner_pid(owner)) &&
        mproc__cas64(&t->lk->owner, owner, t->me)) {
        mproc__store64(&t->lk->busy, 0); /* it may have died inside */
        t->recovered = 1;
        return 1;
    }
    return (owner & LOCK_BIAS) ? revoke(t, owner) : 0;
}

/* Counts plain takes in a row by this object with no sleeper announced
   in between (last is written only by owners, under the lock). */
static void note_plain_take(mproc__ring *r, int which, uint64_t me)
{
    mproc__ring_lock *lk = lock_of(r, which);
    uint64_t seq = announcements(r);
    if (mproc__load64(&lk->last) != me) {
        mproc__store64_rel(&lk->last, me);
        r->streak[which] = 0;
    } else if (seq != r->streak_seq[which]) {
        r->streak[which] = 0;
    } else if (r->streak[which] < BIAS_AFTER) {
        r->streak[which]++;
    }
    r->streak_seq[which] = seq;
}

static int lock_plain(mproc__ring *r, int which, uint64_t me, uint64_t deadline, int timeout_ms)
{
    mproc__ring_lock *lk = lock_of(r, which);
    lock_try t = {lk, which, me, 0, 0, 0};
    r->biased[which] = 0;
    clear_stale(lk, me);
    if (!mproc__cas64(&lk->owner, 0, me)) {
        int rc = mproc__ring_wait(r, MPROC__RING_LOCK, try_lock, &t, deadline, timeout_ms);
        if (rc) return rc;
    }
    note_plain_take(r, which, me);
    return t.recovered;
}

/* 0 locked, 1 locked after taking it over from a dead owner, or error. */
static inline int ring_lock(mproc__ring *r, int which, uint64_t me, uint64_t deadline,
                            int timeout_ms)
{
    /* kept: not so in a forked copy, whose pid differs; revoked: the plain way */
    if (r->biased[which] == me && enter_kept(r, which, me)) return 0;
    return lock_plain(r, which, me, deadline, timeout_ms);
}

/* Its plain owner me keeps the lock: kept_seq first, so that a
   contender's fence cached for an earlier keeping is not reused. */
static int keep_lock(mproc__ring_lock *lk, uint64_t me)
{
    mproc__store64(&lk->kept_seq, mproc__load64(&lk->kept_seq) + 1); /* ours: locked */
    return mproc__cas64(&lk->owner, me, me | LOCK_BIAS);
}

/* Only by its owner: a forked copy of an object holding a lock must not
   free it under the process that holds it. A plain owner that has taken
   the lock often enough in a row, with nobody waiting for it, keeps it. */
static MPROC__NOINLINE void unlock_plain(mproc__ring *r, int which, uint64_t me)
{
    mproc__ring_lock *lk = lock_of(r, which);
    if (r->biased[which] == me) { /* a contender asked for it: it may be asleep */
        r->biased[which] = 0;
        mproc__fence();
        wake_waiters(r, MPROC__RING_LOCK);
        return;
    }
    r->biased[which] = 0;
    if (r->streak[which] >= BIAS_AFTER && !mproc__load64(&r->sh->waiters[MPROC__RING_LOCK]) &&
        no_stale_keeper(lk) && mproc__os_remote_fence_join() == 0 && keep_lock(lk, me)) {
        r->biased[which] = me;
        wake_waiters(r, MPROC__RING_LOCK); /* one that came since looks again */
        return;
    }
    if (mproc__cas64(&lk->owner, me, 0)) wake_waiters(r, MPROC__RING_LOCK);
    else mproc__fence(); /* the callers' wakes rely on a fence here */
}

static inline void ring_unlock(mproc__ring *r, int which, uint64_t me)
{
    if (r->biased[which] == me && leave_kept(r, which, me)) return;
    unlock_plain(r, which, me);
}

/* A sleeper asks the owners that keep a lock to give it up at their next
   call (REVOKE, as a contender would, without taking it). Returns 1 if a
   lock was kept: the wakers behind it have no fence. */
static int revoke_kept_locks(mproc__ring *r)
{
    int kept = 0;
    uint64_t me = lock_id(r);
    for (int which = PUT_LOCK; which <= GET_LOCK; which++) {
        mproc__ring_lock *lk = lock_of(r, which);
        uint64_t owner = mproc__load64(&lk->owner);
        if ((owner & LOCK_ID) == me) continue; /* ours: we wake nobody while asleep */
        while ((owner & LOCK_BIAS) && !(owner & LOCK_REVOKE) &&
               !mproc__cas64(&lk->owner, owner, owner | LOCK_REVOKE))
            owner = mproc__load64(&lk->owner);
        kept |= (owner & LOCK_BIAS) != 0;
    }
    return kept;
}

/* ---- producer side --------------------------------------------------------------- */
static void put_record(mproc__ring *r, int type, uint64_t total, const void *body, size_t n)
{
    uint64_t tail = mproc__load64(&r->sh->tail);
    size_t off = (size_t)(tail & r->mask);
    unsigned char h[REC_HDR], *at = r->data + off;
    int in_one = capacity(r) - off >= REC_HDR + n; /* no wrap: straight in */
    unsigned char *hp = in_one ? at : h;
    mproc__rec_header(hp, type, (uint32_t)n, total);
    fetch_ahead_w(r, tail + pad8(REC_HDR + n));
    if (in_one) {
        if (n) memcpy(at + REC_HDR, body, n);
    } else {
        ring_write(r, tail, h, REC_HDR);
        ring_write(r, tail + REC_HDR, body, n);
    }
    mproc__store64_rel(&r->sh->tail, tail + pad8(REC_HDR + n)); /* publish */
}

typedef struct space_need {
    uint64_t bytes;
    uint64_t wide; /* while spinning: wait for this much (widen_need) */
    int first;     /* the record starts a message */
} space_need;

/* A new message may start: a queue's maxsize is not reached. */
static inline int message_room(mproc__ring *r)
{
    return !r->max_msgs || messages_in(r) < r->max_msgs;
}

/* first: the record starts a message, which a queue's maxsize may refuse. */
static inline int space_now(mproc__ring *r, uint64_t want, int first)
{
    if (first && !message_room(r)) return 0;
    return free_space(r, want) >= want;
}

static int has_space(mproc__ring *r, void *arg, int sleeping)
{
    space_need *s = arg;
    return space_now(r, sleeping || s->wide < s->bytes ? s->bytes : s->wide, s->first);
}

/* Ends a stream cut short (the ring always keeps room for this record). */
static void put_abort(mproc__ring *r)
{
    put_record(r, REC_ABORT, 0, NULL, 0);
    if (r->ops->aborted) r->ops->aborted(r);
    mproc__store64(&r->sh->put_stream, 0);
    mproc__ring_wake(r, MPROC__RING_DATA);
}

/* A message is counted (r->counted) before its first record is published
   (a consumer must never take one not yet counted); put_pending, the tail
   before that record plus one, lets whoever takes over from a producer
   that died in between undo the count and end a stream that has nothing
   in the ring without an ABORT record (repair_put). It is never cleared
   after the publication: the tail only grows, so an old put_pending can
   no longer match it, and a store less per message is one entry less in
   a store buffer that waits for the other core's lines. */
static inline void start_message(mproc__ring *r, uint64_t tail, int streamed)
{
    if (!r->counted && !streamed) return; /* a pipe's whole message: nothing to undo */
    mproc__store64_rel(&r->sh->put_pending, tail + 1);
    if (streamed) mproc__store64_rel(&r->sh->put_stream, 1);
    if (!r->counted) return;
    mproc__store64_rel(&r->sh->put_msgs, mproc__load64(&r->sh->put_msgs) + 1); /* ours: locked */
    if (r->unfinished) mproc__add64(r->unfinished, 1);
}

/* With the put lock taken over from a dead producer: a message it counted
   but never published is uncounted; a stream it started is ended. */
static void repair_put(mproc__ring *r)
{
    uint64_t pending = mproc__load64(&r->sh->put_pending);
    if (pending && mproc__load64(&r->sh->tail) == pending - 1) {
        if (r->counted) mproc__store64(&r->sh->put_msgs, mproc__load64(&r->sh->put_msgs) - 1);
        if (r->ops->aborted) r->ops->aborted(r);
        mproc__store64(&r->sh->put_stream, 0); /* nothing of it is in the ring */
    }
    mproc__store64(&r->sh->put_pending, 0);
    if (mproc__load64(&r->sh->put_stream)) put_abort(r);
}

/* A full ring: while spinning, wait for an eighth of it to be free, not
   just for this record, so that one look at the head gives room for many
   records (looking after every record the consumer takes keeps both sides
   trading the same cache lines). Once asleep, the record's own size
   counts again: a put never waits for more room than it needs for long. */
static void widen_need(mproc__ring *r, space_need *need)
{
    need->wide = capacity(r) / 8;
}

/* Its reader is woken after the unlock (mproc__ring_put). */
static int put_whole(mproc__ring *r, const void *buf, size_t len, uint64_t deadline, int timeout_ms)
{
    space_need need = {pad8(REC_HDR + len), 0, 1};
    if (!space_now(r, need.bytes, 1)) {
        widen_need(r, &need);
        int rc = mproc__ring_wait(r, MPROC__RING_SPACE, has_space, &need, deadline, timeout_ms);
        if (rc) return rc;
    }
    start_message(r, mproc__load64(&r->sh->tail), 0);
    put_record(r, REC_WHOLE, len, buf, len);
    return 0;
}

/* Largest chunk of a streamed message: a quarter of the ring, so the
   consumer can drain one while the producer fills the next. */

static int put_stream(mproc__ring *r, const unsigned char *buf, size_t len, uint64_t deadline,
                      int timeout_ms)
{
    size_t off = 0, cmax = chunk_max(r);
    while (off < len) {
        size_t n = len - off < cmax ? len - off : cmax;
        int type = off == 0 ? REC_FIRST : off + n == len ? REC_LAST : REC_MIDDLE;
        space_need need = {pad8(REC_HDR + n) + REC_HDR, 0, off == 0};
        int rc = mproc__ring_wait(r, MPROC__RING_SPACE, has_space, &need, deadline, timeout_ms);
        if (rc) {
            if (off) put_abort(r); /* the consumer discards what it has */
            return rc;
        }
        if (off == 0) start_message(r, mproc__load64(&r->sh->tail), 1);
        put_record(r, type, len, buf + off, n);
        if (type == REC_LAST) mproc__store64(&r->sh->put_stream, 0);
        mproc__ring_wake(r, MPROC__RING_DATA);
        off += n;
    }
    return 0;
}

/* Small messages while the put lock is kept, the common case of a busy
   stream: the general path's steps in one piece, for a message that fits
   one record before the ring's end, with room for it now (space_now)
   and a queue's maxsize not in the way. Between two busy processes a
   small message costs each side its instructions more than its copy, and
   the general path's layers were most of them. It calls nothing: each
   register saved is a store, and in the slow regime (the other core
   holds the lines this side writes next) stores wait in the store buffer,
   so fewer of them are fewer messages' worth of stall. Returns KEPT_*. */
static MPROC__ALWAYS_INLINE int put_kept(mproc__ring *r, const void *buf, size_t len, int small)
{
    uint64_t me = kept_id(r), size = pad8(REC_HDR + len), cap = capacity(r);
    if (!me || r->biased[PUT_LOCK] != me || len > chunk_max(r) || !enter_kept(r, PUT_LOCK, me))
        return KEPT_MISSED;
    uint64_t tail = mproc__load64(&r->sh->tail), off = tail & r->mask;
    if (cap - off < size || !message_room(r) || free_after(r, tail, size) < size)
        return kept_leave_flags(r, PUT_LOCK, me, -1);
    start_message(r, tail, 0);
    unsigned char *at = r->data + off;
    mproc__rec_header(at, REC_WHOLE, (uint32_t)len, len);
    fetch_ahead_w(r, tail + size);
    if (small) copy_small(at + REC_HDR, buf, len);
    else copy_any(at + REC_HDR, buf, len);
    mproc__store64_rel(&r->sh->tail, tail + size); /* publish */
    /* the wake needs no fence: a sleeper ran the remote one */
    return KEPT_DONE | kept_leave_flags(r, PUT_LOCK, me, MPROC__RING_DATA);
}

/* The general path: any message, any state of the lock. */
static MPROC__NOINLINE int put_locked(mproc__ring *r, uint64_t me, const void *buf, size_t len,
                                      int timeout_ms)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = ring_lock(r, PUT_LOCK, me, deadline, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 1) repair_put(r); /* after a dead owner */
    /* Whole if it fits a record no larger than a stream's chunk: the bound
       rec_peek enforces on every record. */
    if (len <= chunk_max(r))
        rc = put_whole(r, buf, len, deadline, timeout_ms);
    else
        rc = put_stream(r, buf, len, deadline, timeout_ms);
    ring_unlock(r, PUT_LOCK, me);
    wake_waiters(r, MPROC__RING_DATA); /* after the unlock's fence (or the sleeper's) */
    return rc;
}

/* Whatever the small-message put_kept left: its unlock and wake, or the
   whole message, through put_kept for any size if it is larger. */
static MPROC__NOINLINE int put_rest(mproc__ring *r, int kept, const void *buf, size_t len,
                                    int timeout_ms)
{
    if (kept == KEPT_MISSED && len > SMALL_MSG) kept = put_kept(r, buf, len, 0);
    uint64_t me = lock_id(r);
    if (kept & KEPT_UNLOCK) unlock_plain(r, PUT_LOCK, me);
    int rc = 0;
    if (!(kept & KEPT_DONE)) {
        r->putting = 1;
        rc = put_locked(r, me, buf, len, timeout_ms);
        r->putting = 0;
    } else {
        wake_waiters(r, MPROC__RING_DATA);
    }
    return rc == 0 && r->peer_gone && mproc__load64(r->peer_gone) ? MPROC_ECLOSED : rc;
}

int mproc__ring_put(mproc__ring *r, const void *buf, size_t len, int timeout_ms)
{
    int kept = len <= SMALL_MSG ? put_kept(r, buf, len, 1) : KEPT_MISSED;
    return kept == KEPT_DONE ? 0 : put_rest(r, kept, buf, len, timeout_ms);
}

/* ---- consumer side ---------------------------------------------------------------- */
typedef struct rec {
    int type;
    size_t n;        /* bytes in this record */
    uint64_t total;  /* message length */
    uint64_t size;   /* record size in the ring */
} rec;

/* Reads and checks the record at head (which is published). */
static int rec_peek(mproc__ring *r, rec *out)
{
    unsigned char h[REC_HDR];
    uint64_t head = mproc__load64(&r->sh->head), used = data_avail(r, REC_HDR);
    if (used < REC_HDR || used > capacity(r)) return MPROC_EPROTO;
    ring_read(r, head, h, REC_HDR);
    uint32_t tag = hdr32(h);
    out->type = (int)(tag & 0xffffu);
    out->n = hdr32(h + 4);
    out->total = hdr64(h + 8);
    out->size = pad8(REC_HDR + out->n);
    if (out->size > used) used = data_avail(r, out->size); /* a newer tail may show it */
    if ((tag & 0xffff0000u) != TAG_MAGIC || out->type < REC_WHOLE || out->type > REC_ABORT ||
        out->size > used || REC_HDR + (uint64_t)out->n > capacity(r) / 4 ||
        out->total > MPROC__RING_MAX_MSG || out->total > (uint64_t)SIZE_MAX ||
        (out->type == REC_WHOLE && out->total != out->n) ||
        (out->type == REC_FIRST && out->n >= out->total) || (out->type == REC_ABORT && out->n))
        return MPROC_EPROTO;
    return 0;
}

/* Takes the record at the head (bytes into dst). Producers waiting for
   room are woken now if wake, else by the caller (get_unlock). */
static void rec_take(mproc__ring *r, const rec *x, void *dst, int wake)
{
    uint64_t head = mproc__load64(&r->sh->head);
    if (dst && x->n) ring_read(r, head + REC_HDR, dst, x->n);
    mproc__store64_rel(&r->sh->head, head + x->size);
    if (wake) mproc__ring_wake(r, MPROC__RING_SPACE);
}

static void rec_consume(mproc__ring *r, const rec *x, void *dst) { rec_take(r, x, dst, 1); }

/* A corrupt ring (a process scribbled on shared memory) cannot be
   resynchronised: drop what is in it and report it once. */
static int ring_corrupt(mproc__ring *r)
{
    r->seen_tail = mproc__load64(&r->sh->tail);
    mproc__store64(&r->sh->head, r->seen_tail);
    mproc__store64(&r->sh->get_stream, 0);
    mproc__ring_wake(r, MPROC__RING_SPACE);
    return MPROC_EPROTO;
}

static int has_record(mproc__ring *r, void *arg, int sleeping)
{
    (void)arg;
    (void)sleeping;
    return mproc__ring_readable(r);
}

/* Mid-stream the producer is known to be writing: if it died, end its
   stream with ABORT in its place. */
static int stream_record(mproc__ring *r, void *arg, int sleeping)
{
    (void)arg;
    if (mproc__ring_readable(r)) return 1;
    if (!sleeping || !mproc__load64(&r->sh->put_stream)) return 0;
    uint64_t owner = mproc__load64(&r->sh->put.owner), me = lock_id(r);
    if (owner && (owner & LOCK_ID) != me && !mproc__os_pid_alive(owner_pid(owner)) &&
        mproc__cas64(&r->sh->put.owner, owner, me)) {
        mproc__store64(&r->sh->put.busy, 0);
        r->biased[PUT_LOCK] = 0;
        r->streak[PUT_LOCK] = 0; /* taken over to repair it, not to keep */
        repair_put(r);
        ring_unlock(r, PUT_LOCK, me);
    }
    return mproc__ring_readable(r);
}

static int next_stream_record(mproc__ring *r, rec *x, uint64_t deadline, int timeout_ms)
{
    int rc = mproc__ring_wait(r, MPROC__RING_DATA, stream_record, NULL, deadline, timeout_ms);
    if (!rc) rc = rec_peek(r, x);
    return rc == MPROC_EPROTO ? ring_corrupt(r) : rc;
}

/* Discards the rest of a stream a previous consumer left. */
static int skip_stream(mproc__ring *r, uint64_t deadline, int timeout_ms)
{
    while (mproc__load64(&r->sh->get_stream)) {
        rec x;
        int rc = next_stream_record(r, &x, deadline, timeout_ms);
        if (rc) return rc;
        if (x.type == REC_WHOLE || x.type == REC_FIRST) break; /* not part of it */
        rec_consume(r, &x, NULL);
        if (x.type != REC_MIDDLE) break;
    }
    mproc__store64(&r->sh->get_stream, 0);
    return 0;
}

int mproc__ring_get_lock(mproc__ring *r, uint64_t deadline, int timeout_ms)
{
    uint64_t me = lock_id(r);
    int rc = ring_lock(r, GET_LOCK, me, deadline, timeout_ms);
    if (rc < 0) return rc;
    if (rc == 1 || mproc__load64(&r->sh->get_stream)) rc = skip_stream(r, deadline, timeout_ms);
    if (rc) ring_unlock(r, GET_LOCK, me);
    return rc;
}

void mproc__ring_get_unlock(mproc__ring *r)
{
    r->peeked = 0;
    ring_unlock(r, GET_LOCK, lock_id(r));
    wake_waiters(r, MPROC__RING_SPACE); /* after the unlock's fence, or the sleeper's remote one */
}

int mproc__ring_peek(mproc__ring *r, uint64_t *total, uint64_t deadline, int timeout_ms)
{
    for (;;) {
        r->peeked = 0;
        if (!mproc__ring_readable(r)) {
            int rc = mproc__ring_wait(r, MPROC__RING_DATA, has_record, NULL, deadline, timeout_ms);
            if (rc) return rc;
        }
        rec x;
        if (rec_peek(r, &x)) return ring_corrupt(r);
        if (x.type == REC_WHOLE || x.type == REC_FIRST) {
            r->peeked_head = mproc__load64(&r->sh->head);
            fetch_ahead(r, r->peeked_head + x.size);
            r->peeked_type = x.type;
            r->peeked_n = x.n;
            r->peeked_total = x.total;
            r->peeked_size = x.size;
            r->peeked = 1;
            *total = x.total;
            return 0;
        }
        rec_consume(r, &x, NULL); /* the tail of an aborted stream */
    }
}

int mproc__ring_take_start(mproc__ring *r, void *dst, uint64_t total, uint64_t *got)
{
    /* By the header peek read and checked (whose length sized dst), not by
       a second read: shared memory may have changed since. */
    if (!r->peeked || r->peeked_head != mproc__load64(&r->sh->head) || r->peeked_total != total)
        return MPROC_ESTATE; /* not the message peek gave: nothing taken */
    rec x = {r->peeked_type, r->peeked_n, r->peeked_total, r->peeked_size};
    r->peeked = 0;
    /* Counted before the head moves: a producer woken for room sees it. */
    if (r->counted) /* ours: locked */
        mproc__store64_rel(&r->sh->get_msgs, mproc__load64(&r->sh->get_msgs) + 1);
    *got = x.n;
    if (x.type == REC_WHOLE) {
        rec_take(r, &x, dst, 0); /* producers are woken by get_unlock */
        return 0;
    }
    rec_consume(r, &x, dst);
    mproc__store64(&r->sh->get_stream, 1);
    return 1;
}

/* take_small's body, inlined into its callers: a call between the two
   cost a message two sets of saved registers. */
static MPROC__ALWAYS_INLINE int take_small(mproc__ring *r, void *user, size_t cap, void **out,
                                           size_t *n)
{
    uint64_t head = mproc__load64(&r->sh->head), size;
    size_t len;
    const unsigned char *src = whole_at(r, head, &len, &size);
    if (!src || (user && len > cap)) return 0;
    unsigned char *dst = user ? user : mproc__msg_alloc(len);
    if (!dst) return MPROC_ENOMEM; /* the message stays */
    fetch_ahead(r, head + size);
    copy_any(dst, src, len);
    finish_take(r, head, size);
    *n = len;
    if (!user) *out = dst;
    return 1;
}

int mproc__ring_take_small(mproc__ring *r, void *user, size_t cap, void **out, size_t *n)
{
    return take_small(r, user, cap, out, n);
}

/* take_small in one piece while the get lock is kept (no stream
   part-way through): any size, into a block of its own or the caller's. */
static int take_kept_any(mproc__ring *r, void *user, size_t cap, void **out, size_t *n)
{
    uint64_t me = lock_id(r);
    if (r->biased[GET_LOCK] != me || !enter_kept(r, GET_LOCK, me)) return 0;
    int rc = mproc__load64(&r->sh->get_stream) ? 0 : take_small(r, user, cap, out, n);
    ring_unlock(r, GET_LOCK, me);
    if (rc > 0) wake_waiters(r, MPROC__RING_SPACE); /* no fence: a sleeper ran the remote one */
    return rc;
}

/* Whatever take_kept_small left: its unlock and wake, or the message. */
int mproc__ring_get_kept_rest(mproc__ring *r, int kept, void *user, size_t cap, void **out,
                              size_t *n)
{
    if (kept & KEPT_UNLOCK) unlock_plain(r, GET_LOCK, lock_id(r));
    if (!(kept & KEPT_DONE)) return take_kept_any(r, user, cap, out, n);
    wake_waiters(r, MPROC__RING_SPACE);
    return 1;
}

/* Room for n more bytes after got, doubling the block up to total. */
static int grow(unsigned char **dst, uint64_t *room, uint64_t total, uint64_t got, uint64_t n)
{
    if (got + n <= *room) return 0;
    uint64_t want = *room * 2 > got + n ? *room * 2 : got + n;
    if (want > total) want = total;
    unsigned char *p = realloc(*dst, (size_t)want);
    if (!p) return MPROC_ENOMEM;
    *dst = p;
    *room = want;
    return 0;
}

int mproc__ring_take_rest(mproc__ring *r, unsigned char **dst, uint64_t *room, uint64_t total,
                          uint64_t *got, uint64_t deadline, int timeout_ms)
{
    while (*got < total) {
        rec x;
        int rc = next_stream_record(r, &x, deadline, timeout_ms);
        if (rc) return rc;
        if (x.type == REC_ABORT) {
            rec_consume(r, &x, NULL);
            mproc__store64(&r->sh->get_stream, 0);
            return MPROC__RING_ABORTED;
        }
        if ((x.type != REC_MIDDLE && x.type != REC_LAST) || x.total != total ||
            x.n > total - *got || (x.type == REC_LAST) != (*got + x.n == total))
            return ring_corrupt(r);
        rc = grow(dst, room, total, *got, x.n);
        if (rc) return rc;
        rec_consume(r, &x, *dst + *got);
        *got += x.n;
    }
    mproc__store64(&r->sh->get_stream, 0);
    return 0;
}

void mproc__ring_write_raw(mproc__ring_shared *sh, unsigned char *data, const void *bytes,
                           size_t n)
{
    mproc__ring r;
    memset(&r, 0, sizeof r);
    r.sh = sh;
    r.data = data;
    r.mask = sh->capacity - 1;
    uint64_t tail = mproc__load64(&sh->tail);
    ring_write(&r, tail, bytes, n);
    mproc__store64(&sh->tail, tail + pad8(n));
}
