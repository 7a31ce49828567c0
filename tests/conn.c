/* Connections (mproc_pipe) within a process and across real processes:
   sizes, recv_into, poll, timeouts (a message parked part-way and resumed),
   closing either end, a corrupt or forged ring, a writer killed
   mid-message, refs, and mproc_wait. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "ref.h"
#include "ring.h"
#ifdef _WIN32
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
#else
#  include <fcntl.h>
#  include <unistd.h>
#endif

#define BIG_WAIT_MS 120000

/* ---- message patterns ------------------------------------------------------ */

static unsigned char *make_msg(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    tu_fill(p, n, seed);
    return p;
}

static void send_pattern(mproc_conn *c, size_t n, uint64_t seed)
{
    unsigned char *p = make_msg(n, seed);
    assert_int_equal(mproc_conn_send(c, p, n), 0);
    free(p);
}

static void recv_pattern(mproc_conn *c, size_t n, uint64_t seed)
{
    void *buf = NULL;
    size_t len = 99;
    assert_int_equal(mproc_conn_recv(c, &buf, &len, BIG_WAIT_MS), 0);
    assert_int_equal(len, n);
    assert_true(tu_check(buf, len, seed));
    mproc_free(buf);
}

/* The sizes every transport is checked with (the big ones need a reader in
   another process: kernel buffers are smaller). */
static const size_t small_sizes[] = {0, 1, 7, 15, 16, 17, 63, 64, 65, 4095, 4096, 4097, 32767, 32768};

/* ---- in-process --------------------------------------------------------------- */
static void roundtrip_small(int duplex)
{
    mproc_conn *a, *b;
    assert_int_equal(mproc_pipe(&a, &b, duplex), 0);
    for (size_t i = 0; i < sizeof small_sizes / sizeof *small_sizes; i++) {
        send_pattern(b, small_sizes[i], i);
        recv_pattern(a, small_sizes[i], i);
    }
    /* queued back to back, read in order */
    for (size_t i = 0; i < 100; i++) send_pattern(b, i * 3, 1000 + i);
    for (size_t i = 0; i < 100; i++) recv_pattern(a, i * 3, 1000 + i);
    if (duplex) {
        send_pattern(a, 100, 7);
        recv_pattern(b, 100, 7);
    }
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
}

/* Lengths around a quarter of the ring (1 MiB per direction), where whole
   records end and streams begin, each followed by a small message. */
static void test_record_size_boundary(void **state)
{
    (void)state;
    mproc_conn *a, *b;
    assert_int_equal(mproc_pipe(&a, &b, 0), 0);
    size_t quarter = (size_t)256 << 10;
    for (size_t n = quarter - 40; n <= quarter + 8; n++) {
        send_pattern(b, n, n);
        send_pattern(b, 3, n + 1);
        recv_pattern(a, n, n);
        recv_pattern(a, 3, n + 1);
    }
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
}

static void test_roundtrip_oneway(void **state) { (void)state; roundtrip_small(0); }
static void test_roundtrip_duplex(void **state) { (void)state; roundtrip_small(1); }

static void test_direction_and_bad_input(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    void *buf;
    size_t len;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    assert_int_equal(mproc_conn_send(r, "x", 1), MPROC_ESTATE);
    assert_int_equal(mproc_conn_recv(w, &buf, &len, 0), MPROC_ESTATE);
    assert_int_equal(mproc_conn_poll(w, 0), MPROC_ESTATE);
    assert_int_equal(mproc_conn_send(NULL, "x", 1), MPROC_EINVAL);
    assert_int_equal(mproc_conn_send(w, NULL, 1), MPROC_EINVAL);
    assert_int_equal(mproc_conn_recv(r, NULL, &len, 0), MPROC_EINVAL);
    assert_int_equal(mproc_conn_recv(NULL, &buf, &len, 0), MPROC_EINVAL);
    assert_int_equal(mproc_conn_recv_into(r, NULL, 5, &len, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pipe(NULL, &w, 0), MPROC_EINVAL);
    assert_int_equal(mproc_conn_send(w, NULL, 0), 0); /* an empty message is fine */
    assert_int_equal(mproc_conn_recv_into(r, NULL, 0, &len, 1000), 0);
    assert_int_equal(len, 0);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_conn_destroy(NULL);
}

static void test_recv_into(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    unsigned char small[10], big[1000];
    size_t len = 0;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    send_pattern(w, 500, 3);
    send_pattern(w, 5, 4);
    /* too small: EINVAL, the size, and the message stays */
    assert_int_equal(mproc_conn_recv_into(r, small, sizeof small, &len, 1000), MPROC_EINVAL);
    assert_int_equal(len, 500);
    assert_int_equal(mproc_conn_poll(r, 0), 1);
    assert_int_equal(mproc_conn_recv_into(r, big, sizeof big, &len, 1000), 0);
    assert_int_equal(len, 500);
    assert_true(tu_check(big, 500, 3));
    assert_int_equal(mproc_conn_recv_into(r, small, sizeof small, &len, 1000), 0);
    assert_int_equal(len, 5);
    assert_true(tu_check(small, 5, 4));
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
}

static void test_timeouts_and_poll(void **state)
{
    (void)state;
    mproc_conn *a, *b;
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(mproc_pipe(&a, &b, 1), 0);
    assert_int_equal(mproc_conn_poll(a, 0), 0);
    assert_int_equal(mproc_conn_poll(a, 30), 0);
    assert_int_equal(mproc_conn_recv(a, &buf, &len, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_conn_recv(a, &buf, &len, 30), MPROC_ETIMEDOUT);
    assert_null(buf);
    send_pattern(b, 10, 1);
    assert_int_equal(mproc_conn_poll(a, 0) == 1 || mproc_conn_poll(a, 10000) == 1, 1);
    recv_pattern(a, 10, 1);
    assert_int_equal(mproc_conn_poll(a, 0), 0);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
}

static void closing(int duplex)
{
    mproc_conn *r, *w;
    void *buf;
    size_t len;
    /* writer goes: queued messages first, then ECLOSED, repeatedly */
    assert_int_equal(mproc_pipe(&r, &w, duplex), 0);
    send_pattern(w, 100, 9);
    mproc_conn_destroy(w);
    assert_int_equal(mproc_conn_poll(r, 10000), 1);
    recv_pattern(r, 100, 9);
    assert_int_equal(mproc_conn_poll(r, 0), 1); /* end of stream is readable */
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_ECLOSED);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, MPROC_FOREVER), MPROC_ECLOSED);
    mproc_conn_destroy(r);
    /* reader goes: the writer gets ECLOSED, and no SIGPIPE kills us */
    assert_int_equal(mproc_pipe(&r, &w, duplex), 0);
    mproc_conn_destroy(r);
    assert_int_equal(mproc_conn_send(w, "hello", 5), MPROC_ECLOSED);
    assert_int_equal(mproc_conn_send(w, "hello", 5), MPROC_ECLOSED);
    mproc_conn_destroy(w);
}

