// SPDX-License-Identifier: GPL-2.0
/*
 * profleet sampler: runs on every software CPU-clock perf event, decides in
 * a map lookup whether the interrupted task is wanted, and sends its kernel and
 * user stacks to user space through a ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "oncpu.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 cfg_filter = FILTER_ALL;
const volatile bool cfg_kernel_stacks = true;
const volatile bool cfg_user_stacks = true;
const volatile bool cfg_follow_children = true;
/* wake user space only once this much is queued; it also polls on a timer */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} samples SEC(".maps");

/* cgroup id -> target_cfg (filled by the fleet later; unused in standalone mode) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct target_cfg);
} targets SEC(".maps");

/* tgid -> target_cfg, for --pid and for a command and its children */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct target_cfg);
} pids SEC(".maps");

/* per-CPU subsampling phase, one slot per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} phase SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Perf buffer for the mmap/comm/fork/exit records of dummy events (read by user space only). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} task_events SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline const struct target_cfg *lookup_target(__u32 tgid)
{
	if (cfg_filter == FILTER_PIDS)
		return bpf_map_lookup_elem(&pids, &tgid);
	if (cfg_filter == FILTER_CGROUPS) {
		__u64 cg = bpf_get_current_cgroup_id();

		return bpf_map_lookup_elem(&targets, &cg);
	}
	return NULL;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	const struct target_cfg *tgt = NULL;
	struct task_struct *task;
	struct sample_event *e;
	long n;

	count(CNT_SAMPLES);
	if (tid == 0) {
		count(CNT_IDLE);
		return 0;
	}
	if (cfg_filter != FILTER_ALL) {
		tgt = lookup_target(tgid);
		if (!tgt) {
			count(CNT_FILTERED);
			return 0;
		}
		if (tgt->sample_every > 1) {
			__u32 zero = 0;
			__u64 *ph = bpf_map_lookup_elem(&phase, &zero);

			if (ph && (*ph)++ % tgt->sample_every) {
				count(CNT_SUBSAMPLED);
				return 0;
			}
		}
	}

	e = bpf_ringbuf_reserve(&samples, sizeof(*e), 0);
	if (!e) {
		count(CNT_RINGBUF_FULL);
		return 0;
	}
	e->pid = tgid;
	e->tid = tid;
	e->time_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	e->policy_bits = tgt ? tgt->policy_bits : 0;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, group_leader, comm);

	e->kstack_len = 0;
	e->kstack_status = STACK_EMPTY;
	/* A sample taken in user mode has an empty kernel callchain. */
	if (cfg_kernel_stacks) {
		n = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), 0);
		if (n < 0) {
			e->kstack_status = STACK_ERR_FAULT;
			count(CNT_KSTACK_FAULT);
		} else {
			e->kstack_len = n / sizeof(__u64);
			e->kstack_status = e->kstack_len >= PROFLEET_MAX_STACK ? STACK_TRUNCATED :
					   e->kstack_len ? STACK_OK : STACK_EMPTY;
			if (e->kstack_status == STACK_TRUNCATED)
				count(CNT_KSTACK_TRUNCATED);
			if (e->kstack_len)
				e->flags |= SAMPLE_F_KERNEL_MODE;
		}
	}

	e->ustack_len = 0;
	e->ustack_status = STACK_EMPTY;
	if (cfg_user_stacks && task && !(BPF_CORE_READ(task, flags) & 0x00200000 /* PF_KTHREAD */)) {
		n = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
		e->flags |= SAMPLE_F_USER_FP;
		if (n < 0) {
			e->ustack_status = STACK_ERR_FAULT;
			count(CNT_USTACK_FAULT);
		} else {
			e->ustack_len = n / sizeof(__u64);
			e->ustack_status = e->ustack_len >= PROFLEET_MAX_STACK ? STACK_TRUNCATED :
					   e->ustack_len ? STACK_OK : STACK_EMPTY;
			if (e->ustack_status == STACK_TRUNCATED)
				count(CNT_USTACK_TRUNCATED);
			else if (!e->ustack_len)
				count(CNT_USTACK_EMPTY);
		}
	}

	bpf_ringbuf_submit(e, bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ?
				      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(CNT_SENT);
	return 0;
}

/* A new process whose parent is targeted is targeted too (--pid, -- COMMAND). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct target_cfg *cfg;

	if (cfg_filter != FILTER_PIDS || !cfg_follow_children || ptgid == ctgid)
		return 0;
	cfg = bpf_map_lookup_elem(&pids, &ptgid);
	if (!cfg)
		return 0;
	if (bpf_map_update_elem(&pids, &ctgid, cfg, BPF_NOEXIST) == 0)
		count(CNT_CHILDREN_ADDED);
	else
		count(CNT_PIDS_FULL);
	return 0;
}

/* Keeps the pids map from filling up with processes that are gone. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (cfg_filter != FILTER_PIDS || BPF_CORE_READ(task, pid) != tgid)
		return 0;
	bpf_map_delete_elem(&pids, &tgid);
	return 0;
}
