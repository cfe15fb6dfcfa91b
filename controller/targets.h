/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_TARGETS_H
#define CONTROLLER_TARGETS_H
/*
 * The target sets, kept up to date by what changed rather than resolved from
 * scratch: which accepted policies select which pods (a pod's matches), each
 * policy's counts and the nodes that hold its targets, and the nodes whose
 * set must be built again. A pod that changed is matched against every
 * policy; a policy that changed is matched against the pods; only the nodes
 * they touch are built again. The result is what resolve() would give from
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
	bool backends;		/* a ClusterProfilingBackend changed */
	bool ns_labels, node_labels;	/* a Namespace's or a Node's labels changed */
};

void targets_work_free(struct targets_work *w);
/* Moves what from holds into to (from is left empty). */
void targets_work_take(struct targets_work *to, struct targets_work *from);

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
	char **policies;	/* keys of the policies its targets belong to */
	int npolicies;
};

struct targets *targets_new(void);
void targets_free(struct targets *t);

/*
 * Brings t up to date with the view and what changed (w is emptied). *ret gets
 * the nodes whose set was built again, *ret_n how many (free them with
 * targets_nodes_free); their targets point into the caches and into
 * targets_input(), valid while cache_lock is held. 0 or -ENOMEM (then the
 * next sync must be one with w->all).
 */
int targets_sync(struct targets *t, const struct targets_view *v, struct targets_work *w,
		 struct targets_node **ret, int *ret_n);
void targets_nodes_free(struct targets_node *n, int count);

/* What the sets were built with: resolve_encode() takes it. */
const struct resolve_input *targets_input(const struct targets *t);

/* A policy's verdict and counts at the last sync and the nodes holding its
 * targets (name -> count of its pods there); NULL when not known. */
const struct policy_result *targets_policy(const struct targets *t, const char *key,
					   const struct hmap **ret_nodes);

/* For /metrics: pods some policy selects, and the last sync's work. */
struct targets_stats {
	uint64_t pods_matched, pods_synced, policies_matched, nodes_built;
};
void targets_stats(const struct targets *t, struct targets_stats *s);
#endif
