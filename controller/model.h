/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_MODEL_H
#define CONTROLLER_MODEL_H
/*
 * The controller's view of the cluster: compact copies of the objects it
 * watches (a Pod keeps only what resolution needs, not its JSON), parsed and
 * validated policies, and label selectors.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

struct hmap;

/* The API group and version of our kinds, as a path of the API server. */
#define GROUP_PATH "/apis/profiling.profleet.dev/v1alpha1"

/* A policy's key in the controller's cache ("P:ns/name", "C:name") from the one
 * agents and statuses use ("ns/name" for a ProfilingPolicy, "name" for a cluster one). */
static inline void policy_cache_key(char *buf, size_t len, const char *key)
{
	snprintf(buf, len, "%c:%s", strchr(key, '/') ? 'P' : 'C', key);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct kv {
	char *key, *value;
};

struct labels {
	int n;
	struct kv *kv;		/* sorted by key */
};

enum sel_op { SEL_IN, SEL_NOT_IN, SEL_EXISTS, SEL_DOES_NOT_EXIST };

struct sel_expr {
	char *key;
	enum sel_op op;
	int nvalues;
	char **values;
};

/* A metav1.LabelSelector. An empty selector matches everything. */
struct selector {
	struct labels match;
	int nexpr;
	struct sel_expr *expr;
};

struct container_ref {
	char *name;
	char *id;		/* 64 hex digits, runtime prefix stripped; NULL until it runs */
};

struct pod {
	char *ns, *name, *uid, *node;
	char *ips;		/* status.podIPs (else status.podIP), comma-separated; NULL = none yet */
	struct labels labels;
	char *service_annotation;	/* profiling.profleet.dev/service-name */
	char *owner_kind, *owner_name;	/* the controlling ownerReference, if any */
	char *phase;
	int ncontainers;
	struct container_ref *containers;
	uint64_t seen;		/* informer generation (mark and sweep on re-list) */
	/* set: every string and array above lives in this one block (pod_from_json
	 * packs them: a cluster's pods are the controller's largest state) */
	void *block;
};

struct named_labels {		/* Namespace and Node: a name and its labels */
	char *name;
	struct labels labels;
	uint64_t seen;
};

enum policy_mode { MODE_CONTINUOUS, MODE_ONDEMAND };
enum policy_phase { PHASE_NONE, PHASE_PENDING, PHASE_RUNNING, PHASE_COMPLETED, PHASE_FAILED };

#define MAX_BACKEND_REFS 8

struct policy {
	bool cluster;		/* ClusterProfilingPolicy */
	char *ns, *name, *uid;	/* ns is NULL for cluster policies */
	char *key;		/* "ns/name" or "name": how agents and status name it */
	int64_t generation;
	int64_t created_s;	/* metadata.creationTimestamp (unix seconds; 0 if none) */
	/* spec */
	enum policy_mode mode;
	int64_t duration_s;	/* OnDemand only; 0 = none given */
	struct selector pods, namespaces, nodes;
	bool has_ns_sel, has_node_sel;
	int ncontainers;
	char **containers;
	int frequency_hz;
	bool off_cpu;
	struct labels static_labels;
	int ncopy;
	char **copy_labels;
	char *service_name;
	int nbackends;
	char **backends;
	/* why the spec is unusable (set by policy_parse; empty when fine) */
	char invalid_reason[48];
	char invalid_message[256];
	/* status as last read from the server (survives controller restarts) */
	enum policy_phase srv_phase;
	int64_t srv_start, srv_completion;	/* unix seconds, 0 if none */
	int64_t srv_samples;
	cJSON *srv_conditions;	/* for lastTransitionTime continuity */
	int64_t srv_observed_generation;
	uint64_t seen;
};

struct backend {
	char *name, *type, *url, *tenant;
	/* spec.authSecretRef, and what the controller read from that Secret */
	char *secret_ns, *secret_name, *secret_key;
	char *bearer;		/* the Secret's token key */
	char *basic;		/* "username:password" when it has those keys instead */
	char secret_error[160];	/* why the Secret could not be used; empty when fine */
	struct labels headers;
	int nallowed;
	char **allowed;		/* namespace names, "*" = all */
	uint64_t seen;
};

void labels_free(struct labels *l);
int labels_from_json(const cJSON *obj, struct labels *ret);	/* a map of strings */
const char *labels_get(const struct labels *l, const char *key);

void selector_free(struct selector *s);
/* Parses a LabelSelector; returns 0, or -EINVAL with a message. */
int selector_parse(const cJSON *obj, struct selector *ret, char *err, size_t errlen);
bool selector_matches(const struct selector *s, const struct labels *l);

void pod_free(struct pod *p);
int pod_from_json(const cJSON *obj, struct pod *ret);
void named_labels_free(struct named_labels *n);
int named_labels_from_json(const cJSON *obj, struct named_labels *ret);
/* A ReplicaSet as a named_labels: name "namespace/name", one label "deployment"
 * when a Deployment controls it. */
int replicaset_from_json(const cJSON *obj, struct named_labels *ret);
/* The workload a pod belongs to: kind in lower case ("deployment", "statefulset",
 * "daemonset", "job", "cronjob", "replicaset") and name; false when none.
 * replicasets ("ns/name" -> named_labels, may be NULL) turn a ReplicaSet into its
 * Deployment. */
bool pod_workload(const struct pod *p, const struct hmap *replicasets,
		  const char **ret_kind, const char **ret_name);
void backend_free(struct backend *b);
int backend_from_json(const cJSON *obj, struct backend *ret);
bool backend_allows(const struct backend *b, const char *ns);

/*
 * Parses a ProfilingPolicy (cluster=false) or ClusterProfilingPolicy. Fails only
 * when the object has no name; a bad spec gives a policy with invalid_reason set.
 * max_hz is the cluster's frequency cap.
 */
int policy_from_json(const cJSON *obj, bool cluster, int max_hz, struct policy *ret);
void policy_free(struct policy *p);

const char *phase_name(enum policy_phase p);
enum policy_phase phase_parse(const char *s);
/* Strips "containerd://", "docker://", "cri-o://" and checks for 64 hex digits. */
char *container_id_normalize(const char *raw);
#endif
