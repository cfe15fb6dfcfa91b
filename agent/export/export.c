// SPDX-License-Identifier: Apache-2.0
/* Exporters: bounded queues, sender threads, retries; see export.h. */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "k8s.h"	/* k8s_backoff_ms, k8s_deadline_ms */
#include "log.h"
#include "otlp.h"
#include "pprof.h"
#include "pyroscope_push.pb-c.h"
#include <zlib.h>

struct item {
	uint8_t *pprof_gz;
	size_t len;
	char *name;		/* pyroscope: service.cpu{k=v,...}; dir: a file-name stem */
	char **policies;	/* controller: the route (owned copies) */
	size_t npolicies;
	int64_t from_s, until_s;
	int rate_hz;
};

struct exporter {
	struct export_target t;
	struct export_auth auth;
	struct exporter_opts o;
	char desc[600];
	char *url;		/* owned copies */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* items queued, or stopping */
	pthread_cond_t idle;	/* the queue emptied (drain waits on it) */
	bool stop, busy;
	struct item *q;		/* ring of o.queue_cap */
	unsigned int head, n;
	struct exporter_stats st;	/* under lock: exporter_stats() reads it from any thread */
	/* the sender thread's own, never touched by another: */
	CURL *curl;
	bool grpc_fresh;	/* otlp-grpc: open a new connection for the next call */
	char err[sizeof(((struct exporter_stats *)0)->last_error)];	/* why this send failed */
};

static const char *const kind_names[] = { "dir", "pyroscope", "otlp-http", "otlp-grpc",
					   "pyroscope-push", "controller" };

const char *export_kind_name(enum export_kind k)
{
	return kind_names[k];
}

int export_parse_target(const char *spec, struct export_target *ret, char *msg, size_t msglen)
{
	const char *eq = strchr(spec, '=');

	if (!eq || eq == spec || !eq[1]) {
		snprintf(msg, msglen, "--export %s: want KIND=URL (dir=/path, pyroscope=http://host:4040, ...)",
			 spec);
		return -EINVAL;
	}
	for (int k = 0; k < EXPORT_CONTROLLER; k++)
		if (strlen(kind_names[k]) == (size_t)(eq - spec) &&
		    !strncmp(spec, kind_names[k], (size_t)(eq - spec))) {
			ret->kind = (enum export_kind)k;
			ret->url = eq + 1;
			if (k != EXPORT_DIR && strncmp(ret->url, "http://", 7) &&
			    strncmp(ret->url, "https://", 8)) {
				snprintf(msg, msglen, "--export %s: the URL must be http:// or https://", spec);
				return -EINVAL;
			}
			return 0;
		}
	snprintf(msg, msglen, "--export %s: unknown kind '%.*s' (dir, pyroscope, pyroscope-push, "
		 "otlp-http, otlp-grpc)",
		 spec, (int)(eq - spec), spec);
	return -EINVAL;
}

static void item_free(struct item *it)
{
	free(it->pprof_gz);
	free(it->name);
	for (size_t i = 0; i < it->npolicies; i++)
		free(it->policies[i]);
	free(it->policies);
	memset(it, 0, sizeof(*it));
}

/* Copies the route into the item; -ENOMEM. */
static int item_set_route(struct item *it, const struct export_route *route)
{
	size_t n = route ? route->npolicies : 0;

	if (!n)
		return 0;
	it->policies = calloc(n, sizeof(*it->policies));
	if (!it->policies)
		return -ENOMEM;
	for (; it->npolicies < n; it->npolicies++) {
		it->policies[it->npolicies] = strdup(route->policies[it->npolicies]);
		if (!it->policies[it->npolicies])
			return -ENOMEM;
	}
	return 0;
}

/* ---- senders ----------------------------------------------------------------- */

/* Outcome of one attempt. */
enum result { SENT, RETRY, REJECTED };

static size_t discard(char *d, size_t s, size_t n, void *u)
{
	(void)d, (void)u;
	return s * n;
}

struct hdr_state {
	int retry_after;
};

static size_t on_hdr(char *d, size_t s, size_t n, void *u)
{
	struct hdr_state *h = u;

	if (s * n > 12 && !strncasecmp(d, "Retry-After:", 12))
		h->retry_after = atoi(d + 12);
	return s * n;
}

static char *read_token(const char *path)
{
	char buf[8192];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return strdup(buf);
}

