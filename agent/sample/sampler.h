/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_SAMPLER_H
#define AGENT_SAMPLER_H

/*
 * The kernel side of the agent: loads bpf/oncpu.bpf.c, opens one software
 * CPU-clock perf event per CPU with the program attached, and one dummy perf
 * event per CPU that reports mmap/comm/fork/exit records. It hands both to its
 * callbacks (the pipeline, agent/sample/pipeline.h) and keeps no state of its own
 * about processes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oncpu.h"	/* bpf/oncpu.h: struct sample_event, enum counter */

typedef int (*sampler_sample_fn)(void *ctx, const struct sample_event *e);

enum task_event { TASK_FORK, TASK_EXEC, TASK_MMAP, TASK_EXIT };

/* One perf task record, valid during the callback. */
struct task_record {
	enum task_event ev;
	int pid;
	int ppid;		/* TASK_FORK: the parent */
	uint64_t time;		/* CLOCK_MONOTONIC ns, 0 if unknown */
	const char *str;	/* TASK_EXEC: the new comm; TASK_MMAP: the file ("" if none) */
	/* TASK_MMAP */
	uint64_t addr, len, pgoff, ino;
	uint32_t maj, min;
};
typedef void (*sampler_task_fn)(void *ctx, const struct task_record *t);
/* Between draining task records and draining samples. */
typedef void (*sampler_drained_fn)(void *ctx);

struct sampler_opts {
	int frequency;		/* Hz per CPU */
	enum filter_mode filter;
	bool kernel_stacks;
	bool user_stacks;
	bool follow_children;	/* with FILTER_PIDS: children of targeted processes are targeted */
	bool pids_fallback;	/* with FILTER_CGROUPS: also the pids map (cgroup v1 hosts) */
	bool start_disabled;	/* open the perf events disabled (sampler__set_frequency starts them) */
	bool dwarf_unwind;	/* walk user stacks with unwind tables (else frame pointers only) */
	bool allow_degraded;	/* dwarf_unwind refused by the verifier: frame pointers, said loudly */
	bool python;		/* with dwarf_unwind: the CPython walker too (left out if refused) */
	bool jvm;		/* with dwarf_unwind: the HotSpot walker too (left out if refused) */
	bool v8;		/* with dwarf_unwind: the V8 walker too (left out if refused) */
	uint32_t unwind_rows;	/* size of the unwind_rows array; 0 = UNWIND_DEFAULT_ROWS */
	sampler_sample_fn on_sample;
	sampler_task_fn on_task;	/* may be NULL */
	sampler_drained_fn on_tasks_drained;	/* may be NULL */
	void *ctx;
};

/* What the kernel offers, and what was loaded. */
struct sampler_kernel {
	char release[65];		/* uname -r */
	bool task_pt_regs;		/* bpf_task_pt_regs() (5.15+) */
	bool dwarf;			/* the table-driven walker chain is loaded */
	bool python;			/* the CPython walker is in the chain */
	bool jvm;			/* the HotSpot walker is in the chain */
	bool v8;			/* the V8 walker is in the chain */
	char degraded[512];		/* why a lesser variant was loaded; "" when none was */
	char verified[160];		/* "prog=N ..." verified instructions (5.16+) */
	uint64_t verified_total;
};

struct sampler_stats {
	uint64_t counters[CNT_MAX];	/* summed over CPUs */
	struct sampler_kernel kernel;
	uint64_t task_records, task_lost;
	uint32_t ncpus;
	/* the ring buffer's drain: its longest pass (our callbacks' work), and the
	 * longest time between two passes (that, the poll's wait and the caller's
	 * own work, such as building a profile): what the buffer must hold */
	uint64_t drain_ns_max, drain_gap_ns_max;
};

struct sampler;

/*
 * Checks what every variant needs (BTF, program and map types, helpers); on a
 * lack, one line naming it and the kernel in err, and -ENOTSUP (-EPERM where
 * BPF is not allowed at all).
 */
int sampler__probe_kernel(struct sampler_kernel *k, char *err, size_t errlen);

