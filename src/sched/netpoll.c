/*
 * netpoll.c - waiting on descriptors: go_fd_wait and the I/O calls.
 *
 * Each descriptor a goroutine waits on gets a poll descriptor (struct pd),
 * found through a two-level table indexed by the fd number and never
 * freed (so a stale pointer is always readable).  The first time a
 * goroutine waits on a descriptor, the runtime makes it non-blocking and
 * registers it with the backend once, edge-triggered.
 *
 * Readiness is remembered: an edge that finds no I/O waiter sets rready
 * or wready, and the next I/O wait (after EAGAIN) consumes it without a
 * system call (Go's pdReady).  An edge that finds waiters wakes all those
 * waiting for that direction (they then retry the I/O; losers see EAGAIN
 * and wait again).  go_fd_wait is different: its 0 promises readiness
 * now, so it asks the kernel (poll with timeout 0, under pd->lock) instead
 * of trusting remembered edges, and its wake-ups do not consume the edge.
 * Waiting entries live on the waiting goroutine's stack, linked into the
 * pd under pd->lock, and are removed by their owner after it resumes.
 *
 * go_close wakes every waiter with -EBADF before closing, so no goroutine
 * sleeps on a number that the kernel is about to reuse; the pd stays
 * PD_CLOSING until close() returns, and anyone about to register the
 * number waits that out (pd_lock_open): a goroutine that saw EAGAIN just
 * before then finds the descriptor closed, and one holding a new
 * descriptor with the reused number proceeds.
 *
 * Plain close() is allowed too (the contract has no close call of its
 * own), which leaves a stale pd: PD_POLLABLE for a number that the kernel
 * reuses for a new, unregistered, maybe blocking open file.  So:
 *  - the I/O calls never rely on O_NONBLOCK: sockets use recv/send with
 *    MSG_DONTWAIT, pipes and the like preadv2/pwritev2 with RWF_NOWAIT
 *    (plain read/write where the kernel refuses it), so a stale pd never
 *    blocks the thread; ENOTSOCK on a socket pd, a blocking listener in
 *    go_accept, or a regular-file pd that is no longer a file re-register
 *    at once, and go_connect (the start of a socket's life) always does;
 *  - a goroutine parked on a stale registration gets no edge ever, so the
 *    monitor re-arms (EPOLL_CTL_MOD) every pd whose waiters stayed parked
 *    unchanged for 200 ms (looking every 50 ms): -ENOENT or -EBADF means
 *    stale, and the waiters are woken to retry (their retry registers the
 *    new file).  One epoll_ctl per long wait, none on the fast paths.
 * Writes raise SIGPIPE as write(2) does (no MSG_NOSIGNAL): the same
 * whatever the pd believes the descriptor is; programs that want -EPIPE
 * ignore SIGPIPE, as C servers do.
 *
 * Workers poll when they run out of work, one idle worker sleeps in the
 * poller, and the monitor polls when nobody did for 10 ms
 * (gort__netpoll_sysmon), so busy Ps cannot starve descriptor waiters.
 *
 * Descriptors epoll refuses (regular files) are marked not pollable; they
 * are always "ready", and the I/O calls run inside go_blocking_begin/end
 * so that the monitor hands the worker's other goroutines away if the
 * read blocks (docs/design/handoff.md).
 *
 * On a plain thread the calls block as the system calls would: a
 * non-blocking descriptor is waited for with poll(2).
 *
 * Locks: pd->lock (a spinlock, see pd_lock) is taken before sched.lock
 * and p->timer_lock: waking a waiter readies it (gort__ready, wakep) with
 * pd->lock held, and a parking waiter's deadline timer is armed before
 * the commit releases pd->lock.  No path holds sched.lock or a timer lock
 * while taking a pd->lock.  npwaiters counts entries, so that idle workers
 * only poll when someone waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "netpoll.h"
#include "runtime.h"

/* The poller gets a pd from epoll's event data, published to it by the
   kernel (epoll_ctl); ThreadSanitizer does not see that edge. */
#if defined(GORT_TSAN)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TSAN_RELEASE(p) ((void)0)
#define TSAN_ACQUIRE(p) ((void)0)
#endif

