/* Pool worker slots: starting a worker, handing it units (the pump), its
   reader thread, and what happens when it dies. A slot is a place for one
   worker; its thread outlives the worker and starts the replacement. */
#include "pool.h"
#include "process.h"

#include <stdio.h>

#define RBUF (64 * 1024)
#define BATCH_CAP (MPROC__POOL_PIPE_BUDGET + 2 * MPROC__POOL_HDR + MPROC__FNREF_WIRE_MAX)
#define SLOW_UNIT_MS 2  /* units slower than this: keep only two in flight */
#define START_WINDOW 2

void mproc__pool_wake(mproc_pool *pool)
{
    if (pool->waiters) mproc__os_cond_broadcast(pool->cond);
}

/* ---- set-up ------------------------------------------------------------------ */
int mproc__pool_slot_init(pool_slot *s)
{
    void *mem;
    size_t size = MPROC__POOL_STATUS_BYTES + s->ring_cap;
    s->task_w = s->result_r = s->shm = MPROC__NO_HANDLE;
    s->state = SLOT_DONE;
    int rc = mproc__os_anon_shm_create(size, &s->shm);
    if (!rc) rc = mproc__os_map(s->shm, size, 1, &mem);
    if (rc) return rc;
    s->mem = mem;
    s->st = mem;
    s->ring = s->mem + MPROC__POOL_STATUS_BYTES;
    s->batch = malloc(BATCH_CAP);
    s->rbuf = malloc(RBUF);
    return s->batch && s->rbuf ? 0 : MPROC_ENOMEM;
}

void mproc__pool_slot_free(pool_slot *s)
{
    if (!s->pool) return; /* never initialised */
    if (s->mem) mproc__os_unmap(s->mem, MPROC__POOL_STATUS_BYTES + s->ring_cap);
    if (s->shm != MPROC__NO_HANDLE) mproc__os_close(s->shm);
    if (s->task_w != MPROC__NO_HANDLE) mproc__os_close(s->task_w);
    if (s->result_r != MPROC__NO_HANDLE) mproc__os_close(s->result_r);
    mproc_process_destroy(s->proc);
    free(s->batch);
    free(s->rbuf);
    free(s->known);
}

/* ---- starting a worker --------------------------------------------------------- */
/* The worker's argument: configuration, a ref to its channels, initarg
   (whose own refs the core's scan hands to the worker as well). */
static unsigned char *worker_arg(pool_slot *s, const mproc_ref *chan, size_t *len)
{
    mproc_pool *pool = s->pool;
    mproc__pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.magic = MPROC__POOL_MAGIC;
    cfg.version = MPROC__POOL_VERSION;
    cfg.slot = (uint32_t)s->index;
    cfg.maxtasks = (uint32_t)pool->opt.maxtasksperchild;
    cfg.ring_cap = s->ring_cap;
    cfg.parent_pid = mproc__os_getpid();
    cfg.watch_parent = pool->opt.method == MPROC_FORK;
    cfg.has_init = (uint32_t)pool->has_init;
    cfg.init = pool->init_ref;
    cfg.chan = *chan;
    cfg.initarg_len = pool->opt.initarg_len;
    *len = sizeof cfg + pool->opt.initarg_len;
    unsigned char *arg = malloc(*len);
    if (!arg) return NULL;
    memcpy(arg, &cfg, sizeof cfg);
    if (pool->opt.initarg_len) memcpy(arg + sizeof cfg, pool->initarg, pool->opt.initarg_len);
    return arg;
}

static int spawn_worker(pool_slot *s, const mproc_ref *chan, mproc_process **p)
{
    char name[32];
    size_t len;
    mproc_process_options popt = {name, 1, s->pool->opt.method};
    snprintf(name, sizeof name, "PoolWorker-%d", s->index + 1);
    unsigned char *arg = worker_arg(s, chan, &len);
    if (!arg) return MPROC_ENOMEM;
    int rc = mproc_process_create(p, mproc__pool_worker_main, arg, len, &popt);
    free(arg);
    if (!rc && (rc = mproc_process_start(*p))) {
        mproc_process_destroy(*p);
        *p = NULL;
    }
    return rc;
}

