find_package(PkgConfig)

PKG_CHECK_MODULES(PC_GR_LARGESC gnuradio-largesc)

FIND_PATH(
    GR_LARGESC_INCLUDE_DIRS
    NAMES gnuradio/largesc/api.h
    HINTS $ENV{LARGESC_DIR}/include
        ${PC_LARGESC_INCLUDEDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/include
          /usr/local/include
          /usr/include
)

FIND_LIBRARY(
    GR_LARGESC_LIBRARIES
    NAMES gnuradio-largesc
    HINTS $ENV{LARGESC_DIR}/lib
        ${PC_LARGESC_LIBDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/lib
          ${CMAKE_INSTALL_PREFIX}/lib64
          /usr/local/lib
          /usr/local/lib64
          /usr/lib
          /usr/lib64
          )

include("${CMAKE_CURRENT_LIST_DIR}/gnuradio-largescTarget.cmake")

INCLUDE(FindPackageHandleStandardArgs)
FIND_PACKAGE_HANDLE_STANDARD_ARGS(GR_LARGESC DEFAULT_MSG GR_LARGESC_LIBRARIES GR_LARGESC_INCLUDE_DIRS)
MARK_AS_ADVANCED(GR_LARGESC_LIBRARIES GR_LARGESC_INCLUDE_DIRS)
