/* Process objects: create, start (spawn, fork or forkserver), join,
   signal; the start-method rules. */
#include "bootstrap.h"
#include "process.h"
#include "atomic.h"

#include <stdio.h>

enum { ST_CREATED, ST_RUNNING, ST_ENDED };

struct mproc_process {
    /* ST_*: read by any thread that holds the object (a pool kills a worker
       from one thread while another polls it), written by the thread that
       starts it or sees it end: state_of and set_state. */
    volatile uint32_t state;
    mproc_target target;
    mproc__fnref target_ref;
    char name[MPROC__NAME_MAX];
    int daemon;
    mproc_start_method method;
    /* the argument: inline copy, or a shared memory object when large */
    unsigned char *arg;
    size_t arg_len;
    mproc__handle arg_shm;
    void *arg_map;
    /* while running */
    mproc__os_proc *os;
    mproc__handle status_read;  /* child's ack, then end of stream */
    mproc__handle parent_alive; /* daemons: held open while we live */
    int acked;
    int exitcode;
    int bootstrap_failed;
    /* The children list (active_children, join_children, daemons at exit):
       guarded by the global lock, as is busy, which a thread sets while it
       waits on the process so that no two threads reap it at once. */
    struct mproc_process *next_child;
    int busy;
    int status_lost;            /* forkserver died before reporting the end */
    int pid_later;              /* mproc__process_start_pid_later */
};

static int state_of(const mproc_process *p) { return (int)mproc__load32(&p->state); }
static void set_state(mproc_process *p, int state) { mproc__store32(&p->state, (uint32_t)state); }

static char *spawn_exe;                       /* mproc_set_executable */
static volatile uint32_t keep_stdin;          /* mproc_set_keep_stdin */
/* Set by mproc_set_start_method; MPROC_METHOD_DEFAULT until then. */
static mproc_start_method default_method = MPROC_METHOD_DEFAULT;
static unsigned process_counter;
/* Started, not yet destroyed, not known to have ended: this process's
   children. A forked copy of this process inherits the list in memory but
   not the children (Python clears _children in a child too): the list
   belongs to children_pid, and any other process sees it empty. */
static mproc_process *children;
static int64_t children_pid;
static int children_atexit_registered;

/* ---- process-wide settings ----------------------------------------------- */
int mproc_set_executable(const char *path)
{
    char *copy = NULL;
    if (path) {
        if (!*path || strlen(path) >= MPROC__MODULE_PATH_MAX) return MPROC_EINVAL;
        if (!(copy = malloc(strlen(path) + 1))) return MPROC_ENOMEM;
        strcpy(copy, path);
    }
    mproc__os_global_lock();
    free(spawn_exe);
    spawn_exe = copy;
    mproc__os_global_unlock();
    return 0;
}

int mproc_set_keep_stdin(int keep)
{
    if (keep != 0 && keep != 1) return MPROC_EINVAL;
    mproc__store32(&keep_stdin, (uint32_t)keep);
    return 0;
}

/* ---- start methods: the rules, in one place --------------------------------- */
/* spawn exists everywhere; fork and the forkserver (which forks) only where
   the OS can fork. The built-in default is spawn on every platform. */
static int method_exists(mproc_start_method m)
{
    switch (m) {
    case MPROC_SPAWN: return 1;
    case MPROC_FORK:
    case MPROC_FORKSERVER: return mproc__os_has_fork();
    default: return 0;
    }
}

/* What the program chose; else, in a child, the method that started it
   (so grandchildren start the same way, as in Python); else spawn. */
static mproc_start_method current_default(void)
{
    if (default_method != MPROC_METHOD_DEFAULT) return default_method;
    mproc_start_method m = mproc__started_by();
    return m != MPROC_METHOD_DEFAULT ? m : MPROC_SPAWN;
}

int mproc__method_resolve(mproc_start_method m, mproc_start_method *out)
{
    if (m == MPROC_METHOD_DEFAULT) m = current_default();
    if (m != MPROC_SPAWN && m != MPROC_FORK && m != MPROC_FORKSERVER) return MPROC_EINVAL;
    if (!method_exists(m)) return MPROC_ENOTSUP;
    *out = m;
    return 0;
}

