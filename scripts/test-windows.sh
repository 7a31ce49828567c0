#!/bin/sh
# Builds mproc for Windows with MinGW-w64 and runs the whole test suite
# under Wine. Works on a fresh Debian 12 after scripts/install-deps.sh.
#
#   scripts/test-windows.sh [BUILD_DIR]      (default: build-win)
#
# Environment: MPROC_CMOCKA_PREFIX (where the cross-built CMocka lives;
# default BUILD_DIR/cmocka-prefix), MPROC_TEST_JOBS (ctest -j, at most 2:
# Wine children are slow to start and the machine has 2 cores).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-win}
case "$build" in /*) ;; *) build=$(pwd)/$build ;; esac
cmocka=${MPROC_CMOCKA_PREFIX:-$build/cmocka-prefix}
jobs=${MPROC_TEST_JOBS:-2}
[ "$jobs" -le 2 ] || jobs=2

mkdir -p "$build"
"$repo/scripts/build-cmocka-mingw.sh" "$cmocka"

cmake -S "$repo" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$repo/cmake/mingw-w64.cmake" \
      -DMPROC_CMOCKA_PREFIX="$cmocka" -DMPROC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" --parallel 2

# One Wine prefix and one persistent wineserver for every test program.
MPROC_WINEPREFIX=$build/wine-prefix
WINEPREFIX=$MPROC_WINEPREFIX
WINEDEBUG=-all
export MPROC_WINEPREFIX WINEPREFIX WINEDEBUG
wine64=${MPROC_WINE64:-/usr/lib/wine/wine64}
# /usr/bin/wineserver comes with the "wine" package (a Recommends of wine64).
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver64)

trap '"$wineserver" -k >/dev/null 2>&1 || true' EXIT
mkdir -p "$WINEPREFIX"   # wineserver starts in it; wineboot fills it
"$wineserver" -p
# Wine's service processes (services.exe, explorer.exe, ...) start with
# the first program and inherit its output. Started here, with nothing
# but /dev/null, they cannot hold ctest's output pipe open (which would
# make ctest wait for them until its timeout).
"$wine64" wineboot </dev/null >/dev/null 2>&1
# A crashing test child must not start winedbg (slow, and its dump is
# noise): no debugger for unhandled exceptions.
"$wine64" reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
    /v Debugger /t REG_SZ /d '' /f </dev/null >/dev/null 2>&1

cd "$build"
ctest --output-on-failure -j "$jobs"
