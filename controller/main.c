// SPDX-License-Identifier: Apache-2.0
/*
 * profleet-controller: watches ProfilingPolicy, ClusterProfilingPolicy,
 * ClusterProfilingBackend, Pods, Namespaces and Nodes; resolves them into one
 * target set per node; pushes those to the agents over websockets; writes each
 * policy's status. See docs/fleet.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller.h"
#include "log.h"
#include "resolve.h"
#include "store.h"
#include "httpd.h"
#include "metrics.h"
#include "yamljson.h"

#define GROUP_PATH "/apis/profiling.profleet.dev/v1alpha1"

struct ctl ctl;

void server_auth_done(struct ctl *c, struct conn *cn, bool ok, const char *why);

/* Per-policy runtime state the status is computed from (keyed by uid). */
struct policy_rt {
	int64_t start;		/* OnDemand: when all its agents had acked */
	int64_t completion;
	int ev_phase;		/* phase of the last Event (-1: none yet; set from the server's) */
	bool ev_degraded;	/* an ExportFailing Event was sent and not yet cleared */
	char last_status[2048];	/* the last status body written (or attempted) */
	int64_t last_write;
	uint64_t seen;		/* reconcile pass that last saw the policy */
};

static void on_signal(int sig)
{
	(void)sig;
	__atomic_store_n(&ctl.stop, 1, __ATOMIC_RELEASE);
	server_wake(&ctl);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void mark_dirty(void)
{
	ctl.dirty = true;
	pthread_cond_broadcast(&ctl.wake);
}

/* ---- informer callbacks --------------------------------------------------- */

static void pod_drop(struct pod *p)
{
	char key[600];

	if (!p)
		return;
	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	if (hmap_get(&ctl.pods_by_name, key) == p)
		hmap_del(&ctl.pods_by_name, key);
	pod_free(p);
	free(p);
}

static void pods_begin(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&ctl.lock);
	ctl.gen_pods++;
	pthread_mutex_unlock(&ctl.lock);
}

