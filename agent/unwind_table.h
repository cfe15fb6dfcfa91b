/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_UNWIND_TABLE_H
#define AGENT_UNWIND_TABLE_H

/*
 * Compiles DWARF call-frame information (.eh_frame, and .debug_frame of the
 * file or of its separate debug file) into the compact rows the BPF unwinder
 * walks (bpf/unwind.h). The DWARF CFA programs are run by elfutils' libdw;
 * this module turns their results into rows, sorts and merges them.
 */

#include <stdint.h>

#include "unwind.h"

struct unwind_table_stats {
	uint32_t fdes, fdes_bad, rows_raw, rows_unsupported, from_eh_frame, from_debug_frame;
};

struct unwind_table {
	struct unwind_row *rows;	/* sorted by pc, identical neighbours merged */
	uint32_t nrows;
	uint64_t min_pc, max_pc;	/* range covered by FDEs */
	struct unwind_table_stats stats;
};

/*
 * Builds the table of an x86_64 ELF file. debug_path: a separate debug file
 * whose .debug_frame to use as well (NULL = none). Where .eh_frame and
 * .debug_frame both describe a pc, .eh_frame wins. Returns 0, -ENOENT when
 * there is no CFI at all, -EINVAL for a file that is no x86_64 ELF (or has
 * addresses of 4 GiB and more), -EFBIG past max_rows rows.
 */
int unwind_table__build(const char *path, const char *debug_path, uint32_t max_rows,
			struct unwind_table **ret);
void unwind_table__free(struct unwind_table *t);
/* The row covering pc, or NULL. */
const struct unwind_row *unwind_table__find(const struct unwind_table *t, uint64_t pc);

#endif
