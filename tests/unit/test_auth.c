// SPDX-License-Identifier: Apache-2.0
/*
 * An agent's Hello reviewed (auth_review_agent) against a fake API server's
 * TokenReview answers and the controller's pod cache: every reason to refuse,
 * which of them may pass soon (retry), and the one way in. A token seen is
 * answered from the cache without asking again.
 */
#include <time.h>

#include "helpers.h"
#include "fake_api.h"
#include "auth.h"
#include "controller.h"
#include "k8s.h"
#include "log.h"

#define SA "system:serviceaccount:profleet:profleet-agent"

struct fixture {
	struct fake f;
	char server[64];
	struct ctl c;
	struct k8s_client *kc;
	struct pod pod;		/* profleet/agent-x: uid u-1 on node n1 at 10.0.0.7 */
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	fake_start(&x->f);
	snprintf(x->server, sizeof(x->server), "http://127.0.0.1:%d", x->f.port);
	pthread_rwlock_init(&x->c.cache_lock, NULL);
	x->c.kcfg.server = x->server;
	x->c.opt.agent_sa_ns = "profleet";
	x->c.opt.agent_sa_name = "profleet-agent";
	x->c.opt.agent_audience = "profleet";
	x->c.auth_cache = auth_cache_new();
	assert_non_null(x->c.auth_cache);
	x->kc = k8s_client_new(&x->c.kcfg);
	assert_non_null(x->kc);
	x->pod = (struct pod){ .ns = "profleet", .name = "agent-x", .uid = "u-1", .node = "n1",
			       .ips = "10.0.0.7,fd00::7" };
	assert_int_equal(hmap_put(&x->c.pods_by_name, "profleet/agent-x", &x->pod, NULL), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;

	k8s_client_free(x->kc);
	auth_cache_free(x->c.auth_cache);
	hmap_free(&x->c.pods_by_name);
	pthread_rwlock_destroy(&x->c.cache_lock);
	fake_stop(&x->f);
	free(x);
	return 0;
}

/* The fake's answer to the next review. */
static void answer(struct fixture *x, int code, const char *body)
{
	pthread_mutex_lock(&x->f.lock);
	x->f.answer_code = code;
	snprintf(x->f.answer, sizeof(x->f.answer), "%s", body);
	pthread_mutex_unlock(&x->f.lock);
}

/* An authenticated user with the pod binding's extra fields (pod name, pod uid). */
static void bound(struct fixture *x, const char *user, const char *pod, const char *uid)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"%s\",\"extra\":{"
		 "\"authentication.kubernetes.io/pod-name\":[\"%s\"],"
		 "\"authentication.kubernetes.io/pod-uid\":[\"%s\"]}}}}", user, pod, uid);
	answer(x, 201, body);
}

/* Reviews token for node from peer: the verdict; *why and *retry as returned. */
static bool review(struct fixture *x, const char *token, const char *node, const char *peer,
		   char *why, size_t len, bool *retry)
{
	*why = 0;
	*retry = false;
	return auth_review_agent(&x->c, x->kc, token, node, peer, why, len, retry);
}

/* Refused, with why containing want and retry as expected. */
static void refused(struct fixture *x, const char *token, const char *node, const char *peer,
		    const char *want, bool want_retry)
{
	char why[256];
	bool retry;

	assert_false(review(x, token, node, peer, why, sizeof(why), &retry));
	if (!strstr(why, want))
		fail_msg("token %s: '%s' does not say '%s'", token, why, want);
	assert_int_equal(retry, want_retry);
}

/* The last request the fake took holds each of want (NULL-terminated). */
static void last_request_has(struct fixture *x, const char *const *want)
{
	char req[sizeof(x->f.reqs[0])];

	pthread_mutex_lock(&x->f.lock);
	assert_true(x->f.nreq > 0);
	snprintf(req, sizeof(req), "%s", x->f.reqs[x->f.nreq - 1]);
	pthread_mutex_unlock(&x->f.lock);
	for (; *want; want++)
		if (!strstr(req, *want))
			fail_msg("'%s' lacks '%s'", req, *want);
}

