/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_SERVER_H
#define CONTROLLER_SERVER_H
/*
 * The agents' websocket server (libwebsockets, on the main thread), and its
 * store worker: profile uploads are checked and written to disk there, while
 * the connection that sent one reads nothing more until it is answered.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctl;
struct conn;

int server_start(struct ctl *c);
void server_run(struct ctl *c);	/* until ctl.stop */
/* Any thread: the main thread looks again at what it owes the agents. */
void server_wake(struct ctl *c);
/* Under ctl.lock: node has a new set for its agent. The websocket thread, woken
 * by server_wake_sets (without ctl.lock), looks at these nodes' connections
 * only, not at every connection as after server_wake. */
void server_sets_ready_locked(struct ctl *c, const char *node);
void server_wake_sets(struct ctl *c);
void server_stop(struct ctl *c);
/* Under ctl.lock: a node's state, made when new (NULL when out of memory). */
struct node_state *server_node_state(struct ctl *c, const char *name);
/*
 * Under ctl.lock: the policies a node's targets belong to now (keys "P:ns/name"
 * or "C:name", sorted; taken over). Those it no longer holds stay allowed for its
 * agent's uploads FLEET_UPLOAD_GRACE_S longer.
 */
void server_node_set_policies(struct node_state *ns, char **policies, int n, int64_t now);
/* Under ctl.lock: the node's agent acked this version (it differs from the last). */
void server_node_acked_locked(struct ctl *c, struct node_state *ns, uint64_t version);
/* Under ctl.lock: forgets the nodes with no agent, no targets and nothing pending. */
void server_sweep_nodes(struct ctl *c, int64_t now);
/* The auth thread, under ctl.lock: the review of cn is done. */
void server_auth_done(struct ctl *c, struct conn *cn, bool ok, const char *why);

/*
 * One whole frame from an agent (the main thread; exposed for the fuzzer).
 * Takes ctl.lock itself. Returns false when the connection must be closed;
 * *ret_upload gets a profile upload to hand to the store worker (or NULL).
 */
bool server_handle_frame(struct ctl *c, struct conn *cn, const uint8_t *buf, size_t len,
			 void **ret_upload);
/* An upload server_handle_frame gave that is not handed to the worker after all. */
void server_upload_free(void *upload);
#endif
