/* Process objects: create, start (spawn or fork), join, signal. */
#include "bootstrap.h"
#include "process.h"
#include "atomic.h"

#include <stdio.h>

enum { ST_CREATED, ST_RUNNING, ST_ENDED };

struct mproc_process {
    int state;
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
    struct mproc_process *next_daemon;
};

static char *spawn_exe;                       /* mproc_set_executable */
static volatile uint32_t keep_stdin;          /* mproc_set_keep_stdin */
static mproc_start_method default_method = MPROC_SPAWN;
static unsigned process_counter;
static char current_name[MPROC__NAME_MAX] = "MainProcess";
static int64_t child_parent_pid;              /* 0 in the main process */
static mproc_process *daemons;                /* running daemons, for atexit */
static int daemon_atexit_registered;

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

int mproc_set_start_method(mproc_start_method method)
{
    if (method == MPROC_METHOD_DEFAULT) method = MPROC_SPAWN;
    if (method != MPROC_SPAWN && method != MPROC_FORK && method != MPROC_FORKSERVER)
        return MPROC_EINVAL;
    if (method != MPROC_SPAWN && !mproc__os_has_fork()) return MPROC_ENOTSUP;
    default_method = method;
    return 0;
}

mproc_start_method mproc_get_start_method(void) { return default_method; }

void mproc__set_child_identity(const char *name, int64_t parent_pid)
{
    snprintf(current_name, sizeof current_name, "%s", name);
    child_parent_pid = parent_pid;
}

int64_t mproc_current_pid(void) { return mproc__os_getpid(); }
int64_t mproc_parent_pid(void) { return child_parent_pid ? child_parent_pid : mproc__os_getppid(); }
const char *mproc_current_name(void) { return current_name; }

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
    p->method = opt && opt->method ? opt->method : default_method;
    if (p->method != MPROC_SPAWN && p->method != MPROC_FORK && p->method != MPROC_FORKSERVER)
        return MPROC_EINVAL;
    if (p->method != MPROC_SPAWN && !mproc__os_has_fork()) return MPROC_ENOTSUP;
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
    b->flags = p->daemon ? MPROC__BOOT_DAEMON : 0;
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
        mproc__os_spawn_req req = {spawn_exe, boot_r, st_w, pass, npass, in_child, p->daemon,
                                   mproc__load32(&keep_stdin) != 0};
        rc = mproc__os_spawn(&req, &p->os); /* consumes boot_r and st_w */
        if (!rc) {
            translate_handles(b, in_child, npass);
            rc = send_bootstrap(b, boot_w);
        }
    } else {
        mproc__os_close(boot_r);
        mproc__os_close(st_w);
    }
    free(b);
    /* A daemon watches this channel for our death: keep it open. */
    if (!rc && p->daemon) p->parent_alive = boot_w;
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
    if ((rc = mproc__os_fork(&p->os, &is_child))) {
        mproc__os_close(watch_r);
        mproc__os_close(watch_w);
        return rc;
    }
    if (is_child) {
        mproc__set_child_identity(p->name, parent);
        if (p->daemon) {
            mproc__os_close(watch_w);
            mproc__watch_parent(watch_r);
        }
        int code = p->target(argument_bytes(p), p->arg_len);
        fflush(NULL);
        mproc__os_exit_now(code & 0xff);
    }
    p->acked = 1;
    mproc__os_close(watch_r);
    p->parent_alive = watch_w;
    return 0;
}

static void kill_daemons_at_exit(void)
{
    for (mproc_process *d = daemons; d; d = d->next_daemon)
        if (d->state == ST_RUNNING) mproc__os_proc_signal(d->os, 0);
}

static void track_daemon(mproc_process *p)
{
    mproc__os_global_lock();
    p->next_daemon = daemons;
    daemons = p;
    if (!daemon_atexit_registered) daemon_atexit_registered = atexit(kill_daemons_at_exit) == 0;
    mproc__os_global_unlock();
}

static void untrack_daemon(mproc_process *p)
{
    mproc__os_global_lock();
    for (mproc_process **at = &daemons; *at; at = &(*at)->next_daemon)
        if (*at == p) {
            *at = p->next_daemon;
            break;
        }
    mproc__os_global_unlock();
}

int mproc_process_start(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (p->state != ST_CREATED) return MPROC_ESTATE;
    int rc = mproc__check_may_start();
    if (rc) return rc;
    rc = p->method == MPROC_FORK ? start_fork(p) : start_spawn(p);
    if (rc) return rc;
    p->state = ST_RUNNING;
    if (p->daemon) track_daemon(p);
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
    p->state = ST_ENDED;
    check_ack(p);
    close_handle(&p->status_read);
    close_handle(&p->parent_alive);
    if (p->daemon) untrack_daemon(p);
}

/* Polls or waits for the end; 0 if ended, MPROC_ETIMEDOUT if running. */
static int update_state(mproc_process *p, int timeout_ms)
{
    int code;
    if (p->state == ST_ENDED) return 0;
    int rc = mproc__os_proc_wait(p->os, timeout_ms, &code);
    if (rc) return rc;
    mark_ended(p, code);
    return 0;
}

int mproc_process_join(mproc_process *p, int timeout_ms)
{
    if (!p) return MPROC_EINVAL;
    if (p->state == ST_CREATED) return MPROC_ESTATE;
    int rc = update_state(p, timeout_ms);
    if (rc) return rc;
    return p->bootstrap_failed ? MPROC_EBOOTSTRAP : 0;
}

int mproc_process_is_alive(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (p->state != ST_RUNNING) return 0;
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
    if (p->state == ST_CREATED) return MPROC_ESTATE;
    int rc = update_state(p, 0);
    if (rc == MPROC_ETIMEDOUT) return MPROC_ESTATE;
    if (rc) return rc;
    *code = p->exitcode;
    return 0;
}

static int signal_process(mproc_process *p, int hard)
{
    if (!p) return MPROC_EINVAL;
    if (p->state == ST_CREATED) return MPROC_ESTATE;
    if (p->state == ST_ENDED) return 0;
    return mproc__os_proc_signal(p->os, hard);
}

int mproc_process_terminate(mproc_process *p) { return signal_process(p, 0); }
int mproc_process_kill(mproc_process *p) { return signal_process(p, 1); }

const char *mproc_process_name(const mproc_process *p) { return p ? p->name : NULL; }

mproc__handle mproc__process_wait_handle(mproc_process *p)
{
    if (!p || p->state != ST_RUNNING) return MPROC__NO_HANDLE;
    return mproc__os_proc_wait_handle(p->os);
}

void mproc_process_destroy(mproc_process *p)
{
    if (!p) return;
    if (p->state == ST_RUNNING) {
        if (p->daemon) untrack_daemon(p);
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