static void test_review_refusals(void **state)
{
	struct fixture *x = *state;
	int n;

	refused(x, "", "n1", "10.0.0.7", "no token", false);
	assert_int_equal(nreq(&x->f), 0);	/* nothing asked to say no */
	answer(x, 201, "{\"status\":{\"authenticated\":false,\"error\":\"token expired\"}}");
	refused(x, "t-expired", "n1", "10.0.0.7", "not authenticated: token expired", false);
	/* the review asked: of this token, for the agents' audience (a token made
	 * for another service is refused by the API server) */
	last_request_has(x, (const char *const[]){ "POST /apis/authentication.k8s.io/v1/tokenreviews ",
		"\"kind\":\"TokenReview\"", "\"token\":\"t-expired\"",
		"\"audiences\":[\"profleet\"]", NULL });
	answer(x, 500, "{}");
	refused(x, "t-500", "n1", "10.0.0.7", "token review failed", true);
	answer(x, 403, "{}");	/* the controller may not review: for good */
	refused(x, "t-403", "n1", "10.0.0.7", "token review failed", false);
	bound(x, "system:serviceaccount:default:default", "agent-x", "u-1");
	refused(x, "t-user", "n1", "10.0.0.7", "is not the agents' service account", false);
	answer(x, 201, "{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"" SA "\"}}}");
	refused(x, "t-unbound", "n1", "10.0.0.7", "not bound to a pod", false);
	bound(x, SA, "agent-new", "u-9");	/* not in the cache yet: may be soon */
	refused(x, "t-nopod", "n1", "10.0.0.7", "agent pod profleet/agent-new not found", true);
	bound(x, SA, "agent-x", "u-old");	/* a token of the pod that had the name */
	refused(x, "t-uid", "n1", "10.0.0.7", "was replaced (uid mismatch)", false);
	bound(x, SA, "agent-x", "u-1");	/* replayed as another node */
	refused(x, "t-node", "n2", "10.0.0.7", "runs on node 'n1', not 'n2'", false);
	n = nreq(&x->f);
	refused(x, "t-node", "n1", "10.9.9.9",	/* replayed from elsewhere */
		"has IP 10.0.0.7,fd00::7; this connection comes from 10.9.9.9", false);
	assert_int_equal(nreq(&x->f), n);	/* the token's review taken from the cache */
}

static void test_review_passes(void **state)
{
	struct fixture *x = *state;
	uint64_t hits0, hits1, misses0, misses1;
	char why[256];
	bool retry;

	bound(x, SA, "agent-x", "u-1");
	assert_true(review(x, "t-good", "n1", "10.0.0.7", why, sizeof(why), &retry));
	assert_true(review(x, "t-good2", "n1", "::ffff:10.0.0.7", why, sizeof(why), &retry));
	assert_true(review(x, "t-good3", "n1", "fd00:0::7", why, sizeof(why), &retry));
	/* answered from the cache: the API server is not asked again, whatever it says */
	answer(x, 500, "{}");
	auth_cache_counts(x->c.auth_cache, &hits0, &misses0);
	assert_true(review(x, "t-good", "n1", "10.0.0.7", why, sizeof(why), &retry));
	auth_cache_counts(x->c.auth_cache, &hits1, &misses1);
	assert_int_equal(nreq(&x->f), 3);
	assert_int_equal(hits1, hits0 + 1);
	assert_int_equal(misses1, misses0);
	/* a pod without an IP yet: may pass soon; with the address check off, it passes */
	x->pod.ips = NULL;
	bound(x, SA, "agent-x", "u-1");
	refused(x, "t-noip", "n1", "10.0.0.7", "has no IP yet", true);
	x->c.opt.no_agent_address_check = true;
	assert_true(review(x, "t-noip2", "n1", "10.9.9.9", why, sizeof(why), &retry));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_review_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_review_passes, setup, teardown),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
