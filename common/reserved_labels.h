/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_RESERVED_LABELS_H
#define COMMON_RESERVED_LABELS_H
/*
 * The labels profleet sets itself on the profiles it exports: who the profile
 * is of (namespace, pod, container, node, workload, service, policy), and each
 * sample's process and thread. A backend several tenants share tells tenants
 * apart by these, so a policy may not set them (labels.static) or copy them from
 * its pods (labels.fromPodLabels): the controller refuses such a policy, and the
 * agent lets its own values win. Each has its OpenTelemetry name, as the OTLP
 * exporter writes it.
 */
#include <stddef.h>

struct reserved_label {
	const char *key;	/* profleet's name: namespace, pod, ... */
	const char *otel;	/* the OTLP attribute: k8s.namespace.name, ... */
};

extern const struct reserved_label reserved_labels[];
extern const size_t nreserved_labels;

/*
 * The reserved label a user-given key would pass for, or NULL when the key is
 * free. A key matches a reserved label's key or OTel name with ASCII case
 * ignored and every character but a letter or digit read as '_', as backends
 * sanitize label names: "Pod-UID" passes for pod_uid, "k8s.pod.name" and
 * "k8s_pod_name" for pod. Keys starting with "__" (after the same reading:
 * Pyroscope's and Prometheus' own, such as __name__) give "__".
 */
const char *label_reserved(const char *key);

/* The OTel attribute name of a profleet label key; other keys are returned as they are. */
const char *label_otel_key(const char *key);

#endif
