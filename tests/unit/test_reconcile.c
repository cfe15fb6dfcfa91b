// SPDX-License-Identifier: Apache-2.0
/*
 * The reconcile thread's timers, with a real thread and no API server (its
 * status writes fail at once): an OnDemand policy whose duration runs out
 * while this replica is no longer the leader, or after it was edited to be
 * Continuous, must not make the thread spin on a timer it cannot act on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "fake_api.h"
#include "controller.h"
#include "log.h"
#include "reconcile.h"
#include "server.h"
#include "fleet.pb-c.h"

static struct policy *parse_policy(const char *json)
{
	struct policy *p = calloc(1, sizeof(*p));
	cJSON *o = cJSON_Parse(json);

	assert_non_null(o);
	assert_non_null(p);
	assert_int_equal(policy_from_json(o, false, 250, p), 0);
	cJSON_Delete(o);
	return p;
}

static struct policy *policy(const char *mode_spec, int generation, const char *start)
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"generation\":%d},"
		 "\"spec\":{\"selector\":{\"podSelector\":{}},%s,\"sampling\":{\"frequencyHz\":19}},"
		 "\"status\":{\"startTime\":\"%s\"}}", generation, mode_spec, start);
	return parse_policy(json);
}

/* Under cache_lock (write). */
static void swap_policy_locked(struct ctl *c, struct policy *p)
{
	void *old = NULL;

	assert_int_equal(hmap_put(&c->policies, "P:n/p", p, &old), 0);
	if (old) {
		policy_free(old);
		free(old);
	}
}

static void put_policy(struct ctl *c, struct policy *p)
{
	pthread_rwlock_wrlock(&c->cache_lock);
	swap_policy_locked(c, p);
	pthread_rwlock_unlock(&c->cache_lock);
}

static uint64_t status_passes(struct ctl *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->rq.status_passes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* A controller as reconcile needs it: its locks, its waits on CLOCK_MONOTONIC,
 * the leader, an API server that refuses at once (status writes fail fast). */
static void ctl_for_test(struct ctl *c)
{
	pthread_condattr_t ca;

	assert_non_null(c);
	pthread_rwlock_init(&c->cache_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_cond_init(&c->rec_wake, &ca);
	pthread_condattr_destroy(&ca);
	c->kcfg.server = "http://127.0.0.1:1";
	c->opt.identity = "test";
	c->opt.store_retention_s = 3600;
	c->leader = true;
}

/* Stops the reconcile thread and frees what ctl_for_test's controller holds. */
static void ctl_stop_free(struct ctl *c, struct reconciler *r)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	reconcile_stop(r);
	pthread_rwlock_wrlock(&c->cache_lock);
	hmap_for_each(&c->policies, it) {
		policy_free(it->val);
		free(it->val);
	}
	hmap_free(&c->policies);
	pthread_rwlock_unlock(&c->cache_lock);
	hmap_free(&c->rq.policies);
	hmap_free(&c->rq.numbers);
	hmap_free(&c->rq.counted);
	hmap_free(&c->rq.lost);
	free(c);
}

/* The passes over one second, once the policy's 3 s have run out. */
static uint64_t passes_after(const char *change)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct reconciler *r;
	time_t started = time(NULL) - 1;
	char start[40];
	uint64_t a, b;

	ctl_for_test(c);
	k8s_time_format(started, start, sizeof(start));
	put_policy(c, policy("\"mode\":\"OnDemand\",\"durationSeconds\":3", 1, start));
	r = reconcile_start(c);
	assert_non_null(r);
	reconcile_resolve_soon(c);
	usleep(500000);
	if (!strcmp(change, "continuous")) {
		put_policy(c, policy("\"mode\":\"Continuous\"", 2, start));
	} else if (!strcmp(change, "follower")) {
		pthread_mutex_lock(&c->lock);
		c->leader = false;
		pthread_mutex_unlock(&c->lock);
	}
	reconcile_resolve_soon(c);
	sleep(3);	/* past the 3 s from the start */
	a = status_passes(c);
	sleep(1);
	b = status_passes(c);
	ctl_stop_free(c, r);
	return b - a;
}

