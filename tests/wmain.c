/* A Windows program whose entry point is wmain (UTF-16 arguments) uses the
   main guard as main does: the guard reads neither argc nor argv (a spawned
   child learns its target through its environment and an inherited
   channel), so wmain passes 0 and NULL. The child is the same program,
   entered through wmain too. Built on Windows only (MinGW needs -municode). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <wchar.h>

#include <cmocka.h>

#include "mproc.h"

static int exit_with_byte(const void *arg, size_t len)
{
    return len == 1 ? *(const unsigned char *)arg : 255;
}

static void child_of_a_wmain_program_runs_its_target(void **state)
{
    (void)state;
    unsigned char code = 42;
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, exit_with_byte, &code, 1, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, 120000), 0);
    int got = -1;
    assert_int_equal(mproc_process_exitcode(p, &got), 0);
    assert_int_equal(got, 42);
    mproc_process_destroy(p);
}

int wmain(int argc, wchar_t **argv);
int wmain(int argc, wchar_t **argv)
{
    (void)argc;
    (void)argv;
    if (mproc_main_guard(0, NULL) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_of_a_wmain_program_runs_its_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