static void pods_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	struct pod *p = calloc(1, sizeof(*p)), *old = NULL;
	char key[600];

	(void)ctx;
	if (!p || pod_from_json(obj, p)) {
		free(p);
		return;
	}
	pthread_mutex_lock(&ctl.lock);
	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	if (ev == K8S_DELETED) {
		pod_drop(hmap_del(&ctl.pods, p->uid));
		pod_free(p);
		free(p);
	} else {
		p->seen = ctl.gen_pods;
		if (hmap_put(&ctl.pods, p->uid, p, (void **)&old)) {
			pod_free(p);
			free(p);
		} else {
			pod_drop(old);
			hmap_put(&ctl.pods_by_name, key, p, NULL);
		}
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

static void pods_end(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&ctl.lock);
	hmap_for_each(&ctl.pods, it) {
		struct pod *p = it->val;

		if (p->seen != ctl.gen_pods)
			pod_drop(hmap_del(&ctl.pods, it->key));
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

/* Namespaces, Nodes and ReplicaSets share one shape. */
struct nl_ctx {
	struct hmap *map;
	uint64_t *gen;
	int (*parse)(const cJSON *obj, struct named_labels *ret);
};

static void nl_begin(void *ctx)
{
	struct nl_ctx *x = ctx;

	pthread_mutex_lock(&ctl.lock);
	(*x->gen)++;
	pthread_mutex_unlock(&ctl.lock);
}

static void nl_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	struct nl_ctx *x = ctx;
	struct named_labels *n = calloc(1, sizeof(*n)), *old = NULL;

	if (!n || x->parse(obj, n)) {
		free(n);
		return;
	}
	pthread_mutex_lock(&ctl.lock);
	if (ev == K8S_DELETED) {
		old = hmap_del(x->map, n->name);
		named_labels_free(n);
		free(n);
	} else {
		n->seen = *x->gen;
		if (hmap_put(x->map, n->name, n, (void **)&old)) {
			named_labels_free(n);
			free(n);
		}
	}
	if (old) {
		named_labels_free(old);
		free(old);
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

static void nl_end(void *ctx)
{
	struct nl_ctx *x = ctx;

	pthread_mutex_lock(&ctl.lock);
	hmap_for_each(x->map, it) {
		struct named_labels *n = it->val;

		if (n->seen != *x->gen) {
			hmap_del(x->map, it->key);
			named_labels_free(n);
			free(n);
		}
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

static struct nl_ctx ns_ctx = { &ctl.namespaces, &ctl.gen_ns, named_labels_from_json };
static struct nl_ctx node_ctx = { &ctl.nodes, &ctl.gen_nodes, named_labels_from_json };
static struct nl_ctx rs_ctx = { &ctl.replicasets, &ctl.gen_rs, replicaset_from_json };

/* Policies: ctx is (void *)1 for cluster policies. */
static void pol_begin(void *ctx)
{
	pthread_mutex_lock(&ctl.lock);
	if (ctx)
		ctl.gen_cpp++;
	else
		ctl.gen_pp++;
	pthread_mutex_unlock(&ctl.lock);
}

static void pol_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	bool cluster = ctx != NULL;
	struct policy *p = calloc(1, sizeof(*p)), *old = NULL;
	char key[600];

	if (!p || policy_from_json(obj, cluster, ctl.opt.max_hz, p)) {
		free(p);
		return;
	}
	snprintf(key, sizeof(key), "%c:%s", cluster ? 'C' : 'P', p->key);
	pthread_mutex_lock(&ctl.lock);
	if (ev == K8S_DELETED) {
		old = hmap_del(&ctl.policies, key);
		log_info("policy %s deleted", p->key);
		policy_free(p);
		free(p);
	} else {
		p->seen = cluster ? ctl.gen_cpp : ctl.gen_pp;
		if (hmap_put(&ctl.policies, key, p, (void **)&old)) {
			policy_free(p);
			free(p);
		}
	}
	if (old) {
		policy_free(old);
		free(old);
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

static void pol_end(void *ctx)
{
	char kind = ctx ? 'C' : 'P';
	uint64_t gen;

	pthread_mutex_lock(&ctl.lock);
	gen = ctx ? ctl.gen_cpp : ctl.gen_pp;
	hmap_for_each(&ctl.policies, it) {
		struct policy *p = it->val;

		if (it->key[0] == kind && p->seen != gen) {
			hmap_del(&ctl.policies, it->key);
			policy_free(p);
			free(p);
		}
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

static void cpb_begin(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&ctl.lock);
	ctl.gen_cpb++;
	pthread_mutex_unlock(&ctl.lock);
}

static bool secrets_due;	/* ctl.lock: a backend with a Secret changed */

static void cpb_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	struct backend *b = calloc(1, sizeof(*b)), *old = NULL;

	(void)ctx;
	if (!b || backend_from_json(obj, b)) {
		free(b);
		return;
	}
	pthread_mutex_lock(&ctl.lock);
	if (ev == K8S_DELETED) {
		old = hmap_del(&ctl.backends, b->name);
		backend_free(b);
		free(b);
	} else {
		const struct backend *prev = hmap_get(&ctl.backends, b->name);

		/* the same Secret: keep what was read from it until the next read */
		if (prev && b->secret_ns && prev->secret_ns && !strcmp(b->secret_ns, prev->secret_ns) &&
		    !strcmp(b->secret_name, prev->secret_name) &&
		    !strcmp(b->secret_key, prev->secret_key)) {
			b->bearer = prev->bearer ? strdup(prev->bearer) : NULL;
			b->basic = prev->basic ? strdup(prev->basic) : NULL;
			snprintf(b->secret_error, sizeof(b->secret_error), "%s", prev->secret_error);
		}
		if (b->secret_ns)
			secrets_due = true;
		b->seen = ctl.gen_cpb;
		if (hmap_put(&ctl.backends, b->name, b, (void **)&old)) {
			backend_free(b);
			free(b);
		}
	}
	if (old) {
		backend_free(old);
		free(old);
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

/* ---- backend credentials (authSecretRef) ----------------------------------------- */

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

/*
 * Reads the Secrets the backends name, now and every 60 s (a rotated password
 * reaches the agents within a minute), without watching Secrets: the controller
 * only needs get on the ones named. The token key (default "token") becomes a
 * bearer token; without it, "username" and "password" become basic auth.
 */
static void *secrets_main(void *arg)
{
	struct k8s_client *kc = k8s_client_new(&ctl.kcfg);
	int64_t last = 0;

	(void)arg;
	while (!__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE)) {
		char (*refs)[3][256] = NULL;
		int n = 0, cap = 0;
		bool due;

		pthread_mutex_lock(&ctl.lock);
		due = secrets_due || now_s() - last >= 60;
		secrets_due = false;
		if (due) {
			hmap_for_each(&ctl.backends, it) {
				struct backend *b = it->val;

				if (!b->secret_ns)
					continue;
				if (n == cap) {
					void *p = realloc(refs, (size_t)(cap = cap * 2 + 8) * sizeof(*refs));

					if (!p)
						break;
					refs = p;
				}
				snprintf(refs[n][0], 256, "%s", b->name);
				snprintf(refs[n][1], 256, "%s", b->secret_ns);
				snprintf(refs[n][2], 256, "%s/%s", b->secret_name, b->secret_key);
				n++;
			}
		}
		pthread_mutex_unlock(&ctl.lock);
		for (int i = 0; i < n; i++) {
			char path[700], key[256], why[160] = "", *bearer = NULL, *basic = NULL;
			char *slash = strchr(refs[i][2], '/');
			struct k8s_response r;
			struct backend *b;

			*slash = 0;
			snprintf(key, sizeof(key), "%s", slash + 1);
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", refs[i][1],
				 refs[i][2]);
			if (k8s_request(kc, "GET", path, NULL, NULL, &r) || r.status != 200) {
				snprintf(why, sizeof(why), "Secret %s/%s: %s", refs[i][1], refs[i][2],
					 k8s_response_message(&r));
			} else if (!(bearer = secret_value(r.json, key))) {
				char *u = secret_value(r.json, "username"), *pw = secret_value(r.json, "password");

				if (u && pw && asprintf(&basic, "%s:%s", u, pw) < 0)
					basic = NULL;
				if (!basic)
					snprintf(why, sizeof(why), "Secret %s/%s has neither '%s' nor "
						 "username and password", refs[i][1], refs[i][2], key);
				free(u);
				free(pw);
			}
			k8s_response_free(&r);
			pthread_mutex_lock(&ctl.lock);
			b = hmap_get(&ctl.backends, refs[i][0]);
			if (b && b->secret_ns) {
				bool changed = (!b->bearer != !bearer) || (b->bearer && strcmp(b->bearer, bearer)) ||
					       (!b->basic != !basic) || (b->basic && strcmp(b->basic, basic));

				if (strcmp(b->secret_error, why)) {
					if (why[0])
						log_warn("backend %s: %s", b->name, why);
					else
						log_info("backend %s: credentials read from its Secret", b->name);
				}
				snprintf(b->secret_error, sizeof(b->secret_error), "%s", why);
				if (changed && (bearer || basic || why[0])) {
					/* a failed read keeps the last good credentials */
					if (bearer || basic) {
						free(b->bearer);
						free(b->basic);
						b->bearer = bearer;
						b->basic = basic;
						bearer = basic = NULL;
						mark_dirty();
					}
				}
			}
			pthread_mutex_unlock(&ctl.lock);
			free(bearer);
			free(basic);
		}
		free(refs);
		if (due)
			last = now_s();
		for (int i = 0; i < 10 && !__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE); i++) {
			usleep(100000);
			if (__atomic_load_n(&secrets_due, __ATOMIC_ACQUIRE))
				break;
		}
	}
	k8s_client_free(kc);
	return NULL;
}

static void cpb_end(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&ctl.lock);
	hmap_for_each(&ctl.backends, it) {
		struct backend *b = it->val;

		if (b->seen != ctl.gen_cpb) {
			hmap_del(&ctl.backends, it->key);
			backend_free(b);
			free(b);
		}
	}
	mark_dirty();
	pthread_mutex_unlock(&ctl.lock);
}

/* ---- leader election (coordination.k8s.io/v1 Lease) ----------------------- */

static void micro_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static bool lease_known;	/* the first lease round is done (ctl.lock) */

static void set_leader(bool leader)
{
	pthread_mutex_lock(&ctl.lock);
	if (!lease_known) {
		lease_known = true;
		pthread_cond_broadcast(&ctl.wake);
	}
	if (ctl.leader != leader) {
		log_notice("%s the leader (lease %s/%s, identity %s)",
			   leader ? "became" : "no longer", ctl.opt.lease_ns, ctl.opt.lease_name,
			   ctl.opt.identity);
		ctl.leader = leader;
		ctl.dirty = true;
		pthread_cond_broadcast(&ctl.wake);
	}
	pthread_mutex_unlock(&ctl.lock);
	server_wake(&ctl);
}

static bool is_leader(void)
{
	bool l;

	pthread_mutex_lock(&ctl.lock);
	l = ctl.leader;
	pthread_mutex_unlock(&ctl.lock);
	return l;
}

static char *lease_body(const cJSON *old, const char *holder, bool taking, bool release)
{
	cJSON *o = old ? cJSON_Duplicate(old, 1) : cJSON_CreateObject(), *spec, *meta;
	char t[40];
	const cJSON *tr;
	char *s;

	micro_time(t, sizeof(t));
	cJSON_DeleteItemFromObject(o, "status");
	if (!old) {
		cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
		cJSON_AddStringToObject(o, "kind", "Lease");
		meta = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(meta, "name", ctl.opt.lease_name);
		cJSON_AddStringToObject(meta, "namespace", ctl.opt.lease_ns);
	}
	spec = cJSON_GetObjectItem(o, "spec");
	if (!spec)
		spec = cJSON_AddObjectToObject(o, "spec");
	tr = cJSON_GetObjectItem(spec, "leaseTransitions");
	if (taking) {
		int n = cJSON_IsNumber(tr) ? tr->valueint + 1 : 0;

		cJSON_DeleteItemFromObject(spec, "leaseTransitions");
		cJSON_AddNumberToObject(spec, "leaseTransitions", n);
		cJSON_DeleteItemFromObject(spec, "acquireTime");
		cJSON_AddStringToObject(spec, "acquireTime", t);
	}
	cJSON_DeleteItemFromObject(spec, "holderIdentity");
	cJSON_AddStringToObject(spec, "holderIdentity", holder);
	cJSON_DeleteItemFromObject(spec, "leaseDurationSeconds");
	cJSON_AddNumberToObject(spec, "leaseDurationSeconds", release ? 1 : ctl.opt.lease_duration_s);
	cJSON_DeleteItemFromObject(spec, "renewTime");
	cJSON_AddStringToObject(spec, "renewTime", t);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void *lease_main(void *arg)
{
	struct k8s_client *kc = k8s_client_new(&ctl.kcfg);
	char path[512], observed[256] = "";
	struct timespec observed_at = { 0 }, last_renew = { 0 }, now;
	struct k8s_response r;

	(void)arg;
	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
		 ctl.opt.lease_ns, ctl.opt.lease_name);
	while (!__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE)) {
		bool leader = false, have = false;
		const char *holder, *renew;
		char rec[256], *body = NULL;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (k8s_request(kc, "GET", path, NULL, NULL, &r) == 0 && r.status == 404) {
			body = lease_body(NULL, ctl.opt.identity, true, false);
			k8s_response_free(&r);
			{
				char cpath[512];

				snprintf(cpath, sizeof(cpath),
					 "/apis/coordination.k8s.io/v1/namespaces/%s/leases",
					 ctl.opt.lease_ns);
				if (!k8s_request(kc, "POST", cpath, NULL, body, &r) && r.status == 201)
					leader = have = true;
				else
					log_warn("lease: create: %s", k8s_response_message(&r));
			}
			snprintf(path, sizeof(path),
				 "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
				 ctl.opt.lease_ns, ctl.opt.lease_name);
		} else if (r.status == 200) {
			holder = k8s_str(r.json, "spec.holderIdentity");
			renew = k8s_str(r.json, "spec.renewTime");
			snprintf(rec, sizeof(rec), "%s|%s", holder ? holder : "", renew ? renew : "");
			if (strcmp(rec, observed)) {
				snprintf(observed, sizeof(observed), "%s", rec);
				observed_at = now;
			}
			if ((holder && !strcmp(holder, ctl.opt.identity)) || !holder || !*holder ||
			    now.tv_sec - observed_at.tv_sec > ctl.opt.lease_duration_s) {
				bool taking = !holder || strcmp(holder, ctl.opt.identity);

				body = lease_body(r.json, ctl.opt.identity, taking, false);
				k8s_response_free(&r);
				if (!k8s_request(kc, "PUT", path, NULL, body, &r) && r.status == 200)
					leader = have = true;
				else if (r.status != 409)
					log_warn("lease: update: HTTP %ld: %s", r.status,
						 k8s_response_message(&r));
			} else {
				have = true;	/* another holder, alive */
			}
		} else {
			log_warn("lease: get: HTTP %ld: %s", r.status, k8s_response_message(&r));
		}
		k8s_response_free(&r);
		free(body);
		if (have || leader) {
			pthread_mutex_lock(&ctl.lock);
			ctl.lease_ok_unix = time(NULL);
			pthread_mutex_unlock(&ctl.lock);
		}
		if (leader) {
			last_renew = now;
			set_leader(true);
		} else if (have || now.tv_sec - last_renew.tv_sec > ctl.opt.lease_duration_s * 2 / 3) {
			/* lost it, or could not renew within the renew deadline */
			set_leader(false);
		}
		for (int i = 0; i < 20 && !__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE); i++)
			usleep(100000);
	}
	if (is_leader()) {	/* hand over at once instead of after the lease expires */
		if (!k8s_request(kc, "GET", path, NULL, NULL, &r) && r.status == 200) {
			char *body = lease_body(r.json, "", false, true);

			k8s_response_free(&r);
			k8s_request(kc, "PUT", path, NULL, body, &r);
			free(body);
		}
		k8s_response_free(&r);
	}
	k8s_client_free(kc);
	return NULL;
}

/* ---- agent authentication (TokenReview) ----------------------------------- */

static bool review(struct k8s_client *kc, const char *token, const char *node, char *why,
		   size_t whylen)
{
	cJSON *req = cJSON_CreateObject(), *spec, *aud;
	struct k8s_response r;
	const cJSON *extra, *pn, *pu;
	char want[300], key[600], *body;
	const char *user;
	struct pod *pod;
	bool ok = false;

	cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "TokenReview");
	spec = cJSON_AddObjectToObject(req, "spec");
	cJSON_AddStringToObject(spec, "token", token);
	aud = cJSON_AddArrayToObject(spec, "audiences");
	cJSON_AddItemToArray(aud, cJSON_CreateString(ctl.opt.agent_audience));
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (k8s_request(kc, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", NULL, body, &r) ||
	    r.status != 201) {
		snprintf(why, whylen, "token review failed: %s", k8s_response_message(&r));
		goto out;
	}
	if (!cJSON_IsTrue(k8s_get(r.json, "status.authenticated"))) {
		snprintf(why, whylen, "token not authenticated%s%s",
			 k8s_str(r.json, "status.error") ? ": " : "",
			 k8s_str(r.json, "status.error") ? k8s_str(r.json, "status.error") : "");
		goto out;
	}
	user = k8s_str(r.json, "status.user.username");
	snprintf(want, sizeof(want), "system:serviceaccount:%s:%s", ctl.opt.agent_sa_ns,
		 ctl.opt.agent_sa_name);
	if (!user || strcmp(user, want)) {
		snprintf(why, whylen, "user '%s' is not the agents' service account %s",
			 user ? user : "?", want);
		goto out;
	}
	/* the token is bound to the agent's pod; the pod says which node it runs on */
	extra = k8s_get(r.json, "status.user.extra");
	pn = extra ? cJSON_GetObjectItemCaseSensitive(extra, "authentication.kubernetes.io/pod-name")
		   : NULL;
	pu = extra ? cJSON_GetObjectItemCaseSensitive(extra, "authentication.kubernetes.io/pod-uid")
		   : NULL;
	if (!cJSON_IsArray(pn) || !cJSON_IsString(cJSON_GetArrayItem(pn, 0)) ||
	    !cJSON_IsArray(pu) || !cJSON_IsString(cJSON_GetArrayItem(pu, 0))) {
		snprintf(why, whylen, "token is not bound to a pod (use a projected service-account token)");
		goto out;
	}
	snprintf(key, sizeof(key), "%s/%s", ctl.opt.agent_sa_ns,
		 cJSON_GetArrayItem(pn, 0)->valuestring);
	pthread_mutex_lock(&ctl.lock);
	pod = hmap_get(&ctl.pods_by_name, key);
	if (!pod)
		snprintf(why, whylen, "agent pod %s not found", key);
	else if (strcmp(pod->uid, cJSON_GetArrayItem(pu, 0)->valuestring))
		snprintf(why, whylen, "agent pod %s was replaced (uid mismatch)", key);
	else if (!pod->node || strcmp(pod->node, node))
		snprintf(why, whylen, "agent pod %s runs on node '%s', not '%s'", key,
			 pod->node ? pod->node : "", node);
	else
		ok = true;
	pthread_mutex_unlock(&ctl.lock);
out:
	free(body);
	k8s_response_free(&r);
	return ok;
}

void *auth_main(void *arg)
{
	struct k8s_client *kc = k8s_client_new(&ctl.kcfg);

	(void)arg;
	pthread_mutex_lock(&ctl.lock);
	while (!__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE)) {
		struct conn *cn;
		uint64_t id = 0;
		char token[4096], node[254], why[256] = "";
		bool ok, leader;

		for (cn = ctl.conns; cn; cn = cn->next)
			if (cn->auth == AUTH_PENDING)
				break;
		if (!cn || (!lease_known && !ctl.opt.no_leader_election)) {
			/* at start, wait for the first lease answer rather than refuse
			 * agents as "not the leader" for the first milliseconds */
			ctl.auth_work = false;
			pthread_cond_wait(&ctl.wake, &ctl.lock);
			continue;
		}
		leader = ctl.leader;
		id = cn->id;
		snprintf(token, sizeof(token), "%s", cn->token);
		snprintf(node, sizeof(node), "%s", cn->node);
		pthread_mutex_unlock(&ctl.lock);
		if (!leader && !ctl.opt.no_leader_election) {
			ok = false;
			snprintf(why, sizeof(why), "not the leader");
		} else if (ctl.opt.insecure_trust_agents) {
			ok = true;
		} else {
			ok = review(kc, token, node, why, sizeof(why));
		}
		memset(token, 0, sizeof(token));
		pthread_mutex_lock(&ctl.lock);
		for (cn = ctl.conns; cn; cn = cn->next)	/* it may have gone meanwhile */
			if (cn->id == id && cn->auth == AUTH_PENDING) {
				server_auth_done(&ctl, cn, ok, why);
				break;
			}
		pthread_mutex_unlock(&ctl.lock);
		server_wake(&ctl);
		pthread_mutex_lock(&ctl.lock);
	}
	pthread_mutex_unlock(&ctl.lock);
	k8s_client_free(kc);
	return NULL;
}

/* ---- reconcile ------------------------------------------------------------ */

static int cmp_named_ptr(const void *a, const void *b)
{
	return strcmp((*(struct named_labels *const *)a)->name, (*(struct named_labels *const *)b)->name);
}

static int cmp_backend_ptr(const void *a, const void *b)
{
	return strcmp((*(struct backend *const *)a)->name, (*(struct backend *const *)b)->name);
}

static void **map_values(struct hmap *m, int *n)
{
	void **v = calloc(m->n + 1, sizeof(void *));
	int k = 0;

	if (v)
		hmap_for_each(m, it)
			v[k++] = it->val;
	*n = k;
	return v;
}

struct status_write {
	const char *method;	/* PATCH (status) or POST (an Event) */
	char *path;
	char *body;
	struct status_write *next;
};

static struct policy_rt *rt_get(const struct policy *p)
{
	struct policy_rt *rt = hmap_get(&ctl.runtime, p->uid ? p->uid : p->key);

	if (rt)
		return rt;
	rt = calloc(1, sizeof(*rt));
	if (!rt || hmap_put(&ctl.runtime, p->uid ? p->uid : p->key, rt, NULL)) {
		free(rt);
		return NULL;
	}
	/* a controller restart continues where the status says the policy is */
	rt->start = p->srv_start;
	rt->completion = p->srv_completion;
	rt->ev_phase = -1;
	return rt;
}

static const char *old_transition(const struct policy *p, const char *type, const char *status)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, p->srv_conditions) {
		const char *t = k8s_str(c, "type"), *s = k8s_str(c, "status");

		if (t && s && !strcmp(t, type) && !strcmp(s, status))
			return k8s_str(c, "lastTransitionTime");
	}
	return NULL;
}

