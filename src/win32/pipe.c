/* Win32 conn links: overlapped duplex named pipes (unique random names,
   local clients only, handles not inheritable) that carry one-byte wake-up
   tokens and report when the other end has gone; waits on any number of
   handles, the queue's doorbell (a semaphore) and yielding. See the
   "conn links" section of os.h for the contract. */
#include "w32.h"

#include <stdio.h>

#define LINK_BUF 4096      /* kernel buffer: tokens only, a full pipe has enough */
#define LINK_RING_MAX 64   /* tokens per ring */
#define WAIT_GROUP (MAXIMUM_WAIT_OBJECTS - 1)

/* The one-byte read (sleep / arm) and what became of it. A completed read
   is held until sleep or disarm takes it, so no token is lost between them. */
enum { READ_IDLE, READ_PENDING, READ_TOKEN, READ_GONE };

/* The two threads of a duplex conn may ring and sleep on one link at the
   same time: rings take turns on wov (wlock); each sleep has an OVERLAPPED
   of its own on its stack (it ends its read before returning); arm /
   disarm (one waiter at a time) use rov, which must outlive the calls. */
struct mproc__os_link {
    HANDLE h;
    OVERLAPPED rov, wov;
    SRWLOCK wlock;
    int rstate;
    volatile LONG gone; /* a read saw the other end gone */
    unsigned char rbuf[1];
    unsigned char wbuf[LINK_RING_MAX];
};

static int closed_error(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA || e == ERROR_PIPE_NOT_CONNECTED ||
           e == ERROR_HANDLE_EOF;
}

static int io_error(DWORD e) { return closed_error(e) ? MPROC_ECLOSED : mproc__fail_os(e); }

/* ---- set-up --------------------------------------------------------------- */
static int link_new(HANDLE h, mproc__os_link **out)
{
    mproc__os_link *l = mproc__calloc(1, sizeof *l);
    if (l) {
        l->rov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        l->wov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    }
    if (!l || !l->rov.hEvent || !l->wov.hEvent) {
        int rc = l ? mproc__fail_os_last() : MPROC_ENOMEM;
        if (l && l->rov.hEvent) CloseHandle(l->rov.hEvent);
        if (l && l->wov.hEvent) CloseHandle(l->wov.hEvent);
        free(l);
        CloseHandle(h);
        return rc;
    }
    l->h = h;
    l->rstate = READ_IDLE;
    InitializeSRWLock(&l->wlock);
    *out = l;
    return 0;
}

static void pipe_name(wchar_t *name, size_t cap, const unsigned char r[16])
{
    _snwprintf(name, cap, L"\\\\.\\pipe\\mproc-%lu-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
               (unsigned long)GetCurrentProcessId(), r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
               r[8], r[9], r[10], r[11]);
    name[cap - 1] = 0;
}

/* The duplex server end, then the client end opened on it. */
static int named_pair(HANDLE *srv, HANDLE *cli)
{
    unsigned char r[16];
    wchar_t name[96];
    int rc = mproc__os_random(r, sizeof r);
    if (rc) return rc;
    pipe_name(name, sizeof name / sizeof *name, r);
    /* FIRST_PIPE_INSTANCE: a squatter on the name makes this fail, it
       cannot slip in as our server. */
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE;
    *srv = CreateNamedPipeW(name, open_mode,
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                            1, LINK_BUF, LINK_BUF, 0, NULL);
    if (*srv == INVALID_HANDLE_VALUE) return mproc__fail_os_last();
    *cli = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       FILE_FLAG_OVERLAPPED, NULL);
    if (*cli == INVALID_HANDLE_VALUE) {
        rc = mproc__fail_os_last();
        CloseHandle(*srv);
        return rc;
    }
    /* The client is already there: ConnectNamedPipe says so at once. */
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ov.hEvent) rc = mproc__fail_os_last();
    else if (!ConnectNamedPipe(*srv, &ov)) {
        DWORD e = GetLastError(), n;
        if (e == ERROR_IO_PENDING && !GetOverlappedResult(*srv, &ov, &n, TRUE)) e = GetLastError();
        else if (e == ERROR_IO_PENDING) e = ERROR_PIPE_CONNECTED;
        if (e != ERROR_PIPE_CONNECTED) rc = mproc__fail_os(e);
    }
    if (ov.hEvent) CloseHandle(ov.hEvent);
    if (rc) {
        CloseHandle(*srv);
        CloseHandle(*cli);
    }
    return rc;
}

