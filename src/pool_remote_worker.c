/* A worker rank of the remote pool (pool_remote.h): its main thread talks
   to rank 0 through the message layer -- receives sessions and units,
   sends results and, while nothing else goes out, a heartbeat -- and a
   runner thread runs the units in order. A task that runs for an hour
   thus still has a rank that answers; one that crashes takes the rank
   with it, which rank 0 notices (pool_remote.c). */
#include "pool_remote.h"
#include "pool.h"

#include <stdint.h>
#include <stdio.h>

#define HEARTBEAT_MS 250
/* After a message while the runner is idle, the main thread polls
   (yielding between polls) for SPIN_NS, then waits a millisecond at a
   time (the runner's output wakes it at once). */
#define SPIN_NS 5000000

typedef struct inmsg {
    struct inmsg *next;
    int tag;
    uint64_t session;
    unsigned char *buf;
    size_t len;
} inmsg;

typedef struct wsend { struct wsend *next; void *req; unsigned char *buf; } wsend;

typedef struct rworker {
    const mproc__net *net;
    mproc__os_mutex *net_mu;   /* one thread in the layer at a time (MPI_THREAD_SERIALIZED) */
    wsend *sends;              /* in flight (under net_mu) */
    uint64_t sent_ms;          /* last send (under net_mu) */
    mproc__os_mutex *mu;
    mproc__os_cond *cond;      /* work for the runner, output for the main thread */
    inmsg *head, *tail;        /* under mu */
    uint64_t session;          /* the live session, 0: none (under mu) */
    int quit, running;         /* under mu */
    int peer_lost;             /* EXIT said a rank was lost */
    unsigned char *out;        /* records for rank 0 after an 8-byte session (under mu) */
    size_t out_len, out_cap;
    /* the runner's own */
    mproc__pool_fntab fns;
    unsigned char *scratch, *res; /* items (aligned copy) and results of a unit */
    size_t scratch_cap, res_cap;
} rworker;

/* ---- the runner's side ------------------------------------------------------------- */
static int grow(unsigned char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 1;
    unsigned char *q = realloc(*p, need);
    if (!q) return 0;
    *p = q;
    *cap = need;
    return 1;
}

/* Queues a record (header + up to two payload parts) for rank 0 if its
   session is still the live one. */
static int emit(rworker *w, uint64_t session, const mproc__pool_msg *m, const void *p1, size_t n1,
                const void *p2, size_t n2)
{
    int rc = 0;
    mproc__os_mutex_lock(w->mu);
    if (session == w->session) {
        size_t at = w->out_len ? w->out_len : 8;
        if (!grow(&w->out, &w->out_cap, at + MPROC__POOL_HDR + n1 + n2)) {
            rc = MPROC_ENOMEM;
        } else {
            if (!w->out_len) mproc__put_u64(w->out, session);
            mproc__pool_msg_encode(m, w->out + at);
            if (n1) memcpy(w->out + at + MPROC__POOL_HDR, p1, n1);
            if (n2) memcpy(w->out + at + MPROC__POOL_HDR + n1, p2, n2);
            w->out_len = at + MPROC__POOL_HDR + n1 + n2;
            mproc__os_cond_broadcast(w->cond);
        }
    }
    mproc__os_mutex_unlock(w->mu);
    return rc;
}

typedef struct run_ctx {
    rworker *w;
    uint64_t session;
    int stop;
    uint64_t reported_at_start; /* mproc__pool_task_reported() as the unit began */
} run_ctx;

/* 1 while the runner's work still matters to rank 0 (session live, no
   EXIT). Under net_mu; takes mu. */
static int still_wanted(rworker *w, uint64_t session)
{
    mproc__os_mutex_lock(w->mu);
    int yes = !w->quit && w->session == session;
    mproc__os_mutex_unlock(w->mu);
    return yes;
}

/* Hands the queued output to the layer; 1 if something was sent. The
   runner passes its session: it then waits until the message has left
   (rank 0 is receiving), so a unit's completion is out of this process
   before the next unit starts -- if that one kills the rank, the oldest
   unit rank 0 has not heard of is the one that was running (the coarse
   death of pool_transport.h). The main thread (heartbeats) passes 0. */
