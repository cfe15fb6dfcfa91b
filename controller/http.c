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

#include "controller.h"
#include "flamegraph.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "pprof.h"
#include "pprof_merge.h"
#include "profile.h"
#include "store.h"

#define API_GROUP "profiling.profleet.dev"

/* ---- authorization ------------------------------------------------------------ */

/* 0 = allowed; else an HTTP status (401, 403, 503) with why filled in. */
static unsigned int authorize(struct ctl *c, const char *token, const char *ns, const char *name,
			      char *why, size_t whylen)
{
	struct k8s_client *kc = k8s_client_new(&c->kcfg);
	struct k8s_response r = { 0 }, r2 = { 0 };
	cJSON *req = NULL, *spec, *ra;
	const cJSON *user;
	char *body = NULL;
	unsigned int status = 503;

	if (!kc) {
		snprintf(why, whylen, "controller out of memory");
		return 503;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "TokenReview");
	spec = cJSON_AddObjectToObject(req, "spec");
	cJSON_AddStringToObject(spec, "token", token);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	req = NULL;
	if (!body || k8s_request(kc, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", NULL,
				 body, &r) || r.status != 201) {
		snprintf(why, whylen, "token review failed: %s", k8s_response_message(&r));
		goto out;
	}
	if (!cJSON_IsTrue(k8s_get(r.json, "status.authenticated"))) {
		snprintf(why, whylen, "the token is not valid");
		status = 401;
		goto out;
	}
	user = k8s_get(r.json, "status.user");
	free(body);
	/* the user as the review saw it (name, uid, groups, extra) asks to get the policy */
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "apiVersion", "authorization.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "SubjectAccessReview");
	spec = cJSON_AddObjectToObject(req, "spec");
	cJSON_AddStringToObject(spec, "user", k8s_str(user, "username") ? k8s_str(user, "username") :
				"");
	if (k8s_str(user, "uid"))
		cJSON_AddStringToObject(spec, "uid", k8s_str(user, "uid"));
	if (cJSON_IsArray(k8s_get(user, "groups")))
		cJSON_AddItemToObject(spec, "groups",
				      cJSON_Duplicate(k8s_get(user, "groups"), true));
	if (cJSON_IsObject(k8s_get(user, "extra")))
		cJSON_AddItemToObject(spec, "extra", cJSON_Duplicate(k8s_get(user, "extra"), true));
	ra = cJSON_AddObjectToObject(spec, "resourceAttributes");
	if (ns)
		cJSON_AddStringToObject(ra, "namespace", ns);
	cJSON_AddStringToObject(ra, "verb", "get");
	cJSON_AddStringToObject(ra, "group", API_GROUP);
	cJSON_AddStringToObject(ra, "resource", ns ? "profilingpolicies" : "clusterprofilingpolicies");
	cJSON_AddStringToObject(ra, "name", name);
	body = cJSON_PrintUnformatted(req);
	if (!body || k8s_request(kc, "POST",
				 "/apis/authorization.k8s.io/v1/subjectaccessreviews", NULL, body,
				 &r2) || r2.status != 201) {
		snprintf(why, whylen, "access review failed: %s", k8s_response_message(&r2));
		goto out;
	}
	if (!cJSON_IsTrue(k8s_get(r2.json, "status.allowed"))) {
		snprintf(why, whylen, "user \"%s\" may not get %s \"%s\"%s%s",
			 k8s_str(user, "username") ? k8s_str(user, "username") : "?",
			 ns ? "profilingpolicies" : "clusterprofilingpolicies", name,
			 ns ? " in namespace " : "", ns ? ns : "");
		status = 403;
		goto out;
	}
	status = 0;
out:
	cJSON_Delete(req);
	free(body);
	k8s_response_free(&r);
	k8s_response_free(&r2);
	k8s_client_free(kc);
	return status;
}

/* ---- routes ------------------------------------------------------------------- */

