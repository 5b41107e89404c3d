/*
 * proc.c - the M:N scheduler: workers, switching, spawning, parking.
 *
 * Go's G/M/P design (docs/design/scheduler.md has the long version).  A P
 * is the right to run goroutines and owns a run queue; an M is a thread;
 * an M runs goroutines only while it holds a P.  GOMAXPROCS Ps exist.
 *
 * Switching.  Every switch goes through switch_to(), which records on the
 * M an "after" action and jumps straight to the next context: another
 * goroutine when this P has one ready (one switch, no detour through a
 * scheduler stack), else the M's own g0 stack, which runs the full search
 * for work and may sleep.  The context that resumes runs the after action
 * first (after_switch): put the yielding goroutine on the queue, commit a
 * park (unlock the channel), or free the stack of a goroutine that just
 * exited.  This is how Go's mcall/park_m separates "stop running on this
 * stack" from "let others find it", without paying for two switches: a
 * goroutine becomes findable only once nothing runs on its stack.
 *
 * Finding work (find_runnable, on g0), in order: due timers; the local
 * run-next slot and ring (every 61st schedule the global queue first, so
 * that it is never starved); the global queue; the netpoller without
 * blocking; stealing half of another P's ring (and run-next on the last
 * pass), running other Ps' due timers as we pass; and finally giving the
 * P up.  Spinning (searching without work) is bounded to half the busy Ps.
 *
 * Sleeping and waking without lost wake-ups (Go's "delicate dance"): a
 * spinning M that gives up its P first publishes npidle (sched.lock),
 * then decrements nmspinning, then re-checks every run queue; a readier
 * first publishes the goroutine, then reads npidle and nmspinning (wakep).
 * Both sides are seq_cst, so at least one sees the other.  One idle M at
 * a time sleeps in the netpoller (epoll) until the earliest timer; the
 * rest sleep on their futex note.
 *
 * Thread-local state: a goroutine may resume on another M after any
 * switch, so the runtime never keeps a TLS value across one.  switch_to
 * learns the M it resumed on from the switch itself (gort__ctx_transfer
 * carries the resuming M's pointer across); elsewhere the M is read
 * through gort__m_self(), a non-inlined call.  errno is saved into the
 * goroutine at switch-out and restored at switch-in, through the M's
 * cached &errno (m->errno_ptr, taken on its own thread at start), so the
 * switch calls neither __errno_location nor the TLS reader.
 *
 * Locks (rank order, low first): sched.lock < p->timer_lock < stack pool
 * < goroutine free list.  No lock is held across a context switch.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "runq.h"
#include "runtime.h"

#if defined(GORT_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif
#if defined(GORT_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#define DEEP_STACK_NS (50 * 1000) /* see release_stack */
#define LINGER_ROUNDS 20          /* find_runnable: ~20 x 64 pauses, a few us */
#define LINGER_PAUSES 64

struct gort_sched gort__sched = {.lock = GORT_MUTEX_INITIALIZER};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic int inited;
static __thread struct gort_m *tls_m __attribute__((tls_model("initial-exec")));
static struct gort_m *allm;          /* sched.lock; Ms are never freed */
static uint64_t deep_ticks;          /* ticks in DEEP_STACK_NS */
static double ns_per_tick = 1.0;

static void schedule(struct gort_m *m) __attribute__((noreturn));
static void g_entry(void *arg) __attribute__((noreturn));
static void mstart_common(struct gort_m *m) __attribute__((noreturn));

/* ---- thread-local access --------------------------------------------- */

/* Non-inlined on purpose: after a switch the goroutine may be on another
   thread, and the compiler must not reuse a TLS address computed before
   it (it would, for an inlined __thread access in a shared library). */
__attribute__((noinline)) struct gort_m *gort__m_self(void)
{
    struct gort_m *m = tls_m;
    __asm__ __volatile__("" ::: "memory");
    return m;
}

struct gort_g *gort__g_self(void)
{
    struct gort_m *m = gort__m_self();
    return m ? m->curg : NULL;
}

/* ---- a cheap clock for "did this goroutine run long?" ------------------ */

uint64_t gort__tick(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#endif
}

int64_t gort__ticks_to_ns(uint64_t ticks)
{
    return (int64_t)((double)ticks * ns_per_tick);
}

static void calibrate_ticks(void)
{
    int64_t n0 = go_now(), n1;
    uint64_t t0 = gort__tick(), t1;
    do {
        n1 = go_now();
    } while (n1 - n0 < 200 * GO_US);
    t1 = gort__tick();
    if (t1 > t0)
        ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
    deep_ticks = (uint64_t)((double)DEEP_STACK_NS / ns_per_tick);
}

/* ---- M and P lifecycle -------------------------------------------------- */

static struct gort_p *p_new(int32_t id)
{
    struct gort_p *p = aligned_alloc(GORT_CACHELINE, (sizeof *p + GORT_CACHELINE - 1) &
                                                         ~(size_t)(GORT_CACHELINE - 1));
    if (!p)
        gort__fatal("out of memory allocating a P");
    memset(p, 0, sizeof *p);
    p->id = id;
    pthread_mutex_init(&p->timer_lock, NULL);
    return p;
}

