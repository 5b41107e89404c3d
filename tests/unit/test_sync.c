/* ctest: LABELS unit TIMEOUT 180 */
/*
 * test_sync.c - go_mutex_t, go_rwmutex_t, go_once_t, go_cond_t: ports, in
 * spirit and size, of Go 1.19's sync/{mutex,rwmutex,once,cond}_test.go
 * (HammerMutex, TestMutexFairness, TestMutexMisuse, TestParallelReaders,
 * HammerRWMutex, TestOnce, TestCondSignal, TestCondSignalGenerations,
 * TestCondBroadcast, TestCondSignalStealing), plus API.md's rules: zero
 * values, writer preference, plain threads, errno, and that a goroutine
 * blocked on these never blocks its worker thread.
 *
 * Goroutines never assert (cmocka longjmps): they record failures with
 * CHECK and the test asserts on its own thread.  The "fatal error:"s are
 * checked in a fresh copy of this binary (expect_panic).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gort.h>

#include "test_util.h"

/* ---- go_mutex_t -------------------------------------------------------- */

struct hammer {
    go_mutex_t *m;
    long *counter;
    int loops;
};

static void hammer_mutex(void *p)
{
    struct hammer *h = p;

    for (int i = 0; i < h->loops; i++) {
        if (i % 3 == 0) {
            if (go_mutex_trylock(h->m)) {
                (*h->counter)++;
                go_mutex_unlock(h->m);
            } else {
                go_mutex_lock(h->m);
                (*h->counter)++;
                go_mutex_unlock(h->m);
            }
            continue;
        }
        go_mutex_lock(h->m);
        long c = *h->counter; /* a torn update would show as a lost count */
        if (i % 7 == 0)
            go_yield();
        *h->counter = c + 1;
        go_mutex_unlock(h->m);
    }
}

static void test_mutex_hammer(void **state)
{
    static go_mutex_t m; /* zero value, never initialised */
    long counter = 0;
    struct hammer h = {&m, &counter, 5000};
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < 10; i++)
        spawn(&wg, hammer_mutex, &h);
    for (int i = 0; i < 2; i++)
        spawn_thread(&wg, hammer_mutex, &h);
    wg_wait(&wg);
    assert_int_equal(counter, 12L * h.loops);
    assert_true(go_mutex_trylock(&m));
    assert_false(go_mutex_trylock(&m));
    go_mutex_unlock(&m);
}

struct fairness {
    go_mutex_t mu;
    _Atomic int stop;
    _Atomic int done;
};

static void fairness_hog(void *p)
{
    struct fairness *f = p;

    while (!atomic_load(&f->stop)) {
        go_mutex_lock(&f->mu);
        go_sleep(100 * GO_US);
        go_mutex_unlock(&f->mu);
    }
}

static void fairness_polite(void *p)
{
    struct fairness *f = p;

    for (int i = 0; i < 10; i++) {
        go_sleep(100 * GO_US);
        go_mutex_lock(&f->mu);
        go_mutex_unlock(&f->mu);
    }
    atomic_store(&f->done, 1);
}

static void test_mutex_fairness(void **state)
{
    struct fairness f = {GO_MUTEX_INIT, 0, 0};
    wg_t wg = WG_INIT;
    int64_t t0 = go_now();

    (void)state;
    spawn(&wg, fairness_hog, &f);
    spawn(&wg, fairness_polite, &f);
    while (!atomic_load(&f.done) && go_now() - t0 < 10 * GO_S)
        go_sleep(GO_MS);
    atomic_store(&f.stop, 1);
    wg_wait(&wg);
    if (!atomic_load(&f.done))
        fail_msg("can't acquire the mutex in 10 seconds");
}

/* Starvation mode: a waiter is not left behind a barging locker that
 * releases and re-takes the mutex in a tight loop for long. */
struct barger {
    go_mutex_t mu;
    _Atomic int stop;
    long work;
};

static void barge(void *p)
{
    struct barger *b = p;

    while (!atomic_load(&b->stop)) {
        go_mutex_lock(&b->mu);
        for (int i = 0; i < 200; i++)
            b->work++;
        go_mutex_unlock(&b->mu);
    }
}

