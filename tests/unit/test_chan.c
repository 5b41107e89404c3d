/* ctest: LABELS unit TIMEOUT 180 */
/*
 * test_chan.c - channels: ports, in spirit and size, of Go 1.19's
 * test/chan/{fifo,sieve1,nonblock,zerosize}.go and runtime/chan_test.go
 * (TestChan, TestMultiConsumer, TestNonblockRecvRace), plus the rules of
 * API.md that Go does not have (-EPIPE, elem_size 0, out == NULL, NULL
 * channels, chan_free, errno, plain threads, typed channels).
 *
 * Goroutines never assert (cmocka longjmps): they record failures with
 * CHECK, the test joins them with a WaitGroup and asserts on its own
 * thread.  Panics are checked in a fresh copy of this binary (expect_panic),
 * which has a runtime of its own.
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

/* ---- creation, limits, NULL channels ---------------------------------- */

static void test_make_limits(void **state)
{
    chan_t *c;

    (void)state;
    assert_null(chan_make(SIZE_MAX, 2));
    assert_null(chan_make(2, SIZE_MAX / 2 + 1));
    assert_null(chan_make(1, SIZE_MAX));
    assert_null(chan_make(1, (size_t)PTRDIFF_MAX));
    c = chan_make(0, SIZE_MAX); /* no buffer memory at all */
    assert_non_null(c);
    assert_int_equal(chan_cap(c), SIZE_MAX);
    assert_int_equal(chan_len(c), 0);
    chan_free(c);
    for (size_t cap = 0; cap < 5; cap++) {
        c = chan_make(sizeof(int), cap);
        assert_non_null(c);
        assert_int_equal(chan_cap(c), cap);
        for (size_t i = 0; i < cap; i++) {
            int v = (int)i;
            assert_int_equal(chan_send(c, &v), 0);
            assert_int_equal(chan_len(c), i + 1);
        }
        chan_free(c);
    }
}

static _Atomic int nil_progress;

static void nil_send(void *arg)
{
    (void)arg;
    chan_send(NULL, &(int){1});
    atomic_store(&nil_progress, 1); /* never reached */
}

static void nil_recv(void *arg)
{
    int v;
    (void)arg;
    chan_recv(NULL, &v);
    atomic_store(&nil_progress, 1);
}

static void test_nil_channel(void **state)
{
    int v = 7;

    (void)state;
    assert_int_equal(chan_len(NULL), 0);
    assert_int_equal(chan_cap(NULL), 0);
    chan_free(NULL);
    assert_int_equal(chan_try_send(NULL, &v), -EAGAIN);
    assert_int_equal(chan_try_recv(NULL, &v), -EAGAIN);
    assert_int_equal(v, 7);
    atomic_store(&nil_progress, 0);
    spawn(NULL, nil_send, NULL);
    spawn(NULL, nil_recv, NULL);
    spawn_thread(NULL, nil_send, NULL);
    go_sleep(20 * GO_MS);
    assert_int_equal(atomic_load(&nil_progress), 0); /* they block forever */
}

/* ---- test/chan/fifo.go ------------------------------------------------ */

enum { FIFO_N = 10 };

static void test_async_fifo(void **state)
{
    chan_t *ch = chan_make(sizeof(int), FIFO_N);

    (void)state;
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(chan_send(ch, &i), 0);
    for (int i = 0; i < FIFO_N; i++) {
        int v = -1;
        assert_true(chan_recv(ch, &v));
        assert_int_equal(v, i);
    }
    chan_free(ch);
}

struct chain {
    chan_t *ch, *in, *out;
    int val;
};

static void chain_link(void *p)
{
    struct chain *k = p;
    int v = -1, one = 1;

    CHECK(chan_recv(k->in, NULL));
    CHECK(chan_recv(k->ch, &v));
    CHECK(v == k->val);
    CHECK(chan_send(k->out, &one) == 0);
}

static void test_sync_fifo(void **state)
{
    chan_t *ch = chan_make(sizeof(int), 0);
    chan_t *start = chan_make(sizeof(int), 0), *in = start;
    chan_t *links[FIFO_N + 1];
    struct chain k[FIFO_N];
    wg_t wg = WG_INIT;
    int zero = 0;

    (void)state;
    links[0] = start;
    for (int i = 0; i < FIFO_N; i++) {
        chan_t *out = chan_make(sizeof(int), 0);
        k[i] = (struct chain){ch, in, out, i};
        spawn(&wg, chain_link, &k[i]);
        links[i + 1] = in = out;
    }
    assert_int_equal(chan_send(start, &zero), 0);
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(chan_send(ch, &i), 0);
    assert_true(chan_recv(in, NULL));
    wg_wait(&wg);
    for (int i = 0; i <= FIFO_N; i++)
        chan_free(links[i]);
    chan_free(ch);
}

