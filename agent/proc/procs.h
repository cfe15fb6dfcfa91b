/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PROCS_H
#define AGENT_PROCS_H

/*
 * Process and mapping tracking. Mappings come from perf's mmap/comm/fork/exit
 * records (so processes that exit during a recording keep their mappings) and,
 * for processes that already ran when we started, from /proc/PID/maps on the
 * first sample. A mapping, once seen, gets a stable id that samples keep.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROCS_NO_MAPPING UINT32_MAX

struct mapping {
	uint64_t start, end, pgoff;
	uint64_t dev, ino;
	const char *path;	/* as the process saw it; "" for anonymous memory */
	int pid;		/* a process that mapped it, to reach /proc/PID/map_files */
};

struct procs_opts {
	const char *proc_root;	/* NULL = "/proc" */
	uint32_t max_procs;	/* 0 = 32768 */
	uint32_t max_mappings;	/* 0 = 1 << 20 */
};

struct procs_stats {
	uint64_t procs, procs_evicted, maps_read, maps_read_failed, mappings, mappings_full;
	uint64_t resolve_misses;
	uint64_t procs_freed, mappings_freed;	/* by procs__gc */
	uint64_t procs_vanished;	/* found gone by procs__gc: their exit record was lost */
	uint64_t procs_live, mappings_live;	/* held now */
};

struct procs;

struct procs *procs__new(const struct procs_opts *opts);
void procs__free(struct procs *p);

/*
 * perf records, with their CLOCK_MONOTONIC time. Records of one process can
 * come from different CPUs' buffers in any order: an exec only drops the
 * mappings made before it, and a mapping made before the last exec is ignored.
 */
void procs__on_mmap(struct procs *p, int pid, uint64_t start, uint64_t len, uint64_t pgoff,
		    uint32_t maj, uint32_t min, uint64_t ino, const char *path, uint64_t time);
void procs__on_exec(struct procs *p, int pid, const char *comm, uint64_t time);
/* time: the fork record's (0 if unknown) */
void procs__on_fork(struct procs *p, int pid, int ppid, uint64_t time);
void procs__on_exit(struct procs *p, int pid);

/*
 * Finds the mapping that holds addr in process pid, reading /proc/PID/maps on
 * the first look at a process and again (rate-limited) on a miss while it is
 * alive. Returns 0 and *ret_id, or -ENOENT.
 */
int procs__resolve(struct procs *p, int pid, uint64_t addr, uint32_t *ret_id);
/* The mapping of an id, or NULL for an id that procs__gc freed. */
const struct mapping *procs__mapping(const struct procs *p, uint32_t id);
uint32_t procs__nmappings(const struct procs *p);
bool procs__alive(const struct procs *p, int pid);
/*
 * Calls cb for every executable range [start, end) of process pid (reading
 * /proc on the first look, like procs__resolve). Returns 0, the first
 * non-zero value of cb, or -ENOENT for an unknown process.
 */
int procs__foreach_range(struct procs *p, int pid,
			 int (*cb)(const struct mapping *m, uint64_t start, uint64_t end, void *ctx),
			 void *ctx);
/*
 * A path that opens mapping m's file, into buf: /proc/PID/map_files while pid
 * (a process that maps it) is alive, else its name inside the process's root,
 * else the host's file of that name only if its device and inode are the
 * mapping's. -ENOENT when none will do (anonymous memory, a file gone).
 */
int procs__mapping_path(const struct mapping *m, int pid, bool alive, char *buf, size_t len);
/* Re-reads /proc/PID/maps now if it was not read in the last half second; 0 or -errno. */
int procs__refresh(struct procs *p, int pid);
void procs__stats(const struct procs *p, struct procs_stats *ret);
/*
 * Marks dead the processes that are gone though no exit record said so (one
 * was lost), forgets processes that were already dead at the previous call, frees the
 * mappings that no process holds any more, so that a long run's memory follows
 * what is alive. Freed ids are given to new mappings: call it only when nobody
 * holds a mapping id (every aggregate reset). 0 or -ENOMEM (then no mapping was freed).
 */
int procs__gc(struct procs *p);

#endif
