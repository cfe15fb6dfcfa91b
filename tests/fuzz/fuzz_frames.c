// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: the controller's handling of agents' websocket frames, as a
 * sequence on one connection in a given state. The first byte picks the
 * state (no hello yet, under review, accepted, refused); then frames follow,
 * each as a 16-bit little-endian length and its bytes. Whatever the frames,
 * nothing crashes, leaks or reads out of bounds, and the connection's state
 * stays one it can be in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctl *ctl_new(void)
{
	struct ctl *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	pthread_rwlock_init(&c->cache_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->rec_wake, NULL);
	return c;
}

static void ctl_free(struct ctl *c)
{
	server_stop(c);	/* without a context: frees the node states */
	hmap_free(&c->rq.policies);
	hmap_free(&c->rq.counted);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->rec_wake);
	pthread_mutex_destroy(&c->lock);
	pthread_rwlock_destroy(&c->cache_lock);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl *c;
	struct conn cn = { .id = 1 };
	struct node_state *ns;

	if (size < 1)
		return 0;
	c = ctl_new();
	cn.auth = (enum auth_state)(data[0] % 4);
	if (cn.auth != AUTH_NONE) {	/* as a hello left it */
		snprintf(cn.node, sizeof(cn.node), "node-a");
		if (cn.auth == AUTH_PENDING && !(cn.token = strdup("t")))
			abort();
	}
	c->conns = &cn;
	pthread_mutex_lock(&c->lock);
	ns = server_node_state(c, "node-a");
	if (ns && cn.auth == AUTH_OK)
		ns->conn = &cn;
	pthread_mutex_unlock(&c->lock);
	data++;
	size--;
	while (size >= 2) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		enum auth_state before = cn.auth;
		void *upload = NULL;
		bool ok;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		ok = server_handle_frame(c, &cn, data, len, &upload);
		if (upload && cn.auth != AUTH_OK)
			abort();	/* an upload only from an accepted agent */
		server_upload_free(upload);
		/* under review: with the node it said; refused: with a reason sent */
		if (cn.auth == AUTH_PENDING && !cn.node[0])
			abort();
		if (before != AUTH_REFUSED && cn.auth == AUTH_REFUSED && ok && !cn.close_after_send)
			abort();
		data += len;
		size -= len;
		if (!ok)
			break;	/* the connection is closed */
	}
	free(cn.token);	/* a hello's, until its review (on_closed frees it) */
	ctl_free(c);
	return 0;
}