static int send_out(rworker *w, uint64_t wait_session)
{
    const mproc__net *n = w->net;
    unsigned char *buf = NULL;
    size_t len = 0;
    mproc__os_mutex_lock(w->net_mu);
    mproc__os_mutex_lock(w->mu);
    if (w->out_len) {
        buf = w->out;
        len = w->out_len;
        w->out = NULL;
        w->out_len = w->out_cap = 0;
    }
    mproc__os_mutex_unlock(w->mu);
    wsend *s = buf ? malloc(sizeof *s) : NULL;
    if (buf && (!s || n->isend(n->ctx, 0, MPROC__NET_DATA, buf, len, &s->req))) {
        free(s);
        free(buf); /* lost: rank 0 will find this rank silent */
        buf = NULL;
        s = NULL;
    }
    if (s) {
        s->buf = buf;
        w->sent_ms = mproc__os_now_ms();
        int done = 0;
        while (wait_session && !(done = n->test(n->ctx, s->req) != 0) && still_wanted(w, wait_session)) {
            mproc__os_mutex_unlock(w->net_mu);
            mproc__os_yield();
            mproc__os_mutex_lock(w->net_mu);
        }
        if (done) {
            free(s->buf);
            free(s);
        } else {
            s->next = w->sends; /* the main thread sees it through */
            w->sends = s;
        }
    }
    mproc__os_mutex_unlock(w->net_mu);
    return buf != NULL;
}

/* A unit's completion, with the sub-items its tasks reported
   (mproc_task_progress): rank 0 counts them only now. */
static int done_record(run_ctx *c, uint64_t seq, int code, const char *msg, const void *res,
                       size_t res_len, uint64_t t0_ns)
{
    mproc__pool_msg m = {0};
    uint64_t us = (mproc__os_now_ns() - t0_ns) / 1000;
    size_t mlen = msg ? strlen(msg) : 0;
    m.type = MPROC__R_DONE;
    m.seq = seq;
    m.code = code;
    m.total = res_len;
    m.off = mproc__pool_task_reported() - c->reported_at_start;
    m.len = (uint32_t)mlen;
    m.b = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    int rc = emit(c->w, c->session, &m, res, res_len, msg, mlen);
    if (!rc) send_out(c->w, c->session);
    return rc;
}

static const char *unresolved = "the function cannot be resolved in the worker (a different program?)";

static int run_map(run_ctx *c, const mproc__pool_rec *r)
{
    rworker *w = c->w;
    char msg[256];
    int err;
    mproc_map_fn fn;
    size_t n = r->m.len, isz = r->m.a, rsz = r->m.b;
    uint64_t t0 = mproc__os_now_ns();
    void *addr;
    c->reported_at_start = mproc__pool_task_reported();
    if (!n || !isz) return MPROC_EPROTO;
    if ((err = mproc__pool_fntab_lookup(&w->fns, r->m.fn, &addr)))
        return done_record(c, r->m.seq, err, unresolved, NULL, 0, t0);
    /* Items in the message are not aligned for their type: a copy is. */
    if (!grow(&w->scratch, &w->scratch_cap, n * isz) || !grow(&w->res, &w->res_cap, n * rsz + 1))
        return done_record(c, r->m.seq, MPROC_ENOMEM, "out of memory in the worker", NULL, 0, t0);
    memcpy(w->scratch, r->payload, n * isz);
    memset(w->res, 0, n * rsz);
    memcpy(&fn, &addr, sizeof fn);
    for (size_t i = 0; i < n; i++) {
        if (!mproc__pool_call_item(fn, w->scratch + i * isz, w->res + i * rsz, msg, sizeof msg))
            continue;
        mproc__pool_msg m = {0};
        m.type = MPROC__R_ITEMFAIL;
        m.seq = r->m.seq;
        m.a = (uint32_t)i;
        m.code = MPROC_ETASK;
        m.len = (uint32_t)strlen(msg);
        int rc = emit(w, c->session, &m, msg, m.len, NULL, 0);
        if (rc) return rc;
    }
    return done_record(c, r->m.seq, 0, NULL, w->res, n * rsz, t0);
}

static int run_apply(run_ctx *c, const mproc__pool_rec *r)
{
    rworker *w = c->w;
    char msg[256];
    int err;
    mproc_task_fn fn;
    const unsigned char *out, *in = r->payload;
    size_t out_len;
    uint64_t t0 = mproc__os_now_ns();
    void *addr;
    c->reported_at_start = mproc__pool_task_reported();
    if ((err = mproc__pool_fntab_lookup(&w->fns, r->m.fn, &addr)))
        return done_record(c, r->m.seq, err, unresolved, NULL, 0, t0);
    if ((uintptr_t)in % 16) {
        if (!grow(&w->scratch, &w->scratch_cap, r->payload_len + 1))
            return done_record(c, r->m.seq, MPROC_ENOMEM, "out of memory in the worker", NULL, 0, t0);
        memcpy(w->scratch, in, r->payload_len);
        in = w->scratch;
    }
    memcpy(&fn, &addr, sizeof fn);
    if (mproc__pool_call_task(fn, in, r->payload_len, &out, &out_len, msg, sizeof msg))
        return done_record(c, r->m.seq, MPROC_ETASK, msg, NULL, 0, t0);
    return done_record(c, r->m.seq, 0, NULL, out, out_len, t0);
}

