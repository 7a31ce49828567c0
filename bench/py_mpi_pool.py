# mpi4py.futures' MPIPoolExecutor on the work of bench/mpi_pool.c, run as
# `mpirun -n 3 python3 -m mpi4py.futures py_mpi_pool.py` (rank 0 + 2 workers).
# Prints: mpi4py <seed items/s> <small items/s> <cpu pool s> <cpu serial s>
import statistics
import time

from mpi4py.futures import MPIPoolExecutor

RUNS, SEED_REPS, SMALL, CPU_ITEMS, CPU_LOOP = 5, 200, 200000, 48, 200000


def doubler(x):
    return x * 2


def cpu_item(i):
    # 1/20 of the C loop's iterations: Python runs it ~20-50x slower
    x = float(i)
    for _ in range(CPU_LOOP):
        x = x * 1.0000001 + 1e-9
    return x


if __name__ == '__main__':
    with MPIPoolExecutor() as ex:
        list(ex.map(doubler, range(10)))  # workers up
        seed, small, cpu, serial = [], [], [], []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            for _ in range(SEED_REPS):
                list(ex.map(doubler, range(1, 10)))
            t1 = time.perf_counter()
            list(ex.map(doubler, range(SMALL), chunksize=-(-SMALL // 8)))
            t2 = time.perf_counter()
            list(ex.map(cpu_item, range(CPU_ITEMS)))
            t3 = time.perf_counter()
            [cpu_item(i) for i in range(CPU_ITEMS)]
            t4 = time.perf_counter()
            seed.append(9 * SEED_REPS / (t1 - t0))
            small.append(SMALL / (t2 - t1))
            cpu.append(t3 - t2)
            serial.append(t4 - t3)
    print("mpi4py %.1f %.1f %.6f %.6f" % (statistics.median(seed), statistics.median(small),
                                          statistics.median(cpu), statistics.median(serial)))
