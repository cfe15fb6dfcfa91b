// SPDX-License-Identifier: Apache-2.0
#include "labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reserved_labels.h"

int label_set_init(struct label_set *ls, int cap)
{
	ls->n = 0;
	ls->cap = cap > 0 ? cap : 0;
	ls->v = calloc((size_t)ls->cap + 1, sizeof(*ls->v));
	return ls->v ? 0 : -ENOMEM;
}

const char *label_set_get(const struct label_set *ls, const char *key)
{
	for (int i = 0; i < ls->n; i++)
		if (!strcmp(ls->v[i].key, key))
			return ls->v[i].value;
	return NULL;
}

bool label_set_put(struct label_set *ls, const char *key, const char *value)
{
	char *k, *v;

	if (!ls->v || ls->n >= ls->cap || label_set_get(ls, key))
		return false;
	k = strdup(key);
	v = strdup(value ? value : "");
	if (!k || !v) {
		free(k);
		free(v);
		return false;
	}
	ls->v[ls->n++] = (struct export_label){ k, v };
	return true;
}

bool label_set_put_foreign(struct label_set *ls, const char *key, const char *value)
{
	const char *canon = label_reserved(key);

	/* a reserved label only as profleet spells it (the controller's service_name,
	 * deployment, ...), and only once */
	if (canon && (strcmp(canon, key) || label_set_get(ls, canon)))
		return false;
	return label_set_put(ls, key, value);
}

void label_set_free(struct label_set *ls)
{
	for (int i = 0; ls->v && i < ls->n; i++) {
		free((char *)ls->v[i].key);
		free((char *)ls->v[i].value);
	}
	free(ls->v);
	*ls = (struct label_set){ 0 };
}
