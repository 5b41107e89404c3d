/* ctest: LABELS unit TIMEOUT 180 */
/*
 * test_select.c - chan_select: ports, in spirit and size, of Go 1.19's
 * test/chan/{select3,doubleselect}.go and runtime/chan_test.go
 * (TestSelectFairness, TestPseudoRandomSend, TestSelectStress,
 * TestSelectDuplicateChannel, TestSelfSelect, TestNonblockSelectRace and
 * ...Race2), plus API.md's rules: timeouts, polling, n == 0, closed
 * channels (ok == false, no panic), NULL channels and NULL elements, plain
 * threads, and timeouts racing with values (a value is never lost or
 * delivered twice).
 *
 * Goroutines never assert (cmocka longjmps): they record failures with
 * CHECK and the test asserts on its own thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
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

/* ---- helpers ---------------------------------------------------------- */

/* Waits up to `ms` for *flag to become nonzero. */
static bool wait_flag(_Atomic int *flag, int ms)
{
    for (int i = 0; i < ms * 10; i++) {
        if (atomic_load(flag))
            return true;
        go_sleep(100 * GO_US);
    }
    return atomic_load(flag) != 0;
}

static chan_case_t recv_case(chan_t *c, void *elem)
{
    chan_case_t k = {c, CHAN_RECV, elem, false};
    return k;
}

static chan_case_t send_case(chan_t *c, void *elem)
{
    chan_case_t k = {c, CHAN_SEND, elem, false};
    return k;
}

/* ---- test/chan/select3.go: what blocks and what does not -------------- */

static chan_t *closedch;
/* Channels the always-blocking cases wait on for ever: made by the test
 * and kept in globals, so that nothing is reachable only from a parked
 * goroutine's stack (LeakSanitizer does not scan those). */
static chan_t *blk_unbuffered[3];

struct blocker {
    void (*fn)(void);
    _Atomic int done;
};

static void blocker_run(void *p)
{
    struct blocker *b = p;

    b->fn();
    atomic_store(&b->done, 1);
}

static void blk_send_nil(void) { chan_send(NULL, &(int){7}); }
static void blk_recv_nil(void) { chan_recv(NULL, NULL); }
static void blk_recv_unbuffered(void)
{
    chan_recv(blk_unbuffered[0], NULL);
}
static void blk_select_empty(void) { chan_select(NULL, 0, GO_FOREVER); }
static void blk_select_nil_recv(void)
{
    chan_case_t k[] = {recv_case(NULL, NULL)};
    chan_select(k, 1, GO_FOREVER);
}
static void blk_select_nil_send(void)
{
    chan_case_t k[] = {send_case(NULL, &(int){7})};
    chan_select(k, 1, GO_FOREVER);
}
static void blk_select_nil_both(void)
{
    chan_case_t k[] = {recv_case(NULL, NULL), send_case(NULL, &(int){7})};
    chan_select(k, 2, GO_FOREVER);
}
static void blk_select_recv_unbuffered(void)
{
    chan_case_t k[] = {recv_case(blk_unbuffered[1], NULL)};
    chan_select(k, 1, GO_FOREVER);
}
static void blk_select_self(void)
{
    /* A select must not rendezvous with itself. */
    chan_t *ch = blk_unbuffered[2];
    chan_case_t k[] = {send_case(ch, &(int){1}), recv_case(ch, NULL)};
    chan_select(k, 2, GO_FOREVER);
}

