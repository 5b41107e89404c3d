/*
 * gort.h - libgo-rt: goroutines, channels, select, WaitGroups and Go's sync
 * types for C11 on Linux (x86-64, AArch64).
 *
 * The contract behind every name here is ../shared/API.md (reproduced in
 * docs/api.md).  Conventions, in short:
 *   - calls that can fail return 0 (or a count, index, descriptor) on
 *     success and a negative errno value on failure; they never report
 *     through errno, because a goroutine may resume on another thread;
 *   - programming errors that Go answers with a panic call go_panic;
 *   - every blocking call parks a goroutine (its worker runs others) and
 *     blocks a plain thread such as main;
 *   - the runtime starts itself on first use.
 */
#ifndef GORT_H
#define GORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/socket.h>

#include <gort/export.h>

#ifdef __cplusplus
#error "gort.h is a C11 header"
#endif

/* ---- Time ------------------------------------------------------------- */

#define GO_NS ((int64_t)1)
#define GO_US ((int64_t)1000)
#define GO_MS ((int64_t)1000000)
#define GO_S ((int64_t)1000000000)
#define GO_FOREVER ((int64_t)-1)

/* ---- Goroutines ------------------------------------------------------- */

GORT_API int go_spawn(void (*fn)(void *arg), void *arg);
GORT_API void go_yield(void);
GORT_API void go_sleep(int64_t ns);
GORT_API int go_defer(void (*fn)(void *arg), void *arg);
GORT_API _Noreturn void go_exit(void);
GORT_API uint64_t go_id(void);
GORT_API int go_maxprocs(int n);
GORT_API size_t go_num_goroutines(void);
GORT_API int64_t go_now(void);
GORT_API void go_lock_os_thread(void);
GORT_API void go_unlock_os_thread(void);
GORT_API _Noreturn void go_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Additions to the contract.
 *
 * go_blocking_begin/go_blocking_end bracket a call that is known to block
 * its thread (a slow system call, a blocking library).  While inside, the
 * runtime hands the worker's other goroutines to another thread after about
 * 20 us instead of the 10 ms it waits for calls it cannot see.  They nest;
 * on a plain thread they do nothing.
 */
GORT_API void go_blocking_begin(void);
GORT_API void go_blocking_end(void);

/* ---- Channels --------------------------------------------------------- */

typedef struct chan chan_t;

GORT_API chan_t *chan_make(size_t elem_size, size_t capacity);
GORT_API int chan_send(chan_t *c, const void *elem);
GORT_API bool chan_recv(chan_t *c, void *out);
GORT_API int chan_try_send(chan_t *c, const void *elem);
GORT_API int chan_try_recv(chan_t *c, void *out);
GORT_API void chan_close(chan_t *c);
GORT_API void chan_free(chan_t *c);
GORT_API size_t chan_len(const chan_t *c);
GORT_API size_t chan_cap(const chan_t *c);

enum chan_op { CHAN_SEND = 1, CHAN_RECV = 2 };

typedef struct chan_case {
    chan_t *chan;    /* NULL: this case is never ready */
    enum chan_op op;
    void *elem;      /* value to send, or where to store what is received */
    bool ok;         /* out: true sent / received; false channel was closed */
} chan_case_t;

GORT_API int chan_select(chan_case_t *cases, size_t n, int64_t timeout_ns);

#include <gort/typed_chan.h>

/* ---- WaitGroup and Go's sync types ------------------------------------ */

/*
 * The layouts below are private: they are in the header only so that the
 * types can be declared by value and zero-initialised (Go's useful zero
 * value).  Touch them only through the functions.
 */
typedef struct wg {
    _Atomic uint64_t state_; /* counter << 32 | waiters */
    _Atomic uint32_t sema_;
    _Atomic uint32_t busy_;  /* wg_done calls still touching the group */
} wg_t;

typedef struct go_mutex {
    _Atomic int32_t state_;
    _Atomic uint32_t sema_;
} go_mutex_t;

typedef struct go_rwmutex {
    go_mutex_t w_;
    _Atomic uint32_t writer_sem_;
    _Atomic uint32_t reader_sem_;
    _Atomic int32_t reader_count_;
    _Atomic int32_t reader_wait_;
} go_rwmutex_t;