/* The auth and extra headers every HTTP kind sends; NULL list + false when the
 * bearer token cannot be read (retried later). */
static bool auth_headers(struct exporter *e, struct curl_slist **h)
{
	char line[8300];

	for (int i = 0; i < e->auth.nheaders; i++)
		*h = curl_slist_append(*h, e->auth.headers[i]);
	if (e->auth.tenant) {
		snprintf(line, sizeof(line), "X-Scope-OrgID: %s", e->auth.tenant);
		*h = curl_slist_append(*h, line);
	}
	if (e->auth.bearer && *e->auth.bearer) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", e->auth.bearer);
		*h = curl_slist_append(*h, line);
	} else if (e->auth.bearer_file) {
		char *tok = read_token(e->auth.bearer_file);

		if (!tok) {
			snprintf(e->err, sizeof(e->err),
				 "cannot read bearer token file %s", e->auth.bearer_file);
			return false;
		}
		snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
		free(tok);
		*h = curl_slist_append(*h, line);
	}
	if (e->auth.basic) {
		curl_easy_setopt(e->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e->curl, CURLOPT_USERPWD, e->auth.basic);
	}
	*h = curl_slist_append(*h, "Expect:");	/* no 1 s wait for a "100 Continue" */
	return true;
}

static void common_opts(struct exporter *e, const char *url, struct hdr_state *hs)
{
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->o.timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, hs);
	curl_easy_setopt(e->curl, CURLOPT_USERAGENT, "profleet/" PROFLEET_VERSION);
}

static enum result http_result(struct exporter *e, CURLcode rc)
{
	long status = 0;

	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		snprintf(e->err, sizeof(e->err), "%s", curl_easy_strerror(rc));
		return RETRY;
	}
	if (status >= 200 && status < 300)
		return SENT;
	snprintf(e->err, sizeof(e->err), "HTTP %ld", status);
	return status == 429 || status == 408 || status >= 500 ? RETRY : REJECTED;
}

/* POSTs the item's bytes to e->url + path with two content headers and the auth ones. */
static enum result post_body(struct exporter *e, const struct item *it, const char *path,
			     const char *hdr1, const char *hdr2, int *retry_after)
{
	struct curl_slist *h = NULL;
	struct hdr_state hs = { 0 };
	char url[4096];
	enum result r;

	snprintf(url, sizeof(url), "%s%s", e->url, path);
	common_opts(e, url, &hs);
	h = curl_slist_append(h, hdr1);
	h = curl_slist_append(h, hdr2);
	if (!auth_headers(e, &h)) {
		curl_slist_free_all(h);
		return RETRY;
	}
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, (const char *)it->pprof_gz);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	r = http_result(e, curl_easy_perform(e->curl));
	curl_slist_free_all(h);
	*retry_after = hs.retry_after;
	return r;
}

/* OTLP/HTTP: POST /v1development/profiles, protobuf, gzip. */
static enum result send_otlp_http(struct exporter *e, const struct item *it, int *retry_after)
{
	return post_body(e, it, "/v1development/profiles", "Content-Type: application/x-protobuf",
			 "Content-Encoding: gzip", retry_after);
}

/* gRPC status codes worth another try (the OTLP specification's list). */
static bool grpc_retryable(int code)
{
	return code == 1 || code == 4 || code == 8 || code == 10 || code == 11 || code == 14 ||
	       code == 15;
}

struct grpc_state {
	struct hdr_state hs;	/* Retry-After, through on_hdr */
	int status;		/* grpc-status, -1 until seen (headers or trailers) */
	char message[120];
};

static size_t on_grpc_hdr(char *d, size_t s, size_t n, void *u)
{
	struct grpc_state *g = u;
	size_t len = s * n;

	on_hdr(d, s, n, &g->hs);
	if (len > 12 && !strncasecmp(d, "grpc-status:", 12))
		g->status = atoi(d + 12);
	else if (len > 13 && !strncasecmp(d, "grpc-message:", 13)) {
		size_t m = len - 13;

		while (m && (d[13 + m - 1] == '\r' || d[13 + m - 1] == '\n'))
			m--;
		snprintf(g->message, sizeof(g->message), "%.*s", (int)m, d + 13);
	}
	return len;
}

/*
 * OTLP/gRPC: the unary call ProfilesService/Export over HTTP/2 (h2c with prior
 * knowledge for http://, ALPN for https://). The item holds the gzipped
 * request; it goes as one length-prefixed message flagged compressed, with
 * grpc-encoding: gzip. The outcome is grpc-status, in the trailers.
 */
