// SPDX-License-Identifier: Apache-2.0
/*
 * The target sets kept up to date by what changed (controller/targets.c)
 * against resolve() from scratch: after every one of many random changes to
 * pods, policies, namespaces, nodes, backends and ReplicaSets, each policy's
 * verdict and counts and each node's set must be what a full resolve gives.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fleet.pb-c.h"
#include "hmap.h"
#include "model.h"
#include "resolve.h"
#include "targets.h"

#define NPODS 160
#define NPOLICIES 8

static uint64_t rng = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static const char *pick(const char *const *v, unsigned n)
{
	return v[rnd(n)];
}

#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

struct world {
	struct hmap pods, policies, namespaces, nodes, backends, replicasets;
	struct hmap inactive;	/* policy keys: finished OnDemand */
	int64_t gen[NPOLICIES];
	int uids;
};

static cJSON *parse(const char *json)
{
	cJSON *j = cJSON_Parse(json);

	if (!j)
		fail_msg("bad JSON: %s", json);
	return j;
}

static void put(struct hmap *m, const char *key, void *v, void (*destroy)(void *))
{
	void *old = NULL;

	assert_int_equal(hmap_put(m, key, v, &old), 0);
	if (old)
		destroy(old);
}

static void del(struct hmap *m, const char *key, void (*destroy)(void *))
{
	void *old = hmap_del(m, key);

	if (old)
		destroy(old);
}

static void pod_destroy(void *p)
{
	pod_free(p);
	free(p);
}

static void policy_destroy(void *p)
{
	policy_free(p);
	free(p);
}

static void nl_destroy(void *p)
{
	named_labels_free(p);
	free(p);
}

static void backend_destroy(void *p)
{
	backend_free(p);
	free(p);
}

/* Pod i, made again at random (its uid kept: the same pod, changed). */
static void pod_change(struct world *w, int i, struct targets_work *work)
{
	/* n1 holds half the bound pods: more than node_build looks up at once */
	static const char *const apps[] = { "a", "b", "c" }, *const tiers[] = { "x", "y" },
		*const nss[] = { "ns1", "ns2", "ns3" }, *const nodes[] = { "n1", "n1", "n1", "n2", "n3", "n4" },
		*const phases[] = { "Running", "Running", "Running", "Pending" },
		*const owners[] = { "rs1", "rs2", "none" };
	char uid[32], json[2048], key[64];
	struct pod *p = calloc(1, sizeof(*p));
	cJSON *j;
	const char *owner = PICK(owners);
	bool bound = rnd(5) != 0, side = rnd(2), run1 = rnd(4) != 0;

	char status[160] = "";

	snprintf(uid, sizeof(uid), "uid-%d", i);
	if (run1)	/* else no container id yet */
		snprintf(status, sizeof(status),
			 "{\"name\":\"app\",\"containerID\":\"containerd://%064x\"}",
			 i + 1000 * rnd(3) + 1);
	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"p%d\",\"namespace\":\"%s\",\"uid\":\"%s\","
		 "\"labels\":{\"app\":\"%s\",\"tier\":\"%s\"}%s%s%s},"
		 "\"spec\":{%s%s%s\"containers\":[{\"name\":\"app\"}%s]},"
		 "\"status\":{\"phase\":\"%s\",\"containerStatuses\":[%s]}}",
		 i, PICK(nss), uid, PICK(apps), PICK(tiers),
		 strcmp(owner, "none") ? ",\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"" : "",
		 strcmp(owner, "none") ? owner : "",
		 strcmp(owner, "none") ? "\",\"controller\":true}]" : "",
		 bound ? "\"nodeName\":\"" : "", bound ? PICK(nodes) : "", bound ? "\"," : "",
		 side ? ",{\"name\":\"side\"}" : "", PICK(phases), status);
	j = parse(json);
	assert_int_equal(pod_from_json(j, p), 0);
	cJSON_Delete(j);
	put(&w->pods, uid, p, pod_destroy);
	snprintf(key, sizeof(key), "%s", uid);
	hmap_put(&work->pods, key, NULL, NULL);
}

