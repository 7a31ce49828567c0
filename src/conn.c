/* Connections: messages between the two ends of a pipe (Python's
   Connection).

   Storage. A pipe's messages travel through rings in one block of
   anonymous shared memory (ring.c): one ring carries b -> a and, for a
   duplex pipe, a second one a -> b. send copies a message into the ring
   and recv copies it out, with no system call per message while both
   sides are busy; a message of any size is streamed through in chunks.
   The ring checks every record it reads: a corrupt one is MPROC_EPROTO,
   never a wild read or a torn message.

   The link. Beside the rings the two ends hold the two ends of a link
   (os.h): a sleeper (a receiver waiting for a message, a sender waiting
   for room) sleeps on its own end, and the other side sends it a token
   after changing the ring it waits on. The kernel closes the link when the
   last holder of an end goes, however it goes: that is how a receiver
   learns that no more messages can come (MPROC_ECLOSED once the ring is
   empty), and a sender that nobody will read them (MPROC_ECLOSED, checked
   on the first send, whenever a token is sent, while waiting for room, and
   at probe points: see reader_gone).

   Timeouts never expose or lose part of a message: a large message whose
   rest does not come in time stays in the conn (moved into a buffer the
   conn owns if it was being received into the caller's) with the ring's
   get lock still held, and the next receive resumes it.

   A conn is used by one thread at a time per direction (as Python's): the
   send and receive sides of a duplex conn may be used by two threads at
   once. */
#include "ring_kept.h"
#include "ref.h"

#define C_MAGIC 0x334e6f636f72706dULL /* "mprocoN3": the ring layout of issue 16 */
/* Bytes per direction: room for a burst of small messages and for 256 KiB
   chunks of large ones, while a pipe costs address space, not memory,
   until it is used. */
#define RING_BYTES ((uint64_t)1 << 20)
#define DATA_OFF MPROC__CONN_DATA_OFF
/* Sends between probe points while the reader takes messages, and at
   most while it does not (see reader_gone). */
#define PROBE_EVERY 32
#define PROBE_EVERY_MAX 1024
/* Waiting for the lock of one's own end (two holders of it at once): the
   other holder cannot ring us through the link, so look again this often. */
#define LOCK_POLL_MS 1

enum { END_A = 0, END_B = 1 };

typedef mproc__conn_shared cshared;

struct mproc_conn {
    cshared *sh;
    size_t map_size;
    mproc__ring in, out;        /* receive from in, send into out */
    int can_recv, can_send, end, duplex;
    mproc__handle shm;          /* owned, like the link */
    mproc__os_link *link;
    mproc__objid id;
    int registered;
    volatile uint64_t peer_gone; /* atomic: the link said the other end went */
    uint64_t sends, next_probe; /* sender only: sends so far; the next probe point */
    uint64_t probe_gap;         /* sends from the last probe point to the next */
    uint64_t probe_head;        /* the reader's head at the last probe point */
    unsigned char *pend;        /* a streamed message part-way in */
    uint64_t pend_room, pend_total, pend_got;
    uint64_t pend_pid;          /* who parked it (a forked copy did not) */
};

static size_t block_size(int duplex) { return DATA_OFF + (size_t)RING_BYTES * (duplex ? 2 : 1); }

/* ---- the other end ---------------------------------------------------------------- */
static int gone(mproc_conn *c) { return mproc__load64(&c->peer_gone) != 0; }
static void set_gone(mproc_conn *c) { mproc__store64(&c->peer_gone, 1); }

static int probe_gone(mproc_conn *c)
{
    if (!gone(c) && mproc__os_link_probe(c->link) == MPROC_ECLOSED) set_gone(c);
    return gone(c);
}

