/*
 * bench_gort_ctx - libgo-rt's raw context switch, arch/ alone: a context
 * made with gort__ctx_make and resumed with gort__ctx_switch in a loop, no
 * scheduler involved.  The twin of "ctxswitch" in ../boost/bench_boost.cpp
 * (boost::context::fiber resumed in a loop); same count, same check.
 *
 *   bench_gort_ctx ctxswitch <workers> [scale]   (workers is ignored: 1)
 *
 * prints  RESULT gort ctxswitch 1 <ns> ns/switch
 * Built from the architecture's switch source directly, so it does not
 * need the rest of the runtime.
 */
#include "arch/ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_CTXSWITCH 20000000L /* resumes (2 switches each); as bench_boost */
#define STACK_SIZE (64 * 1024)

static void *main_sp, *fiber_sp;
static long count;

static void fiber_entry(void *arg)
{
    (void)arg;
    for (;;) {
        count++;
        gort__ctx_switch(&fiber_sp, main_sp);
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "ctxswitch") != 0) {
        fprintf(stderr, "usage: bench_gort_ctx ctxswitch <workers> [scale]\n");
        return 2;
    }
    double scale = argc > 3 ? strtod(argv[3], NULL) : 1.0;
    if (!(scale > 0)) {
        fprintf(stderr, "bench_gort_ctx: scale must be a positive number\n");
        return 2;
    }
    long n = (long)((double)N_CTXSWITCH * scale);
    if (n < 1)
        n = 1;
    char *stack = aligned_alloc(4096, STACK_SIZE);
    if (!stack) {
        fprintf(stderr, "bench_gort_ctx: out of memory\n");
        return 1;
    }
    fiber_sp = gort__ctx_make(stack + STACK_SIZE, fiber_entry, NULL);
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        gort__ctx_switch(&main_sp, fiber_sp);
    double el = now_ns() - t0;
    if (count != n) {
        fprintf(stderr, "FAIL gort ctxswitch 1: context ran %ld times, want %ld\n", count, n);
        return 1;
    }
    printf("RESULT gort ctxswitch 1 %.6g ns/switch\n", el / (2.0 * (double)n));
    return 0; /* the suspended context is simply abandoned with its stack */
}