int mproc__os_link_pair(mproc__os_link **a, mproc__os_link **b)
{
    HANDLE srv, cli;
    int rc = named_pair(&srv, &cli);
    if (rc) return rc;
    rc = link_new(srv, a);
    if (rc) {
        CloseHandle(cli);
        return rc;
    }
    rc = link_new(cli, b);
    if (rc) {
        mproc__os_link_free(*a);
        *a = NULL;
    }
    return rc;
}

int mproc__os_link_wrap(mproc__handle h, mproc__os_link **out)
{
    if (h == MPROC__NO_HANDLE || h == 0) return MPROC_EINVAL;
    return link_new(mproc__w32_handle(h), out);
}

int mproc__os_link_dup(mproc__handle h, mproc__os_link **out)
{
    HANDLE self = GetCurrentProcess(), n;
    if (!DuplicateHandle(self, mproc__w32_handle(h), self, &n, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return mproc__fail_os_last();
    return link_new(n, out);
}

mproc__handle mproc__os_link_handle(const mproc__os_link *l) { return (mproc__handle)l->h; }

/* ---- the one-byte read ------------------------------------------------------ */
/* Makes sure a read is posted or its outcome held: READ_PENDING, or
   READ_TOKEN / READ_GONE with the event set (arm's handle is then ready
   at once). A read that completes with no byte leaves READ_IDLE. */
static int read_post(mproc__os_link *l)
{
    if (l->rstate != READ_IDLE) return 0;
    ResetEvent(l->rov.hEvent);
    l->rov.Offset = l->rov.OffsetHigh = 0;
    DWORD got = 0;
    if (ReadFile(l->h, l->rbuf, 1, NULL, &l->rov)) {
        if (!GetOverlappedResult(l->h, &l->rov, &got, FALSE)) return mproc__fail_os_last();
        l->rstate = got ? READ_TOKEN : READ_IDLE;
        if (got) SetEvent(l->rov.hEvent); /* the completion did, but say so here */
        return 0;
    }
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING) {
        l->rstate = READ_PENDING;
        return 0;
    }
    if (!closed_error(e)) return mproc__fail_os(e);
    /* the other end has gone for good: stay ready, no need to read again */
    l->rstate = READ_GONE;
    InterlockedExchange(&l->gone, 1);
    SetEvent(l->rov.hEvent);
    return 0;
}

/* Collects a pending read, cancelling it first if asked. A read that
   completes while being cancelled keeps its token (READ_TOKEN). */
static int read_end(mproc__os_link *l, int cancel)
{
    if (l->rstate != READ_PENDING) return 0;
    if (cancel) CancelIoEx(l->h, &l->rov); /* ERROR_NOT_FOUND: it just completed */
    DWORD got = 0;
    if (GetOverlappedResult(l->h, &l->rov, &got, TRUE)) {
        l->rstate = got ? READ_TOKEN : READ_IDLE;
        return 0;
    }
    DWORD e = GetLastError();
    l->rstate = closed_error(e) ? READ_GONE : READ_IDLE;
    if (closed_error(e)) InterlockedExchange(&l->gone, 1);
    return e == ERROR_OPERATION_ABORTED || closed_error(e) ? 0 : mproc__fail_os(e);
}

/* Takes the held outcome, if any: 0 (a token), MPROC_ECLOSED, or 1 (none). */
static int read_take(mproc__os_link *l)
{
    if (l->rstate == READ_TOKEN) {
        l->rstate = READ_IDLE;
        return 0;
    }
    return l->rstate == READ_GONE ? MPROC_ECLOSED : 1;
}

void mproc__os_link_free(mproc__os_link *l)
{
    if (!l) return;
    /* the kernel must be done with rbuf / rov before they are freed */
    read_end(l, 1);
    CloseHandle(l->h);
    CloseHandle(l->rov.hEvent);
    CloseHandle(l->wov.hEvent);
    free(l);
}

/* ---- tokens ----------------------------------------------------------------- */
/* A write stays pending only when the pipe is full: the reader has tokens
   enough, so it is cancelled rather than left in flight (wbuf and wov are
   reused by the next ring). */
static int ring_locked(mproc__os_link *l, unsigned n)
{
    memset(l->wbuf, 'w', n);
    ResetEvent(l->wov.hEvent);
    l->wov.Offset = l->wov.OffsetHigh = 0;
    DWORD done = 0;
    if (!WriteFile(l->h, l->wbuf, n, NULL, &l->wov)) {
        DWORD e = GetLastError();
        if (e != ERROR_IO_PENDING) return io_error(e);
        if (WaitForSingleObject(l->wov.hEvent, 0) != WAIT_OBJECT_0) CancelIoEx(l->h, &l->wov);
    }
    if (GetOverlappedResult(l->h, &l->wov, &done, TRUE)) return 0;
    DWORD e = GetLastError();
    return e == ERROR_OPERATION_ABORTED ? 0 : io_error(e);
}

int mproc__os_link_ring(mproc__os_link *l, unsigned n)
{
    if (n == 0) n = 1; /* a spare wake-up is harmless, a missed one is not */
    if (n > LINK_RING_MAX) n = LINK_RING_MAX;
    AcquireSRWLockExclusive(&l->wlock);
    int rc = ring_locked(l, n);
    ReleaseSRWLockExclusive(&l->wlock);
    return rc;
}

/* One read of one byte, on this call's own OVERLAPPED, ended (completed
   or cancelled and collected) before returning. A read that completes
   while being cancelled still took its token: that counts as woken. */
static int sleep_read(mproc__os_link *l, HANDLE ev, DWORD ms)
{
    OVERLAPPED ov;
    unsigned char b;
    DWORD got = 0;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = ev;
    if (!ReadFile(l->h, &b, 1, NULL, &ov)) {
        DWORD e = GetLastError();
        if (e != ERROR_IO_PENDING) return io_error(e);
        DWORD w = WaitForSingleObject(ev, ms);
        if (w != WAIT_OBJECT_0) CancelIoEx(l->h, &ov); /* ERROR_NOT_FOUND: it just completed */
    }
    if (GetOverlappedResult(l->h, &ov, &got, TRUE)) return got ? 0 : 1;
    DWORD e = GetLastError();
    return e == ERROR_OPERATION_ABORTED ? MPROC_ETIMEDOUT : io_error(e);
}

int mproc__os_link_sleep(mproc__os_link *l, int timeout_ms)
{
    if (l->gone) return MPROC_ECLOSED;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ev) return mproc__fail_os_last();
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    int rc;
    do {
        int left = mproc__remaining_ms(deadline, timeout_ms);
        ResetEvent(ev);
        rc = sleep_read(l, ev, left < 0 ? INFINITE : (DWORD)left);
        /* 1: a read with no byte (nobody writes those): try again */
        if (rc == 1 && mproc__remaining_ms(deadline, timeout_ms) == 0) rc = MPROC_ETIMEDOUT;
    } while (rc == 1);
    CloseHandle(ev);
    if (rc == MPROC_ECLOSED) InterlockedExchange(&l->gone, 1);
    return rc;
}

