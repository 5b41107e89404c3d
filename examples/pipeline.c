/*
 * pipeline.c - stages connected by channels: the CSP idea.
 *
 *     parse ──nums──▶ square ──squares──▶ main (prints, sums)
 *
 * Each stage is a goroutine that receives from the channel before it and
 * sends to the channel after it; none of them shares memory with another.
 * This is the pipeline of the Go blog's "Go Concurrency Patterns:
 * Pipelines and cancellation", with one more stage in front that parses
 * text, so that it can show how to read errno safely in a goroutine.
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

/*
 * Parses s as a decimal long into *out: 0, or an errno value.
 *
 * Why errno is read in a function of its own, marked noinline: the loop in
 * parse() parks in long_chan_send and may resume on another thread, while
 * errno is a per-thread variable whose address comes from
 * __errno_location(), a function declared `const`.  If strtol were called
 * in that loop, the compiler could (and gcc -O2 does) look errno's address
 * up once before the loop and keep it in a register across the park: from
 * the second thread on, `errno = 0` and the check would touch the first
 * thread's errno while strtol set the current one, and the out-of-range
 * input below would get through as LONG_MAX.  A call that is not inlined
 * and does not park looks the address up on the thread it runs on.
 */
static __attribute__((noinline)) int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    if (errno != 0)
        return errno;
    return end != s && *end == '\0' ? 0 : EINVAL;
}

/* Stage 1: text to numbers. */
static void parse(void *arg)
{
    struct stage *s = arg;
    for (size_t i = 0; i < NINPUT; i++) {
        long v;
        int err = parse_long(input[i], &v);
        if (err != 0) {
            printf("parse: skipping \"%s\": %s\n", input[i], strerror(err));
            continue;
        }
        long_chan_send(s->out, v); /* may park, and resume on another thread */
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