/* At a probe point. A reader that has taken messages since the last one
   was alive a moment ago: the next point, PROBE_EVERY sends on, asks the
   link. One that has not is asked now, and while it stays still the
   points space out up to PROBE_EVERY_MAX sends: a system call every few
   dozen messages would cost more than the rest of a send while the reader
   is behind (a loaded machine), where there is nothing to win. A reader
   that goes is noticed within 2 * PROBE_EVERY sends if it was reading,
   within PROBE_EVERY_MAX if it had stopped, and at the latest when a send
   waits for room. */
static int reader_gone(mproc_conn *c)
{
    uint64_t head = mproc__load64(&c->out.sh->head);
    int moved = c->next_probe != 0 && head != c->probe_head; /* the first send asks */
    c->probe_head = head;
    if (moved) c->probe_gap = PROBE_EVERY;
    else if (c->probe_gap < PROBE_EVERY_MAX) c->probe_gap = c->probe_gap ? c->probe_gap * 2 : PROBE_EVERY;
    c->next_probe += c->probe_gap;
    return !moved && probe_gone(c);
}

/* Sleepers the link can reach: those at the other end (receivers of our
   out ring, senders into our in ring). */
static uint64_t peer_sleepers(mproc_conn *c)
{
    uint64_t n = 0;
    if (c->can_send) n += mproc__load64(&c->out.sh->waiters[MPROC__RING_DATA]);
    if (c->can_recv) n += mproc__load64(&c->in.sh->waiters[MPROC__RING_SPACE]);
    return n;
}

static void c_wake(mproc__ring *r, int kind)
{
    mproc_conn *c = r->user;
    int reachable = (r == &c->out && kind == MPROC__RING_DATA) ||
                    (r == &c->in && kind == MPROC__RING_SPACE);
    if (!reachable) return; /* sleepers at our own end poll (LOCK_POLL_MS) */
    uint64_t n = peer_sleepers(c);
    if (mproc__os_link_ring(c->link, n > 64 ? 64 : (unsigned)(n ? n : 1)) == MPROC_ECLOSED)
        set_gone(c);
}

/* Lock waits poll; data and room waits sleep on the link, and end with
   MPROC_ECLOSED once the other end has gone and cond still fails. */
static int c_sleep_once(mproc__ring *r, int kind, mproc__ring_cond cond, void *arg, int slice)
{
    mproc_conn *c = r->user;
    if (kind == MPROC__RING_LOCK) {
        int ok = cond(r, arg, 1);
        if (ok) return ok;
        mproc__os_sleep_ms(slice < LOCK_POLL_MS ? slice : LOCK_POLL_MS);
        return cond(r, arg, 1);
    }
    mproc__ring_announce(r, kind, 1);
    int ok = cond(r, arg, 1);
    if (!ok && !gone(c)) {
        int rc = mproc__os_link_sleep(c->link, slice);
        if (rc == MPROC_ECLOSED) set_gone(c);
        ok = (rc < 0 && rc != MPROC_ETIMEDOUT && rc != MPROC_ECLOSED) ? rc : cond(r, arg, 1);
    }
    if (ok == 0 && gone(c)) ok = MPROC_ECLOSED;
    mproc__ring_announce(r, kind, -1);
    return ok;
}

static const mproc__ring_ops conn_ops = {c_sleep_once, c_wake, NULL};

/* ---- lifecycle --------------------------------------------------------------- */
static void conn_free(mproc_conn *c)
{
    if (!c) return;
    if (c->sh) mproc__os_unmap(c->sh, c->map_size);
    if (c->link) mproc__os_link_free(c->link);
    if (c->shm != MPROC__NO_HANDLE) mproc__os_close(c->shm);
    free(c);
}

static int bind_ring(mproc_conn *c, mproc__ring *r, int index)
{
    unsigned char *data = (unsigned char *)c->sh + DATA_OFF + (size_t)RING_BYTES * (size_t)index;
    int rc = mproc__ring_bind(r, &c->sh->ring[index], data, RING_BYTES, &conn_ops, c,
                              MPROC__WAIT_SLICE_MS);
    if (!rc && mproc__load64(&c->sh->ring[index].capacity) != RING_BYTES) rc = MPROC_EINVAL;
    return rc;
}

