// SPDX-License-Identifier: Apache-2.0
/*
 * The target sets kept up to date by what changed (see targets.h).
 *
 * Each policy has a slot, an index into the resolve_input arrays that
 * resolve_pod() and resolve_encode() take. A pod that some accepted policy
 * selects has a struct tpod: its matches (slot and how it is selected) and the
 * node its targeted matches are counted on. The counts of each policy (pods,
 * waiting, nodes) move with every change of a pod's matches, so nothing is
 * counted again from scratch. A node's set is built from its tpods only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "targets.h"

struct tpolicy {
	char *key;		/* of ctl.policies */
	int slot;
	char uid[64];
	int64_t generation;
	uint64_t selection;	/* hash of what decides which pods it selects */
	bool accepted, active, seen;
	struct policy_result result;	/* verdict of the last sync; counts kept up to date */
	struct hmap nodes;	/* node -> (intptr_t) its targeted pods there */
};

struct tmatch {
	int slot;
	enum resolve_match m;	/* RESOLVE_WAITING or RESOLVE_TARGETED */
};

struct tpod {
	char *node;		/* where its targeted matches count; NULL when it has none */
	int n;
	struct tmatch *m;	/* by slot, ascending */
};

struct targets {
	struct hmap policies;	/* key -> struct tpolicy */
	int nslots, cap;
	struct tpolicy **slot;	/* slot -> its policy, or NULL */
	struct policy **pol;	/* slot -> the cached policy (resolve_input.policies) */
	bool *active;
	struct policy_result *verdicts;
	struct tmatch *scratch;	/* nslots */
	struct resolve_input in;
	struct hmap pods;	/* uid -> struct tpod */
	struct hmap nodes;	/* name -> struct hmap * (uid -> struct tpod, targeted ones) */
	struct hmap dirty;	/* node names whose set is built again */
	struct targets_stats stats;
	int err;		/* -ENOMEM met during a sync */
};

void targets_work_free(struct targets_work *w)
{
	hmap_free(&w->pods);
	hmap_free(&w->nodes);
	hmap_free(&w->owners);
	hmap_free(&w->namespaces);
	hmap_free(&w->node_labels);
	memset(w, 0, sizeof(*w));
}

struct targets *targets_new(void)
{
	return calloc(1, sizeof(struct targets));
}

static void tpod_free(struct tpod *tp)
{
	if (!tp)
		return;
	free(tp->node);
	free(tp->m);
	free(tp);
}

void targets_free(struct targets *t)
{
	if (!t)
		return;
	hmap_for_each(&t->policies, it) {
		struct tpolicy *p = it->val;

		hmap_free(&p->nodes);
		free(p->key);
		free(p);
	}
	hmap_free(&t->policies);
	hmap_for_each(&t->pods, it)
		tpod_free(it->val);
	hmap_free(&t->pods);
	hmap_for_each(&t->nodes, it) {
		hmap_free(it->val);
		free(it->val);
	}
	hmap_free(&t->nodes);
	hmap_free(&t->dirty);
	free(t->slot);
	free(t->pol);
	free(t->active);
	free(t->verdicts);
	free(t->scratch);
	free(t);
}

static void nomem(struct targets *t, int err)
{
	if (err)
		t->err = -ENOMEM;
}

static void mark_dirty(struct targets *t, const char *node)
{
	if (node)
		nomem(t, hmap_put(&t->dirty, node, NULL, NULL));
}

/* ---- counts ------------------------------------------------------------------- */

static void node_count(struct targets *t, struct tpolicy *p, const char *node, int sign)
{
	intptr_t n;

	/* a targeted match needs a bound pod; a record a change is still on its way
	 * for may not (a pod unbound since: never in Kubernetes, but no crash) */
	if (!node)
		return;
	n = (intptr_t)hmap_get(&p->nodes, node) + sign;

	if (n == 1 && sign > 0)
		p->result.nodes_gen++;	/* a node joins */
	if (n > 0) {
		nomem(t, hmap_put(&p->nodes, node, (void *)n, NULL));
	} else if (hmap_del(&p->nodes, node)) {
		p->result.nodes_gen++;	/* one leaves */
	}
	p->result.nodes = (int)p->nodes.n;
}

