/*
 * fan_out.c - one channel, many receivers: work spreads over the workers.
 *
 *                  ┌──▶ worker 1
 *     main ─jobs──┼──▶ worker 2
 *                  ├──▶ worker 3
 *                  └──▶ worker 4
 *
 * Several goroutines receive from the same channel; each value goes to
 * exactly one of them (whichever is waiting first), so the work is shared
 * out without any explicit scheduling.  Closing the channel is the "no more
 * work" broadcast: every worker's receive then returns false.
 *
 * Which worker gets which job depends on timing, so the per-worker counts
 * vary from run to run; the totals, and the fact that every job is done
 * exactly once, do not.
 */
#include <gort.h>
#include <stdio.h>

#define NWORKERS 4
#define NJOBS 24

CHAN_DEFINE(int_chan, int);

struct worker {
    int id;
    int_chan jobs;
    wg_t *wg;
    int handled;      /* written by this worker only, read after wg_wait */
    long sum;
};

static int done_by[NJOBS + 1]; /* job -> worker; each slot written once */

static void worker(void *arg)
{
    struct worker *w = arg;
    int job;

    while (int_chan_recv(w->jobs, &job)) { /* false: closed and drained */
        go_sleep(2 * GO_MS);               /* "work" (parks, like I/O) */
        done_by[job] = w->id;
        w->handled++;
        w->sum += job;
    }
    wg_done(w->wg);
}

int main(void)
{
    int_chan jobs = int_chan_make(0);
    wg_t wg = WG_INIT;
    struct worker workers[NWORKERS];

    if (!jobs.raw)
        return 1;
    for (int i = 0; i < NWORKERS; i++) {
        workers[i] = (struct worker){.id = i + 1, .jobs = jobs, .wg = &wg};
        wg_add(&wg, 1);
        if (go_spawn(worker, &workers[i]) != 0)
            return 1;
    }

    for (int job = 1; job <= NJOBS; job++)
        int_chan_send(jobs, job); /* blocks main until some worker takes it */
    int_chan_close(jobs);         /* no more work: every worker's loop ends */
    wg_wait(&wg);                 /* the workers' results are now visible */

    int total = 0, once = 1;
    long sum = 0;
    for (int i = 0; i < NWORKERS; i++) {
        printf("worker %d handled %2d jobs\n", workers[i].id, workers[i].handled);
        total += workers[i].handled;
        sum += workers[i].sum;
    }
    for (int job = 1; job <= NJOBS; job++)
        once &= done_by[job] != 0;
    printf("fan_out: %d jobs over %d workers, sum %ld, every job done once: %s\n",
           total, NWORKERS, sum, once && total == NJOBS ? "yes" : "NO");
    int_chan_free(jobs);
    return once && total == NJOBS ? 0 : 1;
}
