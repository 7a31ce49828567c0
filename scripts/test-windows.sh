#!/bin/sh
# Builds mproc for Windows and runs the whole test suite under Wine, then
# checks each way of linking an installed mproc (scripts/check-windows-link.sh)
# and runs the doubler example. Works on a fresh Debian 12 after
# scripts/install-deps.sh.
#
#   scripts/test-windows.sh [--msvc] [BUILD_DIR]
#
# Default: MinGW-w64 (cmake/mingw-w64.cmake, BUILD_DIR build-win).
# --msvc: the MSVC ABI, clang-cl + lld-link against Wine's MSVC-style
# headers and import libraries (cmake/clang-cl-wine.cmake, BUILD_DIR
# build-msvc), with GNU extensions refused as cl.exe refuses them.
#
# Environment: MPROC_CMOCKA_PREFIX (where CMocka cross-built with the same
# toolchain lives; default BUILD_DIR/cmocka-prefix), MPROC_TEST_JOBS (ctest
# -j, at most 2: Wine children are slow to start and the machine has 2
# cores).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
toolchain=$repo/cmake/mingw-w64.cmake
build=build-win
msvc_flag=
if [ "${1:-}" = --msvc ]; then
    toolchain=$repo/cmake/clang-cl-wine.cmake
    build=build-msvc
    msvc_flag=--msvc
    shift
fi
build=${1:-$build}
case "$build" in /*) ;; *) build=$(pwd)/$build ;; esac
cmocka=${MPROC_CMOCKA_PREFIX:-$build/cmocka-prefix}
jobs=${MPROC_TEST_JOBS:-2}
[ "$jobs" -le 2 ] || jobs=2

mkdir -p "$build"
"$repo/scripts/build-cmocka-windows.sh" "$cmocka" "$toolchain"

cmake -S "$repo" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
      -DMPROC_CMOCKA_PREFIX="$cmocka" -DMPROC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" --parallel 2

# One Wine prefix and one persistent wineserver for every test program.
MPROC_WINEPREFIX=$build/wine-prefix
WINEPREFIX=$MPROC_WINEPREFIX
WINEDEBUG=-all
export MPROC_WINEPREFIX WINEPREFIX WINEDEBUG
# /usr/bin/wineserver comes with the "wine" package (a Recommends of wine64).
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver64)

trap '"$wineserver" -k >/dev/null 2>&1 || true' EXIT
mkdir -p "$WINEPREFIX"   # wineserver starts in it; wineboot fills it
"$wineserver" -p
# Wine's service processes (services.exe, explorer.exe, ...) start with
# the first program and inherit its output. Started here, with nothing
# but /dev/null, they cannot hold ctest's output pipe open (which would
# make ctest wait for them until its timeout).
"$repo/cmake/wine-run.sh" wineboot </dev/null >/dev/null 2>&1
# A crashing test child must not start winedbg (slow, and its dump is
# noise): no debugger for unhandled exceptions.
"$repo/cmake/wine-run.sh" reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
    /v Debugger /t REG_SZ /d '' /f </dev/null >/dev/null 2>&1

ctest --test-dir "$build" --output-on-failure -j "$jobs"

# Installed, linked each way the README shows (CMake, by hand, pkg-config).
"$repo/scripts/check-windows-link.sh" $msvc_flag "$build"

# The first seed example: five processes, one line each.
out=$("$repo/cmake/wine-run.sh" --dll-dir="$build" "$build/examples/doubler.exe")
printf '%s\n' "$out"
[ "$(printf '%s\n' "$out" | grep -c 'doubled to')" -eq 5 ] ||
    { echo "examples/doubler.exe: expected 5 lines" >&2; exit 1; }
