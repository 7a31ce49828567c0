/* CPU counts: sane values, consistent with each other and with the OS. */
#include "testutil.h"

#ifndef _WIN32
#  include <unistd.h>
#endif

static void test_counts(void **state)
{
    (void)state;
    int all = mproc_cpu_count(), mine = mproc_process_cpu_count();
    assert_true(all >= 1);
    assert_true(mine >= 1);
    assert_true(mine <= all);
#ifndef _WIN32
    assert_int_equal(all, (int)sysconf(_SC_NPROCESSORS_ONLN));
#endif
}

static int child_count(const void *arg, size_t len)
{
    (void)arg; (void)len;
    return mproc_process_cpu_count();
}

static void test_child_sees_same_count(void **state)
{
    (void)state;
    assert_int_equal(tu_run_child(child_count, NULL, 0), mproc_process_cpu_count());
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counts),
    cmocka_unit_test(test_child_sees_same_count),
};
TU_MAIN(tests)