/* The node's targeted pods: tp in (sign 1) or out (-1). */
static void node_pod(struct targets *t, const char *node, const char *uid, struct tpod *tp,
		     int sign)
{
	struct hmap *pods;

	if (!node)	/* as node_count: both skip it, in and out alike */
		return;
	pods = hmap_get(&t->nodes, node);
	mark_dirty(t, node);
	if (sign < 0) {
		if (pods && hmap_del(pods, uid) && !pods->n) {
			hmap_free(pods);
			free(hmap_del(&t->nodes, node));
		}
		return;
	}
	if (!pods) {
		pods = calloc(1, sizeof(*pods));
		if (!pods || hmap_put(&t->nodes, node, pods, NULL)) {
			free(pods);
			t->err = -ENOMEM;
			return;
		}
	}
	nomem(t, hmap_put(pods, uid, tp, NULL));
}

/* One match of slot s counted in (sign 1) or out (-1), on node. */
static void count_one(struct targets *t, int s, enum resolve_match m, const char *node, int sign)
{
	struct tpolicy *p = t->slot[s];

	if (m == RESOLVE_WAITING) {
		p->result.waiting += sign;
	} else if (m == RESOLVE_TARGETED) {
		p->result.pods += sign;
		node_count(t, p, node, sign);
	}
}

/* tp's matches added to (sign 1) or taken from (-1) its policies' counts. */
static void count(struct targets *t, const char *uid, struct tpod *tp, int sign)
{
	bool targeted = false;

	for (int i = 0; i < tp->n; i++) {
		count_one(t, tp->m[i].slot, tp->m[i].m, tp->node, sign);
		targeted |= tp->m[i].m == RESOLVE_TARGETED;
	}
	if (targeted)
		node_pod(t, tp->node, uid, tp, sign);
}

/* ---- a pod's matches ------------------------------------------------------------ */

#define LOOKUP_BATCH 32	/* pods looked up at once: their cache misses overlap */

/*
 * The lookups in m of a batch's keys (entries of another map, which hashes
 * them alike) asked for ahead: every slot first, then each slot's key and value.
 */
static void prefetch_lookups(const struct hmap *m, struct hmap_entry *const *b, int n)
{
	for (int k = 0; k < n; k++)
		hmap_prefetch_slot(m, b[k]->hash);
	for (int k = 0; k < n; k++)
		hmap_prefetch_entry(m, b[k]->hash);
}

static bool slot_accepted(const struct targets *t, int s)
{
	return t->pol[s] && t->verdicts[s].accepted;
}

/* The pod's matches into t->scratch: every slot (only < 0), or tp's with slot only's
 * made again. Returns how many. */
static int matches(struct targets *t, const struct pod *pod, const struct tpod *tp, int only)
{
	int n = 0, k = 0;

	if (only >= 0) {
		enum resolve_match m = pod && slot_accepted(t, only) ?
				       resolve_pod(&t->in, only, pod) : RESOLVE_NONE;

		for (; tp && k < tp->n && tp->m[k].slot < only; k++)
			t->scratch[n++] = tp->m[k];
		if (m != RESOLVE_NONE)
			t->scratch[n++] = (struct tmatch){ only, m };
		for (; tp && k < tp->n; k++)
			if (tp->m[k].slot != only)
				t->scratch[n++] = tp->m[k];
		return n;
	}
	for (int s = 0; pod && s < t->nslots; s++) {
		enum resolve_match m = slot_accepted(t, s) ? resolve_pod(&t->in, s, pod) :
							     RESOLVE_NONE;

		if (m != RESOLVE_NONE)
			t->scratch[n++] = (struct tmatch){ s, m };
	}
	return n;
}

static bool same_matches(const struct tpod *tp, const struct tmatch *m, int n, const char *node)
{
	if (!tp)
		return n == 0;
	if (tp->n != n || (!tp->node != !node) || (node && strcmp(tp->node, node)))
		return false;
	for (int i = 0; i < n; i++)
		if (tp->m[i].slot != m[i].slot || tp->m[i].m != m[i].m)
			return false;
	return true;
}