static void test_follower_does_not_spin(void **state)
{
	(void)state;
	assert_true(passes_after("follower") <= 2);
}

static void test_edited_policy_does_not_spin(void **state)
{
	(void)state;
	assert_true(passes_after("continuous") <= 2);
}

/* PATCHes the fake took; *last gets the last one ("PATCH path body"). */
static int patches(struct fake *f, char *last, size_t len)
{
	int n = 0;

	pthread_mutex_lock(&f->lock);
	for (int i = 0; i < f->nreq; i++)
		if (!strncmp(f->reqs[i], "PATCH ", 6)) {
			n++;
			if (last)
				snprintf(last, len, "%s", f->reqs[i]);
		}
	pthread_mutex_unlock(&f->lock);
	return n;
}

static void policy_due(struct ctl *c)
{
	ctl_lock(c);
	reconcile_policy_due_locked(c, "n/p");
	ctl_unlock(c);
}

/*
 * A status the writer dropped unsent (leadership lost for a moment, out of
 * memory) is written again within RECONCILE_COUNTED_DELAY_MS although it did
 * not change. Before, it was not written until it changed, or for 5 minutes.
 */
static void test_lost_status_written_again(void **state)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct fake f;
	char server[64], first[sizeof(f.reqs[0])], again[sizeof(f.reqs[0])];
	struct reconciler *r;
	int n;

	(void)state;
	ctl_for_test(c);
	fake_start(&f);
	snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
	c->kcfg.server = server;
	/* the conditions as it writes them (so their lastTransitionTime stays: the
	 * fake does not write them back into the cache, as a watch would) */
	put_policy(c, parse_policy(
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"generation\":1},"
		"\"spec\":{\"selector\":{\"podSelector\":{}},\"mode\":\"Continuous\","
		"\"sampling\":{\"frequencyHz\":19}},\"status\":{\"conditions\":["
		"{\"type\":\"Accepted\",\"status\":\"True\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"},"
		"{\"type\":\"Ready\",\"status\":\"False\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"},"
		"{\"type\":\"Degraded\",\"status\":\"False\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}}"));
	r = reconcile_start(c);
	assert_non_null(r);
	reconcile_resolve_soon(c);
	/* written, until it settles (its numbers: at most once a second) */
	for (int i = 0, quiet = 0; i < 100 && quiet < 15; i++) {
		n = patches(&f, NULL, 0);
		usleep(100000);
		quiet = n && patches(&f, NULL, 0) == n ? quiet + 1 : 0;
	}
	n = patches(&f, first, sizeof(first));
	assert_true(n >= 1);
	policy_due(c);	/* unchanged: not written */
	usleep(500000);
	assert_int_equal(patches(&f, NULL, 0), n);
	reconcile_status_lost(c, "P:n/p");	/* due within 2 s, by itself */
	for (int i = 0; i < 400 && patches(&f, NULL, 0) == n; i++)
		usleep(10000);
	assert_int_equal(patches(&f, again, sizeof(again)), n + 1);
	assert_string_equal(again, first);	/* the same status, again */
	ctl_lock(c);
	assert_int_equal(c->stats.status_dropped, 1);
	assert_int_equal(c->rq.lost.n, 0);	/* taken */
	ctl_unlock(c);
	ctl_stop_free(c, r);
	fake_stop(&f);
}

/* A changed policy is matched within a few ms, not after the pods' 200 ms gap. */
static void test_policy_gap(void **state)
{
	(void)state;
	assert_int_equal(reconcile_gap_ms(false), RECONCILE_MIN_GAP_MS);
	assert_int_equal(reconcile_gap_ms(true), RECONCILE_POLICY_GAP_MS);
	assert_true(reconcile_gap_ms(true) <= 20 && reconcile_gap_ms(true) > 0);
}


