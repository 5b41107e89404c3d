/*
 * mutex.c - go_mutex_t: Go's sync.Mutex.
 *
 * The problem.  A mutual exclusion lock for goroutines and threads that is
 * a zero-filled pair of words, needs no destroy, is not owned (any party
 * may unlock it), is as cheap as an atomic when uncontended, does not park
 * when the holder is about to let go, and never leaves a waiter behind
 * barging newcomers for long.
 *
 * The design (Go's sync/mutex.go).  state_ packs:
 *
 *   bit 0  MUTEX_LOCKED    held
 *   bit 1  MUTEX_WOKEN     a waiter has been woken (or is spinning) and will
 *                          try to lock: unlockers need not wake another
 *   bit 2  MUTEX_STARVING  starvation mode, see below
 *   >> 3   waiter count    parties parked (or about to park) on sema_
 *
 * sema_ is a semaphore of the address-keyed table (sema.c), so waiters
 * park without the mutex owning a queue.
 *
 * Normal mode: waiters queue FIFO on sema_, but a woken waiter does not
 * own the mutex, it competes with newly arriving lockers, which have the
 * advantage of already running on a CPU (and there may be many).  That is
 * what makes the mutex fast under contention.  A woken waiter that loses
 * requeues at the front.  Lockers may spin a little first
 * (gort__can_spin: several processors, others running, nothing else to
 * run here) since the holder is probably about to unlock.
 *
 * Starvation mode: a waiter that has waited more than 1 ms switches the
 * mutex into it.  Then unlock hands the mutex directly to the waiter at
 * the front of the queue (semrelease with handoff), newcomers neither spin
 * nor try to take it and queue at the tail.  A waiter that receives the
 * mutex switches back to normal mode when it is the last waiter or waited
 * less than 1 ms.  Normal mode has much better throughput; starvation mode
 * bounds the tail latency.
 *
 * Rejected: a plain futex mutex (FIFO-fair ones are slow, unfair ones
 * starve, and a goroutine must park rather than block its worker in
 * FUTEX_WAIT); pthread mutexes (need init/destroy, block the worker).
 *
 * Memory ordering: the lock is acquired by an acquire RMW on state_ (or by
 * a handoff through the semaphore, which is followed by an acq_rel RMW on
 * state_), and released by a release RMW on state_.  Every change of
 * state_ is an RMW, so the release sequence of an unlock extends through
 * the intermediate waiter-count updates to the next acquirer's RMW.
 *
 * Lifetime caveat (as in Go, where the GC hides it): an unlock that wakes
 * a waiter touches sema_ after releasing the lock bit, so the memory must
 * not be freed by a party that takes and releases the mutex concurrently
 * with that unlock.  Free a mutex only once nobody can be using it.
 *
 * Invariants: the waiter count equals the number of parties between their
 * CAS that added themselves and the moment they own the mutex or requeue;
 * STARVING implies the waiter count is positive; in starvation mode, when
 * the mutex is unlocked, it is owned by the waiter being handed to.
 */
#include "csp/csp.h"
#include "csp/sema.h"

enum {
    MUTEX_LOCKED = 1,
    MUTEX_WOKEN = 2,
    MUTEX_STARVING = 4,
    MUTEX_WAITER_SHIFT = 3,
};

#define STARVATION_THRESHOLD_NS (1 * GO_MS)
#define SPIN_PAUSES 30 /* Go's active_spin_cnt */

static inline int32_t state_load(go_mutex_t *m)
{
    return atomic_load_explicit(&m->state_, memory_order_relaxed);
}

/* acquire on success: it may take the lock (see the essay). */
static inline bool state_cas(go_mutex_t *m, int32_t *old, int32_t new)
{
    return atomic_compare_exchange_weak_explicit(&m->state_, old, new,
                                                 memory_order_acquire,
                                                 memory_order_relaxed);
}

