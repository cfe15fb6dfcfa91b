// SPDX-License-Identifier: Apache-2.0
/*
 * One informer cache for every kind the controller watches. A kind says how
 * to parse an object, what it is keyed by and which map of struct ctl holds
 * it; the list/watch/re-list bookkeeping (mark and sweep by generation) is
 * written once, here.
 */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "controller.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"

#define KEY_MAX 600
#define TRIM_AFTER_LIST 4096	/* objects */

struct cache_kind {
	const char *resource;	/* as /readyz and /metrics name it */
	const char *path;
	char prefix;		/* 'P' or 'C': the key's first letter in ctl.policies; else 0 */
	size_t map;		/* offsetof(struct ctl, the map) */
	/* a new object and its key, or NULL when obj is not one */
	void *(*parse)(struct ctl *c, const struct cache_kind *k, const cJSON *obj, char *key);
	void (*destroy)(void *obj);
	size_t seen;		/* offsetof(its type, seen) */
	/* optional, under cache_lock: obj goes in (replacing old, or NULL); old goes */
	void (*put)(struct ctl *c, void *obj, const void *old);
	void (*gone)(struct ctl *c, void *old);
	/* optional: false when what resolve() reads of it did not change */
	bool (*differ)(const void *obj, const void *old);
	enum reconcile_change change;	/* what reconcile is told (with the key) */
};

struct cache {
	struct ctl *c;
	const struct cache_kind *kind;
	uint64_t gen;		/* of the current list (cache_lock) */
	struct k8s_informer *inf;
};

struct caches {
	int n;
	struct cache k[8];
};

static struct hmap *kind_map(struct ctl *c, const struct cache_kind *k)
{
	return (struct hmap *)((char *)c + k->map);
}

static uint64_t *seen_of(const struct cache_kind *k, void *obj)
{
	return (uint64_t *)((char *)obj + k->seen);
}

/* ---- the kinds ---------------------------------------------------------------- */

static void *pod_parse(struct ctl *c, const struct cache_kind *k, const cJSON *obj, char *key)
{
	struct pod *p = calloc(1, sizeof(*p));

	(void)c;
	(void)k;
	if (!p || pod_from_json(obj, p)) {
		free(p);
		return NULL;
	}
	snprintf(key, KEY_MAX, "%s", p->uid);
	return p;
}

static void pod_destroy(void *obj)
{
	pod_free(obj);
	free(obj);
}

static void pod_by_name(struct pod *p, char *key)
{
	snprintf(key, KEY_MAX, "%s/%s", p->ns, p->name);
}

static void pod_gone(struct ctl *c, void *old)
{
	char key[KEY_MAX];

	pod_by_name(old, key);
	if (hmap_get(&c->pods_by_name, key) == old)
		hmap_del(&c->pods_by_name, key);
}

static void pod_put(struct ctl *c, void *obj, const void *old)
{
	char key[KEY_MAX];

	if (old)
		pod_gone(c, (void *)old);
	pod_by_name(obj, key);
	if (hmap_put(&c->pods_by_name, key, obj, NULL))
		log_warn("pod %s: out of memory: not found by name", key);
}

static bool str_differ(const char *a, const char *b)
{
	return !a != !b || (a && strcmp(a, b));
}

static bool labels_differ(const struct labels *a, const struct labels *b)
{
	if (a->n != b->n)
		return true;
	for (int i = 0; i < a->n; i++)	/* sorted by key */
		if (strcmp(a->kv[i].key, b->kv[i].key) || strcmp(a->kv[i].value, b->kv[i].value))
			return true;
	return false;
}

/* What resolve() reads of a pod; a kubelet's status update that changes none of it
 * (conditions, restart counts, times) resolves nothing again. */
static bool pod_differ(const void *obj, const void *old)
{
	const struct pod *p = obj, *o = old;

	if (str_differ(p->node, o->node) || str_differ(p->phase, o->phase) ||
	    str_differ(p->service_annotation, o->service_annotation) ||
	    str_differ(p->owner_kind, o->owner_kind) || str_differ(p->owner_name, o->owner_name) ||
	    labels_differ(&p->labels, &o->labels) || p->ncontainers != o->ncontainers)
		return true;
	for (int i = 0; i < p->ncontainers; i++)
		if (str_differ(p->containers[i].name, o->containers[i].name) ||
		    str_differ(p->containers[i].id, o->containers[i].id))
			return true;
	return false;
}

/* Namespaces, Nodes, ReplicaSets: only their labels count (a Node's heartbeats do not). */
static bool nl_differ(const void *obj, const void *old)
{
	return labels_differ(&((const struct named_labels *)obj)->labels,
			     &((const struct named_labels *)old)->labels);
}

