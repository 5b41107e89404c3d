/* ctest: LABELS unit TIMEOUT 120 */
/*
 * test_sched.c - the scheduler: an idle runtime uses no CPU, a yield loop
 * does not starve goroutines on the global queue, timers or descriptors,
 * a worker blocked in a system call hands its queue off, work stealing
 * spreads goroutines spawned on one P, spawning from many plain threads,
 * and joining with wg_wait from main.
 *
 * Goroutines record, the test thread joins (polling) and asserts.
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

static _Atomic long started, finished, flag_a, flag_b, flag_c;

static void sleeper(void *arg)
{
    atomic_fetch_add(&started, 1);
    go_sleep(60 * GO_S);
}

static void pipe_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&started, 1);
    if (go_read(fd, &c, 1) == 1)
        atomic_fetch_add(&finished, 1);
}

static void yielder_burst(void *arg)
{
    for (int i = 0; i < 2000; i++)
        go_yield();
    atomic_fetch_add(&finished, 1);
}

static long cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* Some work, then 4 goroutines parked (2 sleeping, 2 in go_read on a
   pipe): CPU used by the whole process over 2 s. */
static int child_idle(void)
{
    int p1[2], p2[2];
    long before, after;
    if (pipe(p1) || pipe(p2))
        return 2;
    for (int i = 0; i < 8; i++)
        if (go_spawn(yielder_burst, NULL) != 0)
            return 2;
    if (!wait_for(&finished, 8, 20000))
        return 3;
    atomic_store(&finished, 0);
    if (go_spawn(sleeper, NULL) || go_spawn(sleeper, NULL) ||
        go_spawn(pipe_reader, (void *)(intptr_t)p1[0]) || go_spawn(pipe_reader, (void *)(intptr_t)p2[0]))
        return 2;
    if (!wait_for(&started, 4, 10000))
        return 3;
    usleep(300 * 1000); /* spinning workers give up, the monitor backs off */
    before = cpu_us();
    usleep(2000 * 1000);
    after = cpu_us();
    printf("idle_cpu_us=%ld\nthreads=%d\n", after - before, process_threads());
    fflush(stdout);
    /* The pipe readers are still there, and wake. */
    if (write(p1[1], "x", 1) != 1 || write(p2[1], "y", 1) != 1)
        return 2;
    if (!wait_for(&finished, 2, 10000))
        return 4;
    return 0;
}

static void test_idle_runtime_uses_no_cpu(void **state)
{
    struct child c;
    REQUIRE_FORK();
    run_child(child_idle, NULL, 60, &c);
    if (!exited_with(&c, 0) || child_value(&c, "idle_cpu_us") >= 20000)
        print_child("idle", &c);
    assert_true(exited_with(&c, 0));
    print_message("    4 parked goroutines: %lld us of CPU in 2 s (%lld threads)\n",
                  child_value(&c, "idle_cpu_us"), child_value(&c, "threads"));
    assert_in_range(child_value(&c, "idle_cpu_us"), 0, 19999);
}

/* ---- a yield loop does not starve others (one P) ----------------------------- */

static void spin_yield_until_all(void *arg)
{
    while (!atomic_load(&flag_a) || !atomic_load(&flag_b) || !atomic_load(&flag_c))
        go_yield();
    atomic_fetch_add(&finished, 1);
}

static void set_a(void *arg)
{
    atomic_store(&flag_a, 1);
}

static void set_b_after_sleep(void *arg)
{
    go_sleep(10 * GO_MS);
    atomic_store(&flag_b, 1);
}

static void set_c_after_read(void *arg)
{
    char ch;
    if (go_read((int)(intptr_t)arg, &ch, 1) == 1)
        atomic_store(&flag_c, 1);
}

/* Two yield loops on the P's own queue (spawned from a goroutine) wait for
   a goroutine on the global queue (spawned later from main), a timer and
   a descriptor: the fairness tick, the timer check and the netpoller must
   each get a turn. */
static void spawn_yielders(void *arg)
{
    int fd = (int)(intptr_t)arg;
    go_spawn(spin_yield_until_all, NULL);
    go_spawn(spin_yield_until_all, NULL);
    go_spawn(set_b_after_sleep, NULL);
    go_spawn(set_c_after_read, (void *)(intptr_t)fd);
    atomic_store(&started, 1);
}

