/*
 * sysmon.c - the monitor: keeps goroutines running when one blocks its
 * thread (Go's sysmon + retake, adapted to C).
 *
 * The problem.  Goroutines are cooperative: a worker returns to the
 * scheduler only when its goroutine parks, yields or exits.  A goroutine
 * inside a blocking system call (read on a file, sleep(1), a blocking
 * library) or a long computation keeps its worker, and the goroutines
 * queued behind it on that P wait.  Go sees every system call (entersyscall)
 * and can take the P away; C code makes system calls the runtime never
 * sees, so the monitor watches instead.
 *
 * Detection.  A monitor thread (not an M: it never runs goroutines and
 * holds no P) wakes every 20 us, backing off to 10 ms while nothing
 * happens, and for every running P compares its schedtick with the last
 * look.  A P is stuck when its M
 *   - has been inside go_blocking_begin/end for more than 20 us, or
 *   - has not entered the scheduler for more than 10 ms,
 * and other goroutines are waiting for it (its own queue, or the global
 * queue with no idle P).
 *
 * Cooperative preemption first.  A goroutine that has run for 5 ms with
 * others waiting is asked to yield: the monitor sets p->preempt and the
 * global go_preempt_pending_, and the runtime's public entry points that
 * a goroutine may call in a loop without parking (mutex unlock, channel
 * operations: gort__preempt_point) yield if their P is asked.  This is Go's
 * pre-1.14 preemption at function prologues, at our API's granularity: a
 * goroutine looping on a mutex gives the P to the next one on the same
 * thread, instead of the hand-off below, which would run the two on two
 * threads beyond GOMAXPROCS (and make them fight over the mutex).  The
 * hand-off still comes at 10 ms (and at least PREEMPT_GRACE after the
 * request) for goroutines that never call in: a blocking system call, a
 * pure computation.
 *
 * Hand-off without stopping the stuck thread.  The stuck M may return at
 * any moment and touch its P's owner-only state (caches, the ring's tail),
 * so the monitor never takes the P itself.  Instead it
 *   1. marks the P `retire` (it no longer counts against GOMAXPROCS),
 *   2. activates a spare (or new) P onto the idle list in its place,
 *   3. moves the stuck P's queued goroutines to the global queue through
 *      the thieves' lock-free protocol, and wakes an M for them.
 * When the blocked thread returns (go_blocking_end, or its next switch),
 * it sees `retire`, drains what was queued meanwhile, puts the P on the
 * spare list and parks as a spare M.  Threads are bounded by
 * GORT_MAXTHREADS (default 10,000, as in Go), past which newm panics.
 *
 * The monitor also runs the stack scavenger every 100 ms (stack.c), so
 * that giving pages back never costs a goroutine's hot path, and polls
 * the netpoller when nobody did for 10 ms (gort__netpoll_sysmon), so that
 * Ps kept busy by yielding goroutines do not starve descriptor waiters.
 *
 * Memory ordering: `retire` is set with a CAS (one winner between the
 * monitor and go_maxprocs); the owner reads it relaxed at each switch, so
 * it may run a few more goroutines on the retired P before noticing:
 * harmless, as the P is still exclusively its own.
 */
#include <errno.h>
#include <time.h>

#include "runq.h"
#include "runtime.h"

#define BLOCKING_THRESHOLD_NS (20 * GO_US)
#define STUCK_THRESHOLD_NS (10 * GO_MS)
#define PREEMPT_THRESHOLD_NS (5 * GO_MS)
#define PREEMPT_GRACE_NS (1 * GO_MS)
#define MIN_DELAY_NS (20 * GO_US)
#define MAX_DELAY_NS (10 * GO_MS)
#define SCAVENGE_PERIOD_NS (100 * GO_MS)
#define DEFERRED_WAKE_NS (50 * GO_US)

/* The monitor sleeps on this futex word between looks; 1 while it is in a
   long (backed-off) sleep, so that go_blocking_begin can shorten it. */