static void reset_slot(pool_slot *s)
{
    memset(s->mem, 0, MPROC__POOL_STATUS_BYTES);
    s->ring_tail = s->u_first = s->u_count = 0;
    s->batch_len = s->pipe_bytes = 0;
    s->tasks_sent = 0;
    s->ready = s->stop_sent = s->timed_out = s->proto_error = 0;
    s->win = START_WINDOW;
    s->stream = NULL;
    s->seen_ticks = 0;
    s->seen_since_ms = mproc__os_now_ms();
    if (s->known) memset(s->known, 0, s->known_cap);
}

static int start_unlocked(pool_slot *s)
{
    mproc__handle task_r, task_w, res_r, res_w;
    mproc__entry e;
    mproc_ref chan;
    mproc_process *p = NULL;
    int rc = mproc__os_pipe(&task_r, &task_w);
    if (rc) return rc;
    if ((rc = mproc__os_pipe(&res_r, &res_w))) {
        mproc__os_close(task_r);
        mproc__os_close(task_w);
        return rc;
    }
    memset(&e, 0, sizeof e);
    e.kind = MPROC__KIND_POOLCHAN;
    e.nhandles = 3;
    e.handles[0] = task_r;
    e.handles[1] = res_w;
    e.handles[2] = s->shm;
    reset_slot(s);
    rc = mproc__objid_new(&e.id);
    if (!rc) rc = mproc__registry_add(&e);
    if (!rc) {
        mproc__ref_make(MPROC__KIND_POOLCHAN, &e.id, e.info, &chan);
        rc = spawn_worker(s, &chan, &p);
        mproc__registry_remove(&e.id);
    }
    /* The worker has its own copies now; ours would hide its death (EOF). */
    mproc__os_close(task_r);
    mproc__os_close(res_w);
    if (rc) {
        mproc__os_close(task_w);
        mproc__os_close(res_r);
        return rc;
    }
    s->proc = p;
    s->pid = mproc_process_pid(p);
    s->proc_h = mproc__process_wait_handle(p);
    s->task_w = task_w;
    s->result_r = res_r;
    return 0;
}

/* Without the pool's lock: only this slot's starter touches its handles
   while the slot is SLOT_STARTING. With fork, one start at a time per
   pool: a worker forked while another slot's fresh pipe ends are open
   would inherit them, and that slot would never see its worker's EOF. */
int mproc__pool_slot_start(pool_slot *s)
{
    int serial = s->pool->opt.method == MPROC_FORK;
    if (serial) mproc__os_mutex_lock(s->pool->fork_mu);
    int rc = start_unlocked(s);
    if (serial) mproc__os_mutex_unlock(s->pool->fork_mu);
    return rc;
}

/* ---- ring ---------------------------------------------------------------------- */
/* Units are released in the order they were allocated (a worker runs its
   units in order), so the ring is a FIFO of contiguous blocks. */
int mproc__pool_ring_alloc(pool_slot *s, size_t len, size_t *off)
{
    len = (len + 63) & ~(size_t)63;
    if (!len) len = 64;
    if (!s->u_count) s->ring_tail = 0;
    size_t head = s->u_count ? s->units[s->u_first].ring_off : 0, tail = s->ring_tail;
    if (s->u_count && tail <= head && tail + len < head) {
        *off = tail;                        /* wrapped: room before the head */
    } else if (!s->u_count || tail > head) {
        if (tail + len <= s->ring_cap) *off = tail;
        else if (len < head) *off = 0;      /* wrap around */
        else return 0;
    } else {
        return 0;
    }
    s->ring_tail = *off + len;
    return 1;
}

