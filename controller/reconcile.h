/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_RECONCILE_H
#define CONTROLLER_RECONCILE_H
/*
 * The reconcile thread: it sleeps until asked, then brings the target sets
 * up to date with what changed (targets.h: the pods that changed are matched
 * again, the policies that changed too, and only the nodes they touch are
 * built again), gives each node whose set changed its new set, and writes the
 * status of the policies that are due.
 *
 * Asked by the caches (reconcile_changed: a pod, a policy, ...; a burst of
 * events is coalesced into one pass) and by the agents' connections (a
 * policy's status is due soon: an ack, an agent that came or went, samples
 * counted). Besides: OnDemand durations that run out, status
 * writes held back (numbers are written at most once a second), the store's
 * retention, and a full resync (every pod matched again) every
 * RECONCILE_RESYNC_S. Nothing changed: it wakes only for those. Its status
 * writes are sent by the status writer's thread (writer.h).
 */
#include <stdbool.h>
#include <stdint.h>

struct ctl;
struct reconciler;

#define RECONCILE_RESYNC_S 300
#define RECONCILE_COUNTED_DELAY_MS 2000	/* samples counted -> status written within this */
/*
 * Acks, agents that came or went, counts of pods that moved -> status due
 * within this: 5000 agents acking one after another, or pods coming and going,
 * are a few passes over the policies' nodes, not one each.
 */
#define RECONCILE_NUMBERS_DELAY_MS 250
#define RECONCILE_MIN_GAP_MS 200	/* between resolves: a burst of events is one pass */
/*
 * ... unless a policy changed: someone waits for it (kubectl apply, then the
 * status), and policies change seldom; a burst of them (apply -f of a
 * directory) still comes within this and is one pass.
 */
#define RECONCILE_POLICY_GAP_MS 20

/* The gap after the last resolve's start before the next: policy_pending, a policy changed. */
int64_t reconcile_gap_ms(bool policy_pending);

struct reconciler *reconcile_start(struct ctl *c);
void reconcile_stop(struct reconciler *r);	/* after ctl.stop is set */

/* Any thread, without ctl.lock; and the same under it. */
void reconcile_resolve_soon(struct ctl *c);
void reconcile_resolve_soon_locked(struct ctl *c);

/* What changed in the caches (any thread, without ctl.lock): a pod (key: its uid), a
 * ReplicaSet ("ns/name"), any policy, a Namespace's or Node's labels, a backend or its
 * credentials, or everything (a re-list, a new leader: every status is due too). */
enum reconcile_change { RC_ALL, RC_POD, RC_POLICY, RC_NAMESPACE, RC_NODE, RC_BACKEND,
			RC_REPLICASET };
void reconcile_changed(struct ctl *c, enum reconcile_change what, const char *key);
/* Under ctl.lock: keys queued (policies due, pods, nodes, ... changed), for /metrics. */
uint64_t reconcile_queue_depth_locked(const struct ctl *c);
/* Under ctl.lock: the node's agent came and the node has no set yet. */
void reconcile_node_set_locked(struct ctl *c, const char *node);
/* Under ctl.lock: the status of these policies is due now. */
void reconcile_policy_due_locked(struct ctl *c, const char *policy_key);
/* Without ctl.lock: the writer dropped this policy's status unsent (not the
 * leader at the time, out of memory): counted, and (policy_key not NULL) due
 * within RECONCILE_COUNTED_DELAY_MS, written then changed or not. */
void reconcile_status_lost(struct ctl *c, const char *policy_key);
/* Under ctl.lock: the policies a node's agent profiles for, all due within
 * RECONCILE_NUMBERS_DELAY_MS (its agent acked, came or went). */
void reconcile_node_due_locked(struct ctl *c, const char *node);
/* Under ctl.lock: samples of this policy were counted. */
void reconcile_counted_locked(struct ctl *c, const char *policy_key);
#endif