int mproc_set_start_method(mproc_start_method method)
{
    mproc_start_method m;
    int rc = mproc__method_resolve(method == MPROC_METHOD_DEFAULT ? MPROC_SPAWN : method, &m);
    if (!rc) default_method = m;
    return rc;
}

mproc_start_method mproc_get_start_method(void) { return current_default(); }

/* Spawn (the default) first, as Python lists the platform default first. */
int mproc_get_all_start_methods(mproc_start_method *out, size_t cap)
{
    static const mproc_start_method all[] = {MPROC_SPAWN, MPROC_FORK, MPROC_FORKSERVER};
    if (!out && cap) return MPROC_EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (method_exists(all[i])) {
            if (n < cap) out[n] = all[i];
            n++;
        }
    return (int)n;
}

/* ---- exit handlers -------------------------------------------------------- */
/* mproc_atexit: handlers that belong to the process that registered them.
   C's atexit list is inherited by fork and cannot be told apart, so mproc
   keeps its own, tagged with the registering pid, and runs it from one C
   atexit handler (exit() anywhere) and at the end of a forked child's
   target (which ends with _exit). */
typedef struct exit_handler {
    void (*fn)(void);
    int64_t pid;
    struct exit_handler *next;
} exit_handler;
static exit_handler *exit_handlers;
static int exit_runner_registered;

/* Runs (most recent first) and forgets this process's handlers. */
static void run_exit_handlers(void)
{
    int64_t me = mproc__os_getpid();
    for (;;) {
        void (*fn)(void) = NULL;
        mproc__os_global_lock();
        for (exit_handler **at = &exit_handlers; *at; at = &(*at)->next) {
            if ((*at)->pid != me) continue;
            exit_handler *h = *at;
            *at = h->next;
            fn = h->fn;
            free(h);
            break;
        }
        mproc__os_global_unlock();
        if (!fn) return;
        fn(); /* unlocked: a handler may use mproc */
    }
}

int mproc_atexit(void (*fn)(void))
{
    if (!fn) return MPROC_EINVAL;
    exit_handler *h = malloc(sizeof *h);
    if (!h) return MPROC_ENOMEM;
    h->fn = fn;
    h->pid = mproc__os_getpid();
    int rc = 0;
    mproc__os_global_lock();
    if (!exit_runner_registered) exit_runner_registered = atexit(run_exit_handlers) == 0;
    if (exit_runner_registered) {
        h->next = exit_handlers;
        exit_handlers = h;
    } else {
        rc = MPROC_ENOMEM; /* the C library's atexit table is full */
    }
    mproc__os_global_unlock();
    if (rc) free(h);
    return rc;
}

/* ---- create ---------------------------------------------------------------- */
static int copy_argument(mproc_process *p, const void *arg, size_t len)
{
    p->arg_len = len;
    if (len <= MPROC__BOOT_INLINE_ARG) {
        if (len && !(p->arg = malloc(len))) return MPROC_ENOMEM;
        if (len) memcpy(p->arg, arg, len);
        return 0;
    }
    /* Large: straight into shared memory the child maps, one copy in all. */
    int rc = mproc__os_anon_shm_create(len, &p->arg_shm);
    if (rc) return rc;
    if ((rc = mproc__os_map(p->arg_shm, len, 1, &p->arg_map))) return rc;
    memcpy(p->arg_map, arg, len);
    return 0;
}

static int resolve_target(mproc_process *p, mproc_target target)
{
    void *addr;
    memcpy(&addr, &target, sizeof addr);
    p->target = target;
    return mproc__fnref_make(addr, &p->target_ref);
}

static int set_options(mproc_process *p, const mproc_process_options *opt)
{
    unsigned n;
    mproc__os_global_lock();
    n = ++process_counter;
    mproc__os_global_unlock();
    int rc = mproc__method_resolve(opt ? opt->method : MPROC_METHOD_DEFAULT, &p->method);
    if (rc) return rc;
    p->daemon = opt ? opt->daemon != 0 : 0;
    if (opt && opt->name) {
        if (strlen(opt->name) >= sizeof p->name) return MPROC_EINVAL;
        strcpy(p->name, opt->name);
    } else {
        snprintf(p->name, sizeof p->name, "Process-%u", n);
    }
    return 0;
}

