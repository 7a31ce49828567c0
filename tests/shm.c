/* SharedMemory across real processes: generated and user names, open by
   name, refs, unlink, lifetimes, bad input. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#ifndef _WIN32
#  include <fcntl.h>
#  include <sys/mman.h>
#  include <sys/stat.h>
#  include <unistd.h>
#endif

#define LONG_MS 60000

typedef struct targ {
    mproc_ref r[2];
    char name[128];
    size_t size;
} targ;

/* Copied out, so an argument of the wrong length reads as zeros. */
static const targ *child_arg(targ *buf, const void *arg, size_t len)
{
    memset(buf, 0, sizeof *buf);
    if (len == sizeof *buf) memcpy(buf, arg, len);
    return buf;
}

/* A user name unique to this run ("mpt" + pid + tag: within 30 chars). */
static void unique_name(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "mpt%lld%s", (long long)mproc_current_pid(), tag);
}

static unsigned char pat(size_t i) { return (unsigned char)(i * 131u + 7u); }

static void fill(mproc_shm *s)
{
    unsigned char *p = mproc_shm_ptr(s);
    for (size_t i = 0; i < mproc_shm_size(s); i++) p[i] = pat(i);
}

/* Child: checks the pattern, then flips every byte. */
static int check_and_flip(mproc_shm *s, size_t size)
{
    unsigned char *p = mproc_shm_ptr(s);
    if (!p || mproc_shm_size(s) != size) return 20;
    for (size_t i = 0; i < size; i++) {
        if (p[i] != pat(i)) return 21;
        p[i] = (unsigned char)~p[i];
    }
    return 0;
}

static void expect_flipped(mproc_shm *s)
{
    unsigned char *p = mproc_shm_ptr(s);
    for (size_t i = 0; i < mproc_shm_size(s); i++) assert_int_equal(p[i], (unsigned char)~pat(i));
}

/* Child: opens a.name. */
static int child_open_by_name(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *s = NULL;
    if (len != sizeof *a) return 10;
    int rc = mproc_shm_open(&s, a->name);
    if (rc) return 11;
    if (strcmp(mproc_shm_name(s), a->name) != 0) return 12;
    rc = check_and_flip(s, a->size);
    mproc_shm_destroy(s);
    return rc;
}

/* Child: attaches r[0]. */
static int child_attach(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_shm_attach(&a->r[0], &s)) return 10;
    if (strcmp(mproc_shm_name(s), a->name) != 0) return 12;
    int rc = check_and_flip(s, a->size);
    mproc_shm_destroy(s);
    return rc;
}

static void generated_open_by_name(void **state)
{
    (void)state;
    mproc_shm *s = NULL;
    targ a;
    memset(&a, 0, sizeof a);
    a.size = 100001; /* not a page multiple: the exact size must come back */
    assert_int_equal(mproc_shm_create(&s, NULL, a.size), 0);
    assert_int_equal(mproc_shm_size(s), a.size);
    assert_true(strlen(mproc_shm_name(s)) > 0);
    assert_int_equal(((uintptr_t)mproc_shm_ptr(s)) % 64, 0);
    const unsigned char *p = mproc_shm_ptr(s);
    for (size_t i = 0; i < a.size; i++) assert_int_equal(p[i], 0);
    fill(s);
    snprintf(a.name, sizeof a.name, "%s", mproc_shm_name(s));
    assert_int_equal(tu_run_child(child_open_by_name, &a, sizeof a), 0);
    expect_flipped(s);
    mproc_shm_destroy(s);
}

static void attach_by_ref(void **state)
{
    (void)state;
    mproc_shm *s = NULL;
    targ a;
    memset(&a, 0, sizeof a);
    a.size = 5000;
    assert_int_equal(mproc_shm_create(&s, NULL, a.size), 0);
    fill(s);
    snprintf(a.name, sizeof a.name, "%s", mproc_shm_name(s));
    assert_int_equal(mproc_shm_ref(s, &a.r[0]), 0);
    assert_int_equal(tu_run_child(child_attach, &a, sizeof a), 0);
    expect_flipped(s);
    mproc_shm_destroy(s);
}