static void test_mutex_starvation(void **state)
{
    struct barger b = {GO_MUTEX_INIT, 0, 0};
    wg_t wg = WG_INIT;
    int64_t worst = 0;

    (void)state;
    spawn(&wg, barge, &b);
    spawn_thread(&wg, barge, &b);
    go_sleep(2 * GO_MS);
    for (int i = 0; i < 200; i++) {
        int64_t t0 = go_now();
        go_mutex_lock(&b.mu);
        int64_t w = go_now() - t0;
        go_mutex_unlock(&b.mu);
        if (w > worst)
            worst = w;
    }
    atomic_store(&b.stop, 1);
    wg_wait(&wg);
    /* Go promises about 1 ms behind bargers; allow for scheduling noise
     * on a loaded machine or under a sanitizer.  Without starvation mode
     * a waiter can lose to the tight loop for seconds. */
    if (worst > 2 * GO_S)
        fail_msg("a waiter waited %lld ns behind barging lockers",
                 (long long)worst);
}

static void unlock_it(void *m)
{
    go_mutex_unlock(m);
}

static void test_mutex_unlock_by_another(void **state)
{
    static go_mutex_t m = GO_MUTEX_INIT;

    (void)state;
    /* Not owned, as in Go: the unlock may come from anywhere. */
    go_mutex_lock(&m);
    spawn_thread(NULL, unlock_it, &m);
    go_mutex_lock(&m);
    go_mutex_unlock(&m);
}

static void test_mutex_misuse(void **state)
{
    (void)state;
    expect_panic("mutex_unlock_unlocked",
                 "fatal error: sync: unlock of unlocked mutex");
    expect_panic("mutex_unlock_twice",
                 "fatal error: sync: unlock of unlocked mutex");
}

/* ---- go_rwmutex_t ------------------------------------------------------ */

struct parallel {
    go_rwmutex_t *m;
    chan_t *clocked, *cunlock, *cdone;
};

static void parallel_reader(void *p)
{
    struct parallel *r = p;

    go_rwmutex_rlock(r->m);
    CHECK(chan_send(r->clocked, NULL) == 0);
    CHECK(chan_recv(r->cunlock, NULL));
    go_rwmutex_runlock(r->m);
    CHECK(chan_send(r->cdone, NULL) == 0);
}

static void test_rwmutex_parallel_readers(void **state)
{
    static const int counts[] = {1, 3, 4, 10};

    (void)state;
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        go_rwmutex_t m = {.reader_count_ = 0}; /* zero value */
        struct parallel r = {&m, chan_make(0, 0), chan_make(0, 0),
                             chan_make(0, 0)};
        int n = counts[k];
        for (int i = 0; i < n; i++) {
            if (i % 3 == 2)
                spawn_thread(NULL, parallel_reader, &r);
            else
                spawn(NULL, parallel_reader, &r);
        }
        /* All of them hold the read lock at once. */
        for (int i = 0; i < n; i++)
            assert_true(chan_recv(r.clocked, NULL));
        for (int i = 0; i < n; i++)
            assert_int_equal(chan_send(r.cunlock, NULL), 0);
        for (int i = 0; i < n; i++)
            assert_true(chan_recv(r.cdone, NULL));
        chan_free(r.clocked);
        chan_free(r.cunlock);
        chan_free(r.cdone);
    }
}

struct rwhammer {
    go_rwmutex_t m;
    _Atomic int32_t activity;
    int iterations;
};

static void rw_reader(void *p)
{
    struct rwhammer *h = p;

    for (int i = 0; i < h->iterations; i++) {
        go_rwmutex_rlock(&h->m);
        int32_t n = atomic_fetch_add(&h->activity, 1) + 1;
        CHECK(n >= 1 && n < 10000);
        for (volatile int k = 0; k < 100; k++)
            ;
        atomic_fetch_sub(&h->activity, 1);
        go_rwmutex_runlock(&h->m);
    }
}

static void rw_writer(void *p)
{
    struct rwhammer *h = p;

    for (int i = 0; i < h->iterations; i++) {
        go_rwmutex_lock(&h->m);
        int32_t n = atomic_fetch_add(&h->activity, 10000) + 10000;
        CHECK(n == 10000);
        for (volatile int k = 0; k < 100; k++)
            ;
        atomic_fetch_sub(&h->activity, 10000);
        go_rwmutex_unlock(&h->m);
    }
}

