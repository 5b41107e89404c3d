/*
 * A tiny consumer of the installed libgo-rt: goroutines, a typed channel
 * and a WaitGroup, through the one public header.  It prints a line that
 * tests/cmake/install_consume.cmake checks.
 */
#include <gort.h>
#include <stdio.h>

CHAN_DEFINE(int_chan, int);

static int_chan results;
static wg_t wg;

static void square(void *arg)
{
    int n = (int)(intptr_t)arg;
    int_chan_send(results, n * n);
    wg_done(&wg);
}

int main(void)
{
    long sum = 0;
    int v;
    results = int_chan_make(100);
    if (!results.raw)
        return 1;
    wg_add(&wg, 100);
    for (intptr_t i = 1; i <= 100; i++)
        if (go_spawn(square, (void *)i) != 0)
            return 1;
    wg_wait(&wg);
    int_chan_close(results);
    while (int_chan_recv(results, &v))
        sum += v;
    int_chan_free(results);
    printf("gort consumer: sum of squares 1..100 = %ld, main is goroutine %llu\n", sum,
           (unsigned long long)go_id());
    return 0;
}
