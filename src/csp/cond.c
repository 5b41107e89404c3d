/*
 * cond.c - go_cond_t: Go's sync.Cond.
 *
 * The problem.  A condition variable for go_mutex_t: wait releases the
 * mutex and sleeps atomically with respect to signal and broadcast, which
 * may be called with or without the mutex held; zero-value ready, no
 * destroy; waiters park.
 *
 * The design (Go's sync/cond.go on runtime's notifyList, in sema.c).  Wait
 * takes a ticket while it still holds the mutex, then unlocks it and waits
 * for its ticket to be notified.  Because the ticket is taken before the
 * unlock, a signal that follows the unlock (in the mutex's order) is
 * guaranteed to cover this waiter, even if the waiter has not queued
 * itself yet: it will see that its ticket was passed and not sleep.
 * Signal wakes the oldest ticket, Broadcast all of them.  No spurious
 * wake-ups, though callers should loop on their predicate anyway.
 *
 * Rejected: futex-sequence condition variables (glibc's old design): a
 * goroutine must park, not FUTEX_WAIT; and the wake-the-oldest order is
 * what Go's programs expect.
 *
 * Invariants: see sema.c (notify lists).  A go_cond_t must always be used
 * with the same mutex, as in Go (not checked).
 */
#include "csp/csp.h"
#include "csp/sema.h"

void go_cond_wait(go_cond_t *c, go_mutex_t *m)
{
    uint32_t t = gort__notify_list_add(c);

    go_mutex_unlock(m);
    gort__notify_list_wait(c, t);
    go_mutex_lock(m);
}

void go_cond_signal(go_cond_t *c)
{
    gort__notify_list_notify_one(c);
}

void go_cond_broadcast(go_cond_t *c)
{
    gort__notify_list_notify_all(c);
}