static enum result send_otlp_grpc(struct exporter *e, const struct item *it, int *retry_after)
{
	struct curl_slist *h = NULL;
	struct grpc_state g = { .status = -1 };
	uint8_t *body;
	char url[4096];
	long status = 0;
	CURLcode rc;
	enum result r;

	body = malloc(it->len + 5);
	if (!body) {
		snprintf(e->err, sizeof(e->err), "out of memory");
		return RETRY;
	}
	body[0] = 1;	/* compressed, with grpc-encoding */
	body[1] = (uint8_t)(it->len >> 24);
	body[2] = (uint8_t)(it->len >> 16);
	body[3] = (uint8_t)(it->len >> 8);
	body[4] = (uint8_t)it->len;
	memcpy(body + 5, it->pprof_gz, it->len);
	snprintf(url, sizeof(url),
		 "%s/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
		 e->url);
	common_opts(e, url, &g.hs);
	curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_grpc_hdr);
	curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, &g);
	/* a connection whose last call ended in a gRPC error is not trusted again */
	curl_easy_setopt(e->curl, CURLOPT_FRESH_CONNECT, e->grpc_fresh ? 1L : 0L);
	curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION, !strncmp(e->url, "https://", 8) ?
			 (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	h = curl_slist_append(h, "Content-Type: application/grpc+proto");
	h = curl_slist_append(h, "TE: trailers");
	h = curl_slist_append(h, "grpc-encoding: gzip");
	h = curl_slist_append(h, "grpc-accept-encoding: identity,gzip");
	if (!auth_headers(e, &h)) {
		curl_slist_free_all(h);
		free(body);
		return RETRY;
	}
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(it->len + 5));
	rc = curl_easy_perform(e->curl);
	curl_slist_free_all(h);
	free(body);
	*retry_after = g.hs.retry_after;
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200 || g.status < 0) {
		e->grpc_fresh = true;
		r = http_result(e, rc);
		if (r == SENT) {	/* HTTP 2xx without a grpc-status: not a gRPC server */
			snprintf(e->err, sizeof(e->err),
				 "HTTP %ld without grpc-status", status);
			r = RETRY;
		}
		return r;
	}
	e->grpc_fresh = g.status != 0;
	if (g.status == 0)
		return SENT;
	snprintf(e->err, sizeof(e->err), "grpc-status %d%s%s", g.status,
		 g.message[0] ? ": " : "", g.message);
	return grpc_retryable(g.status) ? RETRY : REJECTED;
}

/* Pyroscope's Connect API: the PushRequest (built at submit) as the body. */
static enum result send_pyroscope_push(struct exporter *e, const struct item *it, int *retry_after)
{
	return post_body(e, it, "/push.v1.PusherService/Push", "Content-Type: application/proto",
			 "Connect-Protocol-Version: 1", retry_after);
}

static enum result send_pyroscope(struct exporter *e, const struct item *it, int *retry_after)
{
	struct curl_slist *h = NULL;
	struct hdr_state hs = { 0 };
	curl_mime *mime;
	curl_mimepart *part;
	char *name_esc, url[4096];
	enum result r;

	name_esc = curl_easy_escape(e->curl, it->name, 0);
	snprintf(url, sizeof(url),
		 "%s/ingest?name=%s&from=%lld&until=%lld&sampleRate=%d&spyName=profleet&format=pprof"
		 "&units=samples&aggregationType=sum",
		 e->url, name_esc ? name_esc : "profleet", (long long)it->from_s,
		 (long long)it->until_s, it->rate_hz);
	curl_free(name_esc);
	common_opts(e, url, &hs);
	if (!auth_headers(e, &h)) {
		curl_slist_free_all(h);
		return RETRY;
	}
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
	/* the pprof goes as the "profile" part of a multipart form */
	mime = curl_mime_init(e->curl);
	part = curl_mime_addpart(mime);
	curl_mime_name(part, "profile");
	curl_mime_filename(part, "profile.pprof");
	curl_mime_type(part, "application/octet-stream");
	curl_mime_data(part, (const char *)it->pprof_gz, it->len);
	curl_easy_setopt(e->curl, CURLOPT_MIMEPOST, mime);
	r = http_result(e, curl_easy_perform(e->curl));
	curl_mime_free(mime);
	curl_slist_free_all(h);
	*retry_after = hs.retry_after;
	return r;
}

