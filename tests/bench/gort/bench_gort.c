/*
 * bench_gort - the libgo-rt side of the side-by-side benchmark suite
 * (docs/performance.md).  Every workload has a twin in ../go/main.go and
 * ../boost/bench_boost.cpp with the same sizes and logic; each checks its
 * own answer and exits non-zero when it is wrong.  Only the public API of
 * <gort.h> is used.
 *
 *   bench_gort <workload> <workers> [scale]
 *
 * prints one line per result:  RESULT gort <workload> <workers> <value> <unit>
 *
 * As in Go (where main is a goroutine) and in the Boost version (where the
 * body runs in a fiber), each workload's body runs in a goroutine; the main
 * thread only waits for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <gort.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Base sizes at scale 1; keep in step with main.go and bench_boost.cpp. */
#define N_SPAWN 1000000L
#define N_YIELD 5000000L      /* per goroutine */
#define N_PINGPONG 2000000L   /* round trips */
#define N_BUFFERED 10000000L  /* items */
#define CAP_BUF 1024
#define N_FANOUT 4000000L     /* items */
#define FAN_WORKERS 8
#define N_SELECT 6000000L     /* items, half from each producer */
#define N_MUTEX_PER 4000000L  /* locks per goroutine */
#define MUTEX_G 8
#define N_SLEEP 100000L
#define SLEEP_FOR (10 * GO_MS)
#define ECHO_MSG 64           /* bytes per echo round trip */
#define ECHO32_RT 2500L       /* round trips per connection, 32 connections */
#define ECHO100_RT 2000L      /* round trips per connection, 100 connections */
#define ECHO1000_RT 200L      /* round trips per connection, 1,000 connections */
#define N_IDLE 10000L         /* idle connections */
#define IDLE_BATCH 500        /* connections made before waiting for their handlers */
#define IDLE_BUF 64           /* an idle handler's read buffer */
#define IDLE_FD_SLACK 64      /* descriptors kept free besides 2 per connection */

static int workers = 1;
static double scale = 1.0;
static const char *workload = "";

static long size_of(long base)
{
    long n = (long)((double)base * scale);
    return n < 1 ? 1 : n;
}

static void result(const char *name, double value, const char *unit)
{
    printf("RESULT gort %s %d %.6g %s\n", name, workers, value, unit);
    fflush(stdout);
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL gort %s %d: ", workload, workers);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(1);
}

static void spawn_or_fail(void (*fn)(void *), void *arg)
{
    int rc = go_spawn(fn, arg);
    if (rc != 0)
        fail("go_spawn: %s", strerror(-rc));
}

static chan_t *make_or_fail(size_t elem, size_t cap)
{
    chan_t *c = chan_make(elem, cap);
    if (!c)
        fail("chan_make(%zu, %zu) failed", elem, cap);
    return c;
}

static void send_or_fail(chan_t *c, const void *v)
{
    int rc = chan_send(c, v);
    if (rc != 0)
        fail("chan_send: %s", strerror(-rc));
}

/* ---- spawn: spawn+join of 1,000,000 goroutines -------------------------- */

static wg_t spawn_wg;

static void spawn_child(void *arg)
{
    *(unsigned char *)arg = 1;
    wg_done(&spawn_wg);
}

static void bench_spawn(void)
{
    long n = size_of(N_SPAWN);
    unsigned char *done = calloc((size_t)n, 1);
    if (!done)
        fail("out of memory");
    int64_t t0 = go_now();
    wg_add(&spawn_wg, n);
    for (long i = 0; i < n; i++)
        spawn_or_fail(spawn_child, &done[i]);
    wg_wait(&spawn_wg);
    double el = (double)(go_now() - t0);
    for (long i = 0; i < n; i++)
        if (done[i] != 1)
            fail("goroutine %ld did not run", i);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        fail("getrusage");
    result("spawn", el / (double)n, "ns/goroutine");
    result("spawn_rss", (double)ru.ru_maxrss, "KiB");
    free(done);
}

/* ---- yield: two goroutines calling go_yield ----------------------------- */

static struct {
    long n;
    _Atomic int last;
    long handoffs[2], counts[2];
    wg_t wg;
} yl;

