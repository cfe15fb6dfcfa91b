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
#include <time.h>
#include <libwebsockets.h>

#include "controller.h"
#include "fleet.pb-c.h"
#include "log.h"
#include "pprof_merge.h"
#include "store.h"

struct pss {
	struct conn *c;
};

static void unbind(struct ctl *c, struct conn *cn)
{
	struct node_state *ns;

	if (!cn->node[0] || cn->auth != AUTH_OK)
		return;
	ns = hmap_get(&c->node_states, cn->node);
	if (ns && ns->conn == cn)
		ns->conn = NULL;
}

static struct node_state *node_state_get(struct ctl *c, const char *name)
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
	return ns;
}

static void refuse(struct conn *cn, const char *why)
{
	snprintf(cn->refusal, sizeof(cn->refusal), "%s", why);
	cn->close_after_send = true;
	cn->need_send = true;
}

static void handle_counters(struct ctl *c, struct conn *cn,
			    const Profleet__Fleet__V1__Counters *m)
{
	struct node_state *ns = hmap_get(&c->node_states, cn->node);

	if (!ns)
		return;
	if (ns->started_unix && m->started_unix != ns->started_unix) {
		/* the agent restarted: what it counted before stays counted */
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
	for (size_t i = 0; i < m->n_exporters && i < 256; i++) {
		const Profleet__Fleet__V1__ExporterCount *x = m->exporters[i];
		struct export_state *es;

		if (!x->backend || !*x->backend || strlen(x->backend) > 253)
			continue;
		es = hmap_get(&ns->exporters, x->backend);
		if (!es) {
			es = calloc(1, sizeof(*es));
			if (!es || hmap_put(&ns->exporters, x->backend, es, NULL)) {
				free(es);
				continue;
			}
		}
		es->sent = x->sent;
		es->dropped = x->dropped;
		es->retries = x->retries;
		es->last_success = x->last_success_unix;
		es->last_failure = x->last_failure_unix;
		es->queued = x->queued;
		snprintf(es->last_error, sizeof(es->last_error), "%s",
			 x->last_error ? x->last_error : "");
	}
	ns->started_unix = m->started_unix;
	ns->total_samples = m->samples;
	ns->dropped = m->dropped;
	ns->errors = m->errors;
	for (size_t i = 0; i < m->n_policies && i < 4096; i++) {
		const char *key = m->policies[i]->policy;
		uint64_t *v;

		if (!key || !*key || strlen(key) > 400)
			continue;
		v = hmap_get(&ns->samples, key);
		if (!v) {
			v = calloc(1, sizeof(*v));
			if (!v || hmap_put(&ns->samples, key, v, NULL)) {
				free(v);
				continue;
			}
		}
		*v = m->policies[i]->samples;
	}
	c->dirty = true;
}

/* Returns false when the connection must be closed. Called under ctl.lock. */
static bool handle_message(struct ctl *c, struct conn *cn, const uint8_t *buf, size_t len)
{
	Profleet__Fleet__V1__AgentMessage *m;
	bool ok = true;

	m = profleet__fleet__v1__agent_message__unpack(NULL, len, buf);
	if (!m) {
		log_warn("fleet: conn %llu (%s): undecodable frame of %zu bytes: closing",
			 (unsigned long long)cn->id, cn->node[0] ? cn->node : "?", len);
		c->stats.frames_bad++;
		return false;
	}
	switch (m->msg_case) {
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_HELLO: {
		const Profleet__Fleet__V1__Hello *h = m->hello;

		if (cn->auth != AUTH_NONE) {
			log_warn("fleet: conn %llu: second hello: closing", (unsigned long long)cn->id);
			ok = false;
			break;
		}
		if (h->protocol != FLEET_PROTOCOL_VERSION) {
			refuse(cn, "unsupported protocol version");
			cn->auth = AUTH_REFUSED;
			break;
		}
		if (!h->node_name || !*h->node_name || strlen(h->node_name) >= sizeof(cn->node) ||
		    !h->token || strlen(h->token) >= sizeof(cn->token)) {
			refuse(cn, "hello needs a node name (< 254 bytes) and a token");
			cn->auth = AUTH_REFUSED;
			break;
		}
		snprintf(cn->node, sizeof(cn->node), "%s", h->node_name);
		snprintf(cn->token, sizeof(cn->token), "%s", h->token);
		cn->auth = AUTH_PENDING;
		c->auth_work = true;
		pthread_cond_broadcast(&c->wake);
		break;
	}
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_ACK:
		if (cn->auth == AUTH_NONE) {
			log_warn("fleet: conn %llu: ack before hello: closing", (unsigned long long)cn->id);
			ok = false;
			break;
		}
		if (cn->auth != AUTH_OK)	/* queued before the review finished: stale */
			break;
		if (m->ack->version <= cn->sent_version) {
			struct node_state *ns = hmap_get(&c->node_states, cn->node);

			cn->acked_version = m->ack->version;
			cn->found = m->ack->containers_found;
			cn->missing = m->ack->containers_missing;
			if (ns)
				ns->acked = m->ack->version;
			c->dirty = true;
			pthread_cond_broadcast(&c->wake);
		}
		break;
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_COUNTERS:
		if (cn->auth == AUTH_NONE) {
			log_warn("fleet: conn %llu: counters before hello: closing",
				 (unsigned long long)cn->id);
			ok = false;
			break;
		}
		if (cn->auth != AUTH_OK)
			break;
		handle_counters(c, cn, m->counters);
		break;
	case PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_PROFILE:
		if (cn->auth != AUTH_OK || cn->upload || cn->nacks == FLEET_MAX_STORE_ACKS) {
			log_warn("fleet: conn %llu: profile upload %s: closing",
				 (unsigned long long)cn->id, cn->auth != AUTH_OK ?
				 "before being accepted" : "while acks are owed");
			ok = false;
			break;
		}
		cn->upload = m;	/* stored by the caller, outside the lock */
		return true;
	default:
		log_warn("fleet: conn %llu: empty or unknown message: closing",
			 (unsigned long long)cn->id);
		c->stats.frames_bad++;
		ok = false;
	}
	profleet__fleet__v1__agent_message__free_unpacked(m, NULL);
	return ok;
}

/*
 * Stores an uploaded profile for those of its policies that use the built-in
 * store, and queues the answer. Main thread, without ctl.lock held: the disk
 * write and the check that the bytes are a readable pprof take a while.
 */
static void handle_upload(struct ctl *c, struct conn *cn)
{
	Profleet__Fleet__V1__AgentMessage *m = cn->upload;
	const Profleet__Fleet__V1__ProfileUpload *u = m->profile;
	char **keys = calloc(u->n_policies + 1, sizeof(char *)), reason[160] = "";
	size_t nkeys = 0;
	uint32_t stored = 0;

	cn->upload = NULL;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; keys && i < u->n_policies && i < 1024; i++) {
		const char *k = u->policies[i];
		char key[600];
		const struct policy *p;

		if (!k || strlen(k) > 500)
			continue;
		snprintf(key, sizeof(key), "%c:%s", strchr(k, '/') ? 'P' : 'C', k);
		p = hmap_get(&c->policies, key);
		if (p && !p->invalid_reason[0] && !p->nbackends && (keys[nkeys] = strdup(k)))
			nkeys++;
	}
	pthread_mutex_unlock(&c->lock);
	if (!c->store) {
		snprintf(reason, sizeof(reason), "this controller has no store (--store-dir)");
	} else if (!nkeys) {
		snprintf(reason, sizeof(reason), "none of its policies uses the built-in store");
	} else {
		char err[200];

		if (pprof_validate(u->pprof_gz.data, u->pprof_gz.len, err, sizeof(err)))
			snprintf(reason, sizeof(reason), "not a readable pprof: %s", err);
		for (size_t i = 0; !reason[0] && i < nkeys; i++) {
			int e = store_put(c->store, keys[i], cn->node, u->from_unix, u->until_unix,
					  u->pprof_gz.data, u->pprof_gz.len);

			if (!e)
				stored++;
			else
				snprintf(reason, sizeof(reason), "store: %s", strerror(-e));
		}
	}
	if (stored)
		reason[0] = 0;	/* stored somewhere: said ok, a failure for another was logged */
	else
		log_kv(LOG_LVL_WARN, LOG_KV("node", cn->node, "policy",
					    u->n_policies ? u->policies[0] : ""),
		       "fleet: a profile was not stored: %s", reason);
	pthread_mutex_lock(&c->lock);
	{
		struct node_state *ns = hmap_get(&c->node_states, cn->node);

		if (stored) {
			c->stats.uploads++;
			if (ns)
				ns->uploads++;
		} else {
			c->stats.uploads_refused++;
			if (ns)
				ns->uploads_refused++;
		}
	}
	if (cn->nacks < FLEET_MAX_STORE_ACKS) {
		cn->acks[cn->nacks].id = u->id;
		cn->acks[cn->nacks].ok = stored > 0;
		cn->acks[cn->nacks].policies = stored;
		snprintf(cn->acks[cn->nacks].reason, sizeof(cn->acks[0].reason), "%s", reason);
		cn->nacks++;
	}
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; keys && i < nkeys; i++)
		free(keys[i]);
	free(keys);
	profleet__fleet__v1__agent_message__free_unpacked(m, NULL);
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

	pthread_mutex_lock(&c->lock);
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
	pthread_mutex_unlock(&c->lock);
	if (close_now)
		return -1;
	if (!out)
		return 0;
	n = lws_write(cn->wsi, out + LWS_PRE, len, LWS_WRITE_BINARY);
	free(out);
	if (n < (int)len)
		return -1;
	/* more to do (the close after a refusal, a newer set): ask again */
	pthread_mutex_lock(&c->lock);
	if (cn->close_after_send || cn->need_send || cn->nacks)
		lws_callback_on_writable(cn->wsi);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void on_cancelled(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	for (struct conn *cn = c->conns; cn; cn = cn->next) {
		if (cn->auth == AUTH_OK && !cn->need_send) {
			struct node_state *ns = hmap_get(&c->node_states, cn->node);

			if (ns && ns->conn == cn && ns->msg && ns->version != cn->sent_version)
				cn->need_send = true;
		}
		if (cn->need_send || cn->close_after_send)
			lws_callback_on_writable(cn->wsi);
	}
	pthread_mutex_unlock(&c->lock);
}

