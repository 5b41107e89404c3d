/*
 * echo_server.c - a TCP echo server with one goroutine per connection.
 *
 *   echo_server [PORT] [--max-conns N]
 *
 * Listens on 127.0.0.1:PORT (default 0: an ephemeral port) and prints
 * "listening on 127.0.0.1:PORT".  Every accepted connection gets its own
 * goroutine that reads and writes back with plain blocking-style calls
 * (go_read, go_write): while a connection waits for data its goroutine is
 * parked in the netpoller and costs no thread.  With --max-conns N the
 * server stops accepting after N connections and exits once they have all
 * closed (so a test can run it to completion).
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

static wg_t conns_wg = WG_INIT;
static _Atomic long long bytes_echoed;
static _Atomic int conns_closed, conn_errors;

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = go_read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && n != -ECONNRESET)
                atomic_fetch_add(&conn_errors, 1);
            break;
        }
        if (go_write(fd, buf, (size_t)n) != n) {
            atomic_fetch_add(&conn_errors, 1);
            break;
        }
        atomic_fetch_add_explicit(&bytes_echoed, n, memory_order_relaxed);
    }
    go_close(fd);
    atomic_fetch_add(&conns_closed, 1);
    wg_done(&conns_wg);
}

struct acceptor {
    int lfd;
    long max_conns; /* 0: forever */
};

static void accept_loop(void *arg)
{
    struct acceptor *a = arg;
    int one = 1;
    for (long n = 0; a->max_conns == 0 || n < a->max_conns;) {
        int fd = go_accept(a->lfd, NULL, NULL);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                fprintf(stderr, "echo_server: accept: %s (pausing)\n", strerror(-fd));
                go_sleep(10 * GO_MS);
                continue;
            }
            fprintf(stderr, "echo_server: accept: %s\n", strerror(-fd));
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        wg_add(&conns_wg, 1);
        if (go_spawn(serve_conn, (void *)(intptr_t)fd) != 0) {
            fprintf(stderr, "echo_server: cannot start a goroutine\n");
            go_close(fd);
            wg_done(&conns_wg);
            continue;
        }
        n++;
    }
    wg_done(&conns_wg); /* the acceptor's own count */
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_server [PORT] [--max-conns N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct acceptor a = {.lfd = -1, .max_conns = 0};
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof addr;
    long port = 0;
    int one = 1;

    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) {
            a.max_conns = strtol(argv[++i], &end, 10);
            if (*end || a.max_conns < 1)
                usage();
        } else {
            port = strtol(argv[i], &end, 10);
            if (*end || port < 0 || port > 65535)
                usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    a.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a.lfd < 0) {
        perror("echo_server: socket");
        return 1;
    }
    setsockopt(a.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (bind(a.lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(a.lfd, 4096) < 0 ||
        getsockname(a.lfd, (struct sockaddr *)&addr, &len) < 0) {
        perror("echo_server: bind/listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    wg_add(&conns_wg, 1);
    if (go_spawn(accept_loop, &a) != 0) {
        fprintf(stderr, "echo_server: cannot start the acceptor\n");
        return 1;
    }
    wg_wait(&conns_wg); /* with --max-conns: every connection closed */
    go_close(a.lfd);
    printf("served %d connections, %lld bytes echoed, %d errors\n", atomic_load(&conns_closed),
           (long long)atomic_load(&bytes_echoed), atomic_load(&conn_errors));
    return atomic_load(&conn_errors) ? 1 : 0;
}