/* Ring 0 carries b -> a, ring 1 a -> b. */
static int conn_bind(mproc_conn *c)
{
    cshared *sh = c->sh;
    if (mproc__load64(&sh->magic) != C_MAGIC || sh->nrings != (uint64_t)(c->duplex ? 2 : 1) ||
        sh->ring_bytes != RING_BYTES)
        return MPROC_EINVAL;
    c->can_recv = c->end == END_A || c->duplex;
    c->can_send = c->end == END_B || c->duplex;
    int rc = 0;
    if (c->can_recv) rc = bind_ring(c, &c->in, c->end == END_A ? 0 : 1);
    if (!rc && c->can_send) rc = bind_ring(c, &c->out, c->end == END_A ? 1 : 0);
    if (!rc && c->can_send) c->out.peer_gone = &c->peer_gone;
    return rc;
}

static void format_block(cshared *sh, int duplex)
{
    sh->nrings = duplex ? 2 : 1;
    sh->ring_bytes = RING_BYTES;
    for (uint64_t i = 0; i < sh->nrings; i++) mproc__ring_format(&sh->ring[i], RING_BYTES);
    mproc__store64(&sh->magic, C_MAGIC);
}

/* A conn over an end's handles (owned from here on, also on failure);
   fresh: the block is new and gets formatted first. */
