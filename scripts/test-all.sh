#!/usr/bin/env bash
# Every test mproc has, as CI runs them: installs what is missing, then
#   1. native Debug, -Werror, ASan+UBSan
#   2. the portable-POSIX build (the fallbacks macOS uses), -Werror
#   3. TSan
#   4. install + find_package/pkg-config consumers
#   5. fuzzers, a short run each (clang/libFuzzer); valgrind memcheck
#   6. MinGW-w64 cross build with every test under Wine
#   7. the MSVC ABI (clang-cl + lld-link, Wine's SDK), every test under Wine
#   8. mpi: -DMPROC_WITH_MPI=ON, the Pool over MPI ranks under mpirun -n 3
#      (tests/mpi/run.sh) and the install check of mproc::mpi
# Usage: scripts/test-all.sh [stage...]
#   (stages: asan portable tsan install fuzz valgrind windows msvc mpi)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${MPROC_TEST_DIR:-$root/build-test}
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(asan portable tsan install fuzz valgrind windows msvc mpi)
"$root/scripts/install-deps.sh" all

native() { # name, extra cmake args...
  local name=$1; shift
  echo "==== $name"
  cmake -S "$root" -B "$out/$name" -DCMAKE_BUILD_TYPE=Debug -DMPROC_WERROR=ON \
        -DMPROC_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$out/$name" -j2 >/dev/null
  ctest --test-dir "$out/$name" --output-on-failure -j2
}

for s in "${stages[@]}"; do
  case $s in
    asan) native asan -DMPROC_SANITIZE=address,undefined ;;
    portable) native portable -DMPROC_PORTABLE_POSIX=ON ;;
    tsan) native tsan -DMPROC_SANITIZE=thread ;;
    install) echo "==== install"; "$root/scripts/check-install.sh" "$out/install" ;;
    fuzz) [ -x "$root/scripts/fuzz.sh" ] && { echo "==== fuzz"; "$root/scripts/fuzz.sh" "$out/fuzz" 20; } ;;
    valgrind) echo "==== valgrind"; "$root/scripts/valgrind.sh" "$out/valgrind" ;;
    windows) echo "==== windows (MinGW + Wine)"; "$root/scripts/test-windows.sh" "$out/windows" ;;
    msvc) echo "==== msvc (clang-cl, MSVC ABI + Wine)"; "$root/scripts/test-windows.sh" --msvc "$out/msvc" ;;
    mpi)
      echo "==== mpi"
      cmake -S "$root" -B "$out/mpi" -DCMAKE_BUILD_TYPE=Debug -DMPROC_WERROR=ON -DMPROC_WITH_MPI=ON \
            -DMPROC_BUILD_BENCH=OFF >/dev/null
      cmake --build "$out/mpi" -j2 --target test_mpi_pool pool_map_mpi >/dev/null
      ctest --test-dir "$out/mpi" --output-on-failure -R '^mpi_'
      MPROC_CHECK_MPI=1 "$root/scripts/check-install.sh" "$out/mpi-install" ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
echo "all test stages passed: ${stages[*]}"
