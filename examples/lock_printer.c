/*
 * Seed example 2: a Lock passed to several processes serialises their
 * output. The Python original:
 *
 *     def printer(item, lock):
 *         lock.acquire()
 *         try:
 *             print(item)
 *         finally:
 *             lock.release()
 *
 *     if __name__ == '__main__':
 *         lock = Lock()
 *         items = ['tango', 'foxtrot', 10]
 *         for item in items:
 *             p = Process(target=printer, args=(item, lock))
 *             p.start()
 *
 * In C the lock travels as a ref inside the child's argument (the bytes
 * Python would pickle); the child attaches to it.
 */
#include <mproc.h>

#include <stdio.h>
#include <string.h>

typedef struct printer_args {
    char item[32];
    mproc_ref lock;
} printer_args;

static int printer(const void *arg, size_t len)
{
    printer_args a;
    mproc_lock *lock;
    /* Unpickling, C style: copy the argument bytes into the struct. */
    if (len != sizeof a) return 1;
    memcpy(&a, arg, sizeof a);
    if (mproc_lock_attach(&a.lock, &lock) != 0) return 1;
    int rc = mproc_lock_acquire(lock, MPROC_FOREVER);
    if (rc != 0 && rc != MPROC_EOWNERDEAD) return 1;
    printf("%s\n", a.item);
    fflush(stdout); /* the output leaves while the lock is held */
    mproc_lock_release(lock);
    mproc_lock_destroy(lock);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = mproc_main_guard(argc, argv);
    if (rc != 0) return 1;

    mproc_lock *lock;
    rc = mproc_lock_create(&lock);
    if (rc != 0) {
        fprintf(stderr, "lock: %s\n", mproc_strerror(rc));
        return 1;
    }
    const char *items[] = {"tango", "foxtrot", "10"};
    mproc_process *procs[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        printer_args a;
        memset(&a, 0, sizeof a);
        snprintf(a.item, sizeof a.item, "%s", items[i]);
        mproc_lock_ref(lock, &a.lock);
        rc = mproc_process_create(&procs[i], printer, &a, sizeof a, NULL);
        if (rc == 0) rc = mproc_process_start(procs[i]);
        if (rc != 0) {
            fprintf(stderr, "start: %s\n", mproc_strerror(rc));
            break;
        }
    }
    /* Python joins non-daemon children at exit; C says so. */
    int status = rc != 0;
    for (int i = 0; i < 3 && procs[i]; i++) {
        int code = -1;
        if (mproc_process_join(procs[i], MPROC_FOREVER) != 0 ||
            mproc_process_exitcode(procs[i], &code) != 0 || code != 0)
            status = 1;
        mproc_process_destroy(procs[i]);
    }
    mproc_lock_destroy(lock);
    return status;
}
