/*
 * runq.c - the per-P run queue and the global run queue.
 *
 * Per P (Go's runqput/runqget/runqgrab):
 *   - `runnext`: one slot for the goroutine just readied.  A goroutine that
 *     wakes another (a channel send to a parked receiver) puts it here, so
 *     the two run back to back on this P with their data hot in cache;
 *     this is what makes ping-pong fast.  The goroutine it displaces goes
 *     to the tail of the ring.
 *   - a bounded ring of GORT_RUNQ_SIZE slots.  Only the owner writes slots
 *     and `tail`; the owner and thieves take from `head` with a CAS.
 *
 * Memory ordering, each release naming its acquire:
 *   - put: the slot store (relaxed) is published by the release store of
 *     `tail`, acquired by thieves' load of tail in grab();
 *   - get/grab: the CAS on `head` is a release (the slot was read before
 *     it); the owner's acquire load of head in put() pairs with it, so the
 *     owner never overwrites a slot a thief is still reading;
 *   - a thief may read a slot that the owner is about to overwrite (its
 *     view of head was stale); the CAS on head then fails and the value is
 *     discarded.  Slots are _Atomic, so this is not a data race.
 *   - runnext is exchanged/CASed with acq_rel, the goroutine record's
 *     fields being published with it.
 *
 * Overflow: when the ring is full, the owner moves half of it plus the new
 * goroutine to the global queue in one locked batch (runq_put_slow), so a
 * burst of readies costs one lock per 128 goroutines.
 *
 * The global queue is a linked list through g->schedlink under
 * sched.lock; workers take batches of up to half a ring (globrunq_get).
 */
#include "runq.h"

#define RQ_MASK (GORT_RUNQ_SIZE - 1)
#define RUNNEXT_GRACE_PAUSES 120 /* about 3 us of pause (24.7 ns each here) */
_Static_assert((GORT_RUNQ_SIZE & RQ_MASK) == 0, "run queue size is a power of two");

static bool runq_put_slow(struct gort_p *p, struct gort_g *g, uint32_t h, uint32_t t)
{
    struct gort_g *batch[GORT_RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&p->runq[(h + i) & RQ_MASK], memory_order_relaxed);
    /* Pairs with the acquire loads of head in get/grab: the slots above
       were read before we gave them up. */
    if (!atomic_compare_exchange_strong_explicit(&p->runq_head, &h, h + n,
                                                 memory_order_release, memory_order_relaxed))
        return false;
    batch[n] = g;
    pthread_mutex_lock(&gort__sched.lock);
    for (uint32_t i = 0; i <= n; i++)
        gort__globrunq_put_locked(batch[i]);
    pthread_mutex_unlock(&gort__sched.lock);
    return true;
}

void gort__runq_put(struct gort_p *p, struct gort_g *g, bool next)
{
    if (next) {
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        if (!g)
            return;
    }
    for (;;) {
        /* Acquire: pairs with the release CAS of head by get/grab. */
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (t - h < GORT_RUNQ_SIZE) {
            atomic_store_explicit(&p->runq[t & RQ_MASK], g, memory_order_relaxed);
            /* Release: publishes the slot to thieves' acquire of tail. */
            atomic_store_explicit(&p->runq_tail, t + 1, memory_order_release);
            return;
        }
        if (runq_put_slow(p, g, h, t))
            return;
    }
}

struct gort_g *gort__runq_get(struct gort_p *p)
{
    struct gort_g *g = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (g && atomic_compare_exchange_strong_explicit(&p->runnext, &g, NULL,
                                                     memory_order_acq_rel, memory_order_relaxed))
        return g;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        g = atomic_load_explicit(&p->runq[h & RQ_MASK], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->runq_head, &h, h + 1,
                                                  memory_order_release, memory_order_relaxed))
            return g;
    }
}

bool gort__runq_empty(struct gort_p *p)
{
    uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_acquire);
    return h == t && atomic_load_explicit(&p->runnext, memory_order_acquire) == NULL;
}

