// SPDX-License-Identifier: Apache-2.0
/* Readiness and the controller's metrics (see health.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cache.h"
#include "controller.h"
#include "health.h"
#include "metrics.h"
#include "reconcile.h"
#include "store.h"

/*
 * Ready means doing its job: every cache has been listed once, and the lease
 * round-trips to the API server (a follower is ready too: it stands by).
 */
bool health_ready(struct ctl *c, char *why, size_t whylen)
{
	int64_t lease_ok;

	if (!caches_synced(c, why, whylen))
		return false;
	ctl_lock(c);
	lease_ok = c->lease_ok_unix;
	ctl_unlock(c);
	if (!c->opt.no_leader_election &&
	    time(NULL) - lease_ok > 2 * (int64_t)c->opt.lease_duration_s) {
		snprintf(why, whylen, "no answer about the lease for %lld s",
			 (long long)(time(NULL) - lease_ok));
		return false;
	}
	return true;
}

/* What is read under ctl.lock, to write without it. */
struct fleet_view {
	struct ctl_stats st;
	struct rec_queue_counts {
		uint64_t resolves, status_passes, depth, depth_max;
	} rq;
	uint64_t agents, target_nodes, buckets[6], count;
	double sum;
	uint64_t hold_buckets[CTL_HOLD_BUCKETS], hold_count;
	double hold_sum;
	uint64_t rollout_buckets[CTL_ROLLOUT_BUCKETS], rollout_count;
	double rollout_sum;
	int leader;
};

static void fleet_view(struct ctl *c, struct fleet_view *v)
{
	memset(v, 0, sizeof(*v));
	ctl_lock(c);
	v->st = c->stats;
	for (struct conn *cn = c->conns; cn; cn = cn->next)
		v->agents += cn->auth == AUTH_OK;
	hmap_for_each(&c->node_states, it)
		v->target_nodes += ((struct node_state *)it->val)->version != 0;
	v->leader = c->leader;
	memcpy(v->buckets, c->rec_buckets, sizeof(v->buckets));
	v->count = c->rec_count;
	v->sum = c->rec_sum_s;
	v->rq.resolves = c->rq.resolves;
	v->rq.status_passes = c->rq.status_passes;
	v->rq.depth = reconcile_queue_depth_locked(c);
	v->rq.depth_max = c->rq.depth_max;
	memcpy(v->hold_buckets, c->hold_buckets, sizeof(v->hold_buckets));
	v->hold_count = c->hold_count;
	v->hold_sum = c->hold_sum_s;
	memcpy(v->rollout_buckets, c->rollout_buckets, sizeof(v->rollout_buckets));
	v->rollout_count = c->rollout_count;
	v->rollout_sum = c->rollout_sum_s;
	ctl_unlock(c);
}

static void one(struct metrics *m, const char *name, const char *type, const char *help,
		double v)
{
	metrics_family(m, name, type, help);
	metrics_value(m, name, NULL, v);
}

static void two(struct metrics *m, const char *name, const char *help, const char *label,
		const char *a, double va, const char *b, double vb)
{
	metrics_family(m, name, "counter", help);
	metrics_value(m, name, (const char *[]){ label, a, NULL }, va);
	metrics_value(m, name, (const char *[]){ label, b, NULL }, vb);
}