/* ---- test/chan/sieve1.go (terminating: the generator stops and closes) */

enum { SIEVE_LIMIT = 600 };

struct filter {
    chan_t *in, *out;
    int prime;
};

static void generate(void *p)
{
    chan_t *ch = p;

    for (int i = 2; i < SIEVE_LIMIT; i++)
        CHECK(chan_send(ch, &i) == 0);
    chan_close(ch);
}

static void filter(void *p)
{
    struct filter *f = p;
    int i;

    while (chan_recv(f->in, &i)) {
        if (i % f->prime != 0)
            CHECK(chan_send(f->out, &i) == 0);
    }
    chan_close(f->out);
    chan_free(f->in); /* we were its only receiver; its sender is done */
    free(f);
}

static void sieve(void *p)
{
    chan_t *primes = p;
    chan_t *ch = chan_make(sizeof(int), 0);
    int prime;

    spawn(NULL, generate, ch);
    while (chan_recv(ch, &prime)) {
        struct filter *f = malloc(sizeof *f);
        CHECK(chan_send(primes, &prime) == 0);
        f->in = ch;
        f->out = chan_make(sizeof(int), 0);
        f->prime = prime;
        ch = f->out;
        spawn(NULL, filter, f);
    }
    chan_free(ch);
    chan_close(primes);
}

static bool is_prime(int n)
{
    for (int d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return n >= 2;
}

static void test_sieve(void **state)
{
    chan_t *primes = chan_make(sizeof(int), 0);
    int x, expect = 1, count = 0;

    (void)state;
    spawn(NULL, sieve, primes);
    while (chan_recv(primes, &x)) {
        do
            expect++;
        while (!is_prime(expect));
        assert_int_equal(x, expect);
        count++;
    }
    assert_int_equal(count, 109); /* primes below 600 */
    chan_free(primes);
}

/* ---- test/chan/zerosize.go and elem_size 0 ---------------------------- */

static void zero_sender(void *p)
{
    chan_t *c = p;

    for (int i = 0; i < 100; i++)
        CHECK(chan_send(c, NULL) == 0);
}

static void test_zerosize(void **state)
{
    wg_t wg = WG_INIT;

    (void)state;
    for (size_t cap = 0; cap < 3; cap++) {
        chan_t *c = chan_make(0, cap);
        assert_non_null(c);
        spawn(&wg, zero_sender, c);
        for (int i = 0; i < 100; i++)
            assert_true(chan_recv(c, NULL));
        wg_wait(&wg);
        if (cap > 0) {
            for (size_t i = 0; i < cap; i++)
                assert_int_equal(chan_try_send(c, NULL), 0);
            assert_int_equal(chan_len(c), cap);
            assert_int_equal(chan_try_send(c, NULL), -EAGAIN);
        }
        chan_close(c);
        for (size_t i = 0; i < (cap > 0 ? cap : 0); i++)
            assert_int_equal(chan_try_recv(c, NULL), 1);
        assert_int_equal(chan_try_recv(c, NULL), 0);
        assert_false(chan_recv(c, NULL));
        assert_int_equal(chan_send(c, NULL), -EPIPE);
        chan_free(c);
    }
}

/* ---- test/chan/nonblock.go -------------------------------------------- */

struct nb {
    chan_t *c, *strobe;
    int64_t value;
    size_t size;
};

static void nb_receiver(void *p)
{
    struct nb *n = p;
    int64_t v = 0;
    bool t = true;

    CHECK(chan_recv(n->c, &v));
    CHECK(memcmp(&v, &n->value, n->size) == 0);
    CHECK(chan_send(n->strobe, &t) == 0);
}

static void nb_sender(void *p)
{
    struct nb *n = p;
    int64_t v = n->value + 111;
    bool t = true;

    CHECK(chan_send(n->c, &v) == 0);
    CHECK(chan_send(n->strobe, &t) == 0);
}

static void nb_pause(void)
{
    go_sleep(10 * GO_US);
    go_sleep(10 * GO_US);
    go_yield();
    go_yield();
    go_yield();
}

enum { NB_MAX_TRIES = 10000 };

static void test_nonblock(void **state)
{
    static const size_t sizes[] = {1, 4, 8}; /* bool, int32, int64 */
    chan_t *strobe = chan_make(sizeof(bool), 0);

    (void)state;
    for (int buffer = 0; buffer < 2; buffer++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            struct nb n = {chan_make(sizes[s], (size_t)buffer), strobe,
                           sizes[s] == 1 ? 1 : 123456, sizes[s]};
            int64_t got = 0;
            int tries = 0;

            assert_int_equal(chan_try_recv(n.c, &got), -EAGAIN);
            spawn(NULL, nb_receiver, &n);
            while (chan_try_send(n.c, &n.value) == -EAGAIN) {
                assert_true(++tries <= NB_MAX_TRIES);
                nb_pause();
            }
            assert_true(chan_recv(strobe, NULL));

            if (sizes[s] == 1)
                n.value = 0; /* the sender sends 1 + 111 truncated: 112 */
            spawn(NULL, nb_sender, &n);
            if (buffer > 0)
                assert_true(chan_recv(strobe, NULL));
            tries = 0;
            got = 0;
            while (chan_try_recv(n.c, &got) == -EAGAIN) {
                assert_true(++tries <= NB_MAX_TRIES);
                nb_pause();
            }
            int64_t want = n.value + 111;
            assert_memory_equal(&got, &want, sizes[s]);
            if (buffer == 0)
                assert_true(chan_recv(strobe, NULL));
            chan_free(n.c);
        }
    }
    chan_free(strobe);
}

