/* A ring of framed messages in shared memory: the storage of queues
   (queue.c) and of conns (conn.c).

   Records. Each message is one record {tag, chunk length, total length}
   followed by its bytes, padded to 8. A message too large for a quarter of
   the ring is streamed as FIRST / MIDDLE... / LAST chunks while the
   consumer drains them, so any size works. A record is published by
   advancing the tail after its bytes are copied: a producer that dies
   mid-copy leaves nothing visible.

   Locking. One producer at a time holds the put lock and one consumer the
   get lock, which makes the ring single-producer single-consumer: head and
   tail are plain atomics and the copies run outside any shared critical
   section, producer and consumer in parallel. A lock word holds the
   owner's pid (and which of its ring objects); a waiter that finds the owner gone (exited, killed, or a
   zombie) takes the lock over and repairs what the owner left: a stream
   cut short gets an ABORT record, so the consumer discards the partial
   message; a consumer cut short mid-stream makes the next one skip the
   rest of that message. An owner that takes a lock many times in a row
   keeps it between calls where the system has an asymmetric fence (Linux
   membarrier): then taking and releasing it are plain stores, and a
   contender revokes it (ring.c, "the two locks"); elsewhere every take
   is a compare-and-swap.

   Waiting belongs to the user of the ring (a queue sleeps on a doorbell,
   a conn on its link): the ring spins briefly, then calls ops->sleep_once
   in slices, and calls ops->wake after every change somebody may wait
   for. The tail and head are published with release stores, and the
   waiters a message concerns are looked for after the unlock: a plain
   unlock's fence orders that look after the publication (the sleeper
   announces, then looks at the ring: one of the two sees the other); a
   kept lock has no fence, so a sleeper runs the remote fence after its
   announcement instead, which costs the sleeping side, not every
   message, and asks the owner to give the lock up: a lock is kept again
   only after a run of takes with no sleeper announced, so a ring whose
   reader sleeps between messages pays for neither. The ring itself is trusted no further than its checks: a record
   that fails them (shared memory scribbled on) empties the ring and
   reports MPROC_EPROTO. */
#ifndef MPROC_RING_H
#define MPROC_RING_H

#include "atomic.h"
#include "comm.h"

/* What a sleeper waits for; counted in mproc__ring_shared.waiters. */
enum { MPROC__RING_DATA, MPROC__RING_SPACE, MPROC__RING_LOCK, MPROC__RING_JOIN,
       MPROC__RING_KINDS };

/* A put or get lock (ring.c: "the two locks"). owner: the holder's id
   (pid in the low 32 bits, which ring object in bits 32-61) and the
   BIAS/REVOKE flags, 0 when free; busy: a holder that keeps the lock
   between calls (BIAS) is inside it; last: the id that took it last
   without BIAS, for the decision to keep it; stale: the id of a keeper
   the lock was taken from, until it has seen so (nobody keeps the lock
   meanwhile); kept_seq: how many times the lock was kept. */
typedef struct mproc__ring_lock {
    volatile uint64_t owner, busy, last, stale, kept_seq;
} mproc__ring_lock;

/* The ring's state in shared memory, one cache line per group: the side
   that writes a line mostly owns it, and tail and head, which the other
   side reads, sit alone so that reading them never stalls the owner's
   lock and counter writes. capacity is set before the memory is shared. */
typedef struct mproc__ring_shared {
    uint64_t capacity;
    uint64_t pad0[7];
    mproc__ring_lock put;
    volatile uint64_t put_stream, put_msgs; /* put_msgs: messages started */
    volatile uint64_t put_pending; /* see start_message in ring.c */
    volatile uint64_t tail;
    uint64_t pad2[7];
    mproc__ring_lock get;
    volatile uint64_t get_stream, get_msgs; /* get_msgs: messages taken */
    uint64_t pad3[1];
    volatile uint64_t head;
    uint64_t pad4[7];
    volatile uint64_t waiters[MPROC__RING_KINDS];
    /* Announcements so far, per kind: a waker rings once per announcement
       it has seen, not once per change while its sleeper has yet to run
       (a system call per message on a loaded machine). */
    volatile uint64_t wait_seq[MPROC__RING_KINDS];
} mproc__ring_shared;

typedef struct mproc__ring mproc__ring;
/* A condition a waiter waits for: 1 holds, 0 not. sleeping: 1 once the spin
   phase is over, when costly checks (is an owner still alive?) are made. */
typedef int (*mproc__ring_cond)(mproc__ring *r, void *arg, int sleeping);

