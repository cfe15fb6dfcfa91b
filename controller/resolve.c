// SPDX-License-Identifier: Apache-2.0
/* Policies x pods -> per-node target sets; see resolve.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "hmap.h"
#include "pbw.h"
#include "resolve.h"

static void *lookup(const struct hmap *m, const char *key)
{
	return m && key ? hmap_get(m, key) : NULL;
}

static const struct backend *find_backend(const struct resolve_input *in, const char *name)
{
	return lookup(in->backends, name);
}

static bool container_selected(const struct policy *p, const char *name)
{
	if (!p->ncontainers)
		return true;
	for (int i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i], name))
			return true;
	return false;
}

static int add_target(struct node_targets *nt, int from, const struct pod *pod, int ci,
		      int pol_idx, int hz)
{
	struct rtarget *t = NULL;
	int *pp;

	/* the same container from another policy: merge (the last ones added are
	 * the likeliest) */
	for (int i = nt->n - 1; i >= from; i--)
		if (nt->t[i].pod == pod && nt->t[i].container == ci) {
			t = &nt->t[i];
			break;
		}
	if (!t) {
		if (nt->n == nt->cap) {
			int ncap = nt->cap ? nt->cap * 2 : 8;
			struct rtarget *p = realloc(nt->t, (size_t)ncap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			nt->t = p;
			nt->cap = ncap;
		}
		t = &nt->t[nt->n++];
		memset(t, 0, sizeof(*t));
		t->pod = pod;
		t->container = ci;
	}
	for (int k = 0; k < t->npolicies; k++)
		if (rtarget_policy(t, k) == pol_idx)
			return 0;
	if (t->npolicies >= RTARGET_POLICIES) {
		pp = realloc(t->more, (size_t)(t->npolicies + 1 - RTARGET_POLICIES) * sizeof(int));
		if (!pp)
			return -ENOMEM;
		t->more = pp;
	}
	*rtarget_policy_at(t, t->npolicies++) = pol_idx;
	if (hz > t->frequency_hz)
		t->frequency_hz = hz;
	return 0;
}

static bool check_backends(const struct resolve_input *in, const struct policy *p,
			   struct policy_result *r)
{
	for (int i = 0; i < p->nbackends; i++) {
		const struct backend *b = find_backend(in, p->backends[i]);

		if (!b) {
			snprintf(r->reason, sizeof(r->reason), "UnknownBackend");
			snprintf(r->message, sizeof(r->message),
				 "ClusterProfilingBackend '%s' does not exist", p->backends[i]);
			return false;
		}
		if (!backend_allows(b, p->ns)) {
			snprintf(r->reason, sizeof(r->reason), "BackendNotAllowed");
			snprintf(r->message, sizeof(r->message),
				 "ClusterProfilingBackend '%s' does not allow namespace '%s'",
				 p->backends[i], p->ns);
			return false;
		}
	}
	return true;
}

static int cmp_rtarget(const void *a, const void *b)
{
	const struct rtarget *x = a, *y = b;

	return strcmp(x->pod->containers[x->container].id, y->pod->containers[y->container].id);
}

static int cmp_node_targets(const void *a, const void *b)
{
	return strcmp(((const struct node_targets *)a)->node, ((const struct node_targets *)b)->node);
}

/* A cluster policy's namespace and node selectors; a namespaced one's namespace. */
static bool pod_in_scope(const struct resolve_input *in, const struct policy *p,
			 const struct pod *pod)
{
	const struct named_labels *nl;

	if (!p->cluster)
		return !strcmp(pod->ns, p->ns);	/* never across namespaces */
	if (p->has_ns_sel) {
		nl = lookup(in->namespaces, pod->ns);
		if (!nl || !selector_matches(&p->namespaces, &nl->labels))
			return false;
	}
	if (p->has_node_sel) {
		nl = lookup(in->nodes, pod->node);
		if (!nl || !selector_matches(&p->nodes, &nl->labels))
			return false;
	}
	return true;
}

enum resolve_match resolve_pod(const struct resolve_input *in, int pi, const struct pod *pod)
{
	const struct policy *p = in->policies[pi];

	if (!p || !pod_in_scope(in, p, pod) || !selector_matches(&p->pods, &pod->labels))
		return RESOLVE_NONE;
	if (!pod->node || !pod->phase || strcmp(pod->phase, "Running"))
		return RESOLVE_WAITING;
	for (int ci = 0; ci < pod->ncontainers; ci++)
		if (pod->containers[ci].id && container_selected(p, pod->containers[ci].name))
			return RESOLVE_TARGETED;
	return RESOLVE_NONE;
}

