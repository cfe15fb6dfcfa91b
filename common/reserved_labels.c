// SPDX-License-Identifier: Apache-2.0
/* The labels profleet sets itself; see reserved_labels.h. */
#include "reserved_labels.h"

#include <stdbool.h>
#include <string.h>

/*
 * The one list. The agent sets the first seven on every target's profiles
 * (agent/fleet/run.c, target_identity) and service_name from the controller's rules;
 * the controller adds the workload (controller/resolve.c); every sample carries
 * pid, thread, comm and thread_name (agent/aggregate/aggregate.c); `record` adds hostname.
 * crds/ repeats the keys in the policies' schemas (tests/unit/test_fleet.c
 * checks that they agree).
 */
const struct reserved_label reserved_labels[] = {
	{ "namespace", "k8s.namespace.name" },
	{ "pod", "k8s.pod.name" },
	{ "pod_uid", "k8s.pod.uid" },
	{ "container", "k8s.container.name" },
	{ "container_id", "container.id" },
	{ "node", "k8s.node.name" },
	{ "policy", "profleet.policy" },
	{ "service_name", "service.name" },
	{ "deployment", "k8s.deployment.name" },
	{ "statefulset", "k8s.statefulset.name" },
	{ "daemonset", "k8s.daemonset.name" },
	{ "job", "k8s.job.name" },
	{ "cronjob", "k8s.cronjob.name" },
	{ "replicaset", "k8s.replicaset.name" },
	{ "pid", "process.pid" },
	{ "thread", "thread.id" },
	{ "comm", "process.executable.name" },
	{ "thread_name", "thread.name" },
	{ "hostname", "host.name" },
};

const size_t nreserved_labels = sizeof(reserved_labels) / sizeof(reserved_labels[0]);

static char fold(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return c;
	return '_';
}

/* Whether a and b are one name once folded. */
static bool same_name(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (fold(*a) != fold(*b))
			return false;
	return !*a && !*b;
}

const char *label_reserved(const char *key)
{
	if (!key)
		return NULL;
	if (key[0] && key[1] && fold(key[0]) == '_' && fold(key[1]) == '_')
		return "__";
	for (size_t i = 0; i < nreserved_labels; i++)
		if (same_name(key, reserved_labels[i].key) || same_name(key, reserved_labels[i].otel))
			return reserved_labels[i].key;
	return NULL;
}

const char *label_otel_key(const char *key)
{
	for (size_t i = 0; i < nreserved_labels; i++)
		if (!strcmp(key, reserved_labels[i].key))
			return reserved_labels[i].otel;
	return key;
}