/* ---- runtime/chan_test.go TestChan ------------------------------------ */

struct tc {
    chan_t *c;
    _Atomic int flag;
    chan_t *done;
    int n;
};

static void tc_recv_flag(void *p)
{
    struct tc *t = p;
    int v;

    chan_recv(t->c, &v);
    atomic_fetch_add(&t->flag, 1);
}

static void tc_send_flag(void *p)
{
    struct tc *t = p;
    int zero = 0;

    chan_send(t->c, &zero);
    atomic_store(&t->flag, 1);
}

static void tc_recv_closed(void *p)
{
    struct tc *t = p;
    int v = 42;
    bool ok = chan_recv(t->c, &v);
    bool good = v == 0 && !ok;

    chan_send(t->done, &good);
}

static void tc_send_seq(void *p)
{
    struct tc *t = p;

    for (int i = 0; i < t->n; i++)
        CHECK(chan_send(t->c, &i) == 0);
}

struct tc_counts {
    chan_t *c, *done;
    int n;
};

static void tc_recv_counts(void *p)
{
    struct tc_counts *t = p;
    int *recv = calloc((size_t)t->n, sizeof *recv);

    for (int i = 0; i < t->n; i++) {
        int v = -1;
        CHECK(chan_recv(t->c, &v));
        if (v >= 0 && v < t->n)
            recv[v]++;
        else
            CHECK(!"value out of range");
    }
    CHECK(chan_send(t->done, &recv) == 0);
}

static void test_chan_go(void **state)
{
    enum { N = 64, P = 4, L = 1000 };

    (void)state;
    for (size_t cap = 0; cap < N; cap++) {
        wg_t wg = WG_INIT;
        {
            /* Receive from an empty channel blocks; try_recv does not. */
            struct tc t = {.c = chan_make(sizeof(int), cap)};
            int zero = 0;
            spawn(&wg, tc_recv_flag, &t);
            spawn(&wg, tc_recv_flag, &t);
            go_sleep(GO_MS);
            assert_int_equal(atomic_load(&t.flag), 0);
            assert_int_equal(chan_try_recv(t.c, NULL), -EAGAIN);
            chan_send(t.c, &zero);
            chan_send(t.c, &zero);
            wg_wait(&wg);
            assert_int_equal(atomic_load(&t.flag), 2);
            chan_free(t.c);
        }
        {
            /* Send to a full channel blocks; try_send does not. */
            struct tc t = {.c = chan_make(sizeof(int), cap)};
            int v;
            for (int i = 0; i < (int)cap; i++)
                chan_send(t.c, &i);
            spawn(&wg, tc_send_flag, &t);
            go_sleep(GO_MS);
            assert_int_equal(atomic_load(&t.flag), 0);
            assert_int_equal(chan_try_send(t.c, &(int){0}), -EAGAIN);
            chan_recv(t.c, &v);
            wg_wait(&wg);
            assert_int_equal(atomic_load(&t.flag), 1);
            chan_free(t.c);
        }
        {
            /* Buffered values survive close; then zeros and false. */
            chan_t *c = chan_make(sizeof(int), cap);
            int v;
            for (int i = 0; i < (int)cap; i++)
                chan_send(c, &i);
            chan_close(c);
            for (int i = 0; i < (int)cap; i++) {
                assert_true(chan_recv(c, &v));
                assert_int_equal(v, i);
            }
            v = 5;
            assert_false(chan_recv(c, &v));
            assert_int_equal(v, 0);
            v = 5;
            assert_int_equal(chan_try_recv(c, &v), 0);
            assert_int_equal(v, 0);
            chan_free(c);
        }
        {
            /* Close unblocks a receive. */
            struct tc t = {.c = chan_make(sizeof(int), cap),
                           .done = chan_make(sizeof(bool), 0)};
            bool good = false;
            spawn(&wg, tc_recv_closed, &t);
            go_sleep(GO_MS);
            chan_close(t.c);
            assert_true(chan_recv(t.done, &good));
            assert_true(good);
            wg_wait(&wg);
            chan_free(t.c);
            chan_free(t.done);
        }
        {
            /* 100 integers in FIFO order, twice; then P senders and P
             * receivers of L values each: every value arrives P times. */
            struct tc t = {.c = chan_make(sizeof(int), cap), .n = 100};
            struct tc_counts rc = {t.c, chan_make(sizeof(int *), 0), L};
            struct tc many = {.c = t.c, .n = L};
            int counts[L] = {0};
            for (int round = 0; round < 2; round++) {
                spawn(&wg, tc_send_seq, &t);
                for (int i = 0; i < 100; i++) {
                    int v = -1;
                    assert_true(chan_recv(t.c, &v));
                    assert_int_equal(v, i);
                }
                wg_wait(&wg);
            }
            for (int p = 0; p < P; p++)
                spawn(&wg, tc_send_seq, &many);
            for (int p = 0; p < P; p++)
                spawn(&wg, tc_recv_counts, &rc);
            for (int p = 0; p < P; p++) {
                int *recv = NULL;
                assert_true(chan_recv(rc.done, &recv));
                for (int k = 0; k < L; k++)
                    counts[k] += recv[k];
                free(recv);
            }
            wg_wait(&wg);
            for (int k = 0; k < L; k++)
                assert_int_equal(counts[k], P);
            chan_free(t.c);
            chan_free(rc.done);
        }
        {
            chan_t *c = chan_make(sizeof(int), cap);
            assert_int_equal(chan_len(c), 0);
            assert_int_equal(chan_cap(c), cap);
            for (int i = 0; i < (int)cap; i++)
                chan_send(c, &i);
            assert_int_equal(chan_len(c), cap);
            assert_int_equal(chan_cap(c), cap);
            chan_free(c);
        }
    }
}