static void nb_select_nil_default(void)
{
    chan_case_t k[] = {send_case(NULL, &(int){7})};
    CHECK(chan_select(k, 1, 0) == -EAGAIN);
    k[0] = recv_case(NULL, NULL);
    CHECK(chan_select(k, 1, 0) == -EAGAIN);
    k[0] = recv_case(NULL, NULL);
    CHECK(chan_select(k, 1, 0) == -EAGAIN);
}
static void nb_buffered_send(void)
{
    chan_t *ch = chan_make(sizeof(int), 1);
    CHECK(chan_send(ch, &(int){7}) == 0);
    chan_free(ch);
}
static void nb_recv_closed(void)
{
    for (int i = 0; i < 10; i++) {
        int x = 5;
        CHECK(!chan_recv(closedch, &x) && x == 0);
        x = 5;
        CHECK(chan_try_recv(closedch, &x) == 0 && x == 0);
    }
}
static void nb_send_closed(void)
{
    /* Go panics; API.md returns -EPIPE. */
    CHECK(chan_send(closedch, &(int){7}) == -EPIPE);
}
static void nb_select_default(void)
{
    CHECK(chan_select(NULL, 0, 0) == -EAGAIN);
}
static void nb_select_buffered(void)
{
    chan_t *ch = chan_make(sizeof(int), 1);
    int v = 0;
    chan_case_t k[] = {send_case(ch, &(int){7})};
    CHECK(chan_select(k, 1, 0) == 0 && k[0].ok);
    k[0] = recv_case(ch, &v);
    CHECK(chan_select(k, 1, 0) == 0 && k[0].ok && v == 7);
    chan_free(ch);
}
static void nb_select_recv_closed(void)
{
    int x = 9;
    chan_case_t k[] = {recv_case(closedch, &x)};
    CHECK(chan_select(k, 1, GO_FOREVER) == 0 && !k[0].ok && x == 0);
    k[0] = recv_case(closedch, NULL);
    CHECK(chan_select(k, 1, GO_FOREVER) == 0 && !k[0].ok);
}
static void nb_select_send_closed(void)
{
    chan_case_t k[] = {send_case(closedch, &(int){7})};
    k[0].ok = true;
    CHECK(chan_select(k, 1, GO_FOREVER) == 0 && !k[0].ok);
}

static void test_select3_rules(void **state)
{
    static void (*const always[])(void) = {
        blk_send_nil,         blk_recv_nil,        blk_recv_unbuffered,
        blk_select_empty,     blk_select_nil_recv, blk_select_nil_send,
        blk_select_nil_both,  blk_select_recv_unbuffered, blk_select_self,
    };
    static void (*const never[])(void) = {
        nb_select_nil_default, nb_buffered_send,    nb_recv_closed,
        nb_send_closed,        nb_select_default,   nb_select_buffered,
        nb_select_recv_closed, nb_select_send_closed,
    };
    enum { NA = sizeof always / sizeof always[0] };
    static struct blocker blk[NA]; /* the goroutines stay blocked */

    (void)state;
    closedch = chan_make(sizeof(int), 0);
    chan_close(closedch);
    for (int i = 0; i < 3; i++)
        blk_unbuffered[i] = chan_make(sizeof(int), 0);
    for (size_t i = 0; i < NA; i++) {
        blk[i].fn = always[i];
        spawn(NULL, blocker_run, &blk[i]);
    }
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        struct blocker b = {never[i], 0};
        spawn(NULL, blocker_run, &b);
        if (!wait_flag(&b.done, 2000))
            fail_msg("case %zu of the never-block list blocked", i);
        never[i](); /* and from this plain thread */
    }
    go_sleep(20 * GO_MS);
    for (size_t i = 0; i < NA; i++)
        if (atomic_load(&blk[i].done))
            fail_msg("case %zu of the always-block list returned", i);
}

/* ---- n == 0, all-NULL selects, timeouts ------------------------------- */

static void test_select_empty_and_timeouts(void **state)
{
    chan_case_t nil2[] = {recv_case(NULL, NULL), send_case(NULL, NULL)};
    chan_t *c = chan_make(sizeof(int), 0);
    chan_case_t k[] = {recv_case(c, NULL)};
    int64_t t0;

    (void)state;
    assert_int_equal(chan_select(NULL, 0, 0), -EAGAIN);
    assert_int_equal(chan_select(nil2, 2, 0), -EAGAIN);
    t0 = go_now();
    assert_int_equal(chan_select(NULL, 0, 10 * GO_MS), -ETIMEDOUT);
    assert_true(go_now() - t0 >= 10 * GO_MS);
    t0 = go_now();
    assert_int_equal(chan_select(nil2, 2, 10 * GO_MS), -ETIMEDOUT);
    assert_true(go_now() - t0 >= 10 * GO_MS);

    assert_int_equal(chan_select(k, 1, 0), -EAGAIN);
    t0 = go_now();
    assert_int_equal(chan_select(k, 1, 20 * GO_MS), -ETIMEDOUT);
    assert_true(go_now() - t0 >= 20 * GO_MS);
    assert_true(go_now() - t0 < 2 * GO_S);
    /* The timed-out select left no entry behind (chan_free would panic). */
    chan_free(c);
}

