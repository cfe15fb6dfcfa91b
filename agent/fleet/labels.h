/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_LABELS_H
#define AGENT_LABELS_H
/*
 * The labels a target's profiles carry to its backends. Keys are unique: the
 * first put wins, so that identity labels put first cannot be overridden by a
 * policy's labels that come after them.
 */
#include <stdbool.h>
#include <stddef.h>

#include "export.h"

struct label_set {
	struct export_label *v;	/* key/value strings owned by the set */
	int n, cap;
};

/* Room for cap labels; 0 or -ENOMEM. */
int label_set_init(struct label_set *ls, int cap);
/* Adds key=value; false when the key is there already (or out of room or memory). */
bool label_set_put(struct label_set *ls, const char *key, const char *value);
const char *label_set_get(const struct label_set *ls, const char *key);
/*
 * Adds a label that comes from a policy (through the controller) after the
 * identity labels: refused (false) when its key is a reserved label spelt
 * another way than profleet spells it (k8s.namespace.name or Namespace for
 * namespace, Service.Name, a backend's own __name__), a reserved label already
 * in the set, or any key that is there already.
 */
bool label_set_put_foreign(struct label_set *ls, const char *key, const char *value);
void label_set_free(struct label_set *ls);

#endif
