/*
 * Win32: starting, waiting for and signalling child processes.
 *
 * How a child gets its handles without any of ours being inheritable (the
 * scheme of CPython's multiprocessing): the child is created suspended with
 * bInheritHandles limited by a PROC_THREAD_ATTRIBUTE_HANDLE_LIST to
 * temporary inheritable copies of the std handles. The listed `pass`
 * handles are pushed into it with DuplicateHandle before it runs, and their
 * child-side values go back to the core (which sends them in the bootstrap
 * message). The two channel handles cannot travel that way: their values
 * must be in the environment, which is fixed at CreateProcess. So the
 * environment names them as the PARENT's values, with the parent's pid and
 * creation time, and the child pulls them out of the parent
 * (mproc__os_child_channels). The child pulls without DUPLICATE_CLOSE_SOURCE
 * (closing a handle in another process leaves the owner unable to tell
 * whether the value is still its own); instead the parent keeps its copies
 * in the mproc__os_proc and closes them once the child has ended, or when
 * the proc is freed. A child that dies before reading its bootstrap leaves
 * the pipe open through that copy, so the core's write of the message must
 * not depend on a reader: mproc__os_pipe's buffer holds a whole message.
 */
#include "w32.h"

#include <inttypes.h>
#include <stdio.h>
#include <wchar.h>

struct mproc__os_proc {
    HANDLE process;
    DWORD pid;
    HANDLE lent[2]; /* boot_read, status_write: until the child has ended */
    int ended;
    int code;
};

/* ---- exit codes ---------------------------------------------------------------- */

/* terminate/kill exit with SIGNAL_BASE | signal number. A user's exit
   status is 0..255 and NTSTATUS codes have the top bits 0xC/0x8, so no
   process ends with such a code unless we ended it. */
#define SIGNAL_BASE 0x4D500000u /* 'M' 'P' */
#define SIGNAL_MAX 64

/* Crash codes (NTSTATUS) that have a POSIX signal counterpart. */
#define W32_ACCESS_VIOLATION 0xC0000005u
#define W32_IN_PAGE_ERROR 0xC0000006u
#define W32_ILLEGAL_INSTRUCTION 0xC000001Du
#define W32_FLT_FIRST 0xC000008Du /* FLT_DENORMAL_OPERAND .. */
#define W32_INT_LAST 0xC0000095u  /* .. INT_DIVIDE_BY_ZERO, INT_OVERFLOW */
#define W32_PRIV_INSTRUCTION 0xC0000096u
#define W32_STACK_OVERFLOW 0xC00000FDu
#define W32_CONTROL_C_EXIT 0xC000013Au /* ended by Ctrl-C / Ctrl-Break */

static DWORD signal_code(int sig)
{
    return SIGNAL_BASE | (DWORD)sig;
}

/* The core's convention: >= 0 exit status, -N "ended by signal N". Other
   codes are passed on as is: abort() exits with 3, and fast-fail
   (0xC0000409, also stack buffer overruns) and other NTSTATUS codes come
   out as the DWORD read as an int, a large negative number that is no
   signal number. */
static int decode_exit(DWORD code)
{
    if (code > SIGNAL_BASE && code <= SIGNAL_BASE + SIGNAL_MAX)
        return -(int)(code - SIGNAL_BASE);
    switch (code) {
    case W32_ACCESS_VIOLATION:
    case W32_IN_PAGE_ERROR:
    case W32_STACK_OVERFLOW:
        return -11; /* SIGSEGV */
    case W32_ILLEGAL_INSTRUCTION:
    case W32_PRIV_INSTRUCTION:
        return -4;  /* SIGILL */
    case W32_CONTROL_C_EXIT:
        return -2;  /* SIGINT */
    default:
        if (code >= W32_FLT_FIRST && code <= W32_INT_LAST)
            return -8; /* SIGFPE */
        return (int)code;
    }
}

/* ---- what the child is given ------------------------------------------------ */

/* Decimal fields, so the value survives any environment handling:
   parent pid, parent creation time, boot_read, status_write. */
#define ENV_FORMAT "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64
#define ENV_VALUE_MAX 96

static uint64_t creation_time(HANDLE process)
{
    FILETIME created, exited, kernel, user;
    if (!GetProcessTimes(process, &created, &exited, &kernel, &user))
        return 0;
    return ((uint64_t)created.dwHighDateTime << 32) | created.dwLowDateTime;
}

