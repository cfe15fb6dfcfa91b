// SPDX-License-Identifier: Apache-2.0
/*
 * The lease thread (see lease.h). A holder is alive while its renewTime keeps
 * changing; one not seen to change for a lease duration (on our clock: the
 * clocks of two replicas need not agree) is taken over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller.h"
#include "lease.h"
#include "log.h"
#include "reconcile.h"
#include "server.h"

struct lease {
	struct ctl_worker w;	/* first */
	char path[512];
	char observed[256];	/* holder|renewTime last seen */
	int64_t observed_at, last_renew;	/* CLOCK_MONOTONIC seconds */
};

static int64_t mono_s(void)
{
	return mono_ns() / 1000000000;
}

static void micro_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static void set_leader(struct ctl *c, bool leader)
{
	bool changed;

	ctl_lock(c);
	if (!c->lease_known) {
		c->lease_known = true;
		pthread_cond_broadcast(&c->wake);	/* the auth thread waits for it */
	}
	changed = c->leader != leader;
	if (changed) {
		log_notice("%s the leader (lease %s/%s, identity %s)",
			   leader ? "became" : "no longer", c->opt.lease_ns, c->opt.lease_name,
			   c->opt.identity);
		c->leader = leader;
	}
	ctl_unlock(c);
	if (changed)	/* the leader writes status; a follower refuses agents */
		reconcile_changed(c, RC_ALL, NULL);
	server_wake(c);
}

static void set_spec(cJSON *spec, const char *name, cJSON *v)
{
	cJSON_DeleteItemFromObject(spec, name);
	cJSON_AddItemToObject(spec, name, v);
}

static char *lease_body(const struct ctl *c, const cJSON *old, const char *holder, bool taking,
			bool release)
{
	cJSON *o = old ? cJSON_Duplicate(old, 1) : cJSON_CreateObject(), *spec, *meta;
	const cJSON *tr;
	char t[40], *s;

	if (!o)
		return NULL;
	micro_time(t, sizeof(t));
	cJSON_DeleteItemFromObject(o, "status");
	if (!old) {
		cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
		cJSON_AddStringToObject(o, "kind", "Lease");
		meta = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(meta, "name", c->opt.lease_name);
		cJSON_AddStringToObject(meta, "namespace", c->opt.lease_ns);
	}
	spec = cJSON_GetObjectItem(o, "spec");
	if (!spec)
		spec = cJSON_AddObjectToObject(o, "spec");
	tr = cJSON_GetObjectItem(spec, "leaseTransitions");
	if (taking) {
		set_spec(spec, "leaseTransitions",
			 cJSON_CreateNumber(cJSON_IsNumber(tr) ? tr->valueint + 1 : 0));
		set_spec(spec, "acquireTime", cJSON_CreateString(t));
	}
	set_spec(spec, "holderIdentity", cJSON_CreateString(holder));
	set_spec(spec, "leaseDurationSeconds",
		 cJSON_CreateNumber(release ? 1 : c->opt.lease_duration_s));
	set_spec(spec, "renewTime", cJSON_CreateString(t));
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* No Lease yet: creates it, held by us. */
static bool lease_create(struct lease *l)
{
	char *body = lease_body(l->w.c, NULL, l->w.c->opt.identity, true, false), path[512];
	struct k8s_response r;
	bool ok;

	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases",
		 l->w.c->opt.lease_ns);
	ok = body && !k8s_request(l->w.kc, "POST", path, NULL, body, &r) && r.status == 201;
	if (body && !ok)
		log_warn("lease: create: %s", k8s_response_message(&r));
	if (body)
		k8s_response_free(&r);
	free(body);
	return ok;
}

