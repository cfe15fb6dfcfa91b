// SPDX-License-Identifier: Apache-2.0
/*
 * Reviews of tokens and access (see auth.h), and the auth thread that accepts
 * or refuses agents: an agent's token must be the agents' service account's,
 * bound to a pod that exists (same uid) and runs on the node the agent names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>

#include "auth.h"
#include "controller.h"
#include "k8s.h"
#include "log.h"
#include "server.h"

#define API_GROUP "profiling.profleet.dev"

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

bool auth_http_passing(long status)
{
	return status == 0 || status == 429 || status >= 500;
}

unsigned int auth_review_token(struct k8s_client *kc, const char *token, const char *audience,
			       cJSON **ret_user, char *why, size_t whylen)
{
	cJSON *req = cJSON_CreateObject(), *spec;
	struct k8s_response r = { 0 };
	unsigned int status = 503;
	char *body;

	*ret_user = NULL;
	spec = cJSON_AddObjectToObject(req, "spec");
	cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "TokenReview");
	cJSON_AddStringToObject(spec, "token", token);
	if (audience)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "audiences"),
				     cJSON_CreateString(audience));
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!body || k8s_request(kc, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", NULL,
				 body, &r) || r.status != 201) {
		snprintf(why, whylen, "token review failed: %s",
			 body ? k8s_response_message(&r) : "out of memory");
		if (body && !auth_http_passing(r.status))
			status = 403;	/* e.g. no right to review: not passing */
	} else if (!cJSON_IsTrue(k8s_get(r.json, "status.authenticated"))) {
		snprintf(why, whylen, "token not authenticated%s%s",
			 k8s_str(r.json, "status.error") ? ": " : "",
			 k8s_str(r.json, "status.error") ? k8s_str(r.json, "status.error") : "");
		status = 401;
	} else {
		*ret_user = cJSON_Duplicate(k8s_get(r.json, "status.user"), true);
		status = *ret_user ? 0 : 503;
		if (status)
			snprintf(why, whylen, "out of memory");
	}
	if (body)
		k8s_response_free(&r);
	free(body);
	return status;
}

static void copy_item(cJSON *to, const cJSON *user, const char *name, bool array)
{
	const cJSON *v = k8s_get(user, name);

	if (array ? cJSON_IsArray(v) : cJSON_IsObject(v))
		cJSON_AddItemToObject(to, name, cJSON_Duplicate(v, true));
}

unsigned int auth_may_get_policy(struct k8s_client *kc, const cJSON *user, const char *ns,
				 const char *name, char *why, size_t whylen)
{
	cJSON *req = cJSON_CreateObject(), *spec, *ra;
	const char *uname = k8s_str(user, "username"), *res;
	struct k8s_response r = { 0 };
	unsigned int status = 503;
	char *body;

	res = ns ? "profilingpolicies" : "clusterprofilingpolicies";
	/* the user as the review saw it (name, uid, groups, extra) asks to get the policy */
	cJSON_AddStringToObject(req, "apiVersion", "authorization.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "SubjectAccessReview");
	spec = cJSON_AddObjectToObject(req, "spec");
	cJSON_AddStringToObject(spec, "user", uname ? uname : "");
	if (k8s_str(user, "uid"))
		cJSON_AddStringToObject(spec, "uid", k8s_str(user, "uid"));
	copy_item(spec, user, "groups", true);
	copy_item(spec, user, "extra", false);
	ra = cJSON_AddObjectToObject(spec, "resourceAttributes");
	if (ns)
		cJSON_AddStringToObject(ra, "namespace", ns);
	cJSON_AddStringToObject(ra, "verb", "get");
	cJSON_AddStringToObject(ra, "group", API_GROUP);
	cJSON_AddStringToObject(ra, "resource", res);
	cJSON_AddStringToObject(ra, "name", name);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!body || k8s_request(kc, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
				 NULL, body, &r) || r.status != 201) {
		snprintf(why, whylen, "access review failed: %s",
			 body ? k8s_response_message(&r) : "out of memory");
	} else if (!cJSON_IsTrue(k8s_get(r.json, "status.allowed"))) {
		snprintf(why, whylen, "user \"%s\" may not get %s \"%s\"%s%s", uname ? uname : "?",
			 res, name, ns ? " in namespace " : "", ns ? ns : "");
		status = 403;
	} else {
		status = 0;
	}
	if (body)
		k8s_response_free(&r);
	free(body);
	return status;
}