struct timed {
    _Atomic int done;
    int result;
    int64_t elapsed;
};

static void timed_select(void *p)
{
    struct timed *t = p;
    chan_t *a = chan_make(sizeof(int), 0), *b = chan_make(sizeof(int), 3);
    chan_case_t k[] = {recv_case(a, NULL), recv_case(b, NULL),
                       send_case(a, &(int){1})};
    int64_t t0 = go_now();

    t->result = chan_select(k, 3, 15 * GO_MS);
    t->elapsed = go_now() - t0;
    chan_free(a);
    chan_free(b);
    atomic_store(&t->done, 1);
}

static void test_select_timeout_goroutine_and_thread(void **state)
{
    struct timed g = {0}, th = {0};

    (void)state;
    spawn(NULL, timed_select, &g);
    spawn_thread(NULL, timed_select, &th);
    assert_true(wait_flag(&g.done, 5000));
    assert_true(wait_flag(&th.done, 5000));
    assert_int_equal(g.result, -ETIMEDOUT);
    assert_int_equal(th.result, -ETIMEDOUT);
    assert_true(g.elapsed >= 15 * GO_MS);
    assert_true(th.elapsed >= 15 * GO_MS);
}

static void test_select_einval(void **state)
{
    chan_t *c = chan_make(sizeof(int), 1);
    chan_case_t k[] = {{c, (enum chan_op)0, NULL, false}};

    (void)state;
    assert_int_equal(chan_select(k, 1, 0), -EINVAL);
    k[0].op = (enum chan_op)3;
    assert_int_equal(chan_select(k, 1, GO_FOREVER), -EINVAL);
    chan_free(c);
}

/* ---- closed channels, NULL elements ----------------------------------- */

static void test_select_closed(void **state)
{
    chan_t *c = chan_make(sizeof(long), 2);
    long v = -1;
    chan_case_t k[2];

    (void)state;
    chan_send(c, &(long){10});
    chan_send(c, &(long){11});
    chan_close(c);
    k[0] = recv_case(c, &v);
    assert_int_equal(chan_select(k, 1, 0), 0);
    assert_true(k[0].ok);
    assert_int_equal(v, 10);
    k[0] = recv_case(c, NULL);
    assert_int_equal(chan_select(k, 1, 0), 0);
    assert_true(k[0].ok);
    v = 99;
    k[0] = recv_case(c, &v);
    assert_int_equal(chan_select(k, 1, GO_FOREVER), 0);
    assert_false(k[0].ok);
    assert_int_equal(v, 0);
    k[0] = send_case(NULL, &v);
    k[1] = send_case(c, &v);
    k[1].ok = true;
    assert_int_equal(chan_select(k, 2, 0), 1);
    assert_false(k[1].ok);
    chan_free(c);
}

struct closer {
    chan_t *c;
    int64_t delay;
};

static void close_later(void *p)
{
    struct closer *cl = p;

    go_sleep(cl->delay);
    chan_close(cl->c);
}

static void send_later(void *p)
{
    struct closer *cl = p;

    go_sleep(cl->delay);
    CHECK(chan_send(cl->c, &(long){1234}) == 0);
}

