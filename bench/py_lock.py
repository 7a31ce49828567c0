"""multiprocessing.Lock reference numbers for bench_lock (run by it with
Debian's /usr/bin/python3). Prints medians in ns:
  py_uncontended_ns <acquire()+release() pair, bound methods, 1 process>
  py_contended_ns   <per increment, 2 processes pinned to CPU 0/1>
"""
import multiprocessing as mp
import os
import statistics
import time

REPS = 3
PAIRS = 1_000_000
CONTENDED = 200_000


def uncontended(lock):
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter_ns()
    for _ in range(PAIRS):
        acquire()
        release()
    return (time.perf_counter_ns() - t0) / PAIRS


def worker(lock, counter, go, ready, times, idx):
    try:
        os.sched_setaffinity(0, {idx})
    except (AttributeError, OSError):
        pass
    with ready.get_lock():
        ready.value += 1
    while not go.value:
        pass
    t0 = time.monotonic_ns()
    acquire, release = lock.acquire, lock.release
    for _ in range(CONTENDED):
        acquire()
        counter.value += 1
        release()
    times[2 * idx] = t0
    times[2 * idx + 1] = time.monotonic_ns()


def contended(ctx, lock):
    counter = ctx.Value("l", 0, lock=False)
    go = ctx.Value("i", 0, lock=False)
    ready = ctx.Value("i", 0)
    times = ctx.Array("d", 4, lock=False)
    procs = [ctx.Process(target=worker, args=(lock, counter, go, ready, times, i))
             for i in range(2)]
    for p in procs:
        p.start()
    while ready.value < 2:
        time.sleep(0.001)
    go.value = 1
    for p in procs:
        p.join()
    assert counter.value == 2 * CONTENDED, counter.value
    return (max(times[1], times[3]) - min(times[0], times[2])) / (2 * CONTENDED)


def main():
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    unc = [uncontended(lock) for _ in range(REPS)]
    con = [contended(ctx, lock) for _ in range(REPS)]
    print("py_uncontended_ns %.1f" % statistics.median(unc))
    print("py_contended_ns %.1f" % statistics.median(con))


if __name__ == "__main__":
    main()
