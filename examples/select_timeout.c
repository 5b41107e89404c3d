/*
 * select_timeout.c - waiting with a deadline, and not waiting at all.
 *
 * chan_select waits on several channel operations at once and performs
 * exactly one of them.  Its last argument says how long to wait:
 *
 *     GO_FOREVER   block until a case can proceed  (Go: select { ... })
 *     t > 0        give up after t ns: -ETIMEDOUT  (Go: case <-time.After(t))
 *     0            do not wait at all: -EAGAIN     (Go: default:)
 *
 * The first two parts are Go by Example's "Timeouts", the last two its
 * "Non-Blocking Channel Operations".
 */
#include <errno.h>
#include <gort.h>
#include <stdio.h>

CHAN_DEFINE(str_chan, const char *);

struct call {
    str_chan reply;
    int64_t delay;
    const char *result;
};

/* A slow operation: answers on its reply channel after `delay`. */
static void slow_call(void *arg)
{
    struct call *c = arg;
    go_sleep(c->delay);
    /* The reply channel has room for one value, so this send never blocks,
     * even when nobody is waiting any more.  On an unbuffered channel a
     * reply that comes too late would block this goroutine forever: a
     * goroutine leak. */
    str_chan_send(c->reply, c->result);
}

/* Waits at most `timeout` for the call's reply. */
static void await(struct call *c, int64_t timeout)
{
    const char *res;
    chan_case_t cases[] = {str_chan_case_recv(c->reply, &res)};
    int r = chan_select(cases, 1, timeout);

    if (r == -ETIMEDOUT)
        printf("timeout: no reply within %lld ms\n", (long long)(timeout / GO_MS));
    else
        printf("received \"%s\"\n", res);
}

int main(void)
{
    /* 1. The reply takes 500 ms; we wait 100 ms: the timeout wins. */
    struct call c1 = {str_chan_make(1), 500 * GO_MS, "result 1"};
    /* 2. The reply takes 50 ms; we would wait 5 s: the reply wins. */
    struct call c2 = {str_chan_make(1), 50 * GO_MS, "result 2"};

    if (!c1.reply.raw || !c2.reply.raw || go_spawn(slow_call, &c1) != 0
        || go_spawn(slow_call, &c2) != 0)
        return 1;
    await(&c1, 100 * GO_MS);
    await(&c2, 5 * GO_S);

    /* 3. A receive with a default case: nothing is waiting in the channel,
     * so chan_select returns -EAGAIN at once instead of blocking. */
    str_chan messages = str_chan_make(0);
    const char *msg;
    chan_case_t recv[] = {str_chan_case_recv(messages, &msg)};
    if (chan_select(recv, 1, 0) == -EAGAIN)
        printf("no message ready: took the default case\n");

    /* 4. A send with a default case: nobody is receiving on the unbuffered
     * channel, so the send cannot proceed.  (str_chan_try_send is the
     * one-case shorthand for the same thing.) */
    const char *hi = "hi";
    chan_case_t send[] = {str_chan_case_send(messages, &hi)};
    if (chan_select(send, 1, 0) == -EAGAIN && str_chan_try_send(messages, hi) == -EAGAIN)
        printf("no receiver ready: message not sent\n");

    /* The first call's late reply went into its buffer, so its goroutine
     * has ended instead of leaking.  Wait for it (at most 2 s) to show it. */
    for (int i = 0; i < 200 && go_num_goroutines() > 0; i++)
        go_sleep(10 * GO_MS);
    size_t left = go_num_goroutines();
    printf("goroutines still running: %zu\n", left);
    if (left == 0) { /* nobody can be using the reply channels any more */
        str_chan_free(c1.reply);
        str_chan_free(c2.reply);
    }
    str_chan_free(messages);
    return left == 0 ? 0 : 1;
}