/* The match of slot s among m's n (RESOLVE_NONE when it has none). */
static enum resolve_match match_of(const struct tmatch *m, int n, int s)
{
	for (int i = 0; i < n; i++)
		if (m[i].slot == s)
			return m[i].m;
	return RESOLVE_NONE;
}

/*
 * One policy matched again (only), the pod still on the node its targeted
 * matches count on (or on none, before and after): only that policy's counts
 * move, where count() would take every match out and put it back (a policy
 * made or deleted moves one match of each of a cluster's pods). True when done.
 */
static bool pod_sync_one(struct targets *t, struct tpod *tp, int only, const char *node, int n)
{
	enum resolve_match was = match_of(tp->m, tp->n, only), now = match_of(t->scratch, n, only);
	struct tmatch *m;

	if (!n || !tp->node != !node || (node && strcmp(tp->node, node)))
		return false;
	if (n != tp->n) {
		if (!(m = realloc(tp->m, (size_t)n * sizeof(*m))))
			return false;	/* the whole way then, which reports it */
		tp->m = m;
	}
	memcpy(tp->m, t->scratch, (size_t)n * sizeof(*tp->m));
	tp->n = n;
	count_one(t, only, was, node, -1);
	count_one(t, only, now, node, 1);
	if (node && (was == RESOLVE_TARGETED || now == RESOLVE_TARGETED))
		mark_dirty(t, node);	/* its set gains or loses the policy */
	return true;
}

/*
 * Matches the pod (NULL: gone) again against every policy (only < 0) or one,
 * and moves the counts. A pod that changed (every policy) has its node built
 * again even when its matches did not change: what its targets carry may have.
 * tp is its kept state (NULL: none). Given one, t->pods is not added to (no
 * rehash: unmatch_batch holds entries of it), only tp's own entry deleted; uid
 * may be that entry's key, freed then and not used after. Without one, the
 * pod's kept state may be added (t->pods may grow and rehash).
 */
static void pod_sync_kept(struct targets *t, const char *uid, const struct pod *pod,
			  struct tpod *tp, int only)
{
	const char *node = NULL;
	struct tmatch *m;
	int n;

	if (!pod)	/* gone (its key may come with the next sync): none of it stays */
		only = -1;
	n = matches(t, pod, tp, only);

	t->stats.pods_synced++;
	for (int i = 0; i < n && !node; i++)
		if (t->scratch[i].m == RESOLVE_TARGETED)
			node = pod->node;
	if (only < 0 && tp)	/* its new node, if another, is marked as it is counted there */
		mark_dirty(t, tp->node);
	if (same_matches(tp, t->scratch, n, node))
		return;
	if (only >= 0 && tp && pod_sync_one(t, tp, only, node, n))
		return;
	if (tp)
		count(t, uid, tp, -1);
	if (!n) {
		tpod_free(hmap_del(&t->pods, uid));
		return;
	}
	m = malloc((size_t)n * sizeof(*m));
	if (!tp && m && (tp = calloc(1, sizeof(*tp))) && hmap_put(&t->pods, uid, tp, NULL)) {
		free(tp);
		tp = NULL;
	}
	if (!tp || !m) {	/* the caller starts afresh */
		free(m);
		t->err = -ENOMEM;
		return;
	}
	memcpy(m, t->scratch, (size_t)n * sizeof(*m));
	free(tp->m);
	tp->m = m;
	tp->n = n;
	if (!tp->node != !node || (node && strcmp(tp->node, node))) {
		free(tp->node);
		tp->node = node ? strdup(node) : NULL;
		if (node && !tp->node) {	/* the caller starts afresh */
			tp->n = 0;
			t->err = -ENOMEM;
			return;
		}
	}
	count(t, uid, tp, 1);
}

/* pod_sync_kept with the pod's kept state (tp, or NULL) looked up here. */
static void pod_sync(struct targets *t, const char *uid, const struct pod *pod, int only)
{
	pod_sync_kept(t, uid, pod, hmap_get(&t->pods, uid), only);
}

/* ---- policies ------------------------------------------------------------------- */

