// SPDX-License-Identifier: Apache-2.0
/* Compact copies of Kubernetes objects, label selectors, policy validation. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "k8s.h"
#include "model.h"
#include "reserved_labels.h"

#define MAX_SEL_VALUES 256
#define MAX_LIST 256

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void free_strv(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* An array of strings; -EINVAL if it is there and not one. */
static int strv_from_json(const cJSON *arr, char ***ret, int *ret_n)
{
	const cJSON *it;
	int n = 0;
	char **v;

	*ret = NULL;
	*ret_n = 0;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > MAX_LIST)
		return -EINVAL;
	v = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			free_strv(v, n);
			return -EINVAL;
		}
		v[n++] = strdup(it->valuestring);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- labels --------------------------------------------------------------- */

void labels_free(struct labels *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->kv[i].key);
		free(l->kv[i].value);
	}
	free(l->kv);
	l->kv = NULL;
	l->n = 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

int labels_from_json(const cJSON *obj, struct labels *ret)
{
	const cJSON *it;
	int n = 0;

	ret->n = 0;
	ret->kv = NULL;
	if (!obj || cJSON_IsNull(obj))
		return 0;
	if (!cJSON_IsObject(obj))
		return -EINVAL;
	ret->kv = calloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(struct kv));
	if (!ret->kv)
		return -ENOMEM;
	cJSON_ArrayForEach(it, obj) {
		if (!cJSON_IsString(it) || !it->string) {
			ret->n = n;
			labels_free(ret);
			return -EINVAL;
		}
		ret->kv[n].key = strdup(it->string);
		ret->kv[n].value = strdup(it->valuestring);
		n++;
	}
	ret->n = n;
	qsort(ret->kv, (size_t)n, sizeof(struct kv), kv_cmp);
	return 0;
}

const char *labels_get(const struct labels *l, const char *key)
{
	struct kv k = { .key = (char *)key }, *hit;

	if (!l->n)
		return NULL;
	hit = bsearch(&k, l->kv, (size_t)l->n, sizeof(struct kv), kv_cmp);
	return hit ? hit->value : NULL;
}

/* ---- selectors ------------------------------------------------------------ */

void selector_free(struct selector *s)
{
	labels_free(&s->match);
	for (int i = 0; i < s->nexpr; i++) {
		free(s->expr[i].key);
		free_strv(s->expr[i].values, s->expr[i].nvalues);
	}
	free(s->expr);
	memset(s, 0, sizeof(*s));
}

int selector_parse(const cJSON *obj, struct selector *ret, char *err, size_t errlen)
{
	const cJSON *exprs, *it;
	int n = 0;

	memset(ret, 0, sizeof(*ret));
	if (!obj || cJSON_IsNull(obj))
		return 0;
	if (!cJSON_IsObject(obj)) {
		snprintf(err, errlen, "a label selector must be an object");
		return -EINVAL;
	}
	if (labels_from_json(k8s_get(obj, "matchLabels"), &ret->match)) {
		snprintf(err, errlen, "matchLabels must map strings to strings");
		return -EINVAL;
	}
	exprs = k8s_get(obj, "matchExpressions");
	if (!exprs || cJSON_IsNull(exprs))
		return 0;
	if (!cJSON_IsArray(exprs) || cJSON_GetArraySize(exprs) > MAX_LIST) {
		snprintf(err, errlen, "matchExpressions must be a list");
		goto bad;
	}
	ret->expr = calloc((size_t)cJSON_GetArraySize(exprs) + 1, sizeof(struct sel_expr));
	if (!ret->expr)
		goto bad;
	cJSON_ArrayForEach(it, exprs) {
		struct sel_expr *e = &ret->expr[n];
		const char *key = k8s_str(it, "key"), *op = k8s_str(it, "operator");

		if (!key || !*key || !op) {
			snprintf(err, errlen, "matchExpressions[%d]: key and operator are required", n);
			goto bad;
		}
		if (!strcmp(op, "In"))
			e->op = SEL_IN;
		else if (!strcmp(op, "NotIn"))
			e->op = SEL_NOT_IN;
		else if (!strcmp(op, "Exists"))
			e->op = SEL_EXISTS;
		else if (!strcmp(op, "DoesNotExist"))
			e->op = SEL_DOES_NOT_EXIST;
		else {
			snprintf(err, errlen, "matchExpressions[%d]: unknown operator '%s'", n, op);
			goto bad;
		}
		if (strv_from_json(k8s_get(it, "values"), &e->values, &e->nvalues) ||
		    e->nvalues > MAX_SEL_VALUES) {
			snprintf(err, errlen, "matchExpressions[%d]: values must be a list of strings", n);
			goto bad;
		}
		e->key = strdup(key);
		ret->nexpr = ++n;
		/* the rules of metav1.LabelSelector */
		if ((e->op == SEL_IN || e->op == SEL_NOT_IN) && !e->nvalues) {
			snprintf(err, errlen, "matchExpressions[%d]: %s needs values", n - 1, op);
			goto bad;
		}
		if ((e->op == SEL_EXISTS || e->op == SEL_DOES_NOT_EXIST) && e->nvalues) {
			snprintf(err, errlen, "matchExpressions[%d]: %s takes no values", n - 1, op);
			goto bad;
		}
	}
	return 0;
bad:
	selector_free(ret);
	return -EINVAL;
}

