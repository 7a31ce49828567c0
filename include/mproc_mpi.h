/*
 * mproc_mpi — the same mproc Pool across machines, over MPI (libmproc_mpi,
 * CMake target mproc::mpi, pkg-config mproc-mpi; built with
 * -DMPROC_WITH_MPI=ON). The core library has no MPI dependency.
 *
 * Launch the program with `mpirun -n K ./prog`. Every rank runs the same
 * binary; call mproc_mpi_guard first in main, in place of mproc_main_guard:
 *   - on rank 0 it returns 0 and the program goes on; mproc_pool_create
 *     then makes pools whose workers are ranks 1..K-1 (one worker per
 *     rank), ordinary mproc_pool objects: map, imap, apply, apply_async,
 *     initializer, stats, close/terminate/join and mproc_pool_interrupt
 *     work as on one machine. Task functions travel as for spawn (module +
 *     offset + code digest, checked on the rank before the call), so the
 *     binary and its libraries must be the same files on every machine.
 *   - on ranks 1..K-1 it serves as a pool worker until rank 0's program
 *     ends, then calls MPI_Finalize and exits: it never returns into main.
 *   - run without mpirun (or with -n 1) it returns 0 and pools are local.
 *
 * Differences from a pool on one machine:
 *   - processes: the number of ranks to use, at most K-1 (0 or more: all
 *     of them). One pool over the ranks at a time: destroy it before
 *     creating the next (MPROC_ESTATE otherwise).
 *   - maxtasksperchild, task_timeout_ms and a start method other than the
 *     default are MPROC_ENOTSUP: there is no process of ours to kill or
 *     replace on another machine.
 *   - the initializer's argument travels as bytes: mproc refs inside it
 *     (locks, queues, shared memory) mean nothing on another machine.
 *   - terminate cannot stop a task running on a rank: rank 0 stops waiting
 *     for it at once (its work fails with MPROC_ECLOSED as locally) and the
 *     rank drops its remaining units; it serves the next pool when that
 *     task returns.
 *   - a rank that dies: with plain mpirun, Open MPI aborts the whole job
 *     (rank 0 included; mpirun names the rank and its signal). Under
 *     `mpirun --enable-recovery` the job goes on: rank 0 declares the rank
 *     lost -- at once if it ran on rank 0's machine, else when it has sent
 *     nothing (not even its heartbeat, every 250 ms) for the dead timeout
 *     -- prints which units it held on stderr, fails the unit it was
 *     running with MPROC_ECHILD and a message naming the rank, runs the
 *     others on the remaining ranks, and never uses that rank again. At
 *     exit rank 0 then skips MPI_Finalize (it would wait for the dead rank
 *     for ever); mpirun's own exit status is 0 in that mode. If rank 0
 *     itself dies in that mode, the worker ranks do not notice (they wait
 *     for its word to leave): stop mpirun.
 */
#ifndef MPROC_MPI_H
#define MPROC_MPI_H

#include <mproc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mproc_mpi_guard (declared in mproc.h): call it first in main, in place
   of mproc_main_guard (it calls that itself, then MPI_Init).
   0 on rank 0 (or outside mpirun); never returns on the other ranks.
   MPROC_ENOTSUP if MPI gives less than MPI_THREAD_SERIALIZED, MPROC_EOS
   if MPI cannot start. If MPI is already initialised it is used as is. */
/* This process's rank and the job's size (0 and 1 before the guard). */
MPROC_MPI_API int mproc_mpi_rank(void);
MPROC_MPI_API int mproc_mpi_size(void);
/* Rank 0: a pool over the worker ranks, whatever the default (below). */
MPROC_MPI_API int mproc_mpi_pool_create(mproc_pool **pool, const mproc_pool_options *opt);
/* Rank 0: 1 (the default after the guard when there are worker ranks):
   mproc_pool_create uses the ranks; 0: it makes pools on this machine. */
MPROC_MPI_API void mproc_mpi_pool_default(int over_ranks);
/* Rank 0: how long a rank may send nothing before it is declared lost
   (ms; default 10000). Ranks on rank 0's machine are seen at once. */
MPROC_MPI_API void mproc_mpi_set_dead_timeout(int ms);

#ifdef __cplusplus
}
#endif
#endif /* MPROC_MPI_H */
