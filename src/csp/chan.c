/*
 * chan.c - channels: Go's hchan, in C.
 *
 * The problem.  A channel moves fixed-size values between goroutines and
 * plain threads, in FIFO order, with an optional buffer.  An unbuffered
 * send is a rendezvous: it returns once a receiver has the value.  Blocked
 * parties are served first come, first served.  Closing wakes everyone.  A
 * goroutine that blocks must park (free its worker), a plain thread must
 * sleep, and neither may miss a wake-up.  The same queues also serve select
 * (select.c), where one party waits on many channels at once and the first
 * channel to fire wins.
 *
 * The design is Go's runtime/chan.go:
 *
 *   - One record per channel (struct chan, chan_impl.h): a ring buffer of
 *     `cap` elements allocated in the same block, the count, the ring
 *     indices, a closed flag and two FIFO wait queues, recvq and sendq, all
 *     under one short lock (lock.h: a futex lock, rank GORT_RANK_CHAN).
 *
 *   - A blocked operation is a wait entry (gort_sudog_t, Go's sudog) on the
 *     blocked party's own stack.  It names the party's waiter (park.h), the
 *     ticket of this wait, and the address of the value to send or of the
 *     destination of the receive.  The party parks with a commit callback
 *     that releases the channel lock, so the entry becomes visible to
 *     wakers only when the party is off its stack.
 *
 *   - Direct handoff.  A sender that finds a blocked receiver copies its
 *     value straight into the receiver's destination; a receiver that finds
 *     a blocked sender copies straight out of the sender's variable (for a
 *     full buffered channel it takes the ring's head and refills the freed
 *     slot from the sender, which keeps FIFO order).  No intermediate copy,
 *     no second lock round trip for the woken party: it wakes with its
 *     operation already done.
 *
 *   - Claiming.  Before touching an entry a waker must win
 *     gort__waiter_claim(w, ticket): exactly one claim per wait succeeds.
 *     For a plain operation the only possible claimer is whoever dequeues
 *     the entry; for a select, other channels of the same select and the
 *     select's timer compete, and losers just drop the entry
 *     (waitq_dequeue).  The winner records success, releases every channel
 *     lock and only then wakes the party (sudog_complete): Go does not ready
 *     a goroutine under a channel lock either, and after the wake neither
 *     the entry nor, for chan_send/chan_recv, the channel is touched again,
 *     so the woken party may free the channel at once (API.md, Lifetimes).
 *
 *   - Lock-free fast paths where Go has them: chan_try_send on a full (or
 *     receiverless unbuffered) open channel and chan_try_recv on an empty
 *     open channel answer -EAGAIN from two atomic loads, without the lock.
 *     The ordering arguments are at chansend and chanrecv below.
 *
 * Differences from Go, all from API.md: sending on a closed channel returns
 * -EPIPE instead of panicking; elements are raw bytes (elem_size, possibly
 * 0); `out` may be NULL to discard; chan_free exists and panics when
 * goroutines are blocked on the channel.
 *
 * Rejected alternatives.  A lock-free ring (Vyukov-style) for buffered
 * channels: fast when both sides are busy, but blocking, close and select
 * all need a lock anyway, and Go's measurements (the 2014 lock-free channel
 * proposal) showed little gain once those are handled.  Separate locks for
 * the two queues: select must see both queues and the buffer atomically.
 * Heap-allocated wait entries (Go's sudog cache): an entry on the parked
 * party's stack costs nothing and cannot leak.
 *
 * Invariants (c->lock held):
 *   - At least one of c->sendq and c->recvq is empty, except for an
 *     unbuffered channel on which one select waits to both send and
 *     receive; entries whose waiter was already claimed (a select that fired
 *     elsewhere or timed out) may linger until their owner or a waker
 *     unlinks them, and do not count.
 *   - Buffered: count > 0 implies recvq has no claimable entry;
 *     count < cap implies sendq has no claimable entry.
 *   - Once closed, no entry is ever enqueued again and closed stays 1.
 *   - A queued entry's owner is parked or, having been woken or timed out,
 *     is waiting for this lock to unlink it: the entry's memory is valid.
 *   - recvx, sendx < cap; count <= cap; for cap == 0 count stays 0.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "csp/chan_impl.h"

/* ---- creation, destruction, inspection -------------------------------- */

chan_t *chan_make(size_t elem_size, size_t capacity)
{
    const size_t hdr = (sizeof(struct chan) + alignof(max_align_t) - 1)
                       & ~(alignof(max_align_t) - 1);
    size_t bufsize;
    struct chan *c;
    int saved_errno;

    if (__builtin_mul_overflow(elem_size, capacity, &bufsize)
        || bufsize > (size_t)PTRDIFF_MAX - hdr)
        return NULL;
    saved_errno = errno;
    c = malloc(hdr + bufsize);
    errno = saved_errno;
    if (c == NULL)
        return NULL;
    c->elem_size = elem_size;
    c->cap = capacity;
    /* Never NULL, even when there is no ring (cap or elem_size 0): the
     * one-past-the-end pointer keeps chanbuf's arithmetic defined. */
    c->buf = (unsigned char *)c + hdr;
    atomic_init(&c->count, 0);
    atomic_init(&c->closed, 0);
    c->sendx = 0;
    c->recvx = 0;
    atomic_init(&c->recvq.first, NULL);
    c->recvq.last = NULL;
    atomic_init(&c->sendq.first, NULL);
    c->sendq.last = NULL;
    atomic_init(&c->lock, 0);
    return c;
}