static void test_select_woken_by_close(void **state)
{
    chan_t *c[3];
    long v[3] = {5, 5, 5};
    chan_case_t k[3];
    struct closer cl;
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < 3; i++) {
        c[i] = chan_make(sizeof(long), (size_t)i % 2);
        k[i] = recv_case(c[i], &v[i]);
    }
    cl = (struct closer){c[1], 5 * GO_MS};
    spawn(&wg, close_later, &cl);
    assert_int_equal(chan_select(k, 3, GO_FOREVER), 1);
    assert_false(k[1].ok);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[0], 5);
    assert_int_equal(v[2], 5);
    wg_wait(&wg);

    /* A blocked send case is woken by close too, with ok == false. */
    k[0] = send_case(c[0], &(long){1});
    k[1] = recv_case(c[2], NULL);
    cl = (struct closer){c[0], 5 * GO_MS};
    spawn(&wg, close_later, &cl);
    assert_int_equal(chan_select(k, 2, 2 * GO_S), 0);
    assert_false(k[0].ok);
    wg_wait(&wg);
    for (int i = 0; i < 3; i++)
        chan_free(c[i]);
}

/* ---- large selects (scratch on the heap) ------------------------------ */

static void test_select_large(void **state)
{
    enum { N = 40 };
    chan_t *c[N];
    chan_case_t k[N + 1];
    long got = 0;
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < N; i++)
        c[i] = chan_make(sizeof(long), (size_t)i % 3);
    for (int target = 0; target < N; target += 7) {
        struct closer cl = {c[target], 2 * GO_MS};
        for (int i = 0; i < N; i++)
            k[i] = recv_case(c[i], &got);
        k[N] = recv_case(NULL, NULL);
        spawn(&wg, send_later, &cl);
        assert_int_equal(chan_select(k, N + 1, GO_FOREVER), target);
        assert_true(k[target].ok);
        assert_int_equal(got, 1234);
        wg_wait(&wg);
        assert_int_equal(chan_select(k, N + 1, 0), -EAGAIN);
    }
    for (int i = 0; i < N; i++)
        chan_free(c[i]); /* would panic if an entry were left queued */
}

/* ---- runtime/chan_test.go TestSelectFairness -------------------------- */

struct fair {
    chan_t *c1, *c2, *c3, *c4, *out, *done;
};

static void fair_loop(void *p)
{
    struct fair *f = p;
    unsigned char b;

    for (;;) {
        chan_case_t k[] = {recv_case(f->c3, &b), recv_case(f->c4, &b),
                           recv_case(f->c1, &b), recv_case(f->c2, &b)};
        chan_case_t o[] = {send_case(f->out, &b), recv_case(f->done, NULL)};
        CHECK(chan_select(k, 4, GO_FOREVER) >= 0);
        if (chan_select(o, 2, GO_FOREVER) == 1)
            return;
    }
}

static void test_select_fairness(void **state)
{
    enum { TRIALS = 10000 };
    struct fair f = {
        chan_make(1, TRIALS + 1), chan_make(1, TRIALS + 1),
        chan_make(1, 0),          chan_make(1, 0),
        chan_make(1, 0),          chan_make(0, 0),
    };
    int cnt1 = 0, cnt2 = 0;
    wg_t wg = WG_INIT;

    (void)state;
    for (int i = 0; i < TRIALS + 1; i++) {
        chan_send(f.c1, &(unsigned char){1});
        chan_send(f.c2, &(unsigned char){2});
    }
    spawn(&wg, fair_loop, &f);
    for (int i = 0; i < TRIALS; i++) {
        unsigned char b = 0;
        chan_recv(f.out, &b);
        if (b == 1)
            cnt1++;
        else if (b == 2)
            cnt2++;
        else
            fail_msg("unexpected value %d", b);
    }
    /* Within 10 standard deviations of the mean, as Go checks. */
    double mean = TRIALS * 0.5, stddev = sqrt(TRIALS * 0.5 * 0.5);
    if (fabs(cnt1 - mean) > 10 * stddev)
        fail_msg("unfair select: %d trials gave %d and %d", TRIALS, cnt1,
                 cnt2);
    chan_close(f.done);
    wg_wait(&wg);
    chan_free(f.c1);
    chan_free(f.c2);
    chan_free(f.c3);
    chan_free(f.c4);
    chan_free(f.out);
    chan_free(f.done);
}

/* Uniform choice among cases ready at once, including two cases on one
 * channel: a chi-square-like bound per case. */
