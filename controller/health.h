/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_HEALTH_H
#define CONTROLLER_HEALTH_H
/* What /readyz and /metrics say (any thread). */
#include <stdbool.h>
#include <stddef.h>

struct ctl;

/* Every cache listed once and the lease answered lately; else why not. */
bool health_ready(struct ctl *c, char *why, size_t whylen);
/* The Prometheus text, malloc'd, or NULL. */
char *health_metrics(struct ctl *c, size_t *ret_len);
#endif
