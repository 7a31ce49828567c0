/* POSIX: the pool's two OS calls (see the "pool" section of os.h). */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

int mproc__os_read_some(mproc__handle h, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    for (;;) {
        ssize_t n = read((int)h, buf, cap);
        if (n > 0) {
            *got = (size_t)n;
            return 0;
        }
        if (n == 0) return MPROC_ECLOSED;
        if (errno != EINTR) return mproc__fail_os_last();
    }
}

int mproc__os_read_some_or_exit(mproc__handle h, mproc__handle proc, void *buf, size_t cap,
                                size_t *got)
{
    struct pollfd p[2] = {{(int)h, POLLIN, 0}, {(int)proc, POLLIN, 0}};
    nfds_t n = proc == MPROC__NO_HANDLE ? 1 : 2;
    *got = 0;
    for (;;) {
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR) continue;
            return mproc__fail_os_last();
        }
        /* Data first: a worker's last words arrive before its end. */
        if (p[0].revents) return mproc__os_read_some(h, buf, cap, got);
        if (p[1].revents) return MPROC_ECLOSED;
    }
}

void mproc__os_ignore_interrupts(void)
{
    /* Cannot fail for SIGINT with a valid disposition. */
    (void)signal(SIGINT, SIG_IGN);
}