static void test_select_uniform(void **state)
{
    enum { N = 40000, K = 5 };
    chan_t *a = chan_make(0, N * 3), *b = chan_make(0, N), *c = chan_make(0, N);
    chan_t *d = chan_make(0, N);
    int count[K] = {0};

    (void)state;
    for (int i = 0; i < N * 3; i++)
        chan_send(a, NULL);
    for (int i = 0; i < N; i++) {
        chan_send(b, NULL);
        chan_send(c, NULL);
        chan_send(d, NULL);
    }
    for (int i = 0; i < N; i++) {
        chan_case_t k[K] = {recv_case(a, NULL), recv_case(b, NULL),
                            recv_case(a, NULL), recv_case(c, NULL),
                            recv_case(d, NULL)};
        int r = chan_select(k, K, 0);
        assert_true(r >= 0 && r < K);
        count[r]++;
    }
    double mean = (double)N / K, stddev = sqrt(N * (1.0 / K) * (1 - 1.0 / K));
    for (int i = 0; i < K; i++)
        if (fabs(count[i] - mean) > 10 * stddev)
            fail_msg("case %d chosen %d times of %d (mean %.0f)", i,
                     count[i], N, mean);
    chan_free(a);
    chan_free(b);
    chan_free(c);
    chan_free(d);
}

/* ---- TestPseudoRandomSend --------------------------------------------- */

struct prs {
    chan_t *c;
    int *l;
    int n;
};

static void prs_reader(void *p)
{
    struct prs *r = p;

    for (int i = 0; i < r->n; i++) {
        go_yield();
        CHECK(chan_recv(r->c, &r->l[i]));
    }
}

static void test_pseudo_random_send(void **state)
{
    enum { N = 100 };
    int l[N];

    (void)state;
    for (size_t cap = 0; cap <= N; cap += N) {
        struct prs r = {chan_make(sizeof(int), cap), l, N};
        wg_t wg = WG_INIT;
        int n0 = 0, n1 = 0;
        spawn(&wg, prs_reader, &r);
        for (int i = 0; i < N; i++) {
            chan_case_t k[] = {send_case(r.c, &(int){1}),
                               send_case(r.c, &(int){0})};
            assert_true(chan_select(k, 2, GO_FOREVER) >= 0);
        }
        wg_wait(&wg);
        for (int i = 0; i < N; i++) {
            n0 += (l[i] + 1) % 2;
            n1 += l[i];
        }
        if (n0 <= N / 10 || n1 <= N / 10)
            fail_msg("want pseudorandom, got %d zeros and %d ones (cap %zu)",
                     n0, n1, cap);
        chan_free(r.c);
    }
}

/* ---- test/chan/doubleselect.go ---------------------------------------- */

enum { DS_ITER = 20000 };

struct ds {
    chan_t *c[4], *cmux, *done;
};

static void ds_sender(void *p)
{
    struct ds *d = p;

    for (int i = 0; i < DS_ITER; i++) {
        chan_case_t k[] = {send_case(d->c[0], &i), send_case(d->c[1], &i),
                           send_case(d->c[2], &i), send_case(d->c[3], &i)};
        CHECK(chan_select(k, 4, GO_FOREVER) >= 0);
    }
    for (int i = 0; i < 4; i++)
        chan_close(d->c[i]);
}

struct ds_mux {
    struct ds *d;
    int i;
};

static void ds_mux(void *p)
{
    struct ds_mux *m = p;
    int v;

    while (chan_recv(m->d->c[m->i], &v))
        CHECK(chan_send(m->d->cmux, &v) == 0);
    CHECK(chan_send(m->d->done, NULL) == 0);
}

static void ds_closer(void *p)
{
    struct ds *d = p;

    for (int i = 0; i < 4; i++)
        CHECK(chan_recv(d->done, NULL));
    chan_close(d->cmux);
}

