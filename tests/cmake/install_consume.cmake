# install_consume.cmake - the installed library is usable by an outside
# project, both ways the README promises.
#
# Included by tests/CMakeLists.txt, it defines three tests (label install);
# run with `cmake -P`, it performs one step (-DSTEP=...):
#
#   install_consume_install    `cmake --install <build> --prefix <tmp>`
#                              (fixture setup for the two below);
#   install_consume_cmake      configures and builds tests/install_consume
#                              with find_package(gort) / gort::gort against
#                              <tmp> only (CMAKE_PREFIX_PATH), runs it;
#   install_consume_pkgconfig  compiles the same main.c with the flags of
#                              `pkg-config --cflags --libs libgo-rt`
#                              (PKG_CONFIG_PATH=<tmp>/<libdir>/pkgconfig),
#                              checks they point into <tmp>, runs it.
# Both programs run with LD_LIBRARY_PATH=<tmp>/<libdir> and must print the
# expected line.

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.18)
  set(_prefix ${WORK}/prefix)
  set(_libdir ${_prefix}/${LIBDIR})
  set(_expect "gort consumer: sum of squares 1..100 = 338350, main is goroutine 0")
  string(REPLACE "|" ";" _emulator "${EMULATOR}")

  function(run_checked what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n--- stdout:\n${out}\n--- stderr:\n${err}")
    endif()
    set(run_out "${out}" PARENT_SCOPE)
  endfunction()

  # Runs an installed-against program, from the temporary prefix only.
  function(run_consumer exe)
    run_checked("running ${exe}" ${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${_libdir}"
      ${_emulator} ${exe})
    if(NOT run_out MATCHES "${_expect}")
      message(FATAL_ERROR "${exe} printed:\n${run_out}\nwant:\n${_expect}")
    endif()
    message(STATUS "${exe}: ${run_out}")
  endfunction()

  if(STEP STREQUAL "install")
    file(REMOVE_RECURSE ${WORK})
    set(_cfg "")
    if(CONFIG)
      set(_cfg --config ${CONFIG})
    endif()
    run_checked("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${_prefix} ${_cfg})
    foreach(_f include/gort.h include/gort/typed_chan.h ${LIBDIR}/libgo-rt.so ${LIBDIR}/libgo-rt.a
               ${LIBDIR}/cmake/gort/gortConfig.cmake ${LIBDIR}/pkgconfig/libgo-rt.pc)
      if(NOT EXISTS ${_prefix}/${_f})
        message(FATAL_ERROR "not installed: ${_prefix}/${_f}")
      endif()
    endforeach()

  elseif(STEP STREQUAL "cmake")
    set(_b ${WORK}/cmake-build)
    file(REMOVE_RECURSE ${_b})
    set(_args -S ${SOURCE_DIR} -B ${_b} -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${_prefix}
              -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release
              -DCMAKE_C_COMPILER=${C_COMPILER})
    if(TOOLCHAIN_FILE)
      list(APPEND _args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE})
    endif()
    run_checked("configuring the find_package(gort) consumer" ${CMAKE_COMMAND} ${_args})
    # It must have found the package in the temporary prefix, not elsewhere.
    file(STRINGS ${_b}/CMakeCache.txt _dir REGEX "^gort_DIR:")
    get_filename_component(_want ${_libdir}/cmake/gort REALPATH)
    string(REGEX REPLACE "^gort_DIR:[A-Z]+=" "" _dir "${_dir}")
    get_filename_component(_dir "${_dir}" REALPATH)
    if(NOT _dir STREQUAL _want)
      message(FATAL_ERROR "find_package(gort) used ${_dir}, not ${_want}")
    endif()
    run_checked("building the find_package(gort) consumer" ${CMAKE_COMMAND} --build ${_b})
    run_consumer(${_b}/consumer)

  elseif(STEP STREQUAL "pkgconfig")
    set(_b ${WORK}/pkgconfig-build)
    file(REMOVE_RECURSE ${_b})
    file(MAKE_DIRECTORY ${_b})
    set(ENV{PKG_CONFIG_PATH} ${_libdir}/pkgconfig)
    set(ENV{PKG_CONFIG_LIBDIR} ${_libdir}/pkgconfig) # nothing from the system
    run_checked("pkg-config --cflags --libs libgo-rt" ${PKG_CONFIG} --cflags --libs libgo-rt)
    string(STRIP "${run_out}" _flags)
    separate_arguments(_flags UNIX_COMMAND "${_flags}")
    # The flags must lead to this install, wherever it was installed.
    run_checked("pkg-config --variable=includedir" ${PKG_CONFIG} --variable=includedir libgo-rt)
    string(STRIP "${run_out}" _incdir)
    if(NOT EXISTS ${_incdir}/gort.h)
      message(FATAL_ERROR "pkg-config's includedir '${_incdir}' has no gort.h: libgo-rt.pc does "
        "not follow an install to another prefix (cmake --install --prefix ${_prefix}); "
        "flags were: ${_flags}")
    endif()
    get_filename_component(_incdir ${_incdir} REALPATH)
    get_filename_component(_want ${_prefix}/include REALPATH)
    if(NOT _incdir STREQUAL _want)
      message(FATAL_ERROR "pkg-config points at ${_incdir}, not the install in ${_want}")
    endif()
    run_checked("compiling with pkg-config's flags" ${C_COMPILER} -std=c11 -o ${_b}/consumer
      ${SOURCE_DIR}/main.c ${_flags})
    run_consumer(${_b}/consumer)

  else()
    message(FATAL_ERROR "unknown STEP '${STEP}'")
  endif()
  return()
endif()

# ---- included from tests/CMakeLists.txt: define the tests -----------------
set(_ic_work ${CMAKE_CURRENT_BINARY_DIR}/install_consume)
string(REPLACE ";" "|" _ic_emulator "${CMAKE_CROSSCOMPILING_EMULATOR}")
set(_ic_common -DWORK=${_ic_work} -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
               -DSOURCE_DIR=${PROJECT_SOURCE_DIR}/tests/install_consume
               -DC_COMPILER=${CMAKE_C_COMPILER} "-DEMULATOR=${_ic_emulator}")

add_test(NAME install_consume_install
  COMMAND ${CMAKE_COMMAND} -DSTEP=install -DBUILD_DIR=${PROJECT_BINARY_DIR} -DCONFIG=$<CONFIG>
          ${_ic_common} -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(install_consume_install PROPERTIES
  LABELS install TIMEOUT 120 FIXTURES_SETUP gort_installed RESOURCE_LOCK gort_install_prefix)

add_test(NAME install_consume_cmake
  COMMAND ${CMAKE_COMMAND} -DSTEP=cmake "-DGENERATOR=${CMAKE_GENERATOR}"
          "-DTOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}" ${_ic_common} -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(install_consume_cmake PROPERTIES
  LABELS install TIMEOUT 300 FIXTURES_REQUIRED gort_installed RESOURCE_LOCK gort_install_prefix)

find_program(GORT_PKG_CONFIG NAMES pkg-config pkgconf)
if(GORT_PKG_CONFIG)
  add_test(NAME install_consume_pkgconfig
    COMMAND ${CMAKE_COMMAND} -DSTEP=pkgconfig -DPKG_CONFIG=${GORT_PKG_CONFIG}
            ${_ic_common} -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(install_consume_pkgconfig PROPERTIES
    LABELS install TIMEOUT 120 FIXTURES_REQUIRED gort_installed RESOURCE_LOCK gort_install_prefix)
else()
  message(WARNING "pkg-config not found: install_consume_pkgconfig is not defined")
endif()
