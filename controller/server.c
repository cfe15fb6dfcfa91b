// SPDX-License-Identifier: Apache-2.0
/*
 * The agents' websocket server (libwebsockets, main thread). An agent's first
 * message is a Hello with its token; the auth thread reviews it; then the
 * agent gets its node's target set whenever that changes, and sends acks and
 * counters. A frame that does not decode, or is too large, closes only that
 * connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>
#include <libwebsockets.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "controller.h"
#include "fleet.pb-c.h"
#include "log.h"
#include "pprof_merge.h"
#include "reconcile.h"
#include "server.h"
#include "store.h"
#include "workq.h"

#define UPLOADS_MAX_DONE 16

struct pss {
	struct conn *c;
};

static void unbind(struct ctl *c, struct conn *cn)
{
	struct node_state *ns;

	if (!cn->node[0] || cn->auth != AUTH_OK)
		return;
	ns = hmap_get(&c->node_states, cn->node);
	if (ns && ns->conn == cn) {
		ns->conn = NULL;
		ns->idle_since = time(NULL);
		reconcile_node_due_locked(c, cn->node);
	}
}

struct node_state *server_node_state(struct ctl *c, const char *name)
{
	struct node_state *ns = hmap_get(&c->node_states, name);

	if (ns)
		return ns;
	ns = calloc(1, sizeof(*ns));
	if (!ns || !(ns->name = strdup(name)) || hmap_put(&c->node_states, name, ns, NULL)) {
		if (ns)
			free(ns->name);
		free(ns);
		return NULL;
	}
	ns->idle_since = time(NULL);
	return ns;
}

static int cmp_str_p(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void server_node_set_policies(struct node_state *ns, char **policies, int n, int64_t now)
{
	hmap_for_each(&ns->released, it)
		if (*(int64_t *)it->val < now)
			free(hmap_del_entry(&ns->released, it));
	for (int k = 0; k < ns->npolicies; k++) {
		const char *key = ns->policies[k] + 2;	/* as agents name it: past "P:" */
		int64_t *until;

		/* still held: nothing to release (policies are sorted) */
		if (n && bsearch(&ns->policies[k], policies, (size_t)n, sizeof(char *), cmp_str_p)) {
			free(ns->policies[k]);
			continue;
		}
		until = hmap_get(&ns->released, key);

		if (!until && (until = malloc(sizeof(*until))) &&
		    hmap_put(&ns->released, key, until, NULL)) {
			free(until);
			until = NULL;
		}
		if (until)
			*until = now + FLEET_UPLOAD_GRACE_S;
		free(ns->policies[k]);
	}
	free(ns->policies);
	ns->policies = policies;
	ns->npolicies = n;
}

void server_node_acked_locked(struct ctl *c, struct node_state *ns, uint64_t version)
{
	ns->acked = version;
	memmove(&ns->acks[0], &ns->acks[1], sizeof(ns->acks) - sizeof(ns->acks[0]));
	ns->acks[NODE_ACKS_KEPT - 1].version = version;
	ns->acks[NODE_ACKS_KEPT - 1].ms = mono_ns() / 1000000;
	reconcile_node_due_locked(c, ns->name);
}

/* Does the node hold the policy's targets, or did it lately? Under ctl.lock. */
static bool node_holds(const struct node_state *ns, const char *key, int64_t now)
{
	const int64_t *until;

	for (int i = 0; i < ns->npolicies; i++)
		if (!strcmp(ns->policies[i] + 2, key))	/* past "P:" or "C:" */
			return true;
	until = hmap_get(&ns->released, key);
	return until && *until >= now;
}

static void node_state_free(struct node_state *ns);

void server_sweep_nodes(struct ctl *c, int64_t now)
{
	hmap_for_each(&c->node_states, it) {
		struct node_state *ns = it->val;

		/* its counters go too: a policy's status keeps the samples the server holds */
		if (!ns->conn && !ns->npolicies && !ns->released.n && ns->idle_since &&
		    now - ns->idle_since > FLEET_UPLOAD_GRACE_S)
			node_state_free(hmap_del_entry(&c->node_states, it));
	}
}

static void refuse(struct conn *cn, const char *why)
{
	snprintf(cn->refusal, sizeof(cn->refusal), "%s", why);
	cn->close_after_send = true;
	cn->need_send = true;
}

/* The agent restarted: what it counted before stays counted. */
static void keep_counted(struct node_state *ns)
{
	hmap_for_each(&ns->samples, it) {
		uint64_t *b = hmap_get(&ns->base, it->key), *v = it->val;

		if (!b) {
			b = calloc(1, sizeof(*b));
			if (!b || hmap_put(&ns->base, it->key, b, NULL)) {
				free(b);
				continue;
			}
		}
		*b += *v;
		*v = 0;
	}
}

