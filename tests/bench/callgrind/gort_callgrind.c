/*
 * gort_callgrind - the driver of the callgrind regression guard
 * (run-callgrind, README.md): it runs the measured regions that callgrind
 * counts, and nothing else is counted.
 *
 *   valgrind --tool=callgrind --collect-atstart=no gort_callgrind [scale]
 *
 * Regions, each closed by a dump named after it (CALLGRIND_DUMP_STATS_AT,
 * which also zeroes the counters for the next one):
 *   "switch N"     N resumes of a context made with gort__ctx_make, arch/
 *                  alone (no scheduler): 2N calls of gort__ctx_switch;
 *   "switch0 N"    the same loop with the switch replaced by a call to an
 *                  empty function, for run-callgrind to subtract;
 *   "spawn N"      spawn+join of N goroutines through <gort.h> with one P,
 *                  from a goroutine, in batches of SPAWN_BATCH (go_spawn
 *                  SPAWN_BATCH times, then wg_wait).
 *
 * Why collection is toggled per thread.  Callgrind keeps the "collect"
 * state per thread, and --collect-atstart=no starts every thread with it
 * off.  CALLGRIND_TOGGLE_COLLECT therefore counts only the thread that runs
 * the region: the monitor thread (sysmon), which wakes on wall-clock time
 * and so runs a different number of times in every run, is never counted.
 * That holds only while the whole region stays on one thread.  With one P
 * it does, unless the monitor hands the P to another thread because a
 * goroutine ran for more than its stuck threshold (10 ms of wall time,
 * which valgrind makes easier to reach); the driver checks that every
 * goroutine of the region ran on the region's thread and exits with
 * EXIT_DISTURBED if not, so that the script runs it again.
 *
 * The batches are small for the same reason (each wg_wait enters the
 * scheduler), and of the size of the P's stack cache, so that the figure is
 * the steady state of spawn, run, exit and reuse.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "arch/ctx.h"

#include <gort.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#define N_SWITCH 100000L /* resumes, 2 switches each */
#define N_SPAWN 3200L    /* goroutines */
#define SPAWN_BATCH 32   /* P_CACHE_MAX in src/core/stack.c */
#define N_WARMUP_BATCHES 4
#define STACK_SIZE (64 * 1024)
#define EXIT_DISTURBED 3

static double scale = 1.0;

static long size_of(long base)
{
    long n = (long)((double)base * scale);
    return n < 1 ? 1 : n;
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...);

/* ---- the raw context switch ------------------------------------------- */

static void *main_sp, *fiber_sp;
static long resumes;

static void fiber_entry(void *arg)
{
    (void)arg;
    for (;;) {
        resumes++;
        gort__ctx_switch(&fiber_sp, main_sp);
    }
}

/* The stand-in for gort__ctx_switch in the "switch0" loop: a call that
   does nothing, kept out of line so that the call itself is counted. */
__attribute__((noinline)) static void null_switch(void **save, void *to)
{
    __asm__ volatile("" : : "r"(save), "r"(to) : "memory");
}

static void region_switch(void)
{
    long n = size_of(N_SWITCH);
    char name[64];
    char *stack = aligned_alloc(4096, STACK_SIZE);
    if (!stack)
        fail("out of memory");
    fiber_sp = gort__ctx_make(stack + STACK_SIZE, fiber_entry, NULL);
    /* Warm up (first touches of the stack, lazy binding) outside. */
    for (long i = 0; i < 100; i++)
        gort__ctx_switch(&main_sp, fiber_sp);
    resumes = 0;

    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    for (long i = 0; i < n; i++)
        gort__ctx_switch(&main_sp, fiber_sp);
    CALLGRIND_TOGGLE_COLLECT;
    snprintf(name, sizeof name, "switch %ld", n);
    CALLGRIND_DUMP_STATS_AT(name);
    if (resumes != n)
        fail("switch: the context ran %ld times, want %ld", resumes, n);

    /* The same loop, both halves, with an empty call for each switch. */
    CALLGRIND_TOGGLE_COLLECT;
    for (long i = 0; i < n; i++) {
        null_switch(&main_sp, fiber_sp);
        resumes++;
        null_switch(&fiber_sp, main_sp);
    }
    CALLGRIND_TOGGLE_COLLECT;
    snprintf(name, sizeof name, "switch0 %ld", n);
    CALLGRIND_DUMP_STATS_AT(name);
    /* The suspended context is abandoned with its stack, as in ctxswitch.c. */
}

