/*
 * netpoll.h - the netpoller's backend interface (one file per backend).
 *
 * The poller core (netpoll.c) owns descriptors and their waiting
 * goroutines; a backend only watches descriptors and reports readiness.
 * Linux's epoll is the backend (netpoll_epoll.c): one instance for the
 * whole runtime, each descriptor registered once, edge-triggered.
 */
#ifndef GORT_NETPOLL_H
#define GORT_NETPOLL_H
#include <stdint.h>

enum { NP_READ = 1, NP_WRITE = 2 };

int gort__np_open(void);                    /* 0 or -errno */
int gort__np_register(int fd, void *token); /* 0 or -errno (-EPERM: not pollable) */
void gort__np_unregister(int fd);
/* Re-arms fd's registration (an edge follows if it is ready now); -ENOENT
   if this open file is not registered (a plain close() dropped it and the
   number was reused), -EBADF if fd is closed. */
int gort__np_rearm(int fd, void *token);
void gort__np_break(void);                  /* makes a blocked np_wait return */
/* Waits up to delay ns (<0: forever) and calls ready(token, NP_*) for each
   event; returns the sum of what ready() returned (goroutines readied).
   A call with delay 0 never consumes a pending np_break: that wake-up
   belongs to the poller blocked in np_wait, if any. */
int gort__np_wait(int64_t delay, int (*ready)(void *token, int events));
#endif
