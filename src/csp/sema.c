/*
 * sema.c - semaphores and notify lists keyed by address: Go's
 * runtime/sema.go.
 *
 * The problem.  wg_t, go_mutex_t, go_rwmutex_t, go_once_t and go_cond_t
 * are plain structs that work when zero-filled and are never destroyed (Go's
 * "useful zero value").  They cannot own a queue of waiters or anything
 * that needs setting up or freeing.  Yet their slow paths must park
 * goroutines (and block plain threads) in FIFO order, and wake them.
 *
 * The design (Go's): the waiters live outside the objects, in a global hash
 * table keyed by the address of a uint32_t counter inside the object.
 *
 *   - 251 roots (a prime, so that addresses 8 or 64 apart spread well),
 *     each on its own cache line, each with a lock (GORT_RANK_SEMA), a
 *     count of waiters `nwait`, and the waiters of the addresses that hash
 *     to it.
 *   - Within a root, one queue per address: the addresses' queue heads
 *     form a list, and each head chains that address's waiters in FIFO
 *     order (wait_next, with wait_tail on the head).  Go keeps the heads in
 *     a treap to bound the search when thousands of addresses collide in
 *     one root; here the search is a list walk, because a root holds the
 *     waiters of about 1/251 of the contended objects at any moment, which
 *     stays a handful even with thousands of blocked goroutines, and a
 *     list has no rebalancing to get wrong.  (Rejected: a treap, for that
 *     reason; a per-object queue, which the zero-value rule forbids.)
 *   - A waiter entry lives on the waiting party's stack while it is parked.
 *
 * semacquire(addr): take a token with a CAS if there is one; else, under
 * the root lock, count ourselves in nwait, try once more (closing the race
 * with a release that ran before we were counted), queue ourselves and park
 * (the commit unlocks the root).  When woken, either the releaser handed
 * us the token (park returns 1) or we compete for it again, and requeue if
 * a barging caller took it.
 *
 * semrelease(addr): add a token; if nwait is zero nobody can be waiting
 * for it, so stop without the lock (the common, uncontended case).  Else
 * dequeue the first waiter for addr, unlock and wake it.  With handoff,
 * take the token for it before waking it and yield our processor to it.
 *
 * Notify lists (Go's notifyList, for go_cond_t): a waiter takes a ticket
 * (an atomic increment of wait_) while holding the condition's mutex, then
 * releases the mutex and waits for its ticket.  notify_ is the next ticket
 * to wake.  Signal wakes the waiter holding ticket notify_ (if it has not
 * queued yet, it sees notify_ has passed its ticket and does not sleep);
 * Broadcast moves notify_ up to wait_ and wakes the whole list.  The list
 * and lock live in the go_cond_t itself (head_, tail_, lock_, rank
 * GORT_RANK_NOTIFY); it needs no table because a go_cond_t has room for
 * two pointers.
 *
 * Memory ordering.  The token counter and nwait form a store-load (Dekker)
 * pair: the releaser adds a token then reads nwait; the acquirer, under the
 * root lock, adds to nwait then reads the token count.  Only sequential
 * consistency guarantees that at least one of them sees the other's write,
 * so all four accesses are seq_cst.  Everything else is ordered by the root
 * lock or by wake/park.
 *
 * Invariants (root lock held):
 *   - nwait >= the number of queued waiters of the root; it counts, in
 *     addition, acquirers between their increment and their re-check;
 *   - each address appears at most once in the heads list, and only while
 *     it has a queued waiter;
 *   - a queued entry's owner is parked and unclaimed: nobody else holds a
 *     pointer to it.
 */
#include "csp/sema.h"

#include "csp/csp.h"
#include "csp/lock.h"

enum { SEMTAB_SIZE = 251 };

struct sema_waiter {
    _Atomic uint32_t *addr;          /* immutable while queued */
    gort_waiter_t *w;                /* immutable while queued */
    uint64_t ticket;                 /* immutable while queued */
    /* root lock: */
    struct sema_waiter *next;        /* heads only: next address's head */
    struct sema_waiter *wait_next;   /* next waiter on the same address */
    struct sema_waiter *wait_tail;   /* heads only: last waiter on addr */
};

struct sema_root {
    gort_lock_t lock;                /* rank GORT_RANK_SEMA */
    _Atomic uint32_t nwait;          /* seq_cst, see the essay */
    struct sema_waiter *heads;       /* lock */
} __attribute__((aligned(64)));

static struct sema_root semtable[SEMTAB_SIZE];

static struct sema_root *root_for(_Atomic uint32_t *addr)
{
    return &semtable[((uintptr_t)addr >> 3) % SEMTAB_SIZE];
}

