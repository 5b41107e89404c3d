/*
 * test_handoff.c - the monitor hands a blocked worker's goroutines to
 * another thread (API.md: "a goroutine that blocks its worker (in a system
 * call or a long computation) past the runtime's threshold no longer
 * counts, and the rest of that worker's goroutines move to another
 * thread"; gort.h: go_blocking_begin/go_blocking_end).
 *
 * Everything runs with GORT_MAXPROCS=1, so without a hand-off nothing else
 * could run while one goroutine blocks.  The variable must be set before
 * the runtime's first use: main sets it and re-executes itself.
 *
 * Goroutines never assert: they record, the test thread joins by polling
 * an atomic with a deadline and asserts.
 *
 * ctest: LABELS unit;timing TIMEOUT 60
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gort.h>

#include "test_util.h"

#define ROUND_TRIPS 100

/* ---- the blockers ---------------------------------------------------------- */

enum block_kind { BLOCK_SLEEP, BLOCK_SPIN, BLOCK_SLEEP_ANNOUNCED };

struct blocker {
    enum block_kind kind;
    int64_t t_start, t_end;
    _Atomic int started, done;
};

static volatile uint64_t spin_sink;

/* A pure computation: no call into the runtime, no system call except the
   vDSO clock read that ends it. */
static void spin_for(int64_t ns)
{
    int64_t t0 = go_now();
    uint64_t x = spin_sink;
    while (go_now() - t0 < ns) {
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    spin_sink = x;
}

static void blocker_body(void *arg)
{
    struct blocker *b = arg;
    b->t_start = go_now();
    atomic_store_explicit(&b->started, 1, memory_order_release);
    switch (b->kind) {
    case BLOCK_SLEEP:
        sleep(1); /* POSIX sleep: the runtime cannot see it */
        break;
    case BLOCK_SPIN:
        spin_for(GO_S);
        break;
    case BLOCK_SLEEP_ANNOUNCED:
        go_blocking_begin();
        sleep(1);
        go_blocking_end();
        break;
    }
    b->t_end = go_now();
    atomic_store_explicit(&b->done, 1, memory_order_release);
}

/* ---- channel round trips ------------------------------------------------- */

struct pingpong {
    chan_t *req, *resp;
    int errors;
    int64_t t_first, t_done;
    _Atomic int done; /* 1: pinger finished; 2: ponger too */
};

static void pinger_body(void *arg)
{
    struct pingpong *pp = arg;
    pp->t_first = go_now();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        int v = -1;
        if (chan_send(pp->req, &i) != 0 || !chan_recv(pp->resp, &v) || v != i + 1)
            pp->errors++;
    }
    pp->t_done = go_now();
    chan_close(pp->req);
    atomic_fetch_add_explicit(&pp->done, 1, memory_order_release);
}

static void ponger_body(void *arg)
{
    struct pingpong *pp = arg;
    int v;
    while (chan_recv(pp->req, &v)) {
        v++;
        if (chan_send(pp->resp, &v) != 0)
            pp->errors++;
    }
    atomic_fetch_add_explicit(&pp->done, 1, memory_order_release);
}

struct figures {
    int64_t first; /* spawn of the pair -> the pinger's first run */
    int64_t total; /* spawn of the pair -> 100 round trips done */
};

/*
 * Starts a blocker, waits until it is blocking its worker (the only one),
 * then starts a ping-pong pair and measures how long the pair takes.
 */