int resolve_node_add(const struct resolve_input *in, struct node_targets *nt,
		     const struct pod *pod, int pi, int from)
{
	const struct policy *p = in->policies[pi];

	if (!p || !in->active || !in->active[pi])
		return 0;	/* accepted, not sampling: counted only */
	for (int ci = 0; ci < pod->ncontainers; ci++) {
		if (!pod->containers[ci].id || !container_selected(p, pod->containers[ci].name))
			continue;
		if (add_target(nt, from, pod, ci, pi, p->frequency_hz))
			return -ENOMEM;
	}
	return 0;
}

/* By the policies' keys: which policy's label wins does not depend on where it sits. */
static void sort_policies(const struct resolve_input *in, struct rtarget *t)
{
	for (int i = 1; i < t->npolicies; i++) {
		int v = rtarget_policy(t, i), k = i;

		for (; k > 0 && strcmp(in->policies[rtarget_policy(t, k - 1)]->key,
				       in->policies[v]->key) > 0; k--)
			*rtarget_policy_at(t, k) = rtarget_policy(t, k - 1);
		*rtarget_policy_at(t, k) = v;
	}
}

void resolve_node_sort(const struct resolve_input *in, struct node_targets *nt)
{
	for (int i = 0; i < nt->n; i++)
		sort_policies(in, &nt->t[i]);
	if (nt->n > 1)
		qsort(nt->t, (size_t)nt->n, sizeof(struct rtarget), cmp_rtarget);
}

void node_targets_free(struct node_targets *nt)
{
	for (int j = 0; j < nt->n; j++)
		free(nt->t[j].more);
	free(nt->t);
	nt->t = NULL;
	nt->n = nt->cap = 0;
}

/* Namespaced policies first, by namespace, then the oldest first (then by name). */
static int cmp_by_age(const void *pa, const void *pb, void *arg)
{
	const struct resolve_input *in = arg;
	const struct policy *a = in->policies[*(const int *)pa], *b = in->policies[*(const int *)pb];
	int c;

	if (!a->ns != !b->ns)
		return a->ns ? -1 : 1;
	if (a->ns && (c = strcmp(a->ns, b->ns)))
		return c;
	if (a->created_s != b->created_s)
		return a->created_s < b->created_s ? -1 : 1;
	return strcmp(a->name, b->name);
}

/*
 * The namespaced policies past in->max_ns_policies in their namespace (the
 * newest ones): over[pi] set, and the namespace's count in count[pi]. Only
 * valid policies that sample count: an invalid one, or an OnDemand one that
 * has completed, takes no place. 0 or -ENOMEM.
 */