static void pod_delete(struct world *w, int i, struct targets_work *work)
{
	char uid[32];

	snprintf(uid, sizeof(uid), "uid-%d", i);
	del(&w->pods, uid, pod_destroy);
	hmap_put(&work->pods, uid, NULL, NULL);
}

/* Policy i, its spec changed (generation up) or made again (a new uid). */
static void policy_change(struct world *w, int i, bool again)
{
	static const char *const sels[] = {
		"{}", "{\"matchLabels\":{\"app\":\"a\"}}", "{\"matchLabels\":{\"tier\":\"x\"}}",
		"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"b\",\"c\"]}]}",
		"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\",\"values\":[\"b\",\"c\"]}]}",
		"{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\"}]}",
		"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}",
		"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"a\"]}]}",
	};
	static const char *const scope[] = {
		"", ",\"namespaceSelector\":{\"matchLabels\":{\"team\":\"t1\"}}",
		",\"nodeSelector\":{\"matchLabels\":{\"pool\":\"p1\"}}",
	};
	static const char *const nss[] = { "ns1", "ns2" };
	static const char *const extras[] = {
		"", ",\"export\":{\"backendRefs\":[\"be\"]}", ",\"selector\":{}",
		",\"labels\":{\"fromPodLabels\":[\"tier\"]}",
	};
	bool cluster = i >= NPOLICIES - 3;
	char json[2048], key[64];
	struct policy *p = calloc(1, sizeof(*p));
	const char *ns = nss[i % 2];
	cJSON *j;

	w->gen[i]++;
	if (again) {	/* a new object: its generation starts again */
		w->uids++;
		w->gen[i] = 1;
	}
	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"pol%d\"%s%s%s,\"uid\":\"pu-%d-%d\",\"generation\":%lld,"
		 "\"creationTimestamp\":\"2026-01-0%dT00:00:00Z\"},"
		 "\"spec\":{\"selector\":{\"podSelector\":%s%s%s},"
		 "\"sampling\":{\"frequencyHz\":%u},\"labels\":{\"static\":{\"k%d\":\"v\"}}%s}}",
		 i, cluster ? "" : ",\"namespace\":\"", cluster ? "" : ns, cluster ? "" : "\"",
		 i, w->uids, (long long)w->gen[i], 1 + (int)rnd(9), PICK(sels),
		 cluster ? PICK(scope) : "", rnd(4) ? "" : ",\"containers\":[\"app\"]",
		 1 + rnd(200), i, PICK(extras));
	j = parse(json);
	assert_int_equal(policy_from_json(j, cluster, 1000, p), 0);
	cJSON_Delete(j);
	snprintf(key, sizeof(key), "%c:%s", cluster ? 'C' : 'P', p->key);
	put(&w->policies, key, p, policy_destroy);
}

static void policy_delete(struct world *w, int i)
{
	bool cluster = i >= NPOLICIES - 3;
	char key[64];

	snprintf(key, sizeof(key), cluster ? "C:pol%d" : "P:ns%d/pol%d", cluster ? i : 1 + i % 2, i);
	del(&w->policies, key, policy_destroy);
}

static void named(struct hmap *m, const char *name, const char *k, const char *v,
		  struct hmap *changed)
{
	struct named_labels *n = calloc(1, sizeof(*n));
	char json[256];
	cJSON *j;

	snprintf(json, sizeof(json), "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"%s\":\"%s\"}}}",
		 name, k, v);
	j = parse(json);
	assert_int_equal(named_labels_from_json(j, n), 0);
	cJSON_Delete(j);
	put(m, name, n, nl_destroy);
	if (changed)
		hmap_put(changed, name, (void *)1, NULL);
}

static void replicaset(struct hmap *m, const char *name, const char *deployment)
{
	struct named_labels *n = calloc(1, sizeof(*n));
	char json[256];
	cJSON *j;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns1\"%s%s%s}}", name,
		 deployment ? ",\"ownerReferences\":[{\"kind\":\"Deployment\",\"name\":\"" : "",
		 deployment ? deployment : "", deployment ? "\",\"controller\":true}]" : "");
	j = parse(json);
	assert_int_equal(replicaset_from_json(j, n), 0);
	cJSON_Delete(j);
	put(m, n->name, n, nl_destroy);
}

