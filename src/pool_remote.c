/* The pool's remote transport, rank 0's side (pool_remote.h): each slot
   is one worker rank, reached through the message layer.

   - start: a new session; HELLO carries the initializer and its argument.
   - put_unit: the unit's records (T_MAPDATA with its items, or T_APPLY
     with its input) go into the slot's batch, while the rank holds less
     than BUDGET bytes (a bigger unit goes alone).
   - flush: the batch goes out as one nonblocking send.
   - serve: polls the layer for the rank's messages (never waits on it),
     delivers the records as events, and watches the rank: lost when its
     process on this machine is gone, or when it sent nothing (not even a
     heartbeat) for the dead timeout. A lost rank is never used again.
   - kill: the rank cannot be killed from here; it is told to drop its
     units (ABORT) and the slot stops waiting for it at once. The task it
     is running finishes there, unseen.
   - reap: the death is coarse (exact = 0): the scheduler fails the oldest
     unit the rank held and hands the others to other ranks.
   Every layer call is made under one process-wide lock, so the layer may
   be MPI initialised with MPI_THREAD_SERIALIZED. */
#include "pool_transport.h"
#include "pool_remote.h"

#include <stdio.h>

#define BUDGET ((size_t)8 << 20)   /* bytes of units a rank may hold */
#define UNIT_MAX ((size_t)1 << 20) /* bytes of one map unit (items + results) */
#define LOOK_MS 200                /* how often a rank on this machine is looked at */
/* After a message in either direction a serving thread polls (yielding
   the CPU between polls) for SPIN_NS before it sleeps a millisecond at a
   time: a short task's answer comes well within that. */
#define SPIN_NS 5000000

typedef struct pending_send {
    struct pending_send *next;
    void *req;
    unsigned char *buf;
} pending_send;

static struct {
    mproc__net n;
    mproc__os_mutex *mu;
    int installed, closed;
    uint64_t sessions;
    unsigned char *lost, *busy; /* per rank */
    pending_send *sends;
    int dead_ms;
} g;

typedef struct remote {
    int rank;
    uint64_t session;
    mproc__pool_known known;   /* function ids defined in this session */
    unsigned char *batch;      /* session number, then records */
    size_t batch_len, batch_cap;
    void *rreq;                /* a receive in progress */
    unsigned char *rbuf;
    size_t rlen;
    const unsigned char *results; /* of the R_DONE being delivered */
    uint64_t heard_ms, looked_ms;
    uint64_t active_ns;        /* last message either way */
    uint64_t polled_ms;        /* when this side last looked */
    int in_flight;             /* a message is on its way either way */
    int64_t pid;
    int same_node, ended, lost, bye, bye_code;
    char node[64];
    char how[160];
    uint64_t reported;         /* sub-items of the units its ranks finished
                                  (mproc_task_progress, sent with R_DONE) */
} remote;

/* ---- the message layer, under g.mu ------------------------------------------------ */
/* Sends buf (malloc'd; freed once sent, or now if the send failed). */
static int send_owned(int peer, int tag, unsigned char *buf, size_t len)
{
    pending_send *p = malloc(sizeof *p);
    int rc = p ? g.n.isend(g.n.ctx, peer, tag, buf, len, &p->req) : MPROC_ENOMEM;
    if (rc) {
        free(p);
        free(buf);
        return rc;
    }
    p->buf = buf;
    p->next = g.sends;
    g.sends = p;
    return 0;
}

static int session_only(int peer, int tag, uint64_t session)
{
    unsigned char *b = malloc(8);
    if (!b) return MPROC_ENOMEM;
    mproc__put_u64(b, session);
    return send_owned(peer, tag, b, 8);
}

static void progress_sends(void)
{
    for (pending_send **pp = &g.sends; *pp;) {
        pending_send *p = *pp;
        if (g.n.test(g.n.ctx, p->req) == 0) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        free(p->buf);
        free(p);
    }
}

