/* ctest: LABELS unit TIMEOUT 180 */
/*
 * test_goroutine.c - goroutines: spawn and join at scale, ids, counts,
 * deferred calls, go_exit, go_panic, errno across migrations,
 * go_lock_os_thread, go_maxprocs and GORT_MAXPROCS.
 *
 * Never assert on a goroutine's stack (cmocka longjmps): goroutines record
 * into globals, the test thread joins by polling an atomic counter (or
 * go_num_goroutines) and asserts.  Scenarios that end the process, or need
 * an environment variable before the runtime starts, run in a forked child.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <gort.h>

#include "test_util.h"

/* ==== child scenarios (run first, before this process starts the runtime) */

static int child_go_exit_on_main(void)
{
    go_exit();
}

static void panicker(void *arg)
{
    (void)arg;
    printf("id=%" PRIu64 "\n", go_id());
    fflush(stdout);
    go_panic("boom %d and %s", 42, "more");
}

static int child_panic_in_goroutine(void)
{
    if (go_spawn(panicker, NULL) != 0)
        return 3;
    for (;;)
        pause();
}

static int child_panic_on_main(void)
{
    go_panic("plain %s", "thread");
}

static int cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

/*
 * How many goroutines run at once.  Goroutines busy-loop 50 us, then
 * yield.  With n Ps at most n run at once, except that API.md lets the
 * monitor stop counting a worker that has not come back to the scheduler
 * for its threshold (10 ms) and start another: which happens when the
 * kernel deschedules a worker on a loaded machine.  So every busy loop
 * also stamps a global progress clock, and a run in which progress stalled
 * for 2 ms or more is not evidence either way (it is retried).
 */
static _Atomic long conc_active, conc_max, conc_done, conc_stalls;
static _Atomic int64_t conc_progress;

static void busy_for(int64_t ns)
{
    int64_t end = mono_ns() + ns, t;
    do {
        t = mono_ns();
        int64_t last = atomic_exchange(&conc_progress, t);
        if (last && t - last > 2 * 1000000) {
            atomic_fetch_add(&conc_stalls, 1);
        }
    } while (t < end);
}

static void conc_body(void *arg)
{
    int rounds = (int)(intptr_t)arg;
    for (int i = 0; i < rounds; i++) {
        long n = atomic_fetch_add(&conc_active, 1) + 1;
        long m = atomic_load(&conc_max);
        while (n > m && !atomic_compare_exchange_weak(&conc_max, &m, n))
            ;
        busy_for(50 * 1000);
        atomic_fetch_sub(&conc_active, 1);
        go_yield();
    }
    atomic_fetch_add(&conc_done, 1);
}

/* n goroutines, each `rounds` times: busy 50 us, yield.  Returns the most
   that ran at once; *stalled: progress stopped for 2 ms or more. */
static long run_concurrency(int n, int rounds, bool *stalled)
{
    atomic_store(&conc_active, 0);
    atomic_store(&conc_max, 0);
    atomic_store(&conc_done, 0);
    atomic_store(&conc_stalls, 0);
    atomic_store(&conc_progress, 0);
    for (int i = 0; i < n; i++)
        if (go_spawn(conc_body, (void *)(intptr_t)rounds) != 0)
            return -1;
    if (!wait_for(&conc_done, n, 30000))
        return -2;
    *stalled = atomic_load(&conc_stalls) != 0;
    return atomic_load(&conc_max);
}

/* The concurrency of the first run without a stall (0: every run stalled;
   negative: the work did not complete). */
static long measure_concurrency(void)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        bool stalled = false;
        long c = run_concurrency(16, 20, &stalled);
        if (c < 0 || !stalled)
            return c;
    }
    return 0;
}

static int child_report_maxprocs(void)
{
    int procs = go_maxprocs(0);
    long conc = measure_concurrency();
    printf("maxprocs=%d\nconcurrency=%ld\n", procs, conc);
    return 0;
}

