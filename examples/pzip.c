/* pzip: a parallel gzip compressor, the way pigz works, in one screen of
   code on mproc's record stream.

     pzip [-1..-9] [-p WORKERS] < input > output.gz

   The input is cut into 192 KiB blocks (pigz: 128 KiB; larger ones send
   the 32 KiB dictionary less often, and a record of block and dictionary
   still goes two to a worker). Each worker deflates one block,
   primed with the 32 KiB before it as the dictionary (so the ratio stays
   close to a single deflate stream), and ends it with a sync flush so the
   pieces join into one stream; it returns the block's CRC-32 and its
   deflate bytes. The parent writes the gzip header, the pieces in order,
   an empty final block and the trailer (CRC-32 combined over the blocks).
   The blocks are read by the producer only as the stream's window frees:
   memory stays flat whatever the input's size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mproc.h>
#include <zlib.h>

#ifdef _WIN32
#  include <fcntl.h>
#  include <io.h>
#endif

#define BLOCK (192 * 1024)
#define DICT (32 * 1024)

/* A record: level (1 byte), dictionary length (4 bytes LE), the
   dictionary, then the block. It is built in place in buf: the block is
   read straight after the dictionary area, whose last prev_len bytes hold
   the 32 KiB read before it, and the 5 header bytes go just before them.
   So the dictionary is copied once per block (to the area's end, for the
   next block) and the block never (the pool copies the record). */
#define HEAD 64 /* room for the 5 header bytes; keeps the block 64-byte aligned */
typedef struct reader {
    FILE *in;
    int level;
    unsigned char *buf;   /* HEAD + DICT + BLOCK bytes */
    size_t prev_len;      /* the dictionary: buf[HEAD + DICT - prev_len, HEAD + DICT) */
    size_t last_n;        /* bytes of the block read last */
    int error;
} reader;

/* The next block's dictionary, the last 32 KiB read, to the end of the
   dictionary area (the pool has copied the last record by now). */
static void keep_dictionary(reader *r, size_t n)
{
    unsigned char *area = r->buf + HEAD, *data = area + DICT;
    if (n >= DICT) {
        memcpy(area, data + n - DICT, DICT);
        r->prev_len = DICT;
    } else {
        memmove(area, area + n, DICT - n); /* the old dictionary's tail moves left */
        memcpy(area + DICT - n, data, n);
        r->prev_len = r->prev_len + n > DICT ? DICT : r->prev_len + n;
    }
}

static int read_block(void *ctx, mproc_record *item)
{
    reader *r = ctx;
    unsigned char *dict_end = r->buf + HEAD + DICT, *data = dict_end;
    if (r->last_n) keep_dictionary(r, r->last_n);
    size_t n = fread(data, 1, BLOCK, r->in);
    r->last_n = n;
    if (n == 0) {
        if (ferror(r->in)) r->error = 1;
        return ferror(r->in) ? MPROC_EOS : 0;
    }
    unsigned char *p = dict_end - r->prev_len - 5;
    p[0] = (unsigned char)r->level;
    for (int i = 0; i < 4; i++) p[1 + i] = (unsigned char)(r->prev_len >> (8 * i));
    item->data = p;
    item->len = 5 + r->prev_len + n;
    return 1;
}

