#!/usr/bin/env bash
# Runs every test program once under valgrind memcheck (the parent side; the
# children they spawn run natively): any error or definite leak fails.
# Usage: scripts/valgrind.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-valgrind}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DMPROC_BUILD_BENCH=OFF \
      -DMPROC_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 >/dev/null
cd "$build/tests"
# Gigabyte transfers are the native builds' job; under memcheck they only crawl.
export MPROC_TEST_SMALL=1
# and valgrind has no pidfd_open: tests that need it step aside
export MPROC_TEST_VALGRIND=1
status=0
for t in ./test_*; do
  [ -x "$t" ] || continue
  if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --show-leak-kinds=definite "$t" >"$t.valgrind.log" 2>&1; then
    echo "valgrind: $t clean"
  else
    echo "valgrind: $t FAILED" >&2
    tail -40 "$t.valgrind.log" >&2
    status=1
  fi
done
exit $status