static void test_go_exit_on_plain_thread_panics(void **state)
{
    struct child c;
    REQUIRE_FORK();
    run_child(child_go_exit_on_main, NULL, 20, &c);
    if (!died_of(&c, SIGABRT) || strncmp(c.err, "panic: ", 7) != 0 ||
        !strstr(c.err, "\ngoroutine 0 [running]:\n"))
        print_child("go_exit on main", &c);
    assert_true(died_of(&c, SIGABRT));
    assert_true(strncmp(c.err, "panic: ", 7) == 0);
    assert_non_null(strstr(c.err, "\ngoroutine 0 [running]:\n"));
}

static void test_go_panic_format_goroutine(void **state)
{
    struct child c;
    char want[64];
    long long id;
    const char *msg, *gline;
    REQUIRE_FORK();
    run_child(child_panic_in_goroutine, NULL, 20, &c);
    id = child_value(&c, "id");
    snprintf(want, sizeof want, "\ngoroutine %lld [running]:\n", id);
    msg = strstr(c.err, "panic: boom 42 and more\n");
    gline = strstr(c.err, want);
    if (!died_of(&c, SIGABRT) || id < 1 || msg != c.err || !gline)
        print_child("go_panic in a goroutine", &c);
    assert_true(died_of(&c, SIGABRT));
    assert_true(id >= 1);
    /* The message is the first thing on stderr, then the goroutine line. */
    assert_ptr_equal(msg, c.err);
    assert_non_null(gline);
    assert_true(gline > msg);
}

static void test_go_panic_format_plain_thread(void **state)
{
    struct child c;
    REQUIRE_FORK();
    run_child(child_panic_on_main, NULL, 20, &c);
    if (!died_of(&c, SIGABRT) || strncmp(c.err, "panic: plain thread\n", 20) != 0)
        print_child("go_panic on main", &c);
    assert_true(died_of(&c, SIGABRT));
    assert_true(strncmp(c.err, "panic: plain thread\n", 20) == 0);
    assert_non_null(strstr(c.err, "\ngoroutine 0 [running]:\n"));
}


static void test_gort_maxprocs_env(void **state)
{
    static const char *const one[] = {"GORT_MAXPROCS=1", NULL};
    static const char *const three[] = {"GORT_MAXPROCS=3", NULL};
    static const char *const bad[] = {"GORT_MAXPROCS=abc", NULL};
    static const char *const unset[] = {"GORT_MAXPROCS", NULL};
    struct child c;
    REQUIRE_FORK();

    run_child(child_report_maxprocs, one, 40, &c);
    if (!exited_with(&c, 0) || child_value(&c, "maxprocs") != 1 || child_value(&c, "concurrency") > 1)
        print_child("GORT_MAXPROCS=1", &c);
    assert_true(exited_with(&c, 0));
    assert_int_equal(child_value(&c, "maxprocs"), 1);
    /* One P: never two goroutines running at once (0: the machine was too
       loaded to tell; see measure_concurrency). */
    assert_in_range(child_value(&c, "concurrency"), 0, 1);

    run_child(child_report_maxprocs, three, 40, &c);
    if (!exited_with(&c, 0) || child_value(&c, "maxprocs") != 3)
        print_child("GORT_MAXPROCS=3", &c);
    assert_true(exited_with(&c, 0));
    assert_int_equal(child_value(&c, "maxprocs"), 3);
    assert_true(child_value(&c, "concurrency") >= 0);
    if (cpus_allowed() >= 3)
        assert_in_range(child_value(&c, "concurrency"), 0, 3);

    run_child(child_report_maxprocs, unset, 40, &c);
    assert_true(exited_with(&c, 0));
    assert_int_equal(child_value(&c, "maxprocs"), cpus_allowed());

    /* Not a number: ignored with a message naming the variable. */
    run_child(child_report_maxprocs, bad, 40, &c);
    if (!exited_with(&c, 0) || !strstr(c.err, "GORT_MAXPROCS"))
        print_child("GORT_MAXPROCS=abc", &c);
    assert_true(exited_with(&c, 0));
    assert_int_equal(child_value(&c, "maxprocs"), cpus_allowed());
    assert_non_null(strstr(c.err, "GORT_MAXPROCS"));
}

/* ==== in-process tests ==================================================== */