int mproc__pool_remote_install(const mproc__net *net)
{
    if (!net || g.installed || net->size < 1) return MPROC_EINVAL;
    int rc = mproc__os_mutex_create(&g.mu);
    if (rc) return rc;
    g.n = *net;
    g.lost = mproc__calloc((size_t)net->size, 1);
    g.busy = mproc__calloc((size_t)net->size, 1);
    if (!g.lost || !g.busy) return MPROC_ENOMEM;
    if (!g.dead_ms) g.dead_ms = 10000;
    g.installed = 1;
    return 0;
}

void mproc__pool_remote_set_dead_ms(int ms) { g.dead_ms = ms > 0 ? ms : 10000; }

int mproc__pool_remote_shutdown(void)
{
    if (!g.installed) return 1;
    mproc__os_mutex_lock(g.mu);
    int lost = 0;
    for (int k = 1; k < g.n.size; k++) lost |= g.lost[k];
    if (!g.closed) {
        /* EXIT's number says whether a rank was lost: the others must then
           not finalize either. */
        g.closed = 1;
        for (int k = 1; k < g.n.size; k++)
            if (!g.lost[k] && session_only(k, MPROC__NET_EXIT, (uint64_t)lost)) lost = g.lost[k] = 1;
    }
    /* Sends to ranks still there complete (their main thread always
       receives); those to a lost rank never will, and MPI_Finalize would
       wait for that rank: the caller must then not finalize. */
    uint64_t until = mproc__os_now_ms() + 10000;
    while (!lost && g.sends && mproc__os_now_ms() < until) {
        progress_sends();
        mproc__os_mutex_unlock(g.mu);
        mproc__os_sleep_ms(1);
        mproc__os_mutex_lock(g.mu);
    }
    int ok = !lost && !g.sends;
    mproc__os_mutex_unlock(g.mu);
    return ok;
}

/* ---- slots --------------------------------------------------------------------------- */
static int r_init(mproc__pool_slot *s)
{
    remote *r = mproc__calloc(1, sizeof *r);
    if (!r) return MPROC_ENOMEM;
    s->tx = r;
    r->rank = -1;
    s->pool->unit_max = UNIT_MAX;
    mproc__os_mutex_lock(g.mu);
    for (int k = 1; k < g.n.size && r->rank < 0; k++)
        if (!g.lost[k] && !g.busy[k]) {
            r->rank = k;
            g.busy[k] = 1;
        }
    mproc__os_mutex_unlock(g.mu);
    return r->rank < 0 ? MPROC_ESTATE : 0;
}

static void r_fini(mproc__pool_slot *s)
{
    remote *r = s->tx;
    if (!r) return;
    if (r->rank >= 0) {
        mproc__os_mutex_lock(g.mu);
        g.busy[r->rank] = 0;
        mproc__os_mutex_unlock(g.mu);
    }
    /* A receive still in progress (a lost rank) keeps its buffer. */
    if (!r->rreq) free(r->rbuf);
    free(r->batch);
    mproc__pool_known_fini(&r->known);
    free(r);
    s->tx = NULL;
}

/* The rank is gone: never used again. With the pool's lock held. */
static void lose(mproc__pool_slot *s, const char *why)
{
    remote *r = s->tx;
    if (r->ended) return;
    r->ended = r->lost = 1;
    snprintf(r->how, sizeof r->how, "MPI rank %d (pid %lld on %.40s) %.60s", r->rank, (long long)r->pid,
             r->node[0] ? r->node : "?", why);
    mproc__os_mutex_lock(g.mu);
    g.lost[r->rank] = 1;
    mproc__os_mutex_unlock(g.mu);
}