/* ---- close semantics (API.md) ----------------------------------------- */

struct blocked {
    chan_t *c;
    int result;
    int value;
    _Atomic int started; /* set just before the channel operation */
};

static void blocked_send(void *p)
{
    struct blocked *b = p;

    atomic_store_explicit(&b->started, 1, memory_order_release);
    b->result = chan_send(b->c, &b->value);
}

static void blocked_recv(void *p)
{
    struct blocked *b = p;

    b->value = 77;
    atomic_store_explicit(&b->started, 1, memory_order_release);
    b->result = chan_recv(b->c, &b->value);
}

/* Spawns fn(b) and returns once it has (very nearly certainly) blocked:
   it has started its operation, and 2 ms more have passed.  Waiting for
   the start first keeps a slow spawn (a loaded machine, a sanitizer) from
   swapping the arrival order the FIFO tests depend on. */
static void spawn_blocked(wg_t *wg, void (*fn)(void *), struct blocked *b)
{
    spawn(wg, fn, b);
    while (!atomic_load_explicit(&b->started, memory_order_acquire))
        go_sleep(100 * GO_US);
    go_sleep(2 * GO_MS);
}

static void test_close_wakes_everyone(void **state)
{
    enum { K = 8 };
    (void)state;
    for (size_t cap = 0; cap < 3; cap++) {
        chan_t *c = chan_make(sizeof(int), cap);
        struct blocked s[K], r[K];
        wg_t wg = WG_INIT;

        /* Senders: fill the buffer, then K senders block. */
        for (int i = 0; i < (int)cap; i++)
            chan_send(c, &i);
        for (int i = 0; i < K; i++) {
            s[i] = (struct blocked){.c = c, .result = 1, .value = 100 + i};
            if (i % 2)
                spawn(&wg, blocked_send, &s[i]);
            else
                spawn_thread(&wg, blocked_send, &s[i]);
        }
        go_sleep(5 * GO_MS);
        chan_close(c);
        wg_wait(&wg);
        for (int i = 0; i < K; i++)
            assert_int_equal(s[i].result, -EPIPE);
        for (int i = 0; i < (int)cap; i++) {
            int v = -1;
            assert_true(chan_recv(c, &v));
            assert_int_equal(v, i);
        }
        assert_int_equal(chan_try_send(c, &(int){1}), -EPIPE);
        assert_int_equal(chan_send(c, &(int){1}), -EPIPE);
        chan_free(c);

        /* Receivers: K block on an empty channel, close wakes them all
         * with false and a zeroed value. */
        c = chan_make(sizeof(int), cap);
        for (int i = 0; i < K; i++) {
            r[i] = (struct blocked){.c = c, .result = 1, .value = 0};
            if (i % 2)
                spawn(&wg, blocked_recv, &r[i]);
            else
                spawn_thread(&wg, blocked_recv, &r[i]);
        }
        go_sleep(5 * GO_MS);
        chan_close(c);
        wg_wait(&wg);
        for (int i = 0; i < K; i++) {
            assert_int_equal(r[i].result, 0);
            assert_int_equal(r[i].value, 0);
        }
        chan_free(c);
    }
}