static void add_cond(cJSON *arr, const struct policy *p, const char *type, bool status,
		     const char *reason, const char *msg, const char *now)
{
	cJSON *c = cJSON_CreateObject();
	const char *st = status ? "True" : "False", *ltt = old_transition(p, type, st);

	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", st);
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddStringToObject(c, "lastTransitionTime", ltt ? ltt : now);
	cJSON_AddNumberToObject(c, "observedGeneration", (double)p->generation);
	cJSON_AddItemToArray(arr, c);
}

/* Agents: how many of the nodes holding this policy's targets run its current set. */
static void policy_agents(const struct policy *p, int pi, const struct resolve_output *out,
			  int *ret_nodes, int *ret_acked, int *ret_connected, uint64_t *ret_samples)
{
	int nodes = 0, acked = 0, connected = 0;
	uint64_t samples = 0;

	for (int i = 0; i < out->nnodes; i++) {
		const struct node_targets *nt = &out->nodes[i];
		struct node_state *ns;
		bool has = false;

		for (int j = 0; j < nt->n && !has; j++)
			for (int k = 0; k < nt->t[j].npolicies; k++)
				has |= nt->t[j].policies[k] == pi;
		if (!has)
			continue;
		nodes++;
		ns = hmap_get(&ctl.node_states, nt->node);
		if (ns && ns->conn)
			connected++;
		if (ns && ns->conn && ns->version && ns->acked >= ns->version)
			acked++;
	}
	/* samples from every node's agent, including nodes it no longer targets */
	hmap_for_each(&ctl.node_states, it) {
		struct node_state *ns = it->val;
		uint64_t *v = hmap_get(&ns->samples, p->key), *b = hmap_get(&ns->base, p->key);

		samples += (v ? *v : 0) + (b ? *b : 0);
	}
	*ret_nodes = nodes;
	*ret_acked = acked;
	*ret_connected = connected;
	*ret_samples = samples;
}