static void backend(struct hmap *m, const char *allowed, const char *url, const char *bearer)
{
	struct backend *b = calloc(1, sizeof(*b));
	char json[256];
	cJSON *j;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"be\"},\"spec\":{\"type\":\"pyroscope\",\"url\":\"%s\","
		 "\"allowedNamespaces\":[\"%s\"]}}", url, allowed);
	j = parse(json);
	assert_int_equal(backend_from_json(j, b), 0);
	cJSON_Delete(j);
	b->bearer = bearer ? strdup(bearer) : NULL;	/* as secrets.c sets it */
	put(m, "be", b, backend_destroy);
}

static bool active(void *arg, const char *key, const struct policy *p)
{
	(void)p;
	return !hmap_get(&((struct world *)arg)->inactive, key);
}

/* ---- comparing --------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A set as text, independent of the order of policies (slots differ from resolve()'s). */
static char *canonical(const struct resolve_input *in, const struct node_targets *nt)
{
	size_t len = 0, cap = 1 << 16;
	uint8_t *buf = resolve_encode(in, nt, 0, &len);
	Profleet__Fleet__V1__ControllerMessage *m =
		profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
	char *out = calloc(1, cap), *items[64];
	size_t o = 0;

	assert_non_null(m);
	for (size_t i = 0; i < m->targets->n_targets; i++) {
		const Profleet__Fleet__V1__Target *t = m->targets->targets[i];
		int n = 0;

		o += (size_t)snprintf(out + o, cap - o, "%s %s %u [", t->container_id, t->pod_uid,
				      t->frequency_hz);
		for (size_t k = 0; k < t->n_policies && n < 64; k++)
			items[n++] = t->policies[k];
		qsort(items, (size_t)n, sizeof(char *), cmp_str);
		for (int k = 0; k < n; k++)
			o += (size_t)snprintf(out + o, cap - o, "%s,", items[k]);
		o += (size_t)snprintf(out + o, cap - o, "] [");
		for (size_t k = 0; k < t->n_labels; k++)
			o += (size_t)snprintf(out + o, cap - o, "%s=%s,", t->labels[k]->key,
					      t->labels[k]->value);
		o += (size_t)snprintf(out + o, cap - o, "] [");
		n = 0;
		for (size_t k = 0; k < t->n_backends && n < 64; k++)
			items[n++] = t->backends[k];
		qsort(items, (size_t)n, sizeof(char *), cmp_str);
		for (int k = 0; k < n; k++)
			o += (size_t)snprintf(out + o, cap - o, "%s,", items[k]);
		o += (size_t)snprintf(out + o, cap - o, "]\n");
	}
	for (size_t i = 0; i < m->targets->n_backends; i++)	/* in the order of the targets */
		o += (size_t)snprintf(out + o, cap - o, "backend %s %s %s\n",
				      m->targets->backends[i]->name, m->targets->backends[i]->url,
				      m->targets->backends[i]->bearer_token);
	profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
	free(buf);
	return out;
}

/* What the incremental side holds: each node's set as the last sync built it. */
static void keep(struct hmap *sets, const struct targets *t, struct targets_node *tn, int n)
{
	for (int i = 0; i < n; i++)
		put(sets, tn[i].name, canonical(targets_input(t), &tn[i].nt), free);
	targets_nodes_free(tn, n);
}

static void **values(const struct hmap *m, int *n, char ***keys)
{
	void **v = calloc(m->n + 1, sizeof(void *));

	*keys = calloc(m->n + 1, sizeof(char *));
	*n = 0;
	hmap_for_each(m, it) {
		(*keys)[*n] = it->key;
		v[(*n)++] = it->val;
	}
	return v;
}