/* sched.lock held. */
static void pidle_put(struct gort_p *p)
{
    p->link = gort__sched.pidle;
    gort__sched.pidle = p;
    atomic_fetch_add_explicit(&gort__sched.npidle, 1, memory_order_seq_cst);
}

static struct gort_p *pidle_get(void)
{
    struct gort_p *p = gort__sched.pidle;
    if (p) {
        gort__sched.pidle = p->link;
        atomic_fetch_sub_explicit(&gort__sched.npidle, 1, memory_order_seq_cst);
    }
    return p;
}

static void acquirep(struct gort_m *m, struct gort_p *p)
{
    m->p = p;
    atomic_store_explicit(&p->m, m, memory_order_release);
}

static struct gort_p *releasep(struct gort_m *m)
{
    struct gort_p *p = m->p;
    atomic_store_explicit(&p->m, NULL, memory_order_release);
    m->p = NULL;
    return p;
}

/* A spare P (or a new one) for the idle list.  sched.lock held. */
struct gort_p *gort__p_activate_locked(void)
{
    struct gort_p *p = gort__sched.pspare;
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_relaxed);
    if (p) {
        gort__sched.pspare = p->link;
        p->spare = false;
    } else {
        if (n >= GORT_MAX_PROCS)
            gort__fatal("more than %d processors", GORT_MAX_PROCS);
        p = p_new(n);
        gort__sched.allp[n] = p;
        /* Release: the new P, to readers that acquire nallp. */
        atomic_store_explicit(&gort__sched.nallp, n + 1, memory_order_release);
    }
    atomic_store_explicit(&p->retire, 0, memory_order_relaxed);
    return p;
}

static void note_sleep(struct gort_m *m)
{
    while (atomic_load_explicit(&m->note, memory_order_acquire) == 0)
        gort__futex_wait(&m->note, 0, GO_FOREVER);
    atomic_store_explicit(&m->note, 0, memory_order_relaxed);
}

static void note_wake(struct gort_m *m)
{
    /* Release: publishes m->nextp and m->spinning to note_sleep. */
    atomic_store_explicit(&m->note, 1, memory_order_release);
    gort__futex_wake(&m->note, 1);
}

static void *mstart(void *arg)
{
    struct gort_m *m = arg;
    tls_m = m;
    m->errno_ptr = &errno;
    mstart_common(m);
}

/* Creates a thread that starts by acquiring p.  sched.lock not held. */
static int newm(struct gort_p *p, bool spinning)
{
    struct gort_m *m = calloc(1, sizeof *m);
    pthread_attr_t attr;
    int err;
    if (!m)
        return -ENOMEM;
    m->nextp = p;
    m->spinning = spinning;
    pthread_mutex_lock(&gort__sched.lock);
    if (gort__sched.nthreads >= gort__sched.maxthreads) {
        pthread_mutex_unlock(&gort__sched.lock);
        gort__fatal("program exceeds %d-thread limit (GORT_MAXTHREADS)", gort__sched.maxthreads);
    }
    m->id = gort__sched.nthreads++;
    m->alllink = allm;
    allm = m;
    pthread_mutex_unlock(&gort__sched.lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&m->thread, &attr, mstart, m);
    pthread_attr_destroy(&attr);
    if (err) {
        pthread_mutex_lock(&gort__sched.lock);
        gort__sched.nthreads--;
        m->exiting = true;
        pthread_mutex_unlock(&gort__sched.lock);
        return -err;
    }
    return 0;
}

/* Parks this M until someone hands it a P (m->nextp). */
static void stopm(struct gort_m *m)
{
    pthread_mutex_lock(&gort__sched.lock);
    m->link = gort__sched.midle;
    gort__sched.midle = m;
    gort__sched.nmidle++;
    pthread_mutex_unlock(&gort__sched.lock);
    note_sleep(m);
    acquirep(m, m->nextp);
    m->nextp = NULL;
}

/*
 * Runs some M on p (an idle P if NULL).  If `spinning`, the caller has
 * already counted the new M in nmspinning; it is undone if no P is idle.
 */
static void startm(struct gort_p *p, bool spinning)
{
    struct gort_m *m;
    pthread_mutex_lock(&gort__sched.lock);
    if (!p) {
        p = pidle_get();
        if (!p) {
            pthread_mutex_unlock(&gort__sched.lock);
            if (spinning)
                atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
            return;
        }
    }
    m = gort__sched.midle;
    if (m) {
        gort__sched.midle = m->link;
        gort__sched.nmidle--;
    }
    pthread_mutex_unlock(&gort__sched.lock);
    if (m) {
        m->spinning = spinning;
        m->nextp = p;
        note_wake(m);
        return;
    }
    if (newm(p, spinning) != 0) {
        /* No thread: give the P back; running Ms will find the work. */
        pthread_mutex_lock(&gort__sched.lock);
        pidle_put(p);
        pthread_mutex_unlock(&gort__sched.lock);
        if (spinning)
            atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
    }
}

