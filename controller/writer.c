// SPDX-License-Identifier: Apache-2.0
/*
 * The status writer (see writer.h). Its queue is its own, under its own lock;
 * it takes ctl.lock only to read whether this replica leads and to count, and
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
	pthread_mutex_t lock;	/* what follows */
	pthread_cond_t wake;	/* on CLOCK_MONOTONIC */
	struct hmap patches;	/* status path -> struct patch */
	struct status_write *ev, **ev_tail;	/* Events, oldest first */
	int nev;
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

/* A PATCH into the queue, replacing an older one of its policy. Under wr->lock. */
static void queue_patch(struct writer *wr, struct status_write *w, int64_t due_ms)
{
	struct patch *p = hmap_get(&wr->patches, w->path);

	if (p) {
		status_write_free(p->w);
		p->w = w;
		p->due_ms = due_ms;
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p) {
		p->w = w;
		p->due_ms = due_ms;
	}
	if (!p || hmap_put(&wr->patches, w->path, p, NULL)) {
		/* out of memory: the reconcile thread writes it again at its rewrite */
		log_warn("status %s: out of memory: not written", w->path);
		if (p)
			free(p);
		status_write_free(w);
	}
}

void writer_put(struct writer *wr, struct status_write *list)
{
	uint64_t dropped = 0;

	pthread_mutex_lock(&wr->lock);
	while (list) {
		struct status_write *w = list;

		list = w->next;
		w->next = NULL;
		if (strcmp(w->method, "POST")) {
			queue_patch(wr, w, 0);
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
	if (dropped) {
		ctl_lock(wr->c);
		wr->c->stats.events_dropped += dropped;
		ctl_unlock(wr->c);
	}
}

/* The next write that is due, oldest Event first; NULL when stopping. Waits. */
static struct status_write *next_write(struct writer *wr)
{
	struct status_write *w = NULL;

	pthread_mutex_lock(&wr->lock);
	while (!wr->stop && !w) {
		int64_t now = now_ms(), first = 0;

		if ((w = wr->ev)) {
			wr->ev = w->next;
			if (!wr->ev)
				wr->ev_tail = &wr->ev;
			wr->nev--;
			w->next = NULL;
			break;
		}
		hmap_for_each(&wr->patches, it) {
			struct patch *p = it->val;

			if (p->due_ms <= now) {
				w = p->w;
				free(hmap_del_entry(&wr->patches, it));
				break;
			}
			if (!first || p->due_ms < first)
				first = p->due_ms;
		}
		if (w)
			break;
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

/* A PATCH that failed, queued again unless a newer status came meanwhile. */
static void retry_later(struct writer *wr, struct status_write *w)
{
	pthread_mutex_lock(&wr->lock);
	if (!wr->stop && !hmap_get(&wr->patches, w->path))
		queue_patch(wr, w, now_ms() + WRITER_RETRY_S * 1000);
	else
		status_write_free(w);
	pthread_mutex_unlock(&wr->lock);
}

static void send_one(struct writer *wr, struct status_write *w)
{
	struct ctl *c = wr->c;
	bool event = !strcmp(w->method, "POST"), ok, leader;
	struct k8s_response resp;

	ctl_lock(c);
	leader = c->leader;
	ctl_unlock(c);
	if (!leader) {	/* the new leader writes what it sees */
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
		retry_later(wr, w);
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

struct writer *writer_start(struct ctl *c)
{
	struct writer *wr = calloc(1, sizeof(*wr));
	pthread_condattr_t ca;
	int err;

	if (!wr || !(wr->kc = k8s_client_new(&c->kcfg))) {
		free(wr);
		return NULL;
	}
	wr->c = c;
	wr->ev_tail = &wr->ev;
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