/* Sends of one byte until MPROC_ECLOSED: how many it took, or limit + 1. */
static int sends_until_closed(mproc_conn *w, int limit)
{
    for (int i = 1; i <= limit; i++) {
        int rc = mproc_conn_send(w, "x", 1);
        if (rc == MPROC_ECLOSED) return i;
        assert_int_equal(rc, 0);
    }
    return limit + 1;
}

/* A reader that goes while taking messages is noticed within 64 sends;
   one that had stopped reading before it went, within 1024 (the link is
   asked less often while the reader does not move). */
static void test_reader_goes_midstream(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    for (int i = 0; i < 200; i++) {
        send_pattern(w, 8, (uint64_t)i);
        recv_pattern(r, 8, (uint64_t)i);
    }
    mproc_conn_destroy(r);
    assert_true(sends_until_closed(w, 64) <= 64);
    assert_int_equal(mproc_conn_send(w, "x", 1), MPROC_ECLOSED);
    mproc_conn_destroy(w);

    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    for (int i = 0; i < 3000; i++) assert_int_equal(mproc_conn_send(w, "x", 1), 0);
    mproc_conn_destroy(r);
    assert_true(sends_until_closed(w, 1024) <= 1024);
    mproc_conn_destroy(w);
}

static void test_close_oneway(void **state) { (void)state; closing(0); }
static void test_close_duplex(void **state) { (void)state; closing(1); }

/* ---- a corrupt peer: raw bytes into the ring ------------------------------------ */
/* The block behind a conn end, mapped here as any process holding it could. */
typedef struct raw_block {
    mproc__conn_shared *sh;
    size_t size;
} raw_block;

static raw_block raw_map(mproc_conn *c)
{
    mproc_ref ref;
    mproc__entry e;
    raw_block b;
    void *p = NULL;
    assert_int_equal(mproc_conn_ref(c, &ref), 0);
    assert_int_equal(mproc__ref_resolve(&ref, MPROC__KIND_CONN, &e), 0);
    b.size = (size_t)mproc__get_u64(e.info + 8);
    assert_int_equal(mproc__os_map(e.handles[0], b.size, 1, &p), 0);
    b.sh = p;
    return b;
}

/* Appends bytes to the ring that end a (the first end of mproc_pipe) reads. */
static void raw_write(mproc_conn *any_end, const void *bytes, size_t n)
{
    raw_block b = raw_map(any_end);
    mproc__ring_write_raw(&b.sh->ring[0], (unsigned char *)b.sh + MPROC__CONN_DATA_OFF, bytes, n);
    mproc__os_unmap(b.sh, b.size);
}

static void raw_record(unsigned char *h, int type, uint32_t n, uint64_t total)
{
    mproc__rec_header(h, type, n, total);
}

static void test_corrupt_record(void **state)
{
    (void)state;
    mproc_conn *r, *w, *r2, *w2;
    void *buf;
    size_t len;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    assert_int_equal(mproc_pipe(&r2, &w2, 0), 0);
    send_pattern(w, 20, 1);
    unsigned char junk[16];
    memset(junk, 0xff, sizeof junk); /* a huge length, wrong tag */
    raw_write(w, junk, sizeof junk);
    send_pattern(w2, 20, 2);
    recv_pattern(r, 20, 1); /* whole messages before the damage arrive */
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    assert_null(buf);
    /* the damage is dropped once; the conn goes on */
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT);
    send_pattern(w, 30, 3);
    recv_pattern(r, 30, 3);
    recv_pattern(r2, 20, 2); /* nothing else is affected */
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_conn_destroy(r2);
    mproc_conn_destroy(w2);
}