/* Element sizes through the ring, with and without a destination. */
static void test_out_null_and_sizes(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 4, 7, 8, 16, 24, 1000};
    unsigned char in[1000], out[1001];

    (void)state;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        for (size_t cap = 1; cap < 4; cap++) {
            chan_t *c = chan_make(size, cap);
            for (int round = 0; round < 7; round++) {
                memset(in, 0x30 + round, size);
                in[0] = (unsigned char)size;
                in[size - 1] = (unsigned char)(0x80 + round);
                assert_int_equal(chan_send(c, in), 0);
                memset(out, 0xee, sizeof out);
                assert_true(chan_recv(c, round % 3 == 1 ? NULL : out));
                if (round % 3 != 1)
                    assert_memory_equal(in, out, size);
                assert_int_equal(out[size], 0xee); /* no overrun */
            }
            chan_free(c);
        }
    }
}

/* Values through direct handoff in both directions, with out == NULL. */
struct handoff {
    chan_t *c;
    size_t size;
    int rounds;
};

static void handoff_sender(void *p)
{
    struct handoff *h = p;
    unsigned char buf[1000];

    for (int r = 0; r < h->rounds; r++) {
        memset(buf, r, h->size);
        buf[0] = (unsigned char)h->size;
        CHECK(chan_send(h->c, buf) == 0);
    }
}

static void test_handoff_sizes(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 4, 7, 8, 16, 24, 1000};
    wg_t wg = WG_INIT;

    (void)state;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct handoff h = {chan_make(sizes[s], 0), sizes[s], 50};
        unsigned char buf[1000], want[1000];

        spawn(&wg, handoff_sender, &h);
        for (int r = 0; r < h.rounds; r++) {
            if (r % 5 == 4) {
                assert_true(chan_recv(h.c, NULL));
                continue;
            }
            memset(want, r, h.size);
            want[0] = (unsigned char)h.size;
            memset(buf, 0xee, sizeof buf);
            assert_true(chan_recv(h.c, buf));
            assert_memory_equal(buf, want, h.size);
            if (h.size < sizeof buf)
                assert_int_equal(buf[h.size], 0xee); /* no overrun */
        }
        wg_wait(&wg);
        chan_free(h.c);
    }
}

/* ---- FIFO service of blocked parties ---------------------------------- */

static void test_blocked_fifo(void **state)
{
    enum { K = 6 };
    (void)state;
    for (size_t cap = 0; cap < 2; cap++) {
        chan_t *c = chan_make(sizeof(int), cap);
        struct blocked b[K];
        wg_t wg = WG_INIT;

        for (int i = 0; i < (int)cap; i++)
            chan_send(c, &(int){-1});
        for (int i = 0; i < K; i++) {
            b[i] = (struct blocked){.c = c, .result = 1, .value = i};
            spawn_blocked(&wg, blocked_send, &b[i]); /* queue them in order */
        }
        for (int i = 0; i < (int)cap; i++) {
            int v;
            chan_recv(c, &v);
            assert_int_equal(v, -1);
        }
        for (int i = 0; i < K; i++) {
            int v = -5;
            assert_true(chan_recv(c, &v));
            assert_int_equal(v, i);
        }
        wg_wait(&wg);

        /* Receivers are served in arrival order too. */
        for (int i = 0; i < K; i++) {
            b[i] = (struct blocked){.c = c, .result = 1, .value = -1};
            spawn_blocked(&wg, blocked_recv, &b[i]);
        }
        for (int i = 0; i < K; i++)
            assert_int_equal(chan_send(c, &i), 0);
        wg_wait(&wg);
        for (int i = 0; i < K; i++) {
            assert_int_equal(b[i].result, 1);
            assert_int_equal(b[i].value, i);
        }
        chan_free(c);
    }
}

/* ---- runtime/chan_test.go TestMultiConsumer --------------------------- */

enum { MC_NWORK = 23, MC_NITER = 271828 };
static const int mc_pn[] = {2, 3, 7, 11, 13, 17, 19, 23, 27, 31};

struct mc {
    chan_t *q, *r;
    wg_t wg;
    int w;
    long expect;
};

