"""Reference numbers for bench_comm: Python's multiprocessing Pipe / Queue.

usage: py_comm.py pipe|queue|rtt SIZE COUNT RUNS
Prints one line per run: messages per second, one producer process to the
consumer (this process), timed from the first message to the last, as
bench/comm.c times mproc and the raw OS channels; for rtt, round trips per
second through a duplex Pipe to an echoing process.
"""
import multiprocessing as mp
import sys
import time


def pipe_producer(conn, size, count):
    msg = b"x" * size
    for _ in range(count):
        conn.send_bytes(msg)
    conn.close()


def queue_producer(q, size, count):
    msg = b"x" * size
    for _ in range(count):
        q.put(msg)


def echo(conn, count):
    for _ in range(count):
        conn.send_bytes(conn.recv_bytes())


def run_rtt(size, count):
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b, count + 1))
    p.start()
    msg = b"x" * size
    a.send_bytes(msg)
    a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(count):
        a.send_bytes(msg)
        a.recv_bytes()
    dt = time.perf_counter() - t0
    p.join()
    return count / dt


def run_pipe(size, count):
    r, w = mp.Pipe()  # duplex by default, as in Python programs
    p = mp.Process(target=pipe_producer, args=(w, size, count))
    p.start()
    r.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        r.recv_bytes()
    dt = time.perf_counter() - t0
    p.join()
    return (count - 1) / dt


def run_queue(size, count):
    q = mp.Queue()
    p = mp.Process(target=queue_producer, args=(q, size, count))
    p.start()
    q.get()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        q.get()
    dt = time.perf_counter() - t0
    p.join()
    return (count - 1) / dt


def main():
    kind, size, count, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mp.set_start_method("spawn")
    fn = {"pipe": run_pipe, "queue": run_queue, "rtt": run_rtt}[kind]
    for _ in range(runs):
        print("%.1f" % fn(size, count), flush=True)


if __name__ == "__main__":
    main()