/* ---- the rollout histogram: a rollout whose last ack comes with the next change ---- */

static struct policy *freq_policy(int generation, int hz)
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"generation\":%d},"
		 "\"spec\":{\"selector\":{\"podSelector\":{}},\"sampling\":{\"frequencyHz\":%d}}}",
		 generation, hz);
	return parse_policy(json);
}

static uint64_t node_version(struct ctl *c, struct node_state *ns)
{
	uint64_t v;

	ctl_lock(c);
	v = ns->version;
	ctl_unlock(c);
	return v;
}

static void wait_version_above(struct ctl *c, struct node_state *ns, uint64_t v)
{
	for (int i = 0; i < 300 && node_version(c, ns) <= v; i++)
		usleep(10000);
	assert_true(node_version(c, ns) > v);
}

/* Its agent acks the node's set (as server.c's handle_ack does). */
static void ack(struct ctl *c, struct node_state *ns)
{
	ctl_lock(c);
	if (ns->acked != ns->version)
		server_node_acked_locked(c, ns, ns->version);
	ctl_unlock(c);
}

/* A controller with one pod on node n1 whose agent is bound, and policy p at 19 Hz. */
static struct ctl *fleet_ctl(struct node_state **ret_ns)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct pod *pod = calloc(1, sizeof(*pod));
	cJSON *j = cJSON_Parse(
		"{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"uid\":\"pu\"},"
		"\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"app\"}]},"
		"\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\","
		"\"containerID\":\"containerd://00000000000000000000000000000000000000000000000000000000"
		"00000001\"}]}}");

	assert_non_null(c);
	assert_non_null(pod);
	assert_non_null(j);
	ctl_for_test(c);
	assert_int_equal(pod_from_json(j, pod), 0);
	cJSON_Delete(j);
	assert_int_equal(hmap_put(&c->pods, "pu", pod, NULL), 0);
	assert_int_equal(hmap_put(&c->policies, "P:n/p", freq_policy(1, 19), NULL), 0);
	ctl_lock(c);
	*ret_ns = server_node_state(c, "n1");
	assert_non_null(*ret_ns);
	(*ret_ns)->conn = (struct conn *)1;	/* an agent bound: only ever compared with NULL here */
	ctl_unlock(c);
	return c;
}

/* The reconcile thread of fleet_ctl's c, its node's first set waited for. */
static struct reconciler *fleet_start(struct ctl *c, struct node_state *ns)
{
	struct reconciler *r = reconcile_start(c);

	assert_non_null(r);
	reconcile_resolve_soon(c);
	wait_version_above(c, ns, 0);
	return r;
}

/* Stops r and frees c. */
static void fleet_ctl_free(struct ctl *c, struct reconciler *r, struct node_state *ns)
{
	ctl_lock(c);
	ns->conn = NULL;
	ctl_unlock(c);
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	reconcile_stop(r);
	server_stop(c);
	hmap_for_each(&c->policies, it) {
		policy_free(it->val);
		free(it->val);
	}
	hmap_free(&c->policies);
	hmap_for_each(&c->pods, it) {
		pod_free(it->val);
		free(it->val);
	}
	hmap_free(&c->pods);
	hmap_free(&c->rq.policies);
	hmap_free(&c->rq.numbers);
	hmap_free(&c->rq.counted);
	hmap_free(&c->rq.lost);
	free(c);
}

/* Policy p changed to hz (generation gen); its node's new set is waited for. */
static void change_policy(struct ctl *c, struct node_state *ns, int gen, int hz)
{
	uint64_t v = node_version(c, ns);

	pthread_rwlock_wrlock(&c->cache_lock);
	swap_policy_locked(c, freq_policy(gen, hz));
	pthread_rwlock_unlock(&c->cache_lock);
	reconcile_changed(c, RC_POLICY, NULL);
	wait_version_above(c, ns, v);
}

