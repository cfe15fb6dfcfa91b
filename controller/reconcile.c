// SPDX-License-Identifier: Apache-2.0
/*
 * The reconcile thread (see reconcile.h). Its own state (the policies'
 * runtime, the target sets) is touched by no other thread; it reads the caches
 * under cache_lock's read side and takes ctl.lock only to look at and update
 * the fleet, never while encoding a target set. It never calls the API server:
 * its status writes go to the status writer's thread (writer.h).
 */
#include <errno.h>
#include <malloc.h>
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
#include "targets.h"
#include "pool.h"
#include "writer.h"

#define TRIM_AFTER_NODES 256	/* sets built in one sync */
#define ENCODE_CHUNK 64	/* sets built and encoded before the websocket thread gets them */
#define RECONCILE_MAX_THREADS 3	/* that build and encode besides the reconcile thread */
#define ROLLOUT_GIVE_UP_S 600
#define KEY_MAX 600

struct reconciler {
	struct ctl *c;
	pthread_t thread;
	struct writer *wr;	/* sends the status writes */
	struct pool *pool;	/* builds and encodes the sets with this thread */
	int nthreads;		/* the pool's, besides this one */
	struct hmap runtime;	/* ctl.policies key -> struct policy_rt */
	struct targets *t;	/* the target sets, kept up to date */
	bool need_all;		/* a sync failed: the next one matches everything again */
	int64_t policy_since_ms;	/* the oldest policy change the current sync takes */
	uint64_t pass;		/* resolve passes */
	int64_t last_resolve_ms, last_resync_ms, last_expire_ms;
	int64_t next_timer_s;	/* wall clock: the next OnDemand end or status retry (0: none) */
	bool leader;		/* at the last status pass */
};

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

/* ---- the queue (ctl.lock) ------------------------------------------------------- */

static void wake_locked(struct ctl *c)
{
	pthread_cond_signal(&c->rec_wake);
}

uint64_t reconcile_queue_depth_locked(const struct ctl *c)
{
	const struct rec_queue *q = &c->rq;

	return q->policies.n + q->numbers.n + q->counted.n + q->work.pods.n + q->work.nodes.n +
	       q->work.owners.n + q->work.namespaces.n + q->work.node_labels.n;
}

