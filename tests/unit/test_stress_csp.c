/* ctest: LABELS stress TIMEOUT 300 */
/*
 * test_stress_csp.c - many producers and consumers, goroutines and plain
 * threads mixed, over an unbuffered and a buffered channel, with every
 * kind of operation chosen at random: blocking send and receive, try_send
 * and try_recv, and selects over one or both channels with random timeouts
 * (including 0, the poll, and GO_FOREVER).  Consumers never block for
 * good on one channel while the other is open (producers may), so the
 * test itself cannot deadlock.  Every value must be received
 * exactly once, and the close at the end must reach every consumer.
 *
 * Two phases: with the default number of workers, then with one worker
 * (more parking, more direct handoff).  A mutex-protected and an atomic
 * counter of receipts must agree at the end.
 *
 * Runs in well under a minute on two cores; the sizes shrink under the
 * sanitizers (GORT_TSAN / GORT_ASAN builds).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gort.h>

#include "test_util.h"

#if defined(GORT_TSAN) || defined(GORT_ASAN)
enum { PER_PRODUCER = 15000 };
#else
enum { PER_PRODUCER = 150000 };
#endif
enum { GO_PRODUCERS = 5, THREAD_PRODUCERS = 2, GO_CONSUMERS = 5,
       THREAD_CONSUMERS = 2 };
enum { PRODUCERS = GO_PRODUCERS + THREAD_PRODUCERS,
       CONSUMERS = GO_CONSUMERS + THREAD_CONSUMERS };

struct stress {
    chan_t *unbuf, *buf;
    _Atomic uint8_t *seen;      /* PRODUCERS * PER_PRODUCER receipt counts */
    _Atomic long received;
    go_mutex_t mu;
    long received_mu;           /* mu */
    _Atomic long timeouts, polls_empty;
    wg_t producers;
    wg_t consumers;
};

struct worker {
    struct stress *s;
    int id;
    uint64_t rng;
};

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int64_t random_timeout(uint64_t *rng)
{
    switch (next_rand(rng) % 6) {
    case 0: return 0;
    case 1: return GO_FOREVER;
    case 2: return GO_US;
    case 3: return 20 * GO_US;
    default: return (int64_t)(next_rand(rng) % 200) * GO_US;
    }
}

static void send_one(struct worker *w, uint64_t v)
{
    struct stress *s = w->s;
    chan_t *one = next_rand(&w->rng) % 2 ? s->unbuf : s->buf;

    for (;;) {
        int r;
        switch (next_rand(&w->rng) % 4) {
        case 0:
            CHECK(chan_send(one, &v) == 0);
            return;
        case 1:
            r = chan_try_send(one, &v);
            if (r == 0)
                return;
            CHECK(r == -EAGAIN);
            go_yield();
            break;
        default: {
            chan_case_t k[] = {{s->unbuf, CHAN_SEND, &v, false},
                               {s->buf, CHAN_SEND, &v, false},
                               {NULL, CHAN_SEND, &v, false}};
            int64_t t = random_timeout(&w->rng);
            r = chan_select(k, 3, t);
            if (r >= 0) {
                CHECK(r < 2 && k[r].ok);
                return;
            }
            CHECK((t == 0 && r == -EAGAIN) || (t > 0 && r == -ETIMEDOUT));
            atomic_fetch_add_explicit(&s->timeouts, 1, memory_order_relaxed);
            break;
        }
        }
    }
}

static void producer(void *p)
{
    struct worker *w = p;

    for (uint64_t i = 0; i < PER_PRODUCER; i++)
        send_one(w, (uint64_t)w->id << 32 | i);
    wg_done(&w->s->producers);
}