/* Takes a token if there is one.  seq_cst: the load is the "load" half of
 * the Dekker pair with semrelease (see the essay); the CAS also acquires
 * what the releaser published before its release. */
static bool cansemacquire(_Atomic uint32_t *addr)
{
    uint32_t v = atomic_load_explicit(addr, memory_order_seq_cst);

    while (v != 0) {
        if (atomic_compare_exchange_weak_explicit(addr, &v, v - 1,
                                                  memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return true;
    }
    return false;
}

/* Root lock held.  Returns the link that points at addr's head, or at the
 * terminating NULL. */
static struct sema_waiter **find_head(struct sema_root *root,
                                      _Atomic uint32_t *addr)
{
    struct sema_waiter **pp = &root->heads;

    while (*pp != NULL && (*pp)->addr != addr)
        pp = &(*pp)->next;
    return pp;
}

/* Root lock held. */
static void sema_queue(struct sema_root *root, struct sema_waiter *s,
                       bool lifo)
{
    struct sema_waiter **pp = find_head(root, s->addr);
    struct sema_waiter *head = *pp;

    s->wait_next = NULL;
    if (head == NULL) {
        s->next = root->heads;
        s->wait_tail = s;
        root->heads = s;
        return;
    }
    if (lifo) {
        /* s becomes the head and inherits the head's place and tail. */
        s->next = head->next;
        s->wait_next = head;
        s->wait_tail = head->wait_tail;
        head->next = NULL;
        head->wait_tail = NULL;
        *pp = s;
        return;
    }
    head->wait_tail->wait_next = s;
    head->wait_tail = s;
    s->next = NULL;
    s->wait_tail = NULL;
}

/* Root lock held.  Removes and claims addr's first waiter, or NULL. */
static struct sema_waiter *sema_dequeue(struct sema_root *root,
                                        _Atomic uint32_t *addr)
{
    struct sema_waiter **pp = find_head(root, addr);
    struct sema_waiter *s = *pp, *t;

    if (s == NULL)
        return NULL;
    t = s->wait_next;
    if (t != NULL) {
        t->next = s->next;
        t->wait_tail = s->wait_tail;
        *pp = t;
    } else {
        *pp = s->next;
    }
    s->next = s->wait_next = s->wait_tail = NULL;
    /* Nobody else can reach a queued semaphore waiter, and it has no
     * deadline: this claim cannot fail unless the runtime is broken. */
    if (!gort__waiter_claim(s->w, s->ticket))
        gort__fatal("semrelease: queued waiter already claimed");
    return s;
}

void gort__semacquire(_Atomic uint32_t *addr, bool lifo)
{
    struct sema_root *root;
    gort_waiter_t *w;
    struct sema_waiter s;

    if (cansemacquire(addr))
        return;
    root = root_for(addr);
    w = gort__waiter_self();
    s.addr = addr;
    s.w = w;
    for (;;) {
        gort__lock(&root->lock, GORT_RANK_SEMA);
        /* seq_cst: the "store" half of the Dekker pair (essay). */
        atomic_fetch_add_explicit(&root->nwait, 1, memory_order_seq_cst);
        if (cansemacquire(addr)) {
            atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_seq_cst);
            gort__unlock(&root->lock);
            return;
        }
        s.ticket = gort__waiter_prepare(w);
        sema_queue(root, &s, lifo);
        int handed = gort__waiter_park(w, gort__unlock_commit, &root->lock,
                                       GO_FOREVER);
        gort__lockrank_assert_none();
        if (handed == 1 || cansemacquire(addr))
            return;
        /* A barging caller took the token first: wait again, at the head
         * this time if the caller asked for LIFO (Go does the same). */
    }
}

void gort__semrelease(_Atomic uint32_t *addr, bool handoff)
{
    struct sema_root *root = root_for(addr);
    struct sema_waiter *s;
    gort_waiter_t *w;
    bool handed;

    /* seq_cst: the "store" half on this side of the Dekker pair. */
    atomic_fetch_add_explicit(addr, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&root->nwait, memory_order_seq_cst) == 0)
        return;
    gort__lock(&root->lock, GORT_RANK_SEMA);
    if (atomic_load_explicit(&root->nwait, memory_order_seq_cst) == 0) {
        gort__unlock(&root->lock);
        return;
    }
    s = sema_dequeue(root, addr);
    if (s != NULL)
        atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_seq_cst);
    gort__unlock(&root->lock);
    if (s == NULL)
        return;
    /* s is ours until we wake it; its owner stays parked till then. */
    w = s->w;
    handed = handoff && cansemacquire(addr);
    gort__waiter_wake(w, handed ? 1 : 0);
    if (handed && gort__in_goroutine())
        go_yield(); /* let the woken waiter run now, in our place */
}