static int conn_open(int end, int duplex, mproc__handle shm, mproc__os_link *link, int fresh,
                     mproc_conn **out)
{
    *out = NULL;
    mproc_conn *c = mproc__calloc(1, sizeof *c);
    if (!c) {
        mproc__os_close(shm);
        mproc__os_link_free(link);
        return MPROC_ENOMEM;
    }
    c->shm = shm;
    c->link = link;
    c->end = end;
    c->duplex = duplex;
    c->map_size = block_size(duplex);
    void *p = NULL;
    int rc = mproc__os_map(shm, c->map_size, 1, &p);
    if (!rc) {
        c->sh = p;
        if (fresh) format_block(c->sh, duplex);
        rc = conn_bind(c);
    }
    if (rc) {
        conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void ref_info(const mproc_conn *c, unsigned char info[MPROC__REF_INFO])
{
    memset(info, 0, MPROC__REF_INFO);
    info[0] = (unsigned char)c->end;
    info[1] = (unsigned char)c->duplex;
    mproc__put_u64(info + 8, (uint64_t)c->map_size);
}

static int conn_register(mproc_conn *c)
{
    mproc__entry e;
    memset(&e, 0, sizeof e);
    e.id = c->id;
    e.kind = MPROC__KIND_CONN;
    e.nhandles = 2;
    e.handles[0] = c->shm;
    e.handles[1] = mproc__os_link_handle(c->link);
    ref_info(c, e.info);
    int rc = mproc__registry_add(&e);
    c->registered = rc == 0;
    return rc;
}

/* A parked message and the get lock that goes with it belong to the
   process that parked it: a forked copy of the conn forgets its copy of
   the state (unlock does nothing there: the lock is not its own). The rest
   of the message is then skipped by the next receiver. */
static void drop_parked(mproc_conn *c)
{
    free(c->pend);
    c->pend = NULL;
    mproc__ring_get_unlock(&c->in);
}

void mproc_conn_destroy(mproc_conn *c)
{
    if (!c) return;
    if (c->pend) drop_parked(c);
    if (c->registered) mproc__registry_remove(&c->id);
    conn_free(c);
}

static int open_end(int end, int duplex, mproc__handle shm, mproc__os_link *link, int fresh,
                    mproc_conn **out)
{
    int rc = conn_open(end, duplex, shm, link, fresh, out);
    if (!rc) rc = mproc__objid_new(&(*out)->id);
    if (!rc) rc = conn_register(*out);
    if (rc && *out) {
        mproc_conn_destroy(*out);
        *out = NULL;
    }
    return rc;
}

int mproc_pipe(mproc_conn **a, mproc_conn **b, int duplex)
{
    if (!a || !b || (duplex != 0 && duplex != 1)) return MPROC_EINVAL;
    *a = *b = NULL;
    mproc__handle shm_a = MPROC__NO_HANDLE, shm_b = MPROC__NO_HANDLE;
    mproc__os_link *la = NULL, *lb = NULL;
    int rc = mproc__os_anon_shm_create(block_size(duplex), &shm_a);
    if (!rc) rc = mproc__os_shm_dup(shm_a, &shm_b);
    if (!rc) rc = mproc__os_link_pair(&la, &lb);
    if (rc) {
        if (shm_a != MPROC__NO_HANDLE) mproc__os_close(shm_a);
        if (shm_b != MPROC__NO_HANDLE) mproc__os_close(shm_b);
        return rc;
    }
    rc = open_end(END_A, duplex, shm_a, la, 1, a);
    if (rc) {
        mproc__os_close(shm_b);
        mproc__os_link_free(lb);
        return rc;
    }
    rc = open_end(END_B, duplex, shm_b, lb, 0, b);
    if (rc) {
        mproc_conn_destroy(*a);
        *a = NULL;
    }
    return rc;
}

int mproc_conn_ref(const mproc_conn *c, mproc_ref *ref)
{
    if (!c || !ref) return MPROC_EINVAL;
    if (!c->registered) return MPROC_ESTATE;
    unsigned char info[MPROC__REF_INFO];
    ref_info(c, info);
    mproc__ref_make(MPROC__KIND_CONN, &c->id, info, ref);
    return 0;
}

/* In the creator the registry entry stays with the original conn and the
   attached one gets duplicates of its handles. Elsewhere the inherited
   handles are taken out of the registry (a lingering copy of the link
   would hide the end's going) and registered again under this conn, so it
   can be handed on. */
int mproc_conn_attach(const mproc_ref *ref, mproc_conn **out)
{
    if (!ref || !out) return MPROC_EINVAL;
    *out = NULL;
    mproc__objid id;
    unsigned char info[MPROC__REF_INFO];
    int rc = mproc__ref_parse(ref, MPROC__KIND_CONN, &id, info);
    if (rc) return rc;
    int creator = id.pid == (uint64_t)mproc__os_getpid();
    mproc__entry e;
    rc = mproc__registry_find(&id, MPROC__KIND_CONN, &e);
    if (rc) return rc;
    int end = info[0], duplex = info[1];
    if (e.nhandles != 2 || memcmp(e.info, info, sizeof info) != 0 || end > END_B || duplex > 1 ||
        mproc__get_u64(info + 8) != block_size(duplex))
        return MPROC_EINVAL;
    mproc__handle shm = MPROC__NO_HANDLE;
    mproc__os_link *link = NULL;
    if (creator) {
        rc = mproc__os_shm_dup(e.handles[0], &shm);
        if (!rc) rc = mproc__os_link_dup(e.handles[1], &link);
        if (rc && shm != MPROC__NO_HANDLE) mproc__os_close(shm);
    } else {
        rc = mproc__registry_take(&id, MPROC__KIND_CONN, &e);
        if (!rc) {
            shm = e.handles[0];
            rc = mproc__os_link_wrap(e.handles[1], &link);
            if (rc) mproc__os_close(shm);
        }
    }
    if (!rc) rc = conn_open(end, duplex, shm, link, 0, out);
    if (rc) return rc;
    (*out)->id = id;
    if (!creator) (void)conn_register(*out);
    return 0;
}

/* ---- sending --------------------------------------------------------------- */
/* A send whose turn it is to ask whether the reader has gone (out of
   line: mproc_conn_send then keeps nothing across a call). */
static MPROC__NOINLINE int send_after_probe(mproc_conn *c, const void *buf, size_t len)
{
    if (reader_gone(c)) return MPROC_ECLOSED;
    return mproc__ring_put(&c->out, buf, len, MPROC_FOREVER);
}

int mproc_conn_send(mproc_conn *c, const void *buf, size_t len)
{
    if (!c || (!buf && len) || (uint64_t)len > MPROC__RING_MAX_MSG) return MPROC_EINVAL;
    if (!c->can_send) return MPROC_ESTATE;
    if (gone(c)) return MPROC_ECLOSED;
    if (c->sends++ == c->next_probe) return send_after_probe(c, buf, len);
    /* MPROC_ECLOSED also if a wake token found the other end gone
       (ring.h: peer_gone). A tail call: each register saved would be a
       store, and a producer's stores are what it waits on (ring.c). */
    return mproc__ring_put(&c->out, buf, len, MPROC_FOREVER);
}

/* ---- receiving --------------------------------------------------------------- */
/* The sender went part-way through a message (ABORT, or the link closed
   mid-stream): the message is lost, the conn goes on. */
static int sender_went(int rc)
{
    return rc == MPROC__RING_ABORTED || rc == MPROC_ECLOSED ? MPROC_EPROTO : rc;
}

/* A timeout part-way through a message: keep what came, and the lock. */
static int park(mproc_conn *c, unsigned char *dst, int dst_is_user, uint64_t room,
                uint64_t total, uint64_t got)
{
    if (dst_is_user) {
        unsigned char *p = malloc(got ? (size_t)got : 1);
        if (!p) {
            mproc__ring_get_unlock(&c->in); /* the next receive skips the rest */
            return MPROC_ENOMEM;
        }
        memcpy(p, dst, (size_t)got);
        dst = p;
        room = got;
    }
    c->pend = dst;
    c->pend_pid = mproc__self_pid();
    c->pend_room = room;
    c->pend_total = total;
    c->pend_got = got;
    return MPROC_ETIMEDOUT;
}

/* Receives into user (cap bytes) or into a new block returned in *out. */
static int recv_new(mproc_conn *c, void *user, size_t cap, void **out, size_t *len,
                    uint64_t deadline, int timeout_ms)
{
    int rc = mproc__ring_get_lock(&c->in, deadline, timeout_ms);
    if (rc) return rc;
    rc = mproc__ring_take_small(&c->in, user, cap, out, len);
    if (rc) {
        mproc__ring_get_unlock(&c->in);
        return rc > 0 ? 0 : rc;
    }
    uint64_t total = 0, got = 0, room = cap;
    unsigned char *dst = user;
    rc = mproc__ring_peek(&c->in, &total, deadline, timeout_ms);
    if (!rc) {
        *len = (size_t)total;
        if (user && total > cap) rc = MPROC_EINVAL; /* the message stays */
    }
    if (!rc && !user) {
        room = total < MPROC__RING_ALLOC_FIRST ? total : MPROC__RING_ALLOC_FIRST;
        dst = malloc(room ? (size_t)room : 1);
        if (!dst) rc = MPROC_ENOMEM;
    }
    if (!rc) rc = mproc__ring_take_start(&c->in, dst, total, &got);
    if (rc == 1) {
        rc = mproc__ring_take_rest(&c->in, &dst, &room, total, &got, deadline, timeout_ms);
        if (rc == MPROC_ETIMEDOUT) return park(c, dst, dst == user, room, total, got);
        rc = sender_went(rc);
    }
    mproc__ring_get_unlock(&c->in);
    if (rc) {
        if (dst != user) free(dst);
        return rc;
    }
    if (!user) *out = dst;
    return 0;
}

/* Continues a parked message (the get lock is still ours). */
static int recv_resume(mproc_conn *c, void *user, size_t cap, void **out, size_t *len,
                       uint64_t deadline, int timeout_ms)
{
    *len = (size_t)c->pend_total;
    if (user && c->pend_total > cap) return MPROC_EINVAL;
    int rc = mproc__ring_take_rest(&c->in, &c->pend, &c->pend_room, c->pend_total, &c->pend_got,
                                   deadline, timeout_ms);
    if (rc == MPROC_ETIMEDOUT) return rc;
    unsigned char *p = c->pend;
    c->pend = NULL;
    mproc__ring_get_unlock(&c->in);
    if (rc) {
        free(p);
        return sender_went(rc);
    }
    if (user) {
        memcpy(user, p, (size_t)c->pend_total);
        free(p);
    } else {
        *out = p;
    }
    return 0;
}

/* Every receive that take_kept_small did not finish (kept: what it left):
   a message part-way in, one not there yet, one larger than it takes, a
   lock not kept. Out of line, so that the common path saves no registers.
   On failure *len is 0, but for recv_into's "too small" (its size). */
static MPROC__NOINLINE int conn_recv_rest(mproc_conn *c, int kept, void *user, size_t cap,
                                         void **out, size_t *len, int timeout_ms)
{
    int rc = MPROC_ESTATE;
    if (c->can_recv) {
        if (c->pend && c->pend_pid != mproc__self_pid()) drop_parked(c);
        rc = c->pend ? 0 : mproc__ring_get_kept_rest(&c->in, kept, user, cap, out, len);
        if (rc == 0) {
            uint64_t deadline = mproc__deadline_ms(timeout_ms);
            if (c->pend) rc = recv_resume(c, user, cap, out, len, deadline, timeout_ms);
            else rc = recv_new(c, user, cap, out, len, deadline, timeout_ms);
        } else if (rc > 0) {
            rc = 0;
        }
    }
    if (rc && (!user || rc != MPROC_EINVAL)) *len = 0;
    return rc;
}

/* conn_recv_rest for each kind of receive, with few enough arguments to
   be reached by a jump. */
static MPROC__NOINLINE int recv_block_rest(mproc_conn *c, int kept, void **out, size_t *len,
                                          int timeout_ms)
{
    return conn_recv_rest(c, kept, NULL, 0, out, len, timeout_ms);
}

static MPROC__NOINLINE int recv_into_rest(mproc_conn *c, int kept, void *buf, size_t cap,
                                         size_t *len, int timeout_ms)
{
    return conn_recv_rest(c, kept, buf, cap, NULL, len, timeout_ms);
}

/* The kept-lock path is inline in both receives (ring_kept.h): a small
   message costs no call and no saved register. */
int mproc_conn_recv(mproc_conn *c, void **buf, size_t *len, int timeout_ms)
{
    if (!c || !buf || !len) return MPROC_EINVAL;
    *buf = NULL;
    *len = 0;
    int kept = KEPT_MISSED;
    if (c->can_recv && !c->pend) {
        kept = take_kept_small(&c->in, NULL, 0, buf, len);
        if (kept == KEPT_DONE) return 0;
    }
    return recv_block_rest(c, kept, buf, len, timeout_ms);
}

int mproc_conn_recv_into(mproc_conn *c, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    if (len) *len = 0;
    if (!c || !len || (!buf && cap)) return MPROC_EINVAL;
    static unsigned char none[1];
    if (!buf) buf = none;
    int kept = KEPT_MISSED;
    if (c->can_recv && !c->pend) {
        kept = take_kept_small(&c->in, buf, cap, NULL, len);
        if (kept == KEPT_DONE) return 0;
    }
    return recv_into_rest(c, kept, buf, cap, len, timeout_ms);
}

/* ---- readiness ------------------------------------------------------------------ */
static int ready_now(mproc_conn *c) { return mproc__ring_readable(&c->in) || gone(c); }

int mproc__conn_readable(mproc_conn *c) { return c->can_recv && ready_now(c); }

int mproc__conn_peer_gone(mproc_conn *c) { return probe_gone(c); }

int mproc__conn_wait_prepare(mproc_conn *c, mproc__handle *h)
{
    if (!c->can_recv) return MPROC_ESTATE;
    if (ready_now(c)) return 1;
    mproc__ring_announce(&c->in, MPROC__RING_DATA, 1);
    int rc = ready_now(c) ? 1 : mproc__os_link_arm(c->link, h);
    if (rc) mproc__ring_announce(&c->in, MPROC__RING_DATA, -1);
    return rc;
}

int mproc__conn_wait_finish(mproc_conn *c)
{
    int rc = mproc__os_link_disarm(c->link);
    if (rc == MPROC_ECLOSED) set_gone(c);
    mproc__ring_announce(&c->in, MPROC__RING_DATA, -1);
    if (ready_now(c)) return 1;
    return rc == MPROC_ECLOSED ? 0 : rc;
}

/* A token can be stale (its sleeper had gone on already): wake-ups that
   find nothing ready wait again for the rest of the time. */
int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    if (!c) return MPROC_EINVAL;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        mproc__handle h;
        int rc = mproc__conn_wait_prepare(c, &h);
        if (rc) return rc;
        int left = mproc__remaining_ms(deadline, timeout_ms);
        int slice = (left < 0 || left > MPROC__WAIT_SLICE_MS) ? MPROC__WAIT_SLICE_MS : left;
        unsigned char r = 0;
        rc = mproc__os_wait_any(&h, 1, &r, slice);
        int fin = mproc__conn_wait_finish(c);
        if (rc < 0 && rc != MPROC_ETIMEDOUT) return rc;
        if (fin || left == 0) return fin;
    }
}