/*
 * Two changes of one policy on one node: the first's rollout ends with its
 * agent's ack; then the second change comes, after a pass or in the same pass
 * as that ack. The rollouts counted.
 */
static uint64_t rollouts_counted(bool same_pass)
{
	struct node_state *ns;
	struct ctl *c = fleet_ctl(&ns);
	struct reconciler *r;
	uint64_t v, n;

	r = fleet_start(c, ns);
	ack(c, ns);
	usleep(100000);

	/* the first change, its set, a pass */
	change_policy(c, ns, 2, 20);
	usleep(100000);
	v = node_version(c, ns);

	/* its ack, then the second change: no pass between them while cache_lock is held */
	if (same_pass)
		pthread_rwlock_wrlock(&c->cache_lock);
	ack(c, ns);
	if (!same_pass) {
		usleep(100000);
		pthread_rwlock_wrlock(&c->cache_lock);
	}
	swap_policy_locked(c, freq_policy(3, 21));
	pthread_rwlock_unlock(&c->cache_lock);
	reconcile_changed(c, RC_POLICY, NULL);
	wait_version_above(c, ns, v);
	usleep(100000);

	ctl_lock(c);
	n = c->rollout_count;
	ctl_unlock(c);
	fleet_ctl_free(c, r, ns);
	return n;
}

/*
 * An API server that takes status writes and never answers them: a policy's
 * next change still gets its node's set at once. Before the status writer,
 * the reconcile thread waited for the write (30 s) before its next pass.
 */
static void test_status_write_does_not_hold_up_sets(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);	/* listens, never accepts */
	struct node_state *ns;
	struct ctl *c = fleet_ctl(&ns);
	struct reconciler *r;
	char server[64];

	(void)state;
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(server, sizeof(server), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	c->kcfg.server = server;
	r = fleet_start(c, ns);
	{	/* its status write is under way, unanswered: a connection waits */
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 5000), 1);
	}
	change_policy(c, ns, 2, 20);
	change_policy(c, ns, 3, 21);
	fleet_ctl_free(c, r, ns);
	close(lfd);
}

static void test_rollout_acked_before_next_change(void **state)
{
	(void)state;
	assert_int_equal(rollouts_counted(false), 1);
}

/* It failed before rollout_settle: the second change's pass hid the first's end. */
static void test_rollout_acked_with_next_change(void **state)
{
	(void)state;
	assert_int_equal(rollouts_counted(true), 1);
}

static double now_s(void)
{
	return (double)mono_ns() / 1e9;
}

/*
 * A rollout lasts from its change to its last agent's ack, not to the status
 * pass that sees it, RECONCILE_NUMBERS_DELAY_MS or more later, nor to the ack
 * of a later set of that node (pods came or went) before that pass. Before,
 * the pass's time was taken.
 */
static void test_rollout_ends_at_ack(void **state)
{
	struct node_state *ns;
	struct ctl *c = fleet_ctl(&ns);
	struct reconciler *r;
	double t0, t_ack, sum;
	int64_t ack_ms;
	uint64_t n;

	(void)state;
	r = fleet_start(c, ns);
	ack(c, ns);
	usleep(600000);
	t0 = now_s();
	change_policy(c, ns, 2, 20);	/* its set is built: the agent takes 300 ms */
	usleep(300000);
	ack(c, ns);
	ctl_lock(c);
	ack_ms = ns->acks[NODE_ACKS_KEPT - 1].ms;
	ctl_unlock(c);
	t_ack = (double)ack_ms / 1000;
	usleep(100000);
	ctl_lock(c);	/* a later set of the node, acked before the pass */
	ns->version++;
	ctl_unlock(c);
	ack(c, ns);
	for (int i = 0; i < 300; i++) {
		ctl_lock(c);
		n = c->rollout_count;
		sum = c->rollout_sum_s;
		ctl_unlock(c);
		if (n)
			break;
		usleep(10000);
	}
	assert_int_equal(n, 1);
	/* from the change (a little after t0) to the ack (both in whole ms there) */
	assert_true(sum <= t_ack - t0 + 0.002);
	assert_true(sum >= t_ack - t0 - 0.1);
	fleet_ctl_free(c, r, ns);
}

