/* The pool worker: the loop a worker process runs behind the main guard,
   plus the task-side API (mproc_buf_append, mproc_task_fail). */
#include "pool.h"

#include <stdarg.h>
#include <stdio.h>

struct mproc_buf {
    unsigned char *data;
    size_t len, cap;
};

/* The message of the task running now. A worker runs its tasks on its main
   thread, one at a time, so process-wide state is the task's own. */
static char fail_msg[256];
static int fail_set;

int mproc_buf_append(mproc_buf *out, const void *data, size_t len)
{
    if (!out || (!data && len)) return MPROC_EINVAL;
    if (!len) return 0;
    if (len > SIZE_MAX / 2 - out->len) return MPROC_ENOMEM;
    if (out->len + len > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + len) cap *= 2;
        unsigned char *p = realloc(out->data, cap);
        if (!p) return MPROC_ENOMEM;
        out->data = p;
        out->cap = cap;
    }
    memcpy(out->data + out->len, data, len);
    out->len += len;
    return 0;
}

void mproc_task_fail(const char *fmt, ...)
{
    va_list ap;
    fail_set = 1;
    if (!fmt) {
        fail_msg[0] = '\0';
        return;
    }
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
}

/* ---- the worker ------------------------------------------------------------- */
#define RBUF (64 * 1024)

typedef struct worker {
    const mproc__pool_config *cfg;
    mproc__handle in, out;
    mproc__pool_status *st;
    unsigned char *ring;
    void **fns;              /* resolved function per id (NULL: unknown) */
    int *fn_err;             /* why an id could not be resolved */
    size_t nfns;
    unsigned char rbuf[RBUF];
    size_t rstart, rend;
    mproc_buf obuf;          /* completions not yet written */
    uint64_t obuf_since_ns;  /* when the oldest of them was finished */
    mproc_buf acc;           /* apply input being gathered */
    mproc_buf res;           /* apply result: header, result, message */
    unsigned tasks_done;
} worker;

static int flush(worker *w)
{
    if (!w->obuf.len) return 0;
    w->obuf_since_ns = 0;
    int rc = mproc__os_write_all(w->out, w->obuf.data, w->obuf.len);
    w->obuf.len = 0;
    return rc;
}

static int emit(worker *w, const mproc__pool_msg *m, const void *payload, size_t len)
{
    unsigned char hdr[MPROC__POOL_HDR];
    mproc__pool_msg_encode(m, hdr);
    int rc = mproc_buf_append(&w->obuf, hdr, sizeof hdr);
    if (!rc) rc = mproc_buf_append(&w->obuf, payload, len);
    return rc;
}

/* Blocks until at least one more byte is buffered. A worker started by
   fork may share its task pipe's write end with siblings, so EOF cannot
   tell it that the parent died: it looks every second. */
static int fill(worker *w)
{
    size_t got;
    if (w->rstart > 0) {
        memmove(w->rbuf, w->rbuf + w->rstart, w->rend - w->rstart);
        w->rend -= w->rstart;
        w->rstart = 0;
    }
    while (w->cfg->watch_parent) {
        int r = mproc__os_wait_readable(w->in, 1000);
        if (r < 0) return r;
        if (r == 1) break;
        if (mproc__os_getppid() != w->cfg->parent_pid) return MPROC_ECLOSED;
    }
    int rc = mproc__os_read_some(w->in, w->rbuf + w->rend, RBUF - w->rend, &got);
    if (rc) return rc;
    w->rend += got;
    return 0;
}

/* Makes len bytes available at w->rbuf + w->rstart. Flushes completions
   first whenever it would block, so the parent never waits on a batch. */
static int need(worker *w, size_t len)
{
    if (len > RBUF) return MPROC_EPROTO;
    while (w->rend - w->rstart < len) {
        int rc = flush(w);
        if (!rc) rc = fill(w);
        if (rc) return rc;
    }
    return 0;
}

