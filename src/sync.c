/*
 * Lock, RLock, Semaphore, Event, Condition and Barrier shared between
 * processes, written once on top of atomics and the OS seam's sync blocks
 * (a page of shared memory per object) and park/unpark (sleep on a word /
 * wake its sleepers: a futex on Linux, a semaphore on Windows, a bounded
 * back-off sleep on the portable POSIX path).
 *
 * Owner death: a Lock or RLock word holds its holder's pid. A waiter sleeps
 * in slices of SLICE_MS and asks the OS between slices whether the holder
 * still exists; a holder that is gone (even as an unreaped zombie) loses
 * the lock to the waiter, whose acquire returns MPROC_EOWNERDEAD. Residual
 * risk: if the dead holder's pid is reused by a new process before a waiter
 * looks, the lock stays held until that process ends.
 */
#include "atomic.h"
#include "fnref.h"
#include "ref.h"

#define SLICE_MS 200          /* owner-death checks while waiting */
#define PID_MASK 0x7fffffffu  /* lock word: holder pid ... */
#define WAITERS 0x80000000u   /* ... and "someone may sleep on it" */
#define SEM_VALUE_MAX 0x7fffffffu
#define BARRIER_MAX_PARTIES 0x7fffffffu
#define RESET_RING 16
#define ALL UINT32_MAX

/* The shared state of one object: the first bytes of its sync block. */
typedef struct sblock {
    uint32_t magic, kind;
    uint32_t word;      /* what sleepers park on (lock word, count, flag, ...) */
    uint32_t sleepers;  /* sem/event: how many park on word */
    uint32_t max;       /* sem: bound (0: none); barrier: parties */
    uint32_t count;     /* rlock: recursion; cond: registered waiters; barrier: arrived */
    uint32_t tokens;    /* cond: wake-ups granted but not yet taken */
    uint32_t guard;     /* barrier: pid holding its internal spin lock */
    uint64_t owner_tid; /* rlock: owning thread within the owning pid */
    uint32_t resets;    /* barrier: resets so far ... */
    uint32_t reset_gen[RESET_RING]; /* ... and the generations they ended */
    /* barrier: set at create, before the block is shared */
    uint32_t has_action, has_timeout;
    int32_t timeout_ms;  /* the default for MPROC_DEFAULT_TIMEOUT */
    uint32_t pad;
    mproc__fnref action; /* found again in the process that trips it */
} sblock;

#define BLOCK_MAGIC 0x6d53796eu /* "mSyn" */
#define OBJ_MAGIC 0x6d4f626au   /* in-process handles */

typedef struct sobj {
    uint32_t magic;
    int kind;
    int creator;
    mproc__objid id;
    mproc__os_sync *os;
    sblock *b;
} sobj;

struct mproc_lock { sobj o; };
struct mproc_rlock { sobj o; };
struct mproc_sem { sobj o; };
struct mproc_event { sobj o; };
struct mproc_barrier { sobj o; };
struct mproc_cond { sobj o; mproc_rlock *lock; int own_lock; };

typedef char sblock_fits[(sizeof(sblock) <= MPROC__SYNC_BLOCK - MPROC__SYNC_RESERVED) ? 1 : -1];

/* ---- identity ------------------------------------------------------------- */
/* getpid() per acquire would double the cost of an uncontended pair; the
   pid is cached and refreshed in forked children. */
volatile uint64_t mproc__self_pid_cache;
static MPROC__THREAD_LOCAL char thread_marker; /* its address names the thread */

static void refresh_self(void)
{
    mproc__store64(&mproc__self_pid_cache, (uint64_t)mproc__os_getpid());
}

uint64_t mproc__self_pid_first(void)
{
    mproc__os_global_lock();
    if (mproc__load64(&mproc__self_pid_cache) == 0) {
        mproc__os_sync_atfork(refresh_self);
        refresh_self();
    }
    mproc__os_global_unlock();
    return mproc__load64(&mproc__self_pid_cache);
}

static void sync_init(void) { (void)mproc__self_pid(); }

static inline uint32_t self_pid(void) { return (uint32_t)mproc__self_pid() & PID_MASK; }
static inline uint64_t self_tid(void) { return (uint64_t)(uintptr_t)&thread_marker; }

static int slice_of(int left) { return (left < 0 || left > SLICE_MS) ? SLICE_MS : left; }

/* Deadlines in nanoseconds, so that a wait never ends before its timeout
   (a millisecond clock could cut up to 1 ms off it). */