static int child_no_starvation(void)
{
    int p[2];
    if (pipe(p))
        return 2;
    if (go_spawn(spawn_yielders, (void *)(intptr_t)p[0]) != 0)
        return 2;
    if (!wait_for(&started, 1, 10000))
        return 3;
    usleep(20 * 1000);
    if (go_spawn(set_a, NULL) != 0)
        return 2;
    usleep(20 * 1000);
    if (write(p[1], "z", 1) != 1)
        return 2;
    if (!wait_for(&finished, 2, 20000)) {
        printf("flag_a=%ld\nflag_b=%ld\nflag_c=%ld\n", atomic_load(&flag_a), atomic_load(&flag_b),
               atomic_load(&flag_c));
        return 4;
    }
    return 0;
}

static void test_yield_loop_does_not_starve(void **state)
{
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    struct child c;
    REQUIRE_FORK();
    run_child(child_no_starvation, env, 40, &c);
    if (!exited_with(&c, 0))
        print_child("yield loops, GORT_MAXPROCS=1", &c);
    assert_true(exited_with(&c, 0));
}

/* ---- a goroutine that blocks its thread hands the others off -------------------- */

static _Atomic int64_t blocked_until, other_ran_at;

static void other(void *arg)
{
    atomic_store(&other_ran_at, mono_ns());
}

static void blocks_thread(void *arg)
{
    go_spawn(other, NULL); /* queued behind us on our P */
    usleep(500 * 1000);    /* a system call the runtime does not see */
    atomic_store(&blocked_until, mono_ns());
    atomic_fetch_add(&finished, 1);
}

static int child_blocked_handoff(void)
{
    int64_t t0 = mono_ns();
    if (go_spawn(blocks_thread, NULL) != 0)
        return 2;
    if (!wait_for(&finished, 1, 20000))
        return 3;
    printf("other_after_ms=%.0f\nblocked_ms=%.0f\n",
           (double)(atomic_load(&other_ran_at) - t0) / 1e6,
           (double)(atomic_load(&blocked_until) - t0) / 1e6);
    return atomic_load(&other_ran_at) != 0 && atomic_load(&other_ran_at) < atomic_load(&blocked_until)
               ? 0
               : 5;
}

/* With one P, a goroutine stuck in a blocking call for 500 ms does not
   hold up the goroutine queued behind it (the monitor's hand-off). */
static void test_blocked_worker_hands_off(void **state)
{
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    struct child c;
    REQUIRE_FORK();
    run_child(child_blocked_handoff, env, 40, &c);
    if (!exited_with(&c, 0))
        print_child("hand-off", &c);
    assert_true(exited_with(&c, 0));
}

/* ---- the thread limit --------------------------------------------------------- */

static void sleeps_one_second(void *arg)
{
    (void)arg;
    sleep(1); /* blocks its thread: the monitor hands its P to a new one */
}

static int child_thread_limit(void)
{
    for (int i = 0; i < 16; i++)
        if (go_spawn(sleeps_one_second, NULL) != 0)
            return 2;
    sleep(5); /* the limit ends the process long before */
    return 3;
}

/* Every blocked goroutine costs a thread; past GORT_MAXTHREADS the
   program stops with a clear message instead of exhausting the system
   (Go: "program exceeds 10000-thread limit"). */
static void test_thread_limit(void **state)
{
    static const char *const env[] = {"GORT_MAXPROCS=1", "GORT_MAXTHREADS=4", NULL};
    struct child c;
    REQUIRE_FORK();
    run_child(child_thread_limit, env, 40, &c);
    if (!died_of(&c, SIGABRT) || !strstr(c.err, "exceeds 4-thread limit (GORT_MAXTHREADS)"))
        print_child("thread limit", &c);
    assert_true(died_of(&c, SIGABRT));
    assert_non_null(strstr(c.err, "exceeds 4-thread limit (GORT_MAXTHREADS)"));
}

/* ==== in-process tests ===================================================== */

/* ---- work stealing ------------------------------------------------------------ */

#define STEAL_N 64
static _Atomic long steal_tids[STEAL_N];
static _Atomic long steal_done;

static void busy_2ms(void *arg)
{
    int64_t end = mono_ns() + 2 * 1000000;
    atomic_store(&steal_tids[(intptr_t)arg], thread_id());
    while (mono_ns() < end)
        ;
    atomic_fetch_add(&steal_done, 1);
}

