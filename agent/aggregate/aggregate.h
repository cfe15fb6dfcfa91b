/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_AGGREGATE_H
#define AGENT_AGGREGATE_H

/*
 * Counts samples per distinct (process, thread, stack). User frames are turned
 * into (mapping id, address) as they arrive, while the process is still there,
 * so a process that exits before the end of a recording keeps its names.
 * agg__build() symbolizes everything into a struct profile.
 */

#include <stdbool.h>
#include <stdint.h>

#include "oncpu.h"

struct procs;
struct symcache;
struct ksyms;
struct profile;

/* A byte budget several aggregates share (run: every target's); one thread uses them all. */
struct agg_budget {
	uint64_t used, max;
};

struct agg_opts {
	uint32_t max_stacks;	/* distinct stacks kept; 0 = 1 << 20. Samples beyond are dropped and counted */
	uint64_t max_bytes;	/* memory for stacks; 0 = 256 MiB */
	struct agg_budget *budget;	/* also within this shared budget; NULL = none */
	/*
	 * Keep kernel frames' addresses in the profiles. Off: a kernel frame is
	 * its function's name at address 0, one location per function, so the
	 * profiles never tell their readers where the kernel is (KASLR).
	 */
	bool kernel_addresses;
	/* names Python frames (ukind WALKER_PYTHON); NULL: they stay "[python]+0x<code>" */
	struct pysym *pysym;
	/*
	 * names frames in anonymous memory (JIT code) from their processes' perf
	 * maps; NULL, or no name there: "[jit]+0x<offset in the mapping>"
	 */
	struct perfmaps *perfmaps;
	/*
	 * names frames in the code caches of HotSpot JVMs (compiled Java methods,
	 * the interpreter, stubs) from the processes' memory, before their perf maps
	 */
	struct jvmsym *jvmsym;
	/* names JavaScript frames (ukind WALKER_V8); NULL: they stay "[v8js]+0x<function>" */
	struct v8sym *v8sym;
};

struct agg_stats {
	uint64_t samples;	/* samples added */
	uint64_t stacks;	/* distinct stacks */
	uint64_t dropped_full;	/* samples dropped because the table was full */
	uint64_t frames_unmapped;	/* user frames outside any known mapping */
	uint64_t frames_unsymbolized;	/* frames that kept module+0xoffset */
	uint64_t frames_python;		/* Python frames in the stacks added */
	uint64_t frames_jvm;		/* JVM frames (the HotSpot walker's) in the stacks added */
	uint64_t frames_v8;		/* JavaScript frames (the V8 walker's) in the stacks added */
	uint64_t frames_cut;		/* inlined frames left out: a stack longer than a sample holds */
	uint64_t kstack_errors, ustack_errors, ustack_truncated;
};

struct agg;
struct jvmsym;
struct perfmaps;
struct pysym;
struct v8sym;

struct agg *agg__new(const struct agg_opts *opts, struct procs *procs, struct symcache *sc);
void agg__free(struct agg *a);
/*
 * Counts the sample; its CPU time is e->weight (1 when 0) periods of period_ns,
 * the sampling period it was taken at.
 */
int agg__add(struct agg *a, const struct sample_event *e, int64_t period_ns);
/*
 * Fills out (which must be empty, with period_nanos set) with every stack,
 * labels pid, thread, comm, thread_name. ks may be NULL (no kernel names).
 */
int agg__build(struct agg *a, const struct ksyms *ks, struct profile *out);
void agg__stats(const struct agg *a, struct agg_stats *ret);
/* Forgets all stacks (after an export); mappings and processes stay known. */
void agg__reset(struct agg *a);

#endif