static void yield_loop(void *arg)
{
    int id = (int)(intptr_t)arg;
    long h = 0, c = 0;
    for (long i = 0; i < yl.n; i++) {
        if (atomic_load_explicit(&yl.last, memory_order_relaxed) != id) {
            atomic_store_explicit(&yl.last, id, memory_order_relaxed);
            h++;
        }
        c++;
        go_yield();
    }
    yl.handoffs[id] = h;
    yl.counts[id] = c;
    wg_done(&yl.wg);
}

static void bench_yield(void)
{
    long n = yl.n = size_of(N_YIELD);
    atomic_store(&yl.last, -1);
    int64_t t0 = go_now();
    wg_add(&yl.wg, 2);
    spawn_or_fail(yield_loop, (void *)(intptr_t)0);
    spawn_or_fail(yield_loop, (void *)(intptr_t)1);
    wg_wait(&yl.wg);
    double el = (double)(go_now() - t0);
    if (yl.counts[0] != n || yl.counts[1] != n)
        fail("counts %ld %ld, want %ld", yl.counts[0], yl.counts[1], n);
    /* With one worker the two goroutines must alternate: a yield that does
     * not switch would be fast and wrong. */
    if (workers == 1 && n > 1 && yl.handoffs[0] + yl.handoffs[1] < n)
        fail("only %ld handoffs in %ld yields: yield does not switch",
             yl.handoffs[0] + yl.handoffs[1], 2 * n);
    result("yield", el / (2.0 * (double)n), "ns/switch");
}

/* ---- pingpong: unbuffered round trip ------------------------------------ */

static struct {
    chan_t *ping, *pong;
    long served;
    wg_t wg;
} pp;

static void pong_loop(void *arg)
{
    (void)arg;
    int64_t v;
    while (chan_recv(pp.ping, &v)) {
        pp.served++;
        v += 1;
        send_or_fail(pp.pong, &v);
    }
    wg_done(&pp.wg);
}

static void bench_pingpong(void)
{
    long n = size_of(N_PINGPONG);
    pp.ping = make_or_fail(sizeof(int64_t), 0);
    pp.pong = make_or_fail(sizeof(int64_t), 0);
    wg_add(&pp.wg, 1);
    spawn_or_fail(pong_loop, NULL);
    int64_t t0 = go_now();
    for (int64_t i = 0; i < n; i++) {
        send_or_fail(pp.ping, &i);
        int64_t v = -1;
        if (!chan_recv(pp.pong, &v) || v != i + 1)
            fail("round trip %ld answered %ld", (long)i, (long)v);
    }
    double el = (double)(go_now() - t0);
    chan_close(pp.ping);
    wg_wait(&pp.wg);
    if (pp.served != n)
        fail("served %ld, want %ld", pp.served, n);
    chan_free(pp.ping);
    chan_free(pp.pong);
    result("pingpong", el / (double)n, "ns/roundtrip");
}

/* ---- buffered: producer/consumer over capacity 1024 --------------------- */

static struct {
    chan_t *ch;
    long n;
    wg_t wg;
} bf;

static void buffered_producer(void *arg)
{
    (void)arg;
    for (int64_t i = 0; i < bf.n; i++)
        send_or_fail(bf.ch, &i);
    chan_close(bf.ch);
    wg_done(&bf.wg);
}

static void bench_buffered(void)
{
    long n = bf.n = size_of(N_BUFFERED);
    bf.ch = make_or_fail(sizeof(int64_t), CAP_BUF);
    int64_t t0 = go_now();
    wg_add(&bf.wg, 1);
    spawn_or_fail(buffered_producer, NULL);
    int64_t sum = 0, cnt = 0, v;
    while (chan_recv(bf.ch, &v)) {
        sum += v;
        cnt++;
    }
    double el = (double)(go_now() - t0);
    wg_wait(&bf.wg);
    if (cnt != n || sum != (int64_t)n * (n - 1) / 2)
        fail("got %ld items summing to %ld", (long)cnt, (long)sum);
    chan_free(bf.ch);
    result("buffered", el / (double)n, "ns/item");
}

