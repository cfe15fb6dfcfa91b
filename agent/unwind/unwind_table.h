/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_UNWIND_TABLE_H
#define AGENT_UNWIND_TABLE_H

/*
 * Compiles the DWARF call-frame information of an x86_64 ELF file (.eh_frame,
 * and .debug_frame of its separate debug file, of its MiniDebugInfo or of the
 * file itself) into the compact rows the BPF unwinder walks (bpf/unwind.h).
 * elfutils' libdw runs the CFA programs; this module decides which FDE owns
 * which address, turns libdw's answers into rows and merges identical
 * neighbours.
 *
 * Limits (rows become CFA_UNSUPPORTED, the BPF walker uses frame pointers there):
 * - code at ELF virtual addresses of 4 GiB and more: -EINVAL (rows hold 32-bit pcs);
 * - an FDE is refused (stats.fdes_bad) when its CIE has an augmentation other
 *   than z[PLRS] or FDE addresses not absolute/pc-relative with a fixed size,
 *   when its range is 0-based or outside the executable segments, or when its
 *   program names a register past 130, nests remember_state deeper than 64 or
 *   holds an opcode x86_64 does not use; 64-bit-DWARF entries end the section;
 * - rows past the 8192nd of one FDE (libdw's cost is quadratic in them; gcc's
 *   cc1plus, the largest seen, has 6678); a file whose CFI would take libdw
 *   more than 2^28 steps: -EFBIG;
 * - old GNU-compressed .zdebug_frame (SHF_COMPRESSED .debug_frame is fine);
 * - at most 256 MiB of a CFI section is read, and none of one that lies over a
 *   hole of a sparse file (-EFBIG, see elfutil.h).
 */

#include <stdint.h>

#include "unwind.h"

/* Default for max_rows == 0. */
#define UNWIND_TABLE_MAX_ROWS (4u << 20)

struct unwind_table_stats {
	uint32_t fdes;			/* FDEs seen, both sections */
	uint32_t fdes_bad;		/* refused or cut short (see the limits above) */
	uint32_t rows_raw;		/* rows libdw described, before merging (gap rows not counted) */
	uint32_t rows_unsupported;	/* of those, rules we cannot express (CFA_UNSUPPORTED) */
	uint32_t from_eh_frame;		/* FDEs whose rows are in the table, per section */
	uint32_t from_debug_frame;
};

struct unwind_table {
	struct unwind_row *rows;	/* malloc'd, sorted by pc, identical neighbours merged */
	uint32_t nrows;
	uint64_t min_pc, max_pc;	/* first and last pc covered by an FDE (inclusive) */
	struct unwind_table_stats stats;
};

/*
 * Builds the table of the ELF file at path. .debug_frame comes from the first
 * of: debug_path (a separate debug file found by the caller; NULL = none, one
 * that cannot be used is ignored), the MiniDebugInfo (.gnu_debugdata) ELF, the
 * file itself. MiniDebugInfo's .eh_frame is used when the file has none.
 * Where .eh_frame and .debug_frame both describe a pc, .eh_frame wins.
 * Returns 0; -ENOENT when there is no CFI at all (or the file does not exist);
 * -EINVAL for a file that is no x86_64 executable or shared object, has code
 * at 4 GiB or more, or whose CFI is unusable throughout; -EFBIG past max_rows
 * rows (0: UNWIND_TABLE_MAX_ROWS), when the CFI would take too long to compile,
 * or when the file's headers claim more than elfutil's bounds; -ENOMEM. A path
 * under /proc/PID/root is resolved inside that root. Corrupt CFI yields a
 * partial table (see stats.fdes_bad), never a crash. *ret is written only on
 * success.
 */
int unwind_table__build(const char *path, const char *debug_path, uint32_t max_rows,
			struct unwind_table **ret);
void unwind_table__free(struct unwind_table *t);
/* The row covering pc, or NULL (pc < min_pc or pc > max_pc). */
const struct unwind_row *unwind_table__find(const struct unwind_table *t, uint64_t pc);

#endif
