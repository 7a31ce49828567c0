/* Process lifecycle across real processes: exit codes, signals, timeouts,
   states, names, arguments, fd hygiene, the main guard, bad input. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "os.h"
#ifdef _WIN32
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
#else
#  include <fcntl.h>
#  include <signal.h>
#  include <sys/wait.h>
#  include <unistd.h>
#endif

/* ---- child targets ---------------------------------------------------------- */
static int return_arg_byte(const void *arg, size_t len)
{
    return len == 1 ? *(const unsigned char *)arg : 100;
}

static int return_minus_one(const void *arg, size_t len)
{
    (void)arg; (void)len;
    return -1;
}

/* Runs until killed: the tests end it with terminate/kill. */
static int run_forever(const void *arg, size_t len)
{
    (void)arg; (void)len;
    for (;;) mproc__os_sleep_ms(1000);
    return 0;
}

static int check_name(const void *arg, size_t len)
{
    return strlen(mproc_current_name()) == len && memcmp(mproc_current_name(), arg, len) == 0 ? 0 : 1;
}

/* The argument arrives suitably aligned for any type, as from malloc. */
static int check_alignment(const void *arg, size_t len)
{
    (void)len;
    return ((uintptr_t)arg % _Alignof(max_align_t)) == 0 ? 0 : 1;
}

static int check_parent_pid(const void *arg, size_t len)
{
    int64_t parent;
    if (len != sizeof parent) return 2;
    memcpy(&parent, arg, sizeof parent);
    if (mproc_parent_pid() != parent) return 1;
    return mproc_current_pid() != parent ? 0 : 3;
}

static unsigned char pattern_byte(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

static int check_big_argument(const void *arg, size_t len)
{
    const unsigned char *p = arg;
    if (len != (size_t)64 << 20) return 2;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(i)) return 1;
    return 0;
}

static int child_starts_child(const void *arg, size_t len)
{
    (void)arg; (void)len;
    unsigned char code = 9;
    mproc_process *p;
    if (mproc_process_create(&p, return_arg_byte, &code, 1, NULL)) return 1;
    if (mproc_process_start(p)) return 2;
    int ec = -1;
    if (mproc_process_join(p, TU_JOIN_TIMEOUT_MS) || mproc_process_exitcode(p, &ec)) return 3;
    mproc_process_destroy(p);
    return ec == 9 ? 0 : 4;
}

/* Writes through a null pointer obtained at run time (so no compiler can
   see it coming and turn it into a trap instruction). */
static int write_through_null(const void *arg, size_t len)
{
    (void)arg;
    volatile int *p = (volatile int *)(uintptr_t)len; /* len is 0 */
    *p = 1;
    return 0;
}

#ifndef _WIN32
static int check_fd_closed(const void *arg, size_t len)
{
    int fd;
    if (len != sizeof fd) return 2;
    memcpy(&fd, arg, sizeof fd);
    return fcntl(fd, F_GETFD) == -1 ? 0 : 1;
}

static int die_by_abort(const void *arg, size_t len)
{
    (void)arg; (void)len;
    abort();
    return 0;
}
#endif

/* A daemon's target: records its pid in the file named by arg (written
   under a temporary name and renamed, so a reader sees it whole), then runs
   until it is ended. */
static int record_pid_and_run(const void *arg, size_t len)
{
    char path[256], tmp[272];
    if (len >= sizeof path) return 2;
    memcpy(path, arg, len);
    path[len] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return 4;
    fprintf(f, "%lld\n", (long long)mproc_current_pid());
    fclose(f);
    if (rename(tmp, path) != 0) return 5;
    return run_forever(NULL, 0);
}

/* Starts such a daemon, waits until it runs, then dies abruptly (no atexit,
   no cleanup, like a SIGKILL): the daemon must follow. */
static int start_daemon_then_vanish(const void *arg, size_t len)
{
    char path[256];
    mproc_process *d;
    mproc_process_options opt = {"orphaned-daemon", 1, MPROC_METHOD_DEFAULT};
    if (len >= sizeof path) return 2;
    memcpy(path, arg, len);
    path[len] = '\0';
    if (mproc_process_create(&d, record_pid_and_run, arg, len, &opt) || mproc_process_start(d))
        return 3;
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    FILE *f;
    while (!(f = fopen(path, "r")) && mproc__os_now_ms() < deadline) mproc__os_sleep_ms(5);
    if (!f) return 6;
    fclose(f);
    mproc__os_exit_now(0);
    return 0;
}

/* Spawned from several threads at once: the argument must be this child's
   own, and no descriptor beyond its own channels (3..5) may be open. */
typedef struct spawn_job { uint32_t thread, round, magic; } spawn_job;
#define SPAWN_JOB_MAGIC 0x5eedf00du

static int check_job_and_fds(const void *arg, size_t len)
{
    spawn_job job;
    if (len != sizeof job) return 2;
    memcpy(&job, arg, sizeof job);
    if (job.magic != SPAWN_JOB_MAGIC || job.thread >= 64 || job.round >= 64) return 2;
#ifndef _WIN32
    for (int fd = 6; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1) return 1;
#endif
    return (int)(10 + job.thread * 8 + job.round) & 0xff;
}

/* ---- tests ------------------------------------------------------------------ */
static void test_exit_codes(void **state)
{
    (void)state;
    unsigned char codes[] = {0, 1, 7, 42, 255};
    for (size_t i = 0; i < sizeof codes; i++)
        assert_int_equal(tu_run_child(return_arg_byte, &codes[i], 1), codes[i]);
    assert_int_equal(tu_run_child(return_minus_one, NULL, 0), 255);
}

