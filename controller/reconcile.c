// SPDX-License-Identifier: Apache-2.0
/*
 * The reconcile thread (see reconcile.h). Its own state (the policies'
 * runtime, the API client) is touched by no other thread; it reads the caches
 * under cache_lock's read side and takes ctl.lock only to look at and update
 * the fleet, never while encoding a target set or calling the API server.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller.h"
#include "log.h"
#include "reconcile.h"
#include "resolve.h"
#include "server.h"
#include "status.h"
#include "store.h"

#define STATUS_RETRY_S 5
#define KEY_MAX 600

struct reconciler {
	struct ctl *c;
	pthread_t thread;
	struct k8s_client *kc;
	struct hmap runtime;	/* ctl.policies key -> struct policy_rt */
	uint64_t pass;		/* resolve passes */
	int64_t last_resolve_ms, last_resync_ms, last_expire_ms;
	int64_t next_timer_s;	/* wall clock: the next OnDemand end or status retry (0: none) */
	bool leader;		/* at the last status pass */
};

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

/* ---- the queue (ctl.lock) ------------------------------------------------------- */

static void wake_locked(struct ctl *c)
{
	pthread_cond_signal(&c->rec_wake);
}

void reconcile_resolve_soon_locked(struct ctl *c)
{
	c->rq.resolve = true;
	wake_locked(c);
}

void reconcile_resolve_soon(struct ctl *c)
{
	ctl_lock(c);
	reconcile_resolve_soon_locked(c);
	ctl_unlock(c);
}

static void queue_key(struct ctl *c, struct hmap *m, const char *policy_key)
{
	char key[KEY_MAX];

	/* the agents name a policy "ns/name" or "name"; the caches prefix the kind */
	if (policy_key[0] && policy_key[1] == ':')
		snprintf(key, sizeof(key), "%s", policy_key);
	else
		policy_cache_key(key, sizeof(key), policy_key);
	if (hmap_get(m, key) || hmap_put(m, key, (void *)1, NULL))
		return;
	if (c->rq.policies.n + c->rq.counted.n > c->rq.depth_max)
		c->rq.depth_max = c->rq.policies.n + c->rq.counted.n;
}

void reconcile_policy_due_locked(struct ctl *c, const char *policy_key)
{
	queue_key(c, &c->rq.policies, policy_key);
	wake_locked(c);
}

void reconcile_node_due_locked(struct ctl *c, const char *node)
{
	const struct node_state *ns = hmap_get(&c->node_states, node);

	for (int i = 0; ns && i < ns->npolicies; i++)
		queue_key(c, &c->rq.policies, ns->policies[i]);
	wake_locked(c);
}

void reconcile_counted_locked(struct ctl *c, const char *policy_key)
{
	if (!c->rq.counted.n)
		c->rq.counted_since_ms = mono_ms();
	queue_key(c, &c->rq.counted, policy_key);
	wake_locked(c);
}

/* ---- resolve and target sets ------------------------------------------------------ */

static int cmp_named_ptr(const void *a, const void *b)
{
	return strcmp((*(struct named_labels *const *)a)->name,
		      (*(struct named_labels *const *)b)->name);
}

static int cmp_backend_ptr(const void *a, const void *b)
{
	return strcmp((*(struct backend *const *)a)->name, (*(struct backend *const *)b)->name);
}

static void **map_values(const struct hmap *m, int *n, char ***ret_keys)
{
	void **v = calloc(m->n + 1, sizeof(void *));
	int k = 0;

	if (ret_keys)
		*ret_keys = calloc(m->n + 1, sizeof(char *));
	if (v && (!ret_keys || *ret_keys))
		hmap_for_each(m, it) {
			if (ret_keys)
				(*ret_keys)[k] = it->key;
			v[k++] = it->val;
		}
	*n = k;
	return v;
}

struct snapshot {
	struct resolve_input in;
	char **keys;		/* ctl.policies keys, as in.policies */
};

static void snapshot_free(struct snapshot *s)
{
	free(s->in.policies);
	free(s->in.active);
	free(s->in.pods);
	free(s->in.namespaces);
	free(s->in.nodes);
	free(s->in.backends);
	free(s->in.replicasets);
	free(s->keys);
}

