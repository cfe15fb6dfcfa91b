/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_CONTROLLER_H
#define CONTROLLER_CONTROLLER_H
/*
 * profleet-controller's shared state, and who owns what:
 *   cache_lock (a read-write lock) guards the caches the informers fill
 *     (cache.c; the secrets thread writes backends' credentials): written
 *     briefly per watch event, read by reconcile, auth, the store worker, HTTP;
 *   lock guards the fleet (connections, node states, the reconcile queue,
 *     counters of the controller itself): taken briefly by every thread,
 *     never held across I/O, never taken before cache_lock.
 * Threads: one per informer (cache.c), reconcile (reconcile.c: resolve,
 * target sets, status), auth (auth.c: TokenReviews of new agents), secrets
 * (secrets.c), lease (lease.c), signals (main.c), the store worker (server.c's
 * uploads, on a workq), HTTP (http.c, a thread per request), and the main
 * thread, which runs the websocket server: libwebsockets is single-threaded,
 * only it touches a struct lws; others wake it with server_wake().
 * What is owned by one thread lives in that thread's module, not here.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "hmap.h"
#include "k8s.h"
#include "model.h"
#include "targets.h"

#define FLEET_PROTOCOL_VERSION 1
#define FLEET_MAX_HELLO_FRAME (16u << 10)	/* before the agent is accepted (a token is < 4 KiB) */
#define FLEET_MAX_AGENT_FRAME (16u << 20)	/* after: profile uploads are this large at most */
#define FLEET_MAX_STORE_ACKS 8
#define FLEET_TOKEN_MAX 4096	/* an agent's token, with its NUL */
/* ends the reason of a refusal for something passing (the API server unreachable
 * during the review, the agent's pod not in the cache yet): the agent tries again
 * within a second or two instead of backing off up to 30 s (fleet_refusal_passing) */
#define FLEET_RETRY_SOON " (retry soon)"
#define FLEET_HELLO_TIMEOUT_S 10	/* from the connection to the agent's acceptance */
/* connections not accepted yet, and hellos waiting for their review, at once: a whole
 * fleet reconnecting after a controller restart fits; junk ones are closed by the hello
 * timeout (their buffers: 4096 x 16 KiB at most) */
#define FLEET_MAX_UNACCEPTED 4096
#define FLEET_MAX_REVIEWS 4096

struct ctl_options {
	const char *kubeconfig, *context;
	const char *listen_addr;
	int port;
	const char *tls_cert, *tls_key;	/* wss:// for the agents when both are set */
	const char *agent_sa_ns, *agent_sa_name;	/* the agents' service account */
	const char *agent_audience;
	const char *secret_namespaces;	/* comma-separated: where authSecretRef may point */
	bool insecure_trust_agents;	/* skip TokenReview: for benchmarks only */
	bool no_agent_address_check;	/* a token is good from any address, not only its pod's */
	bool plain_credentials;		/* backends' credentials go over ws:// too */
	int max_hz;
	int max_ns_policies;	/* ProfilingPolicies honoured per namespace; 0 = no cap */
	int reconcile_threads;	/* the reconcile pool's; -1: by the CPUs (pool_threads_for_cpus) */
	const char *lease_ns, *lease_name, *identity;
	int lease_duration_s;
	bool no_leader_election;
	bool no_store;
	const char *log_level;
	/* the built-in store and its HTTP API */
	const char *store_dir;	/* NULL = no store */
	uint64_t store_max_bytes;
	uint64_t store_ns_max_bytes;	/* one namespace's share */
	int64_t store_retention_s;
	const char *http_addr;	/* NULL = no HTTP server */
	int http_port;
	const char *health_addr;	/* /healthz and /readyz alone, for the kubelet's probes */
	int health_port;
	/* what the strings above may point into */
	char listen_buf[256], http_buf[256], health_buf[256], sa_buf[512], lease_buf[512],
		identity_buf[256];
};

enum auth_state { AUTH_NONE, AUTH_PENDING, AUTH_OK, AUTH_REFUSED };

/* One agent connection. Created and freed by the main thread; the fields under
 * "shared" are read and written under ctl.lock. */