/* Splits a store URL; false when it is none. what: "profile" or "flamegraph.svg". */
static bool parse_path(const char *url, char *ns, char *name, const char **what)
{
	const char *p, *slash;
	static const char nsp[] = "/api/v1/namespaces/", cp[] = "/api/v1/clusterprofilingpolicies/";

	ns[0] = 0;
	if (!strncmp(url, nsp, sizeof(nsp) - 1)) {
		p = url + sizeof(nsp) - 1;
		slash = strchr(p, '/');
		if (!slash || !k8s_name_valid(p, (size_t)(slash - p)))
			return false;
		snprintf(ns, 254, "%.*s", (int)(slash - p), p);
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
	snprintf(name, 254, "%.*s", (int)(slash - p), p);
	*what = slash + 1;
	return !strcmp(*what, "profile") || !strcmp(*what, "flamegraph.svg");
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

static void serve_profile(struct ctl *c, const struct httpd_req *req, struct httpd_resp *resp)
{
	const char *url = req->url;
	char ns[256], name[256], key[600], why[512], title[700];
	const char *what, *tok;
	int64_t from = 0, until = 0;
	unsigned int status, bad = 0;
	struct pprof_merge *m;
	int n;

	if (!parse_path(url, ns, name, &what))
		return httpd_text(resp, 404, "not found: %s", url);
	if (!parse_time(httpd_arg(req, "from"), &from) || !parse_time(httpd_arg(req, "until"), &until))
		return httpd_text(resp, 400, "from and until are UNIX times in seconds");
	tok = httpd_header(req, "X-Profleet-Token");
	if (!tok) {
		tok = httpd_header(req, "Authorization");
		if (tok && !strncasecmp(tok, "Bearer ", 7))
			tok += 7;
		else
			tok = NULL;
	}
	if (!tok || !*tok)
		return httpd_text(resp, 401, "a bearer token is needed (Authorization: Bearer TOKEN)");
	if (!c->store)
		return httpd_text(resp, 404, "this controller has no store");
	status = authorize(c, tok, ns[0] ? ns : NULL, name, why, sizeof(why));
	if (status) {
		log_info("http: %s refused (%u): %s", url, status, why);
		return httpd_text(resp, status, "%s", why);
	}
	snprintf(key, sizeof(key), "%s%s%s", ns, ns[0] ? "/" : "", name);
	m = pprof_merge_new();
	if (!m)
		return httpd_text(resp, 503, "out of memory");
	n = store_query(c->store, key, from, until, m, &bad);
	if (n <= 0) {
		pprof_merge_free(m);
		if (bad)
			return httpd_text(resp, 500, "%u stored profile(s) of %s could not be read",
					  bad, key);
		return httpd_text(resp, 404, "no profiles of %s%s", key,
				  from || until ? " in that time range" : " yet");
	}
	log_info("http: %s: %d profile(s) merged%s", url, n, bad ? " (some unreadable)" : "");
	if (!strcmp(what, "profile")) {
		uint8_t *buf;
		size_t len;

		if (pprof__encode(pprof_merge_profile(m), true, &buf, &len)) {
			pprof_merge_free(m);
			return httpd_text(resp, 500, "cannot encode");
		}
		pprof_merge_free(m);
		resp->type = "application/octet-stream";
		resp->body = (char *)buf;
		resp->len = len;
	} else {
		char *svg = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&svg, &len);
		struct flamegraph_opts fo = { .title = title };
		int e;

		snprintf(title, sizeof(title), "%s %s: %d profile(s)", ns[0] ? "ProfilingPolicy" :
			 "ClusterProfilingPolicy", key, n);
		e = f ? flamegraph__write_svg(pprof_merge_profile(m), f, &fo) : -ENOMEM;
		if (f)
			fclose(f);
		pprof_merge_free(m);
		if (e || !svg) {
			free(svg);
			return httpd_text(resp, 500, "cannot draw");
		}
		resp->type = "image/svg+xml";
		resp->body = svg;
		resp->len = len;
	}
}

static void handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct ctl *c = ctx;

	if (!strcmp(req->url, "/healthz"))
		return httpd_text(resp, 200, "ok");
	if (!strcmp(req->url, "/readyz")) {
		char why[200];

		if (ctl_ready(c, why, sizeof(why)))
			return httpd_text(resp, 200, "ready");
		return httpd_text(resp, 503, "not ready: %s", why);
	}
	if (!strcmp(req->url, "/metrics")) {
		resp->body = ctl_metrics(c, &resp->len);
		resp->type = METRICS_CONTENT_TYPE;
		if (!resp->body)
			httpd_text(resp, 500, "out of memory");
		return;
	}
	serve_profile(c, req, resp);
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
