"""Python's multiprocessing start-up, for bench/spawn.c.

Usage: py_spawn.py METHOD COUNT [pool] -- prints one time in milliseconds
per line: start+join of a no-op child, or (pool) Pool(2) creation + the
first apply() result. One untimed warm-up first, so the forkserver is
already running, as mproc's is in the same benchmark.
Run with Debian's /usr/bin/python3 (the reference interpreter)."""
import multiprocessing as mp
import sys
import time


def noop(x=None):
    return x


def start_join(ctx):
    p = ctx.Process(target=noop)
    p.start()
    p.join()


def pool_first_result(ctx):
    pool = ctx.Pool(2)
    pool.apply(noop)
    return pool


def main():
    method, count = sys.argv[1], int(sys.argv[2])
    pool_mode = len(sys.argv) > 3 and sys.argv[3] == "pool"
    ctx = mp.get_context(method)
    for i in range(count + 1):
        t0 = time.perf_counter()
        pool = pool_first_result(ctx) if pool_mode else start_join(ctx)
        ms = (time.perf_counter() - t0) * 1000.0
        if pool:
            pool.terminate()
            pool.join()
        if i:
            print("%.6f" % ms, flush=True)


if __name__ == "__main__":
    main()
