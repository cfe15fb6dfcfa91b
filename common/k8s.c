// SPDX-License-Identifier: Apache-2.0
/* Kubernetes API client: config, requests, informers. See k8s.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "grow.h"
#include "k8s.h"
#include "log.h"
#include "yamljson.h"

#define K8S_MAX_BODY (256u << 20)	/* one response; lists are paged at 500 items */
#define K8S_MAX_EVENT (64u << 20)	/* one watch event line */
#define K8S_MAX_TOKEN 16384

/* ---- small helpers -------------------------------------------------------- */

const cJSON *k8s_get(const cJSON *obj, const char *path)
{
	char key[128];
	const char *dot;
	size_t n;

	while (obj && *path) {
		dot = strchr(path, '.');
		n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
		path += n + (dot ? 1 : 0);
	}
	return obj;
}

const char *k8s_str(const cJSON *obj, const char *path)
{
	const cJSON *v = k8s_get(obj, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void k8s_time_format(int64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t k8s_time_parse(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	if (!s)
		return -1;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.')	/* MicroTime fraction */
		while (*++end >= '0' && *end <= '9')
			;
	if (*end != 'Z')
		return -1;
	return (int64_t)timegm(&tm);
}

bool k8s_name_valid(const char *s, size_t n)
{
	if (!n || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      (s[i] == '.' && (i + 1 == n || s[i + 1] != '.'))))
			return false;
	return true;
}

void k8s_free_secret(char *s)
{
	if (s) {
		volatile char *p = s;

		while (*p)
			*p++ = 0;
	}
	free(s);
}

void k8s_deadline_ms(struct timespec *ret, unsigned int ms)
{
	clock_gettime(CLOCK_REALTIME, ret);
	ret->tv_sec += ms / 1000;
	ret->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ret->tv_nsec >= 1000000000L) {
		ret->tv_sec++;
		ret->tv_nsec -= 1000000000L;
	}
}

unsigned int k8s_backoff_ms(unsigned int attempt, unsigned int base_ms, unsigned int cap_ms)
{
	unsigned long long top = base_ms;

	while (attempt-- > 0 && top < cap_ms)
		top *= 2;
	if (top > cap_ms)
		top = cap_ms;
	/* full jitter between base and top: spread reconnect storms */
	return base_ms + (unsigned int)((unsigned long long)random() % (top - base_ms + 1));
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *read_small_file(const char *path, size_t max, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = 0;
	if (ret_len)
		*ret_len = n;
	return buf;
}

static void strip_trailing_space(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
}

/* ---- configuration -------------------------------------------------------- */

void k8s_config_free(struct k8s_config *cfg)
{
	free(cfg->server);
	free(cfg->namespace);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->ca_file);
	free(cfg->ca_data);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->cert_data);
	free(cfg->key_data);
	memset(cfg, 0, sizeof(*cfg));
}

int k8s_config_in_cluster(const char *root, struct k8s_config *cfg, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char path[512], server[300];
	char *ns;

	memset(cfg, 0, sizeof(*cfg));
	if (!host || !*host) {
		snprintf(err, errlen, "not in a cluster: KUBERNETES_SERVICE_HOST is not set");
		return -ENOENT;
	}
	snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port && *port ? port : "443");
	snprintf(path, sizeof(path), "%s/token", root);
	if (access(path, R_OK)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	cfg->server = strdup(server);
	cfg->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", root);
	cfg->ca_file = strdup(path);
	snprintf(path, sizeof(path), "%s/namespace", root);
	ns = read_small_file(path, 256, NULL);
	if (ns)
		strip_trailing_space(ns);
	cfg->namespace = ns && *ns ? ns : strdup("default");
	if (ns && !*ns)
		free(ns);
	return 0;
}

static const cJSON *named_entry(const cJSON *list, const char *name, const char *field)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, list) {
		const char *n = k8s_str(it, "name");

		if (n && name && !strcmp(n, name))
			return cJSON_GetObjectItemCaseSensitive(it, field);
	}
	return NULL;
}

/* A file path in a kubeconfig is relative to the kubeconfig's directory. */
static char *kc_path(const char *kubeconfig, const char *p)
{
	const char *slash;
	char *out;

	if (!p)
		return NULL;
	if (p[0] == '/' || !(slash = strrchr(kubeconfig, '/')))
		return strdup(p);
	if (asprintf(&out, "%.*s/%s", (int)(slash - kubeconfig), kubeconfig, p) < 0)
		return NULL;
	return out;
}