/* true when what it says of a backend changed */
static bool export_counters(struct node_state *ns, const Profleet__Fleet__V1__ExporterCount *x)
{
	struct export_state *es;
	bool changed;

	if (!x->backend || !*x->backend || strlen(x->backend) > 253)
		return false;
	es = hmap_get(&ns->exporters, x->backend);
	if (!es && ns->exporters.n >= FLEET_NODE_EXPORTERS_MAX)
		return false;	/* more backends than any target set names: not counted */
	if (!es) {
		es = calloc(1, sizeof(*es));
		if (!es || hmap_put(&ns->exporters, x->backend, es, NULL)) {
			free(es);
			return false;
		}
	}
	changed = es->dropped != x->dropped || es->last_success != x->last_success_unix ||
		  es->last_failure != x->last_failure_unix;
	es->sent = x->sent;
	es->dropped = x->dropped;
	es->retries = x->retries;
	es->last_success = x->last_success_unix;
	es->last_failure = x->last_failure_unix;
	es->queued = x->queued;
	snprintf(es->last_error, sizeof(es->last_error), "%s", x->last_error ? x->last_error : "");
	return changed;
}

/* Samples per policy; the status of those that changed is due soon. */
static void policy_counters(struct ctl *c, struct node_state *ns,
			    const Profleet__Fleet__V1__Counters *m)
{
	for (size_t i = 0; i < m->n_policies && i < 4096; i++) {
		const char *key = m->policies[i]->policy;
		uint64_t *v;

		if (!key || !*key || strlen(key) > 400)
			continue;
		v = hmap_get(&ns->samples, key);
		if (!v && !node_holds(ns, key, time(NULL)))
			continue;	/* counted only for its node's policies: memory stays bounded */
		if (!v) {
			v = calloc(1, sizeof(*v));
			if (!v || hmap_put(&ns->samples, key, v, NULL)) {
				free(v);
				continue;
			}
		}
		if (*v != m->policies[i]->samples)
			reconcile_counted_locked(c, key);
		*v = m->policies[i]->samples;
	}
}

static void handle_counters(struct ctl *c, struct conn *cn,
			    const Profleet__Fleet__V1__Counters *m)
{
	struct node_state *ns = hmap_get(&c->node_states, cn->node);
	bool exports = false;

	if (!ns)
		return;
	if (ns->started_unix && m->started_unix != ns->started_unix)
		keep_counted(ns);
	for (size_t i = 0; i < m->n_exporters && i < 256; i++)
		exports |= export_counters(ns, m->exporters[i]);
	ns->started_unix = m->started_unix;
	ns->total_samples = m->samples;
	ns->dropped = m->dropped;
	ns->errors = m->errors;
	policy_counters(c, ns, m);
	if (exports)	/* a backend that fails or recovers: Degraded, soon */
		for (int i = 0; i < ns->npolicies; i++)
			reconcile_counted_locked(c, ns->policies[i]);
}

/* Connections in the given states. Under ctl.lock. */
static int count_conns(const struct ctl *c, enum auth_state a, enum auth_state b)
{
	int n = 0;

	for (const struct conn *cn = c->conns; cn; cn = cn->next)
		n += cn->auth == a || cn->auth == b;
	return n;
}

static int reviews_pending(const struct ctl *c)
{
	return count_conns(c, AUTH_PENDING, AUTH_PENDING);
}

/* The hello's token, zeroed and freed (once reviewed, or with its connection). */
static void token_drop(struct conn *cn)
{
	if (!cn->token)
		return;
	explicit_bzero(cn->token, strlen(cn->token));
	free(cn->token);
	cn->token = NULL;
}

static bool handle_hello(struct ctl *c, struct conn *cn, const Profleet__Fleet__V1__Hello *h)
{
	if (cn->auth != AUTH_NONE) {
		log_warn("fleet: conn %llu: second hello: closing", (unsigned long long)cn->id);
		return false;
	}
	if (h->protocol != FLEET_PROTOCOL_VERSION) {
		refuse(cn, "unsupported protocol version");
		cn->auth = AUTH_REFUSED;
		return true;
	}
	if (!h->node_name || !*h->node_name || strlen(h->node_name) >= sizeof(cn->node) ||
	    !h->token || strlen(h->token) >= FLEET_TOKEN_MAX) {
		refuse(cn, "hello needs a node name (< 254 bytes) and a token");
		cn->auth = AUTH_REFUSED;
		return true;
	}
	if (reviews_pending(c) >= FLEET_MAX_REVIEWS) {
		c->stats.reviews_over_limit++;
		refuse(cn, "too many agents waiting for their review: try again");
		cn->auth = AUTH_REFUSED;
		return true;
	}
	token_drop(cn);	/* a second hello's */
	cn->token = strdup(h->token);
	explicit_bzero(h->token, strlen(h->token));	/* the decoded copy is freed next */
	if (!cn->token) {
		refuse(cn, "controller out of memory");
		cn->auth = AUTH_REFUSED;
		return true;
	}
	snprintf(cn->node, sizeof(cn->node), "%s", h->node_name);
	cn->have_version = h->have_version;
	cn->auth = AUTH_PENDING;
	c->auth_work = true;
	pthread_cond_broadcast(&c->wake);
	return true;
}

static void handle_ack(struct ctl *c, struct conn *cn, const Profleet__Fleet__V1__Ack *a)
{
	struct node_state *ns;

	if (a->version > cn->sent_version)
		return;	/* not a version it was sent */
	ns = hmap_get(&c->node_states, cn->node);
	cn->acked_version = a->version;
	cn->found = a->containers_found;
	cn->missing = a->containers_missing;
	if (ns && ns->acked != a->version)
		server_node_acked_locked(c, ns, a->version);
	if (ns && ns->conn == cn && a->version == ns->version) {
		/* held by its agent: 5000 nodes' sets are 50 MiB not to keep */
		free(ns->msg);
		ns->msg = NULL;
		ns->msg_len = 0;
	}
}

