#!/usr/bin/env bash
# The main job: build mproc and run the seed examples from the user's notes
# (doubler, lock_printer, pool_map, cpu_count). Installs what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MPROC_BUILD_DIR:-$root/build-examples}
"$root/scripts/install-deps.sh" native
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
      -DMPROC_BUILD_BENCH=OFF -DMPROC_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j2 >/dev/null
for ex in doubler lock_printer pool_map cpu_count; do
  if [ -x "$build/examples/$ex" ]; then
    echo "== examples/$ex"
    "$build/examples/$ex"
  fi
done