static void test_states_and_wrong_order(void **state)
{
    (void)state;
    unsigned char code = 3;
    int ec;
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, return_arg_byte, &code, 1, NULL), 0);
    assert_int_equal(mproc_process_is_alive(p), 0);
    assert_int_equal(mproc_process_pid(p), 0);
    assert_int_equal(mproc_process_join(p, 0), MPROC_ESTATE);
    assert_int_equal(mproc_process_exitcode(p, &ec), MPROC_ESTATE);
    assert_int_equal(mproc_process_terminate(p), MPROC_ESTATE);
    assert_int_equal(mproc_process_kill(p), MPROC_ESTATE);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_start(p), MPROC_ESTATE);
    assert_true(mproc_process_pid(p) > 0);
    assert_true(mproc_process_pid(p) != mproc_current_pid());
    assert_int_equal(tu_join(p), 3);
    assert_int_equal(mproc_process_is_alive(p), 0);
    assert_int_equal(mproc_process_join(p, 0), 0); /* joining again is fine */
    assert_int_equal(mproc_process_terminate(p), 0); /* already ended: no-op */
    assert_int_equal(mproc_process_start(p), MPROC_ESTATE);
    mproc_process_destroy(p);
}

static void test_join_timeout_then_terminate(void **state)
{
    (void)state;
    int ec;
    mproc_process *p = tu_start(run_forever, NULL, 0);
    assert_int_equal(mproc_process_join(p, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_process_join(p, 50), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_process_is_alive(p), 1);
    assert_int_equal(mproc_process_exitcode(p, &ec), MPROC_ESTATE);
    assert_int_equal(mproc_process_terminate(p), 0);
    assert_int_equal(tu_join(p), -15);
    assert_int_equal(mproc_process_is_alive(p), 0);
    mproc_process_destroy(p);
}

static void test_kill(void **state)
{
    (void)state;
    mproc_process *p = tu_start(run_forever, NULL, 0);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
}

static void test_names(void **state)
{
    (void)state;
    mproc_process *p;
    assert_string_equal(mproc_current_name(), "MainProcess");
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, NULL), 0);
    assert_memory_equal(mproc_process_name(p), "Process-", 8);
    assert_true(atoi(mproc_process_name(p) + 8) > 0);
    mproc_process_destroy(p);

    const char *name = "worker-alpha";
    mproc_process_options opt = {name, 0, MPROC_METHOD_DEFAULT};
    assert_int_equal(mproc_process_create(&p, check_name, name, strlen(name), &opt), 0);
    assert_string_equal(mproc_process_name(p), name);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
}

static void test_argument_alignment(void **state)
{
    (void)state;
    char odd[13] = "odd-length...";
    assert_int_equal(tu_run_child(check_alignment, odd, sizeof odd), 0);
    assert_int_equal(tu_run_child(check_alignment, odd, 1), 0);
}

static void test_parent_pid(void **state)
{
    (void)state;
    int64_t me = mproc_current_pid();
    assert_int_equal(tu_run_child(check_parent_pid, &me, sizeof me), 0);
}

static void test_many_at_once(void **state)
{
    (void)state;
    enum { N = 5 };
    mproc_process *ps[N];
    unsigned char codes[N];
    for (int i = 0; i < N; i++) {
        codes[i] = (unsigned char)(10 + i);
        ps[i] = tu_start(return_arg_byte, &codes[i], 1);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(tu_join(ps[i]), 10 + i);
        mproc_process_destroy(ps[i]);
    }
}

static void test_argument_64mib(void **state)
{
    (void)state;
    size_t len = (size_t)64 << 20;
    unsigned char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++) big[i] = pattern_byte(i);
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, check_big_argument, big, len, NULL), 0);
    memset(big, 0, len); /* copied at create: the caller may reuse it */
    free(big);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
}

static void test_grandchild(void **state)
{
    (void)state;
    assert_int_equal(tu_run_child(child_starts_child, NULL, 0), 0);
}

static void test_missing_guard(void **state)
{
    (void)state;
    mproc_process *p;
    int ec = -1000;
    assert_int_equal(mproc_set_executable(MPROC_NOGUARD_HELPER), 0);
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, NULL), 0);
    int started = mproc_process_start(p);
    assert_int_equal(mproc_set_executable(NULL), 0); /* before any assert can fail */
    assert_int_equal(started, 0);
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), MPROC_EBOOTSTRAP);
    /* the helper's own start was refused with MPROC_EBOOTSTRAP: exit 42 */
    assert_int_equal(mproc_process_exitcode(p, &ec), 0);
    assert_int_equal(ec, 42);
    mproc_process_destroy(p);
}

