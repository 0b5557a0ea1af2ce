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
