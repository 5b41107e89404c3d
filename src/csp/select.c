/*
 * select.c - chan_select: Go's selectgo, in C.
 *
 * The problem.  Wait on several channel operations at once and perform
 * exactly one: the first that can proceed, or, when several can proceed
 * now, one of them chosen uniformly at random (so that no case starves).
 * Optionally give up after a timeout, or at once (Go's `default:`).  The
 * same channel may appear in several cases, for sending and receiving.
 *
 * The design is Go's runtime/select.go, on the channel internals of
 * chan_impl.h:
 *
 *   1. Shuffle the cases with non-NULL channels into a random poll order
 *      (inside-out Fisher-Yates with gort__fastrand) and sort them by
 *      channel address into a lock order (heapsort, no allocation; Go's).
 *   2. Lock every channel in address order, each once even if it appears
 *      in several cases.  Address order is the global order that makes two
 *      selects over overlapping channels deadlock-free (lock.h).
 *   3. Pass 1: walk the poll order and do the first case that can proceed
 *      now, exactly as chan_send / chan_recv would (direct handoff to or
 *      from a blocked party, or the ring, or "closed").  The random order
 *      makes the choice among ready cases uniform.
 *   4. Nothing ready: with timeout 0, unlock and return -EAGAIN.  Else
 *      prepare our waiter once and enqueue one wait entry per case on its
 *      channel's queue, all with the same (waiter, ticket), then park; the
 *      commit callback unlocks every channel.  The deadline, if any, is
 *      given to park, which claims the waiter itself when it expires.
 *   5. Whoever claims the ticket first wins: a sender or receiver on one
 *      of the channels (it completes that case's entry and wakes us with
 *      the case index), a close (same, with success false), or the timer
 *      (-ETIMEDOUT).  Every other party that finds one of our entries
 *      fails to claim and drops it (waitq_dequeue).
 *   6. Pass 3: lock all channels again and unlink our remaining entries,
 *      then unlock and report.
 *
 * Differences from Go (API.md): a send case on a closed channel proceeds
 * with ok == false instead of panicking; a receive case on a closed
 * channel proceeds with ok == false and its element zeroed; `elem` may be
 * NULL for a receive; a timeout is a parameter rather than a timer channel.
 *
 * Lifetimes.  The wait entries, the orders and the selunlock argument live
 * on this call's stack (or in one malloc'd block for large selects).  The
 * commit callback runs after we have switched away and unlocks the
 * channels in reverse address order, the lowest address last.  A waker on
 * an already unlocked channel may wake us before commit finishes; we then
 * try to lock the lowest channel first (step 6) and cannot get past it
 * until commit has released it, and commit touches nothing of ours after
 * that last unlock.  So our frame outlives commit's use of it.
 *
 * One addition (pass 0, select_try): before locking everything, each case
 * is tried in poll order as chan_try_* would, which costs no lock for a
 * case that is not ready and one lock for the case done.  Only when none
 * is ready do steps 2-6 run.
 *
 * Rejected: polling each case with chan_try_* in random order and then
 * sleeping on a shared condition (loses the FIFO service order and wakes
 * everyone on every event; pass 0 never sleeps); locking all channels with a global select lock
 * (serialises unrelated selects); heap-allocated entries (a malloc per case
 * per blocking select, for nothing: the parked stack is stable).
 *
 * Invariants:
 *   - while any channel of the select is locked by us, all of them are, in
 *     address order, each once (sellock / selunlock);
 *   - every entry shares one ticket; at most one of them completes, and it
 *     is the one whose index park returns;
 *   - we return only after unlinking every entry under its channel's lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "csp/chan_impl.h"

/* Cases whose scratch (entries and orders) lives on the stack. */
enum { SELECT_STACK_CASES = 16 };

struct sel {
    chan_case_t *cases;   /* the caller's array */
    gort_sudog_t *sg;     /* one entry per case, indexed like cases */
    uint32_t *pollorder;  /* indices of cases with a channel, shuffled */
    uint32_t *lockorder;  /* the same indices, by channel address */
    uint32_t norder;      /* how many cases have a channel */
};

static inline struct chan *case_chan(const struct sel *s, uint32_t i)
{
    return s->cases[i].chan;
}

/* Go's cheaprandn: uniform enough in [0, n) without a division. */
static inline uint32_t randn(uint32_t n)
{
    return (uint32_t)(((uint64_t)(uint32_t)gort__fastrand() * n) >> 32);
}

