/*
 * lock.h - the short-term lock of the CSP layer, and its lock ranks.
 *
 * Channels, the semaphore table and the notify lists each protect a little
 * state (a queue, a ring buffer, a counter) for a few hundred nanoseconds at
 * most.  They need a lock that
 *
 *   - is one 32-bit word, zero when free, so that it fits inside the
 *     public go_cond_t (its lock_ field) and needs no initialisation;
 *   - can be released from a park commit callback, that is on the
 *     worker's scheduler stack after the goroutine has switched away, on
 *     the same OS thread that took it;
 *   - does not burn a CPU when its holder's thread is descheduled.
 *
 * Design: Go's lock_futex.go, which is Drepper's three-state futex mutex
 * ("Futexes Are Tricky", mutex2): 0 free, 1 held, 2 held and somebody may
 * sleep in FUTEX_WAIT.  The uncontended path is one CAS to take and one
 * exchange to release.  Contended takers first spin (the holder runs on
 * another CPU and is about to let go), then yield the CPU once, then sleep
 * in the kernel.  Sleeping blocks the worker thread, exactly as Go's runtime
 * locks block an M: these locks are never held across a park, so the wait
 * is bounded by somebody else's short critical section.
 *
 * Rejected: a plain test-and-set spinlock (a holder preempted by the kernel
 * makes every waiter spin for a whole time slice); a ticket lock (fair but
 * collapses when the holder's thread is descheduled, and needs two words);
 * parking goroutines on these locks (the lock would need the waiter
 * machinery, which itself is built on it, and the critical sections are
 * shorter than a context switch).
 *
 * Lock ranks (Go's lockrank.go): a thread may take a lock only if its rank
 * is above the rank of every lock it holds, except that several locks of a
 * rank marked "multi" may be held together when they are taken in
 * increasing address order.  Debug builds (NDEBUG undefined) keep the held
 * locks of each thread in a small array and abort on a violation.
 *
 *   rank              held with                       taken by
 *   GORT_RANK_CHAN    other channel locks, address    chan.c, select.c
 *                     order (multi), nothing else
 *   GORT_RANK_SEMA    nothing (leaf)                  sema.c semacquire/release
 *   GORT_RANK_NOTIFY  nothing (leaf)                  sema.c notify lists
 *
 * While one of these locks is held, the CSP layer calls into the scheduler
 * only through gort__waiter_prepare and gort__waiter_claim (atomic
 * operations on the waiter word) and gort__waiter_park, whose commit
 * callback releases them; gort__waiter_wake is always called after they
 * are released.  Park itself, between the switch and our commit, arms the
 * deadline timer under the P's timer lock while our locks are still held,
 * so the scheduler's timer lock ranks above all of ours; the timer's
 * callback only claims and wakes, and never takes a lock of this table.
 */
#ifndef GORT_CSP_LOCK_H
#define GORT_CSP_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* 0 free, 1 held, 2 held and a sleeper may be in FUTEX_WAIT. */
typedef _Atomic uint32_t gort_lock_t;

enum gort_lock_rank {
    GORT_RANK_CHAN = 10,   /* multi: channel locks, in address order */
    GORT_RANK_SEMA = 20,   /* leaf */
    GORT_RANK_NOTIFY = 20, /* leaf */
};

#if !defined(NDEBUG) && !defined(GORT_NO_LOCKRANK)
#define GORT_LOCKRANK 1
void gort__lockrank_acquire(gort_lock_t *l, int rank);
void gort__lockrank_release(gort_lock_t *l);
void gort__lockrank_assert_none(void);
#else
#define GORT_LOCKRANK 0
static inline void gort__lockrank_acquire(gort_lock_t *l, int rank)
{
    (void)l;
    (void)rank;
}
static inline void gort__lockrank_release(gort_lock_t *l)
{
    (void)l;
}
static inline void gort__lockrank_assert_none(void) {}
#endif

void gort__lock_slow(gort_lock_t *l);
void gort__unlock_slow(gort_lock_t *l);

static inline void gort__lock(gort_lock_t *l, int rank)
{
    uint32_t expected = 0;

    gort__lockrank_acquire(l, rank);
    /* acquire: pairs with the release exchange in gort__unlock, so the
     * previous holder's critical section happens before ours. */
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(
                             l, &expected, 1, memory_order_acquire,
                             memory_order_relaxed),
                         1))
        return;
    gort__lock_slow(l);
}

static inline void gort__unlock(gort_lock_t *l)
{
    gort__lockrank_release(l);
    /* release: pairs with the acquire CAS / exchange in gort__lock and
     * gort__lock_slow. */
    if (__builtin_expect(atomic_exchange_explicit(l, 0, memory_order_release)
                             == 2,
                         0))
        gort__unlock_slow(l);
}

#endif /* GORT_CSP_LOCK_H */