int mproc_process_create(mproc_process **out, mproc_target target, const void *arg,
                         size_t arg_len, const mproc_process_options *opt)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (!target || (!arg && arg_len)) return MPROC_EINVAL;
    mproc_process *p = mproc__calloc(1, sizeof *p);
    if (!p) return MPROC_ENOMEM;
    p->arg_shm = MPROC__NO_HANDLE;
    p->status_read = MPROC__NO_HANDLE;
    p->parent_alive = MPROC__NO_HANDLE;
    int rc = set_options(p, opt);
    if (!rc) rc = resolve_target(p, target);
    if (!rc) rc = copy_argument(p, arg, arg_len);
    if (rc) {
        mproc_process_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- start ----------------------------------------------------------------- */
static const void *argument_bytes(const mproc_process *p)
{
    return p->arg_map ? p->arg_map : p->arg;
}

/* The objects referenced from the argument, their handles listed for the
   child (and the argument's shared memory, if any, last). */
static size_t collect_handles(const mproc_process *p, mproc__boot *b, mproc__handle *pass)
{
    size_t n = 0;
    b->nobjects = mproc__registry_scan(argument_bytes(p), p->arg_len, b->objects,
                                       MPROC__BOOT_MAX_OBJECTS);
    for (size_t i = 0; i < b->nobjects; i++)
        for (size_t h = 0; h < b->objects[i].nhandles; h++) pass[n++] = b->objects[i].handles[h];
    if (p->arg_map) pass[n++] = p->arg_shm;
    return n;
}

/* Rewrites the message's handles to their values in the child. */
static void translate_handles(mproc__boot *b, const mproc__handle *in_child, size_t npass)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nobjects; i++)
        for (size_t h = 0; h < b->objects[i].nhandles; h++) b->objects[i].handles[h] = in_child[n++];
    if (b->arg_in_shm) b->arg_shm = in_child[npass - 1];
}

static void fill_boot(const mproc_process *p, mproc__boot *b)
{
    memset(b, 0, sizeof *b);
    b->target = p->target_ref;
    snprintf(b->name, sizeof b->name, "%s", p->name);
    b->parent_pid = mproc__os_getpid();
    b->flags = (p->daemon ? MPROC__BOOT_DAEMON : 0) |
               ((uint32_t)p->method << MPROC__BOOT_METHOD_SHIFT);
    b->arg_in_shm = p->arg_map != NULL;
    b->arg = p->arg;
    b->arg_len = p->arg_len;
}

static int send_bootstrap(mproc__boot *b, mproc__handle boot_write)
{
    unsigned char *msg;
    size_t len;
    int rc = spawn_exe ? 0 : mproc__os_image_id(b->image_id);
    if (!rc) rc = mproc__boot_encode(b, &msg, &len);
    if (rc) return rc;
    rc = mproc__os_write_all(boot_write, msg, len);
    free(msg);
    /* A child that is gone before reading is reported by join (no ack). */
    return rc == MPROC_ECLOSED ? 0 : rc;
}

/* The bootstrap of one start, sent once the child's handles are known. */
typedef struct boot_delivery {
    mproc__boot *b;
    const mproc__handle *in_child;
    size_t npass;
    mproc__handle boot_write;
    int sent;
} boot_delivery;

static int deliver_bootstrap(void *ctx)
{
    boot_delivery *d = ctx;
    d->sent = 1;
    translate_handles(d->b, d->in_child, d->npass);
    return send_bootstrap(d->b, d->boot_write);
}