static int on_record(void *ctx, const mproc__pool_rec *r)
{
    run_ctx *c = ctx;
    mproc__pool_msg bye = {0};
    if (c->stop) return MPROC_EPROTO; /* nothing may follow a stop */
    switch (r->m.type) {
    case MPROC__T_DEFINE: return mproc__pool_fntab_define(&c->w->fns, r);
    case MPROC__T_MAPDATA: return run_map(c, r);
    case MPROC__T_APPLY: return run_apply(c, r);
    case MPROC__T_STOP:
        c->stop = 1;
        bye.type = MPROC__R_BYE;
        return emit(c->w, c->session, &bye, NULL, 0, NULL, 0);
    default: return MPROC_EPROTO;
    }
}

/* A new session: forget the last one's functions, run the initializer,
   say ready (pid and machine, so rank 0 can watch a rank of its own
   machine) or bye with what the initializer returned. */
static void run_hello(rworker *w, const inmsg *m)
{
    mproc__pool_msg rec = {0};
    int code = 0;
    mproc__pool_fntab_forget(&w->fns);
    size_t fnlen = m->len >= 16 ? mproc__get_u32(m->buf + 12) : SIZE_MAX;
    if (fnlen == SIZE_MAX || fnlen > m->len - 16) {
        code = MPROC_EXIT_BOOTSTRAP;
    } else if (mproc__get_u32(m->buf + 8)) {
        mproc__fnref ref;
        void *addr = NULL;
        mproc_target init;
        int rc = mproc__pool_fnref_decode(m->buf + 16, fnlen, &ref);
        if (!rc) rc = mproc__fnref_resolve(&ref, &addr);
        if (rc) {
            fprintf(stderr, "mproc: pool initializer cannot be resolved: %s\n", mproc_strerror(rc));
            code = MPROC_EXIT_BOOTSTRAP;
        } else {
            size_t alen = m->len - 16 - fnlen;
            unsigned char *arg = malloc(alen + 1); /* aligned, as a child's argument is */
            memcpy(&init, &addr, sizeof init);
            if (!arg) {
                code = 1;
            } else {
                memcpy(arg, m->buf + 16 + fnlen, alen);
                code = init(alen ? arg : NULL, alen);
                free(arg);
            }
            if (code) fprintf(stderr, "mproc: pool initializer failed (returned %d)\n", code);
        }
    }
    if (code) {
        rec.type = MPROC__R_BYE;
        rec.code = code;
        emit(w, m->session, &rec, NULL, 0, NULL, 0);
        return;
    }
    rec.type = MPROC__R_READY;
    rec.seq = (uint64_t)mproc__os_getpid();
    rec.len = (uint32_t)strlen(w->net->node);
    emit(w, m->session, &rec, w->net->node, rec.len, NULL, 0);
}

static void runner(void *arg)
{
    rworker *w = arg;
    mproc__os_mutex_lock(w->mu);
    for (;;) {
        while (!w->head && !w->quit) mproc__os_cond_wait(w->cond, w->mu, MPROC_FOREVER);
        inmsg *m = w->head;
        if (!m) break;
        w->head = m->next;
        if (!w->head) w->tail = NULL;
        if (m->session == w->session) {
            w->running = 1;
            mproc__os_mutex_unlock(w->mu);
            if (m->tag == MPROC__NET_HELLO) {
                run_hello(w, m);
            } else {
                run_ctx c = {w, m->session, 0, 0};
                int rc = mproc__pool_read_batch(m->buf + 8, m->len - 8, 1, on_record, &c);
                if (rc) fprintf(stderr, "mproc: MPI worker: bad units from rank 0: %s\n", mproc_strerror(rc));
            }
            send_out(w, 0); /* ready, bye, or what is left */
            mproc__os_mutex_lock(w->mu);
            w->running = 0;
            mproc__os_cond_broadcast(w->cond);
        }
        free(m->buf);
        free(m);
    }
    mproc__os_mutex_unlock(w->mu);
}

/* ---- the main thread: messages ---------------------------------------------------------- */
/* Drops the queued units (they belong to a session that ended). Under mu. */
static void drop_queue(rworker *w)
{
    while (w->head) {
        inmsg *m = w->head;
        w->head = m->next;
        free(m->buf);
        free(m);
    }
    w->tail = NULL;
    w->out_len = 0;
}

