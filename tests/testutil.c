#include "testutil.h"

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