/* ---- dispatch --------------------------------------------------------------- */
/* How many units a worker may hold: it starts at two (one running, one
   waiting) and doubles with every quick unit up to the full window, like
   TCP's slow start; a slow unit sets it back to two. Short units thus get
   deep pipelining, while a short list of long tasks is spread over all
   workers instead of being queued behind the first one. */
static size_t window(const pool_slot *s) { return s->win; }

static void batch_put(pool_slot *s, const mproc__pool_msg *m)
{
    mproc__pool_msg_encode(m, s->batch + s->batch_len);
    s->batch_len += MPROC__POOL_HDR;
}

/* Tells the worker what function id fn means, once per worker. */
static void define_if_new(pool_slot *s, uint32_t fn)
{
    unsigned char payload[MPROC__FNREF_WIRE_MAX];
    if (fn < s->known_cap && s->known[fn]) return;
    if (fn >= s->known_cap) {
        size_t cap = (size_t)fn + 16;
        unsigned char *k = realloc(s->known, cap);
        if (k) {
            memset(k + s->known_cap, 0, cap - s->known_cap);
            s->known = k;
            s->known_cap = cap;
        } /* else: sent without being remembered; sending it again is harmless */
    }
    mproc__pool_msg m = {0};
    m.type = MPROC__T_DEFINE;
    m.fn = fn;
    m.len = (uint32_t)mproc__pool_fnref_encode(&s->pool->fns[fn].ref, payload);
    batch_put(s, &m);
    memcpy(s->batch + s->batch_len, payload, m.len);
    s->batch_len += m.len;
    if (fn < s->known_cap) s->known[fn] = 1;
}

static void describe_unit(const pool_unit *u, mproc__pool_msg *m)
{
    const pool_job *job = u->job;
    memset(m, 0, sizeof *m);
    m->fn = job->fn;
    m->seq = u->seq;
    m->off = u->ring_off;
    if (u->piece) {
        m->type = MPROC__T_PIECE;
        m->len = (uint32_t)u->n;
        m->a = (u->lo == 0 ? MPROC__PIECE_FIRST : 0) | (u->final ? MPROC__PIECE_FINAL : 0);
        m->total = job->in_len;
    } else {
        m->type = MPROC__T_MAP;
        m->len = (uint32_t)u->n;
        m->a = (uint32_t)job->isz;
        m->b = (uint32_t)job->rsz;
    }
}

/* Hands one more unit to s; 0 when it cannot take one now. The pipe budget
   keeps every write below the pipe's capacity, so writing with the lock
   held never blocks on a worker that is itself waiting for us. */
static int give_one(pool_slot *s)
{
    mproc_pool *pool = s->pool;
    if (s->state != SLOT_RUNNING || s->stop_sent || s->u_count >= window(s)) return 0;
    if (s->pipe_bytes + s->batch_len + 2 * MPROC__POOL_HDR + MPROC__FNREF_WIRE_MAX >
        MPROC__POOL_PIPE_BUDGET)
        return 0;
    if (pool->opt.maxtasksperchild && !s->stream &&
        s->tasks_sent >= (unsigned)pool->opt.maxtasksperchild)
        return 0;
    pool_unit *u = &s->units[(s->u_first + s->u_count) % MPROC__POOL_WINDOW];
    memset(u, 0, sizeof *u);
    if (!mproc__pool_next_unit(s, u)) return 0;
    size_t before = s->batch_len;
    mproc__pool_msg m;
    u->seq = ++s->next_seq;
    define_if_new(s, u->job->fn);
    describe_unit(u, &m);
    batch_put(s, &m);
    u->wire_bytes = s->batch_len - before;
    s->u_count++;
    if (!u->piece || u->lo == 0) s->tasks_sent++;
    return 1;
}

