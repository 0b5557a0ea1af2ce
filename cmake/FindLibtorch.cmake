# Locates libtorch (torch/script.h; libtorch, libtorch_cpu, libc10) as Debian's
# libtorch-dev installs it. Not find_package(Torch CONFIG): Debian's TorchConfig pulls
# in Caffe2Config, which looks for gflags, glog, protobuf and MKL packages of its own
# and would tie ferry's configure step to them for three libraries and two include
# folders. LIBTORCH_ROOT (cache or environment) points at another install prefix (an
# unpacked libtorch archive has the same layout).
if(NOT LIBTORCH_ROOT AND DEFINED ENV{LIBTORCH_ROOT})
  set(LIBTORCH_ROOT $ENV{LIBTORCH_ROOT})
endif()
find_path(LIBTORCH_INCLUDE_DIR torch/script.h HINTS ${LIBTORCH_ROOT}/include)
find_path(LIBTORCH_API_INCLUDE_DIR torch/all.h
  HINTS ${LIBTORCH_ROOT}/include/torch/csrc/api/include ${LIBTORCH_INCLUDE_DIR}/torch/csrc/api/include)
foreach(lib torch torch_cpu c10)
  find_library(LIBTORCH_${lib}_LIBRARY ${lib} HINTS ${LIBTORCH_ROOT}/lib)
  if(NOT LIBTORCH_${lib}_LIBRARY)
    set(LIBTORCH_MISSING "lib${lib}")
  endif()
endforeach()
if(NOT LIBTORCH_INCLUDE_DIR OR NOT LIBTORCH_API_INCLUDE_DIR OR LIBTORCH_MISSING)
  message(FATAL_ERROR "libtorch not found: run scripts/setup.sh (installs libtorch-dev), "
                      "set LIBTORCH_ROOT, or -DFERRY_WITH_TORCH=OFF")
endif()
add_library(torch::libtorch INTERFACE IMPORTED)
# SYSTEM: torch's headers are not ours to warn about under -Wall -Wextra.
set_target_properties(torch::libtorch PROPERTIES
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${LIBTORCH_INCLUDE_DIR};${LIBTORCH_API_INCLUDE_DIR}"
  INTERFACE_INCLUDE_DIRECTORIES "${LIBTORCH_INCLUDE_DIR};${LIBTORCH_API_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${LIBTORCH_torch_LIBRARY};${LIBTORCH_torch_cpu_LIBRARY};${LIBTORCH_c10_LIBRARY}"
  # Debian builds libtorch with the C++11 ABI (TorchConfig's TORCH_CXX_FLAGS).
  INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1")
message(STATUS "libtorch: ${LIBTORCH_torch_LIBRARY}")
