/*
 * pipeline.c - stages connected by channels: the CSP idea.
 *
 *     parse ──nums──▶ square ──squares──▶ main (prints, sums)
 *
 * Each stage is a goroutine that receives from the channel before it and
 * sends to the channel after it; none of them shares memory with another.
 * This is the pipeline of the Go blog's "Go Concurrency Patterns:
 * Pipelines and cancellation", with one more stage in front that parses
 * text, so that it can show how to read errno in a goroutine.
 *
 * The rules every stage follows:
 *   - a stage closes its *outbound* channel when it is done sending: the
 *     sender closes, never the receiver;
 *   - a stage ends when its *inbound* channel is closed and drained
 *     (`_recv` returns false), so the close ripples down the pipeline and
 *     every goroutine ends: nothing is left blocked.
 *
 * Output: one line per number in input order (each channel is FIFO and
 * each stage is one goroutine, so the order is kept), a line from the parse
 * stage for the input it rejects, and the sum.
 */
#include <errno.h>
#include <gort.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CHAN_DEFINE(long_chan, long);

static const char *const input[] = {
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
    "99999999999999999999", /* out of range for a long: rejected */
    "11", "12",
};
#define NINPUT (sizeof input / sizeof input[0])

struct stage {
    long_chan in, out;
    wg_t *wg; /* done when the stage has returned */
};

/* Stage 1: text to numbers. */
static void parse(void *arg)
{
    struct stage *s = arg;
    for (size_t i = 0; i < NINPUT; i++) {
        char *end;
        errno = 0;
        long v = strtol(input[i], &end, 10);
        /* Read errno right away, before any call that can park: after a
         * park this goroutine may run on another thread, and the compiler
         * may still hold the address of the old thread's errno. */
        int err = errno;
        if (err != 0 || *end != '\0') {
            printf("parse: skipping \"%s\": %s\n", input[i],
                   err ? strerror(err) : "not a number");
            continue;
        }
        long_chan_send(s->out, v); /* may park until square receives */
    }
    long_chan_close(s->out); /* the sender closes */
    wg_done(s->wg);
}

/* Stage 2: squares whatever arrives, until the inbound channel closes. */
static void square(void *arg)
{
    struct stage *s = arg;
    long v;
    while (long_chan_recv(s->in, &v))
        long_chan_send(s->out, v * v);
    long_chan_close(s->out);
    wg_done(s->wg);
}

int main(void)
{
    long_chan nums = long_chan_make(0);    /* unbuffered: a rendezvous */
    long_chan squares = long_chan_make(4); /* buffered: some slack */
    wg_t stages = WG_INIT;
    struct stage parser = {.out = nums, .wg = &stages};
    struct stage squarer = {.in = nums, .out = squares, .wg = &stages};

    wg_add(&stages, 2);
    if (!nums.raw || !squares.raw || go_spawn(parse, &parser) != 0
        || go_spawn(square, &squarer) != 0) {
        fprintf(stderr, "pipeline: out of memory\n");
        return 1;
    }

    /* Stage 3, the sink: main itself, a plain thread (it blocks). */
    long sum = 0, v;
    int n = 0;
    while (long_chan_recv(squares, &v)) {
        printf("main: received %ld\n", v);
        sum += v;
        n++;
    }
    printf("pipeline: %d squares, sum %ld\n", n, sum);

    /* Free the channels only once no stage can be inside a call on them:
     * the close that ended the loop may not have returned yet. */
    wg_wait(&stages);
    long_chan_free(nums);
    long_chan_free(squares);
    return 0;
}
