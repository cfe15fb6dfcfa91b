/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_CACHE_H
#define CONTROLLER_CACHE_H
/*
 * The controller's caches of Kubernetes objects: one informer per kind
 * (list, then watch; a re-list sweeps what was not reported again), each
 * filling its map of struct ctl under cache_lock and asking the reconcile
 * thread to resolve again.
 */
#include <stdbool.h>
#include <stddef.h>

struct ctl;
struct metrics;

/* Starts every informer; 0 or -errno (then none runs). */
int caches_start(struct ctl *c);
void caches_stop(struct ctl *c);
/* Every kind listed once; else false and which one is not, in why. */
bool caches_synced(struct ctl *c, char *why, size_t whylen);
/* Watch events, restarts and lists per resource. */
void caches_metrics(struct ctl *c, struct metrics *m);
/* Frees every cached object (after caches_stop). */
void caches_free(struct ctl *c);
#endif
