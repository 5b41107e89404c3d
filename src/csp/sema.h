/*
 * sema.h - the address-keyed wait table under the sync types (sema.c).
 *
 * Semaphores: a uint32_t counter anywhere in memory (zero is "no tokens"),
 * with no initialisation and no destroy, so that the sync types keep Go's
 * useful zero value.
 *
 * Notify lists: Go's ticket-based condition variable core, stored in the
 * fields of a go_cond_t.
 */
#ifndef GORT_CSP_SEMA_H
#define GORT_CSP_SEMA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>

#include <gort.h>

/* Waits until *addr > 0, then decrements it (Go's semacquire1).  lifo puts
 * the caller at the head of the address's queue (a mutex waiter that has
 * already waited once). */
void gort__semacquire(_Atomic uint32_t *addr, bool lifo);

/* Increments *addr and wakes one waiter on addr if there is one (Go's
 * semrelease1).  handoff: take the token on the waiter's behalf and yield
 * to it, so that no barging caller can steal it (starving mutexes). */
void gort__semrelease(_Atomic uint32_t *addr, bool handoff);

/* Go's notifyListAdd / Wait / NotifyOne / NotifyAll on c's fields. */
uint32_t gort__notify_list_add(go_cond_t *c);
void gort__notify_list_wait(go_cond_t *c, uint32_t ticket);
void gort__notify_list_notify_one(go_cond_t *c);
void gort__notify_list_notify_all(go_cond_t *c);

#endif /* GORT_CSP_SEMA_H */