bool selector_matches(const struct selector *s, const struct labels *l)
{
	for (int i = 0; i < s->match.n; i++) {
		const char *v = labels_get(l, s->match.kv[i].key);

		if (!v || strcmp(v, s->match.kv[i].value))
			return false;
	}
	for (int i = 0; i < s->nexpr; i++) {
		const struct sel_expr *e = &s->expr[i];
		const char *v = labels_get(l, e->key);
		bool in = false;

		for (int j = 0; v && j < e->nvalues; j++)
			in |= !strcmp(v, e->values[j]);
		switch (e->op) {
		case SEL_IN:
			if (!in)
				return false;
			break;
		case SEL_NOT_IN:
			if (in)
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

/* ---- pods, namespaces, nodes, backends ------------------------------------ */

char *container_id_normalize(const char *raw)
{
	const char *p;
	char *out;

	if (!raw)
		return NULL;
	p = strstr(raw, "://");
	p = p ? p + 3 : raw;
	if (strlen(p) != 64)
		return NULL;
	for (int i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)p[i]))
			return NULL;
	out = strdup(p);
	for (char *c = out; out && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return out;
}

/* Every string of a pod, by its address: what pod_free frees and pod_pack moves. */
#define POD_STRINGS(p, X)                                                                  \
	do {                                                                               \
		X(&(p)->ns); X(&(p)->name); X(&(p)->uid); X(&(p)->node); X(&(p)->ips);    \
		X(&(p)->service_annotation); X(&(p)->owner_kind); X(&(p)->owner_name);      \
		X(&(p)->phase);                                                            \
		for (int i_ = 0; i_ < (p)->labels.n; i_++) {                               \
			X(&(p)->labels.kv[i_].key); X(&(p)->labels.kv[i_].value);          \
		}                                                                          \
		for (int i_ = 0; i_ < (p)->ncontainers; i_++) {                            \
			X(&(p)->containers[i_].name); X(&(p)->containers[i_].id);          \
		}                                                                          \
	} while (0)

/* A field added to struct pod goes into POD_STRINGS (or is no string). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct pod) == 120,
	       "struct pod changed: check POD_STRINGS");

static void free_string(char **s)
{
	free(*s);
}

void pod_free(struct pod *p)
{
	if (p->block) {
		free(p->block);
		memset(p, 0, sizeof(*p));
		return;
	}
	POD_STRINGS(p, free_string);
	free(p->labels.kv);
	free(p->containers);
	memset(p, 0, sizeof(*p));
}

/* The ownerReference with controller: true (kind and name copied), if any. */
static void controller_owner(const cJSON *obj, char **kind, char **name)
{
	const cJSON *o;

	*kind = *name = NULL;
	cJSON_ArrayForEach(o, k8s_get(obj, "metadata.ownerReferences")) {
		if (!cJSON_IsTrue(k8s_get(o, "controller")) || !k8s_str(o, "kind") ||
		    !k8s_str(o, "name"))
			continue;
		*kind = strdup(k8s_str(o, "kind"));
		*name = strdup(k8s_str(o, "name"));
		return;
	}
}

int replicaset_from_json(const cJSON *obj, struct named_labels *ret)
{
	char *kind, *name;
	const char *ns = k8s_str(obj, "metadata.namespace"), *n = k8s_str(obj, "metadata.name");

	memset(ret, 0, sizeof(*ret));
	if (!ns || !n || asprintf(&ret->name, "%s/%s", ns, n) < 0) {
		ret->name = NULL;
		return -EINVAL;
	}
	controller_owner(obj, &kind, &name);
	if (kind && name && !strcmp(kind, "Deployment")) {
		ret->labels.kv = calloc(1, sizeof(struct kv));
		if (ret->labels.kv) {
			ret->labels.kv[0].key = strdup("deployment");
			ret->labels.kv[0].value = name;
			name = NULL;
			ret->labels.n = 1;
		}
	}
	free(kind);
	free(name);
	return 0;
}

bool pod_workload(const struct pod *p, const struct hmap *replicasets,
		  const char **ret_kind, const char **ret_name)
{
	static const char *const kinds[][2] = {
		{ "StatefulSet", "statefulset" }, { "DaemonSet", "daemonset" }, { "Job", "job" },
		{ "ReplicaSet", "replicaset" },
	};

	if (!p->owner_kind || !p->owner_name)
		return false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(p->owner_kind, kinds[i][0]))
			continue;
		*ret_kind = kinds[i][1];
		*ret_name = p->owner_name;
		if (i == 3 && replicasets) {	/* a ReplicaSet: its Deployment, if one controls it */
			char key[600];
			const struct named_labels *rs;

			snprintf(key, sizeof(key), "%s/%s", p->ns, p->owner_name);
			rs = hmap_get(replicasets, key);
			if (rs && rs->labels.n) {
				*ret_kind = "deployment";
				*ret_name = rs->labels.kv[0].value;
			}
		}
		return true;
	}
	return false;
}

