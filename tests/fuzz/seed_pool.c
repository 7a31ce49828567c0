/* Writes the pool fuzzer's seeds to the files argv[1]_worker and
   argv[1]_parent: what a worker reads (define, map, apply, stop) and what
   the parent reads (ready, item failed, done with a result), each behind
   its side byte. */
#include <stdio.h>
#include <string.h>

#include "pool.h"

static size_t put(unsigned char *out, const mproc__pool_msg *m, const void *payload, size_t n)
{
    mproc__pool_msg_encode(m, out);
    if (n) memcpy(out + MPROC__POOL_HDR, payload, n);
    return MPROC__POOL_HDR + n;
}

static int save(const char *base, const char *suffix, const unsigned char *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", base, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) return 1;
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    unsigned char buf[1024];
    unsigned char fnref[MPROC__FNREF_WIRE_MAX];
    mproc__fnref ref;
    size_t len = 0;
    if (argc != 2) return 2;
    memset(&ref, 0, sizeof ref);
    strcpy(ref.module, "/usr/bin/worker");
    ref.offset = 4096;

    mproc__pool_msg m = {0};
    buf[len++] = 1; /* to the worker */
    m.type = MPROC__T_DEFINE;
    m.len = (uint32_t)mproc__pool_fnref_encode(&ref, fnref);
    len += put(buf + len, &m, fnref, m.len);
    memset(&m, 0, sizeof m);
    m.type = MPROC__T_MAP;
    m.seq = 1;
    m.off = 128;
    m.len = 4;
    m.a = 4;
    m.b = 8;
    len += put(buf + len, &m, NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = MPROC__T_APPLY;
    m.seq = 2;
    m.total = 5;
    len += put(buf + len, &m, "input", 5);
    memset(&m, 0, sizeof m);
    m.type = MPROC__T_STOP;
    len += put(buf + len, &m, NULL, 0);
    if (save(argv[1], "_worker", buf, len)) return 1;

    len = 0;
    buf[len++] = 0; /* to the parent */
    memset(&m, 0, sizeof m);
    m.type = MPROC__R_READY;
    len += put(buf + len, &m, NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = MPROC__R_ITEMFAIL;
    m.seq = 1;
    m.a = 2;
    m.code = MPROC_ETASK;
    m.len = 4;
    len += put(buf + len, &m, "boom", 4);
    memset(&m, 0, sizeof m);
    m.type = MPROC__R_DONE;
    m.seq = 2;
    m.total = 6;
    m.len = 0;
    m.b = 12;
    len += put(buf + len, &m, "result", 6);
    return save(argv[1], "_parent", buf, len);
}
