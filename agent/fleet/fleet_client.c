// SPDX-License-Identifier: Apache-2.0
/* The agent's fleet websocket client; see fleet_client.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libwebsockets.h>

#include "fleet_client.h"
#include "k8s.h"
#include "log.h"

#define FLEET_PROTOCOL_VERSION 1
#define FLEET_PASSING_RETRIES 10	/* passing refusals in a row retried within ~2 s */
#define MAX_CONTROLLER_FRAME (64u << 20)	/* a target set of many thousand containers */
#define MAX_TOKEN 16384

struct fleet_client {
	struct fleet_client_opts opt;
	char host[256], path[512];
	int port;
	bool tls;
	pthread_t thread;
	volatile int stop;
	struct lws_context *ctx;
	struct lws *wsi;
	lws_sorted_usec_list_t sul;
	unsigned int attempt;
	unsigned int passing;	/* passing refusals in a row (fleet_refusal_passing) */
	/* rx assembly (lws thread) */
	uint8_t *rx;
	size_t rx_len;
	bool rx_overflow;
	/* shared, under lock */
	pthread_mutex_t lock;
	Profleet__Fleet__V1__TargetSet *pending;
	uint8_t *out_ack, *out_counters;	/* packed, LWS_PRE headroom */
	size_t out_ack_len, out_counters_len;
	/* the one profile upload in flight (fleet_client_upload waits on upload_cond) */
	pthread_cond_t upload_cond;
	uint8_t *out_upload;	/* packed, LWS_PRE headroom; NULL once written */
	size_t out_upload_len;
	uint64_t upload_id, upload_done;	/* id sent, id answered */
	bool upload_ok;
	char upload_reason[160];
	uint64_t conn_gen;	/* bumped at every disconnect: an upload in flight is lost */
	bool hello_due;
	bool accepted;		/* a target set arrived on this connection: acks may go */
	uint64_t have_version;
	struct fleet_client_stats stats;
};

int fleet_parse_url(const char *url, bool *ret_tls, char *host, size_t hostlen, int *ret_port,
		    char *path, size_t pathlen)
{
	const char *p, *slash, *colon;
	size_t n;

	if (!strncmp(url, "ws://", 5)) {
		*ret_tls = false;
		p = url + 5;
	} else if (!strncmp(url, "wss://", 6)) {
		*ret_tls = true;
		p = url + 6;
	} else {
		return -EINVAL;
	}
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', n);
	if (p[0] == '[') {	/* [v6]:port */
		const char *rb = memchr(p, ']', n);

		if (!rb)
			return -EINVAL;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if ((size_t)(rb - p - 1) >= hostlen || rb == p + 1)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(rb - p - 1), p + 1);
	} else {
		size_t hl = colon ? (size_t)(colon - p) : n;

		if (!hl || hl >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)hl, p);
	}
	*ret_port = *ret_tls ? 443 : 80;
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);

		if (end != p + n || port < 1 || port > 65535)
			return -EINVAL;
		*ret_port = (int)port;
	}
	snprintf(path, pathlen, "%s", slash ? slash : "/");
	return 0;
}

static uint8_t *pack_agent_msg(const Profleet__Fleet__V1__AgentMessage *m, size_t *ret_len)
{
	size_t len = profleet__fleet__v1__agent_message__get_packed_size(m);
	uint8_t *buf = malloc(LWS_PRE + len + 1);

	if (!buf)
		return NULL;
	*ret_len = profleet__fleet__v1__agent_message__pack(m, buf + LWS_PRE);
	return buf;
}

static char *read_token(const char *path)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char *t = calloc(1, MAX_TOKEN + 1);
	size_t n;

	if (!t) {
		if (f)
			fclose(f);
		return NULL;
	}
	if (!f)
		return t;
	n = fread(t, 1, MAX_TOKEN, f);
	fclose(f);
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
		n--;
	t[n] = 0;
	return t;
}

static void connect_now(lws_sorted_usec_list_t *sul);

static void schedule_reconnect(struct fleet_client *fc)
{
	unsigned long long top = 500, ms;

	for (unsigned int i = 0; i < fc->attempt && top < 30000; i++)
		top *= 2;
	if (top > 30000)
		top = 30000;
	ms = 250 + (unsigned long long)random() % top;	/* jitter: no reconnect storms */
	fc->attempt++;
	lws_sul_schedule(fc->ctx, 0, &fc->sul, connect_now, (lws_usec_t)ms * 1000);
}