static int define_fn(worker *w, const mproc__pool_msg *m, const unsigned char *payload)
{
    mproc__fnref ref;
    void *addr = NULL;
    if (m->fn > 1000000) return MPROC_EPROTO;
    if (m->fn >= w->nfns) {
        size_t n = (size_t)m->fn + 16;
        void **f = realloc(w->fns, n * sizeof *f);
        if (f) w->fns = f;
        int *e = realloc(w->fn_err, n * sizeof *e);
        if (e) w->fn_err = e;
        if (!f || !e) return MPROC_ENOMEM;
        for (size_t i = w->nfns; i < n; i++) {
            w->fns[i] = NULL;
            w->fn_err[i] = MPROC_EPROTO;
        }
        w->nfns = n;
    }
    int rc = mproc__pool_fnref_decode(payload, m->len, &ref);
    if (!rc) rc = mproc__fnref_resolve(&ref, &addr);
    w->fns[m->fn] = rc ? NULL : addr;
    w->fn_err[m->fn] = rc;
    return 0;
}

static int lookup_fn(const worker *w, uint32_t id, void **addr)
{
    if (id >= w->nfns) return MPROC_EPROTO;
    *addr = w->fns[id];
    return *addr ? 0 : w->fn_err[id];
}

static int ring_ok(const worker *w, uint64_t off, uint64_t len)
{
    return off <= w->cfg->ring_cap && len <= w->cfg->ring_cap - off;
}

static void publish_start(worker *w, uint64_t seq)
{
    /* Plain volatile stores: the parent reads them after this process has
       ended (the kernel orders that), and the timeout watcher only needs
       to see the counter move eventually. */
    w->st->pos = 0;
    w->st->seq = seq;
    w->st->phase = MPROC__PHASE_RUNNING;
}

static int item_failed(worker *w, uint64_t seq, uint32_t pos, int ret)
{
    mproc__pool_msg m = {0};
    char dflt[64];
    const char *msg = fail_msg;
    if (!fail_set || !fail_msg[0]) {
        snprintf(dflt, sizeof dflt, "task function returned %d", ret);
        msg = dflt;
    }
    m.type = MPROC__R_ITEMFAIL;
    m.seq = seq;
    m.a = pos;
    m.code = MPROC_ETASK;
    m.len = (uint32_t)strlen(msg);
    /* Written before the next item starts: if that one kills the worker,
       the parent still knows about this failure. */
    int rc = emit(w, &m, msg, m.len);
    return rc ? rc : flush(w);
}

static int unit_error(worker *w, uint64_t seq, int code)
{
    mproc__pool_msg m = {0};
    const char *msg = "the function cannot be resolved in the worker (a different program?)";
    m.type = MPROC__R_DONE;
    m.seq = seq;
    m.code = code;
    m.len = (uint32_t)strlen(msg);
    w->st->seq = seq;
    w->st->phase = MPROC__PHASE_FINISHED;
    int rc = emit(w, &m, msg, m.len);
    return rc ? rc : flush(w);
}

/* Completion of a unit that began at t0_ns. Completions are batched, but
   none waits longer than HOLD_NS: the parent may be waiting for it to hand
   out more work or to return a result, and a worker that holds its first
   completion until its queue is empty serialises a caller that takes
   results in order. Tiny units still go out many per write. */
#define HOLD_NS 20000
static int unit_done(worker *w, uint64_t seq, uint64_t t0_ns)
{
    mproc__pool_msg done = {0};
    uint64_t now = mproc__os_now_ns(), us = (now - t0_ns) / 1000;
    done.type = MPROC__R_DONE;
    done.seq = seq;
    done.b = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (!w->obuf_since_ns) w->obuf_since_ns = now;
    int rc = emit(w, &done, NULL, 0);
    return rc || now - w->obuf_since_ns < HOLD_NS ? rc : flush(w);
}