static int over_cap(const struct resolve_input *in, bool *over, int *count)
{
	int *idx, n = 0;

	if (!in->max_ns_policies || !in->npolicies)
		return 0;
	idx = malloc((size_t)in->npolicies * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	/* what holds a place: a valid policy that samples (not a finished OnDemand one) */
	for (int i = 0; i < in->npolicies; i++)
		if (in->policies[i] && !in->policies[i]->invalid_reason[0] &&
		    (!in->active || in->active[i]))
			idx[n++] = i;
	qsort_r(idx, (size_t)n, sizeof(*idx), cmp_by_age, (void *)in);
	for (int first = 0, i = 0; first < n && in->policies[idx[first]]->ns; first = i) {
		const char *ns = in->policies[idx[first]]->ns;

		for (i = first; i < n && in->policies[idx[i]]->ns &&
				!strcmp(in->policies[idx[i]]->ns, ns); i++)
			;
		for (int k = first; k < i; k++) {
			over[idx[k]] = k - first >= in->max_ns_policies;
			count[idx[k]] = i - first;
		}
	}
	free(idx);
	return 0;
}

static void verdict(const struct resolve_input *in, int pi, const bool *over, const int *count,
		    struct policy_result *r)
{
	const struct policy *p = in->policies[pi];

	memset(r, 0, sizeof(*r));
	if (!p)
		return;
	if (p->invalid_reason[0]) {
		snprintf(r->reason, sizeof(r->reason), "%s", p->invalid_reason);
		snprintf(r->message, sizeof(r->message), "%s", p->invalid_message);
		return;
	}
	if (over && over[pi]) {
		snprintf(r->reason, sizeof(r->reason), "TooManyPolicies");
		snprintf(r->message, sizeof(r->message), "namespace %s has %d ProfilingPolicies; "
			 "the controller honours the %d oldest (--max-policies-per-namespace)",
			 p->ns, count[pi], in->max_ns_policies);
		return;
	}
	if (!check_backends(in, p, r))
		return;
	r->accepted = true;
	snprintf(r->reason, sizeof(r->reason), "Valid");
}

int resolve_verdicts(const struct resolve_input *in, struct policy_result *results)
{
	bool *over = NULL;
	int *count = NULL, err = 0;

	if (in->max_ns_policies) {
		over = calloc((size_t)in->npolicies + 1, sizeof(*over));
		count = calloc((size_t)in->npolicies + 1, sizeof(*count));
		err = !over || !count ? -ENOMEM : over_cap(in, over, count);
	}
	for (int pi = 0; pi < in->npolicies && !err; pi++)
		verdict(in, pi, over, count, &results[pi]);
	free(over);
	free(count);
	return err;
}

/* What resolve() builds its output with: the nodes found so far, by name. */
struct builder {
	struct resolve_output *out;
	int cap;
	struct hmap idx;	/* node name -> (index into out->nodes) + 1 */
	struct hmap counted;	/* node name -> (policy index) + 1 that last counted it */
};

static struct node_targets *get_node(struct builder *b, const char *node)
{
	struct resolve_output *out = b->out;
	intptr_t i = (intptr_t)hmap_get(&b->idx, node);

	if (i)
		return &out->nodes[i - 1];
	if (out->nnodes == b->cap) {
		int ncap = b->cap ? b->cap * 2 : 16;
		struct node_targets *p = realloc(out->nodes, (size_t)ncap * sizeof(*p));

		if (!p)
			return NULL;
		out->nodes = p;
		b->cap = ncap;
	}
	if (hmap_put(&b->idx, node, (void *)(intptr_t)(out->nnodes + 1), NULL))
		return NULL;
	memset(&out->nodes[out->nnodes], 0, sizeof(out->nodes[0]));
	out->nodes[out->nnodes].node = node;
	return &out->nodes[out->nnodes++];
}

/* Counts the pod's node for policy pi, once. */
static int count_node(struct builder *b, int pi, const char *node, struct policy_result *r)
{
	if ((intptr_t)hmap_get(&b->counted, node) == pi + 1)
		return 0;
	if (hmap_put(&b->counted, node, (void *)(intptr_t)(pi + 1), NULL))
		return -ENOMEM;
	r->nodes++;
	return 0;
}

static int resolve_policy(const struct resolve_input *in, int pi, struct builder *b)
{
	struct policy_result *r = &b->out->results[pi];

	if (!r->accepted)
		return 0;
	for (int i = 0; i < in->npods; i++) {
		const struct pod *pod = in->pods[i];
		struct node_targets *nt;

		switch (resolve_pod(in, pi, pod)) {
		case RESOLVE_NONE:
			continue;
		case RESOLVE_WAITING:
			r->waiting++;
			continue;
		case RESOLVE_TARGETED:
			break;
		}
		r->pods++;
		if (count_node(b, pi, pod->node, r))
			return -ENOMEM;
		if (!in->active || !in->active[pi])
			continue;
		nt = get_node(b, pod->node);
		if (!nt || resolve_node_add(in, nt, pod, pi, 0))
			return -ENOMEM;
	}
	return 0;
}

int resolve(const struct resolve_input *in, struct resolve_output *out)
{
	struct builder b = { .out = out };
	int err;

	memset(out, 0, sizeof(*out));
	out->results = calloc((size_t)in->npolicies + 1, sizeof(*out->results));
	err = out->results ? resolve_verdicts(in, out->results) : -ENOMEM;
	for (int pi = 0; pi < in->npolicies && !err; pi++)
		err = resolve_policy(in, pi, &b);
	hmap_free(&b.idx);
	hmap_free(&b.counted);
	if (err) {
		resolve_output_free(out);
		return err;
	}
	for (int i = 0; i < out->nnodes; i++)
		resolve_node_sort(in, &out->nodes[i]);
	if (out->nnodes)
		qsort(out->nodes, (size_t)out->nnodes, sizeof(*out->nodes), cmp_node_targets);
	return 0;
}

void resolve_output_free(struct resolve_output *out)
{
	for (int i = 0; i < out->nnodes; i++)
		node_targets_free(&out->nodes[i]);
	free(out->nodes);
	free(out->results);
	memset(out, 0, sizeof(*out));
}

static int cmp_node_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct node_targets *)elem)->node);
}

const struct node_targets *resolve_find_node(const struct resolve_output *out, const char *node)
{
	if (!out->nnodes)
		return NULL;
	return bsearch(node, out->nodes, (size_t)out->nnodes, sizeof(*out->nodes), cmp_node_key);
}

/* ---- encoding ---------------------------------------------------------------- */

