#!/bin/sh
# The example tools against the reference programs: pzip's output must
# decompress with gzip -dc to the input (levels 1, 6, 9; empty, small and
# multi-block inputs), hashsum's output must equal sha256sum's (streamed,
# serial, and with -v counting the files the tasks report), with a missing
# file reported and the others still hashed.
#   check_tools.sh pzip|hashsum BUILD_EXAMPLES_DIR
set -eu
what=$1
bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 1.5 MB of compressible text plus 300 KB of random bytes: 14 blocks
awk 'BEGIN { for (i = 0; i < 20000; i++) print "line " i " of the input, some words repeat: " i % 97 }' > "$tmp/text"
head -c 300000 /dev/urandom >> "$tmp/text"
case $what in
pzip)
  for level in 1 6 9; do
    "$bin/pzip" -$level -p 2 < "$tmp/text" > "$tmp/out.gz"
    gzip -dc "$tmp/out.gz" | cmp - "$tmp/text"
  done
  : > "$tmp/empty"
  "$bin/pzip" < "$tmp/empty" | gzip -dc | cmp - "$tmp/empty"
  head -c 1000 "$tmp/text" > "$tmp/small"
  "$bin/pzip" -p 1 < "$tmp/small" | gzip -dc | cmp - "$tmp/small"
  gzip -t "$tmp/out.gz"
  ;;
hashsum)
  mkdir "$tmp/files"
  i=0
  while [ $i -lt 300 ]; do head -c $((i * 523)) "$tmp/text" > "$tmp/files/f$i"; i=$((i + 1)); done
  ls "$tmp"/files/* > "$tmp/list"
  (cd "$tmp/files" && sha256sum "$tmp"/files/*) > "$tmp/ref"
  "$bin/hashsum" -p 2 < "$tmp/list" > "$tmp/out"
  cmp "$tmp/out" "$tmp/ref"
  "$bin/hashsum" -s < "$tmp/list" | cmp - "$tmp/ref"
  # -v: the same output, and the files the tasks reported, all 300 at the end
  "$bin/hashsum" -v -p 2 < "$tmp/list" > "$tmp/out" 2> "$tmp/progress"
  cmp "$tmp/out" "$tmp/ref"
  tr '\r' '\n' < "$tmp/progress" | tail -n 1 | grep -qx "hashsum: 300 of 300 files"
  # a missing file: reported, exit status 1, every other file still hashed
  { head -n 10 "$tmp/list"; echo "$tmp/files/missing"; tail -n +11 "$tmp/list"; } > "$tmp/list2"
  if "$bin/hashsum" < "$tmp/list2" > "$tmp/out2" 2> "$tmp/err2"; then exit 1; fi
  cmp "$tmp/out2" "$tmp/ref"
  grep -q "missing" "$tmp/err2"
  ;;
*) exit 2 ;;
esac
echo "$what: ok"