/* A string with its NUL: "ab","c" is not "a","bc". */
static uint64_t hash_str(uint64_t h, const char *s)
{
	return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "", 1);
}

static uint64_t hash_int(uint64_t h, int v)
{
	return fnv1a(h, &v, sizeof(v));
}

/* Every count and operator hashed as itself: no two selections share a sequence. */
static uint64_t hash_selector(uint64_t h, const struct selector *s)
{
	h = hash_int(h, s->match.n);
	for (int i = 0; i < s->match.n; i++)
		h = hash_str(hash_str(h, s->match.kv[i].key), s->match.kv[i].value);
	h = hash_int(h, s->nexpr);
	for (int i = 0; i < s->nexpr; i++) {
		h = hash_int(hash_str(h, s->expr[i].key), (int)s->expr[i].op);
		h = hash_int(h, s->expr[i].nvalues);
		for (int k = 0; k < s->expr[i].nvalues; k++)
			h = hash_str(h, s->expr[i].values[k]);
	}
	return h;
}

/* What resolve_pod() reads of a policy: a new spec that leaves it (a new frequency,
 * labels, backends) selects the same pods, and only its nodes are built again. */
static uint64_t selection_hash(const struct policy *p)
{
	uint64_t h = hash_str(FNV_OFFSET, p->cluster ? "cluster" : p->ns);

	h = hash_selector(h, &p->pods);
	h = hash_str(h, p->has_ns_sel ? "ns" : "");
	if (p->has_ns_sel)
		h = hash_selector(h, &p->namespaces);
	h = hash_str(h, p->has_node_sel ? "node" : "");
	if (p->has_node_sel)
		h = hash_selector(h, &p->nodes);
	h = hash_int(h, p->ncontainers);
	for (int i = 0; i < p->ncontainers; i++)
		h = hash_str(h, p->containers[i]);
	return h;
}

static int grow_slots(struct targets *t)
{
	int cap = t->cap ? t->cap * 2 : 16;
	void *a = realloc(t->slot, (size_t)cap * sizeof(*t->slot));

	if (a)
		t->slot = a;
	a = a ? realloc(t->pol, (size_t)cap * sizeof(*t->pol)) : NULL;
	if (a)
		t->pol = a;
	a = a ? realloc(t->active, (size_t)cap * sizeof(*t->active)) : NULL;
	if (a)
		t->active = a;
	a = a ? realloc(t->verdicts, (size_t)cap * sizeof(*t->verdicts)) : NULL;
	if (a)
		t->verdicts = a;
	a = a ? realloc(t->scratch, (size_t)cap * sizeof(*t->scratch)) : NULL;
	if (a)
		t->scratch = a;
	if (!a)
		return -ENOMEM;
	t->cap = cap;
	return 0;
}

static struct tpolicy *policy_new(struct targets *t, const char *key)
{
	struct tpolicy *p = calloc(1, sizeof(*p));
	int s = 0;

	while (s < t->nslots && t->slot[s])
		s++;
	if (!p || (s == t->cap && grow_slots(t)) || !(p->key = strdup(key)) ||
	    hmap_put(&t->policies, key, p, NULL)) {
		if (p)
			free(p->key);
		free(p);
		return NULL;
	}
	if (s == t->nslots)
		t->nslots++;
	p->slot = s;
	p->generation = -1;
	t->slot[s] = p;
	t->pol[s] = NULL;
	t->active[s] = false;
	memset(&t->verdicts[s], 0, sizeof(t->verdicts[s]));
	return p;
}

static void policy_nodes_dirty(struct targets *t, const struct tpolicy *p)
{
	hmap_for_each(&p->nodes, it)
		mark_dirty(t, it->key);
}

/*
 * A batch of the cache's pods (its entries) matched again against slot s. The
 * kept state of each is looked up first, the whole batch at once: the pods are
 * the cluster's, their cache misses overlap. pod_sync_kept adds or frees only
 * its own pod's kept state: the others' (heap objects, which a rehash of
 * t->pods does not move) stay valid; the entries are the cache's, unchanged.
 */