static void test_rwmutex_hammer(void **state)
{
    static const int readers[] = {1, 3, 10};

    (void)state;
    for (size_t k = 0; k < sizeof readers / sizeof readers[0]; k++) {
        struct rwhammer h = {.iterations = 1000};
        wg_t wg = WG_INIT;
        int i;
        spawn(&wg, rw_writer, &h);
        for (i = 0; i < readers[k] / 2; i++)
            spawn(&wg, rw_reader, &h);
        spawn_thread(&wg, rw_writer, &h);
        for (; i < readers[k]; i++) {
            if (i % 4 == 3)
                spawn_thread(&wg, rw_reader, &h);
            else
                spawn(&wg, rw_reader, &h);
        }
        wg_wait(&wg);
    }
}

struct pref {
    go_rwmutex_t m;
    _Atomic int order; /* bumped by each party when it gets in */
    int writer_at, reader2_at;
};

static void pref_writer(void *p)
{
    struct pref *x = p;

    go_rwmutex_lock(&x->m);
    x->writer_at = atomic_fetch_add(&x->order, 1);
    go_sleep(5 * GO_MS);
    go_rwmutex_unlock(&x->m);
}

static void pref_reader2(void *p)
{
    struct pref *x = p;

    go_rwmutex_rlock(&x->m);
    x->reader2_at = atomic_fetch_add(&x->order, 1);
    go_rwmutex_runlock(&x->m);
}

static void test_rwmutex_writer_preferred(void **state)
{
    struct pref x = {.writer_at = -1, .reader2_at = -1};
    wg_t wg = WG_INIT;

    (void)state;
    go_rwmutex_rlock(&x.m); /* reader 1: this thread */
    spawn(&wg, pref_writer, &x);
    go_sleep(5 * GO_MS); /* the writer is now waiting for us */
    spawn(&wg, pref_reader2, &x);
    go_sleep(5 * GO_MS);
    /* Neither got in: the writer waits for us, reader 2 waits for it. */
    assert_int_equal(atomic_load(&x.order), 0);
    go_rwmutex_runlock(&x.m);
    wg_wait(&wg);
    assert_int_equal(x.writer_at, 0);
    assert_int_equal(x.reader2_at, 1);
}

static void test_rwmutex_misuse(void **state)
{
    (void)state;
    expect_panic("rwmutex_runlock_unlocked",
                 "fatal error: sync: RUnlock of unlocked RWMutex");
    expect_panic("rwmutex_unlock_unlocked",
                 "fatal error: sync: Unlock of unlocked RWMutex");
    expect_panic("rwmutex_runlock_write_locked",
                 "fatal error: sync: RUnlock of unlocked RWMutex");
}

/* ---- go_once_t --------------------------------------------------------- */

struct once_state {
    go_once_t once;
    _Atomic int calls;
    _Atomic int finished;
    int bad;
};

static void once_fn(void *p)
{
    struct once_state *o = p;

    atomic_fetch_add(&o->calls, 1);
    go_sleep(2 * GO_MS); /* late callers must wait for this */
    atomic_store(&o->finished, 1);
}

static void once_caller(void *p)
{
    struct once_state *o = p;

    go_once(&o->once, once_fn, o);
    if (atomic_load(&o->calls) != 1 || !atomic_load(&o->finished))
        o->bad = 1;
}

static void test_once(void **state)
{
    struct once_state o = {GO_ONCE_INIT, 0, 0, 0};
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < 10; i++) {
        if (i % 3 == 0)
            spawn_thread(&wg, once_caller, &o);
        else
            spawn(&wg, once_caller, &o);
    }
    go_once(&o.once, once_fn, &o);
    assert_int_equal(atomic_load(&o.calls), 1);
    wg_wait(&wg);
    assert_int_equal(atomic_load(&o.calls), 1);
    assert_int_equal(o.bad, 0);
    go_once(&o.once, once_fn, &o);
    assert_int_equal(atomic_load(&o.calls), 1);
}

/* ---- go_cond_t --------------------------------------------------------- */

struct cs {
    go_mutex_t m;
    go_cond_t c;
    chan_t *running, *awake;
    bool exit;
    int g;
};