/* status.podIPs[].ip, comma-separated, else status.podIP; *ret NULL when none. */
static int pod_ips(const cJSON *obj, char **ret)
{
	const cJSON *ips = k8s_get(obj, "status.podIPs"), *it;
	const char *one = k8s_str(obj, "status.podIP");
	char buf[512];
	size_t len = 0;

	buf[0] = 0;
	if (cJSON_IsArray(ips))
		cJSON_ArrayForEach(it, ips) {
			const char *ip = k8s_str(it, "ip");
			int n;

			if (!ip || !*ip || strchr(ip, ','))
				continue;
			n = snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? "," : "", ip);
			if (n < 0 || (size_t)n >= sizeof(buf) - len) {
				buf[len] = 0;	/* more than any pod has: the ones that fit */
				break;
			}
			len += (size_t)n;
		}
	if (!len && one && *one)
		snprintf(buf, sizeof(buf), "%s", one);
	*ret = NULL;
	if (buf[0] && !(*ret = strdup(buf)))
		return -ENOMEM;
	return 0;
}

/* Moves the pod's strings and arrays into one block (about half the memory of
 * a malloc each); on failure the pod stays as it was. */
static void pod_pack(struct pod *p)
{
	size_t kvs = (size_t)p->labels.n * sizeof(struct kv);
	size_t crs = (size_t)p->ncontainers * sizeof(struct container_ref);
	size_t len = kvs + crs;
	struct pod old = *p;
	char *b, *at;

#define LEN(s) (len += *(s) ? strlen(*(s)) + 1 : 0)
	POD_STRINGS(p, LEN);
#undef LEN
	b = malloc(len ? len : 1);
	if (!b)
		return;
	if (kvs)
		memcpy(b, p->labels.kv, kvs);
	if (crs)
		memcpy(b + kvs, p->containers, crs);
	p->labels.kv = p->labels.n ? (struct kv *)b : NULL;
	p->containers = p->ncontainers ? (struct container_ref *)(b + kvs) : NULL;
	at = b + kvs + crs;
#define MOVE(s)                                                                            \
	do {                                                                               \
		if (*(s)) {                                                                \
			size_t n_ = strlen(*(s)) + 1;                                      \
			memcpy(at, *(s), n_);                                              \
			*(s) = at;                                                         \
			at += n_;                                                          \
		}                                                                          \
	} while (0)
	POD_STRINGS(p, MOVE);
#undef MOVE
	pod_free(&old);
	p->block = b;
}

