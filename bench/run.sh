#!/usr/bin/env bash
# Runs every benchmark and prints their tables (markdown) one after another.
# Usage: bench/run.sh [BUILD_DIR]   (default: build-bench, configured Release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build-bench}
# With Open MPI installed, bench_mpi_pool too (the Pool over MPI ranks).
mpi=OFF
command -v mpicc >/dev/null && command -v mpirun >/dev/null && mpi=ON
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
      -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=ON -DMPROC_WITH_MPI=$mpi >/dev/null
cmake --build "$build" -j2 >/dev/null
echo "# mproc benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), python: /usr/bin/python3)"
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  case $b in *bench_soak) continue ;; esac  # minutes long: run it by hand
  "$b"
done
# the example tools of issue 11 (pzip vs pigz, hashsum vs its serial run)
"$here/tools.sh" "$build-tools"