static void send_batch(pool_slot *s)
{
    mproc_pool *pool = s->pool;
    if (s->state != SLOT_RUNNING) return; /* a starting slot belongs to its thread */
    if (pool->closed && !s->stop_sent && !s->u_count && !s->stream && !pool->qhead) {
        mproc__pool_msg m = {0};
        m.type = MPROC__T_STOP;
        batch_put(s, &m);
        s->stop_sent = 1;
    }
    if (!s->batch_len) return;
    int rc = mproc__os_write_all(s->task_w, s->batch, s->batch_len);
    s->pipe_bytes += s->batch_len;
    s->batch_len = 0;
    /* A worker that cannot be written to is dead or broken: make sure it
       is gone, its reader thread then sorts out its units. */
    if (rc) mproc_process_kill(s->proc);
}

void mproc__pool_pump_slot(pool_slot *s)
{
    while (give_one(s)) {}
    send_batch(s);
}

/* How many units s holds, or SIZE_MAX if it cannot take one now. */
static size_t load_of(const pool_slot *s)
{
    if (s->state != SLOT_RUNNING || s->stop_sent || s->u_count >= window(s)) return SIZE_MAX;
    return s->u_count;
}

/* The worker that will start a new unit soonest among those not yet tried
   in this pump: an idle one first, then the one holding the fewest units,
   whatever each one's window. Equal ones take turns from where the last
   choice left off. NULL if none can take a unit. */
static pool_slot *soonest(mproc_pool *pool, const unsigned char *tried)
{
    pool_slot *best = NULL;
    size_t best_load = SIZE_MAX;
    for (int k = 0; k < pool->nslots; k++) {
        int i = (pool->turn + k) % pool->nslots;
        size_t load = tried[i] ? SIZE_MAX : load_of(&pool->slots[i]);
        if (load < best_load) {
            best = &pool->slots[i];
            best_load = load;
        }
    }
    return best;
}

/* Hands out queued work one unit at a time, each to the worker that will
   start it soonest; a worker that cannot take the next unit (its ring or
   pipe budget is full, or it is due to retire) is not asked again in this
   pump. Then every batch goes out. */
void mproc__pool_pump_all(mproc_pool *pool)
{
    unsigned char small[64], *tried = small;
    if (pool->nslots > (int)sizeof small && !(tried = malloc((size_t)pool->nslots))) tried = NULL;
    if (tried) {
        memset(tried, 0, (size_t)pool->nslots);
        pool_slot *s;
        while ((s = soonest(pool, tried))) {
            if (give_one(s)) pool->turn = (s->index + 1) % pool->nslots;
            else tried[s->index] = 1;
        }
        if (tried != small) free(tried);
    } else {
        for (int i = 0; i < pool->nslots; i++) mproc__pool_pump_slot(&pool->slots[i]);
    }
    for (int i = 0; i < pool->nslots; i++) send_batch(&pool->slots[i]);
}

/* ---- the reader thread: completions ------------------------------------------- */
static void protocol_error(pool_slot *s)
{
    /* Corrupt data from a worker: it is killed and treated as dead. */
    if (!s->proto_error && s->state == SLOT_RUNNING) mproc_process_kill(s->proc);
    s->proto_error = 1;
}

static pool_unit *unit_by_seq(pool_slot *s, uint64_t seq)
{
    for (size_t i = 0; i < s->u_count; i++) {
        pool_unit *u = &s->units[(s->u_first + i) % MPROC__POOL_WINDOW];
        if (u->seq == seq) return u;
    }
    return NULL;
}