static void test_start_methods(void **state)
{
    (void)state;
    unsigned char code = 77;
    mproc_process *p;
    mproc_pool *pool = NULL;
    mproc_pool_options popt;
    memset(&popt, 0, sizeof popt);
    popt.processes = 1;
    mproc_start_method posix_only[] = {MPROC_FORK, MPROC_FORKSERVER};
    for (size_t i = 0; i < 2; i++) {
        mproc_process_options opt = {NULL, 0, posix_only[i]};
        popt.method = posix_only[i];
#ifdef _WIN32
        assert_int_equal(mproc_set_start_method(posix_only[i]), MPROC_ENOTSUP);
        assert_int_equal(mproc_process_create(&p, return_arg_byte, &code, 1, &opt), MPROC_ENOTSUP);
        assert_int_equal(mproc_pool_create(&pool, &popt), MPROC_ENOTSUP);
#else
        assert_int_equal(mproc_process_create(&p, return_arg_byte, &code, 1, &opt), 0);
        assert_int_equal(mproc_process_start(p), 0);
        assert_int_equal(tu_join(p), 77);
        mproc_process_destroy(p);
        assert_int_equal(mproc_set_start_method(posix_only[i]), 0);
        assert_int_equal(mproc_get_start_method(), posix_only[i]);
        assert_int_equal(tu_run_child(return_arg_byte, &code, 1), 77);
        assert_int_equal(mproc_pool_create(&pool, &popt), 0);
        mproc_pool_destroy(pool);
#endif
    }
    assert_int_equal(mproc_set_start_method(MPROC_SPAWN), 0);
    assert_int_equal(mproc_get_start_method(), MPROC_SPAWN);
    assert_int_equal(mproc_set_start_method(MPROC_FORK), mproc_set_start_method(MPROC_FORKSERVER));
    assert_int_equal(mproc_set_start_method(MPROC_METHOD_DEFAULT), 0); /* back to spawn */
    assert_int_equal(mproc_get_start_method(), MPROC_SPAWN);
    assert_int_equal(mproc_set_start_method((mproc_start_method)99), MPROC_EINVAL);
    popt.method = (mproc_start_method)99;
    assert_int_equal(mproc_pool_create(&pool, &popt), MPROC_EINVAL);
}

/* ---- Python parity (issue 15) ----------------------------------------------------- */
static int has_fork(void)
{
    return mproc_get_all_start_methods(NULL, 0) > 1;
}

/* Waits for the event whose ref is arg, then exits with 0. */
static int wait_event(const void *arg, size_t len)
{
    mproc_event *e;
    if (len != sizeof(mproc_ref) || mproc_event_attach(arg, &e)) return 2;
    int rc = mproc_event_wait(e, TU_JOIN_TIMEOUT_MS);
    mproc_event_destroy(e);
    return rc ? 3 : 0;
}

static mproc_process *start_with(mproc_target t, const void *arg, size_t len, int daemon,
                                 mproc_start_method m)
{
    mproc_process *p;
    mproc_process_options opt = {NULL, daemon, m};
    assert_int_equal(mproc_process_create(&p, t, arg, len, &opt), 0);
    assert_int_equal(mproc_process_start(p), 0);
    return p;
}

static int exit_via_exit(const void *arg, size_t len)
{
    (void)arg; (void)len;
    exit(0); /* runs the C atexit handlers this forked child inherited */
}

/* Item 1: a forked child that calls exit() must not end its parent's
   daemon children (their clean-up handler belongs to the parent). */
static void test_fork_child_exit_spares_siblings(void **state)
{
    (void)state;
    if (!has_fork()) skip();
    mproc_process *daemon = start_with(run_forever, NULL, 0, 1, MPROC_SPAWN);
    mproc_process *child = start_with(exit_via_exit, NULL, 0, 0, MPROC_FORK);
    assert_int_equal(tu_join(child), 0);
    assert_int_equal(mproc_process_is_alive(daemon), 1);
    assert_int_equal(mproc_process_join(daemon, 200), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_process_is_alive(daemon), 1);
    mproc_process_destroy(child);
    mproc_process_destroy(daemon);
}

/* Item 2: an unstarted process is not "ended" for mproc_wait. */
static void test_wait_unstarted_process(void **state)
{
    (void)state;
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, NULL), 0);
    mproc_waitable w = {MPROC_WAIT_PROCESS, p, 0};
    assert_int_equal(mproc_wait(&w, 1, 0), MPROC_ESTATE);
    assert_int_equal(w.ready, 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_wait(&w, 1, TU_JOIN_TIMEOUT_MS), 1);
    assert_int_equal(w.ready, 1);
    assert_int_equal(tu_join(p), 255);
    mproc_process_destroy(p);
}

/* The child's default start method, and that of a grandchild started with
   the default: 16 * child's + grandchild's. */
static int report_method_leaf(const void *arg, size_t len)
{
    (void)arg; (void)len;
    return (int)mproc_get_start_method();
}

static int report_method(const void *arg, size_t len)
{
    (void)arg; (void)len;
    mproc_process *g;
    int code = -1;
    if (mproc_process_create(&g, report_method_leaf, NULL, 0, NULL) || mproc_process_start(g) ||
        mproc_process_join(g, TU_JOIN_TIMEOUT_MS) || mproc_process_exitcode(g, &code))
        return 255;
    mproc_process_destroy(g);
    return (int)mproc_get_start_method() * 16 + code;
}

/* Item 3 and get_all_start_methods. */
static void test_child_start_method(void **state)
{
    (void)state;
    mproc_start_method all[4] = {0};
    int n = mproc_get_all_start_methods(all, 4);
    assert_int_equal(n, has_fork() ? 3 : 1);
    assert_int_equal(all[0], MPROC_SPAWN);
    if (n == 3) {
        assert_int_equal(all[1], MPROC_FORK);
        assert_int_equal(all[2], MPROC_FORKSERVER);
    }
    assert_int_equal(mproc_get_all_start_methods(all, 1), n);
    assert_int_equal(mproc_get_all_start_methods(NULL, 2), MPROC_EINVAL);
    assert_int_equal(mproc_get_start_method(), MPROC_SPAWN);
    for (int i = 0; i < n; i++) {
        mproc_process *p = start_with(report_method, NULL, 0, 0, all[i]);
        assert_int_equal(tu_join(p), (int)all[i] * 16 + (int)all[i]);
        mproc_process_destroy(p);
    }
    assert_int_equal(mproc_get_start_method(), MPROC_SPAWN); /* the parent's is its own */
}