static void *plain_thread_checks(void *arg)
{
    int *r = arg;
    r[0] = (int)go_id();
    r[1] = go_defer(NULL, NULL) == -EPERM && go_defer(free, NULL) == -EPERM;
    go_lock_os_thread();   /* no-ops on a plain thread */
    go_lock_os_thread();
    go_unlock_os_thread();
    go_unlock_os_thread();
    go_unlock_os_thread(); /* one too many: still nothing */
    r[2] = 1;
    return NULL;
}

/* go_id is 0 and go_defer is -EPERM on main and on another plain thread;
   lock/unlock do nothing there. */
static void test_plain_thread_basics(void **state)
{
    int r[3] = {-1, -1, -1};
    pthread_t t;
    assert_int_equal(go_id(), 0);
    assert_int_equal(go_defer(free, NULL), -EPERM);
    assert_int_equal(pthread_create(&t, NULL, plain_thread_checks, r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[1], 1);
    assert_int_equal(r[2], 1);
    go_lock_os_thread();
    go_unlock_os_thread();
    assert_int_equal(go_id(), 0);
}

/* ---- a million goroutines ------------------------------------------------ */

#define MILLION TSAN_OR(20000, 1000000)
static _Atomic long million_done;
static unsigned char *million_ran;

static void million_body(void *arg)
{
    million_ran[(uintptr_t)arg]++;
    atomic_fetch_add_explicit(&million_done, 1, memory_order_release);
}

/* 1,000,000 goroutines spawned from main all run, each exactly once. */
static void test_spawn_million(void **state)
{
    size_t base = go_num_goroutines();
    int64_t t0 = mono_ns(), t1;
    long failed = 0;
    million_ran = calloc(MILLION, 1);
    assert_non_null(million_ran);
    atomic_store(&million_done, 0);
    for (uintptr_t i = 0; i < MILLION; i++)
        if (go_spawn(million_body, (void *)i) != 0)
            failed++;
    assert_int_equal(failed, 0);
    assert_true(wait_for(&million_done, MILLION, 50000));
    t1 = mono_ns();
    assert_true(wait_goroutines(base, 10000));
    for (size_t i = 0; i < MILLION; i++)
        if (million_ran[i] != 1)
            failed++;
    free(million_ran);
    assert_int_equal(failed, 0);
    print_message("    %d spawned and joined in %.0f ms (%.0f ns each)\n", MILLION,
                  (double)(t1 - t0) / 1e6, (double)(t1 - t0) / MILLION);
}

/* ---- go_id ----------------------------------------------------------------- */

#define ID_TOP TSAN_OR(200, 1000)
#define ID_SUB 20
#define ID_TOTAL (ID_TOP * (1 + ID_SUB))
static uint64_t ids[ID_TOTAL];
static _Atomic long ids_n, ids_unstable, ids_spawn_failed;

static void id_leaf(void *arg)
{
    uint64_t id = go_id();
    go_yield();
    if (go_id() != id)
        atomic_fetch_add(&ids_unstable, 1);
    ids[atomic_fetch_add(&ids_n, 1)] = id;
}

static void id_top(void *arg)
{
    for (int i = 0; i < ID_SUB; i++)
        if (go_spawn(id_leaf, NULL) != 0)
            atomic_fetch_add(&ids_spawn_failed, 1);
    id_leaf(arg);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Ids of goroutines spawned from main (global counter) and from goroutines
   (per-P batches) are all >= 1 and distinct, and stay put across a yield. */
static void test_ids_unique(void **state)
{
    size_t base = go_num_goroutines();
    atomic_store(&ids_n, 0);
    for (int i = 0; i < ID_TOP; i++)
        assert_int_equal(go_spawn(id_top, NULL), 0);
    assert_true(wait_for(&ids_n, ID_TOTAL, 20000));
    assert_true(wait_goroutines(base, 10000));
    assert_int_equal(atomic_load(&ids_spawn_failed), 0);
    assert_int_equal(atomic_load(&ids_unstable), 0);
    qsort(ids, ID_TOTAL, sizeof ids[0], cmp_u64);
    assert_true(ids[0] >= 1);
    for (int i = 1; i < ID_TOTAL; i++)
        if (ids[i] == ids[i - 1])
            fail_msg("goroutine id %" PRIu64 " given twice", ids[i]);
    assert_int_equal(go_id(), 0);
}

/* ---- go_num_goroutines ------------------------------------------------------ */

static _Atomic long held_started, held_release, held_children;

static void held_body(void *arg)
{
    atomic_fetch_add(&held_started, 1);
    while (!atomic_load(&held_release))
        go_sleep(GO_MS);
}

static void held_spawner(void *arg)
{
    for (int i = 0; i < 50; i++)
        if (go_spawn(held_body, NULL) == 0)
            atomic_fetch_add(&held_children, 1);
    held_body(arg);
}

static _Atomic long in_defer, defer_release;

static void slow_defer(void *arg)
{
    atomic_store(&in_defer, 1);
    while (!atomic_load(&defer_release))
        go_sleep(GO_MS);
}

static void returns_with_slow_defer(void *arg)
{
    go_defer(slow_defer, NULL);
}

/* Exact counts while goroutines are parked: from main, from goroutines,
   and a goroutine counts until its deferred calls are done. */
static void test_num_goroutines_exact(void **state)
{
    size_t base = go_num_goroutines();
    atomic_store(&held_started, 0);
    atomic_store(&held_release, 0);
    atomic_store(&held_children, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(go_spawn(held_body, NULL), 0);
    /* Counted from the moment go_spawn returns, started or not. */
    assert_true(go_num_goroutines() >= base + 100);
    for (int i = 0; i < 4; i++)
        assert_int_equal(go_spawn(held_spawner, NULL), 0);
    assert_true(wait_for(&held_started, 100 + 4 + 4 * 50, 10000));
    assert_int_equal(atomic_load(&held_children), 200);
    assert_int_equal(go_num_goroutines(), base + 304);
    usleep(20 * 1000);
    assert_int_equal(go_num_goroutines(), base + 304);
    atomic_store(&held_release, 1);
    assert_true(wait_goroutines(base, 10000));
    assert_int_equal(go_num_goroutines(), base);

    atomic_store(&in_defer, 0);
    atomic_store(&defer_release, 0);
    assert_int_equal(go_spawn(returns_with_slow_defer, NULL), 0);
    assert_true(wait_for(&in_defer, 1, 10000));
    assert_int_equal(go_num_goroutines(), base + 1);
    atomic_store(&defer_release, 1);
    assert_true(wait_goroutines(base, 10000));
}

/* ---- go_defer ------------------------------------------------------------------ */

static int dlog[16];
static _Atomic int dlog_n;
static _Atomic long defer_done, after_exit_ran, body_end_seen, defer_rc_bad;

static void rec(void *arg)
{
    dlog[atomic_fetch_add(&dlog_n, 1)] = (int)(intptr_t)arg;
    atomic_fetch_add(&defer_done, 1);
}

static void defers_more(void *arg)
{
    /* A deferred call that defers another: it runs next, before the
       older deferred calls. */
    if (go_defer(rec, (void *)(intptr_t)99) != 0)
        atomic_fetch_add(&defer_rc_bad, 1);
    rec(arg);
}

static void defer_at_return(void *arg)
{
    if (go_defer(rec, (void *)1) || go_defer(rec, (void *)2) || go_defer(defers_more, (void *)3) ||
        go_defer(rec, (void *)4))
        atomic_fetch_add(&defer_rc_bad, 1);
    atomic_store(&body_end_seen, atomic_load(&dlog_n)); /* nothing ran yet */
}

static volatile int exit_armed = 1;

static void exit_from_depth(int depth)
{
    if (depth == 0 && exit_armed) {
        go_defer(rec, (void *)3);
        go_exit();
    }
    if (depth > 0)
        exit_from_depth(depth - 1);
    atomic_store(&after_exit_ran, 1);
}

static void defer_at_go_exit(void *arg)
{
    go_defer(rec, (void *)1);
    go_defer(rec, (void *)2);
    exit_from_depth(5);
    atomic_store(&after_exit_ran, 1);
}

static void test_defer_lifo(void **state)
{
    size_t base = go_num_goroutines();

    atomic_store(&dlog_n, 0);
    atomic_store(&defer_done, 0);
    atomic_store(&body_end_seen, -1);
    assert_int_equal(go_spawn(defer_at_return, NULL), 0);
    assert_true(wait_for(&defer_done, 5, 10000));
    assert_true(wait_goroutines(base, 10000));
    assert_int_equal(atomic_load(&defer_rc_bad), 0);
    assert_int_equal(atomic_load(&body_end_seen), 0);
    assert_int_equal(atomic_load(&dlog_n), 5);
    assert_int_equal(dlog[0], 4);
    assert_int_equal(dlog[1], 3);
    assert_int_equal(dlog[2], 99);
    assert_int_equal(dlog[3], 2);
    assert_int_equal(dlog[4], 1);

    atomic_store(&dlog_n, 0);
    atomic_store(&defer_done, 0);
    atomic_store(&after_exit_ran, 0);
    assert_int_equal(go_spawn(defer_at_go_exit, NULL), 0);
    assert_true(wait_for(&defer_done, 3, 10000));
    assert_true(wait_goroutines(base, 10000));
    usleep(10 * 1000);
    assert_int_equal(atomic_load(&dlog_n), 3);
    assert_int_equal(dlog[0], 3);
    assert_int_equal(dlog[1], 2);
    assert_int_equal(dlog[2], 1);
    assert_int_equal(atomic_load(&after_exit_ran), 0);
}

/* ---- errno across switches and migrations ---------------------------------------- */

/*
 * Why the helpers: glibc declares __errno_location (and pthread_self)
 * `const`, so at -O2 gcc and clang compute &errno once per function and
 * reuse it after a call that switched threads; a direct `errno` read after
 * go_yield in the same function can read the previous thread's slot.  The
 * runtime's promise is about the goroutine's errno as the current thread
 * sees it, so the checks read it through a function that is not inlined
 * and has a side effect (no value can be carried across calls to it).
 */
__attribute__((noinline)) static int errno_now(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}

__attribute__((noinline)) static void errno_set(int v)
{
    __asm__ __volatile__("" ::: "memory");
    errno = v;
}

#define ERRNO_G 8
#define ERRNO_ROUNDS 10000
#define MAX_SEEN 16

struct errno_g {
    int idx;
    long bad;            /* checks that found another value */
    int first_bad;
    int nthreads;        /* distinct threads seen */
    long threads[MAX_SEEN];
};
static struct errno_g errno_gs[ERRNO_G];
static _Atomic long errno_done;

static void note_thread(struct errno_g *e, long tid)
{
    for (int i = 0; i < e->nthreads; i++)
        if (e->threads[i] == tid)
            return;
    if (e->nthreads < MAX_SEEN)
        e->threads[e->nthreads++] = tid;
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O2")))
#endif
static void errno_body(void *arg)
{
    struct errno_g *e = arg;
    const int mine = 1000 + e->idx;
    errno_set(mine);
    note_thread(e, thread_id());
    for (int i = 0; i < ERRNO_ROUNDS; i++) {
        /* Mostly yields; a few sleeps, whose wake-ups land on whichever
           worker runs the timer, so goroutines move between threads. */
        if (i % 64 == e->idx)
            go_sleep(20 * GO_US);
        else
            go_yield();
        int now = errno_now();
        if (now != mine) {
            if (e->bad++ == 0)
                e->first_bad = now;
            errno_set(mine);
        }
        note_thread(e, thread_id());
    }
    atomic_fetch_add(&errno_done, 1);
}

/* Goroutines on 2+ workers keep their own errno across 10,000 switches
   each, while moving between threads. */
static void test_errno_per_goroutine(void **state)
{
    int old = go_maxprocs(0);
    long bad = 0;
    int moved = 0, max_threads = 0;
    if (old < 2)
        go_maxprocs(2);
    memset(errno_gs, 0, sizeof errno_gs);
    atomic_store(&errno_done, 0);
    errno = 77;
    for (int i = 0; i < ERRNO_G; i++) {
        errno_gs[i].idx = i;
        assert_int_equal(go_spawn(errno_body, &errno_gs[i]), 0);
    }
    assert_true(wait_for(&errno_done, ERRNO_G, 50000));
    assert_int_equal(errno, 77); /* main's own, untouched */
    if (old < 2)
        go_maxprocs(old);
    for (int i = 0; i < ERRNO_G; i++) {
        bad += errno_gs[i].bad;
        if (errno_gs[i].bad)
            fprintf(stderr, "goroutine %d: %ld wrong errno values (first %d, want %d)\n", i,
                    errno_gs[i].bad, errno_gs[i].first_bad, 1000 + i);
        if (errno_gs[i].nthreads >= 2)
            moved++;
        if (errno_gs[i].nthreads > max_threads)
            max_threads = errno_gs[i].nthreads;
    }
    print_message("    %d of %d goroutines ran on 2+ threads (at most %d)\n", moved, ERRNO_G,
                  max_threads);
    assert_int_equal(bad, 0);
    /* Otherwise the test proved nothing about migration. */
    assert_true(moved >= 1);
}

/* ---- go_lock_os_thread ---------------------------------------------------------- */

static _Atomic long lock_done, lock_moved, lock_other_done, lock_stop;

static void churn(void *arg)
{
    while (!atomic_load(&lock_stop)) {
        go_yield();
        if ((uintptr_t)arg & 1)
            go_sleep(10 * GO_US);
    }
    atomic_fetch_add(&lock_other_done, 1);
}

static void locked_body(void *arg)
{
    long t0;
    go_lock_os_thread();
    go_lock_os_thread(); /* nests */
    t0 = thread_id();
    for (int i = 0; i < 1000; i++) {
        if (i % 100 == 0)
            go_sleep(50 * GO_US);
        else
            go_yield();
        if (thread_id() != t0)
            atomic_fetch_add(&lock_moved, 1);
    }
    go_unlock_os_thread(); /* still locked once */
    for (int i = 0; i < 1000; i++) {
        go_yield();
        if (thread_id() != t0)
            atomic_fetch_add(&lock_moved, 1);
    }
    go_unlock_os_thread();
    /* Free again: just make sure it still runs (it may move now). */
    for (int i = 0; i < 200; i++)
        go_yield();
    atomic_fetch_add(&lock_done, 1);
}

/* A locked goroutine stays on its thread across 2,000 yields and parks,
   through a nested lock, while others churn on every worker. */
static void test_lock_os_thread(void **state)
{
    size_t base = go_num_goroutines();
    int old = go_maxprocs(0);
    if (old < 2)
        go_maxprocs(2);
    atomic_store(&lock_done, 0);
    atomic_store(&lock_moved, 0);
    atomic_store(&lock_stop, 0);
    atomic_store(&lock_other_done, 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(go_spawn(churn, (void *)(uintptr_t)i), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(go_spawn(locked_body, NULL), 0);
    assert_true(wait_for(&lock_done, 3, 50000));
    atomic_store(&lock_stop, 1);
    assert_true(wait_for(&lock_other_done, 6, 10000));
    assert_true(wait_goroutines(base, 10000));
    if (old < 2)
        go_maxprocs(old);
    assert_int_equal(atomic_load(&lock_moved), 0);
}

/* ---- exiting while locked ---------------------------------------------------------- */

static _Atomic long exit_tid, exit_done;

static void lock_and_return(void *arg)
{
    go_lock_os_thread();
    if (arg)
        go_lock_os_thread();
    go_yield();
    atomic_store(&exit_tid, thread_id());
}

static void lock_and_go_exit(void *arg)
{
    go_lock_os_thread();
    go_defer(rec, (void *)7);
    atomic_store(&exit_tid, thread_id());
    go_exit();
}

static bool thread_exists(long tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld", tid);
    return access(path, F_OK) == 0;
}

static void count_body(void *arg)
{
    go_yield();
    atomic_fetch_add(&exit_done, 1);
}

/* A goroutine that ends while locked takes its thread with it, and the
   runtime keeps working afterwards. */
static void test_exit_while_locked(void **state)
{
    size_t base = go_num_goroutines();
    int procs = go_maxprocs(0);
    void (*const bodies[])(void *) = {lock_and_return, lock_and_return, lock_and_go_exit};
    void *args[] = {NULL, (void *)1, NULL};
    for (int k = 0; k < 6; k++) {
        int64_t deadline;
        long tid;
        atomic_store(&exit_tid, 0);
        atomic_store(&dlog_n, 0);
        assert_int_equal(go_spawn(bodies[k % 3], args[k % 3]), 0);
        assert_true(wait_goroutines(base, 10000));
        tid = atomic_load(&exit_tid);
        assert_true(tid > 0);
        deadline = mono_ns() + 2 * (int64_t)1000000000;
        while (thread_exists(tid) && mono_ns() < deadline)
            usleep(1000);
        assert_false(thread_exists(tid));
    }
    /* Work still runs, on as many workers as before. */
    atomic_store(&exit_done, 0);
    for (int i = 0; i < TSAN_OR(2000, 10000); i++)
        assert_int_equal(go_spawn(count_body, NULL), 0);
    assert_true(wait_for(&exit_done, TSAN_OR(2000, 10000), 20000));
    assert_true(wait_goroutines(base, 10000));
    assert_int_equal(go_maxprocs(0), procs);
}

/* ---- go_maxprocs at run time ---------------------------------------------------------- */

/*
 * At most n goroutines run at once with n Ps (see measure_concurrency).
 * With more Ps than CPUs the kernel time-slices the workers and may stall
 * one past the monitor's threshold while the others progress, which the
 * progress clock cannot see: then only completion is checked.
 */
static void check_concurrency(int n)
{
    long c = measure_concurrency();
    if (c == 0)
        print_message("    (machine too loaded to check concurrency at %d Ps)\n", n);
    assert_true(c >= 0);
    if (n <= cpus_allowed())
        assert_in_range(c, 0, n);
}

static void test_maxprocs_runtime(void **state)
{
    int orig = go_maxprocs(0);
    size_t base = go_num_goroutines();
    assert_true(orig >= 1);
    assert_int_equal(go_maxprocs(-3), orig); /* n < 1 only queries */
    assert_int_equal(go_maxprocs(0), orig);

    assert_int_equal(go_maxprocs(4), orig);
    assert_int_equal(go_maxprocs(0), 4);
    check_concurrency(4);

    assert_int_equal(go_maxprocs(1), 4);
    assert_int_equal(go_maxprocs(0), 1);
    /* One P: one goroutine running at a time. */
    check_concurrency(1);

    assert_int_equal(go_maxprocs(3), 1);
    assert_int_equal(go_maxprocs(0), 3);
    check_concurrency(3);

    /* Change it back and forth while work is running: all of it finishes. */
    atomic_store(&conc_done, 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(go_spawn(conc_body, (void *)(intptr_t)40), 0);
    for (int k = 0; k < 20 && atomic_load(&conc_done) < 64; k++) {
        go_maxprocs(1 + k % 4);
        usleep(2000);
    }
    assert_true(wait_for(&conc_done, 64, 30000));
    assert_true(wait_goroutines(base, 10000));

    go_maxprocs(orig);
    assert_int_equal(go_maxprocs(0), orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* Child scenarios first: they need a process without the runtime. */
        cmocka_unit_test(test_go_exit_on_plain_thread_panics),
        cmocka_unit_test(test_go_panic_format_goroutine),
        cmocka_unit_test(test_go_panic_format_plain_thread),
        cmocka_unit_test(test_gort_maxprocs_env),
        cmocka_unit_test(test_plain_thread_basics),
        cmocka_unit_test(test_spawn_million),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test(test_num_goroutines_exact),
        cmocka_unit_test(test_defer_lifo),
        cmocka_unit_test(test_errno_per_goroutine),
        cmocka_unit_test(test_lock_os_thread),
        cmocka_unit_test(test_exit_while_locked),
        cmocka_unit_test(test_maxprocs_runtime),
    };
    base_threads = process_threads();
    if (getenv("GORT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GORT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