int mproc__os_link_send_handle(mproc__os_link *l, mproc__handle h, mproc__os_handle_note *note)
{
    (void)l;
    HANDLE self = GetCurrentProcess(), mine = NULL;
    if (!DuplicateHandle(self, mproc__w32_handle(h), self, &mine, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
        DWORD err = GetLastError();
        return err == ERROR_INVALID_HANDLE ? MPROC_EINVAL : mproc__fail_os((int)err);
    }
    note->pid = GetCurrentProcessId();
    note->value = (uint64_t)(uintptr_t)mine;
    return 0;
}

int mproc__os_link_recv_handle(mproc__os_link *l, const mproc__os_handle_note *note,
                               mproc__handle *out, int timeout_ms)
{
    (void)l;
    (void)timeout_ms;
    HANDLE self = GetCurrentProcess(), got = NULL;
    HANDLE value = (HANDLE)(uintptr_t)note->value;
    if (note->pid == 0 || note->pid > UINT32_MAX || !value) return MPROC_EPROTO;
    if (note->pid == GetCurrentProcessId()) { /* sent within this process */
        *out = (mproc__handle)value;
        return 0;
    }
    HANDLE sender = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)note->pid);
    if (!sender) return MPROC_ECLOSED; /* the sender has gone, and its handle with it */
    BOOL ok = DuplicateHandle(sender, value, self, &got, 0, FALSE,
                              DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE);
    DWORD err = GetLastError();
    CloseHandle(sender);
    if (!ok) return err == ERROR_INVALID_HANDLE ? MPROC_EPROTO : mproc__fail_os((int)err);
    *out = (mproc__handle)got;
    return 0;
}