static void test_corrupt_length_checked(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    void *buf = NULL;
    size_t len;
    unsigned char h[16];
    assert_int_equal(mproc_pipe(&r, &w, 1), 0);
    raw_record(h, MPROC__REC_WHOLE, 1000, 1000); /* longer than what is there */
    raw_write(w, h, sizeof h);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    raw_record(h, MPROC__REC_WHOLE, 0, 5); /* whole, yet lengths disagree */
    raw_write(w, h, sizeof h);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    unsigned char first[16 + 8] = {0};
    raw_record(first, MPROC__REC_FIRST, 8, 3); /* a first chunk longer than its message */
    raw_write(w, first, sizeof first);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    raw_record(h, MPROC__REC_MIDDLE, 0, 0); /* a chunk with no first */
    raw_write(w, h, sizeof h);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT); /* skipped */
    assert_null(buf);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
}

/* A stream's first chunk, then the sender goes: EPROTO, then end of stream. */
static void test_short_message(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    void *buf = NULL;
    size_t len;
    unsigned char rec[16 + 8];
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    send_pattern(w, 10, 4);
    raw_record(rec, MPROC__REC_FIRST, 8, 1 << 20);
    memset(rec + 16, 0x5a, 8);
    raw_write(w, rec, sizeof rec);
    mproc_conn_destroy(w);
    recv_pattern(r, 10, 4);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    assert_null(buf);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_ECLOSED);
    mproc_conn_destroy(r);
}

/* A record of type with the bytes p[0..n) of a message of total bytes. */
static void raw_chunk(mproc_conn *c, int type, const unsigned char *p, uint32_t n, uint64_t total)
{
    unsigned char rec[16 + 64];
    assert_true(n <= 64);
    raw_record(rec, type, n, total);
    memcpy(rec + 16, p, n);
    raw_write(c, rec, 16 + (size_t)n);
}

/* A timeout mid-message keeps what came; the next receive resumes it, into
   a new block or a caller's buffer (which must hold the whole message). */
static void park_and_resume(int into)
{
    mproc_conn *r, *w;
    unsigned char msg[100], got[100];
    void *buf = NULL;
    size_t len = 0;
    tu_fill(msg, sizeof msg, 77);
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    raw_chunk(w, MPROC__REC_FIRST, msg, 40, sizeof msg);
    if (into) {
        assert_int_equal(mproc_conn_recv_into(r, got, sizeof got, &len, 0), MPROC_ETIMEDOUT);
        raw_chunk(w, MPROC__REC_MIDDLE, msg + 40, 40, sizeof msg);
        assert_int_equal(mproc_conn_recv_into(r, got, 50, &len, 0), MPROC_EINVAL);
        assert_int_equal(len, sizeof msg);
        assert_int_equal(mproc_conn_recv_into(r, got, sizeof got, &len, 0), MPROC_ETIMEDOUT);
        raw_chunk(w, MPROC__REC_LAST, msg + 80, 20, sizeof msg);
        assert_int_equal(mproc_conn_recv_into(r, got, sizeof got, &len, 0), 0);
        assert_memory_equal(got, msg, sizeof msg);
    } else {
        assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT);
        assert_null(buf);
        raw_chunk(w, MPROC__REC_MIDDLE, msg + 40, 40, sizeof msg);
        assert_int_equal(mproc_conn_poll(r, 0), 1);
        assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT);
        raw_chunk(w, MPROC__REC_LAST, msg + 80, 20, sizeof msg);
        assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), 0);
        assert_int_equal(len, sizeof msg);
        assert_memory_equal(buf, msg, sizeof msg);
        mproc_free(buf);
    }
    send_pattern(w, 10, 5); /* and the conn goes on */
    recv_pattern(r, 10, 5);
    /* a parked message dropped with its conn: a second reader skips it */
    mproc_ref ref;
    mproc_conn *r2;
    assert_int_equal(mproc_conn_ref(r, &ref), 0);
    assert_int_equal(mproc_conn_attach(&ref, &r2), 0);
    raw_chunk(w, MPROC__REC_FIRST, msg, 40, sizeof msg);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT);
    mproc_conn_destroy(r);
    raw_chunk(w, MPROC__REC_LAST, msg + 40, 60, sizeof msg);
    send_pattern(w, 11, 6);
    recv_pattern(r2, 11, 6);
    mproc_conn_destroy(r2);
    mproc_conn_destroy(w);
}

static void test_park_resume(void **state) { (void)state; park_and_resume(0); }
static void test_park_resume_into(void **state) { (void)state; park_and_resume(1); }

/* A forged length (1 TiB) with a few bytes behind it: no 1 TiB allocation,
   EPROTO once the sender has gone, then end of stream. */
static void test_forged_length(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    void *buf = NULL;
    size_t len;
    unsigned char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    raw_chunk(w, MPROC__REC_FIRST, bytes, 8, (uint64_t)1 << 40);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 0), MPROC_ETIMEDOUT);
    mproc_conn_destroy(w);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_EPROTO);
    assert_null(buf);
    assert_int_equal(mproc_conn_recv(r, &buf, &len, 10000), MPROC_ECLOSED);
    mproc_conn_destroy(r);
}