/* The caches as resolve() takes them; under cache_lock. */
static int snapshot_take(struct ctl *c, struct snapshot *s)
{
	struct resolve_input *in = &s->in;
	int npol;

	memset(s, 0, sizeof(*s));
	in->policies = (struct policy **)map_values(&c->policies, &npol, &s->keys);
	in->npolicies = npol;
	in->active = calloc((size_t)npol + 1, sizeof(bool));
	in->pods = (struct pod **)map_values(&c->pods, &in->npods, NULL);
	in->namespaces = (struct named_labels **)map_values(&c->namespaces, &in->nnamespaces, NULL);
	in->nodes = (struct named_labels **)map_values(&c->nodes, &in->nnodes, NULL);
	in->backends = (struct backend **)map_values(&c->backends, &in->nbackends, NULL);
	in->replicasets = (struct named_labels **)map_values(&c->replicasets, &in->nreplicasets,
							     NULL);
	in->store = c->store != NULL;
	in->max_ns_policies = c->opt.max_ns_policies;
	if (!in->policies || !s->keys || !in->active || !in->pods || !in->namespaces ||
	    !in->nodes || !in->backends || !in->replicasets) {
		snapshot_free(s);
		return -ENOMEM;
	}
	qsort(in->namespaces, (size_t)in->nnamespaces, sizeof(void *), cmp_named_ptr);
	qsort(in->nodes, (size_t)in->nnodes, sizeof(void *), cmp_named_ptr);
	qsort(in->replicasets, (size_t)in->nreplicasets, sizeof(void *), cmp_named_ptr);
	qsort(in->backends, (size_t)in->nbackends, sizeof(void *), cmp_backend_ptr);
	return 0;
}

/* The runtime of a policy, new when it is new or was deleted and made again. */
static struct policy_rt *rt_get(struct reconciler *r, const char *key, const struct policy *p)
{
	struct policy_rt *rt = hmap_get(&r->runtime, key);

	if (rt && strcmp(rt->uid, p->uid ? p->uid : "")) {
		policy_rt_free(hmap_del(&r->runtime, key));
		rt = NULL;
	}
	if (rt)
		return rt;
	rt = policy_rt_new(p);
	if (rt && hmap_put(&r->runtime, key, rt, NULL)) {
		policy_rt_free(rt);
		return NULL;
	}
	return rt;
}

static uint64_t fnv1a(const uint8_t *b, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h | 1;	/* 0 is "no set yet" */
}

static uint64_t next_version(uint64_t prev)
{
	struct timespec ts;
	uint64_t v;

	/* wall-clock based, so versions keep increasing across controller restarts */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return v > prev ? v : prev + 1;
}

/* One node's new target set, built without ctl.lock. */
struct node_update {
	char *name;
	uint64_t digest, version;
	uint8_t *msg;
	size_t len;
	char **policies;
	int npolicies;
};

static void node_update_free(struct node_update *u)
{
	free(u->name);
	free(u->msg);
	for (int i = 0; i < u->npolicies; i++)
		free(u->policies[i]);
	free(u->policies);
}

/* The keys of the policies a node's targets belong to. */
static int node_policies(const struct snapshot *s, const struct node_targets *nt, bool *mark,
			 struct node_update *u)
{
	int n = 0;

	for (int j = 0; nt && j < nt->n; j++)
		for (int k = 0; k < nt->t[j].npolicies; k++)
			if (!mark[nt->t[j].policies[k]]) {
				mark[nt->t[j].policies[k]] = true;
				n++;
			}
	u->policies = calloc((size_t)n + 1, sizeof(char *));
	if (!u->policies)
		return -ENOMEM;
	for (int i = 0; i < s->in.npolicies; i++)
		if (mark[i]) {
			mark[i] = false;
			if ((u->policies[u->npolicies] = strdup(s->keys[i])))
				u->npolicies++;
		}
	return 0;
}

