#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan+UBSan) and runs each for a
# while. Usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS_EACH]   (default 60 s)
# CI runs 20 s each; for a real campaign give an hour or more:
#   scripts/fuzz.sh build-fuzz 3600
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
secs=${2:-60}
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_BUILD_FUZZ=ON \
  -DMPROC_BUILD_TESTS=OFF -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF \
  -DMPROC_BUILD_SHARED=OFF -DMPROC_SANITIZE=address,undefined >/dev/null
cmake --build "$build" -j2 >/dev/null
for f in "$build"/tests/fuzz/fuzz_*; do
  name=${f##*/fuzz_}
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  if [ -x "$build/tests/fuzz/seed_$name" ]; then "$build/tests/fuzz/seed_$name" "$corpus/seed"; fi
  artifacts="$build/artifacts/$name"
  mkdir -p "$artifacts"
  echo "fuzzing $name for ${secs}s"
  # A finding makes libFuzzer exit non-zero and write the input to
  # $artifacts; either fails the run.
  status=0
  "$f" -max_total_time="$secs" -max_len=4096 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$corpus" >"$build/fuzz_$name.log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY)" \
       "$build/fuzz_$name.log" || true
  if [ "$status" -ne 0 ] || [ -n "$(ls -A "$artifacts")" ]; then
    echo "fuzz_$name: finding (exit $status); input in $artifacts, log $build/fuzz_$name.log" >&2
    exit 1
  fi
done