/*
 * How the exports of a policy go, over the agents that took samples for it:
 * the newest delivery, the drops, and one backend that fails right now (its
 * last attempt failed after its last success), if any.
 */
struct export_summary {
	int64_t last_success;
	uint64_t dropped;
	char failing[300];
};

static void policy_exports(const struct policy *p, struct export_summary *ret)
{
	memset(ret, 0, sizeof(*ret));
	hmap_for_each(&ctl.node_states, it) {
		struct node_state *ns = it->val;

		if (!hmap_get(&ns->samples, p->key))
			continue;	/* this agent never sampled for it */
		for (int i = 0; i < (p->nbackends ? p->nbackends : 1); i++) {
			const char *b = p->nbackends ? p->backends[i] : STORE_NAME;
			struct export_state *es = hmap_get(&ns->exporters, b);

			if (!es)
				continue;
			if (es->last_success > ret->last_success)
				ret->last_success = es->last_success;
			ret->dropped += es->dropped;
			if (!ret->failing[0] && es->last_failure > es->last_success)
				snprintf(ret->failing, sizeof(ret->failing),
					 "exports to %s from node %s fail: %s (%u queued, %llu dropped)",
					 !strcmp(b, STORE_NAME) ? "the built-in store" : b, ns->name,
					 es->last_error[0] ? es->last_error : "error",
					 es->queued, (unsigned long long)es->dropped);
		}
	}
}

/* A core/v1 Event about a policy, to POST. */
static struct status_write *event_write(const struct policy *p, const char *type, const char *reason,
					const char *msg, const char *now)
{
	struct status_write *w = calloc(1, sizeof(*w));
	cJSON *e = cJSON_CreateObject(), *md, *io, *src;
	const char *ns = p->cluster ? "default" : p->ns;
	char gen[300];

	if (!w || !e) {
		free(w);
		cJSON_Delete(e);
		return NULL;
	}
	cJSON_AddStringToObject(e, "apiVersion", "v1");
	cJSON_AddStringToObject(e, "kind", "Event");
	md = cJSON_AddObjectToObject(e, "metadata");
	snprintf(gen, sizeof(gen), "%s.", p->name);
	cJSON_AddStringToObject(md, "generateName", gen);
	cJSON_AddStringToObject(md, "namespace", ns);
	io = cJSON_AddObjectToObject(e, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", "profiling.profleet.dev/v1alpha1");
	cJSON_AddStringToObject(io, "kind", p->cluster ? "ClusterProfilingPolicy" : "ProfilingPolicy");
	cJSON_AddStringToObject(io, "name", p->name);
	if (!p->cluster)
		cJSON_AddStringToObject(io, "namespace", p->ns);
	if (p->uid)
		cJSON_AddStringToObject(io, "uid", p->uid);
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "reason", reason);
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddStringToObject(e, "firstTimestamp", now);
	cJSON_AddStringToObject(e, "lastTimestamp", now);
	cJSON_AddNumberToObject(e, "count", 1);
	src = cJSON_AddObjectToObject(e, "source");
	cJSON_AddStringToObject(src, "component", "profleet-controller");
	cJSON_AddStringToObject(e, "reportingComponent", "profleet-controller");
	cJSON_AddStringToObject(e, "reportingInstance", ctl.opt.identity);
	w->method = "POST";
	w->body = cJSON_PrintUnformatted(e);
	cJSON_Delete(e);
	if (asprintf(&w->path, "/api/v1/namespaces/%s/events", ns) < 0)
		w->path = NULL;
	if (!w->body || !w->path) {
		free(w->body);
		free(w->path);
		free(w);
		return NULL;
	}
	log_kv(LOG_LVL_INFO, LOG_KV("policy", p->key, "reason", reason), "event: %s", msg);
	return w;
}

/*
 * Events when a policy's profiling starts, completes or fails, and when its
 * exports start or stop failing. The first pass after a (re)start takes the
 * phase the server holds, so a restarted controller does not repeat them.
 */
static void policy_events(const struct policy *p, struct policy_rt *rt, enum policy_phase phase,
			  const struct policy_result *r, const struct export_summary *ex,
			  const char *now, struct status_write **events)
{
	struct status_write *w = NULL;
	char msg[512];

	if (rt->ev_phase < 0)
		rt->ev_phase = (int)p->srv_phase;
	if ((int)phase != rt->ev_phase) {
		if (phase == PHASE_RUNNING) {
			snprintf(msg, sizeof(msg), "profiling %d pod(s) on %d node(s) at %d Hz", r->pods,
				 r->nodes, p->frequency_hz);
			w = event_write(p, "Normal", "Started", msg, now);
		} else if (phase == PHASE_COMPLETED) {
			snprintf(msg, sizeof(msg), "profiled for %llds", (long long)p->duration_s);
			w = event_write(p, "Normal", "Completed", msg, now);
		} else if (phase == PHASE_FAILED) {
			snprintf(msg, sizeof(msg), "%s: %s", r->reason, r->message);
			w = event_write(p, "Warning", "Failed", msg, now);
		}
		rt->ev_phase = (int)phase;
	}
	if (w) {
		w->next = *events;
		*events = w;
		w = NULL;
	}
	if (ex->failing[0] && !rt->ev_degraded)
		w = event_write(p, "Warning", "ExportFailing", ex->failing, now);
	else if (!ex->failing[0] && rt->ev_degraded)
		w = event_write(p, "Normal", "ExportRecovered", "exports succeed again", now);
	rt->ev_degraded = ex->failing[0] != 0;
	if (w) {
		w->next = *events;
		*events = w;
	}
}

static struct status_write *policy_status(struct policy *p, int pi, const struct policy_result *r,
					  const struct resolve_output *out,
					  struct status_write **events)
{
	struct export_summary ex;
	struct policy_rt *rt = rt_get(p);
	cJSON *st, *conds, *body;
	enum policy_phase phase;
	int nodes, acked, connected;
	uint64_t samples;
	char now[40], t[40], msg[256];
	struct status_write *w;
	char *s;
	int64_t now_unix = now_s();