static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : mproc__os_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Whole milliseconds left, rounded up; MPROC_FOREVER passes through. */
static int left_ms(uint64_t deadline, int timeout_ms)
{
    if (timeout_ms < 0) return MPROC_FOREVER;
    uint64_t now = mproc__os_now_ns();
    if (now >= deadline) return 0;
    uint64_t ms = (deadline - now + 999999u) / 1000000u;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* ---- objects: create / attach / destroy ----------------------------------- */
static int sobj_map(sobj *o, int kind)
{
    o->b = mproc__os_sync_mem(o->os);
    o->kind = kind;
    o->magic = OBJ_MAGIC;
    return 0;
}

/* A new block for kind, registered so that refs to it reach children.
   extra_*: handles of a second block carried in the same entry (cond). */
static int sobj_create(sobj *o, int kind, const mproc__handle *extra, size_t nextra)
{
    mproc__entry e;
    memset(&e, 0, sizeof e);
    sync_init();
    int rc = mproc__os_sync_create(&o->os);
    if (rc) return rc;
    sobj_map(o, kind);
    o->b->kind = (uint32_t)kind;
    mproc__store32(&o->b->magic, BLOCK_MAGIC);
    rc = mproc__objid_new(&o->id);
    if (rc == 0) {
        e.id = o->id;
        e.kind = kind;
        e.nhandles = mproc__os_sync_handles(o->os, e.handles);
        e.info[0] = (unsigned char)e.nhandles;
        for (size_t i = 0; i < nextra; i++) e.handles[e.nhandles++] = extra[i];
        rc = mproc__registry_add(&e);
    }
    if (rc) {
        mproc__os_sync_free(o->os);
        o->os = NULL;
        return rc;
    }
    o->creator = 1;
    return 0;
}

/* Map handles h[0..n) as a block of kind; a block of another kind (a
   confused or corrupt handle) is MPROC_EPROTO. */
static int sobj_open(sobj *o, int kind, const mproc__handle *h, size_t n)
{
    sync_init();
    int rc = mproc__os_sync_open(h, n, &o->os);
    if (rc) return rc;
    sobj_map(o, kind);
    if (mproc__load32(&o->b->magic) != BLOCK_MAGIC || o->b->kind != (uint32_t)kind) {
        mproc__os_sync_free(o->os);
        o->os = NULL;
        return MPROC_EPROTO;
    }
    return 0;
}

static int sobj_attach(const mproc_ref *ref, int kind, sobj *o, mproc__entry *e)
{
    if (!ref) return MPROC_EINVAL;
    int rc = mproc__ref_resolve(ref, kind, e);
    if (rc) return rc;
    size_t own = e->info[0];
    if (own == 0 || own > e->nhandles || own > MPROC__SYNC_MAX_HANDLES) return MPROC_EPROTO;
    rc = sobj_open(o, kind, e->handles, own);
    if (rc == 0) o->id = e->id;
    return rc;
}

static void sobj_destroy(sobj *o)
{
    if (o->creator) mproc__registry_remove(&o->id);
    mproc__os_sync_free(o->os);
    o->magic = 0;
}

static int sobj_ref(const sobj *o, int kind, mproc_ref *ref)
{
    if (!o || o->magic != OBJ_MAGIC || o->kind != kind || !ref) return MPROC_EINVAL;
    mproc__ref_make(kind, &o->id, NULL, ref);
    return 0;
}

static int valid(const sobj *o, int kind)
{
    return o->magic == OBJ_MAGIC && o->kind == kind;
}
#define VALID(p, kind) ((p) != NULL && valid(&(p)->o, (kind)))

/* Allocates the public struct (named obj_ inside expr) and fills it with
   expr, a create or attach call; frees it again if expr fails. */
#define MAKE_OBJ(type, out, expr)                                            \
    do {                                                                     \
        type *obj_ = mproc__calloc(1, sizeof *obj_);                         \
        if (!obj_) return MPROC_ENOMEM;                                      \
        int rc_ = (expr);                                                    \
        if (rc_) { free(obj_); return rc_; }                                 \
        *(out) = obj_;                                                       \
        return 0;                                                            \
    } while (0)

/* ---- the lock word: holder pid | WAITERS, 0 when free ---------------------- */
/* Takes a lock whose holder has ended: 1 if this caller now holds it. */
static int take_from_dead(uint32_t *w, uint32_t seen, uint32_t me)
{
    uint32_t holder = seen & PID_MASK;
    if (seen == 0 || holder == me || mproc__os_pid_alive(holder)) return 0;
    return mproc__cas32(w, seen, me | WAITERS);
}

static int word_lock_slow(sobj *o, uint32_t *w, uint32_t me, int timeout_ms)
{
    /* No spinning before sleeping: measured here, a spinning waiter pulls
       the lock's cache line away from the holder and halves contended
       throughput (as glibc's default mutex, which does not spin either). */
    uint64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        uint32_t v = mproc__load32(w);
        /* Having slept, take it marked: others may still sleep behind us. */
        if (v == 0) {
            if (mproc__cas32(w, 0, me | WAITERS)) return 0;
            continue;
        }
        if (!(v & WAITERS) && !mproc__cas32(w, v, v | WAITERS)) continue;
        v |= WAITERS;
        int left = left_ms(deadline, timeout_ms);
        if (left == 0) return take_from_dead(w, v, me) ? MPROC_EOWNERDEAD : MPROC_ETIMEDOUT;
        if (mproc__os_park(o->os, w, v, slice_of(left)) == MPROC_ETIMEDOUT &&
            take_from_dead(w, mproc__load32(w), me))
            return MPROC_EOWNERDEAD;
    }
}

