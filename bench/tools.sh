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

# "wall cpu" seconds of a command (cpu: user + system of it and its
# children, which on a shared, overloaded machine moves far less than wall)
seconds() {
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@"
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$tmp/time"
}
# median of column $1 of stdin
median() { awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# one table row from two files of "wall cpu" lines
row() {
  local aw ac bw bc
  aw=$(median 1 < "$2"); ac=$(median 2 < "$2"); bw=$(median 1 < "$3"); bc=$(median 2 < "$3")
  printf '| %s | %.3f / %.3f | %.3f / %.3f | %.2fx | %.2fx |\n' "$1" "$aw" "$ac" "$bw" "$bc" \
    "$(echo "$bw / $aw" | bc -l)" "$(echo "$bc / $ac" | bc -l)"
}

# the contenders, as commands /usr/bin/time can run
export bin tmp
pzip_run() { echo 'exec "$bin/pzip" -'"$1"' -p 2 < "$tmp/input" > "$tmp/out.gz"'; }
pigz_run() { echo 'exec pigz -'"$1"' -p 2 < "$tmp/input" > "$tmp/ref.gz"'; }
hash_par='exec "$bin/hashsum" -p 2 < "$tmp/list" > "$tmp/h.out"'
hash_ser='exec "$bin/hashsum" -s < "$tmp/list" > "$tmp/h.ser"'
hash_xargs='exec xargs -P 2 -n 100 sha256sum < "$tmp/list" > /dev/null'

echo "### Example tools vs the programs they imitate (medians of $runs runs, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg) at the start)"
echo
echo "Wall time, and CPU time (user + system, the tool and its workers): a ratio > 1 means the mproc tool is faster / cheaper."
echo
echo "| workload | mproc tool wall / CPU (s) | reference wall / CPU (s) | wall ratio | CPU ratio |"
echo "|---|---|---|---|---|"
levels="1 6"
command -v pigz >/dev/null || { levels=""; echo "(pigz is not installed: no compressor rows)"; echo; }
for level in $levels; do
  : > "$tmp/a"; : > "$tmp/b"
  for _ in $(seq "$runs"); do
    seconds sh -c "$(pzip_run "$level")" >> "$tmp/a"
    seconds sh -c "$(pigz_run "$level")" >> "$tmp/b"
  done
  gzip -dc "$tmp/out.gz" | cmp - "$tmp/input"
  row "gzip -$level of 64 MiB, 2 workers: pzip vs \`pigz -p 2\` (sizes $(stat -c %s "$tmp/out.gz") / $(stat -c %s "$tmp/ref.gz") bytes)" "$tmp/a" "$tmp/b"
done
: > "$tmp/a"; : > "$tmp/b"; : > "$tmp/c"
for _ in $(seq "$runs"); do
  seconds sh -c "$hash_par" >> "$tmp/a"
  seconds sh -c "$hash_ser" >> "$tmp/b"
  seconds sh -c "$hash_xargs" >> "$tmp/c"
done
cmp "$tmp/h.out" "$tmp/h.ser"
row "SHA-256 of $nfiles files of 20,000 bytes: hashsum -p 2 vs hashsum -s (serial)" "$tmp/a" "$tmp/b"
row "the same files: hashsum -p 2 vs \`xargs -P2 -n100 sha256sum\` (coreutils' faster SHA-256)" "$tmp/a" "$tmp/c"
