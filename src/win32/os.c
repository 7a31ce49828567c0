/*
 * Win32: errors, time, identity, randomness, the environment, byte pipes
 * with timeouts, anonymous shared memory and the program's image identity.
 */
#include "w32.h"

#include <bcrypt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <tlhelp32.h>
#include <wchar.h>

/* ---- UTF-8 / UTF-16 and module paths -------------------------------------- */

int mproc__w32_to_utf16(const char *s, wchar_t **out)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0)
        return MPROC_EINVAL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w == NULL)
        return MPROC_ENOMEM;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        return MPROC_EINVAL;
    }
    *out = w;
    return 0;
}

int mproc__w32_to_utf8(const wchar_t *w, char *buf, size_t cap)
{
    int limit = cap > INT_MAX ? INT_MAX : (int)cap;
    if (limit == 0)
        return MPROC_EINVAL;
    /* Fails (0) both on invalid UTF-16 and when buf is too small. */
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, buf, limit, NULL, NULL);
    return n > 0 ? 0 : MPROC_EINVAL;
}

int mproc__w32_module_path(HMODULE mod, wchar_t **out)
{
    /* Paths may exceed MAX_PATH (long path support): grow until it fits. */
    for (DWORD cap = MAX_PATH; cap <= 32768 * 2; cap *= 2) {
        wchar_t *w = malloc(cap * sizeof *w);
        if (w == NULL)
            return MPROC_ENOMEM;
        DWORD n = GetModuleFileNameW(mod, w, cap);
        if (n == 0) {
            int rc = mproc__fail_os_last();
            free(w);
            return rc;
        }
        if (n < cap) {
            *out = w;
            return 0;
        }
        free(w);
    }
    return mproc__fail_os(ERROR_INSUFFICIENT_BUFFER);
}

/* ---- errors, time, identity ------------------------------------------------ */

int mproc__os_last_error(void)
{
    return (int)GetLastError();
}

uint64_t mproc__os_now_ns(void)
{
    /* QPC is monotonic and never fails on XP and later. Split the division
       so that count * 1e9 cannot overflow. */
    LARGE_INTEGER c, f;
    QueryPerformanceCounter(&c);
    QueryPerformanceFrequency(&f);
    uint64_t count = (uint64_t)c.QuadPart, freq = (uint64_t)f.QuadPart;
    return count / freq * 1000000000u + count % freq * 1000000000u / freq;
}

uint64_t mproc__os_now_ms(void)
{
    return mproc__os_now_ns() / 1000000u;
}

void mproc__os_sleep_ms(int ms)
{
    Sleep(ms > 0 ? (DWORD)ms : 0);
}

int64_t mproc__os_getpid(void)
{
    return (int64_t)GetCurrentProcessId();
}

/* Windows keeps no parent link that survives cheaply; the creator's pid is
   in the process snapshot. It never changes, so it is looked up once. */
static int64_t lookup_ppid(void)
{
    DWORD self = GetCurrentProcessId();
    int64_t ppid = 0;
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    PROCESSENTRY32W e;
    e.dwSize = sizeof e;
    for (BOOL ok = Process32FirstW(snap, &e); ok; ok = Process32NextW(snap, &e)) {
        if (e.th32ProcessID == self) {
            ppid = (int64_t)e.th32ParentProcessID;
            break;
        }
    }
    CloseHandle(snap);
    return ppid;
}

int64_t mproc__os_getppid(void)
{
    static volatile LONG64 cached;
    LONG64 v = InterlockedCompareExchange64(&cached, 0, 0);
    if (v == 0) {
        v = (LONG64)lookup_ppid();
        InterlockedExchange64(&cached, v);
    }
    return (int64_t)v;
}

int mproc__os_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        NTSTATUS st = BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
        if (!BCRYPT_SUCCESS(st))
            return mproc__fail_os((int)st); /* an NTSTATUS, not a Win32 code */
        p += n;
        len -= n;
    }
    return 0;
}

int mproc__os_pid_alive(int64_t pid)
{
    if (pid <= 0 || pid > (int64_t)UINT32_MAX)
        return 0;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
    if (h == NULL)
        /* Access denied means it exists but belongs to someone else. */
        return GetLastError() == ERROR_ACCESS_DENIED;
    /* An ended process lives on as an object while handles to it remain. */
    int alive = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
    CloseHandle(h);
    return alive;
}

/* ---- environment ------------------------------------------------------------ */

/* No setuid on Windows: a program never gains rights its invoker lacks. */
int mproc__os_privileged_exec(void) { return 0; }

