// SPDX-License-Identifier: Apache-2.0
/*
 * The controller's handling of agents' frames, without a socket: what an
 * agent may upload into the built-in store (only policies its node holds, or
 * held within FLEET_UPLOAD_GRACE_S), and that the upload is stored once its
 * worker job runs.
 */
#include <time.h>

#include "helpers.h"
#include "auth.h"
#include "controller.h"
#include "fleet.pb-c.h"
#include "pprof.h"
#include "profile.h"
#include "server.h"
#include "store.h"
#include "workq.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "server");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

struct fixture {
	struct ctl c;
	struct policy web;	/* shop/web: no backend, so its profiles go to the store */
	struct conn cn;
};

static void fixture_init(struct fixture *f)
{
	struct store_opts o = { .dir = dir, .max_bytes = 1 << 20, .retention_s = 3600 };
	char err[256];

	memset(f, 0, sizeof(*f));
	pthread_rwlock_init(&f->c.cache_lock, NULL);
	pthread_mutex_init(&f->c.lock, NULL);
	pthread_cond_init(&f->c.wake, NULL);
	pthread_cond_init(&f->c.rec_wake, NULL);
	f->c.store = store_open(&o, err, sizeof(err));
	assert_non_null(f->c.store);
	f->web.ns = "shop";
	f->web.name = "web";
	f->web.key = "shop/web";
	assert_int_equal(hmap_put(&f->c.policies, "P:shop/web", &f->web, NULL), 0);
}

static void fixture_free(struct fixture *f)
{
	server_stop(&f->c);	/* no context: frees the node states */
	hmap_free(&f->c.policies);
	hmap_free(&f->c.rq.policies);
	hmap_free(&f->c.rq.numbers);
	hmap_free(&f->c.rq.counted);
	store_close(f->c.store);
}

/* A node's state holding the policy key held (or none), after it held released then. */
static struct node_state *node(struct fixture *f, const char *name, const char *held,
			       const char *released, int64_t released_at)
{
	struct node_state *ns = server_node_state(&f->c, name);
	char **p;

	assert_non_null(ns);
	if (released) {	/* the set that held it, then the next one without it */
		p = calloc(1, sizeof(char *));
		p[0] = strdup(released);
		server_node_set_policies(ns, p, 1, released_at);
		server_node_set_policies(ns, NULL, 0, released_at);
	}
	if (held) {
		p = calloc(1, sizeof(char *));
		p[0] = strdup(held);
		server_node_set_policies(ns, p, 1, time(NULL));
	}
	return ns;
}

/* An upload frame of one small profile for the policy key. */
static uint8_t *upload_frame(const char *policy, size_t *ret_len)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	Profleet__Fleet__V1__ProfileUpload u = PROFLEET__FLEET__V1__PROFILE_UPLOAD__INIT;
	struct profile *p = profile__new();
	struct prof_mapping pm = { .start = 0x1000, .limit = 0x2000, .file = "/app/bin" };
	struct prof_location l = { .mapping = 0, .address = 0x1100, .function = "main" };
	uint32_t stack[] = { 0 };
	char *keys[] = { (char *)policy };
	uint8_t *gz, *out;
	size_t gzlen;

	assert_non_null(p);
	p->period_nanos = 10000000;
	assert_int_equal(profile__add_mapping(p, &pm), 0);
	assert_int_equal(profile__add_location(p, &l), 0);
	assert_true(profile__add_sample(p, stack, 1, 3, NULL, 0) >= 0);
	assert_int_equal(pprof__encode(p, true, &gz, &gzlen), 0);
	profile__free(p);
	u.id = 7;
	u.n_policies = 1;
	u.policies = keys;
	u.from_unix = time(NULL) - 10;
	u.until_unix = time(NULL);
	u.pprof_gz.data = gz;
	u.pprof_gz.len = gzlen;
	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_PROFILE;
	m.profile = &u;
	*ret_len = profleet__fleet__v1__agent_message__get_packed_size(&m);
	out = malloc(*ret_len);
	assert_non_null(out);
	profleet__fleet__v1__agent_message__pack(&m, out);
	free(gz);
	return out;
}

/* Node's agent uploads for shop/web; returns the store's profiles after. */
static uint64_t upload_from(struct fixture *f, const char *node_name)
{
	struct store_stats st;
	struct workq_item *it;
	void *upload = NULL;
	size_t len;
	uint8_t *frame = upload_frame("shop/web", &len);

	memset(&f->cn, 0, sizeof(f->cn));
	f->cn.id = 1;
	f->cn.auth = AUTH_OK;
	snprintf(f->cn.node, sizeof(f->cn.node), "%s", node_name);
	assert_true(server_handle_frame(&f->c, &f->cn, frame, len, &upload));
	free(frame);
	assert_non_null(upload);
	it = upload;	/* what the store worker runs */
	it->work(it);
	server_upload_free(upload);
	store_stats(f->c.store, &st);
	return st.files;
}