/* The nodes to give a target set: every node with targets, and every known one. */
static char **nodes_to_set(struct ctl *c, const struct resolve_output *out, uint64_t **ret_digests,
			   uint64_t **ret_versions, int *ret_n)
{
	char **names;
	int n = 0, cap;

	ctl_lock(c);
	cap = (int)c->node_states.n + out->nnodes + 1;
	names = calloc((size_t)cap, sizeof(char *));
	*ret_digests = calloc((size_t)cap, sizeof(uint64_t));
	*ret_versions = calloc((size_t)cap, sizeof(uint64_t));
	if (names && *ret_digests && *ret_versions) {
		hmap_for_each(&c->node_states, it) {
			const struct node_state *ns = it->val;

			(*ret_digests)[n] = ns->digest;
			(*ret_versions)[n] = ns->version;
			names[n++] = strdup(ns->name);
		}
		for (int i = 0; i < out->nnodes; i++)
			if (!hmap_get(&c->node_states, out->nodes[i].node))
				names[n++] = strdup(out->nodes[i].node);
	}
	ctl_unlock(c);
	*ret_n = n;
	return names;
}

/* Encodes the sets that changed; returns how many updates are in *ret. */
static int build_updates(struct ctl *c, const struct snapshot *s, const struct resolve_output *out,
			 struct node_update **ret)
{
	uint64_t *digests = NULL, *versions = NULL;
	bool *mark = calloc((size_t)s->in.npolicies + 1, sizeof(bool));
	int n = 0, nu = 0;
	char **names = nodes_to_set(c, out, &digests, &versions, &n);
	struct node_update *u = calloc((size_t)n + 1, sizeof(*u));

	for (int i = 0; u && mark && names && digests && versions && i < n; i++) {
		const struct node_targets *nt = names[i] ? resolve_find_node(out, names[i]) : NULL;
		size_t len = 0;
		uint8_t *cmp = names[i] ? resolve_encode(&s->in, nt, 0, &len) : NULL;
		uint64_t d = cmp ? fnv1a(cmp, len) : 0;

		free(cmp);
		if (!d || d == digests[i])
			continue;
		u[nu].digest = d;
		u[nu].version = next_version(versions[i]);
		u[nu].msg = resolve_encode(&s->in, nt, u[nu].version, &u[nu].len);
		u[nu].name = names[i];
		names[i] = NULL;
		if (!u[nu].msg || node_policies(s, nt, mark, &u[nu])) {
			node_update_free(&u[nu]);
			continue;
		}
		log_debug("node %s: target set v%llu, %d container(s)", u[nu].name,
			  (unsigned long long)u[nu].version, nt ? nt->n : 0);
		nu++;
	}
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(digests);
	free(versions);
	free(mark);
	*ret = u;
	return nu;
}

/* Hands the new sets to the node states; the websocket thread sends them. */
static void install_updates(struct ctl *c, struct node_update *u, int n)
{
	int64_t now = time(NULL);

	ctl_lock(c);
	for (int i = 0; i < n; i++) {
		struct node_state *ns = server_node_state(c, u[i].name);

		if (!ns)
			continue;
		free(ns->msg);
		ns->msg = u[i].msg;
		ns->msg_len = u[i].len;
		ns->version = u[i].version;
		ns->digest = u[i].digest;
		server_node_set_policies(ns, u[i].policies, u[i].npolicies, now);
		u[i].msg = NULL;
		u[i].policies = NULL;
		u[i].npolicies = 0;
	}
	server_sweep_nodes(c, now);
	ctl_unlock(c);
	if (n)
		server_wake(c);
}

