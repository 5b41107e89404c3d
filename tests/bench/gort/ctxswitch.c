/*
 * bench_gort_ctx - libgo-rt's raw context switch, arch/ alone: contexts
 * made with gort__ctx_make and switched with gort__ctx_switch in a loop, no
 * scheduler involved.  The twin of "ctxswitch" in ../boost/bench_boost.cpp
 * (boost::context::fiber resumed in a loop); same count, same check.
 *
 *   bench_gort_ctx ctxswitch <workers> [scale]   (workers is ignored: 1)
 *
 * prints  RESULT gort ctxswitch 1 <ns> ns/switch
 *
 * The reported loop is the one the runtime runs: two contexts that switch
 * to each other from the same call site (every goroutine is suspended and
 * resumed inside switch_to), so the `ret` that ends gort__ctx_switch goes
 * where the return-stack predictor expects.  The other shape, main
 * resuming a context that switches back from a different call site (how
 * Boost's benchmark is written), makes every `ret` mispredict; Boost ends
 * its switch with `jmp`, which does not care, and is slower in the
 * runtime's shape (arch/x86_64 explains).  Both are measured; the second
 * goes to stderr as a note.
 *
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

static void *main_sp, *fiber_sp, *peer_sp[2];
static long count, peer_count[2], peer_n;

/* Main resumes it from main's loop; it switches back from here. */
static void fiber_entry(void *arg)
{
    (void)arg;
    for (;;) {
        count++;
        gort__ctx_switch(&fiber_sp, main_sp);
    }
}

/* Two of these switch to each other from this one call site, peer_n
   times each, then the first back to main. */
static void peer_entry(void *arg)
{
    long me = (long)arg;
    for (long i = 0; i < peer_n; i++) {
        peer_count[me]++;
        gort__ctx_switch(&peer_sp[me], peer_sp[!me]);
    }
    gort__ctx_switch(&peer_sp[me], main_sp);
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
    char *s0 = aligned_alloc(4096, STACK_SIZE), *s1 = aligned_alloc(4096, STACK_SIZE);
    if (!stack || !s0 || !s1) {
        fprintf(stderr, "bench_gort_ctx: out of memory\n");
        return 1;
    }

    /* The runtime's shape: n resumes are 2n switches, as below. */
    peer_n = n;
    peer_sp[0] = gort__ctx_make(s0 + STACK_SIZE, peer_entry, (void *)0L);
    peer_sp[1] = gort__ctx_make(s1 + STACK_SIZE, peer_entry, (void *)1L);
    double t0 = now_ns();
    gort__ctx_switch(&main_sp, peer_sp[0]);
    double el_peer = now_ns() - t0;
    if (peer_count[0] != n || peer_count[1] != n) {
        fprintf(stderr, "FAIL gort ctxswitch 1: contexts ran %ld and %ld times, want %ld\n",
                peer_count[0], peer_count[1], n);
        return 1;
    }

    /* Boost's shape. */
    fiber_sp = gort__ctx_make(stack + STACK_SIZE, fiber_entry, NULL);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        gort__ctx_switch(&main_sp, fiber_sp);
    double el = now_ns() - t0;
    if (count != n) {
        fprintf(stderr, "FAIL gort ctxswitch 1: context ran %ld times, want %ld\n", count, n);
        return 1;
    }
    fprintf(stderr, "note: main resuming a context (two call sites): %.3g ns/switch\n",
            el / (2.0 * (double)n));
    printf("RESULT gort ctxswitch 1 %.6g ns/switch\n", el_peer / (2.0 * (double)n));
    return 0; /* the suspended contexts are simply abandoned with their stacks */
}