/* Step 1a: random poll order over the cases that have a channel. */
static void make_pollorder(struct sel *s, size_t n)
{
    uint32_t norder = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (s->cases[i].chan == NULL)
            continue;
        uint32_t j = randn(norder + 1);
        s->pollorder[norder] = s->pollorder[j];
        s->pollorder[j] = i;
        norder++;
    }
    s->norder = norder;
}

/* Step 1b: heapsort the poll order by channel address (Go's), starting
 * from the poll order so that cases on one channel are permuted too. */
static void make_lockorder(struct sel *s)
{
    uint32_t *lo = s->lockorder;

    for (uint32_t i = 0; i < s->norder; i++) {
        uint32_t j = i;
        uintptr_t c = (uintptr_t)case_chan(s, s->pollorder[i]);
        while (j > 0 && (uintptr_t)case_chan(s, lo[(j - 1) / 2]) < c) {
            uint32_t k = (j - 1) / 2;
            lo[j] = lo[k];
            j = k;
        }
        lo[j] = s->pollorder[i];
    }
    for (uint32_t i = s->norder; i-- > 0;) {
        uint32_t o = lo[i];
        uintptr_t c = (uintptr_t)case_chan(s, o);
        uint32_t j = 0;
        lo[i] = lo[0];
        for (;;) {
            uint32_t k = j * 2 + 1;
            if (k >= i)
                break;
            if (k + 1 < i
                && (uintptr_t)case_chan(s, lo[k])
                       < (uintptr_t)case_chan(s, lo[k + 1]))
                k++;
            if (c < (uintptr_t)case_chan(s, lo[k])) {
                lo[j] = lo[k];
                j = k;
                continue;
            }
            break;
        }
        lo[j] = o;
    }
}

static void sellock(struct sel *s)
{
    struct chan *prev = NULL;

    for (uint32_t i = 0; i < s->norder; i++) {
        struct chan *c = case_chan(s, s->lockorder[i]);
        if (c != prev)
            chan_lock(c);
        prev = c;
    }
}

/* Reverse address order, lowest last, and nothing touched after it: see
 * "Lifetimes" above. */
static void selunlock(struct sel *s)
{
    for (uint32_t i = s->norder; i-- > 0;) {
        struct chan *c = case_chan(s, s->lockorder[i]);
        if (i > 0 && c == case_chan(s, s->lockorder[i - 1]))
            continue;
        chan_unlock(c);
    }
}

static void selunlock_commit(void *arg)
{
    selunlock(arg);
}

/*
 * Pass 1: every channel locked.  Performs the first case in poll order
 * that can proceed, unlocks everything and returns its index; returns -1
 * (still locked) when none can.
 */
static int select_ready(struct sel *s)
{
    for (uint32_t p = 0; p < s->norder; p++) {
        uint32_t i = s->pollorder[p];
        chan_case_t *k = &s->cases[i];
        struct chan *c = k->chan;
        gort_sudog_t *sg;

        if (k->op == CHAN_RECV) {
            if ((sg = waitq_dequeue(&c->sendq)) != NULL) {
                chan_recv_from_sender(c, sg, k->elem);
                selunlock(s);
                sudog_complete(sg, true);
                k->ok = true;
                return (int)i;
            }
            if (chan_count(c) > 0) {
                chan_buf_take(c, k->elem);
                selunlock(s);
                k->ok = true;
                return (int)i;
            }
            if (chan_closed(c)) {
                size_t elem_size = c->elem_size;
                selunlock(s);
                elem_zero(k->elem, elem_size);
                k->ok = false;
                return (int)i;
            }
        } else {
            if (chan_closed(c)) {
                selunlock(s);
                k->ok = false;
                return (int)i;
            }
            if ((sg = waitq_dequeue(&c->recvq)) != NULL) {
                elem_copy(sg->elem, k->elem, c->elem_size);
                selunlock(s);
                sudog_complete(sg, true);
                k->ok = true;
                return (int)i;
            }
            if (chan_count(c) < c->cap) {
                chan_buf_put(c, k->elem);
                selunlock(s);
                k->ok = true;
                return (int)i;
            }
        }
    }
    return -1;
}

