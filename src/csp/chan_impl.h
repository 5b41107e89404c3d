/*
 * chan_impl.h - the channel record and its wait queues, shared by chan.c
 * (single operations) and select.c (selectgo).  The design essay is at the
 * top of chan.c.
 */
#ifndef GORT_CSP_CHAN_IMPL_H
#define GORT_CSP_CHAN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "csp/csp.h"
#include "csp/lock.h"

/*
 * A wait entry: Go's sudog.  One per blocked operation (one per case for a
 * select), always on the blocked party's own stack: the party is parked
 * while the entry is queued, and it takes the channel lock to remove its
 * entries before it returns, so the memory outlives every access.
 */
typedef struct gort_sudog {
    /* The lock of the channel the entry is queued on. */
    struct gort_sudog *next;
    struct gort_sudog *prev;
    bool queued;          /* on a queue; false once dequeued or removed */

    /* Written by the owner before enqueueing; immutable while queued. */
    gort_waiter_t *w;     /* the blocked goroutine or thread */
    uint64_t ticket;      /* from gort__waiter_prepare; shared by a select */
    void *elem;           /* send: the value; receive: destination or NULL */
    uint32_t index;       /* select: case index (park's result); else 0 */

    /* Written by the one waker that claimed (w, ticket), before it wakes
     * w; read by the owner after park returns. */
    bool success;         /* true: value moved; false: channel closed */
} gort_sudog_t;

typedef struct waitq {
    /* Written under the channel lock.  `first` is also read without it by
     * the fast paths of chan_try_send / chan_try_recv (see chan.c), hence
     * atomic; they only compare it with NULL. */
    _Atomic(gort_sudog_t *) first;
    gort_sudog_t *last;
} waitq_t;

struct chan {
    /* Immutable from chan_make to chan_free. */
    size_t elem_size;
    size_t cap;               /* ring size; 0: unbuffered */
    unsigned char *buf;       /* cap * elem_size bytes after the record */
                              /* (never NULL, see chan_make) */

    /* c->lock.  Also read without it by the fast paths, chan_len and
     * chan_free's check: atomic, relaxed except where chan.c says. */
    _Atomic size_t count;     /* values in buf */
    _Atomic uint32_t closed;  /* 0 open; 1 closed, for ever */

    /* c->lock. */
    size_t sendx;             /* ring index of the next send */
    size_t recvx;             /* ring index of the next receive */
    waitq_t recvq;            /* blocked receivers, FIFO */
    waitq_t sendq;            /* blocked senders, FIFO */

    gort_lock_t lock;         /* rank GORT_RANK_CHAN (lock.h) */
};

/* Go's chansend and chanrecv (chan.c), for select's first pass.
   chansend: 0, -EPIPE (closed) or, when !block, -EAGAIN; chanrecv: 1,
   0 (closed and drained, *out zeroed) or, when !block, -EAGAIN.  Without
   block, a channel that is not ready is answered without its lock. */
int gort__chansend(struct chan *c, const void *elem, bool block);
int gort__chanrecv(struct chan *c, void *out, bool block);

static inline void chan_lock(struct chan *c)
{
    gort__lock(&c->lock, GORT_RANK_CHAN);
}

static inline void chan_unlock(struct chan *c)
{
    gort__unlock(&c->lock);
}

/* Copies one element.  out == NULL discards; a NULL source (only
 * meaningful for elem_size 0) delivers a zero value rather than garbage.
 * The small sizes are spelled out so that they compile to plain moves. */
static inline void elem_copy(void *dst, const void *src, size_t size)
{
    if (dst == NULL || size == 0)
        return;
    if (src == NULL) {
        memset(dst, 0, size);
        return;
    }
    switch (size) {
    case 1: memcpy(dst, src, 1); return;
    case 2: memcpy(dst, src, 2); return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, size); return;
    }
}

static inline void elem_zero(void *dst, size_t size)
{
    if (dst != NULL && size != 0)
        memset(dst, 0, size);
}

