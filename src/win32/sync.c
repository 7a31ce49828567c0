/*
 * Win32 sync blocks and park/unpark (the algorithms are in src/sync.c).
 *
 * A block is an unnamed pagefile-backed section plus an unnamed semaphore
 * used as its wake channel: neither has a name, so neither can outlive its
 * last handle, and both reach children only by handle duplication (the
 * core duplicates registry handles into the child). The backend's reserved
 * words at the end of the block count the sleepers, so unpark releases
 * only as many semaphore units as there are sleepers. A unit left over by
 * a sleeper that timed out just causes one spurious wake-up, which callers
 * tolerate (they always re-check their word). The semaphore cannot say
 * whom it wakes, though: a sleeper that arrives later (waiting for another
 * value of the word, e.g. the next barrier generation) can take the unit
 * meant for an earlier one. So a sleeper never blocks longer than
 * WAKE_SLICE_MS without looking at its word again: a stolen wake-up costs
 * at most that much latency, never a hang.
 *
 * Timed waits: WaitForSingleObject alone ends a wait on the system timer
 * tick (15.6 ms by default), so a finite wait also waits on a
 * high-resolution waitable timer (Windows 10 1803+), which ends it within
 * about a millisecond of the deadline; where there is none, the plain wait.
 */
#include "w32.h"
#include "../atomic.h"

#define WAKE_SLICE_MS 10

#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#  define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif

struct mproc__os_sync {
    HANDLE map, sem;
    unsigned char *mem;
};

static uint32_t *sleepers_of(mproc__os_sync *b)
{
    return (uint32_t *)(void *)(b->mem + MPROC__SYNC_BLOCK - MPROC__SYNC_RESERVED);
}

static int block_map(mproc__os_sync *b)
{
    b->mem = MapViewOfFile(b->map, FILE_MAP_ALL_ACCESS, 0, 0, MPROC__SYNC_BLOCK);
    return b->mem ? 0 : mproc__fail_os_last();
}

static void block_close(mproc__os_sync *b)
{
    if (b->mem) UnmapViewOfFile(b->mem);
    if (b->map) CloseHandle(b->map);
    if (b->sem) CloseHandle(b->sem);
    free(b);
}

int mproc__os_sync_create(mproc__os_sync **out)
{
    mproc__os_sync *b = mproc__calloc(1, sizeof *b);
    if (!b) return MPROC_ENOMEM;
    int rc = 0;
    b->map = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                                MPROC__SYNC_BLOCK, NULL);
    if (!b->map) rc = mproc__fail_os_last();
    if (rc == 0 && !(b->sem = CreateSemaphoreW(NULL, 0, LONG_MAX, NULL))) rc = mproc__fail_os_last();
    if (rc == 0) rc = block_map(b);
    if (rc) {
        block_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

static int dup_handle(mproc__handle h, HANDLE *out)
{
    HANDLE self = GetCurrentProcess();
    if (!DuplicateHandle(self, mproc__w32_handle(h), self, out, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return mproc__fail_os_last();
    return 0;
}

int mproc__os_sync_open(const mproc__handle *h, size_t n, mproc__os_sync **out)
{
    MEMORY_BASIC_INFORMATION mi;
    if (n != 2) return MPROC_EPROTO;
    mproc__os_sync *b = mproc__calloc(1, sizeof *b);
    if (!b) return MPROC_ENOMEM;
    int rc = dup_handle(h[0], &b->map);
    if (rc == 0) rc = dup_handle(h[1], &b->sem);
    if (rc == 0) rc = block_map(b);
    /* A handle that is not one of our sections must fail here, not fault later. */
    if (rc == 0 && (VirtualQuery(b->mem, &mi, sizeof mi) == 0 || mi.RegionSize < MPROC__SYNC_BLOCK))
        rc = MPROC_EPROTO;
    if (rc) {
        block_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

size_t mproc__os_sync_handles(const mproc__os_sync *b, mproc__handle *h)
{
    h[0] = (mproc__handle)b->map;
    h[1] = (mproc__handle)b->sem;
    return 2;
}

void *mproc__os_sync_mem(const mproc__os_sync *b) { return b->mem; }

void mproc__os_sync_free(mproc__os_sync *b)
{
    if (b) block_close(b);
}

/* WAIT_OBJECT_0 when sem was taken, else WAIT_TIMEOUT (or a failure). A
   timer per wait costs two system calls, small next to sleeping at all. */
static DWORD wait_sem(HANDLE sem, int timeout_ms)
{
    if (timeout_ms <= 0) return WaitForSingleObject(sem, timeout_ms < 0 ? INFINITE : 0);
    HANDLE t = CreateWaitableTimerExW(NULL, NULL, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
                                      TIMER_ALL_ACCESS);
    LARGE_INTEGER due;
    due.QuadPart = -(LONGLONG)timeout_ms * 10000; /* relative, in 100 ns */
    if (!t || !SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE)) {
        if (t) CloseHandle(t);
        return WaitForSingleObject(sem, (DWORD)timeout_ms);
    }
    HANDLE both[2] = {sem, t};
    DWORD r = WaitForMultipleObjects(2, both, FALSE, INFINITE);
    CloseHandle(t);
    return r == WAIT_OBJECT_0 ? WAIT_OBJECT_0 : WAIT_TIMEOUT;
}

int mproc__os_park(mproc__os_sync *b, uint32_t *word, uint32_t expected, int timeout_ms)
{
    uint32_t *sl = sleepers_of(b);
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mproc__os_now_ms() + (uint64_t)timeout_ms;
    int rc = 0;
    mproc__add32(sl, 1);
    while (mproc__load32(word) == expected) {
        uint64_t now = mproc__os_now_ms();
        if (now >= deadline) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        int slice = deadline - now < WAKE_SLICE_MS ? (int)(deadline - now) : WAKE_SLICE_MS;
        if (wait_sem(b->sem, slice) == WAIT_OBJECT_0) break; /* woken, perhaps for another */
    }
    mproc__add32(sl, (uint32_t)-1);
    return rc;
}

void mproc__os_unpark(mproc__os_sync *b, uint32_t *word, uint32_t n)
{
    (void)word;
    uint32_t waiting = mproc__load32(sleepers_of(b));
    if (n > waiting) n = waiting;
    if (n > (uint32_t)LONG_MAX) n = (uint32_t)LONG_MAX;
    if (n) ReleaseSemaphore(b->sem, (LONG)n, NULL);
}


void mproc__os_sync_atfork(void (*fn)(void)) { (void)fn; }