/* ---- the cache ------------------------------------------------------------------------ */

struct auth_answer {
	int64_t expires;	/* CLOCK_MONOTONIC seconds */
	unsigned int status;
	char why[200];
	cJSON *user;		/* of a token review that authenticated */
};

struct auth_cache {
	pthread_mutex_t lock;
	struct hmap m;		/* key -> struct auth_answer */
	uint64_t hits, misses;
};

static int64_t mono_s(void)
{
	return mono_ns() / 1000000000;
}

static void answer_free(struct auth_answer *a)
{
	if (a)
		cJSON_Delete(a->user);
	free(a);
}

struct auth_cache *auth_cache_new(void)
{
	struct auth_cache *ac = calloc(1, sizeof(*ac));

	if (ac && pthread_mutex_init(&ac->lock, NULL)) {
		free(ac);
		return NULL;
	}
	return ac;
}

static void cache_clear(struct auth_cache *ac, bool expired_only)
{
	int64_t now = mono_s();

	hmap_for_each(&ac->m, it)
		if (!expired_only || ((struct auth_answer *)it->val)->expires <= now)
			answer_free(hmap_del_entry(&ac->m, it));
}

void auth_cache_free(struct auth_cache *ac)
{
	if (!ac)
		return;
	cache_clear(ac, false);
	hmap_free(&ac->m);
	pthread_mutex_destroy(&ac->lock);
	free(ac);
}

void auth_cache_counts(struct auth_cache *ac, uint64_t *ret_hits, uint64_t *ret_misses)
{
	pthread_mutex_lock(&ac->lock);
	*ret_hits = ac->hits;
	*ret_misses = ac->misses;
	pthread_mutex_unlock(&ac->lock);
}

/* A live answer for key, copied out; false when none. */
static bool cache_get(struct auth_cache *ac, const char *key, unsigned int *status,
		      cJSON **ret_user, char *why, size_t whylen)
{
	const struct auth_answer *a;
	bool hit;

	pthread_mutex_lock(&ac->lock);
	a = hmap_get(&ac->m, key);
	hit = a && a->expires > mono_s();
	if (hit) {
		*status = a->status;
		snprintf(why, whylen, "%s", a->why);
		if (ret_user)
			*ret_user = a->user ? cJSON_Duplicate(a->user, true) : NULL;
		ac->hits++;
	} else {
		ac->misses++;
	}
	pthread_mutex_unlock(&ac->lock);
	return hit && (!ret_user || *ret_user || *status);
}

static void cache_put(struct auth_cache *ac, const char *key, unsigned int status, int ttl_s,
		      const cJSON *user, const char *why)
{
	struct auth_answer *a = calloc(1, sizeof(*a)), *old = NULL;

	if (!a)
		return;
	a->expires = mono_s() + ttl_s;
	a->status = status;
	snprintf(a->why, sizeof(a->why), "%s", why);
	a->user = user ? cJSON_Duplicate(user, true) : NULL;
	pthread_mutex_lock(&ac->lock);
	if (ac->m.n >= AUTH_CACHE_MAX)
		cache_clear(ac, true);
	if (ac->m.n >= AUTH_CACHE_MAX)
		cache_clear(ac, false);	/* bounded, whatever comes */
	if (hmap_put(&ac->m, key, a, (void **)&old))
		answer_free(a);
	answer_free(old);
	pthread_mutex_unlock(&ac->lock);
}

/* "t\n<audience>\n<hex SHA-256 of the token>": a memory dump shows no token. */
static char *token_key(const char *audience, const char *token)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *key;

	SHA256((const unsigned char *)token, strlen(token), md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (asprintf(&key, "t\n%s\n%s", audience ? audience : "", hex) < 0)
		return NULL;
	return key;
}

unsigned int auth_review_token_cached(struct auth_cache *ac, struct k8s_client *kc,
				      const char *token, const char *audience, cJSON **ret_user,
				      char *why, size_t whylen)
{
	unsigned int status;
	char *key = token_key(audience, token);

	if (!key)
		return auth_review_token(kc, token, audience, ret_user, why, whylen);
	if (!cache_get(ac, key, &status, ret_user, why, whylen)) {
		status = auth_review_token(kc, token, audience, ret_user, why, whylen);
		if (status != 503)	/* a review that failed says nothing of the token */
			cache_put(ac, key, status, status ? AUTH_REFUSED_TTL_S : AUTH_TOKEN_TTL_S,
				  *ret_user, why);
	}
	free(key);
	return status;
}

