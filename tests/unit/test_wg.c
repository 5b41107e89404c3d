/* ctest: LABELS unit TIMEOUT 180 */
/*
 * test_wg.c - wg_t: ports, in spirit and size, of Go 1.19's
 * sync/waitgroup_test.go (testWaitGroup, TestWaitGroupMisuse,
 * TestWaitGroupRace), plus API.md's rules: zero value, any number of
 * waiters (goroutines and plain threads), reuse, errno, and Lifetimes
 * (wg_wait returns only when no wg_done still touches the group, so it may
 * be freed or go out of scope at once).
 *
 * Goroutines never assert (cmocka longjmps): they record failures with
 * CHECK and the test asserts on its own thread.  Panics are checked in a
 * fresh copy of this binary (expect_panic).
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

/* ---- sync/waitgroup_test.go testWaitGroup ----------------------------- */

struct barrier {
    wg_t *wg1, *wg2;
    chan_t *exited;
};

static void barrier_member(void *p)
{
    struct barrier *b = p;

    wg_done(b->wg1);
    wg_wait(b->wg2);
    CHECK(chan_send(b->exited, NULL) == 0);
}

static void run_barrier(wg_t *wg1, wg_t *wg2)
{
    enum { N = 16 };
    struct barrier b = {wg1, wg2, chan_make(0, N)};

    wg_add(wg1, N);
    wg_add(wg2, N);
    for (int i = 0; i < N; i++) {
        if (i % 4 == 3)
            spawn_thread(NULL, barrier_member, &b);
        else
            spawn(NULL, barrier_member, &b);
    }
    wg_wait(wg1);
    for (int i = 0; i < N; i++) {
        if (chan_try_recv(b.exited, NULL) != -EAGAIN)
            fail_msg("WaitGroup released group too soon");
        wg_done(wg2);
    }
    for (int i = 0; i < N; i++)
        assert_true(chan_recv(b.exited, NULL)); /* blocks if one is stuck */
    chan_free(b.exited);
}

static void test_waitgroup(void **state)
{
    wg_t wg1 = WG_INIT, wg2 = WG_INIT;

    (void)state;
    /* Reusable once the waiters have returned. */
    for (int i = 0; i < 8; i++)
        run_barrier(&wg1, &wg2);
}

static void test_zero_value(void **state)
{
    static wg_t zero; /* never initialised */
    wg_t local = WG_INIT;

    (void)state;
    wg_wait(&zero);
    wg_wait(&local);
    wg_add(&local, 0); /* a no-op */
    wg_add(&local, 3);
    wg_add(&local, -2);
    wg_done(&local);
    wg_wait(&local);
}

/* ---- TestWaitGroupRace, with the group freed right after wg_wait ------- */

struct race {
    wg_t *wg;
    _Atomic int *n;
};

static void race_member(void *p)
{
    struct race *r = p;

    atomic_fetch_add(r->n, 1);
    wg_done(r->wg);
}

static void test_wg_race(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        wg_t *wg = calloc(1, sizeof *wg);
        _Atomic int n = 0;
        struct race r = {wg, &n};

        wg_add(wg, 1);
        spawn(NULL, race_member, &r);
        wg_add(wg, 1);
        if (i % 2)
            spawn_thread(NULL, race_member, &r);
        else
            spawn(NULL, race_member, &r);
        wg_wait(wg);
        if (atomic_load(&n) != 2)
            fail_msg("spurious wake-up from wg_wait");
        free(wg);
    }
}

/* ---- Lifetimes ---------------------------------------------------------- */

struct lt {
    wg_t *wg;
    chan_t *returned; /* waiters report here after wg_wait returned */
};

static void lt_done(void *p)
{
    wg_done(p);
}

static void lt_waiter(void *p)
{
    struct lt *l = p;
    chan_t *returned = l->returned;

    wg_wait(l->wg);
    CHECK(chan_send(returned, NULL) == 0);
}

/* Scribbles over a freed-to-be group and checks that nobody writes to it
 * any more: a late wg_done (its busy count, the semaphore) would show. */
static bool untouched_after(wg_t *wg)
{
    unsigned char *b = (unsigned char *)wg;

    memset(wg, 0xa5, sizeof *wg);
    for (int i = 0; i < 3; i++)
        go_yield();
    for (size_t i = 0; i < sizeof *wg; i++)
        if (b[i] != 0xa5)
            return false;
    return true;
}

static void test_wg_lifetime_single_waiter(void **state)
{
    int late = 0;

    (void)state;
    for (int i = 0; i < 3000; i++) {
        wg_t *wg = malloc(sizeof *wg);
        *wg = (wg_t)WG_INIT;
        wg_add(wg, 4);
        for (int k = 0; k < 4; k++) {
            if ((i + k) % 5 == 0)
                spawn_thread(NULL, lt_done, wg);
            else
                spawn(NULL, lt_done, wg);
        }
        wg_wait(wg);
        if (!untouched_after(wg))
            late++;
        free(wg);
    }
    assert_int_equal(late, 0);
}

