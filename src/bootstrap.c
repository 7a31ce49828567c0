/* The child side of the spawn protocol: mproc_main_guard(), and who this
   process is. */
#include "bootstrap.h"

#include <stdio.h>

/* 1 once this process may start processes: it is the main process, or a
   child that has passed the guard. */
static int guard_passed;
static char current_name[MPROC__NAME_MAX] = "MainProcess";
static int64_t child_parent_pid; /* 0 in the main process */
static mproc_start_method started_by = MPROC_METHOD_DEFAULT;

void mproc__set_child_identity(const char *name, int64_t parent_pid, mproc_start_method method)
{
    /* copied by hand: snprintf would fault in the printf code in every
       child the forkserver forks */
    size_t n = strlen(name);
    if (n >= sizeof current_name) n = sizeof current_name - 1;
    memcpy(current_name, name, n);
    current_name[n] = 0;
    child_parent_pid = parent_pid;
    started_by = method;
}

mproc_start_method mproc__started_by(void) { return started_by; }

int64_t mproc_current_pid(void) { return mproc__os_getpid(); }
int64_t mproc_parent_pid(void) { return child_parent_pid ? child_parent_pid : mproc__os_getppid(); }
const char *mproc_current_name(void) { return current_name; }

int mproc__bootstrap_pending(void)
{
    char buf[128];
    return !guard_passed && mproc__os_getenv(MPROC__CHILD_ENV, buf, sizeof buf) != MPROC_ENOENT;
}

int mproc__check_may_start(void)
{
    if (!mproc__bootstrap_pending()) return 0;
    fprintf(stderr,
            "mproc: a process was started before mproc_main_guard() ran in this child.\n"
            "       Call mproc_main_guard(argc, argv) first in main(): the spawn start\n"
            "       method re-executes the program, and without the guard the child\n"
            "       would run the parent's code again.\n");
    return MPROC_EBOOTSTRAP;
}

/* Reads the whole message from the channel into a malloc'd buffer. */
static int read_message(mproc__handle h, unsigned char **out, size_t *len)
{
    unsigned char header[MPROC__BOOT_HEADER];
    size_t total;
    int rc = mproc__os_read_all(h, header, sizeof header, NULL, MPROC_FOREVER);
    if (rc) return rc;
    if ((rc = mproc__boot_header_len(header, &total))) return rc;
    unsigned char *buf = malloc(total);
    if (!buf) return MPROC_ENOMEM;
    memcpy(buf, header, sizeof header);
    rc = mproc__os_read_all(h, buf + sizeof header, total - sizeof header, NULL, MPROC_FOREVER);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = total;
    return 0;
}

/* The same image, and a target that really is the function the parent
   named: checked before jumping anywhere. */
static int resolve_target(const mproc__boot *b, mproc_target *target)
{
    static const unsigned char unknown[32];
    unsigned char id[32];
    void *addr;
    int rc = mproc__os_image_id(id);
    if (rc) return rc;
    /* The parent sends no image id when it spawns another program
       (mproc_set_executable): the code digest still has to match. */
    if (memcmp(b->image_id, unknown, sizeof id) != 0 && memcmp(id, b->image_id, sizeof id) != 0)
        return MPROC_EBOOTSTRAP;
    if ((rc = mproc__fnref_resolve(&b->target, &addr))) return rc;
    memcpy(target, &addr, sizeof *target);
    return 0;
}

static int adopt_objects(const mproc__boot *b)
{
    for (size_t i = 0; i < b->nobjects; i++) {
        int rc = mproc__registry_add(&b->objects[i]);
        if (rc) return rc;
    }
    return 0;
}

static int map_argument(mproc__boot *b, const void **arg)
{
    void *addr;
    if (!b->arg_in_shm) {
        /* Its own malloc'd copy: inside the message the bytes sit at any
           offset, and targets may read them as a struct. */
        if (!(addr = malloc(b->arg_len ? b->arg_len : 1))) return MPROC_ENOMEM;
        if (b->arg_len) memcpy(addr, b->arg, b->arg_len);
        *arg = addr;
        return 0;
    }
    int rc = mproc__os_map(b->arg_shm, b->arg_len, 0, &addr);
    mproc__os_close(b->arg_shm); /* the mapping keeps the memory */
    if (rc) return rc;
    *arg = addr;
    return 0;
}

