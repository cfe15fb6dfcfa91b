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
#include <cjson/cJSON.h>

struct ctl;
struct k8s_client;

/*
 * Reviews a token (for audience, or the API server's when NULL). 0 when it
 * is authenticated: *ret_user gets status.user (the caller frees it); else
 * 401 (not valid) or 503 (the review failed), with why.
 */
unsigned int auth_review_token(struct k8s_client *kc, const char *token, const char *audience,
			       cJSON **ret_user, char *why, size_t whylen);
/*
 * May user (status.user of a review) get the policy (ns NULL: a cluster
 * policy)? 0 when allowed; else 403 or 503 with why.
 */
unsigned int auth_may_get_policy(struct k8s_client *kc, const cJSON *user, const char *ns,
				 const char *name, char *why, size_t whylen);

/* The auth thread: 0 or an errno; stops once ctl.stop is set and c->wake broadcast. */
int auth_start(struct ctl *c, pthread_t *ret);
#endif