static int run_map(worker *w, const mproc__pool_msg *m)
{
    void *addr;
    mproc_map_fn fn;
    uint64_t isz = m->a, rsz = m->b, n = m->len, cap = w->cfg->ring_cap;
    if (!isz || n > cap / isz || (rsz && n > cap / rsz)) return MPROC_EPROTO;
    uint64_t items_len = (n * isz + 15) & ~(uint64_t)15;
    if (!ring_ok(w, m->off, items_len + n * rsz)) return MPROC_EPROTO;
    int rc = lookup_fn(w, m->fn, &addr);
    if (rc) return unit_error(w, m->seq, rc);
    memcpy(&fn, &addr, sizeof fn);
    const unsigned char *item = w->ring + m->off;
    unsigned char *result = w->ring + m->off + items_len;
    uint64_t t0 = mproc__os_now_ns();
    publish_start(w, m->seq);
    for (uint32_t i = 0; i < n; i++, item += isz, result += rsz) {
        w->st->pos = i;
        w->st->ticks++;
        fail_set = 0;
        int ret = fn(item, result);
        if ((ret || fail_set) && (rc = item_failed(w, m->seq, i, ret))) return rc;
    }
    w->st->phase = MPROC__PHASE_FINISHED;
    return unit_done(w, m->seq, t0);
}

/* Runs an apply task over the gathered input and sends its result at once
   (it lives only in this message). */
static int run_apply(worker *w, const mproc__pool_msg *m)
{
    void *addr;
    mproc_task_fn fn;
    unsigned char hdr[MPROC__POOL_HDR] = {0};
    mproc__pool_msg done = {0};
    int rc = lookup_fn(w, m->fn, &addr);
    if (rc) return unit_error(w, m->seq, rc);
    memcpy(&fn, &addr, sizeof fn);
    w->res.len = 0;
    if ((rc = mproc_buf_append(&w->res, hdr, sizeof hdr))) return rc;
    uint64_t t0 = mproc__os_now_ns(), us;
    publish_start(w, m->seq);
    w->st->ticks++;
    fail_set = 0;
    int ret = fn(w->acc.data, w->acc.len, &w->res);
    w->st->phase = MPROC__PHASE_FINISHED;
    us = (mproc__os_now_ns() - t0) / 1000;
    done.type = MPROC__R_DONE;
    done.seq = m->seq;
    done.b = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (ret || fail_set) {
        char dflt[64];
        const char *msg = fail_set && fail_msg[0] ? fail_msg : dflt;
        snprintf(dflt, sizeof dflt, "task function returned %d", ret);
        w->res.len = sizeof hdr; /* a failed task has no result */
        done.code = MPROC_ETASK;
        done.len = (uint32_t)strlen(msg);
        if ((rc = mproc_buf_append(&w->res, msg, done.len))) return rc;
    } else {
        done.total = w->res.len - sizeof hdr;
    }
    mproc__pool_msg_encode(&done, w->res.data);
    if ((rc = flush(w))) return rc;
    return mproc__os_write_all(w->out, w->res.data, w->res.len);
}

static int take_piece(worker *w, const mproc__pool_msg *m)
{
    if (!ring_ok(w, m->off, m->len) || m->total > SIZE_MAX / 2) return MPROC_EPROTO;
    if (m->a & MPROC__PIECE_FIRST) w->acc.len = 0;
    if (w->acc.len + m->len > m->total) return MPROC_EPROTO;
    int rc = mproc_buf_append(&w->acc, w->ring + m->off, m->len);
    if (rc) return rc;
    if (m->a & MPROC__PIECE_FINAL) {
        if (w->acc.len != m->total) return MPROC_EPROTO;
        return run_apply(w, m);
    }
    /* Consumed: its ring space can be reused. */
    w->st->seq = m->seq;
    w->st->phase = MPROC__PHASE_FINISHED;
    mproc__pool_msg done = {0};
    done.type = MPROC__R_DONE;
    done.seq = m->seq;
    return emit(w, &done, NULL, 0); /* 0 us: a piece is quick */
}

/* One message; 1 when the worker should exit. */
static int handle(worker *w, const mproc__pool_msg *m, const unsigned char *payload)
{
    int rc;
    switch (m->type) {
    case MPROC__T_DEFINE: return define_fn(w, m, payload);
    case MPROC__T_MAP: rc = run_map(w, m); break;
    case MPROC__T_PIECE:
        rc = take_piece(w, m);
        if (rc || !(m->a & MPROC__PIECE_FINAL)) return rc;
        break;
    case MPROC__T_STOP: return 1;
    default: return MPROC_EPROTO;
    }
    if (rc) return rc;
    w->tasks_done++;
    return w->cfg->maxtasks && w->tasks_done >= w->cfg->maxtasks ? 1 : 0;
}

