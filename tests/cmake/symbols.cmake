# symbols.cmake - the libraries export the public API and nothing else.
#
# Included by tests/CMakeLists.txt, it defines the tests; run with
# `cmake -P` (which is what the tests do), it performs one check:
#
#   symbols_shared_public_only  every symbol `nm -D --defined-only` lists for
#                               libgo-rt.so is a public API name (go_*,
#                               chan_*, wg_*);
#   symbols_shared_complete     every function that include/ declares with
#                               GORT_API is exported by libgo-rt.so (a
#                               missing one is a link error for users);
#   symbols_static_prefixed     every global symbol defined in libgo-rt.a is
#                               public or gort__-prefixed, so that static
#                               linking cannot clash with the program's
#                               own names (STYLE.md: names).
# Each check also makes sure it looked at something (go_spawn is there),
# so a broken nm cannot pass it.

if(CMAKE_SCRIPT_MODE_FILE)
  # ---- script mode: -DMODE=... -DNM=... -DLIB=... [-DINCLUDE_DIR=...] ----
  cmake_minimum_required(VERSION 3.18)
  set(_public "^(go|chan|wg)_[A-Za-z0-9_]+$")
  if(MODE STREQUAL "static_prefixed")
    execute_process(COMMAND ${NM} -g --defined-only ${LIB}
      OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
  else()
    execute_process(COMMAND ${NM} -D --defined-only ${LIB}
      OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
  endif()
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${LIB} (${_rc}): ${_err}")
  endif()

  # "address type name[@version]" lines; archive member headers and blank
  # lines have fewer fields.
  string(REPLACE "\n" ";" _lines "${_out}")
  set(_names "")
  foreach(_l IN LISTS _lines)
    if(_l MATCHES "^[0-9a-fA-F]+ +([A-Za-z]) +([^ @]+)")
      list(APPEND _names ${CMAKE_MATCH_2})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES _names)
  list(LENGTH _names _n)
  if(NOT "go_spawn" IN_LIST _names)
    message(FATAL_ERROR "go_spawn not among the ${_n} symbols nm found in ${LIB}:\n${_out}")
  endif()

  set(_bad "")
  if(MODE STREQUAL "shared_public_only")
    foreach(_s IN LISTS _names)
      # __odr_asan.NAME: ASan's one-definition-rule marker for an exported
      # global (go_preempt_pending_), made by the asan build only.
      if(NOT _s MATCHES "${_public}" AND NOT _s MATCHES "^__odr_asan[._](go|chan|wg)_")
        list(APPEND _bad ${_s})
      endif()
    endforeach()
    set(_what "exported symbols that are not public API names")
  elseif(MODE STREQUAL "static_prefixed")
    foreach(_s IN LISTS _names)
      # __odr_asan.*: ASan's one-definition-rule markers for globals.
      if(NOT _s MATCHES "${_public}" AND NOT _s MATCHES "^gort__" AND NOT _s MATCHES "^__odr_asan")
        list(APPEND _bad ${_s})
      endif()
    endforeach()
    set(_what "global symbols in the static library neither public nor gort__-prefixed")
  elseif(MODE STREQUAL "shared_complete")
    file(GLOB_RECURSE _headers ${INCLUDE_DIR}/*.h)
    foreach(_h IN LISTS _headers)
      file(STRINGS ${_h} _decls REGEX "^[ \t]*GORT_API[ \t]")
      foreach(_d IN LISTS _decls)
        if(_d MATCHES "([A-Za-z_][A-Za-z0-9_]*)[ \t]*\\(")
          if(NOT CMAKE_MATCH_1 IN_LIST _names)
            list(APPEND _bad ${CMAKE_MATCH_1})
          endif()
        endif()
      endforeach()
    endforeach()
    set(_what "functions declared GORT_API but not exported")
  else()
    message(FATAL_ERROR "unknown MODE '${MODE}'")
  endif()

  if(_bad)
    list(JOIN _bad "\n  " _list)
    message(FATAL_ERROR "${LIB}: ${_what}:\n  ${_list}")
  endif()
  message(STATUS "${LIB}: ${_n} symbols checked (${MODE})")
  return()
endif()

# ---- included from tests/CMakeLists.txt: define the tests -----------------
if(NOT CMAKE_NM)
  message(WARNING "no nm found: the symbol tests are not defined")
  return()
endif()

add_test(NAME symbols_shared_public_only
  COMMAND ${CMAKE_COMMAND} -DMODE=shared_public_only -DNM=${CMAKE_NM}
          -DLIB=$<TARGET_FILE:gort_shared> -P ${CMAKE_CURRENT_LIST_FILE})
add_test(NAME symbols_shared_complete
  COMMAND ${CMAKE_COMMAND} -DMODE=shared_complete -DNM=${CMAKE_NM}
          -DLIB=$<TARGET_FILE:gort_shared> -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
          -P ${CMAKE_CURRENT_LIST_FILE})
add_test(NAME symbols_static_prefixed
  COMMAND ${CMAKE_COMMAND} -DMODE=static_prefixed -DNM=${CMAKE_NM}
          -DLIB=$<TARGET_FILE:gort_static> -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(symbols_shared_public_only symbols_shared_complete symbols_static_prefixed
  PROPERTIES LABELS unit TIMEOUT 60)
