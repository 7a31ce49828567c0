#!/bin/sh
# Runs a Windows program under 64-bit Wine. cmake/mingw-w64.cmake makes it
# the CMAKE_CROSSCOMPILING_EMULATOR, so ctest runs cross-built tests with it.
#
#   wine-run.sh [--default-prefix=DIR] [--dll-dir=DIR] PROGRAM.exe [ARGS...]
#
# The Wine prefix is $MPROC_WINEPREFIX if set, else the --default-prefix,
# else wine-prefix/ in the current directory. A stray WINEPREFIX of the
# caller is not used: Wine refuses a prefix owned by another user, and tests
# should not write into someone's home. --dll-dir adds a directory to the
# DLL search path (where the build puts libmproc.dll). For many programs in
# a row start `wineserver -p` and `wineboot` first, as
# scripts/test-windows.sh does.
set -eu
prefix=$(pwd)/wine-prefix
while :; do
    case "${1:-}" in
        --default-prefix=*) prefix=${1#--default-prefix=}; shift ;;
        --dll-dir=*)
            # Wine maps the Unix root to drive Z:.
            dir=Z:$(printf '%s' "${1#--dll-dir=}" | tr / '\\')
            WINEPATH=${WINEPATH:+$WINEPATH;}$dir
            export WINEPATH
            shift ;;
        *) break ;;
    esac
done
WINEPREFIX=${MPROC_WINEPREFIX:-$prefix}
WINEDEBUG=-all   # also silences /usr/bin/wine's "wine32 is missing" hint
export WINEPREFIX WINEDEBUG
# Debian 12 ships no /usr/bin/wine64; the 64-bit loader lives here.
wine64=${MPROC_WINE64:-/usr/lib/wine/wine64}
# Debian's Wine has no preloader, so nothing reserves the low addresses
# Wine needs before the kernel's address-space randomisation has placed
# its own mappings: about one Wine process start in a thousand fails with
# "failed to map the shared user data" (STATUS_CONFLICTING_ADDRESSES).
# The test program then dies before main (no output, ~0.02 s), or its
# CreateProcess fails with ERROR_INTERNAL_ERROR. Without randomisation
# (a personality flag every Wine process it starts inherits) the layout is
# the same each time. A container that refuses the flag runs as it is.
if setarch "$(uname -m)" -R true 2>/dev/null; then
    exec setarch "$(uname -m)" -R "$wine64" "$@"
fi
exec "$wine64" "$@"