static void test_doubleselect(void **state)
{
    struct ds d;
    struct ds_mux m[4];
    unsigned char *seen = calloc(DS_ITER, 1);
    wg_t wg = WG_INIT;
    int v, n = 0;

    (void)state;
    for (int i = 0; i < 4; i++)
        d.c[i] = chan_make(sizeof(int), 0);
    d.cmux = chan_make(sizeof(int), 0);
    d.done = chan_make(0, 0);
    spawn(&wg, ds_sender, &d);
    for (int i = 0; i < 4; i++) {
        m[i] = (struct ds_mux){&d, i};
        spawn(&wg, ds_mux, &m[i]);
    }
    spawn(&wg, ds_closer, &d);
    while (chan_recv(d.cmux, &v)) {
        assert_true(v >= 0 && v < DS_ITER);
        if (seen[v])
            fail_msg("got duplicate value %d", v);
        seen[v] = 1;
        n++;
    }
    assert_int_equal(n, DS_ITER);
    wg_wait(&wg);
    for (int i = 0; i < 4; i++)
        chan_free(d.c[i]);
    chan_free(d.cmux);
    chan_free(d.done);
    free(seen);
}

/* ---- TestSelectStress -------------------------------------------------- */

enum { SS_N = 20000 };

struct ss {
    chan_t *c[4];
};

struct ss_one {
    struct ss *s;
    int k;
};

static void ss_send(void *p)
{
    struct ss_one *o = p;

    for (int i = 0; i < SS_N; i++)
        CHECK(chan_send(o->s->c[o->k], &(int){0}) == 0);
}

static void ss_recv(void *p)
{
    struct ss_one *o = p;

    for (int i = 0; i < SS_N; i++)
        CHECK(chan_recv(o->s->c[o->k], NULL));
}

static void ss_select_send(void *p)
{
    struct ss *s = p;
    chan_t *c1[4];
    int n[4] = {0};

    memcpy(c1, s->c, sizeof c1);
    for (int i = 0; i < 4 * SS_N; i++) {
        chan_case_t k[] = {send_case(c1[3], &(int){0}),
                           send_case(c1[2], &(int){0}),
                           send_case(c1[0], &(int){0}),
                           send_case(c1[1], &(int){0})};
        static const int map[] = {3, 2, 0, 1};
        int r = chan_select(k, 4, GO_FOREVER);
        CHECK(r >= 0 && k[r].ok);
        if (r < 0)
            return;
        if (++n[map[r]] == SS_N)
            c1[map[r]] = NULL;
    }
}

static void ss_select_recv(void *p)
{
    struct ss *s = p;
    chan_t *c1[4];
    int n[4] = {0};

    memcpy(c1, s->c, sizeof c1);
    for (int i = 0; i < 4 * SS_N; i++) {
        chan_case_t k[] = {recv_case(c1[0], NULL), recv_case(c1[1], NULL),
                           recv_case(c1[2], NULL), recv_case(c1[3], NULL)};
        int r = chan_select(k, 4, GO_FOREVER);
        CHECK(r >= 0 && k[r].ok);
        if (r < 0)
            return;
        if (++n[r] == SS_N)
            c1[r] = NULL;
    }
}

static void test_select_stress(void **state)
{
    struct ss s = {{chan_make(sizeof(int), 0), chan_make(sizeof(int), 0),
                    chan_make(sizeof(int), 2), chan_make(sizeof(int), 3)}};
    struct ss_one o[4];
    wg_t wg = WG_INIT;

    (void)state;
    for (int k = 0; k < 4; k++) {
        o[k] = (struct ss_one){&s, k};
        spawn(&wg, ss_send, &o[k]);
        spawn(&wg, ss_recv, &o[k]);
    }
    spawn(&wg, ss_select_send, &s);
    spawn(&wg, ss_select_recv, &s);
    wg_wait(&wg);
    for (int k = 0; k < 4; k++)
        chan_free(s.c[k]);
}

/* ---- TestSelectDuplicateChannel ---------------------------------------- */

struct dup {
    chan_t *c, *d, *e;
};

static void dup_a(void *p)
{
    struct dup *x = p;
    chan_case_t k[] = {recv_case(x->c, NULL), recv_case(x->c, NULL),
                       recv_case(x->d, NULL)};

    CHECK(chan_select(k, 3, GO_FOREVER) == 2);
    CHECK(chan_send(x->e, &(int){9}) == 0);
}

static void dup_b(void *p)
{
    struct dup *x = p;
    int v = 0;

    CHECK(chan_recv(x->c, &v) && v == 8);
}

