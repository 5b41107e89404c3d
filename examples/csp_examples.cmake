# csp_examples.cmake - ctest runs of the CSP examples (issue 3), label
# "example", each with its output checked.
#
# Included by examples/CMakeLists.txt when the tests are built.  ctest's
# PASS_REGULAR_EXPRESSION ignores the exit status, so every example runs
# through this same file in script mode (cmake -P), which runs it and
# prints "example exited with status ..." when it does not exit with 0
# (a failed self-check, an abort, a signal); FAIL_REGULAR_EXPRESSION
# catches that line, Go-style panic messages, and what must not appear.
#
# A PASS_REGULAR_EXPRESSION list passes on any one of its expressions, so
# each test uses a single expression; "." matches newlines in CMake's
# regular expressions, so ".*" spans lines.

if(CMAKE_SCRIPT_MODE_FILE)
  # ---- script mode: cmake -DGORT_EX_EXE=... [-DGORT_EX_ARGS=a;b] -P this
  execute_process(COMMAND ${GORT_EX_EXE} ${GORT_EX_ARGS}
                  RESULT_VARIABLE rc TIMEOUT 55)
  if(NOT rc STREQUAL "0")
    message("example exited with status ${rc}")
  endif()
  return()
endif()

set(GORT_CSP_EXAMPLES_RUNNER ${CMAKE_CURRENT_LIST_FILE})

# gort_csp_example(NAME target PASS regex [FAIL regex] [ARGS ...] [ENV ...])
function(gort_csp_example name target)
  cmake_parse_arguments(PARSE_ARGV 2 ex "" "PASS;FAIL" "ARGS;ENV")
  set(fail "example exited with status|panic: |fatal error: ")
  if(ex_FAIL)
    set(fail "${fail}|${ex_FAIL}")
  endif()
  string(REPLACE ";" "\\;" args "${ex_ARGS}")
  add_test(NAME example_${name}
    COMMAND ${CMAKE_COMMAND} -DGORT_EX_EXE=$<TARGET_FILE:${target}>
            "-DGORT_EX_ARGS=${args}" -P ${GORT_CSP_EXAMPLES_RUNNER})
  set_tests_properties(example_${name} PROPERTIES
    LABELS example TIMEOUT 60
    PASS_REGULAR_EXPRESSION "${ex_PASS}"
    FAIL_REGULAR_EXPRESSION "${fail}")
  if(ex_ENV)
    set_tests_properties(example_${name} PROPERTIES ENVIRONMENT "${ex_ENV}")
  endif()
endfunction()

# Go's daisy chain: the first 10 primes, in order, one per line; then the
# 100th prime (541) with a chain of 101 goroutines.
gort_csp_example(prime_sieve prime_sieve
  PASS "the first 10 primes:\n2\n3\n5\n7\n11\n13\n17\n19\n23\n29\ndone: 10 primes, 11 goroutines in the chain")
gort_csp_example(prime_sieve_100 prime_sieve ARGS 100
  PASS "\n523\n541\ndone: 100 primes, 101 goroutines in the chain")

# One channel, four receivers: every job done exactly once, sum 1..24.
gort_csp_example(fan_out fan_out
  PASS "worker 1 handled +[0-9]+ jobs\nworker 2 handled +[0-9]+ jobs\nworker 3 handled +[0-9]+ jobs\nworker 4 handled +[0-9]+ jobs\nfan_out: 24 jobs over 4 workers, sum 300, every job done once: yes"
  FAIL "done once: NO")

# Three channels merged by a select: all 12 messages, each producer's in order.
gort_csp_example(fan_in fan_in
  PASS "ann says 0\n.*ann says 3\n.*fan_in: 12 messages from 3 producers, each producer's in order: yes"
  FAIL "in order: NO")

# parse -> square -> main: the squares in input order; the out-of-range
# input is rejected, so there are 12 and they sum to 650.  (With errno read
# through an address cached across a park, it got through as LONG_MAX,
# whose square is 1 modulo 2^64: 13 squares, sum 651.)
set(_csp_pipeline "")
foreach(n 1 4 9 16 25 36 49 64 81 100 121 144)
  string(APPEND _csp_pipeline "main: received ${n}\n.*")
endforeach()
gort_csp_example(pipeline pipeline
  PASS "${_csp_pipeline}pipeline: 12 squares, sum 650")

# Three workers, a WaitGroup, results closed after wg_wait: 1² + ... + 12².
gort_csp_example(worker_pool worker_pool
  PASS "worker [1-3]: job 12 -> 144\n.*worker_pool: 12 results from 3 workers, sum of squares 1..12 = 650")

# A timeout that fires, a reply that beats its timeout, two default cases,
# and no goroutine left behind.
gort_csp_example(select_timeout select_timeout
  PASS "timeout: no reply within 100 ms\nreceived \"result 2\"\nno message ready: took the default case\nno receiver ready: message not sent\ngoroutines still running: 0")

# main returns first: the goroutine's line never appears ...
gort_csp_example(never_runs never_runs
  PASS "main: 1 goroutine still running; returning anyway"
  FAIL "hello from the goroutine")
# ... unless main waits for it.
gort_csp_example(never_runs_fixed never_runs_fixed
  PASS "hello from the goroutine\nmain: the goroutine has finished; returning")

# The same CPU-bound program on one and two workers: the work and its
# result are the same (148933 primes below 2,000,000); the timings are
# printed, not checked, since the machine may be busy.
set(_csp_cvp_tail "primes below 2000000: 148933\nwall [0-9.]+ s, CPU [0-9.]+ s, CPU/wall [0-9.]+, distinct threads: [0-9]+")
gort_csp_example(concurrency_vs_parallelism_1 concurrency_vs_parallelism
  ENV GORT_MAXPROCS=1
  PASS "GORT_MAXPROCS=1: 4 goroutines count the primes below 2000000\n.*${_csp_cvp_tail}")
gort_csp_example(concurrency_vs_parallelism_2 concurrency_vs_parallelism
  ENV GORT_MAXPROCS=2
  PASS "GORT_MAXPROCS=2: 4 goroutines count the primes below 2000000\n.*${_csp_cvp_tail}")
# go_lock_os_thread: each goroutine stays on the thread it started on.
set(_csp_locked "")
foreach(i 1 2 3 4)
  string(APPEND _csp_locked "goroutine ${i}: [^\n]*, ran on 1 thread, moved 0 times\n")
endforeach()
gort_csp_example(concurrency_vs_parallelism_locked concurrency_vs_parallelism
  ARGS --locked ENV GORT_MAXPROCS=1
  PASS "each locked to its OS thread\n${_csp_locked}${_csp_cvp_tail}")