int mproc__os_link_probe(mproc__os_link *l)
{
    if (l->gone) return MPROC_ECLOSED;
    DWORD avail = 0;
    if (PeekNamedPipe(l->h, NULL, 0, NULL, &avail, NULL)) return 0;
    return io_error(GetLastError());
}

/* ---- readiness ------------------------------------------------------------------- */
/* The read posted here is collected by disarm. */
int mproc__os_link_arm(mproc__os_link *l, mproc__handle *waitable)
{
    int rc = read_post(l);
    if (rc) return rc;
    *waitable = (mproc__handle)l->rov.hEvent;
    return 0;
}

int mproc__os_link_disarm(mproc__os_link *l)
{
    int rc = read_end(l, 1);
    if (rc) return rc;
    rc = read_take(l);
    if (rc <= 0) return rc;
    /* cancelled with nothing read: the other end may have gone since */
    return mproc__os_link_probe(l);
}

/* ---- waiting on many ---------------------------------------------------------------- */
/* WaitForMultipleObjects takes at most 64 handles: larger sets are waited
   on in groups of 63 by helper threads, each also waiting on a shared
   cancel event. A signalled semaphore (the queue's doorbell) gives its
   token to the wait that reports it, so each handle is asked once. */
typedef struct group {
    const HANDLE *h;
    DWORD n;
    HANDLE cancel;
    DWORD fired; /* index in the group, or MAXDWORD */
} group;

static DWORD WINAPI group_thread(void *arg)
{
    group *g = arg;
    HANDLE hs[MAXIMUM_WAIT_OBJECTS];
    memcpy(hs, g->h, g->n * sizeof *hs);
    hs[g->n] = g->cancel;
    DWORD w = WaitForMultipleObjects(g->n + 1, hs, FALSE, INFINITE);
    g->fired = w - WAIT_OBJECT_0 < g->n ? w - WAIT_OBJECT_0 : MAXDWORD; /* WAIT_OBJECT_0 is 0 */
    return 0;
}

static int collect(const HANDLE *h, size_t n, unsigned char *ready)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ready[i]) ready[i] = WaitForSingleObject(h[i], 0) == WAIT_OBJECT_0;
        count += ready[i];
    }
    return count;
}

static int wait_small(const HANDLE *h, size_t n, unsigned char *ready, DWORD ms)
{
    DWORD w = WaitForMultipleObjects((DWORD)n, h, FALSE, ms);
    if (w == WAIT_TIMEOUT) return MPROC_ETIMEDOUT;
    if (w == WAIT_FAILED) return mproc__fail_os_last();
    if (w >= WAIT_ABANDONED_0 && w < WAIT_ABANDONED_0 + n) w -= WAIT_ABANDONED_0 - WAIT_OBJECT_0;
    ready[w - WAIT_OBJECT_0] = 1;
    return collect(h, n, ready);
}