/* Readied work exists: make sure some M is looking for it (Go's wakep). */
void gort__wakep(void)
{
    int32_t zero = 0;
    if (atomic_load_explicit(&gort__sched.npidle, memory_order_seq_cst) == 0)
        return;
    if (atomic_load_explicit(&gort__sched.nmspinning, memory_order_seq_cst) != 0 ||
        !atomic_compare_exchange_strong_explicit(&gort__sched.nmspinning, &zero, 1,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return;
    startm(NULL, true);
}

/* Gives p away while this M blocks or exits (Go's handoffp). */
static void handoffp(struct gort_p *p)
{
    int32_t zero = 0;
    if (!gort__runq_empty(p) || atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed)) {
        startm(p, false);
        return;
    }
    if (atomic_load_explicit(&gort__sched.nmspinning, memory_order_seq_cst) +
                atomic_load_explicit(&gort__sched.npidle, memory_order_seq_cst) == 0 &&
        atomic_compare_exchange_strong_explicit(&gort__sched.nmspinning, &zero, 1,
                                                memory_order_seq_cst, memory_order_relaxed)) {
        startm(p, true);
        return;
    }
    pthread_mutex_lock(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed)) {
        pthread_mutex_unlock(&gort__sched.lock);
        startm(p, false);
        return;
    }
    if (atomic_load_explicit(&p->timer0, memory_order_acquire) != 0 &&
        !atomic_load_explicit(&gort__sched.polling, memory_order_seq_cst)) {
        /* Someone must sleep until this P's timers. */
        pthread_mutex_unlock(&gort__sched.lock);
        startm(p, false);
        return;
    }
    pidle_put(p);
    pthread_mutex_unlock(&gort__sched.lock);
    if (atomic_load_explicit(&p->timer0, memory_order_acquire) != 0)
        gort__netpoll_break();
}

/* Puts a list (through schedlink) on the global queue and wakes Ms. */
void gort__inject_list(struct gort_g *list)
{
    int n = 0;
    if (!list)
        return;
    pthread_mutex_lock(&gort__sched.lock);
    while (list) {
        struct gort_g *next = list->schedlink;
        gort__globrunq_put_locked(list);
        list = next;
        n++;
    }
    pthread_mutex_unlock(&gort__sched.lock);
    while (n-- > 0 && atomic_load_explicit(&gort__sched.npidle, memory_order_seq_cst) > 0)
        startm(NULL, false);
}

/* ---- switching --------------------------------------------------------- */

static void after_switch(struct gort_m *m)
{
    void (*fn)(struct gort_m *, struct gort_g *, void *) = m->after_fn;
    if (fn) {
        m->after_fn = NULL;
        fn(m, m->after_prev, m->after_arg);
    }
}