/* ---- fanout: 1 producer, 8 workers, 1 collector ------------------------- */

static struct {
    chan_t *jobs, *results;
    long n;
    wg_t workers, all;
} fo;

static void fanout_producer(void *arg)
{
    (void)arg;
    for (int64_t i = 0; i < fo.n; i++)
        send_or_fail(fo.jobs, &i);
    chan_close(fo.jobs);
    wg_done(&fo.all);
}

static void fanout_worker(void *arg)
{
    (void)arg;
    int64_t v;
    while (chan_recv(fo.jobs, &v)) {
        int64_t r = 2 * v + 1;
        send_or_fail(fo.results, &r);
    }
    wg_done(&fo.workers);
}

static void fanout_closer(void *arg)
{
    (void)arg;
    wg_wait(&fo.workers);
    chan_close(fo.results);
    wg_done(&fo.all);
}

static void bench_fanout(void)
{
    long n = fo.n = size_of(N_FANOUT);
    fo.jobs = make_or_fail(sizeof(int64_t), CAP_BUF);
    fo.results = make_or_fail(sizeof(int64_t), CAP_BUF);
    int64_t t0 = go_now();
    wg_add(&fo.all, 2);
    spawn_or_fail(fanout_producer, NULL);
    wg_add(&fo.workers, FAN_WORKERS);
    for (int w = 0; w < FAN_WORKERS; w++)
        spawn_or_fail(fanout_worker, NULL);
    spawn_or_fail(fanout_closer, NULL);
    int64_t sum = 0, cnt = 0, r;
    while (chan_recv(fo.results, &r)) {
        sum += r;
        cnt++;
    }
    double el = (double)(go_now() - t0);
    wg_wait(&fo.all);
    if (cnt != n || sum != (int64_t)n * n)
        fail("got %ld results summing to %ld", (long)cnt, (long)sum);
    chan_free(fo.jobs);
    chan_free(fo.results);
    result("fanout", el / (double)n, "ns/item");
}

/* ---- select: one consumer selecting over two fed channels --------------- */

static struct {
    chan_t *ch[2];
    long half;
    wg_t wg;
} sl;

static void select_producer(void *arg)
{
    int odd = (int)(intptr_t)arg;
    for (int64_t i = 0; i < sl.half; i++) {
        int64_t v = 2 * i + odd;
        send_or_fail(sl.ch[odd], &v);
    }
    chan_close(sl.ch[odd]);
    wg_done(&sl.wg);
}

static void bench_select(void)
{
    long half = sl.half = size_of(N_SELECT / 2);
    sl.ch[0] = make_or_fail(sizeof(int64_t), CAP_BUF);
    sl.ch[1] = make_or_fail(sizeof(int64_t), CAP_BUF);
    int64_t t0 = go_now();
    wg_add(&sl.wg, 2);
    spawn_or_fail(select_producer, (void *)(intptr_t)0);
    spawn_or_fail(select_producer, (void *)(intptr_t)1);
    int64_t va, vb, sum[2] = {0, 0}, cnt[2] = {0, 0};
    chan_case_t cases[2] = {
        {.chan = sl.ch[0], .op = CHAN_RECV, .elem = &va},
        {.chan = sl.ch[1], .op = CHAN_RECV, .elem = &vb},
    };
    while (cases[0].chan || cases[1].chan) {
        int i = chan_select(cases, 2, GO_FOREVER);
        if (i < 0 || i > 1)
            fail("chan_select returned %d", i);
        if (!cases[i].ok) {
            cases[i].chan = NULL; /* closed: never ready again, as Go's nil */
            continue;
        }
        sum[i] += i == 0 ? va : vb;
        cnt[i]++;
    }
    double el = (double)(go_now() - t0);
    wg_wait(&sl.wg);
    int64_t h = half;
    if (cnt[0] != h || cnt[1] != h || sum[0] != h * (h - 1) || sum[1] != h * h)
        fail("a: %ld items sum %ld, b: %ld items sum %ld", (long)cnt[0], (long)sum[0],
             (long)cnt[1], (long)sum[1]);
    chan_free(sl.ch[0]);
    chan_free(sl.ch[1]);
    result("select", el / (2.0 * (double)half), "ns/item");
}

