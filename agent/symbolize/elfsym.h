/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_ELFSYM_H
#define AGENT_ELFSYM_H

/*
 * ELF symbolization: function names from .symtab and .dynsym, or from a
 * separate debug file found by build-id (<debug_root>/.build-id/xx/yyyy.debug)
 * or by .gnu_debuglink (checked by CRC), from MiniDebugInfo (.gnu_debugdata),
 * and for stripped Go binaries from .gopclntab (Go 1.18 and later). Names are
 * demangled (C++, Rust).
 *
 * Cache entries are keyed by (dev, ino), or by path when both are 0, and
 * evicted least recently used beyond max_objects. Files with the same build-id
 * share one loaded object. A file that failed to load is remembered: it is not
 * opened again before a while (never again when it is no valid ELF).
 * Corrupt or truncated files are rejected; nothing read from a file aborts, and
 * no section is read before its size is checked against a budget, the file's
 * size and the blocks it really has (a sparse file's holes): such a file fails
 * with EFBIG. A file under /proc/PID/root, and its debug files there, are opened
 * inside that root: a symlink in a container cannot lead to the host's files.
 *
 * One owner thread calls every function here. Files are read either at once
 * (symcache__get) or on the cache's own loader thread (symcache__prefetch: the
 * file and its process's root are opened first, so the read may come after the
 * process exits); the owner applies what the loader read at its next call.
 */

#include <stddef.h>
#include <stdint.h>

struct symcache_opts {
	size_t max_objects;	/* 0 = 256 */
	size_t max_bytes;	/* symbols kept between symcache__trim calls; 0 = 32 MiB */
	const char *debug_root;	/* NULL = "/usr/lib/debug" */
};

struct symcache_stats {
	uint64_t objects_loaded;	/* ELF files parsed */
	uint64_t objects_failed;	/* loads that failed (each retry counts) */
	uint64_t objects_refused;	/* ... of those, over a size bound or sparse (EFBIG) */
	uint64_t objects_shared;	/* files served by a loaded object with their build-id */
	uint64_t evictions;
	uint64_t bytes;		/* held now */
	uint64_t debug_files_used;	/* symbols from a separate debug file */
	uint64_t minidebuginfo_used;	/* symbols from .gnu_debugdata */
	uint64_t go_pclntab_used;	/* symbols from .gopclntab */
	uint64_t lookups;		/* symcache__get calls, and symcache__prefetch of a new file */
	uint64_t misses;		/* ... that had to open the file */
	uint64_t prefetches_dropped;	/* not pinned: the loader had LOADS_MAX files */
	uint64_t load_waits_timed_out;	/* asked for while loading, not done in 2 s (EAGAIN) */
};

struct elfobj;
struct symcache;

struct symcache *symcache__new(const struct symcache_opts *opts);
void symcache__free(struct symcache *c);
/*
 * Returns the object for a file, loading it on first use (one the loader has is
 * waited for, 2 s at most: then NULL with EAGAIN). open_path is what to
 * open (e.g. /proc/PID/map_files/START-END or /proc/PID/root/usr/lib/libc.so.6);
 * real_path is the file's name as the process saw it, used to find its
 * .gnu_debuglink file (NULL: derived from open_path); dev/ino identify it (0, 0:
 * open_path does). NULL with errno set when the file cannot be read or is no valid
 * ELF (EINVAL). The pointer stays valid until the entry is evicted or the cache
 * freed: use it right away.
 */
/*
 * Drops the least recently used objects until the cache holds no more than its
 * byte budget. Not done on every load, where a big binary and libc taking turns
 * would evict each other: the owner calls it between profiles (run: after each
 * interval's export). Pointers from symcache__get are invalid afterwards.
 */
void symcache__trim(struct symcache *c);
/*
 * The file will be asked for (its process may be gone by then): opens it and
 * its process's root now, and reads its symbols on the loader thread, unless
 * they are loaded, on their way or failed lately. Same arguments as
 * symcache__get. 0 or -errno (ENOMEM; EAGAIN when the loader has too many files
 * already: counted; a file that cannot be opened is an entry that failed, as
 * with symcache__get).
 */
int symcache__prefetch(struct symcache *c, const char *open_path, const char *real_path,
		       uint64_t dev, uint64_t ino);
/*
 * The object loaded for the file (dev, ino) if the cache still holds it, without
 * opening anything (one being loaded is waited for, 2 s at most).
 */
struct elfobj *symcache__find(struct symcache *c, uint64_t dev, uint64_t ino);
struct elfobj *symcache__get(struct symcache *c, const char *open_path, const char *real_path,
			     uint64_t dev, uint64_t ino);
/* Build-id in lower-case hex, "" when there is none. */
const char *elfobj__build_id(const struct elfobj *o);
/* File offset (as in /proc/PID/maps) -> ELF virtual address, through PT_LOAD. 0 or -ENOENT. */
int elfobj__offset_to_vaddr(const struct elfobj *o, uint64_t file_off, uint64_t *ret_vaddr);
/*
 * The function containing vaddr: st_value <= vaddr < st_value + st_size, or for a
 * size-0 symbol, the nearest one below vaddr up to the next symbol (and not past
 * the end of its section). *ret_name is demangled and owned by the object;
 * *ret_sym_off (may be NULL) is vaddr - st_value. 0 or -ENOENT.
 */
int elfobj__symbolize(const struct elfobj *o, uint64_t vaddr, const char **ret_name,
		      uint64_t *ret_sym_off);
size_t elfobj__nsyms(const struct elfobj *o);
void symcache__stats(const struct symcache *c, struct symcache_stats *ret);

#endif