static void copy_message(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* took_us: how long the worker ran it (from its completion message). */
static void pop_unit(pool_slot *s, uint32_t took_us)
{
    pool_unit *u = &s->units[s->u_first];
    s->pipe_bytes -= u->wire_bytes;
    free(u->fails);
    u->fails = NULL;
    s->u_first = (s->u_first + 1) % MPROC__POOL_WINDOW;
    s->u_count--;
    if (took_us > SLOW_UNIT_MS * 1000) s->win = START_WINDOW;
    else if (s->win < MPROC__POOL_WINDOW) s->win *= 2;
}

static void on_done(pool_slot *s, const mproc__pool_msg *m, const unsigned char *payload,
                    unsigned char *owned)
{
    char msg[256];
    unsigned char *out = NULL;
    pool_unit *u = s->u_count ? &s->units[s->u_first] : NULL;
    if (!u || u->seq != m->seq || m->code > 0 || m->code < -100) {
        free(owned);
        protocol_error(s);
        return;
    }
    copy_message(msg, sizeof msg, payload + m->total, m->len);
    if (m->code == 0 && m->total) {
        out = owned ? owned : malloc((size_t)m->total);
        if (out && !owned) memcpy(out, payload, (size_t)m->total);
        owned = NULL;
    }
    free(owned);
    int code = m->code;
    if (m->code == 0 && m->total && !out) {
        code = MPROC_ENOMEM;
        snprintf(msg, sizeof msg, "out of memory for a %llu-byte result",
                 (unsigned long long)m->total);
    }
    mproc__pool_unit_done(s, u, code, msg, out, out ? (size_t)m->total : 0);
    pop_unit(s, m->b);
}

static void handle_msg(pool_slot *s, const mproc__pool_msg *m, const unsigned char *payload,
                       unsigned char *owned)
{
    char msg[256];
    if (s->proto_error) {
        free(owned);
        return;
    }
    if (m->type == MPROC__R_DONE) {
        on_done(s, m, payload, owned);
        return;
    }
    free(owned);
    if (m->type == MPROC__R_READY) {
        s->ready = 1;
        s->start_failures = 0;
    } else if (m->type == MPROC__R_ITEMFAIL) {
        pool_unit *u = unit_by_seq(s, m->seq);
        if (!u || u->piece || m->a >= u->n) {
            protocol_error(s);
            return;
        }
        copy_message(msg, sizeof msg, payload, m->len);
        mproc__pool_item_failed(s, u, m->a, MPROC_ETASK, msg);
    } else {
        protocol_error(s);
    }
}

/* Payload bytes after a worker's header, or SIZE_MAX if it is malformed. */
static size_t payload_len(const mproc__pool_msg *m)
{
    if (m->len > 65536) return SIZE_MAX;
    if (m->type == MPROC__R_READY) return 0;
    if (m->type == MPROC__R_ITEMFAIL) return m->len;
    if (m->type == MPROC__R_DONE && m->total < SIZE_MAX / 2) return (size_t)m->total + m->len;
    return SIZE_MAX;
}

/* A payload larger than the buffer (a big apply result) goes straight into
   its own allocation, which then becomes the caller's result. */
static int read_big(pool_slot *s, size_t start, size_t end, size_t plen, unsigned char **out)
{
    size_t have = end - start - MPROC__POOL_HDR;
    unsigned char *buf = malloc(plen);
    if (!buf) return MPROC_ENOMEM;
    memcpy(buf, s->rbuf + start + MPROC__POOL_HDR, have);
    while (have < plen) {
        size_t got;
        int rc = mproc__os_read_some_or_exit(s->result_r, s->proc_h, buf + have, plen - have, &got);
        if (rc) {
            free(buf);
            return rc;
        }
        have += got;
    }
    *out = buf;
    return 0;
}

/* Completions are applied in batches: the lock is taken at the first
   message of a batch and given up (after handing this worker more work)
   before anything that may block. */
static void begin_batch(pool_slot *s, int *locked)
{
    if (!*locked) mproc__os_mutex_lock(s->pool->mu);
    *locked = 1;
}

static void end_batch(pool_slot *s, int *locked)
{
    if (!*locked) return;
    mproc__pool_pump_all(s->pool); /* an idle worker may be first in line */
    mproc__os_mutex_unlock(s->pool->mu);
    *locked = 0;
}

/* Reads and applies completions until the worker's end of stream. */
static void serve_results(pool_slot *s)
{
    size_t start = 0, end = 0, got;
    int locked = 0;
    for (;;) {
        mproc__pool_msg m;
        if (end - start >= MPROC__POOL_HDR) {
            mproc__pool_msg_decode(s->rbuf + start, &m);
            size_t plen = payload_len(&m);
            if (plen == SIZE_MAX) {
                begin_batch(s, &locked);
                protocol_error(s);
                break;
            }
            if (MPROC__POOL_HDR + plen <= end - start) {
                begin_batch(s, &locked);
                handle_msg(s, &m, s->rbuf + start + MPROC__POOL_HDR, NULL);
                start += MPROC__POOL_HDR + plen;
                continue;
            }
            if (MPROC__POOL_HDR + plen > RBUF) {
                unsigned char *big;
                end_batch(s, &locked);
                if (read_big(s, start, end, plen, &big)) break;
                start = end = 0;
                begin_batch(s, &locked);
                handle_msg(s, &m, big, big);
                continue;
            }
        }
        end_batch(s, &locked);
        memmove(s->rbuf, s->rbuf + start, end - start);
        end -= start;
        start = 0;
        if (mproc__os_read_some_or_exit(s->result_r, s->proc_h, s->rbuf + end, RBUF - end, &got))
            break;
        end += got;
    }
    if (locked) mproc__os_mutex_unlock(s->pool->mu);
}

/* ---- a worker ended ------------------------------------------------------------- */
static void describe_end(const pool_slot *s, int code, char *buf, size_t cap)
{
    if (code < 0)
        snprintf(buf, cap, "worker %d (pid %lld) was killed by signal %d", s->index + 1,
                 (long long)s->pid, -code);
    else if (code > 255)
        snprintf(buf, cap, "worker %d (pid %lld) ended with status 0x%08X", s->index + 1,
                 (long long)s->pid, (unsigned)code);
    else
        snprintf(buf, cap, "worker %d (pid %lld) exited with code %d", s->index + 1,
                 (long long)s->pid, code);
}

/* Waits for the process after its pipe closed. A worker that closed the
   pipe but lingers is killed: nothing it does can reach us any more. */
static int reap(pool_slot *s)
{
    int code = 0;
    if (mproc_process_join(s->proc, 5000) == MPROC_ETIMEDOUT) {
        mproc_process_kill(s->proc);
        mproc_process_join(s->proc, MPROC_FOREVER);
    }
    if (mproc_process_exitcode(s->proc, &code)) code = -9;
    return code;
}

/* Every unit the dead worker held, in order, against what its status block
   says it was doing (see pool.h). */
static void settle_units(pool_slot *s, const char *how)
{
    char msg[256];
    uint64_t seq = s->st->seq;
    uint32_t phase = s->st->phase, pos = s->st->pos;
    while (s->u_count) {
        pool_unit *u = &s->units[s->u_first];
        if (u->seq < seq || (u->seq == seq && phase == MPROC__PHASE_FINISHED)) {
            if (u->piece && u->final)
                mproc__pool_unit_died(s, u, 1, 0, MPROC_ECHILD, how);
            else
                mproc__pool_unit_done(s, u, 0, "", NULL, 0);
        } else if (u->seq == seq && phase == MPROC__PHASE_RUNNING) {
            if (!u->piece && pos >= u->n) pos = (uint32_t)(u->n - 1); /* a scribbled block */
            int timed_out = s->timed_out && s->to_seq == seq && s->to_pos == pos;
            if (timed_out)
                snprintf(msg, sizeof msg, "task timed out after %d ms; worker %d (pid %lld) was killed",
                         s->pool->opt.task_timeout_ms, s->index + 1, (long long)s->pid);
            else
                snprintf(msg, sizeof msg, "%s while running this item", how);
            mproc__pool_unit_died(s, u, 1, pos, timed_out ? MPROC_ETIMEDOUT : MPROC_ECHILD, msg);
        } else {
            mproc__pool_unit_died(s, u, 0, 0, 0, NULL);
        }
        free(u->fails);
        u->fails = NULL;
        s->u_first = (s->u_first + 1) % MPROC__POOL_WINDOW;
        s->u_count--;
    }
    if (s->stream) mproc__pool_unit_died(s, NULL, 0, 0, 0, NULL);
    s->pipe_bytes = 0;
}

static int all_slots_done(const mproc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++)
        if (pool->slots[i].state != SLOT_DONE) return 0;
    return 1;
}

