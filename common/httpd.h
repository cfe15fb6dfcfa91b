/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_HTTPD_H
#define COMMON_HTTPD_H
/*
 * A small HTTP server for the controller's API and both components' /metrics,
 * /healthz and /readyz: libmicrohttpd with a thread per connection (a slow
 * handler never stalls anything else), GET and HEAD only, no request bodies.
 */
#include <stdarg.h>
#include <stddef.h>

struct httpd_req {
	const char *url;	/* path, without the query */
	void *conn;		/* the library's connection */
};

struct httpd_resp {
	unsigned int status;	/* 0 = 200 */
	const char *type;	/* NULL = text/plain; charset=utf-8 */
	char *body;		/* malloc'd, taken by the server */
	size_t len;
};

/* A request header or query argument, or NULL. */
const char *httpd_header(const struct httpd_req *r, const char *name);
const char *httpd_arg(const struct httpd_req *r, const char *name);
/* Fills resp with a one-line text answer. */
void httpd_text(struct httpd_resp *resp, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef void (*httpd_handler)(void *ctx, const struct httpd_req *r, struct httpd_resp *resp);

#define HTTPD_MAX_CONNS 64	/* connections at once */
#define HTTPD_PER_IP 8		/* ... from one client address */
#define HTTPD_IDLE_S 15		/* seconds a connection may stay idle */

struct httpd_opts {
	unsigned int max_conns;		/* 0 = HTTPD_MAX_CONNS */
	unsigned int per_ip;		/* 0 = HTTPD_PER_IP; further ones are closed at once */
	unsigned int idle_timeout_s;	/* 0 = HTTPD_IDLE_S */
};

struct httpd;
/*
 * listen: "HOST:PORT" with an IPv4 or IPv6 address ("[::1]:80" or "::1:80"),
 * or ":PORT" / "PORT" for 127.0.0.1; port 0: any free one. opts may be NULL.
 * NULL with a message in err.
 */
struct httpd *httpd_start(const char *listen, const struct httpd_opts *opts, httpd_handler h,
			  void *ctx, char *err, size_t errlen);
int httpd_port(const struct httpd *d);	/* the port it listens on */
void httpd_stop(struct httpd *d);

#endif