static int r_start(mproc__pool_slot *s)
{
    remote *r = s->tx;
    mproc_pool *pool = s->pool;
    unsigned char fn[MPROC__FNREF_WIRE_MAX];
    size_t fnlen = pool->has_init ? mproc__pool_fnref_encode(&pool->init_ref, fn) : 0;
    size_t len = 16 + fnlen + pool->opt.initarg_len;
    unsigned char *hello = malloc(len);
    if (!hello) return MPROC_ENOMEM;
    r->ended = r->lost = r->bye = r->bye_code = 0;
    r->batch_len = 0;
    r->results = NULL;
    r->pid = 0;
    r->same_node = 0;
    r->node[0] = r->how[0] = '\0';
    mproc__pool_known_reset(&r->known);
    s->pid = 0;
    mproc__os_mutex_lock(g.mu);
    int rc = g.closed ? MPROC_ECLOSED : g.lost[r->rank] ? MPROC_ECHILD : 0;
    if (!rc) {
        r->session = ++g.sessions;
        mproc__put_u64(hello, r->session);
        mproc__put_u32(hello + 8, (uint32_t)pool->has_init);
        mproc__put_u32(hello + 12, (uint32_t)fnlen);
        memcpy(hello + 16, fn, fnlen);
        if (pool->opt.initarg_len) memcpy(hello + 16 + fnlen, pool->initarg, pool->opt.initarg_len);
        rc = send_owned(r->rank, MPROC__NET_HELLO, hello, len);
        if (rc) g.lost[r->rank] = 1;
    } else {
        free(hello);
    }
    mproc__os_mutex_unlock(g.mu);
    r->heard_ms = r->looked_ms = r->polled_ms = mproc__os_now_ms();
    return rc ? MPROC_ECHILD : 0;
}

/* ---- handing out units ----------------------------------------------------------------- */
static int batch_put(remote *r, const mproc__pool_msg *m, const void *payload, size_t len)
{
    size_t at = r->batch_len ? r->batch_len : 8, need = at + MPROC__POOL_HDR + len;
    if (need > r->batch_cap) {
        size_t cap = r->batch_cap ? r->batch_cap : 4096;
        while (cap < need) cap *= 2;
        unsigned char *b = realloc(r->batch, cap);
        if (!b) return 0;
        r->batch = b;
        r->batch_cap = cap;
    }
    if (!r->batch_len) mproc__put_u64(r->batch, r->session);
    mproc__pool_msg_encode(m, r->batch + at);
    if (len) memcpy(r->batch + at + MPROC__POOL_HDR, payload, len);
    r->batch_len = need;
    return 1;
}

/* Tells the rank what function id fn means, once per session. */
static int define_if_new(mproc__pool_slot *s, uint32_t fn)
{
    remote *r = s->tx;
    unsigned char payload[MPROC__FNREF_WIRE_MAX];
    mproc__pool_msg m;
    int known = mproc__pool_known_define(&r->known, fn, &s->pool->fns[fn].ref, &m, payload);
    if (known) return known > 0;
    if (!batch_put(r, &m, payload, m.len)) return 0;
    mproc__pool_known_set(&r->known, fn);
    return 1;
}

static int r_put_unit(mproc__pool_slot *s, mproc__pool_unit *u)
{
    remote *r = s->tx;
    const mproc__pool_job *job = u->job;
    int apply = job->kind == MPROC__JOB_APPLY;
    size_t data = apply ? job->in_len : u->n * job->isz, before = r->batch_len;
    if (r->ended) return 0;
    if (s->wire_held + r->batch_len + data > BUDGET && (s->u_count || r->batch_len)) return 0;
    mproc__pool_msg m = {0};
    m.type = apply ? MPROC__T_APPLY : MPROC__T_MAPDATA;
    m.fn = job->fn;
    m.seq = u->seq;
    if (apply) {
        m.total = job->in_len;
    } else {
        m.len = (uint32_t)u->n;
        m.a = (uint32_t)job->isz;
        m.b = (uint32_t)job->rsz;
    }
    const void *payload = apply ? (const void *)(job->in + MPROC__POOL_HDR)
                                : (const void *)(job->items + u->lo * job->isz);
    if (!define_if_new(s, job->fn) || !batch_put(r, &m, payload, data)) {
        r->batch_len = before;
        return 0;
    }
    u->wire_bytes = r->batch_len - before;
    return 1;
}

