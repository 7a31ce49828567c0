/* Connections: framed messages over a byte channel (Python's Connection).

   Framing. Every message is a 16-byte header and the body:
       0 magic u32 "MPCM"   4 body length u64   12 check u32
   where check is the low half of FNV-1a over bytes 0..11. A header that
   fails the check, or a stream that ends inside a header or a body, is
   MPROC_EPROTO: the conn is then marked broken (the stream can no longer
   be trusted to be in step) and every later receive on it says EPROTO.
   Nothing outside the conn is affected. End of stream exactly between two
   messages is MPROC_ECLOSED.

   Reading. Small messages go through a read-ahead buffer, so a burst of
   small messages costs one system call, not two per message. A large body
   is read straight into its destination (no extra copy). Because a conn
   reads ahead, bytes it has taken from the channel belong to this process:
   hand an end to a child before reading from it here, not after.

   Timeouts never expose or lose part of a message. A small message is
   only copied out once it is complete in the read-ahead buffer. A large
   body that times out half-way is kept in the conn (moved into a buffer
   the conn owns if it was being read into the caller's) and the next
   receive resumes it.

   A conn is used by one thread at a time (as Python's); the send and
   receive sides of a duplex conn may be used by two threads at once. */
#include "comm.h"
#include "ref.h"

#define HDR_LEN 16
#define HDR_MAGIC 0x4d43504du /* "MPCM" little-endian */
#define HDR_SEED (MPROC__FNV_SEED ^ 0x636f6e6eULL)
/* Sanity bound on a length from the wire (1 TiB). */
#define MAX_MSG ((uint64_t)1 << 40)
#define RBUF_CAP ((size_t)64 * 1024)

/* Frames up to this size make the reader ask for one frame per read. */
#define SMALL_FRAME 4096

struct mproc_conn {
    mproc__os_chan *chan;
    mproc__objid id;
    int registered;           /* our entry is in this process's registry */
    unsigned char *rbuf;      /* read-ahead buffer, RBUF_CAP bytes */
    size_t rpos, rend;        /* unread bytes are rbuf[rpos..rend) */
    int have_hdr;             /* a header was consumed; its body is next */
    uint64_t msg_len;
    unsigned char *pend;      /* a large body in progress, owned by the conn */
    size_t pend_got;
    int eof, broken;
    size_t read_hint;         /* bytes to ask for: the last small frame's size */
};

/* ---- framing --------------------------------------------------------------- */
static uint32_t hdr_check(const unsigned char *h)
{
    return (uint32_t)mproc__fnv1a64(h, 12, HDR_SEED);
}

static void hdr_encode(unsigned char h[HDR_LEN], uint64_t len)
{
    mproc__put_u32(h, HDR_MAGIC);
    mproc__put_u64(h + 4, len);
    mproc__put_u32(h + 12, hdr_check(h));
}