/* A message before the agent's hello, or after its refusal. */
static bool out_of_turn(struct conn *cn, const char *what, bool *ret_ok)
{
	if (cn->auth == AUTH_NONE) {
		log_warn("fleet: conn %llu: %s before hello: closing", (unsigned long long)cn->id, what);
		*ret_ok = false;
		return true;
	}
	return cn->auth != AUTH_OK;	/* queued before the review finished: stale */
}

/* Returns false when the connection must be closed; *ret_keep when m is an
 * upload the caller now owns. Under ctl.lock. */
static bool handle_message(struct ctl *c, struct conn *cn, Profleet__Fleet__V1__AgentMessage *m,
			   bool *ret_keep)
{
	bool ok = true;

	*ret_keep = false;
	switch (m->msg_case) {
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_HELLO:
		return handle_hello(c, cn, m->hello);
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_ACK:
		if (!out_of_turn(cn, "ack", &ok))
			handle_ack(c, cn, m->ack);
		return ok;
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_COUNTERS:
		if (!out_of_turn(cn, "counters", &ok))
			handle_counters(c, cn, m->counters);
		return ok;
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_PROFILE:
		if (cn->auth != AUTH_OK || cn->uploading || cn->nacks == FLEET_MAX_STORE_ACKS) {
			log_warn("fleet: conn %llu: profile upload %s: closing",
				 (unsigned long long)cn->id, cn->auth != AUTH_OK ?
				 "before being accepted" : "while acks are owed");
			return false;
		}
		*ret_keep = true;
		return true;
	default:
		log_warn("fleet: conn %llu: empty or unknown message: closing",
			 (unsigned long long)cn->id);
		c->stats.frames_bad++;
		return false;
	}
}

/* ---- the store worker ------------------------------------------------------------ */

struct upload {
	struct workq_item item;	/* first: the workq hands it back */
	/* in: what the worker may touch (the store has its own lock) */
	uint64_t conn_id;
	char node[254];
	char **keys;		/* the policies of the upload that use the built-in store */
	size_t nkeys;
	Profleet__Fleet__V1__AgentMessage *m;
	struct store *store;
	struct lws_context *lws;	/* woken when done (lws_cancel_service is thread-safe) */
	/* out */
	bool not_held;		/* none of its policies is the node's */
	uint32_t stored;
	char reason[160];
};

struct uploads {
	struct workq *q;
};

static void upload_free(struct upload *u)
{
	for (size_t i = 0; i < u->nkeys; i++)
		free(u->keys[i]);
	free(u->keys);
	if (u->m)
		profleet__fleet__v1__agent_message__free_unpacked(u->m, NULL);
	free(u);
}

/* On the worker: checks the bytes are a readable pprof, and stores them. */
static void upload_work(struct workq_item *it)
{
	struct upload *u = (struct upload *)it;
	const Profleet__Fleet__V1__ProfileUpload *p = u->m->profile;
	char err[200];

	if (!u->store)
		snprintf(u->reason, sizeof(u->reason), "this controller has no store (--store-dir)");
	else if (u->not_held)
		snprintf(u->reason, sizeof(u->reason), "none of its policies targets node %s",
			 u->node);
	else if (!u->nkeys)
		snprintf(u->reason, sizeof(u->reason), "none of its policies uses the built-in store");
	else if (pprof_validate(p->pprof_gz.data, p->pprof_gz.len, err, sizeof(err)))
		snprintf(u->reason, sizeof(u->reason), "not a readable pprof: %s", err);
	if (!u->reason[0]) {
		size_t stored = 0;
		int e = store_put(u->store, (const char *const *)u->keys, u->nkeys, u->node,
				  p->from_unix, p->until_unix, p->pprof_gz.data, p->pprof_gz.len,
				  &stored);

		u->stored = (uint32_t)stored;
		if (e)
			snprintf(u->reason, sizeof(u->reason), "store: %s", strerror(-e));
	}
	if (u->stored)
		u->reason[0] = 0;	/* stored somewhere: said ok, a failure for another was logged */
	else
		log_kv(LOG_LVL_WARN, LOG_KV("node", u->node, "policy",
					    p->n_policies ? p->policies[0] : ""),
		       "fleet: a profile was not stored: %s", u->reason);
	if (u->lws)	/* uploads_done runs at every wake */
		lws_cancel_service(u->lws);
}

/*
 * The policies of an upload that the sending node holds (an agent uploads
 * into no other policy), and of those, the ones that use the store.
 */
static void upload_keys(struct ctl *c, const Profleet__Fleet__V1__ProfileUpload *p,
			struct upload *u)
{
	int64_t now = time(NULL);
	const struct node_state *ns;
	size_t n = 0;