/* Item 6: mproc_atexit handlers run in the process that registered them
   only. The semaphores are reached through globals (a forked child has
   them too) or, in a spawned child, through the argument. */
static mproc_sem *parent_exit_sem, *child_exit_sem;

static void parent_exit_handler(void)
{
    if (parent_exit_sem) mproc_sem_release(parent_exit_sem);
}

static void child_exit_handler(void)
{
    if (child_exit_sem) mproc_sem_release(child_exit_sem);
}

static int register_and_return(const void *arg, size_t len)
{
    if (len == sizeof(mproc_ref) && mproc_sem_attach(arg, &child_exit_sem)) return 2;
    return mproc_atexit(child_exit_handler) ? 3 : 0;
}

static void test_atexit_own_handlers(void **state)
{
    (void)state;
    mproc_ref ref;
    unsigned v = 9;
    assert_int_equal(mproc_atexit(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_sem_create(&parent_exit_sem, 0, 0), 0);
    assert_int_equal(mproc_sem_create(&child_exit_sem, 0, 0), 0);
    assert_int_equal(mproc_atexit(parent_exit_handler), 0);
    /* spawned: a fresh program; its handler runs when its target returns */
    assert_int_equal(mproc_sem_ref(child_exit_sem, &ref), 0);
    mproc_process *p = start_with(register_and_return, &ref, sizeof ref, 0, MPROC_SPAWN);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    assert_int_equal(mproc_sem_value(child_exit_sem, &v), 0);
    assert_int_equal(v, 1);
    if (has_fork()) { /* forked: its own handler runs, the inherited one not */
        p = start_with(register_and_return, NULL, 0, 0, MPROC_FORK);
        assert_int_equal(tu_join(p), 0);
        mproc_process_destroy(p);
        assert_int_equal(mproc_sem_value(child_exit_sem, &v), 0);
        assert_int_equal(v, 2);
    }
    assert_int_equal(mproc_sem_value(parent_exit_sem, &v), 0);
    assert_int_equal(v, 0);
    mproc_sem *a = parent_exit_sem, *b = child_exit_sem;
    parent_exit_sem = child_exit_sem = NULL; /* the handler runs at our exit */
    mproc_sem_destroy(a);
    mproc_sem_destroy(b);
}

/* A forked child starts with no children of its own. */
static int count_my_children(const void *arg, size_t len)
{
    (void)arg; (void)len;
    return mproc_active_children(NULL, 0);
}

/* active_children lists the running children and reaps the ended ones. */
static void test_active_children(void **state)
{
    (void)state;
    mproc_event *e;
    mproc_ref ref;
    unsigned char code = 5;
    mproc_process *list[4] = {NULL};
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_event_ref(e, &ref), 0);
    assert_int_equal(mproc_active_children(NULL, 0), 0);
    assert_int_equal(mproc_active_children(NULL, 1), MPROC_EINVAL);
    mproc_process *waiting = start_with(wait_event, &ref, sizeof ref, 0, MPROC_SPAWN);
    mproc_process *quick = start_with(return_arg_byte, &code, 1, 0, MPROC_SPAWN);
    /* quick ends by itself; never joined, it is reaped by the listing */
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    int n;
    while ((n = mproc_active_children(list, 4)) == 2 && mproc__os_now_ms() < deadline)
        mproc__os_sleep_ms(10);
    assert_int_equal(n, 1);
    assert_ptr_equal(list[0], waiting);
    int ec = -1;
    assert_int_equal(mproc_process_exitcode(quick, &ec), 0);
    assert_int_equal(ec, 5);
    if (has_fork()) {
        mproc_process *f = start_with(count_my_children, NULL, 0, 0, MPROC_FORK);
        assert_int_equal(tu_join(f), 0);
        mproc_process_destroy(f);
    }
    mproc_process_destroy(quick);
    assert_int_equal(mproc_event_set(e), 0);
    assert_int_equal(tu_join(waiting), 0);
    assert_int_equal(mproc_active_children(list, 4), 0);
    mproc_process_destroy(waiting);
    mproc_event_destroy(e);
}