void chan_free(chan_t *c)
{
    bool busy;

    if (c == NULL)
        return;
    /* Take the lock so that a party still inside its last critical section
     * on c (it cannot be, unless the caller has a bug) is at least seen. */
    chan_lock(c);
    busy = atomic_load_explicit(&c->recvq.first, memory_order_relaxed) != NULL
           || atomic_load_explicit(&c->sendq.first, memory_order_relaxed)
                  != NULL;
    chan_unlock(c);
    if (busy)
        go_panic("free of channel with blocked goroutines");
    free(c);
}

size_t chan_len(const chan_t *c)
{
    if (c == NULL)
        return 0;
    /* relaxed: a snapshot, as Go's len(c); it is stale at once anyway. */
    return atomic_load_explicit((_Atomic size_t *)&c->count,
                                memory_order_relaxed);
}

size_t chan_cap(const chan_t *c)
{
    return c == NULL ? 0 : c->cap;
}

/* ---- close ------------------------------------------------------------ */

/*
 * Marks c closed and completes every blocked party: receivers get false
 * and a zeroed destination, senders -EPIPE.  The claimed entries are
 * chained through `next` (they are off their queues) and woken after the
 * lock is released, the last touch of c being the unlock.
 */
void chan_close(chan_t *c)
{
    gort_sudog_t *receivers = NULL, *senders = NULL, *sg;
    size_t elem_size;

    if (c == NULL)
        go_panic("close of nil channel");
    chan_lock(c);
    if (chan_closed(c)) {
        chan_unlock(c);
        go_panic("close of closed channel");
    }
    /* release: pairs with the acquire load of `closed` in chanrecv's fast
     * path; every count update of earlier critical sections (ordered
     * before this one by the lock) is visible to a reader that sees 1. */
    atomic_store_explicit(&c->closed, 1, memory_order_release);
    elem_size = c->elem_size;
    while ((sg = waitq_dequeue(&c->recvq)) != NULL) {
        sg->next = receivers;
        receivers = sg;
    }
    while ((sg = waitq_dequeue(&c->sendq)) != NULL) {
        sg->next = senders;
        senders = sg;
    }
    chan_unlock(c);
    while (receivers != NULL) {
        sg = receivers;
        receivers = sg->next;
        elem_zero(sg->elem, elem_size);
        sudog_complete(sg, false);
    }
    while (senders != NULL) {
        sg = senders;
        senders = sg->next;
        sudog_complete(sg, false);
    }
}

/* ---- send ------------------------------------------------------------- */

/* Slow path of chansend: c->lock held, nobody to hand to, no room.
 * Parks until a receiver takes the value or c is closed. */
static __attribute__((noinline)) int chansend_block(struct chan *c,
                                                    const void *elem)
{
    gort_waiter_t *w = gort__waiter_self();
    gort_sudog_t sg = {
        .w = w,
        .ticket = gort__waiter_prepare(w),
        .elem = (void *)elem, /* only read by the receiver */
        .index = 0,
    };

    waitq_enqueue(&c->sendq, &sg);
    gort__waiter_park(w, gort__unlock_commit, &c->lock, GO_FOREVER);
    gort__lockrank_assert_none();
    /* The claimer wrote sg.success before waking us; park's return is
     * ordered after the wake (park.h), so the plain read is safe. */
    return sg.success ? 0 : -EPIPE;
}

/*
 * Go's chansend.  Returns 0, -EPIPE (closed) or, when !block, -EAGAIN.
 *
 * The lock-free fast path for a failing non-blocking send (Go's argument):
 * we observe "not closed" and then "not ready for sending" (full ring, or
 * no receiver on an unbuffered channel).  A closed channel never becomes
 * open again, so there is a moment between the two observations at which
 * the channel was open and not ready; we answer as of that moment.  The
 * two loads may be reordered (if "not ready" is seen first, "not closed"
 * seen later still held at that first moment), so relaxed loads suffice.
 * Nothing here promises progress: a later call sees newer values after the
 * lock releases of chanrecv and chan_close.
 */