static void r_flush(mproc__pool_slot *s, int stop)
{
    remote *r = s->tx;
    if (r->ended) return;
    if (stop) {
        mproc__pool_msg m = {0};
        m.type = MPROC__T_STOP;
        if (!batch_put(r, &m, NULL, 0)) {
            lose(s, "could not be told to stop (out of memory)");
            return;
        }
    }
    if (!r->batch_len) return;
    mproc__os_mutex_lock(g.mu);
    int rc = g.closed ? MPROC_ECLOSED : send_owned(r->rank, MPROC__NET_DATA, r->batch, r->batch_len);
    if (rc == MPROC_ECLOSED) free(r->batch);
    mproc__os_mutex_unlock(g.mu);
    r->batch = NULL; /* the send owns it now */
    r->batch_len = r->batch_cap = 0;
    r->active_ns = mproc__os_now_ns();
    if (rc) lose(s, "could not be sent to");
}

static const unsigned char *r_results(mproc__pool_slot *s, const mproc__pool_unit *u)
{
    (void)u;
    return ((const remote *)s->tx)->results;
}

static int r_progress(mproc__pool_slot *s, uint64_t *seq, uint32_t *pos, uint32_t *ticks)
{
    (void)s;
    *seq = 0;
    *pos = *ticks = 0;
    return 0; /* no item clock over the network (task timeouts are refused) */
}

/* With the lock: a unit's reports come with its completion (no shared
   memory to read them live over the network). */
static uint64_t r_reported(mproc__pool_slot *s) { return ((const remote *)s->tx)->reported; }

/* Terminate, or a rank that broke the protocol: it drops its units. */
static void r_kill(mproc__pool_slot *s)
{
    remote *r = s->tx;
    if (r->ended) return;
    r->ended = 1;
    snprintf(r->how, sizeof r->how, "MPI rank %d was stopped", r->rank);
    mproc__os_mutex_lock(g.mu);
    if (!g.closed && session_only(r->rank, MPROC__NET_ABORT, r->session)) g.lost[r->rank] = 1;
    mproc__os_mutex_unlock(g.mu);
}