/* With the lock: 1 if the slot should start a replacement. */
static int decide_restart(pool_slot *s, int code, const char *how)
{
    mproc_pool *pool = s->pool;
    int work = pool->qhead != NULL;
    if (!s->ready) s->start_failures++;
    if (pool->terminating || (pool->closed && !work)) return 0;
    /* A worker that never got through its initializer three times in a
       row will not: better an error than Python's endless respawning. */
    if (s->start_failures >= 3) {
        if (!pool->broken_error) {
            pool->broken_error = code == MPROC_EXIT_BOOTSTRAP ? MPROC_EBOOTSTRAP : MPROC_ECHILD;
            snprintf(pool->broken_msg, sizeof pool->broken_msg,
                     "workers die before they are ready (initializer?): %s", how);
        }
        return 0;
    }
    return 1;
}

/* The worker is gone: settle its units, then restart or retire the slot.
   Returns 1 if the slot should start a new worker. */
static int worker_ended(pool_slot *s)
{
    mproc_pool *pool = s->pool;
    char how[160];
    mproc__os_mutex_lock(pool->mu);
    s->state = SLOT_EXITING; /* nobody signals or writes to it any more */
    mproc__os_mutex_unlock(pool->mu);
    int code = reap(s);
    describe_end(s, code, how, sizeof how);
    mproc__os_mutex_lock(pool->mu);
    settle_units(s, how);
    int restart = decide_restart(s, code, how);
    s->state = restart ? SLOT_STARTING : SLOT_DONE;
    if (restart) pool->stats.workers_replaced++;
    if (all_slots_done(pool) && pool->qhead)
        mproc__pool_fail_queued(pool, pool->broken_error ? pool->broken_error : MPROC_ECHILD,
                                pool->broken_error ? pool->broken_msg : how);
    mproc__pool_pump_all(pool); /* its units may go to the other workers */
    mproc__pool_wake(pool);
    mproc__os_mutex_unlock(pool->mu);
    mproc_process_destroy(s->proc);
    s->proc = NULL;
    mproc__os_close(s->task_w);
    mproc__os_close(s->result_r);
    s->task_w = s->result_r = MPROC__NO_HANDLE;
    return restart;
}

