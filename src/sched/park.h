/*
 * park.h - the one waiter mechanism that every blocking primitive uses.
 *
 * A waiter stands for one blocked party: a goroutine (it parks and frees
 * its worker) or a plain thread (it sleeps on a futex).  The same calls
 * serve both, so channels, select, the semaphore table and the netpoller
 * never ask which one they are waking.
 *
 * Protocol (see docs/design/scheduler.md, "Parking"):
 *
 *   t = gort__waiter_prepare(w);    new generation, state WAITING
 *   ... make (w, t) discoverable, under some lock L ...
 *   r = gort__waiter_park(w, unlock_L, L, deadline);
 *
 *   waker, having found (w, t) under L:
 *   if (gort__waiter_claim(w, t)) { write results; gort__waiter_wake(w, r); }
 *
 * - Exactly one claim per generation succeeds: the waker that wins owns the
 *   right to wake; losers (stale select cases, a timer that lost to a
 *   value) must drop the entry and not touch the waiter again.
 * - `commit(arg)` runs after the caller is off its stack (goroutine: on
 *   the worker's scheduler stack, after the switch) or just before the
 *   thread sleeps.  Anything that lets a waker find the waiter must be
 *   published no later than commit: a goroutine must not be readied while
 *   it is still running on its own stack (gort__ready checks this and
 *   panics).
 * - A deadline (absolute go_now() time, or GO_FOREVER) makes the park
 *   itself claim the waiter when it expires; it then returns -ETIMEDOUT.
 * - A waiter's memory is the goroutine record or the thread's TLS, so a
 *   stale (w, t) pair is always safe to CAS against: the generation in the
 *   ticket makes a late claim fail.
 * - park returns the `result` passed to gort__waiter_wake (or -ETIMEDOUT),
 *   and leaves the caller's errno untouched.
 */
#ifndef GORT_PARK_H
#define GORT_PARK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>

#include <errno.h>
#include <gort.h>

/*
 * errno in the runtime's own code.  glibc declares __errno_location()
 * const, so a compiler may compute errno's address once and reuse it
 * after a call that parks (more so once inlining crosses files: the
 * library is built as one unit in optimised builds); by then the goroutine
 * may run on another thread, and the read or write would reach that
 * thread's errno.  Every library file therefore sees errno through this
 * out-of-line accessor.  Only error paths use it: the switch itself saves
 * and restores errno through m->errno_ptr.
 */
int *gort__errno_addr(void);
#undef errno
#define errno (*gort__errno_addr())

struct gort_g;

typedef struct gort_waiter {
    _Atomic uint64_t word;   /* generation << 2 | state (park.c) */
    _Atomic int result;      /* written by the claimer before wake */
    struct gort_g *g;        /* NULL: a plain thread */
    void *data;              /* free for the primitive (select: fired case) */
} gort_waiter_t;

/* The calling goroutine's waiter, or the calling thread's. */
gort_waiter_t *gort__waiter_self(void);
/* Starts a new wait; returns the ticket that wakers must claim with. */
uint64_t gort__waiter_prepare(gort_waiter_t *w);
/* True for exactly one caller per ticket. */
bool gort__waiter_claim(gort_waiter_t *w, uint64_t ticket);
/* Wakes a claimed waiter; park returns `result`. */
void gort__waiter_wake(gort_waiter_t *w, int result);
/* Blocks until woken or the deadline passes (-ETIMEDOUT). */
int gort__waiter_park(gort_waiter_t *w, void (*commit)(void *arg), void *arg,
                      int64_t deadline);

/* Spin-wait helpers for the sync types. */
void gort__procyield(unsigned n);           /* n pause instructions */
bool gort__can_spin(int iter);              /* Go's sync_runtime_canSpin */
bool gort__in_goroutine(void);
uint64_t gort__fastrand(void);              /* per-thread, cheap */

/*
 * A cooperative preemption point (sysmon.c): the public entry points that
 * a goroutine may call in a loop without ever parking (mutex unlock,
 * channel operations) call it where the goroutine holds no runtime state;
 * it yields if the monitor asked this P's goroutine to.  One relaxed load
 * of a global word otherwise.
 */
void gort__preempt_yield(void);
static inline void gort__preempt_point(void)
{
    if (__builtin_expect(atomic_load_explicit(&go_preempt_pending_, memory_order_relaxed) != 0, 0))
        gort__preempt_yield();
}

#endif /* GORT_PARK_H */