static void rematch_batch(struct targets *t, const struct policy *pol, int s,
			  struct hmap_entry **b, int n)
{
	struct tpod *tp[LOOKUP_BATCH];

	for (int k = 0; k < n; k++) {
		__builtin_prefetch(b[k]->val);
		__builtin_prefetch(b[k]->key);
	}
	prefetch_lookups(&t->pods, b, n);
	for (int k = 0; k < n && !pol->cluster; k++)
		__builtin_prefetch(((const struct pod *)b[k]->val)->ns);
	for (int k = 0; k < n; k++) {
		const struct pod *pod = b[k]->val;

		tp[k] = NULL;
		if (!pol->cluster && strcmp(pod->ns, pol->ns)) {
			b[k] = NULL;	/* another namespace's */
			continue;
		}
		tp[k] = hmap_get_hashed(&t->pods, b[k]->key, b[k]->hash);
		if (tp[k]) {
			__builtin_prefetch(tp[k]->m);
			__builtin_prefetch(tp[k]->node);
		}
	}
	for (int k = 0; k < n; k++)
		if (b[k])
			pod_sync_kept(t, b[k]->key, b[k]->val, tp[k], s);
}

/*
 * A batch of the kept pods (entries of t->pods) that match slot s, which no
 * longer selects anything: each matched again, its pod in the cache looked up
 * for the whole batch first. pod_sync_kept only marks its own entry deleted
 * (nothing is added: each has its kept state), so the others' entries stay.
 */
static void unmatch_batch(struct targets *t, const struct targets_view *v, int s,
			  struct hmap_entry **b, int n)
{
	const struct pod *pod[LOOKUP_BATCH];

	prefetch_lookups(v->pods, b, n);
	for (int k = 0; k < n; k++)
		pod[k] = hmap_get_hashed(v->pods, b[k]->key, b[k]->hash);
	for (int k = 0; k < n; k++)
		pod_sync_kept(t, b[k]->key, pod[k], b[k]->val, s);
}

/*
 * Matches one policy again: not accepted (or gone), it leaves every pod it
 * selected; accepted, every pod of its scope is matched (a pod gone from the
 * caches whose key has not come yet keeps its match until it comes).
 */
static void policy_rematch(struct targets *t, const struct targets_view *v, struct tpolicy *p)
{
	const struct policy *pol = t->pol[p->slot];
	struct hmap_entry *batch[LOOKUP_BATCH];
	int n = 0;

	t->stats.policies_matched++;
	if (!slot_accepted(t, p->slot)) {
		hmap_for_each(&t->pods, it) {
			const struct tpod *tp = it->val;

			if (match_of(tp->m, tp->n, p->slot) == RESOLVE_NONE)
				continue;
			batch[n++] = it;
			if (n == LOOKUP_BATCH) {
				unmatch_batch(t, v, p->slot, batch, n);
				n = 0;
			}
		}
		unmatch_batch(t, v, p->slot, batch, n);
		return;
	}
	hmap_for_each(v->pods, it) {
		batch[n++] = it;
		if (n == LOOKUP_BATCH) {
			rematch_batch(t, pol, p->slot, batch, n);
			n = 0;
		}
	}
	rematch_batch(t, pol, p->slot, batch, n);
}