/* Takes half of victim's queue into p's ring starting at p's tail. */
static uint32_t runq_grab(struct gort_p *victim, struct gort_p *p, uint32_t at, bool steal_next)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->runq_head, memory_order_acquire);
        /* Acquire: pairs with the owner's release store of tail. */
        uint32_t t = atomic_load_explicit(&victim->runq_tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0) {
            struct gort_g *g;
            if (!steal_next)
                return 0;
            g = atomic_load_explicit(&victim->runnext, memory_order_acquire);
            if (!g)
                return 0;
            if (atomic_load_explicit(&victim->m, memory_order_relaxed)) {
                /* The victim runs: its goroutine probably just readied g
                   and is about to block or finish (a receive that woke
                   the sender, a reply), and then runs g itself, with its
                   data hot.  Wait about 3 us, as Go does, and take g only
                   if it is still there (its P is really busy).  Both loads
                   are hints (victim->m relaxed: a P that just went idle
                   costs one needless wait); the CAS below is what makes
                   the take safe, whatever they saw. */
                gort__procyield(RUNNEXT_GRACE_PAUSES);
                if (atomic_load_explicit(&victim->runnext, memory_order_acquire) != g)
                    return 0;
            }
            if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &g, NULL,
                                                               memory_order_acq_rel,
                                                               memory_order_relaxed))
                return 0;
            atomic_store_explicit(&p->runq[at & RQ_MASK], g, memory_order_relaxed);
            return 1;
        }
        if (n > GORT_RUNQ_SIZE / 2)
            continue; /* inconsistent h and t: read again */
        for (uint32_t i = 0; i < n; i++) {
            struct gort_g *g = atomic_load_explicit(&victim->runq[(h + i) & RQ_MASK],
                                                    memory_order_relaxed);
            atomic_store_explicit(&p->runq[(at + i) & RQ_MASK], g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&victim->runq_head, &h, h + n,
                                                    memory_order_release, memory_order_relaxed))
            return n;
    }
}

struct gort_g *gort__runq_steal(struct gort_p *p, struct gort_p *victim, bool steal_next)
{
    uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
    uint32_t n = runq_grab(victim, p, t, steal_next);
    struct gort_g *g;
    if (n == 0)
        return NULL;
    n--;
    g = atomic_load_explicit(&p->runq[(t + n) & RQ_MASK], memory_order_relaxed);
    if (n > 0)
        atomic_store_explicit(&p->runq_tail, t + n, memory_order_release);
    return g;
}

void gort__globrunq_put_locked(struct gort_g *g)
{
    g->schedlink = NULL;
    if (gort__sched.runq_tail)
        gort__sched.runq_tail->schedlink = g;
    else
        gort__sched.runq_head = g;
    gort__sched.runq_tail = g;
    atomic_store_explicit(&gort__sched.runq_size,
                          atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Returns one goroutine and moves up to max-1 more (0: a fair share) into
   p's ring. */
struct gort_g *gort__globrunq_get_locked(struct gort_p *p, int32_t max)
{
    int32_t size = atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed);
    int32_t nprocs = atomic_load_explicit(&gort__sched.nprocs, memory_order_relaxed);
    int32_t n;
    struct gort_g *g;
    if (size == 0)
        return NULL;
    n = size / (nprocs > 0 ? nprocs : 1) + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > GORT_RUNQ_SIZE / 2)
        n = GORT_RUNQ_SIZE / 2;
    /* Never overflow p's ring here: that would take sched.lock again. */
    uint32_t used = atomic_load_explicit(&p->runq_tail, memory_order_relaxed) -
                    atomic_load_explicit(&p->runq_head, memory_order_acquire);
    if ((uint32_t)n > GORT_RUNQ_SIZE - used)
        n = (int32_t)(GORT_RUNQ_SIZE - used);
    if (n < 1)
        n = 1;
    atomic_store_explicit(&gort__sched.runq_size, size - n, memory_order_relaxed);
    g = gort__sched.runq_head;
    gort__sched.runq_head = g->schedlink;
    while (--n > 0) {
        struct gort_g *g2 = gort__sched.runq_head;
        gort__sched.runq_head = g2->schedlink;
        gort__runq_put(p, g2, false);
    }
    if (!gort__sched.runq_head)
        gort__sched.runq_tail = NULL;
    return g;
}

/* Empties p's queue from any thread, through the thieves' protocol (so
   the owner may keep running meanwhile). */
struct gort_g *gort__runq_take_all(struct gort_p *p)
{
    struct gort_g *list = NULL, **tail = &list, *g;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_acquire);
        if (t == h)
            break;
        if (t - h > GORT_RUNQ_SIZE)
            continue;
        g = atomic_load_explicit(&p->runq[h & RQ_MASK], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->runq_head, &h, h + 1,
                                                  memory_order_release, memory_order_relaxed)) {
            g->schedlink = NULL; /* queue order is kept: FIFO */
            *tail = g;
            tail = &g->schedlink;
        }
    }
    /* runnext would have run first: it leads the list. */
    g = atomic_exchange_explicit(&p->runnext, NULL, memory_order_acq_rel);
    if (g) {
        g->schedlink = list;
        list = g;
    }
    return list;
}