struct mc_worker {
    struct mc *m;
    int w;
};

static void mc_work(void *p)
{
    struct mc_worker *k = p;
    int v;

    while (chan_recv(k->m->q, &v)) {
        if (mc_pn[k->w % 10] == v)
            go_yield(); /* mess with the FIFO-ish order */
        CHECK(chan_send(k->m->r, &v) == 0);
    }
    wg_done(&k->m->wg);
}

static void mc_feed(void *p)
{
    struct mc *m = p;

    for (int i = 0; i < MC_NITER; i++) {
        int v = mc_pn[i % 10];
        m->expect += v;
        CHECK(chan_send(m->q, &v) == 0);
    }
    chan_close(m->q);
    wg_wait(&m->wg);
    chan_close(m->r);
}

static void test_multi_consumer(void **state)
{
    struct mc m = {chan_make(sizeof(int), MC_NWORK * 3),
                   chan_make(sizeof(int), MC_NWORK * 3), WG_INIT, 0, 0};
    struct mc_worker k[MC_NWORK];
    wg_t feeder = WG_INIT;
    long n = 0, s = 0;
    int v;

    (void)state;
    for (int i = 0; i < MC_NWORK; i++) {
        k[i] = (struct mc_worker){&m, i};
        wg_add(&m.wg, 1);
        spawn(NULL, mc_work, &k[i]);
    }
    spawn(&feeder, mc_feed, &m);
    while (chan_recv(m.r, &v)) {
        n++;
        s += v;
    }
    wg_wait(&feeder);
    assert_int_equal(n, MC_NITER);
    assert_int_equal(s, m.expect);
    chan_free(m.q);
    chan_free(m.r);
}

/* ---- runtime/chan_test.go TestNonblockRecvRace ------------------------ */

static void nb_race_recv(void *p)
{
    chan_t *c = p;
    int r = chan_try_recv(c, NULL);

    CHECK(r == 1 || r == 0); /* a value or closed; never "not ready" */
}

static void test_nonblock_recv_race(void **state)
{
    (void)state;
    for (int i = 0; i < 10000; i++) {
        chan_t *c = chan_make(sizeof(int), 1);
        wg_t wg = WG_INIT;

        chan_send(c, &(int){1});
        spawn(&wg, nb_race_recv, c);
        chan_close(c);
        chan_recv(c, NULL);
        wg_wait(&wg);
        chan_free(c);
        if (recorded_failures())
            break;
    }
}

/* ---- plain threads and goroutines together ---------------------------- */

struct pingpong {
    chan_t *ping, *pong;
    int rounds;
};

static void pp_echo(void *p)
{
    struct pingpong *pp = p;
    int v;

    for (int i = 0; i < pp->rounds; i++) {
        CHECK(chan_recv(pp->ping, &v));
        CHECK(v == i);
        v++;
        CHECK(chan_send(pp->pong, &v) == 0);
    }
}

static void test_threads_and_goroutines(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        for (size_t cap = 0; cap < 2; cap++) {
            struct pingpong pp = {chan_make(sizeof(int), cap),
                                  chan_make(sizeof(int), cap), 2000};
            wg_t wg = WG_INIT;
            if (mode == 0)
                spawn(&wg, pp_echo, &pp);
            else
                spawn_thread(&wg, pp_echo, &pp);
            for (int i = 0; i < pp.rounds; i++) {
                int v = -1;
                assert_int_equal(chan_send(pp.ping, &i), 0);
                assert_true(chan_recv(pp.pong, &v));
                assert_int_equal(v, i + 1);
            }
            wg_wait(&wg);
            chan_free(pp.ping);
            chan_free(pp.pong);
        }
    }
}

/* ---- Lifetimes: the receiver may free the channel at once ------------- */

static void lifetime_sender(void *p)
{
    chan_t *c = p;

    CHECK(chan_send(c, &(long){42}) == 0);
    /* c may be freed now: do not touch it again. */
}

static void lifetime_receiver(void *p)
{
    chan_t *c = p;
    long v = 0;

    CHECK(chan_recv(c, &v) && v == 43);
}

static void test_free_after_handoff(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++) {
        chan_t *c = chan_make(sizeof(long), (size_t)(i % 2));
        long v = 0;
        if (i % 3 == 0)
            spawn_thread(NULL, lifetime_sender, c);
        else
            spawn(NULL, lifetime_sender, c);
        assert_true(chan_recv(c, &v));
        assert_int_equal(v, 42);
        chan_free(c); /* the sender may still be returning from chan_send */
    }
    for (int i = 0; i < 20000; i++) {
        chan_t *c = chan_make(sizeof(long), 0);
        spawn(NULL, lifetime_receiver, c);
        assert_int_equal(chan_send(c, &(long){43}), 0);
        chan_free(c); /* the receiver was handed the value and woken */
    }
}

