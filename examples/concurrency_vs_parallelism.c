/*
 * concurrency_vs_parallelism.c - the same four CPU-bound goroutines, run on
 * one worker thread and then on two.
 *
 *     GORT_MAXPROCS=1 ./concurrency_vs_parallelism
 *     GORT_MAXPROCS=2 ./concurrency_vs_parallelism
 *     GORT_MAXPROCS=1 ./concurrency_vs_parallelism --locked
 *
 * Concurrency is how the program is structured: four independent tasks
 * that all make progress.  Parallelism is how it is executed: how many of
 * them run at the same instant.  With one worker the four goroutines take
 * turns on one thread (each calls go_yield between slices of work), so they
 * all finish at about the same time, at the end, and the CPU time equals
 * the wall time.  With two workers (and two CPUs) two run at once: the wall
 * time halves, the CPU time stays the same.  The program is unchanged.
 *
 * Each goroutine also notes the thread it runs on after every yield.  A
 * goroutine is not tied to a thread: a worker that runs out of goroutines
 * steals from another, so with two workers a goroutine may resume on a
 * different thread after any call that parks or yields.  Anything
 * thread-local it read before (its own __thread variables, errno's
 * address, a library's per-thread state) may then be another thread's.
 * With --locked, each goroutine first calls go_lock_os_thread(): it then
 * always runs on its own thread, and one worker slot is passed from locked
 * thread to locked thread.  More threads, still no parallelism.
 *
 * Why the go_yield: goroutines are scheduled cooperatively.  A goroutine
 * that computes for more than about 10 ms without returning to the
 * scheduler is treated as stuck (like one blocked in a system call), and
 * the other goroutines of its worker are moved to another thread.  Yielding
 * every slice keeps the demonstration about GORT_MAXPROCS.
 *
 * Usage: concurrency_vs_parallelism [--locked] [LIMIT]
 * counts the primes below LIMIT (default 2000000), one quarter each.
 */
#define _GNU_SOURCE /* gettid */
#include <gort.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NGOROUTINES 4
#define SLICE 2000  /* numbers tested between two go_yield calls */
#define MAXTIDS 64

struct task {
    int id;
    bool locked;
    long from, to; /* count the primes in [from, to) */
    long primes;
    int64_t finished; /* ns since the start */
    pid_t tids[MAXTIDS]; /* threads this goroutine ran on */
    int ntids;
    int moves;           /* times it resumed on another thread */
    wg_t *wg;
};

static int64_t start;

static bool is_prime(long n)
{
    if (n < 2)
        return false;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static void note_thread(struct task *t, pid_t tid)
{
    for (int i = 0; i < t->ntids; i++)
        if (t->tids[i] == tid)
            return;
    if (t->ntids < MAXTIDS)
        t->tids[t->ntids++] = tid;
}

static void count_primes(void *arg)
{
    struct task *t = arg;

    if (t->locked)
        go_lock_os_thread(); /* from here on, always this thread */
    pid_t tid = gettid();
    note_thread(t, tid);
    for (long n = t->from; n < t->to; n++) {
        t->primes += is_prime(n);
        if ((n - t->from) % SLICE == SLICE - 1) {
            go_yield(); /* let the other goroutines have the worker */
            /* Ask again: after the yield this may be another thread. */
            pid_t now = gettid();
            t->moves += now != tid;
            tid = now;
            note_thread(t, tid);
        }
    }
    t->finished = go_now() - start;
    if (t->locked)
        go_unlock_os_thread();
    wg_done(t->wg);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    bool locked = false;
    long limit = 2000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--locked") == 0)
            locked = true;
        else
            limit = atol(argv[i]);
    }

    struct task tasks[NGOROUTINES];
    wg_t wg = WG_INIT;
    printf("GORT_MAXPROCS=%d: %d goroutines count the primes below %ld%s\n",
           go_maxprocs(0), NGOROUTINES, limit,
           locked ? ", each locked to its OS thread" : "");

    double cpu0 = cpu_seconds();
    start = go_now();
    wg_add(&wg, NGOROUTINES);
    for (int i = 0; i < NGOROUTINES; i++) {
        tasks[i] = (struct task){
            .id = i + 1, .locked = locked, .wg = &wg,
            .from = limit / NGOROUTINES * i,
            .to = i == NGOROUTINES - 1 ? limit : limit / NGOROUTINES * (i + 1),
        };
        if (go_spawn(count_primes, &tasks[i]) != 0)
            return 1;
    }
    wg_wait(&wg);
    double wall = (double)(go_now() - start) / 1e9;
    double cpu = cpu_seconds() - cpu0;

    /* The distinct threads that ran any of the goroutines. */
    pid_t all[NGOROUTINES * MAXTIDS];
    int nall = 0;
    long total = 0;
    for (int i = 0; i < NGOROUTINES; i++) {
        struct task *t = &tasks[i];
        printf("goroutine %d: %6ld primes in [%ld, %ld), finished at %.2f s, "
               "ran on %d thread%s, moved %d times\n",
               t->id, t->primes, t->from, t->to, (double)t->finished / 1e9,
               t->ntids, t->ntids == 1 ? "" : "s", t->moves);
        total += t->primes;
        for (int j = 0; j < t->ntids; j++) {
            int k = 0;
            while (k < nall && all[k] != t->tids[j])
                k++;
            if (k == nall)
                all[nall++] = t->tids[j];
        }
    }
    printf("primes below %ld: %ld\n", limit, total);
    printf("wall %.2f s, CPU %.2f s, CPU/wall %.2f, distinct threads: %d\n",
           wall, cpu, cpu / wall, nall);
    return 0;
}