static int wait_groups(const HANDLE *h, size_t n, unsigned char *ready, DWORD ms)
{
    size_t ng = (n + WAIT_GROUP - 1) / WAIT_GROUP;
    if (ng > MAXIMUM_WAIT_OBJECTS) return MPROC_EINVAL; /* > 4032 handles */
    group *g = mproc__calloc(ng, sizeof *g);
    HANDLE *th = mproc__calloc(ng, sizeof *th);
    HANDLE cancel = CreateEventW(NULL, TRUE, FALSE, NULL);
    int rc = (g && th) ? (cancel ? 0 : mproc__fail_os_last()) : MPROC_ENOMEM;
    size_t started = 0;
    for (; rc == 0 && started < ng; started++) {
        size_t off = started * WAIT_GROUP;
        g[started] = (group){h + off, (DWORD)(n - off < WAIT_GROUP ? n - off : WAIT_GROUP), cancel, MAXDWORD};
        th[started] = CreateThread(NULL, 64 * 1024, group_thread, &g[started], 0, NULL);
        if (!th[started]) rc = mproc__fail_os_last();
    }
    if (rc == 0) {
        DWORD w = WaitForMultipleObjects((DWORD)started, th, FALSE, ms);
        if (w == WAIT_TIMEOUT) rc = MPROC_ETIMEDOUT;
        else if (w == WAIT_FAILED) rc = mproc__fail_os_last();
    }
    if (cancel) SetEvent(cancel);
    for (size_t i = 0; i < started; i++) {
        if (!th[i]) continue;
        WaitForSingleObject(th[i], INFINITE);
        CloseHandle(th[i]);
        if (g[i].fired != MAXDWORD) ready[i * WAIT_GROUP + g[i].fired] = 1;
    }
    if (rc == 0 || rc == MPROC_ETIMEDOUT) {
        int k = collect(h, n, ready);
        rc = k > 0 ? k : MPROC_ETIMEDOUT;
    }
    if (cancel) CloseHandle(cancel);
    free(g);
    free(th);
    return rc;
}

int mproc__os_wait_any(const mproc__handle *h, size_t n, unsigned char *ready,
                       int timeout_ms)
{
    if (n == 0) return MPROC_EINVAL;
    memset(ready, 0, n);
    DWORD ms = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    const HANDLE *hs = (const HANDLE *)h; /* mproc__handle is a HANDLE's width */
    if (n <= MAXIMUM_WAIT_OBJECTS) return wait_small(hs, n, ready, ms);
    return wait_groups(hs, n, ready, ms);
}

mproc__handle mproc__os_user_handle(const void *obj)
{
    HANDLE h;
    memcpy(&h, obj, sizeof h);
    return h != NULL && h != INVALID_HANDLE_VALUE ? (mproc__handle)h : MPROC__NO_HANDLE;
}

/* ---- doorbell ----------------------------------------------------------------- */
int mproc__os_bell_create(mproc__handle *rd, mproc__handle *wr)
{
    HANDLE s = CreateSemaphoreW(NULL, 0, 0x7fffffff, NULL);
    if (!s) return mproc__fail_os_last();
    *rd = *wr = (mproc__handle)s;
    return 0;
}

/* Past the semaphore's maximum there are tokens enough: failure is fine. */
void mproc__os_bell_ring(mproc__handle wr, unsigned n)
{
    (void)ReleaseSemaphore(mproc__w32_handle(wr), n ? (LONG)n : 1, NULL);
}

void mproc__os_bell_take(mproc__handle rd) { (void)rd; }

void mproc__os_yield(void) { SwitchToThread(); }

/* FlushProcessWriteBuffers reaches the calling process's threads only,
   not the other processes sharing a ring. */
int mproc__os_remote_fence_join(void) { return MPROC_ENOTSUP; }
int mproc__os_remote_fence(void) { return MPROC_ENOTSUP; }
