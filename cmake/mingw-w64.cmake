# Cross-compiling for 64-bit Windows with Debian's MinGW-w64 (package
# gcc-mingw-w64-x86-64); test programs run under Wine through
# cmake/wine-run.sh.
#
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DMPROC_CMOCKA_PREFIX=/path/to/cross-built/cmocka
#
# MPROC_CMOCKA_PREFIX: see wine-cross.cmake.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(MPROC_MINGW_TRIPLE x86_64-w64-mingw32)
# Debian's default thread model is win32; the -posix variants would pull
# in winpthreads, which mproc does not need.
set(CMAKE_C_COMPILER ${MPROC_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MPROC_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER ${MPROC_MINGW_TRIPLE}-windres)

# Link libgcc statically: a test program then imports only system DLLs
# (KERNEL32, msvcrt, advapi32, bcrypt), which Wine provides.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

set(CMAKE_FIND_ROOT_PATH /usr/${MPROC_MINGW_TRIPLE})
include(${CMAKE_CURRENT_LIST_DIR}/wine-cross.cmake)