/* Each policy's result and the nodes that hold its targets. */
static void keep_results(const struct snapshot *s,
			 const struct resolve_output *out, struct policy_rt **rts)
{
	for (int i = 0; i < s->in.npolicies; i++) {
		struct policy_rt *rt = rts[i];

		if (!rt)
			continue;
		rt->result = out->results[i];
		for (int k = 0; k < rt->nnodes; k++)
			free(rt->nodes[k]);
		rt->nnodes = 0;
		free(rt->nodes);
		rt->nodes = calloc((size_t)out->results[i].nodes + 1, sizeof(char *));
	}
	for (int n = 0; n < out->nnodes; n++) {
		const struct node_targets *nt = &out->nodes[n];

		for (int j = 0; j < nt->n; j++)
			for (int k = 0; k < nt->t[j].npolicies; k++) {
				struct policy_rt *rt = rts[nt->t[j].policies[k]];

				if (!rt || !rt->nodes || (rt->nnodes &&
				    !strcmp(rt->nodes[rt->nnodes - 1], nt->node)) ||
				    rt->nnodes >= rt->result.nodes)
					continue;
				rt->nodes[rt->nnodes] = strdup(nt->node);
				if (rt->nodes[rt->nnodes])
					rt->nnodes++;
			}
	}
}

/* Resolves everything; every policy's status becomes due. Under cache_lock (read). */
static void resolve_pass(struct reconciler *r, struct hmap *due)
{
	struct ctl *c = r->c;
	struct resolve_output out;
	struct node_update *u = NULL;
	struct policy_rt **rts;
	struct snapshot s;
	int nu;

	if (snapshot_take(c, &s)) {
		log_error("reconcile: out of memory");
		return;
	}
	rts = calloc((size_t)s.in.npolicies + 1, sizeof(*rts));
	r->pass++;
	for (int i = 0; rts && i < s.in.npolicies; i++) {
		rts[i] = rt_get(r, s.keys[i], s.in.policies[i]);
		if (rts[i])
			rts[i]->seen = r->pass;
		s.in.active[i] = !(s.in.policies[i]->mode == MODE_ONDEMAND && rts[i] &&
				   rts[i]->completion);
		hmap_put(due, s.keys[i], (void *)1, NULL);
	}
	hmap_for_each(&r->runtime, it)	/* policies that are gone */
		if (((struct policy_rt *)it->val)->seen != r->pass)
			policy_rt_free(hmap_del_entry(&r->runtime, it));
	if (!rts || resolve(&s.in, &out)) {
		log_error("reconcile: cannot resolve (out of memory)");
		goto out;
	}
	keep_results(&s, &out, rts);
	nu = build_updates(c, &s, &out, &u);
	install_updates(c, u, nu);
	for (int i = 0; u && i < nu; i++)
		node_update_free(&u[i]);
	free(u);
	resolve_output_free(&out);
out:
	free(rts);
	snapshot_free(&s);
}

/* ---- status ------------------------------------------------------------------------- */

struct due_policy {
	const char *key;
	const struct policy *p;
	struct policy_rt *rt;
	struct status_input in;
};

/* Exports of one node's agent for one policy, into its summary. */
static void add_exports(struct due_policy *d, const struct node_state *ns)
{
	const struct policy *p = d->p;
	struct export_summary *ex = &d->in.ex;

	for (int i = 0; i < (p->nbackends ? p->nbackends : 1); i++) {
		const char *b = p->nbackends ? p->backends[i] : STORE_NAME;
		const struct export_state *es = hmap_get(&ns->exporters, b);

		if (!es)
			continue;
		if (es->last_success > ex->last_success)
			ex->last_success = es->last_success;
		ex->dropped += es->dropped;
		if (!ex->failing[0] && es->last_failure > es->last_success)
			snprintf(ex->failing, sizeof(ex->failing),
				 "exports to %s from node %s fail: %s (%u queued, %llu dropped)",
				 !strcmp(b, STORE_NAME) ? "the built-in store" : b, ns->name,
				 es->last_error[0] ? es->last_error : "error", es->queued,
				 (unsigned long long)es->dropped);
	}
}