static inline void *chanbuf(struct chan *c, size_t i)
{
    return c->buf + i * c->elem_size;
}

/* c->lock held. */
static inline size_t chan_count(struct chan *c)
{
    return atomic_load_explicit(&c->count, memory_order_relaxed);
}

/* c->lock held. */
static inline bool chan_closed(struct chan *c)
{
    return atomic_load_explicit(&c->closed, memory_order_relaxed) != 0;
}

/* c->lock held (the queue's channel). */
static inline void waitq_enqueue(waitq_t *q, gort_sudog_t *sg)
{
    sg->next = NULL;
    sg->prev = q->last;
    sg->queued = true;
    if (q->last != NULL)
        q->last->next = sg;
    else
        atomic_store_explicit(&q->first, sg, memory_order_relaxed);
    q->last = sg;
}

/* c->lock held.  Unlinks sg if it is still queued (a waker may have
 * dequeued it already); Go's dequeueSudoG. */
static inline void waitq_remove(waitq_t *q, gort_sudog_t *sg)
{
    if (!sg->queued)
        return;
    if (sg->prev != NULL)
        sg->prev->next = sg->next;
    else
        atomic_store_explicit(&q->first, sg->next, memory_order_relaxed);
    if (sg->next != NULL)
        sg->next->prev = sg->prev;
    else
        q->last = sg->prev;
    sg->next = sg->prev = NULL;
    sg->queued = false;
}

/*
 * c->lock held.  Removes and returns the first entry whose waiter this
 * caller manages to claim; the caller then owns it and must complete it.
 * Entries that lose the claim belong to a select that already fired on
 * another channel or timed out: they are unlinked and skipped, and their
 * owner, which cannot return before it takes this lock, finds them gone.
 */
static inline gort_sudog_t *waitq_dequeue(waitq_t *q)
{
    for (;;) {
        gort_sudog_t *sg = atomic_load_explicit(&q->first,
                                                memory_order_relaxed);
        if (sg == NULL)
            return NULL;
        waitq_remove(q, sg);
        if (gort__waiter_claim(sg->w, sg->ticket))
            return sg;
    }
}

/* Finishes a claimed entry: records the outcome and wakes its owner (park
 * returns the case index).  Call with no channel lock held, as the last
 * touch of the entry: its owner may return at once. */
static inline void sudog_complete(gort_sudog_t *sg, bool success)
{
    gort_waiter_t *w = sg->w;
    int result = (int)sg->index;

    sg->success = success;
    gort__waiter_wake(w, result);
}

/*
 * Go's recv(): c->lock held, sg a claimed blocked sender.  Unbuffered: take
 * the sender's value directly.  Buffered (so the ring is full): take the
 * head of the ring and put the sender's value in the slot just freed, which
 * is the tail, keeping FIFO order.
 */
static inline void chan_recv_from_sender(struct chan *c, gort_sudog_t *sg,
                                         void *out)
{
    if (c->cap == 0) {
        elem_copy(out, sg->elem, c->elem_size);
        return;
    }
    void *slot = chanbuf(c, c->recvx);
    elem_copy(out, slot, c->elem_size);
    elem_copy(slot, sg->elem, c->elem_size);
    if (++c->recvx == c->cap)
        c->recvx = 0;
    c->sendx = c->recvx;
}

/* c->lock held, count < cap. */
static inline void chan_buf_put(struct chan *c, const void *elem)
{
    elem_copy(chanbuf(c, c->sendx), elem, c->elem_size);
    if (++c->sendx == c->cap)
        c->sendx = 0;
    atomic_store_explicit(&c->count, chan_count(c) + 1, memory_order_relaxed);
}

/* c->lock held, count > 0. */
static inline void chan_buf_take(struct chan *c, void *out)
{
    elem_copy(out, chanbuf(c, c->recvx), c->elem_size);
    if (++c->recvx == c->cap)
        c->recvx = 0;
    atomic_store_explicit(&c->count, chan_count(c) - 1, memory_order_relaxed);
}

#endif /* GORT_CSP_CHAN_IMPL_H */