static int kc_data(const cJSON *obj, const char *key, unsigned char **ret, size_t *ret_len)
{
	const char *s = k8s_str(obj, key);

	if (!s)
		return 0;
	*ret = base64_decode(s, ret_len);
	return *ret ? 0 : -EINVAL;
}

static int load_kubeconfig(const char *path, const char *context, struct k8s_config *cfg,
			   char *err, size_t errlen)
{
	const cJSON *ctx, *cluster, *user, *ins;
	const char *ctx_name, *s;
	cJSON *kc;
	int ret = -EINVAL;

	kc = yaml_file_to_json(path, err, errlen);
	if (!kc)
		return -EINVAL;
	ctx_name = context ? context : k8s_str(kc, "current-context");
	ctx = named_entry(cJSON_GetObjectItemCaseSensitive(kc, "contexts"), ctx_name, "context");
	if (!ctx) {
		snprintf(err, errlen, "%s: context '%s' not found", path, ctx_name ? ctx_name : "");
		goto out;
	}
	cluster = named_entry(cJSON_GetObjectItemCaseSensitive(kc, "clusters"),
			      k8s_str(ctx, "cluster"), "cluster");
	user = named_entry(cJSON_GetObjectItemCaseSensitive(kc, "users"), k8s_str(ctx, "user"),
			   "user");
	if (!cluster || !(s = k8s_str(cluster, "server"))) {
		snprintf(err, errlen, "%s: context '%s' has no cluster server", path, ctx_name);
		goto out;
	}
	cfg->server = strdup(s);
	while (cfg->server[0] && cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = 0;
	cfg->namespace = strdup(k8s_str(ctx, "namespace") ? k8s_str(ctx, "namespace") : "default");
	cfg->ca_file = kc_path(path, k8s_str(cluster, "certificate-authority"));
	ins = cJSON_GetObjectItemCaseSensitive(cluster, "insecure-skip-tls-verify");
	cfg->insecure = cJSON_IsTrue(ins);
	if (kc_data(cluster, "certificate-authority-data", &cfg->ca_data, &cfg->ca_len)) {
		snprintf(err, errlen, "%s: certificate-authority-data is not base64", path);
		goto out;
	}
	if (user) {
		cfg->token = xstrdup(k8s_str(user, "token"));
		cfg->token_file = kc_path(path, k8s_str(user, "tokenFile"));
		cfg->cert_file = kc_path(path, k8s_str(user, "client-certificate"));
		cfg->key_file = kc_path(path, k8s_str(user, "client-key"));
		if (kc_data(user, "client-certificate-data", &cfg->cert_data, &cfg->cert_len) ||
		    kc_data(user, "client-key-data", &cfg->key_data, &cfg->key_len)) {
			snprintf(err, errlen, "%s: client certificate or key data is not base64", path);
			goto out;
		}
		if (k8s_get(user, "exec") || k8s_get(user, "auth-provider")) {
			snprintf(err, errlen, "%s: user '%s' uses an exec/auth-provider plugin, "
				 "which is not supported; use a token or client certificate", path,
				 k8s_str(ctx, "user"));
			goto out;
		}
	}
	ret = 0;
out:
	cJSON_Delete(kc);
	if (ret)
		k8s_config_free(cfg);
	return ret;
}

int k8s_config_load(const char *path, const char *context, struct k8s_config *cfg,
		    char *err, size_t errlen)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char buf[4096];

	memset(cfg, 0, sizeof(*cfg));
	if (path && *path)
		return load_kubeconfig(path, context, cfg, err, errlen);
	if (env && *env) {
		snprintf(buf, sizeof(buf), "%s", env);
		buf[strcspn(buf, ":")] = 0;	/* first file of the list */
		return load_kubeconfig(buf, context, cfg, err, errlen);
	}
	if (getenv("KUBERNETES_SERVICE_HOST"))
		return k8s_config_in_cluster("/var/run/secrets/kubernetes.io/serviceaccount", cfg,
					     err, errlen);
	snprintf(buf, sizeof(buf), "%s/.kube/config", home ? home : "/root");
	if (access(buf, R_OK)) {
		snprintf(err, errlen, "no kubeconfig: give --kubeconfig or set KUBECONFIG");
		return -ENOENT;
	}
	return load_kubeconfig(buf, context, cfg, err, errlen);
}

