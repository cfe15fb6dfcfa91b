// SPDX-License-Identifier: Apache-2.0
/* A small HTTP server on libmicrohttpd; see httpd.h. */
#include "httpd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>

#include "log.h"

#define LOG_EVERY_S 60	/* the library's messages: one a minute at most */

struct httpd {
	struct MHD_Daemon *d;
	httpd_handler h;
	void *ctx;
	int port;
	atomic_llong log_last;		/* time of the last message logged */
	atomic_uint log_suppressed;	/* messages left out since */
};

/*
 * libmicrohttpd's messages ("Server reached connection limit", ...) go to our
 * log, rate-limited: a client refused again and again must not flood it.
 */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *d = cls;
	long long now = (long long)time(NULL), last = atomic_load(&d->log_last);
	unsigned int more;
	char msg[300];
	size_t n;

	if ((last && now - last < LOG_EVERY_S) ||
	    !atomic_compare_exchange_strong(&d->log_last, &last, now)) {
		atomic_fetch_add(&d->log_suppressed, 1);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		msg[--n] = 0;
	more = atomic_exchange(&d->log_suppressed, 0);
	if (more)
		log_warn("http: %s (and %u more messages in the last %d s)", msg, more,
			 LOG_EVERY_S);
	else
		log_warn("http: %s", msg);
}

const char *httpd_header(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *httpd_arg(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void httpd_text(struct httpd_resp *resp, unsigned int status, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(resp->body);
	resp->status = status;
	resp->type = "text/plain; charset=utf-8";
	va_start(ap, fmt);
	n = vasprintf(&resp->body, fmt, ap);
	va_end(ap);
	if (n < 0) {
		resp->body = NULL;
		resp->len = 0;
		return;
	}
	/* one line, newline-terminated */
	{
		char *p = realloc(resp->body, (size_t)n + 2);

		if (p) {
			resp->body = p;
			resp->body[n++] = '\n';
			resp->body[n] = 0;
		}
	}
	resp->len = (size_t)n;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct httpd *d = cls;
	struct httpd_req req = { .url = url, .conn = conn };
	struct httpd_resp resp = { 0 };
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)version, (void)upload_data, (void)con_cls;
	if (*upload_data_size)
		httpd_text(&resp, MHD_HTTP_BAD_REQUEST, "no request body expected");
	else if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		httpd_text(&resp, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET");
	else
		d->h(d->ctx, &req, &resp);
	if (!resp.body)
		httpd_text(&resp, resp.status ? resp.status : 500, "%s",
			   resp.status ? "" : "no answer");
	r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(resp.body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", resp.type ? resp.type :
				"text/plain; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, resp.status ? resp.status : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * "HOST:PORT" (IPv4 or IPv6, brackets optional: "[::1]:80", "fd00::1:80"),
 * ":PORT" or "PORT" (127.0.0.1: nothing beyond this host unless asked) into sa.
 */
static int parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *ret_len)
{
	const char *colon = strrchr(listen, ':');
	const char *ps = colon ? colon + 1 : listen;
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	long port;

	errno = 0;
	port = strtol(ps, &end, 10);
	if (!*ps || *end || errno || port < 0 || port > 65535 || hl >= sizeof(host))
		return -EINVAL;
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hl - 2, listen + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

struct httpd *httpd_start(const char *listen, const struct httpd_opts *opts, httpd_handler h,
			  void *ctx, char *err, size_t errlen)
{
	struct httpd *d = calloc(1, sizeof(*d));
	struct sockaddr_storage sa;
	socklen_t salen;
	unsigned int max = opts && opts->max_conns ? opts->max_conns : HTTPD_MAX_CONNS;
	unsigned int per_ip = opts && opts->per_ip ? opts->per_ip : HTTPD_PER_IP;
	unsigned int idle = opts && opts->idle_timeout_s ? opts->idle_timeout_s : HTTPD_IDLE_S;
	const union MHD_DaemonInfo *info;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_listen(listen, &sa, &salen)) {
		snprintf(err, errlen, "%s: want HOST:PORT (IPv4 or IPv6; :PORT for 127.0.0.1)",
			 listen);
		free(d);
		return NULL;
	}
	d->h = h;
	d->ctx = ctx;
	/*
	 * One client gets at most per_ip of the max connections, and a connection
	 * idle for idle seconds is closed: idle sockets from one address can no
	 * longer hold every slot and starve the kubelet's probe.
	 */
	/* poll(), not select(): a controller with thousands of agents numbers its
	 * sockets past FD_SETSIZE, and select() refuses those */
	d->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				MHD_USE_POLL | MHD_USE_ERROR_LOG | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, handler, d,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_TIMEOUT, idle,
				MHD_OPTION_CONNECTION_LIMIT, max,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
				MHD_OPTION_END);
	if (!d->d) {
		snprintf(err, errlen, "cannot listen on %s (HTTP)", listen);
		free(d);
		return NULL;
	}
	info = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
	d->port = info ? info->port : 0;
	return d;
}

int httpd_port(const struct httpd *d)
{
	return d->port;
}

void httpd_stop(struct httpd *d)
{
	if (!d)
		return;
	MHD_stop_daemon(d->d);
	free(d);
}