/* ---- handing over OS handles ------------------------------------------------------ */
/* The handle itself goes beside the ring (os.h: over the link on POSIX,
   through a private duplicate on Windows); the ring carries a note that
   one was sent, so it is received in order with the messages. */
static const unsigned char HANDLE_MAGIC[8] = {'m', 'p', 'r', 'o', 'c', 'H', 'N', 'D'};
#define HANDLE_MSG 24

int mproc_conn_send_handle(mproc_conn *c, intptr_t handle)
{
    if (!c || (mproc__handle)handle == MPROC__NO_HANDLE) return MPROC_EINVAL;
    if (!c->can_send) return MPROC_ESTATE;
    if (probe_gone(c)) return MPROC_ECLOSED;
    mproc__os_handle_note note;
    int rc = mproc__os_link_send_handle(c->link, (mproc__handle)handle, &note);
    if (rc == MPROC_ECLOSED) set_gone(c);
    if (rc) return rc;
    unsigned char msg[HANDLE_MSG];
    memcpy(msg, HANDLE_MAGIC, 8);
    mproc__put_u64(msg + 8, note.pid);
    mproc__put_u64(msg + 16, note.value);
    return mproc_conn_send(c, msg, sizeof msg);
}

int mproc_conn_recv_handle(mproc_conn *c, intptr_t *handle, int timeout_ms)
{
    if (!c || !handle) return MPROC_EINVAL;
    *handle = (intptr_t)MPROC__NO_HANDLE;
    unsigned char msg[HANDLE_MSG];
    size_t len = 0;
    int rc = mproc_conn_recv_into(c, msg, sizeof msg, &len, timeout_ms);
    if (rc == MPROC_EINVAL && len > sizeof msg) return MPROC_EPROTO; /* left in place */
    if (rc) return rc;
    if (len != sizeof msg || memcmp(msg, HANDLE_MAGIC, 8) != 0) return MPROC_EPROTO;
    mproc__os_handle_note note = {mproc__get_u64(msg + 8), mproc__get_u64(msg + 16)};
    /* On POSIX the descriptor was queued before the note was: it is there
       already, behind at most some tokens, so nothing is waited for (a
       forged note cannot hang the receiver). */
    mproc__handle h;
    rc = mproc__os_link_recv_handle(c->link, &note, &h, 0);
    if (rc == MPROC_ETIMEDOUT || rc == MPROC_ECLOSED) return MPROC_EPROTO;
    if (rc) return rc;
    *handle = (intptr_t)h;
    return 0;
}