/* The agents' side of each due policy, in one pass over the nodes. Under ctl.lock. */
static void gather_agents(struct ctl *c, struct due_policy *d, int n, const struct hmap *by_key)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < d[i].rt->nnodes; k++) {
			const struct node_state *ns = hmap_get(&c->node_states, d[i].rt->nodes[k]);

			d[i].in.nodes++;
			d[i].in.connected += ns && ns->conn;
			d[i].in.acked += ns && ns->conn && ns->version && ns->acked >= ns->version;
		}
	/* samples from every node's agent, including nodes it no longer targets */
	hmap_for_each(&c->node_states, it) {
		const struct node_state *ns = it->val;

		hmap_for_each(&ns->samples, s) {
			struct due_policy *dp = hmap_get(by_key, s->key);

			if (!dp)
				continue;
			dp->in.samples += *(uint64_t *)s->val;
			add_exports(dp, ns);
		}
		hmap_for_each(&ns->base, s) {
			struct due_policy *dp = hmap_get(by_key, s->key);

			if (dp)
				dp->in.samples += *(uint64_t *)s->val;
		}
	}
}

/* The due policies that still exist, with their runtime. Under cache_lock. */
static struct due_policy *due_policies(struct reconciler *r, const struct hmap *due, int *ret_n,
				       struct hmap *by_key)
{
	struct due_policy *d = calloc(due->n + 1, sizeof(*d));
	int n = 0;

	hmap_for_each(due, it) {
		const struct policy *p = d ? hmap_get(&r->c->policies, it->key) : NULL;
		struct policy_rt *rt = p ? hmap_get(&r->runtime, it->key) : NULL;

		/* a policy not resolved yet waits for its resolve, which is due */
		if (!rt || strcmp(rt->uid, p->uid ? p->uid : ""))
			continue;
		d[n].key = it->key;
		d[n].p = p;
		d[n].rt = rt;
		d[n].in.p = p;
		d[n].in.r = &rt->result;
		d[n].in.store = r->c->store;
		d[n].in.identity = r->c->opt.identity;
		if (hmap_put(by_key, p->key, &d[n], NULL) == 0)
			n++;
	}
	*ret_n = n;
	return d;
}

/* Status writes of the due policies. Under cache_lock (read). */
static struct status_write *status_pass(struct reconciler *r, const struct hmap *due,
					bool *ret_resolve)
{
	struct hmap by_key = { 0 };	/* the agents' policy key -> due_policy */
	struct status_write *writes = NULL;
	struct due_policy *d;
	int n = 0;
	bool leader;
	int64_t now = time(NULL);

	d = due_policies(r, due, &n, &by_key);
	ctl_lock(r->c);
	leader = r->c->leader;
	if (due->n)
		r->c->rq.status_passes++;
	if (leader && d)
		gather_agents(r->c, d, n, &by_key);
	ctl_unlock(r->c);
	if (leader != r->leader)	/* another leader wrote meanwhile: what we wrote is no guide */
		hmap_for_each(&r->runtime, it) {
			struct policy_rt *rt = it->val;

			free(rt->last_status);
			rt->last_status = NULL;
		}
	r->leader = leader;
	for (int i = 0; leader && d && i < n; i++) {
		struct status_write *w;
		bool completed;

		if ((int64_t)d[i].in.samples < d[i].p->srv_samples)	/* agents restarted with us */
			d[i].in.samples = (uint64_t)d[i].p->srv_samples;
		d[i].in.now = now;
		w = policy_status(&d[i].in, d[i].rt, &writes, &completed);
		if (w) {
			w->next = writes;
			writes = w;
		}
		*ret_resolve |= completed;
	}
	hmap_free(&by_key);
	free(d);
	return writes;
}

/* The next OnDemand end or status retry (wall clock), 0 when none. */
static int64_t next_timer(struct reconciler *r)
{
	int64_t t = 0;

	if (!r->leader)	/* a follower writes no status: its timers wait for the lease */
		return 0;

	hmap_for_each(&r->runtime, it) {
		const struct policy_rt *rt = it->val;

		if (rt->ends_at && !rt->completion && (!t || rt->ends_at < t))
			t = rt->ends_at;
		if (rt->retry_at && (!t || rt->retry_at < t))
			t = rt->retry_at;
	}
	return t;
}

