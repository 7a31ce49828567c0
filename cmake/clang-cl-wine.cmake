# Cross-compiling for 64-bit Windows with the MSVC ABI on Linux: clang-cl
# (package clang-14) and lld-link (lld-14) against the MSVC-style headers
# and import libraries of Wine's development package (libwine-dev). Test
# programs run under Wine through cmake/wine-run.sh. scripts/test-windows.sh
# --msvc runs the whole suite this way.
#
#   cmake -S . -B build-msvc -DCMAKE_TOOLCHAIN_FILE=cmake/clang-cl-wine.cmake \
#         -DMPROC_CMOCKA_PREFIX=/path/to/cmocka-built-with-this-file
#
# Wine's import libraries stand in for the Windows SDK's and the UCRT's:
# ucrtbase (the C runtime, with the mainCRTStartup start-up code), kernel32,
# and the other system libraries a target names (advapi32, bcrypt).
# cmake/clang-cl-wine-compat.h, force-included, declares what Wine 8's
# headers lack and real SDKs have, and cmake/clang-cl-wine-crt.c supplies
# what MSVC's static CRT would; both exist only in this lane.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

find_program(MPROC_CLANG_CL NAMES clang-cl-14 clang-cl REQUIRED)
find_program(MPROC_LLD_LINK NAMES lld-link-14 lld-link REQUIRED)
find_program(MPROC_LLVM_LIB NAMES llvm-lib-14 llvm-lib REQUIRED)
find_program(MPROC_LLVM_RC NAMES llvm-rc-14 llvm-rc REQUIRED)
find_program(MPROC_LLVM_MT NAMES llvm-mt-14 llvm-mt REQUIRED)
set(CMAKE_C_COMPILER ${MPROC_CLANG_CL})
set(CMAKE_C_COMPILER_TARGET x86_64-pc-windows-msvc)
set(CMAKE_LINKER ${MPROC_LLD_LINK})
set(CMAKE_AR ${MPROC_LLVM_LIB})
set(CMAKE_RC_COMPILER ${MPROC_LLVM_RC})
set(CMAKE_MT ${MPROC_LLVM_MT})

set(MPROC_WINE_INCLUDE /usr/include/wine/wine CACHE PATH "Wine's MSVC-style headers (msvcrt/, windows/)")
set(MPROC_WINE_LIBS /usr/lib/x86_64-linux-gnu/wine/x86_64-windows CACHE PATH "Wine's PE import libraries")
if(NOT EXISTS ${MPROC_WINE_INCLUDE}/windows/windows.h OR NOT EXISTS ${MPROC_WINE_LIBS}/libkernel32.a)
  message(FATAL_ERROR "Wine's headers or import libraries are missing (install libwine-dev)")
endif()

# MSVC's linker looks for NAME.lib; Wine names its import libraries
# libNAME.a. A directory of NAME.lib links to them, one per build tree
# (try_compile projects get its path from the top-level configure), made
# again when this file changes.
if(NOT MPROC_WINE_LIB_LINKS)
  set(MPROC_WINE_LIB_LINKS ${CMAKE_BINARY_DIR}/wine-sdk-lib CACHE INTERNAL "")
endif()
set(_mproc_stamp ${MPROC_WINE_LIB_LINKS}/made-by-clang-cl-wine.cmake)
if(NOT EXISTS ${_mproc_stamp} OR ${CMAKE_CURRENT_LIST_FILE} IS_NEWER_THAN ${_mproc_stamp})
  file(REMOVE_RECURSE ${MPROC_WINE_LIB_LINKS})
  file(MAKE_DIRECTORY ${MPROC_WINE_LIB_LINKS})
  file(GLOB _mproc_wine_libs RELATIVE ${MPROC_WINE_LIBS} ${MPROC_WINE_LIBS}/lib*.a)
  foreach(_lib IN LISTS _mproc_wine_libs)
    string(REGEX REPLACE "^lib(.*)\\.a$" "\\1.lib" _name ${_lib})
    file(CREATE_LINK ${MPROC_WINE_LIBS}/${_lib} ${MPROC_WINE_LIB_LINKS}/${_name} SYMBOLIC)
  endforeach()
  # Wine's ucrtbase library also holds main() and wmain() that call WinMain
  # and wWinMain (for Wine's GUI programs); with those in reach lld-link
  # takes a wmain program for a main one. MSVC's has no such fallbacks:
  # ucrtbase.lib is a copy without them.
  find_program(MPROC_LLVM_AR NAMES llvm-ar-14 llvm-ar REQUIRED)
  file(REMOVE ${MPROC_WINE_LIB_LINKS}/ucrtbase.lib)
  file(COPY_FILE ${MPROC_WINE_LIBS}/libucrtbase.a ${MPROC_WINE_LIB_LINKS}/ucrtbase.lib)
  execute_process(COMMAND ${MPROC_LLVM_AR} d ${MPROC_WINE_LIB_LINKS}/ucrtbase.lib
                          crt_winmain.o crt_wwinmain.o RESULT_VARIABLE _mproc_rc)
  if(NOT _mproc_rc EQUAL 0)
    message(FATAL_ERROR "cannot make ${MPROC_WINE_LIB_LINKS}/ucrtbase.lib")
  endif()
  file(TOUCH ${_mproc_stamp})
