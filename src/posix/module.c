/* POSIX: which loaded module holds an address, and back; the identity of
   our own executable. */
#include "../internal.h"
#include "posix.h"

#include <limits.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>
#if defined(__APPLE__)
#  include <dlfcn.h>
#  include <mach-o/dyld.h>
#else
#  include <link.h>
#endif

#if !defined(__APPLE__)
typedef struct module_query {
    /* addr -> module */
    uintptr_t addr;
    /* module -> addr */
    const char *path;
    uint64_t offset;
    /* results */
    int found, executable, index;
    const char *name;
    uintptr_t base;
} module_query;

/* The first object dl_iterate_phdr reports is the main program. */
static const char *object_name(struct dl_phdr_info *info, int index)
{
    return index == 0 ? "" : (info->dlpi_name ? info->dlpi_name : "");
}

static int find_by_address(struct dl_phdr_info *info, size_t size, void *data)
{
    module_query *q = data;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && q->addr >= start && q->addr < start + ph->p_memsz) {
            q->found = 1;
            q->name = object_name(info, q->index);
            q->base = info->dlpi_addr;
            return 1;
        }
    }
    q->index++;
    return 0;
}

static int find_by_name(struct dl_phdr_info *info, size_t size, void *data)
{
    module_query *q = data;
    (void)size;
    if (strcmp(object_name(info, q->index++), q->path) != 0) return 0;
    q->found = 1;
    q->base = info->dlpi_addr;
    uintptr_t addr = info->dlpi_addr + (uintptr_t)q->offset;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        /* 16 bytes are read there (the code digest): keep them inside. */
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && addr >= start &&
            addr + 16 <= start + ph->p_memsz)
            q->executable = 1;
    }
    return 1;
}

int mproc__os_addr_to_module(const void *addr, char *path, size_t cap, uint64_t *offset)
{
    module_query q = {0};
    q.addr = (uintptr_t)addr;
    dl_iterate_phdr(find_by_address, &q);
    if (!q.found) return MPROC_EINVAL;
    if (strlen(q.name) >= cap) return MPROC_EINVAL;
    strcpy(path, q.name);
    *offset = (uint64_t)(q.addr - q.base);
    return 0;
}

int mproc__os_module_to_addr(const char *path, uint64_t offset, void **addr)
{
    module_query q = {0};
    q.path = path;
    q.offset = offset;
    dl_iterate_phdr(find_by_name, &q);
    if (!q.found || !q.executable) return MPROC_ENOENT;
    *addr = (void *)(q.base + (uintptr_t)offset);
    return 0;
}
#else
/* macOS: dyld's image list; image 0 is the main program. */
int mproc__os_addr_to_module(const void *addr, char *path, size_t cap, uint64_t *offset)
{
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fbase) return MPROC_EINVAL;
    const char *name = info.dli_fbase == (void *)_dyld_get_image_header(0) ? "" : info.dli_fname;
    if (strlen(name) >= cap) return MPROC_EINVAL;
    strcpy(path, name);
    *offset = (uint64_t)((uintptr_t)addr - (uintptr_t)info.dli_fbase);
    return 0;
}

int mproc__os_module_to_addr(const char *path, uint64_t offset, void **addr)
{
    for (uint32_t i = 0; i < _dyld_image_count(); i++) {
        const char *name = i == 0 ? "" : _dyld_get_image_name(i);
        if (strcmp(name, path) != 0) continue;
        uintptr_t a = (uintptr_t)_dyld_get_image_header(i) + (uintptr_t)offset;
        Dl_info info;
        if (!dladdr((void *)a, &info) || info.dli_fbase != (void *)_dyld_get_image_header(i))
            return MPROC_ENOENT;
        *addr = (void *)a;
        return 0;
    }
    return MPROC_ENOENT;
}
#endif

int mproc__posix_self_exe(char *buf, size_t cap)
{
#if defined(__APPLE__)
    uint32_t size = (uint32_t)cap;
    return _NSGetExecutablePath(buf, &size) == 0 ? 0 : MPROC_EINVAL;
#else
    /* If the file has been deleted the link itself still works. */
    static char resolved[PATH_MAX];
    mproc__os_global_lock();
    if (!resolved[0]) {
        const char *deleted = " (deleted)";
        size_t dl = strlen(deleted);
        ssize_t n = readlink("/proc/self/exe", resolved, sizeof resolved - 1);
        if (n <= 0 || (size_t)n >= sizeof resolved - 1 ||
            ((size_t)n > dl && memcmp(resolved + n - dl, deleted, dl) == 0))
            strcpy(resolved, "/proc/self/exe");
        else
            resolved[n] = '\0';
    }
    mproc__os_global_unlock();
    if (strlen(resolved) >= cap) return MPROC_EINVAL;
    strcpy(buf, resolved);
    return 0;
#endif
}

int mproc__os_image_id(unsigned char id[32])
{
    struct stat st;
    char path[PATH_MAX];
    int rc = mproc__posix_self_exe(path, sizeof path);
    if (rc) return rc;
    if (stat(path, &st) != 0) return mproc__fail_os_last();
    memset(id, 0, 32);
    mproc__put_u64(id, (uint64_t)st.st_dev);
    mproc__put_u64(id + 8, (uint64_t)st.st_ino);
    mproc__put_u64(id + 16, (uint64_t)st.st_size);
    mproc__put_u64(id + 24, (uint64_t)st.st_mtime);
    return 0;
}
