/*
 * echo_client.c - load generator for echo_server.
 *
 *   echo_client [HOST] PORT [CONNS [ROUNDS [SIZE]]]   (defaults 127.0.0.1,
 *                                                      100, 100, 32)
 *
 * Opens CONNS connections to HOST:PORT (an IPv4 address), one goroutine
 * each; every
 * goroutine does ROUNDS round trips of a SIZE-byte message (write it, read
 * the echo back, check every byte) and records each round trip's latency.
 * Prints the round trips per second over the whole run and the latency
 * percentiles computed from all recorded samples, then
 * "all N round trips succeeded" (exit 0) or how many failed (exit 1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gort.h>

static struct sockaddr_in server;
static long nconns = 100, rounds = 100, msg_size = 32;
static int64_t *samples;          /* nconns * rounds latencies, ns; 0: failed */
static _Atomic long failed, connect_failed;
static wg_t wg = WG_INIT;

/* The message of round r on connection c: different for every round, so
   a stale or misplaced echo is caught. */
static void make_msg(unsigned char *m, long c, long r)
{
    uint32_t x = (uint32_t)(c * 7919 + r * 104729 + 1);
    for (long i = 0; i < msg_size; i++) {
        x = x * 1664525u + 1013904223u;
        m[i] = (unsigned char)(x >> 24);
    }
}

static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = go_read(fd, buf + got, n - got);
        if (r <= 0)
            return r < 0 ? (int)r : -ECONNRESET;
        got += (size_t)r;
    }
    return 0;
}

static void client(void *arg)
{
    long c = (long)(intptr_t)arg, r = 0;
    int64_t *lat = samples + c * rounds;
    unsigned char *msg = malloc((size_t)msg_size), *echo = malloc((size_t)msg_size);
    int one = 1, err;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !msg || !echo) {
        err = fd < 0 ? -errno : -ENOMEM;
        goto fail;
    }
    err = go_connect(fd, (struct sockaddr *)&server, sizeof server);
    if (err < 0) {
        atomic_fetch_add(&connect_failed, 1);
        goto fail;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (; r < rounds; r++) {
        int64_t t0 = go_now();
        make_msg(msg, c, r);
        if ((err = (int)go_write(fd, msg, (size_t)msg_size)) < 0 ||
            (err = read_full(fd, echo, (size_t)msg_size)) < 0)
            goto fail;
        if (memcmp(msg, echo, (size_t)msg_size) != 0) {
            err = -EBADMSG;
            goto fail;
        }
        lat[r] = go_now() - t0;
        if (lat[r] == 0)
            lat[r] = 1;
    }
    goto out;
fail:
    if (atomic_fetch_add(&failed, rounds - r) < 10)
        fprintf(stderr, "echo_client: connection %ld, round %ld: %s\n", c, r, strerror(-err));
out:
    if (fd >= 0)
        go_close(fd);
    free(msg);
    free(echo);
    wg_done(&wg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1e3;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: echo_client [HOST] PORT [CONNS [ROUNDS [SIZE]]]\n");
    exit(2);
}

static long arg(char **argv, int i, int argc, long def, long max)
{
    char *end;
    long v;
    if (i >= argc)
        return def;
    v = strtol(argv[i], &end, 10);
    if (*end || v < 1 || v > max)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long port, total, ok = 0;
    int64_t t0, elapsed;
    int64_t *sorted;
    int a = 1;
    server.sin_family = AF_INET;
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (argc > 1 && inet_pton(AF_INET, argv[1], &server.sin_addr) == 1)
        a = 2; /* a host came first */
    if (argc <= a)
        usage();
    port = arg(argv, a, argc, 0, 65535);
    nconns = arg(argv, a + 1, argc, nconns, 1000000);
    rounds = arg(argv, a + 2, argc, rounds, 100000000);
    msg_size = arg(argv, a + 3, argc, msg_size, 1 << 20);
    total = nconns * rounds;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    server.sin_port = htons((uint16_t)port);
    samples = calloc((size_t)total, sizeof *samples);
    sorted = malloc((size_t)total * sizeof *sorted);
    if (!samples || !sorted) {
        fprintf(stderr, "echo_client: out of memory\n");
        return 1;
    }

    t0 = go_now();
    wg_add(&wg, nconns);
    for (long c = 0; c < nconns; c++) {
        if (go_spawn(client, (void *)(intptr_t)c) != 0) {
            fprintf(stderr, "echo_client: cannot start goroutine %ld\n", c);
            atomic_fetch_add(&failed, rounds);
            wg_done(&wg);
        }
    }
    wg_wait(&wg);
    elapsed = go_now() - t0;

    for (long i = 0; i < total; i++)
        if (samples[i] > 0)
            sorted[ok++] = samples[i];
    qsort(sorted, (size_t)ok, sizeof *sorted, cmp_i64);
    printf("%ld connections x %ld round trips of %ld bytes in %.3f s\n", nconns, rounds,
           msg_size, (double)elapsed / 1e9);
    printf("throughput: %.0f round trips/s\n", (double)ok / ((double)elapsed / 1e9));
    if (ok > 0)
        printf("latency (us): p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", pct(sorted, (size_t)ok, 50),
               pct(sorted, (size_t)ok, 90), pct(sorted, (size_t)ok, 99),
               (double)sorted[ok - 1] / 1e3);
    free(samples);
    free(sorted);
    if (ok == total && atomic_load(&failed) == 0) {
        printf("all %ld round trips succeeded\n", total);
        return 0;
    }
    printf("%ld of %ld round trips failed (%ld connections could not connect)\n", total - ok,
           total, (long)atomic_load(&connect_failed));
    return 1;
}