static void spawn_all_here(void *arg)
{
    /* All into this P's own queue: only stealing moves them. */
    for (intptr_t i = 0; i < STEAL_N; i++)
        go_spawn(busy_2ms, (void *)i);
}

static void test_work_stealing(void **state)
{
    int old = go_maxprocs(2);
    size_t base = go_num_goroutines();
    long tids[STEAL_N];
    int distinct = 0;
    atomic_store(&steal_done, 0);
    assert_int_equal(go_spawn(spawn_all_here, NULL), 0);
    assert_true(wait_for(&steal_done, STEAL_N, 30000));
    assert_true(wait_goroutines(base, 10000));
    go_maxprocs(old);
    for (int i = 0; i < STEAL_N; i++) {
        long t = atomic_load(&steal_tids[i]);
        bool seen = false;
        for (int k = 0; k < distinct; k++)
            seen |= tids[k] == t;
        if (!seen)
            tids[distinct++] = t;
    }
    print_message("    %d goroutines spawned on one P ran on %d threads\n", STEAL_N, distinct);
    assert_true(distinct >= 2);
}

/* ---- spawning from several plain threads --------------------------------------- */

#define SPAWN_THREADS 4
#define SPAWN_EACH TSAN_OR(1000, 25000)
static uint64_t spawned_ids[SPAWN_THREADS * SPAWN_EACH];
static _Atomic long spawned_ran;

static void record_id(void *arg)
{
    spawned_ids[(uintptr_t)arg] = go_id();
    atomic_fetch_add(&spawned_ran, 1);
}

static void *spawner_thread(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    long failed = 0;
    for (uintptr_t i = 0; i < SPAWN_EACH; i++)
        if (go_spawn(record_id, (void *)(t * SPAWN_EACH + i)) != 0)
            failed++;
    return (void *)failed;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_spawn_from_plain_threads(void **state)
{
    pthread_t th[SPAWN_THREADS];
    size_t base = go_num_goroutines();
    long failed = 0;
    atomic_store(&spawned_ran, 0);
    for (uintptr_t t = 0; t < SPAWN_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, spawner_thread, (void *)t), 0);
    for (int t = 0; t < SPAWN_THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        failed += (long)(intptr_t)r;
    }
    assert_int_equal(failed, 0);
    assert_true(wait_for(&spawned_ran, SPAWN_THREADS * SPAWN_EACH, 30000));
    assert_true(wait_goroutines(base, 10000));
    qsort(spawned_ids, SPAWN_THREADS * SPAWN_EACH, sizeof spawned_ids[0], cmp_u64);
    assert_true(spawned_ids[0] >= 1);
    for (int i = 1; i < SPAWN_THREADS * SPAWN_EACH; i++)
        if (spawned_ids[i] == spawned_ids[i - 1])
            fail_msg("id %" PRIu64 " given twice", spawned_ids[i]);
}

/* ---- joining with wg_wait from main ---------------------------------------------- */

static wg_t join_wg;
static _Atomic long join_ran;

static void wg_body(void *arg)
{
    if ((uintptr_t)arg % 3 == 0)
        go_sleep(GO_MS);
    else
        go_yield();
    atomic_fetch_add(&join_ran, 1);
    wg_done(&join_wg);
}

/* main spawns workers and wg_waits for them (API.md: blocking calls work
   on plain threads); every worker has finished when it returns. */
static void test_wg_join_from_main(void **state)
{
    for (int round = 0; round < 5; round++) {
        atomic_store(&join_ran, 0);
        wg_add(&join_wg, 1000);
        for (uintptr_t i = 0; i < 1000; i++)
            assert_int_equal(go_spawn(wg_body, (void *)i), 0);
        wg_wait(&join_wg);
        assert_int_equal(atomic_load(&join_ran), 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* Child scenarios first: they need a process without the runtime. */
        cmocka_unit_test(test_idle_runtime_uses_no_cpu),
        cmocka_unit_test(test_yield_loop_does_not_starve),
        cmocka_unit_test(test_blocked_worker_hands_off),
        cmocka_unit_test(test_thread_limit),
        cmocka_unit_test(test_work_stealing),
        cmocka_unit_test(test_spawn_from_plain_threads),
        cmocka_unit_test(test_wg_join_from_main),
    };
    base_threads = process_threads();
    if (getenv("GORT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GORT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