static void cond_waiter(void *p)
{
    struct cs *s = p;

    go_mutex_lock(&s->m);
    CHECK(chan_send(s->running, NULL) == 0);
    go_cond_wait(&s->c, &s->m);
    CHECK(chan_send(s->awake, NULL) == 0);
    go_mutex_unlock(&s->m);
}

static void test_cond_signal(void **state)
{
    struct cs s = {GO_MUTEX_INIT, GO_COND_INIT, chan_make(0, 2),
                   chan_make(0, 2), false, 0};
    int n = 2;
    wg_t wg = WG_INIT;

    (void)state;
    /* Joined before returning: a waiter unlocks s.m after it reports. */
    spawn(&wg, cond_waiter, &s);
    spawn_thread(&wg, cond_waiter, &s);
    for (int i = 0; i < n; i++)
        assert_true(chan_recv(s.running, NULL));
    while (n > 0) {
        assert_int_equal(chan_try_recv(s.awake, NULL), -EAGAIN);
        go_mutex_lock(&s.m);
        go_cond_signal(&s.c);
        go_mutex_unlock(&s.m);
        assert_true(chan_recv(s.awake, NULL));
        go_sleep(GO_MS);
        assert_int_equal(chan_try_recv(s.awake, NULL), -EAGAIN);
        n--;
    }
    go_cond_signal(&s.c);
    wg_wait(&wg);
    chan_free(s.running);
    chan_free(s.awake);
}

struct gen {
    struct cs *s;
    int i;
};

static void cond_gen_waiter(void *p)
{
    struct gen *g = p;

    go_mutex_lock(&g->s->m);
    CHECK(chan_send(g->s->running, NULL) == 0);
    go_cond_wait(&g->s->c, &g->s->m);
    CHECK(chan_send(g->s->awake, &g->i) == 0);
    go_mutex_unlock(&g->s->m);
}

static void test_cond_signal_generations(void **state)
{
    enum { N = 100 };
    struct cs s = {GO_MUTEX_INIT, GO_COND_INIT, chan_make(0, N),
                   chan_make(sizeof(int), N), false, 0};
    struct gen g[N];
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < N; i++) {
        g[i] = (struct gen){&s, i};
        spawn(&wg, cond_gen_waiter, &g[i]);
        if (i > 0) {
            int a = -1;
            assert_true(chan_recv(s.awake, &a));
            assert_int_equal(a, i - 1); /* the oldest waiter wakes */
        }
        assert_true(chan_recv(s.running, NULL));
        go_mutex_lock(&s.m);
        go_cond_signal(&s.c);
        go_mutex_unlock(&s.m);
    }
    int a = -1;
    assert_true(chan_recv(s.awake, &a));
    assert_int_equal(a, N - 1);
    wg_wait(&wg);
    chan_free(s.running);
    chan_free(s.awake);
}

static void cond_bcast_waiter(void *p)
{
    struct gen *g = p;
    struct cs *s = g->s;

    go_mutex_lock(&s->m);
    while (!s->exit) {
        CHECK(chan_send(s->running, &g->i) == 0);
        go_cond_wait(&s->c, &s->m);
        CHECK(chan_send(s->awake, &g->i) == 0);
    }
    go_mutex_unlock(&s->m);
}

static void test_cond_broadcast(void **state)
{
    enum { N = 100 };
    struct cs s = {GO_MUTEX_INIT, GO_COND_INIT, chan_make(sizeof(int), N),
                   chan_make(sizeof(int), N), false, 0};
    struct gen g[N];
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < N; i++) {
        g[i] = (struct gen){&s, i};
        if (i % 10 == 9)
            spawn_thread(&wg, cond_bcast_waiter, &g[i]);
        else
            spawn(&wg, cond_bcast_waiter, &g[i]);
    }
    for (int round = 0; round < N; round++) {
        bool seen[N] = {false};
        for (int i = 0; i < N; i++)
            assert_true(chan_recv(s.running, NULL));
        if (round == N - 1) {
            go_mutex_lock(&s.m);
            s.exit = true;
            go_mutex_unlock(&s.m);
        }
        assert_int_equal(chan_try_recv(s.awake, NULL), -EAGAIN);
        go_mutex_lock(&s.m);
        go_cond_broadcast(&s.c);
        go_mutex_unlock(&s.m);
        for (int i = 0; i < N; i++) {
            int w = -1;
            assert_true(chan_recv(s.awake, &w));
            assert_true(w >= 0 && w < N);
            if (seen[w])
                fail_msg("goroutine %d woke up twice", w);
            seen[w] = true;
        }
    }
    wg_wait(&wg);
    assert_int_equal(chan_try_recv(s.running, NULL), -EAGAIN);
    go_cond_broadcast(&s.c);
    chan_free(s.running);
    chan_free(s.awake);
}