/* Item 7: the explicit join of every non-daemon child. */
static void test_join_children(void **state)
{
    (void)state;
    mproc_event *e;
    mproc_ref ref;
    assert_int_equal(mproc_event_create(&e), 0);
    assert_int_equal(mproc_event_ref(e, &ref), 0);
    mproc_process *a = start_with(wait_event, &ref, sizeof ref, 0, MPROC_SPAWN);
    mproc_process *b = start_with(wait_event, &ref, sizeof ref, 0, MPROC_SPAWN);
    mproc_process *d = start_with(run_forever, NULL, 0, 1, MPROC_SPAWN);
    assert_int_equal(mproc_join_children(0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_join_children(-5), MPROC_EINVAL);
    assert_int_equal(mproc_event_set(e), 0);
    assert_int_equal(mproc_join_children(TU_JOIN_TIMEOUT_MS), 0);
    int ec = -1;
    assert_int_equal(mproc_process_exitcode(a, &ec), 0);
    assert_int_equal(ec, 0);
    assert_int_equal(mproc_process_exitcode(b, &ec), 0);
    assert_int_equal(ec, 0);
    assert_int_equal(mproc_process_is_alive(d), 1); /* daemons are not joined */
    mproc_process_destroy(a);
    mproc_process_destroy(b);
    mproc_process_destroy(d);
    mproc_event_destroy(e);
}

/* Takes SIGINT's default action (a test runner started in the background
   may have passed it on ignored), says so, then runs until ended. */
static int interruptible(const void *arg, size_t len)
{
    mproc_sem *ready;
    if (len != sizeof(mproc_ref) || mproc_sem_attach(arg, &ready)) return 2;
#ifndef _WIN32
    signal(SIGINT, SIG_DFL);
#endif
    mproc_sem_release(ready);
    return run_forever(NULL, 0);
}

static void test_interrupt(void **state)
{
    (void)state;
    mproc_process *p;
    mproc_sem *ready;
    mproc_ref ref;
    assert_int_equal(mproc_sem_create(&ready, 0, 0), 0);
    assert_int_equal(mproc_sem_ref(ready, &ref), 0);
    assert_int_equal(mproc_process_create(&p, interruptible, &ref, sizeof ref, NULL), 0);
    assert_int_equal(mproc_process_interrupt(p), MPROC_ESTATE);
    assert_int_equal(mproc_process_interrupt(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_sem_acquire(ready, TU_JOIN_TIMEOUT_MS), 0);
    mproc_sem_destroy(ready);
#ifdef _WIN32
    assert_int_equal(mproc_process_interrupt(p), MPROC_ENOTSUP);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
#else
    assert_int_equal(mproc_process_interrupt(p), 0);
    assert_int_equal(tu_join(p), -SIGINT);
#endif
    assert_int_equal(mproc_process_interrupt(p), 0); /* ended: nothing to do */
    mproc_process_destroy(p);
}

static void test_daemon_destroy_kills(void **state)
{
    (void)state;
    mproc_process *p;
    mproc_process_options opt = {NULL, 1, MPROC_METHOD_DEFAULT};
    assert_int_equal(mproc_process_create(&p, run_forever, NULL, 0, &opt), 0);
    assert_int_equal(mproc_process_start(p), 0);
    int64_t pid = mproc_process_pid(p);
    assert_int_equal(mproc_process_is_alive(p), 1);
    mproc_process_destroy(p); /* kills and reaps a running daemon */
    assert_int_equal(mproc__os_pid_alive(pid), 0);
}

static void test_daemon_dies_with_parent(void **state)
{
    (void)state;
    char path[64];
    long long daemon_pid = 0;
    snprintf(path, sizeof path, "daemon-pid-%lld.txt", (long long)mproc_current_pid());
    remove(path);
    assert_int_equal(tu_run_child(start_daemon_then_vanish, path, strlen(path)), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lld", &daemon_pid), 1);
    fclose(f);
    remove(path);
    assert_true(daemon_pid > 0);
    /* Wait for the daemon to notice (normally well under a second). */
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    while (mproc__os_pid_alive(daemon_pid) && mproc__os_now_ms() < deadline) mproc__os_sleep_ms(10);
    assert_int_equal(mproc__os_pid_alive(daemon_pid), 0);
}

enum { SPAWN_THREADS = 4, SPAWN_ROUNDS = 6 };
static int spawn_results[SPAWN_THREADS][SPAWN_ROUNDS];
/* When a round fails: which call (1 create, 2 start, 3 join, 4 exitcode)
   and what it returned, so a failure says where it happened. */
static int spawn_failed_step[SPAWN_THREADS][SPAWN_ROUNDS];
static int spawn_failed_rc[SPAWN_THREADS][SPAWN_ROUNDS];

/* Each round also holds an inheritable (no close-on-exec) pipe open while
   spawning, the way unrelated code in a real program might. */
static void spawn_rounds(void *arg)
{
    uint32_t t = (uint32_t)(uintptr_t)arg;
    for (uint32_t r = 0; r < SPAWN_ROUNDS; r++) {
        spawn_job job = {t, r, SPAWN_JOB_MAGIC};
        mproc_process *p;
        int code = -1000, step = 1, rc;
#ifndef _WIN32
        int fds[2] = {-1, -1};
        if (pipe(fds) != 0) fds[0] = fds[1] = -1;
#endif
        if ((rc = mproc_process_create(&p, check_job_and_fds, &job, sizeof job, NULL)) == 0) {
            step = 2;
            if ((rc = mproc_process_start(p)) == 0) {
                step = 3;
                if ((rc = mproc_process_join(p, TU_JOIN_TIMEOUT_MS)) == 0) {
                    step = 4;
                    rc = mproc_process_exitcode(p, &code);
                }
            }
            mproc_process_destroy(p);
        }
#ifndef _WIN32
        close(fds[0]);
        close(fds[1]);
#endif
        spawn_results[t][r] = code;
        spawn_failed_step[t][r] = rc ? step : 0;
        spawn_failed_rc[t][r] = rc;
    }
}

static void test_spawn_from_threads(void **state)
{
    (void)state;
    mproc__os_thread *threads[SPAWN_THREADS];
    for (uintptr_t t = 0; t < SPAWN_THREADS; t++)
        assert_int_equal(mproc__os_thread_start(&threads[t], spawn_rounds, (void *)t), 0);
    for (int t = 0; t < SPAWN_THREADS; t++) mproc__os_thread_join(threads[t]);
    for (int t = 0; t < SPAWN_THREADS; t++)
        for (int r = 0; r < SPAWN_ROUNDS; r++) {
            if (spawn_failed_step[t][r])
                print_message("thread %d round %d: call %d (1 create, 2 start, 3 join, 4 exitcode) "
                              "returned %d (%s)\n", t, r, spawn_failed_step[t][r],
                              spawn_failed_rc[t][r], mproc_strerror(spawn_failed_rc[t][r]));
            assert_int_equal(spawn_results[t][r], 10 + t * 8 + r);
        }
}

/* A non-daemon child has closed its bootstrap channel (3) and keeps its
   status channel (4); 5 is empty or, on the portable path, its watch
   descriptor; nothing above: not a sibling's channel, not a server's. */
/* Polls its process until it has ended, as a pool's serving thread
   polls a worker that another thread may kill. */
static void poll_until_ended(void *arg)
{
    while (mproc_process_is_alive(arg) == 1) {}
}

/* Killed by one thread while another polls it: the poll reaps it, and the
   kill must never come after that (the pid may then belong to another
   process), so the two exclude each other; under TSan this test fails if
   they do not. Many rounds, so that the kill falls at every point of the
   poll. */
static void test_kill_while_another_thread_polls(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        mproc_process *p = tu_start(run_forever, NULL, 0);
        mproc__os_thread *poller;
        assert_int_equal(mproc__os_thread_start(&poller, poll_until_ended, p), 0);
        for (int i = 0; i < round; i++) mproc__os_yield();
        assert_int_equal(mproc_process_kill(p), 0);
        assert_int_equal(mproc_process_kill(p), 0); /* again, maybe after the reap */
        mproc__os_thread_join(poller);
        assert_int_equal(tu_join(p), -9);
        mproc_process_destroy(p);
    }
}

static int check_only_own_channels(const void *arg, size_t len)
{
    (void)arg; (void)len;
#ifndef _WIN32
    if (fcntl(3, F_GETFD) != -1 || fcntl(4, F_GETFD) == -1) return 1;
    for (int fd = 6; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1) return 2;
#endif
    return 0;
}

static void test_fd_hygiene(void **state)
{
    (void)state;
    /* with siblings running, whose channels the parent (or server) holds */
    mproc_process *a = tu_start(run_forever, NULL, 0), *b = tu_start(run_forever, NULL, 0);
    assert_int_equal(tu_run_child(check_only_own_channels, NULL, 0), 0);
    assert_int_equal(mproc_process_kill(a), 0);
    assert_int_equal(mproc_process_kill(b), 0);
    assert_int_equal(tu_join(a), -9);
    assert_int_equal(tu_join(b), -9);
    mproc_process_destroy(a);
    mproc_process_destroy(b);
#ifdef _WIN32
    /* An inheritable pipe end of the parent's must not reach the child: once
       the parent closes its copy, the pipe is broken only if no child holds
       one (an inherit-all CreateProcess would keep it open). */
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE r, w;
    DWORD avail = 0, err = 0;
    assert_true(CreatePipe(&r, &w, &sa, 0));
    mproc_process *p = tu_start(run_forever, NULL, 0);
    CloseHandle(w);
    BOOL open_elsewhere = PeekNamedPipe(r, NULL, 0, NULL, &avail, NULL);
    if (!open_elsewhere) err = GetLastError();
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    CloseHandle(r);
    assert_false(open_elsewhere);
    assert_int_equal(err, ERROR_BROKEN_PIPE);
#else
    int raw[2], fds[2];
    assert_int_equal(pipe(raw), 0);
    /* Deliberately without close-on-exec, and above the numbers a child's
       own channels take (3, 4, ...). */
    fds[0] = fcntl(raw[0], F_DUPFD, 100);
    fds[1] = fcntl(raw[1], F_DUPFD, 100);
    assert_true(fds[0] >= 100 && fds[1] >= 100);
    close(raw[0]);
    close(raw[1]);
    assert_int_equal(tu_run_child(check_fd_closed, &fds[0], sizeof fds[0]), 0);
    assert_int_equal(tu_run_child(check_fd_closed, &fds[1], sizeof fds[1]), 0);
    close(fds[0]);
    close(fds[1]);
#endif
}

/* A program running with privileges its invoker lacks (here: real uid
   nobody, effective uid root, so the kernel marks the exec AT_SECURE) must
   refuse child mode, whatever its environment says. */
static void test_setuid_child_mode_refused(void **state)
{
    (void)state;
#ifdef _WIN32
    skip(); /* no setuid on Windows */
#else
    if (geteuid() != 0) skip(); /* needs root to make ruid != euid */
    pid_t pid = fork();
    if (pid == 0) {
        mproc_process *p;
        int code = -1;
        if (setresuid(65534, 0, 0) != 0) _exit(10);
        if (mproc_process_create(&p, return_minus_one, NULL, 0, NULL) || mproc_process_start(p))
            _exit(11);
        int rc = mproc_process_join(p, TU_JOIN_TIMEOUT_MS);
        mproc_process_exitcode(p, &code);
        _exit(rc == MPROC_EBOOTSTRAP && code == MPROC_EXIT_BOOTSTRAP ? 0 : 12);
    }
    int status = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

/* ASan and TSan catch a segfault themselves: report, then exit(1). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define MPROC_TEST_SANITIZER_SEGV 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define MPROC_TEST_SANITIZER_SEGV 1
#  endif
#endif

static void test_crash_is_negative_signal(void **state)
{
    (void)state;
#ifndef _WIN32
    /* abort() is SIGABRT on POSIX (on Windows it exits with status 3). */
    assert_int_equal(tu_run_child(die_by_abort, NULL, 0), -SIGABRT);
#endif
#if defined(MPROC_TEST_SANITIZER_SEGV)
    (void)write_through_null;
    skip(); /* the sanitizer turns the segfault into its own report */
#else
    /* An access violation reads as -11 (SIGSEGV) on every OS. */
    assert_int_equal(tu_run_child(write_through_null, NULL, 0), -11);
#endif
}

static void test_bad_input(void **state)
{
    (void)state;
    mproc_process *p = NULL;
    int ec;
    char long_name[400];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    mproc_process_options named = {long_name, 0, MPROC_METHOD_DEFAULT};
    mproc_process_options bad_method = {NULL, 0, (mproc_start_method)42};
    assert_int_equal(mproc_process_create(NULL, return_minus_one, NULL, 0, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_create(&p, NULL, NULL, 0, NULL), MPROC_EINVAL);
    assert_null(p);
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 5, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, &named), MPROC_EINVAL);
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, &bad_method), MPROC_EINVAL);
    assert_null(p);
    assert_int_equal(mproc_process_start(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_join(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_process_is_alive(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_exitcode(NULL, &ec), MPROC_EINVAL);
    assert_int_equal(mproc_process_terminate(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_kill(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_pid(NULL), 0);
    assert_null(mproc_process_name(NULL));
    mproc_process_destroy(NULL);
    assert_int_equal(mproc_set_executable(""), MPROC_EINVAL);
    assert_int_equal(mproc_process_create(&p, return_minus_one, NULL, 0, NULL), 0);
    assert_int_equal(mproc_process_exitcode(p, NULL), MPROC_EINVAL);
    mproc_process_destroy(p);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = MPROC_EINVAL; e >= MPROC_EINTR; e--) {
        assert_non_null(strstr(mproc_strerror(e), "MPROC_E"));
        for (int f = e - 1; f >= MPROC_EINTR; f--)
            assert_string_not_equal(mproc_strerror(e), mproc_strerror(f));
    }
    assert_string_equal(mproc_strerror(12345), "unknown mproc error");
}

/* ---- forkserver faults ------------------------------------------------------ */
#ifndef _WIN32
static mproc_process *start_served(mproc_target target, const void *arg, size_t len)
{
    mproc_process *p = NULL;
    mproc_process_options opt = {NULL, 0, MPROC_FORKSERVER};
    assert_int_equal(mproc_process_create(&p, target, arg, len, &opt), 0);
    assert_int_equal(mproc_process_start(p), 0);
    return p;
}

/* A served child's parent is the server: it writes getppid() into the
   shared memory named by its argument, then runs until it is ended. */
static int report_server_pid_and_run(const void *arg, size_t len)
{
    mproc_shm *s;
    if (len != sizeof(mproc_ref) || mproc_shm_attach(arg, &s)) return 2;
    *(volatile int64_t *)mproc_shm_ptr(s) = (int64_t)getppid();
    return run_forever(NULL, 0);
}

/* Starts a served child that reports the server's pid; returns both. */
static mproc_process *served_with_server_pid(int64_t *server)
{
    mproc_shm *s;
    mproc_ref ref;
    assert_int_equal(mproc_shm_create(&s, NULL, 4096), 0);
    volatile int64_t *slot = mproc_shm_ptr(s);
    *slot = 0;
    assert_int_equal(mproc_shm_ref(s, &ref), 0);
    mproc_process *p = start_served(report_server_pid_and_run, &ref, sizeof ref);
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    while (*slot == 0 && mproc__os_now_ms() < deadline) mproc__os_sleep_ms(2);
    *server = *slot;
    mproc_shm_destroy(s);
    assert_true(*server > 0 && *server != mproc_current_pid());
    return p;
}

static void wait_until_gone(int64_t pid)
{
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    while (mproc__os_pid_alive(pid) && mproc__os_now_ms() < deadline) mproc__os_sleep_ms(5);
    assert_int_equal(mproc__os_pid_alive(pid), 0);
}
#endif

/* The server is killed while one of its children runs, and between
   starts: the child dies with it and its join says the status is lost
   (MPROC_ECHILD); the next start gets a new server. */
static void test_forkserver_killed(void **state)
{
    (void)state;
#ifdef _WIN32
    skip();
#else
    int64_t server, server2;
    int code = 0;
    unsigned char seven = 7;
    mproc_process *p = served_with_server_pid(&server);
    int64_t child = mproc_process_pid(p);
    assert_int_equal(kill((pid_t)server, SIGKILL), 0);
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), MPROC_ECHILD);
    assert_int_equal(mproc_process_is_alive(p), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, -9);
    assert_int_equal(mproc_process_kill(p), 0); /* ended: nothing to do */
    mproc_process_destroy(p);
    wait_until_gone(child);
    wait_until_gone(server);

    /* the next start notices and starts a new server */
    p = start_served(tu_exit_with_arg_byte, &seven, 1);
    assert_int_equal(tu_join(p), 7);
    mproc_process_destroy(p);
    p = served_with_server_pid(&server2);
    assert_true(server2 != server);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
#endif
}

/* A child killed from outside while the server lives is reported as
   killed (-9), and the same server goes on starting children. */
static void test_forkserver_child_killed(void **state)
{
    (void)state;
#ifdef _WIN32
    skip();
#else
    int64_t server, server2;
    mproc_process *p = served_with_server_pid(&server);
    assert_int_equal(kill((pid_t)mproc_process_pid(p), SIGKILL), 0);
    assert_int_equal(tu_join(p), -9);
    mproc_process_destroy(p);
    p = served_with_server_pid(&server2);
    assert_int_equal(server2, server);
    assert_int_equal(mproc_process_terminate(p), 0);
    assert_int_equal(tu_join(p), -15);
    mproc_process_destroy(p);
    assert_int_equal(mproc__os_pid_alive(server), 1);
#endif
}

#ifndef _WIN32
/* The server's children other than `running` (its spares), once it has
   forked at least one (it does so when requests pause), where the OS
   lists children. */
static size_t spares_of(int64_t server, int64_t running, int64_t kids[16])
{
    size_t n = 0;
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    for (;;) {
        size_t m = tu_children_of(server, kids, 16);
        n = 0;
        for (size_t i = 0; i < m; i++)
            if (kids[i] != running) kids[n++] = kids[i];
        if (n || mproc__os_now_ms() >= deadline || tu_children_of(mproc_current_pid(), kids + n, 1) == 0)
            return n;
        mproc__os_sleep_ms(2);
    }
}
#endif

/* The server keeps spare children forked ahead of requests. Killed from
   outside (here: every child of the server but the running one), they are
   reaped and replaced: the next starts work, with the same server. */
static void test_forkserver_spares_killed(void **state)
{
    (void)state;
#ifdef _WIN32
    skip();
#else
    int64_t server, server2, kids[16];
    unsigned char seven = 7;
    mproc_process *p = served_with_server_pid(&server);
    int64_t running = mproc_process_pid(p);
    size_t n = spares_of(server, running, kids), killed = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kill((pid_t)kids[i], SIGKILL), 0);
        killed++;
    }
    /* reaped by the server: no longer its children, not even as zombies */
    uint64_t deadline = mproc__os_now_ms() + TU_JOIN_TIMEOUT_MS;
    for (int left = 1; left && mproc__os_now_ms() < deadline;) {
        int64_t now_kids[16];
        size_t m = tu_children_of(server, now_kids, 16);
        left = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < m; j++) left += kids[i] != running && kids[i] == now_kids[j];
        if (left) mproc__os_sleep_ms(5);
    }
    for (size_t i = 0; i < n; i++)
        if (kids[i] != running) wait_until_gone(kids[i]);
    for (int round = 0; round < 3; round++) {
        mproc_process *q = start_served(tu_exit_with_arg_byte, &seven, 1);
        assert_int_equal(tu_join(q), 7);
        mproc_process_destroy(q);
    }
    mproc_process *p2 = served_with_server_pid(&server2);
    assert_int_equal(server2, server);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(mproc_process_kill(p2), 0);
    assert_int_equal(tu_join(p), -9);
    assert_int_equal(tu_join(p2), -9);
    mproc_process_destroy(p);
    mproc_process_destroy(p2);
    /* Where the OS lists children (the server is one of ours), it had at
       least one spare waiting; elsewhere there was nothing to kill. */
    if (n == 0 && tu_children_of(mproc_current_pid(), kids, 16) == 0) skip();
    assert_true(killed >= 1);
