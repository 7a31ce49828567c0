# Cross-compiling for 64-bit Windows with Debian's MinGW-w64 (package
# gcc-mingw-w64-x86-64); test programs run under Wine through
# cmake/wine-run.sh.
#
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DMPROC_CMOCKA_PREFIX=/path/to/cross-built/cmocka
#
# MPROC_CMOCKA_PREFIX (cache variable or environment variable) is where
# scripts/build-cmocka-mingw.sh installed CMocka; it is added to the find
# root so that tests/CMakeLists.txt finds cmocka.h and libcmocka-static.a.
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

if(NOT MPROC_CMOCKA_PREFIX AND DEFINED ENV{MPROC_CMOCKA_PREFIX})
  set(MPROC_CMOCKA_PREFIX "$ENV{MPROC_CMOCKA_PREFIX}")
endif()
set(MPROC_CMOCKA_PREFIX "${MPROC_CMOCKA_PREFIX}" CACHE PATH "Cross-built CMocka prefix")
# Toolchain files are read again for try_compile projects: pass it on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MPROC_CMOCKA_PREFIX)

set(CMAKE_FIND_ROOT_PATH /usr/${MPROC_MINGW_TRIPLE})
if(MPROC_CMOCKA_PREFIX)
  list(APPEND CMAKE_FIND_ROOT_PATH "${MPROC_CMOCKA_PREFIX}")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test program through Wine, by default with a Wine
# prefix inside this build tree (MPROC_WINEPREFIX in the environment wins),
# finding libmproc.dll at the top of the build tree.
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh
    --default-prefix=${CMAKE_BINARY_DIR}/wine-prefix --dll-dir=${CMAKE_BINARY_DIR})
