/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_HTTP_H
#define CONTROLLER_HTTP_H
/* The store's HTTP API, health and metrics (libmicrohttpd: a thread per request). */
#include <stddef.h>
#include <stdint.h>

struct ctl;
struct httpd;

struct httpd *http_start(struct ctl *c, char *err, size_t errlen);
/* --health-listen: /healthz and /readyz alone, with their own few connections. */
struct httpd *http_start_health(struct ctl *c, char *err, size_t errlen);

enum http_route_kind { ROUTE_NONE, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTE_METRICS, ROUTE_PROFILE,
		       ROUTE_SVG };

/* A request as the API reads it. */
struct http_route {
	enum http_route_kind kind;
	char ns[254];		/* empty: a cluster policy */
	char name[254];
	int64_t from, until;	/* 0: not given */
	const char *token;	/* into xtoken or authz */
};

/*
 * Reads a request: its path, the from and until arguments, the
 * X-Profleet-Token and Authorization headers (each may be NULL). 0, or an
 * HTTP status (400, 401, 404) with why. Pure: the fuzzer's entry.
 */
unsigned int http_route(const char *url, const char *from, const char *until,
			const char *xtoken, const char *authz, struct http_route *rt, char *why,
			size_t whylen);
#endif