static void test_refs_bad(void **state)
{
    (void)state;
    mproc_conn *a, *b, *c = NULL;
    mproc_ref ref, bad;
    assert_int_equal(mproc_pipe(&a, &b, 0), 0);
    assert_int_equal(mproc_conn_ref(a, &ref), 0);
    memset(&bad, 0, sizeof bad);
    assert_int_equal(mproc_conn_attach(&bad, &c), MPROC_EINVAL);
    bad = ref;
    bad.bytes[30] ^= 1; /* forged: checksum no longer matches */
    assert_int_equal(mproc_conn_attach(&bad, &c), MPROC_EINVAL);
    mproc_queue *q;
    assert_int_equal(mproc_queue_create(&q, 0), 0);
    assert_int_equal(mproc_queue_ref(q, &bad), 0);
    assert_int_equal(mproc_conn_attach(&bad, &c), MPROC_EINVAL); /* wrong kind */
    mproc_queue *q2 = NULL;
    assert_int_equal(mproc_queue_attach(&ref, &q2), MPROC_EINVAL); /* and back */
    assert_null(q2);
    mproc_queue_destroy(q);
    /* well-formed, but names nothing this process has */
    mproc__objid id = {12345, 678, 9};
    unsigned char info[MPROC__REF_INFO] = {1};
    mproc__ref_make(MPROC__KIND_CONN, &id, info, &bad);
    assert_int_equal(mproc_conn_attach(&bad, &c), MPROC_ENOENT);
    assert_null(c);
    assert_int_equal(mproc_conn_attach(NULL, &c), MPROC_EINVAL);
    assert_int_equal(mproc_conn_ref(NULL, &ref), MPROC_EINVAL);
    /* in the creator, attaching gives a second handle on the same end */
    assert_int_equal(mproc_conn_attach(&ref, &c), 0);
    send_pattern(b, 33, 3);
    recv_pattern(c, 33, 3);
    mproc_conn_destroy(c);
    mproc_conn_destroy(a);
    /* a destroyed object's ref names nothing */
    assert_int_equal(mproc_conn_attach(&ref, &c), MPROC_ENOENT);
    mproc_conn_destroy(b);
}

/* ---- across processes ---------------------------------------------------------- */
typedef struct child_arg {
    mproc_ref ref, ref2;
    uint64_t sizes[16];
    uint32_t nsizes;
    uint32_t mode;
} child_arg;

static int child_receive(const void *argp, size_t len)
{
    child_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    for (uint32_t i = 0; i < a.nsizes; i++) {
        void *buf;
        size_t n;
        if (mproc_conn_recv(c, &buf, &n, BIG_WAIT_MS) != 0) return 12;
        int ok = n == a.sizes[i] && tu_check(buf, n, i);
        mproc_free(buf);
        if (!ok) return 13;
    }
    /* then end of stream once the parent lets go */
    void *buf;
    size_t n;
    int rc = mproc_conn_recv(c, &buf, &n, BIG_WAIT_MS);
    mproc_conn_destroy(c);
    return rc == MPROC_ECLOSED ? 0 : 14;
}

static int child_send(const void *argp, size_t len)
{
    child_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    for (uint32_t i = 0; i < a.nsizes; i++) {
        size_t n = (size_t)a.sizes[i];
        unsigned char *p = malloc(n ? n : 1);
        if (!p) return 12;
        tu_fill(p, n, i);
        int rc = mproc_conn_send(c, p, n);
        free(p);
        if (rc) return 13;
    }
    mproc_conn_destroy(c);
    return 0;
}

/* KEPT_RUN messages of 40 bytes (seeds 0, 1, ...): enough in a row that
   both ends keep their ring locks between calls (ring.c: BIAS_AFTER).
   Then, mode SEND_ONE: one of a.sizes[0] bytes (seed 999); mode
   SEND_EACH_SIZE: one of each size from 0 to a.sizes[0] (seed: its size). */
#define KEPT_RUN 200
enum { SEND_ONE, SEND_EACH_SIZE };
static int child_send_run(const void *argp, size_t len)
{
    child_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    size_t most = (size_t)a.sizes[0] > 40 ? (size_t)a.sizes[0] : 40;
    unsigned char *p = malloc(most);
    if (!p) return 12;
    int rc = 0;
    for (uint32_t i = 0; i < KEPT_RUN && !rc; i++) {
        tu_fill(p, 40, i);
        rc = mproc_conn_send(c, p, 40);
    }
    for (size_t n = a.mode == SEND_ONE ? most : 0; n <= most && !rc; n++) {
        tu_fill(p, n, a.mode == SEND_ONE ? 999 : n);
        rc = mproc_conn_send(c, p, n);
    }
    free(p);
    mproc_conn_destroy(c);
    return rc ? 13 : 0;
}

/* The read end of a pipe whose writer, a child, ran child_send_run in
   mode with size and has exited, with the KEPT_RUN messages of the run
   received. All was sent before the first receive, so no receiver slept
   on the ring: the sender's lock was kept during its run, and ours is
   kept after the run's receives. */
