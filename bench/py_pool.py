"""Python's multiprocessing.Pool (spawn), for bench/pool.c.

Usage: py_pool.py MODE ARGS... -- prints one figure per line:
  map N CHUNKSIZE REPS   items/s of Pool(2).map(double, range(N)) (CHUNKSIZE 0: default)
  rtt N REPS             microseconds per apply_async(f).get() round trip (median of N each rep)
  startup REPS           milliseconds for Pool(2) creation + first apply() result
Run with Debian's /usr/bin/python3 (the reference interpreter)."""
import multiprocessing as mp
import sys
import time


def double(x):
    return x * 2


def noop(x=None):
    return x


def bench_map(n, chunksize, reps):
    ctx = mp.get_context("spawn")
    data = list(range(n))
    with ctx.Pool(2) as pool:
        pool.map(double, range(100))  # workers up and warm
        for _ in range(reps):
            t0 = time.perf_counter()
            if chunksize:
                pool.map(double, data, chunksize)
            else:
                pool.map(double, data)
            print("%.1f" % (n / (time.perf_counter() - t0)), flush=True)


def bench_rtt(n, reps):
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.apply(noop)
        for _ in range(reps):
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                pool.apply_async(noop, (1,)).get()
                samples.append(time.perf_counter() - t0)
            samples.sort()
            print("%.3f" % (samples[len(samples) // 2] * 1e6), flush=True)


def bench_startup(reps):
    ctx = mp.get_context("spawn")
    for _ in range(reps):
        t0 = time.perf_counter()
        pool = ctx.Pool(2)
        pool.apply(noop)
        print("%.3f" % ((time.perf_counter() - t0) * 1e3), flush=True)
        pool.terminate()
        pool.join()


def main():
    mode = sys.argv[1]
    args = [int(a) for a in sys.argv[2:]]
    {"map": bench_map, "rtt": bench_rtt, "startup": bench_startup}[mode](*args)


if __name__ == "__main__":
    main()
