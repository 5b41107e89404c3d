/* panic.h - fatal errors: go_panic's "panic:" and the runtime's "fatal error:". */
#ifndef GORT_PANIC_H
#define GORT_PANIC_H

/* Prints "fatal error: <msg>", the goroutine and a backtrace, then aborts.
   For broken invariants that Go reports with throw(). */
_Noreturn void gort__fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, async-signal-safe, for the SIGSEGV handler: no stdio, no malloc. */
_Noreturn void gort__fatal_signal_safe(const char *msg);

#endif
