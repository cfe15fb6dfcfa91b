/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PIPELINE_H
#define AGENT_PIPELINE_H
/*
 * The agent's data path, one straight walk shared by record and run:
 *
 *   sampler --task record--> procs --> unwinder (tables follow exec/mmap/fork/exit)
 *   sampler --sample-------> unwinder (a table was missing: load it)
 *                        --> consume (record: the aggregate; run: the target's)
 *
 * The pipeline is the only taker of the sampler's callbacks, so each event has
 * one owner that passes it on in this order.
 */
#include "sampler.h"

struct procs;
struct unwinder;

typedef int (*pipeline_consume_fn)(void *ctx, const struct sample_event *e);

struct pipeline {
	struct procs *procs;
	struct unwinder *unw;		/* NULL until pipeline_start_unwinder, or with frame pointers */
	pipeline_consume_fn consume;	/* after the unwinder saw the sample */
	void *ctx;
};

/* Points the sampler options' callbacks at the pipeline. */
void pipeline_bind(struct pipeline *pl, struct sampler_opts *so);
/*
 * Creates the unwinder when the sampler loaded the table-driven walker (else
 * leaves it NULL: frame pointers). 0 or -ENOMEM.
 */
int pipeline_start_unwinder(struct pipeline *pl, struct sampler *s);

#endif