endif()

# What MSVC's static CRT gives every program (TLS directory, atexit) and
# Wine lacks, from cmake/clang-cl-wine-crt.c, rebuilt when that changes.
set(_mproc_crt_src ${CMAKE_CURRENT_LIST_DIR}/clang-cl-wine-crt.c)
set(_mproc_crt_lib ${MPROC_WINE_LIB_LINKS}/mproc-wine-crt.lib)
if(NOT EXISTS ${_mproc_crt_lib} OR ${_mproc_crt_src} IS_NEWER_THAN ${_mproc_crt_lib})
  execute_process(
    COMMAND ${MPROC_CLANG_CL} --target=${CMAKE_C_COMPILER_TARGET} /nologo /c /O2 /GS- /Zl /MD
            -imsvc ${MPROC_WINE_INCLUDE}/msvcrt -imsvc ${MPROC_WINE_INCLUDE}/windows
            /FI${CMAKE_CURRENT_LIST_DIR}/clang-cl-wine-compat.h
            /Fo${MPROC_WINE_LIB_LINKS}/mproc-wine-crt.obj -- ${_mproc_crt_src}
    RESULT_VARIABLE _mproc_rc)
  if(_mproc_rc EQUAL 0)
    execute_process(COMMAND ${MPROC_LLVM_LIB} /nologo /out:${_mproc_crt_lib}
                            ${MPROC_WINE_LIB_LINKS}/mproc-wine-crt.obj
                    RESULT_VARIABLE _mproc_rc)
  endif()
  if(NOT _mproc_rc EQUAL 0)
    message(FATAL_ERROR "cannot build ${_mproc_crt_lib}")
  endif()
endif()

# /GS-: the stack-protector runtime (__security_cookie) lives in the static
# part of MSVC's CRT, which Wine does not ship. /Zl and /NODEFAULTLIB: no
# msvcrt.lib / oldnames.lib (MSVC's names); every link names the runtime
# instead: ucrtbase (with mainCRTStartup), kernel32, and winecrt0 (the DLL
# entry point and _fltused). /MD always: Wine has no debug UCRT.
set(CMAKE_C_FLAGS_INIT "/GS- /Zl -imsvc ${MPROC_WINE_INCLUDE}/msvcrt -imsvc ${MPROC_WINE_INCLUDE}/windows /FI${CMAKE_CURRENT_LIST_DIR}/clang-cl-wine-compat.h")
set(CMAKE_MSVC_RUNTIME_LIBRARY MultiThreadedDLL)
foreach(_kind EXE SHARED MODULE)
  set(CMAKE_${_kind}_LINKER_FLAGS_INIT
      "/NODEFAULTLIB /LIBPATH:${MPROC_WINE_LIB_LINKS} ucrtbase.lib kernel32.lib winecrt0.lib mproc-wine-crt.lib")
endforeach()
# winecrt0's DLL entry point (MSVC's is _DllMainCRTStartup).
string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT " /ENTRY:DllMainCRTStartup")
string(APPEND CMAKE_MODULE_LINKER_FLAGS_INIT " /ENTRY:DllMainCRTStartup")

list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MPROC_WINE_LIB_LINKS)
set(CMAKE_FIND_ROOT_PATH "")
include(${CMAKE_CURRENT_LIST_DIR}/wine-cross.cmake)