#define PD_CHUNK 1024
#define PD_CHUNKS 4096 /* up to 4M descriptors */

struct fd_wait {
    gort_waiter_t *w;
    uint64_t ticket;
    int events;
    bool level;          /* go_fd_wait: does not consume the edge */
    struct fd_wait *next;
};

struct pd {
    _Atomic uint32_t lock;   /* pd_lock(): held across a park until the
                                commit on the next context, so it must not
                                be a mutex that checks its owner thread */
    int fd;
    uint8_t state;           /* lock: PD_NEW, PD_POLLABLE, PD_FILE, PD_CLOSING */
    bool rready, wready;     /* lock: an edge nobody consumed yet */
    _Atomic uint8_t kind;    /* PK_*: written under lock by pd_prepare, read
                                without it by the I/O calls (a stale value
                                only picks a call that fails and refreshes) */
    struct fd_wait *waiters; /* lock */
    /* Written under lock, read by the monitor without it (a hint). */
    _Atomic uint32_t nwait;  /* entries in waiters */
    _Atomic uint32_t parks;  /* entries ever added */
    uint32_t seen, checked;  /* monitor thread only: parks at its last look
                                and at its last re-arm */
    int64_t seen_at;         /* monitor thread only: when `seen` changed */
};
enum { PD_NEW = 0, PD_POLLABLE = 1, PD_FILE = 2, PD_CLOSING = 3 /* go_close */ };
/* How the I/O calls avoid blocking whatever O_NONBLOCK says. */
enum { PK_PLAIN = 0 /* read/write: rely on O_NONBLOCK */, PK_SOCK = 1 /* MSG_DONTWAIT */,
       PK_NOWAIT = 2 /* RWF_NOWAIT */ };

static struct pd *_Atomic pd_table[PD_CHUNKS];
static pthread_mutex_t pd_table_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int npwaiters;
static _Atomic int max_wait_fd; /* highest fd a goroutine waited on (monitor's scan) */

static void pd_lock(struct pd *pd)
{
    unsigned spins = 0;
    /* Acquire: pairs with the release in pd_release. */
    while (atomic_exchange_explicit(&pd->lock, 1, memory_order_acquire)) {
        while (atomic_load_explicit(&pd->lock, memory_order_relaxed)) {
            if (++spins < 64)
                gort__procyield(8);
            else
                sched_yield(); /* the holder may have been preempted */
        }
    }
}

static void pd_release(struct pd *pd)
{
    atomic_store_explicit(&pd->lock, 0, memory_order_release);
}

static struct pd *pd_lookup(int fd)
{
    struct pd *chunk;
    if (fd < 0 || fd >= PD_CHUNK * PD_CHUNKS)
        return NULL;
    chunk = atomic_load_explicit(&pd_table[fd / PD_CHUNK], memory_order_acquire);
    if (!chunk) {
        pthread_mutex_lock(&pd_table_lock);
        chunk = atomic_load_explicit(&pd_table[fd / PD_CHUNK], memory_order_relaxed);
        if (!chunk) {
            chunk = calloc(PD_CHUNK, sizeof *chunk);
            if (!chunk) {
                pthread_mutex_unlock(&pd_table_lock);
                return NULL;
            }
            for (int i = 0; i < PD_CHUNK; i++) {
                chunk[i].fd = fd / PD_CHUNK * PD_CHUNK + i;
            }
            /* Release: the initialised chunk, to the acquire above. */
            atomic_store_explicit(&pd_table[fd / PD_CHUNK], chunk, memory_order_release);
        }
        pthread_mutex_unlock(&pd_table_lock);
    }
    return &chunk[fd % PD_CHUNK];
}

/*
 * pd_lock, waiting out a go_close in progress.  Between go_close's close()
 * and its reset of the state to PD_NEW, the kernel may already have given
 * the number to a new descriptor (another thread's accept or socket), and
 * a goroutine using that new descriptor must not be told -EBADF (seen:
 * test_tcp_echo under TSan, one server read out of 16 connections failed
 * while others closed).  close() is short, so wait: a goroutine that was
 * using the old descriptor then finds it closed (fcntl gives EBADF in
 * pd_prepare) or, if the number was reused, the new file, as any C code
 * racing a close would.
 */
