/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H
/*
 * Prometheus text exposition format (version 0.0.4) into a memory buffer:
 *   struct metrics m; metrics_begin(&m);
 *   metrics_family(&m, "profleet_agent_samples_total", "counter", "Samples taken.");
 *   metrics_value(&m, "profleet_agent_samples_total", NULL, 42);
 *   metrics_value(&m, "x_total", (const char *[]){ "backend", "a\"b", NULL }, 1);
 *   char *text = metrics_end(&m, &len);
 * Label values are escaped (\\, \", \n); names are the caller's constants.
 */
#include <stdio.h>

struct metrics {
	FILE *f;
	char *buf;
	size_t len;
};

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

int metrics_begin(struct metrics *m);
void metrics_family(struct metrics *m, const char *name, const char *type, const char *help);
/* labels: NULL, or key, value, key, value, ..., NULL */
void metrics_value(struct metrics *m, const char *name, const char *const *labels, double v);
/* A family of one value without labels. */
void metrics_single(struct metrics *m, const char *name, const char *type, const char *help,
		    double v);
/* The text (malloc'd), or NULL. */
char *metrics_end(struct metrics *m, size_t *ret_len);

#endif