static struct figures run_case(enum block_kind kind, const char *what)
{
    struct blocker *b = calloc(1, sizeof *b);
    struct pingpong *pp = calloc(1, sizeof *pp);
    struct figures f;
    int64_t t_spawn;
    b->kind = kind;
    pp->req = chan_make(sizeof(int), 0);
    pp->resp = chan_make(sizeof(int), 0);
    assert_non_null(pp->req);
    assert_non_null(pp->resp);
    assert_int_equal(go_spawn(blocker_body, b), 0);
    assert_true(wait_for_int(&b->started, 1, 5 * GO_S));
    usleep(2000); /* it is inside sleep() or the loop now */
    t_spawn = go_now();
    assert_int_equal(go_spawn(ponger_body, pp), 0);
    assert_int_equal(go_spawn(pinger_body, pp), 0);
    assert_true(wait_for_int(&pp->done, 2, 10 * GO_S));
    assert_true(wait_for_int(&b->done, 1, 10 * GO_S));
    f.first = pp->t_first - t_spawn;
    f.total = pp->t_done - t_spawn;
    print_message("%-34s first run after %7.2f ms, %d round trips done after %7.2f ms "
                  "(blocker ran %.0f ms)\n",
                  what, (double)f.first / 1e6, ROUND_TRIPS, (double)f.total / 1e6,
                  (double)(b->t_end - b->t_start) / 1e6);
    assert_int_equal(pp->errors, 0);
    /* The pair finished while the blocker still held its thread. */
    assert_true(pp->t_done < b->t_end);
    chan_free(pp->req);
    chan_free(pp->resp);
    free(pp);
    free(b);
    return f;
}

static void test_maxprocs_is_one(void **state)
{
    assert_string_equal(getenv("GORT_MAXPROCS"), "1");
    assert_int_equal(go_maxprocs(0), 1);
}

static void test_posix_sleep(void **state)
{
    struct figures f = run_case(BLOCK_SLEEP, "sleep(1):");
    assert_true(f.total < 500 * GO_MS);
}

static void test_spin(void **state)
{
    struct figures f = run_case(BLOCK_SPIN, "1 s computation:");
    assert_true(f.total < 500 * GO_MS);
}

static void test_blocking_announced(void **state)
{
    struct figures f = run_case(BLOCK_SLEEP_ANNOUNCED, "go_blocking_begin; sleep(1):");
    assert_true(f.first < 50 * GO_MS);
    assert_true(f.total < 500 * GO_MS);
}

/* Several blockers at once: each gets its own thread, the pair still runs. */
static void test_several_blockers(void **state)
{
    enum { NB = 4 };
    struct blocker *b = calloc(NB, sizeof *b);
    struct pingpong *pp = calloc(1, sizeof *pp);
    int64_t t_spawn;
    pp->req = chan_make(sizeof(int), 0);
    pp->resp = chan_make(sizeof(int), 0);
    for (int i = 0; i < NB; i++) {
        b[i].kind = i % 2 ? BLOCK_SLEEP : BLOCK_SPIN;
        assert_int_equal(go_spawn(blocker_body, &b[i]), 0);
    }
    for (int i = 0; i < NB; i++)
        assert_true(wait_for_int(&b[i].started, 1, 5 * GO_S));
    t_spawn = go_now();
    assert_int_equal(go_spawn(ponger_body, pp), 0);
    assert_int_equal(go_spawn(pinger_body, pp), 0);
    assert_true(wait_for_int(&pp->done, 2, 10 * GO_S));
    for (int i = 0; i < NB; i++)
        assert_true(wait_for_int(&b[i].done, 1, 10 * GO_S));
    print_message("%d blockers: %d round trips done after %.2f ms\n", NB, ROUND_TRIPS,
                  (double)(pp->t_done - t_spawn) / 1e6);
    assert_int_equal(pp->errors, 0);
    assert_true(pp->t_done - t_spawn < 500 * GO_MS);
    /* All blockers ran concurrently: the last started before the first
       finished. */
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < NB; j++)
            assert_true(b[i].t_start < b[j].t_end);
    chan_free(pp->req);
    chan_free(pp->resp);
    free(pp);
    free(b);
}

/*
 * After the blocked threads return they give their slot back: with
 * GORT_MAXPROCS=1, goroutines that compute in short slices (never long
 * enough for a hand-off) do not run at the same time.
 *
 * One exception is legitimate: if the OS preempts the worker for longer
 * than the monitor's 10 ms threshold (a loaded machine), the monitor hands
 * off, and the preempted slice, which then lasts more than 10 ms, overlaps
 * slices on the new worker.  So only overlaps between two short slices
 * count; two workers running at once would produce hundreds.
 */
