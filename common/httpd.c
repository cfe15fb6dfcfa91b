// SPDX-License-Identifier: Apache-2.0
/* A small HTTP server on libmicrohttpd; see httpd.h. */
#include "httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>

struct httpd {
	struct MHD_Daemon *d;
	httpd_handler h;
	void *ctx;
	int port;
};

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

struct httpd *httpd_start(const char *listen, httpd_handler h, void *ctx, char *err, size_t errlen)
{
	struct httpd *d = calloc(1, sizeof(*d));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(listen, ':');
	char addr[64];
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	const union MHD_DaemonInfo *info;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(addr, sizeof(addr), "%.*s", colon ? (int)(colon - listen) : 0, listen);
	if (!colon || *end || port < 0 || port > 65535 ||
	    inet_pton(AF_INET, addr[0] ? addr : "0.0.0.0", &sa.sin_addr) != 1) {
		snprintf(err, errlen, "%s: want IPV4ADDR:PORT", listen);
		free(d);
		return NULL;
	}
	sa.sin_port = htons((uint16_t)port);
	d->h = h;
	d->ctx = ctx;
	d->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				MHD_USE_ERROR_LOG, 0, NULL, NULL, handler, d,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				MHD_OPTION_END);
	if (!d->d) {
		snprintf(err, errlen, "cannot listen on %s (HTTP)", listen);
		free(d);
		return NULL;
	}
	info = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
	d->port = info ? info->port : (int)port;
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