static void connect_now(lws_sorted_usec_list_t *sul)
{
	struct fleet_client *fc = lws_container_of(sul, struct fleet_client, sul);
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = fc->ctx;
	ci.address = fc->host;
	ci.port = fc->port;
	ci.path = fc->path;
	ci.host = fc->host;
	ci.origin = fc->host;
	ci.protocol = "profleet.fleet.v1";
	ci.ssl_connection = fc->tls ? LCCSCF_USE_SSL : 0;
	ci.pwsi = &fc->wsi;
	if (!lws_client_connect_via_info(&ci)) {
		fc->wsi = NULL;
		schedule_reconnect(fc);
	}
}

static void handle_frame(struct fleet_client *fc, const uint8_t *buf, size_t len)
{
	Profleet__Fleet__V1__ControllerMessage *m;

	m = profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
	pthread_mutex_lock(&fc->lock);
	if (!m) {
		fc->stats.bad_frames++;
		log_warn("fleet: undecodable frame of %zu bytes from the controller", len);
	} else if (m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_TARGETS) {
		/* keep the set, drop the envelope */
		if (fc->pending)
			profleet__fleet__v1__target_set__free_unpacked(fc->pending, NULL);
		fc->pending = m->targets;
		m->targets = NULL;
		m->msg_case = PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG__NOT_SET;
		fc->stats.sets_received++;
		fc->attempt = 0;	/* a working connection: start backoff over */
		fc->passing = 0;
		fc->accepted = true;
	} else if (m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_STORED) {
		if (m->stored->id == fc->upload_id) {
			fc->upload_done = m->stored->id;
			fc->upload_ok = m->stored->ok;
			snprintf(fc->upload_reason, sizeof(fc->upload_reason), "%s",
				 m->stored->reason ? m->stored->reason : "");
			pthread_cond_broadcast(&fc->upload_cond);
		}
	} else if (m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_REFUSAL) {
		bool passing = fleet_refusal_passing(m->refusal->reason);	/* before a cut */

		fc->stats.refusals++;
		snprintf(fc->stats.last_refusal, sizeof(fc->stats.last_refusal), "%s",
			 m->refusal->reason ? m->refusal->reason : "");
		log_warn("fleet: the controller refused this agent: %s", fc->stats.last_refusal);
		/* soon again, but not for ever: a failure that lasts is backed off from,
		 * or a whole fleet would review its tokens every second */
		fc->passing = passing ? fc->passing + 1 : 0;
		if (passing && fc->passing <= FLEET_PASSING_RETRIES && fc->attempt > 2)
			fc->attempt = 2;
	}
	pthread_mutex_unlock(&fc->lock);
	if (m)
		profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
}

bool fleet_refusal_passing(const char *reason)
{
	static const char soon[] = " (retry soon)";	/* the controller's FLEET_RETRY_SOON */
	size_t n = reason ? strlen(reason) : 0;

	/* not the leader: another replica is, or soon will be */
	return n && (!strcmp(reason, "not the leader") ||
		     (n >= sizeof(soon) - 1 && !strcmp(reason + n - (sizeof(soon) - 1), soon)));
}

static int write_next(struct fleet_client *fc, struct lws *wsi)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	bool more;
	int n;

	pthread_mutex_lock(&fc->lock);
	if (fc->hello_due) {
		Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
		Profleet__Fleet__V1__Hello h = PROFLEET__FLEET__V1__HELLO__INIT;
		char *tok = read_token(fc->opt.token_file);

		h.protocol = FLEET_PROTOCOL_VERSION;
		h.node_name = (char *)fc->opt.node_name;
		h.token = tok ? tok : (char *)"";
		h.agent_version = (char *)PROFLEET_VERSION;
		h.have_version = fc->have_version;
		m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_HELLO;
		m.hello = &h;
		buf = pack_agent_msg(&m, &len);
		if (tok) {
			memset(tok, 0, strlen(tok));
			free(tok);
		}
		fc->hello_due = false;
	} else if (!fc->accepted) {
		/* nothing but the hello until the controller has accepted us */
	} else if (fc->out_ack) {
		buf = fc->out_ack;
		len = fc->out_ack_len;
		fc->out_ack = NULL;
	} else if (fc->out_counters) {
		buf = fc->out_counters;
		len = fc->out_counters_len;
		fc->out_counters = NULL;
	} else if (fc->out_upload) {
		buf = fc->out_upload;
		len = fc->out_upload_len;
		fc->out_upload = NULL;
	}
	more = fc->accepted && (fc->out_ack || fc->out_counters || fc->out_upload);
	pthread_mutex_unlock(&fc->lock);
	if (!buf)
		return 0;
	n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY);
	free(buf);
	if (n < (int)len)
		return -1;
	if (more)
		lws_callback_on_writable(wsi);
	return 0;
}