/* ---- requests ------------------------------------------------------------- */

struct k8s_client {
	const struct k8s_config *cfg;
	CURL *curl;
	long timeout_ms;	/* of a whole request */
	const int *stop;	/* atomic, not 0: a request under way is given up */
	char *token;		/* current token (static or from token_file) */
	struct timespec token_mtime;
	time_t token_checked;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct k8s_client *k8s_client_new(const struct k8s_config *cfg)
{
	struct k8s_client *c;

	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = cfg;
	c->timeout_ms = K8S_TIMEOUT_MS;
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return NULL;
	}
	return c;
}

void k8s_client_set_timeout(struct k8s_client *c, long ms)
{
	c->timeout_ms = ms;
}

void k8s_client_set_stop(struct k8s_client *c, const int *stop)
{
	c->stop = stop;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->token);
	free(c);
}

void k8s_response_free(struct k8s_response *r)
{
	free(r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

const char *k8s_response_message(const struct k8s_response *r)
{
	const char *m;

	if (!r->status)
		return r->error[0] ? r->error : "no response";
	m = k8s_str(r->json, "message");
	return m ? m : "(no message)";
}

/* Re-reads a token file at most once a second, and only when it changed. */
static const char *current_token(struct k8s_client *c)
{
	struct stat st;
	time_t now = time(NULL);
	char *t;

	if (!c->cfg->token_file)
		return c->cfg->token;
	if (c->token && now == c->token_checked)
		return c->token;
	c->token_checked = now;
	if (stat(c->cfg->token_file, &st))
		return c->token;
	if (c->token && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
		return c->token;
	t = read_small_file(c->cfg->token_file, K8S_MAX_TOKEN, NULL);
	if (!t) {
		log_warn("k8s: cannot read token file %s: %s", c->cfg->token_file, strerror(errno));
		return c->token;
	}
	strip_trailing_space(t);
	free(c->token);
	c->token = t;
	c->token_mtime = st.st_mtim;
	return c->token;
}

struct membuf {
	char *p;
	size_t len, cap, max;
	int retry_after;
};

static size_t on_body(char *data, size_t sz, size_t n, void *arg)
{
	struct membuf *b = arg;
	size_t add = sz * n;

	if (b->len + add > b->max)
		return 0;	/* aborts the transfer */
	if (grow_bytes(&b->p, &b->cap, b->len + add + 1, 4096))
		return 0;
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

static size_t on_header(char *data, size_t sz, size_t n, void *arg)
{
	struct membuf *b = arg;
	size_t len = sz * n;

	if (len > 12 && !strncasecmp(data, "Retry-After:", 12))
		b->retry_after = atoi(data + 12);
	return len;
}

static struct curl_slist *setup(struct k8s_client *c, const char *method, const char *url,
				const char *content_type, const char *body)
{
	const struct k8s_config *cfg = c->cfg;
	struct curl_slist *h = NULL;
	const char *tok = current_token(c);
	char line[K8S_MAX_TOKEN + 32];
	CURL *cu = c->curl;

	curl_easy_reset(cu);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(cu, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(cu, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(cu, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "profleet/" PROFLEET_VERSION);
	if (cfg->insecure) {
		curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cfg->ca_file)
		curl_easy_setopt(cu, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->ca_data) {
		struct curl_blob blob = { cfg->ca_data, cfg->ca_len, CURL_BLOB_COPY };

		curl_easy_setopt(cu, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (cfg->cert_file)
		curl_easy_setopt(cu, CURLOPT_SSLCERT, cfg->cert_file);
	if (cfg->key_file)
		curl_easy_setopt(cu, CURLOPT_SSLKEY, cfg->key_file);
	if (cfg->cert_data) {
		struct curl_blob blob = { cfg->cert_data, cfg->cert_len, CURL_BLOB_COPY };

		curl_easy_setopt(cu, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(cu, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (cfg->key_data) {
		struct curl_blob blob = { cfg->key_data, cfg->key_len, CURL_BLOB_COPY };

		curl_easy_setopt(cu, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(cu, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (tok && *tok) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
		h = curl_slist_append(h, line);
	}
	h = curl_slist_append(h, "Accept: application/json");
	if (body) {
		snprintf(line, sizeof(line), "Content-Type: %s",
			 content_type ? content_type : "application/json");
		h = curl_slist_append(h, line);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "GET"))
		curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	return h;
}

static int on_request_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
			       curl_off_t d)
{
	const int *stop = arg;

	(void)a, (void)b, (void)c, (void)d;
	return __atomic_load_n(stop, __ATOMIC_ACQUIRE) ? 1 : 0;
}

int k8s_request(struct k8s_client *c, const char *method, const char *path,
		const char *content_type, const char *body, struct k8s_response *resp)
{
	struct membuf b = { .max = K8S_MAX_BODY };
	struct curl_slist *h;
	char url[4096];
	CURLcode rc;

	memset(resp, 0, sizeof(*resp));
	snprintf(url, sizeof(url), "%s%s", c->cfg->server, path);
	h = setup(c, method, url, content_type, body);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &b);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, c->stop ? 0L : 1L);
	if (c->stop) {
		curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_request_progress);
		curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, (void *)c->stop);
	}
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	resp->body = b.p;
	resp->len = b.len;
	resp->retry_after = b.retry_after;
	if (rc != CURLE_OK) {
		snprintf(resp->error, sizeof(resp->error), "%s %s: %s", method, path,
			 curl_easy_strerror(rc));
		return -EIO;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (b.p)
		resp->json = cJSON_ParseWithLength(b.p, b.len);
	return 0;
}

/* ---- informers ------------------------------------------------------------ */

struct k8s_informer {
	const struct k8s_config *cfg;
	char *path;
	struct k8s_informer_ops ops;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	volatile int stop;
	bool synced;
	struct k8s_informer_stats stats;
	char rv[64];		/* resourceVersion to watch from */
	bool gone;		/* the watch said 410: re-list */
	bool gone_error;	/* ... or an event was lost: re-list, after a backoff */
};

/* The informer's counters: written by its thread, read by any (k8s_informer_stats). */
static void stat_inc(uint64_t *v)
{
	__atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
}

static bool stopping(struct k8s_informer *inf)
{
	return __atomic_load_n(&inf->stop, __ATOMIC_ACQUIRE);
}

/* Sleeps up to ms, waking early when stopped. */
static void nap(struct k8s_informer *inf, unsigned int ms)
{
	struct timespec ts;

	k8s_deadline_ms(&ts, ms);
	pthread_mutex_lock(&inf->lock);
	if (!stopping(inf))
		pthread_cond_timedwait(&inf->cond, &inf->lock, &ts);
	pthread_mutex_unlock(&inf->lock);
}

static int do_list(struct k8s_informer *inf, struct k8s_client *c, int *retry_after)
{
	char path[2048], cont[1024] = "";
	struct k8s_response r;
	const cJSON *it;
	const char *rv, *next;
	bool begun = false;

	*retry_after = 0;
	for (;;) {
		char *esc = cont[0] ? curl_easy_escape(NULL, cont, 0) : NULL;

		snprintf(path, sizeof(path), "%s?limit=500%s%s", inf->path, esc ? "&continue=" : "",
			 esc ? esc : "");
		curl_free(esc);
		if (k8s_request(c, "GET", path, NULL, NULL, &r)) {
			log_warn("k8s: list %s: %s", inf->path, r.error);
			k8s_response_free(&r);
			return -EIO;
		}
		if (r.status == 410 && cont[0]) {	/* continue token expired: start over */
			k8s_response_free(&r);
			cont[0] = 0;
			continue;
		}
		if (r.status != 200 || !cJSON_IsArray(k8s_get(r.json, "items"))) {
			log_warn("k8s: list %s: HTTP %ld: %s", inf->path, r.status,
				 k8s_response_message(&r));
			*retry_after = r.retry_after;
			k8s_response_free(&r);
			return -EIO;
		}
		if (!begun) {
			if (inf->ops.list_begin)
				inf->ops.list_begin(inf->ctx);
			begun = true;
		}
		cJSON_ArrayForEach(it, k8s_get(r.json, "items"))
			inf->ops.event(inf->ctx, K8S_ADDED, it);
		rv = k8s_str(r.json, "metadata.resourceVersion");
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv ? rv : "");
		next = k8s_str(r.json, "metadata.continue");
		snprintf(cont, sizeof(cont), "%s", next ? next : "");
		k8s_response_free(&r);
		if (!cont[0])
			break;
	}
	if (inf->ops.list_end)
		inf->ops.list_end(inf->ctx);
	pthread_mutex_lock(&inf->lock);
	inf->synced = true;
	stat_inc(&inf->stats.lists);
	pthread_mutex_unlock(&inf->lock);
	return 0;
}

struct watch_buf {
	struct k8s_informer *inf;
	char *line;
	size_t len, cap;
};

static void watch_line(struct k8s_informer *inf, const char *line, size_t len)
{
	cJSON *ev = cJSON_ParseWithLength(line, len);
	const char *type = k8s_str(ev, "type"), *rv;
	const cJSON *obj = k8s_get(ev, "object");

	if (!ev || !type || !cJSON_IsObject(obj)) {
		/* an event lost is a cache gone stale: re-list rather than guess */
		log_warn("k8s: watch %s: undecodable event (%zu bytes): re-listing", inf->path, len);
		stat_inc(&inf->stats.errors);
		inf->gone = true;
		inf->gone_error = true;
		cJSON_Delete(ev);
		return;
	}
	stat_inc(&inf->stats.events);
	rv = k8s_str(obj, "metadata.resourceVersion");
	if (!strcmp(type, "ERROR")) {
		const cJSON *code = k8s_get(obj, "code");

		if (cJSON_IsNumber(code) && code->valueint == 410) {
			inf->gone = true;
			stat_inc(&inf->stats.relists_gone);
		} else {
			log_warn("k8s: watch %s: error event: %s", inf->path, k8s_str(obj, "message"));
			stat_inc(&inf->stats.errors);
		}
	} else if (!strcmp(type, "BOOKMARK")) {
		/* only the resourceVersion matters */
	} else if (!strcmp(type, "ADDED")) {
		inf->ops.event(inf->ctx, K8S_ADDED, obj);
	} else if (!strcmp(type, "MODIFIED")) {
		inf->ops.event(inf->ctx, K8S_MODIFIED, obj);
	} else if (!strcmp(type, "DELETED")) {
		inf->ops.event(inf->ctx, K8S_DELETED, obj);
	}
	if (rv && !inf->gone)
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	cJSON_Delete(ev);
}

/* Appends to the partial line; false when out of memory. */
static bool wb_append(struct watch_buf *w, const char *data, size_t n)
{
	if (grow_bytes(&w->line, &w->cap, w->len + n, 65536))
		return false;
	memcpy(w->line + w->len, data, n);
	w->len += n;
	return true;
}

/* Watch events are JSON lines; curl hands them over in arbitrary pieces. */
static size_t on_watch_data(char *data, size_t sz, size_t n, void *arg)
{
	struct watch_buf *w = arg;
	size_t len = sz * n, i, start = 0;

	if (stopping(w->inf) || w->inf->gone)
		return 0;
	for (i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (w->len) {	/* the end of a line begun earlier */
			if (!wb_append(w, data + start, i - start))
				return 0;
			watch_line(w->inf, w->line, w->len);
			w->len = 0;
		} else if (i > start) {
			watch_line(w->inf, data + start, i - start);
		}
		if (w->inf->gone)
			return 0;	/* re-list: the rest of this watch is moot */
		start = i + 1;
	}
	if (start < len) {	/* a partial line: keep it */
		size_t add = len - start;

		if (w->len + add > K8S_MAX_EVENT) {
			/* an event we cannot hold: start over from a fresh list */
			log_warn("k8s: watch %s: event over %u bytes: re-listing", w->inf->path,
				 K8S_MAX_EVENT);
			stat_inc(&w->inf->stats.errors);
			w->inf->gone = true;
			w->inf->gone_error = true;
			return 0;
		}
		if (!wb_append(w, data + start, add))
			return 0;
	}
	return len;
}

static int on_watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct k8s_informer *inf = arg;

	(void)a, (void)b, (void)c, (void)d;
	return stopping(inf) ? 1 : 0;
}

static int do_watch(struct k8s_informer *inf, struct k8s_client *c)
{
	struct watch_buf w = { .inf = inf };
	struct membuf hb = { 0 };
	struct curl_slist *h;
	char url[4096];
	long status = 0;
	CURLcode rc;

	/* the server ends the watch after timeoutSeconds; spread them out */
	snprintf(url, sizeof(url),
		 "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d",
		 c->cfg->server, inf->path, inf->rv, 240 + (int)(random() % 120));
	h = setup(c, "GET", url, NULL, NULL);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_watch_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &hb);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, inf);
	pthread_mutex_lock(&inf->lock);
	stat_inc(&inf->stats.watches);
	pthread_mutex_unlock(&inf->lock);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	free(w.line);
	if (inf->gone || stopping(inf))
		return 0;
	if (status == 410) {
		inf->gone = true;
		return 0;
	}
	if (rc != CURLE_OK || status != 200) {
		log_warn("k8s: watch %s ended: %s (HTTP %ld)", inf->path,
			 rc != CURLE_OK ? curl_easy_strerror(rc) : "bad status", status);
		return -EIO;
	}
	return 0;
}

static void *informer_main(void *arg)
{
	struct k8s_informer *inf = arg;
	struct k8s_client *c = k8s_client_new(inf->cfg);
	unsigned int attempt = 0;
	bool listed = false;
	int retry_after;

	if (!c) {
		log_error("k8s: informer %s: out of memory", inf->path);
		return NULL;
	}
	while (!stopping(inf)) {
		if (!listed || inf->gone) {
			/* gone stays set until a list succeeds: a failed re-list is retried */
			if (do_list(inf, c, &retry_after)) {
				stat_inc(&inf->stats.errors);
				nap(inf, retry_after > 0 ? (unsigned int)retry_after * 1000 :
					 k8s_backoff_ms(attempt++, 200, 30000));
				continue;
			}
			listed = true;
			inf->gone = false;
		}
		if (do_watch(inf, c)) {
			stat_inc(&inf->stats.errors);
			nap(inf, k8s_backoff_ms(attempt++, 200, 30000));
			/* the apiserver may have lost our resourceVersion while away: a
			 * 410 on the next watch makes us re-list */
			continue;
		}
		if (inf->gone_error) {	/* a server sending garbage is not hammered */
			inf->gone_error = false;
			nap(inf, k8s_backoff_ms(attempt++, 200, 30000));
			continue;
		}
		attempt = 0;
	}
	k8s_client_free(c);
	return NULL;
}

struct k8s_informer *k8s_informer_start(const struct k8s_config *cfg, const char *path,
					const struct k8s_informer_ops *ops, void *ctx)
{
	struct k8s_informer *inf = calloc(1, sizeof(*inf));

	if (!inf)
		return NULL;
	inf->cfg = cfg;
	inf->path = strdup(path);
	inf->ops = *ops;
	inf->ctx = ctx;
	pthread_mutex_init(&inf->lock, NULL);
	pthread_cond_init(&inf->cond, NULL);
	if (!inf->path || pthread_create(&inf->thread, NULL, informer_main, inf)) {
		free(inf->path);
		free(inf);
		return NULL;
	}
	return inf;
}

void k8s_informer_stop(struct k8s_informer *inf)
{
	if (!inf)
		return;
	__atomic_store_n(&inf->stop, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&inf->lock);
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	pthread_join(inf->thread, NULL);
	pthread_mutex_destroy(&inf->lock);
	pthread_cond_destroy(&inf->cond);
	free(inf->path);
	free(inf);
}

bool k8s_informer_synced(struct k8s_informer *inf)
{
	bool s;

	pthread_mutex_lock(&inf->lock);
	s = inf->synced;
	pthread_mutex_unlock(&inf->lock);
	return s;
}

void k8s_informer_stats(struct k8s_informer *inf, struct k8s_informer_stats *ret)
{
	const struct k8s_informer_stats *s = &inf->stats;

	ret->lists = __atomic_load_n(&s->lists, __ATOMIC_RELAXED);
	ret->watches = __atomic_load_n(&s->watches, __ATOMIC_RELAXED);
	ret->events = __atomic_load_n(&s->events, __ATOMIC_RELAXED);
	ret->relists_gone = __atomic_load_n(&s->relists_gone, __ATOMIC_RELAXED);
	ret->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
}