int pod_from_json(const cJSON *obj, struct pod *ret)
{
	const cJSON *specs = k8s_get(obj, "spec.containers"), *statuses, *it, *st, *ann, *sv;
	int n = 0;

	memset(ret, 0, sizeof(*ret));
	if (!k8s_str(obj, "metadata.name") || !k8s_str(obj, "metadata.namespace") ||
	    !k8s_str(obj, "metadata.uid"))
		return -EINVAL;
	ret->ns = strdup(k8s_str(obj, "metadata.namespace"));
	ret->name = strdup(k8s_str(obj, "metadata.name"));
	ret->uid = strdup(k8s_str(obj, "metadata.uid"));
	ret->node = dup_or_null(k8s_str(obj, "spec.nodeName"));
	ret->phase = dup_or_null(k8s_str(obj, "status.phase"));
	if (pod_ips(obj, &ret->ips))
		goto bad;
	/* the key has dots: no k8s_get() path for it */
	ann = k8s_get(obj, "metadata.annotations");
	sv = cJSON_IsObject(ann) ?
		cJSON_GetObjectItemCaseSensitive(ann, "profiling.profleet.dev/service-name") : NULL;
	ret->service_annotation = cJSON_IsString(sv) ? strdup(sv->valuestring) : NULL;
	controller_owner(obj, &ret->owner_kind, &ret->owner_name);
	if (labels_from_json(k8s_get(obj, "metadata.labels"), &ret->labels))
		goto bad;
	if (cJSON_IsArray(specs) && cJSON_GetArraySize(specs) <= MAX_LIST) {
		ret->containers = calloc((size_t)cJSON_GetArraySize(specs) + 1,
					 sizeof(struct container_ref));
		if (!ret->containers)
			goto bad;
		cJSON_ArrayForEach(it, specs) {
			const char *name = k8s_str(it, "name");

			if (!name)
				continue;
			ret->containers[n].name = strdup(name);
			statuses = k8s_get(obj, "status.containerStatuses");
			cJSON_ArrayForEach(st, statuses) {
				const char *sn = k8s_str(st, "name");

				if (sn && !strcmp(sn, name)) {
					ret->containers[n].id =
						container_id_normalize(k8s_str(st, "containerID"));
					break;
				}
			}
			n++;
		}
		ret->ncontainers = n;
	}
	pod_pack(ret);
	return 0;
bad:
	pod_free(ret);
	return -EINVAL;
}

void named_labels_free(struct named_labels *n)
{
	free(n->name);
	labels_free(&n->labels);
	memset(n, 0, sizeof(*n));
}

int named_labels_from_json(const cJSON *obj, struct named_labels *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!k8s_str(obj, "metadata.name"))
		return -EINVAL;
	ret->name = strdup(k8s_str(obj, "metadata.name"));
	if (labels_from_json(k8s_get(obj, "metadata.labels"), &ret->labels)) {
		named_labels_free(ret);
		return -EINVAL;
	}
	return 0;
}

void backend_free(struct backend *b)
{
	free(b->name);
	free(b->type);
	free(b->url);
	free(b->tenant);
	free(b->secret_ns);
	free(b->secret_name);
	free(b->secret_key);
	k8s_free_secret(b->bearer);
	k8s_free_secret(b->basic);
	labels_free(&b->headers);
	free_strv(b->allowed, b->nallowed);
	memset(b, 0, sizeof(*b));
}

int backend_from_json(const cJSON *obj, struct backend *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!k8s_str(obj, "metadata.name"))
		return -EINVAL;
	ret->name = strdup(k8s_str(obj, "metadata.name"));
	ret->type = dup_or_null(k8s_str(obj, "spec.type"));
	ret->url = dup_or_null(k8s_str(obj, "spec.url"));
	ret->tenant = dup_or_null(k8s_str(obj, "spec.tenantID"));
	if (k8s_str(obj, "spec.authSecretRef.namespace") && k8s_str(obj, "spec.authSecretRef.name")) {
		ret->secret_ns = strdup(k8s_str(obj, "spec.authSecretRef.namespace"));
		ret->secret_name = strdup(k8s_str(obj, "spec.authSecretRef.name"));
		ret->secret_key = strdup(k8s_str(obj, "spec.authSecretRef.key") ?
					 k8s_str(obj, "spec.authSecretRef.key") : "token");
	}
	if (labels_from_json(k8s_get(obj, "spec.headers"), &ret->headers))
		memset(&ret->headers, 0, sizeof(ret->headers));	/* bad map: none */
	if (strv_from_json(k8s_get(obj, "spec.allowedNamespaces"), &ret->allowed, &ret->nallowed))
		ret->nallowed = 0;	/* unusable list: allows nothing */
	return 0;
}

bool backend_allows(const struct backend *b, const char *ns)
{
	if (!ns)	/* cluster policies may use any backend */
		return true;
	for (int i = 0; i < b->nallowed; i++)
		if (!strcmp(b->allowed[i], "*") || !strcmp(b->allowed[i], ns))
			return true;
	return false;
}

/* ---- policies ------------------------------------------------------------- */

static const char *const phase_names[] = { "", "Pending", "Running", "Completed", "Failed" };