/* L"MPROC_CHILD=<value>" in a malloc'd string. */
static int child_variable(const mproc__os_spawn_req *req, wchar_t **out)
{
    char value[ENV_VALUE_MAX];
    uint64_t created = creation_time(GetCurrentProcess());
    if (created == 0)
        return mproc__fail_os_last();
    snprintf(value, sizeof value, ENV_FORMAT, (uint64_t)GetCurrentProcessId(), created,
             (uint64_t)(uintptr_t)req->boot_read, (uint64_t)(uintptr_t)req->status_write);
    size_t nlen = strlen(MPROC__CHILD_ENV), vlen = strlen(value);
    wchar_t *w = malloc((nlen + 1 + vlen + 1) * sizeof *w);
    if (w == NULL)
        return MPROC_ENOMEM;
    /* Both parts are ASCII. */
    for (size_t i = 0; i < nlen; i++)
        w[i] = (wchar_t)MPROC__CHILD_ENV[i];
    w[nlen] = L'=';
    for (size_t i = 0; i <= vlen; i++)
        w[nlen + 1 + i] = (wchar_t)value[i];
    *out = w;
    return 0;
}

/* Compares the names of two "NAME=value" entries as Windows compares
   variable names (ordinal, case-insensitive). Names such as "=C:" start
   with '='. */
static int env_name_cmp(const wchar_t *a, const wchar_t *b)
{
    const wchar_t *ea = wcschr(a + 1, L'='), *eb = wcschr(b + 1, L'=');
    int la = ea ? (int)(ea - a) : (int)wcslen(a), lb = eb ? (int)(eb - b) : (int)wcslen(b);
    return CompareStringOrdinal(a, la, b, lb, TRUE) - CSTR_EQUAL;
}

static wchar_t *put_entry(wchar_t *dst, const wchar_t *entry)
{
    size_t n = wcslen(entry) + 1;
    memcpy(dst, entry, n * sizeof *dst);
    return dst + n;
}

/* The parent's environment with var added (replacing any MPROC_CHILD the
   parent itself has), kept in the sorted order Windows expects. */
static int child_environment(const wchar_t *var, wchar_t **out)
{
    wchar_t *cur = GetEnvironmentStringsW();
    if (cur == NULL)
        return mproc__fail_os_last();
    size_t total = wcslen(var) + 2; /* var, and the block's final L'\0' */
    for (const wchar_t *e = cur; *e; e += wcslen(e) + 1)
        total += wcslen(e) + 1;
    wchar_t *block = malloc(total * sizeof *block), *dst = block;
    if (block == NULL) {
        FreeEnvironmentStringsW(cur);
        return MPROC_ENOMEM;
    }
    int placed = 0;
    for (const wchar_t *e = cur; *e; e += wcslen(e) + 1) {
        int cmp = env_name_cmp(e, var);
        if (!placed && cmp >= 0) {
            dst = put_entry(dst, var);
            placed = 1;
        }
        if (cmp != 0)
            dst = put_entry(dst, e);
    }
    if (!placed)
        dst = put_entry(dst, var);
    *dst = L'\0';
    FreeEnvironmentStringsW(cur);
    *out = block;
    return 0;
}

/* The program to start (UTF-16) and its command line: "<path>" --mproc-child. */
static int child_program(const char *exe, wchar_t **path, wchar_t **cmdline)
{
    static const wchar_t flag[] = L" --mproc-child";
    int rc = exe ? mproc__w32_to_utf16(exe, path) : mproc__w32_module_path(NULL, path);
    if (rc != 0)
        return rc;
    size_t len = wcslen(*path);
    wchar_t *cmd = NULL;
    /* A path cannot contain '"', so quoting it is enough. */
    if (wcschr(*path, L'"') != NULL)
        rc = MPROC_EINVAL;
    else if ((cmd = malloc((len + 2) * sizeof *cmd + sizeof flag)) == NULL)
        rc = MPROC_ENOMEM;
    if (rc != 0) {
        free(*path);
        return rc;
    }
    cmd[0] = L'"';
    memcpy(cmd + 1, *path, len * sizeof *cmd);
    cmd[len + 1] = L'"';
    memcpy(cmd + len + 2, flag, sizeof flag);
    *cmdline = cmd;
    return 0;
}

/* ---- creating the suspended child ---------------------------------------------- */