static void mutex_lock_slow(go_mutex_t *m)
{
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    int32_t old = state_load(m);

    for (;;) {
        /* Spin while locked in normal mode, if spinning makes sense.  Set
         * WOKEN so that an unlock does not wake somebody else meanwhile. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED
            && gort__can_spin(iter)) {
            if (!awoke && (old & MUTEX_WOKEN) == 0
                && (old >> MUTEX_WAITER_SHIFT) != 0
                && state_cas(m, &old, old | MUTEX_WOKEN))
                awoke = true;
            gort__procyield(SPIN_PAUSES);
            iter++;
            old = state_load(m);
            continue;
        }
        int32_t new = old;
        if ((old & MUTEX_STARVING) == 0)
            new |= MUTEX_LOCKED; /* never barge in starvation mode */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
            new += 1 << MUTEX_WAITER_SHIFT;
        /* Switch to starvation mode, but only if it is still locked: an
         * unlock expects waiters in starvation mode. */
        if (starving && (old & MUTEX_LOCKED) != 0)
            new |= MUTEX_STARVING;
        if (awoke) {
            if ((new & MUTEX_WOKEN) == 0)
                gort__fatal("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (!state_cas(m, &old, new))
            continue; /* old was reloaded by the failed CAS */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == 0)
            return; /* locked it with the CAS */

        /* Queue: at the front if we have waited before. */
        bool lifo = wait_start != 0;
        if (wait_start == 0)
            wait_start = go_now();
        gort__semacquire(&m->sema_, lifo);
        starving = starving
                   || go_now() - wait_start > STARVATION_THRESHOLD_NS;
        old = state_load(m);
        if ((old & MUTEX_STARVING) != 0) {
            /* Handed to us: the mutex is ours, with LOCKED clear and us
             * still counted as a waiter.  Fix both in one RMW. */
            if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) != 0
                || (old >> MUTEX_WAITER_SHIFT) == 0)
                gort__fatal("sync: inconsistent mutex state");
            int32_t delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
            if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                delta -= MUTEX_STARVING; /* back to normal mode */
            /* acq_rel: takes the mutex (pairs with the unlocker's release
             * RMW through the release sequence) and publishes the mode. */
            atomic_fetch_add_explicit(&m->state_, delta,
                                      memory_order_acq_rel);
            return;
        }
        awoke = true;
        iter = 0;
    }
}

void go_mutex_lock(go_mutex_t *m)
{
    int32_t expected = 0;

    /* acquire: pairs with the release RMW of the previous unlock. */
    if (GORT_LIKELY(atomic_compare_exchange_strong_explicit(
            &m->state_, &expected, MUTEX_LOCKED, memory_order_acquire,
            memory_order_relaxed)))
        return;
    mutex_lock_slow(m);
}

bool go_mutex_trylock(go_mutex_t *m)
{
    int32_t old = state_load(m);

    if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
        return false;
    /* There may be a woken waiter trying to take it too; Go's TryLock
     * makes one attempt and so do we. */
    return atomic_compare_exchange_strong_explicit(
        &m->state_, &old, old | MUTEX_LOCKED, memory_order_acquire,
        memory_order_relaxed);
}

static void mutex_unlock_slow(go_mutex_t *m, int32_t new)
{
    if (((new + MUTEX_LOCKED) & MUTEX_LOCKED) == 0)
        gort__fatal("sync: unlock of unlocked mutex");
    if ((new & MUTEX_STARVING) != 0) {
        /* Hand the mutex to the first waiter; it sets LOCKED itself.
         * Newcomers see STARVING and do not take it meanwhile. */
        gort__semrelease(&m->sema_, true);
        return;
    }
    int32_t old = new;
    for (;;) {
        /* Nobody to wake, or somebody already woken, spinning, or the
         * mutex taken again by a barger (who will wake on its unlock). */
        if ((old >> MUTEX_WAITER_SHIFT) == 0
            || (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)) != 0)
            return;
        new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
        /* relaxed: the unlock itself was the release RMW; this only takes
         * the right to wake one waiter. */
        if (atomic_compare_exchange_weak_explicit(&m->state_, &old, new,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            gort__semrelease(&m->sema_, false);
            return;
        }
    }
}

/* Also where the inline unlock goes when a preemption is pending: an
   unlock is a good place to yield (a loop of lock/unlock never parks). */
void go_mutex_unlock_slow(go_mutex_t *m, int32_t state)
{
    if (state != 0)
        mutex_unlock_slow(m, state);
    gort__preempt_point();
}

void go_mutex_unlock(go_mutex_t *m)
{
    /* release: pairs with the acquire RMW of the next locker. */
    int32_t new = atomic_fetch_sub_explicit(&m->state_, MUTEX_LOCKED,
                                            memory_order_release)
                  - MUTEX_LOCKED;
    if (GORT_UNLIKELY(new != 0))
        mutex_unlock_slow(m, new);
    gort__preempt_point();
}
