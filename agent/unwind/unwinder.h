/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_UNWINDER_H
#define AGENT_UNWINDER_H

/*
 * User-space half of the native unwinder: compiles the unwind table of each
 * executable a sampled process maps (once per build-id, shared by every
 * process), loads it into the BPF unwind_tables map, and tells the BPF
 * program which table covers which address of which process (exe_mappings).
 * Tables no process maps any more stay, idle, until their room is needed.
 *
 * Tables are compiled (or read from the table cache) on a worker thread, never
 * on the thread that drains the ring buffer: a process's sync inserts the
 * entries of the tables already loaded at once and hands the others to the
 * worker; when one is built, every process that maps it is synced again (by
 * the next unwinder__sync_dirty, which the drain calls). Until then the BPF
 * walker uses frame pointers in that file. Everything else is the owner's:
 * one thread calls every function here.
 */

#include <stdbool.h>
#include <stdint.h>

struct procs;

struct jvmsym;
struct table_cache;
struct v8sym;

struct unwinder_opts {
	uint32_t max_rows_per_table;	/* 0 = 4M */
	uint32_t max_builds;		/* handed to the worker at once (each holds a file open); 0 = 64 */
	const char *debug_root;		/* NULL = /usr/lib/debug */
	struct table_cache *cache;	/* compiled tables on disk by build id; NULL = none */
	uint64_t retry_ns;		/* a failed table is built again no sooner; 0 = 60 s */
	/* CPython's evaluation loop handed to the BPF Python walker (py_procs, pysym) */
	bool python;
	int py_procs_fd;		/* the py_procs map */
	struct pysym *pysym;		/* told which processes run which CPython; may be NULL */
	/* HotSpot code caches handed to the BPF JVM walker (jvm_procs); -1: none */
	int jvm_procs_fd;
	struct jvmsym *jvmsym;		/* reads the JVMs' layouts; NULL: no JVM walker */
	/* V8's code handed to the BPF V8 walker (v8_procs, v8sym) */
	bool v8;
	int v8_procs_fd;		/* the v8_procs map */
	struct v8sym *v8sym;		/* told which processes run which V8; may be NULL */
};

struct unwinder_stats {
	uint64_t tables_loaded, tables_failed, tables_evicted, tables_live;
	uint64_t tables_idle;		/* no process maps them now (failed ones too: no rows) */
	uint64_t tables_pending;	/* being built by the worker */
	uint64_t tables_cancelled;	/* builds dropped: every process mapping them went first */
	uint64_t builds_deferred;	/* not asked for yet: the worker had max_builds */
	uint64_t rows_live, bytes_live, bytes_peak;
	uint64_t lpm_entries, lpm_failed;
	uint64_t pids, pid_syncs;
	uint64_t pids_vanished;		/* forgotten by unwinder__sweep: no exit record came */
	uint64_t load_ns_total, load_ns_max;	/* compile + load time per table */
	uint64_t no_cfi;			/* executables without CFI */
	uint64_t failures_reused;	/* a failed table found again: not rebuilt before retry_ns */
	uint64_t py_procs;		/* processes whose CPython the Python walker knows */
	uint64_t py_unsupported;	/* files with a CPython whose version or build we do not know */
	uint64_t py_failed;		/* py_procs map updates that failed (full) */
	uint64_t jvm_procs;		/* processes whose JVM the HotSpot walker knows */
	uint64_t jvm_failed;		/* jvm_procs map updates that failed (full) */
	uint64_t v8_procs;		/* processes whose V8 the V8 walker knows */
	uint64_t v8_unsupported;	/* files with a V8 whose build we cannot walk */
	uint64_t v8_failed;		/* v8_procs map updates that failed (full) */
};

struct unwinder;

/* exe_mappings_fd: the LPM trie; rows_fd: the unwind_rows array, of rows_cap rows. */
struct unwinder *unwinder__new(int exe_mappings_fd, int rows_fd, uint32_t rows_cap,
			       struct procs *procs, const struct unwinder_opts *opts);
void unwinder__free(struct unwinder *u);
/*
 * Makes sure every executable mapping of pid has its LPM entries in place for
 * the tables loaded, and the others on their way. Cheap for a pid already synced unless force (used
 * when the BPF program reports a frame with no table: a library was mapped
 * since). Returns 0 or -errno.
 */
int unwinder__sync_pid(struct unwinder *u, int pid, bool force);
/* Whether pid was synced (and so is being followed). */
bool unwinder__knows(struct unwinder *u, int pid);
/* Its mappings changed (exec, mmap): re-synced by the next unwinder__sync_dirty. */
void unwinder__mark_dirty(struct unwinder *u, int pid);
/* Places the tables the worker built, then re-syncs every process marked dirty; how many. */
int unwinder__sync_dirty(struct unwinder *u);
/* The process exited: drops its LPM entries and its references to tables. */
void unwinder__forget_pid(struct unwinder *u, int pid);
/* Forgets followed processes that are gone though no exit record said so; how many. */
int unwinder__sweep(struct unwinder *u);
/*
 * Waits up to timeout_ms (>= 0) for the worker to build every table handed to it,
 * places them and syncs the processes that map them. true when none is left
 * (tests; the end of a recording).
 */
bool unwinder__settle(struct unwinder *u, int timeout_ms);
/* Readable while built tables wait to be placed: for the owner's poll loop. */
int unwinder__wake_fd(const struct unwinder *u);
void unwinder__stats(const struct unwinder *u, struct unwinder_stats *ret);

/*
 * The hooks a sampling loop calls (record and run share them). On a sample:
 * tables load lazily, on a process's first sample or when a frame had none
 * (alive: whether procs still knows the process). On a task record: a forked
 * child of a followed process reuses its tables at once; exec/mmap mark it
 * dirty; exit forgets it. u may be NULL (--unwinder fp): they do nothing.
 */
void unwinder__on_sample(struct unwinder *u, int pid, uint32_t sample_flags, bool alive);
void unwinder__on_task(struct unwinder *u, int ev, int pid, int ppid);

#endif