typedef struct go_once {
    _Atomic uint32_t done_;
    go_mutex_t m_;
} go_once_t;

typedef struct go_cond {
    _Atomic uint32_t wait_;   /* ticket of the next waiter */
    _Atomic uint32_t notify_; /* ticket of the next to be notified */
    _Atomic uint32_t lock_;
    void *head_;
    void *tail_;
} go_cond_t;

#define WG_INIT {0}
#define GO_MUTEX_INIT {0}
#define GO_RWMUTEX_INIT {0}
#define GO_ONCE_INIT {0}
#define GO_COND_INIT {0}

GORT_API void wg_add(wg_t *wg, int64_t delta);
GORT_API void wg_done(wg_t *wg);
GORT_API void wg_wait(wg_t *wg);

GORT_API void go_mutex_lock(go_mutex_t *m);
GORT_API bool go_mutex_trylock(go_mutex_t *m);
GORT_API void go_mutex_unlock(go_mutex_t *m);
/* The slow path of go_mutex_unlock after the fast path has subtracted the
   lock bit (state is the new value); called by the inline fast path. */
GORT_API void go_mutex_unlock_slow(go_mutex_t *m, int32_t state);

/* Not API: non-zero while the runtime asks a goroutine that has run for
   long, with others waiting, to yield at its next runtime call
   (cooperative preemption); the inline unlock below checks it. */
GORT_API extern _Atomic uint32_t go_preempt_pending_;

/*
 * Inline fast paths, as Go inlines sync.Mutex's: an uncontended lock is
 * one CAS and an unlock one atomic add, with no call.  The functions of
 * the same names exist too (their address can be taken, and
 * -DGORT_NO_INLINE turns these off).
 */
#if !defined(GORT_BUILDING_LIBRARY) && !defined(GORT_NO_INLINE)
static inline void gort_mutex_lock_inline_(go_mutex_t *m)
{
    int32_t unlocked = 0;
    /* acquire: pairs with the release of the previous unlock */
    if (__builtin_expect(!atomic_compare_exchange_strong_explicit(
                             &m->state_, &unlocked, 1, memory_order_acquire,
                             memory_order_relaxed), 0))
        go_mutex_lock(m);
}

static inline void gort_mutex_unlock_inline_(go_mutex_t *m)
{
    /* release: pairs with the acquire of the next lock */
    int32_t state = atomic_fetch_sub_explicit(&m->state_, 1, memory_order_release) - 1;
    if (__builtin_expect((state | (int32_t)atomic_load_explicit(&go_preempt_pending_,
                                                                memory_order_relaxed)) != 0,
                         0))
        go_mutex_unlock_slow(m, state);
}
#define go_mutex_lock(m) gort_mutex_lock_inline_(m)
#define go_mutex_unlock(m) gort_mutex_unlock_inline_(m)
#endif

GORT_API void go_rwmutex_rlock(go_rwmutex_t *m);
GORT_API void go_rwmutex_runlock(go_rwmutex_t *m);
GORT_API void go_rwmutex_lock(go_rwmutex_t *m);
GORT_API void go_rwmutex_unlock(go_rwmutex_t *m);
GORT_API void go_once(go_once_t *o, void (*fn)(void *arg), void *arg);
GORT_API void go_cond_wait(go_cond_t *c, go_mutex_t *m);
GORT_API void go_cond_signal(go_cond_t *c);
GORT_API void go_cond_broadcast(go_cond_t *c);

/* ---- Waiting on file descriptors (the netpoller) ---------------------- */

enum { GO_READABLE = 1, GO_WRITABLE = 2 };

GORT_API int go_fd_wait(int fd, int events, int64_t timeout_ns);
GORT_API ssize_t go_read(int fd, void *buf, size_t n);
GORT_API ssize_t go_write(int fd, const void *buf, size_t n);
GORT_API int go_accept(int fd, struct sockaddr *addr, socklen_t *len);
GORT_API int go_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* Wakes every goroutine waiting on fd with -EBADF, then closes it. */
GORT_API int go_close(int fd);

#endif /* GORT_H */