/* Gives a goroutine its stack and initial frame on its first run. */
static void prepare_first_run(struct gort_g *g)
{
    g->stack = gort__stack_alloc();
    if (!g->stack)
        gort__fatal("out of memory allocating a stack for goroutine %llu",
                    (unsigned long long)g->id);
#if defined(GORT_ASAN)
    /* A reused stack keeps the shadow of frames that never returned (the
       exit path of its last goroutine, a select that parked deep); new
       frames do not clear all of it.  Unpoison the part that sees use. */
    {
        size_t n = g->stack->hi - g->stack->lo - 4096;
        if (n > 64 * 1024)
            n = 64 * 1024;
        __asan_unpoison_memory_region((void *)(g->stack->hi - n), n);
    }
#endif
    g->sp = gort__ctx_make((void *)g->stack->hi, g_entry, g);
    g->saved_errno = 0;
    g->start_tick = gort__tick();
#if defined(GORT_TSAN)
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* Runs on the resumed side of every switch; m is the M now running us
   (passed across the switch by the M that resumed us). */
static inline void resumed(struct gort_m *m)
{
    struct gort_g *g = m->curg;
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(g ? g->asan_fake_stack : m->asan_fake_stack, NULL, NULL);
#endif
    after_switch(m);
    if (g) {
        *m->errno_ptr = g->saved_errno;
        if (unlikely(g->blocking))
            gort__blocking_resume(m);
    }
}

/*
 * Leaves the current context (goroutine `from`, or g0 if NULL) for `to`
 * (or g0 if NULL).  after(m, prev, arg) runs first thing on the other side.
 */
#if defined(GORT_TSAN)
__attribute__((no_sanitize("thread")))
#endif
static void switch_to(struct gort_m *m, struct gort_g *from, struct gort_g *to,
                      void (*after)(struct gort_m *, struct gort_g *, void *), void *arg)
{
    void **save = from ? &from->sp : &m->g0_sp;
    if (from) {
        from->saved_errno = *m->errno_ptr;
        if (unlikely(from->blocking))
            atomic_store_explicit(&m->in_blocking, 0, memory_order_relaxed);
        if (unlikely(from->stack->guard == GUARD_CANARY))
            gort__stack_check(from);
    }
    if (to) {
        gort__casgstatus(to, G_RUNNABLE, G_RUNNING);
        if (!to->stack)
            prepare_first_run(to);
    }
    m->curg = to;
    m->after_fn = after;
    m->after_prev = from;
    m->after_arg = arg;
#if defined(GORT_ASAN)
    {
        bool dying = from && atomic_load_explicit(&from->status, memory_order_relaxed) == G_DEAD;
        void **fake = from ? &from->asan_fake_stack : &m->asan_fake_stack;
        const void *bottom = to ? (const void *)(to->stack->lo) : m->g0_stack_bottom;
        size_t size = to ? to->stack->hi - to->stack->lo : m->g0_stack_size;
        __sanitizer_start_switch_fiber(dying ? NULL : fake, bottom, size);
    }
#endif
#if defined(GORT_TSAN)
    __tsan_switch_to_fiber(to ? to->tsan_fiber : m->tsan_fiber, 0);
#endif
    resumed(gort__ctx_transfer(save, to ? to->sp : m->g0_sp, m));
}

/* First code on a fresh goroutine stack. */
static void g_entry(void *arg)
{
    struct gort_g *g = arg;
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
    after_switch(gort__m_self());
#else
    after_switch(gort__m_self());
#endif
    errno = 0; /* park.h: errno is safe to use after a switch here */
    g->fn(g->arg);
    go_exit();
}

/*
 * Puts a goroutine readied (or spawned) on this P and decides whether
 * another worker should be woken for it.
 *
 * Go wakes a worker for every ready.  When the readier is about to block
 * (a channel ping-pong, a request/response), that wake-up costs a futex
 * round trip and lets the woken worker steal the goroutine from run-next,
 * bouncing the pair between cores: Go's ping-pong is slower on two
 * workers than on one.  So a goroutine that lands in an empty queue (only
 * run-next holds it) defers the wake-up: the P runs it at its next
 * scheduling point, and flush_deferred_wake then wakes a worker if work is
 * still queued.  A second readied goroutine (the queue is no longer
 * empty) wakes one at once, so fan-out still spreads.  If the readier
 * instead computes for long, the monitor wakes a worker for the waiting
 * goroutine (sysmon.c).
 */
static void put_local(struct gort_p *p, struct gort_g *g, bool next)
{
    bool had_work = !gort__runq_empty(p);
    gort__runq_put(p, g, next);
    if (had_work || !next)
        gort__wakep();
    else
        p->wake_deferred = true;
}

/* At a scheduling point, after taking the next goroutine. */
static inline void flush_deferred_wake(struct gort_p *p)
{
    if (unlikely(p->wake_deferred)) {
        p->wake_deferred = false;
        if (!gort__runq_empty(p))
            gort__wakep();
    }
}

/*
 * The next goroutine this P should run without going through g0, or NULL
 * to go through g0 (nothing local, this M is locked to its goroutine, the
 * P is being retired, or the candidate is locked to another M).
 */
static struct gort_g *pick_local(struct gort_m *m, struct gort_p *p)
{
    struct gort_g *g = NULL;
    uint32_t tick;
    if (m->lockedg || atomic_load_explicit(&p->retire, memory_order_relaxed))
        return NULL;
    tick = atomic_load_explicit(&p->schedtick, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->schedtick, tick, memory_order_relaxed);
    if (tick % GORT_FAIRNESS_TICK == 0) {
        if (atomic_load_explicit(&p->timer0, memory_order_relaxed) != 0)
            gort__timers_run(p, go_now());
        if (atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0) {
            pthread_mutex_lock(&gort__sched.lock);
            g = gort__globrunq_get_locked(p, 1);
            pthread_mutex_unlock(&gort__sched.lock);
        }
    }
    if (!g)
        g = gort__runq_get(p);
    if (g && g->lockedm) {
        gort__runq_put(p, g, true);
        return NULL;
    }
    flush_deferred_wake(p);
    return g;
}

/* ---- the goroutine side: yield, park, exit ----------------------------- */

static void after_yield(struct gort_m *m, struct gort_g *prev, void *arg)
{
    gort__runq_put(m->p, prev, false);
}

void go_yield(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL, *next;
    if (!g) {
        sched_yield();
        return;
    }
    next = pick_local(m, m->p);
    if (!next && gort__runq_empty(m->p) &&
        atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) == 0 &&
        !atomic_load_explicit(&m->p->retire, memory_order_relaxed))
        return; /* nothing else to run here: keep going */
    gort__casgstatus(g, G_RUNNING, G_RUNNABLE);
    switch_to(m, g, next, after_yield, NULL);
}

static void after_preempt(struct gort_m *m, struct gort_g *prev, void *arg)
{
    (void)m;
    (void)arg;
    pthread_mutex_lock(&gort__sched.lock);
    gort__globrunq_put_locked(prev);
    pthread_mutex_unlock(&gort__sched.lock);
}

/* Yields at a preemption point (sysmon.c): to the back of the global
   queue, as Go's preemption does, so that the goroutine that hogged the P
   runs after everything waiting, local or global (go_yield requeues
   locally, and a P looks at the global queue only every 61st switch). */
void gort__preempt_self(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m->curg, *next = pick_local(m, m->p);
    gort__casgstatus(g, G_RUNNING, G_RUNNABLE);
    switch_to(m, g, next, after_preempt, NULL);
}

