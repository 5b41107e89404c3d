/*
 * timer.c - per-P timer heaps: go_sleep, park deadlines, select timeouts.
 *
 * Design (Go 1.14+).  Each P owns a 4-ary min-heap of timers ordered by
 * `when`, under its own timer_lock, so that timers armed by goroutines on
 * different Ps never contend.  Insert and delete are O(log n); a 4-ary
 * heap is shallower than a binary one and keeps siblings in one cache
 * line.  p->timer0 mirrors the earliest `when` (0: empty) so that the
 * scheduler can ask "anything due?" with one atomic load and no lock.
 *
 * Who runs timers: the M holding a P runs that P's due timers when it
 * schedules (proc.c: every 61 switches and whenever it looks for work),
 * and a worker that looks for work runs other Ps' due timers too, so a
 * timer on an idle P still fires.  When every P is idle, one M sleeps in
 * the netpoller until the earliest timer of all Ps (gort__timers_next);
 * arming a timer earlier than that wakes it (netpoll_break).
 *
 * A timer's callback runs with no timer lock held, on a worker that holds
 * a P, and gets (arg, seq) copied under the lock: the timer record itself
 * may be re-armed by its owner the moment it leaves the heap.  Callbacks
 * must therefore tolerate firing late for a previous use; the waiter
 * generation (park.c) is what makes that safe.
 *
 * Invariants (timer_lock of the heap's P):
 *   - t->p == p  <=>  t is in p's heap, at index t->idx;
 *   - t->p is written only under the lock of the P it names (or names
 *     after the write), so deleters re-check it after locking.
 */
#include <errno.h>
#include <stdlib.h>

#include "runq.h"
#include "runtime.h"

static void heap_set(struct gort_p *p, int32_t i, struct gort_timer *t)
{
    p->timers[i] = t;
    t->idx = i;
}

static void sift_up(struct gort_p *p, int32_t i)
{
    struct gort_timer *t = p->timers[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 4;
        if (p->timers[parent]->when <= t->when)
            break;
        heap_set(p, i, p->timers[parent]);
        i = parent;
    }
    heap_set(p, i, t);
}

static void sift_down(struct gort_p *p, int32_t i)
{
    struct gort_timer *t = p->timers[i];
    for (;;) {
        int32_t c = 4 * i + 1, best = -1;
        int64_t when = t->when;
        for (int32_t k = c; k < c + 4 && k < p->ntimers; k++) {
            if (p->timers[k]->when < when) {
                when = p->timers[k]->when;
                best = k;
            }
        }
        if (best < 0)
            break;
        heap_set(p, i, p->timers[best]);
        i = best;
    }
    heap_set(p, i, t);
}

static void update_timer0(struct gort_p *p)
{
    /* Release: a reader that sees the new timer0 and then locks sees the
       heap consistent anyway (the lock orders it); relaxed would do, but
       idle Ms compute their sleep from it without the lock. */
    atomic_store_explicit(&p->timer0, p->ntimers ? p->timers[0]->when : 0, memory_order_release);
}

static void heap_remove(struct gort_p *p, int32_t i)
{
    struct gort_timer *t = p->timers[i];
    int32_t last = --p->ntimers;
    t->idx = -1;
    /* Release: every read of t by this heap's lock holder happened before;
       a deleter (or the owner re-arming t) that acquires p == NULL may
       write t freely. */
    atomic_store_explicit(&t->p, NULL, memory_order_release);
    if (i != last) {
        heap_set(p, i, p->timers[last]);
        sift_down(p, i);
        sift_up(p, p->timers[i]->idx);
    }
}

static bool heap_push(struct gort_p *p, struct gort_timer *t)
{
    if (p->ntimers == p->timers_cap) {
        int32_t cap = p->timers_cap ? p->timers_cap * 2 : 64;
        struct gort_timer **nt = realloc(p->timers, (size_t)cap * sizeof *nt);
        if (!nt)
            return false;
        p->timers = nt;
        p->timers_cap = cap;
    }
    atomic_store_explicit(&t->p, p, memory_order_relaxed);
    heap_set(p, p->ntimers++, t);
    sift_up(p, t->idx);
    return true;
}

