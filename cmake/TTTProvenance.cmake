# The project version and the git commit of the source tree, for `--version` and for the
# provenance table of every plan. Version.h is rewritten at every build (only when it changes), so
# it follows new commits without re-running CMake. Nothing time- or path-dependent goes in, so
# plans stay reproducible.
set(TTT_VERSION_HEADER ${CMAKE_BINARY_DIR}/include/ttt/Version.h)
execute_process(COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${TTT_VERSION_HEADER}
                        -DVERSION=${PROJECT_VERSION} -P ${CMAKE_CURRENT_LIST_DIR}/WriteVersion.cmake)
add_custom_target(ttt_version
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${TTT_VERSION_HEADER}
          -DVERSION=${PROJECT_VERSION} -P ${CMAKE_CURRENT_LIST_DIR}/WriteVersion.cmake
  BYPRODUCTS ${TTT_VERSION_HEADER}
  COMMENT "git provenance -> Version.h")
