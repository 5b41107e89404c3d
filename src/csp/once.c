/*
 * once.c - go_once_t: Go's sync.Once.
 *
 * The problem.  Run fn exactly once however many goroutines and threads
 * call go_once at the same time, and make every caller return only after
 * that one call of fn has finished (so that what fn initialised is
 * visible), with a fast path that is one load once done.
 *
 * The design (Go's sync/once.go): done_ says fn has returned; the slow
 * path takes the embedded mutex, re-checks done_, runs fn and sets done_.
 * Callers that arrive while fn runs block on the mutex (they park) and
 * find done_ set.
 *
 * Rejected: a compare-and-swap on done_ before calling fn (Go's comment):
 * the losers would return before fn has finished.
 *
 * C has no defer: if fn ends its goroutine with go_exit, done_ is never set
 * and the mutex stays locked, so later callers wait forever.  (In Go a
 * panic in f counts as returning; here a panic ends the program.)
 *
 * Invariant: done_ becomes 1 once, after fn returned, under m_; it is
 * never reset.
 */
#include "csp/csp.h"

static __attribute__((noinline)) void once_slow(go_once_t *o,
                                                void (*fn)(void *arg),
                                                void *arg)
{
    go_mutex_lock(&o->m_);
    /* relaxed: m_ orders us after whoever set it. */
    if (atomic_load_explicit(&o->done_, memory_order_relaxed) == 0) {
        fn(arg);
        /* release: pairs with the fast path's acquire load, so fn's
         * effects are visible to callers that never take m_. */
        atomic_store_explicit(&o->done_, 1, memory_order_release);
    }
    go_mutex_unlock(&o->m_);
}

void go_once(go_once_t *o, void (*fn)(void *arg), void *arg)
{
    /* acquire: pairs with the release store in once_slow. */
    if (GORT_LIKELY(atomic_load_explicit(&o->done_, memory_order_acquire)
                    != 0))
        return;
    once_slow(o, fn, arg);
}