unsigned int auth_may_get_policy_cached(struct auth_cache *ac, struct k8s_client *kc,
					const cJSON *user, const char *ns, const char *name,
					char *why, size_t whylen)
{
	char *who = cJSON_PrintUnformatted(user), *key = NULL;
	unsigned int status;

	if (!who || asprintf(&key, "a\n%s\n%s\n%s", who, ns ? ns : "", name) < 0) {
		free(who);
		return auth_may_get_policy(kc, user, ns, name, why, whylen);
	}
	free(who);
	if (!cache_get(ac, key, &status, NULL, why, whylen)) {
		status = auth_may_get_policy(kc, user, ns, name, why, whylen);
		if (status != 503)
			cache_put(ac, key, status, status ? AUTH_DENIED_TTL_S : AUTH_ALLOWED_TTL_S,
				  NULL, why);
	}
	free(key);
	return status;
}

/* ---- agents ------------------------------------------------------------------------ */

/* The first value of a token's extra field, or NULL. */
static const char *extra_value(const cJSON *user, const char *field)
{
	const cJSON *extra = k8s_get(user, "extra");
	const cJSON *v = cJSON_IsObject(extra) ? cJSON_GetObjectItemCaseSensitive(extra, field) : NULL;

	v = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An address as 16 bytes (IPv4 as IPv4-mapped IPv6); false when it is none. */
static bool addr_parse(const char *s, struct in6_addr *ret)
{
	struct in_addr v4;

	if (inet_pton(AF_INET6, s, ret) == 1)
		return true;
	if (inet_pton(AF_INET, s, &v4) != 1)
		return false;
	memset(ret, 0, sizeof(*ret));
	ret->s6_addr[10] = ret->s6_addr[11] = 0xff;
	memcpy(&ret->s6_addr[12], &v4, 4);
	return true;
}

bool auth_addr_in_list(const char *peer, const char *list)
{
	struct in6_addr a, b;
	char one[64];

	if (!addr_parse(peer, &a))
		return false;
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");

		if (len < sizeof(one)) {
			memcpy(one, p, len);
			one[len] = 0;
			if (addr_parse(one, &b) && !memcmp(&a, &b, sizeof(a)))
				return true;
		}
		p += len + (p[len] == ',');
	}
	return false;
}

/*
 * The pod a token is bound to must exist, be the same pod, run on node and,
 * unless --no-agent-address-check, be where the connection comes from: a token
 * sniffed or stolen and replayed from anywhere else is refused.
 */
static bool agent_pod_ok(struct ctl *c, const char *pod_name, const char *pod_uid,
			 const char *node, const char *peer, char *why, size_t whylen, bool *retry)
{
	const struct pod *pod;
	char key[600];
	bool ok = false;

	snprintf(key, sizeof(key), "%s/%s", c->opt.agent_sa_ns, pod_name);
	pthread_rwlock_rdlock(&c->cache_lock);
	pod = hmap_get(&c->pods_by_name, key);
	*retry = false;
	if (!pod) {	/* a pod just started may not be in the cache yet: passing */
		snprintf(why, whylen, "agent pod %s not found", key);
		*retry = true;
	} else if (strcmp(pod->uid, pod_uid)) {
		snprintf(why, whylen, "agent pod %s was replaced (uid mismatch)", key);
	} else if (!pod->node || strcmp(pod->node, node)) {
		snprintf(why, whylen, "agent pod %s runs on node '%s', not '%s'", key,
			 pod->node ? pod->node : "", node);
	} else if (!c->opt.no_agent_address_check && !pod->ips) {
		snprintf(why, whylen, "agent pod %s has no IP yet", key);
		*retry = true;	/* nor have its IP */
	} else if (!c->opt.no_agent_address_check && !auth_addr_in_list(peer, pod->ips)) {
		snprintf(why, whylen, "agent pod %s has IP %s; this connection comes from %s",
			 key, pod->ips, peer);
	} else {
		ok = true;
	}
	pthread_rwlock_unlock(&c->cache_lock);
	return ok;
}