static void after_park(struct gort_m *m, struct gort_g *prev, void *arg)
{
    void (**commit)(void *) = arg;
    void *carg = ((void **)arg)[1];
    (*commit)(carg);
}

void gort__gopark(void (*commit)(void *), void *arg)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m->curg;
    struct gort_g *next = pick_local(m, m->p);
    struct {
        void (*commit)(void *);
        void *arg;
    } c = {commit, arg};
    gort__casgstatus(g, G_RUNNING, G_WAITING);
    switch_to(m, g, next, after_park, &c);
}

void gort__ready(struct gort_g *g, bool next)
{
    struct gort_m *m = gort__m_self();
    gort__casgstatus(g, G_WAITING, G_RUNNABLE);
    if (m && m->p) {
        put_local(m->p, g, next);
        return;
    }
    if (m && m->np_collect) {
        /* The polling M, between epoll and taking a P (poll_until_timer).
           Appended, so that the list keeps the order of the events. */
        struct gort_g **pp = &m->np_list;
        while (*pp)
            pp = &(*pp)->schedlink;
        g->schedlink = NULL;
        *pp = g;
        return;
    }
    pthread_mutex_lock(&gort__sched.lock);
    gort__globrunq_put_locked(g);
    pthread_mutex_unlock(&gort__sched.lock);
    gort__wakep();
}

static void after_exit(struct gort_m *m, struct gort_g *prev, void *arg)
{
    /* A goroutine that lived long may have grown its stack deep: touching
       fresh pages costs more than 1 us each, so a short life bounds the
       depth, and a long one amortises the madvise. */
    bool deep = gort__tick() - prev->start_tick > deep_ticks;
#if defined(GORT_TSAN)
    __tsan_destroy_fiber(prev->tsan_fiber);
    prev->tsan_fiber = NULL;
#endif
    gort__stack_release(prev->stack, deep);
    gort__g_free(m->p, prev);
}

_Noreturn void go_exit(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL, *next;
    struct gort_p *p;
    if (!g)
        go_panic("go_exit called outside a goroutine");
    gort__run_defers(g);
    m = gort__m_self(); /* deferred calls may have parked */
    p = m->p;
    atomic_store_explicit(&p->ngoroutines,
                          atomic_load_explicit(&p->ngoroutines, memory_order_relaxed) - 1,
                          memory_order_release);
    if (g->lockedm) {
        m->exiting = true; /* the thread goes with its goroutine */
        m->lockedg = NULL;
        next = NULL;
    } else {
        next = pick_local(m, p);
    }
    gort__casgstatus(g, G_RUNNING, G_DEAD);
    switch_to(m, g, next, after_exit, NULL);
    __builtin_unreachable();
}

/* ---- spawning ---------------------------------------------------------- */

int go_spawn(void (*fn)(void *arg), void *arg)
{
    struct gort_m *m;
    struct gort_p *p;
    struct gort_g *g;
    if (!fn)
        return -EINVAL;
    gort__init();
    /* A preemption point (sysmon.c): a loop spawning a million goroutines
       never parks; without it the monitor would hand its P away and the
       loop would run beside its children, beyond GOMAXPROCS. */
    gort__preempt_point();
    m = gort__m_self();
    p = m ? m->p : NULL;
    g = gort__g_alloc(p);
    if (!g)
        return -ENOMEM;
    g->fn = fn;
    g->arg = arg;
    g->defers = NULL;
    g->id = gort__g_newid(p);
    gort__casgstatus(g, G_IDLE, G_RUNNABLE);
    if (p) {
        atomic_store_explicit(&p->ngoroutines,
                              atomic_load_explicit(&p->ngoroutines, memory_order_relaxed) + 1,
                              memory_order_release);
        put_local(p, g, true);
        return 0;
    } else {
        atomic_fetch_add_explicit(&gort__sched.ngoroutines_ext, 1, memory_order_release);
        pthread_mutex_lock(&gort__sched.lock);
        gort__globrunq_put_locked(g);
        pthread_mutex_unlock(&gort__sched.lock);
        if (gort__sched.nthreads == 0) {
            /* The very first goroutine: fail visibly if no thread can run it. */
            int32_t zero = 0;
            if (atomic_compare_exchange_strong_explicit(&gort__sched.nmspinning, &zero, 1,
                                                        memory_order_seq_cst,
                                                        memory_order_relaxed))
                startm(NULL, true);
            if (gort__sched.nthreads == 0)
                return -EAGAIN;
            return 0;
        }
    }
    gort__wakep();
    return 0;
}

/* ---- the scheduler side (g0) --------------------------------------------- */

/* Drops the spinning state after finding work; wakes another spinner if
   this was the last, since there may be more work (Go's resetspinning). */
static void reset_spinning(struct gort_m *m)
{
    m->spinning = false;
    if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst) == 1)
        gort__wakep();
}

static void run_all_timers(int64_t now)
{
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        struct gort_p *p2 = gort__sched.allp[i];
        int64_t w = atomic_load_explicit(&p2->timer0, memory_order_acquire);
        if (w != 0 && w <= now)
            gort__timers_run(p2, now);
    }
}