static int serve(worker *w)
{
    for (;;) {
        mproc__pool_msg m;
        int rc = need(w, MPROC__POOL_HDR);
        if (rc) return rc;
        mproc__pool_msg_decode(w->rbuf + w->rstart, &m);
        size_t payload = m.type == MPROC__T_DEFINE ? m.len : 0;
        if ((rc = need(w, MPROC__POOL_HDR + payload))) return rc;
        const unsigned char *p = w->rbuf + w->rstart + MPROC__POOL_HDR;
        w->rstart += MPROC__POOL_HDR + payload;
        rc = handle(w, &m, p);
        if (rc) return rc;
    }
}

/* ---- start-up ---------------------------------------------------------------- */
static int run_initializer(const mproc__pool_config *cfg, const unsigned char *initarg)
{
    void *addr;
    mproc_target init;
    if (!cfg->has_init) return 0;
    int rc = mproc__fnref_resolve(&cfg->init, &addr);
    if (rc) {
        fprintf(stderr, "mproc: pool initializer cannot be resolved: %s\n", mproc_strerror(rc));
        return 1;
    }
    memcpy(&init, &addr, sizeof init);
    return init(cfg->initarg_len ? initarg : NULL, (size_t)cfg->initarg_len);
}

static int attach(worker *w, const mproc__pool_config *cfg)
{
    mproc__entry e;
    void *mem;
    int rc = mproc__ref_take(&cfg->chan, MPROC__KIND_POOLCHAN, &e);
    if (rc) return rc;
    if (e.nhandles != 3) return MPROC_EPROTO;
    w->in = e.handles[0];
    w->out = e.handles[1];
    rc = mproc__os_map(e.handles[2], MPROC__POOL_STATUS_BYTES + (size_t)cfg->ring_cap, 1, &mem);
    mproc__os_close(e.handles[2]); /* the mapping keeps the memory */
    if (rc) return rc;
    w->st = mem;
    w->ring = (unsigned char *)mem + MPROC__POOL_STATUS_BYTES;
    return 0;
}

static int valid_config(const mproc__pool_config *cfg, size_t len)
{
    return cfg->magic == MPROC__POOL_MAGIC && cfg->version == MPROC__POOL_VERSION &&
           cfg->initarg_len == len - sizeof *cfg && cfg->ring_cap < ((uint64_t)1 << 40);
}

int mproc__pool_worker_main(const void *arg, size_t len)
{
    static worker w; /* large; one per process */
    mproc__pool_msg ready = {0};
    mproc__pool_config cfg_copy;
    if (!arg || len < sizeof cfg_copy) return MPROC_EXIT_BOOTSTRAP;
    memcpy(&cfg_copy, arg, sizeof cfg_copy); /* aligned, whatever arg's alignment */
    if (!valid_config(&cfg_copy, len)) return MPROC_EXIT_BOOTSTRAP;
    w.cfg = &cfg_copy;
    mproc__os_ignore_interrupts();
    if (attach(&w, &cfg_copy)) return MPROC_EXIT_BOOTSTRAP;
    int rc = run_initializer(&cfg_copy, (const unsigned char *)arg + sizeof cfg_copy);
    if (rc) {
        fprintf(stderr, "mproc: pool initializer failed (returned %d)\n", rc);
        return rc & 0xff ? rc & 0xff : 1;
    }
    /* Sent at once: a worker killed by its first item has still been
       ready, which tells the parent its initializer works. */
    ready.type = MPROC__R_READY;
    rc = emit(&w, &ready, NULL, 0);
    if (!rc) rc = flush(&w);
    if (!rc) rc = serve(&w);
    if (rc == 1 || rc == MPROC_ECLOSED) rc = flush(&w);
    return rc && rc != MPROC_ECLOSED ? 2 : 0;
}