static int start_spawn(mproc_process *p)
{
    mproc__handle boot_r, boot_w, st_r, st_w, pass[MPROC__MAX_PASS + 1], in_child[MPROC__MAX_PASS + 1];
    int rc = mproc__os_pipe(&boot_r, &boot_w);
    if (rc) return rc;
    if ((rc = mproc__os_pipe(&st_r, &st_w))) {
        mproc__os_close(boot_r);
        mproc__os_close(boot_w);
        return rc;
    }
    mproc__boot *b = malloc(sizeof *b);
    if (!b) rc = MPROC_ENOMEM;
    if (!rc) {
        fill_boot(p, b);
        size_t npass = collect_handles(p, b, pass);
        boot_delivery d = {b, in_child, npass, boot_w, 0};
        mproc__os_spawn_req req = {spawn_exe, boot_r, st_w, pass, npass, in_child, p->daemon,
                                   deliver_bootstrap, &d, mproc__load32(&keep_stdin) != 0,
                                   p->pid_later};
        /* both consume boot_r and st_w; the child runs the same bootstrap */
        rc = p->method == MPROC_FORKSERVER ? mproc__os_serve(&req, &p->os)
                                           : mproc__os_spawn(&req, &p->os);
        if (!rc && !d.sent) rc = deliver_bootstrap(&d);
    } else {
        mproc__os_close(boot_r);
        mproc__os_close(st_w);
    }
    free(b);
    /* A spawned daemon watches this channel for our death: keep it open.
       (A served one is ended by the forkserver instead: see bootstrap.c.) */
    if (!rc && p->daemon && p->method != MPROC_FORKSERVER) p->parent_alive = boot_w;
    else mproc__os_close(boot_w);
    if (rc && p->os) {
        mproc__os_proc_free(p->os, 1);
        p->os = NULL;
    }
    if (rc) {
        mproc__os_close(st_r);
        return rc;
    }
    p->status_read = st_r;
    return 0;
}

static int start_fork(mproc_process *p)
{
    int is_child = 0;
    int64_t parent = mproc__os_getpid();
    mproc__handle watch_r = MPROC__NO_HANDLE, watch_w = MPROC__NO_HANDLE;
    int rc = p->daemon ? mproc__os_pipe(&watch_r, &watch_w) : 0;
    if (rc) return rc;
    fflush(NULL); /* or the child would print the parent's buffered output again */
    if ((rc = mproc__os_fork(&p->os, &is_child, mproc__load32(&keep_stdin) == 0))) {
        mproc__os_close(watch_r);
        mproc__os_close(watch_w);
        return rc;
    }
    if (is_child) {
        default_method = MPROC_METHOD_DEFAULT; /* the parent's choice is not the child's */
        mproc__set_child_identity(p->name, parent, MPROC_FORK);
        if (p->daemon) {
            mproc__os_close(watch_w);
            mproc__watch_parent(watch_r);
        }
        int code = p->target(argument_bytes(p), p->arg_len);
        /* _exit, not exit: the C atexit handlers and stdio state here are
           the parent's copies. The child's own mproc_atexit handlers run. */
        run_exit_handlers();
        fflush(NULL);
        mproc__os_exit_now(code & 0xff);
    }
    p->acked = 1;
    mproc__os_close(watch_r);
    p->parent_alive = watch_w;
    return 0;
}

/* The list of this process's children (global lock held). */
static mproc_process **children_head(void)
{
    int64_t me = mproc__os_getpid();
    if (children_pid != me) { /* a forked copy: none of these are ours */
        children = NULL;
        children_pid = me;
    }
    return &children;
}

/* Daemons die with the process that started them, when it exits. Runs in
   every process that inherited the handler (fork): children_head() keeps
   it to this process's own children. */
static void kill_daemons_at_exit(void)
{
    mproc__os_global_lock();
    for (mproc_process *c = *children_head(); c; c = c->next_child)
        if (c->daemon && state_of(c) == ST_RUNNING) mproc__os_proc_signal(c->os, 0);
    mproc__os_global_unlock();
}

static void track_child(mproc_process *p)
{
    mproc__os_global_lock();
    mproc_process **head = children_head();
    p->next_child = *head;
    *head = p;
    if (!children_atexit_registered) children_atexit_registered = atexit(kill_daemons_at_exit) == 0;
    mproc__os_global_unlock();
}

/* Global lock held. */
static void untrack_child_locked(mproc_process *p)
{
    for (mproc_process **at = children_head(); *at; at = &(*at)->next_child)
        if (*at == p) {
            *at = p->next_child;
            break;
        }
    p->next_child = NULL;
}

/* Claims the right to wait on p: 1 when claimed; with may_wait 0 it gives
   up (0) when another thread is waiting on p already. */
static int claim(mproc_process *p, int may_wait)
{
    for (;;) {
        mproc__os_global_lock();
        int mine = !p->busy;
        if (mine) p->busy = 1;
        mproc__os_global_unlock();
        if (mine || !may_wait) return mine;
        mproc__os_sleep_ms(1);
    }
}

static void unclaim(mproc_process *p)
{
    mproc__os_global_lock();
    p->busy = 0;
    mproc__os_global_unlock();
}