typedef struct mproc__ring_ops {
    /* Announce a waiter of kind in r->sh->waiters, look at cond again,
       sleep at most slice_ms unless it holds, look again, withdraw the
       announcement. Returns cond's last answer or an error. */
    int (*sleep_once)(mproc__ring *r, int kind, mproc__ring_cond cond, void *arg, int slice_ms);
    /* Something waiters of kind wait for has happened. */
    void (*wake)(mproc__ring *r, int kind);
    /* Optional: a started message was cut short. */
    void (*aborted)(mproc__ring *r);
} mproc__ring_ops;

struct mproc__ring {
    mproc__ring_shared *sh;
    unsigned char *data;  /* capacity bytes */
    uint64_t mask;        /* capacity - 1 */
    /* The other side's index as last read: head and tail sit on the other
       core's cache line, so they are read again only when the space or
       data known from these runs out (they only ever grow). */
    uint64_t seen_head, seen_tail;
    /* The record peek checked, as it read it (consumer, get lock held):
       take_start copies by this header, never by a second read of shared
       memory, and needs no second check. Valid while the head is at
       peeked_head. */
    uint64_t peeked_head, peeked_total, peeked_size;
    size_t peeked_n;
    int peeked_type, peeked;
    uint64_t rung_seq[MPROC__RING_KINDS]; /* wait_seq when this side last rang */
    /* The two locks ([0] put, [1] get) as this object holds them: tag
       names the object in a lock's owner id; biased: the id under which
       this process keeps the lock between calls, else 0; streak: plain
       takes in a row by this object with no sleeper announced between
       them; streak_seq: the announcements counted at the last take. */
    uint64_t tag, biased[2], streak_seq[2];
    unsigned streak[2];
    /* A queue's counts, set after bind (0 and NULL for a pipe): counted,
       the ring keeps put_msgs and get_msgs (a pipe, which never asks for
       its size, saves their stores); at most max_msgs messages in the
       ring if not 0 (maxsize); unfinished counts each message as it
       starts (a JoinableQueue's). Data, not callbacks: the put that a
       small message takes calls nothing, so it saves no registers. */
    int counted;
    uint64_t max_msgs;
    volatile uint64_t *unfinished;
    /* A conn's flag that its other end has gone (NULL for a queue): a put
       that woke or waited says MPROC_ECLOSED once it is set (a wake token
       found the other end gone: nobody will read the message). A put that
       did neither cannot have set it, and returns 0 without looking. */
    volatile uint64_t *peer_gone;
    /* 1 while a put of this object is in the general path, where it may
       wait (its owner's sleep_once tells a put's wait from a get's). */
    int putting;
    int slice_ms;         /* longest single sleep */
    const mproc__ring_ops *ops;
    void *user;
};

/* Record format: a 16-byte header {u32 tag = MPROC__REC_TAG | type,
   u32 bytes in this record, u64 message length} in the machine's byte
   order (a ring never leaves the machine; words, not bytes, are a load
   each on the small-message path), the bytes, padding to 8. */
#define MPROC__REC_HDR 16
#define MPROC__REC_TAG 0x51520000u
enum { MPROC__REC_WHOLE = 1, MPROC__REC_FIRST, MPROC__REC_MIDDLE, MPROC__REC_LAST,
       MPROC__REC_ABORT };

static inline void mproc__rec_header(unsigned char *h, int type, uint32_t n, uint64_t total)
{
    uint32_t w[2] = {MPROC__REC_TAG | (uint32_t)type, n};
    memcpy(h, w, sizeof w);
    memcpy(h + 8, &total, sizeof total);
}

/* Largest message length (1 TiB): a sanity bound on lengths read back. */
#define MPROC__RING_MAX_MSG ((uint64_t)1 << 40)
/* A receiver allocates at most this much before the bytes are there and
   grows its buffer as chunks arrive, so a length that was never sent (a
   corrupt or forged record) costs nothing. No record exceeds a quarter of
   its ring, and no ring here exceeds 16 MiB: a first record always fits. */
#define MPROC__RING_ALLOC_FIRST ((uint64_t)4 << 20)
/* take_rest: the producer gave the message up (ABORT record). */
#define MPROC__RING_ABORTED 1

/* A new ring's shared state (before it is shared). capacity: a power of
   two, at least 4096. */
void mproc__ring_format(mproc__ring_shared *sh, uint64_t capacity);
/* Binds r to shared state and data mapped here; MPROC_EINVAL unless the
   capacity in sh is a power of two >= 4096 and no larger than data_max. */