static _Atomic uint32_t mon_sleeping;

/* Non-zero while some P is asked to preempt its goroutine: written by the
   monitor only (each round), read relaxed on the fast paths.  A stale 1
   costs a call that finds its own P not asked; a stale 0 delays the yield
   to the next round. */
GORT_API _Atomic uint32_t go_preempt_pending_;

void gort__preempt_yield(void)
{
    struct gort_m *m = gort__m_self();
    if (!m || !m->curg || !m->p || !atomic_load_explicit(&m->p->preempt, memory_order_relaxed) ||
        !atomic_exchange_explicit(&m->p->preempt, 0, memory_order_relaxed))
        return;
    gort__preempt_self();
}

/*
 * The nesting count belongs to the goroutine (g->blocking); m->in_blocking
 * mirrors "the goroutine this M runs is inside go_blocking", for the
 * monitor.  switch_to clears it when such a goroutine switches out (it may
 * park between begin and end, e.g. a channel operation inside) and sets it
 * again where it resumes (gort__blocking_resume).
 */
void go_blocking_begin(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL;
    if (!g)
        return;
    if (g->blocking++ > 0)
        return;
    atomic_store_explicit(&m->blocking_since, gort__tick(), memory_order_relaxed);
    /* Release: blocking_since is published with the flag. */
    atomic_store_explicit(&m->in_blocking, 1, memory_order_release);
    /* A monitor that backed off to 10 ms would see us far too late. */
    if (atomic_load_explicit(&mon_sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&mon_sleeping, 0, memory_order_relaxed))
        gort__futex_wake(&mon_sleeping, 1);
}

void go_blocking_end(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL;
    if (!g || g->blocking <= 0)
        return;
    if (--g->blocking > 0)
        return;
    atomic_store_explicit(&m->in_blocking, 0, memory_order_relaxed);
    /* Our P was given away while we blocked: give back the slot now. */
    if (atomic_load_explicit(&m->p->retire, memory_order_relaxed))
        go_yield();
}

void gort__blocking_resume(struct gort_m *m)
{
    atomic_store_explicit(&m->blocking_since, gort__tick(), memory_order_relaxed);
    atomic_store_explicit(&m->in_blocking, 1, memory_order_release);
}

/* Marks p to retire and puts a fresh P in its place.  Returns false if it
   was already retiring. */
void gort__p_retire_mark(struct gort_p *p)
{
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&p->retire, &zero, 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;
    pthread_mutex_lock(&gort__sched.lock);
    {
        struct gort_p *np = gort__p_activate_locked();
        np->link = gort__sched.pidle;
        gort__sched.pidle = np;
        atomic_fetch_add_explicit(&gort__sched.npidle, 1, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&gort__sched.lock);
}

static bool has_waiting_work(struct gort_p *p)
{
    if (!gort__runq_empty(p))
        return true;
    return atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0 &&
           atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) == 0;
}

