// SPDX-License-Identifier: Apache-2.0
/*
 * The secrets thread (see secrets.h). It only needs get on the Secrets named,
 * not a watch on every Secret. The token key (default "token") becomes a
 * bearer token; without it, "username" and "password" become basic auth. A
 * read that fails for now (the API server down or overloaded) keeps the last
 * good credentials; a Secret deleted, forbidden or no longer allowed removes them.
 *
 * Whoever may create a ClusterProfilingBackend must not be able to make the
 * controller read a Secret for them (its credentials go to the backend's URL):
 * a Secret is used only in --backend-secret-namespaces and only with the
 * label SECRET_LABEL=true, which no Secret made for another purpose (the
 * controller's own TLS key, a service account's token) carries. Nor are
 * they read at all when the agents connect over ws:// (no --tls-cert), unless
 * --plain-credentials says that is fine: they would cross the network in clear.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller.h"
#include "log.h"
#include "reconcile.h"
#include "secrets.h"
#include "yamljson.h"

#define SECRET_LABEL "profiling.profleet.dev/backend-credentials"

struct secret_ref {
	char backend[254], ns[254], name[254], key[254];
};

struct creds {
	char *bearer, *basic;
	char why[160];		/* empty when read */
	bool transient;		/* not read for now (the API server down, 5xx): keep the last */
};

/* A data value of a Secret, decoded (malloc'd), or NULL. */
static char *secret_value(const cJSON *secret, const char *key)
{
	const cJSON *data = k8s_get(secret, "data"), *v;
	size_t len;

	v = cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;
	if (!cJSON_IsString(v))
		return NULL;
	return (char *)base64_decode(v->valuestring, &len);
}

/* The backends' Secret references; under cache_lock. */
static struct secret_ref *refs_of(struct ctl *c, int *ret_n)
{
	struct secret_ref *refs = calloc(c->backends.n + 1, sizeof(*refs));
	int n = 0;

	if (refs)
		hmap_for_each(&c->backends, it) {
			const struct backend *b = it->val;

			if (!b->secret_ns)
				continue;
			snprintf(refs[n].backend, sizeof(refs[n].backend), "%s", b->name);
			snprintf(refs[n].ns, sizeof(refs[n].ns), "%s", b->secret_ns);
			snprintf(refs[n].name, sizeof(refs[n].name), "%s", b->secret_name);
			snprintf(refs[n].key, sizeof(refs[n].key), "%s", b->secret_key);
			n++;
		}
	*ret_n = n;
	return refs;
}

static bool label_true(const cJSON *secret)
{
	const cJSON *labels = k8s_get(secret, "metadata.labels");
	const cJSON *v = cJSON_IsObject(labels) ?
		cJSON_GetObjectItemCaseSensitive(labels, SECRET_LABEL) : NULL;

	return cJSON_IsString(v) && !strcmp(v->valuestring, "true");
}