	ctl_lock(c);
	ns = hmap_get(&c->node_states, u->node);
	for (size_t i = 0; ns && i < p->n_policies && i < 1024; i++) {
		const char *k = p->policies[i];

		bool dup = false;

		for (size_t j = 0; k && j < n && !dup; j++)	/* each policy once */
			dup = !strcmp(u->keys[j], k);
		if (k && !dup && strlen(k) <= 500 && node_holds(ns, k, now) &&
		    (u->keys[n] = strdup(k)))
			n++;
	}
	ctl_unlock(c);
	u->not_held = p->n_policies && !n;
	pthread_rwlock_rdlock(&c->cache_lock);
	for (size_t i = 0; i < n; i++) {
		const struct policy *pol;
		char key[600];

		policy_cache_key(key, sizeof(key), u->keys[i]);
		pol = hmap_get(&c->policies, key);
		if (pol && !pol->invalid_reason[0] && !pol->nbackends) {
			u->keys[u->nkeys++] = u->keys[i];	/* kept: moved down */
		} else {
			free(u->keys[i]);
		}
	}
	pthread_rwlock_unlock(&c->cache_lock);
	for (size_t i = u->nkeys; i < n; i++)
		u->keys[i] = NULL;
}

/* An upload for the worker, with the keys of its policies that use the store. */
static struct upload *upload_new(struct ctl *c, struct conn *cn,
				 Profleet__Fleet__V1__AgentMessage *m)
{
	const Profleet__Fleet__V1__ProfileUpload *p = m->profile;
	struct upload *u = calloc(1, sizeof(*u));

	if (!u || !(u->keys = calloc(p->n_policies + 1, sizeof(char *)))) {
		free(u);
		return NULL;
	}
	u->item.work = upload_work;
	u->conn_id = cn->id;
	snprintf(u->node, sizeof(u->node), "%s", cn->node);
	u->store = c->store;
	u->lws = c->lws;
	u->m = m;
	upload_keys(c, p, u);
	return u;
}

static struct conn *conn_by_id(struct ctl *c, uint64_t id)
{
	for (struct conn *cn = c->conns; cn; cn = cn->next)
		if (cn->id == id)
			return cn;
	return NULL;
}

/* Main thread: answers the uploads the worker is done with. */
static void uploads_done(struct ctl *c)
{
	struct workq_item *it;

	while (c->uploads && (it = workq_take(c->uploads->q))) {
		struct upload *u = (struct upload *)it;
		struct node_state *ns;
		struct conn *cn;

		ctl_lock(c);
		ns = hmap_get(&c->node_states, u->node);
		if (u->stored)
			c->stats.uploads++;
		else
			c->stats.uploads_refused++;
		if (ns && u->stored)
			ns->uploads++;
		else if (ns)
			ns->uploads_refused++;
		cn = conn_by_id(c, u->conn_id);
		if (cn && cn->nacks < FLEET_MAX_STORE_ACKS) {
			cn->acks[cn->nacks].id = u->m->profile->id;
			cn->acks[cn->nacks].ok = u->stored > 0;
			cn->acks[cn->nacks].policies = u->stored;
			snprintf(cn->acks[cn->nacks].reason, sizeof(cn->acks[0].reason), "%s",
				 u->reason);
			cn->nacks++;
		}
		if (cn) {
			cn->uploading = false;
			lws_rx_flow_control(cn->wsi, 1);
			lws_callback_on_writable(cn->wsi);
		}
		ctl_unlock(c);
		upload_free(u);
	}
}

bool server_handle_frame(struct ctl *c, struct conn *cn, const uint8_t *buf, size_t len,
			 void **ret_upload)
{
	Profleet__Fleet__V1__AgentMessage *m;
	bool ok, keep = false;

	*ret_upload = NULL;
	m = profleet__fleet__v1__agent_message__unpack(NULL, len, buf);
	ctl_lock(c);
	c->stats.frames_in++;
	if (!m) {
		log_warn("fleet: conn %llu (%s): undecodable frame of %zu bytes: closing",
			 (unsigned long long)cn->id, cn->node[0] ? cn->node : "?", len);
		c->stats.frames_bad++;
		ctl_unlock(c);
		return false;
	}
	ok = handle_message(c, cn, m, &keep);
	ctl_unlock(c);
	if (keep) {
		*ret_upload = upload_new(c, cn, m);
		if (*ret_upload)
			return true;
		log_error("fleet: conn %llu: out of memory for an upload: closing",
			  (unsigned long long)cn->id);
		ok = false;
	}
	profleet__fleet__v1__agent_message__free_unpacked(m, NULL);
	return ok;
}

/* A ControllerMessage packed after LWS_PRE bytes of headroom, or NULL. */
static uint8_t *pack_ctl_msg(const Profleet__Fleet__V1__ControllerMessage *m, size_t *ret_len)
{
	size_t len = profleet__fleet__v1__controller_message__get_packed_size(m);
	uint8_t *out = malloc(LWS_PRE + len);

	if (out)
		profleet__fleet__v1__controller_message__pack(m, out + LWS_PRE);
	*ret_len = len;
	return out;
}