static int cb_client(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct fleet_client *fc = lws_context_user(lws_get_context(wsi));

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		log_info("fleet: connected to %s", fc->opt.url);
		pthread_mutex_lock(&fc->lock);
		fc->stats.connects++;
		fc->stats.connected = true;
		fc->hello_due = true;
		fc->accepted = false;
		free(fc->out_ack);	/* for the old connection; the new set gets its own */
		fc->out_ack = NULL;
		pthread_mutex_unlock(&fc->lock);
		fc->rx_len = 0;
		fc->rx_overflow = false;
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (fc->rx_overflow || fc->rx_len + len > MAX_CONTROLLER_FRAME) {
			fc->rx_overflow = true;
		} else {
			uint8_t *p = realloc(fc->rx, fc->rx_len + len + 1);

			if (!p)
				return -1;
			fc->rx = p;
			memcpy(fc->rx + fc->rx_len, in, len);
			fc->rx_len += len;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		if (fc->rx_overflow) {
			log_warn("fleet: frame over %u bytes from the controller: reconnecting",
				 MAX_CONTROLLER_FRAME);
			pthread_mutex_lock(&fc->lock);
			fc->stats.bad_frames++;
			pthread_mutex_unlock(&fc->lock);
			return -1;
		}
		handle_frame(fc, fc->rx, fc->rx_len);
		fc->rx_len = 0;
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return write_next(fc, wsi);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		log_warn("fleet: cannot connect to %s: %s", fc->opt.url,
			 in ? (const char *)in : "error");
		/* fall through */
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (reason == LWS_CALLBACK_CLIENT_CLOSED)
			log_warn("fleet: connection to the controller closed; keeping the last targets");
		pthread_mutex_lock(&fc->lock);
		if (fc->stats.connected)
			fc->stats.disconnects++;
		fc->stats.connected = false;
		fc->conn_gen++;
		free(fc->out_upload);	/* its sender hears of the loss and retries */
		fc->out_upload = NULL;
		pthread_cond_broadcast(&fc->upload_cond);
		pthread_mutex_unlock(&fc->lock);
		fc->wsi = NULL;
		if (!__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE))
			schedule_reconnect(fc);
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		pthread_mutex_lock(&fc->lock);
		if (fc->wsi && fc->stats.connected && fc->accepted &&
		    (fc->out_ack || fc->out_counters || fc->out_upload))
			lws_callback_on_writable(fc->wsi);
		pthread_mutex_unlock(&fc->lock);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols client_protocols[] = {
	{ "profleet.fleet.v1", cb_client, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void *client_main(void *arg)
{
	struct fleet_client *fc = arg;

	lws_sul_schedule(fc->ctx, 0, &fc->sul, connect_now, 1);
	while (!__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE))
		if (lws_service(fc->ctx, 0) < 0)
			break;
	return NULL;
}

struct fleet_client *fleet_client_start(const struct fleet_client_opts *opts)
{
	struct lws_context_creation_info info;
	struct fleet_client *fc = calloc(1, sizeof(*fc));

	if (!fc)
		return NULL;
	fc->opt = *opts;
	if (fleet_parse_url(opts->url, &fc->tls, fc->host, sizeof(fc->host), &fc->port, fc->path,
			    sizeof(fc->path))) {
		log_error("--controller %s: want ws://HOST:PORT[/PATH] or wss://...", opts->url);
		free(fc);
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_init(&fc->lock, NULL);
	pthread_cond_init(&fc->upload_cond, NULL);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.user = fc;
	info.ka_time = 30;
	info.ka_probes = 3;
	info.ka_interval = 10;
	if (fc->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = opts->ca_file;
	}
	fc->ctx = lws_create_context(&info);
	if (!fc->ctx || pthread_create(&fc->thread, NULL, client_main, fc)) {
		if (fc->ctx)
			lws_context_destroy(fc->ctx);
		free(fc);
		errno = ENOMEM;
		return NULL;
	}
	return fc;
}

void fleet_client_stop(struct fleet_client *fc)
{
	if (!fc)
		return;
	__atomic_store_n(&fc->stop, 1, __ATOMIC_RELEASE);
	lws_cancel_service(fc->ctx);
	pthread_join(fc->thread, NULL);
	lws_context_destroy(fc->ctx);
	if (fc->pending)
		profleet__fleet__v1__target_set__free_unpacked(fc->pending, NULL);
	free(fc->out_ack);
	free(fc->out_counters);
	free(fc->out_upload);
	free(fc->rx);
	pthread_cond_destroy(&fc->upload_cond);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

Profleet__Fleet__V1__TargetSet *fleet_client_take_targets(struct fleet_client *fc)
{
	Profleet__Fleet__V1__TargetSet *s;

	pthread_mutex_lock(&fc->lock);
	s = fc->pending;
	fc->pending = NULL;
	pthread_mutex_unlock(&fc->lock);
	return s;
}

void fleet_client_ack(struct fleet_client *fc, uint64_t version, uint32_t found, uint32_t missing)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	Profleet__Fleet__V1__Ack a = PROFLEET__FLEET__V1__ACK__INIT;
	uint8_t *buf;
	size_t len;

	a.version = version;
	a.containers_found = found;
	a.containers_missing = missing;
	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_ACK;
	m.ack = &a;
	buf = pack_agent_msg(&m, &len);
	if (!buf)
		return;
	pthread_mutex_lock(&fc->lock);
	free(fc->out_ack);
	fc->out_ack = buf;
	fc->out_ack_len = len;
	pthread_mutex_unlock(&fc->lock);
	lws_cancel_service(fc->ctx);
}

void fleet_client_counters(struct fleet_client *fc, const Profleet__Fleet__V1__Counters *c)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	uint8_t *buf;
	size_t len;

	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_COUNTERS;
	m.counters = (Profleet__Fleet__V1__Counters *)c;
	buf = pack_agent_msg(&m, &len);
	if (!buf)
		return;
	pthread_mutex_lock(&fc->lock);
	free(fc->out_counters);
	fc->out_counters = buf;
	fc->out_counters_len = len;
	pthread_mutex_unlock(&fc->lock);
	lws_cancel_service(fc->ctx);
}

int fleet_client_upload(struct fleet_client *fc, const char *const *policies, size_t npolicies,
			const uint8_t *pprof_gz, size_t len, int64_t from_s, int64_t until_s,
			unsigned int timeout_ms, char *err, size_t errlen)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	Profleet__Fleet__V1__ProfileUpload u = PROFLEET__FLEET__V1__PROFILE_UPLOAD__INIT;
	struct timespec ts;
	uint8_t *buf;
	size_t blen;
	uint64_t gen, id;
	int ret;

	u.policies = (char **)policies;	/* only read by the packer */
	u.n_policies = npolicies;
	u.from_unix = from_s;
	u.until_unix = until_s;
	u.pprof_gz.data = (uint8_t *)pprof_gz;
	u.pprof_gz.len = len;
	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_PROFILE;
	m.profile = &u;
	if (profleet__fleet__v1__agent_message__get_packed_size(&m) > MAX_UPLOAD_FRAME) {
		snprintf(err, errlen, "profile of %zu bytes is over the %u-byte frame limit", len,
			 MAX_UPLOAD_FRAME);
		return -E2BIG;
	}
	pthread_mutex_lock(&fc->lock);
	if (!fc->stats.connected || !fc->accepted) {
		pthread_mutex_unlock(&fc->lock);
		snprintf(err, errlen, "not connected to the controller");
		return -EAGAIN;
	}
	id = u.id = ++fc->upload_id;
	buf = pack_agent_msg(&m, &blen);
	if (!buf) {
		pthread_mutex_unlock(&fc->lock);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(fc->out_upload);
	fc->out_upload = buf;
	fc->out_upload_len = blen;
	gen = fc->conn_gen;
	pthread_mutex_unlock(&fc->lock);
	lws_cancel_service(fc->ctx);

	k8s_deadline_ms(&ts, timeout_ms);
	pthread_mutex_lock(&fc->lock);
	while (fc->upload_done != id && fc->conn_gen == gen &&
	       !__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE))
		if (pthread_cond_timedwait(&fc->upload_cond, &fc->lock, &ts) == ETIMEDOUT)
			break;
	if (fc->upload_done == id) {
		ret = fc->upload_ok ? 0 : -EPERM;
		snprintf(err, errlen, "%s", fc->upload_ok ? "" : fc->upload_reason);
	} else {
		ret = -EAGAIN;
		snprintf(err, errlen, "%s", fc->conn_gen != gen ? "connection lost before the "
			 "controller answered" : "no answer from the controller");
		if (fc->conn_gen == gen && fc->out_upload == buf) {
			free(fc->out_upload);	/* never written: take it back */
			fc->out_upload = NULL;
		}
	}
	pthread_mutex_unlock(&fc->lock);
	return ret;
}

void fleet_client_set_have(struct fleet_client *fc, uint64_t version)
{
	pthread_mutex_lock(&fc->lock);
	fc->have_version = version;
	pthread_mutex_unlock(&fc->lock);
}

void fleet_client_stats(struct fleet_client *fc, struct fleet_client_stats *ret)
{
	pthread_mutex_lock(&fc->lock);
	*ret = fc->stats;
	pthread_mutex_unlock(&fc->lock);
}