int mproc__os_getenv(const char *name, char *buf, size_t cap)
{
    wchar_t *wname, *value;
    int rc = mproc__w32_to_utf16(name, &wname);
    if (rc != 0)
        return rc;
    SetLastError(0);
    DWORD need = GetEnvironmentVariableW(wname, NULL, 0);
    if (need == 0) {
        DWORD err = GetLastError();
        free(wname);
        if (err == ERROR_ENVVAR_NOT_FOUND)
            return MPROC_ENOENT;
        if (err != 0)
            return mproc__fail_os((int)err);
        if (cap == 0)  /* set, but empty */
            return MPROC_EINVAL;
        buf[0] = '\0';
        return 0;
    }
    value = malloc(need * sizeof *value);
    if (value == NULL) {
        free(wname);
        return MPROC_ENOMEM;
    }
    DWORD n = GetEnvironmentVariableW(wname, value, need);
    if (n == 0 || n >= need)  /* it changed under us: report it as unset */
        rc = MPROC_ENOENT;
    else
        rc = mproc__w32_to_utf8(value, buf, cap);
    free(value);
    free(wname);
    return rc;
}

void mproc__os_unsetenv(const char *name)
{
    wchar_t *wname;
    if (mproc__w32_to_utf16(name, &wname) != 0)
        return;
    SetEnvironmentVariableW(wname, NULL);
    /* The C runtime keeps its own copy for getenv(): drop it there too. */
    size_t len = wcslen(wname);
    wchar_t *assign = malloc((len + 2) * sizeof *assign);
    if (assign != NULL) {
        memcpy(assign, wname, len * sizeof *assign);
        assign[len] = L'=';
        assign[len + 1] = L'\0';
        _wputenv(assign);
        free(assign);
    }
    free(wname);
}

/* ---- handles and byte pipes ------------------------------------------------ */

void mproc__os_close(mproc__handle h)
{
    if (h != MPROC__NO_HANDLE && h != 0)
        CloseHandle(mproc__w32_handle(h));
}

/* Room for a whole bootstrap message (MPROC__BOOT_MAX): the core writes it
   right after spawning, and a child that dies before reading it must not
   leave that write blocked. Only buffered data is charged against it. */
#define PIPE_BUFFER_SIZE (256 * 1024)
#define PIPE_NAME_MAX 96
/* Writes larger than this are split: very large single writes to a pipe can
   fail with ERROR_NO_SYSTEM_RESOURCES. */
#define IO_CHUNK (1u << 20)

static int is_closed_error(DWORD err)
{
    return err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA ||
           err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_HANDLE_EOF;
}

/* \\.\pipe\mproc-<pid>-<serial>-<random>: unique, and not guessable by a
   process that would like to connect to it first. */
static int pipe_name(wchar_t name[PIPE_NAME_MAX])
{
    static volatile LONG serial;
    uint64_t nonce;
    char ascii[PIPE_NAME_MAX];
    int rc = mproc__os_random(&nonce, sizeof nonce);
    if (rc != 0)
        return rc;
    int n = snprintf(ascii, sizeof ascii, "\\\\.\\pipe\\mproc-%lu-%ld-%016" PRIx64,
                     (unsigned long)GetCurrentProcessId(),
                     (long)InterlockedIncrement(&serial), nonce);
    if (n < 0 || n >= PIPE_NAME_MAX)
        return MPROC_EINVAL;
    for (int i = 0; i <= n; i++)
        name[i] = (wchar_t)(unsigned char)ascii[i];
    return 0;
}

static int io_error(DWORD err, const OVERLAPPED *ov, DWORD *n)
{
    if (err == ERROR_MORE_DATA) { /* a message-mode pipe: part of a message */
        *n = (DWORD)ov->InternalHigh;
        return 0;
    }
    return is_closed_error(err) ? MPROC_ECLOSED : mproc__fail_os((int)err);
}

/* Completes an I/O that ReadFile/WriteFile started with ov (started: what
   they returned). A pending operation is waited for up to timeout_ms, then
   cancelled. 0 with *n set (a cancel that lost the race still delivers
   its bytes), MPROC_ETIMEDOUT, MPROC_ECLOSED or MPROC_EOS. */
