/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_TABLE_CACHE_H
#define AGENT_TABLE_CACHE_H
/*
 * Compiled unwind tables on disk, one file per build id, so that a restart, a
 * DaemonSet rollout or the next container of the same image reads a table
 * instead of compiling it again. A file is trusted only after its checks: its
 * size matches its header, its format and options are this agent's, its CRC
 * holds and its rows are sorted; one that fails is removed and counted. The
 * directory is kept under a byte budget (oldest files go first).
 *
 * File: a 32-byte header (magic "PFUT", format, nrows, flags, max_rows, crc32
 * of the rows, the compiler's version; little endian) and nrows struct
 * unwind_row. A file another agent version wrote (format, compiler, options)
 * is a miss and is replaced, not counted as damage.
 *
 * Trust: files are named by build id, as tables in memory are shared by build
 * id. A binary that forges another's build id gets its CFI used for the other
 * binary's processes on the node (wrong stacks, never a crash: the BPF walker
 * bounds every read). Keying by a hash of the CFI itself would close this.
 */
#include <stdint.h>

#include "unwind.h"

/*
 * The version of the CFI compiler (agent/unwind/unwind_table.c): raise it when
 * the rows it makes for the same file change, so that tables an older agent
 * cached are compiled again.
 */
#define TABLE_CACHE_COMPILER 1

/* What the rows were built with; a file built otherwise is not used. */
#define TABLE_CACHE_F_DEBUG_FILE 1u	/* a separate debug file's .debug_frame was merged */

struct table_cache_stats {
	uint64_t hits, misses, rejected, written, write_failed, evicted;
	uint64_t bytes;		/* in the directory, as of the last write */
};

struct table_cache;

/* Opens (creates) dir; max_bytes 0 = 256 MiB. NULL with errno set. */
struct table_cache *table_cache_open(const char *dir, uint64_t max_bytes);
void table_cache_close(struct table_cache *c);
/*
 * The rows cached for build id bid (hex), built with flags and at most
 * max_rows rows: 0 and *rows (malloc'd) / *nrows; -ENOENT when there is none
 * (or another agent's); -EBADMSG when the file failed a check (it is removed); -EINVAL for a build id
 * that is not hex; -ENOMEM.
 */
int table_cache_get(struct table_cache *c, const char *bid, uint32_t flags, uint32_t max_rows,
		    struct unwind_row **rows, uint32_t *nrows);
/* Writes the rows (atomically: a temporary file renamed), then keeps the budget. 0 or -errno. */
int table_cache_put(struct table_cache *c, const char *bid, uint32_t flags, uint32_t max_rows,
		    const struct unwind_row *rows, uint32_t nrows);
/* get and put are used by one thread (the unwinder's worker); stats may be read from any. */
void table_cache_stats(const struct table_cache *c, struct table_cache_stats *ret);

#endif