static void note_depth(struct ctl *c)
{
	uint64_t n = reconcile_queue_depth_locked(c);

	if (n > c->rq.depth_max)
		c->rq.depth_max = n;
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

void reconcile_changed(struct ctl *c, enum reconcile_change what, const char *key)
{
	struct targets_work *w = &c->rq.work;
	struct hmap *keys = NULL;	/* where the key goes */

	ctl_lock(c);
	switch (what) {
	case RC_ALL:
		w->all = true;
		break;
	case RC_POLICY:	/* every sync looks at every policy */
		if (!c->rq.policy_since_ms)
			c->rq.policy_since_ms = mono_ms();
		break;
	case RC_POD:
		keys = &w->pods;
		break;
	case RC_REPLICASET:
		keys = &w->owners;
		break;
	case RC_NAMESPACE:
		keys = &w->namespaces;
		break;
	case RC_NODE:
		keys = &w->node_labels;
		break;
	case RC_BACKEND:
		w->backends = true;
		break;
	}
	/* everything matched again anyway: no key kept; one not kept for want of
	 * memory is not lost: everything is matched again */
	if (keys && key && !w->all && hmap_put(keys, key, (void *)1, NULL))
		w->all = true;
	note_depth(c);
	reconcile_resolve_soon_locked(c);
	ctl_unlock(c);
}

void reconcile_node_set_locked(struct ctl *c, const char *node)
{
	if (hmap_put(&c->rq.work.nodes, node, (void *)1, NULL))
		c->rq.work.all = true;
	reconcile_resolve_soon_locked(c);
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
	note_depth(c);
}

void reconcile_policy_due_locked(struct ctl *c, const char *policy_key)
{
	queue_key(c, &c->rq.policies, policy_key);
	wake_locked(c);
}

void reconcile_status_lost(struct ctl *c, const char *policy_key)
{
	ctl_lock(c);
	c->stats.status_dropped++;
	/* due soon, not now (as counted samples): out of memory, it comes back
	 * within seconds, not at once; a follower's pass writes nothing, and every
	 * status is due on becoming the leader */
	if (policy_key) {
		queue_key(c, &c->rq.lost, policy_key);
		reconcile_counted_locked(c, policy_key);
	}
	ctl_unlock(c);
}

/*
 * Due within a delay of the first key of m, since when *since_ms is. The
 * thread is woken only by the first (its wake-up time moves then): not once
 * for each of 5000 acks.
 */
static void queue_soon(struct ctl *c, struct hmap *m, int64_t *since_ms, const char *policy_key)
{
	bool first = !m->n;

	if (first)
		*since_ms = mono_ms();
	queue_key(c, m, policy_key);
	if (first && m->n)
		wake_locked(c);
}

void reconcile_node_due_locked(struct ctl *c, const char *node)
{
	const struct node_state *ns = hmap_get(&c->node_states, node);

	for (int i = 0; ns && i < ns->npolicies; i++)
		queue_soon(c, &c->rq.numbers, &c->rq.numbers_since_ms, ns->policies[i]);
}

void reconcile_counted_locked(struct ctl *c, const char *policy_key)
{
	queue_soon(c, &c->rq.counted, &c->rq.counted_since_ms, policy_key);
}

/* ---- target sets -------------------------------------------------------------------- */

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

static uint64_t next_version(uint64_t prev)
{
	struct timespec ts;
	uint64_t v;

	/* wall-clock based, so versions keep increasing across controller restarts */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return v > prev ? v : prev + 1;
}

static void rollout_settle(struct reconciler *r, const char *key, const struct policy *p,
			   struct policy_rt *rt);

/* Every policy's runtime; the ones of policies gone are dropped; a new spec's
 * rollout starts. Under cache_lock. */
static void runtimes_sync(struct reconciler *r, struct hmap *due)
{
	int64_t since = r->policy_since_ms ? r->policy_since_ms : mono_ms();

	r->pass++;
	hmap_for_each(&r->c->policies, it) {
		const struct policy *p = it->val;
		struct policy_rt *rt = rt_get(r, it->key, p);

		if (!rt)
			continue;
		rt->seen = r->pass;
		/* a changed spec of a policy known here (not its creation, not this
		 * controller's start) is a rollout; its status is due at once */
		if (rt->generation && rt->generation != p->generation) {
			if (rt->rollout_t0_ms)	/* the one this replaces, if its agents hold it */
				rollout_settle(r, it->key, p, rt);
			rt->rollout_t0_ms = since;
			rt->rollout_version = next_version(0);	/* the versions' clock, now */
		}
		if (rt->generation != p->generation)
			hmap_put(due, it->key, (void *)1, NULL);
		rt->generation = p->generation;
	}
	hmap_for_each(&r->runtime, it)
		if (((struct policy_rt *)it->val)->seen != r->pass)
			policy_rt_free(hmap_del_entry(&r->runtime, it));
}

static bool policy_active(void *arg, const char *key, const struct policy *p)
{
	const struct policy_rt *rt = hmap_get(&((struct reconciler *)arg)->runtime, key);

	return !(p->mode == MODE_ONDEMAND && rt && rt->completion);
}

/* Of an encoded set; 0 is "no set yet". */
static uint64_t set_digest(const uint8_t *b, size_t n)
{
	return hmap_hash(b, n) | 1;
}

/* One node's new target set, encoded without ctl.lock. */
struct node_update {
	struct targets_node *tn;
	uint64_t digest, version;
	uint8_t *msg;
	size_t len;
};

/* A node not built or not encoded (out of memory): built again at the next sync. */
static void build_later(struct ctl *c, const char *name)
{
	ctl_lock(c);
	reconcile_node_set_locked(c, name);	/* (and a resolve soon) */
	ctl_unlock(c);
}

/* What a node state held when encode_updates looked. */
struct node_prev {
	uint64_t digest, version, policies_hash;
	int npolicies;
	bool need_msg;
};

/* Encodes the sets that changed; returns how many updates are in u. The keys
 * of their policies are made only where those changed. */
static int encode_updates(struct ctl *c, const struct targets *t, struct targets_node *tn,
			  int n, struct node_update *u)
{
	struct node_prev *prev = calloc((size_t)n + 1, sizeof(*prev));
	const struct resolve_input *in = targets_input(t);
	int nu = 0;

	if (!prev) {
		for (int i = 0; i < n; i++)
			build_later(c, tn[i].name);
		return 0;
	}
	ctl_lock(c);
	for (int i = 0; i < n; i++) {
		const struct node_state *ns = hmap_get(&c->node_states, tn[i].name);

		if (ns)
			prev[i] = (struct node_prev){ ns->digest, ns->version, ns->policies_hash,
						      ns->npolicies, ns->need_msg };
	}
	ctl_unlock(c);
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		uint8_t *cmp = resolve_encode(in, &tn[i].nt, 0, &len);
		uint64_t d = cmp ? set_digest(cmp, len) : 0;

		if (d && d == prev[i].digest && !prev[i].need_msg) {
			free(cmp);
			continue;
		}
		u[nu].tn = &tn[i];
		u[nu].digest = d;
		/* the same set, its bytes needed again: the same version */
		u[nu].version = d == prev[i].digest ? prev[i].version : next_version(prev[i].version);
		u[nu].msg = d ? resolve_set_version(cmp, len, u[nu].version, &u[nu].len) : NULL;
		free(cmp);
		if (u[nu].msg && (tn[i].policies_hash != prev[i].policies_hash ||
				  tn[i].nkeys != prev[i].npolicies) &&
		    targets_node_keys(t, &tn[i])) {
			free(u[nu].msg);
			u[nu].msg = NULL;
		}
		if (!u[nu].msg) {	/* out of memory: built again at the next sync */
			build_later(c, tn[i].name);
			continue;
		}
		log_debug("node %s: target set v%llu, %d container(s)", tn[i].name,
			  (unsigned long long)u[nu].version, tn[i].nt.n);
		nu++;
	}
	free(prev);
	return nu;
}