	if (!rt)
		return NULL;
	k8s_time_format(now_unix, now, sizeof(now));
	policy_agents(p, pi, out, &nodes, &acked, &connected, &samples);
	policy_exports(p, &ex);
	if ((int64_t)samples < p->srv_samples)	/* agents restarted along with us */
		samples = (uint64_t)p->srv_samples;
	body = cJSON_CreateObject();
	st = cJSON_AddObjectToObject(body, "status");
	cJSON_AddNumberToObject(st, "observedGeneration", (double)p->generation);
	conds = cJSON_CreateArray();
	if (!r->accepted) {
		phase = PHASE_FAILED;
		add_cond(conds, p, "Accepted", false, r->reason, r->message, now);
		add_cond(conds, p, "Ready", false, "NotAccepted", "the policy is not accepted", now);
	} else {
		add_cond(conds, p, "Accepted", true, "Valid", "the policy is valid", now);
		if (p->mode == MODE_ONDEMAND && rt->completion) {
			phase = PHASE_COMPLETED;
		} else if (!r->pods) {
			phase = rt->start ? PHASE_RUNNING : PHASE_PENDING;
			snprintf(msg, sizeof(msg), "no running pod matches the selector%s",
				 r->waiting ? " yet" : "");
			add_cond(conds, p, "Ready", false, "NoTargets", msg, now);
		} else if (acked == nodes) {
			phase = PHASE_RUNNING;
			snprintf(msg, sizeof(msg), "agents on %d node(s) profile %d pod(s)", nodes, r->pods);
			add_cond(conds, p, "Ready", true, "AgentsProfiling", msg, now);
			if (!rt->start)
				rt->start = now_unix;
		} else {
			phase = rt->start ? PHASE_RUNNING : PHASE_PENDING;
			snprintf(msg, sizeof(msg), "%d of %d node(s) have applied the targets", acked,
				 nodes);
			add_cond(conds, p, "Ready", false, "WaitingForAgents", msg, now);
		}
		if (p->mode == MODE_ONDEMAND && rt->start && !rt->completion &&
		    now_unix >= rt->start + p->duration_s) {
			rt->completion = now_unix;
			phase = PHASE_COMPLETED;
			ctl.dirty = true;	/* resolve again: its sampling stops */
			log_kv(LOG_LVL_INFO, LOG_KV("policy", p->key), "completed after %llds",
			       (long long)p->duration_s);
		}
		if (p->mode == MODE_ONDEMAND && phase == PHASE_COMPLETED) {
			cJSON *res = cJSON_AddObjectToObject(st, "result");

			snprintf(msg, sizeof(msg), "profiled for %llds", (long long)p->duration_s);
			add_cond(conds, p, "Ready", false, "Completed", msg, now);
			add_cond(conds, p, "Succeeded", true, "DurationElapsed", msg, now);
			cJSON_AddNumberToObject(res, "samples", (double)samples);
			if (!p->nbackends && ctl.store) {
				/* where the store serves it (the controller's HTTP API) */
				struct store_policy_stats ps;
				char loc[700];

				store_policy_stats(ctl.store, p->key, &ps);
				snprintf(loc, sizeof(loc), "/api/v1/%s%s%s/%s/profile",
					 p->cluster ? "" : "namespaces/", p->cluster ? "" : p->ns,
					 p->cluster ? "clusterprofilingpolicies" :
					 "/profilingpolicies", p->name);
				cJSON_AddStringToObject(res, "location", loc);
				snprintf(loc + strlen(loc) - strlen("profile"), 40, "flamegraph.svg");
				cJSON_AddStringToObject(res, "flameGraph", loc);
				cJSON_AddNumberToObject(res, "profiles", (double)ps.files);
				snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
					 "; %llu profile(s) in the built-in store",
					 (unsigned long long)ps.files);
			} else if (p->nbackends) {
				snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
					 "; profiles went to %s%s", p->backends[0],
					 p->nbackends > 1 ? " and others" : "");
			}
			cJSON_AddStringToObject(res, "message", msg);
		} else if (p->mode == MODE_ONDEMAND) {
			add_cond(conds, p, "Succeeded", false, "InProgress", "not finished yet", now);
		}
		if (phase != PHASE_COMPLETED && nodes > connected) {
			snprintf(msg, sizeof(msg), "%d of %d targeted node(s) have no agent connected",
				 nodes - connected, nodes);
			add_cond(conds, p, "Degraded", true, "AgentsMissing", msg, now);
		} else if (ex.failing[0]) {
			add_cond(conds, p, "Degraded", true, "ExportFailing", ex.failing, now);
		} else {
			add_cond(conds, p, "Degraded", false, "AsExpected", "nothing is degraded", now);
		}
	}
	cJSON_AddItemToObject(st, "conditions", conds);
	cJSON_AddStringToObject(st, "phase", phase_name(phase));
	cJSON_AddNumberToObject(st, "targetedNodes", r->accepted ? nodes : 0);
	cJSON_AddNumberToObject(st, "targetedPods", r->accepted ? r->pods : 0);
	cJSON_AddNumberToObject(st, "samplesCollected", (double)samples);
	if (r->accepted && ex.last_success) {
		k8s_time_format(ex.last_success, t, sizeof(t));
		cJSON_AddStringToObject(st, "lastExportTime", t);
	}
	if (r->accepted && ex.dropped)
		cJSON_AddNumberToObject(st, "profilesDropped", (double)ex.dropped);
	if (rt->start) {
		k8s_time_format(rt->start, t, sizeof(t));
		cJSON_AddStringToObject(st, "startTime", t);
	}
	if (rt->completion) {
		k8s_time_format(rt->completion, t, sizeof(t));
		cJSON_AddStringToObject(st, "completionTime", t);
	}
	policy_events(p, rt, phase, r, &ex, now, events);
	s = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!s)
		return NULL;
	/* unchanged, and lastTransitionTime keeps it stable: nothing to write */
	if (!strcmp(s, rt->last_status) && now_unix - rt->last_write < 300) {
		free(s);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		free(s);
		return NULL;
	}
	snprintf(rt->last_status, sizeof(rt->last_status), "%s", s);
	rt->last_write = now_unix;
	if (p->cluster)
		asprintf(&w->path, GROUP_PATH "/clusterprofilingpolicies/%s/status", p->name);
	else
		asprintf(&w->path, GROUP_PATH "/namespaces/%s/profilingpolicies/%s/status", p->ns,
			 p->name);
	w->method = "PATCH";
	w->body = s;
	return w;
}

static uint64_t next_version(uint64_t prev)
{
	struct timespec ts;
	uint64_t v;

	/* wall-clock based, so versions keep increasing across controller restarts */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return v > prev ? v : prev + 1;
}

/* One pass; called with ctl.lock held. Returns status writes to do without the lock. */
static struct status_write *reconcile_locked(void)
{
	struct resolve_input in = { 0 };
	struct resolve_output out;
	struct status_write *writes = NULL;
	bool changed_any = false;
	int npol;

	in.policies = (struct policy **)map_values(&ctl.policies, &npol);
	in.npolicies = npol;
	in.active = calloc((size_t)npol + 1, sizeof(bool));
	in.pods = (struct pod **)map_values(&ctl.pods, &in.npods);
	in.namespaces = (struct named_labels **)map_values(&ctl.namespaces, &in.nnamespaces);
	in.nodes = (struct named_labels **)map_values(&ctl.nodes, &in.nnodes);
	in.backends = (struct backend **)map_values(&ctl.backends, &in.nbackends);
	in.store = ctl.store != NULL;
	in.replicasets = (struct named_labels **)map_values(&ctl.replicasets, &in.nreplicasets);
	if (!in.policies || !in.active || !in.pods || !in.namespaces || !in.nodes || !in.backends)
		goto out;
	qsort(in.namespaces, (size_t)in.nnamespaces, sizeof(void *), cmp_named_ptr);
	qsort(in.nodes, (size_t)in.nnodes, sizeof(void *), cmp_named_ptr);
	if (in.replicasets)
		qsort(in.replicasets, (size_t)in.nreplicasets, sizeof(void *), cmp_named_ptr);
	qsort(in.backends, (size_t)in.nbackends, sizeof(void *), cmp_backend_ptr);
	ctl.stats.reconciles++;
	for (int i = 0; i < npol; i++) {
		struct policy_rt *rt = rt_get(in.policies[i]);

		if (rt)
			rt->seen = ctl.stats.reconciles;
		in.active[i] = !(in.policies[i]->mode == MODE_ONDEMAND && rt && rt->completion);
	}
	hmap_for_each(&ctl.runtime, it) {	/* policies that are gone */
		if (((struct policy_rt *)it->val)->seen != ctl.stats.reconciles)
			free(hmap_del(&ctl.runtime, it->key));
	}
	if (resolve(&in, &out))
		goto out;

	/* target sets: every node with targets, and every node whose agent is connected */
	for (int i = 0; i < out.nnodes; i++)
		if (!hmap_get(&ctl.node_states, out.nodes[i].node)) {
			struct node_state *ns = calloc(1, sizeof(*ns));

			if (!ns || !(ns->name = strdup(out.nodes[i].node)) ||
			    hmap_put(&ctl.node_states, ns->name, ns, NULL)) {
				if (ns)
					free(ns->name);
				free(ns);
			}
		}
	hmap_for_each(&ctl.node_states, it) {
		struct node_state *ns = it->val;
		const struct node_targets *nt = resolve_find_node(&out, ns->name);
		size_t clen = 0, mlen = 0;
		uint8_t *cmp = resolve_encode(&in, nt, 0, &clen), *msg;

		if (!cmp)
			continue;
		if (ns->cmp && clen == ns->cmp_len && !memcmp(cmp, ns->cmp, clen)) {
			free(cmp);
			continue;
		}
		ns->version = next_version(ns->version);
		msg = resolve_encode(&in, nt, ns->version, &mlen);
		if (!msg) {
			free(cmp);
			continue;
		}
		free(ns->cmp);
		free(ns->msg);
		ns->cmp = cmp;
		ns->cmp_len = clen;
		ns->msg = msg;
		ns->msg_len = mlen;
		changed_any = true;
		log_debug("node %s: target set v%llu, %d container(s)", ns->name,
			 (unsigned long long)ns->version, nt ? nt->n : 0);
	}
	if (changed_any)
		server_wake(&ctl);

