/*
 * goroutine.c - goroutine records: allocation, ids, states, deferred calls.
 *
 * A record (struct gort_g) is all that a spawned goroutine costs until it
 * first runs; its stack is attached by the scheduler at first run
 * (proc.c), so spawning a million goroutines touches no stack at all.
 *
 * Records are recycled, never freed: a dead record goes to its P's cache
 * (owner-only) and past that to a global free list (gfree_lock).  Because
 * a record's memory is never returned, a stale pointer to it (a timer that
 * lost a race, a select case on another channel) can always be read; the
 * waiter's generation counter makes such reads harmless (park.c).
 *
 * States change only through gort__casgstatus, which aborts on a move that
 * the state machine does not allow (Go's casgstatus):
 *
 *   IDLE -> RUNNABLE -> RUNNING -> WAITING -> RUNNABLE -> ...
 *                              \-> DEAD -> IDLE (reuse)
 *
 * Ids are unique and never reused: a global counter handed out to each P
 * in batches of 16 (Go's goidcache), so spawning does not contend on it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define G_CACHE_MAX 64
#define GOID_BATCH 16

static _Atomic uint64_t goid_gen = 1;          /* next unused id */
static pthread_mutex_t gfree_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gort_g *gfree;                   /* gfree_lock */

uint64_t gort__g_newid(struct gort_p *p)
{
    if (!p)
        return atomic_fetch_add_explicit(&goid_gen, 1, memory_order_relaxed);
    if (p->goid_next == p->goid_end) {
        p->goid_next = atomic_fetch_add_explicit(&goid_gen, GOID_BATCH, memory_order_relaxed);
        p->goid_end = p->goid_next + GOID_BATCH;
    }
    return p->goid_next++;
}

/* Plain threads (main spawning a million goroutines) have no P cache:
   they take free records from the global list 32 at a time.  A thread
   that exits leaves at most that many records behind. */
#define T_CACHE_BATCH 32
static __thread struct gort_g *t_cache __attribute__((tls_model("initial-exec")));

static struct gort_g *g_alloc_thread(void)
{
    struct gort_g *g = t_cache;
    if (!g) {
        pthread_mutex_lock(&gfree_lock);
        g = gfree;
        for (int i = 1; gfree && i < T_CACHE_BATCH; i++)
            gfree = gfree->schedlink;
        if (gfree) {
            struct gort_g *rest = gfree->schedlink;
            gfree->schedlink = NULL;
            gfree = rest;
        }
        pthread_mutex_unlock(&gfree_lock);
    }
    if (g)
        t_cache = g->schedlink;
    return g;
}

struct gort_g *gort__g_alloc(struct gort_p *p)
{
    struct gort_g *g = NULL;
    if (p && p->g_cache) {
        g = p->g_cache;
        p->g_cache = g->schedlink;
        p->ng_cache--;
    } else if (p) {
        pthread_mutex_lock(&gfree_lock);
        g = gfree;
        if (g)
            gfree = g->schedlink;
        pthread_mutex_unlock(&gfree_lock);
    } else {
        g = g_alloc_thread();
    }
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g)
            return NULL;
        g->timer.idx = -1;
        return g;
    }
    gort__casgstatus(g, G_DEAD, G_IDLE);
    return g;
}

void gort__g_free(struct gort_p *p, struct gort_g *g)
{
    g->fn = NULL;
    g->arg = NULL;
    g->stack = NULL;
    g->lockedm = NULL;
    g->lockcount = 0;
    g->blocking = 0;
    if (p && p->ng_cache < G_CACHE_MAX) {
        g->schedlink = p->g_cache;
        p->g_cache = g;
        p->ng_cache++;
        return;
    }
    pthread_mutex_lock(&gfree_lock);
    g->schedlink = gfree;
    gfree = g;
    pthread_mutex_unlock(&gfree_lock);
}

static const char *const gstatus_names[] = {
    "idle", "runnable", "running", "waiting", "syscall", "dead",
};

static bool gstatus_move_ok(uint32_t from, uint32_t to)
{
    switch (from) {
    case G_IDLE: return to == G_RUNNABLE;
    case G_RUNNABLE: return to == G_RUNNING;
    case G_RUNNING: return to == G_WAITING || to == G_RUNNABLE || to == G_DEAD || to == G_SYSCALL;
    case G_SYSCALL: return to == G_RUNNING;
    case G_WAITING: return to == G_RUNNABLE;
    case G_DEAD: return to == G_IDLE;
    default: return false;
    }
}

__attribute__((noinline, cold, noreturn)) static void gstatus_fatal(struct gort_g *g, uint32_t cur,
                                                                  uint32_t from, uint32_t to)
{
    if (!gstatus_move_ok(from, to))
        gort__fatal("casgstatus: bad transition %s -> %s for goroutine %llu",
                    gstatus_names[from], gstatus_names[to], (unsigned long long)g->id);
    gort__fatal("casgstatus: goroutine %llu is %s, not %s (moving to %s)",
                (unsigned long long)g->id, cur < 6 ? gstatus_names[cur] : "?",
                gstatus_names[from], gstatus_names[to]);
}

/* Out of line so that gort__casgstatus (runtime.h) stays a few
   instructions on the switch path. */
void gort__gstatus_fatal(struct gort_g *g, uint32_t cur, uint32_t from, uint32_t to)
{
    gstatus_fatal(g, cur, from, to);
}

bool gort__gstatus_move_ok(uint32_t from, uint32_t to)
{
    return gstatus_move_ok(from, to);
}

/* ---- deferred calls -------------------------------------------------- */

int go_defer(void (*fn)(void *arg), void *arg)
{
    struct gort_g *g = gort__g_self();
    struct gort_defer *d;
    if (!g)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    d = malloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->fn = fn;
    d->arg = arg;
    d->next = g->defers;
    g->defers = d;
    return 0;
}

/* Runs deferred calls LIFO; a deferred call may itself defer more. */
void gort__run_defers(struct gort_g *g)
{
    struct gort_defer *d;
    while ((d = g->defers) != NULL) {
        g->defers = d->next;
        d->fn(d->arg);
        free(d);
    }
}

uint64_t go_id(void)
{
    struct gort_g *g = gort__g_self();
    return g ? g->id : 0;
}

size_t go_num_goroutines(void)
{
    int64_t n = atomic_load_explicit(&gort__sched.ngoroutines_ext, memory_order_acquire);
    int32_t np = atomic_load_explicit(&gort__sched.nallp, memory_order_acquire);
    for (int32_t i = 0; i < np; i++)
        n += atomic_load_explicit(&gort__sched.allp[i]->ngoroutines, memory_order_acquire);
    return n > 0 ? (size_t)n : 0;
}