/* Hands the new sets to the node states; the websocket thread sends them. */
static void install_updates(struct ctl *c, struct node_update *u, int n)
{
	int64_t now = time(NULL);

	ctl_lock(c);
	for (int i = 0; i < n; i++) {
		struct node_state *ns = server_node_state(c, u[i].tn->name);

		if (!ns)
			continue;
		free(ns->msg);
		ns->msg = u[i].msg;
		ns->msg_len = u[i].len;
		ns->version = u[i].version;
		ns->digest = u[i].digest;
		ns->need_msg = false;
		/* else the same policies as encode_updates saw: node states go only
		 * in server_sweep_nodes, after the builds */
		if (u[i].tn->policies) {
			server_node_set_policies(ns, u[i].tn->policies, u[i].tn->npolicies, now);
			ns->policies_hash = u[i].tn->policies_hash;
		}
		server_sets_ready_locked(c, u[i].tn->name);
		u[i].msg = NULL;
		u[i].tn->policies = NULL;
		u[i].tn->npolicies = 0;
	}
	ctl_unlock(c);
	if (n)
		server_wake_sets(c);
}

/* The sets of the dirty nodes, built, encoded and handed over a chunk at a time,
 * the chunks spread over the pool's threads. */
struct build_job {
	struct ctl *c;
	const struct targets *t;
	const struct targets_view *v;
	char **names;
	int n;
};

/* Chunk k of the job: built, encoded, handed to the websocket thread, which sends
 * the first ones while the next are built. */
static void build_chunk(void *arg, int k)
{
	const struct build_job *j = arg;
	int from = k * ENCODE_CHUNK, n = j->n - from < ENCODE_CHUNK ? j->n - from : ENCODE_CHUNK;
	struct targets_node *tn;
	struct node_update *u;
	int built = 0, nu;

	if (ctl_stopping(j->c))	/* nothing sends them any more */
		return;
	tn = calloc((size_t)n, sizeof(*tn));
	u = calloc((size_t)n, sizeof(*u));

	for (int i = 0; tn && u && i < n; i++) {
		if (targets_build(j->t, j->v, j->names[from + i], &tn[built])) {
			targets_node_clear(&tn[built]);
			build_later(j->c, j->names[from + i]);
			continue;
		}
		built++;
	}
	if (!tn || !u) {
		for (int i = 0; i < n; i++)
			build_later(j->c, j->names[from + i]);
		n = built = 0;
	}
	nu = encode_updates(j->c, j->t, tn, built, u);
	install_updates(j->c, u, nu);
	for (int i = 0; i < nu; i++)
		free(u[i].msg);
	for (int i = 0; i < built; i++)
		targets_node_clear(&tn[i]);
	free(tn);
	free(u);
}

