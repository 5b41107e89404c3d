/*
 * rwmutex.c - go_rwmutex_t: Go's sync.RWMutex.
 *
 * The problem.  Many readers or one writer, zero-value ready, no destroy,
 * not owned, and a writer must not be starved by a steady stream of
 * readers: once a writer is waiting, new readers wait behind it (API.md).
 *
 * The design (Go's sync/rwmutex.go), four counters and a mutex:
 *
 *   w_            serialises writers (go_mutex_t);
 *   reader_count_ active readers; a pending writer subtracts
 *                 RWMUTEX_MAX_READERS so that it goes negative, which tells
 *                 arriving readers to wait on reader_sem_;
 *   reader_wait_  readers that were active when the writer arrived; the
 *                 writer waits on writer_sem_ until they have all left;
 *   writer_sem_, reader_sem_  semaphores of the address-keyed table.
 *
 * RLock: increment reader_count_; negative means a writer is pending or
 * active, so wait for the writer's Unlock to release reader_sem_.
 * RUnlock: decrement; negative means a writer is pending: count down
 * reader_wait_, and the last departing reader releases writer_sem_.
 * Lock: take w_ (one writer at a time), announce by subtracting
 * MAX_READERS, and if readers were active wait for the last of them.
 * Unlock: add MAX_READERS back, release every reader that queued meanwhile,
 * release w_.
 *
 * Rejected: a reader-preferring counter lock (writers starve); a single
 * state word with a queue (needs the queue in the object).
 *
 * Memory ordering: every operation on the counters is an acq_rel RMW: each
 * both publishes the caller's side (a reader's reads are done, a writer's
 * writes are done) and observes the other side's.  The semaphores add
 * their own ordering on the slow paths.
 *
 * Invariants: reader_count_ is in (-MAX_READERS, MAX_READERS) apart from a
 * misuse; it is negative exactly while a writer holds or waits for the
 * lock after announcing itself; reader_wait_ > 0 only while such a writer
 * waits for departing readers.
 */
#include "csp/csp.h"
#include "csp/sema.h"

#define RWMUTEX_MAX_READERS (1 << 30)

static inline int32_t add(_Atomic int32_t *p, int32_t delta)
{
    /* acq_rel: see the essay. */
    return atomic_fetch_add_explicit(p, delta, memory_order_acq_rel) + delta;
}

void go_rwmutex_rlock(go_rwmutex_t *m)
{
    if (add(&m->reader_count_, 1) < 0)
        gort__semacquire(&m->reader_sem_, false); /* a writer is pending */
}

static void runlock_slow(go_rwmutex_t *m, int32_t r)
{
    if (r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS)
        gort__fatal("sync: RUnlock of unlocked RWMutex");
    /* A writer is pending; the last reader it waits for wakes it. */
    if (add(&m->reader_wait_, -1) == 0)
        gort__semrelease(&m->writer_sem_, false);
}

void go_rwmutex_runlock(go_rwmutex_t *m)
{
    int32_t r = add(&m->reader_count_, -1);

    if (GORT_UNLIKELY(r < 0))
        runlock_slow(m, r);
    gort__preempt_point();
}

void go_rwmutex_lock(go_rwmutex_t *m)
{
    int32_t r;

    go_mutex_lock(&m->w_);
    /* Announce the writer; r is the number of active readers. */
    r = add(&m->reader_count_, -RWMUTEX_MAX_READERS) + RWMUTEX_MAX_READERS;
    if (r != 0 && add(&m->reader_wait_, r) != 0)
        gort__semacquire(&m->writer_sem_, false);
}

void go_rwmutex_unlock(go_rwmutex_t *m)
{
    int32_t r = add(&m->reader_count_, RWMUTEX_MAX_READERS);

    if (r >= RWMUTEX_MAX_READERS)
        gort__fatal("sync: Unlock of unlocked RWMutex");
    /* Let in the readers that queued behind us. */
    for (int32_t i = 0; i < r; i++)
        gort__semrelease(&m->reader_sem_, false);
    go_mutex_unlock(&m->w_);
}