/* ---- errno is left alone ---------------------------------------------- */

struct errno_check {
    chan_t *a, *b;
    int bad;
};

/* errno through a call the compiler cannot fold: errno's address is
   thread-local and __errno_location() is declared const, so an inlined
   read after a park could read the previous thread's errno (API.md). */
__attribute__((noinline)) static int errno_now(void)
{
    int *p = &errno;
    __asm__ __volatile__("" : "+r"(p));
    return *p;
}

static void errno_goroutine(void *p)
{
    struct errno_check *e = p;
    int v;

    errno = 5150;
    for (int i = 0; i < 200; i++) {
        chan_recv(e->a, &v);
        if (errno_now() != 5150)
            e->bad++;
        chan_send(e->b, &v);
        if (errno_now() != 5150)
            e->bad++;
        go_yield();
    }
}

static void test_errno_untouched(void **state)
{
    struct errno_check e = {chan_make(sizeof(int), 0),
                            chan_make(sizeof(int), 0), 0};
    wg_t wg = WG_INIT;

    (void)state;
    spawn(&wg, errno_goroutine, &e);
    errno = 1234;
    for (int i = 0; i < 200; i++) {
        int v = i;
        chan_send(e.a, &v);
        assert_int_equal(errno, 1234);
        chan_recv(e.b, &v);
        assert_int_equal(errno, 1234);
        assert_int_equal(chan_try_recv(e.b, &v), -EAGAIN);
        assert_int_equal(errno, 1234);
    }
    wg_wait(&wg);
    assert_int_equal(errno, 1234);
    assert_int_equal(e.bad, 0);
    chan_free(e.a);
    chan_free(e.b);
    errno = 0;
}

/* ---- typed channels at run time --------------------------------------- */

struct point {
    int x, y;
};
CHAN_DEFINE(int_chan, int);
CHAN_DEFINE(u8_chan, uint8_t);
CHAN_DEFINE(u32_chan, uint32_t);
CHAN_DEFINE(bool_chan, bool);
CHAN_DEFINE(str_chan, const char *);
CHAN_DEFINE(point_chan, struct point);
CHAN_DEFINE(double_chan, double);

static void test_typed(void **state)
{
    int_chan ic = int_chan_make(4);
    u8_chan uc = u8_chan_make(4);
    u32_chan qc = u32_chan_make(4);
    bool_chan bc = bool_chan_make(4);
    str_chan sc = str_chan_make(4);
    point_chan pc = point_chan_make(0);
    double_chan dc = double_chan_make(2);
    int i;
    uint8_t u;
    uint32_t q;
    bool b;
    const char *s;
    struct point pt;
    double d;

    (void)state;
    assert_non_null(ic.raw);
    assert_int_equal(int_chan_cap(ic), 4);
    assert_int_equal(int_chan_send(ic, 42), 0);
    assert_int_equal(int_chan_send(ic, -7), 0);
    assert_int_equal(int_chan_send(ic, (short)-300), 0);
    assert_int_equal(int_chan_try_send(ic, 'x'), 0);
    assert_int_equal(int_chan_try_send(ic, 1), -EAGAIN);
    assert_int_equal(int_chan_len(ic), 4);
    assert_true(int_chan_recv(ic, &i));
    assert_int_equal(i, 42);
    assert_true(int_chan_recv(ic, &i));
    assert_int_equal(i, -7);
    assert_int_equal(int_chan_try_recv(ic, &i), 1);
    assert_int_equal(i, -300);
    assert_true(int_chan_recv(ic, NULL));

    /* C's conversions: modulo 2^N for integers, truncation for floats. */
    u8_chan_send(uc, 300);
    u8_chan_send(uc, -1);
    u8_chan_send(uc, 2.9);
    u8_chan_recv(uc, &u);
    assert_int_equal(u, 44);
    u8_chan_recv(uc, &u);
    assert_int_equal(u, 255);
    u8_chan_recv(uc, &u);
    assert_int_equal(u, 2);
    u32_chan_send(qc, -1);
    u32_chan_send(qc, UINT64_C(0x1234567890));
    u32_chan_recv(qc, &q);
    assert_int_equal(q, UINT32_MAX);
    u32_chan_recv(qc, &q);
    assert_int_equal(q, 0x34567890u);
    bool_chan_send(bc, 2);
    bool_chan_send(bc, 0.5);
    bool_chan_send(bc, 0);
    bool_chan_recv(bc, &b);
    assert_true(b);
    bool_chan_recv(bc, &b);
    assert_true(b);
    bool_chan_recv(bc, &b);
    assert_false(b);
    double_chan_send(dc, 3);
    double_chan_recv(dc, &d);
    assert_true(d == 3.0);

    str_chan_send(sc, "hello");
    str_chan_send(sc, NULL);
    str_chan_recv(sc, &s);
    assert_string_equal(s, "hello");
    str_chan_recv(sc, &s);
    assert_null(s);

    /* Typed select cases. */
    {
        struct point in = {3, 4};
        chan_case_t cases[2];
        pt = (struct point){0, 0};
        cases[0] = point_chan_case_recv(pc, &pt);
        cases[1] = int_chan_case_send(ic, &(int){9});
        /* the int channel has room: case 1 proceeds at once */
        assert_int_equal(chan_select(cases, 2, GO_FOREVER), 1);
        assert_true(cases[1].ok);
        cases[0] = point_chan_case_send(pc, &in);
        assert_int_equal(chan_select(cases, 1, 0), -EAGAIN);
    }
    int_chan_close(ic);
    assert_true(int_chan_recv(ic, &i));
    assert_int_equal(i, 9);
    assert_false(int_chan_recv(ic, &i));
    assert_int_equal(i, 0);
    int_chan_free(ic);
    u8_chan_free(uc);
    u32_chan_free(qc);
    bool_chan_free(bc);
    str_chan_free(sc);
    point_chan_free(pc);
    double_chan_free(dc);
}