/* Keeps the newest dir_max_files *.pb.gz files of ours in the directory. */
static void dir_rotate(struct exporter *e)
{
	struct dirent **list = NULL;
	int n = scandir(e->url, &list, NULL, alphasort), ours = 0;

	for (int i = 0; i < n; i++)
		if (!strncmp(list[i]->d_name, "profleet-", 9) && strstr(list[i]->d_name, ".pb.gz"))
			ours++;
	/* names start with a zero-padded time: alphabetical is oldest first */
	for (int i = 0; i < n; i++) {
		if (ours > (int)e->o.dir_max_files && !strncmp(list[i]->d_name, "profleet-", 9) &&
		    strstr(list[i]->d_name, ".pb.gz")) {
			char path[4400];

			snprintf(path, sizeof(path), "%s/%s", e->url, list[i]->d_name);
			if (!unlink(path))
				ours--;
		}
		free(list[i]);
	}
	free(list);
}

static enum result send_dir(struct exporter *e, const struct item *it)
{
	char path[4400], tmp[4500];
	int fd;
	ssize_t w;

	snprintf(path, sizeof(path), "%s/profleet-%012lld-%s.pb.gz", e->url, (long long)it->from_s,
		 it->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(e->err, sizeof(e->err), "%s: %s", tmp, strerror(errno));
		return RETRY;	/* the directory may come back (a volume being mounted) */
	}
	w = write(fd, it->pprof_gz, it->len);
	if (w != (ssize_t)it->len || fsync(fd) || close(fd) || rename(tmp, path)) {
		snprintf(e->err, sizeof(e->err), "%s: %s", path,
			 w < 0 ? strerror(errno) : "short write");
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return RETRY;
	}
	dir_rotate(e);
	return SENT;
}

static enum result send_controller(struct exporter *e, const struct item *it)
{
	struct export_route route = { (const char *const *)it->policies, it->npolicies };
	int r = e->o.upload(e->o.upload_ctx, &route, it->pprof_gz, it->len, it->from_s,
			    it->until_s, e->err, sizeof(e->err));

	return !r ? SENT : r == -EAGAIN ? RETRY : REJECTED;
}

/*
 * One attempt, outside the lock. The sender writes why it failed into e->err,
 * which only this thread touches; sender_main copies it into e->st under the
 * lock, where exporter_stats() reads it.
 */
static enum result send_item(struct exporter *e, const struct item *it, int *retry_after)
{
	e->err[0] = '\0';
	switch (e->t.kind) {
	case EXPORT_DIR:
		return send_dir(e, it);
	case EXPORT_OTLP_HTTP:
		return send_otlp_http(e, it, retry_after);
	case EXPORT_CONTROLLER:
		return send_controller(e, it);
	case EXPORT_OTLP_GRPC:
		return send_otlp_grpc(e, it, retry_after);
	case EXPORT_PYROSCOPE_PUSH:
		return send_pyroscope_push(e, it, retry_after);
	default:
		return send_pyroscope(e, it, retry_after);
	}
}

/* The outcome of an attempt, under the lock: counted, and an item to retry goes back in front. */
static void settle(struct exporter *e, enum result r, struct item *it)
{
	e->busy = false;
	if (r == SENT) {
		e->st.last_success_unix = time(NULL);
		e->st.sent++;
	} else {
		e->st.last_failure_unix = time(NULL);
		snprintf(e->st.last_error, sizeof(e->st.last_error), "%s",
			 e->err[0] ? e->err : "failed (no reason given)");
	}
	if (r == REJECTED) {
		e->st.dropped_rejected++;
		log_kv(LOG_LVL_WARN, LOG_KV("backend", e->desc), "export: profile rejected (%s): dropped",
		       e->st.last_error);
	} else if (r == RETRY && e->stop) {
		e->st.dropped_full++;	/* shutting down with it unsent: counted */
	} else if (r == RETRY && e->n == e->o.queue_cap) {
		/* newer profiles filled the queue meanwhile: this, the oldest, goes */
		e->st.dropped_full++;
		log_warn("export %s: queue full: dropping the oldest profile", e->desc);
	} else if (r == RETRY) {
		e->head = (e->head + e->o.queue_cap - 1) % e->o.queue_cap;
		e->q[e->head] = *it;
		e->n++;
		memset(it, 0, sizeof(*it));
	}
	item_free(it);
	if (!e->n && !e->busy)
		pthread_cond_broadcast(&e->idle);
}