static void test_select_duplicate_channel(void **state)
{
    struct dup x = {chan_make(sizeof(int), 0), chan_make(sizeof(int), 0),
                    chan_make(sizeof(int), 0)};
    wg_t wg = WG_INIT;

    (void)state;
    spawn(&wg, dup_a, &x);
    go_sleep(GO_MS); /* A queues on c (twice) first */
    spawn(&wg, dup_b, &x);
    go_sleep(GO_MS); /* then B */
    assert_int_equal(chan_send(x.d, &(int){7}), 0); /* A leaves c */
    assert_true(chan_recv(x.e, NULL));
    assert_int_equal(chan_send(x.c, &(int){8}), 0); /* must reach B */
    wg_wait(&wg);
    chan_free(x.c);
    chan_free(x.d);
    chan_free(x.e);
}

/* ---- TestSelfSelect ---------------------------------------------------- */

struct self {
    chan_t *c;
    int p;
    size_t cap;
};

static void self_loop(void *arg)
{
    struct self *s = arg;

    for (int i = 0; i < 1000; i++) {
        int v = -1, r;
        if (s->p == 0 || i % 2 == 0) {
            chan_case_t k[] = {send_case(s->c, &s->p), recv_case(s->c, &v)};
            r = chan_select(k, 2, GO_FOREVER);
            CHECK(r == 0 || r == 1);
            if (r == 1 && s->cap == 0)
                CHECK(v != s->p); /* no self receive */
        } else {
            chan_case_t k[] = {recv_case(s->c, &v), send_case(s->c, &s->p)};
            r = chan_select(k, 2, GO_FOREVER);
            CHECK(r == 0 || r == 1);
            if (r == 0 && s->cap == 0)
                CHECK(v != s->p);
        }
    }
}

static void test_self_select(void **state)
{
    static const size_t caps[] = {0, 10};

    (void)state;
    for (int ci = 0; ci < 2; ci++) {
        chan_t *c = chan_make(sizeof(int), caps[ci]);
        struct self s[2] = {{c, 0, caps[ci]}, {c, 1, caps[ci]}};
        wg_t wg = WG_INIT;
        spawn(&wg, self_loop, &s[0]);
        spawn(&wg, self_loop, &s[1]);
        wg_wait(&wg);
        chan_free(c);
    }
}

/* ---- TestNonblockSelectRace and Race2 ---------------------------------- */

struct nbs {
    chan_t *c1, *c2, *done;
};

static void nbs_poll(void *p)
{
    struct nbs *n = p;
    chan_case_t k[] = {recv_case(n->c1, NULL), recv_case(n->c2, NULL)};
    bool ready = chan_select(k, 2, 0) >= 0;

    chan_send(n->done, &ready);
}

static void test_nonblock_select_race(void **state)
{
    chan_t *done = chan_make(sizeof(bool), 1);

    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        for (int i = 0; i < 10000; i++) {
            struct nbs n = {chan_make(sizeof(int), 1),
                            chan_make(sizeof(int), variant == 0 ? 1 : 0),
                            done};
            bool ready = false;
            chan_case_t k[] = {recv_case(n.c1, NULL)};

            chan_send(n.c1, &(int){1});
            spawn(NULL, nbs_poll, &n);
            if (variant == 0)
                chan_send(n.c2, &(int){1});
            else
                chan_close(n.c2);
            chan_select(k, 1, 0);
            chan_recv(done, &ready);
            if (!ready)
                fail_msg("variant %d iteration %d: no chan is ready",
                         variant, i);
            chan_free(n.c1);
            chan_free(n.c2);
        }
    }
    chan_free(done);
}

/* ---- plain threads in select ------------------------------------------ */

struct thr_sel {
    chan_t *a, *b;
    int rounds;
    long sum;
};

static void thr_selector(void *p)
{
    struct thr_sel *t = p;

    for (int i = 0; i < t->rounds; i++) {
        long va = 0, vb = 0;
        chan_case_t k[] = {recv_case(t->a, &va), recv_case(t->b, &vb)};
        int r = chan_select(k, 2, GO_FOREVER);
        CHECK(r == 0 || r == 1);
        t->sum += r == 0 ? va : vb;
    }
}