static void got(struct stress *s, uint64_t v)
{
    uint64_t id = v >> 32, seq = v & 0xffffffffu;

    if (id >= PRODUCERS || seq >= PER_PRODUCER) {
        CHECK(!"value out of range");
        return;
    }
    atomic_fetch_add_explicit(&s->seen[id * PER_PRODUCER + seq], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
    if ((seq & 63) == 0) {
        go_mutex_lock(&s->mu);
        s->received_mu++;
        go_mutex_unlock(&s->mu);
    }
}

static void consumer(void *p)
{
    struct worker *w = p;
    struct stress *s = w->s;
    chan_t *open[2] = {s->unbuf, s->buf};

    while (open[0] != NULL || open[1] != NULL) {
        uint64_t v = UINT64_MAX;
        int which = (int)(next_rand(&w->rng) % 2), r;
        if (open[which] == NULL)
            which = 1 - which;
        switch (next_rand(&w->rng) % 4) {
        case 0:
            /* Block on one channel only once the other is closed: a
             * consumer stuck on one channel while every producer is stuck
             * on the other would be a deadlock of this test, not of the
             * library.  While both are open, wait on one with a timeout. */
            if (open[1 - which] == NULL) {
                if (chan_recv(open[which], &v))
                    got(s, v);
                else
                    open[which] = NULL;
                break;
            } else {
                chan_case_t k[] = {{open[which], CHAN_RECV, &v, false}};
                int64_t t = random_timeout(&w->rng);
                if (t < 0)
                    t = 100 * GO_US;
                r = chan_select(k, 1, t);
                if (r == 0 && k[0].ok)
                    got(s, v);
                else if (r == 0)
                    open[which] = NULL;
                else
                    CHECK((t == 0 && r == -EAGAIN)
                          || (t > 0 && r == -ETIMEDOUT));
            }
            break;
        case 1:
            r = chan_try_recv(open[which], &v);
            if (r == 1)
                got(s, v);
            else if (r == 0)
                open[which] = NULL;
            else {
                CHECK(r == -EAGAIN);
                atomic_fetch_add_explicit(&s->polls_empty, 1,
                                          memory_order_relaxed);
                go_yield();
            }
            break;
        default: {
            chan_case_t k[] = {{open[0], CHAN_RECV, &v, false},
                               {open[1], CHAN_RECV, &v, false}};
            int64_t t = random_timeout(&w->rng);
            r = chan_select(k, 2, t);
            if (r >= 0) {
                if (k[r].ok)
                    got(s, v);
                else
                    open[r] = NULL; /* closed and drained */
            } else {
                CHECK((t == 0 && r == -EAGAIN)
                      || (t > 0 && r == -ETIMEDOUT));
            }
            break;
        }
        }
    }
    wg_done(&s->consumers);
}

static void closer(void *p)
{
    struct stress *s = p;

    wg_wait(&s->producers);
    chan_close(s->unbuf);
    chan_close(s->buf);
}

static void *thread_main(void *p)
{
    struct worker *w = p;

    if (w->id >= 0)
        producer(w);
    else
        consumer(w);
    return NULL;
}

static void run_phase(int procs)
{
    struct stress s = {
        .unbuf = chan_make(sizeof(uint64_t), 0),
        .buf = chan_make(sizeof(uint64_t), 16),
        .seen = calloc(PRODUCERS * (size_t)PER_PRODUCER, 1),
    };
    struct worker prod[PRODUCERS], cons[CONSUMERS];
    pthread_t threads[THREAD_PRODUCERS + THREAD_CONSUMERS];
    int nthreads = 0, prev = procs > 0 ? go_maxprocs(procs) : 0;
    long dup = 0, lost = 0;
    int64_t t0 = go_now();

    assert_non_null(s.seen);
    wg_add(&s.producers, PRODUCERS);
    wg_add(&s.consumers, CONSUMERS);
    assert_int_equal(go_spawn(closer, &s), 0);
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct worker){&s, -1 - i, 0x9e3779b97f4a7c15ull * (i + 1)};
        if (i < GO_CONSUMERS)
            assert_int_equal(go_spawn(consumer, &cons[i]), 0);
        else
            assert_int_equal(pthread_create(&threads[nthreads++], NULL,
                                            thread_main, &cons[i]),
                             0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct worker){&s, i, 0xd1b54a32d192ed03ull * (i + 7)};
        if (i < GO_PRODUCERS)
            assert_int_equal(go_spawn(producer, &prod[i]), 0);
        else
            assert_int_equal(pthread_create(&threads[nthreads++], NULL,
                                            thread_main, &prod[i]),
                             0);
    }
    wg_wait(&s.consumers);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);

    for (size_t i = 0; i < PRODUCERS * (size_t)PER_PRODUCER; i++) {
        uint8_t n = atomic_load(&s.seen[i]);
        if (n > 1)
            dup++;
        else if (n == 0)
            lost++;
    }
    print_message("phase procs=%d: %ld values in %.2f s, %ld select "
                  "timeouts, %ld empty polls\n",
                  procs, atomic_load(&s.received),
                  (double)(go_now() - t0) / GO_S, atomic_load(&s.timeouts),
                  atomic_load(&s.polls_empty));
    if (dup || lost)
        fail_msg("%ld values received twice, %ld never", dup, lost);
    assert_int_equal(atomic_load(&s.received),
                     (long)PRODUCERS * PER_PRODUCER);
    assert_int_equal(s.received_mu,
                     (long)PRODUCERS * ((PER_PRODUCER + 63) / 64));
    assert_int_equal(chan_len(s.buf), 0);
    if (procs > 0)
        go_maxprocs(prev);
    chan_free(s.unbuf);
    chan_free(s.buf);
    free(s.seen);
}

static void test_stress_default_procs(void **state)
{
    (void)state;
    run_phase(0);
}

static void test_stress_one_proc(void **state)
{
    (void)state;
    run_phase(1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_failures, check_failures)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_stress_default_procs),
        T(test_stress_one_proc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