/* Sends what the connection is owed: a refusal or its node's current target set. */
static int write_pending(struct ctl *c, struct conn *cn)
{
	uint8_t *out = NULL;
	size_t len = 0;
	bool close_now = false;
	int n;

	ctl_lock(c);
	if (cn->refusal[0]) {
		Profleet__Fleet__V1__ControllerMessage m = PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__INIT;
		Profleet__Fleet__V1__Refusal r = PROFLEET__FLEET__V1__REFUSAL__INIT;

		r.reason = cn->refusal;
		m.msg_case = PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_REFUSAL;
		m.refusal = &r;
		out = pack_ctl_msg(&m, &len);
		cn->refusal[0] = 0;
	} else if (cn->close_after_send) {
		close_now = true;
	} else if (cn->auth == AUTH_OK && cn->nacks) {
		Profleet__Fleet__V1__ControllerMessage m = PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__INIT;
		Profleet__Fleet__V1__StoreAck a = PROFLEET__FLEET__V1__STORE_ACK__INIT;

		a.id = cn->acks[0].id;
		a.ok = cn->acks[0].ok;
		a.policies = cn->acks[0].policies;
		a.reason = cn->acks[0].reason;
		m.msg_case = PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_STORED;
		m.stored = &a;
		out = pack_ctl_msg(&m, &len);
		memmove(&cn->acks[0], &cn->acks[1], (size_t)(cn->nacks - 1) * sizeof(cn->acks[0]));
		cn->nacks--;
	} else if (cn->auth == AUTH_OK && cn->need_send) {
		struct node_state *ns = hmap_get(&c->node_states, cn->node);

		if (ns && ns->msg && ns->version != cn->sent_version) {
			len = ns->msg_len;
			out = malloc(LWS_PRE + len);
			if (out) {
				memcpy(out + LWS_PRE, ns->msg, len);
				cn->sent_version = ns->version;
				c->stats.pushes++;
			}
		}
		cn->need_send = false;
	}
	ctl_unlock(c);
	if (close_now)
		return -1;
	if (!out)
		return 0;
	n = lws_write(cn->wsi, out + LWS_PRE, len, LWS_WRITE_BINARY);
	free(out);
	if (n < (int)len)
		return -1;
	/* more to do (the close after a refusal, a newer set): ask again */
	ctl_lock(c);
	if (cn->close_after_send || cn->need_send || cn->nacks)
		lws_callback_on_writable(cn->wsi);
	ctl_unlock(c);
	return 0;
}

/* A connection's new set is asked for when its node has one it was not sent. */
static void want_set(struct ctl *c, struct conn *cn)
{
	const struct node_state *ns;

	if (cn->auth != AUTH_OK || cn->need_send)
		return;
	ns = hmap_get(&c->node_states, cn->node);
	if (ns && ns->conn == cn && ns->msg && ns->version != cn->sent_version)
		cn->need_send = true;
}

/* The nodes with a new set (server_sets_ready_locked): their agents' connections. Under ctl.lock. */
static void sets_ready(struct ctl *c)
{
	hmap_for_each(&c->sets_ready, it) {
		const struct node_state *ns = hmap_get(&c->node_states, it->key);
		struct conn *cn = ns ? ns->conn : NULL;

		if (!cn)
			continue;
		want_set(c, cn);
		if (cn->need_send)
			lws_callback_on_writable(cn->wsi);
	}
	hmap_free(&c->sets_ready);
}

/* all: every connection is looked at (server_wake), else only those of new sets. */
static void on_cancelled(struct ctl *c, bool all)
{
	ctl_lock(c);
	for (struct conn *cn = all ? c->conns : NULL; cn; cn = cn->next) {
		/* the hello timeout runs until the review accepted the agent */
		if (cn->auth == AUTH_OK && !cn->timeout_off) {
			lws_set_timeout(cn->wsi, NO_PENDING_TIMEOUT, 0);
			cn->timeout_off = true;
		}
		want_set(c, cn);
		if (cn->need_send || cn->close_after_send)
			lws_callback_on_writable(cn->wsi);
	}
	sets_ready(c);
	ctl_unlock(c);
}

void server_sets_ready_locked(struct ctl *c, const char *node)
{
	/* out of memory: the next server_wake's walk of every connection sends it */
	if (hmap_put(&c->sets_ready, node, NULL, NULL))
		__atomic_store_n(&c->wake_asked, true, __ATOMIC_RELEASE);
}

void server_wake_sets(struct ctl *c)
{
	if (c->lws)
		lws_cancel_service(c->lws);
}

/* The peer's address, an IPv4-mapped IPv6 one as plain IPv4 ("" when unknown). */
static void peer_address(struct lws *wsi, char *buf, size_t len)
{
	const char *p = lws_get_peer_simple(wsi, buf, len);

	if (!p) {
		buf[0] = 0;
		return;
	}
	if (!strncasecmp(buf, "::ffff:", 7) && strchr(buf + 7, '.'))
		memmove(buf, buf + 7, strlen(buf + 7) + 1);
}

static int on_established(struct ctl *c, struct lws *wsi, struct pss *pss)
{
	struct conn *cn;

	ctl_lock(c);
	if (count_conns(c, AUTH_NONE, AUTH_PENDING) >= FLEET_MAX_UNACCEPTED) {
		c->stats.conns_over_limit++;
		ctl_unlock(c);
		return -1;	/* closed at once: its hello could not be read in time anyway */
	}
	ctl_unlock(c);
	cn = calloc(1, sizeof(*cn));
	if (!cn)
		return -1;
	cn->wsi = wsi;
	peer_address(wsi, cn->peer, sizeof(cn->peer));
	pss->c = cn;
	ctl_lock(c);
	cn->id = ++c->next_conn_id;
	cn->next = c->conns;
	c->conns = cn;
	c->stats.accepted_conns++;
	ctl_unlock(c);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, FLEET_HELLO_TIMEOUT_S);
	return 0;
}