/* The policies of the view, their verdicts; which ones must be matched again. */
static int policies_sync(struct targets *t, const struct targets_view *v, bool backends,
			 struct tpolicy **changed, int *nchanged)
{
	hmap_for_each(&t->policies, it) {
		struct tpolicy *p = it->val;

		p->seen = false;
		t->pol[p->slot] = NULL;
	}
	hmap_for_each(v->policies, it) {
		struct tpolicy *p = hmap_get(&t->policies, it->key);

		if (!p && !(p = policy_new(t, it->key)))
			return -ENOMEM;
		p->seen = true;
		t->pol[p->slot] = it->val;
		t->active[p->slot] = !v->active || v->active(v->arg, it->key, it->val);
	}
	t->in.policies = t->pol;
	t->in.active = t->active;
	t->in.npolicies = t->nslots;
	if (resolve_verdicts(&t->in, t->verdicts))
		return -ENOMEM;
	*nchanged = 0;
	hmap_for_each(&t->policies, it) {
		struct tpolicy *p = it->val;
		const struct policy *pol = t->pol[p->slot];
		const struct policy_result *vr = &t->verdicts[p->slot];
		bool spec = !pol || strcmp(p->uid, pol->uid ? pol->uid : "") ||
			    p->generation != pol->generation || p->accepted != vr->accepted;
		uint64_t sel = pol ? selection_hash(pol) : 0;

		if (spec && (!pol || sel != p->selection || p->accepted != vr->accepted ||
			     strcmp(p->uid, pol->uid ? pol->uid : "")))
			changed[(*nchanged)++] = p;	/* it may select other pods */
		if (spec || p->active != t->active[p->slot] ||
		    (backends && pol && pol->nbackends))
			policy_nodes_dirty(t, p);	/* what its targets carry changed */
		p->selection = sel;
		p->accepted = vr->accepted;
		p->active = t->active[p->slot];
		if (pol) {
			snprintf(p->uid, sizeof(p->uid), "%s", pol->uid ? pol->uid : "");
			p->generation = pol->generation;
		}
		p->result.accepted = vr->accepted;
		memcpy(p->result.reason, vr->reason, sizeof(p->result.reason));
		memcpy(p->result.message, vr->message, sizeof(p->result.message));
	}
	return 0;
}

/* Policies gone from the view: matched again (to nothing) by now; their slots free. */
static void policies_drop(struct targets *t)
{
	hmap_for_each(&t->policies, it) {
		struct tpolicy *p = it->val;

		if (p->seen)
			continue;
		t->slot[p->slot] = NULL;
		while (t->nslots && !t->slot[t->nslots - 1])
			t->nslots--;
		hmap_free(&p->nodes);
		free(p->key);
		free(hmap_del_entry(&t->policies, it));
	}
	t->in.npolicies = t->nslots;
}

/* ---- nodes ---------------------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policies of a node's targets, each once: their slots and a hash of their keys. */
static int node_policies(const struct targets *t, struct targets_node *tn)
{
	const struct node_targets *nt = &tn->nt;
	uint64_t h = FNV_OFFSET;

	tn->slots = calloc((size_t)t->nslots / 64 + 1, sizeof(*tn->slots));
	if (!tn->slots)
		return -ENOMEM;
	for (int j = 0; j < nt->n; j++)
		for (int k = 0; k < nt->t[j].npolicies; k++) {
			int s = rtarget_policy(&nt->t[j], k);

			tn->slots[s / 64] |= 1ull << (s % 64);
		}
	for (int s = 0; s < t->nslots; s++)
		if (tn->slots[s / 64] & (1ull << (s % 64))) {
			h = hash_str(h, t->slot[s]->key);
			tn->nkeys++;
		}
	tn->policies_hash = h | 1;	/* 0 is "none yet" */
	return 0;
}

int targets_node_keys(const struct targets *t, struct targets_node *tn)
{
	if (tn->policies)
		return 0;
	tn->policies = calloc((size_t)tn->nkeys + 1, sizeof(char *));
	for (int s = 0; tn->policies && s < t->nslots; s++) {
		if (!(tn->slots[s / 64] & (1ull << (s % 64))))
			continue;
		if (!(tn->policies[tn->npolicies] = strdup(t->slot[s]->key)))
			break;
		tn->npolicies++;
	}
	if (!tn->policies || tn->npolicies < tn->nkeys) {	/* none, rather than some */
		for (int k = 0; k < tn->npolicies; k++)
			free(tn->policies[k]);
		free(tn->policies);
		tn->policies = NULL;
		tn->npolicies = 0;
		return -ENOMEM;
	}
	qsort(tn->policies, (size_t)tn->npolicies, sizeof(char *), cmp_key);
	return 0;
}

