#!/usr/bin/env bash
# Installs mproc into a scratch prefix and builds two consumers against it:
# one with find_package(mproc CONFIG), one with pkg-config; runs both.
# MPROC_CHECK_MPI=1: built with MPROC_WITH_MPI, and mproc::mpi / mproc-mpi
# are checked the same way (each consumer run under mpirun -n 2).
set -euo pipefail
mpi=${MPROC_CHECK_MPI:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build-install-check}
rm -rf "$work"
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
      -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" \
      $([ "$mpi" = 1 ] && echo -DMPROC_WITH_MPI=ON) >/dev/null
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
if [ "$mpi" = 1 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
  LD_LIBRARY_PATH="$work/prefix/lib" timeout 120 mpirun --oversubscribe -n 2 "$work/consumer/consumer_mpi"
  cc -o "$work/consumer_mpi_pc" "$root/tests/consumer/consumer_mpi.c" $(pkg-config --cflags --libs mproc-mpi)
  LD_LIBRARY_PATH="$work/prefix/lib" timeout 120 mpirun --oversubscribe -n 2 "$work/consumer_mpi_pc"
  echo "install check: mproc::mpi and mproc-mpi consumers passed"
fi
echo "install check: find_package and pkg-config consumers passed"