static void *nl_parse(struct ctl *c, const struct cache_kind *k, const cJSON *obj, char *key)
{
	struct named_labels *n = calloc(1, sizeof(*n));
	int err;

	(void)c;
	if (!n)
		return NULL;
	err = k->map == offsetof(struct ctl, replicasets) ? replicaset_from_json(obj, n) :
							      named_labels_from_json(obj, n);
	if (err) {
		free(n);
		return NULL;
	}
	snprintf(key, KEY_MAX, "%s", n->name);
	return n;
}

static void nl_destroy(void *obj)
{
	named_labels_free(obj);
	free(obj);
}

static void *policy_parse(struct ctl *c, const struct cache_kind *k, const cJSON *obj, char *key)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p || policy_from_json(obj, k->prefix == 'C', c->opt.max_hz, p)) {
		free(p);
		return NULL;
	}
	snprintf(key, KEY_MAX, "%c:%s", k->prefix, p->key);
	return p;
}

/* Its status written (by us): nothing to resolve again. The generation counts spec changes. */
static bool policy_differ(const void *obj, const void *old)
{
	const struct policy *p = obj, *o = old;

	return p->generation != o->generation || strcmp(p->uid ? p->uid : "", o->uid ? o->uid : "") ||
	       strcmp(p->invalid_reason, o->invalid_reason);
}

static void policy_destroy(void *obj)
{
	policy_free(obj);
	free(obj);
}

static void *backend_parse(struct ctl *c, const struct cache_kind *k, const cJSON *obj, char *key)
{
	struct backend *b = calloc(1, sizeof(*b));

	(void)c;
	(void)k;
	if (!b || backend_from_json(obj, b)) {
		free(b);
		return NULL;
	}
	snprintf(key, KEY_MAX, "%s", b->name);
	return b;
}

static void backend_destroy(void *obj)
{
	backend_free(obj);
	free(obj);
}

static bool same_secret(const struct backend *a, const struct backend *b)
{
	return a->secret_ns && b->secret_ns && !strcmp(a->secret_ns, b->secret_ns) &&
	       !strcmp(a->secret_name, b->secret_name) && !strcmp(a->secret_key, b->secret_key);
}

/* The same Secret: keep what was read from it until the next read. */
static void backend_put(struct ctl *c, void *obj, const void *old)
{
	struct backend *b = obj;
	const struct backend *prev = old;

	if (prev && same_secret(b, prev)) {
		b->bearer = prev->bearer ? strdup(prev->bearer) : NULL;
		b->basic = prev->basic ? strdup(prev->basic) : NULL;
		snprintf(b->secret_error, sizeof(b->secret_error), "%s", prev->secret_error);
	}
	if (b->secret_ns) {
		ctl_lock(c);
		c->secrets_due = true;
		pthread_cond_broadcast(&c->wake);
		ctl_unlock(c);
	}
}

#define NL_KIND(res, p, field, ch)                                                      \
	{ .resource = res, .path = p, .map = offsetof(struct ctl, field), .parse = nl_parse,  \
	  .destroy = nl_destroy, .seen = offsetof(struct named_labels, seen),              \
	  .differ = nl_differ, .change = ch }
#define POLICY_KIND(res, pfx)                                                               \
	{ .resource = res, .path = GROUP_PATH "/" res, .prefix = pfx,                          \
	  .map = offsetof(struct ctl, policies), .parse = policy_parse,                        \
	  .destroy = policy_destroy, .seen = offsetof(struct policy, seen),                    \
	  .differ = policy_differ, .change = RC_POLICY }

static const struct cache_kind kinds[] = {
	{ .resource = "pods", .path = "/api/v1/pods", .map = offsetof(struct ctl, pods),
	  .parse = pod_parse, .destroy = pod_destroy, .seen = offsetof(struct pod, seen),
	  .put = pod_put, .gone = pod_gone, .differ = pod_differ, .change = RC_POD },
	NL_KIND("namespaces", "/api/v1/namespaces", namespaces, RC_NAMESPACE),
	NL_KIND("nodes", "/api/v1/nodes", nodes, RC_NODE),
	POLICY_KIND("profilingpolicies", 'P'),
	POLICY_KIND("clusterprofilingpolicies", 'C'),
	{ .resource = "clusterprofilingbackends", .path = GROUP_PATH "/clusterprofilingbackends",
	  .map = offsetof(struct ctl, backends), .parse = backend_parse,
	  .destroy = backend_destroy, .seen = offsetof(struct backend, seen), .put = backend_put,
	  .change = RC_BACKEND },
	/* ReplicaSets: only to name a pod's Deployment */
	NL_KIND("replicasets", "/apis/apps/v1/replicasets", replicasets, RC_REPLICASET),
};

/* ---- list, watch, sweep --------------------------------------------------------- */

static void cache_list_begin(void *ctx)
{
	struct cache *ch = ctx;

	pthread_rwlock_wrlock(&ch->c->cache_lock);
	ch->gen++;
	pthread_rwlock_unlock(&ch->c->cache_lock);
}

static void cache_remove(struct cache *ch, const char *key)
{
	void *old = hmap_del(kind_map(ch->c, ch->kind), key);

	if (!old)
		return;
	if (ch->kind->gone)
		ch->kind->gone(ch->c, old);
	ch->kind->destroy(old);
}