static mproc_conn *after_kept_run(uint32_t mode, uint64_t size)
{
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    child_arg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_conn_ref(w, &a.ref), 0);
    a.mode = mode;
    a.sizes[0] = size;
    mproc_process *p = tu_start(child_send_run, &a, sizeof a);
    mproc_conn_destroy(w);
    int code = -1;
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    mproc_process_destroy(p);
    unsigned char buf[64];
    size_t len = 0;
    for (uint32_t i = 0; i < KEPT_RUN; i++) {
        assert_int_equal(mproc_conn_recv_into(r, buf, sizeof buf, &len, BIG_WAIT_MS), 0);
        assert_int_equal(len, 40);
        assert_true(tu_check(buf, len, i));
    }
    return r;
}

/* The small-message path of a kept lock keeps recv_into's contract: a
   message larger than the buffer is MPROC_EINVAL with its size, and stays. */
static void test_kept_lock_recv_into_too_small(void **state)
{
    (void)state;
    mproc_conn *r = after_kept_run(SEND_ONE, 300);
    unsigned char buf[64];
    size_t len = 0;
    assert_int_equal(mproc_conn_recv_into(r, buf, sizeof buf, &len, BIG_WAIT_MS), MPROC_EINVAL);
    assert_int_equal(len, 300);
    recv_pattern(r, 300, 999);
    assert_int_equal(mproc_conn_recv_into(r, buf, sizeof buf, &len, BIG_WAIT_MS), MPROC_ECLOSED);
    mproc_conn_destroy(r);
}

/* The kept-lock paths copy up to 64 bytes with moves of their own for
   each range of sizes: every size up to it and past it arrives whole,
   through recv_into and recv alike. */
static void test_kept_lock_every_small_size(void **state)
{
    (void)state;
    mproc_conn *r = after_kept_run(SEND_EACH_SIZE, 140);
    unsigned char buf[256];
    size_t len = 0;
    for (size_t n = 0; n <= 140; n++) {
        if (n % 2) {
            void *m = NULL;
            assert_int_equal(mproc_conn_recv(r, &m, &len, BIG_WAIT_MS), 0);
            assert_int_equal(len, n);
            assert_true(tu_check(m, len, n));
            mproc_free(m);
        } else {
            assert_int_equal(mproc_conn_recv_into(r, buf, sizeof buf, &len, BIG_WAIT_MS), 0);
            assert_int_equal(len, n);
            assert_true(tu_check(buf, len, n));
        }
    }
    assert_int_equal(mproc_conn_recv_into(r, buf, sizeof buf, &len, BIG_WAIT_MS), MPROC_ECLOSED);
    mproc_conn_destroy(r);
}

static int child_echo(const void *argp, size_t len)
{
    child_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    for (;;) {
        void *buf;
        size_t n;
        int rc = mproc_conn_recv(c, &buf, &n, BIG_WAIT_MS);
        if (rc == MPROC_ECLOSED) break;
        if (rc) return 12;
        rc = mproc_conn_send(c, buf, n);
        mproc_free(buf);
        if (rc) return 13;
    }
    mproc_conn_destroy(c);
    return 0;
}

static int big_ok(void)
{
#ifdef MPROC_TEST_NO_HUGE
    return 0;
#else
    return getenv("MPROC_TEST_SMALL") == NULL;
#endif
}

static void child_arg_sizes(child_arg *a)
{
    static const uint64_t sizes[] = {0, 1, 16, 65535, 65536, 65537, 1 << 20, (1 << 20) + 3, 9 << 20};
    memcpy(a->sizes, sizes, sizeof sizes);
    a->nsizes = sizeof sizes / sizeof *sizes;
    if (big_ok()) a->sizes[a->nsizes++] = (uint64_t)256 << 20;
}

static void parent_to_child(int duplex)
{
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, duplex), 0);
    child_arg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_conn_ref(r, &a.ref), 0);
    child_arg_sizes(&a);
    mproc_process *p = tu_start(child_receive, &a, sizeof a);
    mproc_conn_destroy(r); /* the child has its own copy now */
    for (uint32_t i = 0; i < a.nsizes; i++) send_pattern(w, (size_t)a.sizes[i], i);
    mproc_conn_destroy(w);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
}

static void test_parent_to_child_oneway(void **state) { (void)state; parent_to_child(0); }
static void test_parent_to_child_duplex(void **state) { (void)state; parent_to_child(1); }

static void child_to_parent(int duplex)
{
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, duplex), 0);
    child_arg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_conn_ref(w, &a.ref), 0);
    child_arg_sizes(&a);
    mproc_process *p = tu_start(child_send, &a, sizeof a);
    mproc_conn_destroy(w); /* so that the child's exit is our end of stream */
    for (uint32_t i = 0; i < a.nsizes; i++) recv_pattern(r, (size_t)a.sizes[i], i);
    void *buf;
    size_t n;
    assert_int_equal(mproc_conn_recv(r, &buf, &n, BIG_WAIT_MS), MPROC_ECLOSED);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
}

static void test_child_to_parent_oneway(void **state) { (void)state; child_to_parent(0); }
static void test_child_to_parent_duplex(void **state) { (void)state; child_to_parent(1); }

static void test_huge_1gib(void **state)
{
    (void)state;
    if (!big_ok() || sizeof(size_t) < 8) {
        skip();
        return;
    }
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    child_arg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_conn_ref(w, &a.ref), 0);
    a.sizes[0] = (uint64_t)1 << 30;
    a.nsizes = 1;
    mproc_process *p = tu_start(child_send, &a, sizeof a);
    mproc_conn_destroy(w);
    /* into a caller buffer, straight from the channel */
    size_t n = (size_t)1 << 30, len = 0;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(mproc_conn_recv_into(r, buf, n, &len, BIG_WAIT_MS), 0);
    assert_int_equal(len, n);
    assert_true(tu_check(buf, n, 0));
    free(buf);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
}