static void compare(struct world *w, const struct targets *t, const struct hmap *sets, int step)
{
	struct resolve_input in = {
		.namespaces = &w->namespaces, .nodes = &w->nodes, .backends = &w->backends,
		.replicasets = &w->replicasets, .store = true, .max_ns_policies = 2,
	};
	struct resolve_output out;
	char **pkeys, **ukeys;
	struct node_targets empty = { 0 };
	char *none = canonical(&in, &empty);

	in.policies = (struct policy **)values(&w->policies, &in.npolicies, &pkeys);
	in.pods = (struct pod **)values(&w->pods, &in.npods, &ukeys);
	in.active = calloc((size_t)in.npolicies + 1, sizeof(bool));
	for (int i = 0; i < in.npolicies; i++)
		in.active[i] = active(w, pkeys[i], in.policies[i]);
	assert_int_equal(resolve(&in, &out), 0);
	for (int i = 0; i < in.npolicies; i++) {
		const struct hmap *nodes = NULL;
		const struct policy_result *r = targets_policy(t, pkeys[i], &nodes), *f = &out.results[i];

		if (!r)
			fail_msg("step %d: policy %s not known", step, pkeys[i]);
		if (r->accepted != f->accepted || strcmp(r->reason, f->reason) || r->pods != f->pods ||
		    r->nodes != f->nodes || r->waiting != f->waiting || (int)nodes->n != f->nodes)
			fail_msg("step %d: policy %s: kept %d %s pods %d nodes %d waiting %d; "
				 "from scratch %d %s pods %d nodes %d waiting %d", step, pkeys[i],
				 r->accepted, r->reason, r->pods, r->nodes, r->waiting, f->accepted,
				 f->reason, f->pods, f->nodes, f->waiting);
		assert_string_equal(r->message, f->message);
		/* its nodes by name: the status counts their agents */
		for (int k = 0; f->accepted && k < in.npods; k++)
			if (resolve_pod(&in, i, in.pods[k]) == RESOLVE_TARGETED &&
			    !hmap_get(nodes, in.pods[k]->node))
				fail_msg("step %d: policy %s: node %s not among its nodes", step,
					 pkeys[i], in.pods[k]->node);
	}
	for (int i = 0; i < NPOLICIES; i++) {	/* deleted ones are forgotten */
		char key[64];

		if (i >= NPOLICIES - 3)
			snprintf(key, sizeof(key), "C:pol%d", i);
		else
			snprintf(key, sizeof(key), "P:ns%d/pol%d", 1 + i % 2, i);
		if (!hmap_get(&w->policies, key) && targets_policy(t, key, NULL))
			fail_msg("step %d: deleted policy %s still known", step, key);
	}
	for (int i = 0; i < out.nnodes; i++) {
		char *want = canonical(&in, &out.nodes[i]);
		const char *have = hmap_get(sets, out.nodes[i].node);

		if (!have || strcmp(have, want))
			fail_msg("step %d: node %s:\nkept:\n%s\nfrom scratch:\n%s", step,
				 out.nodes[i].node, have ? have : "(none)", want);
		free(want);
	}
	hmap_for_each(sets, it)	/* a node with no targets now holds the empty set */
		if (!resolve_find_node(&out, it->key) && strcmp(it->val, none))
			fail_msg("step %d: node %s holds targets; from scratch none:\n%s", step,
				 it->key, (char *)it->val);
	resolve_output_free(&out);
	free(none);
	free(in.policies);
	free(in.pods);
	free(in.active);
	free(pkeys);
	free(ukeys);
}

/* ---- the test ----------------------------------------------------------------- */

static void world_init(struct world *w, struct targets_work *work)
{
	memset(w, 0, sizeof(*w));
	named(&w->namespaces, "ns1", "team", "t1", NULL);
	named(&w->namespaces, "ns2", "team", "t2", NULL);
	named(&w->namespaces, "ns3", "team", "t1", NULL);
	for (int i = 1; i <= 4; i++) {
		char n[8];

		snprintf(n, sizeof(n), "n%d", i);
		named(&w->nodes, n, "pool", i % 2 ? "p1" : "p2", NULL);
	}
	backend(&w->backends, "ns1", "http://x", NULL);
	replicaset(&w->replicasets, "rs1", "web");
	for (int i = 0; i < NPODS; i++)
		pod_change(w, i, work);
	for (int i = 0; i < NPOLICIES; i++)
		policy_change(w, i, true);
	work->all = true;
}

