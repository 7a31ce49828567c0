#!/usr/bin/env bash
# The example tools of issue 11 against the programs they imitate, ratios
# measured in one run (medians of RUNS runs, each contender run in turn):
#   pzip -p 2 vs pigz -p 2, levels 1 and 6, on 64 MiB of /usr/include as a tar
#   hashsum -p 2 vs hashsum -s (serial) on 3000 files of 20,000 bytes,
#   and xargs -P2 sha256sum as a reference
# Usage: bench/tools.sh [BUILD_DIR] [RUNS]   (default: build-bench-tools, 5)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build-bench-tools}
runs=${2:-5}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
      -DMPROC_BUILD_EXAMPLES=ON -DMPROC_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target pzip hashsum >/dev/null
bin=$build/examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tar cf - -C /usr include 2>/dev/null | head -c $((64 << 20)) > "$tmp/input" || true
mkdir "$tmp/files"
head -c 60000000 "$tmp/input" | (cd "$tmp/files" && split -b 20000 -a 4 - f)
ls "$tmp"/files/* > "$tmp/list"
nfiles=$(wc -l < "$tmp/list")

# seconds a command takes (its output to /dev/null or a file of the caller)
seconds() {
  local t0 t1
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  echo "scale=4; ($t1 - $t0) / 1000000000" | bc
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

pzip_run() { "$bin/pzip" -"$1" -p 2 < "$tmp/input" > "$tmp/out.gz"; }
pigz_run() { pigz -"$1" -p 2 < "$tmp/input" > "$tmp/ref.gz"; }
hash_par() { "$bin/hashsum" -p 2 < "$tmp/list" > "$tmp/h.out"; }
hash_ser() { "$bin/hashsum" -s < "$tmp/list" > "$tmp/h.ser"; }
hash_xargs() { xargs -P 2 -n 100 sha256sum < "$tmp/list" > /dev/null; }

echo "### Example tools vs the programs they imitate (medians of $runs runs, $(nproc) CPUs)"
echo
echo "| workload | mproc tool (s) | reference (s) | ratio (reference / tool) |"
echo "|---|---|---|---|"
for level in 1 6; do
  : > "$tmp/a"; : > "$tmp/b"
  for _ in $(seq "$runs"); do
    seconds pzip_run "$level" >> "$tmp/a"
    seconds pigz_run "$level" >> "$tmp/b"
  done
  gzip -dc "$tmp/out.gz" | cmp - "$tmp/input"
  a=$(median < "$tmp/a"); b=$(median < "$tmp/b")
  sa=$(stat -c %s "$tmp/out.gz"); sb=$(stat -c %s "$tmp/ref.gz")
  printf '| gzip -%s of 64 MiB, 2 workers: pzip vs `pigz -p 2` (sizes %s / %s bytes) | %.3f | %.3f | %.2fx |\n' \
    "$level" "$sa" "$sb" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
: > "$tmp/a"; : > "$tmp/b"; : > "$tmp/c"
for _ in $(seq "$runs"); do
  seconds hash_par >> "$tmp/a"
  seconds hash_ser >> "$tmp/b"
  seconds hash_xargs >> "$tmp/c"
done
cmp "$tmp/h.out" "$tmp/h.ser"
a=$(median < "$tmp/a"); b=$(median < "$tmp/b"); c=$(median < "$tmp/c")
printf '| SHA-256 of %s files of 20,000 bytes: hashsum -p 2 vs hashsum -s (serial) | %.3f | %.3f | %.2fx |\n' \
  "$nfiles" "$a" "$b" "$(echo "$b / $a" | bc -l)"
printf '| the same files: hashsum -p 2 vs `xargs -P2 -n100 sha256sum` (OpenSSL-speed SHA) | %.3f | %.3f | %.2fx |\n' \
  "$a" "$c" "$(echo "$c / $a" | bc -l)"