const char *phase_name(enum policy_phase p)
{
	return phase_names[p];
}

enum policy_phase phase_parse(const char *s)
{
	for (int i = 1; s && i <= PHASE_FAILED; i++)
		if (!strcmp(s, phase_names[i]))
			return (enum policy_phase)i;
	return PHASE_NONE;
}

void policy_free(struct policy *p)
{
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->key);
	selector_free(&p->pods);
	selector_free(&p->namespaces);
	selector_free(&p->nodes);
	free_strv(p->containers, p->ncontainers);
	labels_free(&p->static_labels);
	free_strv(p->copy_labels, p->ncopy);
	free(p->service_name);
	free_strv(p->backends, p->nbackends);
	cJSON_Delete(p->srv_conditions);
	memset(p, 0, sizeof(*p));
}

#define INVALID(p, reason, ...)                                                        \
	do {                                                                           \
		snprintf((p)->invalid_reason, sizeof((p)->invalid_reason), "%s", reason); \
		snprintf((p)->invalid_message, sizeof((p)->invalid_message), __VA_ARGS__); \
		return 0;                                                              \
	} while (0)

/* Why a policy may not set the label key (at where: "labels.static", ...); NULL if it may. */
static const char *reserved_why(const char *where, const char *key, char *buf, size_t len)
{
	const char *r = label_reserved(key);

	if (!r)
		return NULL;
	if (!strcmp(r, "__"))
		snprintf(buf, len, "%s: label '%.100s' is reserved: keys starting with __ are the "
			 "backends' own", where, key);
	else if (!strcmp(key, r))
		snprintf(buf, len, "%s: label '%s' is reserved: profleet sets it itself%s", where, r,
			 !strcmp(r, "service_name") ? " (set labels.serviceName instead)" : "");
	else
		snprintf(buf, len, "%s: label '%.100s' is reserved: it would pass for '%s', which "
			 "profleet sets itself", where, key, r);
	return buf;
}

/* Labels that would let one tenant pass for another (common/reserved_labels.h). */
static int check_reserved_labels(struct policy *p)
{
	char why[256];

	for (int i = 0; i < p->static_labels.n; i++)
		if (reserved_why("labels.static", p->static_labels.kv[i].key, why, sizeof(why)))
			INVALID(p, "ReservedLabel", "%s", why);
	for (int i = 0; i < p->ncopy; i++)
		if (reserved_why("labels.fromPodLabels", p->copy_labels[i], why, sizeof(why)))
			INVALID(p, "ReservedLabel", "%s", why);
	return 0;
}

