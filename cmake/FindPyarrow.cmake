# Arrow C++ and Parquet from the pyarrow wheel (Debian bookworm packages neither):
# tools/pyarrow/install.sh puts pyarrow 26.0.1 in a venv under the ferry cache folder,
# and this asks that venv's python where the headers and libraries are. Defines the
# imported target ferry::parquet (libarrow + libparquet, headers as SYSTEM so their
# warnings stay out of ours) and links it with an RPATH to the wheel's folder. Sets
# FERRY_WITH_PARQUET OFF with a warning when no such python or pyarrow is found.
#   FERRY_PYARROW_PYTHON   a python that imports pyarrow (default: the cache venv's)
set(FERRY_PYARROW_VERSION 26.0.1)
if(NOT FERRY_PYARROW_PYTHON)
  if(DEFINED ENV{FERRY_CACHE_DIR})
    set(_ferry_cache "$ENV{FERRY_CACHE_DIR}")
  elseif(IS_DIRECTORY /var/cache/ferry/pyarrow-${FERRY_PYARROW_VERSION})
    set(_ferry_cache /var/cache/ferry)
  else()
    set(_ferry_cache "$ENV{HOME}/.cache/ferry")
  endif()
  set(FERRY_PYARROW_PYTHON "${_ferry_cache}/pyarrow-${FERRY_PYARROW_VERSION}/venv/bin/python")
endif()
execute_process(
  COMMAND "${FERRY_PYARROW_PYTHON}" -c
    "import pyarrow as p; print(p.__version__); print(p.get_include()); print(p.get_library_dirs()[0])"
  OUTPUT_VARIABLE _pa_out ERROR_VARIABLE _pa_err RESULT_VARIABLE _pa_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _pa_rc EQUAL 0)
  message(WARNING "FERRY_WITH_PARQUET: '${FERRY_PYARROW_PYTHON}' does not import pyarrow; Parquet input is not "
    "built (tools/pyarrow/install.sh, run by scripts/setup.sh, installs it)")
  set(FERRY_WITH_PARQUET OFF)
  return()
endif()
string(REPLACE "\n" ";" _pa_lines "${_pa_out}")
list(GET _pa_lines 0 _pa_version)
list(GET _pa_lines 1 _pa_include)
list(GET _pa_lines 2 _pa_libdir)
if(NOT _pa_version VERSION_EQUAL FERRY_PYARROW_VERSION)
  message(WARNING "FERRY_WITH_PARQUET: pyarrow ${_pa_version} found, ${FERRY_PYARROW_VERSION} expected; "
    "Parquet input is not built")
  set(FERRY_WITH_PARQUET OFF)
  return()
endif()
# The wheel ships versioned sonames only (libarrow.so.2600), no libarrow.so links.
file(GLOB _pa_arrow "${_pa_libdir}/libarrow.so.[0-9]*")
file(GLOB _pa_parquet "${_pa_libdir}/libparquet.so.[0-9]*")
list(FILTER _pa_arrow EXCLUDE REGEX "\\.so\\.[0-9]+\\.")
list(FILTER _pa_parquet EXCLUDE REGEX "\\.so\\.[0-9]+\\.")
if(NOT _pa_arrow OR NOT _pa_parquet OR NOT EXISTS "${_pa_include}/parquet/arrow/reader.h")
  message(WARNING "FERRY_WITH_PARQUET: pyarrow in '${_pa_libdir}' lacks libarrow/libparquet or its headers; "
    "Parquet input is not built")
  set(FERRY_WITH_PARQUET OFF)
  return()
endif()
add_library(ferry::parquet INTERFACE IMPORTED)
target_include_directories(ferry::parquet SYSTEM INTERFACE "${_pa_include}")
target_link_libraries(ferry::parquet INTERFACE ${_pa_parquet} ${_pa_arrow} "-Wl,-rpath,${_pa_libdir}")
# For targets that are installed (src/cli: `cmake --install`, which replaces the build
# RPATH with INSTALL_RPATH): the wheel's libraries stay where install.sh put them.
set(FERRY_PYARROW_LIBDIR "${_pa_libdir}")
message(STATUS "Parquet: pyarrow ${_pa_version} (${_pa_libdir})")