/* The Lease as read: renews or takes it when it is ours or its holder died. */
static bool lease_update(struct lease *l, const cJSON *cur, bool *ret_have)
{
	const char *holder = k8s_str(cur, "spec.holderIdentity"), *me = l->w.c->opt.identity;
	const char *renew = k8s_str(cur, "spec.renewTime");
	struct k8s_response r;
	char rec[256], *body;
	bool ok;

	snprintf(rec, sizeof(rec), "%s|%s", holder ? holder : "", renew ? renew : "");
	if (strcmp(rec, l->observed)) {
		snprintf(l->observed, sizeof(l->observed), "%s", rec);
		l->observed_at = mono_s();
	}
	*ret_have = true;
	if (holder && *holder && strcmp(holder, me) &&
	    mono_s() - l->observed_at <= l->w.c->opt.lease_duration_s)
		return false;	/* another holder, alive */
	if (holder && *holder && strcmp(holder, me))
		log_notice("lease: trying to take it from %s, not renewed for %lld s", holder,
			   (long long)(mono_s() - l->observed_at));
	body = lease_body(l->w.c, cur, me, !holder || strcmp(holder, me), false);
	ok = body && !k8s_request(l->w.kc, "PUT", l->path, NULL, body, &r) && r.status == 200;
	if (body && !ok && r.status != 409)
		log_warn("lease: update: HTTP %ld: %s", r.status, k8s_response_message(&r));
	else if (body && !ok)
		log_debug("lease: update: conflict (written by another replica meanwhile)");
	if (body)
		k8s_response_free(&r);
	free(body);
	*ret_have = ok;
	return ok;
}

/* One round: true when we hold the lease; *ret_have when the API server answered. */
static bool lease_round(struct lease *l, bool *ret_have)
{
	struct k8s_response r;
	bool leader = false;

	*ret_have = false;
	if (k8s_request(l->w.kc, "GET", l->path, NULL, NULL, &r) == 0 && r.status == 404)
		leader = *ret_have = lease_create(l);
	else if (r.status == 200)
		leader = lease_update(l, r.json, ret_have);
	else
		log_warn("lease: get: HTTP %ld: %s", r.status, k8s_response_message(&r));
	k8s_response_free(&r);
	return leader;
}

/*
 * Hands the lease over at once instead of after it expires; only while it is
 * still ours (a replica that took it while we were slow keeps it).
 */
static void lease_release(struct lease *l)
{
	const char *me = l->w.c->opt.identity, *holder;
	struct k8s_response r;
	char *body = NULL;

	if (k8s_request(l->w.kc, "GET", l->path, NULL, NULL, &r) || r.status != 200) {
		log_warn("lease: release: get: HTTP %ld: %s", r.status, k8s_response_message(&r));
		k8s_response_free(&r);
		return;
	}
	holder = k8s_str(r.json, "spec.holderIdentity");
	if (!holder || strcmp(holder, me)) {
		log_info("lease: not released: held by %s", holder && *holder ? holder : "nobody");
		k8s_response_free(&r);
		return;
	}
	body = lease_body(l->w.c, r.json, "", false, true);
	k8s_response_free(&r);
	if (body && !k8s_request(l->w.kc, "PUT", l->path, NULL, body, &r)) {
		if (r.status == 200)
			log_info("lease: released");
		else
			log_warn("lease: release: HTTP %ld: %s", r.status, k8s_response_message(&r));
		k8s_response_free(&r);
	}
	free(body);
}

static void *lease_main(void *arg)
{
	struct lease *l = arg;
	struct ctl *c = l->w.c;
	bool leader = false;

	while (!ctl_stopping(c)) {
		struct timespec until;
		bool have;

		leader = lease_round(l, &have);
		if (have) {
			ctl_lock(c);
			c->lease_ok_unix = time(NULL);
			ctl_unlock(c);
		}
		log_debug("lease: round: %s%s", leader ? "held" : "not held",
			  have ? "" : " (no answer)");
		if (leader) {
			l->last_renew = mono_s();
			set_leader(c, true);
		} else if (have || mono_s() - l->last_renew > c->opt.lease_duration_s * 2 / 3) {
			/* lost it, or could not renew within the renew deadline */
			set_leader(c, false);
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += LEASE_RETRY_S;
		ctl_lock(c);
		while (!ctl_stopping(c) &&
		       ctl_wait(c, &c->wake, &until) != ETIMEDOUT)
			;
		ctl_unlock(c);
	}
	if (leader)
		lease_release(l);
	ctl_worker_free(&l->w);
	return NULL;
}

static void lease_setup(struct ctl_worker *w)
{
	struct lease *l = (struct lease *)w;

	snprintf(l->path, sizeof(l->path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
		 w->c->opt.lease_ns, w->c->opt.lease_name);
}

int lease_start(struct ctl *c, pthread_t *ret)
{
	return ctl_worker_start(c, sizeof(struct lease), 0, lease_main, lease_setup, ret);
}