static void test_upload_only_into_held_policies(void **state)
{
	struct fixture f;
	int64_t now = time(NULL);

	(void)state;
	fixture_init(&f);
	pthread_mutex_lock(&f.c.lock);
	node(&f, "node-a", "P:shop/web", NULL, 0);
	node(&f, "node-b", NULL, NULL, 0);
	node(&f, "node-c", NULL, "P:shop/web", now - 5);
	node(&f, "node-d", NULL, "P:shop/web", now - FLEET_UPLOAD_GRACE_S - 1);
	pthread_mutex_unlock(&f.c.lock);
	assert_int_equal(upload_from(&f, "node-b"), 0);	/* never held it */
	assert_int_equal(upload_from(&f, "node-x"), 0);	/* no such node */
	assert_int_equal(upload_from(&f, "node-d"), 0);	/* released too long ago */
	assert_int_equal(upload_from(&f, "node-a"), 1);	/* holds it */
	assert_int_equal(upload_from(&f, "node-c"), 2);	/* released 5 s ago */
	fixture_free(&f);
}

/* An agent's connection is matched to its pod's IPs as addresses, not strings. */
static void test_agent_address(void **state)
{
	(void)state;
	assert_true(auth_addr_in_list("10.0.0.7", "10.0.0.7"));
	assert_true(auth_addr_in_list("::ffff:10.0.0.7", "10.0.0.7"));
	assert_true(auth_addr_in_list("10.0.0.7", "fd00::7,10.0.0.7"));
	assert_true(auth_addr_in_list("fd00:0:0::7", "10.0.0.7,fd00::7"));
	assert_false(auth_addr_in_list("10.0.0.70", "10.0.0.7"));
	assert_false(auth_addr_in_list("10.0.0.7", "10.0.0.70,10.0.0.8"));
	assert_false(auth_addr_in_list("127.0.0.1", "10.0.0.7"));
	assert_false(auth_addr_in_list("", "10.0.0.7"));
	assert_false(auth_addr_in_list("garbage", "garbage"));
	assert_false(auth_addr_in_list("10.0.0.7", ""));
	assert_false(auth_addr_in_list("10.0.0.7", ",,10.0.0.7x,"));
	assert_true(auth_addr_in_list("10.0.0.7", ",,10.0.0.7,"));
}

/* Node states of nodes gone (no agent, no targets, grace over) are forgotten; no others. */
static void test_sweep_nodes(void **state)
{
	struct fixture f;
	int64_t now = time(NULL);
	struct node_state *ns;

	(void)state;
	fixture_init(&f);
	pthread_mutex_lock(&f.c.lock);
	node(&f, "gone", NULL, NULL, 0)->idle_since = now - FLEET_UPLOAD_GRACE_S - 1;
	node(&f, "just-left", NULL, NULL, 0)->idle_since = now - 5;
	node(&f, "holds", "P:shop/web", NULL, 0)->idle_since = now - FLEET_UPLOAD_GRACE_S - 1;
	ns = node(&f, "connected", NULL, NULL, 0);
	ns->idle_since = 0;
	ns->conn = &f.cn;
	server_sweep_nodes(&f.c, now);
	assert_null(hmap_get(&f.c.node_states, "gone"));
	assert_non_null(hmap_get(&f.c.node_states, "just-left"));
	assert_non_null(hmap_get(&f.c.node_states, "holds"));
	assert_non_null(hmap_get(&f.c.node_states, "connected"));
	ns->conn = NULL;
	pthread_mutex_unlock(&f.c.lock);
	fixture_free(&f);
}

/* A new set releases (for the grace time) only the policies it no longer holds. */
static void test_release_only_left_policies(void **state)
{
	struct fixture f;
	struct node_state *ns;
	char **p = calloc(3, sizeof(char *)), **q = calloc(2, sizeof(char *));
	int64_t now = time(NULL);

	(void)state;
	fixture_init(&f);
	pthread_mutex_lock(&f.c.lock);
	ns = server_node_state(&f.c, "n1");
	p[0] = strdup("C:all");
	p[1] = strdup("P:shop/db");
	p[2] = strdup("P:shop/web");
	server_node_set_policies(ns, p, 3, now);
	assert_int_equal(ns->released.n, 0);
	q[0] = strdup("C:all");
	q[1] = strdup("P:shop/web");
	server_node_set_policies(ns, q, 2, now);
	assert_int_equal(ns->released.n, 1);
	assert_non_null(hmap_get(&ns->released, "shop/db"));
	assert_null(hmap_get(&ns->released, "shop/web"));
	assert_null(hmap_get(&ns->released, "all"));
	server_node_set_policies(ns, NULL, 0, now);
	assert_int_equal(ns->released.n, 3);
	pthread_mutex_unlock(&f.c.lock);
	fixture_free(&f);
}

/* An upload before the agent is accepted closes the connection, and none is made. */
static void test_upload_before_accept(void **state)
{
	struct fixture f;
	void *upload = NULL;
	size_t len;
	uint8_t *frame = upload_frame("shop/web", &len);

	(void)state;
	fixture_init(&f);
	f.cn.id = 2;
	f.cn.auth = AUTH_PENDING;
	assert_false(server_handle_frame(&f.c, &f.cn, frame, len, &upload));
	assert_null(upload);
	free(frame);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upload_only_into_held_policies),
		cmocka_unit_test(test_upload_before_accept),
		cmocka_unit_test(test_sweep_nodes),
		cmocka_unit_test(test_release_only_left_policies),
		cmocka_unit_test(test_agent_address),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
