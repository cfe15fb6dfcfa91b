/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_RESOLVE_H
#define CONTROLLER_RESOLVE_H
/*
 * Policies x pods -> one target set per node. Pure: no I/O, no locks; the
 * caller snapshots its caches into a resolve_input.
 */
#include <stddef.h>
#include <stdint.h>
#include "model.h"

/* The built-in store's backend name in target sets (no Kubernetes name has an '@'). */
#define STORE_NAME "@store"

struct resolve_input {
	struct policy **policies;
	bool *active;		/* per policy: false = accepted but not sampling (OnDemand done) */
	int npolicies;
	struct pod **pods;
	int npods;
	struct named_labels **namespaces;	/* sorted by name */
	int nnamespaces;
	struct named_labels **nodes;		/* sorted by name */
	int nnodes;
	struct backend **backends;		/* sorted by name */
	int nbackends;
	struct named_labels **replicasets;	/* "ns/name", sorted: ReplicaSet -> Deployment */
	int nreplicasets;
	/* the controller's built-in store takes the profiles of policies that name no
	 * backend (as the backend "@store" of type "controller"); false: they only count */
	bool store;
	/* ProfilingPolicies honoured per namespace, the oldest first (0: no cap); the
	 * others are not accepted, with reason TooManyPolicies */
	int max_ns_policies;
};

struct rtarget {
	const struct pod *pod;
	int container;		/* index into pod->containers */
	int frequency_hz;	/* the maximum over its policies */
	int npolicies;
	int *policies;		/* indices into resolve_input.policies, ascending */
};

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
};

struct resolve_output {
	int nnodes;
	struct node_targets *nodes;	/* sorted by node name */
	struct policy_result *results;	/* one per policy */
};

int resolve(const struct resolve_input *in, struct resolve_output *out);
void resolve_output_free(struct resolve_output *out);
const struct node_targets *resolve_find_node(const struct resolve_output *out, const char *node);

/* The ControllerMessage{targets} for one node, packed; nt may be NULL (an empty set).
 * Returns a malloc'd buffer or NULL. */
uint8_t *resolve_encode(const struct resolve_input *in, const struct node_targets *nt,
			uint64_t version, size_t *ret_len);
/* Same encoding with version 0, to tell whether a node's set changed. */
#endif