static void build_install(struct reconciler *r, const struct targets_view *v, char **names, int n)
{
	struct build_job j = { .c = r->c, .t = r->t, .v = v, .names = names, .n = n };

	pool_run(r->pool, (n + ENCODE_CHUNK - 1) / ENCODE_CHUNK, build_chunk, &j);
	ctl_lock(r->c);
	server_sweep_nodes(r->c, time(NULL));
	ctl_unlock(r->c);
}

/* The policies whose verdict moved (or all), into due; those whose counts moved
 * only, due soon (pods coming and going are not a status pass each). */
static void results_due(struct reconciler *r, struct hmap *due, bool all)
{
	ctl_lock(r->c);
	hmap_for_each(&r->runtime, it) {
		struct policy_rt *rt = it->val;
		const struct policy_result *res = targets_policy(r->t, it->key, NULL);

		if (!res)
			continue;
		if (all || res->accepted != rt->result.accepted ||
		    strcmp(res->reason, rt->result.reason) ||
		    strcmp(res->message, rt->result.message))
			hmap_put(due, it->key, (void *)1, NULL);
		else if (memcmp(res, &rt->result, sizeof(*res)))
			queue_soon(r->c, &r->c->rq.numbers, &r->c->rq.numbers_since_ms, it->key);
		rt->result = *res;
	}
	ctl_unlock(r->c);
}

/* After a failed sync: new target sets, everything matched again, every node
 * known built again (one whose set is now empty included). */
static void start_afresh(struct reconciler *r)
{
	struct targets *t = targets_new();
	struct ctl *c = r->c;

	log_error("reconcile: out of memory: the target sets are made again from scratch");
	if (t) {
		targets_free(r->t);
		r->t = t;
	}
	r->need_all = true;
	ctl_lock(c);
	hmap_for_each(&c->node_states, it)
		reconcile_node_set_locked(c, it->key);
	reconcile_resolve_soon_locked(c);
	ctl_unlock(c);
}

/* Brings the target sets up to date with what changed. Under cache_lock (read).
 * True when it built many sets (their memory is free, to give back). */
static bool sync_pass(struct reconciler *r, struct targets_work *w, struct hmap *due)
{
	struct ctl *c = r->c;
	struct targets_view v = {
		.pods = &c->pods, .policies = &c->policies, .namespaces = &c->namespaces,
		.nodes = &c->nodes, .backends = &c->backends, .replicasets = &c->replicasets,
		.store = c->store != NULL, .max_ns_policies = c->opt.max_ns_policies,
		.active = policy_active, .arg = r,
	};
	bool all = w->all || r->need_all;
	int64_t t0 = mono_ns(), t1, cpu1;
	char **names = NULL;
	int n = 0;

	runtimes_sync(r, due);
	w->all = all;
	r->need_all = false;
	if (targets_sync_names(r->t, &v, w, &names, &n)) {
		targets_names_free(names, n);
		start_afresh(r);
		return false;
	}
	results_due(r, due, all);
	t1 = mono_ns();
	cpu1 = log_get_level() >= LOG_LVL_DEBUG ? thread_cpu_ns() : 0;
	build_install(r, &v, names, n);
	targets_names_free(names, n);
	if (n && cpu1)	/* (the thread's CPU clock is a system call) */
		log_debug("reconcile: matched in %.1f ms; %d node set(s) built, encoded and "
			  "handed over in %.1f ms (%.1f ms on this thread's CPU, %d more "
			  "thread(s))", (double)(t1 - t0) / 1e6, n,
			  (double)(mono_ns() - t1) / 1e6, (double)(thread_cpu_ns() - cpu1) / 1e6,
			  r->nthreads);
	return n >= TRIM_AFTER_NODES || all;
}

/* ---- status ------------------------------------------------------------------------- */

