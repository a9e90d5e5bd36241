# Included by each compiler directory (dialect/, passes/, frontend/, tools/tttc, tools/ttt-opt) and
# only there: LLVM's compile flags (-fno-rtti, its definitions) are directory-scoped, so they never
# reach the runtime or nvcc.
if(NOT MLIR_FOUND)
  find_package(MLIR REQUIRED CONFIG HINTS /usr/lib/llvm-19/lib/cmake/mlir)
endif()
list(APPEND CMAKE_MODULE_PATH ${MLIR_CMAKE_DIR} ${LLVM_CMAKE_DIR})
# Debian's MLIR 19: without this, TableGen reruns on every build.
if(POLICY CMP0116)
  cmake_policy(SET CMP0116 OLD)
endif()
include(TableGen)
include(AddLLVM)
include(AddMLIR)
include(HandleLLVMOptions)
include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
include_directories(${CMAKE_SOURCE_DIR}/dialect/include ${CMAKE_BINARY_DIR}/dialect/include
                    ${CMAKE_SOURCE_DIR}/passes/include ${CMAKE_BINARY_DIR}/passes/include
                    ${CMAKE_SOURCE_DIR}/frontend/include ${TTT_GENERATED_INCLUDE_DIR})
separate_arguments(_llvm_defs NATIVE_COMMAND ${LLVM_DEFINITIONS})
add_definitions(${_llvm_defs})
# Debian links MLIR and LLVM as the shared libMLIR.so / libLLVM.so; never mix in static archives.
set(TTT_MLIR_LIBS MLIR LLVM)
if(NOT LLVM_VERSION_MAJOR EQUAL 19)
  message(FATAL_ERROR "tttc needs MLIR/LLVM 19 (found ${LLVM_PACKAGE_VERSION}); install libmlir-19-dev")
endif()
