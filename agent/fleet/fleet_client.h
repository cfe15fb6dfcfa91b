/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_FLEET_CLIENT_H
#define AGENT_FLEET_CLIENT_H
/*
 * The agent's end of the fleet websocket (proto/fleet.proto). Runs its own
 * thread: connects, says hello with the service-account token (re-read at every
 * connection, so rotated tokens are picked up), reconnects with exponential
 * backoff and jitter. The sampling loop takes new target sets and hands over
 * acks and counters; nothing here blocks it.
 */
#include <stdbool.h>
#include <stdint.h>
#include "fleet.pb-c.h"

struct fleet_client_opts {
	const char *url;	/* ws://host:port[/path] or wss://... */
	const char *node_name;
	const char *token_file;	/* may be missing: an empty token is sent (and refused) */
	const char *ca_file;	/* for wss://, NULL = system CAs */
};

struct fleet_client_stats {
	uint64_t connects, disconnects, refusals, bad_frames, sets_received;
	bool connected;
	char last_refusal[320];	/* as long as the controller sends */
};

struct fleet_client;
struct fleet_client *fleet_client_start(const struct fleet_client_opts *opts);
void fleet_client_stop(struct fleet_client *fc);
/* The newest target set received since the last call, or NULL; free it with
 * profleet__fleet__v1__target_set__free_unpacked(set, NULL). */
Profleet__Fleet__V1__TargetSet *fleet_client_take_targets(struct fleet_client *fc);
void fleet_client_ack(struct fleet_client *fc, uint64_t version, uint32_t found, uint32_t missing);
/* Queues counters (replacing any not yet sent); the message is packed at once. */
void fleet_client_counters(struct fleet_client *fc, const Profleet__Fleet__V1__Counters *c);
/*
 * Sends one profile for the controller's built-in store and waits (at most
 * timeout_ms) for its answer. policies: the target's policies, comma-separated.
 * 0 = stored; -EAGAIN = not connected, connection lost or no answer (try
 * again later); -EPERM = the controller refused it (err says why); -E2BIG.
 */
#define MAX_UPLOAD_FRAME (16u << 20)
int fleet_client_upload(struct fleet_client *fc, const char *const *policies, size_t npolicies,
			const uint8_t *pprof_gz, size_t len, int64_t from_s, int64_t until_s,
			unsigned int timeout_ms, char *err, size_t errlen);
/* Version of the set in use, announced in the next hello. */
void fleet_client_set_have(struct fleet_client *fc, uint64_t version);
void fleet_client_stats(struct fleet_client *fc, struct fleet_client_stats *ret);
/* A refusal for something that passes: the controller replica is not the leader, or
 * its reason ends in " (retry soon)" (the API server unreachable during the review,
 * the agent's pod not in the controller's cache yet). The agent then connects again
 * within its first backoff steps (about a second; the first 10 in a row) instead of up
 * to 30 s later. */
bool fleet_refusal_passing(const char *reason);
/* Splits ws[s]://host[:port][/path]; returns 0 or -EINVAL. */
int fleet_parse_url(const char *url, bool *ret_tls, char *host, size_t hostlen, int *ret_port,
		    char *path, size_t pathlen);
#endif
