/*
 * park.c - the waiter: one way to block, for goroutines and plain threads.
 *
 * See park.h for the protocol.  The state of a waiter is one 64-bit word,
 * generation << 2 | state:
 *
 *   IDLE --prepare--> WAITING --claim--> CLAIMED --wake--> WOKEN
 *                        (gen+1)   (exactly one winner)
 *
 * prepare() starts a new generation; the ticket it returns is the word
 * value (gen, WAITING).  claim() is a CAS from the ticket to (gen,
 * CLAIMED): a waker holding a stale ticket (an older generation) always
 * fails, which is why the record behind a waiter is never freed (goroutine
 * records are recycled, thread waiters live in TLS).
 *
 * Goroutines: park switches away through gort__gopark; the commit
 * callback, and the deadline timer, are armed on the next context after
 * the switch (the timer before the commit: once the commit unlocks, the
 * goroutine may be running again and its timer record must not be touched
 * by anyone but it).  wake() readies the goroutine into the waker's
 * run-next slot.  On resume the goroutine deletes its timer if it is still
 * pending; a timer that fires late finds its ticket stale.
 *
 * Plain threads: park runs commit, then sleeps on the low 32 bits of the
 * word with FUTEX_WAIT until the state is WOKEN, or claims its own waiter
 * at the deadline (-ETIMEDOUT).  A thread that lost the claim race to a
 * waker waits (without deadline) for that waker's WOKEN store, which is
 * imminent: the waker claimed, so it is between claim and wake.
 *
 * Memory ordering: claim is acq_rel (the winner sees what the parker wrote
 * before publishing; it then writes results).  wake's release store of
 * WOKEN (thread) or the release inside gort__ready's casgstatus
 * (goroutine) publishes the results to the parker's acquire.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "runq.h"
#include "runtime.h"

enum { W_IDLE = 0, W_WAITING = 1, W_CLAIMED = 2, W_WOKEN = 3 };
#define W_STATE(v) ((uint32_t)((v) & 3))
#define W_GEN(v) ((v) & ~(uint64_t)3)

static __thread gort_waiter_t thread_waiter __attribute__((tls_model("initial-exec")));

gort_waiter_t *gort__waiter_self(void)
{
    struct gort_g *g = gort__g_self();
    return g ? &g->waiter : &thread_waiter;
}

uint64_t gort__waiter_prepare(gort_waiter_t *w)
{
    uint64_t v = atomic_load_explicit(&w->word, memory_order_relaxed);
    uint64_t ticket = W_GEN(v) + 4 + W_WAITING;
    /* Relaxed: wakers find the waiter through a lock (or a queue) that the
       parker releases after this store. */
    atomic_store_explicit(&w->word, ticket, memory_order_relaxed);
    w->g = gort__g_self();
    return ticket;
}

