/* Win32: the pool's two OS calls (see the "pool" section of os.h). */
#include "w32.h"

/* The pipe ends mproc__os_pipe makes are named-pipe handles, the read end
   opened for overlapped I/O: a read needs an OVERLAPPED and an event, even
   when it waits without limit. */
int mproc__os_read_some(mproc__handle h, void *buf, size_t cap, size_t *got)
{
    HANDLE w = mproc__w32_handle(h);
    DWORD want = cap > (1u << 30) ? (1u << 30) : (DWORD)cap, n = 0, err = 0;
    OVERLAPPED ov;
    *got = 0;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL) return mproc__fail_os_last();
    if (!ReadFile(w, buf, want, NULL, &ov)) {
        err = GetLastError();
        if (err == ERROR_IO_PENDING) err = 0;
    }
    if (err == 0 && !GetOverlappedResult(w, &ov, &n, TRUE)) err = GetLastError();
    CloseHandle(ov.hEvent);
    if (err == ERROR_MORE_DATA) err = 0;
    if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF || err == ERROR_PIPE_NOT_CONNECTED ||
        err == ERROR_NO_DATA)
        return MPROC_ECLOSED;
    if (err) return mproc__fail_os((int)err);
    /* A successful read of nothing is end of file: mproc never writes 0 bytes. */
    if (n == 0) return MPROC_ECLOSED;
    *got = n;
    return 0;
}

int mproc__os_read_some_or_exit(mproc__handle h, mproc__handle proc, void *buf, size_t cap,
                                size_t *got)
{
    (void)proc;
    return mproc__os_read_some(h, buf, cap, got);
}

void mproc__os_ignore_interrupts(void)
{
    /* Failure leaves Ctrl-C's default, which is what a worker had anyway. */
    (void)SetConsoleCtrlHandler(NULL, TRUE);
}
