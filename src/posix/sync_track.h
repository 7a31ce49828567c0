/*
 * The shm cleaner (posix/shm.c), shared with posix/sync.c: a tiny process,
 * started once per process tree on first use, that is told each POSIX shm
 * name before it is created and unlinks every name still listed when the
 * last process holding its channel ends -- however it ends, SIGKILL too.
 */
#ifndef MPROC_POSIX_SYNC_TRACK_H
#define MPROC_POSIX_SYNC_TRACK_H

#include <stddef.h>

/* Names are "/mproc-" + a letter + random hex: 30 characters, within
   macOS's 31 (PSHMNAMLEN). */
#define MPROC__TRACK_NAME_MAX 32
/* A fresh random name of that form, already listed with the cleaner. */
int mproc__posix_track_name(char tag, char *name, size_t cap);
/* List (add 1) or forget (add 0) a name. */
int mproc__posix_track(const char *name, int add);

#endif