void gort__timer_add(struct gort_timer *t)
{
    struct gort_m *m = gort__m_self();
    struct gort_p *p = m ? m->p : NULL;
    int64_t until, when = t->when; /* t is not ours once it is in the heap */
    if (!p)
        gort__fatal("timer armed without a P");
    pthread_mutex_lock(&p->timer_lock);
    if (!heap_push(p, t)) {
        pthread_mutex_unlock(&p->timer_lock);
        gort__fatal("out of memory growing the timer heap");
    }
    update_timer0(p);
    pthread_mutex_unlock(&p->timer_lock);
    /* An M asleep in the netpoller computed its wake-up before this timer
       existed: wake it if we are earlier (Go's wakeNetPoller).  seq_cst
       pairs with the poller's store of poll_until before it sleeps. */
    /* Dekker with poll_until_timer (proc.c): we publish timer0, then read
       poll_until; the poller publishes poll_until, then reads every
       timer0.  The fences make at least one side see the other: without
       them a store buffer lets both read the old values, and the poller
       sleeps past our timer for ever (seen under qemu as a goroutine
       stuck in go_sleep). */
    atomic_thread_fence(memory_order_seq_cst);
    until = atomic_load_explicit(&gort__sched.poll_until, memory_order_seq_cst);
    if (until != 0 && when < until)
        gort__netpoll_break();
}

bool gort__timer_del(struct gort_timer *t)
{
    for (;;) {
        /* Acquire: pairs with heap_remove's release (see there). */
        struct gort_p *p = atomic_load_explicit(&t->p, memory_order_acquire);
        if (!p)
            return false;
        pthread_mutex_lock(&p->timer_lock);
        if (atomic_load_explicit(&t->p, memory_order_relaxed) != p) {
            pthread_mutex_unlock(&p->timer_lock);
            continue; /* fired or moved meanwhile */
        }
        heap_remove(p, t->idx);
        update_timer0(p);
        pthread_mutex_unlock(&p->timer_lock);
        return true;
    }
}

/* Runs p's timers that are due at `now`; returns the next `when` or 0. */
int64_t gort__timers_run(struct gort_p *p, int64_t now)
{
    int64_t next = atomic_load_explicit(&p->timer0, memory_order_acquire);
    if (next == 0 || next > now)
        return next;
    /* Another worker may be running them; do not wait for it. */
    if (pthread_mutex_trylock(&p->timer_lock) != 0)
        return next;
    while (p->ntimers > 0 && p->timers[0]->when <= now) {
        struct gort_timer *t = p->timers[0];
        void (*fn)(void *, uint64_t) = t->fn;
        void *arg = t->arg;
        uint64_t seq = t->seq;
        heap_remove(p, 0);
        update_timer0(p);
        pthread_mutex_unlock(&p->timer_lock);
        fn(arg, seq);
        pthread_mutex_lock(&p->timer_lock);
    }
    next = p->ntimers ? p->timers[0]->when : 0;
    pthread_mutex_unlock(&p->timer_lock);
    return next;
}

int64_t gort__timers_next(void)
{
    int64_t next = 0;
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        int64_t w = atomic_load_explicit(&gort__sched.allp[i]->timer0, memory_order_acquire);
        if (w != 0 && (next == 0 || w < next))
            next = w;
    }
    return next;
}

/* Moves every timer of `from` (a P being retired) onto `to`. */
void gort__timers_move(struct gort_p *from, struct gort_p *to)
{
    struct gort_p *a = from < to ? from : to, *b = from < to ? to : from;
    if (from == to)
        return;
    pthread_mutex_lock(&a->timer_lock);
    pthread_mutex_lock(&b->timer_lock);
    while (from->ntimers > 0) {
        struct gort_timer *t = from->timers[from->ntimers - 1];
        heap_remove(from, from->ntimers - 1);
        if (!heap_push(to, t))
            gort__fatal("out of memory growing the timer heap");
    }
    update_timer0(from);
    update_timer0(to);
    pthread_mutex_unlock(&b->timer_lock);
    pthread_mutex_unlock(&a->timer_lock);
}
