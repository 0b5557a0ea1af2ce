# ferry_test(NAME SOURCES... LIBS ...): a GoogleTest binary registered with ctest.
function(ferry_test name)
  if(NOT FERRY_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30)
endfunction()

# ferry_proto(TARGET NAME PROTOS src-relative .proto paths... [GRPC] [LIBS deps...])
# Compiles protos with import paths relative to src/ (so "repository/model_config.proto"
# is the name every importer uses) into build/gen/, as a static library.
function(ferry_proto)
  cmake_parse_arguments(ARG "GRPC" "TARGET" "PROTOS;LIBS" ${ARGN})
  set(gen ${CMAKE_BINARY_DIR}/gen)
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(dir ${proto} DIRECTORY)
    get_filename_component(stem ${proto} NAME_WE)
    set(outs ${gen}/${dir}/${stem}.pb.cc ${gen}/${dir}/${stem}.pb.h)
    set(cmd ${Protobuf_PROTOC_EXECUTABLE} -I ${PROJECT_SOURCE_DIR}/src --cpp_out=${gen})
    if(ARG_GRPC)
      list(APPEND outs ${gen}/${dir}/${stem}.grpc.pb.cc ${gen}/${dir}/${stem}.grpc.pb.h)
      list(APPEND cmd --grpc_out=${gen} --plugin=protoc-gen-grpc=${FERRY_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
      COMMAND ${cmd} ${proto}
      DEPENDS ${PROJECT_SOURCE_DIR}/src/${proto}
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/src
      COMMENT "protoc ${proto}")
    list(FILTER outs INCLUDE REGEX "\\.cc$")
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${ARG_TARGET} STATIC ${srcs})
  target_include_directories(${ARG_TARGET} PUBLIC ${gen})
  target_link_libraries(${ARG_TARGET} PUBLIC protobuf::libprotobuf ${ARG_LIBS})
  # Generated code is not ours to warn about.
  target_compile_options(${ARG_TARGET} PRIVATE -w)
endfunction()

# ferry_runtime_module(BACKEND name OBJECTS objlib LIBS framework libs...
#                      VERSION v PROVIDED_BY text)
# Builds the runtime in OBJECTS (an OBJECT library whose sources include the module's
# entry point, FERRY_RUNTIME_MODULE) as build/runtimes/libferry_runtime_<name>.so, linked
# to the framework LIBS only: ferry's own code comes from the executable, which exports
# it, so a module holds no second copy of ferry's state (protobuf descriptors, the log
# level). Records what the binary must know of the module without loading it in the
# global property FERRY_RUNTIME_MODULES (cli/ turns it into compile definitions).
function(ferry_runtime_module)
  cmake_parse_arguments(ARG "" "BACKEND;OBJECTS;VERSION;PROVIDED_BY" "LIBS" ${ARGN})
  set(target ferry_runtime_module_${ARG_BACKEND})
  add_library(${target} MODULE $<TARGET_OBJECTS:${ARG_OBJECTS}>)
  target_link_libraries(${target} PRIVATE ${ARG_LIBS})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ferry_runtime_${ARG_BACKEND}
    LINKER_LANGUAGE CXX
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/runtimes)
  set_target_properties(${ARG_OBJECTS} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  set_property(GLOBAL APPEND PROPERTY FERRY_RUNTIME_MODULES ${target})
  string(TOUPPER ${ARG_BACKEND} up)
  set_property(GLOBAL PROPERTY FERRY_MODULE_${up}_VERSION "${ARG_VERSION}")
  set_property(GLOBAL PROPERTY FERRY_MODULE_${up}_PROVIDED_BY "${ARG_PROVIDED_BY}")
endfunction()

# ferry_provided_by(OUT library fallback): "the Debian package <pkg>" when dpkg owns
# `library` (symlinks resolved), else `fallback`. For messages naming what to install.
function(ferry_provided_by out library fallback)
  set(${out} "${fallback}" PARENT_SCOPE)
  find_program(DPKG_QUERY dpkg-query)
  if(NOT DPKG_QUERY)
    return()
  endif()
  get_filename_component(real ${library} REALPATH)
  execute_process(COMMAND ${DPKG_QUERY} -S ${real} OUTPUT_VARIABLE owner RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0)
    string(REGEX REPLACE ":.*" "" owner "${owner}")
    string(STRIP "${owner}" owner)
    set(${out} "the Debian package ${owner}" PARENT_SCOPE)
  endif()
endfunction()

# ferry_header_version(OUT header PREFIX): "M.m.p" from the header's
# "#define <PREFIX>MAJOR M", "...MINOR m", "...PATCH p" lines.
function(ferry_header_version out header prefix)
  file(STRINGS ${header} defs REGEX "#define ${prefix}(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3" version "${defs}")
  set(${out} "${version}" PARENT_SCOPE)
endfunction()