/*
 * The one-line reason in a verifier log as libbpf prints it ("prog 'x': --
 * BEGIN PROG LOAD LOG --\n...-- END PROG LOAD LOG --"): the program and the
 * log's last two lines. -1 when msg holds no such log.
 */
int sampler_verifier_summary(const char *msg, char *out, size_t len);

/* Returns NULL with errno set; the reason is logged. */
struct sampler *sampler__new(const struct sampler_opts *opts);
void sampler__free(struct sampler *s);
/* Adds a process (and with follow_children, its future children) to the pids filter. */
int sampler__add_pid(struct sampler *s, int pid);
/* Waits up to timeout_ms, then drains task records, then samples. Returns samples handled or -errno. */
int sampler__poll(struct sampler *s, int timeout_ms);
/* The cgroup filter (FILTER_CGROUPS): cgroup id -> cfg; removal. */
int sampler__set_target(struct sampler *s, uint64_t cgroup_id, const struct target_cfg *cfg);
int sampler__del_target(struct sampler *s, uint64_t cgroup_id);
int sampler__del_pid(struct sampler *s, int pid);
/* Whether pid exec'd in a targeted cgroup (the exec tracepoint noted it); takes the note. */
bool sampler__exec_targeted(struct sampler *s, int pid);
/* Whether pid is in the pids filter (its own entry, or one the fork handler copied). */
bool sampler__pid_targeted(struct sampler *s, int pid);
struct sampler_pid {
	uint32_t pid;
	struct target_cfg cfg;
};
/* The pids in the filter now (malloc'd), for sampler__sync_pids. 0 or -ENOMEM. */
int sampler__pids_snapshot(struct sampler *s, uint32_t **ret, size_t *ret_n);
/*
 * Makes the pids filter hold want (cgroup v1 hosts: the processes of the
 * targeted cgroups, read after the snapshot `before` was taken): entries whose
 * rate and bits are unchanged keep their subsampling phase; of the processes in
 * `before`, those not wanted (exited, moved, untargeted, a recycled pid) are
 * removed, *ret_dropped (may be NULL) of them; a child the fork tracepoint added
 * during the scan stays. Sorts want. 0 or the first -errno.
 */
int sampler__sync_pids(struct sampler *s, struct sampler_pid *want, size_t n,
		       const uint32_t *before, size_t nbefore, size_t *ret_dropped);
/* Changes the sampling frequency of every CPU's event in place; 0 disables them. */
int sampler__set_frequency(struct sampler *s, int hz);
/* Drains what is left (call after disabling). */
int sampler__drain(struct sampler *s);
/* Stops sampling (detaches the perf events); records already queued can still be drained. */
void sampler__stop(struct sampler *s);
void sampler__stats(struct sampler *s, struct sampler_stats *ret);
/* The kernel, as probed at sampler__new, and the variant loaded. */
const struct sampler_kernel *sampler__kernel(const struct sampler *s);
/* fd readable wakes sampler__poll too (which then drains as usual). 0 or -errno. */
int sampler__watch_fd(struct sampler *s, int fd);
/* The py_procs map of the CPython walker, -1 when it is not loaded. */
int sampler__py_procs_fd(struct sampler *s);
/* The jvm_procs map of the HotSpot walker, -1 when it is not loaded. */
int sampler__jvm_procs_fd(struct sampler *s);
/* The v8_procs map of the V8 walker, -1 when it is not loaded. */
int sampler__v8_procs_fd(struct sampler *s);
/* The unwinder's BPF maps: exe_mappings (LPM trie) and unwind_rows (array, *ret_rows_cap rows). */
int sampler__unwind_fds(struct sampler *s, int *ret_mappings_fd, int *ret_rows_fd,
			uint32_t *ret_rows_cap);
/* bpf_stats: total run time and count of the sampling program (needs kernel.bpf_stats_enabled=1). */
int sampler__prog_stats(struct sampler *s, uint64_t *ret_run_ns, uint64_t *ret_run_cnt);

#endif
