/* The pool worker: the loop a worker process runs behind the main guard,
   plus the task-side API (mproc_buf_append, mproc_task_fail,
   mproc_task_progress). */
#include "pool.h"
#include "comm.h"

#include <stdarg.h>
#include <stdio.h>

struct mproc_buf {
    unsigned char *data;
    size_t len, cap;
    size_t reserved;         /* room mproc_buf_reserve promised after len */
};

/* The message of the task running now. A worker runs its tasks on its main
   thread, one at a time, so process-wide state is the task's own. */
static char fail_msg[256];
static int fail_set;
/* Where mproc_task_progress counts while a task runs, NULL otherwise: the
   status block's word in a local worker (the parent reads it there), the
   process's own count in a remote one (sent with the unit's completion). */
static volatile uint64_t *progress_word;
static volatile uint64_t reported_here;

/* Room for len more bytes after the end. */
static int buf_grow(mproc_buf *out, size_t len)
{
    if (len > SIZE_MAX / 2 - out->len) return MPROC_ENOMEM;
    if (out->len + len > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + len) cap *= 2;
        unsigned char *p = realloc(out->data, cap);
        if (!p) return MPROC_ENOMEM;
        out->data = p;
        out->cap = cap;
    }
    return 0;
}

int mproc_buf_append(mproc_buf *out, const void *data, size_t len)
{
    if (!out || (!data && len)) return MPROC_EINVAL;
    if (!len) return 0;
    int rc = buf_grow(out, len);
    if (rc) return rc;
    memcpy(out->data + out->len, data, len);
    out->len += len;
    out->reserved = 0;
    return 0;
}

void *mproc_buf_reserve(mproc_buf *out, size_t len)
{
    if (!out || buf_grow(out, len ? len : 1)) return NULL;
    out->reserved = len;
    return out->data + out->len;
}