/* A batch of a node's pods (entries of its map) added to its set. */
static int node_add_batch(const struct targets *t, const struct targets_view *v,
			  struct targets_node *tn, struct hmap_entry **b, int n)
{
	/* the node's map is keyed by uid as v->pods is: its hash serves both */
	prefetch_lookups(v->pods, b, n);
	for (int k = 0; k < n; k++) {
		const struct tpod *tp = b[k]->val;
		const struct pod *pod = hmap_get_hashed(v->pods, b[k]->key, b[k]->hash);
		int from = tn->nt.n;	/* one pod at a time: its containers are its own */

		/* gone since the changes were taken: the next sync drops it */
		for (int i = 0; pod && i < tp->n; i++)
			if (tp->m[i].m == RESOLVE_TARGETED &&
			    resolve_node_add(&t->in, &tn->nt, pod, tp->m[i].slot, from))
				return -ENOMEM;
	}
	return 0;
}

static int node_build(const struct targets *t, const struct targets_view *v, const char *name,
		      struct targets_node *tn)
{
	const struct hmap *pods = hmap_get(&t->nodes, name);
	struct hmap_entry *batch[LOOKUP_BATCH];
	int n = 0;

	memset(tn, 0, sizeof(*tn));
	if (!(tn->name = strdup(name)))
		return -ENOMEM;
	tn->nt.node = tn->name;
	if (pods)
		hmap_for_each(pods, it) {
			__builtin_prefetch(it->val);	/* the tpod, read in the batch */
			batch[n++] = it;
			if (n == LOOKUP_BATCH) {
				if (node_add_batch(t, v, tn, batch, n))
					return -ENOMEM;
				n = 0;
			}
		}
	if (node_add_batch(t, v, tn, batch, n))
		return -ENOMEM;
	resolve_node_sort(&t->in, &tn->nt);
	return node_policies(t, tn);
}

void targets_node_clear(struct targets_node *tn)
{
	for (int k = 0; k < tn->npolicies; k++)
		free(tn->policies[k]);
	free(tn->policies);
	free(tn->slots);
	node_targets_free(&tn->nt);
	free(tn->name);
	memset(tn, 0, sizeof(*tn));
}

void targets_nodes_free(struct targets_node *n, int count)
{
	for (int i = 0; n && i < count; i++)
		targets_node_clear(&n[i]);
	free(n);
}

/* The dirty nodes' names, taken (t->dirty is emptied). */
static int dirty_names(struct targets *t, char ***ret, int *ret_n)
{
	char **names = calloc(t->dirty.n + 1, sizeof(*names));
	int n = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!names)
		return -ENOMEM;
	hmap_for_each(&t->dirty, it) {	/* the keys move: no copy to fail */
		names[n++] = it->key;
		it->key = NULL;
	}
	free(t->dirty.e);
	memset(&t->dirty, 0, sizeof(t->dirty));
	t->stats.nodes_built += (uint64_t)n;
	*ret = names;
	*ret_n = n;
	return 0;
}

