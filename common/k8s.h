/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_K8S_H
#define COMMON_K8S_H
/*
 * A small Kubernetes API client on libcurl + cJSON: configuration from a
 * kubeconfig file or from inside a pod, plain requests, and list-then-watch
 * informers that keep going through apiserver restarts (re-list on 410 Gone,
 * exponential backoff with jitter, Retry-After).
 *
 * A struct k8s_client is for one thread at a time (one curl handle, kept alive).
 */
#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct k8s_config {
	char *server;		/* https://host:port, no trailing slash */
	char *namespace;	/* the context's or the pod's namespace ("default" if none) */
	char *token;		/* static bearer token */
	char *token_file;	/* re-read when it changes (projected tokens rotate) */
	char *ca_file;
	unsigned char *ca_data;	/* PEM */
	size_t ca_len;
	char *cert_file, *key_file;
	unsigned char *cert_data, *key_data;
	size_t cert_len, key_len;
	bool insecure;		/* insecure-skip-tls-verify */
};

/*
 * Loads kubeconfig from path, or if path is NULL: $KUBECONFIG (first file), the
 * in-cluster service-account files, then ~/.kube/config. context may be NULL
 * (current-context). Returns 0 or -errno with a message in err.
 */
int k8s_config_load(const char *path, const char *context, struct k8s_config *cfg,
		    char *err, size_t errlen);
/* The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the files under root
 * (normally /var/run/secrets/kubernetes.io/serviceaccount). */
int k8s_config_in_cluster(const char *root, struct k8s_config *cfg, char *err, size_t errlen);
void k8s_config_free(struct k8s_config *cfg);

struct k8s_client;
struct k8s_client *k8s_client_new(const struct k8s_config *cfg);
#define K8S_TIMEOUT_MS 30000L	/* a request, whole, unless set otherwise */
/* A request's time limit (ms) for this client, e.g. shorter where a caller waits. */
void k8s_client_set_timeout(struct k8s_client *c, long ms);
/* stop (atomic) set: a request under way ends at once, failed (-EIO). */
void k8s_client_set_stop(struct k8s_client *c, const int *stop);
void k8s_client_free(struct k8s_client *c);

struct k8s_response {
	long status;		/* HTTP status, 0 when the request did not complete */
	char *body;		/* NUL-terminated, may be NULL */
	size_t len;
	cJSON *json;		/* body parsed, when it is JSON */
	int retry_after;	/* seconds from Retry-After, 0 if none */
	char error[256];	/* transport error when status is 0 */
};
void k8s_response_free(struct k8s_response *r);

/* method: GET, POST, PUT, PATCH, DELETE. content_type may be NULL (application/json).
 * Returns 0 when an HTTP answer arrived (any status), -EIO otherwise. */
int k8s_request(struct k8s_client *c, const char *method, const char *path,
		const char *content_type, const char *body, struct k8s_response *resp);
/* A message for a failed response: the Status object's message, or the transport error. */
const char *k8s_response_message(const struct k8s_response *r);

/* Events of a watch, after the initial list (delivered as K8S_ADDED with list=true). */
enum k8s_event { K8S_ADDED, K8S_MODIFIED, K8S_DELETED };

struct k8s_informer_ops {
	/* A (re-)list begins: every object not reported again before list_end is gone. */
	void (*list_begin)(void *ctx);
	void (*event)(void *ctx, enum k8s_event ev, const cJSON *obj);
	void (*list_end)(void *ctx);
};

struct k8s_informer_stats {
	uint64_t lists, watches, events, relists_gone, errors;
};

struct k8s_informer;
/* path: a collection, e.g. "/api/v1/pods" or "/apis/g/v1/namespaces/ns/things".
 * Runs in its own thread with its own client until k8s_informer_stop(). */
struct k8s_informer *k8s_informer_start(const struct k8s_config *cfg, const char *path,
					const struct k8s_informer_ops *ops, void *ctx);
void k8s_informer_stop(struct k8s_informer *inf);
bool k8s_informer_synced(struct k8s_informer *inf);	/* a first list completed */
void k8s_informer_stats(struct k8s_informer *inf, struct k8s_informer_stats *ret);

/* Helpers on cJSON objects: the string at a dotted path ("metadata.name"), or NULL. */
const char *k8s_str(const cJSON *obj, const char *path);
const cJSON *k8s_get(const cJSON *obj, const char *path);
/* RFC 3339 UTC, seconds resolution ("2026-11-24T20:00:00Z"); and back (-1 on error). */
void k8s_time_format(int64_t unix_s, char *buf, size_t len);
int64_t k8s_time_parse(const char *s);
/* Exponential backoff with full jitter: attempt 0.. -> milliseconds in [base, cap]. */
unsigned int k8s_backoff_ms(unsigned int attempt, unsigned int base_ms, unsigned int cap_ms);
/* A Kubernetes object name (DNS subdomain: lower-case alphanumerics, '-', '.';
 * 1..253 bytes, no leading '-' or '.', no ".."), n bytes of s. */
bool k8s_name_valid(const char *s, size_t n);
/* Frees a credential string after overwriting it (NULL is fine). */
void k8s_free_secret(char *s);
/* CLOCK_REALTIME now + ms, for pthread_cond_timedwait. */
struct timespec;
void k8s_deadline_ms(struct timespec *ret, unsigned int ms);
#endif
