/*
 * lock.c - slow paths of the CSP layer's futex lock, and the debug lock-rank
 * checker.  The design, the rejected alternatives and the rank table are in
 * lock.h; this file only adds what must not be inlined.
 *
 * Invariants:
 *   - the lock word is 0 only when nobody holds the lock;
 *   - a thread that has ever slept on the word takes the lock by writing 2,
 *     never 1, so that a sleeper that has not yet been woken is not
 *     forgotten (Drepper's mutex2);
 *   - every slow path leaves errno as it found it: futex(2) and
 *     sched_yield(2) report through errno, and the channel and sync calls
 *     promise to leave the caller's errno alone.
 */
#include "csp/lock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "csp/csp.h"

enum {
    ACTIVE_SPIN = 4,      /* rounds of procyield before yielding (Go) */
    ACTIVE_SPIN_CNT = 30, /* pause instructions per round (Go) */
};

/* Cached CPU count; 0 until first asked.  A benign race: every thread that
 * asks computes the same value, so relaxed loads and stores suffice. */
static _Atomic int ncpu;

static int cpus(void)
{
    int n = atomic_load_explicit(&ncpu, memory_order_relaxed);

    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 && v < INT_MAX ? (int)v : 1;
        atomic_store_explicit(&ncpu, n, memory_order_relaxed);
    }
    return n;
}

static void futex_wait(gort_lock_t *l, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)l, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* Tries to move the word from 0 to `want` while it reads 0. */
static bool try_take(gort_lock_t *l, uint32_t want)
{
    uint32_t v;

    while (atomic_load_explicit(l, memory_order_relaxed) == 0) {
        v = 0;
        /* acquire: pairs with the release exchange in gort__unlock. */
        if (atomic_compare_exchange_weak_explicit(l, &v, want,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

void gort__lock_slow(gort_lock_t *l)
{
    int saved_errno = errno;
    int spin = cpus() > 1 ? ACTIVE_SPIN : 0;
    uint32_t want = 1;

    for (;;) {
        for (int i = 0; i < spin; i++) {
            if (try_take(l, want))
                goto out;
            gort__procyield(ACTIVE_SPIN_CNT);
        }
        if (try_take(l, want))
            goto out;
        sched_yield();
        /* acquire: as in try_take; reading 0 means we now hold it. */
        if (atomic_exchange_explicit(l, 2, memory_order_acquire) == 0)
            goto out;
        want = 2;
        futex_wait(l, 2);
    }
out:
    errno = saved_errno;
}

void gort__unlock_slow(gort_lock_t *l)
{
    int saved_errno = errno;

    syscall(SYS_futex, (uint32_t *)l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved_errno;
}

#if GORT_LOCKRANK
/*
 * Debug lock-rank checker.  Each thread records the locks it holds.  The
 * functions are out of line on purpose: a goroutine may resume on another
 * thread after a park, and an inlined TLS address could be kept in a
 * register across the switch (see STYLE.md).  Locks are never held across
 * a park, so a lock is always released on the thread that took it (a park
 * commit runs on the parking thread).
 */
enum { MAX_HELD = 16 };

/* Owner thread only.  One entry per rank level held; a "multi" rank (the
 * channel locks of a select, any number of them) is one entry with a
 * count and the highest address taken so far. */
static __thread struct {
    int rank;
    int count;
    gort_lock_t *last;
} held[MAX_HELD];
static __thread int nheld;

static _Noreturn void rank_violation(const char *what, gort_lock_t *l, int rank)
{
    fprintf(stderr, "fatal error: lock rank violation: %s (lock %p rank %d",
            what, (void *)l, rank);
    if (nheld > 0)
        fprintf(stderr, ", holding %d lock(s) of rank %d, last %p",
                held[nheld - 1].count, held[nheld - 1].rank,
                (void *)held[nheld - 1].last);
    fprintf(stderr, ")\n");
    abort();
}

__attribute__((noinline)) void gort__lockrank_acquire(gort_lock_t *l, int rank)
{
    if (nheld > 0) {
        int top = held[nheld - 1].rank;

        if (rank < top)
            rank_violation("taken after a higher rank", l, rank);
        if (rank == top) {
            if (rank != GORT_RANK_CHAN || l <= held[nheld - 1].last)
                rank_violation("same rank out of address order", l, rank);
            held[nheld - 1].count++;
            held[nheld - 1].last = l;
            return;
        }
    }
    if (nheld == MAX_HELD)
        rank_violation("too many lock ranks held", l, rank);
    held[nheld].rank = rank;
    held[nheld].count = 1;
    held[nheld].last = l;
    nheld++;
}

/* Locks are released in the reverse order of their ranks (a select may
 * release its channel locks in any order among themselves). */
__attribute__((noinline)) void gort__lockrank_release(gort_lock_t *l)
{
    if (nheld == 0)
        rank_violation("release of a lock not held by this thread", l, 0);
    if (held[nheld - 1].count == 1 && held[nheld - 1].last != l
        && held[nheld - 1].rank != GORT_RANK_CHAN)
        rank_violation("release out of order", l, held[nheld - 1].rank);
    if (--held[nheld - 1].count == 0)
        nheld--;
}

__attribute__((noinline)) void gort__lockrank_assert_none(void)
{
    if (nheld != 0)
        rank_violation("lock held across a park", held[nheld - 1].last,
                       held[nheld - 1].rank);
}
#endif

void gort__unlock_commit(void *lock)
{
    gort__unlock((gort_lock_t *)lock);
}

void gort__backoff(unsigned *iter)
{
    int saved_errno;

    if (*iter < 8) {
        gort__procyield(30u << (*iter / 2));
    } else if (gort__in_goroutine()) {
        go_yield();
    } else {
        saved_errno = errno;
        sched_yield();
        errno = saved_errno;
    }
    if (*iter < UINT_MAX)
        (*iter)++;
}