static void test_wg_lifetime_many_waiters(void **state)
{
    enum { W = 5 };
    int late = 0;

    (void)state;
    for (int i = 0; i < 500; i++) {
        wg_t *wg = malloc(sizeof *wg);
        struct lt l = {wg, chan_make(0, W)};

        *wg = (wg_t)WG_INIT;
        wg_add(wg, 1);
        for (int k = 0; k < W; k++) {
            if (k == 2)
                spawn_thread(NULL, lt_waiter, &l);
            else
                spawn(NULL, lt_waiter, &l);
        }
        /* Let them park, so that the last wg_done wakes W of them. */
        go_sleep(50 * GO_US);
        if (i % 2)
            spawn(NULL, lt_done, wg);
        else
            spawn_thread(NULL, lt_done, wg);
        for (int k = 0; k < W; k++)
            assert_true(chan_recv(l.returned, NULL));
        if (!untouched_after(wg))
            late++;
        free(wg);
        chan_free(l.returned);
    }
    assert_int_equal(late, 0);
}

/* A group on the stack of a function that returns as soon as it waited. */
static void wait_on_stack(int n, int round)
{
    wg_t wg = WG_INIT;

    wg_add(&wg, n);
    for (int k = 0; k < n; k++) {
        if ((round + k) % 7 == 0)
            spawn_thread(NULL, lt_done, &wg);
        else
            spawn(NULL, lt_done, &wg);
    }
    wg_wait(&wg);
}

static void scribble_stack(void)
{
    volatile unsigned char junk[512];

    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0xff;
}

struct stack_user {
    int rounds;
};

static void stack_rounds(void *p)
{
    struct stack_user *s = p;

    for (int i = 0; i < s->rounds; i++) {
        wait_on_stack(1 + i % 6, i);
        scribble_stack();
    }
}

static void test_wg_on_stack(void **state)
{
    struct stack_user s = {2000};
    wg_t outer = WG_INIT;

    (void)state;
    stack_rounds(&s); /* plain thread */
    spawn(&outer, stack_rounds, &s);
    spawn(&outer, stack_rounds, &s);
    wg_wait(&outer);
}

/* ---- many waiters, threads ------------------------------------------- */

struct waiters {
    wg_t gate;
    wg_t out;
    _Atomic int passed;
};

static void gate_waiter(void *p)
{
    struct waiters *w = p;

    wg_wait(&w->gate);
    atomic_fetch_add(&w->passed, 1);
    wg_done(&w->out);
}

static void test_many_waiters(void **state)
{
    enum { G = 50, T = 6 };
    struct waiters w = {WG_INIT, WG_INIT, 0};

    (void)state;
    wg_add(&w.gate, 3);
    wg_add(&w.out, G + T);
    for (int i = 0; i < G; i++)
        spawn(NULL, gate_waiter, &w);
    for (int i = 0; i < T; i++)
        spawn_thread(NULL, gate_waiter, &w);
    go_sleep(5 * GO_MS);
    assert_int_equal(atomic_load(&w.passed), 0);
    wg_done(&w.gate);
    wg_done(&w.gate);
    go_sleep(2 * GO_MS);
    assert_int_equal(atomic_load(&w.passed), 0);
    spawn_thread(NULL, lt_done, &w.gate);
    wg_wait(&w.out);
    assert_int_equal(atomic_load(&w.passed), G + T);
}

/* errno through a call the compiler cannot fold: errno's address is
 * thread-local and __errno_location() is declared const, so an inlined
 * read after a park could read the previous thread's errno (API.md). */
__attribute__((noinline)) static int errno_now(void)
{
    int *p = &errno;
    __asm__ __volatile__("" : "+r"(p));
    return *p;
}

static void errno_waiter(void *p)
{
    wg_t *wg = p;
    int *bad = (int *)((char *)p + sizeof(wg_t));

    errno = 999;
    wg_wait(wg);
    if (errno_now() != 999)
        (*bad)++;
}

static void test_wg_errno(void **state)
{
    struct {
        wg_t wg;
        int bad;
    } e = {WG_INIT, 0};
    wg_t joined = WG_INIT;

    (void)state;
    wg_add(&e.wg, 1);
    spawn(&joined, errno_waiter, &e);
    go_sleep(GO_MS);
    errno = 55;
    wg_done(&e.wg);
    assert_int_equal(errno, 55);
    wg_wait(&joined);
    assert_int_equal(e.bad, 0);
    errno = 0;
}

/* ---- misuse ------------------------------------------------------------ */

static void test_wg_misuse(void **state)
{
    (void)state;
    expect_panic("negative", "panic: sync: negative WaitGroup counter");
    expect_panic("negative_from_goroutine",
                 "panic: sync: negative WaitGroup counter");
    expect_panic("overflow", "panic: sync: WaitGroup counter overflow");
}

static void negative_in_goroutine(void *p)
{
    wg_done(p);
}

static int run_scenario(const char *name)
{
    static wg_t wg;

    if (strcmp(name, "negative") == 0) {
        wg_add(&wg, 1);
        wg_done(&wg);
        wg_done(&wg);
    } else if (strcmp(name, "negative_from_goroutine") == 0) {
        go_spawn(negative_in_goroutine, &wg);
        go_sleep(GO_S);
    } else if (strcmp(name, "overflow") == 0) {
        wg_add(&wg, INT32_MAX);
        wg_add(&wg, 1);
    }
    fprintf(stderr, "scenario %s returned\n", name);
    return 3;
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_failures, check_failures)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_waitgroup),
        T(test_zero_value),
        T(test_wg_race),
        T(test_wg_lifetime_single_waiter),
        T(test_wg_lifetime_many_waiters),
        T(test_wg_on_stack),
        T(test_many_waiters),
        T(test_wg_errno),
        T(test_wg_misuse),
    };

    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return run_scenario(argv[2]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
