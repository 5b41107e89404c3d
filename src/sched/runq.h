/* runq.h - per-P lock-free run queue (see runq.c). */
#ifndef GORT_RUNQ_H
#define GORT_RUNQ_H
#include "runtime.h"

void gort__runq_put(struct gort_p *p, struct gort_g *g, bool next);
struct gort_g *gort__runq_get(struct gort_p *p);
struct gort_g *gort__runq_steal(struct gort_p *p, struct gort_p *victim, bool steal_next);
bool gort__runq_empty(struct gort_p *p);
bool gort__runq_empty_any(void);   /* global and every P's */
/* Global queue, sched.lock held by the caller. */
void gort__globrunq_put_locked(struct gort_g *g);
struct gort_g *gort__globrunq_get_locked(struct gort_p *p, int32_t max);
#endif