bool gort__waiter_claim(gort_waiter_t *w, uint64_t ticket)
{
    uint64_t expect = ticket;
    return atomic_compare_exchange_strong_explicit(&w->word, &expect, W_GEN(ticket) | W_CLAIMED,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

void gort__waiter_wake(gort_waiter_t *w, int result)
{
    uint64_t v = atomic_load_explicit(&w->word, memory_order_relaxed);
    struct gort_g *g = w->g;
    atomic_store_explicit(&w->result, result, memory_order_relaxed);
    /* Release: publishes result (and whatever the waker copied into the
       parker's buffers) to the parker's acquire load of the word. */
    atomic_store_explicit(&w->word, W_GEN(v) | W_WOKEN, memory_order_release);
    if (g)
        gort__ready(g, true);
    else
        gort__futex_wake((_Atomic uint32_t *)&w->word, 1);
}

/* ---- goroutines -------------------------------------------------------- */

struct park_commit {
    void (*commit)(void *);
    void *arg;
    int64_t deadline;
    struct gort_g *g;
    uint64_t ticket;
};

static void deadline_fire(void *arg, uint64_t ticket)
{
    struct gort_g *g = arg;
    if (gort__waiter_claim(&g->waiter, ticket))
        gort__waiter_wake(&g->waiter, -ETIMEDOUT);
}

/* Runs on the next context after the switch; `arg` is on the parked
   goroutine's stack, so everything is read before the commit. */
static void park_commit(void *arg)
{
    struct park_commit c = *(struct park_commit *)arg;
    if (c.deadline != GO_FOREVER) {
        c.g->timer.when = c.deadline;
        c.g->timer.fn = deadline_fire;
        c.g->timer.arg = c.g;
        c.g->timer.seq = c.ticket;
        gort__timer_add(&c.g->timer);
    }
    if (c.commit)
        c.commit(c.arg);
}

static int park_goroutine(struct gort_g *g, gort_waiter_t *w, void (*commit)(void *),
                          void *arg, int64_t deadline)
{
    struct park_commit c = {commit, arg, deadline, g,
                            atomic_load_explicit(&w->word, memory_order_relaxed)};
    gort__gopark(park_commit, &c);
    if (deadline != GO_FOREVER)
        gort__timer_del(&g->timer);
    (void)atomic_load_explicit(&w->word, memory_order_acquire);
    return atomic_load_explicit(&w->result, memory_order_relaxed);
}

/* ---- plain threads ------------------------------------------------------ */

static int park_thread(gort_waiter_t *w, void (*commit)(void *), void *arg, int64_t deadline)
{
    if (commit)
        commit(arg);
    for (;;) {
        uint64_t v = atomic_load_explicit(&w->word, memory_order_acquire);
        uint32_t s = W_STATE(v);
        int64_t d = deadline;
        if (s == W_WOKEN)
            break;
        if (s == W_WAITING && deadline != GO_FOREVER && go_now() >= deadline) {
            if (gort__waiter_claim(w, v)) {
                atomic_store_explicit(&w->result, -ETIMEDOUT, memory_order_relaxed);
                atomic_store_explicit(&w->word, W_GEN(v) | W_WOKEN, memory_order_relaxed);
                break;
            }
            continue;
        }
        if (s == W_CLAIMED)
            d = GO_FOREVER; /* the waker is between claim and wake */
        gort__futex_wait((_Atomic uint32_t *)&w->word, (uint32_t)v, d);
    }
    return atomic_load_explicit(&w->result, memory_order_relaxed);
}

int gort__waiter_park(gort_waiter_t *w, void (*commit)(void *), void *arg, int64_t deadline)
{
    struct gort_g *g = gort__g_self();
    int saved = errno;
    int r = g ? park_goroutine(g, w, commit, arg, deadline)
              : park_thread(w, commit, arg, deadline);
    errno = saved; /* on whatever thread we are now (park.h) */
    return r;
}

/* Not foldable: no const attribute, and the empty asm hides the value. */
__attribute__((noinline)) int *gort__errno_addr(void)
{
    int *p = __errno_location();
    __asm__ __volatile__("" : "+r"(p));
    return p;
}

/* ---- sleeping ------------------------------------------------------------ */

void go_sleep(int64_t ns)
{
    struct gort_g *g;
    int64_t deadline;
    if (ns <= 0)
        return;
    gort__init();
    g = gort__g_self();
    deadline = go_now() + ns;
    if (deadline < 0)
        deadline = INT64_MAX; /* overflow: effectively forever */
    if (g) {
        gort_waiter_t *w = &g->waiter;
        gort__waiter_prepare(w);
        gort__waiter_park(w, NULL, NULL, deadline);
        return;
    }
    int saved = errno;
    struct timespec ts = {.tv_sec = deadline / GO_S, .tv_nsec = deadline % GO_S};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    errno = saved;
}

int64_t go_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * GO_S + ts.tv_nsec;
}

/* ---- spinning helpers for the sync types --------------------------------- */

void gort__procyield(unsigned n)
{
    while (n--) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#else
        __asm__ __volatile__("yield" ::: "memory");
#endif
    }
}

/* Go's sync_runtime_canSpin: spin a little only on a multicore machine,
   when other Ps are running (someone may release the lock soon) and our
   own run queue is empty (we would delay runnable goroutines). */
bool gort__can_spin(int iter)
{
    struct gort_m *m = gort__m_self();
    int32_t nprocs = atomic_load_explicit(&gort__sched.nprocs, memory_order_relaxed);
    int32_t npidle = atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed);
    int32_t nspin = atomic_load_explicit(&gort__sched.nmspinning, memory_order_relaxed);
    if (iter >= 4 || nprocs <= 1 || nprocs <= npidle + nspin + 1)
        return false;
    if (m && m->p && !gort__runq_empty(m->p))
        return false;
    return true;
}

bool gort__in_goroutine(void)
{
    return gort__g_self() != NULL;
}

uint64_t gort__fastrand(void)
{
    /* wyrand: one multiply, good enough for select's shuffle. */
    static __thread uint64_t state __attribute__((tls_model("initial-exec")));
    if (unlikely(state == 0))
        state = (uint64_t)go_now() ^ (uint64_t)(uintptr_t)&state;
    state += 0xa0761d6478bd642fULL;
    __uint128_t t = (__uint128_t)state * (state ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}
