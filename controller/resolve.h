/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_RESOLVE_H
#define CONTROLLER_RESOLVE_H
/*
 * Policies x pods -> one target set per node. Pure: no I/O, no locks; the
 * caller holds its caches still while resolving (reconcile: cache_lock).
 */
#include <stddef.h>
#include <stdint.h>
#include "model.h"

/* The built-in store's backend name in target sets (no Kubernetes name has an '@'). */
#define STORE_NAME "@store"

struct hmap;

struct resolve_input {
	struct policy **policies;	/* an entry may be NULL: a slot not in use */
	bool *active;		/* per policy: false = accepted but not sampling (OnDemand done) */
	int npolicies;
	struct pod **pods;	/* resolve() only */
	int npods;
	/* lookups; a NULL map is an empty one */
	const struct hmap *namespaces;	/* name -> struct named_labels */
	const struct hmap *nodes;	/* name -> struct named_labels */
	const struct hmap *backends;	/* name -> struct backend */
	const struct hmap *replicasets;	/* "ns/name" -> named_labels: ReplicaSet -> Deployment */
	/* the controller's built-in store takes the profiles of policies that name no
	 * backend (as the backend "@store" of type "controller"); false: they only count */
	bool store;
	/* ProfilingPolicies honoured per namespace, the oldest first (0: no cap); the
	 * others are not accepted, with reason TooManyPolicies */
	int max_ns_policies;
};

#define RTARGET_POLICIES 4	/* a target's policies held in place: no allocation each */

struct rtarget {
	const struct pod *pod;
	int container;		/* index into pod->containers */
	int frequency_hz;	/* the maximum over its policies */
	int npolicies;
	/* indices into resolve_input.policies, by the policies' keys (their labels
	 * win in that order): the first RTARGET_POLICIES here, the others in more */
	int pol[RTARGET_POLICIES];
	int *more;
};

/* Where the target's policy k (< npolicies) is. */
static inline int *rtarget_policy_at(struct rtarget *t, int k)
{
	return k < RTARGET_POLICIES ? &t->pol[k] : &t->more[k - RTARGET_POLICIES];
}

static inline int rtarget_policy(const struct rtarget *t, int k)
{
	return k < RTARGET_POLICIES ? t->pol[k] : t->more[k - RTARGET_POLICIES];
}

struct node_targets {
	const char *node;
	int n, cap;
	struct rtarget *t;	/* sorted by container id */
};

struct policy_result {
	bool accepted;
	char reason[48];
	char message[256];
	int pods;		/* pods with at least one targeted container */
	int nodes;
	int waiting;		/* selected pods without a running container id or node */
	uint64_t nodes_gen;	/* targets.c: moves when the set of its nodes changes */
};

struct resolve_output {
	int nnodes;
	struct node_targets *nodes;	/* sorted by node name */
	struct policy_result *results;	/* one per policy */
};

/* Every policy against every pod, from scratch. */
int resolve(const struct resolve_input *in, struct resolve_output *out);
void resolve_output_free(struct resolve_output *out);

/*
 * The pieces resolve() is made of, for a caller that resolves a part again
 * (reconcile's targets.c): the policies' verdicts (accepted, reason, message;
 * the counts zero), how one accepted policy selects one pod, and one pod's
 * containers of one policy added to its node's set.
 */
int resolve_verdicts(const struct resolve_input *in, struct policy_result *results);

enum resolve_match {
	RESOLVE_NONE,		/* not selected, or selected without a container to profile */
	RESOLVE_WAITING,	/* selected, not running on a node yet */
	RESOLVE_TARGETED,	/* selected, running, with a container to profile */
};
enum resolve_match resolve_pod(const struct resolve_input *in, int pi, const struct pod *pod);
/*
 * pod's containers of policy pi into nt (nothing when pi is not active); a
 * container's target is looked for in nt->t[from..n) (0: all; a caller adding
 * one pod's policies at a time passes where that pod's targets start). 0 or -ENOMEM
 */
int resolve_node_add(const struct resolve_input *in, struct node_targets *nt,
		     const struct pod *pod, int pi, int from);
/* Targets by container id, each one's policies by key: as encoded. */
void resolve_node_sort(const struct resolve_input *in, struct node_targets *nt);
void node_targets_free(struct node_targets *nt);
const struct node_targets *resolve_find_node(const struct resolve_output *out, const char *node);

/* The ControllerMessage{targets} for one node, packed; nt may be NULL (an empty set).
 * Returns a malloc'd buffer or NULL. */
uint8_t *resolve_encode(const struct resolve_input *in, const struct node_targets *nt,
			uint64_t version, size_t *ret_len);
/* The same message with another version, from one resolve_encode() made (with any
 * version): what is compared to tell a change is encoded once. NULL: not such a
 * message, or out of memory. */
uint8_t *resolve_set_version(const uint8_t *msg, size_t len, uint64_t version, size_t *ret_len);
#endif