static int hdr_decode(const unsigned char h[HDR_LEN], uint64_t *len)
{
    if (mproc__get_u32(h) != HDR_MAGIC || mproc__get_u32(h + 12) != hdr_check(h))
        return MPROC_EPROTO;
    uint64_t n = mproc__get_u64(h + 4);
    if (n > MAX_MSG || n > (uint64_t)SIZE_MAX) return MPROC_EPROTO;
    *len = n;
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------- */
static int conn_register(mproc_conn *c)
{
    mproc__entry e;
    memset(&e, 0, sizeof e);
    e.id = c->id;
    e.kind = MPROC__KIND_CONN;
    e.nhandles = 1;
    e.handles[0] = mproc__os_chan_handle(c->chan);
    e.info[0] = (unsigned char)mproc__os_chan_flags(c->chan);
    int rc = mproc__registry_add(&e);
    c->registered = rc == 0;
    return rc;
}

/* Takes ownership of chan (freed on failure). */
static int conn_new(mproc__os_chan *chan, mproc_conn **out)
{
    mproc_conn *c = mproc__calloc(1, sizeof *c);
    if (!c) {
        mproc__os_chan_free(chan);
        return MPROC_ENOMEM;
    }
    c->chan = chan;
    *out = c;
    return 0;
}

void mproc_conn_destroy(mproc_conn *c)
{
    if (!c) return;
    if (c->registered) mproc__registry_remove(&c->id);
    mproc__os_chan_free(c->chan);
    free(c->rbuf);
    free(c->pend);
    free(c);
}

static int conn_new_registered(mproc__os_chan *chan, mproc_conn **out)
{
    int rc = conn_new(chan, out);
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
    if (!a || !b) return MPROC_EINVAL;
    *a = *b = NULL;
    mproc__os_chan *ca, *cb;
    int rc = mproc__os_chan_pair(&ca, &cb, duplex);
    if (rc) return rc;
    rc = conn_new_registered(ca, a);
    if (rc) {
        mproc__os_chan_free(cb);
        return rc;
    }
    rc = conn_new_registered(cb, b);
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
    unsigned char info[MPROC__REF_INFO] = {0};
    info[0] = (unsigned char)mproc__os_chan_flags(c->chan);
    mproc__ref_make(MPROC__KIND_CONN, &c->id, info, ref);
    return 0;
}

static int flags_valid(int f)
{
    return (f & ~(MPROC__CHAN_READ | MPROC__CHAN_WRITE | MPROC__CHAN_SOCK)) == 0 &&
           (f & (MPROC__CHAN_READ | MPROC__CHAN_WRITE)) != 0;
}

/* In the creator the registry entry stays with the original conn and the
   attached one gets its own duplicate handle. Elsewhere the inherited
   handle is taken out of the registry (a lingering copy would hide EOF)
   and registered again under this conn, so it can be handed on. */
int mproc_conn_attach(const mproc_ref *ref, mproc_conn **out)
{
    if (!ref || !out) return MPROC_EINVAL;
    *out = NULL;
    mproc__objid id;
    unsigned char info[MPROC__REF_INFO];
    int rc = mproc__ref_parse(ref, MPROC__KIND_CONN, &id, info);
    if (rc) return rc;
    if (!flags_valid(info[0])) return MPROC_EINVAL;
    int creator = id.pid == (uint64_t)mproc__os_getpid();
    mproc__entry e;
    rc = mproc__registry_find(&id, MPROC__KIND_CONN, &e);
    if (rc) return rc;
    if (e.nhandles != 1 || e.info[0] != info[0]) return MPROC_EINVAL;
    if (!creator) rc = mproc__registry_take(&id, MPROC__KIND_CONN, &e);
    if (rc) return rc;
    mproc__os_chan *chan = NULL;
    rc = creator ? mproc__os_chan_dup(e.handles[0], info[0], &chan)
                 : mproc__os_chan_wrap(e.handles[0], info[0], &chan);
    if (!rc) rc = conn_new(chan, out);
    if (rc) return rc;
    (*out)->id = id;
    if (!creator) (void)conn_register(*out);
    return 0;
}

/* ---- sending --------------------------------------------------------------- */
int mproc_conn_send(mproc_conn *c, const void *buf, size_t len)
{
    if (!c || (!buf && len)) return MPROC_EINVAL;
    if ((uint64_t)len > MAX_MSG) return MPROC_EINVAL;
    unsigned char h[HDR_LEN];
    hdr_encode(h, len);
    return mproc__os_chan_send(c->chan, h, sizeof h, buf, len);
}

/* ---- receiving: the read-ahead buffer ---------------------------------------- */
static size_t avail(const mproc_conn *c) { return c->rend - c->rpos; }

static int rbuf_ready(mproc_conn *c)
{
    if (!c->rbuf) {
        c->rbuf = malloc(RBUF_CAP);
        if (!c->rbuf) return MPROC_ENOMEM;
    }
    if (c->rpos == c->rend) c->rpos = c->rend = 0;
    return 0;
}

/* Makes room for need more bytes after the unread ones. */
static void rbuf_compact(mproc_conn *c, size_t need)
{
    if (RBUF_CAP - c->rend >= need) return;
    memmove(c->rbuf, c->rbuf + c->rpos, avail(c));
    c->rend -= c->rpos;
    c->rpos = 0;
}

/* Until at least need (<= RBUF_CAP) bytes are buffered. ECLOSED only when
   the stream ended with fewer. */
static int rbuf_fill(mproc_conn *c, size_t need, uint64_t deadline, int timeout_ms)
{
    int rc = rbuf_ready(c);
    if (rc) return rc;
    rbuf_compact(c, need - avail(c));
    while (avail(c) < need) {
        if (c->eof) return MPROC_ECLOSED;
        size_t got = 0, ask = RBUF_CAP - c->rend;
        /* Streams of small messages: ask for one frame, not all there is.
           Draining a pipe while its writer is busy makes both fight over
           the kernel's pipe lock (measured: ~25% fewer messages/s). */
        if (c->read_hint && c->read_hint < ask) ask = need - avail(c) > c->read_hint ? ask : c->read_hint;
        rc = mproc__os_chan_recv(c->chan, c->rbuf + c->rend, ask, &got,
                                 mproc__remaining_ms(deadline, timeout_ms));
        c->rend += got;
        if (rc == MPROC_ECLOSED) c->eof = 1;
        else if (rc) return rc;
    }
    return 0;
}

static int fail_proto(mproc_conn *c)
{
    c->broken = 1;
    return MPROC_EPROTO;
}

static int read_header(mproc_conn *c, uint64_t deadline, int timeout_ms)
{
    if (c->have_hdr) return 0;
    int rc = rbuf_fill(c, HDR_LEN, deadline, timeout_ms);
    if (rc == MPROC_ECLOSED) return avail(c) ? fail_proto(c) : MPROC_ECLOSED;
    if (rc) return rc;
    if (hdr_decode(c->rbuf + c->rpos, &c->msg_len)) return fail_proto(c);
    c->rpos += HDR_LEN;
    c->have_hdr = 1;
    return 0;
}

/* ---- receiving: bodies ----------------------------------------------------------- */
/* A body that fits the read-ahead buffer is gathered there first, so a
   timeout leaves it untouched; then copied to user, or to a new block. */
static int read_small_body(mproc_conn *c, void *user, void **out, uint64_t deadline,
                           int timeout_ms)
{
    size_t len = (size_t)c->msg_len;
    int rc = rbuf_fill(c, len, deadline, timeout_ms);
    if (rc == MPROC_ECLOSED) return fail_proto(c);
    if (rc) return rc;
    void *dst = user;
    if (!dst) {
        dst = malloc(len ? len : 1);
        if (!dst) return MPROC_ENOMEM;
        *out = dst;
    }
    if (len) memcpy(dst, c->rbuf + c->rpos, len);
    c->rpos += len;
    return 0;
}

/* Keeps the part of a large body read so far in the conn after a timeout
   or error, so nothing is lost and nothing partial escapes. */
static int park_partial(mproc_conn *c, unsigned char *dst, size_t got, int rc)
{
    if (dst != c->pend) {
        if (!c->pend) {
            c->pend = malloc((size_t)c->msg_len);
            if (!c->pend) {
                c->broken = 1; /* cannot keep the stream in step */
                return MPROC_ENOMEM;
            }
        }
        memcpy(c->pend, dst, got);
    }
    c->pend_got = got;
    return rc;
}

static int read_large_body(mproc_conn *c, unsigned char *dst, uint64_t deadline, int timeout_ms)
{
    size_t len = (size_t)c->msg_len;
    size_t got = c->pend ? c->pend_got : 0;
    if (dst != c->pend && got) memcpy(dst, c->pend, got);
    size_t take = avail(c) < len - got ? avail(c) : len - got;
    if (take) memcpy(dst + got, c->rbuf + c->rpos, take);
    c->rpos += take;
    got += take;
    while (got < len) {
        size_t n = 0;
        int rc = c->eof ? MPROC_ECLOSED
                        : mproc__os_chan_recv(c->chan, dst + got, len - got, &n,
                                              mproc__remaining_ms(deadline, timeout_ms));
        got += n;
        if (rc == MPROC_ECLOSED) {
            c->eof = 1;
            return fail_proto(c);
        }
        if (rc) return park_partial(c, dst, got, rc);
    }
    return 0;
}

/* The body of the message whose header was read, into user (which has
   room) or into a new block returned in *out. */
static int read_body(mproc_conn *c, void *user, void **out, uint64_t deadline, int timeout_ms)
{
    size_t len = (size_t)c->msg_len;
    if (!c->pend && len <= RBUF_CAP / 2) return read_small_body(c, user, out, deadline, timeout_ms);
    unsigned char *dst = user;
    if (!dst) dst = c->pend;
    if (!dst) dst = malloc(len);
    if (!dst) return MPROC_ENOMEM;
    int rc = read_large_body(c, dst, deadline, timeout_ms);
    if (rc) {
        if (dst != user && dst != c->pend) free(dst);
        return rc;
    }
    if (!user) *out = dst;
    if (c->pend != dst) free(c->pend);
    c->pend = NULL;
    c->pend_got = 0;
    return 0;
}

static int conn_recv(mproc_conn *c, void *user, size_t cap, void **out, size_t *len,
                     int timeout_ms)
{
    if (!(mproc__os_chan_flags(c->chan) & MPROC__CHAN_READ)) return MPROC_ESTATE;
    if (c->broken) return MPROC_EPROTO;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc = read_header(c, deadline, timeout_ms);
    if (rc) return rc;
    *len = (size_t)c->msg_len;
    if (user && c->msg_len > cap) return MPROC_EINVAL;
    rc = read_body(c, user, out, deadline, timeout_ms);
    if (rc) return rc;
    c->have_hdr = 0;
    c->read_hint = c->msg_len <= SMALL_FRAME ? HDR_LEN + (size_t)c->msg_len : 0;
    return 0;
}

int mproc_conn_recv(mproc_conn *c, void **buf, size_t *len, int timeout_ms)
{
    if (!c || !buf || !len) return MPROC_EINVAL;
    *buf = NULL;
    size_t n = 0;
    int rc = conn_recv(c, NULL, 0, buf, &n, timeout_ms);
    *len = rc ? 0 : n;
    return rc;
}

int mproc_conn_recv_into(mproc_conn *c, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    if (!c || !len || (!buf && cap)) return MPROC_EINVAL;
    static unsigned char none[1];
    *len = 0;
    return conn_recv(c, buf ? buf : none, cap, NULL, len, timeout_ms);
}

/* ---- readiness ------------------------------------------------------------------ */
static int ready_now(const mproc_conn *c)
{
    return avail(c) > 0 || c->have_hdr || c->pend || c->eof || c->broken;
}

int mproc__conn_wait_prepare(mproc_conn *c, mproc__handle *h)
{
    if (!(mproc__os_chan_flags(c->chan) & MPROC__CHAN_READ)) return MPROC_ESTATE;
    if (ready_now(c)) return 1;
    int rc = rbuf_ready(c);
    if (rc) return rc;
    return mproc__os_chan_arm(c->chan, c->rbuf + c->rend, RBUF_CAP - c->rend, h);
}

int mproc__conn_wait_finish(mproc_conn *c)
{
    size_t got = 0;
    int rc = mproc__os_chan_disarm(c->chan, &got);
    c->rend += got;
    if (rc == MPROC_ECLOSED) c->eof = 1;
    if (ready_now(c)) return 1;
    return rc;
}

int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    if (!c) return MPROC_EINVAL;
    mproc__handle h;
    int rc = mproc__conn_wait_prepare(c, &h);
    if (rc) return rc;
    unsigned char r = 0;
    rc = mproc__os_wait_any(&h, 1, &r, timeout_ms);
    int fin = mproc__conn_wait_finish(c);
    if (rc < 0 && rc != MPROC_ETIMEDOUT) return rc;
    return fin;
}
