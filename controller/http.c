// SPDX-License-Identifier: Apache-2.0
/*
 * The controller's HTTP API (libmicrohttpd, a thread per connection: merging
 * profiles and drawing flame graphs take a while and must not stall the
 * agents' websocket loop).
 *
 *   GET /healthz                                                   liveness
 *   GET /readyz                                                    doing its job
 *   GET /metrics                                                   Prometheus text
 *   GET /api/v1/namespaces/NS/profilingpolicies/NAME/profile         merged pprof (gzip)
 *   GET /api/v1/namespaces/NS/profilingpolicies/NAME/flamegraph.svg  SVG flame graph
 *   GET /api/v1/clusterprofilingpolicies/NAME/profile | /flamegraph.svg
 *   query: from=UNIX&until=UNIX (seconds; default: everything held)
 *
 * Who may read a policy's profiles: the request carries a bearer token (in
 * Authorization, or in X-Profleet-Token when it comes through the API server's
 * service proxy, which consumes Authorization); a TokenReview says who it is,
 * and a SubjectAccessReview whether that user may "get" the policy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "controller.h"
#include "health.h"
#include "http.h"
#include "flamegraph.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "pprof.h"
#include "pprof_merge.h"
#include "profile.h"
#include "store.h"

/* ---- authorization ------------------------------------------------------------ */

/* 0 = allowed; else an HTTP status (401, 403, 503) with why filled in. */
static unsigned int authorize(struct ctl *c, const char *token, const char *ns, const char *name,
			      char *why, size_t whylen)
{
	struct k8s_client *kc = k8s_client_new(&c->kcfg);
	cJSON *user = NULL;
	unsigned int status;

	if (!kc) {
		snprintf(why, whylen, "controller out of memory");
		return 503;
	}
	k8s_client_set_timeout(kc, AUTH_REVIEW_TIMEOUT_MS);
	status = auth_review_token_cached(c->auth_cache, kc, token, NULL, &user, why, whylen);
	if (!status)
		status = auth_may_get_policy_cached(c->auth_cache, kc, user, ns, name, why, whylen);
	cJSON_Delete(user);
	k8s_client_free(kc);
	return status;
}

/* ---- routes ------------------------------------------------------------------- */

/* Splits a store URL; false when it is none. */
static bool parse_path(const char *url, struct http_route *rt)
{
	const char *p, *slash, *what;
	static const char nsp[] = "/api/v1/namespaces/", cp[] = "/api/v1/clusterprofilingpolicies/";

	rt->ns[0] = 0;
	if (!strncmp(url, nsp, sizeof(nsp) - 1)) {
		p = url + sizeof(nsp) - 1;
		slash = strchr(p, '/');
		if (!slash || !k8s_name_valid(p, (size_t)(slash - p)))
			return false;
		snprintf(rt->ns, sizeof(rt->ns), "%.*s", (int)(slash - p), p);
		p = slash + 1;
		if (strncmp(p, "profilingpolicies/", 18))
			return false;
		p += 18;
	} else if (!strncmp(url, cp, sizeof(cp) - 1)) {
		p = url + sizeof(cp) - 1;
	} else {
		return false;
	}
	slash = strchr(p, '/');
	if (!slash || !k8s_name_valid(p, (size_t)(slash - p)))
		return false;
	snprintf(rt->name, sizeof(rt->name), "%.*s", (int)(slash - p), p);
	what = slash + 1;
	rt->kind = !strcmp(what, "profile") ? ROUTE_PROFILE :
		   !strcmp(what, "flamegraph.svg") ? ROUTE_SVG : ROUTE_NONE;
	return rt->kind != ROUTE_NONE;
}

static bool parse_time(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (!s || !*s)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return false;
	*ret = v;
	return true;
}

unsigned int http_route(const char *url, const char *from, const char *until,
			const char *xtoken, const char *authz, struct http_route *rt, char *why,
			size_t whylen)
{
	static const struct {
		const char *url;
		enum http_route_kind kind;
	} fixed[] = { { "/healthz", ROUTE_HEALTHZ }, { "/readyz", ROUTE_READYZ },
		      { "/metrics", ROUTE_METRICS } };

	memset(rt, 0, sizeof(*rt));
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(url, fixed[i].url)) {
			rt->kind = fixed[i].kind;
			return 0;
		}
	if (!parse_path(url, rt)) {
		snprintf(why, whylen, "not found: %.200s", url);
		return 404;
	}
	if (!parse_time(from, &rt->from) || !parse_time(until, &rt->until)) {
		snprintf(why, whylen, "from and until are UNIX times in seconds");
		return 400;
	}
	rt->token = xtoken;
	if (!rt->token && authz && !strncasecmp(authz, "Bearer ", 7))
		rt->token = authz + 7;
	if (!rt->token || !*rt->token) {
		snprintf(why, whylen, "a bearer token is needed (Authorization: Bearer TOKEN)");
		return 401;
	}
	return 0;
}