/* Passes 2 and 3: every channel locked, nothing ready, timeout != 0. */
static int select_block(struct sel *s, int64_t deadline)
{
    gort_waiter_t *w = gort__waiter_self();
    uint64_t ticket = gort__waiter_prepare(w);
    int r;

    for (uint32_t p = 0; p < s->norder; p++) {
        uint32_t i = s->lockorder[p];
        chan_case_t *k = &s->cases[i];
        gort_sudog_t *sg = &s->sg[i];

        sg->w = w;
        sg->ticket = ticket;
        sg->elem = k->elem;
        sg->index = i;
        sg->success = false;
        waitq_enqueue(k->op == CHAN_SEND ? &k->chan->sendq : &k->chan->recvq,
                      sg);
    }
    r = gort__waiter_park(w, selunlock_commit, s, deadline);
    gort__lockrank_assert_none();

    sellock(s);
    for (uint32_t p = 0; p < s->norder; p++) {
        uint32_t i = s->lockorder[p];
        chan_case_t *k = &s->cases[i];
        waitq_remove(k->op == CHAN_SEND ? &k->chan->sendq : &k->chan->recvq,
                     &s->sg[i]);
    }
    selunlock(s);

    if (r < 0)
        return r; /* -ETIMEDOUT: the deadline claimed the waiter */
    /* The winner wrote success (and, for a receive, the element or its
     * zeroing on close) before waking us. */
    s->cases[r].ok = s->sg[r].success;
    return r;
}

/* No case has a channel: Go's select {} and its timed variants. */
static int select_nothing(int64_t timeout_ns)
{
    if (timeout_ns == 0)
        return -EAGAIN;
    if (timeout_ns < 0)
        gort__block_forever();
    go_sleep(timeout_ns);
    return -ETIMEDOUT;
}

static int64_t deadline_of(int64_t timeout_ns)
{
    int64_t now, deadline;

    if (timeout_ns < 0)
        return GO_FOREVER;
    now = go_now();
    if (__builtin_add_overflow(now, timeout_ns, &deadline))
        return GO_FOREVER;
    return deadline;
}

/*
 * Pass 0, before taking every lock: try each case in poll order as the
 * non-blocking chan_try_* would.  A case that is not ready is answered
 * from a couple of relaxed loads without its lock (chan.c's fast paths),
 * and the first ready one is done under its own lock only.  The choice is
 * as uniform as pass 1's (the same random order), and every case done was
 * ready when it was done.  Only if none was ready do we lock them all and
 * look again (pass 1), which is what makes blocking safe.
 *
 * Why: a select over busy channels locked all of them for every value,
 * so at 2 workers the consumer of the select benchmark pulled the line of
 * each producer's channel to its core per item, where only one was used.
 */
static int select_try(struct sel *s)
{
    for (uint32_t p = 0; p < s->norder; p++) {
        uint32_t i = s->pollorder[p];
        chan_case_t *k = &s->cases[i];
        int r;

        if (k->op == CHAN_RECV) {
            r = gort__chanrecv(k->chan, k->elem, false);
            if (r != -EAGAIN) {
                k->ok = r == 1;
                return (int)i;
            }
        } else {
            r = gort__chansend(k->chan, k->elem, false);
            if (r != -EAGAIN) {
                k->ok = r == 0;
                return (int)i;
            }
        }
    }
    return -1;
}

static int select_run(struct sel *s, size_t n, int64_t timeout_ns)
{
    int64_t deadline = deadline_of(timeout_ns);
    int r;

    make_pollorder(s, n);
    if (s->norder == 0)
        return select_nothing(timeout_ns);
    r = select_try(s);
    if (r >= 0)
        return r;
    make_lockorder(s);

    sellock(s);
    r = select_ready(s);
    if (r >= 0)
        return r;
    if (timeout_ns == 0) {
        selunlock(s);
        return -EAGAIN;
    }
    return select_block(s, deadline);
}

int chan_select(chan_case_t *cases, size_t n, int64_t timeout_ns)
{
    gort_sudog_t sg_stack[SELECT_STACK_CASES];
    uint32_t order_stack[2 * SELECT_STACK_CASES];
    struct sel s = {.cases = cases};
    void *heap = NULL;
    int r;

    gort__preempt_point();

    if (n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].chan != NULL && cases[i].op != CHAN_SEND
            && cases[i].op != CHAN_RECV)
            return -EINVAL;
    }
    if (n <= SELECT_STACK_CASES) {
        s.sg = sg_stack;
        s.pollorder = order_stack;
        s.lockorder = order_stack + SELECT_STACK_CASES;
    } else {
        int saved_errno = errno;
        heap = malloc(n * (sizeof(gort_sudog_t) + 2 * sizeof(uint32_t)));
        errno = saved_errno;
        if (heap == NULL)
            return -ENOMEM;
        s.sg = heap;
        s.pollorder = (uint32_t *)(s.sg + n);
        s.lockorder = s.pollorder + n;
    }
    r = select_run(&s, n, timeout_ns);
    free(heap);
    return r;
}
