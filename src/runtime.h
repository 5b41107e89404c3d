/*
 * runtime.h - the runtime's internal records and the calls between layers.
 *
 * Three records, as in Go:
 *   G  a goroutine: its saved context, its stack, its waiter;
 *   P  a processor: the right to run goroutines, with a run queue, caches
 *      of stacks and G records, and a timer heap.  There are GOMAXPROCS;
 *   M  a worker thread: runs the scheduler on its own (g0) stack and, while
 *      it holds a P, goroutines.
 * Separating P from M is what lets a thread that blocks in a system call
 * hand its goroutines to another thread (docs/design/scheduler.md).
 *
 * Names: gort__ for internal non-static symbols (hidden by visibility).
 * Every shared field says who protects it.
 */
#ifndef GORT_RUNTIME_H
#define GORT_RUNTIME_H

#include <gort.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/panic.h"
#include "sched/park.h"

#define GORT_RUNQ_SIZE 256        /* per-P ring, as in Go */
#define GORT_MAX_PROCS 1024       /* upper bound for go_maxprocs */
#define GORT_FAIRNESS_TICK 61     /* check the global queue every 61 schedules */

#if defined(__GNUC__)
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif
#define GORT_CACHELINE 64

/* The runtime's short, hot locks (sched.lock, the free lists): glibc's
   adaptive mutex spins briefly before sleeping in the kernel.  Measured on
   spawn+join at 2 workers, where both Ps hit sched.lock and the record
   free list for every batch: futex calls 11,600 -> 2,200 per million
   goroutines, 97 -> 75 ns per goroutine. */
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define GORT_MUTEX_INITIALIZER PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#else
#define GORT_MUTEX_INITIALIZER PTHREAD_MUTEX_INITIALIZER
#endif

struct gort_p;
struct gort_m;

/* ---- stacks (src/core/stack.c) ---------------------------------------- */

enum gort_guard { GUARD_MADVISE = 1, GUARD_MPROTECT = 2, GUARD_CANARY = 3 };

/* Lives in the top bytes of its own mapping. */
struct gort_stack {
    uintptr_t lo;              /* mapping base; the guard is [lo, lo+page) */
    uintptr_t hi;              /* usable top (16-aligned, just below this) */
    struct gort_stack *next;   /* cache link: owner of the cache */
    uint8_t guard;             /* enum gort_guard */
    uint8_t dirty;             /* may hold pages below the top two */
};

struct gort_stack *gort__stack_alloc(void);
void gort__stack_release(struct gort_stack *s, bool deep);
void gort__stack_trim(struct gort_stack *s);
void gort__stack_scavenge(void);             /* monitor: background trim/unmap */
bool gort__stack_canary_ok(const struct gort_stack *s);
void gort__stack_check(struct gort_g *g);        /* canary stacks: dies on overflow */
size_t gort__stack_limit(void);              /* effective GORT_STACK_MAX */
void gort__stack_init(void);
void gort__stack_thread_init(void);          /* sigaltstack for this thread */
void gort__stack_thread_fini(void);

/* ---- timers (src/sched/timer.c) --------------------------------------- */

struct gort_timer {
    int64_t when;                        /* go_now() time; p->timer_lock */
    void (*fn)(void *arg, uint64_t seq); /* runs on a worker with a P */
    void *arg;
    uint64_t seq;                        /* passed back to fn */
    int32_t idx;                         /* heap index, -1: not in a heap */
    struct gort_p *_Atomic p;            /* heap it is on (see timer.c) */
};

void gort__timer_add(struct gort_timer *t);   /* arms on the current P */
bool gort__timer_del(struct gort_timer *t);   /* true if it was pending */
int64_t gort__timers_run(struct gort_p *p, int64_t now); /* next when or 0 */
int64_t gort__timers_next(void);              /* earliest over all Ps, or 0 */
void gort__timers_move(struct gort_p *from, struct gort_p *to);

/* ---- goroutines (src/core/goroutine.c) -------------------------------- */

enum gort_gstatus {
    G_IDLE = 0,      /* record allocated, not yet runnable */
    G_RUNNABLE,      /* on a run queue */
    G_RUNNING,       /* on an M */
    G_WAITING,       /* parked; a waker makes it runnable */
    G_SYSCALL,       /* inside go_blocking_begin/end (informational) */
    G_DEAD,          /* exited; record on a free list */
};

struct gort_defer {
    void (*fn)(void *);
    void *arg;
    struct gort_defer *next;
};