bool auth_review_agent(struct ctl *c, struct k8s_client *kc, const char *token,
		       const char *node, const char *peer, char *why, size_t whylen, bool *retry)
{
	const char *user, *pod_name, *pod_uid;
	cJSON *u = NULL;
	char want[600];
	unsigned int status;
	bool ok = false;

	if (!*token) {	/* no review needed to say no */
		snprintf(why, whylen, "no token (give the agent --token-file)");
		return false;
	}
	status = auth_review_token_cached(c->auth_cache, kc, token, c->opt.agent_audience, &u,
					  why, whylen);
	if (status) {
		*retry = status == 503;	/* the review failed: it says nothing of the token */
		return false;
	}
	user = k8s_str(u, "username");
	snprintf(want, sizeof(want), "system:serviceaccount:%s:%s", c->opt.agent_sa_ns,
		 c->opt.agent_sa_name);
	/* the token is bound to the agent's pod; the pod says which node it runs on */
	pod_name = extra_value(u, "authentication.kubernetes.io/pod-name");
	pod_uid = extra_value(u, "authentication.kubernetes.io/pod-uid");
	if (!user || strcmp(user, want))
		snprintf(why, whylen, "user '%s' is not the agents' service account %s",
			 user ? user : "?", want);
	else if (!pod_name || !pod_uid)
		snprintf(why, whylen,
			 "token is not bound to a pod (use a projected service-account token)");
	else
		ok = agent_pod_ok(c, pod_name, pod_uid, node, peer, why, whylen, retry);
	cJSON_Delete(u);
	return ok;
}

/* The next connection to review, copied out; false when none (or not yet). Under ctl.lock. */
static bool next_pending(struct ctl *c, uint64_t *id, char *token, size_t toklen, char *node,
			 size_t nodelen, char *peer, size_t peerlen, bool *leader)
{
	struct conn *cn = NULL;

	/* the oldest first: a flood of new hellos does not starve the earlier ones */
	for (struct conn *x = c->conns; x; x = x->next)
		if (x->auth == AUTH_PENDING && (!cn || x->id < cn->id))
			cn = x;
	/* at start, wait for the first lease answer rather than refuse agents as
	 * "not the leader" for the first milliseconds */
	if (!cn || (!c->lease_known && !c->opt.no_leader_election)) {
		c->auth_work = false;
		return false;
	}
	*leader = c->leader;
	*id = cn->id;
	snprintf(token, toklen, "%s", cn->token ? cn->token : "");
	snprintf(node, nodelen, "%s", cn->node);
	snprintf(peer, peerlen, "%s", cn->peer);
	return true;
}

static void *auth_main(void *arg)
{
	struct ctl_worker *a = arg;
	struct ctl *c = a->c;

	ctl_lock(c);
	while (!ctl_stopping(c)) {
		char token[FLEET_TOKEN_MAX], node[254], peer[64], why[256] = "";
		uint64_t id;
		bool ok, leader, retry = false;

		if (!next_pending(c, &id, token, sizeof(token), node, sizeof(node), peer,
				  sizeof(peer), &leader)) {
			ctl_wait(c, &c->wake, NULL);
			continue;
		}
		ctl_unlock(c);
		if (!leader && !c->opt.no_leader_election) {
			ok = false;
			snprintf(why, sizeof(why), "not the leader");
		} else {
			ok = c->opt.insecure_trust_agents ||
			     auth_review_agent(c, a->kc, token, node, peer, why, sizeof(why), &retry);
			if (!ok && retry)	/* the suffix kept whole: the reason cut for it */
				snprintf(why + min_size(strlen(why), sizeof(why) - sizeof(FLEET_RETRY_SOON)),
					 sizeof(FLEET_RETRY_SOON), "%s", FLEET_RETRY_SOON);
		}
		explicit_bzero(token, sizeof(token));
		ctl_lock(c);
		for (struct conn *cn = c->conns; cn; cn = cn->next)	/* it may have gone meanwhile */
			if (cn->id == id && cn->auth == AUTH_PENDING) {
				server_auth_done(c, cn, ok, why);
				break;
			}
		ctl_unlock(c);
		server_wake(c);
		ctl_lock(c);
	}
	ctl_unlock(c);
	ctl_worker_free(a);
	return NULL;
}

int auth_start(struct ctl *c, pthread_t *ret)
{
	return ctl_worker_start(c, sizeof(struct ctl_worker), AUTH_REVIEW_TIMEOUT_MS, auth_main,
				NULL, ret);
}