static void put_le32(unsigned char *p, uLong v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uLong get_le32(const unsigned char *p)
{
    return (uLong)p[0] | (uLong)p[1] << 8 | (uLong)p[2] << 16 | (uLong)p[3] << 24;
}

/* In a worker: one deflate stream, kept from block to block and reset for
   each (as pigz keeps one per thread): a fresh one per block would
   allocate and fault in its 256 KiB of tables every time. NULL if it
   cannot be had at this level. */
static z_stream *worker_stream(int level)
{
    static z_stream z;
    static int made, made_level;
    if (made && made_level == level) return deflateReset(&z) == Z_OK ? &z : NULL;
    if (made) deflateEnd(&z);
    memset(&z, 0, sizeof z);
    made = deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    made_level = level;
    return made ? &z : NULL;
}

/* In a worker: the block's CRC-32 and length (4 bytes LE each), then its
   deflate bytes, ended by a sync flush, deflated straight into the result
   (mproc_buf_reserve / commit: no buffer of its own, no copy). */
static int deflate_block(const void *in, size_t len, mproc_buf *out)
{
    const unsigned char *p = in;
    unsigned char head[8];
    if (len < 5) return 1;
    size_t dict_len = get_le32(p + 1);
    if (dict_len > DICT || 5 + dict_len > len) return 2;
    const unsigned char *data = p + 5 + dict_len;
    size_t n = len - 5 - dict_len;
    put_le32(head, crc32(0L, data, (uInt)n));
    put_le32(head + 4, (uLong)n);
    z_stream *z = worker_stream(p[0]);
    if (!z) return 3;
    int rc = dict_len && deflateSetDictionary(z, p + 5, (uInt)dict_len) != Z_OK ? 4 : 0;
    if (!rc) rc = mproc_buf_append(out, head, sizeof head);
    /* deflateBound plus the sync flush's marker: one call does it all */
    size_t room = deflateBound(z, (uLong)n) + 16;
    unsigned char *dst = rc ? NULL : mproc_buf_reserve(out, room);
    if (!rc && !dst) rc = 6;
    z->next_in = (unsigned char *)data;
    z->avail_in = (uInt)n;
    z->next_out = dst;
    z->avail_out = (uInt)room;
    if (!rc && (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in || !z->avail_out)) rc = 5;
    if (!rc) rc = mproc_buf_commit(out, room - z->avail_out);
    return rc;
}

int main(int argc, char **argv)
{
    if (mproc_main_guard(argc, argv) != 0) return 1;
    reader r = {stdin, 6, NULL, 0, 0, 0};
    mproc_pool_options opt = {0};
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] >= '1' && argv[i][1] <= '9' && !argv[i][2])
            r.level = argv[i][1] - '0';
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            opt.processes = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: pzip [-1..-9] [-p WORKERS] < input > output.gz\n");
            return 2;
        }
    }
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    mproc_pool *pool = NULL;
    mproc_iter *it = NULL;
    r.buf = malloc(HEAD + DICT + BLOCK);
    int rc = r.buf ? mproc_pool_create(&pool, &opt) : MPROC_ENOMEM;
    if (!rc) rc = mproc_pool_imap_stream(pool, deflate_block, read_block, &r, 0, 0, &it);
    /* gzip header: deflate, no name, no time, unknown OS */
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    static const unsigned char last_block[2] = {3, 0}; /* an empty final block */
    unsigned char trailer[8];
    uLong crc = crc32(0L, Z_NULL, 0), total = 0;
    void *out;
    size_t len, idx;
    if (!rc) fwrite(header, 1, sizeof header, stdout);
    while (!rc && (rc = mproc_iter_next_record(it, &out, &len, &idx, MPROC_FOREVER)) == 0) {
        const unsigned char *piece = out;
        uLong n = get_le32(piece + 4);
        crc = crc32_combine(crc, get_le32(piece), (z_off_t)n);
        total += n;
        fwrite(piece + 8, 1, len - 8, stdout);
        mproc_free(out);
    }
    if (rc == MPROC_EDONE) {
        put_le32(trailer, crc);
        put_le32(trailer + 4, total);
        fwrite(last_block, 1, sizeof last_block, stdout);
        fwrite(trailer, 1, sizeof trailer, stdout);
        rc = fflush(stdout) ? MPROC_EOS : 0;
    }
    if (rc) fprintf(stderr, "pzip: %s\n", mproc_strerror(rc));
    mproc_iter_destroy(it);
    mproc_pool_destroy(pool);
    free(r.buf);
    return rc ? 1 : 0;
}
