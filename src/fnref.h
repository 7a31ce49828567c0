/* Function references across processes: a function pointer means nothing
   in another address space, so it travels as (module, offset) plus a digest
   of its first code bytes, and is checked before anything jumps to it —
   the C analogue of pickling a function by module and qualified name. */
#ifndef MPROC_FNREF_H
#define MPROC_FNREF_H

#include "internal.h"

typedef struct mproc__fnref {
    char module[MPROC__MODULE_PATH_MAX]; /* "" = the main program */
    uint64_t offset;
    unsigned char digest[16];
} mproc__fnref;

/* Describe the function at fn_addr (the caller converts its function
   pointer with memcpy). MPROC_EINVAL if it is in no loaded module. */
int mproc__fnref_make(const void *fn_addr, mproc__fnref *out);
/* Find it in this process and check the digest: 0 and *fn_addr, or
   MPROC_EBOOTSTRAP / MPROC_ENOENT when this process has no such code. */
int mproc__fnref_resolve(const mproc__fnref *ref, void **fn_addr);

/* The first 16 code bytes of a function. */
void mproc__code_digest(const void *fn_addr, unsigned char digest[16]);

#endif
