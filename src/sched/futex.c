/*
 * futex.c - the two futex operations the runtime sleeps and wakes with.
 *
 * Private futexes (the runtime never shares them across processes).  A
 * deadline is absolute go_now() time (CLOCK_MONOTONIC), passed to the
 * kernel as an absolute timeout through FUTEX_WAIT_BITSET so that a
 * spurious wake-up never stretches the wait.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* Returns 0 when woken (or the value had changed), -ETIMEDOUT, -EINTR. */
int gort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    long r;
    int saved = errno;
    if (deadline >= 0) {
        ts.tv_sec = deadline / GO_S;
        ts.tv_nsec = deadline % GO_S;
        tsp = &ts;
    }
    r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                val, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r < 0) {
        r = errno == ETIMEDOUT ? -ETIMEDOUT : errno == EINTR ? -EINTR : 0;
    }
    errno = saved;
    return (int)r;
}

void gort__futex_wake(_Atomic uint32_t *addr, int n)
{
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
    errno = saved;
}