/* ---- mutex: 8 goroutines contending on one mutex ------------------------ */

static struct {
    go_mutex_t mu;
    int64_t counter;
    long per;
    wg_t wg;
} mx = {.mu = GO_MUTEX_INIT};

static void mutex_loop(void *arg)
{
    (void)arg;
    for (long i = 0; i < mx.per; i++) {
        go_mutex_lock(&mx.mu);
        mx.counter++;
        go_mutex_unlock(&mx.mu);
    }
    wg_done(&mx.wg);
}

static void bench_mutex(void)
{
    long per = mx.per = size_of(N_MUTEX_PER);
    int64_t t0 = go_now();
    wg_add(&mx.wg, MUTEX_G);
    for (int g = 0; g < MUTEX_G; g++)
        spawn_or_fail(mutex_loop, NULL);
    wg_wait(&mx.wg);
    double el = (double)(go_now() - t0);
    if (mx.counter != (int64_t)MUTEX_G * per)
        fail("counter %ld, want %ld", (long)mx.counter, (long)MUTEX_G * per);
    result("mutex", el / ((double)MUTEX_G * (double)per), "ns/lock");
}

/* ---- parked: resident bytes per goroutine blocked on a receive ---------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size_pages = 0, res_pages = 0;
    if (!f || fscanf(f, "%ld %ld", &size_pages, &res_pages) != 2)
        fail("cannot read /proc/self/statm");
    fclose(f);
    return res_pages * sysconf(_SC_PAGESIZE);
}

/* Page-table memory of the process (VmPTE), which RSS does not include. */
static long pte_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmPTE: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb < 0)
        fail("no VmPTE in /proc/self/status");
    return kb * 1024;
}

static struct {
    chan_t *release;
    wg_t started, exited;
    _Atomic long released;
} pk;

static void parked_child(void *arg)
{
    (void)arg;
    wg_done(&pk.started);
    if (!chan_recv(pk.release, NULL))
        atomic_fetch_add_explicit(&pk.released, 1, memory_order_relaxed);
    wg_done(&pk.exited);
}

static void bench_parked(const char *name, long base)
{
    long n = size_of(base);
    long before = rss_bytes(), pt_before = pte_bytes();
    pk.release = make_or_fail(0, 0);
    wg_add(&pk.started, n);
    wg_add(&pk.exited, n);
    for (long i = 0; i < n; i++)
        spawn_or_fail(parked_child, NULL);
    wg_wait(&pk.started);
    go_sleep(20 * GO_MS); /* let the last ones reach the receive */
    long after = rss_bytes(), pt_after = pte_bytes();
    chan_close(pk.release);
    wg_wait(&pk.exited);
    long released = atomic_load(&pk.released);
    if (released != n)
        fail("%ld of %ld goroutines released", released, n);
    chan_free(pk.release);
    result(name, (double)(after - before) / (double)n, "B/goroutine");
    char pt_name[64];
    snprintf(pt_name, sizeof pt_name, "%s_pt", name);
    result(pt_name, (double)(pt_after - pt_before) / (double)n, "B/goroutine");
}

static void bench_parked100k(void) { bench_parked("parked100k", 100000); }
static void bench_parked1m(void) { bench_parked("parked1m", 1000000); }

/* ---- sleep: 100,000 goroutines sleeping 10 ms --------------------------- */

static struct {
    wg_t wg;
    _Atomic long early;
} sp;

static void sleeper(void *arg)
{
    (void)arg;
    int64_t t0 = go_now();
    go_sleep(SLEEP_FOR);
    if (go_now() - t0 < SLEEP_FOR)
        atomic_fetch_add_explicit(&sp.early, 1, memory_order_relaxed);
    wg_done(&sp.wg);
}

static void bench_sleep(void)
{
    long n = size_of(N_SLEEP);
    int64_t t0 = go_now();
    wg_add(&sp.wg, n);
    for (long i = 0; i < n; i++)
        spawn_or_fail(sleeper, NULL);
    wg_wait(&sp.wg);
    double el = (double)(go_now() - t0);
    long early = atomic_load(&sp.early);
    if (early != 0)
        fail("%ld goroutines woke early", early);
    result("sleep", el / 1e6, "ms");
}