/* ---- serving: the rank's records ------------------------------------------------------ */
static void copy_text(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int on_done(mproc__pool_slot *s, const mproc__pool_event *ev)
{
    remote *r = s->tx;
    char msg[256];
    unsigned char *out = NULL;
    int code = ev->code;
    const mproc__pool_unit *u = s->u_count ? &s->units[s->u_first] : NULL;
    copy_text(msg, sizeof msg, ev->msg, ev->msg_len);
    if (u && u->job->kind == MPROC__JOB_APPLY) {
        if (!code && ev->result_len && !(out = malloc(ev->result_len))) {
            code = MPROC_ENOMEM;
            snprintf(msg, sizeof msg, "out of memory for a %llu-byte result",
                     (unsigned long long)ev->result_len);
        }
        if (out) memcpy(out, ev->result, ev->result_len);
    } else if (u && !code) {
        if (ev->result_len != u->n * u->job->rsz) return MPROC_EPROTO;
        r->results = ev->result;
    }
    int rc = mproc__pool_ev_done(s, ev->seq, code, msg, out, out ? ev->result_len : 0, ev->took_us);
    r->results = NULL;
    if (rc) free(out);
    else r->reported += ev->reported;
    return rc;
}

static int on_record(void *ctx, const mproc__pool_rec *rec)
{
    mproc__pool_slot *s = ctx;
    remote *r = s->tx;
    mproc__pool_event ev;
    char msg[256];
    if (mproc__pool_event_decode(rec, &ev)) return MPROC_EPROTO;
    switch (ev.type) {
    case MPROC__R_READY:
        s->pid = r->pid = (int64_t)ev.seq;
        copy_text(r->node, sizeof r->node, ev.msg, ev.msg_len);
        r->same_node = strcmp(r->node, g.n.node) == 0;
        mproc__pool_ev_ready(s);
        return 0;
    case MPROC__R_ALIVE: return 0;
    case MPROC__R_BYE:
        r->bye = r->ended = 1;
        r->bye_code = ev.code;
        return 0;
    case MPROC__R_ITEMFAIL:
        copy_text(msg, sizeof msg, ev.msg, ev.msg_len);
        return mproc__pool_ev_item_failed(s, ev.seq, ev.pos, ev.code, msg);
    case MPROC__R_DONE: return on_done(s, &ev);
    default: return MPROC_EPROTO;
    }
}

/* One message of the rank, with the pool's lock held. */
static void deliver(mproc__pool_slot *s, const unsigned char *buf, size_t len)
{
    remote *r = s->tx;
    if (len < 8) {
        r_kill(s);
        return;
    }
    if (mproc__get_u64(buf) != r->session) return; /* from a session that ended */
    if (mproc__pool_read_batch(buf + 8, len - 8, 0, on_record, s) && !r->ended) {
        r_kill(s);
        snprintf(r->how, sizeof r->how, "MPI rank %d sent malformed data and was stopped", r->rank);
    }
}

/* Takes the rank's next message if one has arrived whole: 1 if one was
   delivered. With the pool's lock held; the layer's lock only around its
   calls (delivering hands out units, which sends). */
static int receive_some(mproc__pool_slot *s)
{
    remote *r = s->tx;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    mproc__os_mutex_lock(g.mu);
    progress_sends();
    if (g.closed) {
        mproc__os_mutex_unlock(g.mu);
        r->ended = 1;
        snprintf(r->how, sizeof r->how, "MPI rank %d: the program is ending", r->rank);
        return 0;
    }
    if (!r->rreq) {
        int tag;
        void *m;
        rc = g.n.probe(g.n.ctx, r->rank, &tag, &len, &m);
        if (rc == 1) {
            r->rlen = len;
            r->rbuf = malloc(len ? len : 1);
            rc = r->rbuf ? g.n.irecv(g.n.ctx, m, r->rbuf, len, &r->rreq) : MPROC_ENOMEM;
        }
    }
    if (rc >= 0 && r->rreq && (rc = g.n.test(g.n.ctx, r->rreq)) == 1) {
        buf = r->rbuf;
        len = r->rlen;
        r->rbuf = NULL;
        r->rreq = NULL;
    }
    if (rc < 0 && r->rreq) { /* the failed request is complete: its buffer is ours */
        r->rreq = NULL;
        free(r->rbuf);
        r->rbuf = NULL;
    }
    r->in_flight = r->rreq || g.sends;
    mproc__os_mutex_unlock(g.mu);
    if (rc < 0) {
        lose(s, "could not be received from");
        return 0;
    }
    if (!buf) return 0;
    r->heard_ms = mproc__os_now_ms();
    r->active_ns = mproc__os_now_ns();
    deliver(s, buf, len);
    free(buf);
    return 1;
}

/* Is the rank still there? With the pool's lock held. */
static void watch(mproc__pool_slot *s)
{
    remote *r = s->tx;
    char why[96];
    uint64_t now = mproc__os_now_ms();
    /* Silence is counted only while this side was looking: a caller that
       held the pool's lock for seconds (copying a huge input) is not the
       rank's fault. */
    if (now - r->polled_ms > LOOK_MS) r->heard_ms = now;
    r->polled_ms = now;
    if (r->same_node && r->pid && now - r->looked_ms >= LOOK_MS) {
        r->looked_ms = now;
        if (mproc__os_pid_alive(r->pid) == 0) {
            lose(s, "has ended (its process is gone)");
            return;
        }
    }
    if (now - r->heard_ms > (uint64_t)g.dead_ms) {
        snprintf(why, sizeof why, "sent nothing for %d ms", g.dead_ms);
        lose(s, why);
    }
}

static void r_serve(mproc__pool_slot *s)
{
    remote *r = s->tx;
    mproc_pool *pool = s->pool;
    for (;;) {
        mproc__os_mutex_lock(pool->mu);
        int got = receive_some(s);
        if (!r->ended) watch(s);
        if (got) mproc__pool_pump_all(pool);
        int ended = r->ended;
        /* A message on its way either way moves only while polled. */
        uint64_t active_ns = r->in_flight ? mproc__os_now_ns() : r->active_ns;
        mproc__os_mutex_unlock(pool->mu);
        if (ended) return;
        /* Yield while messages come close together, sleep when quiet: the
           ranks on this machine need the CPU more than this thread does. */
        if (mproc__os_now_ns() - active_ns > SPIN_NS) mproc__os_sleep_ms(1);
        else mproc__os_yield();
    }
}

/* The units a lost rank held, on stderr: the pool's messages name only
   the item that fails. */
static void report_lost(const mproc__pool_slot *s, const remote *r)
{
    char line[512];
    size_t at = (size_t)snprintf(line, sizeof line, "mproc: %s; it held", r->how);
    for (size_t i = 0; i < s->u_count && at < sizeof line - 64; i++) {
        const mproc__pool_unit *u = &s->units[(s->u_first + i) % MPROC__POOL_WINDOW];
        if (u->job->kind == MPROC__JOB_APPLY)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s an apply", i ? "," : "");
        else if (u->n == 1)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s item %llu of a map", i ? "," : "",
                                   (unsigned long long)u->lo);
        else
            at += (size_t)snprintf(line + at, sizeof line - at, "%s items %llu-%llu of a map", i ? "," : "",
                                   (unsigned long long)u->lo, (unsigned long long)(u->lo + u->n - 1));
    }
    fprintf(stderr, "%s%s (the first fails with MPROC_ECHILD, the others run on other ranks)\n",
            line, at >= sizeof line - 64 ? ", ..." : "");
}

