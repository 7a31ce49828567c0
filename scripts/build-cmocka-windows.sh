#!/bin/sh
# Cross-builds a static CMocka for Windows into PREFIX with one of mproc's
# toolchain files (default cmake/mingw-w64.cmake; cmake/clang-cl-wine.cmake
# for the MSVC ABI), from Debian's own source package (Debian ships no
# Windows build of it). No third-party code is kept in this repository.
#
#   scripts/build-cmocka-windows.sh PREFIX [TOOLCHAIN_FILE]
#
# Does nothing when PREFIX already holds the library. Otherwise it needs
# apt (root, or sudo) and dpkg-dev: it enables deb-src for the Debian
# archive already configured, then `apt-get source cmocka`.
set -eu

[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 PREFIX [TOOLCHAIN_FILE]" >&2; exit 2; }
case "$1" in /*) prefix=$1 ;; *) prefix=$(pwd)/$1 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
toolchain=${2:-$repo/cmake/mingw-w64.cmake}
case "$toolchain" in /*) ;; *) toolchain=$(pwd)/$toolchain ;; esac

# MinGW names it libcmocka-static.a, MSVC cmocka-static.lib.
installed() {
    [ -f "$prefix/include/cmocka.h" ] && ls "$prefix"/lib/*cmocka-static.* >/dev/null 2>&1
}
if installed; then
    echo "cmocka already in $prefix"
    exit 0
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Adds a deb-src stanza (same archive, suite and key as the first deb
# stanza of debian.sources) in a file of its own; a second run finds it.
enable_deb_src() {
    list=/etc/apt/sources.list.d/mproc-deb-src.sources
    [ -f "$list" ] && return 0
    main=/etc/apt/sources.list.d/debian.sources
    [ -f "$main" ] || { echo "no $main: add a deb-src entry for Debian by hand" >&2; exit 1; }
    stanza=$(awk 'BEGIN { RS = ""; FS = "\n" } /(^|\n)Types:.*deb/ { print; exit }' "$main")
    uri=$(printf '%s\n' "$stanza" | sed -n 's/^URIs: *\([^ ]*\).*/\1/p')
    suite=$(printf '%s\n' "$stanza" | sed -n 's/^Suites: *\([^ ]*\).*/\1/p')
    key=$(printf '%s\n' "$stanza" | sed -n 's/^Signed-By: *//p')
    [ -n "$uri" ] && [ -n "$suite" ] || { echo "cannot read $main" >&2; exit 1; }
    {
        echo "# Added by mproc's scripts/build-cmocka-windows.sh (apt-get source cmocka)."
        echo "Types: deb-src"
        echo "URIs: $uri"
        echo "Suites: $suite"
        echo "Components: main"
        [ -z "$key" ] || echo "Signed-By: $key"
    } | as_root tee "$list" >/dev/null
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mproc-cmocka.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# Try with the package lists as they are first: no update if not needed.
if ! apt-get source cmocka >/dev/null 2>&1; then
    enable_deb_src
    as_root apt-get update -qq
    apt-get source cmocka
fi
src=$(find . -maxdepth 1 -type d -name 'cmocka-*' | head -n 1)
[ -n "$src" ] || { echo "apt-get source cmocka gave no source tree" >&2; exit 1; }

cmake -S "$src" -B build -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF >/dev/null
cmake --build build --parallel 2 >/dev/null
cmake --install build >/dev/null
installed || { echo "no static cmocka in $prefix after install" >&2; exit 1; }
echo "cmocka for $(basename "$toolchain" .cmake) installed in $prefix"
