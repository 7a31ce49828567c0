"""Python's multiprocessing start+join of a no-op child, for bench/spawn.c.

Usage: py_spawn.py METHOD COUNT -- prints one time in milliseconds per line.
Run with Debian's /usr/bin/python3 (the reference interpreter)."""
import multiprocessing as mp
import sys
import time


def noop():
    pass


def main():
    method, count = sys.argv[1], int(sys.argv[2])
    ctx = mp.get_context(method)
    for _ in range(count):
        t0 = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        print("%.6f" % ((time.perf_counter() - t0) * 1000.0))


if __name__ == "__main__":
    main()
