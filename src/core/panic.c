/*
 * panic.c - go_panic and the runtime's fatal errors.
 *
 * Go answers programming errors (close of a closed channel, a negative
 * WaitGroup counter) with a panic, and broken runtime invariants with a
 * fatal "throw".  C has no recovery, so both end the process: a message in
 * Go's words, the goroutine that hit it ("goroutine N [running]:", 0 on a
 * plain thread), a backtrace, then abort() so that a core dump or a
 * debugger sees the real stack.
 *
 * The message is formatted into a fixed buffer and written with one
 * write(2), so that two panicking threads do not interleave mid-line.
 * The signal-safe variant (used by the stack-overflow handler) avoids
 * stdio and malloc entirely.
 */
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

static void write_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Formats an unsigned number without stdio (signal-safe). */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static _Noreturn void die(const char *prefix, const char *msg)
{
    char line[64];
    size_t n;
    void *frames[64];
    int nframes;

    write_all(prefix, strlen(prefix));
    write_all(msg, strlen(msg));
    memcpy(line, "\n\ngoroutine ", 12);
    n = 12 + fmt_u64(line + 12, go_id());
    memcpy(line + n, " [running]:\n", 12);
    write_all(line, n + 12);
    nframes = backtrace(frames, 64);
    backtrace_symbols_fd(frames, nframes, STDERR_FILENO);
    abort();
}

_Noreturn void go_panic(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("panic: ", msg);
}

_Noreturn void gort__fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("fatal error: ", msg);
}

_Noreturn void gort__fatal_signal_safe(const char *msg)
{
    die("fatal error: ", msg);
}