/* ---- notify lists ------------------------------------------------------ */

struct notify_waiter {
    gort_waiter_t *w;                /* immutable while queued */
    uint64_t wticket;                /* waiter ticket; immutable */
    uint32_t t;                      /* notify-list ticket; immutable */
    struct notify_waiter *next;      /* c->lock_ */
};

/* Tickets compare modulo 2^32, as Go's less(). */
static inline bool ticket_less(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

uint32_t gort__notify_list_add(go_cond_t *c)
{
    /* relaxed: only the uniqueness and order of tickets matter here.  The
     * caller holds the condition's mutex, whose release orders this add
     * before any signal that is required to see it; the lock_ critical
     * sections below order the rest. */
    return atomic_fetch_add_explicit(&c->wait_, 1, memory_order_relaxed);
}

void gort__notify_list_wait(go_cond_t *c, uint32_t ticket)
{
    gort_waiter_t *w;
    struct notify_waiter s;

    gort__lock(&c->lock_, GORT_RANK_NOTIFY);
    if (ticket_less(ticket, atomic_load_explicit(&c->notify_,
                                                 memory_order_relaxed))) {
        /* Already notified while we were unlocking the mutex. */
        gort__unlock(&c->lock_);
        return;
    }
    w = gort__waiter_self();
    s.w = w;
    s.wticket = gort__waiter_prepare(w);
    s.t = ticket;
    s.next = NULL;
    if (c->tail_ != NULL)
        ((struct notify_waiter *)c->tail_)->next = &s;
    else
        c->head_ = &s;
    c->tail_ = &s;
    gort__waiter_park(w, gort__unlock_commit, &c->lock_, GO_FOREVER);
    gort__lockrank_assert_none();
}

/* Wakes a waiter that was unlinked under c->lock_ (so it is ours). */
static void notify_wake(struct notify_waiter *s)
{
    gort_waiter_t *w = s->w;

    if (!gort__waiter_claim(w, s->wticket))
        gort__fatal("sync: notify list waiter already claimed");
    gort__waiter_wake(w, 0);
}

/*
 * The unlocked fast path of both notifies: if no ticket was handed out
 * since the last notification there is nobody to wake.  relaxed: a waiter
 * whose notify_list_add happens before this call (through the mutex, say)
 * is seen by coherence; a racing one need not be (Go's sync.Cond makes no
 * promise for it either), and notify_ can only lag, which only sends us
 * to the locked path.
 */
static bool notify_list_idle(go_cond_t *c)
{
    return atomic_load_explicit(&c->wait_, memory_order_relaxed)
           == atomic_load_explicit(&c->notify_, memory_order_relaxed);
}

void gort__notify_list_notify_all(go_cond_t *c)
{
    struct notify_waiter *s, *next;

    if (notify_list_idle(c))
        return;
    gort__lock(&c->lock_, GORT_RANK_NOTIFY);
    s = c->head_;
    c->head_ = NULL;
    c->tail_ = NULL;
    atomic_store_explicit(&c->notify_,
                          atomic_load_explicit(&c->wait_, memory_order_relaxed),
                          memory_order_relaxed);
    gort__unlock(&c->lock_);
    for (; s != NULL; s = next) {
        next = s->next; /* before the wake: s may vanish after it */
        notify_wake(s);
    }
}

void gort__notify_list_notify_one(go_cond_t *c)
{
    struct notify_waiter *s, *prev = NULL;
    uint32_t t;

    if (notify_list_idle(c))
        return;
    gort__lock(&c->lock_, GORT_RANK_NOTIFY);
    t = atomic_load_explicit(&c->notify_, memory_order_relaxed);
    if (t == atomic_load_explicit(&c->wait_, memory_order_relaxed)) {
        gort__unlock(&c->lock_);
        return;
    }
    atomic_store_explicit(&c->notify_, t + 1, memory_order_relaxed);
    /* The holder of ticket t may not have queued yet; then it will see
     * notify_ past its ticket and not sleep. */
    for (s = c->head_; s != NULL; prev = s, s = s->next) {
        if (s->t != t)
            continue;
        if (prev != NULL)
            prev->next = s->next;
        else
            c->head_ = s->next;
        if (c->tail_ == s)
            c->tail_ = prev;
        s->next = NULL;
        gort__unlock(&c->lock_);
        notify_wake(s);
        return;
    }
    gort__unlock(&c->lock_);
}