struct gort_g {
    void *sp;                        /* saved context; valid while not running */
    struct gort_stack *stack;        /* NULL until it first runs */
    void (*fn)(void *);
    void *arg;
    struct gort_g *schedlink;        /* global queue / free lists */
    _Atomic uint32_t status;         /* enum gort_gstatus, gort__casgstatus */
    int saved_errno;                 /* errno while switched out */
    uint64_t id;
    struct gort_defer *defers;       /* owner g only */
    struct gort_m *lockedm;          /* go_lock_os_thread: owner g */
    uint32_t lockcount;
    int32_t blocking;                /* go_blocking_begin nesting: owner g */
    uint64_t start_tick;             /* cheap clock at first run */
    gort_waiter_t waiter;            /* the one waiter of this goroutine */
    struct gort_timer timer;         /* sleep and park deadlines */
#if defined(GORT_ASAN)
    void *asan_fake_stack;
#endif
#if defined(GORT_TSAN)
    void *tsan_fiber;
#endif
};

struct gort_g *gort__g_alloc(struct gort_p *p);
void gort__g_free(struct gort_p *p, struct gort_g *g);
_Noreturn void gort__gstatus_fatal(struct gort_g *g, uint32_t cur, uint32_t from, uint32_t to);
bool gort__gstatus_move_ok(uint32_t from, uint32_t to);

/*
 * The one place goroutine states change (Go's casgstatus).  Every
 * transition has exactly one party entitled to make it (the dequeuer runs
 * it, the goroutine itself parks or yields, the single winner of the
 * waiter claim readies it), so a load-check-store is enough and costs no
 * locked instruction; a violated protocol still shows up as a state that
 * is not `from` and aborts.  The legality of from -> to is checked in
 * debug builds (the call sites use constants).
 * Release/acquire: the store that makes a goroutine RUNNABLE publishes
 * everything its waker wrote (the received value, the wake result) to the
 * M that later loads it to run it.
 */
static inline void gort__casgstatus(struct gort_g *g, uint32_t from, uint32_t to)
{
    uint32_t cur = atomic_load_explicit(&g->status, memory_order_acquire);
#ifndef NDEBUG
    if (unlikely(!gort__gstatus_move_ok(from, to)))
        gort__gstatus_fatal(g, cur, from, to);
#endif
    if (unlikely(cur != from))
        gort__gstatus_fatal(g, cur, from, to);
    atomic_store_explicit(&g->status, to, memory_order_release);
}
uint64_t gort__g_newid(struct gort_p *p);
void gort__run_defers(struct gort_g *g);

/* ---- processors, threads, the scheduler (src/sched/proc.c) ------------ */

struct gort_p {
    int32_t id;
    struct gort_m *_Atomic m;        /* M holding it (monitor reads it) */
    struct gort_p *link;             /* idle or spare list: sched.lock */
    _Atomic uint32_t schedtick;      /* owner writes, the monitor reads */
    _Atomic uint32_t retire;         /* 1: stop counting it, hand it back
                                        (go_maxprocs shrank, or its M
                                        blocked: see sysmon.c) */
    bool spare;                      /* on the spare list: sched.lock */
    bool wake_deferred;              /* owner: see put_local in proc.c */
    _Atomic uint32_t preempt;        /* 1: the monitor asks the running
                                        goroutine to yield (sysmon.c).
                                        Relaxed everywhere: a request, not
                                        a publication; the yielder takes it
                                        with an exchange, so it acts once */
    /* monitor-only */
    uint32_t mon_tick;
    int64_t mon_since;
    int64_t mon_preempt_at;          /* when it asked, or 0 */

    /* Run queue: lock-free ring, single producer (owner), many consumers
       (owner and thieves CAS head).  See runq.c. */
    _Alignas(GORT_CACHELINE) _Atomic uint32_t runq_head;
    _Atomic uint32_t runq_tail;
    struct gort_g *_Atomic runnext;
    struct gort_g *_Atomic runq[GORT_RUNQ_SIZE];

    /* Owner-only caches. */
    _Alignas(GORT_CACHELINE) struct gort_stack *stack_cache;
    uint32_t nstack_cache;
    struct gort_g *g_cache;
    uint32_t ng_cache;
    uint64_t goid_next, goid_end;
    _Atomic int64_t ngoroutines;     /* live goroutines started/ended here */
    uint64_t rand_state;

    /* Timers: a 4-ary min-heap under timer_lock.  timer0 is the earliest
       `when` (0: none), readable without the lock. */
    _Alignas(GORT_CACHELINE) pthread_mutex_t timer_lock;
    struct gort_timer **timers;
    int32_t ntimers, timers_cap;
    _Atomic int64_t timer0;
};

