/*
 * worker_pool.c - a fixed number of workers, a WaitGroup, a results
 * channel that is closed once every worker has finished.
 *
 *     feeder ──jobs──▶ NWORKERS workers ──results──▶ main
 *                                 │
 *                     closer: wg_wait, then close(results)
 *
 * However many jobs there are, at most NWORKERS run at once: the pool
 * bounds the concurrency.  The results channel has several senders, so no
 * single worker may close it (the others would then send on a closed
 * channel).  A small "closer" goroutine waits for the whole group and
 * closes it; main simply reads results until the channel is closed.
 *
 * Jobs are fed by their own goroutine rather than by main: if main sent
 * every job before reading any result, the workers could fill the results
 * channel and block, main would block on the full jobs channel, and
 * nothing would move again.
 */
#include <gort.h>
#include <stdio.h>

#define NWORKERS 3
#define NJOBS 12

CHAN_DEFINE(int_chan, int);

struct pool {
    int_chan jobs;    /* feeder -> workers; closed by the feeder */
    int_chan results; /* workers -> main; closed by the closer */
    wg_t wg;          /* counts the running workers */
};

struct worker {
    struct pool *pool;
    int id;
};

static void feed(void *arg)
{
    struct pool *p = arg;
    for (int job = 1; job <= NJOBS; job++)
        int_chan_send(p->jobs, job);
    int_chan_close(p->jobs);
}

static void done(void *wg)
{
    wg_done(wg);
}

static void work(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->pool;
    int job;

    go_defer(done, &p->wg); /* Go's `defer wg.Done()`: runs however we end */
    while (int_chan_recv(p->jobs, &job)) {
        go_sleep(job % 4 * GO_MS); /* jobs take different times */
        printf("worker %d: job %2d -> %3d\n", w->id, job, job * job);
        int_chan_send(p->results, job * job);
    }
}

static void close_when_done(void *arg)
{
    struct pool *p = arg;
    wg_wait(&p->wg);            /* every worker has returned... */
    int_chan_close(p->results); /* ...so nobody can send any more */
}

int main(void)
{
    struct pool p = {
        .jobs = int_chan_make(NWORKERS),
        .results = int_chan_make(0),
        .wg = WG_INIT,
    };
    struct worker workers[NWORKERS];

    if (!p.jobs.raw || !p.results.raw)
        return 1;
    wg_add(&p.wg, NWORKERS); /* before the spawns, never inside them */
    for (int i = 0; i < NWORKERS; i++) {
        workers[i] = (struct worker){&p, i + 1};
        if (go_spawn(work, &workers[i]) != 0)
            return 1;
    }
    if (go_spawn(feed, &p) != 0 || go_spawn(close_when_done, &p) != 0)
        return 1;

    int n = 0, sum = 0, v;
    while (int_chan_recv(p.results, &v)) {
        n++;
        sum += v;
    }
    printf("worker_pool: %d results from %d workers, sum of squares 1..%d = %d\n",
           n, NWORKERS, NJOBS, sum);
    return n == NJOBS && sum == NJOBS * (NJOBS + 1) * (2 * NJOBS + 1) / 6 ? 0 : 1;
}