static int complete_io(HANDLE h, OVERLAPPED *ov, BOOL started, int timeout_ms, DWORD *n)
{
    DWORD w = WAIT_OBJECT_0, wait_err = 0;
    *n = 0;
    if (!started) {
        DWORD err = GetLastError();
        if (err != ERROR_IO_PENDING)
            return io_error(err, ov, n);
        w = WaitForSingleObject(ov->hEvent, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
        if (w == WAIT_FAILED)
            wait_err = GetLastError();
        if (w != WAIT_OBJECT_0)
            CancelIoEx(h, ov);
    }
    /* Always collect the result: the OVERLAPPED must outlive the I/O. On a
       finished operation this does not wait. */
    if (GetOverlappedResult(h, ov, n, TRUE))
        return 0;
    DWORD err = GetLastError();
    if (err == ERROR_OPERATION_ABORTED && w == WAIT_TIMEOUT)
        return MPROC_ETIMEDOUT;
    return wait_err != 0 ? mproc__fail_os((int)wait_err) : io_error(err, ov, n);
}

/* One read of up to want bytes. Handles opened for overlapped I/O honour
   timeout_ms; on a synchronous handle the read simply blocks. */
static int read_some(HANDLE h, HANDLE ev, void *buf, DWORD want, DWORD *n, int timeout_ms)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = ev;
    BOOL started = ReadFile(h, buf, want, NULL, &ov);
    int rc = complete_io(h, &ov, started, timeout_ms, n);
    /* A successful read of nothing is end of file (mproc never writes 0
       bytes to a pipe). */
    if (rc == 0 && *n == 0 && want > 0)
        return MPROC_ECLOSED;
    return rc;
}

int mproc__os_read_all(mproc__handle h, void *buf, size_t len, size_t *got, int timeout_ms)
{
    uint64_t deadline = mproc__deadline_ms(timeout_ms);
    size_t done = 0;
    int rc = 0;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ev == NULL)
        rc = mproc__fail_os_last();
    while (rc == 0 && done < len) {
        size_t left = len - done;
        DWORD n, want = left > IO_CHUNK ? IO_CHUNK : (DWORD)left;
        rc = read_some(mproc__w32_handle(h), ev, (unsigned char *)buf + done, want, &n,
                       mproc__remaining_ms(deadline, timeout_ms));
        done += n;
    }
    if (ev != NULL)
        CloseHandle(ev);
    if (got != NULL)
        *got = done;
    return rc;
}

int mproc__os_write_all(mproc__handle h, const void *buf, size_t len)
{
    /* An OVERLAPPED is passed so that the same code serves handles opened
       with and without FILE_FLAG_OVERLAPPED. */
    int rc = 0;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ev == NULL)
        return mproc__fail_os_last();
    const unsigned char *p = buf;
    while (rc == 0 && len > 0) {
        OVERLAPPED ov;
        DWORD n = 0, want = len > IO_CHUNK ? IO_CHUNK : (DWORD)len;
        memset(&ov, 0, sizeof ov);
        ov.hEvent = ev;
        BOOL started = WriteFile(mproc__w32_handle(h), p, want, NULL, &ov);
        rc = complete_io(mproc__w32_handle(h), &ov, started, MPROC_FOREVER, &n);
        if (rc == 0 && n == 0) /* no progress: never loop on it */
            rc = mproc__fail_os(ERROR_WRITE_FAULT);
        p += n;
        len -= n;
    }
    CloseHandle(ev);
    return rc;
}

/* Waits for data or end of stream on an overlapped pipe: a zero-byte read
   completes when data arrives or the writer goes, without consuming
   anything (the approach of CPython's multiprocessing.connection.wait). */
static int wait_pipe_readable(HANDLE h, int timeout_ms)
{
    DWORD avail = 0;
    if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL)) {
        DWORD err = GetLastError();
        return is_closed_error(err) ? 1 : mproc__fail_os((int)err);
    }
    if (avail > 0)
        return 1;
    if (timeout_ms == 0)
        return 0;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ev == NULL)
        return mproc__fail_os_last();
    char dummy;
    DWORD n;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = ev;
    BOOL started = ReadFile(h, &dummy, 0, NULL, &ov);
    int rc = complete_io(h, &ov, started, timeout_ms, &n);
    CloseHandle(ev);
    if (rc == MPROC_ETIMEDOUT)
        return 0;
    return rc == 0 || rc == MPROC_ECLOSED ? 1 : rc;
}

int mproc__os_wait_readable(mproc__handle h, int timeout_ms)
{
    HANDLE w = mproc__w32_handle(h);
    if (GetFileType(w) == FILE_TYPE_PIPE)
        return wait_pipe_readable(w, timeout_ms);
    /* Process handles (mproc__os_proc_wait_handle), events: signalled. */
    DWORD r = WaitForSingleObject(w, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED)
        return 1;
    return r == WAIT_TIMEOUT ? 0 : mproc__fail_os_last();
}