struct steal {
    go_mutex_t m;
    go_cond_t c;
    chan_t *ch;
    bool done;
};

static void steal_first(void *p)
{
    struct steal *s = p;

    go_mutex_lock(&s->m);
    CHECK(chan_send(s->ch, NULL) == 0);
    go_cond_wait(&s->c, &s->m);
    go_mutex_unlock(&s->m);
    CHECK(chan_send(s->ch, NULL) == 0);
}

static void steal_broadcast(void *p)
{
    struct steal *s = p;

    go_cond_broadcast(&s->c);
}

static void steal_second(void *p)
{
    struct steal *s = p;

    go_mutex_lock(&s->m);
    while (!s->done)
        go_cond_wait(&s->c, &s->m);
    go_mutex_unlock(&s->m);
}

static void test_cond_signal_stealing(void **state)
{
    (void)state;
    for (int iter = 0; iter < 1000; iter++) {
        struct steal s = {GO_MUTEX_INIT, GO_COND_INIT, chan_make(0, 0),
                          false};
        wg_t wg = WG_INIT;
        chan_case_t k[] = {{s.ch, CHAN_RECV, NULL, false}};

        spawn(&wg, steal_first, &s);
        assert_true(chan_recv(s.ch, NULL));
        go_mutex_lock(&s.m);
        go_mutex_unlock(&s.m);
        /* The first waiter is inside go_cond_wait now.  A broadcast races
         * with a second waiter: the first must be woken regardless. */
        spawn(&wg, steal_broadcast, &s);
        spawn(&wg, steal_second, &s);
        if (chan_select(k, 1, 2 * GO_S) != 0)
            fail_msg("iteration %d: first waiter didn't get the broadcast",
                     iter);
        go_mutex_lock(&s.m);
        s.done = true;
        go_mutex_unlock(&s.m);
        go_cond_broadcast(&s.c);
        wg_wait(&wg);
        chan_free(s.ch);
    }
}

/* ---- blocking parks: the worker thread stays free ---------------------- */

struct parks {
    go_mutex_t m;
    go_rwmutex_t rw;
    go_cond_t c;
    wg_t wg;
    go_once_t once;
    chan_t *alive;
    int kind;
};

static void parks_blocker(void *p)
{
    struct parks *x = p;

    switch (x->kind) {
    case 0:
        go_mutex_lock(&x->m);
        go_mutex_unlock(&x->m);
        break;
    case 1:
        go_rwmutex_rlock(&x->rw);
        go_rwmutex_runlock(&x->rw);
        break;
    case 2:
        go_rwmutex_lock(&x->rw);
        go_rwmutex_unlock(&x->rw);
        break;
    case 3:
        go_mutex_lock(&x->m);
        go_cond_wait(&x->c, &x->m);
        go_mutex_unlock(&x->m);
        break;
    case 4:
        wg_wait(&x->wg);
        break;
    }
}

static void parks_alive(void *p)
{
    struct parks *x = p;

    CHECK(chan_send(x->alive, NULL) == 0);
}

static void once_blocking_fn(void *p)
{
    struct parks *x = p;

    go_mutex_lock(&x->m); /* held by the test: blocks until released */
    go_mutex_unlock(&x->m);
}

static void parks_once(void *p)
{
    go_once(&((struct parks *)p)->once, once_blocking_fn, p);
}