static int refuse_frame(struct ctl *c, struct lws *wsi, enum lws_close_status why)
{
	ctl_lock(c);
	c->stats.frames_bad++;
	ctl_unlock(c);
	lws_close_reason(wsi, why, NULL, 0);
	return -1;
}

/* A whole frame assembled: handled, and an upload handed to the store worker. */
static int on_frame(struct ctl *c, struct lws *wsi, struct conn *cn)
{
	void *upload;
	bool ok = server_handle_frame(c, cn, cn->rx, cn->rx_len, &upload);

	if (cn->rx_len > FLEET_MAX_HELLO_FRAME) {	/* a large frame's buffer is not kept */
		free(cn->rx);
		cn->rx = NULL;
	} else {	/* nor what it held: a hello's token */
		explicit_bzero(cn->rx, cn->rx_len);
	}
	cn->rx_len = 0;
	ctl_lock(c);
	if (cn->need_send || cn->close_after_send)
		lws_callback_on_writable(wsi);
	ctl_unlock(c);
	if (upload) {	/* read nothing more from it until it is answered */
		cn->uploading = true;
		lws_rx_flow_control(wsi, 0);
		workq_submit(c->uploads->q, upload);
	}
	if (!ok) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
		return -1;
	}
	return 0;
}

static int on_receive(struct ctl *c, struct lws *wsi, struct conn *cn, const void *in,
		      size_t len)
{
	unsigned int limit;
	uint8_t *p;

	/* the auth thread sets it under the lock */
	ctl_lock(c);
	limit = cn->auth == AUTH_OK ? FLEET_MAX_AGENT_FRAME : FLEET_MAX_HELLO_FRAME;
	ctl_unlock(c);
	if (cn->rx_len + len > limit) {
		log_warn("fleet: conn %llu (%s): frame over %u bytes: closing",
			 (unsigned long long)cn->id, cn->node, limit);
		return refuse_frame(c, wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
	}
	if (!lws_frame_is_binary(wsi)) {
		log_warn("fleet: conn %llu: text frame: closing", (unsigned long long)cn->id);
		return refuse_frame(c, wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
	}
	p = realloc(cn->rx, cn->rx_len + len + 1);
	if (!p)
		return -1;
	cn->rx = p;
	memcpy(cn->rx + cn->rx_len, in, len);
	cn->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	return on_frame(c, wsi, cn);
}

static void on_closed(struct ctl *c, struct pss *pss, struct conn *cn)
{
	ctl_lock(c);
	unbind(c, cn);
	for (struct conn **pp = &c->conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	ctl_unlock(c);
	if (cn->node[0])
		log_kv(LOG_LVL_INFO, LOG_KV("node", cn->node), "fleet: agent disconnected (conn %llu)",
		       (unsigned long long)cn->id);
	free(cn->rx);
	token_drop(cn);
	free(cn);	/* an upload of it still with the worker finds no conn by its id */
	pss->c = NULL;
}

static int cb_fleet(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *pss = user;
	struct ctl *c = lws_context_user(lws_get_context(wsi));
	struct conn *cn = pss ? pss->c : NULL;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(c, wsi, pss);
	case LWS_CALLBACK_RECEIVE:
		return cn ? on_receive(c, wsi, cn, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return cn ? write_pending(c, cn) : -1;
	case LWS_CALLBACK_CLOSED:
		if (cn)
			on_closed(c, pss, cn);
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (ctl_stopping(c) && c->evloop) {
			ev_break(c->evloop, EVBREAK_ALL);
			break;
		}
		uploads_done(c);
		/* the tick's wake (server_tick) asks nothing of the connections */
		on_cancelled(c, !c->evloop ||
				    __atomic_exchange_n(&c->wake_asked, false, __ATOMIC_ACQ_REL));
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "http", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
	{ "profleet.fleet.v1", cb_fleet, sizeof(struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

void server_auth_done(struct ctl *c, struct conn *cn, bool ok, const char *why)
{
	struct node_state *ns;

	token_drop(cn);	/* a connection keeps no token once reviewed */
	if (!ok) {
		log_kv(LOG_LVL_WARN, LOG_KV("node", cn->node), "fleet: agent refused: %s", why);
		c->stats.refused++;
		cn->auth = AUTH_REFUSED;
		refuse(cn, why);
		return;
	}
	ns = server_node_state(c, cn->node);
	if (!ns) {
		cn->auth = AUTH_REFUSED;
		refuse(cn, "controller out of memory");
		return;
	}
	if (ns->conn && ns->conn != cn) {
		/* a newer connection for the node wins; the old one is likely dead */
		refuse(ns->conn, "replaced by a newer connection of the same node");
		ns->conn->auth = AUTH_REFUSED;
	}
	ns->conn = cn;
	ns->idle_since = 0;
	cn->auth = AUTH_OK;
	cn->need_send = true;
	reconcile_node_due_locked(c, cn->node);
	if (ns->msg)
		;	/* sent when writable */
	else if (ns->version && cn->have_version == ns->version)
		cn->sent_version = ns->version;	/* it runs the node's set: nothing to send */
	else {	/* no set yet, or one acked and dropped: its bytes are made again */
		ns->need_msg = ns->version != 0;
		reconcile_node_set_locked(c, cn->node);
	}
	log_kv(LOG_LVL_INFO, LOG_KV("node", cn->node), "fleet: agent connected (conn %llu)",
	       (unsigned long long)cn->id);
}

/*
 * The websocket context on an epoll loop (libev's, through lws's evlib_ev
 * plugin): lws's own loop polls every connection at each turn, which at 5000
 * agents took a third of the controller's CPU in the kernel's poll. Without
 * the plugin, lws's own loop still works.
 */
#define LWS_EVLIB_EV LWS_INSTALL_LIBDIR "/libwebsockets-evlib_ev.so"

static struct lws_context *create_context(struct ctl *c, struct lws_context_creation_info *info)
{
	struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
	void *loops[1] = { loop };
	struct lws_context *ctx = NULL;

	if (loop) {
		info->options |= LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = loops;
		ctx = lws_create_context(info);
		info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = NULL;
		if (ctx) {
			log_info("fleet: the agents' connections on an epoll loop (libev)");
			c->evloop = loop;
			return ctx;
		}
		ev_loop_destroy(loop);
		/* lws says not why: with its plugin there, the cause is another (the port) */
		if (!access(LWS_EVLIB_EV, R_OK))
			return NULL;
		log_warn("fleet: no epoll loop for the agents' connections (no %s: package "
			 "libwebsockets-evlib-ev): polling them all at each turn", LWS_EVLIB_EV);
	}
	return lws_create_context(info);
}

int server_start(struct ctl *c)
{
	struct lws_context_creation_info info;

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = c->opt.port;
	info.iface = c->opt.listen_addr;
	/* lws binds a given IPv4 address only with IPv6 off (else it listens on [::]) */
	if (c->opt.listen_addr && !strchr(c->opt.listen_addr, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = protocols;
	info.user = c;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	if (c->opt.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = c->opt.tls_cert;
		info.ssl_private_key_filepath = c->opt.tls_key;
	}
	info.ka_time = 60;	/* TCP keepalive finds dead agents; no ws pings: idle costs nothing */
	info.ka_probes = 3;
	info.ka_interval = 10;
	c->uploads = calloc(1, sizeof(*c->uploads));
	if (!c->uploads || !(c->uploads->q = workq_new("ctl-store", UPLOADS_MAX_DONE))) {
		log_error("cannot start the store worker: %s", strerror(errno));
		free(c->uploads);
		c->uploads = NULL;
		return -ENOMEM;
	}
	c->lws = create_context(c, &info);
	if (!c->lws) {
		log_error("cannot listen on %s:%d", c->opt.listen_addr ? c->opt.listen_addr : "*",
			  c->opt.port);
		server_stop(c);
		return -EADDRINUSE;
	}
	return 0;
}

/* ---- the certificate, read again when its files change ----------------------------- */

/*
 * A renewed certificate (cert-manager's, a Secret updated by hand: the kubelet
 * swaps the mounted files) is taken without a restart: every CERT_CHECK_S the
 * service thread looks at the files, and when they changed, hands them to
 * lws for the connections that come next. A pair that is not one (a key
 * that is not the certificate's, a file half written) is logged and
 * counted; the one in use stays.
 */
#define CERT_CHECK_S 30
#define CERT_MAX_BYTES (1 << 20)

struct cert_watch {
	lws_sorted_usec_list_t sul;	/* first: the callback gets it */
	struct ctl *c;
	struct stat cert, key;	/* as last loaded */
};

static bool file_changed(const struct stat *now, const struct stat *before)
{
	return now->st_ino != before->st_ino || now->st_dev != before->st_dev ||
	       now->st_size != before->st_size || now->st_mtim.tv_sec != before->st_mtim.tv_sec ||
	       now->st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = f ? malloc(CERT_MAX_BYTES + 1) : NULL;

	*len = buf ? fread(buf, 1, CERT_MAX_BYTES + 1, f) : 0;
	if (f)
		fclose(f);
	if (buf && (*len == 0 || *len > CERT_MAX_BYTES)) {
		free(buf);
		return NULL;
	}
	if (buf)
		buf[*len] = 0;
	return buf;
}

/* Whether cert (PEM) parses and key (PEM) is its private key. */
static bool cert_pair_ok(const char *cert, size_t lc, const char *key, size_t lk)
{
	BIO *bc = BIO_new_mem_buf(cert, (int)lc), *bk = BIO_new_mem_buf(key, (int)lk);
	X509 *x = bc ? PEM_read_bio_X509_AUX(bc, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pk = bk ? PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL) : NULL;
	bool ok = x && pk && X509_check_private_key(x, pk) == 1;

	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(bk);
	BIO_free(bc);
	return ok;
}

/*
 * Loads the pair into lws; true when it took them. lws reads the files again
 * and does not say whether they loaded, and OpenSSL drops the key in use as
 * soon as a certificate that is not its own comes: so the pair is checked
 * first, from what was read, and a pair that is not one never reaches lws
 * (nor does one whose files change while being read: the next check sees it).
 * On the service thread.
 */
static bool cert_load(struct ctl *c)
{
	size_t lc = 0, lk = 0;
	char *cert = slurp(c->opt.tls_cert, &lc), *key = slurp(c->opt.tls_key, &lk);
	bool ok = cert && key && cert_pair_ok(cert, lc, key, lk) &&
		  !lws_tls_cert_updated(c->lws, c->opt.tls_cert, c->opt.tls_key, cert, lc, key, lk);

	if (key)
		OPENSSL_cleanse(key, lk);
	free(cert);
	free(key);
	return ok;
}

static void cert_check(lws_sorted_usec_list_t *sul)
{
	struct cert_watch *w = (struct cert_watch *)sul;
	struct ctl *c = w->c;
	struct stat sc, sk, sc2, sk2;

	if (!stat(c->opt.tls_cert, &sc) && !stat(c->opt.tls_key, &sk) &&
	    (file_changed(&sc, &w->cert) || file_changed(&sk, &w->key))) {
		bool ok = cert_load(c);

		/* either way a broken pair is said once, not at every check; files that
		 * changed while they were read are read again at the next */
		w->cert = sc;
		w->key = sk;
		if (stat(c->opt.tls_cert, &sc2) || stat(c->opt.tls_key, &sk2) ||
		    file_changed(&sc2, &sc) || file_changed(&sk2, &sk))
			memset(&w->cert, 0, sizeof(w->cert));
		ctl_lock(c);
		if (ok)
			c->stats.cert_reloads++;
		else
			c->stats.cert_reload_failures++;
		ctl_unlock(c);
		if (ok)
			log_info("TLS: certificate %s read again", c->opt.tls_cert);
		else
			log_warn("TLS: %s and %s changed but do not load: the certificate in use stays",
				 c->opt.tls_cert, c->opt.tls_key);
	}
	lws_sul_schedule(c->lws, 0, &w->sul, cert_check, (lws_usec_t)CERT_CHECK_S * LWS_US_PER_SEC);
}

static void cert_watch_start(struct ctl *c)
{
	struct cert_watch *w;

	if (!c->opt.tls_cert || !(w = calloc(1, sizeof(*w))))
		return;
	w->c = c;
	stat(c->opt.tls_cert, &w->cert);	/* what lws loaded at the start */
	stat(c->opt.tls_key, &w->key);
	c->certs = w;
	lws_sul_schedule(c->lws, 0, &w->sul, cert_check, (lws_usec_t)CERT_CHECK_S * LWS_US_PER_SEC);
}

/*
 * lws 4.1 under libev arms one timer for its timeouts and never moves it
 * earlier: a deadline set after a later one was armed (a hello timeout, 10 s,
 * after the certificate check, 30 s) would wait for that one. Any event on the
 * loop runs what is due, so a wake every second keeps them to the second.
 */
static void server_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl *c = w->data;

	(void)loop;
	(void)revents;
	lws_cancel_service(c->lws);
}

void server_run(struct ctl *c)
{
	cert_watch_start(c);
	if (c->evloop) {	/* until on_cancelled sees the stop */
		ev_timer tick;

		ev_timer_init(&tick, server_tick, 1.0, 1.0);
		tick.data = c;
		ev_timer_start(c->evloop, &tick);
		if (!ctl_stopping(c))
			ev_run(c->evloop, 0);
		ev_timer_stop(c->evloop, &tick);
		return;
	}
	while (!ctl_stopping(c))
		if (lws_service(c->lws, 0) < 0)
			break;
}

void server_wake(struct ctl *c)
{
	__atomic_store_n(&c->wake_asked, true, __ATOMIC_RELEASE);
	if (c->lws)
		lws_cancel_service(c->lws);
}

void server_upload_free(void *upload)
{
	if (upload)
		upload_free(upload);
}

static void upload_release(struct workq_item *it)
{
	upload_free((struct upload *)it);
}

static void node_state_free(struct node_state *ns)
{
	struct hmap *maps[] = { &ns->samples, &ns->base, &ns->exporters, &ns->released };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		hmap_for_each(maps[i], it)
			free(it->val);
		hmap_free(maps[i]);
	}
	for (int i = 0; i < ns->npolicies; i++)
		free(ns->policies[i]);
	free(ns->policies);
	free(ns->msg);
	free(ns->name);
	free(ns);
}

void server_stop(struct ctl *c)
{
	if (c->uploads) {	/* first: its items wake c->lws */
		workq_free(c->uploads->q, upload_release);
		free(c->uploads);
		c->uploads = NULL;
	}
	if (c->lws)
		lws_context_destroy(c->lws);	/* closes every connection */
	c->lws = NULL;
	if (c->evloop)
		ev_loop_destroy(c->evloop);
	c->evloop = NULL;
	free(c->certs);		/* after the context: its timer list held it */
	c->certs = NULL;
	hmap_for_each(&c->node_states, it)
		node_state_free(it->val);
	hmap_free(&c->node_states);
	hmap_free(&c->sets_ready);
}