static void pd_lock_open(struct pd *pd)
{
    unsigned spins = 0;
    pd_lock(pd);
    while (pd->state == PD_CLOSING) {
        pd_release(pd);
        if (++spins < 16)
            gort__procyield(32);
        else
            sched_yield();
        pd_lock(pd);
    }
}

/* Registers fd on first use from a goroutine.  pd->lock held. */
static int pd_prepare(struct pd *pd)
{
    int flags, r;
    struct stat sb;
    if (pd->state == PD_CLOSING)
        return -EBADF;
    if (pd->state != PD_NEW)
        return 0;
    flags = fcntl(pd->fd, F_GETFL);
    if (flags < 0 || fstat(pd->fd, &sb) < 0)
        return -errno;
    atomic_store_explicit(&pd->kind, S_ISSOCK(sb.st_mode) ? PK_SOCK : PK_NOWAIT,
                          memory_order_relaxed);
    TSAN_RELEASE(pd);
    r = gort__np_register(pd->fd, pd);
    if (r == -EPERM) {
        pd->state = PD_FILE;
        return 0;
    }
    if (r < 0)
        return r;
    if (!(flags & O_NONBLOCK) && fcntl(pd->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        r = -errno;
        gort__np_unregister(pd->fd);
        return r;
    }
    pd->state = PD_POLLABLE;
    pd->rready = pd->wready = true; /* it may be ready already */
    return 0;
}

/* The pd was found stale (a plain close() and a reused number): forget the
   old registration and register what fd is now.  Waiters stay queued and
   get the new registration's edges.  *file (if not NULL): whether fd is
   now a regular file. */
static int pd_refresh(struct pd *pd, bool *file)
{
    int r;
    pd_lock_open(pd);
    if (pd->state == PD_POLLABLE)
        gort__np_unregister(pd->fd); /* fails harmlessly if already gone */
    if (pd->state != PD_CLOSING)
        pd->state = PD_NEW;
    r = pd_prepare(pd);
    if (file)
        *file = pd->state == PD_FILE;
    pd_release(pd);
    return r;
}

/* Wakes the waiters for `what` with result r; remembers unconsumed edges.
   pd->lock held. */
static int pd_wake(struct pd *pd, int what, int r)
{
    int n = 0;
    bool rw = false, ww = false;
    for (struct fd_wait *fw = pd->waiters; fw; fw = fw->next) {
        if (!(fw->events & what))
            continue;
        /* A go_fd_wait caller reads nothing: the edge stays remembered for
           an I/O call that saw EAGAIN and is about to wait. */
        if (!fw->level) {
            rw |= (fw->events & what & NP_READ) != 0;
            ww |= (fw->events & what & NP_WRITE) != 0;
        }
        if (gort__waiter_claim(fw->w, fw->ticket)) {
            gort__waiter_wake(fw->w, r);
            n++;
        }
    }
    if ((what & NP_READ) && !rw)
        pd->rready = true;
    if ((what & NP_WRITE) && !ww)
        pd->wready = true;
    return n;
}

/* go_now() when the latest poll returned.  Relaxed: only a hint for the
   monitor, which polls itself when this grows old. */
static _Atomic int64_t last_poll;
#define SYSMON_POLL_NS (10 * GO_MS)

static int on_ready(void *token, int what)
{
    struct pd *pd = token;
    int n;
    TSAN_ACQUIRE(pd);
    pd_lock(pd);
    n = pd_wake(pd, what, 0);
    pd_release(pd);
    return n;
}

/* Returns how many goroutines this call readied.  Counted per call, not
   in a shared counter: several threads poll at once (a worker's
   non-blocking poll beside the blocked poller), and a shared count reset
   by one of them made another believe it had readied nothing, so it gave
   up a P with the readied goroutine still in its run queue. */
int gort__netpoll(int64_t delay)
{
    int n = gort__np_wait(delay, on_ready);
    atomic_store_explicit(&last_poll, go_now(), memory_order_relaxed);
    return n;
}

/*
 * The monitor's poll (Go's sysmon netpoll).  Workers poll only when their
 * queues run dry, and an idle one sleeps in the poller; but a P kept busy
 * by goroutines that always find each other runnable (a go_yield loop)
 * never gets there, and with every P busy nobody sleeps in the poller, so
 * descriptors that became ready would wait forever.  When goroutines wait
 * on descriptors, nobody is blocked in the poller and nobody polled for
 * 10 ms, the monitor polls without blocking; what it readies goes to the
 * global queue (it holds no P), where the busy Ps find it.
 */

/* Re-arms the registration of a pd whose waiters sat through two monitor
   rounds; if it is stale, wakes them to retry (and so re-register).
   Returns the goroutines woken. */
static int pd_verify(struct pd *pd)
{
    int n = 0, r;
    pd_lock(pd);
    if (pd->state == PD_POLLABLE && pd->waiters) {
        r = gort__np_rearm(pd->fd, pd);
        if (r == -ENOENT || r == -EBADF) {
            pd->state = PD_NEW;
            n = pd_wake(pd, NP_READ | NP_WRITE, 0);
        }
    }
    pd_release(pd);
    return n;
}

/* How long a pd's waiters must sit unchanged before the monitor re-arms
   it: long enough that busy connections (a round trip every few tens of
   ms under load) are never checked (measured: at 10-20 ms the re-arms
   cost 4.6% of a 1,000-connection echo), short enough that a goroutine
   on a reused number is not noticeably stuck. */
#define VERIFY_AFTER_NS (200 * GO_MS)
/* How often the monitor looks: each look reads two words of every pd up
   to the highest descriptor a goroutine ever waited on (max_wait_fd). */
#define CHECK_PERIOD_NS (50 * GO_MS)

static int pd_check_parked(int64_t now)
{
    int n = 0, top = atomic_load_explicit(&max_wait_fd, memory_order_relaxed);
    for (int c = 0; c <= top / PD_CHUNK; c++) {
        struct pd *chunk = atomic_load_explicit(&pd_table[c], memory_order_acquire);
        if (!chunk)
            continue;
        for (int i = 0; i < PD_CHUNK && c * PD_CHUNK + i <= top; i++) {
            struct pd *pd = &chunk[i];
            uint32_t parks;
            if (!atomic_load_explicit(&pd->nwait, memory_order_relaxed))
                continue;
            parks = atomic_load_explicit(&pd->parks, memory_order_relaxed);
            if (parks != pd->seen) {
                pd->seen = parks; /* new waiters since the last round */
                pd->seen_at = now;
                continue;
            }
            if (parks == pd->checked || now - pd->seen_at < VERIFY_AFTER_NS)
                continue; /* re-armed already, or not waiting for long */
            pd->checked = parks;
            n += pd_verify(pd);
        }
    }
    return n;
}

int gort__netpoll_sysmon(int64_t now)
{
    static int64_t last_check; /* monitor thread only */
    int n = 0;
    if (!gort__netpoll_waiters())
        return 0;
    if (now - last_check >= CHECK_PERIOD_NS) {
        last_check = now;
        n += pd_check_parked(now);
    }
    if (!atomic_load_explicit(&gort__sched.polling, memory_order_relaxed) &&
        now - atomic_load_explicit(&last_poll, memory_order_relaxed) >= SYSMON_POLL_NS)
        n += gort__netpoll(0);
    return n;
}

void gort__netpoll_init(void)
{
    int r = gort__np_open();
    if (r < 0)
        gort__fatal("netpoll: cannot create the epoll instance (errno %d)", -r);
}

void gort__netpoll_break(void) { gort__np_break(); }

bool gort__netpoll_waiters(void)
{
    return atomic_load_explicit(&npwaiters, memory_order_relaxed) > 0;
}

static void pd_unlock(void *arg)
{
    pd_release(arg);
}

/* Plain threads, and timeout 0: poll(2). */
static int fd_poll(int fd, int events, int64_t timeout_ns)
{
    struct pollfd pfd = {.fd = fd, .events = 0};
    int64_t deadline = timeout_ns < 0 ? -1 : go_now() + timeout_ns;
    if (events & GO_READABLE)
        pfd.events |= POLLIN;
    if (events & GO_WRITABLE)
        pfd.events |= POLLOUT;
    for (;;) {
        int ms = -1, r;
        if (deadline >= 0) {
            int64_t left = deadline - go_now();
            ms = left <= 0 ? 0 : (int)((left + GO_MS - 1) / GO_MS);
        }
        r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
        return (pfd.revents & POLLNVAL) ? -EBADF : 0;
    }
}

/*
 * Waits in a goroutine until fd is ready for `events` or the deadline
 * (absolute, or GO_FOREVER) passes.
 *
 * Edge mode (the I/O calls, right after EAGAIN): a remembered edge is
 * consumed without a system call; at worst it is stale and the caller's
 * retry sees EAGAIN again.
 *
 * Level mode (go_fd_wait, whose 0 promises readiness now): remembered
 * edges say nothing about now (the data may have been read since, and a
 * fresh registration remembers both directions), so ask the kernel with a
 * zero-timeout poll, under pd->lock so that any later edge, which needs
 * the lock to wake anyone, finds this goroutine among the waiters.  An
 * edge that wakes it may have been queued before that poll: poll again.
 */
static int fd_wait_goroutine(struct pd *pd, int events, int64_t deadline, bool level)
{
    gort_waiter_t *w = gort__waiter_self();
    struct fd_wait fw = {.w = w, .events = events, .level = level};
    int r;
again:
    pd_lock_open(pd);
    r = pd_prepare(pd);
    if (r < 0 || pd->state == PD_FILE) {
        pd_release(pd);
        return r < 0 ? r : 0; /* files are always ready */
    }
    if (level) {
        r = fd_poll(pd->fd, events, 0);
        if (r != -EAGAIN) {
            pd_release(pd);
            return r;
        }
        r = 0;
    } else {
        if ((events & NP_READ) && pd->rready) {
            pd->rready = false;
            r = 1;
        }
        if ((events & NP_WRITE) && pd->wready) {
            pd->wready = false;
            r = 1;
        }
        if (r == 1) {
            pd_release(pd);
            return 0;
        }
    }
    fw.ticket = gort__waiter_prepare(w);
    fw.next = pd->waiters;
    pd->waiters = &fw;
    atomic_store_explicit(&pd->nwait, atomic_load_explicit(&pd->nwait, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&pd->parks, atomic_load_explicit(&pd->parks, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&npwaiters, 1, memory_order_relaxed);
    /* The monitor's scan bound only grows (CAS: two parkers must not
       lower it); relaxed, since the scan also reads nwait racily. */
    for (int top = atomic_load_explicit(&max_wait_fd, memory_order_relaxed);
         pd->fd > top && !atomic_compare_exchange_weak_explicit(&max_wait_fd, &top, pd->fd,
                                                               memory_order_relaxed,
                                                               memory_order_relaxed);)
        ;
    r = gort__waiter_park(w, pd_unlock, pd, deadline);
    pd_lock(pd);
    for (struct fd_wait **pp = &pd->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == &fw) {
            *pp = fw.next;
            break;
        }
    }
    atomic_store_explicit(&pd->nwait, atomic_load_explicit(&pd->nwait, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    pd_release(pd);
    atomic_fetch_sub_explicit(&npwaiters, 1, memory_order_relaxed);
    if (level && r == 0)
        goto again;
    return r;
}

int go_fd_wait(int fd, int events, int64_t timeout_ns)
{
    struct pd *pd;
    int saved = errno, r;
    if (fd < 0)
        return -EBADF;
    if (!(events & (GO_READABLE | GO_WRITABLE)) || (events & ~(GO_READABLE | GO_WRITABLE)))
        return -EINVAL;
    gort__init();
    if (timeout_ns == 0 || !gort__in_goroutine()) {
        r = fd_poll(fd, events, timeout_ns);
    } else if ((pd = pd_lookup(fd)) == NULL) {
        r = -ENOMEM;
    } else {
        r = fd_wait_goroutine(pd, events, timeout_ns < 0 ? GO_FOREVER : go_now() + timeout_ns,
                              true);
    }
    errno = saved; /* on whatever thread we are now (park.h) */
    return r;
}

/* Prepares fd for goroutine I/O; returns its pd or NULL on a plain thread.
   *err gets a negative errno on failure; *file (if not NULL) whether fd is
   a regular file (read under the lock: go_close may change the state). */
static struct pd *io_begin(int fd, int *err, bool *file)
{
    struct pd *pd;
    *err = 0;
    if (file)
        *file = false;
    gort__init();
    if (!gort__in_goroutine())
        return NULL;
    pd = pd_lookup(fd);
    if (!pd) {
        *err = fd < 0 ? -EBADF : -ENOMEM;
        return NULL;
    }
    pd_lock_open(pd);
    *err = pd_prepare(pd);
    if (file)
        *file = pd->state == PD_FILE;
    pd_release(pd);
    return pd;
}

/* After EAGAIN: wait until fd is ready for `events`. */
static int io_wait(struct pd *pd, int fd, int events)
{
    if (pd)
        return fd_wait_goroutine(pd, events, GO_FOREVER, false);
    return fd_poll(fd, events, GO_FOREVER);
}

/* Whether a PD_FILE pd still names a file epoll refuses (a plain close()
   may have handed its number to a socket, which must not be read with a
   blocking call).  Files are slow anyway: one fstat per call is noise. */
static bool still_file(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 && (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode));
}

/* preadv2/pwritev2 failed because the kernel or this kind of file does
   not take RWF_NOWAIT (EOPNOTSUPP: a terminal, say; ENOSYS: a kernel or
   emulator without the calls), as opposed to failing for the I/O itself.
   A zero-length probe at registration cannot tell: it succeeds for
   terminals too.  Such a pd falls back to plain read/write for good,
   relying on the O_NONBLOCK that pd_prepare set. */
static bool nowait_refused(int err)
{
    return err == EOPNOTSUPP || err == ENOSYS;
}

/* One read (wr false) or write that never blocks the thread, whatever
   O_NONBLOCK says.  -1 and errno as read(2)/write(2); errno ESTALE: the
   pd no longer describes fd (it took a socket for a pipe). */
static ssize_t io_once(struct pd *pd, int fd, void *buf, size_t n, bool wr)
{
    ssize_t r;
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    switch (pd ? atomic_load_explicit(&pd->kind, memory_order_relaxed) : PK_PLAIN) {
    case PK_SOCK:
        r = wr ? send(fd, buf, n, MSG_DONTWAIT) : recv(fd, buf, n, MSG_DONTWAIT);
        if (r < 0 && errno == ENOTSOCK)
            errno = ESTALE;
        return r;
    case PK_NOWAIT:
        r = wr ? pwritev2(fd, &iov, 1, -1, RWF_NOWAIT) : preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
        if (r >= 0 || !nowait_refused(errno))
            return r;
        atomic_store_explicit(&pd->kind, PK_PLAIN, memory_order_relaxed);
        break;
    default:
        break;
    }
    return wr ? write(fd, buf, n) : read(fd, buf, n);
}

/* Regular files: a plain blocking call, inside go_blocking_begin/end so
   that the monitor hands this worker's other goroutines away if it blocks.
   Returns false (and does nothing) if fd is no longer a file. */
static bool file_io(int fd, void *buf, size_t n, bool wr, ssize_t *r)
{
    if (!still_file(fd))
        return false;
    go_blocking_begin();
    *r = wr ? write(fd, buf, n) : read(fd, buf, n);
    go_blocking_end();
    return true;
}

#define IO_AGAIN ((ssize_t)INT32_MIN) /* io_attempt: go round again */

/* One attempt at reading (wr false) or writing up to n bytes, waiting for
   the descriptor if it would block.  Returns the bytes moved, a negative
   errno for the caller to return, or IO_AGAIN. */
static ssize_t io_attempt(struct pd *pd, int fd, void *buf, size_t n, bool wr, bool *file)
{
    ssize_t r;
    int err;
    if (*file && !file_io(fd, buf, n, wr, &r)) {
        errno = ESTALE;
        r = -1;
    } else if (!*file) {
        r = io_once(pd, fd, buf, n, wr);
    }
    if (r >= 0)
        return r;
    if (errno == EINTR)
        return IO_AGAIN;
    if (errno == ESTALE && pd)
        return (err = pd_refresh(pd, file)) < 0 ? err : IO_AGAIN;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -errno;
    err = io_wait(pd, fd, wr ? GO_WRITABLE : GO_READABLE);
    return err < 0 ? err : IO_AGAIN;
}

ssize_t go_read(int fd, void *buf, size_t n)
{
    int err;
    bool file;
    struct pd *pd = io_begin(fd, &err, &file);
    ssize_t r;
    if (err)
        return err;
    while ((r = io_attempt(pd, fd, buf, n, false, &file)) == IO_AGAIN)
        ;
    return r;
}

ssize_t go_write(int fd, const void *buf, size_t n)
{
    int err;
    bool file;
    struct pd *pd = io_begin(fd, &err, &file);
    size_t done = 0;
    if (err)
        return err;
    while (done < n) {
        ssize_t r = io_attempt(pd, fd, (char *)buf + done, n - done, true, &file);
        if (r == IO_AGAIN)
            continue;
        if (r < 0)
            return r;
        done += (size_t)r;
    }
    return (ssize_t)n;
}

int go_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int err, flags;
    struct pd *pd = io_begin(fd, &err, NULL);
    if (err)
        return err;
    /* accept has no per-call "don't wait": a listener that is blocking
       although registered is a new socket behind a stale pd.  One fcntl
       per connection accepted. */
    if (pd && (flags = fcntl(fd, F_GETFL)) >= 0 && !(flags & O_NONBLOCK) &&
        (err = pd_refresh(pd, NULL)) < 0)
        return err;
    for (;;) {
        int r = accept(fd, addr, len);
        if (r >= 0)
            return r;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if ((err = io_wait(pd, fd, GO_READABLE)) < 0)
            return err;
    }
}

int go_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int err, soerr = 0;
    socklen_t sl = sizeof soerr;
    struct pd *pd = io_begin(fd, &err, NULL);
    if (err)
        return err;
    /* A socket being connected was just made: whatever the pd remembers
       about this number belongs to an earlier one (if it was closed with a
       plain close).  Register it afresh. */
    if (pd && (err = pd_refresh(pd, NULL)) < 0)
        return err;
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR && errno != EAGAIN)
        return -errno;
    /* Writable now, as the kernel says: a remembered edge (a fresh
       registration remembers both directions) says nothing about whether
       the connection is done. */
    err = pd ? fd_wait_goroutine(pd, GO_WRITABLE, GO_FOREVER, true)
             : fd_poll(fd, GO_WRITABLE, GO_FOREVER);
    if (err < 0)
        return err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    return soerr ? -soerr : 0;
}

int go_close(int fd)
{
    struct pd *pd;
    int saved = errno, r;
    if (fd < 0)
        return -EBADF;
    gort__init();
    pd = pd_lookup(fd);
    if (!pd) {
        r = close(fd) == 0 ? 0 : -errno;
        errno = saved;
        return r;
    }
    /* PD_CLOSING until the close is done: a goroutine that saw EAGAIN
       just before must not re-register the descriptor and park between
       our wake-up and the close (it would sleep forever); pd_prepare
       gives it -EBADF instead.  close() itself runs outside the lock (it
       can block, with SO_LINGER). */
    pd_lock(pd);
    pd_wake(pd, NP_READ | NP_WRITE, -EBADF);
    if (pd->state == PD_POLLABLE)
        gort__np_unregister(fd);
    pd->state = PD_CLOSING;
    pd->rready = pd->wready = false;
    pd_release(pd);
    r = close(fd) == 0 ? 0 : -errno;
    pd_lock(pd);
    pd->state = PD_NEW;
    pd_release(pd);
    errno = saved;
    return r;
}
