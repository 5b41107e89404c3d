/*
 * prime_sieve.c - Go's concurrent prime sieve (the "daisy chain"), in C.
 *
 * The Go original (go.dev/doc/play/sieve.go):
 *
 *     func Generate(ch chan<- int) { for i := 2; ; i++ { ch <- i } }
 *     func Filter(in <-chan int, out chan<- int, prime int) {
 *         for { i := <-in; if i%prime != 0 { out <- i } }
 *     }
 *     func main() {
 *         ch := make(chan int)
 *         go Generate(ch)
 *         for i := 0; i < 10; i++ {
 *             prime := <-ch
 *             fmt.Println(prime)
 *             ch1 := make(chan int)
 *             go Filter(ch, ch1, prime)
 *             ch = ch1
 *         }
 *     }
 *
 * A generator sends 2, 3, 4, ... down an unbuffered channel.  Whatever
 * reaches main is prime; main then puts a filter goroutine for that prime
 * at the end of the chain, so the chain grows by one goroutine per prime.
 * Every channel is unbuffered, so each number is handed from goroutine to
 * goroutine in a rendezvous: the chain is a pipeline of N + 1 goroutines.
 *
 * Usage: prime_sieve [N]   (default 10: prints 2 3 5 7 11 13 17 19 23 29)
 *
 * As in Go, the generator and the filters are still blocked on their
 * channels when main returns, and returning from main ends them.  That is
 * fine for a program that is about to exit; in a long-running program it
 * would be a leak (see "Common mistakes" in docs/tutorial.md).
 */
#include <gort.h>
#include <stdio.h>
#include <stdlib.h>

CHAN_DEFINE(int_chan, int);

/* Sends 2, 3, 4, ... to ch, forever. */
static void generate(void *arg)
{
    int_chan *ch = arg;
    for (int i = 2;; i++)
        int_chan_send(*ch, i);
}

struct filter {
    int_chan in, out;
    int prime;
};

/* Copies the values from in to out, dropping the multiples of prime. */
static void filter(void *arg)
{
    struct filter *f = arg;
    int i;
    while (int_chan_recv(f->in, &i))
        if (i % f->prime != 0)
            int_chan_send(f->out, i);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    int_chan *ch = malloc(sizeof *ch);

    *ch = int_chan_make(0);
    if (!ch->raw || go_spawn(generate, ch) != 0) {
        fprintf(stderr, "prime_sieve: out of memory\n");
        return 1;
    }
    printf("the first %d primes:\n", n);
    for (int i = 0; i < n; i++) {
        int prime;
        int_chan_recv(*ch, &prime);
        printf("%d\n", prime);

        /* A new filter reads what main used to read and becomes the new
         * end of the chain.  It lives as long as the program does. */
        struct filter *f = malloc(sizeof *f);
        if (!f)
            return 1;
        *f = (struct filter){.in = *ch, .out = int_chan_make(0), .prime = prime};
        if (!f->out.raw || go_spawn(filter, f) != 0)
            return 1;
        ch = &f->out;
    }
    /* The generator and one filter per prime: n + 1 goroutines. */
    printf("done: %d primes, %zu goroutines in the chain\n", n,
           go_num_goroutines());
    return 0;
}
