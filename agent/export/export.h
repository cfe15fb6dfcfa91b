/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_EXPORT_H
#define AGENT_EXPORT_H
/*
 * Exporters: each has a bounded queue and its own sender thread, so a slow or
 * dead backend never blocks sampling and never grows memory without bound.
 * Sends are retried with exponential backoff and full jitter on network
 * errors, 5xx and 429 (honouring Retry-After); a full queue drops its oldest
 * profile; every drop is counted.
 *
 * Kinds: dir (pprof files, rotated), pyroscope (POST /ingest), pyroscope-push
 * (the Connect push API), otlp-http
 * (POST /v1development/profiles), otlp-grpc (ProfilesService/Export over
 * HTTP/2) and controller (the built-in store, over the agent's websocket).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct profile;

enum export_kind {
	EXPORT_DIR, EXPORT_PYROSCOPE, EXPORT_OTLP_HTTP, EXPORT_OTLP_GRPC,
	EXPORT_PYROSCOPE_PUSH,	/* Pyroscope's Connect API, push.v1.PusherService/Push */
	EXPORT_CONTROLLER,	/* the controller's built-in store, over the agent's websocket
				 * (last: not a --export kind) */
};

/* Where the controller's store files a profile: the policies of its target. */
struct export_route {
	const char *const *policies;
	size_t npolicies;
};

/*
 * EXPORT_CONTROLLER's transport: hands one gzipped pprof to the controller.
 * route: what exporter_submit_routed was given.
 * 0 = stored, -EAGAIN = try again later, anything else = refused (err says why).
 */
typedef int (*export_upload_fn)(void *ctx, const struct export_route *route,
				const uint8_t *pprof_gz, size_t len, int64_t from_s, int64_t until_s,
				char *err, size_t errlen);

#define EXPORT_MAX_HEADERS 16

struct export_target {
	enum export_kind kind;
	const char *url;	/* http(s)://host:port, or a directory for dir */
};

struct export_auth {
	const char *headers[EXPORT_MAX_HEADERS];	/* "Name: value" */
	int nheaders;
	const char *basic;		/* "user:password" */
	const char *bearer_file;	/* re-read at every send */
	const char *bearer;		/* a token given as such (from the controller) */
	const char *tenant;		/* X-Scope-OrgID */
};

struct exporter_opts {
	unsigned int queue_cap;		/* profiles held; 0 = 16 */
	unsigned int dir_max_files;	/* dir: newest files kept; 0 = 100 */
	unsigned int backoff_base_ms;	/* 0 = 500 */
	unsigned int backoff_cap_ms;	/* 0 = 60000 */
	unsigned int timeout_ms;	/* one request; 0 = 30000 */
	export_upload_fn upload;	/* EXPORT_CONTROLLER only */
	void *upload_ctx;
};

struct exporter_stats {
	uint64_t submitted, sent, retries, dropped_full, dropped_rejected, queued;
	int64_t last_success_unix, last_failure_unix;	/* 0 = never */
	char last_error[160];
};

struct export_label {
	const char *key, *value;
};

/* "KIND=URL" -> target; 0, or -EINVAL with a message. */
int export_parse_target(const char *spec, struct export_target *ret, char *msg, size_t msglen);
const char *export_kind_name(enum export_kind k);

struct exporter;
/* NULL with a message in msg when the target cannot be used (unknown kind, bad URL, ...). */
struct exporter *exporter_new(const struct export_target *t, const struct export_auth *auth,
			      const struct exporter_opts *opts, char *msg, size_t msglen);
/*
 * Queues one profile: encoded now (pprof, gzip), sent by the exporter's thread.
 * service: the application name; labels: its series labels; [from, until] in
 * UNIX seconds; rate_hz: the sampling frequency. Returns 0 or -errno (encoding).
 */
int exporter_submit(struct exporter *e, const struct profile *p, const char *service,
		    const struct export_label *labels, int nlabels, int64_t from_s, int64_t until_s,
		    int rate_hz);
/* The same with a route for EXPORT_CONTROLLER (copied; ignored by the other kinds). */
int exporter_submit_routed(struct exporter *e, const struct profile *p, const char *service,
			   const struct export_label *labels, int nlabels, int64_t from_s,
			   int64_t until_s, int rate_hz, const struct export_route *route);
/* Waits until the queue is empty or timeout_ms passed; returns the profiles still queued. */
unsigned int exporter_drain(struct exporter *e, unsigned int timeout_ms);
void exporter_stats(struct exporter *e, struct exporter_stats *ret);
const char *exporter_describe(const struct exporter *e);	/* "pyroscope=http://..." */
void exporter_free(struct exporter *e);
#endif
