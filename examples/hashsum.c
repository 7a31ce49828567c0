/* hashsum: sha256sum for many files, in parallel, streaming the paths.

     find DIR -type f | hashsum [-p WORKERS] [-s] [-v]

   Reads one path per line from stdin and prints "digest  path" per file,
   in input order, as sha256sum does. Paths go to the workers through a
   record stream, 16 to a record: the producer reads the next lines only
   when the stream's window has room, so a million paths take no more
   memory than a few hundred.
   A file that cannot be read is reported on stderr (the others go on) and
   the exit status is 1. -s hashes in this process, one file after another
   (the serial baseline of bench/tools.sh). -v shows on stderr how many of
   the paths read so far are hashed, moving per file although a record
   holds 16: each task reports its files with mproc_task_progress. SHA-256 is implemented here
   (FIPS 180-4), to need nothing beyond the C library. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mproc.h>

/* ---- SHA-256 ------------------------------------------------------------------ */
typedef struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t fill;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
        uint32_t t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) h[i] += v[i];
}

static void sha256_init(sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0;
    s->fill = 0;
}

static void sha256_update(sha256 *s, const unsigned char *p, size_t n)
{
    s->bytes += n;
    if (s->fill) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill < 64) return;
        sha256_block(s->h, s->block);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(s->h, p);
    memcpy(s->block, p, n);
    s->fill = n;
}

static void sha256_final(sha256 *s, unsigned char out[32])
{
    uint64_t bits = s->bytes * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 32; i++) out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- hashing a file ------------------------------------------------------------- */
/* "digest  path" into line (at least 64 + 2 + strlen(path) + 2 bytes):
   0, or -1 with the reason in err. */
static int hash_path(const char *path, char *line, char *err, size_t err_cap)
{
    static unsigned char buf[64 * 1024];
    unsigned char digest[32];
    sha256 s;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    sha256_init(&s);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, err_cap, "%s: read error", path);
        return -1;
    }
    sha256_final(&s, digest);
    for (int i = 0; i < 32; i++) sprintf(line + 2 * i, "%02x", digest[i]);
    sprintf(line + 64, "  %s\n", path);
    return 0;
}

/* A record is a batch of up to BATCH paths, one per line: a message per
   file would cost as much as hashing a small one. The result has a line
   per path: "digest  path", or ERR_MARK and the reason. */
#define BATCH 16
#define ERR_MARK '\001'

/* In a worker. */
static int hash_record(const void *in, size_t len, mproc_buf *out)
{
    static const char mark = ERR_MARK;
    char path[4096 + 2], line[4096 + 80], err[4200];
    const char *p = in, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n >= sizeof path) {
            mproc_task_fail("path too long (%lu bytes)", (unsigned long)n);
            return 1;
        }
        memcpy(path, p, n);
        path[n] = '\0';
        p += n + 1;
        int hashed = hash_path(path, line, err, sizeof err) == 0;
        mproc_task_progress(1); /* one more file of the record: -v's count moves */
        int rc = hashed
                     ? mproc_buf_append(out, line, strlen(line))
                     : mproc_buf_append(out, &mark, 1) ||
                           mproc_buf_append(out, err, strlen(err)) || mproc_buf_append(out, "\n", 1);
        if (rc) return 1;
    }
    return 0;
}

/* ---- reading paths --------------------------------------------------------------- */
static char path_buf[4096 + 2];
static unsigned long long paths_read;

/* The next line of stdin without its newline: 1, 0 at the end. */
static int next_path(void)
{
    while (fgets(path_buf, sizeof path_buf, stdin)) {
        size_t n = strcspn(path_buf, "\r\n");
        path_buf[n] = '\0';
        if (n) {
            paths_read++;
            return 1;
        }
    }
    return 0;
}

/* The next batch of paths (the pool copies it before the next call). */
static int produce(void *ctx, mproc_record *item)
{
    static char batch[BATCH * (sizeof path_buf + 1)];
    size_t len = 0;
    (void)ctx;
    for (int k = 0; k < BATCH && next_path(); k++) {
        size_t n = strlen(path_buf);
        memcpy(batch + len, path_buf, n);
        batch[len + n] = '\n';
        len += n + 1;
    }
    if (!len) return ferror(stdin) ? MPROC_EOS : 0;
    item->data = batch;
    item->len = len - 1;
    return 1;
}

/* Prints a batch's lines: digests to stdout, failures to stderr. 1 if
   any file failed. */
static int print_batch(const char *p, size_t len)
{
    const char *end = p + len;
    int failed = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl + 1 : end) - p);
        if (*p == ERR_MARK) {
            fprintf(stderr, "hashsum: %.*s", (int)(n - 1), p + 1);
            failed = 1;
        } else {
            fwrite(p, 1, n, stdout);
        }
        p += n;
    }
    return failed;
}

/* -v: files hashed (reported by the tasks, also inside records still
   running) of the paths read so far. */
static void draw_progress(mproc_pool *pool)
{
    mproc_pool_stats st;
    if (mproc_pool_stats_get(pool, &st) != 0) return;
    fprintf(stderr, "\rhashsum: %llu of %llu files", (unsigned long long)st.progress, paths_read);
    fflush(stderr);
}

static int serial(void)
{
    char line[4096 + 80], err[4200];
    int status = 0;
    while (next_path()) {
        if (hash_path(path_buf, line, err, sizeof err) == 0) {
            fputs(line, stdout);
        } else {
            fprintf(stderr, "hashsum: %s\n", err);
            status = 1;
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    mproc_pool_options opt = {0};
    int alone = 0, status = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s")) {
            alone = 1;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            opt.processes = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: hashsum [-p WORKERS] [-s] [-v] < paths\n");
            return 2;
        }
    }
    if (alone) return serial();
    mproc_pool *pool = NULL;
    mproc_iter *it = NULL;
    int rc = mproc_pool_create(&pool, &opt);
    if (!rc) rc = mproc_pool_imap_stream(pool, hash_record, produce, NULL, 0, 0, &it);
    while (!rc || rc == MPROC_ETASK) {
        void *out;
        size_t len, idx;
        mproc_task_error err;
        /* -v: the count is redrawn at least every 100 ms while records run */
        rc = mproc_iter_next_record(it, &out, &len, &idx, verbose ? 100 : MPROC_FOREVER);
        if (verbose && (rc == 0 || rc == MPROC_ETIMEDOUT)) draw_progress(pool);
        if (rc == MPROC_ETIMEDOUT) {
            rc = 0;
        } else if (rc == 0) {
            status |= print_batch(out, len);
            mproc_free(out);
        } else if (rc == MPROC_ETASK && mproc_iter_error(it, &err) == 0) {
            fprintf(stderr, "hashsum: %s\n", err.message);
            status = 1;
        }
    }
    if (verbose && pool) {
        draw_progress(pool);
        fputc('\n', stderr);
    }
    if (rc != MPROC_EDONE) {
        fprintf(stderr, "hashsum: %s\n", mproc_strerror(rc));
        status = 1;
    }
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
    return status;
}
