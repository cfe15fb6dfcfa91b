// SPDX-License-Identifier: Apache-2.0
/*
 * The status writer (controller/writer.c) against a fake API server on
 * 127.0.0.1: a status not yet sent is replaced by a newer one of its policy,
 * Events keep their order and their bound and take turns with statuses, a
 * failed PATCH is tried again (not a 404, nor one of a policy gone or made
 * again), a follower writes nothing, and a write under way is given up at stop.
 */
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "fake_api.h"
#include "controller.h"
#include "log.h"
#include "reconcile.h"
#include "writer.h"

static struct ctl *ctl_new(struct fake *f, char *server, size_t len)
{
	struct ctl *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_rwlock_init(&c->cache_lock, NULL);
	snprintf(server, len, "http://127.0.0.1:%d", f->port);
	c->kcfg.server = server;
	c->leader = true;
	return c;
}

static void ctl_free(struct ctl *c)
{
	hmap_for_each(&c->policies, it) {
		policy_free(it->val);
		free(it->val);
	}
	hmap_free(&c->policies);
	hmap_free(&c->rq.lost);
	hmap_free(&c->rq.numbers);
	hmap_free(&c->rq.counted);
	pthread_rwlock_destroy(&c->cache_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct status_write *sw(const char *method, const char *path, const char *body)
{
	struct status_write *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->method = method;
	w->path = strdup(path);
	w->body = strdup(body);
	return w;
}

/* A list of writes, in the order given. */
static struct status_write *list(int n, struct status_write **v)
{
	for (int i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	return v[0];
}

static uint64_t stat_of(struct ctl *c, const uint64_t *field)
{
	uint64_t v;

	ctl_lock(c);
	v = *field;
	ctl_unlock(c);
	return v;
}

/* The fake, a controller that leads, its writer (fail_first: /fail's 500s). */
static struct writer *start_all(struct fake *f, char *server, size_t len, struct ctl **ret_c,
				int fail_first)
{
	struct writer *wr;

	fake_start(f);
	f->fail_first = fail_first;
	*ret_c = ctl_new(f, server, len);
	wr = writer_start(*ret_c, reconcile_status_lost);
	assert_non_null(wr);
	return wr;
}

static void stop_all(struct fake *f, struct ctl *c, struct writer *wr)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	writer_stop(wr);
	fake_stop(f);
	ctl_free(c);
}

/* Lets /hang answer. */
static void release(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->release = 1;
	pthread_mutex_unlock(&f->lock);
}

/* While a write hangs, a policy's second status replaces its first; Events
 * stay in order and take turns with the statuses. */
static void test_newer_replaces_pending(void **state)
{
	struct fake f;
	char server[64];
	struct ctl *c;
	struct writer *wr;

	(void)state;
	wr = start_all(&f, server, sizeof(server), &c, 0);
	writer_put(wr, sw("PATCH", "/hang", "h"));
	assert_int_equal(wait_reqs(&f, 1), 1);
	writer_put(wr, list(3, (struct status_write *[]){ sw("PATCH", "/p/x", "x1"),
		   sw("POST", "/events", "e1"), sw("PATCH", "/p/y", "y1") }));
	writer_put(wr, list(2, (struct status_write *[]){ sw("PATCH", "/p/x", "x2"),
		   sw("POST", "/events", "e2") }));
	assert_int_equal(writer_pending(wr), 4);	/* x2, y1, e1, e2 */
	release(&f);
	assert_int_equal(wait_reqs(&f, 5), 5);
	usleep(200000);	/* nothing more comes */
	assert_int_equal(nreq(&f), 5);
	/* Events in order, a status after each (x's newer one only, x and y in
	 * either order) */
	assert_string_equal(f.reqs[1], "POST /events e1");
	assert_string_equal(f.reqs[3], "POST /events e2");
	assert_true((!strcmp(f.reqs[2], "PATCH /p/x x2") && !strcmp(f.reqs[4], "PATCH /p/y y1")) ||
		    (!strcmp(f.reqs[2], "PATCH /p/y y1") && !strcmp(f.reqs[4], "PATCH /p/x x2")));
	assert_int_equal(writer_pending(wr), 0);
	assert_int_equal(stat_of(c, &c->stats.status_writes), 3);	/* /hang, x, y */
	stop_all(&f, c, wr);
}

/* Events over the bound, while the API server does not answer: dropped, counted. */
static void test_events_bounded(void **state)
{
	struct fake f;
	char server[64];
	struct ctl *c;
	struct writer *wr;
	struct timespec t0, t1;

	(void)state;
	wr = start_all(&f, server, sizeof(server), &c, 0);
	writer_put(wr, sw("PATCH", "/hang", "h"));
	assert_int_equal(wait_reqs(&f, 1), 1);
	for (int i = 0; i < WRITER_MAX_EVENTS + 44; i++)
		writer_put(wr, sw("POST", "/events", "e"));
	assert_int_equal(writer_pending(wr), WRITER_MAX_EVENTS);
	assert_int_equal(stat_of(c, &c->stats.events_dropped), 44);
	/* stopping gives the hanging write up: not its 10 s */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	writer_stop(wr);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2);	/* (a request's progress is looked at each second) */
	assert_int_equal(nreq(&f), 1);
	fake_stop(&f);
	ctl_free(c);
}

/* A PATCH answered 500 is sent again (WRITER_RETRY_S later), then written. */
static void test_failed_patch_retried(void **state)
{
	struct fake f;
	char server[64];
	struct ctl *c;
	struct writer *wr;

	(void)state;
	wr = start_all(&f, server, sizeof(server), &c, 1);
	writer_put(wr, sw("PATCH", "/fail", "s1"));
	assert_int_equal(wait_reqs(&f, 1), 1);
	for (int i = 0; i < 100 && stat_of(c, &c->stats.status_errors) < 1; i++)
		usleep(10000);
	assert_int_equal(writer_pending(wr), 1);	/* waiting for its retry */
	for (int i = 0; i < 1000 && nreq(&f) < 2; i++)
		usleep(10000);
	assert_int_equal(nreq(&f), 2);
	assert_string_equal(f.reqs[1], "PATCH /fail s1");
	for (int i = 0; i < 100 && stat_of(c, &c->stats.status_writes) < 1; i++)
		usleep(10000);
	assert_int_equal(stat_of(c, &c->stats.status_errors), 1);
	assert_int_equal(stat_of(c, &c->stats.status_writes), 1);
	assert_int_equal(writer_pending(wr), 0);
	stop_all(&f, c, wr);
}

/* A status for the policy of the cache key "P:n/name" with that uid. */
static struct status_write *policy_sw(const char *name, const char *uid, const char *body)
{
	char path[64], key[64];
	struct status_write *w;

	snprintf(path, sizeof(path), "/p/%s", name);
	snprintf(key, sizeof(key), "P:n/%s", name);
	w = sw("PATCH", path, body);
	w->policy = strdup(key);
	w->uid = strdup(uid);
	return w;
}

/* No longer the leader: what is queued is dropped, not written. */
static void test_follower_writes_nothing(void **state)
{
	struct fake f;
	char server[64];
	struct ctl *c;
	struct writer *wr;

	(void)state;
	wr = start_all(&f, server, sizeof(server), &c, 0);
	writer_put(wr, sw("PATCH", "/hang", "h"));
	assert_int_equal(wait_reqs(&f, 1), 1);
	writer_put(wr, list(2, (struct status_write *[]){ policy_sw("x", "u", "x1"),
		   sw("POST", "/events", "e1") }));
	ctl_lock(c);
	c->leader = false;
	ctl_unlock(c);
	release(&f);
	for (int i = 0; i < 500 && writer_pending(wr); i++)
		usleep(10000);
	assert_int_equal(writer_pending(wr), 0);
	usleep(200000);
	assert_int_equal(nreq(&f), 1);
	/* the PATCH is counted and its policy due soon, to be written again
	 * (should this replica lead again); the Event is not */
	assert_int_equal(stat_of(c, &c->stats.status_dropped), 1);
	ctl_lock(c);
	assert_non_null(hmap_get(&c->rq.lost, "P:n/x"));
	assert_non_null(hmap_get(&c->rq.counted, "P:n/x"));	/* due soon */
	ctl_unlock(c);
	stop_all(&f, c, wr);
}

static void cache_policy(struct ctl *c, const char *name, const char *uid)
{
	struct policy *p = calloc(1, sizeof(*p));
	char key[64];

	assert_non_null(p);
	p->uid = strdup(uid);
	snprintf(key, sizeof(key), "P:n/%s", name);
	pthread_rwlock_wrlock(&c->cache_lock);
	assert_int_equal(hmap_put(&c->policies, key, p, NULL), 0);
	pthread_rwlock_unlock(&c->cache_lock);
}

/* A 404 is not tried again; a status of a policy deleted, or made again under
 * its name (another uid), is not written; a newer status replaces one that
 * waits for its retry. */
static void test_what_is_not_written(void **state)
{
	struct fake f;
	char server[64];
	struct ctl *c;
	struct writer *wr;

	(void)state;
	wr = start_all(&f, server, sizeof(server), &c, 1);
	cache_policy(c, "same", "u1");
	cache_policy(c, "again", "u2");	/* the status was made for u1 */
	writer_put(wr, list(4, (struct status_write *[]){ sw("PATCH", "/missing", "m"),
		   policy_sw("same", "u1", "s1"), policy_sw("again", "u1", "a1"),
		   policy_sw("deleted", "u3", "d1") }));
	assert_int_equal(wait_reqs(&f, 2), 2);
	usleep(300000);
	assert_int_equal(nreq(&f), 2);
	/* "/missing" got the fake's 200 here; a 404 is not retried: */
	writer_put(wr, sw("PATCH", "/gone404", "g"));
	/* ... and /fail's first answer, a 500: it waits for its retry, replaced meanwhile */
	writer_put(wr, sw("PATCH", "/fail", "old"));
	assert_int_equal(wait_reqs(&f, 4), 4);
	for (int i = 0; i < 100 && stat_of(c, &c->stats.status_errors) < 2; i++)
		usleep(10000);
	writer_put(wr, sw("PATCH", "/fail", "new"));
	assert_int_equal(wait_reqs(&f, 5), 5);
	usleep(300000);
	assert_int_equal(nreq(&f), 5);
	assert_string_equal(f.reqs[0], "PATCH /missing m");
	assert_string_equal(f.reqs[1], "PATCH /p/same s1");
	assert_string_equal(f.reqs[2], "PATCH /gone404 g");
	assert_string_equal(f.reqs[3], "PATCH /fail old");
	assert_string_equal(f.reqs[4], "PATCH /fail new");
	assert_int_equal(writer_pending(wr), 0);
	stop_all(&f, c, wr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newer_replaces_pending),
		cmocka_unit_test(test_events_bounded),
		cmocka_unit_test(test_failed_patch_retried),
		cmocka_unit_test(test_follower_writes_nothing),
		cmocka_unit_test(test_what_is_not_written),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
