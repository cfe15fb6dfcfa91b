// SPDX-License-Identifier: Apache-2.0
/*
 * profleet-controller: watches ProfilingPolicy, ClusterProfilingPolicy,
 * ClusterProfilingBackend, Pods, Namespaces and Nodes; resolves them into one
 * target set per node; pushes those to the agents over websockets; writes each
 * policy's status. See docs/fleet.md, and controller.h for who owns what.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "controller.h"
#include "http.h"
#include "httpd.h"
#include "lease.h"
#include "log.h"
#include "options.h"
#include "reconcile.h"
#include "secrets.h"
#include "server.h"
#include "store.h"

/* The threads main starts (besides the informers', the HTTP servers' and its own). */
struct threads {
	pthread_t signals, auth, secrets, lease;
	bool have_signals, have_auth, have_secrets, have_lease;
	struct reconciler *rec;
};

/*
 * SIGINT and SIGTERM are blocked in every thread and taken by this one with
 * sigwait: no handler runs in the middle of another thread's work.
 */
static void *signals_main(void *arg)
{
	struct ctl *c = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);	/* from main: stop waiting */
	if (sigwait(&set, &sig) == 0 && sig != SIGUSR1)
		log_notice("%s: stopping", strsignal(sig));
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	server_wake(c);
	return NULL;
}

static int ctl_init(struct ctl *c)
{
	pthread_condattr_t ca;

	c->started_unix = time(NULL);
	c->leader = c->opt.no_leader_election;
	if (pthread_rwlock_init(&c->cache_lock, NULL) || pthread_mutex_init(&c->lock, NULL) ||
	    pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&c->wake, &ca) || pthread_cond_init(&c->rec_wake, &ca))
		return -1;
	pthread_condattr_destroy(&ca);
	c->auth_cache = auth_cache_new();
	return c->auth_cache ? 0 : -1;
}

static int open_store(struct ctl *c)
{
	struct store_opts so = { .dir = c->opt.store_dir, .max_bytes = c->opt.store_max_bytes,
				 .ns_max_bytes = c->opt.store_ns_max_bytes,
				 .retention_s = c->opt.store_retention_s };
	struct store_stats ss;
	char err[512];

	if (!c->opt.store_dir)
		return 0;
	c->store = store_open(&so, err, sizeof(err));
	if (!c->store) {
		log_error("%s", err);
		return -1;
	}
	store_expire(c->store, time(NULL));
	store_stats(c->store, &ss);
	log_info("store %s: %llu profile(s), %llu bytes", c->opt.store_dir,
		 (unsigned long long)ss.files, (unsigned long long)ss.bytes);
	return 0;
}

static int start_one(const char *what, int err)
{
	if (err)
		log_error("cannot start the %s thread: %s", what, strerror(err));
	return err;
}

/* The threads besides the informers', the websocket's and the HTTP server's. */
static int start_threads(struct ctl *c, struct threads *t)
{
	t->rec = reconcile_start(c);
	if (!t->rec)
		return start_one("reconcile", errno ? errno : ENOMEM);
	if (start_one("auth", auth_start(c, &t->auth)))
		return -1;
	t->have_auth = true;
	if (start_one("secrets", secrets_start(c, &t->secrets)))
		return -1;
	t->have_secrets = true;
	if (!c->opt.no_leader_election) {
		if (start_one("lease", lease_start(c, &t->lease)))
			return -1;
		t->have_lease = true;
	}
	return 0;
}

static void stop_threads(struct ctl *c, struct threads *t)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	if (t->have_signals) {
		pthread_kill(t->signals, SIGUSR1);
		pthread_join(t->signals, NULL);
	}
	ctl_lock(c);
	pthread_cond_broadcast(&c->wake);
	ctl_unlock(c);
	reconcile_stop(t->rec);
	if (t->have_auth)
		pthread_join(t->auth, NULL);
	if (t->have_secrets)
		pthread_join(t->secrets, NULL);
	if (t->have_lease)
		pthread_join(t->lease, NULL);
}

static void announce(const struct ctl *c)
{
	log_notice("profleet-controller %s: API server %s, agents on %s://%s:%d, identity %s",
		   PROFLEET_VERSION, c->kcfg.server, c->opt.tls_cert ? "wss" : "ws",
		   c->opt.listen_addr ? c->opt.listen_addr : "*", c->opt.port, c->opt.identity);
	log_notice("HTTP API on %s:%d, probes on %s:%d, store %s", c->opt.http_addr,
		   c->opt.http_port, c->opt.health_addr, c->opt.health_port,
		   c->opt.store_dir ? c->opt.store_dir : "off");
}

static int run(struct ctl *c)
{
	struct threads t = { 0 };
	char err[512];
	int ret = 1;

	if (open_store(c) || caches_start(c) || server_start(c))
		goto out;
	c->http = http_start(c, err, sizeof(err));
	c->health = c->http ? http_start_health(c, err, sizeof(err)) : NULL;
	if (!c->http || !c->health) {
		log_error("%s", err);
		goto out;
	}
	announce(c);
	t.have_signals = !pthread_create(&t.signals, NULL, signals_main, c);
	if (!t.have_signals || start_threads(c, &t))
		goto out;
	server_run(c);
	ret = 0;
out:
	/* first what reads everything (HTTP), last what everything writes into */
	if (c->health)
		httpd_stop(c->health);
	if (c->http)
		httpd_stop(c->http);
	stop_threads(c, &t);
	caches_stop(c);
	server_stop(c);
	caches_free(c);
	store_close(c->store);
	auth_cache_free(c->auth_cache);
	targets_work_free(&c->rq.work);
	hmap_free(&c->rq.policies);
	hmap_free(&c->rq.numbers);
	hmap_free(&c->rq.counted);
	hmap_free(&c->rq.lost);
	return ret;
}

int main(int argc, char **argv)
{
	struct ctl *c = calloc(1, sizeof(*c));	/* handed to every thread */
	sigset_t set;
	char err[512];
	int ret;

	if (!c)
		return 1;
	/* while TZ is unset, glibc's tzset (which strftime and localtime call) frees and
	 * copies its global zone name at every call, under a lock ThreadSanitizer does
	 * not see: with TZ set, as the default is, later calls find it unchanged */
	setenv("TZ", ":/etc/localtime", 0);
	tzset();
	/* a dozen threads, each with its own malloc arena, each kept its own high-water
	 * mark of a cluster's worth of parsed JSON: two arenas are shared instead */
	if (!getenv("MALLOC_ARENA_MAX"))	/* the user's choice stands */
		mallopt(M_ARENA_MAX, 2);
	if (!getenv("PROFLEET_LOG_LEVEL"))
		log_set_level(LOG_LVL_INFO);
	if (options_parse(argc, argv, &c->opt))
		return 2;
	if (k8s_config_load(c->opt.kubeconfig, c->opt.context, &c->kcfg, err, sizeof(err))) {
		fprintf(stderr, "profleet-controller: %s\n", err);
		return 2;
	}
	srandom((unsigned int)(time(NULL) ^ getpid()));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* every thread started after inherits it */
	if (ctl_init(c)) {
		log_error("cannot initialize the locks");
		return 1;
	}
	ret = run(c);
	if (!ret)
		log_notice("stopped");
	k8s_config_free(&c->kcfg);
	free(c);
	return ret;
}