int mproc__ring_bind(mproc__ring *r, mproc__ring_shared *sh, unsigned char *data,
                     uint64_t data_max, const mproc__ring_ops *ops, void *user, int slice_ms);

/* 1 if a record is waiting at the head. */
int mproc__ring_readable(mproc__ring *r);
/* Messages started and not yet taken by a consumer. */
uint64_t mproc__ring_count(mproc__ring *r);

/* Sleepers' bookkeeping: announce adds delta to the waiters of kind (a
   sleeper announces before its last look and withdraws after waking);
   wake calls ops->wake if any waiter of kind is announced that this side
   has not rung for yet (after a full fence: the change it reports may
   have been a release store). */
void mproc__ring_announce(mproc__ring *r, int kind, int delta);
void mproc__ring_wake(mproc__ring *r, int kind);

/* Spin, then sleep in slices, until cond holds (0), the deadline passes
   (MPROC_ETIMEDOUT) or sleep_once reports an error. */
int mproc__ring_wait(mproc__ring *r, int kind, mproc__ring_cond cond, void *arg,
                     uint64_t deadline, int timeout_ms);

/* One message in, whole: takes the put lock (repairing a dead holder's
   stream), waits for room (timeout_ms from now, read from the clock only
   if it must wait), copies, publishes, unlocks. A stream cut short by a
   timeout or an error is ended with ABORT. */
int mproc__ring_put(mproc__ring *r, const void *buf, size_t len, int timeout_ms);

/* Consumer side, with the get lock held (get_lock skips what a previous
   consumer left of a stream). Typical use: get_lock; peek (waits for the
   start of the next message, gives its length, consumes nothing);
   take_start (its first record into dst, which has room for the whole
   message or for MPROC__RING_ALLOC_FIRST bytes);
   take_rest while it returns MPROC_ETIMEDOUT, if take_start said more
   follows; get_unlock. A consumer that unlocks part-way through a stream
   leaves get_stream set: the next one skips the rest of that message. */
int mproc__ring_get_lock(mproc__ring *r, uint64_t deadline, int timeout_ms);
void mproc__ring_get_unlock(mproc__ring *r);
int mproc__ring_peek(mproc__ring *r, uint64_t *total, uint64_t deadline, int timeout_ms);
/* The small-message path, get lock held: the message at the head if it
   is one whole record lying in one piece, checked as peek checks a
   record, copied into user (cap bytes) or a new malloc'd block (*out)
   and consumed. 1: taken, *n its length; 0: nothing taken (nothing there
   yet, larger than cap, or a record for the general path: peek, which
   waits, streams and reports corruption); MPROC_ENOMEM: the message
   stays. Producers waiting for room are woken by get_unlock. */
int mproc__ring_take_small(mproc__ring *r, void *user, size_t cap, void **out, size_t *n);
/* Right after peek, total as peek gave it. Returns 1 if chunks follow
   (then take_rest), else 0; *got: bytes copied. MPROC_ESTATE, taking
   nothing, without such a peek. Producers waiting for the room a whole
   message leaves are woken by get_unlock. */
int mproc__ring_take_start(mproc__ring *r, void *dst, uint64_t total, uint64_t *got);
/* The rest of a streamed message into *dst (*room bytes; when that is
   less than total, *dst is a malloc'd block that grows with realloc as
   chunks arrive) until *got == total: 0, MPROC__RING_ABORTED,
   MPROC_ETIMEDOUT (progress kept in *got; call again with the lock still
   held), MPROC_ENOMEM, or an error. */
int mproc__ring_take_rest(mproc__ring *r, unsigned char **dst, uint64_t *room, uint64_t total,
                          uint64_t *got, uint64_t deadline, int timeout_ms);

/* Appends raw bytes at the tail and publishes them, as a corrupt or
   malicious process that maps the ring could: for tests and the fuzzer,
   which play such a producer. */
void mproc__ring_write_raw(mproc__ring_shared *sh, unsigned char *data, const void *bytes,
                           size_t n);

/* The shared block of a pipe (conn.c): this header, then the rings' data,
   RING_BYTES each, from MPROC__CONN_DATA_OFF. */
#define MPROC__CONN_DATA_OFF 4096
typedef struct mproc__conn_shared {
    uint64_t magic, nrings, ring_bytes;
    uint64_t pad0[5];
    mproc__ring_shared ring[2]; /* [0]: b -> a; [1]: a -> b (duplex only) */
} mproc__conn_shared;

#endif