static void world_free(struct world *w)
{
	hmap_for_each(&w->pods, it) pod_destroy(it->val);
	hmap_for_each(&w->policies, it) policy_destroy(it->val);
	hmap_for_each(&w->namespaces, it) nl_destroy(it->val);
	hmap_for_each(&w->nodes, it) nl_destroy(it->val);
	hmap_for_each(&w->backends, it) backend_destroy(it->val);
	hmap_for_each(&w->replicasets, it) nl_destroy(it->val);
	hmap_free(&w->pods);
	hmap_free(&w->policies);
	hmap_free(&w->namespaces);
	hmap_free(&w->nodes);
	hmap_free(&w->backends);
	hmap_free(&w->replicasets);
	hmap_free(&w->inactive);
}

/* One random change, told to work as the caches would tell it. */
static void change(struct world *w, struct targets_work *work)
{
	const char *name;
	char key[64];
	int i;

	switch (rnd(14)) {
	case 0: case 1: case 2: case 3:
		pod_change(w, (int)rnd(NPODS), work);
		break;
	case 4:
		pod_delete(w, (int)rnd(NPODS), work);
		break;
	case 5:
		policy_change(w, (int)rnd(NPOLICIES), false);
		break;
	case 6:
		i = (int)rnd(NPOLICIES);
		if (rnd(2))
			policy_delete(w, i);
		else
			policy_change(w, i, true);
		break;
	case 7:	/* a Namespace relabelled, deleted or made again */
		name = rnd(2) ? "ns1" : "ns3";
		if (rnd(4))
			named(&w->namespaces, name, "team", rnd(2) ? "t1" : "t2", &work->namespaces);
		else
			del(&w->namespaces, name, nl_destroy);
		hmap_put(&work->namespaces, name, (void *)1, NULL);
		break;
	case 8:	/* a Node, the same */
		name = rnd(2) ? "n1" : "n2";
		if (rnd(4))
			named(&w->nodes, name, "pool", rnd(2) ? "p1" : "p2", &work->node_labels);
		else
			del(&w->nodes, name, nl_destroy);
		hmap_put(&work->node_labels, name, (void *)1, NULL);
		break;
	case 9:
		if (rnd(3))
			backend(&w->backends, rnd(2) ? "ns1" : "*", rnd(2) ? "http://x" : "http://y",
				rnd(2) ? "token-1" : NULL);
		else
			del(&w->backends, "be", backend_destroy);
		work->backends = true;
		break;
	case 10:
		name = rnd(2) ? "rs1" : "rs2";
		replicaset(&w->replicasets, name, rnd(2) ? "web" : NULL);
		snprintf(key, sizeof(key), "ns1/%s", name);
		hmap_put(&work->owners, key, (void *)1, NULL);
		break;
	case 11:	/* an OnDemand policy finishes, or one is back */
		i = (int)rnd(NPOLICIES);
		if (i >= NPOLICIES - 3)
			snprintf(key, sizeof(key), "C:pol%d", i);
		else
			snprintf(key, sizeof(key), "P:ns%d/pol%d", 1 + i % 2, i);
		if (hmap_get(&w->inactive, key))
			hmap_del(&w->inactive, key);
		else
			hmap_put(&w->inactive, key, (void *)1, NULL);
		break;
	case 12:	/* a resync */
		work->all = true;
		break;
	case 13:	/* an agent came: its node's set is built again, changed or not */
		snprintf(key, sizeof(key), "n%u", 1 + rnd(4));
		hmap_put(&work->nodes, key, (void *)1, NULL);
		break;
	}
}

static bool built(const struct targets_node *tn, int n, const char *node)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(tn[i].name, node))
			return true;
	return false;
}

/* targets_sync, or (odd steps) the same as reconcile does it: the names, then
 * each node built on its own. */