/* ---- echo: TCP echo over 127.0.0.1 -------------------------------------- */

static void set_nodelay(int fd)
{
    int one = 1; /* as Go's net package does for every TCP connection */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A listener on 127.0.0.1 with a kernel-chosen port, written to *addr.
   The backlog is capped by net.core.somaxconn, the value Go's net.Listen
   asks for. */
static int listen_loopback(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t alen = sizeof *addr;
    if (fd < 0)
        fail("socket: %s", strerror(errno));
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &alen) != 0 || listen(fd, 65535) != 0)
        fail("bind/listen on 127.0.0.1: %s", strerror(errno));
    return fd;
}

/* Accepts until the listener is closed, one handler goroutine per
   connection (Go's "for { c := ln.Accept(); go handle(c) }"). */
struct acceptor {
    int lfd;
    void (*handler)(void *fd);
    wg_t done;
};

static void accept_loop(void *arg)
{
    struct acceptor *a = arg;
    for (;;) {
        int fd = go_accept(a->lfd, NULL, NULL);
        if (fd < 0)
            break; /* -EBADF once the listener is closed */
        set_nodelay(fd);
        spawn_or_fail(a->handler, (void *)(intptr_t)fd);
    }
    wg_done(&a->done);
}

static void start_acceptor(struct acceptor *a, int lfd, void (*handler)(void *))
{
    a->lfd = lfd;
    a->handler = handler;
    wg_add(&a->done, 1);
    spawn_or_fail(accept_loop, a);
}

static void stop_acceptor(struct acceptor *a)
{
    go_close(a->lfd);
    wg_wait(&a->done);
}

static struct {
    struct sockaddr_in addr;
    long rounds;
    chan_t *gate;
    wg_t ready, done, served;
    _Atomic long bad;
} ec;

static void echo_handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t k = go_read(fd, buf, sizeof buf);
        if (k <= 0)
            break;
        if (go_write(fd, buf, (size_t)k) != k)
            break;
    }
    go_close(fd);
    wg_done(&ec.served);
}

static void fill_msg(unsigned char *buf, int conn, long round)
{
    for (int i = 0; i < ECHO_MSG; i++)
        buf[i] = (unsigned char)(conn * 31 + round * 7 + i);
}

/* Writes one message, reads its echo and compares: 0, or -1 on failure. */
static int echo_round(int fd, int id, long round)
{
    unsigned char msg[ECHO_MSG], got[ECHO_MSG];
    size_t have = 0;
    fill_msg(msg, id, round);
    if (go_write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
        return -1;
    while (have < sizeof got) {
        ssize_t k = go_read(fd, got + have, sizeof got - have);
        if (k <= 0)
            return -1;
        have += (size_t)k;
    }
    return memcmp(msg, got, sizeof msg) == 0 ? 0 : -1;
}

static void echo_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || go_connect(fd, (struct sockaddr *)&ec.addr, sizeof ec.addr) != 0) {
        atomic_fetch_add(&ec.bad, 1);
        wg_done(&ec.ready);
        goto out;
    }
    set_nodelay(fd);
    wg_done(&ec.ready);
    chan_recv(ec.gate, NULL);
    for (long r = 0; r < ec.rounds; r++) {
        if (echo_round(fd, id, r) != 0) {
            atomic_fetch_add(&ec.bad, 1);
            break;
        }
    }
out:
    if (fd >= 0)
        go_close(fd);
    wg_done(&ec.done);
}

/* User plus system time of the whole process, in seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        fail("getrusage: %s", strerror(errno));
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* conns clients, each doing rounds_per_conn round trips (times the scale)
   against its own server goroutine, all started together once every
   connection is up; the figure is round trips per second over all, and
   (as <name>_cpu) the process's CPU time per round trip, which a loaded
   machine disturbs less than the wall clock. */