void targets_names_free(char **names, int n)
{
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int targets_build(const struct targets *t, const struct targets_view *v, const char *name,
		  struct targets_node *tn)
{
	return node_build(t, v, name, tn);
}

static int nodes_build(struct targets *t, const struct targets_view *v, struct targets_node **ret,
		       int *ret_n)
{
	struct targets_node *out;
	char **names;
	int n, err = 0;

	*ret = NULL;
	*ret_n = 0;
	if (dirty_names(t, &names, &n))
		return -ENOMEM;
	out = calloc((size_t)n + 1, sizeof(*out));
	for (int i = 0; out && !err && i < n; i++)
		err = node_build(t, v, names[i], &out[i]) || targets_node_keys(t, &out[i]);
	targets_names_free(names, n);
	if (!out || err) {
		targets_nodes_free(out, n);
		return -ENOMEM;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

/* ---- the sync ------------------------------------------------------------------- */

static bool any_selector(const struct targets *t, bool ns)
{
	for (int s = 0; s < t->nslots; s++)
		if (t->pol[s] && t->pol[s]->cluster &&
		    (ns ? t->pol[s]->has_ns_sel : t->pol[s]->has_node_sel))
			return true;
	return false;
}

/* The pods of Namespaces and on Nodes whose labels changed, matched again when a
 * cluster policy selects by them (a scan of names: no selector for the others). */
static void scopes_sync(struct targets *t, const struct targets_view *v,
			const struct targets_work *w)
{
	bool ns = w->namespaces.n && any_selector(t, true);
	bool nodes = w->node_labels.n && any_selector(t, false);

	if (!ns && !nodes)
		return;
	hmap_for_each(v->pods, it) {
		const struct pod *pod = it->val;

		if ((ns && hmap_get(&w->namespaces, pod->ns)) ||
		    (nodes && pod->node && hmap_get(&w->node_labels, pod->node)))
			pod_sync(t, it->key, pod, -1);
	}
}

/* Every pod matched again: those of the view, and those gone from it. */
static void pods_all(struct targets *t, const struct targets_view *v)
{
	hmap_for_each(&t->pods, it)
		if (!hmap_get(v->pods, it->key))
			pod_sync(t, it->key, NULL, -1);
	hmap_for_each(v->pods, it)
		pod_sync(t, it->key, it->val, -1);
}

/* The pods a changed ReplicaSet owns: their deployment label may have changed. */
static void owners_dirty(struct targets *t, const struct targets_view *v, const struct hmap *owners)
{
	char key[600];

	if (!owners->n)
		return;
	hmap_for_each(v->pods, it) {
		const struct pod *pod = it->val;
		const struct tpod *tp;

		if (!pod->owner_kind || strcmp(pod->owner_kind, "ReplicaSet") || !pod->owner_name)
			continue;
		snprintf(key, sizeof(key), "%s/%s", pod->ns, pod->owner_name);
		if (hmap_get(owners, key) && (tp = hmap_get(&t->pods, it->key)))
			mark_dirty(t, tp->node);
	}
}

/* Everything but the build of the dirty nodes' sets. */
static int sync_matches(struct targets *t, const struct targets_view *v, struct targets_work *w)
{
	struct tpolicy **changed = NULL;
	int nchanged = 0;
	bool all = w->all;

	t->err = 0;
	t->in.namespaces = v->namespaces;
	t->in.nodes = v->nodes;
	t->in.backends = v->backends;
	t->in.replicasets = v->replicasets;
	t->in.store = v->store;
	t->in.max_ns_policies = v->max_ns_policies;
	changed = calloc(t->policies.n + v->policies->n + 1, sizeof(*changed));
	if (!changed || policies_sync(t, v, w->backends, changed, &nchanged)) {
		free(changed);
		targets_work_free(w);
		return -ENOMEM;
	}
	if (all) {
		pods_all(t, v);
	} else {
		scopes_sync(t, v, w);
		hmap_for_each(&w->pods, it)
			pod_sync(t, it->key, hmap_get(v->pods, it->key), -1);
		for (int i = 0; i < nchanged; i++)
			policy_rematch(t, v, changed[i]);
	}
	for (int i = 0; i < nchanged; i++)
		policy_nodes_dirty(t, changed[i]);	/* where it is now */
	free(changed);
	policies_drop(t);
	owners_dirty(t, v, &w->owners);
	hmap_for_each(&w->nodes, it)
		mark_dirty(t, it->key);
	targets_work_free(w);
	t->stats.pods_matched = t->pods.n;
	return t->err;
}

int targets_sync(struct targets *t, const struct targets_view *v, struct targets_work *w,
		 struct targets_node **ret, int *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	if (sync_matches(t, v, w))
		return -ENOMEM;
	return nodes_build(t, v, ret, ret_n);
}

int targets_sync_names(struct targets *t, const struct targets_view *v, struct targets_work *w,
		       char ***ret, int *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	if (sync_matches(t, v, w))
		return -ENOMEM;
	return dirty_names(t, ret, ret_n);
}

const struct resolve_input *targets_input(const struct targets *t)
{
	return &t->in;
}

const struct policy_result *targets_policy(const struct targets *t, const char *key,
					   const struct hmap **ret_nodes)
{
	const struct tpolicy *p = hmap_get(&t->policies, key);

	if (!p)
		return NULL;
	if (ret_nodes)
		*ret_nodes = &p->nodes;
	return &p->result;
}

void targets_stats(const struct targets *t, struct targets_stats *s)
{
	*s = t->stats;
}
