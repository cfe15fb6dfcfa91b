// SPDX-License-Identifier: Apache-2.0
/*
 * The status writer (see writer.h). Its queue is its own, under its own lock;
 * it takes ctl.lock only to read whether this replica leads and to count, and
 * calls back (writer_lost_fn, which takes ctl.lock) for what it drops unsent;
 * never while it holds its own lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller.h"
#include "hmap.h"
#include "k8s.h"
#include "log.h"
#include "writer.h"

/* One policy's status, not yet sent. */
struct patch {
	struct status_write *w;
	int64_t due_ms;		/* CLOCK_MONOTONIC: not before (a retry) */
};

struct writer {
	struct ctl *c;
	pthread_t thread;
	struct k8s_client *kc;
	writer_lost_fn *lost;	/* told of PATCHes dropped unsent */
	pthread_mutex_t lock;	/* what follows */
	pthread_cond_t wake;	/* on CLOCK_MONOTONIC */
	struct hmap patches;	/* status path -> struct patch */
	struct status_write *ev, **ev_tail;	/* Events, oldest first */
	int nev;
	bool last_event;	/* the last write taken was an Event: a PATCH goes next */
	uint64_t rng;		/* the retries' jitter */
	bool stop;
};

static int64_t now_ms(void)
{
	return mono_ns() / 1000000;
}

static void patch_free(struct patch *p)
{
	if (p)
		status_write_free(p->w);
	free(p);
}

/* A PATCH into the queue, replacing an older one of its policy. Under wr->lock.
 * Out of memory: w is given back, for drop_unsent(). */
static struct status_write *queue_patch(struct writer *wr, struct status_write *w,
					int64_t due_ms)
{
	struct patch *p = hmap_get(&wr->patches, w->path);

	if (p) {
		status_write_free(p->w);
		p->w = w;
		p->due_ms = due_ms;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p) {
		p->w = w;
		p->due_ms = due_ms;
	}
	if (!p || hmap_put(&wr->patches, w->path, p, NULL)) {
		log_warn("status %s: out of memory: not written now", w->path);
		free(p);
		return w;
	}
	return NULL;
}

/* PATCHes dropped unsent (linked by next): the reconcile thread writes them again. */
static void drop_unsent(struct writer *wr, struct status_write *list)
{
	while (list) {
		struct status_write *w = list;

		list = w->next;
		if (wr->lost)
			wr->lost(wr->c, w->policy);
		status_write_free(w);
	}
}

void writer_put(struct writer *wr, struct status_write *list)
{
	struct status_write *unsent = NULL, *u;
	uint64_t dropped = 0;

	pthread_mutex_lock(&wr->lock);
	while (list) {
		struct status_write *w = list;

		list = w->next;
		w->next = NULL;
		if (strcmp(w->method, "POST")) {
			if ((u = queue_patch(wr, w, 0))) {
				u->next = unsent;
				unsent = u;
			}
		} else if (wr->nev < WRITER_MAX_EVENTS) {
			*wr->ev_tail = w;
			wr->ev_tail = &w->next;
			wr->nev++;
		} else {	/* Events are best effort: the status says it all */
			status_write_free(w);
			dropped++;
		}
	}
	pthread_cond_signal(&wr->wake);
	pthread_mutex_unlock(&wr->lock);
	drop_unsent(wr, unsent);
	if (dropped) {
		ctl_lock(wr->c);
		wr->c->stats.events_dropped += dropped;
		ctl_unlock(wr->c);
	}
}

/* A PATCH that is due, taken from the queue; else NULL and *ret_first, the
 * earliest due time (0: none waits). Under wr->lock. */
static struct status_write *due_patch(struct writer *wr, int64_t now, int64_t *ret_first)
{
	*ret_first = 0;
	hmap_for_each(&wr->patches, it) {
		struct patch *p = it->val;
		struct status_write *w = p->w;

		if (p->due_ms <= now) {
			free(hmap_del_entry(&wr->patches, it));
			return w;
		}
		if (!*ret_first || p->due_ms < *ret_first)
			*ret_first = p->due_ms;
	}
	return NULL;
}

/* The oldest Event, taken from the queue, or NULL. Under wr->lock. */
static struct status_write *first_event(struct writer *wr)
{
	struct status_write *w = wr->ev;

	if (!w)
		return NULL;
	wr->ev = w->next;
	if (!wr->ev)
		wr->ev_tail = &wr->ev;
	wr->nev--;
	w->next = NULL;
	return w;
}

/* The next write that is due: Events and statuses in turn (a pile of Events
 * does not hold the statuses back); NULL when stopping. Waits. */
static struct status_write *next_write(struct writer *wr)
{
	struct status_write *w = NULL;

	pthread_mutex_lock(&wr->lock);
	while (!wr->stop && !w) {
		int64_t first = 0;

		/* the other kind first; either way due_patch gives first when none is due */
		w = wr->last_event ? due_patch(wr, now_ms(), &first) : first_event(wr);
		if (!w)
			w = wr->last_event ? first_event(wr) : due_patch(wr, now_ms(), &first);
		if (w) {
			wr->last_event = !strcmp(w->method, "POST");
			break;
		}
		if (first) {
			struct timespec ts = { .tv_sec = first / 1000,
					       .tv_nsec = (first % 1000) * 1000000 };

			pthread_cond_timedwait(&wr->wake, &wr->lock, &ts);
		} else {
			pthread_cond_wait(&wr->wake, &wr->lock);
		}
	}
	pthread_mutex_unlock(&wr->lock);
	return w;
}