/* The server end takes the reads (overlapped, so reads can time out); the
   client end is a plain synchronous handle for blocking writes. One
   instance only: once our CreateFileW succeeded, nobody else is connected.
   Returns 0 or the Win32 error. */
static DWORD open_pipe_pair(const wchar_t *name, HANDLE *r, HANDLE *w)
{
    *r = CreateNamedPipeW(name,
                          PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                          PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                          1, PIPE_BUFFER_SIZE, PIPE_BUFFER_SIZE, 0, NULL);
    if (*r == INVALID_HANDLE_VALUE)
        return GetLastError();
    *w = CreateFileW(name, GENERIC_WRITE | FILE_READ_ATTRIBUTES, 0, NULL, OPEN_EXISTING,
                     FILE_ATTRIBUTE_NORMAL, NULL);
    if (*w == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        CloseHandle(*r);
        return err;
    }
    return 0;
}

int mproc__os_pipe(mproc__handle *read_end, mproc__handle *write_end)
{
    /* Default security attributes: neither end is inheritable. */
    wchar_t name[PIPE_NAME_MAX];
    HANDLE r, w;
    DWORD err = 0;
    /* A clash with an existing name (ERROR_ACCESS_DENIED / PIPE_BUSY) is
       practically impossible with 64 random bits; still, retry a few times. */
    for (int attempt = 0; attempt < 4; attempt++) {
        int rc = pipe_name(name);
        if (rc != 0)
            return rc;
        err = open_pipe_pair(name, &r, &w);
        if (err != ERROR_ACCESS_DENIED && err != ERROR_PIPE_BUSY)
            break;
    }
    if (err != 0)
        return mproc__fail_os((int)err);
    *read_end = (mproc__handle)r;
    *write_end = (mproc__handle)w;
    return 0;
}

/* ---- anonymous shared memory ------------------------------------------------ */

int mproc__os_anon_shm_create(size_t size, mproc__handle *h)
{
    if (size == 0)
        return MPROC_EINVAL;
    uint64_t s = (uint64_t)size;
    /* Backed by the paging file, no name: it lives while a handle does. */
    HANDLE m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE,
                                  (DWORD)(s >> 32), (DWORD)s, NULL);
    if (m == NULL)
        return mproc__fail_os_last();
    *h = (mproc__handle)m;
    return 0;
}

int mproc__os_map(mproc__handle h, size_t size, int writable, void **addr)
{
    if (size == 0)
        return MPROC_EINVAL;
    void *p = MapViewOfFile(mproc__w32_handle(h), writable ? FILE_MAP_WRITE : FILE_MAP_READ,
                            0, 0, size);
    if (p == NULL)
        return mproc__fail_os_last();
    *addr = p;
    return 0;
}

void mproc__os_unmap(void *addr, size_t size)
{
    (void)size; /* a view is unmapped whole */
    if (addr != NULL)
        UnmapViewOfFile(addr);
}

/* ---- image identity ---------------------------------------------------------- */

/* Volume serial, file index, size and last-write time of the program's
   file: the Windows counterpart of device, inode, size and mtime. */
int mproc__os_image_id(unsigned char id[32])
{
    wchar_t *path;
    int rc = mproc__w32_module_path(NULL, &path);
    if (rc != 0)
        return rc;
    HANDLE f = CreateFileW(path, FILE_READ_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    free(path);
    if (f == INVALID_HANDLE_VALUE)
        return mproc__fail_os_last();
    BY_HANDLE_FILE_INFORMATION info;
    BOOL ok = GetFileInformationByHandle(f, &info);
    rc = ok ? 0 : mproc__fail_os_last();
    CloseHandle(f);
    if (rc != 0)
        return rc;
    memset(id, 0, 32);
    mproc__put_u32(id, info.dwVolumeSerialNumber);
    mproc__put_u32(id + 4, info.nFileIndexLow);
    mproc__put_u32(id + 8, info.nFileIndexHigh);
    mproc__put_u32(id + 12, info.nFileSizeLow);
    mproc__put_u32(id + 16, info.nFileSizeHigh);
    mproc__put_u32(id + 20, info.ftLastWriteTime.dwLowDateTime);
    mproc__put_u32(id + 24, info.ftLastWriteTime.dwHighDateTime);
    return 0;
}
