# Shared by the toolchain files that cross-build mproc for Windows on Linux
# (mingw-w64.cmake, clang-cl-wine.cmake): CMocka found from where it was
# cross-built, nothing else of the Linux host found, and every test program
# run under Wine. Set CMAKE_FIND_ROOT_PATH (the toolchain's own root, if
# any) before including this file.
#
# MPROC_CMOCKA_PREFIX (cache or environment variable) is where
# scripts/build-cmocka-windows.sh installed CMocka built with the same
# toolchain file; tests/CMakeLists.txt finds cmocka.h and the static
# library there.
if(NOT MPROC_CMOCKA_PREFIX AND DEFINED ENV{MPROC_CMOCKA_PREFIX})
  set(MPROC_CMOCKA_PREFIX "$ENV{MPROC_CMOCKA_PREFIX}")
endif()
set(MPROC_CMOCKA_PREFIX "${MPROC_CMOCKA_PREFIX}" CACHE PATH "Cross-built CMocka prefix")
# Toolchain files are read again for try_compile projects: pass it on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MPROC_CMOCKA_PREFIX)

if(MPROC_CMOCKA_PREFIX)
  list(APPEND CMAKE_FIND_ROOT_PATH "${MPROC_CMOCKA_PREFIX}")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test program through Wine, by default with a Wine
# prefix inside this build tree (MPROC_WINEPREFIX in the environment wins),
# finding mproc's DLL at the top of the build tree.
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh
    --default-prefix=${CMAKE_BINARY_DIR}/wine-prefix --dll-dir=${CMAKE_BINARY_DIR})
