# lit + FileCheck suite over the compiler and tools (test/dialect, test/passes, test/frontend,
# test/tools, test/e2e). One check-ttt target, wrapped in add_test so ctest runs it.
find_program(TTT_LIT lit.py PATHS /usr/lib/llvm-19/build/utils/lit NO_DEFAULT_PATH)
find_program(TTT_LIT lit)
find_program(TTT_FILECHECK FileCheck PATHS /usr/lib/llvm-19/bin NO_DEFAULT_PATH REQUIRED)
if(NOT TTT_LIT)
  message(FATAL_ERROR "lit not found: install llvm-19-tools (scripts/setup.sh)")
endif()
find_program(TTT_LIT_PYTHON NAMES python3 REQUIRED)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/lit.site.cfg.py.in
               ${CMAKE_CURRENT_BINARY_DIR}/lit.site.cfg.py @ONLY)
set(TTT_LIT_DEPS tttc ttt-opt ttt-run ttt-vjp-check)
add_custom_target(check-ttt
  COMMAND ${TTT_LIT_PYTHON} ${TTT_LIT} -sv ${CMAKE_CURRENT_BINARY_DIR}
  DEPENDS ${TTT_LIT_DEPS}
  USES_TERMINAL)
add_test(NAME lit COMMAND ${TTT_LIT_PYTHON} ${TTT_LIT} -sv ${CMAKE_CURRENT_BINARY_DIR})