/* One message from rank 0 (buf handed over). */
static void handle(rworker *w, int tag, unsigned char *buf, size_t len)
{
    uint64_t session = len >= 8 ? mproc__get_u64(buf) : 0;
    inmsg *m = NULL;
    mproc__os_mutex_lock(w->mu);
    if (tag == MPROC__NET_HELLO && len >= 16) {
        drop_queue(w);
        w->session = session;
    } else if ((tag == MPROC__NET_ABORT && session == w->session) || tag == MPROC__NET_EXIT) {
        drop_queue(w);
        w->session = 0;
        w->quit |= tag == MPROC__NET_EXIT;
        w->peer_lost |= tag == MPROC__NET_EXIT && session;
        mproc__os_cond_broadcast(w->cond);
    }
    if ((tag == MPROC__NET_HELLO || tag == MPROC__NET_DATA) && len >= 8 && session == w->session &&
        session && (m = malloc(sizeof *m))) {
        m->next = NULL;
        m->tag = tag;
        m->session = session;
        m->buf = buf;
        m->len = len;
        if (w->tail) w->tail->next = m;
        else w->head = m;
        w->tail = m;
        mproc__os_cond_broadcast(w->cond);
    }
    mproc__os_mutex_unlock(w->mu);
    if (!m) free(buf);
}

/* A receive from rank 0 in progress (main thread only). */
typedef struct inbound {
    void *req;
    unsigned char *buf;
    size_t len;
    int tag;
} inbound;

/* Moves the receive from rank 0 on: 1 if a message arrived whole (and was
   handled), 0 if none yet, or an error. A large one takes many calls, and
   the heartbeat goes on in between. */
static int receive_some(rworker *w, inbound *in)
{
    const mproc__net *n = w->net;
    void *msg;
    int rc = 0;
    mproc__os_mutex_lock(w->net_mu);
    if (!in->req) {
        rc = n->probe(n->ctx, 0, &in->tag, &in->len, &msg);
        if (rc == 1) {
            in->buf = malloc(in->len ? in->len : 1);
            rc = in->buf ? n->irecv(n->ctx, msg, in->buf, in->len, &in->req) : MPROC_ENOMEM;
        }
    }
    if (in->req && !rc) rc = n->test(n->ctx, in->req);
    mproc__os_mutex_unlock(w->net_mu);
    if (rc == 0) return 0;
    unsigned char *buf = in->buf;
    in->req = NULL;
    in->buf = NULL;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    handle(w, in->tag, buf, in->len);
    return 1;
}

/* A heartbeat while nothing else went out for HEARTBEAT_MS, and the
   sends in flight moved on. */
static void keep_alive(rworker *w)
{
    mproc__pool_msg alive = {0};
    mproc__os_mutex_lock(w->mu);
    uint64_t session = w->session;
    mproc__os_mutex_unlock(w->mu);
    mproc__os_mutex_lock(w->net_mu);
    int due = session && mproc__os_now_ms() - w->sent_ms >= HEARTBEAT_MS;
    for (wsend **pp = &w->sends; *pp;) {
        wsend *s = *pp;
        if (w->net->test(w->net->ctx, s->req) == 0) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free(s->buf);
        free(s);
    }
    mproc__os_mutex_unlock(w->net_mu);
    if (!due) return;
    alive.type = MPROC__R_ALIVE;
    emit(w, session, &alive, NULL, 0, NULL, 0);
    send_out(w, 0);
}

int mproc__pool_remote_worker(const mproc__net *net)
{
    static rworker w;
    mproc__os_thread *th = NULL;
    uint64_t active_ns = 0;
    inbound in = {NULL, NULL, 0, 0};
    w.net = net;
    int rc = mproc__os_mutex_create(&w.mu);
    if (!rc) rc = mproc__os_mutex_create(&w.net_mu);
    if (!rc) rc = mproc__os_cond_create(&w.cond);
    if (!rc) rc = mproc__os_thread_start(&th, runner, &w);
    if (rc) return rc;
    for (;;) {
        rc = receive_some(&w, &in);
        if (rc < 0) break;
        int busy = rc == 1 || in.req; /* a message on its way: keep polling */
        keep_alive(&w);
        uint64_t now = mproc__os_now_ns();
        if (busy) active_ns = now;
        mproc__os_mutex_lock(w.mu);
        int quit = w.quit, spin = !w.running && now - active_ns < SPIN_NS;
        if (!busy && !spin && !quit) mproc__os_cond_wait(w.cond, w.mu, 1);
        mproc__os_mutex_unlock(w.mu);
        if (quit) break;
        if (!busy && spin) mproc__os_yield();
    }
    mproc__os_mutex_lock(w.mu);
    w.quit = 1;
    drop_queue(&w);
    mproc__os_cond_broadcast(w.cond);
    mproc__os_mutex_unlock(w.mu);
    mproc__os_thread_join(th); /* after the task it may be running */
    /* Sends rank 0 will no longer receive are left to MPI_Finalize. */
    return rc < 0 ? rc : w.peer_lost ? MPROC_ECHILD : 0;
}