struct due_policy {
	const char *key;
	int held;		/* nodes whose agent holds a set made since its change */
	int64_t held_ms;	/* CLOCK_MONOTONIC: the last of them to hold it got it then */
	bool held_unknown;	/* a node's first ack holding it is not known */
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

/* When the node's agent first acked a version >= v (a later ack, of a set
 * that pods coming and going made since, does not count); -1 when not known
 * (every ack kept is >= v: the first may be older). */
static int64_t held_since_ms(const struct node_state *ns, uint64_t v)
{
	int64_t ms = -1;

	for (int i = NODE_ACKS_KEPT - 1; i >= 0; i--) {
		if (ns->acks[i].version < v)
			return ms;
		ms = ns->acks[i].ms;
	}
	return -1;
}

/* A due policy's nodes: how many, connected, acked, holding its change. Under ctl.lock. */
static void gather_nodes(struct ctl *c, const struct targets *t, struct due_policy *d)
{
	const struct hmap *nodes = NULL;
	uint64_t since = d->rt->rollout_version;

	/* a finished OnDemand policy targets no node any more */
	if ((d->p->mode == MODE_ONDEMAND && d->rt->completion) || !targets_policy(t, d->key, &nodes))
		return;
	hmap_for_each(nodes, it) {
		/* keyed by node name as node_states is: its hash serves both */
		const struct node_state *ns = hmap_get_hashed(&c->node_states, it->key, it->hash);
		uint64_t need = 0;
		bool held;

		d->in.nodes++;
		d->in.connected += ns && ns->conn;
		d->in.acked += ns && ns->conn && ns->version && ns->acked >= ns->version;
		/* a set built since the change, or one older that it did not change */
		if (ns)
			need = ns->version < since ? ns->version : since;
		held = ns && ns->conn && ns->version && ns->acked >= need;
		d->held += held;
		if (held) {
			int64_t ms = held_since_ms(ns, need);

			d->held_unknown |= ms < 0;
			if (ms > d->held_ms)
				d->held_ms = ms;
		}
	}
}

/* The agents' side of each due policy, in one pass over the nodes. Under ctl.lock. */
static void gather_agents(struct ctl *c, const struct targets *t, struct due_policy *d, int n,
			  const struct hmap *by_key)
{
	for (int i = 0; i < n; i++)
		gather_nodes(c, t, &d[i]);
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

/* Its agents all hold its change: how long that took (up to the last ack, not
 * to this pass, which may come RECONCILE_NUMBERS_DELAY_MS later), into the
 * histogram. */
static void rollout_done(struct ctl *c, struct due_policy *d)
{
	static const double bounds[] = CTL_ROLLOUT_BOUNDS;
	int64_t t0 = d->rt->rollout_t0_ms;
	double s;
	int b = 0;

	if (!t0)
		return;
	s = (double)(mono_ms() - t0) / 1000;
	/* a node without its agent holds it up: given up after ROLLOUT_GIVE_UP_S, as +Inf */
	if (d->held < d->in.nodes && s < ROLLOUT_GIVE_UP_S)
		return;
	/* else up to now, at most RECONCILE_NUMBERS_DELAY_MS late */
	if (d->held == d->in.nodes && !d->held_unknown)	/* (no node needed a new set: 0) */
		s = (double)(d->held_ms > t0 ? d->held_ms - t0 : 0) / 1000;
	if (d->in.nodes) {	/* with no node, nothing was rolled out */
		while (b < CTL_ROLLOUT_BUCKETS - 1 && s > bounds[b])
			b++;
		ctl_lock(c);
		c->rollout_buckets[b]++;
		c->rollout_count++;
		c->rollout_sum_s += s;
		ctl_unlock(c);
	}
	d->rt->rollout_t0_ms = 0;
}

/*
 * A new change of a policy whose rollout is still open: was that rollout done?
 * Its last ack and the next change can come into one pass, whose new sets
 * would hide it; r->t still has its nodes. Timed up to now, the change's
 * arrival: at most one pass late.
 */
static void rollout_settle(struct reconciler *r, const char *key, const struct policy *p,
			   struct policy_rt *rt)
{
	struct due_policy d = { .key = key, .p = p, .rt = rt };
	bool leader;

	ctl_lock(r->c);
	leader = r->c->leader;
	if (leader)
		gather_nodes(r->c, r->t, &d);
	ctl_unlock(r->c);
	if (leader && d.in.nodes && d.held == d.in.nodes)
		rollout_done(r->c, &d);
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
		gather_agents(r->c, r->t, d, n, &by_key);
	ctl_unlock(r->c);
	if (leader != r->leader)	/* another leader wrote meanwhile: what we wrote is no guide */
		hmap_for_each(&r->runtime, it) {
			struct policy_rt *rt = it->val;

			free(rt->last_status);
			rt->last_status = NULL;
		}
	r->leader = leader;
	for (int i = 0; d && i < n; i++)
		rollout_done(r->c, &d[i]);
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
int64_t reconcile_gap_ms(bool policy_pending)
{
	return policy_pending ? RECONCILE_POLICY_GAP_MS : RECONCILE_MIN_GAP_MS;
}

static int64_t wake_at(struct reconciler *r, int64_t now_ms)
{
	struct rec_queue *q = &r->c->rq;
	int64_t t = r->last_resync_ms + RECONCILE_RESYNC_S * 1000;
	int64_t gap = reconcile_gap_ms(q->policy_since_ms != 0);

	if (q->resolve && r->last_resolve_ms + gap < t)
		t = r->last_resolve_ms + gap;
	if (q->numbers.n && q->numbers_since_ms + RECONCILE_NUMBERS_DELAY_MS < t)
		t = q->numbers_since_ms + RECONCILE_NUMBERS_DELAY_MS;
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
static void move_keys(struct hmap *from, struct hmap *to)
{
	hmap_for_each(from, it)
		hmap_put(to, it->key, (void *)1, NULL);
	hmap_free(from);
}

/* Waits for work; returns false when stopping. Under ctl.lock, which it may drop. */
static bool next_work(struct reconciler *r, bool *ret_resolve, struct targets_work *w,
		      struct hmap *due)
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
	if (*ret_resolve) {	/* moved, not copied: nothing to fail under the lock */
		*w = q->work;
		memset(&q->work, 0, sizeof(q->work));
		r->policy_since_ms = q->policy_since_ms;
		q->policy_since_ms = 0;
	}
	move_keys(&q->policies, due);
	hmap_for_each(&q->lost, it) {	/* what we wrote is no guide: written again */
		struct policy_rt *rt = hmap_get(&r->runtime, it->key);

		if (rt) {
			free(rt->last_status);
			rt->last_status = NULL;
		}
	}
	hmap_free(&q->lost);
	if (q->numbers.n && mono_ms() >= q->numbers_since_ms + RECONCILE_NUMBERS_DELAY_MS)
		move_keys(&q->numbers, due);
	if (q->counted.n && mono_ms() >= q->counted_since_ms + RECONCILE_COUNTED_DELAY_MS)
		move_keys(&q->counted, due);
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

/* One pass: the target sets brought up to date if asked, then the status of what is due. */
static void one_pass(struct reconciler *r, bool resolve_now, struct targets_work *w,
		     struct hmap *due)
{
	struct ctl *c = r->c;
	struct status_write *writes;
	bool again = false, trim = false;
	struct timespec ts;
	int64_t t0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	timers_due(r, due);
	pthread_rwlock_rdlock(&c->cache_lock);
	if (resolve_now) {
		r->last_resolve_ms = mono_ms();
		trim = sync_pass(r, w, due);
	}
	writes = status_pass(r, due, &again);
	pthread_rwlock_unlock(&c->cache_lock);
	if (resolve_now)
		observe(c, t0);
	/* what building many sets took is free now, but malloc keeps it (measured at
	 * 5000 nodes: 263 MiB held for 98 MiB in use): the pages go back */
	if (trim)
		malloc_trim(0);
	writer_put(r->wr, writes);
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
		struct targets_work w = { 0 };
		struct hmap due = { 0 };
		bool resolve_now;

		if (!next_work(r, &resolve_now, &w, &due))
			break;
		ctl_unlock(c);
		if (resolve_now && mono_ms() >= r->last_resync_ms + RECONCILE_RESYNC_S * 1000) {
			r->last_resync_ms = mono_ms();
			w.all = true;	/* what an event may have missed */
		}
		one_pass(r, resolve_now, &w, &due);
		targets_work_free(&w);
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
	r->need_all = true;	/* the first sync matches everything */
	r->t = targets_new();
	r->nthreads = c->opt.reconcile_threads >= 0 ? c->opt.reconcile_threads :
		      pool_threads_for_cpus(RECONCILE_MAX_THREADS);
	r->pool = r->t ? pool_new(r->nthreads) : NULL;
	r->wr = r->pool ? writer_start(c, reconcile_status_lost) : NULL;
	r->last_resync_ms = r->last_expire_ms = mono_ms();
	if (!r->wr) {
		pool_free(r->pool);
		targets_free(r->t);
		free(r);
		return NULL;
	}
	err = pthread_create(&r->thread, NULL, reconcile_main, r);
	if (err) {
		log_error("reconcile: cannot start a thread: %s", strerror(err));
		writer_stop(r->wr);
		pool_free(r->pool);
		targets_free(r->t);
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
	targets_free(r->t);
	writer_stop(r->wr);
	pool_free(r->pool);
	free(r);
}
