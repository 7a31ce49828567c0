/* Starts a child through an installed mproc and checks its exit code. */
#include <stdio.h>

#include <mproc.h>

static int child(const void *arg, size_t len)
{
    (void)arg;
    return (int)len;
}

int main(int argc, char **argv)
{
    mproc_process *p;
    int code = -1;
    if (mproc_main_guard(argc, argv) != 0) return 1;
    if (mproc_process_create(&p, child, "abc", 3, NULL) || mproc_process_start(p) ||
        mproc_process_join(p, 60000) || mproc_process_exitcode(p, &code) || code != 3) {
        fprintf(stderr, "consumer: child failed (code %d)\n", code);
        return 1;
    }
    mproc_process_destroy(p);
    printf("consumer: ok (%d CPUs)\n", mproc_cpu_count());
    return 0;
}
