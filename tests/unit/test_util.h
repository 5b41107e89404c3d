/*
 * test_util.h - the harness the unit tests share (test_util.c): joining
 * goroutines from the test thread by polling, recording failures on
 * goroutines (CHECK) to assert on later, go fn(arg) counted in a
 * WaitGroup, and two ways of running a scenario in a child process: a
 * fork that runs a function (run_child) and a re-execution of the test
 * binary that runs a named scenario and must panic (expect_panic).
 *
 * Not a test of its own: tests/CMakeLists.txt links it into each one.
 * Everything here runs on the test's own thread unless it says otherwise;
 * never assert on a goroutine's stack (cmocka longjmps).
 */
#ifndef GORT_TEST_UTIL_H
#define GORT_TEST_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gort.h>

/* Under ThreadSanitizer every live goroutine is a TSan fiber, and TSan
   allows 8128 threads and fibers at once (and runs ~10x slower): the
   scale tests run scaled down there; everything else is the same. */
#if defined(GORT_TSAN)
#define TSAN_OR(small, big) (small)
#else
#define TSAN_OR(small, big) (big)
#endif

/* ---- joining from the test thread ---------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t mono_ns(void);

/* Polls (every millisecond) until *v >= target; false after timeout_ms. */
bool wait_for(_Atomic long *v, long target, int timeout_ms);

/* Polls (every 200us, acquire) until *v >= target; false after timeout_ns
   nanoseconds of go_now(). */
bool wait_for_int(_Atomic int *v, int target, int64_t timeout_ns);

/* Polls until at most n goroutines are live; false after timeout_ms. */
bool wait_goroutines(size_t n, int timeout_ms);

/* The kernel's id of the calling thread: a system call, so that no
   compiler can reuse a value computed before a switch. */
long thread_id(void);

/* ---- failures recorded off the test thread ------------------------------ */

/* CHECK(cond) on a goroutine or a plain thread records the first failure
   (and counts all); check_failures, a cmocka teardown, fails the test if
   there was any.  reset_failures is the matching setup. */
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond))                                                         \
            note_failure(__FILE__, __LINE__, #cond);                         \
    } while (0)

void note_failure(const char *file, int line, const char *what);
int recorded_failures(void);
int reset_failures(void **state);
int check_failures(void **state);

/* ---- go fn(arg) ------------------------------------------------------------ */

/* go fn(arg), counted in wg (may be NULL). */
void spawn(wg_t *wg, void (*fn)(void *), void *arg);

/* The same on a plain thread (detached). */
void spawn_thread(wg_t *wg, void (*fn)(void *), void *arg);

/* ---- a function in a forked child ----------------------------------------
 *
 * The runtime starts on first use and cannot be restarted, and a crash
 * (panic, overflow) ends the process, so such scenarios run in a forked
 * child, with the environment they need set before the runtime starts,
 * stdout and stderr captured.  The child is forked, not re-executed (a
 * re-exec would need binfmt_misc under qemu-user): so the parent must not
 * have started the runtime yet, which run_child checks (a forked child of
 * a process with worker threads would have a runtime without workers).
 * Child scenarios therefore come first in each test list, and main sets
 * base_threads = process_threads() before it runs any test.
 *
 * Some emulators (qemu-user 7.2 with a dynamically linked guest) hang a
 * forked child forever; fork_works() probes that once, and the tests that
 * need a child skip where it fails.
 */
struct child {
    int status;      /* from waitpid */
    bool timed_out;  /* killed after the timeout */
    size_t nout, nerr;
    char out[1 << 16];
    char err[1 << 16];
};

/* Threads of this process now (from /proc/self/status), or -1. */
int process_threads(void);

extern int base_threads; /* threads at start, set in main */

bool fork_works(void);

#define REQUIRE_FORK()      \
    do {                    \
        if (!fork_works())  \
            skip();         \
    } while (0)

/*
 * Runs fn() in a forked child whose environment also has env[] ("NAME=VALUE",
 * or "NAME" to unset; NULL-terminated, may be NULL).  fn's return value is
 * the exit status.  The child is killed after timeout_s seconds.
 */
void run_child(int (*fn)(void), const char *const *env, int timeout_s, struct child *c);

/* Prints how the child ended and what it wrote, to stderr. */
void print_child(const char *what, const struct child *c);

/* The child was killed by signal sig (and did not time out). */
bool died_of(const struct child *c, int sig);

/* The child exited with code (and did not time out). */
bool exited_with(const struct child *c, int code);

/* Value of "key=<number>" in the child's stdout, or -1. */
long long child_value(const struct child *c, const char *key);

/* ---- a named scenario in a fresh copy of this binary ---------------------
 *
 * main runs run_scenario(argv[2]) when called as "<binary> --child NAME":
 * the copy has a runtime of its own, whatever the parent has started.
 */

/* Runs scenario `name` in a fresh copy of this binary; returns its stderr
   (malloc'd) and stores the signal that ended it (0 if it exited). */
char *exec_scenario(const char *name, int *sig);

/* Fails the test unless scenario ends in SIGABRT with `message` and a
   goroutine header on its stderr. */
void expect_panic(const char *scenario, const char *message);

#endif
