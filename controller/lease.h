/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_LEASE_H
#define CONTROLLER_LEASE_H
/*
 * Leader election with a coordination.k8s.io/v1 Lease: the lease thread takes
 * or renews it every LEASE_RETRY_S, sets ctl.leader, and hands it over at once
 * when stopping.
 */
#include <pthread.h>

struct ctl;

#define LEASE_RETRY_S 2

/* 0 or an errno; stops once ctl.stop is set and c->wake broadcast. */
int lease_start(struct ctl *c, pthread_t *ret);
#endif
