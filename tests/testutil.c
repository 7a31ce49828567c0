#include "testutil.h"

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