int gort__chansend(struct chan *c, const void *elem, bool block)
{
    gort_sudog_t *sg;

    if (c == NULL) {
        if (!block)
            return -EAGAIN;
        gort__block_forever();
    }
    if (!block
        && atomic_load_explicit(&c->closed, memory_order_relaxed) == 0
        && (c->cap == 0
                ? atomic_load_explicit(&c->recvq.first, memory_order_relaxed)
                      == NULL
                : atomic_load_explicit(&c->count, memory_order_relaxed)
                      == c->cap))
        return -EAGAIN;

    chan_lock(c);
    if (chan_closed(c)) {
        chan_unlock(c);
        return -EPIPE;
    }
    if ((sg = waitq_dequeue(&c->recvq)) != NULL) {
        /* A receiver waits: hand the value straight to it. */
        elem_copy(sg->elem, elem, c->elem_size);
        chan_unlock(c);
        sudog_complete(sg, true);
        return 0;
    }
    if (chan_count(c) < c->cap) {
        chan_buf_put(c, elem);
        chan_unlock(c);
        return 0;
    }
    if (!block) {
        chan_unlock(c);
        return -EAGAIN;
    }
    return chansend_block(c, elem);
}

/* The public entry points are preemption points (sysmon.c): a loop of
   sends into a buffer that never fills would otherwise keep its P. */
int chan_send(chan_t *c, const void *elem)
{
    gort__preempt_point();
    return gort__chansend(c, elem, true);
}

int chan_try_send(chan_t *c, const void *elem)
{
    gort__preempt_point();
    return gort__chansend(c, elem, false);
}

/* ---- receive ---------------------------------------------------------- */

/* Slow path of chanrecv: c->lock held, open, nothing to take. */
static __attribute__((noinline)) int chanrecv_block(struct chan *c, void *out)
{
    gort_waiter_t *w = gort__waiter_self();
    gort_sudog_t sg = {
        .w = w,
        .ticket = gort__waiter_prepare(w),
        .elem = out,
        .index = 0,
    };

    waitq_enqueue(&c->recvq, &sg);
    gort__waiter_park(w, gort__unlock_commit, &c->lock, GO_FOREVER);
    gort__lockrank_assert_none();
    /* On success the sender copied into *out; on close the closer zeroed
     * it.  Both happened before the wake. */
    return sg.success ? 1 : 0;
}

/* Nothing to receive right now, judged without the lock: relaxed would do
 * for the value, acquire keeps the following load of `closed` after it. */
static inline bool chan_looks_empty(struct chan *c)
{
    if (c->cap == 0)
        return atomic_load_explicit(&c->sendq.first, memory_order_acquire)
               == NULL;
    return atomic_load_explicit(&c->count, memory_order_acquire) == 0;
}

/*
 * Go's chanrecv.  Returns 1 (received), 0 (closed and drained; *out
 * zeroed) or, when !block, -EAGAIN.
 *
 * The lock-free fast path for a failing non-blocking receive: we observe
 * "empty" and then "not closed".  A channel cannot reopen, so "not closed"
 * also held at the first observation, and we answer -EAGAIN as of then.
 * Here the order matters: were the loads reordered, an open non-empty
 * channel that is then closed and drained could look "open and empty";
 * hence the acquire on the first load.  If we see "closed" we re-check
 * emptiness: values may have arrived between the two loads, and the close
 * (a release store, after every earlier send's critical section) makes
 * them visible to our acquire load of `closed`; after a close nothing can
 * be added, so "closed, then empty" means drained for good.
 */
int gort__chanrecv(struct chan *c, void *out, bool block)
{
    gort_sudog_t *sg;

    if (c == NULL) {
        if (!block)
            return -EAGAIN;
        gort__block_forever();
    }
    if (!block && chan_looks_empty(c)) {
        /* acquire: pairs with the release store in chan_close. */
        if (atomic_load_explicit(&c->closed, memory_order_acquire) == 0)
            return -EAGAIN;
        if (chan_looks_empty(c)) {
            elem_zero(out, c->elem_size);
            return 0;
        }
    }

    chan_lock(c);
    if (chan_closed(c) && chan_count(c) == 0) {
        size_t elem_size = c->elem_size;
        chan_unlock(c);
        elem_zero(out, elem_size);
        return 0;
    }
    if ((sg = waitq_dequeue(&c->sendq)) != NULL) {
        /* A sender waits (so an unbuffered channel, or a full ring). */
        chan_recv_from_sender(c, sg, out);
        chan_unlock(c);
        sudog_complete(sg, true);
        return 1;
    }
    if (chan_count(c) > 0) {
        chan_buf_take(c, out);
        chan_unlock(c);
        return 1;
    }
    if (!block) {
        chan_unlock(c);
        return -EAGAIN;
    }
    return chanrecv_block(c, out);
}

bool chan_recv(chan_t *c, void *out)
{
    gort__preempt_point();
    return gort__chanrecv(c, out, true) == 1;
}

int chan_try_recv(chan_t *c, void *out)
{
    gort__preempt_point();
    return gort__chanrecv(c, out, false);
}

/* ---- blocking forever ------------------------------------------------- */

static void commit_nothing(void *arg)
{
    (void)arg;
}

/* A nil channel operation or an empty select: nothing can ever claim this
 * wait, since the ticket is published nowhere. */
_Noreturn void gort__block_forever(void)
{
    gort_waiter_t *w = gort__waiter_self();

    for (;;) {
        gort__waiter_prepare(w);
        gort__waiter_park(w, commit_nothing, NULL, GO_FOREVER);
    }
}
