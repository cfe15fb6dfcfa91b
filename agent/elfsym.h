/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_ELFSYM_H
#define AGENT_ELFSYM_H

/*
 * ELF symbolization: function names from .symtab and .dynsym, or from a
 * separate debug file found by build-id (<debug_root>/.build-id/xx/yyyy.debug)
 * or by .gnu_debuglink (checked by CRC), from .gnu_debugdata (MiniDebugInfo), and
 * for stripped Go binaries from
 * .gopclntab (Go 1.18 and later). Objects are cached and evicted least
 * recently used; a file that failed to load is remembered, not retried.
 */

#include <stddef.h>
#include <stdint.h>

struct symcache_opts {
	size_t max_objects;	/* 0 = 256 */
	const char *debug_root;	/* NULL = "/usr/lib/debug" */
};

struct symcache_stats {
	uint64_t objects_loaded, objects_failed, evictions, debug_files_used, go_pclntab_used;
	uint64_t minidebuginfo_used;
};

struct elfobj;
struct symcache;

struct symcache *symcache__new(const struct symcache_opts *opts);
void symcache__free(struct symcache *c);
/*
 * Returns the object for a file, loading it on first use. open_path is what to
 * open (e.g. /proc/PID/map_files/START-END); real_path is the file's name as the
 * process saw it (for .gnu_debuglink next to it; NULL = open_path); dev/ino
 * identify it (0, 0: the path does). NULL with errno set when the file cannot be
 * read or is no valid ELF. The pointer stays valid until the next call.
 */
struct elfobj *symcache__get(struct symcache *c, const char *open_path, const char *real_path,
			     uint64_t dev, uint64_t ino);
/* Build-id in lower-case hex, "" when there is none. */
const char *elfobj__build_id(const struct elfobj *o);
/* File offset (as in /proc/PID/maps) -> ELF virtual address, through PT_LOAD. 0 or -ENOENT. */
int elfobj__offset_to_vaddr(const struct elfobj *o, uint64_t file_off, uint64_t *ret_vaddr);
/* The function containing vaddr; *ret_name is demangled and owned by the object. 0 or -ENOENT. */
int elfobj__symbolize(const struct elfobj *o, uint64_t vaddr, const char **ret_name,
		      uint64_t *ret_sym_off);
size_t elfobj__nsyms(const struct elfobj *o);
void symcache__stats(const struct symcache *c, struct symcache_stats *ret);

#endif
