# Records the project version and the git commit of the source tree, for `--version` and for the
# provenance table of every plan. Nothing time- or path-dependent goes in, so plans stay reproducible.
find_package(Git QUIET)
set(TTT_GIT_SHA "unknown")
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                  OUTPUT_VARIABLE _sha OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0 AND _sha)
    set(TTT_GIT_SHA "${_sha}")
    execute_process(COMMAND ${GIT_EXECUTABLE} diff --quiet HEAD
                    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} RESULT_VARIABLE _dirty ERROR_QUIET)
    if(NOT _dirty EQUAL 0)
      set(TTT_GIT_SHA "${TTT_GIT_SHA}-dirty")
    endif()
  endif()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/Version.h.in ${CMAKE_BINARY_DIR}/include/ttt/Version.h @ONLY)