/* Is ns one of --backend-secret-namespaces? */
static bool namespace_allowed(const char *list, const char *ns)
{
	size_t n = strlen(ns);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncmp(p, ns, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void read_secret(struct k8s_client *kc, const struct secret_ref *ref, struct creds *ret)
{
	struct k8s_response r;
	char path[800];

	memset(ret, 0, sizeof(*ret));
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ref->ns, ref->name);
	if (k8s_request(kc, "GET", path, NULL, NULL, &r) || r.status != 200) {
		snprintf(ret->why, sizeof(ret->why), "Secret %s/%s: %s", ref->ns, ref->name,
			 k8s_response_message(&r));
		ret->transient = r.status == 0 || r.status >= 500 || r.status == 429;
	} else if (!label_true(r.json)) {
		snprintf(ret->why, sizeof(ret->why), "Secret %s/%s is not labelled %s=true",
			 ref->ns, ref->name, SECRET_LABEL);
	} else if (!(ret->bearer = secret_value(r.json, ref->key))) {
		char *u = secret_value(r.json, "username"), *pw = secret_value(r.json, "password");

		if (u && pw && asprintf(&ret->basic, "%s:%s", u, pw) < 0)
			ret->basic = NULL;
		if (!ret->basic)
			snprintf(ret->why, sizeof(ret->why), "Secret %s/%s has neither '%s' nor "
				 "username and password", ref->ns, ref->name, ref->key);
		free(u);
		free(pw);
	}
	k8s_response_free(&r);
}

static bool str_differ(const char *a, const char *b)
{
	return !a != !b || (a && strcmp(a, b));
}

/* Puts what was read into the backend; true when its credentials changed. Under cache_lock. */
static bool apply_creds(struct ctl *c, const struct secret_ref *ref, struct creds *cr)
{
	struct backend *b = hmap_get(&c->backends, ref->backend);
	bool changed;

	if (!b || !b->secret_ns)
		return false;
	if (strcmp(b->secret_error, cr->why)) {
		if (cr->why[0])
			log_warn("backend %s: %s", b->name, cr->why);
		else
			log_info("backend %s: credentials read from its Secret", b->name);
	}
	snprintf(b->secret_error, sizeof(b->secret_error), "%s", cr->why);
	if (cr->transient)
		return false;	/* the API server cannot say now: the last good ones stay */
	/* a refusal (gone, forbidden, unlabelled, not allowed) takes them away */
	changed = str_differ(b->bearer, cr->bearer) || str_differ(b->basic, cr->basic);
	if (!changed)
		return false;
	free(b->bearer);
	free(b->basic);
	b->bearer = cr->bearer;
	b->basic = cr->basic;
	cr->bearer = cr->basic = NULL;
	return true;
}

static void read_all(struct ctl *c, struct k8s_client *kc)
{
	struct secret_ref *refs;
	bool changed = false;
	int n = 0;

	pthread_rwlock_rdlock(&c->cache_lock);
	refs = refs_of(c, &n);
	pthread_rwlock_unlock(&c->cache_lock);
	for (int i = 0; refs && i < n; i++) {
		struct creds cr = { 0 };

		if (!c->opt.tls_cert && !c->opt.plain_credentials)
			snprintf(cr.why, sizeof(cr.why), "credentials withheld: the agents connect "
				 "over ws://, and Secrets go to them only over wss:// (--tls-cert) "
				 "or with --plain-credentials");
		else if (namespace_allowed(c->opt.secret_namespaces, refs[i].ns))
			read_secret(kc, &refs[i], &cr);
		else
			snprintf(cr.why, sizeof(cr.why), "Secret %s/%s: namespace %s is not one of "
				 "--backend-secret-namespaces (%s)", refs[i].ns, refs[i].name,
				 refs[i].ns, c->opt.secret_namespaces);
		pthread_rwlock_wrlock(&c->cache_lock);
		changed |= apply_creds(c, &refs[i], &cr);
		pthread_rwlock_unlock(&c->cache_lock);
		free(cr.bearer);
		free(cr.basic);
	}
	free(refs);
	if (changed)	/* the sets that carry its credentials are built again */
		reconcile_changed(c, RC_BACKEND, NULL);
}

static void *secrets_main(void *arg)
{
	struct ctl_worker *a = arg;
	struct ctl *c = a->c;

	ctl_lock(c);
	while (!ctl_stopping(c)) {
		struct timespec until;

		c->secrets_due = false;
		ctl_unlock(c);
		read_all(c, a->kc);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += SECRETS_REREAD_S;
		ctl_lock(c);
		while (!c->secrets_due && !ctl_stopping(c))
			if (ctl_wait(c, &c->wake, &until) == ETIMEDOUT)
				break;
	}
	ctl_unlock(c);
	ctl_worker_free(a);
	return NULL;
}

int secrets_start(struct ctl *c, pthread_t *ret)
{
	return ctl_worker_start(c, sizeof(struct ctl_worker), 0, secrets_main, NULL, ret);
}