/* The writes, without any lock; a failed status write is tried again later. */
static void send_writes(struct reconciler *r, struct status_write *w)
{
	struct ctl *c = r->c;

	while (w) {
		struct status_write *next = w->next;
		struct policy_rt *rt = w->policy ? hmap_get(&r->runtime, w->policy) : NULL;

		if (ctl_stopping(c)) {	/* stopping: the next leader writes them */
			status_write_free(w);
			w = next;
			continue;
		}
		struct k8s_response resp;
		bool ok;

		if (!strcmp(w->method, "POST")) {	/* an Event: best effort */
			if (k8s_request(r->kc, "POST", w->path, NULL, w->body, &resp) ||
			    resp.status != 201)
				log_warn("event %s: HTTP %ld: %s", w->path, resp.status,
					 k8s_response_message(&resp));
			k8s_response_free(&resp);
			status_write_free(w);
			w = next;
			continue;
		}
		ok = !k8s_request(r->kc, "PATCH", w->path, "application/merge-patch+json", w->body,
				  &resp) && resp.status == 200;
		if (!ok && resp.status != 404)	/* deleted meanwhile: fine */
			log_warn("status %s: HTTP %ld: %s", w->path, resp.status,
				 k8s_response_message(&resp));
		if (!ok && rt && resp.status != 404) {
			free(rt->last_status);	/* not written: written again at retry_at */
			rt->last_status = NULL;
			rt->retry_at = time(NULL) + STATUS_RETRY_S;
		} else if (rt) {
			rt->retry_at = 0;
		}
		k8s_response_free(&resp);
		ctl_lock(c);
		if (ok)
			c->stats.status_writes++;
		else
			c->stats.status_errors++;
		ctl_unlock(c);
		status_write_free(w);
		w = next;
	}
}

/* ---- the thread ---------------------------------------------------------------------- */

/* Policies whose OnDemand end or status retry has come, into due. */
static void timers_due(struct reconciler *r, struct hmap *due)
{
	int64_t now = time(NULL);

	hmap_for_each(&r->runtime, it) {
		struct policy_rt *rt = it->val;

		if ((rt->ends_at && !rt->completion && rt->ends_at <= now) ||
		    (rt->retry_at && rt->retry_at <= now)) {
			hmap_put(due, it->key, (void *)1, NULL);
			/* fired once: the status pass sets them again if they still apply */
			rt->ends_at = 0;
			rt->retry_at = 0;
		}
	}
}

/* How often the store's retention is enforced: a quarter of it, at most a minute. */
static int64_t expire_every_ms(const struct ctl *c)
{
	int64_t ms = c->opt.store_retention_s * 1000 / 4;

	return ms < 60000 ? ms : 60000;
}

static void store_housekeeping(struct reconciler *r, int64_t now_ms)
{
	if (!r->c->store || now_ms - r->last_expire_ms < expire_every_ms(r->c))
		return;
	r->last_expire_ms = now_ms;
	store_expire(r->c->store, time(NULL));
}

/* When the thread must wake without being asked (CLOCK_MONOTONIC ms). Under ctl.lock. */
static int64_t wake_at(struct reconciler *r, int64_t now_ms)
{
	struct rec_queue *q = &r->c->rq;
	int64_t t = r->last_resync_ms + RECONCILE_RESYNC_S * 1000;

	if (q->resolve && r->last_resolve_ms + RECONCILE_MIN_GAP_MS < t)
		t = r->last_resolve_ms + RECONCILE_MIN_GAP_MS;
	if (q->counted.n && q->counted_since_ms + RECONCILE_COUNTED_DELAY_MS < t)
		t = q->counted_since_ms + RECONCILE_COUNTED_DELAY_MS;
	if (r->next_timer_s) {
		int64_t in_ms = (r->next_timer_s - (int64_t)time(NULL)) * 1000;

		if (now_ms + in_ms < t)
			t = now_ms + (in_ms > 0 ? in_ms : 0);
	}
	if (r->c->store && r->last_expire_ms + expire_every_ms(r->c) < t)
		t = r->last_expire_ms + expire_every_ms(r->c);
	return t;
}

static void wait_until_ms(struct ctl *c, int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000 };

	ctl_wait(c, &c->rec_wake, &ts);
}