#define NSLICERS 4
#define SLICES 200
#define SHORT_SLICE (5 * GO_MS)

static int64_t slice_at[NSLICERS][SLICES][2];
static _Atomic int slicers_done;

static void slicer_body(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < SLICES; i++) {
        slice_at[k][i][0] = go_now();
        spin_for(200 * GO_US);
        slice_at[k][i][1] = go_now();
        go_yield();
    }
    atomic_fetch_add_explicit(&slicers_done, 1, memory_order_release);
}

static void test_slot_given_back(void **state)
{
    int overlaps = 0, stuck_overlaps = 0;
    usleep(50000); /* let the threads of earlier tests return and park */
    for (intptr_t k = 0; k < NSLICERS; k++)
        assert_int_equal(go_spawn(slicer_body, (void *)k), 0);
    assert_true(wait_for_int(&slicers_done, NSLICERS, 20 * GO_S));
    for (int k = 0; k < NSLICERS; k++)
        for (int i = 0; i < SLICES; i++)
            for (int k2 = k + 1; k2 < NSLICERS; k2++)
                for (int j = 0; j < SLICES; j++) {
                    int64_t *a = slice_at[k][i], *b = slice_at[k2][j];
                    if (a[0] >= b[1] || b[0] >= a[1])
                        continue;
                    if (a[1] - a[0] < SHORT_SLICE && b[1] - b[0] < SHORT_SLICE)
                        overlaps++;
                    else
                        stuck_overlaps++;
                }
    print_message("after the hand-offs: %d overlapping short slices, %d overlaps with a "
                  "slice preempted by the OS (of %d slices)\n",
                  overlaps, stuck_overlaps, NSLICERS * SLICES);
    assert_true(overlaps <= 3);
    assert_int_equal(go_maxprocs(0), 1);
}

/* ---- regular files go through the hand-off path ------------------------- */

struct file_io {
    int fd;
    unsigned char *buf;
    size_t n;
    ssize_t r_write, r_read, r_eof;
    int r_wait;
    _Atomic int done;
};

static void file_io_body(void *arg)
{
    struct file_io *f = arg;
    size_t got = 0;
    f->r_write = go_write(f->fd, f->buf, f->n);
    f->r_wait = go_fd_wait(f->fd, GO_READABLE | GO_WRITABLE, GO_FOREVER);
    lseek(f->fd, 0, SEEK_SET);
    memset(f->buf, 0, f->n);
    while (got < f->n) {
        ssize_t r = go_read(f->fd, f->buf + got, 4096 + got % 1000);
        if (r <= 0) {
            f->r_read = r;
            goto out;
        }
        got += (size_t)r;
    }
    f->r_read = (ssize_t)got;
    f->r_eof = go_read(f->fd, f->buf, 1);
out:
    atomic_store_explicit(&f->done, 1, memory_order_release);
}

static void test_regular_file(void **state)
{
    char path[] = "/tmp/gort_handoff_XXXXXX";
    struct file_io *f = calloc(1, sizeof *f);
    unsigned char *expect;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    f->fd = fd;
    f->n = 3u << 20;
    f->buf = malloc(f->n);
    expect = malloc(f->n);
    for (size_t i = 0; i < f->n; i++)
        expect[i] = (unsigned char)(i * 31 + (i >> 12));
    memcpy(f->buf, expect, f->n);
    assert_int_equal(go_spawn(file_io_body, f), 0);
    assert_true(wait_for_int(&f->done, 1, 20 * GO_S));
    assert_int_equal(f->r_write, (ssize_t)f->n);
    assert_int_equal(f->r_wait, 0); /* files are always ready */
    assert_int_equal(f->r_read, (ssize_t)f->n);
    assert_int_equal(f->r_eof, 0);
    assert_memory_equal(f->buf, expect, f->n);
    /* The runtime did not make the file non-blocking behind our back in a
       way that breaks plain reads either. */
    {
        unsigned char b[4];
        assert_int_equal(pread(fd, b, 4, 0), 4);
        assert_memory_equal(b, expect, 4);
    }
    assert_int_equal(go_close(fd), 0);
    free(f->buf);
    free(expect);
    free(f);
}