static int sync_either(int step, struct targets *t, const struct targets_view *v,
		       struct targets_work *work, struct targets_node **tn, int *n)
{
	char **names;
	int err;

	if (!(step & 1))
		return targets_sync(t, v, work, tn, n);
	err = targets_sync_names(t, v, work, &names, n);
	*tn = err ? NULL : calloc((size_t)*n + 1, sizeof(**tn));
	for (int i = 0; !err && i < *n; i++)
		err = *tn ? targets_build(t, v, names[i], &(*tn)[i]) : -ENOMEM;
	targets_names_free(names, *n);
	return err;
}

static void test_kept_equals_from_scratch(void **state)
{
	struct world w;
	struct targets_work work = { 0 };
	struct targets *t = targets_new();
	struct hmap sets = { 0 };
	struct targets_view v;
	struct targets_node *tn;
	struct targets_stats st;
	int n;

	(void)state;
	world_init(&w, &work);
	v = (struct targets_view){ .pods = &w.pods, .policies = &w.policies,
				   .namespaces = &w.namespaces, .nodes = &w.nodes,
				   .backends = &w.backends, .replicasets = &w.replicasets,
				   .store = true, .max_ns_policies = 2, .active = active, .arg = &w };
	assert_int_equal(targets_sync(t, &v, &work, &tn, &n), 0);
	assert_true(n > 0);
	keep(&sets, t, tn, n);
	compare(&w, t, &sets, 0);
	for (int step = 1; step <= 4000; step++) {
		int k = 1 + (int)rnd(3);	/* a few changes between syncs */
		char late[32] = "", agent[8] = "";

		while (k--)
			change(&w, &work);
		if (!rnd(20)) {
			/* a pod deleted whose key comes one sync late (the cache tells
			 * reconcile after it let go of cache_lock), with its policies changed */
			int i = (int)rnd(NPODS);

			snprintf(late, sizeof(late), "uid-%d", i);
			del(&w.pods, late, pod_destroy);
			hmap_del(&work.pods, late);
			policy_change(&w, (int)rnd(NPOLICIES), false);
		} else if (!rnd(19)) {
			/* a pod changed whose key comes one sync late, with a policy
			 * changed: that policy is matched against the pod as it is now
			 * while the pod's record is still the old one */
			int i = (int)rnd(NPODS);

			snprintf(late, sizeof(late), "uid-%d", i);
			pod_change(&w, i, &work);
			hmap_del(&work.pods, late);
			policy_change(&w, (int)rnd(NPOLICIES), false);
		}
		hmap_for_each(&work.nodes, it)
			snprintf(agent, sizeof(agent), "%s", it->key);
		assert_int_equal(sync_either(step, t, &v, &work, &tn, &n), 0);
		if (agent[0] && !built(tn, n, agent))
			fail_msg("step %d: node %s asked for, not built", step, agent);
		keep(&sets, t, tn, n);
		if (late[0]) {	/* compared once its key came */
			hmap_put(&work.pods, late, (void *)1, NULL);
			assert_int_equal(targets_sync(t, &v, &work, &tn, &n), 0);
			keep(&sets, t, tn, n);
		}
		compare(&w, t, &sets, step);
	}
	/* a sync with nothing changed builds nothing */
	assert_int_equal(targets_sync(t, &v, &work, &tn, &n), 0);
	assert_int_equal(n, 0);
	targets_nodes_free(tn, n);
	/* and a pod change builds its node only, matched against every policy */
	targets_stats(t, &st);
	pod_change(&w, 3, &work);
	{
		uint64_t synced = st.pods_synced;

		assert_int_equal(targets_sync(t, &v, &work, &tn, &n), 0);
		assert_true(n <= 2);	/* the node it left and the node it is on */
		keep(&sets, t, tn, n);
		targets_stats(t, &st);
		assert_int_equal(st.pods_synced, synced + 1);
	}
	compare(&w, t, &sets, -1);
	hmap_for_each(&sets, it) free(it->val);
	hmap_free(&sets);
	targets_free(t);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_equals_from_scratch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
