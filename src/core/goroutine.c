/*
 * goroutine.c - goroutine records: allocation, ids, states, deferred calls.
 *
 * A record (struct gort_g) is all that a spawned goroutine costs until it
 * first runs; its stack is attached by the scheduler at first run
 * (proc.c), so spawning a million goroutines touches no stack at all.
 *
 * Records are recycled, never freed: a dead record goes to its P's cache
 * (owner-only) and past that, in batches, to a global free list
 * (gfree_lock).  Because
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
#define G_BATCH 32 /* records moved between a P's cache and the global list */
#define GOID_BATCH 16

static _Atomic uint64_t goid_gen = 1;          /* next unused id */

/*
 * The global free list is a stack of batches, so that a P moves G_BATCH
 * records with one short critical section and no walk under the lock
 * (a walk touches a cache line per record).  Within a batch, records are
 * chained through schedlink; a batch's head links to the next batch
 * through `arg` and holds the batch's length in `lockcount`, both unused
 * (NULL, 0) while a record is free.  Spawning on one P and exiting on
 * another (a spawner feeding a worker) moves every record across: with
 * one lock per record, the two Ps queued on gfree_lock for each goroutine.
 */
static pthread_mutex_t gfree_lock = GORT_MUTEX_INITIALIZER;
static struct gort_g *gfree;                   /* gfree_lock: batch heads */

static void gfree_push(struct gort_g *head, uint32_t n)
{
    head->lockcount = n;
    pthread_mutex_lock(&gfree_lock);
    head->arg = gfree;
    gfree = head;
    pthread_mutex_unlock(&gfree_lock);
}

/* A batch (chained through schedlink, NULL-terminated) or NULL; *n its
   length. */
static struct gort_g *gfree_pop(uint32_t *n)
{
    struct gort_g *head;
    pthread_mutex_lock(&gfree_lock);
    head = gfree;
    if (head)
        gfree = head->arg;
    pthread_mutex_unlock(&gfree_lock);
    if (head) {
        *n = head->lockcount;
        head->lockcount = 0;
        head->arg = NULL;
    }
    return head;
}

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
   they take a batch from the global list.  A thread that exits leaves at
   most one batch behind. */
static __thread struct gort_g *t_cache __attribute__((tls_model("initial-exec")));

static struct gort_g *g_alloc_thread(void)
{
    struct gort_g *g = t_cache;
    uint32_t n;
    if (!g)
        g = gfree_pop(&n);
    if (g)
        t_cache = g->schedlink;
    return g;
}

struct gort_g *gort__g_alloc(struct gort_p *p)
{
    struct gort_g *g = NULL;
    if (p) {
        if (!p->g_cache) {
            uint32_t n;
            p->g_cache = gfree_pop(&n);
            if (p->g_cache)
                p->ng_cache = n;
        }
        if (p->g_cache) {
            g = p->g_cache;
            p->g_cache = g->schedlink;
            p->ng_cache--;
        }
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
    if (!p) {
        g->schedlink = NULL;
        gfree_push(g, 1);
        return;
    }
    g->schedlink = p->g_cache;
    p->g_cache = g;
    if (++p->ng_cache > G_CACHE_MAX) {
        /* Give the most recently freed G_BATCH away; the older ones stay. */
        struct gort_g *head = p->g_cache, *last = head;
        for (int i = 1; i < G_BATCH; i++)
            last = last->schedlink;
        p->g_cache = last->schedlink;
        last->schedlink = NULL;
        p->ng_cache -= G_BATCH;
        gfree_push(head, G_BATCH);
    }
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