static int cb_fleet(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *pss = user;
	struct ctl *c = &ctl;
	struct conn *cn = pss ? pss->c : NULL;
	unsigned int limit;
	bool ok;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return -1;
		cn->wsi = wsi;
		pss->c = cn;
		pthread_mutex_lock(&c->lock);
		cn->id = ++c->next_conn_id;
		cn->next = c->conns;
		c->conns = cn;
		c->stats.accepted_conns++;
		pthread_mutex_unlock(&c->lock);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, FLEET_HELLO_TIMEOUT_S);
		break;
	case LWS_CALLBACK_RECEIVE:
		if (!cn)
			return -1;
		/* the auth thread sets it under the lock */
		pthread_mutex_lock(&c->lock);
		limit = cn->auth == AUTH_OK ? FLEET_MAX_AGENT_FRAME : FLEET_MAX_HELLO_FRAME;
		pthread_mutex_unlock(&c->lock);
		if (cn->rx_len + len > limit) {
			log_warn("fleet: conn %llu (%s): frame over %u bytes: closing",
				 (unsigned long long)cn->id, cn->node, limit);
			pthread_mutex_lock(&c->lock);
			c->stats.frames_bad++;
			pthread_mutex_unlock(&c->lock);
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
			return -1;
		}
		if (!lws_frame_is_binary(wsi)) {
			pthread_mutex_lock(&c->lock);
			c->stats.frames_bad++;
			pthread_mutex_unlock(&c->lock);
			log_warn("fleet: conn %llu: text frame: closing", (unsigned long long)cn->id);
			lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, NULL, 0);
			return -1;
		}
		{
			uint8_t *p = realloc(cn->rx, cn->rx_len + len + 1);

			if (!p)
				return -1;
			cn->rx = p;
			memcpy(cn->rx + cn->rx_len, in, len);
			cn->rx_len += len;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		pthread_mutex_lock(&c->lock);
		c->stats.frames_in++;
		ok = handle_message(c, cn, cn->rx, cn->rx_len);
		if (cn->auth == AUTH_PENDING || cn->auth == AUTH_OK)
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		if (cn->need_send || cn->close_after_send)
			lws_callback_on_writable(wsi);
		pthread_mutex_unlock(&c->lock);
		cn->rx_len = 0;
		if (ok && cn->upload) {
			handle_upload(c, cn);
			lws_callback_on_writable(wsi);
		}
		if (!ok) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
			return -1;
		}
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!cn)
			return -1;
		return write_pending(c, cn);
	case LWS_CALLBACK_CLOSED:
		if (!cn)
			break;
		pthread_mutex_lock(&c->lock);
		unbind(c, cn);
		for (struct conn **pp = &c->conns; *pp; pp = &(*pp)->next)
			if (*pp == cn) {
				*pp = cn->next;
				break;
			}
		c->dirty = true;
		pthread_cond_broadcast(&c->wake);
		pthread_mutex_unlock(&c->lock);
		if (cn->node[0])
			log_kv(LOG_LVL_INFO, LOG_KV("node", cn->node),
			       "fleet: agent disconnected (conn %llu)", (unsigned long long)cn->id);
		free(cn->rx);
		if (cn->upload)
			profleet__fleet__v1__agent_message__free_unpacked(cn->upload, NULL);
		free(cn);
		pss->c = NULL;
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		on_cancelled(c);
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

