/*
 * Win32: code modules. A target function travels as (module path, offset
 * from the module's base); the child finds the same module already loaded
 * (the program, or a DLL it loads at start-up) and adds the offset back.
 */
#include "w32.h"

int mproc__os_addr_to_module(const void *addr, char *path, size_t cap, uint64_t *offset)
{
    HMODULE mod;
    /* UNCHANGED_REFCOUNT: we only ask which module; we must not pin it. */
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)addr, &mod))
        return GetLastError() == ERROR_MOD_NOT_FOUND ? MPROC_ENOENT : mproc__fail_os_last();
    *offset = (uint64_t)((uintptr_t)addr - (uintptr_t)mod);
    /* The program is named "" so that a child started from another path
       (mproc_set_executable) resolves targets in its own program. */
    if (mod == GetModuleHandleW(NULL)) {
        if (cap == 0)
            return MPROC_EINVAL;
        path[0] = '\0';
        return 0;
    }
    wchar_t *wpath;
    int rc = mproc__w32_module_path(mod, &wpath);
    if (rc != 0)
        return rc;
    rc = mproc__w32_to_utf8(wpath, path, cap);
    free(wpath);
    return rc;
}

/* The PE headers of a loaded image, checked enough to be walked safely. */
static const IMAGE_NT_HEADERS *image_headers(HMODULE mod)
{
    const unsigned char *base = (const unsigned char *)mod;
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    if (dos->e_magic != IMAGE_DOS_SIGNATURE || dos->e_lfanew <= 0)
        return NULL;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
    return nt->Signature == IMAGE_NT_SIGNATURE ? nt : NULL;
}

/* 1 if offset lies inside an executable section of the image: an offset
   from a forged or corrupted message must never become a call into data. */
static int offset_is_code(HMODULE mod, uint64_t offset)
{
    const IMAGE_NT_HEADERS *nt = image_headers(mod);
    if (nt == NULL || offset >= nt->OptionalHeader.SizeOfImage)
        return 0;
    const IMAGE_SECTION_HEADER *sec = IMAGE_FIRST_SECTION(nt);
    for (WORD i = 0; i < nt->FileHeader.NumberOfSections; i++, sec++) {
        uint64_t start = sec->VirtualAddress;
        uint64_t size = sec->Misc.VirtualSize ? sec->Misc.VirtualSize : sec->SizeOfRawData;
        if ((sec->Characteristics & IMAGE_SCN_MEM_EXECUTE) && offset >= start &&
            offset < start + size)
            return 1;
    }
    return 0;
}

int mproc__os_module_to_addr(const char *path, uint64_t offset, void **addr)
{
    HMODULE mod;
    if (path[0] == '\0') {
        mod = GetModuleHandleW(NULL);
    } else {
        wchar_t *wpath;
        int rc = mproc__w32_to_utf16(path, &wpath);
        if (rc != 0)
            return rc;
        /* Looks up a loaded module only: a child never loads code because
           a message told it to. */
        mod = GetModuleHandleW(wpath);
        free(wpath);
    }
    if (mod == NULL || !offset_is_code(mod, offset))
        return MPROC_ENOENT;
    *addr = (void *)((uintptr_t)mod + (uintptr_t)offset);
    return 0;
}
