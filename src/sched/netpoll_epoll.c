/*
 * netpoll_epoll.c - the epoll backend of the netpoller.
 *
 * One epoll instance; descriptors are added once, edge-triggered for both
 * directions (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), so a descriptor
 * costs no system call per wait: readiness arrives as an edge and the core
 * remembers it until someone consumes it.  An eventfd, registered with a
 * NULL token, is how another thread interrupts a blocked epoll_pwait2
 * (new timer earlier than the sleep, work for an idle runtime); an atomic
 * flag makes repeated breaks cost one write until the poller drains it.
 *
 * Timeouts use epoll_pwait2 (nanoseconds) where the kernel has it (probed
 * once, when the instance is made); otherwise epoll_wait with the delay
 * rounded up to whole milliseconds.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "netpoll.h"
#include "runtime.h"

static int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t break_pending;  /* 1: a wake-up is in the eventfd */
static bool have_pwait2; /* written once in np_open, before any wait */

int gort__np_open(void)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (breakfd < 0)
        return -errno;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) < 0)
        return -errno;
    {
        struct epoll_event probe;
        struct timespec zero = {0, 0};
        have_pwait2 = epoll_pwait2(epfd, &probe, 1, &zero, NULL) >= 0;
    }
    return 0;
}

int gort__np_register(int fd, void *token)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = token};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return errno == EEXIST ? 0 : -errno;
    return 0;
}

int gort__np_rearm(int fd, void *token)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = token};
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void gort__np_unregister(int fd)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

void gort__np_break(void)
{
    uint64_t one = 1;
    ssize_t r;
    /* acq_rel: pairs with the poller's exchange that clears the flag. */
    if (atomic_exchange_explicit(&break_pending, 1, memory_order_acq_rel))
        return;
    do
        r = write(breakfd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}

int gort__np_wait(int64_t delay, int (*ready)(void *token, int events))
{
    struct epoll_event evs[128];
    int n, count = 0;
    if (have_pwait2) {
        struct timespec ts = {.tv_sec = delay / GO_S, .tv_nsec = delay % GO_S};
        n = epoll_pwait2(epfd, evs, 128, delay < 0 ? NULL : &ts, NULL);
    } else {
        int ms = delay < 0 ? -1 : (int)((delay + GO_MS - 1) / GO_MS);
        n = epoll_wait(epfd, evs, 128, ms);
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int what = 0;
        if (!evs[i].data.ptr) {
            uint64_t v;
            /* The eventfd is level-triggered: a non-blocking poll (a busy
               worker, the monitor) that drained it would steal the
               wake-up from the poller blocked beside it, which would then
               sleep on past a new, earlier timer.  Leave it to a poll
               that can block. */
            if (delay == 0)
                continue;
            while (read(breakfd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            atomic_store_explicit(&break_pending, 0, memory_order_release);
            continue;
        }
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            what |= NP_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            what |= NP_WRITE;
        count += ready(evs[i].data.ptr, what);
    }
    return count;
}
