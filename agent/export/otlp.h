/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_OTLP_H
#define AGENT_OTLP_H
/*
 * A profile as an OTLP ExportProfilesServiceRequest (profiles v1development,
 * the layout of opentelemetry-proto 1.10/1.11; proto/otlp_profiles.proto
 * restates it). One ResourceProfiles with the resource attributes, one
 * ScopeProfiles ("profleet"), one Profile of samples/count with cpu/nanoseconds
 * as the period; every table in the ProfilesDictionary starts with its zero
 * entry; samples point into stack_table; sample labels become attributes.
 */
#include <stddef.h>
#include <stdint.h>
#include "export.h"

struct profile;

/*
 * Resource attributes: the label keys profleet uses are renamed to OTel's
 * semantic conventions (namespace -> k8s.namespace.name, pod -> k8s.pod.name,
 * pod_uid -> k8s.pod.uid, container -> k8s.container.name, node ->
 * k8s.node.name, container_id -> container.id, pid -> process.pid,
 * hostname -> host.name); others keep their key. service.name is service.
 * Returns 0 and a malloc'd buffer, or -errno.
 */
int otlp__encode(const struct profile *p, const char *service, const struct export_label *labels,
		 int nlabels, uint8_t **ret_buf, size_t *ret_len);
/* The semantic-convention key for a profleet label key. */
const char *otlp__attr_key(const char *key);
/* The scope version the encoder writes (the agent's version when it was built). */
const char *otlp__scope_version(void);

#endif
