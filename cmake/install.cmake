# install(): header, libraries, an exported CMake package and a pkg-config
# file, so both find_package(mproc CONFIG) and pkg-config find mproc.
include(CMakePackageConfigHelpers)

install(TARGETS ${MPROC_INSTALL_TARGETS} EXPORT mprocTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/mproc.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(MPROC_WITH_MPI)
  install(FILES ${PROJECT_SOURCE_DIR}/include/mproc_mpi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()

set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)
install(EXPORT mprocTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mprocConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mprocConfig.cmake INSTALL_DESTINATION ${MPROC_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mprocConfig.cmake ${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  DESTINATION ${MPROC_CMAKE_DIR})

# pkg-config: "mproc" links the shared library; --static adds what the
# static one needs.
set(MPROC_PC_LIBS_PRIVATE "")
if(WIN32)
  set(MPROC_PC_LIBS_PRIVATE "-ladvapi32 -lbcrypt")
else()
  set(MPROC_PC_LIBS_PRIVATE "-pthread ${CMAKE_DL_LIBS}")
  if(CMAKE_DL_LIBS)
    set(MPROC_PC_LIBS_PRIVATE "-pthread -l${CMAKE_DL_LIBS}")
  endif()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    string(APPEND MPROC_PC_LIBS_PRIVATE " -lrt")
  endif()
endif()
# mproc.h needs MPROC_STATIC to declare the static library's functions
# (without it they are DLL imports on Windows): always when only the static
# library is installed, with --static (pkgconf's Cflags.private) when both are.
set(MPROC_PC_CFLAGS_EXTRA "")
set(MPROC_PC_CFLAGS_PRIVATE "")
if(NOT MPROC_BUILD_SHARED)
  set(MPROC_PC_CFLAGS_EXTRA "-DMPROC_STATIC")
elseif(MPROC_BUILD_STATIC)
  set(MPROC_PC_CFLAGS_PRIVATE "-DMPROC_STATIC")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/mproc.pc.in ${PROJECT_BINARY_DIR}/mproc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mproc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(MPROC_WITH_MPI)
  # "mproc-mpi": libmproc_mpi, mproc and Open MPI's C library (pkg-config "ompi-c").
  configure_file(${PROJECT_SOURCE_DIR}/cmake/mproc-mpi.pc.in ${PROJECT_BINARY_DIR}/mproc-mpi.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/mproc-mpi.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