int mproc_process_start(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (state_of(p) != ST_CREATED) return MPROC_ESTATE;
    int rc = mproc__check_may_start();
    if (rc) return rc;
    rc = p->method == MPROC_FORK ? start_fork(p) : start_spawn(p);
    if (rc) return rc;
    set_state(p, ST_RUNNING);
    track_child(p);
    /* The child has its own copy of a large argument now. */
    if (p->arg_map) {
        mproc__os_unmap(p->arg_map, p->arg_len);
        mproc__os_close(p->arg_shm);
        p->arg_map = NULL;
        p->arg_shm = MPROC__NO_HANDLE;
    }
    return 0;
}

/* ---- join and friends ------------------------------------------------------ */
/* After the child ended: did its guard acknowledge the bootstrap? A child
   that exited by itself without doing so never ran the guard (or its
   bootstrap was refused); one killed by a signal may simply have been
   killed early, and reports that instead. */
static void check_ack(mproc_process *p)
{
    char c;
    if (p->acked || p->status_read == MPROC__NO_HANDLE) return;
    if (mproc__os_read_all(p->status_read, &c, 1, NULL, 0) == 0 && c == 'A') p->acked = 1;
    else if (p->exitcode >= 0) p->bootstrap_failed = 1;
}

static void close_handle(mproc__handle *h)
{
    if (*h != MPROC__NO_HANDLE) mproc__os_close(*h);
    *h = MPROC__NO_HANDLE;
}

static void mark_ended(mproc_process *p, int code)
{
    p->exitcode = code;
    set_state(p, ST_ENDED);
    check_ack(p);
    close_handle(&p->status_read);
    close_handle(&p->parent_alive);
    mproc__os_global_lock();
    untrack_child_locked(p);
    mproc__os_global_unlock();
}

/* Polls or waits for the end (p claimed); 0 if ended, MPROC_ETIMEDOUT. */
static int update_claimed(mproc_process *p, int timeout_ms)
{
    int code;
    if (state_of(p) == ST_ENDED) return 0;
    int rc = mproc__os_proc_wait(p->os, timeout_ms, &code);
    if (rc && rc != MPROC_ECHILD) return rc;
    p->status_lost = rc == MPROC_ECHILD;
    mark_ended(p, code);
    return 0;
}

static int update_state(mproc_process *p, int timeout_ms)
{
    claim(p, 1);
    int rc = update_claimed(p, timeout_ms);
    unclaim(p);
    return rc;
}

int mproc_process_join(mproc_process *p, int timeout_ms)
{
    if (!p) return MPROC_EINVAL;
    if (state_of(p) == ST_CREATED) return MPROC_ESTATE;
    int rc = update_state(p, timeout_ms);
    if (rc) return rc;
    if (p->status_lost) return MPROC_ECHILD;
    return p->bootstrap_failed ? MPROC_EBOOTSTRAP : 0;
}

int mproc_process_is_alive(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (state_of(p) != ST_RUNNING) return 0;
    int rc = update_state(p, 0);
    if (rc == MPROC_ETIMEDOUT) return 1;
    return rc ? rc : 0;
}

int64_t mproc_process_pid(const mproc_process *p)
{
    return p && p->os ? mproc__os_proc_pid(p->os) : 0;
}

int mproc_process_exitcode(const mproc_process *cp, int *code)
{
    mproc_process *p = (mproc_process *)cp; /* polling updates the cached state */
    if (!p || !code) return MPROC_EINVAL;
    if (state_of(p) == ST_CREATED) return MPROC_ESTATE;
    int rc = update_state(p, 0);
    if (rc == MPROC_ETIMEDOUT) return MPROC_ESTATE;
    if (rc) return rc;
    *code = p->exitcode;
    return 0;
}

static int signal_process(mproc_process *p, int hard)
{
    if (!p) return MPROC_EINVAL;
    if (state_of(p) == ST_CREATED) return MPROC_ESTATE;
    if (state_of(p) == ST_ENDED) return 0;
    return mproc__os_proc_signal(p->os, hard);
}

int mproc_process_terminate(mproc_process *p) { return signal_process(p, 0); }
int mproc_process_kill(mproc_process *p) { return signal_process(p, 1); }