int mproc_buf_commit(mproc_buf *out, size_t len)
{
    if (!out || len > out->reserved) return MPROC_EINVAL;
    out->len += len;
    out->reserved = 0;
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

int mproc_task_progress(size_t n)
{
    volatile uint64_t *word = progress_word;
    if (!word) return MPROC_ESTATE;
    /* Only this thread writes the word: a release store, no atomic add. */
    mproc__store64_rel(word, *word + n);
    return 0;
}

uint64_t mproc__pool_task_reported(void) { return reported_here; }

/* ---- the worker ------------------------------------------------------------- */
#define RBUF (64 * 1024)

typedef struct worker {
    const mproc__pool_config *cfg;
    mproc_conn *conn;
    mproc__pool_status *st;
    unsigned char *arena;
    mproc__pool_fntab fns;
    unsigned char rbuf[RBUF];
    unsigned spin_us;        /* how long it spins before sleeping */
    mproc_buf obuf;          /* completions not yet sent */
    uint64_t obuf_since_ns;  /* when the oldest of them was finished */
    mproc_buf res;           /* an apply's result */
    unsigned tasks_done;
    int stop;                /* T_STOP seen, or maxtasks reached */
} worker;

static int flush(worker *w)
{
    if (!w->obuf.len) return 0;
    w->obuf_since_ns = 0;
    int rc = mproc_conn_send(w->conn, w->obuf.data, w->obuf.len);
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

/* The next batch from the parent into rbuf, or a malloc'd *big. A worker
   started by fork may share its conn's parent end with siblings, so the
   conn's end cannot tell it that the parent died: it looks every second. */
static int receive(worker *w, unsigned char **big, size_t *len)
{
    for (;;) {
        int slice = w->cfg->watch_parent ? 1000 : MPROC_FOREVER;
        int rc = mproc__pool_receive(w->conn, &w->spin_us, w->rbuf, RBUF, big, len, slice);
        if (rc != MPROC_ETIMEDOUT) return rc;
        if (mproc__os_getppid() != w->cfg->parent_pid) return MPROC_ECLOSED;
    }
}

int mproc__pool_fntab_define(mproc__pool_fntab *t, const mproc__pool_rec *r)
{
    mproc__fnref ref;
    void *addr = NULL;
    uint32_t id = r->m.fn;
    if (id > 1000000) return MPROC_EPROTO;
    if (id >= t->n) {
        size_t n = (size_t)id + 16;
        void **f = realloc(t->fns, n * sizeof *f);
        if (f) t->fns = f;
        int *e = realloc(t->err, n * sizeof *e);
        if (e) t->err = e;
        if (!f || !e) return MPROC_ENOMEM;
        for (size_t i = t->n; i < n; i++) {
            t->fns[i] = NULL;
            t->err[i] = MPROC_EPROTO;
        }
        t->n = n;
    }
    int rc = mproc__pool_fnref_decode(r->payload, r->payload_len, &ref);
    if (!rc) rc = mproc__fnref_resolve(&ref, &addr);
    t->fns[id] = rc ? NULL : addr;
    t->err[id] = rc;
    return 0;
}

int mproc__pool_fntab_lookup(const mproc__pool_fntab *t, uint32_t id, void **addr)
{
    *addr = id < t->n ? t->fns[id] : NULL;
    return *addr ? 0 : id < t->n ? t->err[id] : MPROC_EPROTO;
}

void mproc__pool_fntab_forget(mproc__pool_fntab *t)
{
    for (size_t i = 0; i < t->n; i++) {
        t->fns[i] = NULL;
        t->err[i] = MPROC_EPROTO;
    }
}

static void publish_start(worker *w, uint64_t seq)
{
    /* Plain volatile stores: the parent reads them after this process has
       ended (the kernel orders that), and the timeout watcher only needs
       to see the counter move eventually. */
    w->st->pos = 0;
    w->st->progress_at_start = w->st->progress;
    w->st->seq = seq;
    w->st->phase = MPROC__PHASE_RUNNING;
}

/* The message of a failed task: its own, or a default one in dflt. */
static const char *failure_text(int ret, char *dflt, size_t cap)
{
    if (fail_set && fail_msg[0]) return fail_msg;
    snprintf(dflt, cap, "task function returned %d", ret);
    return dflt;
}

/* One map item, for a worker that is not this file's (the remote one,
   pool_remote_worker.c): 0, or MPROC_ETASK with the item's message. */
int mproc__pool_call_item(mproc_map_fn fn, const void *item, void *result, char *msg, size_t cap)
{
    char dflt[64];
    fail_set = 0;
    progress_word = &reported_here;
    int ret = fn(item, result);
    progress_word = NULL;
    if (!ret && !fail_set) return 0;
    snprintf(msg, cap, "%s", failure_text(ret, dflt, sizeof dflt));
    return MPROC_ETASK;
}

/* One apply task, likewise: 0 with its result in *out (valid until the
   next call), or MPROC_ETASK with its message. */
int mproc__pool_call_task(mproc_task_fn fn, const void *in, size_t len, const unsigned char **out,
                          size_t *out_len, char *msg, size_t cap)
{
    static mproc_buf res; /* one task at a time per process */
    char dflt[64];
    res.len = 0;
    fail_set = 0;
    progress_word = &reported_here;
    int ret = fn(in, len, &res);
    progress_word = NULL;
    *out = res.data;
    *out_len = res.len;
    if (!ret && !fail_set) return 0;
    snprintf(msg, cap, "%s", failure_text(ret, dflt, sizeof dflt));
    return MPROC_ETASK;
}

static int item_failed(worker *w, uint64_t seq, uint32_t pos, int ret)
{
    mproc__pool_msg m = {0};
    char dflt[64];
    const char *msg = failure_text(ret, dflt, sizeof dflt);
    m.type = MPROC__R_ITEMFAIL;
    m.fn = (uint32_t)ret; /* the function's own value travels in fn */
    m.seq = seq;
    m.a = pos;
    m.code = MPROC_ETASK;
    m.len = (uint32_t)strlen(msg);
    /* Sent before the next item starts: if that one kills the worker, the
       parent still knows about this failure. */
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

/* Completion of a map unit that began at t0_ns. Completions are batched,
   but none waits longer than HOLD_NS: the parent may be waiting for it to
   hand out more work or to return a result, and a worker that holds its
   first completion until its queue is empty serialises a caller that
   takes results in order. Tiny units still go out many per send. */
#define HOLD_NS 20000
static int unit_done(worker *w, uint64_t seq, uint64_t t0_ns)
{
    mproc__pool_msg done = {0};
    uint64_t now = mproc__os_now_ns(), us = (now - t0_ns) / 1000;
    done.type = MPROC__R_DONE;
    done.seq = seq;
    done.b = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (!w->obuf_since_ns) w->obuf_since_ns = t0_ns; /* a unit longer than HOLD_NS goes out at once */
    int rc = emit(w, &done, NULL, 0);
    return rc || now - w->obuf_since_ns < HOLD_NS ? rc : flush(w);
}

static int run_map(worker *w, const mproc__pool_msg *m)
{
    void *addr;
    mproc_map_fn fn;
    uint64_t isz = m->a, rsz = m->b, n = m->len;
    if (!mproc__pool_map_fits(m, w->cfg->arena_cap)) return MPROC_EPROTO;
    int rc = mproc__pool_fntab_lookup(&w->fns, m->fn, &addr);
    if (rc) return unit_error(w, m->seq, rc);
    memcpy(&fn, &addr, sizeof fn);
    const unsigned char *item = w->arena + m->off;
    unsigned char *result = w->arena + m->off + MPROC__POOL_RESULTS_AT(n, isz);
    uint64_t t0 = mproc__os_now_ns();
    publish_start(w, m->seq);
    progress_word = &w->st->progress;
    for (uint32_t i = 0; i < n; i++, item += isz, result += rsz) {
        w->st->pos = i;
        w->st->ticks++;
        fail_set = 0;
        int ret = fn(item, result);
        if ((ret || fail_set) && (rc = item_failed(w, m->seq, i, ret))) break;
    }
    progress_word = NULL;
    if (rc) return rc;
    w->st->phase = MPROC__PHASE_FINISHED;
    return unit_done(w, m->seq, t0);
}

/* Runs an apply task over its input (the record's payload) and sends its
   result at once: it lives only in this message. */
static int run_apply(worker *w, const mproc__pool_rec *r)
{
    void *addr;
    mproc_task_fn fn;
    mproc__pool_msg done = {0};
    int rc = mproc__pool_fntab_lookup(&w->fns, r->m.fn, &addr);
    if (rc) return unit_error(w, r->m.seq, rc);
    memcpy(&fn, &addr, sizeof fn);
    w->res.len = 0;
    w->res.reserved = 0;
    uint64_t t0 = mproc__os_now_ns(), us;
    publish_start(w, r->m.seq);
    w->st->ticks++;
    fail_set = 0;
    progress_word = &w->st->progress;
    int ret = fn(r->payload, r->payload_len, &w->res);
    progress_word = NULL;
    w->st->phase = MPROC__PHASE_FINISHED;
    us = (mproc__os_now_ns() - t0) / 1000;
    done.type = MPROC__R_DONE;
    done.seq = r->m.seq;
    done.b = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (ret || fail_set) {
        char dflt[64];
        const char *msg = failure_text(ret, dflt, sizeof dflt);
        done.code = MPROC_ETASK;
        done.fn = (uint32_t)ret;
        done.len = (uint32_t)strlen(msg);
        rc = emit(w, &done, msg, done.len);
    } else {
        done.total = w->res.len;
        rc = emit(w, &done, w->res.data, w->res.len);
    }
    return rc ? rc : flush(w);
}

/* One record from the parent. */
static int on_record(void *ctx, const mproc__pool_rec *r)
{
    worker *w = ctx;
    int rc;
    if (w->stop) return MPROC_EPROTO; /* nothing may follow a stop */
    switch (r->m.type) {
    case MPROC__T_DEFINE: return mproc__pool_fntab_define(&w->fns, r);
    case MPROC__T_MAP: rc = run_map(w, &r->m); break;
    case MPROC__T_APPLY: rc = run_apply(w, r); break;
    case MPROC__T_STOP: w->stop = 1; return 0;
    default: return MPROC_EPROTO;
    }
    if (rc) return rc;
    w->tasks_done++;
    if (w->cfg->maxtasks && w->tasks_done >= w->cfg->maxtasks) w->stop = 1;
    if (w->cfg->max_rss && !w->stop) {
        /* Over its memory cap: finish here; the parent replaces it and
           hands the units it had queued here to other workers. */
        uint64_t rss;
        if (mproc__os_rss_bytes(&rss) == 0 && rss > w->cfg->max_rss) w->stop = 1;
    }
    return 0;
}

/* Batches until a stop (0) or an error. Completions are flushed whenever
   the worker would wait for the parent, so the parent never waits on a
   batch. */
static int serve(worker *w)
{
    while (!w->stop) {
        unsigned char *big;
        size_t len;
        if (!mproc__conn_readable(w->conn)) {
            int rc = flush(w);
            if (rc) return rc;
        }
        int rc = receive(w, &big, &len);
        if (rc) return rc;
        rc = mproc__pool_read_batch(big ? big : w->rbuf, len, 1, on_record, w);
        free(big);
        if (rc && !(w->stop && rc == MPROC_EPROTO)) return rc;
    }
    return 0;
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
    int rc = mproc__ref_take(&cfg->block, MPROC__KIND_POOLCHAN, &e);
    if (rc) return rc;
    if (e.nhandles != 1) return MPROC_EPROTO;
    rc = mproc__os_map(e.handles[0], MPROC__POOL_STATUS_BYTES + (size_t)cfg->arena_cap, 1, &mem);
    mproc__os_close(e.handles[0]); /* the mapping keeps the memory */
    if (rc) return rc;
    w->st = mem;
    w->arena = (unsigned char *)mem + MPROC__POOL_STATUS_BYTES;
    return mproc_conn_attach(&cfg->conn, &w->conn);
}

static int valid_config(const mproc__pool_config *cfg, size_t len)
{
    return cfg->magic == MPROC__POOL_MAGIC && cfg->version == MPROC__POOL_VERSION &&
           cfg->initarg_len == len - sizeof *cfg && cfg->arena_cap < ((uint64_t)1 << 40);
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
    if (!rc || rc == MPROC_ECLOSED) rc = flush(&w);
    mproc_conn_destroy(w.conn);
    return rc && rc != MPROC_ECLOSED ? 2 : 0;
}