/* ---- spawn+join --------------------------------------------------------- */

static wg_t batch_wg;
static pthread_t region_thread;
/* pthread_self is declared const: the compiler may reuse one call's value
   across a park that moved the goroutine to another thread.  Read it
   through a volatile pointer so that every call is made. */
static pthread_t (*volatile self)(void) = pthread_self;
static long strays; /* goroutines that ran on another thread than the region */

static void spawn_child(void *arg)
{
    if (!pthread_equal(self(), region_thread))
        strays++; /* written with one P only: no race */
    *(unsigned char *)arg = 1;
    wg_done(&batch_wg);
}

static void run_batches(unsigned char *done, long n)
{
    for (long i = 0; i < n; i += SPAWN_BATCH) {
        long b = n - i < SPAWN_BATCH ? n - i : SPAWN_BATCH;
        wg_add(&batch_wg, b);
        for (long j = 0; j < b; j++) {
            int rc = go_spawn(spawn_child, &done[i + j]);
            if (rc != 0)
                fail("go_spawn: %s", strerror(-rc));
        }
        wg_wait(&batch_wg);
    }
}

static void region_spawn(void)
{
    long n = size_of(N_SPAWN);
    char name[64];
    unsigned char *done = calloc((size_t)n, 1);
    if (!done)
        fail("out of memory");
    region_thread = self();
    /* Warm up the P's goroutine and stack caches outside the region. */
    run_batches(done, N_WARMUP_BATCHES * SPAWN_BATCH < n ? N_WARMUP_BATCHES * SPAWN_BATCH : n);
    memset(done, 0, (size_t)n);
    strays = 0;

    region_thread = self();
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    run_batches(done, n);
    CALLGRIND_TOGGLE_COLLECT;
    pthread_t end_thread = self();
    snprintf(name, sizeof name, "spawn %ld", n);
    CALLGRIND_DUMP_STATS_AT(name);
    for (long i = 0; i < n; i++)
        if (done[i] != 1)
            fail("spawn: goroutine %ld did not run", i);
    free(done);
    if (strays > 0 || !pthread_equal(end_thread, region_thread)) {
        fprintf(stderr, "gort_callgrind: spawn region left its thread (%ld goroutines elsewhere%s): "
                        "the monitor handed the P over; the count is not comparable\n",
                strays, pthread_equal(end_thread, region_thread) ? "" : ", and the spawner");
        exit(EXIT_DISTURBED);
    }
}

/* ---- main ----------------------------------------------------------------- */

static wg_t body_wg;

static void body(void *arg)
{
    (void)arg;
    region_spawn();
    wg_done(&body_wg);
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL gort_callgrind: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        scale = strtod(argv[1], NULL);
        if (!(scale > 0)) {
            fprintf(stderr, "usage: gort_callgrind [scale]   (scale > 0, default 1)\n");
            return 2;
        }
    }
    if (!RUNNING_ON_VALGRIND)
        fprintf(stderr, "gort_callgrind: not under valgrind: the regions run, nothing is counted\n");
    /* One P, whatever the environment says: before the runtime starts. */
    if (setenv("GORT_MAXPROCS", "1", 1) != 0)
        fail("setenv");

    region_switch(); /* before the runtime starts: no other thread yet */

    wg_add(&body_wg, 1);
    int rc = go_spawn(body, NULL);
    if (rc != 0)
        fail("go_spawn: %s", strerror(-rc));
    wg_wait(&body_wg);
    if (go_maxprocs(0) != 1)
        fail("ran with %d Ps, want 1", go_maxprocs(0));
    return 0;
}
