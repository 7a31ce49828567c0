/* The bootstrap message: what a spawned child needs to run its target.
   Framed, versioned, checksummed and validated field by field; a malformed
   message is MPROC_EPROTO, never undefined behaviour. */
#ifndef MPROC_BOOTSTRAP_H
#define MPROC_BOOTSTRAP_H

#include "fnref.h"
#include "ref.h"

#define MPROC__BOOT_HEADER 24
#define MPROC__BOOT_MAX (256 * 1024)       /* whole message, bytes */
#define MPROC__BOOT_INLINE_ARG (8 * 1024)  /* larger arguments travel in shm */
#define MPROC__BOOT_MAX_OBJECTS 32
#define MPROC__NAME_MAX 256

typedef struct mproc__boot {
    mproc__fnref target;
    unsigned char image_id[32];
    char name[MPROC__NAME_MAX];
    int64_t parent_pid;
    uint32_t flags;                      /* MPROC__BOOT_DAEMON */
    const unsigned char *arg;            /* inline argument (points into the message) */
    size_t arg_len;
    int arg_in_shm;                      /* else inline */
    mproc__handle arg_shm;               /* child-side handle when arg_in_shm */
    size_t nobjects;
    mproc__entry objects[MPROC__BOOT_MAX_OBJECTS]; /* child-side handles */
} mproc__boot;

#define MPROC__BOOT_DAEMON 0x1u
/* flags bits 8..15: the start method that made the child (its default). */
#define MPROC__BOOT_METHOD_SHIFT 8
#define MPROC__BOOT_METHOD_MASK 0xff00u
/* Exit status of a daemon child whose parent has gone. */
#define MPROC_EXIT_PARENT_GONE 122

/* Who this process is, as mproc_current_name() and mproc_parent_pid()
   report it: set by the guard in a spawned or served child, and by the
   fork start method in a forked one, with the method that started it. */
void mproc__set_child_identity(const char *name, int64_t parent_pid, mproc_start_method method);
/* That method, or MPROC_METHOD_DEFAULT in the main process. */
mproc_start_method mproc__started_by(void);

/* In a daemon child: end this process when the parent's end of channel
   closes (the parent has died). Starts a watcher thread. */
void mproc__watch_parent(mproc__handle channel);

/* Encode into a malloc'd buffer. */
int mproc__boot_encode(const mproc__boot *b, unsigned char **buf, size_t *len);
/* Total message length announced by a header (validated), or MPROC_EPROTO. */
int mproc__boot_header_len(const unsigned char header[MPROC__BOOT_HEADER], size_t *total);
/* Decode and validate a whole message; out->arg points into buf. */
int mproc__boot_decode(const unsigned char *buf, size_t len, mproc__boot *out);

#endif
