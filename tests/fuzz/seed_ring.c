/* Writes the ring fuzzer's seed to the file named by argv[1]: two position
   bytes, then records as a producer publishes them: a whole message, an
   empty one, and one streamed in three chunks. */
#include <stdio.h>
#include <string.h>

#include "ring.h"

static size_t record(unsigned char *out, int type, const char *bytes, uint32_t n, uint64_t total)
{
    mproc__rec_header(out, type, n, total);
    memcpy(out + MPROC__REC_HDR, bytes, n);
    size_t len = MPROC__REC_HDR + n;
    while (len % 8) out[len++] = 0;
    return len;
}

int main(int argc, char **argv)
{
    unsigned char seed[512] = {0};
    size_t len = 2; /* position bytes */
    len += record(seed + len, MPROC__REC_WHOLE, "hello", 5, 5);
    len += record(seed + len, MPROC__REC_WHOLE, "", 0, 0);
    len += record(seed + len, MPROC__REC_FIRST, "a streamed ", 11, 34);
    len += record(seed + len, MPROC__REC_MIDDLE, "message in ", 11, 34);
    len += record(seed + len, MPROC__REC_LAST, "three chunks", 12, 34);
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(seed, 1, len, f) != len) return 1;
    fclose(f);
    return 0;
}
