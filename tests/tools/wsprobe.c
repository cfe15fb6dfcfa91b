// SPDX-License-Identifier: Apache-2.0
/*
 * wsprobe: one hostile and one well-behaved agent connection to a controller,
 * for tests/system/wire.sh. The good agent says hello; then the bad one sends
 * MODE; the probe reports whether the bad connection was closed, and whether
 * the good one still works afterwards (it sends an ack and a counters frame
 * and must stay open).
 *
 *   wsprobe URL MODE     URL: ws:// or wss:// (any certificate: the tests' own); MODE: garbage | text | oversize | no-hello | twice-hello | empty | valid
 *                              | pending (the bad one says hello at once, not waiting for the
 *                                good one's set: against a controller whose reviews hang)
 * Prints "bad=closed|open good=open|closed got_set=0|1" and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libwebsockets.h>

#include "fleet.pb-c.h"
#include "fleet_client.h"

struct peer {
	const char *name;
	bool bad;
	struct lws *wsi;
	bool established, closed, hello_sent, payload_sent, got_set, extra_sent;
};

static const char *mode;
static struct peer good = { .name = "good" }, bad = { .name = "bad", .bad = true };

static int send_hello(struct lws *wsi, const char *node)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	Profleet__Fleet__V1__Hello h = PROFLEET__FLEET__V1__HELLO__INIT;
	uint8_t buf[LWS_PRE + 512];
	size_t len;

	h.protocol = 1;
	h.node_name = (char *)node;
	h.token = (char *)"probe";
	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	len = profleet__fleet__v1__agent_message__pack(&m, buf + LWS_PRE);
	return lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len ? -1 : 0;
}

static int send_counters(struct lws *wsi)
{
	Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;
	Profleet__Fleet__V1__Counters c = PROFLEET__FLEET__V1__COUNTERS__INIT;
	uint8_t buf[LWS_PRE + 512];
	size_t len;

	c.samples = 5;
	c.started_unix = 1;
	m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_COUNTERS;
	m.counters = &c;
	len = profleet__fleet__v1__agent_message__pack(&m, buf + LWS_PRE);
	return lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len ? -1 : 0;
}

static int send_bad(struct lws *wsi)
{
	static uint8_t big[LWS_PRE + (2u << 20)];
	uint8_t buf[LWS_PRE + 64];

	if (!strcmp(mode, "garbage")) {
		memcpy(buf + LWS_PRE, "\xff\xff\xff\xff\x0f garbage \x01\x02", 16);
		return lws_write(wsi, buf + LWS_PRE, 16, LWS_WRITE_BINARY) < 16 ? -1 : 0;
	}
	if (!strcmp(mode, "text")) {
		memcpy(buf + LWS_PRE, "{\"hello\":1}", 11);
		return lws_write(wsi, buf + LWS_PRE, 11, LWS_WRITE_TEXT) < 11 ? -1 : 0;
	}
	if (!strcmp(mode, "oversize")) {
		memset(big + LWS_PRE, 0x0a, 2u << 20);
		return lws_write(wsi, big + LWS_PRE, 2u << 20, LWS_WRITE_BINARY) < 0 ? -1 : 0;
	}
	if (!strcmp(mode, "valid") || !strcmp(mode, "pending"))	/* a proper hello */
		return send_hello(wsi, "probe-valid");
	if (!strcmp(mode, "empty"))
		return lws_write(wsi, buf + LWS_PRE, 0, LWS_WRITE_BINARY) < 0 ? -1 : 0;
	if (!strcmp(mode, "twice-hello")) {
		if (!bad.extra_sent) {
			bad.extra_sent = true;
			lws_callback_on_writable(wsi);
			return send_hello(wsi, "probe-bad");
		}
		return send_hello(wsi, "probe-bad");
	}
	return 0;	/* no-hello: say nothing, the controller's hello timeout closes us */
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct peer *p = user;

	(void)in;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		p->established = true;
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!p->bad && !p->hello_sent) {
			p->hello_sent = true;
			return send_hello(wsi, "probe-good");
		}
		if (!p->bad && p->got_set && !p->payload_sent && bad.closed) {
			p->payload_sent = true;
			return send_counters(wsi);
		}
		if (p->bad && (good.got_set || !strcmp(mode, "pending")) && !p->payload_sent) {
			if (strcmp(mode, "twice-hello") || bad.extra_sent)
				p->payload_sent = true;
			return send_bad(wsi);
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		Profleet__Fleet__V1__ControllerMessage *m =
			profleet__fleet__v1__controller_message__unpack(NULL, len, in);

		if (m && m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_TARGETS)
			p->got_set = true;
		if (m)
			profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
		if (p == &good && bad.wsi)
			lws_callback_on_writable(bad.wsi);
		break;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		p->closed = true;
		if (p == &bad && good.wsi)
			lws_callback_on_writable(good.wsi);
		break;
	default:
		break;
	}
	return 0;
}

/* lws_service() sleeps until the next timer: keep one ticking so the loop below runs */
static lws_sorted_usec_list_t tick;
static struct lws_context *tick_ctx;

static void on_tick(lws_sorted_usec_list_t *sul)
{
	lws_sul_schedule(tick_ctx, 0, sul, on_tick, 100 * LWS_US_PER_MS);
}

static const struct lws_protocols protocols[] = {
	{ "profleet.fleet.v1", cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static bool use_tls;

static void connect_peer(struct lws_context *ctx, struct peer *p, const char *host, int port,
			 const char *path)
{
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = host;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = host;
	ci.protocol = "profleet.fleet.v1";
	ci.userdata = p;
	ci.pwsi = &p->wsi;
	if (use_tls)	/* the tests' own self-signed certificates */
		ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
				    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	lws_client_connect_via_info(&ci);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	char host[256], path[256];
	bool tls;
	int port;
	time_t start;

	if (argc != 3 || fleet_parse_url(argv[1], &tls, host, sizeof(host), &port, path,
					 sizeof(path))) {
		fprintf(stderr, "usage: wsprobe ws[s]://HOST:PORT MODE\n");
		return 2;
	}
	mode = argv[2];
	use_tls = tls;
	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	if (tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	ctx = lws_create_context(&info);
	if (!ctx)
		return 1;
	tick_ctx = ctx;
	on_tick(&tick);
	connect_peer(ctx, &good, host, port, path);
	connect_peer(ctx, &bad, host, port, path);
	start = time(NULL);
	/* up to 20 s: the hello timeout is 10 s, and a loaded machine (CI's) may
	 * run the controller's timers late; a connection left open for good
	 * still shows */
	while (time(NULL) - start < 20 && !(bad.closed && good.payload_sent &&
					    time(NULL) - start >= 1))
		lws_service(ctx, 0);
	/* the good connection must survive a moment after its counters */
	for (time_t t = time(NULL); time(NULL) - t < 1;)
		lws_service(ctx, 0);
	printf("bad=%s good=%s got_set=%d\n", bad.closed ? "closed" : "open",
	       good.established && !good.closed ? "open" : "closed", good.got_set);
	lws_context_destroy(ctx);
	return 0;
}