/* Inheritable copies of the std handles, for the child's HANDLE_LIST only.
   They exist for the duration of one CreateProcess; a concurrent inherit-all
   CreateProcess of another thread could take them, which hands out nothing
   more than the std handles every child gets anyway. */
static DWORD inheritable_std(HANDLE std[3], HANDLE list[3])
{
    static const DWORD which[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
    DWORD n = 0;
    for (int i = 0; i < 3; i++) {
        HANDLE h = GetStdHandle(which[i]);
        std[i] = NULL;
        /* A GUI or detached program may have none: the child gets none. */
        if (h == NULL || h == INVALID_HANDLE_VALUE)
            continue;
        if (DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &std[i], 0, TRUE,
                            DUPLICATE_SAME_ACCESS))
            list[n++] = std[i];
        else
            std[i] = NULL;
    }
    return n;
}

/* Adds the HANDLE_LIST attribute to si (which then owns a malloc'd list). */
static int attach_handle_list(STARTUPINFOEXW *si, HANDLE *list, DWORD nlist)
{
    SIZE_T size = 0;
    /* The first call only reports the size (and fails, by design). */
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    si->lpAttributeList = malloc(size);
    if (si->lpAttributeList == NULL)
        return MPROC_ENOMEM;
    if (!InitializeProcThreadAttributeList(si->lpAttributeList, 1, 0, &size)) {
        int rc = mproc__fail_os_last();
        free(si->lpAttributeList);
        si->lpAttributeList = NULL;
        return rc;
    }
    if (!UpdateProcThreadAttribute(si->lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                   list, nlist * sizeof *list, NULL, NULL))
        return mproc__fail_os_last();
    return 0;
}

static int create_with_list(const wchar_t *path, wchar_t *cmdline, wchar_t *env,
                            HANDLE std[3], HANDLE *list, DWORD nlist, PROCESS_INFORMATION *pi)
{
    STARTUPINFOEXW si;
    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std[0];
    si.StartupInfo.hStdOutput = std[1];
    si.StartupInfo.hStdError = std[2];
    /* An empty list is invalid: with no std handle, inherit nothing. */
    int rc = nlist > 0 ? attach_handle_list(&si, list, nlist) : 0;
    if (rc == 0 && !CreateProcessW(path, cmdline, NULL, NULL, nlist > 0,
                                   CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT |
                                       EXTENDED_STARTUPINFO_PRESENT,
                                   env, NULL, &si.StartupInfo, pi))
        rc = mproc__fail_os_last();
    if (si.lpAttributeList != NULL) {
        DeleteProcThreadAttributeList(si.lpAttributeList);
        free(si.lpAttributeList);
    }
    return rc;
}

/* The child's stdin as Python's children get it: the null device. */
static void null_stdin(HANDLE std[3], HANDLE list[3], DWORD *nlist)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE h = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                           OPEN_EXISTING, 0, NULL);
    DWORD n = 0;
    if (std[0] != NULL) CloseHandle(std[0]);
    std[0] = h == INVALID_HANDLE_VALUE ? NULL : h; /* no NUL device: no stdin at all */
    for (int i = 0; i < 3; i++)
        if (std[i] != NULL) list[n++] = std[i];
    *nlist = n;
}

static int create_suspended(const wchar_t *path, wchar_t *cmdline, wchar_t *env, int keep_stdin,
                            PROCESS_INFORMATION *pi)
{
    HANDLE std[3], list[3];
    DWORD nlist = inheritable_std(std, list);
    if (!keep_stdin) null_stdin(std, list, &nlist);
    int rc = create_with_list(path, cmdline, env, std, list, nlist, pi);
    for (int i = 0; i < 3; i++)
        if (std[i] != NULL)
            CloseHandle(std[i]);
    return rc;
}

/* ---- what happens to the child before it runs --------------------------------- */

static int push_handles(HANDLE child, const mproc__os_spawn_req *req)
{
    for (size_t i = 0; i < req->npass; i++) {
        HANDLE theirs;
        if (!DuplicateHandle(GetCurrentProcess(), mproc__w32_handle(req->pass[i]), child,
                             &theirs, 0, FALSE, DUPLICATE_SAME_ACCESS))
            return mproc__fail_os_last();
        req->pass_in_child[i] = (mproc__handle)theirs;
    }
    return 0;
}