static struct gort_g *steal_work(struct gort_m *m, struct gort_p *p)
{
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int round = 0; round < 4; round++) {
        uint32_t start = (uint32_t)gort__fastrand();
        for (int32_t i = 0; i < n; i++) {
            struct gort_p *victim = gort__sched.allp[(start + (uint32_t)i) % (uint32_t)n];
            struct gort_g *g;
            if (victim == p)
                continue;
            g = gort__runq_steal(p, victim, round == 3);
            if (g)
                return g;
        }
    }
    return NULL;
}

/* This M's P was marked to retire (go_maxprocs shrank, or the monitor
   replaced it while we were blocked): hand its work to others, park the
   P as a spare and this M as idle. */
static void retire_p(struct gort_m *m)
{
    struct gort_p *p = releasep(m);
    gort__inject_list(gort__runq_take_all(p));
    pthread_mutex_lock(&gort__sched.lock);
    p->spare = true;
    p->link = gort__sched.pspare;
    gort__sched.pspare = p;
    pthread_mutex_unlock(&gort__sched.lock);
    /* Its timers stay on it; find_runnable runs every P's due timers. */
    if (atomic_load_explicit(&p->timer0, memory_order_acquire) != 0)
        gort__netpoll_break();
    gort__wakep();
}

/* Blocks in the netpoller until the earliest timer, if no one else does.
   Goroutines it readies go to the global queue (this M holds no P).
   Returns true if this M got a P back. */
static bool poll_until_timer(struct gort_m *m)
{
    uint32_t zero = 0;
    int64_t next = gort__timers_next(), delay = -1, now;
    struct gort_p *p;
    struct gort_g *list;
    if (!atomic_compare_exchange_strong_explicit(&gort__sched.polling, &zero, 1,
                                                 memory_order_seq_cst, memory_order_relaxed)) {
        int64_t until = atomic_load_explicit(&gort__sched.poll_until, memory_order_seq_cst);
        if (next != 0 && (until == 0 || next < until))
            gort__netpoll_break();
        return false;
    }
    /* Publish when we will wake, then re-read the timers: one armed just
       before the store did not see us (gort__timer_add reads poll_until
       after arming).  The sleep must be computed from exactly the value
       published: a poller that published T but slept for ever (a timer
       running elsewhere made the re-read see none) left every timer armed
       after T unwoken, since their adders saw poll_until <= their `when`. */
    for (;;) {
        int64_t again;
        atomic_store_explicit(&gort__sched.poll_until, next ? next : INT64_MAX,
                              memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst); /* Dekker: see gort__timer_add */
        again = gort__timers_next();
        if (again == next)
            break;
        next = again;
    }
    now = go_now();
    if (next != 0)
        delay = next > now ? next - now : 0;
    if (!gort__runq_empty_any())
        delay = 0;
    /* Goroutines the poll readies are collected on this M (gort__ready),
       not pushed to the global queue with a wake-up each: this M is about
       to take a P and run them itself. */
    m->np_collect = true;
    gort__netpoll(delay);
    m->np_collect = false;
    list = m->np_list;
    m->np_list = NULL;
    atomic_store_explicit(&gort__sched.poll_until, 0, memory_order_seq_cst);
    atomic_store_explicit(&gort__sched.polling, 0, memory_order_seq_cst);
    pthread_mutex_lock(&gort__sched.lock);
    p = pidle_get();
    pthread_mutex_unlock(&gort__sched.lock);
    if (!p) {
        gort__inject_list(list);
        return false;
    }
    acquirep(m, p);
    /* The first readied runs here next; the rest queue behind it, and one
       more worker is woken if there is more than one. */
    while (list) {
        struct gort_g *g = list;
        list = g->schedlink;
        gort__runq_put(p, g, false);
    }
    return true;
}

/*
 * Finds a goroutine to run, blocking if there is none.  Returns with m->p
 * held.  See the comment at the top of the file for the order.
 */