MPROC__NORETURN static void bootstrap_failed(const char *what, int rc)
{
    fprintf(stderr, "mproc: child bootstrap failed (%s): %s\n", what, mproc_strerror(rc));
    fflush(stderr);
    mproc__os_exit_now(MPROC_EXIT_BOOTSTRAP);
}

/* A daemon child ends with its parent, however the parent ends: the parent
   holds the bootstrap channel's write end for as long as it lives, so end
   of stream here means it is gone (the kernel closes it even after
   SIGKILL). Needs no signal, no PR_SET_PDEATHSIG (which fires when the
   creating *thread* exits) and works alike on every OS. */
static void watch_parent(void *channel)
{
    char byte;
    mproc__handle h = (mproc__handle)(intptr_t)channel;
    while (mproc__os_read_all(h, &byte, 1, NULL, MPROC_FOREVER) == 0) {}
    mproc__os_exit_now(MPROC_EXIT_PARENT_GONE);
}

void mproc__watch_parent(mproc__handle channel)
{
    static mproc__os_thread *watcher; /* lives as long as the process */
    int rc = mproc__os_thread_start(&watcher, watch_parent, (void *)(intptr_t)channel);
    if (rc) bootstrap_failed("parent watch", rc);
    /* never joined: it lives as long as the process */
}

/* Runs the child: never returns. */
MPROC__NORETURN static void run_child(const char *env_value)
{
    mproc__handle boot_read, status_write;
    unsigned char *msg;
    size_t len;
    mproc_target target;
    const void *arg;
    static mproc__boot boot; /* large; lives as long as the child */
    int rc = mproc__os_child_channels(env_value, &boot_read, &status_write);
    if (rc) bootstrap_failed("channels", rc);
    if ((rc = read_message(boot_read, &msg, &len))) bootstrap_failed("reading", rc);
    if ((rc = mproc__boot_decode(msg, len, &boot))) bootstrap_failed("message", rc);
    if ((rc = resolve_target(&boot, &target))) bootstrap_failed("target", rc);
    if ((rc = adopt_objects(&boot))) bootstrap_failed("objects", rc);
    if ((rc = map_argument(&boot, &arg))) bootstrap_failed("argument", rc);
    mproc__set_child_identity(boot.name, boot.parent_pid,
                              (mproc_start_method)(boot.flags >> MPROC__BOOT_METHOD_SHIFT));
    mproc__os_unsetenv(MPROC__CHILD_ENV);
    guard_passed = 1;
    /* The acknowledgement tells the parent that the guard ran; the status
       channel stays open until exit. A parent already gone does not stop a
       non-daemon child (Python's semantics); a daemon's watch ends it. */
    rc = mproc__os_write_all(status_write, "A", 1);
    if (rc && rc != MPROC_ECLOSED) bootstrap_failed("ack", rc);
    /* A daemon watches for the program's end, unless the forkserver made
       it: the server sees the program go and ends its daemons itself,
       which spares the child a thread start on its way to the target. */
    unsigned made_by = (boot.flags & MPROC__BOOT_METHOD_MASK) >> MPROC__BOOT_METHOD_SHIFT;
    if ((boot.flags & MPROC__BOOT_DAEMON) && made_by != MPROC_FORKSERVER) mproc__watch_parent(boot_read);
    else mproc__os_close(boot_read);
    int code = target(arg, boot.arg_len);
    exit(code & 0xff);
}

int mproc_main_guard(int argc, char **argv)
{
    char env_value[128];
    (void)argc;
    (void)argv;
    if (guard_passed) return 0;
    int rc = mproc__os_getenv(MPROC__CHILD_ENV, env_value, sizeof env_value);
    if (rc == MPROC_ENOENT) {
        guard_passed = 1;
        return 0;
    }
    if (rc) bootstrap_failed("environment", rc);
    /* A setuid/setgid program must not run code named by whoever set its
       environment, however good the channel looks. */
    if (mproc__os_privileged_exec()) {
        fprintf(stderr, "mproc: refusing child mode in a setuid/setgid program\n");
        fflush(stderr);
        mproc__os_exit_now(MPROC_EXIT_BOOTSTRAP);
    }
    run_child(env_value);
    return MPROC_EBOOTSTRAP; /* not reached */
}