/* One job for all daemon children, with KILL_ON_JOB_CLOSE: its only handle
   is ours and is never closed, so the system closes it when this process
   ends, however it ends, and that kills the daemons. */
static HANDLE daemon_job;

static int get_daemon_job(HANDLE *job)
{
    int rc = 0;
    mproc__os_global_lock();
    if (daemon_job == NULL) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
        memset(&info, 0, sizeof info);
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        HANDLE j = CreateJobObjectW(NULL, NULL);
        if (j == NULL) {
            rc = mproc__fail_os_last();
        } else if (!SetInformationJobObject(j, JobObjectExtendedLimitInformation, &info,
                                            sizeof info)) {
            rc = mproc__fail_os_last();
            CloseHandle(j);
        } else {
            daemon_job = j;
        }
    }
    *job = daemon_job;
    mproc__os_global_unlock();
    return rc;
}

static int prepare_child(const PROCESS_INFORMATION *pi, const mproc__os_spawn_req *req)
{
    int rc = push_handles(pi->hProcess, req);
    if (rc == 0 && req->daemon) {
        HANDLE job;
        rc = get_daemon_job(&job);
        if (rc == 0 && !AssignProcessToJobObject(job, pi->hProcess))
            rc = mproc__fail_os_last();
    }
    if (rc == 0 && ResumeThread(pi->hThread) == (DWORD)-1)
        rc = mproc__fail_os_last();
    return rc;
}

/* ---- spawn ---------------------------------------------------------------------- */

static int start_child(const mproc__os_spawn_req *req, PROCESS_INFORMATION *pi)
{
    wchar_t *path = NULL, *cmdline = NULL, *var = NULL, *env = NULL;
    int rc = child_program(req->exe, &path, &cmdline);
    if (rc != 0)
        return rc;
    if ((rc = child_variable(req, &var)) == 0 && (rc = child_environment(var, &env)) == 0)
        rc = create_suspended(path, cmdline, env, req->keep_stdin, pi);
    free(env);
    free(var);
    free(cmdline);
    free(path);
    if (rc != 0)
        return rc;
    if ((rc = prepare_child(pi, req)) != 0) {
        /* Never started: its copies of pushed handles die with it. */
        TerminateProcess(pi->hProcess, signal_code(9));
        WaitForSingleObject(pi->hProcess, INFINITE);
        CloseHandle(pi->hProcess);
    }
    CloseHandle(pi->hThread);
    return rc;
}

int mproc__os_spawn(const mproc__os_spawn_req *req, mproc__os_proc **out)
{
    int rc = 0;
    mproc__os_proc *p = NULL;
    PROCESS_INFORMATION pi;
    if (req->npass > MPROC__MAX_PASS || (req->npass > 0 && (!req->pass || !req->pass_in_child)))
        rc = MPROC_EINVAL;
    else if ((p = mproc__calloc(1, sizeof *p)) == NULL)
        rc = MPROC_ENOMEM;
    else
        rc = start_child(req, &pi);
    if (rc != 0) {
        free(p);
        mproc__os_close(req->boot_read);
        mproc__os_close(req->status_write);
        return rc;
    }
    p->process = pi.hProcess;
    p->pid = pi.dwProcessId;
    p->lent[0] = mproc__w32_handle(req->boot_read);
    p->lent[1] = mproc__w32_handle(req->status_write);
    *out = p;
    return 0;
}

/* ---- the child's side ------------------------------------------------------------ */

/* "pid:created:boot:status", four decimal numbers, nothing else. */
static int parse_env_value(const char *s, uint64_t v[4])
{
    for (int i = 0; i < 4; i++) {
        char *stop;
        if (*s < '0' || *s > '9')
            return MPROC_EPROTO;
        v[i] = (uint64_t)strtoull(s, &stop, 10);
        if (*stop != (i < 3 ? ':' : '\0'))
            return MPROC_EPROTO;
        s = stop + 1;
    }
    return 0;
}

