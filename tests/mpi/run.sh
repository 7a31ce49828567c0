#!/usr/bin/env bash
# The MPI pool tests: test_mpi_pool [pool_map_mpi], each under mpirun -n 3
# on this machine. Every run has a generous time limit: a hang fails.
set -uo pipefail
test_bin=$1
example=${2:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Quiet, local-only Open MPI (no network interfaces probed, shared memory between ranks).
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun=(mpirun --oversubscribe -n 3)
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # name, limit in seconds, command...
    local name=$1 limit=$2
    shift 2
    timeout -k 10 "$limit" "$@" >"$out" 2>&1
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 -a "$name" != abort ]; then
        echo "mpi: $name: hung or was killed (status $rc)"; cat "$out"; fail=1
    fi
}

# 1. the tests proper
run tests 240 "${mpirun[@]}" "$test_bin"
cat "$out"
[ $rc -eq 0 ] || { echo "mpi: tests failed (status $rc)"; fail=1; }

# 2. a rank dies under --enable-recovery: rank 0 goes on, the item fails
#    with a message naming the rank, and the job ends.
run recovery 180 "${mpirun[@]}" --enable-recovery "$test_bin" death
if grep -q DEATH-OK "$out" && grep -q "mproc: MPI rank .* it held" "$out"; then
    echo "mpi: recovery: ok"; grep -E "^item|it held" "$out"
else
    echo "mpi: recovery: expected DEATH-OK and the lost-rank report (status $rc)"; cat "$out"; fail=1
fi

# 3. the same under plain mpirun: Open MPI aborts the whole job (rank 0
#    too, whatever it had time to report) naming the rank; nothing hangs.
run abort 180 "${mpirun[@]}" "$test_bin" death
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "process rank [12] .* signal 9" "$out"; then
    echo "mpi: abort: ok (status $rc)"
else
    echo "mpi: abort: expected the job aborted with the rank named (status $rc)"; cat "$out"; fail=1
fi

# 4. the seed example, one guard line changed
if [ -n "$example" ]; then
    run example 120 "${mpirun[@]}" "$example"
    if [ $rc -eq 0 ] && head -1 "$out" | grep -qx '\[2, 4, 6, 8, 10, 12, 14, 16, 18\]'; then
        echo "mpi: example: ok"; cat "$out"
    else
        echo "mpi: example failed (status $rc)"; cat "$out"; fail=1
    fi
fi
exit $fail