static void named_lifecycle(void **state)
{
    (void)state;
    mproc_shm *s = NULL, *again = NULL;
    targ a;
    memset(&a, 0, sizeof a);
    a.size = 4096;
    unique_name(a.name, sizeof a.name, "life");
    assert_int_equal(mproc_shm_create(&s, a.name, a.size), 0);
    assert_string_equal(mproc_shm_name(s), a.name);
    assert_int_equal(mproc_shm_create(&again, a.name, a.size), MPROC_EEXIST);
#ifdef __linux__
    {   /* owner-only */
        char path[160];
        struct stat st;
        snprintf(path, sizeof path, "/dev/shm/%s", a.name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
#endif
    fill(s);
    assert_int_equal(tu_run_child(child_open_by_name, &a, sizeof a), 0);
    expect_flipped(s);
    /* Shared by ref too, with its name. */
    fill(s);
    assert_int_equal(mproc_shm_ref(s, &a.r[0]), 0);
    assert_int_equal(tu_run_child(child_attach, &a, sizeof a), 0);
    expect_flipped(s);
    assert_int_equal(mproc_shm_unlink(s), 0);
    assert_int_equal(mproc_shm_unlink(s), MPROC_ENOENT);
    assert_int_equal(mproc_shm_open(&again, a.name), MPROC_ENOENT); /* Windows too */
    /* Still mapped after unlink. */
    ((unsigned char *)mproc_shm_ptr(s))[0] = 1;
    mproc_shm_destroy(s);
}

/* The leading '/' is accepted and dropped. */
static void slash_name(void **state)
{
    (void)state;
    char name[64], slashed[80];
    mproc_shm *s = NULL, *o = NULL;
    unique_name(name, sizeof name, "sl");
    snprintf(slashed, sizeof slashed, "/%s", name);
    assert_int_equal(mproc_shm_create(&s, slashed, 10), 0);
    assert_string_equal(mproc_shm_name(s), name);
    assert_int_equal(mproc_shm_open(&o, name), 0);
    assert_int_equal(mproc_shm_size(o), 10);
    mproc_shm_destroy(o);
    assert_int_equal(mproc_shm_unlink(s), 0);
    mproc_shm_destroy(s);
}

#ifndef _WIN32
/* POSIX: a user-named segment outlives its creator, even a killed one. */
static int child_create_named_and_die(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_shm_create(&s, a->name, a->size)) return 10;
    fill(s);
    mproc__os_exit_now(0); /* no destroy, no atexit */
    return 0;
}

static void named_outlives_creator(void **state)
{
    (void)state;
    targ a;
    mproc_shm *s = NULL;
    memset(&a, 0, sizeof a);
    a.size = 3000;
    unique_name(a.name, sizeof a.name, "out");
    assert_int_equal(tu_run_child(child_create_named_and_die, &a, sizeof a), 0);
    assert_int_equal(mproc_shm_open(&s, a.name), 0);
    assert_int_equal(mproc_shm_size(s), a.size);
    assert_int_equal(((unsigned char *)mproc_shm_ptr(s))[2999], pat(2999));
    assert_int_equal(mproc_shm_unlink(s), 0);
    mproc_shm_destroy(s);
    assert_int_equal(mproc_shm_open(&s, a.name), MPROC_ENOENT);
}

/* A segment made by another program (no mproc header) is used whole. */
static void foreign_segment(void **state)
{
    (void)state;
    char name[64], path[80];
    mproc_shm *s = NULL;
    unique_name(name, sizeof name, "for");
    snprintf(path, sizeof path, "/%s", name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8192), 0);
    close(fd);
    assert_int_equal(mproc_shm_open(&s, name), 0);
    assert_true(mproc_shm_size(s) >= 8192);
    assert_int_equal(mproc_shm_unlink(s), 0);
    mproc_shm_destroy(s);
}
#endif

static void generated_unlink_and_destroy(void **state)
{
    (void)state;
    mproc_shm *s = NULL, *o = NULL;
    char name[128];
    assert_int_equal(mproc_shm_create(&s, NULL, 64), 0);
    snprintf(name, sizeof name, "%s", mproc_shm_name(s));
    assert_int_equal(mproc_shm_open(&o, name), 0);
    /* The creator unlinks: gone for opens, both mappings stay. */
    assert_int_equal(mproc_shm_unlink(s), 0);
    assert_int_equal(mproc_shm_unlink(o), MPROC_ENOENT);
    mproc_shm_destroy(o);
    o = NULL;
    assert_int_equal(mproc_shm_open(&o, name), MPROC_ENOENT);
    mproc_shm_destroy(s);
    /* Destroying the creator's handle ends the name as well. */
    assert_int_equal(mproc_shm_create(&s, NULL, 64), 0);
    snprintf(name, sizeof name, "%s", mproc_shm_name(s));
    mproc_shm_destroy(s);
    assert_int_equal(mproc_shm_open(&o, name), MPROC_ENOENT);
}