static void thr_feeder(void *p)
{
    struct thr_sel *t = p;

    for (int i = 1; i <= t->rounds; i++)
        CHECK(chan_send(i % 2 ? t->a : t->b, &(long){i}) == 0);
}

static void test_select_threads(void **state)
{
    (void)state;
    for (int mode = 0; mode < 4; mode++) {
        struct thr_sel t = {chan_make(sizeof(long), 0),
                            chan_make(sizeof(long), (size_t)mode / 2), 3000,
                            0};
        wg_t wg = WG_INIT;
        if (mode % 2)
            spawn_thread(&wg, thr_selector, &t);
        else
            spawn(&wg, thr_selector, &t);
        if (mode / 2)
            spawn_thread(&wg, thr_feeder, &t);
        else
            spawn(&wg, thr_feeder, &t);
        wg_wait(&wg);
        assert_int_equal(t.sum, (long)t.rounds * (t.rounds + 1) / 2);
        chan_free(t.a);
        chan_free(t.b);
    }
}

/* ---- timeouts racing with values --------------------------------------- */

struct tr {
    chan_t *c;
    int n;
    bool select_send;
    int timeouts;
};

static void tr_producer(void *p)
{
    struct tr *t = p;

    for (int i = 0; i < t->n; i++) {
        if (!t->select_send) {
            CHECK(chan_send(t->c, &i) == 0);
            continue;
        }
        for (;;) {
            chan_case_t k[] = {send_case(t->c, &i)};
            int r = chan_select(k, 1, (i % 7 + 1) * GO_US);
            if (r == 0)
                break;
            CHECK(r == -ETIMEDOUT);
            t->timeouts++;
        }
    }
}

static void test_timeout_races_value(void **state)
{
    (void)state;
    for (int mode = 0; mode < 4; mode++) {
        struct tr t = {chan_make(sizeof(int), (size_t)mode / 2), 5000,
                       mode % 2 == 1, 0};
        wg_t wg = WG_INIT;
        int timeouts = 0;
        spawn(&wg, tr_producer, &t);
        for (int i = 0; i < t.n; i++) {
            int v = -1;
            if (t.select_send) {
                assert_true(chan_recv(t.c, &v));
            } else {
                for (;;) {
                    chan_case_t k[] = {recv_case(t.c, &v)};
                    int r = chan_select(k, 1, (i % 5 + 1) * GO_US);
                    if (r == 0)
                        break;
                    assert_int_equal(r, -ETIMEDOUT);
                    timeouts++;
                }
            }
            assert_int_equal(v, i); /* nothing lost, nothing twice */
        }
        wg_wait(&wg);
        assert_int_equal(chan_try_recv(t.c, NULL), -EAGAIN);
        chan_free(t.c);
        (void)timeouts;
    }
}

static void test_select_errno(void **state)
{
    chan_t *c = chan_make(sizeof(int), 0);
    chan_case_t k[] = {recv_case(c, NULL)};

    (void)state;
    errno = 777;
    assert_int_equal(chan_select(k, 1, GO_MS), -ETIMEDOUT);
    assert_int_equal(errno, 777);
    assert_int_equal(chan_select(k, 1, 0), -EAGAIN);
    assert_int_equal(chan_select(NULL, 0, GO_MS), -ETIMEDOUT);
    assert_int_equal(errno, 777);
    errno = 0;
    chan_free(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_failures, check_failures)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_select3_rules),
        T(test_select_empty_and_timeouts),
        T(test_select_timeout_goroutine_and_thread),
        T(test_select_einval),
        T(test_select_closed),
        T(test_select_woken_by_close),
        T(test_select_large),
        T(test_select_fairness),
        T(test_select_uniform),
        T(test_pseudo_random_send),
        T(test_doubleselect),
        T(test_select_stress),
        T(test_select_duplicate_channel),
        T(test_self_select),
        T(test_nonblock_select_race),
        T(test_select_threads),
        T(test_timeout_races_value),
        T(test_select_errno),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