/* ---- cooperative preemption ----------------------------------------------
 *
 * A goroutine that loops on runtime calls that never park (a mutex
 * lock/unlock, a channel send and receive on a buffer with room) is asked
 * to yield after a few milliseconds and does so at its next call: the
 * goroutine queued behind it runs on the same thread.  Without it, the
 * monitor hands the queue to another thread at 10 ms, and the two run at
 * once beyond GORT_MAXPROCS=1.
 */
struct looper {
    bool use_chan;
    go_mutex_t mu;
    chan_t *ch;
    long counter;
    long tid;
    int64_t t_start, t_end;
    _Atomic int started, done;
    _Atomic int *stop;
};

struct latecomer {
    long tid;
    int64_t t_ran;
    _Atomic int ran;
};

static void looper_body(void *arg)
{
    struct looper *l = arg;
    l->tid = thread_id();
    l->t_start = go_now();
    atomic_store_explicit(&l->started, 1, memory_order_release);
    while (!atomic_load_explicit(l->stop, memory_order_acquire) &&
           go_now() - l->t_start < 2 * GO_S) {
        if (l->use_chan) {
            int v = 1, out = 0;
            chan_send(l->ch, &v);
            chan_recv(l->ch, &out);
            l->counter += out;
        } else {
            go_mutex_lock(&l->mu);
            l->counter++;
            go_mutex_unlock(&l->mu);
        }
    }
    l->t_end = go_now();
    atomic_store_explicit(&l->done, 1, memory_order_release);
}

static void latecomer_body(void *arg)
{
    struct latecomer *c = arg;
    c->tid = thread_id();
    c->t_ran = go_now();
    atomic_store_explicit(&c->ran, 1, memory_order_release);
}

static void preempt_case(bool use_chan)
{
    struct looper *l = calloc(1, sizeof *l);
    struct latecomer *c = calloc(1, sizeof *c);
    int64_t t_spawn;
    l->use_chan = use_chan;
    l->ch = chan_make(sizeof(int), 1);
    l->stop = &c->ran; /* the looper stops once the latecomer has run */
    assert_int_equal(go_spawn(looper_body, l), 0);
    assert_true(wait_for_int(&l->started, 1, 5 * GO_S));
    t_spawn = go_now();
    assert_int_equal(go_spawn(latecomer_body, c), 0);
    assert_true(wait_for_int(&c->ran, 1, 5 * GO_S));
    assert_true(wait_for_int(&l->done, 1, 5 * GO_S));
    print_message("%s loop: the queued goroutine ran after %.2f ms, on the %s thread\n",
                  use_chan ? "channel" : "mutex", (double)(c->t_ran - t_spawn) / 1e6,
                  c->tid == l->tid ? "same" : "another");
    assert_true(l->counter > 0);
    /* Yielded, not handed off: same thread, before the 10 ms hand-off. */
    assert_int_equal(c->tid, l->tid);
    assert_true(c->t_ran - t_spawn < GO_S); /* the looper gives up at 2 s */
    chan_free(l->ch);
    free(l);
    free(c);
}

static void test_preempt_mutex_loop(void **state) { preempt_case(false); }
static void test_preempt_chan_loop(void **state) { preempt_case(true); }

int main(int argc, char **argv)
{
    const char *env = getenv("GORT_MAXPROCS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxprocs_is_one),
        cmocka_unit_test(test_posix_sleep),
        cmocka_unit_test(test_spin),
        cmocka_unit_test(test_blocking_announced),
        cmocka_unit_test(test_several_blockers),
        cmocka_unit_test(test_slot_given_back),
        cmocka_unit_test(test_regular_file),
        cmocka_unit_test(test_preempt_mutex_loop),
        cmocka_unit_test(test_preempt_chan_loop),
    };
    if (!env || strcmp(env, "1") != 0) {
        /* The runtime reads GORT_MAXPROCS once, at its first use: set it
           and start again before anything touches the runtime. */
        setenv("GORT_MAXPROCS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe");
        return 1;
    }
    (void)argc;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
