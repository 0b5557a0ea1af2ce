# Locates libxgboost's C API (xgboost/c_api.h, libxgboost.so), as Debian's libxgboost-dev
# installs it. Not find_package(xgboost CONFIG): Debian's exported targets name the
# command-line tool /usr/bin/xgboost, which libxgboost-dev does not install, so that
# package fails to configure. XGBOOST_ROOT (cache or environment) points at another
# install prefix.
if(NOT XGBOOST_ROOT AND DEFINED ENV{XGBOOST_ROOT})
  set(XGBOOST_ROOT $ENV{XGBOOST_ROOT})
endif()
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h HINTS ${XGBOOST_ROOT}/include)
find_library(XGBOOST_LIBRARY xgboost HINTS ${XGBOOST_ROOT}/lib)
if(NOT XGBOOST_INCLUDE_DIR OR NOT XGBOOST_LIBRARY)
  message(FATAL_ERROR "libxgboost not found: run scripts/setup.sh (installs libxgboost-dev), "
                      "set XGBOOST_ROOT, or -DFERRY_WITH_XGBOOST=OFF")
endif()
add_library(xgboost::xgboost SHARED IMPORTED)
set_target_properties(xgboost::xgboost PROPERTIES
  IMPORTED_LOCATION ${XGBOOST_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${XGBOOST_INCLUDE_DIR})
message(STATUS "XGBoost: ${XGBOOST_LIBRARY}")