/* One look at every P; returns true if it handed anything off. */
static bool retake(int64_t now, uint64_t nowtick)
{
    bool acted = false, asking = false;
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        struct gort_p *p = gort__sched.allp[i];
        struct gort_m *m = atomic_load_explicit(&p->m, memory_order_acquire);
        uint32_t tick = atomic_load_explicit(&p->schedtick, memory_order_relaxed);
        bool stuck = false;
        if (!m) {
            p->mon_since = now;
            continue;
        }
        if (atomic_load_explicit(&p->retire, memory_order_relaxed)) {
            /* Goroutines readied onto a retired P while its M still runs
               user code: move them on too. */
            if (!gort__runq_empty(p)) {
                gort__inject_list(gort__runq_take_all(p));
                acted = true;
            }
            continue;
        }
        if (tick != p->mon_tick || p->mon_since == 0) { /* 0: first look */
            p->mon_tick = tick;
            p->mon_since = now;
            if (p->mon_preempt_at) {
                /* It went through the scheduler: whatever we asked is done
                   (a request still set would only cost one early yield). */
                p->mon_preempt_at = 0;
                atomic_store_explicit(&p->preempt, 0, memory_order_relaxed);
            }
        }
        if (!has_waiting_work(p))
            continue;
        /* A goroutine waits on a P whose goroutine keeps running (its wake
           was deferred, proc.c put_local): let an idle worker take it. */
        if (now - p->mon_since > DEFERRED_WAKE_NS && !gort__runq_empty(p) &&
            atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) > 0 &&
            atomic_load_explicit(&gort__sched.nmspinning, memory_order_relaxed) == 0) {
            gort__wakep();
            acted = true;
        }
        if (atomic_load_explicit(&m->in_blocking, memory_order_acquire) > 0) {
            uint64_t since = atomic_load_explicit(&m->blocking_since, memory_order_relaxed);
            stuck = nowtick > since && gort__ticks_to_ns(nowtick - since) > BLOCKING_THRESHOLD_NS;
        }
        if (!stuck && now - p->mon_since > PREEMPT_THRESHOLD_NS) {
            if (!p->mon_preempt_at) {
                p->mon_preempt_at = now;
                atomic_store_explicit(&p->preempt, 1, memory_order_relaxed);
                acted = true; /* look again soon */
            }
            asking = true;
            stuck = now - p->mon_since > STUCK_THRESHOLD_NS &&
                    now - p->mon_preempt_at >= PREEMPT_GRACE_NS;
        }
        if (!stuck)
            continue;
        gort__p_retire_mark(p);
        gort__inject_list(gort__runq_take_all(p));
        gort__wakep();
        acted = true;
    }
    if (atomic_load_explicit(&go_preempt_pending_, memory_order_relaxed) != (uint32_t)asking)
        atomic_store_explicit(&go_preempt_pending_, asking, memory_order_relaxed);
    return acted;
}

/* Some M runs a goroutine inside go_blocking: keep looking every 20 us. */
static bool any_blocking(void)
{
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        struct gort_m *m = atomic_load_explicit(&gort__sched.allp[i]->m, memory_order_acquire);
        if (m && atomic_load_explicit(&m->in_blocking, memory_order_relaxed))
            return true;
    }
    return false;
}

static void *sysmon(void *arg)
{
    int64_t delay = MIN_DELAY_NS, last_scavenge = go_now();
    int idle = 0;
    (void)arg;
    for (;;) {
        if (delay > MIN_DELAY_NS) {
            /* Long sleep: go_blocking_begin may cut it short. */
            atomic_store_explicit(&mon_sleeping, 1, memory_order_relaxed);
            gort__futex_wait(&mon_sleeping, 1, go_now() + delay);
            if (!atomic_exchange_explicit(&mon_sleeping, 0, memory_order_relaxed)) {
                idle = 0; /* woken: a goroutine entered go_blocking */
                delay = MIN_DELAY_NS;
            }
        } else {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = delay};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
        if (go_now() - last_scavenge > SCAVENGE_PERIOD_NS) {
            gort__stack_scavenge();
            last_scavenge = go_now();
        }
        if (gort__netpoll_sysmon(go_now()) > 0 || retake(go_now(), gort__tick()) ||
            any_blocking()) {
            idle = 0;
            delay = MIN_DELAY_NS;
            continue;
        }
        /* Nothing happened for 1 ms: back off, up to 10 ms. */
        if (++idle > 50 && delay < MAX_DELAY_NS) {
            delay *= 2;
            if (delay > MAX_DELAY_NS)
                delay = MAX_DELAY_NS;
        }
    }
    return NULL;
}

void gort__sysmon_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, sysmon, NULL) != 0)
        gort__fatal("cannot start the monitor thread");
    pthread_attr_destroy(&attr);
}
