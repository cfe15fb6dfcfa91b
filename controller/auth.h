/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_AUTH_H
#define CONTROLLER_AUTH_H
/*
 * Who is calling: TokenReviews and SubjectAccessReviews against the API
 * server, shared by the agents' websocket (the auth thread reviews each new
 * agent's Hello) and the HTTP API (each request's bearer token).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct ctl;
struct k8s_client;

/*
 * Reviews a token (for audience, or the API server's when NULL). 0 when it
 * is authenticated: *ret_user gets status.user (the caller frees it); else,
 * with why, 401 (not valid), 503 (the review could not be made and may be
 * soon: no answer, 429 or 5xx; auth_http_passing) or 403 (refused for good,
 * e.g. the controller may not create TokenReviews).
 */
unsigned int auth_review_token(struct k8s_client *kc, const char *token, const char *audience,
			       cJSON **ret_user, char *why, size_t whylen);
/* An API request's failure that may pass: no answer (status 0), 429 or 5xx. */
bool auth_http_passing(long status);
/*
 * May user (status.user of a review) get the policy (ns NULL: a cluster
 * policy)? 0 when allowed; else 403 or 503 with why.
 */
unsigned int auth_may_get_policy(struct k8s_client *kc, const cJSON *user, const char *ns,
				 const char *name, char *why, size_t whylen);

/*
 * What the reviews said, kept as the API server's own webhook authenticator
 * and authorizer keep them (keyed by a SHA-256 of the token, never the token
 * itself): an authenticated token AUTH_TOKEN_TTL_S, a refused
 * one AUTH_REFUSED_TTL_S; an access allowed AUTH_ALLOWED_TTL_S, denied
 * AUTH_DENIED_TTL_S (so a new RoleBinding works within that). A review that
 * failed is not kept. At most AUTH_CACHE_MAX answers. Thread-safe.
 */
#define AUTH_TOKEN_TTL_S 120
#define AUTH_REFUSED_TTL_S 10
#define AUTH_ALLOWED_TTL_S 60
#define AUTH_DENIED_TTL_S 5
#define AUTH_CACHE_MAX 4096
/* A review's time limit: under the agents' hello timeout (FLEET_HELLO_TIMEOUT_S). */
#define AUTH_REVIEW_TIMEOUT_MS 5000L

struct auth_cache;

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *ac);
/* auth_review_token and auth_may_get_policy, through the cache. */
unsigned int auth_review_token_cached(struct auth_cache *ac, struct k8s_client *kc,
				      const char *token, const char *audience, cJSON **ret_user,
				      char *why, size_t whylen);
unsigned int auth_may_get_policy_cached(struct auth_cache *ac, struct k8s_client *kc,
					const cJSON *user, const char *ns, const char *name,
					char *why, size_t whylen);
/*
 * Whether peer (an address as the socket gave it) is one of list's (a pod's
 * IPs, comma-separated), compared as addresses: "::ffff:10.0.0.1" is
 * "10.0.0.1", "fd00:0::1" is "fd00::1".
 */
bool auth_addr_in_list(const char *peer, const char *list);

/* Answers taken from the cache, and asked of the API server. */
void auth_cache_counts(struct auth_cache *ac, uint64_t *ret_hits, uint64_t *ret_misses);

/*
 * May the agent with this token, connected from peer (an address), have node's
 * targets? The token must be the agents' service account's, bound to a pod
 * (a projected token), and that pod, in the cache, the same one (uid), on node,
 * and at peer (unless --no-agent-address-check). false with why; *retry when
 * what failed may pass soon (a review that could not be made, the pod not in
 * the cache yet or without an IP yet). What the auth thread asks of each Hello.
 */
bool auth_review_agent(struct ctl *c, struct k8s_client *kc, const char *token,
		       const char *node, const char *peer, char *why, size_t whylen, bool *retry);

/* The auth thread: 0 or an errno; stops once ctl.stop is set and c->wake broadcast. */
int auth_start(struct ctl *c, pthread_t *ret);
#endif
