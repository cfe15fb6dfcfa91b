/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_V8CODE_H
#define AGENT_V8CODE_H

/*
 * V8's compiled code seen from outside the process: from a pc in its JIT code
 * to the Code that holds it (a scan back to the object's map word: the V8
 * walker keeps only the pc), and from a pc in optimized code (TurboFan, Maglev)
 * to the functions inlined there, innermost first, each at its position in
 * its script (the code's source position table, whose positions carry an
 * inlining id, and its DeoptimizationData's InliningPositions and literals).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "v8read.h"

#define V8CODE_MAX_JIT 16	/* executable anonymous mappings of a process kept */
#define V8CODE_MAX_CHAIN 16	/* functions at one pc: the innermost 15 and the outermost */

/* Where a process's JIT code can be: its executable anonymous mappings. */
struct v8jit {
	uint64_t lo[V8CODE_MAX_JIT], hi[V8CODE_MAX_JIT];
	int n;
	int dropped;		/* executable anonymous mappings beyond V8CODE_MAX_JIT */
};

enum v8code_kind {
	V8CODE_OTHER = 0,	/* a builtin, an interpreter trampoline, ... */
	V8CODE_BASELINE = 1,	/* Sparkplug */
	V8CODE_OPTIMIZED = 2,	/* Maglev, TurboFan */
};

struct v8code {
	uint64_t code, start;	/* the Code (tagged) and its first instruction */
	uint32_t size;
	enum v8code_kind kind;
	uint64_t outer;		/* optimized: the function compiled (a SharedFunctionInfo) */
	uint8_t *table;		/* optimized: its source position table */
	size_t ntable;
	uint8_t *inlining;	/* optimized: InliningPositions, 16 bytes each */
	uint32_t ninlining;
	uint64_t *literals;	/* optimized: the inlined functions, by id */
	uint32_t nliterals;
	size_t bytes;
};

/* Functions at one pc, innermost first, each at a script offset (-1: unknown). */
struct v8chain {
	int n;
	uint64_t sfi[V8CODE_MAX_CHAIN];
	int64_t pos[V8CODE_MAX_CHAIN];
	int cut;		/* inlined functions left out (more than V8CODE_MAX_CHAIN) */
};

/* The executable anonymous mappings of pid (/proc/PID/maps). 0 or -errno. */
int v8code_jit_ranges(int pid, struct v8jit *ret);
/* Parses maps text (tests): the same. */
int v8code_jit_parse(const char *maps, struct v8jit *ret);
/*
 * The pcs whose low 29 bits are low in j's ranges (one a range: V8's code range
 * is at most 512 MiB), at most max of them into pcs; how many.
 */
int v8code_full_pcs(const struct v8jit *j, uint32_t low, uint64_t *pcs, int max);
/*
 * The Code whose instructions hold pc (tagged), 0 when none: a scan back from
 * pc for the map of the object holding instructions (a Code in V8 10, an
 * InstructionStream later), *code_map once learned (0: not yet; set here).
 */
uint64_t v8code_find(const struct reader *r, uint64_t pc, uint64_t *code_map);
/* Reads the Code code into ret (free with v8code_free). 0 or -errno. */
int v8code_read(const struct reader *r, uint64_t code, struct v8code *ret);
void v8code_free(struct v8code *c);
/* The functions at pc (an instruction in c; a return address less one). 0 or -EINVAL. */
int v8code_chain(const struct v8code *c, uint64_t pc, struct v8chain *ret);

/*
 * The raw SourcePosition (script offset + 1 in bits 1-30, inlining id + 1 from
 * bit 31) of the last entry at or before code offset off of a source position
 * table (zigzag VLQ pairs of code offset and position deltas) whose offsets
 * start at first (-1 for bytecode, 0 for machine code); -1 when none.
 */
int64_t v8code_raw_position(const uint8_t *table, size_t len, int64_t off, int64_t first);

#endif