/* Called by the auth thread under ctl.lock when a review is done. */
void server_auth_done(struct ctl *c, struct conn *cn, bool ok, const char *why);
void server_auth_done(struct ctl *c, struct conn *cn, bool ok, const char *why)
{
	struct node_state *ns;

	memset(cn->token, 0, sizeof(cn->token));
	if (!ok) {
		log_kv(LOG_LVL_WARN, LOG_KV("node", cn->node), "fleet: agent refused: %s", why);
		c->stats.refused++;
		cn->auth = AUTH_REFUSED;
		refuse(cn, why);
		return;
	}
	ns = node_state_get(c, cn->node);
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
	cn->auth = AUTH_OK;
	cn->need_send = true;
	c->dirty = true;
	log_kv(LOG_LVL_INFO, LOG_KV("node", cn->node), "fleet: agent connected (conn %llu)",
	       (unsigned long long)cn->id);
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
	c->lws = lws_create_context(&info);
	if (!c->lws) {
		log_error("cannot listen on %s:%d", c->opt.listen_addr ? c->opt.listen_addr : "*",
			  c->opt.port);
		return -EADDRINUSE;
	}
	return 0;
}

void server_run(struct ctl *c)
{
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
		if (lws_service(c->lws, 0) < 0)
			break;
}

void server_wake(struct ctl *c)
{
	if (c->lws)
		lws_cancel_service(c->lws);
}

void server_stop(struct ctl *c)
{
	if (c->lws)
		lws_context_destroy(c->lws);
	c->lws = NULL;
}