/* After the failures-th failure in a row: WRITER_RETRY_S, doubled each time up
 * to a minute, from half to one and a half of it (agents' policies failing
 * together do not come back together), or the server's Retry-After if longer. */
static int64_t retry_in_ms(struct writer *wr, int failures, int retry_after_s)
{
	int64_t base = (int64_t)WRITER_RETRY_S * 1000 << (failures < 5 ? failures - 1 : 4);

	if (base > 60000)
		base = 60000;
	wr->rng ^= wr->rng << 13;	/* xorshift64 */
	wr->rng ^= wr->rng >> 7;
	wr->rng ^= wr->rng << 17;
	base = base / 2 + (int64_t)(wr->rng % (uint64_t)base);
	return retry_after_s * 1000LL > base ? retry_after_s * 1000LL : base;
}

/* A PATCH that failed, queued again unless a newer status came meanwhile. */
static void retry_later(struct writer *wr, struct status_write *w, int retry_after_s)
{
	struct status_write *unsent = NULL;

	pthread_mutex_lock(&wr->lock);
	if (!wr->stop && !hmap_get(&wr->patches, w->path))
		unsent = queue_patch(wr, w, now_ms() + retry_in_ms(wr, ++w->failures,
								   retry_after_s));
	else	/* stopping, or a newer one came */
		status_write_free(w);
	pthread_mutex_unlock(&wr->lock);
	drop_unsent(wr, unsent);
}

/* A status for a policy deleted since, or deleted and made again (its uid
 * differs): not written (the new one's runtime writes its own). */
static bool policy_gone(struct ctl *c, const struct status_write *w)
{
	const struct policy *p;
	bool gone;

	if (!w->policy || !w->uid)
		return false;
	pthread_rwlock_rdlock(&c->cache_lock);
	p = hmap_get(&c->policies, w->policy);
	gone = !p || strcmp(p->uid ? p->uid : "", w->uid);
	pthread_rwlock_unlock(&c->cache_lock);
	return gone;
}

static void send_one(struct writer *wr, struct status_write *w)
{
	struct ctl *c = wr->c;
	bool event = !strcmp(w->method, "POST"), ok, leader;
	struct k8s_response resp;

	ctl_lock(c);
	leader = c->leader;
	ctl_unlock(c);
	if (!leader) {	/* the new leader writes what it sees; should we lead again,
			 * our status is written again (an Event is not) */
		if (event)
			status_write_free(w);
		else
			drop_unsent(wr, w);
		return;
	}
	if (!event && policy_gone(c, w)) {
		status_write_free(w);
		return;
	}
	ok = !k8s_request(wr->kc, w->method, w->path,
			  event ? NULL : "application/merge-patch+json", w->body, &resp) &&
	     resp.status == (event ? 201 : 200);
	/* a 404: the policy was deleted meanwhile, fine */
	if (!ok && resp.status != 404 && !ctl_stopping(c))
		log_warn("%s %s: HTTP %ld: %s", event ? "event" : "status", w->path, resp.status,
			 k8s_response_message(&resp));
	if (!event) {
		ctl_lock(c);
		if (ok)
			c->stats.status_writes++;
		else
			c->stats.status_errors++;
		ctl_unlock(c);
	}
	if (!ok && !event && resp.status != 404 && !ctl_stopping(c))
		retry_later(wr, w, resp.retry_after);
	else
		status_write_free(w);
	k8s_response_free(&resp);
}

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	struct status_write *w;

	while ((w = next_write(wr)))
		send_one(wr, w);
	return NULL;
}

struct writer *writer_start(struct ctl *c, writer_lost_fn *lost)
{
	struct writer *wr = calloc(1, sizeof(*wr));
	pthread_condattr_t ca;
	int err;

	if (!wr || !(wr->kc = k8s_client_new(&c->kcfg))) {
		free(wr);
		return NULL;
	}
	wr->c = c;
	wr->lost = lost;
	wr->ev_tail = &wr->ev;
	wr->rng = (uint64_t)mono_ns() | 1;
	k8s_client_set_timeout(wr->kc, WRITER_TIMEOUT_MS);
	k8s_client_set_stop(wr->kc, &c->stop);
	pthread_mutex_init(&wr->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wr->wake, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&wr->thread, NULL, writer_main, wr);
	if (err) {
		log_error("status writer: cannot start a thread: %s", strerror(err));
		pthread_cond_destroy(&wr->wake);
		pthread_mutex_destroy(&wr->lock);
		k8s_client_free(wr->kc);
		free(wr);
		return NULL;
	}
	return wr;
}

void writer_stop(struct writer *wr)
{
	if (!wr)
		return;
	pthread_mutex_lock(&wr->lock);
	wr->stop = true;
	pthread_cond_signal(&wr->wake);
	pthread_mutex_unlock(&wr->lock);
	pthread_join(wr->thread, NULL);
	hmap_for_each(&wr->patches, it)
		patch_free(it->val);
	hmap_free(&wr->patches);
	while (wr->ev) {
		struct status_write *w = wr->ev;

		wr->ev = w->next;
		status_write_free(w);
	}
	pthread_cond_destroy(&wr->wake);
	pthread_mutex_destroy(&wr->lock);
	k8s_client_free(wr->kc);
	free(wr);
}

int writer_pending(struct writer *wr)
{
	int n;

	pthread_mutex_lock(&wr->lock);
	n = (int)wr->patches.n + wr->nev;
	pthread_mutex_unlock(&wr->lock);
	return n;
}