#endif
}

/* ---- the bootstrap message parser rejects every malformed message ------- */
static unsigned char *valid_message(size_t *len)
{
    static mproc__boot b;
    unsigned char *msg;
    memset(&b, 0, sizeof b);
    strcpy(b.target.module, "libexample.so");
    strcpy(b.name, "Process-1");
    b.parent_pid = 1234;
    b.arg = (const unsigned char *)"hello";
    b.arg_len = 5;
    b.nobjects = 1;
    b.objects[0].kind = 1;
    b.objects[0].nhandles = 2;
    assert_int_equal(mproc__boot_encode(&b, &msg, len), 0);
    return msg;
}

static void test_bootstrap_rejects_corruption(void **state)
{
    (void)state;
    size_t len;
    unsigned char *msg = valid_message(&len);
    mproc__boot *out = malloc(sizeof *out);
    assert_non_null(out);
    assert_int_equal(mproc__boot_decode(msg, len, out), 0);
    assert_string_equal(out->name, "Process-1");
    assert_int_equal(out->arg_len, 5);
    assert_int_equal(out->nobjects, 1);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(mproc__boot_decode(msg, cut, out), MPROC_EPROTO);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            msg[i] ^= (unsigned char)(1u << bit);
            assert_int_equal(mproc__boot_decode(msg, len, out), MPROC_EPROTO);
            msg[i] ^= (unsigned char)(1u << bit);
        }
    free(out);
    free(msg);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_states_and_wrong_order),
        cmocka_unit_test(test_join_timeout_then_terminate),
        cmocka_unit_test(test_kill),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parent_pid),
        cmocka_unit_test(test_argument_alignment),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_argument_64mib),
        cmocka_unit_test(test_grandchild),
        tu_test_methods(test_missing_guard, TU_M(MPROC_SPAWN)),
        tu_test_once(test_start_methods),
        cmocka_unit_test(test_daemon_destroy_kills),
        cmocka_unit_test(test_daemon_dies_with_parent),
        tu_test_methods(test_fd_hygiene, TU_EXCEPT_FORK),
        tu_test_methods(test_spawn_from_threads, TU_EXCEPT_FORK),
        cmocka_unit_test(test_kill_while_another_thread_polls),
        /* a forked child would run CMocka's crash handler (inherited) */
        tu_test_methods(test_crash_is_negative_signal, TU_EXCEPT_FORK),
        tu_test_methods(test_setuid_child_mode_refused, TU_M(MPROC_SPAWN)),
        tu_test_methods(test_forkserver_killed, TU_M(MPROC_FORKSERVER)),
        tu_test_methods(test_forkserver_child_killed, TU_M(MPROC_FORKSERVER)),
        tu_test_methods(test_forkserver_spares_killed, TU_M(MPROC_FORKSERVER)),
        tu_test_once(test_bad_input),
        tu_test_once(test_strerror),
        tu_test_once(test_bootstrap_rejects_corruption),
        tu_test_once(test_fork_child_exit_spares_siblings),
        tu_test_once(test_wait_unstarted_process),
        tu_test_once(test_child_start_method),
        tu_test_once(test_atexit_own_handlers),
        tu_test_once(test_active_children),
        tu_test_once(test_join_children),
        cmocka_unit_test(test_interrupt),
    };
    return TU_RUN(argc, argv, tests);
}