static void cache_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	struct cache *ch = ctx;
	const struct cache_kind *k = ch->kind;
	struct ctl *c = ch->c;
	char key[KEY_MAX];
	void *o = k->parse(c, k, obj, key), *old = NULL;
	bool resolve = true;

	if (!o)
		return;
	pthread_rwlock_wrlock(&c->cache_lock);
	if (ev == K8S_DELETED) {
		if (k->prefix)
			log_info("policy %s deleted", key + 2);
		cache_remove(ch, key);
		k->destroy(o);
	} else {
		*seen_of(k, o) = ch->gen;
		if (k->put)
			k->put(c, o, hmap_get(kind_map(c, k), key));
		if (hmap_put(kind_map(c, k), key, o, &old)) {
			log_warn("%s %s: out of memory: not cached", k->resource, key);
			if (k->gone)
				k->gone(c, o);
			k->destroy(o);
		} else if (old) {
			resolve = !k->differ || k->differ(o, old);
			k->destroy(old);
		}
	}
	pthread_rwlock_unlock(&c->cache_lock);
	if (resolve)
		reconcile_changed(c, k->change, key);
}

static void cache_list_end(void *ctx)
{
	struct cache *ch = ctx;
	struct hmap *m = kind_map(ch->c, ch->kind);

	bool swept = false, large;

	pthread_rwlock_wrlock(&ch->c->cache_lock);
	hmap_for_each(m, it) {
		/* ctl.policies holds two kinds: sweep only this one's */
		if (ch->kind->prefix && it->key[0] != ch->kind->prefix)
			continue;
		if (*seen_of(ch->kind, it->val) != ch->gen) {
			cache_remove(ch, it->key);
			swept = true;
		}
	}
	large = m->n >= TRIM_AFTER_LIST;
	pthread_rwlock_unlock(&ch->c->cache_lock);
	if (large)	/* the list's pages of JSON, freed, go back to the system */
		malloc_trim(0);
	/* what went while no watch ran is known by no key: everything is matched again */
	reconcile_changed(ch->c, swept ? RC_ALL : ch->kind->change, NULL);
}

static const struct k8s_informer_ops cache_ops = { cache_list_begin, cache_event, cache_list_end };

int caches_start(struct ctl *c)
{
	struct caches *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	c->caches = cs;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct cache *ch = &cs->k[i];

		ch->c = c;
		ch->kind = &kinds[i];
		ch->inf = k8s_informer_start(&c->kcfg, kinds[i].path, &cache_ops, ch);
		if (!ch->inf) {
			caches_stop(c);
			return -ENOMEM;
		}
		cs->n++;
	}
	return 0;
}

void caches_stop(struct ctl *c)
{
	if (!c->caches)
		return;
	for (int i = 0; i < c->caches->n; i++)
		k8s_informer_stop(c->caches->k[i].inf);
	c->caches->n = 0;
}

void caches_free(struct ctl *c)
{
	struct hmap *maps[] = { &c->namespaces, &c->nodes, &c->replicasets, &c->policies,
				&c->backends, &c->pods };
	void (*destroy[])(void *) = { nl_destroy, nl_destroy, nl_destroy, policy_destroy,
				      backend_destroy, pod_destroy };

	hmap_free(&c->pods_by_name);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		hmap_for_each(maps[i], it)
			destroy[i](it->val);
		hmap_free(maps[i]);
	}
	free(c->caches);
	c->caches = NULL;
}

bool caches_synced(struct ctl *c, char *why, size_t whylen)
{
	for (int i = 0; i < c->caches->n; i++)
		if (!k8s_informer_synced(c->caches->k[i].inf)) {
			snprintf(why, whylen, "%s not listed yet", c->caches->k[i].kind->resource);
			return false;
		}
	return true;
}

void caches_metrics(struct ctl *c, struct metrics *m)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{ "profleet_controller_watch_events_total", "Watch events, by resource." },
		{ "profleet_controller_watch_restarts_total",
		  "Watches started again (after a timeout, an error or 410 Gone), by resource." },
		{ "profleet_controller_relists_total",
		  "Full lists, by resource (the first, after 410 Gone, after errors)." },
	};
	struct k8s_informer_stats is[8];
	int n = c->caches->n;

	for (int i = 0; i < n; i++)
		k8s_informer_stats(c->caches->k[i].inf, &is[i]);
	for (int f = 0; f < 3; f++) {
		metrics_family(m, fam[f].name, "counter", fam[f].help);
		for (int i = 0; i < n; i++) {
			double v = f == 0 ? (double)is[i].events :
				   f == 1 ? (double)(is[i].watches ? is[i].watches - 1 : 0) :
					    (double)is[i].lists;

			metrics_value(m, fam[f].name,
				      (const char *[]){ "resource", c->caches->k[i].kind->resource,
							NULL }, v);
		}
	}
}
