#!/usr/bin/env bash
# Installs what building and testing mproc needs on Debian/Ubuntu, only what
# is missing. Usage: scripts/install-deps.sh [native|all]   (default: all)
#   native: compiler, CMake, CMocka, zlib      (examples, native tests)
#   all:    + MinGW-w64, Wine, clang/libFuzzer, valgrind (Windows tests, fuzzing),
#           clang-cl + lld-link + Wine's MSVC-style SDK (the MSVC-ABI lane)
#           Open MPI and mpi4py (the Pool over MPI ranks, its bench)
set -euo pipefail
what=${1:-all}
pkgs=(cmake make gcc pkg-config libcmocka-dev python3 zlib1g-dev)
if [ "$what" = all ]; then
  pkgs+=(gcc-mingw-w64-x86-64 wine64 dpkg-dev clang libclang-rt-14-dev valgrind
         clang-14 lld-14 libwine-dev
         openmpi-bin libopenmpi-dev python3-mpi4py)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
