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
# memcheck one run of test program $1 with arguments $3...; $2 names the run
memcheck() {
  local t=$1 label=$2
  shift 2
  local log="$t.$label.valgrind.log"
  if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --show-leak-kinds=definite "$t" "$@" >"$log" 2>&1; then
    echo "valgrind: $t $label clean"
  else
    echo "valgrind: $t $label FAILED" >&2
    tail -40 "$log" >&2
    status=1
  fi
}

for t in ./test_*; do
  [ -x "$t" ] || continue
  # the methods any case of this program runs under ("-": once, the default)
  methods=$("$t" --list | cut -d' ' -f2- | tr ' ' '\n' | sort -u | grep -v '^-$' || true)
  if [ -z "$methods" ]; then
    memcheck "$t" default
    continue
  fi
  for m in $methods; do
    if [ "$m" = fork ]; then
      echo "valgrind: $t fork skipped (see the top of scripts/valgrind.sh)"
      continue
    fi
    memcheck "$t" "$m" --method "$m" # the cases that run per method
  done
  # The cases that run once, each as ctest runs it: without --method, so
  # their children follow mproc's own rules, not MPROC_TEST_METHOD.
  for c in $("$t" --list | awk '$2 == "-" { print $1 }'); do
    memcheck "$t" "$c" --case "$c"
  done
done
exit $status