/* Moves every key of from into to. */
static void take_keys(struct hmap *from, struct hmap *to)
{
	hmap_for_each(from, it)
		hmap_put(to, it->key, (void *)1, NULL);
	hmap_free(from);
}

/* Waits for work; returns false when stopping. Under ctl.lock, which it may drop. */
static bool next_work(struct reconciler *r, bool *ret_resolve, struct hmap *due)
{
	struct ctl *c = r->c;
	struct rec_queue *q = &c->rq;

	for (;;) {
		int64_t now = mono_ms(), t;

		if (ctl_stopping(c))
			return false;
		t = wake_at(r, now);	/* a resolve asked for, past its gap, is one of its times */
		if (q->policies.n || now >= t)
			break;
		wait_until_ms(c, t);
	}
	*ret_resolve = q->resolve || mono_ms() >= r->last_resync_ms + RECONCILE_RESYNC_S * 1000;
	q->resolve = false;
	take_keys(&q->policies, due);
	if (q->counted.n && mono_ms() >= q->counted_since_ms + RECONCILE_COUNTED_DELAY_MS)
		take_keys(&q->counted, due);
	if (*ret_resolve)
		q->resolves++;
	return true;
}

static void observe(struct ctl *c, int64_t t0_ns)
{
	static const double bounds[] = { 0.001, 0.005, 0.025, 0.1, 0.5 };
	struct timespec ts;
	double d;
	int b = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	d = (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - t0_ns) / 1e9;
	while (b < 5 && d > bounds[b])
		b++;
	ctl_lock(c);
	c->rec_buckets[b]++;
	c->rec_count++;
	c->rec_sum_s += d;
	ctl_unlock(c);
}

/* One pass: resolve if asked, then the status of what is due. */
static void one_pass(struct reconciler *r, bool resolve_now, struct hmap *due)
{
	struct ctl *c = r->c;
	struct status_write *writes;
	bool again = false;
	struct timespec ts;
	int64_t t0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	timers_due(r, due);
	pthread_rwlock_rdlock(&c->cache_lock);
	if (resolve_now) {
		r->last_resolve_ms = mono_ms();
		resolve_pass(r, due);
	}
	writes = status_pass(r, due, &again);
	pthread_rwlock_unlock(&c->cache_lock);
	if (resolve_now)
		observe(c, t0);
	send_writes(r, writes);
	r->next_timer_s = next_timer(r);
	if (again)	/* an OnDemand policy completed: its sampling stops */
		reconcile_resolve_soon(c);
}

static void *reconcile_main(void *arg)
{
	struct reconciler *r = arg;
	struct ctl *c = r->c;

	ctl_lock(c);
	for (;;) {
		struct hmap due = { 0 };
		bool resolve_now;

		if (!next_work(r, &resolve_now, &due))
			break;
		ctl_unlock(c);
		if (resolve_now && mono_ms() >= r->last_resync_ms + RECONCILE_RESYNC_S * 1000)
			r->last_resync_ms = mono_ms();
		one_pass(r, resolve_now, &due);
		hmap_free(&due);
		store_housekeeping(r, mono_ms());
		ctl_lock(c);
	}
	ctl_unlock(c);
	return NULL;
}

struct reconciler *reconcile_start(struct ctl *c)
{
	struct reconciler *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	r->c = c;
	r->kc = k8s_client_new(&c->kcfg);
	r->last_resync_ms = r->last_expire_ms = mono_ms();
	if (!r->kc) {
		free(r);
		return NULL;
	}
	err = pthread_create(&r->thread, NULL, reconcile_main, r);
	if (err) {
		log_error("reconcile: cannot start a thread: %s", strerror(err));
		k8s_client_free(r->kc);
		free(r);
		return NULL;
	}
	return r;
}

void reconcile_stop(struct reconciler *r)
{
	if (!r)
		return;
	ctl_lock(r->c);
	pthread_cond_broadcast(&r->c->rec_wake);
	ctl_unlock(r->c);
	pthread_join(r->thread, NULL);
	hmap_for_each(&r->runtime, it)
		policy_rt_free(it->val);
	hmap_free(&r->runtime);
	k8s_client_free(r->kc);
	free(r);
}
