#!/usr/bin/env bash
# pzip builds against each other and `pigz -p 2`, run in turn in every
# round (so each round sees the same load), medians of wall and CPU time:
# for comparing a change on a loaded machine, where only ratios measured
# in the same rounds mean anything.
# Usage: bench/pzip_ab.sh LEVEL ROUNDS PZIP... (e.g. an old build's
#        examples/pzip and build-bench-tools/examples/pzip)
# Input: 64 MiB of /usr/include as a tar (as bench/tools.sh).
set -euo pipefail
level=$1 rounds=$2
shift 2
[ $# -gt 0 ] || { echo "usage: $0 LEVEL ROUNDS PZIP..." >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar cf - -C /usr include 2>/dev/null | head -c $((64 << 20)) > "$tmp/input" || true
# "wall cpu" of a command, appended to file $1
timed() {
  local out=$1
  shift
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" < "$tmp/input" > "$tmp/out.gz"
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$tmp/time" >> "$out"
}
med() { awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
: > "$tmp/pigz"
for k in $(seq $#); do : > "$tmp/v$k"; done
for _ in $(seq "$rounds"); do
  k=0
  for p in "$@"; do
    k=$((k + 1))
    timed "$tmp/v$k" "$p" "-$level" -p 2
    gzip -dc "$tmp/out.gz" | cmp -s - "$tmp/input" || { echo "$p: output differs" >&2; exit 1; }
  done
  timed "$tmp/pigz" pigz "-$level" -p 2
done
echo "level $level, $rounds rounds, load $(cut -d' ' -f1 /proc/loadavg) at the end; wall / CPU (s), then pigz / it (wall, CPU)"
pw=$(med "$tmp/pigz" 1) pc=$(med "$tmp/pigz" 2)
k=0
for p in "$@"; do
  k=$((k + 1))
  w=$(med "$tmp/v$k" 1) c=$(med "$tmp/v$k" 2)
  printf '%s: %s / %s (%.2fx, %.2fx)\n' "$p" "$w" "$c" "$(echo "$pw / $w" | bc -l)" "$(echo "$pc / $c" | bc -l)"
done
echo "pigz -p 2: $pw / $pc"