int mproc_process_interrupt(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (state_of(p) == ST_CREATED) return MPROC_ESTATE;
    if (state_of(p) == ST_ENDED) return 0;
    return mproc__os_proc_interrupt(p->os);
}

const char *mproc_process_name(const mproc_process *p) { return p ? p->name : NULL; }

int mproc__process_start_pid_later(mproc_process *p)
{
    if (state_of(p) != ST_CREATED) return MPROC_ESTATE;
    p->pid_later = 1;
    int rc = mproc_process_start(p);
    p->pid_later = 0;
    return rc;
}

int mproc__process_wait_prepare(mproc_process *p, mproc__handle *h)
{
    if (state_of(p) == ST_CREATED) return MPROC_ESTATE; /* never "ended" */
    if (state_of(p) != ST_RUNNING) return 1;
    *h = mproc__os_proc_wait_handle(p->os);
    return *h == MPROC__NO_HANDLE ? 1 : 0;
}

/* ---- this process's children ---------------------------------------------- */
/* Claims up to cap listed children (daemon ones only if daemons) that no
   other thread is waiting on. */
static size_t claim_children(mproc_process **out, size_t cap, int daemons)
{
    size_t n = 0;
    mproc__os_global_lock();
    for (mproc_process *c = *children_head(); c && n < cap; c = c->next_child)
        if (!c->busy && (daemons || !c->daemon)) {
            c->busy = 1;
            out[n++] = c;
        }
    mproc__os_global_unlock();
    return n;
}

/* Listed children (daemon ones only if daemons). */
static size_t count_children(int daemons)
{
    size_t n = 0;
    mproc__os_global_lock();
    for (mproc_process *c = *children_head(); c; c = c->next_child) n += daemons || !c->daemon;
    mproc__os_global_unlock();
    return n;
}

/* Polls every child, which reaps those that have ended (and drops them
   from the list), then lists those still running. Children another thread
   is waiting on are not polled: they count as running. */
int mproc_active_children(mproc_process **out, size_t cap)
{
    if (!out && cap) return MPROC_EINVAL;
    size_t total = count_children(1);
    mproc_process **claimed = mproc__calloc(total ? total : 1, sizeof *claimed);
    if (!claimed) return MPROC_ENOMEM;
    size_t n = claim_children(claimed, total, 1);
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = update_claimed(claimed[i], 0);
        if (rc && rc != MPROC_ETIMEDOUT && !err) err = rc;
        unclaim(claimed[i]);
    }
    free(claimed);
    if (err) return err;
    size_t live = 0;
    mproc__os_global_lock();
    for (mproc_process *c = *children_head(); c; c = c->next_child, live++)
        if (live < cap) out[live] = c;
    mproc__os_global_unlock();
    return live > INT32_MAX ? INT32_MAX : (int)live;
}

/* Python joins its non-daemon children at exit; here the caller decides
   when (see mproc.h for why not at exit). */
int mproc_join_children(int timeout_ms)
{
    if (timeout_ms < MPROC_FOREVER) return MPROC_EINVAL;
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    for (;;) {
        mproc_process *c;
        if (claim_children(&c, 1, 0) == 0) {
            /* Only daemons left, or non-daemons other threads wait on. */
            if (count_children(0) == 0) return 0;
            if (mproc__remaining_ms(deadline, timeout_ms) == 0) return MPROC_ETIMEDOUT;
            mproc__os_sleep_ms(10);
            continue;
        }
        int rc = update_claimed(c, mproc__remaining_ms(deadline, timeout_ms));
        unclaim(c);
        if (rc) return rc;
    }
}

void mproc_process_destroy(mproc_process *p)
{
    if (!p) return;
    claim(p, 1); /* not while active_children polls it */
    mproc__os_global_lock();
    untrack_child_locked(p);
    mproc__os_global_unlock();
    if (state_of(p) == ST_RUNNING) {
        /* A running daemon dies with its handle; others run on (Python). */
        mproc__os_proc_free(p->os, p->daemon);
    } else if (p->os) {
        mproc__os_proc_free(p->os, 0);
    }
    close_handle(&p->status_read);
    close_handle(&p->parent_alive);
    close_handle(&p->arg_shm);
    if (p->arg_map) mproc__os_unmap(p->arg_map, p->arg_len);
    free(p->arg);
    free(p);
}
