/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PROFILE_H
#define AGENT_PROFILE_H

/*
 * A symbolized profile: the hand-off between the aggregator (which owns the
 * raw samples) and the writers (pprof, folded stacks, SVG flame graph, and
 * later the exporters). Everything here is plain data owned by the profile;
 * strings live in the profile's string arena and are never freed one by one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROFILE_NO_MAPPING UINT32_MAX

/*
 * Who made a frame: the kernel, native code, or a runtime whose frames the
 * agent walks itself. Every writer marks them its own way: OTLP's
 * profile.frame.type, a pseudo-mapping in pprof ("[kernel.kallsyms]",
 * "[cpython]", "[jvm]"), a suffix in folded stacks ("_[k]", "_[py]", "_[j]").
 */
enum prof_frame {
	PROF_FRAME_NATIVE,
	PROF_FRAME_KERNEL,
	PROF_FRAME_PYTHON,
	PROF_FRAME_JVM,		/* HotSpot code: compiled Java methods, the interpreter, stubs */
	PROF_FRAME_V8,		/* JavaScript functions run by V8 (Node.js) */
	PROF_FRAME_KINDS
};

/* OTel's profile.frame.type value: "native", "kernel", "cpython", "jvm", "v8js" */
const char *prof_frame_type(enum prof_frame f);
/* The file name of the pprof pseudo-mapping of f's frames; NULL for native frames. */
const char *prof_frame_mapping(enum prof_frame f);
/* Whether frames of kind f are named by a runtime with source files and lines (not ELF symbols). */
static inline int prof_frame_has_lines(unsigned f)
{
	return f == PROF_FRAME_PYTHON || f == PROF_FRAME_JVM || f == PROF_FRAME_V8;
}
/* The frame kind a pprof mapping named file stands for (PROF_FRAME_NATIVE: a real file). */
enum prof_frame prof_frame_of_mapping(const char *file);

struct prof_mapping {
	uint64_t start;		/* address where the file's mapping starts in the process */
	uint64_t limit;		/* one past the end */
	uint64_t offset;	/* file offset of start */
	const char *file;	/* path as the process saw it, "[kernel.kallsyms]" for the kernel */
	const char *build_id;	/* lower-case hex, "" if unknown */
};

struct prof_location {
	uint32_t mapping;	/* index into profile.mappings or PROFILE_NO_MAPPING */
	uint8_t frame;		/* enum prof_frame */
	/*
	 * Instruction address in the process (or kernel). 0 for a kernel frame
	 * when the agent strips kernel addresses (its default: KASLR).
	 */
	uint64_t address;
	/*
	 * Function name, demangled. Never NULL: frames that cannot be resolved are
	 * named "module+0xoffset" (module = basename of the file) so they never
	 * disappear from a profile; a kernel frame stripped of its address and
	 * without a symbol is "[kernel]".
	 */
	const char *function;
	/*
	 * The name with its namespace where the function name leaves it out
	 * (Python: "module.Class.method" for "Class.method" in module.py);
	 * NULL: the function name is all there is.
	 */
	const char *system_name;
	const char *file;	/* source file if known, else NULL */
	int64_t line;		/* source line if known, else 0 */
	int64_t column;		/* source column (1-based) if known, else 0 */
};

struct prof_label {
	const char *key;
	const char *str;	/* string value, or NULL for a numeric label */
	int64_t num;
	const char *unit;	/* for numeric labels, may be NULL */
};

struct prof_sample {
	uint32_t *locs;		/* location indexes, leaf first */
	uint32_t nlocs;
	int64_t count;		/* number of samples */
	int64_t cpu_ns;		/* count * period */
	struct prof_label *labels;
	uint32_t nlabels;
};

struct prof_strings;

struct profile {
	struct prof_mapping *mappings;
	uint32_t nmappings;
	struct prof_location *locations;
	uint32_t nlocations;
	struct prof_sample *samples;
	uint32_t nsamples;
	const char **comments;	/* e.g. "drops.ringbuf_full=3" */
	uint32_t ncomments;
	int64_t time_nanos;	/* start of the recording, UNIX epoch ns */
	int64_t duration_nanos;
	int64_t period_nanos;	/* 1e9 / frequency */
	struct prof_strings *strings;
	/* capacities, private to profile.c */
	uint32_t cap_mappings, cap_locations, cap_samples, cap_comments;
};

struct profile *profile__new(void);
void profile__free(struct profile *p);

/* Copies s into the profile's arena (deduplicated); returns NULL on ENOMEM. */
const char *profile__intern(struct profile *p, const char *s);
const char *profile__internf(struct profile *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Each returns the new element's index, or -ENOMEM. Strings are interned. */
int profile__add_mapping(struct profile *p, const struct prof_mapping *m);
int profile__add_location(struct profile *p, const struct prof_location *l);
/* locs and labels are copied. */
int profile__add_sample(struct profile *p, const uint32_t *locs, uint32_t nlocs, int64_t count,
			const struct prof_label *labels, uint32_t nlabels);
int profile__add_comment(struct profile *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Total of all samples' count. */
int64_t profile__total(const struct profile *p);

#endif
