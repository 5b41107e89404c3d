# typed_chan.cmake - compile-time checks of CHAN_DEFINE (include/gort/typed_chan.h).
#
# API.md: sending or receiving through a CHAN_DEFINE'd channel with a value
# or pointer of an incompatible type fails to compile with gcc 12+ and
# clang 14+ at default flags; well-typed uses (with C's usual arithmetic
# conversions) compile without warnings.
#
# For every compiler found (the project's, plus gcc and clang if installed):
#   typed_chan_<cc>_good         tests/compile_fail/good.c compiles with
#                                -Wall -Wextra -Wconversion -Werror, at -O2
#                                and as -std=c11;
#   typed_chan_<cc>_<bad>        each tests/compile_fail/bad_*.c fails to
#                                compile at default flags with an error;
#   typed_chan_<cc>_<bad>_control  the same file with its one mistyped line
#                                replaced (-DGORT_CF_CONTROL) compiles with
#                                -Werror, so the failure above is that line.
# The compilers run at test time (ctest), not at configure time, so a
# regression shows up as a failing test rather than a configure message.

set(_tc_dir ${PROJECT_SOURCE_DIR}/tests/compile_fail)
set(_tc_inc -I${PROJECT_SOURCE_DIR}/include)
file(GLOB _tc_bad CONFIGURE_DEPENDS ${_tc_dir}/bad_*.c)

set(_tc_compilers "cc=${CMAKE_C_COMPILER}")
get_filename_component(_tc_seen ${CMAKE_C_COMPILER} REALPATH)
foreach(_tc_name gcc clang)
  find_program(GORT_TC_${_tc_name} NAMES ${_tc_name})
  if(GORT_TC_${_tc_name})
    get_filename_component(_tc_real ${GORT_TC_${_tc_name}} REALPATH)
    if(NOT _tc_real IN_LIST _tc_seen)
      list(APPEND _tc_seen ${_tc_real})
      list(APPEND _tc_compilers "${_tc_name}=${GORT_TC_${_tc_name}}")
    endif()
  endif()
endforeach()

foreach(_tc_pair ${_tc_compilers})
  string(REGEX REPLACE "=.*" "" _tc_cc_name ${_tc_pair})
  string(REGEX REPLACE "^[^=]*=" "" _tc_cc ${_tc_pair})

  add_test(NAME typed_chan_${_tc_cc_name}_good
    COMMAND ${_tc_cc} ${_tc_inc} -Wall -Wextra -Wconversion -Wsign-conversion
            -Wcast-qual -Wshadow -Werror -O2 -c ${_tc_dir}/good.c
            -o ${CMAKE_CURRENT_BINARY_DIR}/typed_chan_${_tc_cc_name}_good.o)
  add_test(NAME typed_chan_${_tc_cc_name}_good_c11
    COMMAND ${_tc_cc} ${_tc_inc} -std=c11 -Wall -Wextra -Werror -fsyntax-only
            ${_tc_dir}/good.c)
  set_tests_properties(typed_chan_${_tc_cc_name}_good typed_chan_${_tc_cc_name}_good_c11
    PROPERTIES LABELS "unit;compile" TIMEOUT 60)

  foreach(_tc_src ${_tc_bad})
    get_filename_component(_tc_base ${_tc_src} NAME_WE)
    set(_tc_test typed_chan_${_tc_cc_name}_${_tc_base})
    add_test(NAME ${_tc_test}
      COMMAND ${_tc_cc} ${_tc_inc} -fsyntax-only ${_tc_src})
    # Pass only on a compiler error (an exit status alone could also mean
    # a missing header or a crash; a warning would not match).
    set_tests_properties(${_tc_test} PROPERTIES
      PASS_REGULAR_EXPRESSION "error:"
      FAIL_REGULAR_EXPRESSION "No such file|internal compiler error"
      LABELS "unit;compile" TIMEOUT 60)
    add_test(NAME ${_tc_test}_control
      COMMAND ${_tc_cc} ${_tc_inc} -DGORT_CF_CONTROL -Wall -Wextra -Werror
              -fsyntax-only ${_tc_src})
    set_tests_properties(${_tc_test}_control PROPERTIES
      LABELS "unit;compile" TIMEOUT 60)
  endforeach()
endforeach()