static struct gort_g *find_runnable(struct gort_m *m)
{
    struct gort_p *p;
    struct gort_g *g;
    int64_t now;
top:
    p = m->p;
    if (atomic_load_explicit(&p->retire, memory_order_relaxed)) {
        /* Stop counting as spinning first: retire_p's wakep must be able
           to start an M for the work it hands over (it would see us
           spinning and do nothing, and we are about to sleep). */
        if (m->spinning) {
            m->spinning = false;
            atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
        }
        retire_p(m);
        stopm(m);
        goto top;
    }
    now = go_now();
    run_all_timers(now);
    atomic_store_explicit(&p->schedtick, atomic_load_explicit(&p->schedtick, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (atomic_load_explicit(&p->schedtick, memory_order_relaxed) % GORT_FAIRNESS_TICK == 0 &&
        atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0) {
        pthread_mutex_lock(&gort__sched.lock);
        g = gort__globrunq_get_locked(p, 1);
        pthread_mutex_unlock(&gort__sched.lock);
        if (g)
            return g;
    }
    if ((g = gort__runq_get(p)) != NULL)
        return g;
    if (atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0) {
        pthread_mutex_lock(&gort__sched.lock);
        g = gort__globrunq_get_locked(p, 0);
        pthread_mutex_unlock(&gort__sched.lock);
        if (g)
            return g;
    }
    if (gort__netpoll_waiters() && !atomic_load_explicit(&gort__sched.polling, memory_order_relaxed) &&
        gort__netpoll(0) > 0)
        goto top; /* readied into our run queue */
    /* Steal, if not too many Ms are already spinning. */
    {
        int32_t nprocs = atomic_load_explicit(&gort__sched.nprocs, memory_order_relaxed);
        int32_t busy = nprocs - atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed);
        if (m->spinning ||
            2 * atomic_load_explicit(&gort__sched.nmspinning, memory_order_relaxed) < busy) {
            if (!m->spinning) {
                m->spinning = true;
                atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
            }
            if ((g = steal_work(m, p)) != NULL)
                return g;
            /* Linger a few microseconds before sleeping: work often comes
               back at once (a producer readying its consumer), and a futex
               sleep plus wake-up costs far more than this.  Bounded, and
               only for a spinning M (at most half the busy Ps). */
            for (int i = 0; i < LINGER_ROUNDS; i++) {
                gort__procyield(LINGER_PAUSES);
                if (!gort__runq_empty_any()) {
                    if ((g = gort__runq_get(p)) != NULL || (g = steal_work(m, p)) != NULL)
                        return g;
                    if (atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0)
                        goto top;
                }
            }
        }
    }
    /* Nothing: give up the P (never with goroutines in its own queue:
       an idle P's queue is only looked at by thieves, and none may come). */
    pthread_mutex_lock(&gort__sched.lock);
    if (!gort__runq_empty(p)) {
        pthread_mutex_unlock(&gort__sched.lock);
        goto top;
    }
    if (atomic_load_explicit(&gort__sched.runq_size, memory_order_relaxed) > 0) {
        g = gort__globrunq_get_locked(p, 0);
        pthread_mutex_unlock(&gort__sched.lock);
        return g;
    }
    releasep(m);
    pidle_put(p);
    pthread_mutex_unlock(&gort__sched.lock);
    if (m->spinning) {
        m->spinning = false;
        atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
        /* The dance: we published npidle, then dropped nmspinning; now look
           again at every queue a readier may have filled meanwhile. */
        if (gort__runq_empty_any() == false) {
            pthread_mutex_lock(&gort__sched.lock);
            p = pidle_get();
            pthread_mutex_unlock(&gort__sched.lock);
            if (p) {
                acquirep(m, p);
                m->spinning = true;
                atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
                goto top;
            }
        }
    }
    if (poll_until_timer(m)) {
        /* What the poll readied is in our ring now, where a spinning thief
           may take it before we do: NULL here is possible. */
        if ((g = gort__runq_get(m->p)) != NULL) {
            if (!gort__runq_empty(m->p))
                gort__wakep(); /* more than one: get help */
            return g;
        }
        m->spinning = true;
        atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_seq_cst);
        goto top;
    }
    stopm(m);
    goto top;
}

/* True if every run queue (global and all Ps') is empty. */
bool gort__runq_empty_any(void)
{
    int32_t n = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    if (atomic_load_explicit(&gort__sched.runq_size, memory_order_seq_cst) > 0)
        return false;
    for (int32_t i = 0; i < n; i++)
        if (!gort__runq_empty(gort__sched.allp[i]))
            return false;
    return true;
}

/* This M is locked to a goroutine that cannot run now: give the P away
   and sleep until the goroutine is handed back with a P (Go's stoplockedm). */
static void stop_locked_m(struct gort_m *m)
{
    if (m->p)
        handoffp(releasep(m));
    note_sleep(m);
    acquirep(m, m->nextp);
    m->nextp = NULL;
}

/* g is locked to another M: give it our P and go idle (startlockedm). */
static void start_locked_m(struct gort_m *m, struct gort_g *g)
{
    struct gort_m *lm = g->lockedm;
    struct gort_p *p = releasep(m);
    lm->nextp = p;
    note_wake(lm);
    stopm(m);
}

static void exit_thread(struct gort_m *m)
{
    handoffp(releasep(m));
    pthread_mutex_lock(&gort__sched.lock);
    gort__sched.nthreads--;
    pthread_mutex_unlock(&gort__sched.lock);
    gort__stack_thread_fini();
    tls_m = NULL;
    pthread_exit(NULL);
}

static void execute(struct gort_m *m, struct gort_g *g)
{
    switch_to(m, NULL, g, NULL, NULL);
}

/* The scheduler loop on an M's own stack (g0).  Runs forever, except for
   an M whose locked goroutine exited: it takes its thread with it. */