/*
 * Acks of many agents one after another (one every 2 ms here) are a few
 * status passes, not one each: each pass walks every node of every policy.
 */
static void test_acks_are_few_passes(void **state)
{
	struct node_state *ns;
	struct ctl *c = fleet_ctl(&ns);
	struct reconciler *r;
	uint64_t a, b;

	(void)state;
	r = fleet_start(c, ns);
	usleep(500000);
	a = status_passes(c);
	for (int i = 0; i < 100; i++) {
		ctl_lock(c);	/* a set of its own each: a real ack each */
		ns->version++;
		ctl_unlock(c);
		ack(c, ns);
		usleep(2000);
	}
	usleep(2 * RECONCILE_NUMBERS_DELAY_MS * 1000);
	b = status_passes(c);
	assert_true(b > a);	/* the acks were seen */
	assert_true(b - a <= 10);	/* 100 at once, each a pass, before */
	fleet_ctl_free(c, r, ns);
}

/* The node's policies as the server holds them, joined by ",", and their array. */
static const void *node_policies(struct ctl *c, struct node_state *ns, char *out, size_t len)
{
	const void *arr;
	size_t o = 0;

	ctl_lock(c);
	out[0] = 0;
	for (int i = 0; i < ns->npolicies; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "", ns->policies[i]);
	arr = ns->policies;
	ctl_unlock(c);
	return arr;
}

/*
 * The node's policies follow its set: kept as they are (not made again) when
 * the set changed and they did not, replaced when a policy comes or goes.
 */
static void test_node_policies_follow_set(void **state)
{
	struct node_state *ns;
	struct ctl *c = fleet_ctl(&ns);
	struct reconciler *r;
	const void *arr;
	char got[256];
	uint64_t v;

	(void)state;
	r = fleet_start(c, ns);
	arr = node_policies(c, ns, got, sizeof(got));
	assert_string_equal(got, "P:n/p");
	change_policy(c, ns, 2, 20);	/* a new set, the same policies */
	assert_ptr_equal(node_policies(c, ns, got, sizeof(got)), arr);
	assert_string_equal(got, "P:n/p");

	v = node_version(c, ns);	/* another policy selects the pod */
	pthread_rwlock_wrlock(&c->cache_lock);
	assert_int_equal(hmap_put(&c->policies, "P:n/q", parse_policy(
		"{\"metadata\":{\"name\":\"q\",\"namespace\":\"n\",\"uid\":\"uq\",\"generation\":1},"
		"\"spec\":{\"selector\":{\"podSelector\":{}},\"sampling\":{\"frequencyHz\":7}}}"),
		NULL), 0);
	pthread_rwlock_unlock(&c->cache_lock);
	reconcile_changed(c, RC_POLICY, NULL);
	wait_version_above(c, ns, v);
	node_policies(c, ns, got, sizeof(got));
	assert_string_equal(got, "P:n/p,P:n/q");

	v = node_version(c, ns);	/* and goes */
	pthread_rwlock_wrlock(&c->cache_lock);
	{
		struct policy *q = hmap_del(&c->policies, "P:n/q");

		policy_free(q);
		free(q);
	}
	pthread_rwlock_unlock(&c->cache_lock);
	reconcile_changed(c, RC_POLICY, NULL);
	wait_version_above(c, ns, v);
	node_policies(c, ns, got, sizeof(got));
	assert_string_equal(got, "P:n/p");
	fleet_ctl_free(c, r, ns);
}

/* ---- many nodes: the sets built and encoded on several threads at once ---- */

#define MANY 300