static inline int word_lock(sobj *o, uint32_t *w, int timeout_ms)
{
    uint32_t me = self_pid();
    if (mproc__cas32(w, 0, me)) return 0;
    return word_lock_slow(o, w, me, timeout_ms);
}

static inline int word_unlock(sobj *o, uint32_t *w)
{
    uint32_t v = mproc__xchg32(w, 0);
    if (v == 0) return MPROC_ESTATE;
    if (v & WAITERS) mproc__os_unpark(o->os, w, 1);
    return 0;
}

/* ---- Lock ------------------------------------------------------------------ */
int mproc_lock_create(mproc_lock **l)
{
    if (!l) return MPROC_EINVAL;
    MAKE_OBJ(mproc_lock, l, sobj_create(&obj_->o, MPROC__KIND_LOCK, NULL, 0));
}

int mproc_lock_acquire(mproc_lock *l, int timeout_ms)
{
    if (!VALID(l, MPROC__KIND_LOCK) || timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    return word_lock(&l->o, &l->o.b->word, timeout_ms);
}

int mproc_lock_release(mproc_lock *l)
{
    if (!VALID(l, MPROC__KIND_LOCK)) return MPROC_EINVAL;
    return word_unlock(&l->o, &l->o.b->word);
}

int mproc_lock_locked(mproc_lock *l)
{
    if (!VALID(l, MPROC__KIND_LOCK)) return MPROC_EINVAL;
    return (mproc__load32(&l->o.b->word) & PID_MASK) != 0;
}

void mproc_lock_destroy(mproc_lock *l)
{
    if (!VALID(l, MPROC__KIND_LOCK)) return;
    sobj_destroy(&l->o);
    free(l);
}

int mproc_lock_ref(const mproc_lock *l, mproc_ref *ref)
{
    return l ? sobj_ref(&l->o, MPROC__KIND_LOCK, ref) : MPROC_EINVAL;
}

int mproc_lock_attach(const mproc_ref *ref, mproc_lock **l)
{
    mproc__entry e;
    if (!ref || !l) return MPROC_EINVAL;
    MAKE_OBJ(mproc_lock, l, sobj_attach(ref, MPROC__KIND_LOCK, &obj_->o, &e));
}

/* ---- RLock: the lock word plus owner thread and recursion count ------------ */
static int rlock_owned(const sblock *b)
{
    return (mproc__load32(&b->word) & PID_MASK) == self_pid() &&
           mproc__load64(&b->owner_tid) == self_tid();
}

static int rlock_take(mproc_rlock *l, int timeout_ms, uint32_t count)
{
    int rc = word_lock(&l->o, &l->o.b->word, timeout_ms);
    if (rc == 0 || rc == MPROC_EOWNERDEAD) {
        mproc__store64(&l->o.b->owner_tid, self_tid());
        mproc__store32(&l->o.b->count, count);
    }
    return rc;
}

int mproc_rlock_create(mproc_rlock **l)
{
    if (!l) return MPROC_EINVAL;
    MAKE_OBJ(mproc_rlock, l, sobj_create(&obj_->o, MPROC__KIND_RLOCK, NULL, 0));
}

int mproc_rlock_acquire(mproc_rlock *l, int timeout_ms)
{
    if (!VALID(l, MPROC__KIND_RLOCK) || timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    sblock *b = l->o.b;
    if (rlock_owned(b)) {
        uint32_t c = mproc__load32(&b->count);
        if (c == UINT32_MAX) return MPROC_EINVAL;
        mproc__store32(&b->count, c + 1);
        return 0;
    }
    return rlock_take(l, timeout_ms, 1);
}

int mproc_rlock_release(mproc_rlock *l)
{
    if (!VALID(l, MPROC__KIND_RLOCK)) return MPROC_EINVAL;
    sblock *b = l->o.b;
    if (!rlock_owned(b)) return MPROC_ESTATE;
    uint32_t c = mproc__load32(&b->count);
    if (c > 1) {
        mproc__store32(&b->count, c - 1);
        return 0;
    }
    mproc__store32(&b->count, 0);
    mproc__store64(&b->owner_tid, 0);
    return word_unlock(&l->o, &b->word);
}

/* Condition.wait: give the lock up entirely, remembering the depth. */
static int rlock_release_save(mproc_rlock *l, uint32_t *count)
{
    sblock *b = l->o.b;
    if (!rlock_owned(b)) return MPROC_ESTATE;
    *count = mproc__load32(&b->count);
    mproc__store32(&b->count, 0);
    mproc__store64(&b->owner_tid, 0);
    return word_unlock(&l->o, &b->word);
}

void mproc_rlock_destroy(mproc_rlock *l)
{
    if (!VALID(l, MPROC__KIND_RLOCK)) return;
    sobj_destroy(&l->o);
    free(l);
}

int mproc_rlock_ref(const mproc_rlock *l, mproc_ref *ref)
{
    return l ? sobj_ref(&l->o, MPROC__KIND_RLOCK, ref) : MPROC_EINVAL;
}

int mproc_rlock_attach(const mproc_ref *ref, mproc_rlock **l)
{
    mproc__entry e;
    if (!ref || !l) return MPROC_EINVAL;
    MAKE_OBJ(mproc_rlock, l, sobj_attach(ref, MPROC__KIND_RLOCK, &obj_->o, &e));
}

/* ---- Semaphore: word = value ---------------------------------------------- */
static int sem_create_obj(sobj *o, unsigned value, unsigned max)
{
    int rc = sobj_create(o, MPROC__KIND_SEM, NULL, 0);
    if (rc) return rc;
    o->b->max = max;
    mproc__store32(&o->b->word, value);
    return 0;
}

int mproc_sem_create(mproc_sem **s, unsigned value, unsigned max)
{
    if (!s || value > SEM_VALUE_MAX || max > SEM_VALUE_MAX || (max && value > max))
        return MPROC_EINVAL;
    MAKE_OBJ(mproc_sem, s, sem_create_obj(&obj_->o, value, max));
}

int mproc_sem_acquire(mproc_sem *s, int timeout_ms)
{
    if (!VALID(s, MPROC__KIND_SEM) || timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    sblock *b = s->o.b;
    uint64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        uint32_t c = mproc__load32(&b->word);
        if (c > 0) {
            if (mproc__cas32(&b->word, c, c - 1)) return 0;
            continue;
        }
        int left = left_ms(deadline, timeout_ms);
        if (left == 0) return MPROC_ETIMEDOUT;
        mproc__add32(&b->sleepers, 1);
        mproc__os_park(s->o.os, &b->word, 0, left);
        mproc__add32(&b->sleepers, (uint32_t)-1);
    }
}

int mproc_sem_release(mproc_sem *s)
{
    if (!VALID(s, MPROC__KIND_SEM)) return MPROC_EINVAL;
    sblock *b = s->o.b;
    uint32_t max = b->max ? b->max : SEM_VALUE_MAX;
    for (;;) {
        uint32_t c = mproc__load32(&b->word);
        if (c >= max) return MPROC_EINVAL;
        if (mproc__cas32(&b->word, c, c + 1)) break;
    }
    if (mproc__load32(&b->sleepers)) mproc__os_unpark(s->o.os, &b->word, 1);
    return 0;
}

int mproc_sem_value(mproc_sem *s, unsigned *value)
{
    if (!VALID(s, MPROC__KIND_SEM) || !value) return MPROC_EINVAL;
    *value = mproc__load32(&s->o.b->word);
    return 0;
}

void mproc_sem_destroy(mproc_sem *s)
{
    if (!VALID(s, MPROC__KIND_SEM)) return;
    sobj_destroy(&s->o);
    free(s);
}

int mproc_sem_ref(const mproc_sem *s, mproc_ref *ref)
{
    return s ? sobj_ref(&s->o, MPROC__KIND_SEM, ref) : MPROC_EINVAL;
}

int mproc_sem_attach(const mproc_ref *ref, mproc_sem **s)
{
    mproc__entry e;
    if (!ref || !s) return MPROC_EINVAL;
    MAKE_OBJ(mproc_sem, s, sobj_attach(ref, MPROC__KIND_SEM, &obj_->o, &e));
}

/* ---- Event: word = generation << 1 | flag --------------------------------- */
/* The generation lets a waiter notice a set() that was cleared again before
   it woke: like Python's, such a wait succeeds. */
int mproc_event_create(mproc_event **e)
{
    if (!e) return MPROC_EINVAL;
    MAKE_OBJ(mproc_event, e, sobj_create(&obj_->o, MPROC__KIND_EVENT, NULL, 0));
}

int mproc_event_set(mproc_event *e)
{
    if (!VALID(e, MPROC__KIND_EVENT)) return MPROC_EINVAL;
    sblock *b = e->o.b;
    for (;;) {
        uint32_t v = mproc__load32(&b->word);
        if (v & 1) return 0;
        if (mproc__cas32(&b->word, v, (v + 2) | 1)) break;
    }
    if (mproc__load32(&b->sleepers)) mproc__os_unpark(e->o.os, &b->word, ALL);
    return 0;
}

int mproc_event_clear(mproc_event *e)
{
    if (!VALID(e, MPROC__KIND_EVENT)) return MPROC_EINVAL;
    uint32_t *w = &e->o.b->word;
    for (;;) {
        uint32_t v = mproc__load32(w);
        if (!(v & 1) || mproc__cas32(w, v, v & ~1u)) return 0;
    }
}

int mproc_event_is_set(mproc_event *e)
{
    if (!VALID(e, MPROC__KIND_EVENT)) return MPROC_EINVAL;
    return (int)(mproc__load32(&e->o.b->word) & 1);
}

int mproc_event_wait(mproc_event *e, int timeout_ms)
{
    if (!VALID(e, MPROC__KIND_EVENT) || timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    sblock *b = e->o.b;
    uint64_t deadline = deadline_of(timeout_ms);
    uint32_t first = mproc__load32(&b->word);
    if (first & 1) return 0;
    for (;;) {
        int left = left_ms(deadline, timeout_ms);
        if (left == 0) return MPROC_ETIMEDOUT;
        mproc__add32(&b->sleepers, 1);
        mproc__os_park(e->o.os, &b->word, first, left);
        mproc__add32(&b->sleepers, (uint32_t)-1);
        uint32_t v = mproc__load32(&b->word);
        if ((v & 1) || (v >> 1) != (first >> 1)) return 0;
    }
}

void mproc_event_destroy(mproc_event *e)
{
    if (!VALID(e, MPROC__KIND_EVENT)) return;
    sobj_destroy(&e->o);
    free(e);
}

int mproc_event_ref(const mproc_event *e, mproc_ref *ref)
{
    return e ? sobj_ref(&e->o, MPROC__KIND_EVENT, ref) : MPROC_EINVAL;
}

int mproc_event_attach(const mproc_ref *ref, mproc_event **e)
{
    mproc__entry en;
    if (!ref || !e) return MPROC_EINVAL;
    MAKE_OBJ(mproc_event, e, sobj_attach(ref, MPROC__KIND_EVENT, &obj_->o, &en));
}

/* ---- Condition: word = notify sequence ------------------------------------ */
/* Waiters register in count (under the lock); notify(n) turns up to n
   registered waiters into tokens and bumps the sequence; a waiter returns
   successfully only by taking a token after the sequence moved past the
   value it saw when it registered, so a notify never wakes a waiter that
   came after it, and never more than n. A waiter that times out
   deregisters under the lock -- or, if a notify already counted it, takes
   its token and succeeds. */
static int take_token(sblock *b)
{
    for (;;) {
        uint32_t t = mproc__load32(&b->tokens);
        if (t == 0) return 0;
        if (mproc__cas32(&b->tokens, t, t - 1)) return 1;
    }
}

static int cond_create_obj(mproc_cond *c, mproc_rlock *lock)
{
    int rc = 0;
    if (!lock) {
        rc = mproc_rlock_create(&lock);
        if (rc) return rc;
        c->own_lock = 1;
    }
    mproc__handle h[MPROC__SYNC_MAX_HANDLES];
    size_t n = mproc__os_sync_handles(lock->o.os, h);
    rc = sobj_create(&c->o, MPROC__KIND_COND, h, n);
    if (rc && c->own_lock) mproc_rlock_destroy(lock);
    if (rc == 0) c->lock = lock;
    return rc;
}

int mproc_cond_create(mproc_cond **c, mproc_rlock *lock)
{
    if (!c || (lock && !VALID(lock, MPROC__KIND_RLOCK))) return MPROC_EINVAL;
    MAKE_OBJ(mproc_cond, c, cond_create_obj(obj_, lock));
}

mproc_rlock *mproc_cond_lock(mproc_cond *c)
{
    return VALID(c, MPROC__KIND_COND) ? c->lock : NULL;
}

int mproc_cond_acquire(mproc_cond *c, int timeout_ms)
{
    if (!VALID(c, MPROC__KIND_COND)) return MPROC_EINVAL;
    return mproc_rlock_acquire(c->lock, timeout_ms);
}

int mproc_cond_release(mproc_cond *c)
{
    if (!VALID(c, MPROC__KIND_COND)) return MPROC_EINVAL;
    return mproc_rlock_release(c->lock);
}

/* Sleeps until a token is taken (1) or the deadline passes (0). */
static int cond_sleep(mproc_cond *c, uint32_t seen, uint64_t deadline, int timeout_ms)
{
    sblock *b = c->o.b;
    for (;;) {
        uint32_t now = mproc__load32(&b->word);
        if (now != seen) {
            if (take_token(b)) return 1;
            seen = now;
        }
        int left = left_ms(deadline, timeout_ms);
        if (left == 0) return 0;
        mproc__os_park(c->o.os, &b->word, seen, left);
    }
}

int mproc_cond_wait(mproc_cond *c, int timeout_ms)
{
    if (!VALID(c, MPROC__KIND_COND) || timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    sblock *b = c->o.b;
    uint64_t deadline = deadline_of(timeout_ms);
    if (!rlock_owned(c->lock->o.b)) return MPROC_ESTATE;
    mproc__add32(&b->count, 1);
    uint32_t seen = mproc__load32(&b->word), depth;
    int rc = rlock_release_save(c->lock, &depth);
    if (rc) {
        mproc__add32(&b->count, (uint32_t)-1);
        return rc;
    }
    int woken = cond_sleep(c, seen, deadline, timeout_ms);
    int lrc = rlock_take(c->lock, MPROC_FOREVER, depth);
    if (!woken) {
        /* Under the lock again: still registered, or counted by a notify. */
        if (mproc__load32(&b->count) > 0) mproc__add32(&b->count, (uint32_t)-1);
        else woken = take_token(b);
    }
    if (lrc) return lrc;
    return woken ? 0 : MPROC_ETIMEDOUT;
}

int mproc_cond_notify(mproc_cond *c, unsigned n)
{
    if (!VALID(c, MPROC__KIND_COND)) return MPROC_EINVAL;
    sblock *b = c->o.b;
    if (!rlock_owned(c->lock->o.b)) return MPROC_ESTATE;
    uint32_t k = mproc__load32(&b->count);
    if (k > n) k = n;
    if (k == 0) return 0;
    mproc__add32(&b->count, (uint32_t)-k);
    mproc__add32(&b->tokens, k);
    mproc__add32(&b->word, 1);
    mproc__os_unpark(c->o.os, &b->word, k);
    return 0;
}

int mproc_cond_notify_all(mproc_cond *c)
{
    return mproc_cond_notify(c, UINT32_MAX);
}

void mproc_cond_destroy(mproc_cond *c)
{
    if (!VALID(c, MPROC__KIND_COND)) return;
    sobj_destroy(&c->o);
    if (c->own_lock) mproc_rlock_destroy(c->lock);
    free(c);
}

int mproc_cond_ref(const mproc_cond *c, mproc_ref *ref)
{
    return c ? sobj_ref(&c->o, MPROC__KIND_COND, ref) : MPROC_EINVAL;
}

/* The entry carries the condition's block, then its lock's. */
static int cond_attach_obj(mproc_cond *c, const mproc_ref *ref)
{
    mproc__entry e;
    int rc = sobj_attach(ref, MPROC__KIND_COND, &c->o, &e);
    if (rc) return rc;
    size_t own = e.info[0];
    c->lock = mproc__calloc(1, sizeof *c->lock);
    rc = c->lock ? sobj_open(&c->lock->o, MPROC__KIND_RLOCK, e.handles + own, e.nhandles - own)
                 : MPROC_ENOMEM;
    if (rc) {
        free(c->lock);
        sobj_destroy(&c->o);
        return rc;
    }
    c->own_lock = 1;
    return 0;
}

int mproc_cond_attach(const mproc_ref *ref, mproc_cond **c)
{
    if (!ref || !c) return MPROC_EINVAL;
    MAKE_OBJ(mproc_cond, c, cond_attach_obj(obj_, ref));
}

/* ---- Barrier: word = generation << 1 | broken ------------------------------ */
/* Arrival counting happens under a tiny spin lock in the block (guard); the
   generation moves on when the barrier trips or is reset, and a reset
   records the generation it ended so that its sleepers can tell the two
   apart. A guard holder that died leaves the barrier broken. */
static int guard_lock(mproc_barrier *br)
{
    sblock *b = br->o.b;
    uint32_t me = self_pid();
    for (unsigned spins = 0;; spins++) {
        uint32_t v = mproc__load32(&b->guard);
        if (v == 0 && mproc__cas32(&b->guard, 0, me)) return 0;
        if (spins < 256) {
            mproc__cpu_relax();
            continue;
        }
        if ((spins & 63) == 0 && v != 0 && v != me && !mproc__os_pid_alive(v) &&
            mproc__cas32(&b->guard, v, me)) {
            uint32_t w = mproc__load32(&b->word);
            mproc__store32(&b->word, w | 1);
            return 1;
        }
        mproc__os_sleep_ms(1);
    }
}

static void guard_unlock(mproc_barrier *br) { mproc__store32(&br->o.b->guard, 0); }

static int barrier_create_obj(sobj *o, unsigned parties, const mproc__fnref *action,
                              int timeout_ms)
{
    int rc = sobj_create(o, MPROC__KIND_BARRIER, NULL, 0);
    if (rc) return rc;
    o->b->max = parties;
    if (action) {
        o->b->action = *action;
        o->b->has_action = 1;
    }
    o->b->has_timeout = timeout_ms != MPROC_FOREVER;
    o->b->timeout_ms = timeout_ms;
    return 0;
}

int mproc_barrier_create_ex(mproc_barrier **b, unsigned parties, mproc_barrier_action action,
                            int timeout_ms)
{
    mproc__fnref ref;
    if (!b || parties == 0 || parties > BARRIER_MAX_PARTIES || timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    if (action) {
        void *addr;
        memcpy(&addr, &action, sizeof addr);
        int rc = mproc__fnref_make(addr, &ref);
        if (rc) return rc;
    }
    MAKE_OBJ(mproc_barrier, b,
             barrier_create_obj(&obj_->o, parties, action ? &ref : NULL, timeout_ms));
}

int mproc_barrier_create(mproc_barrier **b, unsigned parties)
{
    return mproc_barrier_create_ex(b, parties, NULL, MPROC_FOREVER);
}

/* The action, in this process: 0, MPROC_ETASK if it failed, or why it
   could not be found here. */
static int run_action(const sblock *b)
{
    void *addr;
    mproc_barrier_action fn;
    int rc = mproc__fnref_resolve(&b->action, &addr);
    if (rc) return rc;
    memcpy(&fn, &addr, sizeof fn);
    return fn() ? MPROC_ETASK : 0;
}

/* The last party in (guard held; released here): runs the action, then
   lets every waiter of generation mine go -- or breaks the barrier if
   the action failed. */
static int barrier_trip(mproc_barrier *br, uint32_t mine, uint32_t index)
{
    sblock *b = br->o.b;
    int rc = (int)index;
    if (b->has_action) {
        guard_unlock(br); /* waiters may time out meanwhile, as in Python */
        int arc = run_action(b);
        guard_lock(br);
        if (mproc__load32(&b->word) != mine) { /* broken or reset meanwhile */
            guard_unlock(br);
            return MPROC_EBROKEN;
        }
        if (arc) {
            mproc__store32(&b->word, mine | 1);
            rc = arc;
        }
    }
    if (rc >= 0) {
        b->count = 0;
        mproc__store32(&b->word, mine + 2);
    }
    guard_unlock(br);
    mproc__os_unpark(br->o.os, &b->word, ALL);
    return rc;
}

/* After sleeping in generation word `mine`: did that generation end by a
   reset (broken) rather than by tripping? Caller holds the guard. */
static int ended_by_reset(const sblock *b, uint32_t mine, uint32_t resets_then)
{
    uint32_t n = mproc__load32(&b->resets) - resets_then;
    if (n == 0) return 0;
    if (n > RESET_RING) return 1; /* too many resets to tell: call it broken */
    for (uint32_t i = 0; i < n; i++)
        if (b->reset_gen[(resets_then + i) % RESET_RING] == (mine >> 1)) return 1;
    return 0;
}

/* Sleeps until the word leaves `mine` or the deadline passes. */
static void barrier_sleep(mproc_barrier *br, uint32_t mine, uint64_t deadline, int timeout_ms)
{
    sblock *b = br->o.b;
    while (mproc__load32(&b->word) == mine) {
        int left = left_ms(deadline, timeout_ms);
        if (left == 0) return;
        mproc__os_park(br->o.os, &b->word, mine, left);
    }
}

int mproc_barrier_wait(mproc_barrier *br, int timeout_ms)
{
    if (!VALID(br, MPROC__KIND_BARRIER) || timeout_ms < MPROC_DEFAULT_TIMEOUT) return MPROC_EINVAL;
    sblock *b = br->o.b;
    if (timeout_ms == MPROC_DEFAULT_TIMEOUT)
        timeout_ms = b->has_timeout ? b->timeout_ms : MPROC_FOREVER;
    uint64_t deadline = deadline_of(timeout_ms);
    guard_lock(br);
    uint32_t mine = mproc__load32(&b->word), index = b->count;
    if (mine & 1) {
        guard_unlock(br);
        return MPROC_EBROKEN;
    }
    if (index + 1 == b->max) return barrier_trip(br, mine, index); /* the last one in */
    b->count = index + 1;
    uint32_t resets_then = mproc__load32(&b->resets);
    guard_unlock(br);
    barrier_sleep(br, mine, deadline, timeout_ms);
    guard_lock(br);
    uint32_t now = mproc__load32(&b->word);
    int rc = (int)index;
    if (now == mine) { /* timed out: that breaks it for everyone */
        mproc__store32(&b->word, mine | 1);
        rc = MPROC_ETIMEDOUT;
    } else if ((now >> 1) == (mine >> 1) || ended_by_reset(b, mine, resets_then)) {
        rc = MPROC_EBROKEN;
    }
    guard_unlock(br);
    if (rc == MPROC_ETIMEDOUT) mproc__os_unpark(br->o.os, &b->word, ALL);
    return rc;
}

int mproc_barrier_abort(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return MPROC_EINVAL;
    guard_lock(br);
    uint32_t w = mproc__load32(&br->o.b->word);
    mproc__store32(&br->o.b->word, w | 1);
    guard_unlock(br);
    mproc__os_unpark(br->o.os, &br->o.b->word, ALL);
    return 0;
}

int mproc_barrier_reset(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return MPROC_EINVAL;
    sblock *b = br->o.b;
    guard_lock(br);
    uint32_t w = mproc__load32(&b->word), r = mproc__load32(&b->resets);
    b->reset_gen[r % RESET_RING] = w >> 1;
    mproc__store32(&b->resets, r + 1);
    b->count = 0;
    mproc__store32(&b->word, ((w >> 1) + 1) << 1);
    guard_unlock(br);
    mproc__os_unpark(br->o.os, &b->word, ALL);
    return 0;
}

int mproc_barrier_parties(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return MPROC_EINVAL;
    return (int)br->o.b->max;
}

int mproc_barrier_n_waiting(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return MPROC_EINVAL;
    guard_lock(br);
    int n = (mproc__load32(&br->o.b->word) & 1) ? 0 : (int)br->o.b->count;
    guard_unlock(br);
    return n;
}

int mproc_barrier_broken(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return MPROC_EINVAL;
    return (int)(mproc__load32(&br->o.b->word) & 1);
}

void mproc_barrier_destroy(mproc_barrier *br)
{
    if (!VALID(br, MPROC__KIND_BARRIER)) return;
    sobj_destroy(&br->o);
    free(br);
}

int mproc_barrier_ref(const mproc_barrier *br, mproc_ref *ref)
{
    return br ? sobj_ref(&br->o, MPROC__KIND_BARRIER, ref) : MPROC_EINVAL;
}

int mproc_barrier_attach(const mproc_ref *ref, mproc_barrier **br)
{
    mproc__entry e;
    if (!ref || !br) return MPROC_EINVAL;
    MAKE_OBJ(mproc_barrier, br, sobj_attach(ref, MPROC__KIND_BARRIER, &obj_->o, &e));
}