static void test_blocking_parks(void **state)
{
    int prev = go_maxprocs(1);

    (void)state;
    for (int kind = 0; kind < 6; kind++) {
        struct parks x = {.alive = chan_make(0, 0), .kind = kind};
        wg_t joined = WG_INIT;
        chan_case_t k[] = {{x.alive, CHAN_RECV, NULL, false}};

        go_mutex_lock(&x.m);
        go_rwmutex_rlock(&x.rw);
        if (kind == 2 || kind == 1)
            go_rwmutex_runlock(&x.rw), go_rwmutex_lock(&x.rw);
        wg_add(&x.wg, 1);
        if (kind == 3)
            go_mutex_unlock(&x.m);
        /* With one worker, a blocker that blocked its thread would keep
         * parks_alive from ever running. */
        spawn(&joined, kind == 5 ? parks_once : parks_blocker, &x);
        if (kind == 5)
            spawn(&joined, parks_once, &x);
        go_sleep(GO_MS);
        spawn(&joined, parks_alive, &x);
        if (chan_select(k, 1, 5 * GO_S) != 0)
            fail_msg("kind %d: a blocked goroutine blocked its worker", kind);
        switch (kind) {
        case 0:
        case 5:
            go_mutex_unlock(&x.m);
            break;
        case 1:
        case 2:
            go_rwmutex_unlock(&x.rw);
            break;
        case 3:
            go_mutex_lock(&x.m);
            go_cond_broadcast(&x.c);
            go_mutex_unlock(&x.m);
            break;
        case 4:
            wg_done(&x.wg);
            break;
        }
        wg_wait(&joined);
        if (kind == 0 || kind == 3 || kind == 4 || kind == 5)
            go_rwmutex_runlock(&x.rw);
        chan_free(x.alive);
    }
    go_maxprocs(prev);
}

/* ---- errno ------------------------------------------------------------- */

struct errno_sync {
    go_mutex_t m;
    int bad;
};

/* errno through a call the compiler cannot fold: errno's address is
 * thread-local and __errno_location() is declared const, so an inlined
 * read after a park could read the previous thread's errno (API.md). */
__attribute__((noinline)) static int errno_now(void)
{
    int *p = &errno;
    __asm__ __volatile__("" : "+r"(p));
    return *p;
}

static void errno_locker(void *p)
{
    struct errno_sync *e = p;

    errno = 31337;
    for (int i = 0; i < 2000; i++) {
        go_mutex_lock(&e->m);
        if (i % 10 == 0)
            go_yield();
        go_mutex_unlock(&e->m);
        if (errno_now() != 31337)
            e->bad++;
    }
}

static void test_sync_errno(void **state)
{
    struct errno_sync e = {GO_MUTEX_INIT, 0};
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < 4; i++)
        spawn(&wg, errno_locker, &e);
    spawn_thread(&wg, errno_locker, &e);
    errno = 4321;
    wg_wait(&wg);
    assert_int_equal(errno, 4321);
    assert_int_equal(e.bad, 0);
    errno = 0;
}

/* ---- child scenarios --------------------------------------------------- */

static int run_scenario(const char *name)
{
    static go_mutex_t m;
    static go_rwmutex_t rw;

    if (strcmp(name, "mutex_unlock_unlocked") == 0) {
        go_mutex_unlock(&m);
    } else if (strcmp(name, "mutex_unlock_twice") == 0) {
        go_mutex_lock(&m);
        go_mutex_unlock(&m);
        go_mutex_unlock(&m);
    } else if (strcmp(name, "rwmutex_runlock_unlocked") == 0) {
        go_rwmutex_runlock(&rw);
    } else if (strcmp(name, "rwmutex_unlock_unlocked") == 0) {
        go_rwmutex_unlock(&rw);
    } else if (strcmp(name, "rwmutex_runlock_write_locked") == 0) {
        go_rwmutex_lock(&rw);
        go_rwmutex_runlock(&rw);
    }
    fprintf(stderr, "scenario %s returned\n", name);
    return 3;
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_failures, check_failures)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_mutex_hammer),
        T(test_mutex_fairness),
        T(test_mutex_starvation),
        T(test_mutex_unlock_by_another),
        T(test_mutex_misuse),
        T(test_rwmutex_parallel_readers),
        T(test_rwmutex_hammer),
        T(test_rwmutex_writer_preferred),
        T(test_rwmutex_misuse),
        T(test_once),
        T(test_cond_signal),
        T(test_cond_signal_generations),
        T(test_cond_broadcast),
        T(test_cond_signal_stealing),
        T(test_blocking_parks),
        T(test_sync_errno),
    };

    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return run_scenario(argv[2]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
