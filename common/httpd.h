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

struct httpd;
/* listen: "IPV4ADDR:PORT" (port 0: any free one). NULL with a message in err. */
struct httpd *httpd_start(const char *listen, httpd_handler h, void *ctx, char *err, size_t errlen);
int httpd_port(const struct httpd *d);	/* the port it listens on */
void httpd_stop(struct httpd *d);

#endif
