/*
 * fan_in.c - many channels merged into one (Rob Pike's "fan-in").
 *
 *     ann ──▶ ┐
 *     bob ──▶ ├─ merge (select) ──▶ main
 *     cat ──▶ ┘
 *
 * Three producers talk at their own pace, each on its own channel.  One
 * merging goroutine waits on all three at once with chan_select and
 * forwards whatever arrives first, so main reads one channel and hears
 * from everybody as soon as they speak.
 *
 * The merge ends when all three inputs are closed.  A closed channel is
 * always ready in a select (its receive returns at once with ok == false),
 * so once an input closes the merge turns its case off by setting the
 * case's channel to NULL: a NULL channel is never ready (Go's nil-channel
 * idiom).  Then it closes its own output: it is the only sender on it.
 *
 * The interleaving depends on timing; each producer's own messages arrive
 * in the order it sent them, which main checks.
 */
#include <gort.h>
#include <stdio.h>

#define NPRODUCERS 3
#define NMESSAGES 4

struct msg {
    int from; /* index into names */
    int seq;
};

CHAN_DEFINE(msg_chan, struct msg);

static const char *const names[NPRODUCERS] = {"ann", "bob", "cat"};

struct producer {
    int id;
    msg_chan out;
};

static void produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < NMESSAGES; i++) {
        go_sleep((p->id + 1) * 3 * GO_MS); /* ann talks fastest, cat slowest */
        msg_chan_send(p->out, (struct msg){p->id, i});
    }
    msg_chan_close(p->out);
}

struct merge {
    msg_chan in[NPRODUCERS];
    msg_chan out;
};

static void merge(void *arg)
{
    struct merge *m = arg;
    struct msg v;
    chan_case_t cases[NPRODUCERS];
    int open = NPRODUCERS;

    for (int i = 0; i < NPRODUCERS; i++)
        cases[i] = msg_chan_case_recv(m->in[i], &v);
    while (open > 0) {
        int i = chan_select(cases, NPRODUCERS, GO_FOREVER);
        if (!cases[i].ok) {        /* input i is closed and drained */
            cases[i].chan = NULL;  /* never ready again */
            open--;
            continue;
        }
        msg_chan_send(m->out, v);
    }
    msg_chan_close(m->out);
}

int main(void)
{
    struct producer producers[NPRODUCERS];
    struct merge m = {.out = msg_chan_make(0)};

    for (int i = 0; i < NPRODUCERS; i++) {
        m.in[i] = msg_chan_make(0);
        producers[i] = (struct producer){i, m.in[i]};
        if (!m.in[i].raw || go_spawn(produce, &producers[i]) != 0)
            return 1;
    }
    if (!m.out.raw || go_spawn(merge, &m) != 0)
        return 1;

    int next[NPRODUCERS] = {0}, total = 0, in_order = 1;
    struct msg v;
    while (msg_chan_recv(m.out, &v)) {
        printf("%s says %d\n", names[v.from], v.seq);
        in_order &= v.seq == next[v.from]++;
        total++;
    }
    printf("fan_in: %d messages from %d producers, each producer's in order: %s\n",
           total, NPRODUCERS, in_order ? "yes" : "NO");
    /* The channels are not freed: a producer may still be returning from
     * its close (see pipeline.c for waiting with a WaitGroup first); the
     * program ends here anyway. */
    return in_order && total == NPRODUCERS * NMESSAGES ? 0 : 1;
}
