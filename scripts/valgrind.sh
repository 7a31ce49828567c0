#!/usr/bin/env bash
# Runs every test program under valgrind memcheck (the parent side; the
# children they spawn run natively), once per start method it runs under
# (test_x --list) except fork: any error or definite leak fails. Under fork
# every forked child would run under memcheck too, which doubles this
# stage's time for little: fork's parent side is a few lines, and the
# asan, tsan and portable stages run every case under fork.
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
  # the methods any case of this program runs under ("-": once, the default)
  methods=$("$t" --list | cut -d' ' -f2- | tr ' ' '\n' | sort -u | grep -v '^-$' || true)
  for m in ${methods:-default}; do
    if [ "$m" = fork ]; then
      echo "valgrind: $t fork skipped (see the top of scripts/valgrind.sh)"
      continue
    fi
    args=()
    [ "$m" = default ] || args=(--method "$m")
    log="$t.$m.valgrind.log"
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
         --show-leak-kinds=definite "$t" "${args[@]}" >"$log" 2>&1; then
      echo "valgrind: $t $m clean"
    else
      echo "valgrind: $t $m FAILED" >&2
      tail -40 "$log" >&2
      status=1
    fi
  done
done
exit $status