/* Takes a copy of the parent's handle h; it must be a pipe. */
static int pull_pipe(HANDLE parent, uint64_t h, mproc__handle *out)
{
    HANDLE mine;
    if (!DuplicateHandle(parent, (HANDLE)(uintptr_t)h, GetCurrentProcess(), &mine, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return mproc__fail_os_last();
    if (GetFileType(mine) != FILE_TYPE_PIPE) {
        CloseHandle(mine);
        return MPROC_EPROTO;
    }
    *out = (mproc__handle)mine;
    return 0;
}

int mproc__os_child_channels(const char *env_value, mproc__handle *boot_read,
                             mproc__handle *status_write)
{
    uint64_t v[4]; /* parent pid, its creation time, boot_read, status_write */
    int rc = parse_env_value(env_value, v);
    if (rc != 0)
        return rc;
    if (v[0] == 0 || v[0] > UINT32_MAX)
        return MPROC_EPROTO;
    HANDLE parent = OpenProcess(PROCESS_DUP_HANDLE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                                (DWORD)v[0]);
    if (parent == NULL)
        return GetLastError() == ERROR_INVALID_PARAMETER ? MPROC_ECLOSED : mproc__fail_os_last();
    /* Another creation time: the parent is gone and its pid was reused. */
    if (creation_time(parent) != v[1])
        rc = MPROC_ECLOSED;
    if (rc == 0)
        rc = pull_pipe(parent, v[2], boot_read);
    if (rc == 0 && (rc = pull_pipe(parent, v[3], status_write)) != 0)
        CloseHandle(mproc__w32_handle(*boot_read));
    CloseHandle(parent);
    return rc;
}

/* ---- waiting and signalling ---------------------------------------------------- */

int mproc__os_has_fork(void)
{
    return 0;
}

/* No fork, so no forkserver: the request's channels are consumed all the same. */
int mproc__os_serve(const mproc__os_spawn_req *req, mproc__os_proc **out)
{
    (void)out;
    mproc__os_close(req->boot_read);
    mproc__os_close(req->status_write);
    return MPROC_ENOTSUP;
}

int mproc__os_fork(mproc__os_proc **out, int *is_child, int null_stdin)
{
    (void)out;
    (void)is_child;
    (void)null_stdin;
    return MPROC_ENOTSUP;
}

void mproc__os_exit_now(int code)
{
    /* TerminateProcess, not ExitProcess: no DLL detach code runs, so a
       thread killed while holding a lock cannot deadlock the exit. The
       core has flushed stdio before. */
    TerminateProcess(GetCurrentProcess(), (UINT)code);
    ExitProcess((UINT)code); /* not reached */
}

int64_t mproc__os_proc_pid(mproc__os_proc *p)
{
    return (int64_t)p->pid;
}

/* Once the child has ended it cannot pull the channel handles any more. */
static void release_lent(mproc__os_proc *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->lent[i] != NULL && p->lent[i] != INVALID_HANDLE_VALUE)
            CloseHandle(p->lent[i]);
        p->lent[i] = NULL;
    }
}

int mproc__os_proc_wait(mproc__os_proc *p, int timeout_ms, int *exitcode)
{
    if (!p->ended) {
        DWORD w = WaitForSingleObject(p->process, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
        if (w == WAIT_TIMEOUT)
            return MPROC_ETIMEDOUT;
        DWORD code;
        if (w != WAIT_OBJECT_0 || !GetExitCodeProcess(p->process, &code))
            return mproc__fail_os_last();
        p->code = decode_exit(code);
        p->ended = 1;
        release_lent(p);
    }
    *exitcode = p->code;
    return 0;
}

static int has_ended(const mproc__os_proc *p)
{
    return p->ended || WaitForSingleObject(p->process, 0) == WAIT_OBJECT_0;
}

int mproc__os_proc_signal(mproc__os_proc *p, int hard)
{
    if (has_ended(p))
        return 0;
    if (!TerminateProcess(p->process, signal_code(hard ? 9 : 15))) {
        DWORD err = GetLastError();
        /* Access is denied to a process that is already exiting. */
        return has_ended(p) ? 0 : mproc__fail_os((int)err);
    }
    return 0;
}

int mproc__os_proc_interrupt(mproc__os_proc *p)
{
    (void)p;
    return MPROC_ENOTSUP;
}

mproc__handle mproc__os_proc_wait_handle(mproc__os_proc *p)
{
    return (mproc__handle)p->process;
}

void mproc__os_proc_free(mproc__os_proc *p, int kill_it)
{
    if (p == NULL)
        return;
    /* Windows has no zombies: closing the handle is all the reaping. */
    if (kill_it && !has_ended(p))
        TerminateProcess(p->process, signal_code(9));
    release_lent(p);
    CloseHandle(p->process);
    free(p);
}