struct conn {
	uint64_t id;
	struct lws *wsi;	/* main thread only */
	bool timeout_off;	/* main thread: the hello timeout is cleared (accepted) */
	/* rx assembly (main thread only) */
	uint8_t *rx;
	size_t rx_len;
	/* shared */
	enum auth_state auth;
	char node[254];
	char peer[64];		/* the agent's address, as accepted (set before it is listed) */
	char *token;		/* until the review is done (< FLEET_TOKEN_MAX bytes) */
	char refusal[320];
	bool close_after_send;
	uint64_t sent_version, acked_version;
	uint64_t have_version;	/* the set its agent runs, from its hello */
	uint32_t found, missing;
	bool need_send;
	/* built-in store: an upload with the store worker (main thread; reading
	 * from the connection waits meanwhile), the answers owed (shared) */
	bool uploading;
	struct {
		uint64_t id;
		bool ok;
		uint32_t policies;
		char reason[160];
	} acks[FLEET_MAX_STORE_ACKS];
	int nacks;
	struct conn *next;
};

#define NODE_ACKS_KEPT 4

struct node_state {
	char *name;
	uint64_t version;	/* of the current target set */
	uint8_t *msg;		/* ControllerMessage for it, packed; dropped once its agent
				 * acked it (built again when an agent connects) */
	size_t msg_len;
	struct conn *conn;	/* the bound agent, or NULL */
	uint64_t acked;		/* last version the node's agent acked (kept across reconnects) */
	struct {		/* the last acks that moved it, oldest first: when a
				 * version was first held (rollouts end then) */
		uint64_t version;
		int64_t ms;	/* CLOCK_MONOTONIC */
	} acks[NODE_ACKS_KEPT];
	uint64_t started_unix;	/* agent start, from its counters */
	struct hmap samples;	/* policy key -> (uint64_t *) cumulative samples this agent run */
	struct hmap base;	/* policy key -> (uint64_t *) samples from earlier agent runs */
	uint64_t total_samples, dropped, errors;
	uint64_t uploads, uploads_refused;	/* profiles for the built-in store */
	struct hmap exporters;	/* backend name -> struct export_state, from the counters */
	/* set by the reconcile thread with each target set */
	uint64_t digest;	/* of the set's content, without its version */
	bool need_msg;		/* its bytes were dropped and an agent needs them: the
				 * next sync encodes the set again, version kept */
	char **policies;	/* keys of the policies it holds targets of */
	int npolicies;
	uint64_t policies_hash;	/* targets_node's of those (0: none yet) */
	struct hmap released;	/* "ns/name" -> (int64_t *) until when a policy it held may
				 * still get its uploads (its agent sends the last interval after) */
	int64_t idle_since;	/* no agent connected since (0: one is) */
};

#define FLEET_NODE_EXPORTERS_MAX 64	/* backends counted per node */

/* How long after a node stops holding a policy's targets its agent may upload for it. */
#define FLEET_UPLOAD_GRACE_S 600

/* How one agent's sends to one backend go (its latest counters). */
struct export_state {
	uint64_t sent, dropped, retries;
	int64_t last_success, last_failure;
	uint32_t queued;
	char last_error[160];
};

struct ctl_stats {
	uint64_t frames_in, frames_bad, refused, accepted_conns, pushes, status_writes,
		status_errors, uploads, uploads_refused, conns_over_limit, reviews_over_limit,
		cert_reloads, cert_reload_failures, events_dropped, status_dropped;
};

#define CTL_HOLD_BUCKETS 6	/* <= 10 us, 100 us, 1 ms, 10 ms, 100 ms, +Inf */

/* What the reconcile thread is asked to do (ctl.lock); reconcile.c takes it. */
struct rec_queue {
	bool resolve;		/* caches changed: bring the target sets up to date */
	struct targets_work work;	/* what changed (targets.h) */
	int64_t policy_since_ms;	/* CLOCK_MONOTONIC: the oldest policy change in work */
	struct hmap policies;	/* policy key -> NULL: status due now */
	/* policy key -> NULL: numbers moved (acks, agents that came or went, pods
	 * counted); status due within RECONCILE_NUMBERS_DELAY_MS of the first */
	struct hmap numbers;
	int64_t numbers_since_ms;	/* CLOCK_MONOTONIC */
	struct hmap counted;	/* policy key -> NULL: samples counted, status due soon */
	struct hmap lost;	/* policy key -> NULL: a status the writer dropped unsent
				 * (not the leader then, out of memory): written again */
	int64_t counted_since_ms;	/* CLOCK_MONOTONIC: when the first of those came */
	uint64_t resolves, status_passes;	/* passes done (for /metrics and tests) */
	uint64_t depth_max;	/* the most keys queued at once (policies, pods, nodes, ...) */
};

