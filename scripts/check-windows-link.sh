#!/bin/sh
# Links a program against an installed Windows build of mproc in each way
# the README's "Windows" section shows, and runs each under Wine:
# find_package (mproc::mproc and mproc::mproc_static), by hand against the
# static library (MPROC_STATIC + advapi32 + bcrypt) and against the DLL,
# and, for MinGW, with pkg-config --static. scripts/test-windows.sh calls
# it after the tests, with its Wine session still running.
#
#   scripts/check-windows-link.sh [--msvc] BUILD_DIR
#
# BUILD_DIR is a configured and built tree of scripts/test-windows.sh (same
# --msvc choice); mproc is installed into BUILD_DIR/install.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
msvc=0
if [ "${1:-}" = --msvc ]; then msvc=1; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 [--msvc] BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
prefix=$build/install
work=$build/link-check
app=$repo/tests/consumer/consumer.c
toolchain=$(sed -n 's/^CMAKE_TOOLCHAIN_FILE:[A-Z]*=//p' "$build/CMakeCache.txt")

rm -rf "$prefix" "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null

# run NAME static|dll: checks that NAME.exe imports mproc's DLL exactly
# when it should (a "static" link that quietly took the DLL would pass
# otherwise), then runs it under Wine, the DLL coming from prefix/bin.
run() {
    echo "== $1 ($2)"
    dlls=$(x86_64-w64-mingw32-objdump -p "$work/$1.exe" | sed -n 's/.*DLL Name: //p')
    if printf '%s\n' "$dlls" | grep -q 'mproc\.dll'; then kind=dll; else kind=static; fi
    [ "$kind" = "$2" ] || { echo "$1.exe: linked $kind, expected $2" >&2; exit 1; }
    "$repo/cmake/wine-run.sh" --dll-dir="$prefix/bin" "$work/$1.exe"
}

# find_package, as a CMake user does (mproc_DIR: the toolchain files look
# for packages only under their own roots).
cmake -S "$repo/tests/consumer" -B "$work/cmake" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
      -DCMAKE_BUILD_TYPE=Release -Dmproc_DIR="$prefix/lib/cmake/mproc" >/dev/null
cmake --build "$work/cmake" >/dev/null
for t in shared:dll static:static; do
    cp "$work/cmake/consumer_${t%:*}.exe" "$work/consumer_${t%:*}.exe"
    run "consumer_${t%:*}" "${t#*:}"
done

if [ "$msvc" -eq 0 ]; then
    cc=x86_64-w64-mingw32-gcc
    # The commands of the README, with PREFIX the install prefix.
    $cc -o "$work/hand_static.exe" "$app" -DMPROC_STATIC -I"$prefix/include" \
        "$prefix/lib/libmproc.a" -ladvapi32 -lbcrypt
    run hand_static static
    $cc -o "$work/hand_dll.exe" "$app" -I"$prefix/include" -L"$prefix/lib" -lmproc
    run hand_dll dll
    # --define-prefix: the prefix from where mproc.pc lies (pkgconf's
    # default on Windows), not the one configured.
    pc="env PKG_CONFIG_PATH=$prefix/lib/pkgconfig PKG_CONFIG_LIBDIR= pkg-config --define-prefix"
    # --static must give MPROC_STATIC (Cflags.private) and the system libraries.
    $pc --static --cflags mproc | grep -q -- -DMPROC_STATIC ||
        { echo "pkg-config --static --cflags mproc lacks -DMPROC_STATIC" >&2; exit 1; }
    $pc --cflags mproc | grep -q -- -DMPROC_STATIC &&
        { echo "pkg-config --cflags mproc (the DLL) gives -DMPROC_STATIC" >&2; exit 1; }
    # shellcheck disable=SC2046 # pkg-config's output is a list of words
    $cc -o "$work/pc_static.exe" "$app" $($pc --static --cflags --libs mproc) -static
    run pc_static static
    # shellcheck disable=SC2046
    $cc -o "$work/pc_dll.exe" "$app" $($pc --cflags --libs mproc)
    run pc_dll dll
else
    # cl.exe's command lines, run by clang-cl with the Wine SDK of
    # cmake/clang-cl-wine.cmake in front (from the build tree's cache).
    flags=$(sed -n 's/^CMAKE_C_FLAGS:STRING=//p' "$build/CMakeCache.txt")
    ldflags=$(sed -n 's/^CMAKE_EXE_LINKER_FLAGS:STRING=//p' "$build/CMakeCache.txt")
    cl="$(sed -n 's/^MPROC_CLANG_CL:FILEPATH=//p' "$build/CMakeCache.txt") --target=x86_64-pc-windows-msvc -fuse-ld=lld $flags /nologo /MD"
    # clang-cl reads an argument that starts with / as an option: source
    # and libraries go by relative names (on Windows: C:\...).
    cd "$work"
    cp "$app" app.c
    lib=../install/lib
    # shellcheck disable=SC2086 # flag lists
    $cl /DMPROC_STATIC app.c /I"$prefix/include" "$lib/mproc_static.lib" advapi32.lib \
        bcrypt.lib /Fehand_static.exe /link $ldflags
    run hand_static static
    # shellcheck disable=SC2086
    $cl app.c /I"$prefix/include" "$lib/mproc.lib" /Fehand_dll.exe /link $ldflags
    run hand_dll dll
fi
echo "windows link check: every way of linking mproc worked"
