/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_V8SYM_H
#define AGENT_V8SYM_H

/*
 * Names of JavaScript frames the V8 walker took: a function's name (its own,
 * else the name V8 inferred for it, "obj.method", else "<anonymous@file:line>"),
 * its script and the line and column of the frame's position (interpreted
 * frames: from the bytecode's source position table; others: the function's
 * start), read from the process's memory (process_vm_readv) with the layout
 * of its V8 (v8elf). Functions and scripts are cached per process, so that a
 * process that ended keeps its names until its profile is built; bounded in
 * entries and bytes: when full, what was read of running processes goes (it
 * can be read again; counted), what ended stays until v8sym_gc. Thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct v8_elf;
struct v8sym;

struct v8sym_frame {
	char name[256];
	char file[512];		/* the script's name; "" when it has none (builtins, eval) */
	int line, column;	/* 1-based; 0 when unknown */
};

/* One sampled frame's JavaScript frames, innermost (inlined) first. */
#define V8SYM_MAX_FRAMES 16

struct v8sym_frames {
	int n;
	struct v8sym_frame f[V8SYM_MAX_FRAMES];
};

struct v8sym_stats {
	uint64_t lookups, hits, reads, read_errors;
	uint64_t no_line;	/* frames named without a line (no positions, no script) */
	uint64_t dropped;	/* functions, scripts or pcs read but not kept: the cache was full */
	uint64_t inlined;	/* frames of functions inlined into optimized code, named */
	uint64_t inlined_cut;	/* inlined functions left out: more than V8SYM_MAX_FRAMES at a pc */
	uint64_t code_missing;	/* compiled frames whose code was not found: their function alone */
	uint64_t scope_errors;	/* optimized code whose tables name another function */
	uint64_t moved;		/* functions read again: the collector moved them (another is there) */
	uint64_t evictions;	/* the cache was full: what running processes had read, dropped */
	uint64_t jit_ranges_dropped;	/* executable anonymous mappings beyond the 16 a process keeps */
	uint64_t functions, scripts, chains, bytes;	/* held now */
};

/* At most max_functions functions (0: a default). */
struct v8sym *v8sym_new(size_t max_functions);
void v8sym_free(struct v8sym *vs);
/* Process pid runs the V8 of layout l (copied). */
void v8sym_set_pid(struct v8sym *vs, int pid, const struct v8_elf *l);
/* The process ended or exec'd: nothing more is read from it; what was read stays
 * for its profile, until its pid runs another V8. */
void v8sym_forget_pid(struct v8sym *vs, int pid);
/*
 * The frames of one frame the V8 walker took: SharedFunctionInfo sfi (tagged)
 * with the walker's aux (V8_INTERPRETED: its bytecode offset slot; V8_COMPILED:
 * its pc's low bits, where optimized code may have inlined other functions)
 * in process pid, into ret. fresh: the sample was just taken, so a cached
 * function is checked against the process's memory (the collector may have put
 * another at its address); at a profile's build, what was read then stands.
 * 0, -ENOENT (no V8 known for pid), -EFAULT (unreadable, or not a function).
 */
int v8sym_frames(struct v8sym *vs, int pid, uint64_t sfi, uint32_t aux, bool fresh,
		 struct v8sym_frames *ret);
/* The innermost of them, fresh (tests). */
int v8sym_lookup(struct v8sym *vs, int pid, uint64_t sfi, uint32_t aux, struct v8sym_frame *ret);
/* Drops what was read of processes that ended (once their profiles are built). */
void v8sym_gc(struct v8sym *vs);
void v8sym_stats(struct v8sym *vs, struct v8sym_stats *ret);

/*
 * Decodes a source position table (zigzag VLQ pairs of code offset and source
 * position deltas, from code offset -1): the script offset of the last entry at
 * or before code offset off, -1 when none. Exposed for tests.
 */
int64_t v8sym_position(const uint8_t *table, size_t len, int64_t off);
/* 1-based line and column of script offset pos given the offsets of its '\n's. */
void v8sym_line(const uint32_t *ends, size_t nends, int64_t pos, int *line, int *column);

#endif