static void bench_echo(const char *name, int conns, long rounds_per_conn)
{
    struct acceptor acc = {0};
    ec.rounds = size_of(rounds_per_conn);
    start_acceptor(&acc, listen_loopback(&ec.addr), echo_handler);
    ec.gate = make_or_fail(0, 0);
    wg_add(&ec.ready, conns);
    wg_add(&ec.done, conns);
    wg_add(&ec.served, conns);
    for (int id = 0; id < conns; id++)
        spawn_or_fail(echo_client, (void *)(intptr_t)id);
    wg_wait(&ec.ready);
    double cpu0 = cpu_seconds();
    int64_t t0 = go_now();
    chan_close(ec.gate);
    wg_wait(&ec.done);
    double el = (double)(go_now() - t0);
    double cpu = cpu_seconds() - cpu0;
    long bad = atomic_load(&ec.bad);
    if (bad != 0)
        fail("%ld connections failed", bad);
    wg_wait(&ec.served); /* every server goroutine saw its client's EOF */
    stop_acceptor(&acc);
    chan_free(ec.gate);
    double trips = (double)conns * (double)ec.rounds;
    result(name, trips / (el / 1e9) / 1000.0, "krt/s");
    char cpu_name[64];
    snprintf(cpu_name, sizeof cpu_name, "%s_cpu", name);
    result(cpu_name, cpu * 1e6 / trips, "us/rt");
}

static void bench_echo32(void) { bench_echo("echo", 32, ECHO32_RT); }
static void bench_echo100(void) { bench_echo("echo100", 100, ECHO100_RT); }
static void bench_echo1000(void) { bench_echo("echo1000", 1000, ECHO1000_RT); }

/* ---- idleconn: resident bytes per idle TCP connection ------------------- */

/*
 * N connections on 127.0.0.1, each with a server goroutine parked in
 * go_read (64-byte buffer); the client ends are plain blocking descriptors
 * that no goroutine waits on (made with socket/connect, as the Go side
 * does with syscall.Socket/Connect), so the figure is the server side's:
 * goroutine, poll descriptor, buffer.  Socket buffers are kernel memory
 * and not in RSS.  Connections are made in batches that the backlog
 * always holds, each batch waited for until its handlers run.  Afterwards
 * every connection gets one byte, every server goroutine must echo it,
 * and every one must see its client's EOF: a broken state cannot pass.
 * Page tables (VmPTE), which RSS does not count, go to idleconn_pt.
 */
static struct {
    struct sockaddr_in addr;
    wg_t up, down;
    _Atomic long echoed;
} ic;

static void idle_handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char buf[IDLE_BUF];
    wg_done(&ic.up);
    for (;;) {
        ssize_t k = go_read(fd, buf, sizeof buf);
        if (k <= 0)
            break;
        if (go_write(fd, buf, (size_t)k) != k)
            break;
        atomic_fetch_add_explicit(&ic.echoed, k, memory_order_relaxed);
    }
    go_close(fd);
    wg_done(&ic.down);
}

/* How many connections fit: both ends live in this process, so 2 per
   connection plus a margin.  Raises the soft RLIMIT_NOFILE to what is
   needed (up to the hard limit; past it too when privileged). */
static long idle_conns(long want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)(2 * want + IDLE_FD_SLACK);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < need) {
        struct rlimit up = {.rlim_cur = need, .rlim_max = rl.rlim_max};
        if (rl.rlim_max < need)
            up.rlim_max = need;
        if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
            up.rlim_cur = up.rlim_max = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &up);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            fail("getrlimit: %s", strerror(errno));
    }
    if (rl.rlim_cur >= need)
        return want;
    long fit = ((long)rl.rlim_cur - IDLE_FD_SLACK) / 2;
    if (fit < 1)
        fail("RLIMIT_NOFILE %ld is too low", (long)rl.rlim_cur);
    fprintf(stderr, "bench_gort: idleconn: RLIMIT_NOFILE %ld, %ld connections instead of %ld\n",
            (long)rl.rlim_cur, fit, want);
    return fit;
}

