# Finds the python3 that imports Debian's python3-torch and python3-sentencepiece. Another python3
# may come first on PATH (pyenv, venvs), so candidates are tried in order and the first one that
# imports the modules wins. Tests that need torch are registered only with such an interpreter.
set(TTT_PYTHON "" CACHE FILEPATH "python3 interpreter that imports torch and sentencepiece")
if(NOT TTT_PYTHON)
  find_program(_ttt_path_python NAMES python3)
  foreach(_cand /usr/bin/python3 ${_ttt_path_python})
    if(EXISTS ${_cand})
      execute_process(COMMAND ${_cand} -c "import torch, sentencepiece, numpy"
                      RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
      if(_rc EQUAL 0)
        set(TTT_PYTHON ${_cand} CACHE FILEPATH "" FORCE)
        break()
      endif()
    endif()
  endforeach()
endif()
if(TTT_PYTHON)
  message(STATUS "ttt: python with torch + sentencepiece: ${TTT_PYTHON}")
else()
  find_program(TTT_ANY_PYTHON NAMES python3 REQUIRED)
  message(STATUS "ttt: no python3 imports torch+sentencepiece (run scripts/setup.sh); oracle tests are not built")
endif()
