/*
 * csp.h - what the CSP layer (channels, select, the semaphore table and the
 * sync types) needs from the rest of the runtime, in one place.
 *
 * The layer is built only on:
 *   - the waiter protocol of sched/park.h (prepare / claim / wake / park);
 *   - gort__procyield, gort__can_spin, gort__in_goroutine, gort__fastrand;
 *   - go_now, go_yield, go_panic from the public API;
 *   - gort__fatal (core/panic.h) for Go's unrecoverable "fatal error:"s.
 */
#ifndef GORT_CSP_H
#define GORT_CSP_H

#include <gort.h>

#include "sched/park.h"

#if defined(__has_include)
#if __has_include("core/panic.h")
#include "core/panic.h"
#endif
#endif

/* Prints "fatal error: <message>", the goroutine and a backtrace, then
 * aborts (core/panic.c).  Declared here too, identically, so that this layer
 * builds on its own. */
_Noreturn void gort__fatal(const char *fmt, ...);

#define GORT_LIKELY(x) __builtin_expect(!!(x), 1)
#define GORT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* A park commit that only releases one gort_lock_t (lock.h). */
void gort__unlock_commit(void *lock);

/* Parks the caller until the end of time (nil channel, empty select). */
_Noreturn void gort__block_forever(void);

/* Backs off politely while waiting for another thread's short step: a few
 * pause instructions first, then go_yield (goroutine) or sched_yield. */
void gort__backoff(unsigned *iter);

#endif /* GORT_CSP_H */
