#!/usr/bin/env bash
# Installs mproc into a scratch prefix and builds two consumers against it:
# one with find_package(mproc CONFIG), one with pkg-config; runs both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build-install-check}
rm -rf "$work"
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
      -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/build" -j2 >/dev/null
cmake --install "$work/build" >/dev/null
cmake -S "$root/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -o "$work/consumer_pc" "$root/tests/consumer/consumer.c" $(pkg-config --cflags --libs mproc)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer_pc"
# --static adds -DMPROC_STATIC (Cflags.private) and the system libraries.
pkg-config --static --cflags mproc | grep -q -- -DMPROC_STATIC ||
  { echo "pkg-config --static --cflags mproc lacks -DMPROC_STATIC" >&2; exit 1; }
cc -o "$work/consumer_pc_static" "$root/tests/consumer/consumer.c" \
   $(pkg-config --static --cflags mproc) "$work/prefix/lib/libmproc.a" $(pkg-config --static --libs-only-l mproc | sed 's/-lmproc//')
"$work/consumer_pc_static"
echo "install check: find_package and pkg-config consumers passed"