struct gort_m {
    void *g0_sp;                     /* scheduler context while it runs a g */
    int *errno_ptr;                  /* this thread's &errno (set at start) */
    struct gort_g *curg;             /* owner M */
    struct gort_p *p;                /* owner M */
    struct gort_p *nextp;            /* set by whoever wakes it: sched.lock */
    _Atomic uint32_t note;           /* futex: 1 = woken */
    bool spinning;                   /* owner; counted in sched.nmspinning */
    struct gort_g *lockedg;          /* go_lock_os_thread */
    struct gort_m *link;             /* idle list: sched.lock */
    struct gort_m *alllink;          /* every M ever made: sched.lock */
    int32_t id;
    bool exiting;                    /* take the thread down with lockedg */
    bool np_collect;                 /* owner: polling without a P; gort__ready
                                        appends to np_list instead */
    struct gort_g *np_list;
    /* What the context we switch to must do first (after_switch). */
    void (*after_fn)(struct gort_m *m, struct gort_g *prev, void *arg);
    struct gort_g *after_prev;
    void *after_arg;
    /* Monitor hand-off (sysmon.c). */
    _Atomic int32_t in_blocking;     /* 1: curg is inside go_blocking_begin
                                        (owner writes, monitor reads) */
    _Atomic uint64_t blocking_since; /* gort__tick() at the outermost begin */
    pthread_t thread;
    void *altstack;
#if defined(GORT_ASAN)
    const void *g0_stack_bottom;
    size_t g0_stack_size;
    void *asan_fake_stack;
#endif
#if defined(GORT_TSAN)
    void *tsan_fiber;
#endif
};

struct gort_sched {
    pthread_mutex_t lock;            /* rank 1: see docs/design/scheduler.md */
    struct gort_g *runq_head;        /* global queue: lock */
    struct gort_g *runq_tail;
    _Atomic int32_t runq_size;       /* written under lock, read racily */
    struct gort_p *pidle;            /* lock */
    _Atomic int32_t npidle;          /* written under lock */
    struct gort_p *pspare;           /* retired Ps, reusable: lock */
    struct gort_m *midle;            /* lock */
    int32_t nmidle;
    _Atomic int32_t nthreads;        /* Ms created: written under lock */
    int32_t maxthreads;
    _Atomic int32_t nmspinning;
    _Atomic int32_t nprocs;          /* GOMAXPROCS: Ps not retired */
    struct gort_p *allp[GORT_MAX_PROCS]; /* grows under lock, never shrinks */
    _Atomic int32_t nallp;
    _Atomic int64_t ngoroutines_ext; /* spawned from plain threads */
    _Atomic int64_t poll_until;      /* when the polling M wakes (0: none) */
    _Atomic uint32_t polling;        /* an M is blocked in the netpoller */
};

extern struct gort_sched gort__sched;

void gort__init(void);                         /* idempotent, cheap */
struct gort_m *gort__m_self(void);             /* non-inlined TLS read */
struct gort_g *gort__g_self(void);             /* NULL on a plain thread */
void gort__ready(struct gort_g *g, bool next); /* WAITING -> RUNNABLE */
/* Takes every runnable goroutine off p's queue (any thread), as a list. */
struct gort_g *gort__runq_take_all(struct gort_p *p);
void gort__inject_list(struct gort_g *list);
struct gort_p *gort__p_activate_locked(void);   /* spare or new P, sched.lock */
void gort__p_retire_mark(struct gort_p *p);     /* see sysmon.c */
void gort__preempt_self(void);                  /* yield to the global queue */

/* Parks the current goroutine: after the switch, commit(arg) runs. */
void gort__gopark(void (*commit)(void *), void *arg);
void gort__wakep(void);
void gort__sysmon_start(void);
void gort__blocking_resume(struct gort_m *m); /* curg resumed inside go_blocking */
uint64_t gort__tick(void);                     /* cheap monotonic tick */
int64_t gort__ticks_to_ns(uint64_t ticks);

/* ---- netpoller (src/sched/netpoll.c) ---------------------------------- */

void gort__netpoll_init(void);
/* Readies goroutines whose descriptors fired; blocks up to delay ns
   (0: poll, <0: until an event or gort__netpoll_break).  Returns how
   many goroutines it readied. */
int gort__netpoll(int64_t delay);
void gort__netpoll_break(void);
bool gort__netpoll_waiters(void);
/* Monitor: polls if goroutines wait on descriptors and nobody polled for
   10 ms; returns how many goroutines it readied (global queue). */
int gort__netpoll_sysmon(int64_t now);

/* ---- futex (src/sched/futex.c) ---------------------------------------- */

int gort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
void gort__futex_wake(_Atomic uint32_t *addr, int n);

#endif /* GORT_RUNTIME_H */