static void fleet_metrics(struct ctl *c, struct metrics *m, const struct fleet_view *v)
{
	int npol;

	pthread_rwlock_rdlock(&c->cache_lock);
	npol = (int)c->policies.n;
	pthread_rwlock_unlock(&c->cache_lock);
	one(m, "profleet_controller_leader", "gauge", "1 while this replica holds the lease.",
	    v->leader);
	one(m, "profleet_controller_start_time_seconds", "gauge", "Start time, UNIX seconds.",
	    (double)c->started_unix);
	one(m, "profleet_controller_policies", "gauge",
	    "ProfilingPolicy and ClusterProfilingPolicy objects known.", npol);
	one(m, "profleet_controller_websocket_connections", "gauge",
	    "Agents connected and accepted.", (double)v->agents);
	one(m, "profleet_controller_target_nodes", "gauge", "Nodes that have a target set.",
	    (double)v->target_nodes);
	two(m, "profleet_controller_agent_connections_total",
	    "Websocket connections from agents, by outcome (over_limit: closed at once, "
	    "too many not accepted yet).", "result", "opened", (double)v->st.accepted_conns,
	    "refused", (double)v->st.refused);
	metrics_value(m, "profleet_controller_agent_connections_total",
		      (const char *[]){ "result", "over_limit", NULL },
		      (double)v->st.conns_over_limit);
	metrics_value(m, "profleet_controller_agent_connections_total",
		      (const char *[]){ "result", "reviews_over_limit", NULL },
		      (double)v->st.reviews_over_limit);
	two(m, "profleet_controller_tls_reloads_total",
	    "Changed certificate files read again, by result.", "result", "ok",
	    (double)v->st.cert_reloads, "failed", (double)v->st.cert_reload_failures);
	two(m, "profleet_controller_frames_total", "Frames from agents.", "result", "ok",
	    (double)(v->st.frames_in - v->st.frames_bad), "bad", (double)v->st.frames_bad);
	one(m, "profleet_controller_target_pushes_total", "counter", "Target sets sent to agents.",
	    (double)v->st.pushes);
	two(m, "profleet_controller_status_writes_total", "Policy status patches, by result.",
	    "result", "ok", (double)v->st.status_writes, "error", (double)v->st.status_errors);
	one(m, "profleet_controller_events_dropped_total", "counter",
	    "Policy Events not sent: too many were waiting for the API server.",
	    (double)v->st.events_dropped);
	one(m, "profleet_controller_status_writes_dropped_total", "counter",
	    "Policy status patches not sent: no longer the leader, or out of memory "
	    "(written again within 2 s).",
	    (double)v->st.status_dropped);
}

static void rollout_metrics(struct metrics *m, const struct fleet_view *v)
{
	static const double bounds[] = CTL_ROLLOUT_BOUNDS;
	uint64_t acc = 0;
	char le[16];

	metrics_family(m, "profleet_controller_policy_rollout_seconds", "histogram",
		       "From a policy's new spec reaching the controller to every agent of its "
		       "nodes holding the target set made from it.");
	for (int i = 0; i < CTL_ROLLOUT_BUCKETS; i++) {
		acc += v->rollout_buckets[i];
		if (i < CTL_ROLLOUT_BUCKETS - 1)
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		metrics_value(m, "profleet_controller_policy_rollout_seconds_bucket",
			      (const char *[]){ "le", le, NULL }, (double)acc);
	}
	metrics_value(m, "profleet_controller_policy_rollout_seconds_sum", NULL, v->rollout_sum);
	metrics_value(m, "profleet_controller_policy_rollout_seconds_count", NULL,
		      (double)v->rollout_count);
}

static void reconcile_metrics(struct metrics *m, const struct fleet_view *v)
{
	static const char *const le[] = { "0.001", "0.005", "0.025", "0.1", "0.5", "+Inf" };
	uint64_t acc = 0;

	two(m, "profleet_controller_reconciles_total",
	    "Reconcile passes: bringing the target sets up to date with what changed in the "
	    "caches (or the resync), or writing the status of policies that are due.",
	    "kind", "resolve",
	    (double)v->rq.resolves, "status", (double)v->rq.status_passes);
	one(m, "profleet_controller_reconcile_queue_depth", "gauge",
	    "Keys waiting for the reconcile thread: policies whose status is due, pods, "
	    "nodes and ReplicaSets that changed.",
	    (double)v->rq.depth);
	one(m, "profleet_controller_reconcile_queue_depth_max", "gauge",
	    "The most keys queued at once since the start.", (double)v->rq.depth_max);
	metrics_family(m, "profleet_controller_reconcile_duration_seconds", "histogram",
		       "Time to bring the target sets up to date and encode the ones that changed.");
	for (int i = 0; i < 6; i++) {
		acc += v->buckets[i];
		metrics_value(m, "profleet_controller_reconcile_duration_seconds_bucket",
			      (const char *[]){ "le", le[i], NULL }, (double)acc);
	}
	metrics_value(m, "profleet_controller_reconcile_duration_seconds_sum", NULL, v->sum);
	metrics_value(m, "profleet_controller_reconcile_duration_seconds_count", NULL,
		      (double)v->count);
	rollout_metrics(m, v);
}

