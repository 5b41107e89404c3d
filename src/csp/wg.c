/*
 * wg.c - wg_t: Go's sync.WaitGroup, safe to free as soon as wg_wait returns.
 *
 * The problem.  A counter that goroutines and threads add to and count
 * down, and that any number of parties can wait on until it is zero.
 * Zero-value ready, no destroy, reusable once the waiters have returned.
 * And, unlike Go where the garbage collector keeps it alive, in C the
 * WaitGroup is often on the waiter's stack or freed right after wg_wait:
 * API.md requires that wg_wait return only when no wg_done is still
 * touching the WaitGroup.
 *
 * The design (Go's sync/waitgroup.go) keeps the counter and the number of
 * waiters in one 64-bit word, state_ = counter << 32 | waiters, so that
 * "counter reached zero" and "how many to wake" are read atomically.
 * Waiters sleep on the semaphore sema_ (sema.c).  wg_add that brings the
 * counter to zero with waiters resets state_ to 0 and releases the
 * semaphore once per waiter.
 *
 * The lifetime fix: busy_ counts the wg_add / wg_done calls that may still
 * touch the WaitGroup.  Each increments it before its first access to
 * state_ and decrements it (release) as its very last access.  wg_wait,
 * once it has seen the counter at zero (or was woken), waits until busy_
 * is zero (acquire) before returning.  The wait is short: the only thing
 * a busy adder can still be doing is releasing the semaphore for the other
 * waiters (a lock, an unlink and a wake each), so the waiter spins politely
 * (gort__backoff: pause, then yield) rather than parking; parking would
 * need a wake-up from the adder, which is exactly an access after its last.
 * Why it is enough: an adder's increment of busy_ is sequenced before its
 * RMW of state_, and that RMW is a release; a waiter that reads the
 * counter at zero with an acquire load therefore also sees busy_ raised,
 * unless the adder has already lowered it again (its last access).
 *
 * Rejected: waking all waiters with one semaphore operation and no busy_
 * count (the adder still touches sema_ after the first waiter may have
 * returned); a reference count in the waiters (they would have to free
 * something, which a zero-value type cannot own).
 *
 * Panics, in Go's words: a negative counter; wg_add with a positive delta
 * racing with wg_wait when the counter was zero; reuse before the previous
 * wg_wait has returned.  A counter above INT32_MAX (Go silently wraps)
 * panics too.
 *
 * Invariants: waiters > 0 implies counter > 0, except transiently inside
 * the adder that brings the counter to zero, which resets the word; busy_
 * is the number of adders between their first and last access.
 */
#include <limits.h>

#include "csp/csp.h"
#include "csp/sema.h"

static inline void busy_enter(wg_t *wg)
{
    /* relaxed: ordered before our state_ RMW by sequencing; that RMW's
     * release makes it visible to a waiter that sees our state_ change. */
    atomic_fetch_add_explicit(&wg->busy_, 1, memory_order_relaxed);
}

static inline void busy_leave(wg_t *wg)
{
    /* release: pairs with the acquire load in wait_not_busy; our last
     * access to *wg. */
    atomic_fetch_sub_explicit(&wg->busy_, 1, memory_order_release);
}

static void wait_not_busy(wg_t *wg)
{
    unsigned iter = 0;

    /* acquire: pairs with busy_leave, so that every access of the adders
     * happens before our return (and the caller's free). */
    while (atomic_load_explicit(&wg->busy_, memory_order_acquire) != 0)
        gort__backoff(&iter);
}

void wg_add(wg_t *wg, int64_t delta)
{
    uint64_t state, old;
    int64_t v;
    uint32_t w;

    if (delta == 0)
        return;
    busy_enter(wg);
    /* acq_rel: releases what the caller did before wg_done to the waiter
     * that sees the counter reach zero, and orders busy_enter first. */
    old = atomic_fetch_add_explicit(&wg->state_, (uint64_t)delta << 32,
                                    memory_order_acq_rel);
    state = old + ((uint64_t)delta << 32);
    v = (int64_t)(int32_t)(old >> 32) + delta;
    w = (uint32_t)state;
    if (v < 0)
        go_panic("sync: negative WaitGroup counter");
    if (v > INT32_MAX)
        go_panic("sync: WaitGroup counter overflow");
    if (w != 0 && delta > 0 && v == delta)
        go_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0) {
        busy_leave(wg);
        return;
    }
    /* Counter zero with waiters: we own the word now.  Nobody may change
     * it meanwhile: waiters only add while the counter is positive. */
    if (atomic_load_explicit(&wg->state_, memory_order_relaxed) != state)
        go_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    /* relaxed: the waiters are woken through the semaphore, whose release
     * orders this store before their check of state_. */
    atomic_store_explicit(&wg->state_, 0, memory_order_relaxed);
    for (; w != 0; w--)
        gort__semrelease(&wg->sema_, false);
    busy_leave(wg);
}

void wg_done(wg_t *wg)
{
    wg_add(wg, -1);
}

void wg_wait(wg_t *wg)
{
    /* acquire: pairs with the release of the wg_add that brought the
     * counter to zero (and, through busy_, see the essay). */
    uint64_t state = atomic_load_explicit(&wg->state_, memory_order_acquire);

    for (;;) {
        if ((int32_t)(state >> 32) == 0) {
            wait_not_busy(wg);
            return;
        }
        /* acquire on success: as above, for the wake-up path's re-check;
         * on failure the reloaded value is treated like the first load. */
        if (atomic_compare_exchange_weak_explicit(&wg->state_, &state,
                                                  state + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            gort__semacquire(&wg->sema_, false);
            if (atomic_load_explicit(&wg->state_, memory_order_acquire) != 0)
                go_panic("sync: WaitGroup is reused before previous Wait "
                         "has returned");
            wait_not_busy(wg);
            return;
        }
    }
}