	/* status, by the leader only */
	if (ctl.leader) {
		for (int i = 0; i < npol; i++) {
			struct status_write *w = policy_status(in.policies[i], i, &out.results[i], &out,
							       &writes);

			if (w) {
				w->next = writes;
				writes = w;
			}
		}
	}
	resolve_output_free(&out);
out:
	free(in.policies);
	free(in.active);
	free(in.pods);
	free(in.namespaces);
	free(in.nodes);
	free(in.backends);
	free(in.replicasets);
	return writes;
}

static void *reconcile_main(void *arg)
{
	struct k8s_client *kc = k8s_client_new(&ctl.kcfg);
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&ctl.lock);
	while (!__atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE)) {
		struct status_write *w;

		if (!ctl.dirty) {
			/* OnDemand timers and periodic status refresh: once a second */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ctl.wake, &ctl.lock, &ts);
		}
		ctl.dirty = false;
		{
			struct timespec t0, t1;
			double d;
			static const double bounds[] = { 0.001, 0.005, 0.025, 0.1, 0.5 };
			int b = 0;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			w = reconcile_locked();
			clock_gettime(CLOCK_MONOTONIC, &t1);
			d = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
			while (b < 5 && d > bounds[b])
				b++;
			ctl.rec_buckets[b]++;
			ctl.rec_count++;
			ctl.rec_sum_s += d;
		}
		pthread_mutex_unlock(&ctl.lock);
		while (w) {
			struct status_write *next = w->next;
			struct k8s_response r;

			if (!strcmp(w->method, "POST")) {	/* an Event: best effort */
				if (k8s_request(kc, "POST", w->path, NULL, w->body, &r) || r.status != 201)
					log_warn("event %s: HTTP %ld: %s", w->path, r.status,
						 k8s_response_message(&r));
			} else if (k8s_request(kc, "PATCH", w->path, "application/merge-patch+json",
					       w->body, &r) || r.status != 200) {
				if (r.status != 404)	/* deleted meanwhile: fine */
					log_warn("status %s: HTTP %ld: %s", w->path, r.status,
						 k8s_response_message(&r));
				pthread_mutex_lock(&ctl.lock);
				ctl.stats.status_errors++;
				/* forget what was written so the next pass retries */
				hmap_for_each(&ctl.runtime, it)
					((struct policy_rt *)it->val)->last_status[0] = 0;
				pthread_mutex_unlock(&ctl.lock);
			} else {
				pthread_mutex_lock(&ctl.lock);
				ctl.stats.status_writes++;
				pthread_mutex_unlock(&ctl.lock);
			}
			k8s_response_free(&r);
			free(w->path);
			free(w->body);
			free(w);
			w = next;
		}
		pthread_mutex_lock(&ctl.lock);
	}
	pthread_mutex_unlock(&ctl.lock);
	k8s_client_free(kc);
	return NULL;
}

/* ---- readiness and metrics ---------------------------------------------------- */

static const char *const informer_names[] = { "pods", "namespaces", "nodes", "profilingpolicies",
					      "clusterprofilingpolicies", "clusterprofilingbackends",
					      "replicasets" };

/*
 * Ready means doing its job: every cache has been listed once, and the lease
 * round-trips to the API server (a follower is ready too: it stands by).
 */
bool ctl_ready(struct ctl *c, char *why, size_t whylen)
{
	int64_t lease_ok;

	for (int i = 0; i < c->ninformers; i++)
		if (!k8s_informer_synced(c->informers[i])) {
			snprintf(why, whylen, "%s not listed yet", informer_names[i]);
			return false;
		}
	pthread_mutex_lock(&c->lock);
	lease_ok = c->lease_ok_unix;
	pthread_mutex_unlock(&c->lock);
	if (!c->opt.no_leader_election &&
	    time(NULL) - lease_ok > 2 * (int64_t)c->opt.lease_duration_s) {
		snprintf(why, whylen, "no answer about the lease for %lld s",
			 (long long)(time(NULL) - lease_ok));
		return false;
	}
	return true;
}

char *ctl_metrics(struct ctl *c, size_t *ret_len)
{
	struct metrics m;
	struct ctl_stats st;
	struct store_stats ss = { 0 };
	uint64_t agents = 0, targets_nodes = 0, buckets[6], count;
	double sum;
	int npol = 0, leader;
	static const char *const le[] = { "0.001", "0.005", "0.025", "0.1", "0.5", "+Inf" };

	if (metrics_begin(&m))
		return NULL;
	pthread_mutex_lock(&c->lock);
	st = c->stats;
	for (struct conn *cn = c->conns; cn; cn = cn->next)
		agents += cn->auth == AUTH_OK;
	hmap_for_each(&c->node_states, it)
		targets_nodes += ((struct node_state *)it->val)->msg != NULL;
	npol = (int)c->policies.n;
	leader = c->leader;
	memcpy(buckets, c->rec_buckets, sizeof(buckets));
	count = c->rec_count;
	sum = c->rec_sum_s;
	pthread_mutex_unlock(&c->lock);
	if (c->store)
		store_stats(c->store, &ss);
	metrics_family(&m, "profleet_controller_leader", "gauge", "1 while this replica holds the lease.");
	metrics_value(&m, "profleet_controller_leader", NULL, leader);
	metrics_family(&m, "profleet_controller_start_time_seconds", "gauge", "Start time, UNIX seconds.");
	metrics_value(&m, "profleet_controller_start_time_seconds", NULL, (double)c->started_unix);
	metrics_family(&m, "profleet_controller_policies", "gauge",
		       "ProfilingPolicy and ClusterProfilingPolicy objects known.");
	metrics_value(&m, "profleet_controller_policies", NULL, npol);
	metrics_family(&m, "profleet_controller_websocket_connections", "gauge",
		       "Agents connected and accepted.");
	metrics_value(&m, "profleet_controller_websocket_connections", NULL, (double)agents);
	metrics_family(&m, "profleet_controller_target_nodes", "gauge",
		       "Nodes that have a target set.");
	metrics_value(&m, "profleet_controller_target_nodes", NULL, (double)targets_nodes);
	metrics_family(&m, "profleet_controller_agent_connections_total", "counter",
		       "Websocket connections from agents, by outcome.");
	metrics_value(&m, "profleet_controller_agent_connections_total",
		      (const char *[]){ "result", "opened", NULL }, (double)st.accepted_conns);
	metrics_value(&m, "profleet_controller_agent_connections_total",
		      (const char *[]){ "result", "refused", NULL }, (double)st.refused);
	metrics_family(&m, "profleet_controller_frames_total", "counter", "Frames from agents.");
	metrics_value(&m, "profleet_controller_frames_total", (const char *[]){ "result", "ok", NULL },
		      (double)(st.frames_in - st.frames_bad));
	metrics_value(&m, "profleet_controller_frames_total", (const char *[]){ "result", "bad", NULL },
		      (double)st.frames_bad);
	metrics_family(&m, "profleet_controller_target_pushes_total", "counter",
		       "Target sets sent to agents.");
	metrics_value(&m, "profleet_controller_target_pushes_total", NULL, (double)st.pushes);
	metrics_family(&m, "profleet_controller_status_writes_total", "counter",
		       "Policy status patches, by result.");
	metrics_value(&m, "profleet_controller_status_writes_total",
		      (const char *[]){ "result", "ok", NULL }, (double)st.status_writes);
	metrics_value(&m, "profleet_controller_status_writes_total",
		      (const char *[]){ "result", "error", NULL }, (double)st.status_errors);
	metrics_family(&m, "profleet_controller_reconcile_duration_seconds", "histogram",
		       "Time to resolve every policy against every pod and encode the target sets.");
	for (int i = 0, acc = 0; i < 6; i++) {
		acc += (int)buckets[i];
		metrics_value(&m, "profleet_controller_reconcile_duration_seconds_bucket",
			      (const char *[]){ "le", le[i], NULL }, acc);
	}
	metrics_value(&m, "profleet_controller_reconcile_duration_seconds_sum", NULL, sum);
	metrics_value(&m, "profleet_controller_reconcile_duration_seconds_count", NULL, (double)count);
	{	/* per informer: read once, written as three families */
		static const struct {
			const char *name, *help;
		} fam[] = {
			{ "profleet_controller_watch_events_total", "Watch events, by resource." },
			{ "profleet_controller_watch_restarts_total",
			  "Watches started again (after a timeout, an error or 410 Gone), by resource." },
			{ "profleet_controller_relists_total",
			  "Full lists, by resource (the first, after 410 Gone, after errors)." },
		};
		struct k8s_informer_stats is[8];

		for (int i = 0; i < c->ninformers; i++)
			k8s_informer_stats(c->informers[i], &is[i]);
		for (int f = 0; f < 3; f++) {
			metrics_family(&m, fam[f].name, "counter", fam[f].help);
			for (int i = 0; i < c->ninformers; i++)
				metrics_value(&m, fam[f].name,
					      (const char *[]){ "resource", informer_names[i], NULL },
					      f == 0 ? (double)is[i].events :
					      f == 1 ? (double)(is[i].watches ? is[i].watches - 1 : 0) :
					      (double)is[i].lists);
		}
	}
	metrics_family(&m, "profleet_controller_store_uploads_total", "counter",
		       "Profiles agents sent to the built-in store, by result.");
	metrics_value(&m, "profleet_controller_store_uploads_total",
		      (const char *[]){ "result", "stored", NULL }, (double)st.uploads);
	metrics_value(&m, "profleet_controller_store_uploads_total",
		      (const char *[]){ "result", "refused", NULL }, (double)st.uploads_refused);
	metrics_family(&m, "profleet_controller_store_files", "gauge", "Profiles held by the store.");
	metrics_value(&m, "profleet_controller_store_files", NULL, (double)ss.files);
	metrics_family(&m, "profleet_controller_store_bytes", "gauge", "Bytes held by the store.");
	metrics_value(&m, "profleet_controller_store_bytes", NULL, (double)ss.bytes);
	metrics_family(&m, "profleet_controller_store_evictions_total", "counter",
		       "Profiles dropped to stay within the bounds, by reason.");
	metrics_value(&m, "profleet_controller_store_evictions_total",
		      (const char *[]){ "reason", "full", NULL }, (double)ss.evicted_full);
	metrics_value(&m, "profleet_controller_store_evictions_total",
		      (const char *[]){ "reason", "age", NULL }, (double)ss.evicted_age);
	return metrics_end(&m, ret_len);
}