/* Without the lock. 1 when the replacement runs. */
static int restart_worker(pool_slot *s)
{
    mproc_pool *pool = s->pool;
    int rc = mproc__pool_slot_start(s);
    mproc__os_mutex_lock(pool->mu);
    if (rc) {
        s->state = SLOT_DONE;
        if (!pool->broken_error) {
            pool->broken_error = rc;
            snprintf(pool->broken_msg, sizeof pool->broken_msg,
                     "a replacement worker could not be started: %s", mproc_strerror(rc));
        }
        if (all_slots_done(pool) && pool->qhead)
            mproc__pool_fail_queued(pool, rc, pool->broken_msg);
        mproc__pool_wake(pool);
    } else {
        s->state = SLOT_RUNNING;
        if (pool->terminating) mproc_process_kill(s->proc);
        mproc__pool_pump_slot(s);
    }
    mproc__os_mutex_unlock(pool->mu);
    return rc == 0;
}

/* A slot's life: start its worker unless create did, then serve it and
   replace it until the pool ends. */
void mproc__pool_slot_thread(void *arg)
{
    pool_slot *s = arg;
    mproc_pool *pool = s->pool;
    mproc__os_mutex_lock(pool->mu);
    int started = s->state == SLOT_RUNNING;
    mproc__os_mutex_unlock(pool->mu);
    if (started || restart_worker(s)) {
        do {
            serve_results(s);
        } while (worker_ended(s) && restart_worker(s));
    }
    mproc__os_mutex_lock(pool->mu);
    pool->threads_live--;
    mproc__os_cond_broadcast(pool->cond);
    mproc__os_mutex_unlock(pool->mu);
}