static int parse_spec(const cJSON *spec, struct policy *p, int max_hz)
{
	const cJSON *sel = k8s_get(spec, "selector"), *v, *it;
	const char *mode = k8s_str(spec, "mode");
	char err[200];

	if (!cJSON_IsObject(spec))
		INVALID(p, "InvalidSpec", "spec is missing");
	if (!mode || !strcmp(mode, "Continuous"))
		p->mode = MODE_CONTINUOUS;
	else if (!strcmp(mode, "OnDemand"))
		p->mode = MODE_ONDEMAND;
	else
		INVALID(p, "InvalidSpec", "mode must be Continuous or OnDemand, not '%s'", mode);
	v = k8s_get(spec, "durationSeconds");
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 86400)
			INVALID(p, "InvalidSpec", "durationSeconds must be 1..86400");
		p->duration_s = (int64_t)v->valuedouble;
	}
	if (p->mode == MODE_ONDEMAND && !p->duration_s)
		INVALID(p, "InvalidSpec", "durationSeconds is required when mode is OnDemand");
	if (p->mode == MODE_CONTINUOUS && p->duration_s)
		INVALID(p, "InvalidSpec",
			"durationSeconds is only for mode OnDemand (a Continuous policy runs until deleted)");

	if (!cJSON_IsObject(sel) || !cJSON_IsObject(k8s_get(sel, "podSelector")))
		INVALID(p, "InvalidSelector", "selector.podSelector is required");
	if (selector_parse(k8s_get(sel, "podSelector"), &p->pods, err, sizeof(err)))
		INVALID(p, "InvalidSelector", "selector.podSelector: %s", err);
	if (k8s_get(sel, "namespaceSelector") || k8s_get(sel, "nodeSelector")) {
		if (!p->cluster)
			INVALID(p, "CrossNamespace",
				"a ProfilingPolicy selects pods of its own namespace only; "
				"namespaceSelector and nodeSelector need a ClusterProfilingPolicy");
		p->has_ns_sel = k8s_get(sel, "namespaceSelector") != NULL;
		p->has_node_sel = k8s_get(sel, "nodeSelector") != NULL;
		if (selector_parse(k8s_get(sel, "namespaceSelector"), &p->namespaces, err,
				   sizeof(err)))
			INVALID(p, "InvalidSelector", "selector.namespaceSelector: %s", err);
		if (selector_parse(k8s_get(sel, "nodeSelector"), &p->nodes, err, sizeof(err)))
			INVALID(p, "InvalidSelector", "selector.nodeSelector: %s", err);
	}
	if (strv_from_json(k8s_get(sel, "containers"), &p->containers, &p->ncontainers))
		INVALID(p, "InvalidSelector", "selector.containers must be a list of names");

	v = k8s_get(spec, "sampling.frequencyHz");
	p->frequency_hz = 19;
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1000)
			INVALID(p, "InvalidSpec", "sampling.frequencyHz must be 1..1000");
		p->frequency_hz = v->valueint;
	}
	if (p->frequency_hz > max_hz)
		INVALID(p, "FrequencyOverCap",
			"sampling.frequencyHz %d is over this cluster's cap of %d Hz", p->frequency_hz,
			max_hz);
	cJSON_ArrayForEach(it, k8s_get(spec, "sampling.profileTypes")) {
		if (!cJSON_IsString(it))
			INVALID(p, "InvalidSpec", "sampling.profileTypes must be strings");
		if (!strcmp(it->valuestring, "OffCPU"))
			INVALID(p, "Unsupported", "profile type OffCPU is not supported yet");
		if (strcmp(it->valuestring, "OnCPU"))
			INVALID(p, "InvalidSpec", "unknown profile type '%s'", it->valuestring);
	}

	if (labels_from_json(k8s_get(spec, "labels.static"), &p->static_labels))
		INVALID(p, "InvalidSpec", "labels.static must map strings to strings");
	if (strv_from_json(k8s_get(spec, "labels.fromPodLabels"), &p->copy_labels, &p->ncopy))
		INVALID(p, "InvalidSpec", "labels.fromPodLabels must be a list of strings");
	p->service_name = dup_or_null(k8s_str(spec, "labels.serviceName"));
	if (strv_from_json(k8s_get(spec, "export.backendRefs"), &p->backends, &p->nbackends) ||
	    p->nbackends > MAX_BACKEND_REFS)
		INVALID(p, "InvalidSpec", "export.backendRefs must be at most %d names",
			MAX_BACKEND_REFS);
	return check_reserved_labels(p);
}

int policy_from_json(const cJSON *obj, bool cluster, int max_hz, struct policy *ret)
{
	const char *name = k8s_str(obj, "metadata.name"), *ns = k8s_str(obj, "metadata.namespace");
	const cJSON *gen = k8s_get(obj, "metadata.generation"), *st = k8s_get(obj, "status"), *v;

	memset(ret, 0, sizeof(*ret));
	if (!name || (!cluster && !ns))
		return -EINVAL;
	ret->cluster = cluster;
	ret->name = strdup(name);
	ret->ns = cluster ? NULL : strdup(ns);
	ret->uid = dup_or_null(k8s_str(obj, "metadata.uid"));
	if (cluster)
		ret->key = strdup(name);
	else if (asprintf(&ret->key, "%s/%s", ns, name) < 0)
		ret->key = NULL;
	ret->generation = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;
	ret->created_s = k8s_time_parse(k8s_str(obj, "metadata.creationTimestamp"));
	if (ret->created_s < 0)
		ret->created_s = 0;
	parse_spec(k8s_get(obj, "spec"), ret, max_hz);

	ret->srv_phase = phase_parse(k8s_str(st, "phase"));
	ret->srv_start = k8s_time_parse(k8s_str(st, "startTime"));
	ret->srv_completion = k8s_time_parse(k8s_str(st, "completionTime"));
	if (ret->srv_start < 0)
		ret->srv_start = 0;
	if (ret->srv_completion < 0)
		ret->srv_completion = 0;
	v = k8s_get(st, "samplesCollected");
	ret->srv_samples = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	v = k8s_get(st, "observedGeneration");
	ret->srv_observed_generation = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	v = k8s_get(st, "conditions");
	ret->srv_conditions = cJSON_IsArray(v) ? cJSON_Duplicate(v, 1) : NULL;
	return ret->key ? 0 : -ENOMEM;
}