/* ---- panics ------------------------------------------------------------ */

static void test_panic_close_closed(void **state)
{
    (void)state;
    expect_panic("close_closed", "panic: close of closed channel");
}

static void test_panic_close_nil(void **state)
{
    (void)state;
    expect_panic("close_nil", "panic: close of nil channel");
}

static void test_panic_free_blocked(void **state)
{
    (void)state;
    expect_panic("free_blocked", "panic: free of channel with blocked goroutines");
    expect_panic("free_blocked_thread",
                 "panic: free of channel with blocked goroutines");
}

static void child_blocked_recv(void *p)
{
    chan_recv(p, NULL);
}

static void *child_blocked_recv_thread(void *p)
{
    chan_recv(p, NULL);
    return NULL;
}

static int run_scenario(const char *name)
{
    if (strcmp(name, "close_closed") == 0) {
        chan_t *c = chan_make(sizeof(int), 1);
        chan_close(c);
        chan_close(c);
    } else if (strcmp(name, "close_nil") == 0) {
        chan_close(NULL);
    } else if (strcmp(name, "free_blocked") == 0
               || strcmp(name, "free_blocked_thread") == 0) {
        chan_t *c = chan_make(sizeof(int), 0);
        if (strcmp(name, "free_blocked_thread") == 0) {
            pthread_t t;
            pthread_create(&t, NULL, child_blocked_recv_thread, c);
        } else {
            go_spawn(child_blocked_recv, c);
        }
        go_sleep(300 * GO_MS); /* let it block, even on a loaded machine */
        chan_free(c);
    }
    fprintf(stderr, "scenario %s returned\n", name);
    return 3;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_limits),
        cmocka_unit_test(test_nil_channel),
        cmocka_unit_test(test_async_fifo),
        cmocka_unit_test_setup_teardown(test_sync_fifo, reset_failures,
                                        check_failures),
        cmocka_unit_test_setup_teardown(test_sieve, reset_failures,
                                        check_failures),
        cmocka_unit_test_setup_teardown(test_zerosize, reset_failures,
                                        check_failures),
        cmocka_unit_test_setup_teardown(test_nonblock, reset_failures,
                                        check_failures),
        cmocka_unit_test_setup_teardown(test_chan_go, reset_failures,
                                        check_failures),
        cmocka_unit_test(test_close_wakes_everyone),
        cmocka_unit_test(test_out_null_and_sizes),
        cmocka_unit_test_setup_teardown(test_handoff_sizes, reset_failures,
                                        check_failures),
        cmocka_unit_test(test_blocked_fifo),
        cmocka_unit_test_setup_teardown(test_multi_consumer, reset_failures,
                                        check_failures),
        cmocka_unit_test_setup_teardown(test_nonblock_recv_race,
                                        reset_failures, check_failures),
        cmocka_unit_test_setup_teardown(test_threads_and_goroutines,
                                        reset_failures, check_failures),
        cmocka_unit_test_setup_teardown(test_free_after_handoff,
                                        reset_failures, check_failures),
        cmocka_unit_test(test_errno_untouched),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_panic_close_closed),
        cmocka_unit_test(test_panic_close_nil),
        cmocka_unit_test(test_panic_free_blocked),
    };

    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return run_scenario(argv[2]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
