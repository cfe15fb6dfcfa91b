/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_TARGETS_H
#define CONTROLLER_TARGETS_H
/*
 * The target sets, kept up to date by what changed rather than resolved from
 * scratch: which accepted policies select which pods (a pod's matches), each
 * policy's counts and the nodes that hold its targets, and the nodes whose
 * set must be built again. A pod that changed is matched against every
 * policy; a policy whose selection changed (selectors, scope, containers, or
 * its verdict) is matched against the pods; only the nodes they touch are
 * built again. The result is what resolve() would give from
 * scratch (tests/unit/test_targets.c checks it after random changes).
 *
 * Owned by the reconcile thread. targets_sync() reads the caches, under
 * cache_lock's read side.
 */
#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "resolve.h"

struct targets;

/* What changed since the last sync. */
struct targets_work {
	bool all;		/* match every pod again (the first sync, a resync) */
	struct hmap pods;	/* uid -> (void *)1: pods that changed or went */
	struct hmap nodes;	/* name -> (void *)1: sets to build again (an agent without one came) */
	struct hmap owners;	/* "ns/name" -> (void *)1: ReplicaSets that changed */
	struct hmap namespaces;	/* name -> (void *)1: Namespaces whose labels changed */
	struct hmap node_labels;	/* name -> (void *)1: Nodes whose labels changed */
	bool backends;		/* a ClusterProfilingBackend changed */
};

void targets_work_free(struct targets_work *w);

/* The caches a sync reads. */
struct targets_view {
	const struct hmap *pods;	/* uid -> struct pod */
	const struct hmap *policies;	/* key -> struct policy */
	const struct hmap *namespaces, *nodes, *backends, *replicasets;
	bool store;
	int max_ns_policies;
	/* false: the policy is accepted but does not sample (a finished OnDemand one) */
	bool (*active)(void *arg, const char *key, const struct policy *p);
	void *arg;
};

/* A node whose set was built again. */
struct targets_node {
	char *name;
	struct node_targets nt;
	uint64_t policies_hash;	/* of the keys of the policies its targets belong to */
	uint64_t *slots;	/* those policies (a bit each by slot) */
	int nkeys;		/* how many */
	char **policies;	/* their keys, sorted: made by targets_node_keys */
	int npolicies;
};

struct targets *targets_new(void);
void targets_free(struct targets *t);

/*
 * Brings t up to date with the view and what changed (w is emptied). *ret gets
 * the nodes whose set was built again, *ret_n how many (free them with
 * targets_nodes_free); their targets point into the caches and into
 * targets_input(), valid until the caller releases the cache_lock it held for
 * the sync. 0 or -ENOMEM: then t is no guide any more (counts may be off);
 * the caller replaces it with a new one and syncs that with w->all.
 */
int targets_sync(struct targets *t, const struct targets_view *v, struct targets_work *w,
		 struct targets_node **ret, int *ret_n);
void targets_nodes_free(struct targets_node *n, int count);

/*
 * targets_sync without the build: *ret gets the names of the nodes whose set
 * must be built again (free with targets_names_free), each built then with
 * targets_build. Between the two, t is only read: the builds may run on
 * several threads at once (under the same hold of cache_lock).
 */
int targets_sync_names(struct targets *t, const struct targets_view *v, struct targets_work *w,
		       char ***ret, int *ret_n);
int targets_build(const struct targets *t, const struct targets_view *v, const char *name,
		  struct targets_node *tn);
/* The keys of tn's policies into tn->policies (targets_sync makes them; after
 * targets_build, only when needed: 50 policies on 5000 nodes are 250k
 * strings). Under the same hold of cache_lock as the build. */
int targets_node_keys(const struct targets *t, struct targets_node *tn);
void targets_names_free(char **names, int n);
/* Frees what tn holds (not tn). */
void targets_node_clear(struct targets_node *tn);

/* What the sets were built with: resolve_encode() takes it (its policies are
 * the caches', valid as the nodes of targets_sync are). */
const struct resolve_input *targets_input(const struct targets *t);

/* A policy's verdict and counts at the last sync and the nodes holding its
 * targets (name -> count of its pods there); NULL when not known. Its
 * nodes_gen moves whenever a node joins or leaves that map. */
const struct policy_result *targets_policy(const struct targets *t, const char *key,
					   const struct hmap **ret_nodes);

/* Pods some policy selects now; pods and policies matched again and nodes
 * whose set was to be built again (names taken by targets_sync or
 * targets_sync_names) since the start: what tests check of the work a sync did. */
struct targets_stats {
	uint64_t pods_matched, pods_synced, policies_matched, nodes_built;
};
void targets_stats(const struct targets *t, struct targets_stats *s);
#endif
