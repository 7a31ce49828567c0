/*
 * Win32 shared-memory objects for mproc_shm_*: pagefile-backed sections
 * named "Local\<name>" (the session's namespace, default DACL). A section
 * lives exactly as long as some handle to it, so a generated name
 * ("mproc-<pid>-<random hex>") dies with its creator however it ends, and
 * a user's name does too: unlink has nothing to remove.
 */
#include "w32.h"

#include <stdio.h>

static int section_name(const char *name, wchar_t **out)
{
    char full[MPROC__SHM_NAME_MAX + 8];
    int n = snprintf(full, sizeof full, "Local\\%s", name);
    if (n < 0 || (size_t)n >= sizeof full) return MPROC_EINVAL;
    return mproc__w32_to_utf16(full, out);
}

int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h)
{
    wchar_t *w;
    int rc = section_name(name, &w);
    if (rc) return rc;
    uint64_t s = (uint64_t)size;
    HANDLE m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, (DWORD)(s >> 32),
                                  (DWORD)s, w);
    DWORD err = GetLastError();
    free(w);
    if (!m) return mproc__fail_os((int)err);
    if (err == ERROR_ALREADY_EXISTS) { /* never share a stranger's section */
        CloseHandle(m);
        return MPROC_EEXIST;
    }
    *h = (mproc__handle)m;
    return 0;
}

int mproc__os_shm_create_private(size_t size, char *name, size_t cap, mproc__handle *h)
{
    unsigned char r[8];
    int rc = mproc__os_random(r, sizeof r);
    if (rc) return rc;
    int n = snprintf(name, cap, "mproc-%lu-", (unsigned long)GetCurrentProcessId());
    for (size_t i = 0; i < sizeof r && n > 0 && (size_t)n < cap; i++)
        n += snprintf(name + n, cap - (size_t)n, "%02x", r[i]);
    if (n < 0 || (size_t)n >= cap) return MPROC_EINVAL;
    return mproc__os_shm_create_named(name, size, h);
}

int mproc__os_shm_size(mproc__handle h, size_t *size)
{
    MEMORY_BASIC_INFORMATION mi;
    void *p = MapViewOfFile(mproc__w32_handle(h), FILE_MAP_READ, 0, 0, 0);
    if (!p) return mproc__fail_os_last();
    SIZE_T got = VirtualQuery(p, &mi, sizeof mi);
    UnmapViewOfFile(p);
    if (got == 0) return mproc__fail_os_last();
    *size = (size_t)mi.RegionSize;
    return 0;
}

int mproc__os_shm_open(const char *name, mproc__handle *h, size_t *size)
{
    wchar_t *w;
    int rc = section_name(name, &w);
    if (rc) return rc;
    HANDLE m = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, w);
    DWORD err = GetLastError();
    free(w);
    if (!m) return err == ERROR_FILE_NOT_FOUND ? MPROC_ENOENT : mproc__fail_os((int)err);
    rc = mproc__os_shm_size((mproc__handle)m, size);
    if (rc) {
        CloseHandle(m);
        return rc;
    }
    *h = (mproc__handle)m;
    return 0;
}

int mproc__os_shm_unlink(const char *name, int created_here, mproc__handle *h)
{
    (void)name;
    (void)created_here;
    (void)h;
    return MPROC_ENOTSUP; /* a section's name goes with its last handle */
}

int mproc__os_shm_dup(mproc__handle h, mproc__handle *out)
{
    HANDLE self = GetCurrentProcess(), d;
    if (!DuplicateHandle(self, mproc__w32_handle(h), self, &d, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return mproc__fail_os_last();
    *out = (mproc__handle)d;
    return 0;
}
