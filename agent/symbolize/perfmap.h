/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PERFMAP_H
#define AGENT_PERFMAP_H

/*
 * Names of JIT-compiled code from the maps runtimes write for perf(1):
 * /tmp/perf-<pid>.map (Node --perf-basic-prof, Java's perf-map-agent, CPython
 * 3.12+ -X perf, .NET, LuaJIT). One line per piece of code, "START SIZE name",
 * START and SIZE in hex (0x or not, 16 digits at most), the name the rest of
 * the line. A later line that covers an address wins: the code there was
 * freed and the memory reused.
 *
 * The file is the process's own: /proc/<pid>/root/tmp/perf-<nspid>.map,
 * resolved inside that root (rootfs_openat), <nspid> the pid the process sees
 * itself as (the last NSpid of /proc/<pid>/status: a container's process has
 * its own). Only a regular file is read (a symlink there is refused, or,
 * where openat2 is refused, followed inside that root), read_max bytes at most
 * per look.
 *
 * Two costs, on two paths. A look (__load, __refresh: the drain, at samples)
 * parses only what was appended since the last and keeps the new lines aside,
 * O(appended). A lookup (__lookup: the profile build) that finds lines aside
 * merges them into the process's sorted index first, O(n + k log k) for k new
 * lines: once per process per profile. A lookup never reads a file.
 *
 * Bounded: max_entries ranges (and lines aside) and max_bytes of memory
 * (arrays and names, as allocated) for every process together, and a quarter
 * of each for one pid, all its images together; a line past that is dropped
 * and counted. A merge frees the names no range uses any more. A process's
 * names stay after it ends or execs, for its profile: perfmaps__gc frees them.
 * The map of a new image of the pid (after an exec, or a file replaced) is
 * kept apart from the old image's names until then, two older images at most
 * (the oldest is dropped, counted). A new image whose file is the one the old
 * image read (CPython appends to it) is read on from where the old stopped.
 * A lookup does not know which image a frame is from: it tries the newest
 * first.
 *
 * One thread (the drain's). A name handed out is borrowed until the next call
 * (but perfmaps__stats).
 */

#include <stdbool.h>
#include <stdint.h>

struct perfmaps;

struct perfmaps_opts {
	const char *proc_root;	/* NULL = "/proc"; tests use a directory (procs_opts.proc_root) */
	uint32_t max_entries;	/* ranges and lines aside, all (a quarter each): 0 = 1 Mi */
	uint64_t max_bytes;	/* allocated, every process (a quarter each): 0 = 64 MiB */
	uint64_t read_max;	/* read from a file per look: 0 = 16 MiB (the rest next time) */
	uint64_t recheck_ns;	/* __refresh looks again after: 0 = 1 s */
	uint32_t max_procs;	/* processes followed: 0 = 65536 */
};

struct perfmaps_stats {
	uint64_t maps_read;		/* looks that found new lines */
	uint64_t entries;		/* lines taken */
	uint64_t entries_dropped;	/* lines past max_entries, max_bytes or a share */
	uint64_t lines_malformed;	/* not "START SIZE name" (16 hex digits), or 64 KiB */
	uint64_t files_refused;		/* not a regular file (a symlink, a FIFO, a device) */
	uint64_t reads_capped;		/* looks that stopped at read_max */
	uint64_t files_replaced;	/* shrank or another file: read again from the start */
	uint64_t processes_forgotten;	/* exits, execs, found gone: of processes with names kept */
	uint64_t processes_full;	/* looks refused: max_procs processes followed already */
	uint64_t images_dropped;	/* a pid's older images past 2, freed at its next new
					 * image (exec, file replaced): names lost */
	uint64_t rebuilds;		/* indexes merged with the lines read since (at a lookup) */
	uint64_t rebuild_lines;		/* lines they merged */
	uint64_t rebuilds_failed;	/* out of memory: the index as it was, lines aside, tried
					 * again after the next look at the file or gc */
	uint64_t entries_held;		/* now: ranges indexed and lines aside */
	uint64_t bytes_held;		/* now: allocated for them and names, slack too */
};

struct perfmaps *perfmaps__new(const struct perfmaps_opts *opts);
void perfmaps__free(struct perfmaps *pm);
/*
 * Reads process pid's map now: all of it the first time (or after its pid was
 * forgotten: a new process, or its new image, but from where the old image
 * stopped when the file is the one it read, no shorter), what was appended
 * since otherwise. The number of lines taken, or -errno: -ENOENT (no map, no
 * process: what was read stays), -EINVAL (not a regular file), -ENOSPC
 * (max_procs).
 */
int perfmaps__load(struct perfmaps *pm, int pid);
/*
 * perfmaps__load if process pid's file was last looked at recheck_ns ago or
 * more, or never (a pid not seen, or forgotten since: a new image), cheap
 * otherwise: for every sample in JIT code, so that code compiled after a
 * process's first sample is named even if it ends before the profile is
 * built. As perfmaps__load.
 */
int perfmaps__refresh(struct perfmaps *pm, int pid);
/*
 * The name of the code at addr in process pid, into *ret_name (borrowed):
 * its newest image's map first, then those forgotten since the last gc but
 * one (which image a frame is from is not known: where two name addr, the
 * newer's name is given). Reads no file. 0 or -ENOENT.
 */
int perfmaps__lookup(struct perfmaps *pm, int pid, uint64_t addr, const char **ret_name);
/*
 * Process pid ended or exec'd: its map is kept, no longer read, for what it
 * collected until perfmaps__gc; the next look at the pid starts a new one.
 */
void perfmaps__forget_pid(struct perfmaps *pm, int pid);
/*
 * Frees the names of processes forgotten before the previous call (like
 * procs__gc: samples of a process can still come after its exit record). Call
 * it when every aggregate was built and reset.
 */
void perfmaps__gc(struct perfmaps *pm);
void perfmaps__stats(const struct perfmaps *pm, struct perfmaps_stats *ret);
/* Tests: the nth allocation from now (1: the next) and every one after fail; 0: none. */
void perfmaps__fail_alloc(struct perfmaps *pm, uint32_t nth);

/*
 * Whether a mapping's path is anonymous memory, where JITs put their code: ""
 * (/proc/PID/maps), "//anon" (perf's mmap records), "[anon:NAME]" (named with
 * PR_SET_VMA_ANON_NAME).
 */
bool perfmap_anon(const char *path);

#endif
