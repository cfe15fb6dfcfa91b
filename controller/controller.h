/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_CONTROLLER_H
#define CONTROLLER_CONTROLLER_H
/*
 * profleet-controller's shared state. One mutex (ctl.lock) guards everything
 * below that more than one thread touches:
 *   informer threads (one per watched kind) update the caches;
 *   the reconcile thread resolves, encodes target sets and writes status;
 *   the auth thread runs TokenReviews for new agent connections;
 *   the lease thread keeps (or waits for) leadership;
 *   the main thread runs the websocket server (libwebsockets is single-threaded:
 *   only it touches a struct lws; others wake it with lws_cancel_service()).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "k8s.h"
#include "model.h"

#define FLEET_PROTOCOL_VERSION 1
#define FLEET_MAX_HELLO_FRAME (64u << 10)	/* before the agent is accepted */
#define FLEET_MAX_AGENT_FRAME (16u << 20)	/* after: profile uploads are this large at most */
#define FLEET_MAX_STORE_ACKS 8
#define FLEET_HELLO_TIMEOUT_S 10

struct ctl_options {
	const char *kubeconfig, *context;
	const char *listen_addr;
	int port;
	const char *tls_cert, *tls_key;	/* wss:// for the agents when both are set */
	const char *agent_sa_ns, *agent_sa_name;	/* the agents' service account */
	const char *agent_audience;
	bool insecure_trust_agents;	/* skip TokenReview: for benchmarks only */
	int max_hz;
	const char *lease_ns, *lease_name, *identity;
	int lease_duration_s;
	bool no_leader_election;
	const char *log_level;
	/* the built-in store and its HTTP API */
	const char *store_dir;	/* NULL = no store */
	uint64_t store_max_bytes;
	int64_t store_retention_s;
	const char *http_addr;	/* NULL = no HTTP server */
	int http_port;
};

enum auth_state { AUTH_NONE, AUTH_PENDING, AUTH_OK, AUTH_REFUSED };

/* One agent connection. Created and freed by the main thread; the fields under
 * "shared" are read and written under ctl.lock. */
struct conn {
	uint64_t id;
	struct lws *wsi;	/* main thread only */
	/* rx assembly (main thread only) */
	uint8_t *rx;
	size_t rx_len;
	/* shared */
	enum auth_state auth;
	char node[254];
	char token[4096];	/* until the review is done */
	char refusal[200];
	bool close_after_send;
	uint64_t sent_version, acked_version;
	uint32_t found, missing;
	bool need_send;
	/* built-in store: the upload being handled (main thread), acks owed (shared) */
	void *upload;		/* Profleet__Fleet__V1__AgentMessage * */
	struct {
		uint64_t id;
		bool ok;
		uint32_t policies;
		char reason[160];
	} acks[FLEET_MAX_STORE_ACKS];
	int nacks;
	struct conn *next;
};

struct node_state {
	char *name;
	uint64_t version;	/* of the current target set */
	uint8_t *msg;		/* ControllerMessage for it, packed */
	size_t msg_len;
	uint8_t *cmp;		/* the same with version 0, to see changes */
	size_t cmp_len;
	struct conn *conn;	/* the bound agent, or NULL */
	uint64_t acked;		/* last version the node's agent acked (kept across reconnects) */
	uint64_t started_unix;	/* agent start, from its counters */
	struct hmap samples;	/* policy key -> (uint64_t *) cumulative samples this agent run */
	struct hmap base;	/* policy key -> (uint64_t *) samples from earlier agent runs */
	uint64_t total_samples, dropped, errors;
	uint64_t uploads, uploads_refused;	/* profiles for the built-in store */
	struct hmap exporters;	/* backend name -> struct export_state, from the counters */
};

/* How one agent's sends to one backend go (its latest counters). */
struct export_state {
	uint64_t sent, dropped, retries;
	int64_t last_success, last_failure;
	uint32_t queued;
	char last_error[160];
};

struct ctl_stats {
	uint64_t frames_in, frames_bad, refused, accepted_conns, pushes, status_writes,
		status_errors, reconciles, uploads, uploads_refused;
};

struct ctl {
	struct ctl_options opt;
	struct k8s_config kcfg;
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* reconcile and auth threads wait on it */
	bool dirty;		/* caches changed: reconcile soon */
	volatile int stop;
	bool leader;
	struct lws_context *lws;
	/* caches (ctl.lock) */
	struct hmap pods;	/* uid -> struct pod */
	struct hmap pods_by_name;	/* ns/name -> struct pod (same objects) */
	struct hmap namespaces, nodes;	/* name -> struct named_labels */
	struct hmap replicasets;	/* "ns/name" -> named_labels {deployment: NAME} */
	struct hmap policies;	/* "P:ns/name" or "C:name" -> struct policy */
	struct hmap backends;	/* name -> struct backend */
	uint64_t gen_pods, gen_ns, gen_nodes, gen_pp, gen_cpp, gen_cpb, gen_rs;
	/* fleet */
	struct hmap node_states;	/* name -> struct node_state */
	struct conn *conns;
	uint64_t next_conn_id;
	bool auth_work;		/* some conn is AUTH_PENDING */
	/* per policy uid -> runtime state */
	struct hmap runtime;
	struct ctl_stats stats;
	struct store *store;	/* NULL when disabled; has its own lock */
	struct httpd *http;
	struct k8s_informer *informers[8];
	int ninformers;
	/* reconcile latency (ctl.lock) */
	uint64_t rec_count, rec_buckets[6];	/* <= 1, 5, 25, 100, 500 ms, +Inf */
	double rec_sum_s;
	int64_t lease_ok_unix;	/* the last lease request that got an answer */
	int64_t started_unix;
};

extern struct ctl ctl;

/* server.c */
int server_start(struct ctl *c);
void server_run(struct ctl *c);	/* until c->stop */
void server_wake(struct ctl *c);
void server_stop(struct ctl *c);
/* http.c: the store's HTTP API, health and metrics */
struct httpd *http_start(struct ctl *c, char *err, size_t errlen);
/* main.c: what /readyz and /metrics say */
bool ctl_ready(struct ctl *c, char *why, size_t whylen);
char *ctl_metrics(struct ctl *c, size_t *ret_len);
/* auth.c-ish: runs in its own thread */
void *auth_main(void *arg);
#endif