static void auth_metrics(struct ctl *c, struct metrics *m)
{
	uint64_t hits, misses;

	auth_cache_counts(c->auth_cache, &hits, &misses);
	two(m, "profleet_controller_auth_reviews_total",
	    "TokenReview and SubjectAccessReview answers, asked of the API server or kept.",
	    "source", "api", (double)misses, "cache", (double)hits);
}

static void hold_metrics(struct metrics *m, const struct fleet_view *v)
{
	static const char *const le[] = { "0.00001", "0.0001", "0.001", "0.01", "0.1", "+Inf" };
	uint64_t acc = 0;

	metrics_family(m, "profleet_controller_lock_hold_seconds", "histogram",
		       "How long the fleet's lock was held each time (the agents' websocket "
		       "thread takes it for every frame).");
	for (int i = 0; i < CTL_HOLD_BUCKETS; i++) {
		acc += v->hold_buckets[i];
		metrics_value(m, "profleet_controller_lock_hold_seconds_bucket",
			      (const char *[]){ "le", le[i], NULL }, (double)acc);
	}
	metrics_value(m, "profleet_controller_lock_hold_seconds_sum", NULL, v->hold_sum);
	metrics_value(m, "profleet_controller_lock_hold_seconds_count", NULL, (double)v->hold_count);
}

static void store_metrics(struct ctl *c, struct metrics *m, const struct fleet_view *v)
{
	struct store_stats ss = { 0 };

	if (c->store)
		store_stats(c->store, &ss);
	two(m, "profleet_controller_store_uploads_total",
	    "Profiles agents sent to the built-in store, by result.", "result", "stored",
	    (double)v->st.uploads, "refused", (double)v->st.uploads_refused);
	one(m, "profleet_controller_store_files", "gauge", "Profiles held by the store.",
	    (double)ss.files);
	one(m, "profleet_controller_store_bytes", "gauge", "Bytes held by the store.",
	    (double)ss.bytes);
	one(m, "profleet_controller_store_namespaces", "gauge",
	    "Namespaces holding profiles in the store (cluster policies count as one more).",
	    (double)ss.namespaces);
	metrics_family(m, "profleet_controller_store_evictions_total", "counter",
		       "Profiles dropped to stay within the bounds, by reason.");
	metrics_value(m, "profleet_controller_store_evictions_total",
		      (const char *[]){ "reason", "full", NULL }, (double)ss.evicted_full);
	metrics_value(m, "profleet_controller_store_evictions_total",
		      (const char *[]){ "reason", "age", NULL }, (double)ss.evicted_age);
	metrics_value(m, "profleet_controller_store_evictions_total",
		      (const char *[]){ "reason", "namespace_quota", NULL }, (double)ss.evicted_quota);
}

char *health_metrics(struct ctl *c, size_t *ret_len)
{
	struct fleet_view v;
	struct metrics m;

	if (metrics_begin(&m))
		return NULL;
	fleet_view(c, &v);
	fleet_metrics(c, &m, &v);
	reconcile_metrics(&m, &v);
	hold_metrics(&m, &v);
	caches_metrics(c, &m);
	auth_metrics(c, &m);
	store_metrics(c, &m, &v);
	return metrics_end(&m, ret_len);
}