static void test_duplex_echo(void **state)
{
    (void)state;
    mproc_conn *a, *b;
    assert_int_equal(mproc_pipe(&a, &b, 1), 0);
    child_arg arg;
    memset(&arg, 0, sizeof arg);
    assert_int_equal(mproc_conn_ref(b, &arg.ref), 0);
    mproc_process *p = tu_start(child_echo, &arg, sizeof arg);
    mproc_conn_destroy(b);
    for (size_t i = 0; i < 200; i++) {
        send_pattern(a, i * 37 % 5000, i);
        recv_pattern(a, i * 37 % 5000, i);
    }
    send_pattern(a, 3 << 20, 77);
    recv_pattern(a, 3 << 20, 77);
    mproc_conn_destroy(a); /* the echo child sees ECLOSED and exits 0 */
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
}

/* Two small messages, then a message far larger than any kernel buffer:
   the child is blocked in the middle of it when it is killed. */
static int child_send_then_block(const void *argp, size_t len)
{
    child_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    unsigned char small[100];
    tu_fill(small, sizeof small, 1);
    if (mproc_conn_send(c, small, sizeof small) || mproc_conn_send(c, small, sizeof small)) return 12;
    size_t n = (size_t)64 << 20;
    unsigned char *p = calloc(1, n);
    if (!p) return 13;
    mproc_conn_send(c, p, n);
    return 14; /* not reached: killed */
}