static void *sender_main(void *arg)
{
	struct exporter *e = arg;
	unsigned int attempt = 0;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		struct item it;
		enum result r;
		int retry_after = 0;

		while (!e->n && !e->stop)
			pthread_cond_wait(&e->cond, &e->lock);
		if (!e->n)
			break;	/* stopping with nothing left */
		/* take the oldest out; a retry puts it back in front */
		it = e->q[e->head];
		memset(&e->q[e->head], 0, sizeof(it));
		e->head = (e->head + 1) % e->o.queue_cap;
		e->n--;
		e->busy = true;
		pthread_mutex_unlock(&e->lock);

		r = send_item(e, &it, &retry_after);

		pthread_mutex_lock(&e->lock);
		settle(e, r, &it);
		if (r == SENT)
			attempt = 0;
		if (r == RETRY && !e->stop) {
			unsigned int ms = retry_after > 0 ? (unsigned int)retry_after * 1000 :
				k8s_backoff_ms(attempt, e->o.backoff_base_ms, e->o.backoff_cap_ms);
			struct timespec ts;

			attempt++;
			e->st.retries++;
			log_kv(LOG_LVL_INFO, LOG_KV("backend", e->desc), "export: %s; retrying in %u ms",
			       e->st.last_error, ms);
			k8s_deadline_ms(&ts, ms);
			/* new submissions signal cond too: sleep on until the time is up */
			while (!e->stop && pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
				;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- the queue ------------------------------------------------------------------ */

struct exporter *exporter_new(const struct export_target *t, const struct export_auth *auth,
			      const struct exporter_opts *opts, char *msg, size_t msglen)
{
	struct exporter *e;

	if (t->kind == EXPORT_CONTROLLER && (!opts || !opts->upload)) {
		snprintf(msg, msglen, "the controller's store needs a connection to the controller");
		return NULL;
	}
	if (t->kind == EXPORT_DIR) {
		struct stat st;

		if (mkdir(t->url, 0755) && errno != EEXIST) {
			snprintf(msg, msglen, "--export dir=%s: %s", t->url, strerror(errno));
			return NULL;
		}
		if (stat(t->url, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(msg, msglen, "--export dir=%s: not a directory", t->url);
			return NULL;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	e->t = *t;
	if (auth)
		e->auth = *auth;
	if (opts)
		e->o = *opts;
	if (!e->o.queue_cap)
		e->o.queue_cap = 16;
	if (!e->o.dir_max_files)
		e->o.dir_max_files = 100;
	if (!e->o.backoff_base_ms)
		e->o.backoff_base_ms = 500;
	if (!e->o.backoff_cap_ms)
		e->o.backoff_cap_ms = 60000;
	if (!e->o.timeout_ms)
		e->o.timeout_ms = 30000;
	e->url = strdup(t->url);
	while (e->url && strlen(e->url) > 1 && e->url[strlen(e->url) - 1] == '/')
		e->url[strlen(e->url) - 1] = 0;
	snprintf(e->desc, sizeof(e->desc), "%s=%s", export_kind_name(t->kind), t->url);
	e->q = calloc(e->o.queue_cap, sizeof(*e->q));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	e->curl = curl_easy_init();
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_cond_init(&e->idle, NULL);
	if (!e->url || !e->q || !e->curl || pthread_create(&e->thread, NULL, sender_main, e)) {
		snprintf(msg, msglen, "cannot start the exporter");
		if (e->curl)
			curl_easy_cleanup(e->curl);
		free(e->q);
		free(e->url);
		free(e);
		return NULL;
	}
	return e;
}

/* Pyroscope names: service.cpu{k=v,...}; these characters would break the syntax. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == ',' || *s == '{' || *s == '}' || *s == '=' || *s == '"' || *s == '/' ||
		    *s == ' ')
			*s = '_';
}

/* gzip (RFC 1952) of a buffer, for OTLP's Content-Encoding. */
static int gzip_bytes(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t cap;
	uint8_t *out;

	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len);
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return -EIO;
	}
	*ret_len = z.total_out;
	*ret = out;
	deflateEnd(&z);
	return 0;
}

/* Prometheus-style label names, as Pyroscope wants them: [A-Za-z0-9_], no leading digit. */
static void label_name(char *out, size_t len, const char *in)
{
	size_t i = 0;

	for (; in[i] && i < len - 1; i++)
		out[i] = (in[i] >= 'a' && in[i] <= 'z') || (in[i] >= 'A' && in[i] <= 'Z') ||
			 (in[i] >= '0' && in[i] <= '9' && i) ? in[i] : '_';
	out[i] = 0;
}

/* A PushRequest with one series: the profile type, the service, the labels. */
static int push_request(const uint8_t *gz, size_t gzlen, const char *service,
			const struct export_label *labels, int nlabels, uint8_t **ret, size_t *ret_len)
{
	Profleet__Pyroscope__PushRequest req = PROFLEET__PYROSCOPE__PUSH_REQUEST__INIT;
	Profleet__Pyroscope__RawProfileSeries ser = PROFLEET__PYROSCOPE__RAW_PROFILE_SERIES__INIT;
	Profleet__Pyroscope__RawSample smp = PROFLEET__PYROSCOPE__RAW_SAMPLE__INIT;
	Profleet__Pyroscope__RawProfileSeries *serp = &ser;
	Profleet__Pyroscope__RawSample *smpp = &smp;
	int n = nlabels < 64 ? nlabels : 64;
	Profleet__Pyroscope__LabelPair lv[66], *lp[66];
	char names[64][128], id[40];
	unsigned char rnd[16];
	FILE *f;
	size_t k = 0;

	for (int i = 0; i < n + 2; i++)
		profleet__pyroscope__label_pair__init(&lv[i]);
	lv[k].name = (char *)"__name__";
	lv[k++].value = (char *)"process_cpu";
	lv[k].name = (char *)"service_name";
	lv[k++].value = (char *)(service && *service ? service : "profleet");
	for (int i = 0; i < n; i++) {
		label_name(names[i], sizeof(names[i]), labels[i].key);
		if (!strcmp(names[i], "service_name") || !strcmp(names[i], "__name__") || !names[i][0])
			continue;
		lv[k].name = names[i];
		lv[k++].value = (char *)labels[i].value;
	}
	for (size_t i = 0; i < k; i++)
		lp[i] = &lv[i];
	/* a version 4 UUID: Pyroscope deduplicates by it */
	f = fopen("/dev/urandom", "re");
	if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)random();
	if (f)
		fclose(f);
	rnd[6] = (rnd[6] & 0x0f) | 0x40;
	rnd[8] = (rnd[8] & 0x3f) | 0x80;
	snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9],
		 rnd[10], rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
	smp.raw_profile.data = (uint8_t *)gz;
	smp.raw_profile.len = gzlen;
	smp.id = id;
	ser.n_labels = k;
	ser.labels = lp;
	ser.n_samples = 1;
	ser.samples = &smpp;
	req.n_series = 1;
	req.series = &serp;
	*ret_len = profleet__pyroscope__push_request__get_packed_size(&req);
	*ret = malloc(*ret_len + 1);
	if (!*ret)
		return -ENOMEM;
	profleet__pyroscope__push_request__pack(&req, *ret);
	return 0;
}

int exporter_submit(struct exporter *e, const struct profile *p, const char *service,
		    const struct export_label *labels, int nlabels, int64_t from_s, int64_t until_s,
		    int rate_hz)
{
	return exporter_submit_routed(e, p, service, labels, nlabels, from_s, until_s, rate_hz,
				      NULL);
}

/*
 * A pprof whose samples carry the target's labels (the store and files: a
 * profile merged with other pods' must still tell them apart; Pyroscope and
 * OTLP carry them in the series and the resource instead).
 */
static int encode_pprof_labeled(const struct profile *p, const struct export_label *labels,
				int nlabels, struct item *it)
{
	struct pprof_str_label *extra = NULL;
	int err;

	if (nlabels > 0 && !(extra = calloc((size_t)nlabels, sizeof(*extra))))
		return -ENOMEM;
	for (int i = 0; i < nlabels; i++) {
		extra[i].key = labels[i].key;
		extra[i].value = labels[i].value;
	}
	err = pprof__encode_labeled(p, extra, nlabels > 0 ? nlabels : 0, true, &it->pprof_gz,
				    &it->len);
	free(extra);
	return err;
}

/* The profile as the exporter's kind sends it, into it->pprof_gz. */
static int encode_for(const struct exporter *e, const struct profile *p, const char *service,
		      const struct export_label *labels, int nlabels, struct item *it)
{
	uint8_t *raw;
	size_t rawlen;
	int err;

	switch (e->t.kind) {
	case EXPORT_OTLP_HTTP:
	case EXPORT_OTLP_GRPC:
		err = otlp__encode(p, service, labels, nlabels, &raw, &rawlen);
		if (!err) {
			err = gzip_bytes(raw, rawlen, &it->pprof_gz, &it->len);
			free(raw);
		}
		return err;
	case EXPORT_PYROSCOPE_PUSH:
		err = pprof__encode(p, true, &raw, &rawlen);
		if (!err) {
			err = push_request(raw, rawlen, service, labels, nlabels, &it->pprof_gz,
					   &it->len);
			free(raw);
		}
		return err;
	case EXPORT_DIR:
	case EXPORT_CONTROLLER:
		return encode_pprof_labeled(p, labels, nlabels, it);
	default:	/* Pyroscope's /ingest: the labels are in the series' name */
		return pprof__encode(p, true, &it->pprof_gz, &it->len);
	}
}

/* dir: a file-name stem; pyroscope: "service.cpu{k=v,...}", of any length. */
static char *series_name(const struct exporter *e, const char *service,
			 const struct export_label *labels, int nlabels)
{
	char *name = NULL, *part = strdup(service && *service ? service : "profleet");
	size_t len;
	FILE *o;

	if (!part)
		return NULL;
	sanitize(part);
	if (e->t.kind == EXPORT_DIR)
		return part;
	o = open_memstream(&name, &len);
	if (!o) {
		free(part);
		return NULL;
	}
	fprintf(o, "%s.cpu{", part);
	for (int i = 0; i < nlabels; i++) {
		char *k = strdup(labels[i].key), *v = strdup(labels[i].value);

		if (k && v) {
			sanitize(k);
			sanitize(v);
			fprintf(o, "%s%s=%s", i ? "," : "", k, v);
		}
		free(k);
		free(v);
	}
	fputc('}', o);
	free(part);
	if (fclose(o)) {
		free(name);
		return NULL;
	}
	return name;
}

int exporter_submit_routed(struct exporter *e, const struct profile *p, const char *service,
			   const struct export_label *labels, int nlabels, int64_t from_s,
			   int64_t until_s, int rate_hz, const struct export_route *route)
{
	struct item it = { .from_s = from_s, .until_s = until_s, .rate_hz = rate_hz };
	int err = encode_for(e, p, service, labels, nlabels, &it);

	if (!err && e->t.kind == EXPORT_CONTROLLER)
		err = item_set_route(&it, route);
	else if (!err && !(it.name = series_name(e, service, labels, nlabels)))
		err = -ENOMEM;
	if (err) {
		item_free(&it);
		return err;
	}
	pthread_mutex_lock(&e->lock);
	e->st.submitted++;
	if (e->n == e->o.queue_cap) {	/* full: the oldest goes, counted */
		log_warn("export %s: queue full (%u): dropping the oldest profile", e->desc,
			 e->o.queue_cap);
		e->st.dropped_full++;
		item_free(&e->q[e->head]);
		e->head = (e->head + 1) % e->o.queue_cap;
		e->n--;
	}
	e->q[(e->head + e->n) % e->o.queue_cap] = it;
	e->n++;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

unsigned int exporter_drain(struct exporter *e, unsigned int timeout_ms)
{
	struct timespec ts;
	unsigned int left;

	k8s_deadline_ms(&ts, timeout_ms);
	pthread_mutex_lock(&e->lock);
	while ((e->n || e->busy) && pthread_cond_timedwait(&e->idle, &e->lock, &ts) != ETIMEDOUT)
		;
	left = e->n + (e->busy ? 1 : 0);
	pthread_mutex_unlock(&e->lock);
	return left;
}

void exporter_stats(struct exporter *e, struct exporter_stats *ret)
{
	pthread_mutex_lock(&e->lock);
	*ret = e->st;
	ret->queued = e->n;
	pthread_mutex_unlock(&e->lock);
}

const char *exporter_describe(const struct exporter *e)
{
	return e->desc;
}

void exporter_free(struct exporter *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	for (unsigned int i = 0; i < e->o.queue_cap; i++)
		item_free(&e->q[i]);
	free(e->q);
	curl_easy_cleanup(e->curl);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	pthread_cond_destroy(&e->idle);
	free(e->url);
	free(e);
}