/* Every node's set holds its own pod, at hz: the chunks built on several
 * threads at once put each node's set where it belongs. */
static void check_sets(struct ctl *c, struct node_state **ns, const uint64_t *was, int hz)
{
	for (int i = 0; i < MANY; i++) {
		char uid[32];
		Profleet__Fleet__V1__ControllerMessage *m;

		for (int k = 0; k < 500 && node_version(c, ns[i]) <= was[i]; k++)
			usleep(10000);
		assert_true(node_version(c, ns[i]) > was[i]);
		snprintf(uid, sizeof(uid), "pu-%d", i);
		ctl_lock(c);
		m = profleet__fleet__v1__controller_message__unpack(NULL, ns[i]->msg_len, ns[i]->msg);
		ctl_unlock(c);
		assert_non_null(m);
		assert_non_null(m->targets);
		assert_int_equal(m->targets->n_targets, 1);
		assert_string_equal(m->targets->targets[0]->pod_uid, uid);
		assert_int_equal(m->targets->targets[0]->frequency_hz, hz);
		profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
	}
}

static void test_many_nodes_on_threads(void **state)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct node_state *ns[MANY];
	uint64_t was[MANY] = { 0 };
	struct reconciler *r;

	(void)state;
	assert_non_null(c);
	ctl_for_test(c);
	c->opt.reconcile_threads = 2;
	for (int i = 0; i < MANY; i++) {
		struct pod *pod = calloc(1, sizeof(*pod));
		char json[1024], node[16], uid[32];
		cJSON *j;

		snprintf(node, sizeof(node), "n%d", i);
		snprintf(uid, sizeof(uid), "pu-%d", i);
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"name\":\"a%d\",\"namespace\":\"n\",\"uid\":\"%s\"},"
			 "\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"app\"}]},"
			 "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":"
			 "\"app\",\"containerID\":\"containerd://%064d\"}]}}", i, uid, node, i + 1);
		j = cJSON_Parse(json);
		assert_non_null(pod);
		assert_non_null(j);
		assert_int_equal(pod_from_json(j, pod), 0);
		cJSON_Delete(j);
		assert_int_equal(hmap_put(&c->pods, uid, pod, NULL), 0);
		ctl_lock(c);
		ns[i] = server_node_state(c, node);
		assert_non_null(ns[i]);
		ns[i]->conn = (struct conn *)1;
		ctl_unlock(c);
	}
	assert_int_equal(hmap_put(&c->policies, "P:n/p", freq_policy(1, 19), NULL), 0);
	r = reconcile_start(c);
	assert_non_null(r);
	reconcile_resolve_soon(c);
	check_sets(c, ns, was, 19);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < MANY; i++)
			was[i] = node_version(c, ns[i]);
		pthread_rwlock_wrlock(&c->cache_lock);
		swap_policy_locked(c, freq_policy(2 + round, 20 + round));
		pthread_rwlock_unlock(&c->cache_lock);
		reconcile_changed(c, RC_POLICY, NULL);
		check_sets(c, ns, was, 20 + round);
	}
	ctl_lock(c);
	for (int i = 1; i < MANY; i++)	/* fleet_ctl_free unbinds the first */
		ns[i]->conn = NULL;
	ctl_unlock(c);
	fleet_ctl_free(c, r, ns[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follower_does_not_spin),
		cmocka_unit_test(test_edited_policy_does_not_spin),
		cmocka_unit_test(test_policy_gap),
		cmocka_unit_test(test_lost_status_written_again),
		cmocka_unit_test(test_rollout_acked_before_next_change),
		cmocka_unit_test(test_rollout_acked_with_next_change),
		cmocka_unit_test(test_rollout_ends_at_ack),
		cmocka_unit_test(test_acks_are_few_passes),
		cmocka_unit_test(test_node_policies_follow_set),
		cmocka_unit_test(test_status_write_does_not_hold_up_sets),
		cmocka_unit_test(test_many_nodes_on_threads),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