static void schedule(struct gort_m *m)
{
    for (;;) {
        struct gort_g *g;
        m = gort__m_self();
        if (m->exiting)
            exit_thread(m);
        if (!m->p)
            stopm(m); /* lost the P while blocked (go_blocking_end) */
        if (m->lockedg) {
            /* Our goroutine parked or yielded into a queue: whoever takes
               it from there hands it back to us with a P. */
            stop_locked_m(m);
            if (m->spinning)
                reset_spinning(m);
            execute(m, m->lockedg);
            continue;
        }
        g = find_runnable(m);
        if (m->spinning)
            reset_spinning(m);
        flush_deferred_wake(m->p);
        if (g->lockedm && g->lockedm != m) {
            start_locked_m(m, g);
            continue;
        }
        execute(m, g);
    }
}

static void mstart_common(struct gort_m *m)
{
#if defined(GORT_ASAN)
    pthread_attr_t attr;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    m->g0_stack_bottom = addr;
    m->g0_stack_size = size;
#endif
#if defined(GORT_TSAN)
    m->tsan_fiber = __tsan_get_current_fiber();
#endif
    gort__stack_thread_init();
    acquirep(m, m->nextp);
    m->nextp = NULL;
    schedule(m);
}

/* ---- runtime start-up ------------------------------------------------------ */

static int default_procs(void)
{
    const char *env = getenv("GORT_MAXPROCS");
    cpu_set_t set;
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == 0 && v >= 1)
            return v > GORT_MAX_PROCS ? GORT_MAX_PROCS : (int)v;
        fprintf(stderr, "libgo-rt: ignoring GORT_MAXPROCS=%s (want a number >= 1)\n", env);
    }
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static void do_init(void)
{
    const char *env = getenv("GORT_MAXTHREADS");
    int n = default_procs();
    gort__sched.maxthreads = 10000;
    if (env && *env && atoi(env) > 0)
        gort__sched.maxthreads = atoi(env);
    calibrate_ticks();
    gort__stack_init();
    gort__netpoll_init();
    pthread_mutex_lock(&gort__sched.lock);
    for (int i = 0; i < n; i++)
        pidle_put(gort__p_activate_locked());
    atomic_store_explicit(&gort__sched.nprocs, n, memory_order_release);
    pthread_mutex_unlock(&gort__sched.lock);
    gort__sysmon_start();
    atomic_store_explicit(&inited, 1, memory_order_release);
}

void gort__init(void)
{
    if (likely(atomic_load_explicit(&inited, memory_order_acquire)))
        return;
    pthread_once(&init_once, do_init);
}

/*
 * GOMAXPROCS at run time.  Growing activates spare (or new) Ps onto the
 * idle list and wakes Ms for them.  Shrinking marks Ps to retire, idle
 * ones first (they leave the idle list at once); a running P retires when
 * its M next enters the scheduler.  No stop-the-world is needed because
 * a P is only ever touched by its owner, except through the lock-free
 * queue protocol and its timer lock.
 */
int go_maxprocs(int n)
{
    int old, grow = 0;
    struct gort_p *retired = NULL;
    gort__init();
    pthread_mutex_lock(&gort__sched.lock);
    old = atomic_load_explicit(&gort__sched.nprocs, memory_order_relaxed);
    if (n < 1 || n == old) {
        pthread_mutex_unlock(&gort__sched.lock);
        return old;
    }
    if (n > GORT_MAX_PROCS / 2)
        n = GORT_MAX_PROCS / 2;
    if (n > old) {
        for (int i = old; i < n; i++)
            pidle_put(gort__p_activate_locked());
        grow = n - old;
    } else {
        int todo = old - n;
        while (todo > 0 && gort__sched.pidle) {
            struct gort_p *p = pidle_get();
            atomic_store_explicit(&p->retire, 1, memory_order_relaxed);
            p->link = retired;
            retired = p;
            todo--;
        }
        for (int32_t i = atomic_load_explicit(&gort__sched.nallp, memory_order_relaxed);
             todo > 0 && i-- > 0;) {
            struct gort_p *p = gort__sched.allp[i];
            uint32_t zero = 0;
            if (!p->spare && atomic_compare_exchange_strong_explicit(
                                 &p->retire, &zero, 1, memory_order_relaxed, memory_order_relaxed))
                todo--;
        }
    }
    atomic_store_explicit(&gort__sched.nprocs, n, memory_order_release);
    pthread_mutex_unlock(&gort__sched.lock);
    while (retired) {
        struct gort_p *p = retired;
        retired = p->link;
        gort__inject_list(gort__runq_take_all(p));
        pthread_mutex_lock(&gort__sched.lock);
        p->spare = true;
        p->link = gort__sched.pspare;
        gort__sched.pspare = p;
        pthread_mutex_unlock(&gort__sched.lock);
    }
    while (grow-- > 0)
        gort__wakep();
    return old;
}

/* ---- locking goroutines to threads ---------------------------------------- */

void go_lock_os_thread(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL;
    if (!g)
        return;
    if (g->lockcount++ == 0) {
        g->lockedm = m;
        m->lockedg = g;
    }
}

void go_unlock_os_thread(void)
{
    struct gort_m *m = gort__m_self();
    struct gort_g *g = m ? m->curg : NULL;
    if (!g || g->lockcount == 0)
        return;
    if (--g->lockcount == 0) {
        g->lockedm = NULL;
        m->lockedg = NULL;
    }
}
