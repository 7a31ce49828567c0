/* Seed example 1: five processes double five numbers and say who they are.
   The C form of:
       for number in [5, 10, 15, 20, 25]:
           Process(target=doubler, args=(number,)).start()   ... then join all */
#include <stdio.h>
#include <string.h>

#include <mproc.h>

static int doubler(const void *arg, size_t len)
{
    int number;
    if (len != sizeof number) return 1;
    memcpy(&number, arg, sizeof number);
    printf("%d doubled to %d by process id: %lld\n", number, number * 2,
           (long long)mproc_current_pid());
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1; /* if __name__ == '__main__': */
    int numbers[] = {5, 10, 15, 20, 25};
    enum { N = sizeof numbers / sizeof numbers[0] };
    mproc_process *procs[N] = {0};
    int rc = 0;
    for (int i = 0; i < N && rc == 0; i++) {
        rc = mproc_process_create(&procs[i], doubler, &numbers[i], sizeof numbers[i], NULL);
        if (rc == 0) rc = mproc_process_start(procs[i]);
    }
    /* The join loop keeps the program here until every process has ended. */
    for (int i = 0; i < N; i++) {
        if (procs[i] && mproc_process_join(procs[i], MPROC_FOREVER) != 0 && rc == 0) rc = -1;
        mproc_process_destroy(procs[i]);
    }
    if (rc) fprintf(stderr, "doubler: %s\n", mproc_strerror(rc));
    return rc ? 1 : 0;
}