/*
 * The set is written field by field with pbw, in field-number order and with
 * proto3's empty strings and zeros left out: the bytes protobuf-c would pack
 * (tests/unit/test_fleet.c compares them), in one pass, without protobuf-c's
 * message structs and its size pre-pass. The names written come from scratch
 * arrays grown (grow_array) for the largest target, not allocated per target.
 */
struct label_ref {
	const char *k, *v;
};

struct encoding {
	struct pbw w;
	struct label_ref *l;	/* a target's labels: first one of a key wins */
	int nl;
	uint32_t capl;
	const char **bk;	/* a target's backend names, once each */
	int nb;
	uint32_t capb;
	const char **sets;	/* every backend name the set's targets give, once each */
	int ns;
	uint32_t caps;
	int err;		/* a scratch's allocation failed; pbw keeps its own */
};

static bool name_in(const char *const *v, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* proto3: an empty or missing string is not written */
static void put_str(struct pbw *w, uint32_t field, const char *s)
{
	if (s && *s)
		pbw__string(w, field, s);
}

static void label_add(struct encoding *e, const char *k, const char *v)
{
	for (int i = 0; i < e->nl; i++)
		if (!strcmp(e->l[i].k, k))
			return;	/* policy order, then precedence */
	if ((uint32_t)e->nl < e->capl)
		e->l[e->nl++] = (struct label_ref){ k, v };
}

/* service name: the policy's rule, the pod annotation, app.kubernetes.io/name (the agent
 * falls back to OTEL_SERVICE_NAME and <namespace>/<container>); then the workload
 * (deployment=NAME, ...) */
static void identity_labels(const struct resolve_input *in, const struct rtarget *rt,
			    struct encoding *e)
{
	const struct pod *pod = rt->pod;
	const char *svc = NULL, *wk, *wn;

	for (int k = 0; k < rt->npolicies && !svc; k++)
		svc = in->policies[rtarget_policy(rt, k)]->service_name;
	if (!svc)
		svc = pod->service_annotation;
	if (!svc)
		svc = labels_get(&pod->labels, "app.kubernetes.io/name");
	if (svc)
		label_add(e, "service_name", svc);
	if (pod_workload(pod, in->replicasets, &wk, &wn))
		label_add(e, wk, wn);
}

/* Each policy's labels (static, copied from the pod) and backends, once each. */
static void policy_labels(const struct resolve_input *in, const struct rtarget *rt,
			  struct encoding *e)
{
	for (int k = 0; k < rt->npolicies; k++) {
		const struct policy *p = in->policies[rtarget_policy(rt, k)];

		for (int j = 0; j < p->static_labels.n; j++)
			label_add(e, p->static_labels.kv[j].key, p->static_labels.kv[j].value);
		for (int j = 0; j < p->ncopy; j++) {
			const char *v = labels_get(&rt->pod->labels, p->copy_labels[j]);

			if (v)
				label_add(e, p->copy_labels[j], v);
		}
		for (int j = 0; j < (p->nbackends ? p->nbackends : in->store); j++) {
			const char *name = p->nbackends ? p->backends[j] : STORE_NAME;

			if (!name_in(e->bk, e->nb, name))
				e->bk[e->nb++] = name;
		}
	}
}

/* The scratch one target needs: its labels and backend names at most. */
static int target_scratch(const struct resolve_input *in, const struct rtarget *rt,
			  struct encoding *e)
{
	uint32_t nl = 2, nb = 0;

	for (int k = 0; k < rt->npolicies; k++) {
		const struct policy *p = in->policies[rtarget_policy(rt, k)];

		nl += (uint32_t)(p->static_labels.n + p->ncopy);
		nb += p->nbackends ? (uint32_t)p->nbackends : 1;
	}
	if (!e->err)
		e->err = grow_array((void **)&e->l, &e->capl, nl, sizeof(*e->l), 8);
	if (!e->err)
		e->err = grow_array((void **)&e->bk, &e->capb, nb, sizeof(*e->bk), 8);
	if (!e->err)	/* the set's names: at most every target's, all distinct */
		e->err = grow_array((void **)&e->sets, &e->caps, (uint32_t)e->ns + nb,
				    sizeof(*e->sets), 8);
	e->nl = e->nb = 0;
	return e->err;
}

static void encode_target(const struct resolve_input *in, const struct rtarget *rt,
			  struct encoding *e)
{
	const struct pod *pod = rt->pod;
	const struct container_ref *c = &pod->containers[rt->container];
	struct pbw *w = &e->w;

	if (target_scratch(in, rt, e))
		return;
	identity_labels(in, rt, e);
	policy_labels(in, rt, e);
	pbw__begin(w, 2);	/* TargetSet.targets */
	put_str(w, 1, pod->uid);
	put_str(w, 2, c->id);
	put_str(w, 3, pod->ns);
	put_str(w, 4, pod->name);
	put_str(w, 5, c->name);
	pbw__uint64(w, 6, (uint64_t)rt->frequency_hz);
	for (int k = 0; k < rt->npolicies; k++)
		pbw__string(w, 7, in->policies[rtarget_policy(rt, k)]->key);
	for (int j = 0; j < e->nl; j++) {
		pbw__begin(w, 8);
		put_str(w, 1, e->l[j].k);
		put_str(w, 2, e->l[j].v);
		pbw__end(w);
	}
	for (int j = 0; j < e->nb; j++) {
		pbw__string(w, 9, e->bk[j]);
		if (!name_in(e->sets, e->ns, e->bk[j]))
			e->sets[e->ns++] = e->bk[j];
	}
	pbw__end(w);
}

/* One backend's definition as the agents get it. Its headers come sorted by key from
 * the object's map; a key given twice is written once. */
static void encode_backend(const struct backend *b, struct encoding *e)
{
	struct pbw *w = &e->w;

	pbw__begin(w, 3);	/* TargetSet.backends */
	put_str(w, 1, b->name);
	put_str(w, 2, b->type);
	put_str(w, 3, b->url);
	put_str(w, 4, b->tenant);
	for (int k = 0; k < b->headers.n; k++) {
		bool dup = false;

		for (int j = 0; j < k && !dup; j++)
			dup = !strcmp(b->headers.kv[j].key, b->headers.kv[k].key);
		if (dup)
			continue;
		pbw__begin(w, 5);
		put_str(w, 1, b->headers.kv[k].key);
		put_str(w, 2, b->headers.kv[k].value);
		pbw__end(w);
	}
	put_str(w, 6, b->bearer);
	put_str(w, 7, b->basic);
	pbw__end(w);
}

uint8_t *resolve_encode(const struct resolve_input *in, const struct node_targets *nt,
			uint64_t version, size_t *ret_len)
{
	static const struct backend store = { .name = (char *)STORE_NAME,
					      .type = (char *)"controller" };
	struct encoding e = { 0 };
	uint8_t *buf = NULL;

	pbw__init(&e.w, 0);
	pbw__begin(&e.w, 1);	/* ControllerMessage.targets */
	pbw__uint64(&e.w, 1, version);
	for (int i = 0; nt && i < nt->n && !e.err && !e.w.err; i++)
		encode_target(in, &nt->t[i], &e);
	for (int i = 0; i < e.ns; i++) {	/* a backend not (or no longer) defined is left out */
		const struct backend *b = !strcmp(e.sets[i], STORE_NAME) ? &store :
					  find_backend(in, e.sets[i]);

		if (b)
			encode_backend(b, &e);
	}
	pbw__end(&e.w);
	if (!e.err && pbw__take(&e.w, &buf, ret_len))
		buf = NULL;
	pbw__release(&e.w);
	free(e.l);
	free(e.bk);
	free(e.sets);
	return buf;
}

/* ---- the version of an encoded set ------------------------------------------ */

static size_t varint_put(uint8_t *b, uint64_t v)
{
	size_t n = 0;

	do {
		b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

static bool varint_get(const uint8_t *b, size_t len, size_t *at, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *at < len && shift < 64; shift += 7) {
		uint8_t c = b[(*at)++];

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

/* ControllerMessage: field 1 (targets, length-delimited); TargetSet: field 1
 * (version, varint) first, as protobuf-c packs fields in their numbers' order. */
uint8_t *resolve_set_version(const uint8_t *msg, size_t len, uint64_t version, size_t *ret_len)
{
	size_t at = 1, body;
	uint64_t blen, old;
	uint8_t *out, vfield[11];
	size_t vlen = 0, n;

	if (len < 2 || msg[0] != 0x0a || !varint_get(msg, len, &at, &blen) || blen != len - at)
		return NULL;
	body = at;
	if (body < len && msg[body] == 0x08) {	/* a version already: replaced */
		at = body + 1;
		if (!varint_get(msg, len, &at, &old))
			return NULL;
		body = at;
	}
	if (version) {
		vfield[0] = 0x08;
		vlen = 1 + varint_put(vfield + 1, version);
	}
	out = malloc(1 + 10 + vlen + (len - body));
	if (!out)
		return NULL;
	out[0] = 0x0a;
	n = 1 + varint_put(out + 1, vlen + (len - body));
	memcpy(out + n, vfield, vlen);
	memcpy(out + n + vlen, msg + body, len - body);
	*ret_len = n + vlen + (len - body);
	return out;
}
