/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_STATUS_H
#define CONTROLLER_STATUS_H
/*
 * A policy's status and its Events, computed from what the reconcile thread
 * gathered: pure (no locks, no I/O); the caller sends the writes.
 */
#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "resolve.h"

struct store;

/* A PATCH of a status or a POST of an Event, to send without any lock held. */
struct status_write {
	const char *method;	/* PATCH (status) or POST (an Event) */
	char *path;
	char *body;
	char *policy;		/* the policy's key in the caches ("P:ns/name"), for a PATCH */
	char *uid;		/* ... and its uid: not written on one made again since */
	int failures;		/* the writer's: attempts that failed */
	struct status_write *next;
};

/* What a policy's status is made of, besides the policy itself. */
struct export_summary {
	int64_t last_success;
	uint64_t dropped;
	char failing[300];	/* one backend that fails right now (its last attempt
				 * failed after its last success), if any */
};

struct status_input {
	const struct policy *p;
	const struct policy_result *r;
	int nodes, acked, connected;	/* nodes holding its targets; acked its set; with an agent */
	uint64_t samples;		/* from every node's agent, this run and earlier runs */
	struct export_summary ex;
	struct store *store;		/* the built-in store, or NULL */
	const char *identity;		/* this controller's, for Events */
	int64_t now;
};

/* Per policy, kept by the reconcile thread across passes. */
struct policy_rt {
	char uid[64];		/* of the policy: one made again under its name starts afresh */
	int64_t start;		/* OnDemand: when all its agents had acked */
	int64_t completion;
	int64_t ends_at;	/* OnDemand, started: when its duration runs out (0: not known) */
	int ev_phase;		/* phase of the last Event (-1: none yet; set from the server's) */
	bool ev_degraded;	/* an ExportFailing Event was sent and not yet cleared */
	char *last_status;	/* the last status body written (or attempted), or NULL */
	int64_t last_write;
	int64_t retry_at;	/* a held back write is made then (0: none) */
	uint64_t seen;		/* resolve pass that last saw the policy */
	int64_t generation;	/* of the policy at the last sync */
	int64_t rollout_t0_ms;	/* CLOCK_MONOTONIC: its change, until all its agents hold it */
	uint64_t rollout_version;	/* sets built since have versions >= this */
	struct policy_result result;	/* at the last sync (its nodes: targets_policy()) */
};

struct policy_rt *policy_rt_new(const struct policy *p);
void policy_rt_free(struct policy_rt *rt);
/* Status unchanged within this long is not written again. */
#define STATUS_REWRITE_S 300
/* A status whose words did not change, only its numbers (agents that applied
 * the targets, samples), is written at most once in this long: 5000 agents
 * acking one after another are not 5000 writes of each of their policies. */
#define STATUS_NUMBERS_GAP_S 1

/*
 * The status PATCH of a policy (NULL when nothing changed), with its Events
 * put in front of *events. *ret_completed is set when an OnDemand policy's
 * duration just ran out (its sampling must stop: resolve again).
 */
struct status_write *policy_status(const struct status_input *in, struct policy_rt *rt,
				   struct status_write **events, bool *ret_completed);
void status_write_free(struct status_write *w);
#endif
