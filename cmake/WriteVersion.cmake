# Run at build time (cmake -P): writes Version.h from the current git commit, touching the file
# only when its content changes, so --version and plan provenance never go stale.
set(sha "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE out OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND out)
    set(sha "${out}")
    execute_process(COMMAND ${GIT_EXECUTABLE} diff --quiet HEAD WORKING_DIRECTORY ${SRC}
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      set(sha "${sha}-dirty")
    endif()
  endif()
endif()
set(content "// Build provenance, written at build time by cmake/WriteVersion.cmake.\n#pragma once\n\n#define TTT_VERSION_STRING \"${VERSION}\"\n#define TTT_GIT_SHA \"${sha}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${content}")
  file(WRITE ${OUT} "${content}")
endif()