static void send_profile(struct pprof_merge *m, struct httpd_resp *resp)
{
	uint8_t *buf;
	size_t len;

	if (pprof__encode(pprof_merge_profile(m), true, &buf, &len))
		return httpd_text(resp, 500, "cannot encode");
	resp->type = "application/octet-stream";
	resp->body = (char *)buf;
	resp->len = len;
}

static void send_svg(struct pprof_merge *m, const struct http_route *rt, const char *key, int n,
		     struct httpd_resp *resp)
{
	char *svg = NULL, title[700];
	size_t len = 0;
	FILE *f = open_memstream(&svg, &len);
	struct flamegraph_opts fo = { .title = title };
	int e;

	snprintf(title, sizeof(title), "%s %s: %d profile(s)", rt->ns[0] ? "ProfilingPolicy" :
		 "ClusterProfilingPolicy", key, n);
	e = f ? flamegraph__write_svg(pprof_merge_profile(m), f, &fo) : -ENOMEM;
	if (f)
		fclose(f);
	if (e || !svg) {
		free(svg);
		return httpd_text(resp, 500, "cannot draw");
	}
	resp->type = "image/svg+xml";
	resp->body = svg;
	resp->len = len;
}

static void serve_profile(struct ctl *c, const char *url, const struct http_route *rt,
			  struct httpd_resp *resp)
{
	char key[600], why[512];
	unsigned int status, bad = 0;
	struct pprof_merge *m;
	int n;

	if (!c->store)
		return httpd_text(resp, 404, "this controller has no store");
	status = authorize(c, rt->token, rt->ns[0] ? rt->ns : NULL, rt->name, why, sizeof(why));
	if (status) {
		log_info("http: %s refused (%u): %s", url, status, why);
		return httpd_text(resp, status, "%s", why);
	}
	snprintf(key, sizeof(key), "%s%s%s", rt->ns, rt->ns[0] ? "/" : "", rt->name);
	m = pprof_merge_new();
	if (!m)
		return httpd_text(resp, 503, "out of memory");
	n = store_query(c->store, key, rt->from, rt->until, m, &bad);
	if (n <= 0 && bad)
		httpd_text(resp, 500, "%u stored profile(s) of %s could not be read", bad, key);
	else if (n <= 0)
		httpd_text(resp, 404, "no profiles of %s%s", key,
			   rt->from || rt->until ? " in that time range" : " yet");
	else if (rt->kind == ROUTE_PROFILE)
		send_profile(m, resp);
	else
		send_svg(m, rt, key, n, resp);
	if (n > 0)
		log_info("http: %s: %d profile(s) merged%s", url, n, bad ? " (some unreadable)" : "");
	pprof_merge_free(m);
}

static void handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct ctl *c = ctx;
	struct http_route rt;
	char why[300];
	unsigned int status;

	status = http_route(req->url, httpd_arg(req, "from"), httpd_arg(req, "until"),
			    httpd_header(req, "X-Profleet-Token"), httpd_header(req, "Authorization"),
			    &rt, why, sizeof(why));
	if (status)
		return httpd_text(resp, status, "%s", why);
	switch (rt.kind) {
	case ROUTE_HEALTHZ:
		return httpd_text(resp, 200, "ok");
	case ROUTE_READYZ:
		if (health_ready(c, why, sizeof(why)))
			return httpd_text(resp, 200, "ready");
		return httpd_text(resp, 503, "not ready: %s", why);
	case ROUTE_METRICS:
		resp->body = health_metrics(c, &resp->len);
		resp->type = METRICS_CONTENT_TYPE;
		if (!resp->body)
			httpd_text(resp, 500, "out of memory");
		return;
	default:
		return serve_profile(c, req->url, &rt, resp);
	}
}

/* The probes' listener: nothing else, so no other client shares its connections. */
static void health_handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct ctl *c = ctx;
	char why[300];

	if (!strcmp(req->url, "/healthz"))
		return httpd_text(resp, 200, "ok");
	if (strcmp(req->url, "/readyz"))
		return httpd_text(resp, 404, "this port serves /healthz and /readyz only");
	if (health_ready(c, why, sizeof(why)))
		return httpd_text(resp, 200, "ready");
	httpd_text(resp, 503, "not ready: %s", why);
}

struct httpd *http_start_health(struct ctl *c, char *err, size_t errlen)
{
	const struct httpd_opts o = { .max_conns = 8, .per_ip = 4 };
	char listen[300];

	snprintf(listen, sizeof(listen), "%s:%d", c->opt.health_addr, c->opt.health_port);
	return httpd_start(listen, &o, health_handler, c, err, errlen);
}

struct httpd *http_start(struct ctl *c, char *err, size_t errlen)
{
	/*
	 * Requests through the API server's service proxy (kubectl profleet) all
	 * come from the API server's address: one client gets a quarter of the
	 * connections, not the agent's eighth, and still cannot take them all.
	 */
	const struct httpd_opts o = { .max_conns = HTTPD_MAX_CONNS, .per_ip = HTTPD_MAX_CONNS / 4 };
	char listen[300];

	snprintf(listen, sizeof(listen), "%s:%d", c->opt.http_addr, c->opt.http_port);
	return httpd_start(listen, &o, handler, c, err, errlen);
}