/* ---- command line --------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: profleet-controller [OPTIONS]\n"
		"Watches ProfilingPolicy, ClusterProfilingPolicy and ClusterProfilingBackend\n"
		"resources and drives the per-node agents over websockets.\n\n"
		"  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
		"  --context NAME           kubeconfig context (default: current-context)\n"
		"  --listen ADDR:PORT       agents' websocket endpoint (default 0.0.0.0:7470)\n"
		"  --tls-cert PATH, --tls-key PATH\n"
		"                           serve the agents wss:// with this certificate and key (PEM)\n"
		"  --agent-service-account NS:NAME\n"
		"                           the agents' service account (default profleet-system:profleet-agent)\n"
		"  --agent-audience AUD     audience of the agents' tokens (default profleet)\n"
		"  --max-frequency HZ       the cluster's cap on sampling.frequencyHz (default 250)\n"
		"  --lease NS/NAME          leader-election Lease (default profleet-system/profleet-controller)\n"
		"  --identity ID            this replica's identity (default $POD_NAME or the host name)\n"
		"  --lease-duration S       seconds (default 15)\n"
		"  --no-leader-election     act as the leader without a Lease (one replica only)\n"
		"  --insecure-trust-agents  accept any agent without a TokenReview (benchmarks only)\n"
		"  --store-dir PATH         the built-in store, for policies that name no backend\n"
		"                           (default /var/lib/profleet/store)\n"
		"  --no-store               no built-in store: policies without a backend only count samples\n"
		"  --store-max-bytes N      bound of the store; the oldest profiles go first (default 1G;\n"
		"                           suffixes K, M, G)\n"
		"  --store-retention T      profiles older than this go (default 7d; suffixes s, m, h, d)\n"
		"  --http-listen ADDR:PORT  the store's HTTP API, /metrics, /healthz and /readyz\n"
		"                           (default 0.0.0.0:7471; 64 connections, 16 per client,\n"
		"                           idle ones closed after 15 s)\n"
		"  --log-level LEVEL        error, warn, notice, info, debug (default info)\n"
		"  -h, --help, -V, --version\n\n"
		"Every option can also be set in the environment: --max-frequency as\n"
		"PROFLEET_MAX_FREQUENCY, and so on.\n");
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static int parse_args(int argc, char **argv, struct ctl_options *o)
{
	static char identity[256];
	static char lease_buf[512], sa_buf[512];
	static const struct option longopts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "agent-service-account", required_argument, NULL, 's' },
		{ "agent-audience", required_argument, NULL, 'a' },
		{ "max-frequency", required_argument, NULL, 'm' },
		{ "lease", required_argument, NULL, 'L' },
		{ "identity", required_argument, NULL, 'i' },
		{ "lease-duration", required_argument, NULL, 'd' },
		{ "no-leader-election", no_argument, NULL, 'N' },
		{ "insecure-trust-agents", no_argument, NULL, 'T' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "store-dir", required_argument, NULL, 'S' },
		{ "no-store", no_argument, NULL, 'n' },
		{ "store-max-bytes", required_argument, NULL, 'B' },
		{ "store-retention", required_argument, NULL, 'R' },
		{ "http-listen", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen = env_or("PROFLEET_LISTEN", "0.0.0.0:7470");
	const char *sa = env_or("PROFLEET_AGENT_SERVICE_ACCOUNT", "profleet-system:profleet-agent");
	const char *lease = env_or("PROFLEET_LEASE", "profleet-system/profleet-controller");
	const char *maxhz = env_or("PROFLEET_MAX_FREQUENCY", "250");
	const char *dur = env_or("PROFLEET_LEASE_DURATION", "15");
	const char *store_max = env_or("PROFLEET_STORE_MAX_BYTES", "1G");
	const char *store_ret = env_or("PROFLEET_STORE_RETENTION", "7d");
	const char *http_listen = env_or("PROFLEET_HTTP_LISTEN", "0.0.0.0:7471");
	char *end, *sep;
	int ch;

	o->kubeconfig = env_or("PROFLEET_KUBECONFIG", NULL);
	o->context = env_or("PROFLEET_CONTEXT", NULL);
	o->agent_audience = env_or("PROFLEET_AGENT_AUDIENCE", "profleet");
	o->log_level = env_or("PROFLEET_LOG_LEVEL", NULL);
	o->tls_cert = env_or("PROFLEET_TLS_CERT", NULL);
	o->tls_key = env_or("PROFLEET_TLS_KEY", NULL);
	o->no_leader_election = getenv("PROFLEET_NO_LEADER_ELECTION") != NULL;
	o->insecure_trust_agents = getenv("PROFLEET_INSECURE_TRUST_AGENTS") != NULL;
	o->store_dir = env_or("PROFLEET_STORE_DIR", "/var/lib/profleet/store");
	if (getenv("PROFLEET_NO_STORE"))
		o->store_dir = NULL;
	if (gethostname(identity, sizeof(identity) - 1))
		snprintf(identity, sizeof(identity), "profleet-controller");
	o->identity = env_or("PROFLEET_IDENTITY", env_or("POD_NAME", identity));
	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'k': o->kubeconfig = optarg; break;
		case 'c': o->context = optarg; break;
		case 'l': listen = optarg; break;
		case 'C': o->tls_cert = optarg; break;
		case 'K': o->tls_key = optarg; break;
		case 's': sa = optarg; break;
		case 'a': o->agent_audience = optarg; break;
		case 'm': maxhz = optarg; break;
		case 'L': lease = optarg; break;
		case 'i': o->identity = optarg; break;
		case 'd': dur = optarg; break;
		case 'N': o->no_leader_election = true; break;
		case 'T': o->insecure_trust_agents = true; break;
		case 'v': o->log_level = optarg; break;
		case 'S': o->store_dir = optarg; break;
		case 'n': o->store_dir = NULL; break;
		case 'B': store_max = optarg; break;
		case 'R': store_ret = optarg; break;
		case 'H': http_listen = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("profleet-controller %s\n", PROFLEET_VERSION); exit(0);
		default:
			fprintf(stderr, "profleet-controller: see --help\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "profleet-controller: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	/* ADDR:PORT, [v6]:PORT or :PORT */
	{
		static char addr[256];
		const char *colon = strrchr(listen, ':');
		long port;

		if (!colon || (size_t)(colon - listen) >= sizeof(addr)) {
			fprintf(stderr, "profleet-controller: --listen %s: want ADDR:PORT\n", listen);
			return -1;
		}
		port = strtol(colon + 1, &end, 10);
		if (*end || port < 0 || port > 65535) {
			fprintf(stderr, "profleet-controller: --listen %s: bad port\n", listen);
			return -1;
		}
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - listen), listen);
		if (addr[0] == '[') {
			memmove(addr, addr + 1, strlen(addr));
			addr[strcspn(addr, "]")] = 0;
		}
		o->listen_addr = !addr[0] || !strcmp(addr, "0.0.0.0") ? NULL : addr;
		o->port = (int)port;
	}
	{
		static char haddr[256];
		const char *colon = strrchr(http_listen, ':');
		long port = colon ? strtol(colon + 1, &end, 10) : -1;

		if (!colon || (size_t)(colon - http_listen) >= sizeof(haddr) || *end || port < 0 ||
		    port > 65535) {
			fprintf(stderr, "profleet-controller: --http-listen %s: want ADDR:PORT\n",
				http_listen);
			return -1;
		}
		snprintf(haddr, sizeof(haddr), "%.*s", (int)(colon - http_listen), http_listen);
		o->http_addr = haddr[0] ? haddr : "0.0.0.0";
		o->http_port = (int)port;
	}
	{
		double v = strtod(store_max, &end);
		double mul = !*end ? 1 : !strcmp(end, "K") ? 1024.0 : !strcmp(end, "M") ?
			1048576.0 : !strcmp(end, "G") ? 1073741824.0 : -1;

		if (end == store_max || mul < 0 || v * mul < 65536) {
			fprintf(stderr, "profleet-controller: --store-max-bytes %s: want a size of "
				"64K or more (suffixes K, M, G)\n", store_max);
			return -1;
		}
		o->store_max_bytes = (uint64_t)(v * mul);
		v = strtod(store_ret, &end);
		mul = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ?
			3600 : !strcmp(end, "d") ? 86400 : -1;
		if (end == store_ret || mul < 0 || v * mul < 60) {
			fprintf(stderr, "profleet-controller: --store-retention %s: want 60s or more "
				"(suffixes s, m, h, d)\n", store_ret);
			return -1;
		}
		o->store_retention_s = (int64_t)(v * mul);
	}
	snprintf(sa_buf, sizeof(sa_buf), "%s", sa);
	sep = strchr(sa_buf, ':');
	if (!sep || sep == sa_buf || !sep[1]) {
		fprintf(stderr, "profleet-controller: --agent-service-account %s: want NS:NAME\n", sa);
		return -1;
	}
	*sep = 0;
	o->agent_sa_ns = sa_buf;
	o->agent_sa_name = sep + 1;
	snprintf(lease_buf, sizeof(lease_buf), "%s", lease);
	sep = strchr(lease_buf, '/');
	if (!sep || sep == lease_buf || !sep[1]) {
		fprintf(stderr, "profleet-controller: --lease %s: want NAMESPACE/NAME\n", lease);
		return -1;
	}
	*sep = 0;
	o->lease_ns = lease_buf;
	o->lease_name = sep + 1;
	o->max_hz = (int)strtol(maxhz, &end, 10);
	if (*end || o->max_hz < 1 || o->max_hz > 1000) {
		fprintf(stderr, "profleet-controller: --max-frequency %s: want 1..1000\n", maxhz);
		return -1;
	}
	o->lease_duration_s = (int)strtol(dur, &end, 10);
	if (*end || o->lease_duration_s < 2 || o->lease_duration_s > 3600) {
		fprintf(stderr, "profleet-controller: --lease-duration %s: want 2..3600\n", dur);
		return -1;
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "profleet-controller: --tls-cert and --tls-key go together\n");
		return -1;
	}
	for (const char *const *f = (const char *const[]){ o->tls_cert, o->tls_key, NULL }; *f; f++)
		if (access(*f, R_OK)) {
			fprintf(stderr, "profleet-controller: %s: %s\n", *f, strerror(errno));
			return -1;
		}
	if (o->log_level && log_set_level_name(o->log_level)) {
		fprintf(stderr, "profleet-controller: --log-level %s: unknown level\n", o->log_level);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct k8s_informer_ops pod_ops = { pods_begin, pods_event, pods_end };
	static const struct k8s_informer_ops nl_ops = { nl_begin, nl_event, nl_end };
	static const struct k8s_informer_ops pol_ops = { pol_begin, pol_event, pol_end };
	static const struct k8s_informer_ops cpb_ops = { cpb_begin, cpb_event, cpb_end };
	struct k8s_informer **inf = ctl.informers;
	pthread_t t_rec, t_auth, t_lease, t_sec;
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512];

	if (!getenv("PROFLEET_LOG_LEVEL"))
		log_set_level(LOG_LVL_INFO);
	if (parse_args(argc, argv, &ctl.opt))
		return 2;
	if (k8s_config_load(ctl.opt.kubeconfig, ctl.opt.context, &ctl.kcfg, err, sizeof(err))) {
		fprintf(stderr, "profleet-controller: %s\n", err);
		return 2;
	}
	srandom((unsigned int)(time(NULL) ^ getpid()));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&ctl.lock, NULL);
	pthread_cond_init(&ctl.wake, NULL);
	if (ctl.opt.no_leader_election)
		ctl.leader = true;
	ctl.started_unix = time(NULL);
	if (ctl.opt.store_dir) {
		struct store_opts so = { .dir = ctl.opt.store_dir,
					 .max_bytes = ctl.opt.store_max_bytes,
					 .retention_s = ctl.opt.store_retention_s };
		struct store_stats ss;

		ctl.store = store_open(&so, err, sizeof(err));
		if (!ctl.store) {
			log_error("%s", err);
			return 1;
		}
		store_expire(ctl.store, time(NULL));
		store_stats(ctl.store, &ss);
		log_info("store %s: %llu profile(s), %llu bytes", ctl.opt.store_dir,
			 (unsigned long long)ss.files, (unsigned long long)ss.bytes);
	}
	if (server_start(&ctl))
		return 1;
	ctl.http = http_start(&ctl, err, sizeof(err));
	if (!ctl.http) {
		log_error("%s", err);
		server_stop(&ctl);
		return 1;
	}
	log_notice("profleet-controller %s: API server %s, agents on %s://%s:%d, identity %s",
		   PROFLEET_VERSION, ctl.kcfg.server, ctl.opt.tls_cert ? "wss" : "ws",
		   ctl.opt.listen_addr ? ctl.opt.listen_addr : "*", ctl.opt.port, ctl.opt.identity);
	log_notice("HTTP API on %s:%d, store %s", ctl.opt.http_addr, ctl.opt.http_port,
		   ctl.opt.store_dir ? ctl.opt.store_dir : "off");
	inf[0] = k8s_informer_start(&ctl.kcfg, "/api/v1/pods", &pod_ops, NULL);
	inf[1] = k8s_informer_start(&ctl.kcfg, "/api/v1/namespaces", &nl_ops, &ns_ctx);
	inf[2] = k8s_informer_start(&ctl.kcfg, "/api/v1/nodes", &nl_ops, &node_ctx);
	inf[3] = k8s_informer_start(&ctl.kcfg, GROUP_PATH "/profilingpolicies", &pol_ops, NULL);
	inf[4] = k8s_informer_start(&ctl.kcfg, GROUP_PATH "/clusterprofilingpolicies", &pol_ops,
				    (void *)1);
	inf[5] = k8s_informer_start(&ctl.kcfg, GROUP_PATH "/clusterprofilingbackends", &cpb_ops,
				    NULL);
	/* ReplicaSets: only to name a pod's Deployment */
	inf[6] = k8s_informer_start(&ctl.kcfg, "/apis/apps/v1/replicasets", &nl_ops, &rs_ctx);
	ctl.ninformers = 7;
	for (int i = 0; i < 7; i++)
		if (!inf[i]) {
			log_error("cannot start informers");
			return 1;
		}
	pthread_create(&t_rec, NULL, reconcile_main, NULL);
	pthread_create(&t_auth, NULL, auth_main, NULL);
	pthread_create(&t_sec, NULL, secrets_main, NULL);
	if (!ctl.opt.no_leader_election)
		pthread_create(&t_lease, NULL, lease_main, NULL);
	server_run(&ctl);

	log_notice("stopping");
	__atomic_store_n(&ctl.stop, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&ctl.lock);
	pthread_cond_broadcast(&ctl.wake);
	pthread_mutex_unlock(&ctl.lock);
	pthread_join(t_rec, NULL);
	pthread_join(t_auth, NULL);
	pthread_join(t_sec, NULL);
	if (!ctl.opt.no_leader_election)
		pthread_join(t_lease, NULL);
	for (int i = 0; i < 7; i++)
		k8s_informer_stop(inf[i]);
	httpd_stop(ctl.http);
	server_stop(&ctl);
	store_close(ctl.store);
	k8s_config_free(&ctl.kcfg);
	return 0;
}
