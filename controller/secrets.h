/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_SECRETS_H
#define CONTROLLER_SECRETS_H
/*
 * Backend credentials: the secrets thread reads the Secrets that
 * ClusterProfilingBackends name (authSecretRef) when one changes and every
 * SECRETS_REREAD_S, so a rotated password reaches the agents within that.
 */
#include <pthread.h>

struct ctl;

#define SECRETS_REREAD_S 60

/* 0 or an errno from pthread_create; stops once ctl.stop is set and c->wake broadcast. */
int secrets_start(struct ctl *c, pthread_t *ret);
#endif