static void test_writer_killed_mid_message(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    child_arg a;
    memset(&a, 0, sizeof a);
    assert_int_equal(mproc_conn_ref(w, &a.ref), 0);
    mproc_process *p = tu_start(child_send_then_block, &a, sizeof a);
    mproc_conn_destroy(w);
    recv_pattern(r, 100, 1);
    recv_pattern(r, 100, 1);
    /* the big message has started arriving */
    assert_int_equal(mproc_conn_poll(r, BIG_WAIT_MS), 1);
    assert_int_equal(mproc_process_kill(p), 0);
    int code = 0;
    assert_int_equal(mproc_process_join(p, TU_JOIN_TIMEOUT_MS), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_not_equal(code, 0);
    void *buf = NULL;
    size_t n = 0;
    assert_int_equal(mproc_conn_recv(r, &buf, &n, BIG_WAIT_MS), MPROC_EPROTO);
    assert_null(buf);
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
}

/* ---- both directions of one duplex end in use by two threads -------------------- */
typedef struct duplex_side {
    mproc_conn *c;
    int rc;
} duplex_side;

/* On x: waits for the reply while the main thread's send on x waits for
   room, so both may sleep on x's link at once. */
static void await_reply(void *p)
{
    duplex_side *s = p;
    void *buf = NULL;
    size_t len = 0;
    s->rc = mproc_conn_recv(s->c, &buf, &len, BIG_WAIT_MS);
    if (!s->rc && (len != 100 || !tu_check(buf, len, 8))) s->rc = -100;
    mproc_free(buf);
}

/* On y: takes the big message, then replies. */
static void drain_then_reply(void *p)
{
    duplex_side *s = p;
    void *buf = NULL;
    size_t len = 0;
    s->rc = mproc_conn_recv(s->c, &buf, &len, BIG_WAIT_MS);
    if (!s->rc && (len != ((size_t)4 << 20) || !tu_check(buf, len, 7))) s->rc = -100;
    mproc_free(buf);
    unsigned char reply[100];
    tu_fill(reply, sizeof reply, 8);
    if (!s->rc) s->rc = mproc_conn_send(s->c, reply, sizeof reply);
}

static void test_duplex_two_threads(void **state)
{
    (void)state;
    mproc_conn *x, *y;
    assert_int_equal(mproc_pipe(&x, &y, 1), 0);
    duplex_side waiter = {x, 1}, peer = {y, 1};
    mproc__os_thread *tw = NULL, *tp = NULL;
    assert_int_equal(mproc__os_thread_start(&tw, await_reply, &waiter), 0);
    assert_int_equal(mproc__os_thread_start(&tp, drain_then_reply, &peer), 0);
    send_pattern(x, (size_t)4 << 20, 7); /* four times the ring: waits for room */
    mproc__os_thread_join(tp);
    mproc__os_thread_join(tw);
    assert_int_equal(peer.rc, 0);
    assert_int_equal(waiter.rc, 0);
    mproc_conn_destroy(x);
    mproc_conn_destroy(y);
}

/* ---- mproc_wait ------------------------------------------------------------------ */
#define NWAIT 100 /* more than Windows' 64-handle limit */

typedef struct wait_arg {
    mproc_ref ref;
    uint32_t value;
} wait_arg;

static int child_send_one(const void *argp, size_t len)
{
    wait_arg a;
    if (len != sizeof a) return 10;
    memcpy(&a, argp, sizeof a);
    mproc_conn *c;
    if (mproc_conn_attach(&a.ref, &c) != 0) return 11;
    int rc = mproc_conn_send(c, &a.value, sizeof a.value);
    mproc_conn_destroy(c);
    return rc ? 12 : 0;
}

static void test_wait_many_conns(void **state)
{
    (void)state;
    mproc_conn *r[NWAIT], *w[NWAIT];
    mproc_waitable items[NWAIT + 1];
    for (int i = 0; i < NWAIT; i++) {
        assert_int_equal(mproc_pipe(&r[i], &w[i], i % 2), 0);
        items[i].kind = MPROC_WAIT_CONN;
        items[i].obj = r[i];
    }
    assert_int_equal(mproc_wait(items, NWAIT, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_wait(items, NWAIT, 20), MPROC_ETIMEDOUT);
    /* a child writes to the last one only; the process is waited on too */
    wait_arg a = {{{0}}, 4242};
    assert_int_equal(mproc_conn_ref(w[NWAIT - 1], &a.ref), 0);
    mproc_process *p = tu_start(child_send_one, &a, sizeof a);
    int n = mproc_wait(items, NWAIT, BIG_WAIT_MS);
    assert_int_equal(n, 1);
    for (int i = 0; i < NWAIT; i++) assert_int_equal(items[i].ready, i == NWAIT - 1);
    uint32_t v = 0;
    size_t len = 0;
    assert_int_equal(mproc_conn_recv_into(r[NWAIT - 1], &v, sizeof v, &len, 0), 0);
    assert_int_equal(v, 4242);
    items[NWAIT].kind = MPROC_WAIT_PROCESS;
    items[NWAIT].obj = p;
    assert_int_equal(mproc_wait(&items[NWAIT], 1, BIG_WAIT_MS), 1);
    assert_int_equal(items[NWAIT].ready, 1);
    assert_int_equal(tu_join(p), 0);
    /* a closed writer makes its reader ready (end of stream) */
    mproc_conn_destroy(w[3]);
    w[3] = NULL;
    assert_int_equal(mproc_wait(items, NWAIT, BIG_WAIT_MS), 1);
    assert_int_equal(items[3].ready, 1);
    mproc_process_destroy(p);
    for (int i = 0; i < NWAIT; i++) {
        mproc_conn_destroy(r[i]);
        mproc_conn_destroy(w[i]);
    }
    assert_int_equal(mproc_wait(NULL, 1, 0), MPROC_EINVAL);
    assert_int_equal(mproc_wait(items, 0, 0), MPROC_EINVAL);
}

/* ---- handing over OS handles (issue 15) ------------------------------------------ */
/* An OS pipe, to hand its write end over: POSIX descriptors, Windows HANDLEs. */
static void os_pipe(intptr_t *r, intptr_t *w)
{
#ifdef _WIN32
    HANDLE hr, hw;
    assert_true(CreatePipe(&hr, &hw, NULL, 0));
    *r = (intptr_t)hr;
    *w = (intptr_t)hw;
#else
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    *r = fds[0];
    *w = fds[1];
#endif
}

static int os_write(intptr_t h, const char *s)
{
#ifdef _WIN32
    DWORD n = 0;
    return WriteFile((HANDLE)h, s, (DWORD)strlen(s), &n, NULL) && n == strlen(s) ? 0 : -1;
#else
    return write((int)h, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
#endif
}

/* Bytes read until end of stream (at most cap). */
static size_t os_read_all(intptr_t h, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
#ifdef _WIN32
        DWORD n = 0;
        if (!ReadFile((HANDLE)h, buf + got, (DWORD)(cap - got), &n, NULL) || n == 0) return got;
#else
        ssize_t n = read((int)h, buf + got, cap - got);
        if (n <= 0) return got;
#endif
        got += (size_t)n;
        if (got == cap) return got;
    }
}

static void os_close(intptr_t h)
{
#ifdef _WIN32
    CloseHandle((HANDLE)h);
#else
    close((int)h);
#endif
}

/* A handle passed to this process is its own and private to it. */
static int handle_is_private(intptr_t h)
{
#ifdef _WIN32
    DWORD flags = 0;
    return GetHandleInformation((HANDLE)h, &flags) && !(flags & HANDLE_FLAG_INHERIT);
#else
    int fl = fcntl((int)h, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
#endif
}

/* Child: receives two handles (write ends of the parent's OS pipes) with a
   message between them, writes through each, closes them. */
static int child_use_handles(const void *arg, size_t len)
{
    mproc_conn *c;
    intptr_t h1, h2;
    void *msg = NULL;
    size_t n = 0;
    if (len != sizeof(mproc_ref) || mproc_conn_attach(arg, &c)) return 10;
    if (mproc_conn_recv_handle(c, &h1, BIG_WAIT_MS)) return 11;
    if (mproc_conn_recv(c, &msg, &n, BIG_WAIT_MS) || n != 5 || memcmp(msg, "between", 5)) return 12;
    mproc_free(msg);
    if (mproc_conn_recv_handle(c, &h2, BIG_WAIT_MS)) return 13;
    if (!handle_is_private(h1) || !handle_is_private(h2)) return 14;
    int rc = os_write(h1, "first") || os_write(h2, "second") ? 15 : 0;
    os_close(h1);
    os_close(h2);
    mproc_conn_destroy(c);
    return rc;
}

static void test_send_handle_to_child(void **state)
{
    (void)state;
    mproc_conn *r, *w;
    mproc_ref ref;
    intptr_t r1, w1, r2, w2;
    char buf[32];
    os_pipe(&r1, &w1);
    os_pipe(&r2, &w2);
    assert_int_equal(mproc_pipe(&r, &w, 0), 0);
    assert_int_equal(mproc_conn_ref(r, &ref), 0);
    mproc_process *p = tu_start(child_use_handles, &ref, sizeof ref);
    mproc_conn_destroy(r);
    assert_int_equal(mproc_conn_send_handle(w, w1), 0);
    assert_int_equal(mproc_conn_send(w, "between", 5), 0);
    assert_int_equal(mproc_conn_send_handle(w, w2), 0);
    /* Ours closed: end of stream comes once the child's copies close. */
    os_close(w1);
    os_close(w2);
    assert_int_equal(os_read_all(r1, buf, sizeof buf), 5);
    assert_memory_equal(buf, "first", 5);
    assert_int_equal(os_read_all(r2, buf, sizeof buf), 6);
    assert_memory_equal(buf, "second", 6);
    assert_int_equal(tu_join(p), 0);
    mproc_process_destroy(p);
    os_close(r1);
    os_close(r2);
    mproc_conn_destroy(w);
}

static void test_recv_handle_wrong_message(void **state)
{
    (void)state;
    mproc_conn *a, *b;
    intptr_t h = 7, r1, w1;
    size_t n = 0;
    char big[64] = {0};
    assert_int_equal(mproc_pipe(&a, &b, 1), 0);
    assert_int_equal(mproc_conn_send(b, "plain", 5), 0);
    assert_int_equal(mproc_conn_recv_handle(a, &h, BIG_WAIT_MS), MPROC_EPROTO);
    assert_int_equal(h, (intptr_t)MPROC__NO_HANDLE);
    assert_int_equal(mproc_conn_send(b, big, sizeof big), 0);
    assert_int_equal(mproc_conn_recv_handle(a, &h, BIG_WAIT_MS), MPROC_EPROTO);
    assert_int_equal(mproc_conn_recv_into(a, big, sizeof big, &n, 0), 0); /* left in place */
    assert_int_equal(n, sizeof big);
    assert_int_equal(mproc_conn_recv_handle(a, &h, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_conn_send_handle(b, (intptr_t)MPROC__NO_HANDLE), MPROC_EINVAL);
    assert_int_equal(mproc_conn_send_handle(NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_conn_recv_handle(a, NULL, 0), MPROC_EINVAL);
    /* within one process, both directions of a duplex pipe; a handle
       message read as plain data does not shift later handles */
    intptr_t r0, w0;
    os_pipe(&r0, &w0);
    os_pipe(&r1, &w1);
    assert_int_equal(mproc_conn_send_handle(a, w0), 0);
    assert_int_equal(mproc_conn_send_handle(a, w1), 0);
    assert_int_equal(mproc_conn_recv_into(b, big, sizeof big, &n, BIG_WAIT_MS), 0);
    assert_int_equal(mproc_conn_recv_handle(b, &h, BIG_WAIT_MS), 0);
    os_close(w0);
    os_close(w1);
    assert_int_equal(os_write(h, "x"), 0);
    os_close(h);
    assert_int_equal(os_read_all(r1, big, sizeof big), 1);
#ifndef _WIN32
    assert_int_equal(os_read_all(r0, big, sizeof big), 0); /* its copy was closed */
#endif
    os_close(r0);
    os_close(r1);
    mproc_conn_destroy(b);
    assert_int_equal(mproc_conn_send_handle(a, 0), MPROC_ECLOSED); /* the reader is gone */
    mproc_conn_destroy(a);
}

int main(int argc, char **argv)
{
    tu_guard(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_oneway),
        cmocka_unit_test(test_record_size_boundary),
        cmocka_unit_test(test_roundtrip_duplex),
        cmocka_unit_test(test_direction_and_bad_input),
        cmocka_unit_test(test_recv_into),
        cmocka_unit_test(test_kept_lock_recv_into_too_small),
        cmocka_unit_test(test_kept_lock_every_small_size),
        cmocka_unit_test(test_timeouts_and_poll),
        cmocka_unit_test(test_close_oneway),
        cmocka_unit_test(test_reader_goes_midstream),
        cmocka_unit_test(test_close_duplex),
        cmocka_unit_test(test_corrupt_record),
        cmocka_unit_test(test_corrupt_length_checked),
        cmocka_unit_test(test_short_message),
        cmocka_unit_test(test_park_resume),
        cmocka_unit_test(test_park_resume_into),
        cmocka_unit_test(test_forged_length),
        cmocka_unit_test(test_refs_bad),
        cmocka_unit_test(test_parent_to_child_oneway),
        cmocka_unit_test(test_parent_to_child_duplex),
        cmocka_unit_test(test_child_to_parent_oneway),
        cmocka_unit_test(test_child_to_parent_duplex),
        cmocka_unit_test(test_huge_1gib),
        cmocka_unit_test(test_duplex_echo),
        cmocka_unit_test(test_duplex_two_threads),
        cmocka_unit_test(test_writer_killed_mid_message),
        cmocka_unit_test(test_wait_many_conns),
        cmocka_unit_test(test_send_handle_to_child),
        cmocka_unit_test(test_recv_handle_wrong_message),
    };
    return TU_RUN(argc, argv, tests);
}
