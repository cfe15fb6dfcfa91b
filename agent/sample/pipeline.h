/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PIPELINE_H
#define AGENT_PIPELINE_H
/*
 * The agent's data path, one straight walk shared by record and run:
 *
 *   sampler --task record--> procs --> unwinder (tables follow exec/mmap/fork/exit;
 *                                      its worker thread builds them, the drain places them)
 *   sampler --sample-------> unwinder (a table was missing: load it)
 *                        --> consume (record: the aggregate; run: the target's)
 *
 * The pipeline is the only taker of the sampler's callbacks, so each event has
 * one owner that passes it on in this order.
 */
#include <stdbool.h>

#include "sampler.h"

struct perfmaps;
struct procs;
struct pysym;
struct jvmsym;
struct v8sym;
struct table_cache;
struct unwinder;

typedef int (*pipeline_consume_fn)(void *ctx, const struct sample_event *e);
/* Whether a process is one whose samples are kept (run: in a targeted cgroup). */
typedef bool (*pipeline_wanted_fn)(void *ctx, int pid);

#define PIPELINE_EXEC_PENDING 64
#define PIPELINE_EXEC_TRIES 8

struct pipeline {
	struct procs *procs;		/* the caller's */
	struct pysym *pysym;		/* the caller's: told which processes run CPython; may be NULL */
	struct perfmaps *perfmaps;	/* the caller's: told of execs and exits; may be NULL */
	struct jvmsym *jvmsym;		/* the caller's: reads JVMs for the HotSpot walker; may be NULL */
	struct v8sym *v8sym;		/* the caller's: told which processes run V8; may be NULL */
	const char *table_cache_dir;	/* compiled unwind tables on disk; NULL = none */
	pipeline_consume_fn consume;	/* after the unwinder saw the sample */
	/*
	 * May be NULL. A process not followed yet that is wanted, asked at its
	 * exec and at its mmaps, gets its tables as its image is mapped, before
	 * its first sample (else: at its first sample, which then goes without them).
	 */
	pipeline_wanted_fn wanted;
	void *ctx;
	/* the pipeline's own, from pipeline_start_unwinder to pipeline_free */
	struct unwinder *unw;		/* NULL with frame pointers */
	struct table_cache *cache;	/* NULL without table_cache_dir (or when it cannot be used) */
	/* execs not found wanted yet: the kernel's note may come after the record;
	 * asked again at the first PIPELINE_EXEC_TRIES mmaps after (a ring) */
	struct { int pid, tries; } exec_pending[PIPELINE_EXEC_PENDING];
	int exec_next;
};

/* Points the sampler options' callbacks at the pipeline. */
void pipeline_bind(struct pipeline *pl, struct sampler_opts *so);
/*
 * Creates the unwinder when the sampler loaded the table-driven walker (else
 * leaves it NULL: frame pointers), with the table cache when a directory was
 * given (one that cannot be used is logged and done without), its worker's
 * wake-up watched by the sampler's poll. 0 or -errno.
 */
int pipeline_start_unwinder(struct pipeline *pl, struct sampler *s);
/* Frees the unwinder and the table cache. */
void pipeline_free(struct pipeline *pl);

#endif