/* Item 4 (issue 15): a process other than the creator really unlinks a
   generated name (Python's unlink works from any process). */
static int child_open_and_unlink(const void *arg, size_t len)
{
    targ a_;
    const targ *a = child_arg(&a_, arg, len);
    mproc_shm *s = NULL;
    if (len != sizeof *a || mproc_shm_open(&s, a->name)) return 10;
    int rc = mproc_shm_unlink(s);
    ((unsigned char *)mproc_shm_ptr(s))[1] = 0x5a; /* still mapped */
    mproc_shm_destroy(s);
    return rc == 0 ? 0 : 11;
}

static void generated_unlink_by_other_process(void **state)
{
    (void)state;
    mproc_shm *s = NULL, *o = NULL;
    targ a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_shm_create(&s, NULL, 64), 0);
    snprintf(a.name, sizeof a.name, "%s", mproc_shm_name(s));
    a.size = 64;
    assert_int_equal(mproc_shm_ref(s, &a.r[0]), 0);
    assert_int_equal(tu_run_child(child_open_and_unlink, &a, sizeof a), 0);
    assert_int_equal(((unsigned char *)mproc_shm_ptr(s))[1], 0x5a);
    assert_int_equal(mproc_shm_open(&o, a.name), MPROC_ENOENT);
    assert_int_equal(mproc_shm_unlink(s), MPROC_ENOENT); /* already gone */
    /* a ref still reaches the memory, as a mapping does */
    fill(s);
    assert_int_equal(tu_run_child(child_attach, &a, sizeof a), 0);
    expect_flipped(s);
    mproc_shm_destroy(s);
    assert_int_equal(mproc_shm_open(&o, a.name), MPROC_ENOENT);
}

static void bad_input(void **state)
{
    (void)state;
    mproc_shm *s = NULL;
    mproc_ref zero, ref;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(mproc_shm_create(NULL, NULL, 10), MPROC_EINVAL);
    assert_int_equal(mproc_shm_create(&s, NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_shm_create(&s, NULL, SIZE_MAX), MPROC_EINVAL);
    const char *bad[] = {"", "/", "a/b", "with space", "..", "naïve", "//x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mproc_shm_create(&s, bad[i], 10), MPROC_EINVAL);
        assert_int_equal(mproc_shm_open(&s, bad[i]), MPROC_EINVAL);
    }
    /* 31 characters: too long to create (macOS's limit), fine to look up. */
    assert_int_equal(mproc_shm_create(&s, "0123456789012345678901234567890", 10), MPROC_EINVAL);
    assert_int_equal(mproc_shm_open(&s, "0123456789012345678901234567890"), MPROC_ENOENT);
    assert_int_equal(mproc_shm_open(&s, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_shm_open(NULL, "x"), MPROC_EINVAL);
    assert_int_equal(mproc_shm_open(&s, "mproc-no-such-segment"), MPROC_ENOENT);
    assert_int_equal(mproc_shm_open(&s, "mproc-1-3-0123456789abcdef0123"), MPROC_ENOENT);
    assert_null(mproc_shm_ptr(NULL));
    assert_int_equal(mproc_shm_size(NULL), 0);
    assert_null(mproc_shm_name(NULL));
    assert_int_equal(mproc_shm_unlink(NULL), MPROC_EINVAL);
    mproc_shm_destroy(NULL);
    assert_int_equal(mproc_shm_attach(&zero, &s), MPROC_EINVAL);
    assert_int_equal(mproc_shm_attach(NULL, &s), MPROC_EINVAL);
    /* Wrong kind and stale refs. */
    mproc_lock *l = NULL;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_ref(l, &ref), 0);
    assert_int_equal(mproc_shm_attach(&ref, &s), MPROC_EINVAL);
    mproc_lock_destroy(l);
    assert_int_equal(mproc_shm_create(&s, NULL, 10), 0);
    assert_int_equal(mproc_shm_ref(s, &ref), 0);
    mproc_shm_destroy(s);
    assert_int_equal(mproc_shm_attach(&ref, &s), MPROC_ENOENT);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_open_by_name),
        cmocka_unit_test(attach_by_ref),
        cmocka_unit_test(named_lifecycle),
        cmocka_unit_test(slash_name),
#ifndef _WIN32
        cmocka_unit_test(named_outlives_creator),
        cmocka_unit_test(foreign_segment),
#endif
        cmocka_unit_test(generated_unlink_and_destroy),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(generated_unlink_by_other_process),
    };
    return TU_RUN(argc, argv, tests);
}
