#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mproc_process *tu_start(mproc_target target, const void *arg, size_t arg_len)
{
    mproc_process *p = NULL;
    assert_int_equal(mproc_process_create(&p, target, arg, arg_len, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    return p;
}

int tu_join(mproc_process *p)
{
    int code = -1000;
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    return code;
}

int tu_run_child(mproc_target target, const void *arg, size_t arg_len)
{
    mproc_process *p = tu_start(target, arg, arg_len);
    int code = tu_join(p);
    mproc_process_destroy(p);
    return code;
}

void tu_fill(unsigned char *p, size_t n, uint64_t seed)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = (seed + i) * 0x9E3779B97F4A7C15ULL;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] = (unsigned char)(seed + i);
}

int tu_check(const unsigned char *p, size_t n, uint64_t seed)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = (seed + i) * 0x9E3779B97F4A7C15ULL;
        if (memcmp(p + i, &v, 8) != 0) return 0;
    }
    for (; i < n; i++)
        if (p[i] != (unsigned char)(seed + i)) return 0;
    return 1;
}

/* ---- start methods and single cases ---------------------------------------- */
#define METHOD_ENV "MPROC_TEST_METHOD"
static const char *const method_names[] = {"default", "spawn", "fork", "forkserver"};
enum { N_METHODS = 4 };

static mproc_start_method method_by_name(const char *name)
{
    for (int m = MPROC_SPAWN; m < N_METHODS; m++)
        if (strcmp(name, method_names[m]) == 0) return (mproc_start_method)m;
    return MPROC_METHOD_DEFAULT;
}

static const char *option(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}

static void set_env(const char *name, const char *value)
{
#ifdef _WIN32
    _putenv_s(name, value);
#else
    setenv(name, value, 1);
#endif
}

void tu_guard(int argc, char **argv)
{
    const char *name = option(argc, argv, "--method");
    if (name) set_env(METHOD_ENV, name); /* for the children, spawned or served */
    name = getenv(METHOD_ENV);
    if (name && *name) {
        mproc_start_method m = method_by_name(name);
        if (m == MPROC_METHOD_DEFAULT || mproc_set_start_method(m) != 0) {
            fprintf(stderr, "start method '%s' does not exist here\n", name);
            exit(2);
        }
    }
    if (mproc_main_guard(argc, argv) != 0) exit(3);
}

mproc_start_method tu_method(void) { return mproc_get_start_method(); }

/* The methods a case runs under here, as a mask (TU_ONCE: once). */
static unsigned case_methods(const struct CMUnitTest *t)
{
    unsigned mask = (unsigned)(uintptr_t)t->initial_state, have = 0;
#ifdef TU_EVERY_METHOD
    if (!mask) mask = TU_M(MPROC_SPAWN) | TU_M(MPROC_FORK) | TU_M(MPROC_FORKSERVER);
#endif
    if (!mask || mask == TU_ONCE) return TU_ONCE;
#ifdef TU_NO_FORK
    mask &= ~TU_M(MPROC_FORK); /* see tests/CMakeLists.txt */
#endif
    mproc_start_method saved = mproc_get_start_method();
    for (int m = MPROC_SPAWN; m < N_METHODS; m++)
        if ((mask & TU_M(m)) && mproc_set_start_method((mproc_start_method)m) == 0) have |= TU_M(m);
    mproc_set_start_method(saved);
    return have; /* 0: none of its methods exists here, it never runs */
}

static void list_cases(const struct CMUnitTest *tests, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned mask = case_methods(&tests[i]);
        if (!mask) continue;
        printf("%s", tests[i].name);
        if (mask == TU_ONCE) printf(" -");
        for (int m = MPROC_SPAWN; m < N_METHODS; m++)
            if (mask != TU_ONCE && (mask & TU_M(m))) printf(" %s", method_names[m]);
        printf("\n");
    }
}

int tu_run(int argc, char **argv, const struct CMUnitTest *tests, size_t n)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--list") == 0) {
            list_cases(tests, n);
            return 0;
        }
    const char *only = option(argc, argv, "--case");
    const char *method = getenv(METHOD_ENV);
    mproc_start_method m = method && *method ? tu_method() : MPROC_METHOD_DEFAULT;
    struct CMUnitTest *picked = calloc(n ? n : 1, sizeof *picked);
    size_t k = 0;
    if (!picked) return 2;
    for (size_t i = 0; i < n; i++) {
        unsigned mask = case_methods(&tests[i]);
        /* A case that runs once runs without a method given (as ctest
           runs it): under --method M its children would take M from
           MPROC_TEST_METHOD instead of following mproc's own rules. */
        int runs = mask && (m == MPROC_METHOD_DEFAULT ||
                            (mask != TU_ONCE && (mask & TU_M(m)) != 0));
        if (only) runs = strcmp(tests[i].name, only) == 0 && (runs || mask == TU_ONCE);

        if (runs) picked[k++] = tests[i];
    }
    if (only && k != 1) {
        fprintf(stderr, "no case '%s' under start method %s\n", only, method_names[m]);
        free(picked);
        return 2;
    }
    int rc = _cmocka_run_group_tests(method_names[m], picked, k, NULL, NULL);
    free(picked);
    return rc;
}

void tu_start_method_ready(void)
{
    unsigned char code = 0;
    assert_int_equal(tu_run_child(tu_exit_with_arg_byte, &code, 1), 0);
}

size_t tu_children_of(int64_t pid, int64_t *out, size_t cap)
{
    size_t n = 0;
#ifdef __linux__
    char path[80];
    long long child;
    snprintf(path, sizeof path, "/proc/%lld/task/%lld/children", (long long)pid, (long long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (n < cap && fscanf(f, "%lld", &child) == 1) out[n++] = child;
    fclose(f);
#else
    (void)pid;
    (void)out;
    (void)cap;
#endif
    return n;
}

int tu_exit_with_arg_byte(const void *arg, size_t len)
{
    return len == 1 ? *(const unsigned char *)arg : 100;
}