/* profleet_controller_policy_rollout_seconds: <= 0.1, 0.25, 0.5, 1, 2.5, 5, 10 s, +Inf */
#define CTL_ROLLOUT_BUCKETS 8
#define CTL_ROLLOUT_BOUNDS { 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

struct ctl {
	struct ctl_options opt;
	struct k8s_config kcfg;
	int stop;		/* atomic: set once, by the signal thread or on a fatal error */
	/* caches (cache_lock), filled by cache.c */
	pthread_rwlock_t cache_lock;
	struct hmap pods;	/* uid -> struct pod */
	struct hmap pods_by_name;	/* ns/name -> struct pod (same objects) */
	struct hmap namespaces, nodes;	/* name -> struct named_labels */
	struct hmap replicasets;	/* "ns/name" -> named_labels {deployment: NAME} */
	struct hmap policies;	/* "P:ns/name" or "C:name" -> struct policy */
	struct hmap backends;	/* name -> struct backend */
	struct caches *caches;	/* the informers (cache.c); set before any other thread starts */
	/* the fleet (lock) */
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* the auth, secrets and lease threads wait on it */
	pthread_cond_t rec_wake;	/* the reconcile thread waits on it */
	struct rec_queue rq;
	bool leader;
	bool lease_known;	/* the first lease round is done */
	int64_t lease_ok_unix;	/* the last lease request that got an answer */
	bool secrets_due;	/* a backend with a Secret changed */
	struct hmap node_states;	/* name -> struct node_state */
	struct hmap sets_ready;	/* names of nodes with a new set to send (server_sets_ready) */
	struct conn *conns;
	uint64_t next_conn_id;
	bool auth_work;		/* some conn is AUTH_PENDING */
	struct ctl_stats stats;
	/* reconcile latency */
	uint64_t rec_count, rec_buckets[6];	/* <= 1, 5, 25, 100, 500 ms, +Inf */
	double rec_sum_s;
	/* policy changed -> all its agents hold it (reconcile.c; ROLLOUT_BOUNDS) */
	uint64_t rollout_count, rollout_buckets[CTL_ROLLOUT_BUCKETS];
	double rollout_sum_s;
	/* how long ctl.lock is held each time (ctl_lock, ctl_unlock) */
	int64_t lock_t0_ns;	/* when the holder took it */
	uint64_t hold_count, hold_buckets[CTL_HOLD_BUCKETS];
	double hold_sum_s;
	/* set at start, read-only after */
	struct lws_context *lws;
	struct ev_loop *evloop;	/* the websocket thread's (server.c); NULL: lws polls */
	bool wake_asked;	/* server_wake's, for the websocket thread (atomic) */
	struct uploads *uploads;	/* server.c's store worker */
	struct cert_watch *certs;	/* server.c's: reads the TLS files again when they change */
	struct store *store;	/* NULL when disabled; has its own lock */
	struct auth_cache *auth_cache;	/* the reviews' answers (auth.c); has its own lock */
	struct httpd *http, *health;
	int64_t started_unix;
};

static inline bool ctl_stopping(struct ctl *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
}

/*
 * ctl.lock, with how long it is held measured (profleet_controller_lock_hold_seconds):
 * the websocket thread takes it for every frame, so every holder must be brief.
 * ctl_wait is pthread_cond_(timed)wait on it (deadline on CLOCK_MONOTONIC, or NULL).
 */
void ctl_lock(struct ctl *c);
void ctl_unlock(struct ctl *c);
int ctl_wait(struct ctl *c, pthread_cond_t *cond, const struct timespec *deadline);

/* What a thread that calls the API server starts with: the first member of its state. */
struct ctl_worker {
	struct ctl *c;
	struct k8s_client *kc;	/* its own client */
};

/*
 * Starts fn on a new zeroed state of size bytes (a struct beginning with a
 * struct ctl_worker), its client's requests limited to timeout_ms (0: the
 * default), after setup (may be NULL). 0 or an errno. fn frees the state
 * with ctl_worker_free when it returns.
 */
int ctl_worker_start(struct ctl *c, size_t size, long timeout_ms, void *(*fn)(void *),
		     void (*setup)(struct ctl_worker *w), pthread_t *ret);
void ctl_worker_free(struct ctl_worker *w);

#endif
