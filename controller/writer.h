/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_WRITER_H
#define CONTROLLER_WRITER_H
/*
 * The status writer: a thread of its own sends the policies' status PATCHes
 * and their Events, so that an API server slow to answer never holds up the
 * reconcile thread (a policy change waits for no status write of another).
 *
 * Bounded: one PATCH pending per policy (a newer status replaces the one not
 * yet sent: only the last counts) and at most WRITER_MAX_EVENTS Events, in
 * order (more are dropped, counted in ctl.stats.events_dropped); Events and
 * statuses are sent in turn. A PATCH that failed is tried again after
 * WRITER_RETRY_S, doubled at each failure up to a minute, with jitter (or the
 * server's Retry-After), unless a newer one came; a 404 is not, nor a status
 * of a policy deleted since or made again under its name (its uid differs).
 * Only the leader writes: what is pending when this replica is no longer the
 * leader is dropped (the new leader writes it).
 */
#include "status.h"

struct ctl;
struct writer;

#define WRITER_MAX_EVENTS 256
#define WRITER_RETRY_S 5
#define WRITER_TIMEOUT_MS 10000L	/* a write, whole */

/* lost (may be NULL) is told of each PATCH dropped unsent (not the leader at
 * the time, out of memory), with its policy's key (NULL when the write has
 * none); it is called without the writer's lock. */
typedef void writer_lost_fn(struct ctl *c, const char *policy_key);
struct writer *writer_start(struct ctl *c, writer_lost_fn *lost);
/* After ctl.stop is set: a write under way is given up; what is pending is dropped. */
void writer_stop(struct writer *w);
/* Takes the list (linked by next) and owns it. Any thread, without ctl.lock. */
void writer_put(struct writer *w, struct status_write *list);
/* PATCHes and Events not sent yet (for tests). */
int writer_pending(struct writer *w);
#endif