static void idle_connect(int *cfd, long from, long to)
{
    wg_add(&ic.up, to - from);
    for (long i = from; i < to; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd[i] < 0 || connect(cfd[i], (struct sockaddr *)&ic.addr, sizeof ic.addr) != 0)
            fail("connection %ld: %s", i, strerror(errno));
    }
    wg_wait(&ic.up);
}

/* One byte to every connection, then every echo read back and checked. */
static void idle_check(const int *cfd, long n)
{
    for (long i = 0; i < n; i++) {
        unsigned char b = (unsigned char)(i * 7 + 1);
        if (write(cfd[i], &b, 1) != 1)
            fail("write to connection %ld: %s", i, strerror(errno));
    }
    for (long i = 0; i < n; i++) {
        unsigned char b = 0;
        ssize_t k = go_read(cfd[i], &b, 1);
        if (k != 1 || b != (unsigned char)(i * 7 + 1))
            fail("connection %ld echoed %zd byte(s), 0x%02x", i, k, b);
    }
}

static void bench_idleconn(void)
{
    long n = idle_conns(size_of(N_IDLE));
    int *cfd = malloc((size_t)n * sizeof *cfd);
    struct acceptor acc = {0};
    if (!cfd)
        fail("out of memory");
    memset(cfd, 0xff, (size_t)n * sizeof *cfd); /* resident before we measure */
    start_acceptor(&acc, listen_loopback(&ic.addr), idle_handler);
    wg_add(&ic.down, n);
    go_sleep(20 * GO_MS); /* the acceptor is parked in go_accept */
    long before = rss_bytes(), pt_before = pte_bytes();
    for (long i = 0; i < n; i += IDLE_BATCH)
        idle_connect(cfd, i, i + IDLE_BATCH < n ? i + IDLE_BATCH : n);
    go_sleep(20 * GO_MS); /* let the last handlers reach their read */
    long after = rss_bytes(), pt_after = pte_bytes();
    idle_check(cfd, n);
    for (long i = 0; i < n; i++)
        go_close(cfd[i]);
    wg_wait(&ic.down);
    stop_acceptor(&acc);
    long echoed = atomic_load(&ic.echoed);
    if (echoed != n)
        fail("server goroutines echoed %ld bytes, want %ld", echoed, n);
    free(cfd);
    result("idleconn", (double)(after - before) / (double)n, "B/conn");
    result("idleconn_pt", (double)(pt_after - pt_before) / (double)n, "B/conn");
    result("idleconn_n", (double)n, "conns");
}

/* ---- main --------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} workloads[] = {
    {"spawn", bench_spawn},       {"yield", bench_yield},
    {"pingpong", bench_pingpong}, {"buffered", bench_buffered},
    {"fanout", bench_fanout},     {"select", bench_select},
    {"mutex", bench_mutex},       {"parked100k", bench_parked100k},
    {"parked1m", bench_parked1m}, {"sleep", bench_sleep},
    {"echo", bench_echo32},       {"echo100", bench_echo100},
    {"echo1000", bench_echo1000}, {"idleconn", bench_idleconn},
};

static wg_t body_wg;

static void body(void *arg)
{
    void (*fn)(void) = *(void (**)(void))arg;
    fn();
    wg_done(&body_wg);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_gort <workload> <workers> [scale]\nworkloads:");
        for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
            fprintf(stderr, " %s", workloads[i].name);
        fputc('\n', stderr);
        return 2;
    }
    workload = argv[1];
    workers = atoi(argv[2]);
    if (workers < 1) {
        fprintf(stderr, "bench_gort: workers must be a positive integer\n");
        return 2;
    }
    if (argc > 3) {
        scale = strtod(argv[3], NULL);
        if (!(scale > 0)) {
            fprintf(stderr, "bench_gort: scale must be a positive number\n");
            return 2;
        }
    }
    void (*fn)(void) = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (strcmp(workloads[i].name, workload) == 0)
            fn = workloads[i].fn;
    if (!fn) {
        fprintf(stderr, "bench_gort: no workload \"%s\"\n", workload);
        return 2;
    }
    go_maxprocs(workers);
    wg_add(&body_wg, 1);
    spawn_or_fail(body, &fn);
    wg_wait(&body_wg);
    return 0;
}
