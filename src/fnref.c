#include "fnref.h"

void mproc__code_digest(const void *fn_addr, unsigned char digest[16])
{
    memcpy(digest, fn_addr, 16);
}

int mproc__fnref_make(const void *fn_addr, mproc__fnref *out)
{
    if (!fn_addr || !out) return MPROC_EINVAL;
    int rc = mproc__os_addr_to_module(fn_addr, out->module, sizeof out->module, &out->offset);
    if (rc) return rc;
    mproc__code_digest(fn_addr, out->digest);
    return 0;
}

int mproc__fnref_resolve(const mproc__fnref *ref, void **fn_addr)
{
    unsigned char digest[16];
    void *addr;
    if (!ref || !fn_addr || memchr(ref->module, '\0', sizeof ref->module) == NULL)
        return MPROC_EINVAL;
    int rc = mproc__os_module_to_addr(ref->module, ref->offset, &addr);
    if (rc) return rc;
    mproc__code_digest(addr, digest);
    if (memcmp(digest, ref->digest, sizeof digest) != 0) return MPROC_EBOOTSTRAP;
    *fn_addr = addr;
    return 0;
}