static void r_reap(mproc__pool_slot *s, mproc__pool_death *d)
{
    remote *r = s->tx;
    memset(d, 0, sizeof *d);
    d->exact = 0;
    if (r->bye && r->bye_code) {
        snprintf(d->how, sizeof d->how, "MPI rank %d: the pool initializer failed (returned %d)",
                 r->rank, r->bye_code);
        d->exit_code = r->bye_code;
    } else if (r->bye) {
        snprintf(d->how, sizeof d->how, "MPI rank %d left the pool", r->rank);
    } else {
        snprintf(d->how, sizeof d->how, "%s", r->how);
        d->exit_code = 1;
        if (r->lost && s->u_count) report_lost(s, r);
    }
}

static const mproc__pool_transport remote_transport = {
    r_init, r_fini, r_start, r_serve, r_reap, r_put_unit, r_flush, r_results, r_progress, r_kill,
    r_reported,
    NULL, /* only the serving thread receives from MPI */
    NULL,
};

int mproc__pool_remote_create(mproc_pool **out, const mproc_pool_options *opt)
{
    mproc_pool_options o;
    int free_ranks = 0, live = 0;
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    if (o.processes < 0 || o.maxtasksperchild < 0 || o.task_timeout_ms < 0) return MPROC_EINVAL;
    /* No process of ours to kill or replace on another machine. */
    if (o.maxtasksperchild || o.task_timeout_ms || o.method != MPROC_METHOD_DEFAULT)
        return MPROC_ENOTSUP;
    if (!g.installed) return MPROC_ESTATE;
    mproc__os_mutex_lock(g.mu);
    for (int k = 1; k < g.n.size; k++) {
        live += !g.lost[k];
        free_ranks += !g.lost[k] && !g.busy[k];
    }
    int closed = g.closed;
    mproc__os_mutex_unlock(g.mu);
    if (closed) return MPROC_ECLOSED;
    if (!free_ranks) return live ? MPROC_ESTATE : MPROC_ECHILD;
    if (!o.processes || o.processes > free_ranks) o.processes = free_ranks;
    return mproc__pool_create_on(out, &o, &remote_transport);
}

void mproc__pool_remote_default(int on)
{
    mproc__pool_set_default_create(on ? mproc__pool_remote_create : NULL);
}
