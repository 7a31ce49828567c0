/* libFuzzer harness: the bootstrap message parser and the ref decoder must
   turn every input into an error code — never a crash, hang or over-read.
   The checksum would stop almost every mutation at the door, so each input
   is also tried with its length and checksum fields made consistent, which
   sends it on into the field parser. */
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static mproc__boot out;

static void decode_with_fixed_checksum(const unsigned char *data, size_t size)
{
    if (size < MPROC__BOOT_HEADER + 8 || size > MPROC__BOOT_MAX) return;
    unsigned char *copy = malloc(size);
    if (!copy) return;
    memcpy(copy, data, size);
    mproc__put_u32(copy + 12, (uint32_t)size);
    mproc__put_u64(copy + size - 8, mproc__fnv1a64(copy, size - 8, MPROC__FNV_SEED));
    int rc = mproc__boot_decode(copy, size, &out);
    if (rc == 0 && out.arg_len && !out.arg_in_shm) {
        /* a decoded inline argument must lie inside the message */
        if (out.arg < copy || out.arg + out.arg_len > copy + size) abort();
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    mproc__boot_decode(data, size, &out);
    decode_with_fixed_checksum(data, size);
    if (size >= sizeof(mproc_ref)) {
        mproc_ref ref;
        mproc__objid id;
        unsigned char info[MPROC__REF_INFO];
        memcpy(ref.bytes, data, sizeof ref.bytes);
        for (int kind = 0; kind <= MPROC__KIND_MAX_; kind++) mproc__ref_parse(&ref, kind, &id, info);
    }
    mproc__entry found[4];
    mproc__registry_scan(data, size, found, 4);
    return 0;
}
