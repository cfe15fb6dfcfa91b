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
#include <bpf/bpf_endian.h>
#include "oncpu.h"
#include "unwind.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched.h: task_struct.flags of a kernel thread (a #define, not in BTF) */
#define PF_KTHREAD 0x00200000

const volatile __u32 cfg_filter = FILTER_ALL;
const volatile bool cfg_kernel_stacks = true;
const volatile bool cfg_user_stacks = true;
const volatile bool cfg_follow_children = true;
/* FILTER_CGROUPS on a host without cgroup v2: the agent puts the processes of
 * targeted v1 cgroups in the pids map, and children are followed */
const volatile bool cfg_pids_fallback = false;
/* walk user stacks with unwind tables (falls back to frame pointers per frame) */
const volatile bool cfg_dwarf_unwind = true;
/* wake user space only once this much is queued; it also polls on a timer */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024;
/* set by the agent from what it probed: bpf_task_pt_regs() (5.15+) */
const volatile bool cfg_have_task_pt_regs = false;
/*
 * Tests only (PROFLEET_FAULT_INJECT=verifier): walk_native reads past a map
 * value, so that the verifier refuses it and the agent's fallback is exercised.
 * The verifier prunes the branch when the flag is off.
 */
const volatile bool cfg_fault_verifier = false;

/*
 * x86_64's THREAD_SIZE without KASAN (Debian's kernels have none): before 5.15
 * the user registers are at task->stack + THREAD_SIZE - sizeof(struct pt_regs)
 * (TOP_OF_KERNEL_STACK_PADDING is 0 on x86_64 until FRED, 6.9, which has the
 * helper). They are checked: user mode's cs.
 */
#define X86_THREAD_SIZE 16384
#define X86_USER_CS 0x33

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
	__uint(max_entries, PROFLEET_MAX_PIDS);
	__type(key, __u32);
	__type(value, struct target_cfg);
} pids SEC(".maps");

/* (pid, address) -> the unwind table of the mapping there */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__type(key, struct mapping_key);
	__type(value, struct mapping_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} exe_mappings SEC(".maps");

/*
 * The rows of every loaded table, back to back (one shared array: loading a
 * table is one batch update, with no map-in-map RCU wait). Sized by user space.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UNWIND_DEFAULT_ROWS);
	__uint(map_flags, BPF_F_MMAPABLE);	/* user space copies tables in place (5.5+) */
	__type(key, __u32);
	__type(value, struct unwind_row);
} unwind_rows SEC(".maps");

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

static __always_inline struct target_cfg *lookup_target(__u32 tgid)
{
	if (cfg_filter == FILTER_PIDS)
		return bpf_map_lookup_elem(&pids, &tgid);
	if (cfg_filter == FILTER_CGROUPS) {
		__u64 cg = bpf_get_current_cgroup_id();
		struct target_cfg *t = bpf_map_lookup_elem(&targets, &cg);

		if (!t && cfg_pids_fallback)
			t = bpf_map_lookup_elem(&pids, &tgid);
		return t;
	}
	return NULL;
}


/* ---- user stack walkers -------------------------------------------------- */

/*
 * The walk's state, per CPU, carried from one program of the chain to the
 * next (a tail call keeps only the context): the registers of the frame being
 * unwound and the sample being built. A perf event program never nests on a
 * CPU (the kernel skips it while another BPF program runs there), so one slot
 * per CPU is enough. The tracing programs below may be interrupted by a sample:
 * they must never touch this map.
 */
struct walk {
	__u64 pc, sp, bp;
	__u64 r13;		/* the interrupted r13: HotSpot's interpreter keeps its bcp there */
	__u64 r9, r12;		/* V8's interpreter: the bytecode offset, the bytecode array */
	__u32 pid;
	__u32 n;		/* frames in e.ustack */
	__u8 status;		/* enum stack_status, final once done is set */
	__u8 done;
	__u8 need_tables;
	__u8 signal_frame;	/* pc is an interrupted pc, not a return address */
	__u8 bp_valid;
	__u8 handed_back;	/* the walker of this pc's mapping has run: unwind it natively */
	__u8 next;		/* enum walker to tail-call when the native walker pauses */
	__u8 py_started;	/* the Python walker found the thread's frame chain */
	__u8 native_seen;	/* a native frame is in the sample: pc is a return address */
	__u8 v8;		/* the process runs a V8 the agent described (v8_procs) */
	__u8 pc_anon;		/* V8 walker: pc is in no mapping with a table (JIT code, not a builtin) */
	__u64 py_frame;		/* the next Python frame to put in the sample, 0 when none */
};

struct walk_state {
	struct walk w;
	struct sample_event e;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_state);
} state SEC(".maps");

/* enum walker -> program; filled by the agent */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, WALKER_MAX);
	__type(key, __u32);
	__type(value, __u32);
} walkers SEC(".maps");

static __always_inline struct walk_state *get_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&state, &zero);
}

/* offsets in the ucontext that rsp points at inside __restore_rt (x86_64) */
#define UC_MCONTEXT 40
#define UC_RBP (UC_MCONTEXT + 10 * 8)
#define UC_RSP (UC_MCONTEXT + 15 * 8)
#define UC_RIP (UC_MCONTEXT + 16 * 8)

/* What one step of a walker tells its loop. */
enum step {
	STEP_NEXT = 0,		/* one more frame */
	STEP_DONE = 1,		/* the walk is over: w->status says why */
	STEP_HANDOFF = 2,	/* w->next's walker takes this frame */
};

static __always_inline int stop(struct walk *w, __u8 status)
{
	w->status = status;
	w->done = 1;
	return STEP_DONE;
}

/* One frame with frame pointers: [rbp] = caller's rbp, [rbp+8] = return address. */
static __always_inline int fp_step(struct walk *w)
{
	__u64 frame[2];

	if (!w->bp_valid || w->bp == 0 || w->bp < w->sp)
		return stop(w, w->n > 1 ? STACK_OK : STACK_NO_MAPPING);
	if (bpf_probe_read_user(frame, sizeof(frame), (void *)w->bp)) {
		count(CNT_UNWIND_READ_FAULT);
		return stop(w, STACK_READ_FAULT);
	}
	count(CNT_UNWIND_FP_FALLBACK);
	w->sp = w->bp + 16;
	w->pc = frame[1];
	/* the stack grows down: a caller's frame is always higher */
	w->bp_valid = frame[0] > w->bp;
	w->bp = frame[0];
	if (w->pc == 0)
		return stop(w, STACK_OK);
	return STEP_NEXT;
}

static __always_inline const struct unwind_row *find_row(__u32 first, __u32 nrows, __u64 vaddr)
{
	__u32 lo = first, hi = first + nrows, mid;
	const struct unwind_row *r;

	/* the last row with row.pc <= vaddr */
	for (int i = 0; i < UNWIND_SEARCH_STEPS; i++) {
		if (lo >= hi)
			break;
		mid = lo + (hi - lo) / 2;
		r = bpf_map_lookup_elem(&unwind_rows, &mid);
		if (!r)
			return NULL;
		if (r->pc <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == first || lo > first + nrows)
		return NULL;
	mid = lo - 1;
	return bpf_map_lookup_elem(&unwind_rows, &mid);
}

/* The signal trampoline's frame: every register comes from the ucontext at rsp. */
static __always_inline int signal_step(struct walk *w)
{
	__u64 regs[3];

	/* rbp, then rsp and rip further on: two reads of the ucontext */
	if (bpf_probe_read_user(&regs[0], 8, (void *)(w->sp + UC_RBP)) ||
	    bpf_probe_read_user(&regs[1], 16, (void *)(w->sp + UC_RSP))) {
		count(CNT_UNWIND_READ_FAULT);
		return stop(w, STACK_READ_FAULT);
	}
	w->bp = regs[0];
	w->bp_valid = 1;
	w->sp = regs[1];
	w->pc = regs[2];
	w->signal_frame = 1;
	return w->pc ? STEP_NEXT : stop(w, STACK_OK);
}

/* Runs one table row: the caller's pc, sp and rbp. */
static __always_inline int row_step(struct walk *w, const struct unwind_row *row)
{
	__u64 cfa, ra;

	switch (row->cfa_type) {
	case CFA_SP:
		cfa = w->sp + (__s64)row->cfa_offset;
		break;
	case CFA_FP:
		if (!w->bp_valid)
			return stop(w, STACK_READ_FAULT);
		cfa = w->bp + (__s64)row->cfa_offset;
		break;
	case CFA_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (__u64)row->cfa_offset ? 8 : 0);
		break;
	case CFA_SIGNAL:
		return signal_step(w);
	case CFA_END:
		count(CNT_UNWIND_COMPLETE);
		return stop(w, STACK_OK);
	default:
		count(CNT_UNWIND_UNSUPPORTED);
		return fp_step(w);
	}

	if (cfa <= w->sp && row->cfa_type != CFA_FP)
		return stop(w, STACK_READ_FAULT);
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8))) {
		count(CNT_UNWIND_READ_FAULT);
		return stop(w, STACK_READ_FAULT);
	}
	if (row->rbp_type == RBP_AT_CFA) {
		__u64 bp;

		if (bpf_probe_read_user(&bp, sizeof(bp), (void *)(cfa + (__s64)row->rbp_offset))) {
			count(CNT_UNWIND_READ_FAULT);
			return stop(w, STACK_READ_FAULT);
		}
		w->bp = bp;
		w->bp_valid = 1;
	} else if (row->rbp_type != RBP_SAME) {
		w->bp_valid = 0;
	}
	w->sp = cfa;
	w->pc = ra;
	if (ra == 0) {
		count(CNT_UNWIND_COMPLETE);
		return stop(w, STACK_OK);
	}
	return STEP_NEXT;
}

/* One native frame: record pc, then find the caller's registers. */
static __always_inline int native_step(struct walk_state *st)
{
	struct walk *w = &st->w;
	__u32 n = w->n;
	struct mapping_key key;
	const struct mapping_info *mi;
	const struct unwind_row *row = NULL;
	__u64 look;

	if (n >= PROFLEET_MAX_STACK) {
		count(CNT_UNWIND_DEPTH);
		return stop(w, STACK_TRUNCATED);
	}
	/* a return address may point just past its call's function: look up the call
	 * (not the interrupted pc, which Python frames may come before) */
	look = (w->native_seen && !w->signal_frame) ? w->pc - 1 : w->pc;
	key.prefixlen = 32 + 64;
	key.pid_be = bpf_htonl(w->pid);
	key.addr_be = bpf_cpu_to_be64(look);
	mi = bpf_map_lookup_elem(&exe_mappings, &key);
	/* the dispatch point: another walker's code; it hands the frame back when done */
	if (mi && mi->walker != WALKER_NATIVE && mi->walker < WALKER_MAX && !w->handed_back) {
		w->next = mi->walker;
		return STEP_HANDOFF;
	}
	if (mi && mi->nrows)
		row = find_row(mi->first_row, mi->nrows, look - mi->bias);
	/*
	 * V8 keeps frame pointers in its frames, and its code has no unwind
	 * table: JIT code in anonymous memory (no mapping here), builtins embedded
	 * in the binary (a gap in its table). Its walker reads what they are.
	 */
	if (w->v8 && !w->handed_back &&
	    (!mi || (mi->walker == WALKER_NATIVE && mi->nrows &&
		     (!row || row->cfa_type == CFA_UNSUPPORTED)))) {
		w->pc_anon = !mi;
		w->next = WALKER_V8;
		return STEP_HANDOFF;
	}
	w->handed_back = 0;
	st->e.ustack[n] = w->pc;
	st->e.uaux[n] = 0;
	st->e.ukind[n] = WALKER_NATIVE;
	w->n = n + 1;
	w->signal_frame = 0;
	w->native_seen = 1;
	if (!mi) {
		w->need_tables = 1;
		count(CNT_UNWIND_NO_TABLE);
		return fp_step(w);
	}
	if (!mi->nrows) {	/* known mapping, table still loading (a walker's: none to load) */
		if (mi->walker == WALKER_NATIVE) {
			w->need_tables = 1;
			count(CNT_UNWIND_TABLE_NOT_LOADED);
		}
		return fp_step(w);
	}
	if (!row) {
		count(CNT_UNWIND_UNSUPPORTED);
		return fp_step(w);
	}
	return row_step(w, row);
}

/* Sends the finished sample to user space. */
static __always_inline void emit(struct sample_event *e)
{
	if (bpf_ringbuf_output(&samples, e, sizeof(*e),
			       bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ?
				       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP)) {
		count(CNT_RINGBUF_FULL);
		return;
	}
	count(CNT_SENT);
}

/* The user stack is complete (or given up on): fill in its summary and send it. */
static __always_inline void finish_user(struct walk_state *st)
{
	struct sample_event *e = &st->e;

	e->ustack_len = (__s16)st->w.n;
	e->ustack_status = st->w.status;
	if (st->w.need_tables)
		e->flags |= SAMPLE_F_NEED_TABLES;
	if (st->w.status == STACK_TRUNCATED)
		count(CNT_USTACK_TRUNCATED);
	emit(e);
}

/*
 * The native walker: NATIVE_FRAMES_PER_PROG frames, then a tail call to itself
 * (or to the walker a mapping names). Bounded work per program is what keeps
 * the verifier's effort small on every kernel; the kernel's limit of 33 tail
 * calls per sample bounds the walk (8 x 33 frames > PROFLEET_MAX_STACK).
 * A tail call that returns failed: the sample goes out with what it has.
 */
SEC("perf_event")
int walk_native(struct bpf_perf_event_data *ctx)
{
	struct walk_state *st = get_state();
	int r = STEP_NEXT;

	if (!st)
		return 0;
	if (cfg_fault_verifier)	/* tests only: out of the value's bounds */
		st->e.ustack[(st->w.n & 0xffff) + PROFLEET_MAX_STACK * 4] = 0;
	for (int i = 0; i < NATIVE_FRAMES_PER_PROG && r == STEP_NEXT; i++)
		r = native_step(st);
	if (r == STEP_HANDOFF) {
		bpf_tail_call(ctx, &walkers, st->w.next);
		/* no such walker loaded: this frame is unwound natively */
		count(CNT_WALKER_MISSING);
		st->w.handed_back = 1;
		r = STEP_NEXT;
	}
	if (r == STEP_NEXT) {
		bpf_tail_call(ctx, &walkers, WALKER_NATIVE);
		count(CNT_UNWIND_BUDGET);
		stop(&st->w, STACK_LOOP_BUDGET);
	}
	finish_user(st);
	return 0;
}

/* ---- the CPython walker ---------------------------------------------------- */

/* pid -> its CPython's layout; written by the agent */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

/* What one Python step tells its loop. */
enum py_step {
	PY_MORE = 0,		/* one more frame of this run */
	PY_RUN_END = 1,		/* this run of the loop is done: back to the native walker */
	PY_FULL = 2,		/* the sample is full */
};

/*
 * The sampled thread's own PyThreadState (not the GIL holder's): the value of
 * CPython's pthread key in glibc's first block of keys, found from fsbase. 0
 * for a thread that never ran Python.
 */
static __always_inline __u64 py_thread_state(const struct py_proc *pp)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase), ts = 0, self = 0;
	__s32 key = -1;

	if (bpf_probe_read_user(&key, sizeof(key), (void *)pp->tss_key_addr) || key < 0 || key >= 32)
		return 0;
	if (bpf_probe_read_user(&ts, sizeof(ts),
				(void *)(fsbase + pp->tls_specific + 16 * (__u64)key + 8)) || !ts)
		return 0;
	/* the thread's own: else another libc's layout (musl), or not a thread state */
	if (bpf_probe_read_user(&self, sizeof(self), (void *)(ts + pp->ts_thread_id)) ||
	    self != fsbase)
		return 0;
	return ts;
}

/* The thread's innermost Python frame, 0 when there is none. */
static __always_inline __u64 py_top_frame(const struct py_proc *pp)
{
	__u64 ts = py_thread_state(pp), p = 0;

	if (!ts || bpf_probe_read_user(&p, sizeof(p), (void *)(ts + pp->ts_frame)))
		return 0;
	if (pp->cframe_frame != PY_OFF_NONE &&
	    (!p || bpf_probe_read_user(&p, sizeof(p), (void *)(p + pp->cframe_frame))))
		return 0;
	return p;
}

/* The instruction a frame is at, in code units from its code's start. */
static __always_inline __u32 py_instr(const struct py_proc *pp, __u64 f, __u64 code)
{
	__u64 ip = 0, base = code + pp->co_code;
	__s32 lasti = -1;

	if (pp->instr == PY_INSTR_PTR) {
		if (bpf_probe_read_user(&ip, sizeof(ip), (void *)(f + pp->f_instr)) || ip < base ||
		    ip - base >= (1ull << 30))
			return PY_NO_INSTR;
		return (__u32)((ip - base) / 2);
	}
	if (bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(f + pp->f_instr)) || lasti < 0)
		return PY_NO_INSTR;
	return pp->instr == PY_INSTR_LASTI_BYTES ? (__u32)lasti / 2 : (__u32)lasti;
}

/* The Python frame at w->py_frame into the sample. */
static __always_inline int py_step(struct walk_state *st, const struct py_proc *pp)
{
	struct walk *w = &st->w;
	__u64 f = w->py_frame, code = 0, back = 0, type = 0;
	__u32 n = w->n;
	__u8 entry = 0;

	if (!f)
		return PY_RUN_END;
	if (n >= PROFLEET_MAX_STACK) {
		count(CNT_UNWIND_DEPTH);
		stop(w, STACK_TRUNCATED);
		return PY_FULL;
	}
	if (bpf_probe_read_user(&code, sizeof(code), (void *)(f + pp->f_code)) ||
	    bpf_probe_read_user(&back, sizeof(back), (void *)(f + pp->f_back)) ||
	    (pp->f_entry != PY_OFF_NONE &&
	     bpf_probe_read_user(&entry, sizeof(entry), (void *)(f + pp->f_entry)))) {
		count(CNT_PY_READ_FAULT);
		w->py_frame = 0;
		return PY_RUN_END;
	}
	w->py_frame = back;
	if (pp->entry == PY_ENTRY_SHIM && entry >= pp->entry_owner)
		return PY_RUN_END;	/* the loop's own frame: where this run began */
	code &= ~(__u64)pp->code_tag_mask;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)(code + 8)) || type != pp->code_type) {
		count(CNT_PY_BAD_CODE);
		w->py_frame = 0;	/* nothing after it can be trusted */
		return PY_RUN_END;
	}
	st->e.ustack[n] = code;
	st->e.uaux[n] = py_instr(pp, f, code);
	st->e.ukind[n] = WALKER_PYTHON;
	w->n = n + 1;
	count(CNT_PY_FRAMES);
	if (pp->entry == PY_ENTRY_ONE || (pp->entry == PY_ENTRY_FLAG && entry))
		return PY_RUN_END;
	return PY_MORE;
}

/* What a step of the Python walker's loop leaves to do next. */
enum py_go {
	GO_PYTHON = 0,		/* Python frames */
	GO_NATIVE = 1,		/* native frames */
	GO_DONE = 2,		/* the walk is over */
	GO_OTHER = 3,		/* a frame for another walker (w->next) */
};

/*
 * The Python walker, entered when the native walk reaches CPython's evaluation
 * loop: puts the Python frames that this call of the loop runs into the sample,
 * innermost first, then unwinds the loop's own native frame and its callers
 * itself, and so on for the next call of the loop: every call of the loop (one
 * per Python call before 3.11, one per call through C code after) would
 * otherwise cost two of the kernel's 33 tail calls.
 */
SEC("perf_event")
int walk_python(struct bpf_perf_event_data *ctx)
{
	struct walk_state *st = get_state();
	const struct py_proc *pp;
	int go = GO_PYTHON;

	if (!st)
		return 0;
	pp = bpf_map_lookup_elem(&py_procs, &st->w.pid);
	if (pp && !st->w.py_started) {
		st->w.py_started = 1;
		st->w.py_frame = py_top_frame(pp);
		if (!st->w.py_frame)
			count(CNT_PY_NO_THREAD);
	}
	for (int i = 0; i < NATIVE_FRAMES_PER_PROG && go <= GO_NATIVE; i++) {
		if (go == GO_PYTHON && !pp) {	/* a process the agent has not described */
			count(CNT_PY_NO_PROC);
			st->w.handed_back = 1;
			go = GO_NATIVE;
		}
		if (go == GO_PYTHON && pp) {
			int r = py_step(st, pp);

			if (r == PY_FULL) {
				go = GO_DONE;
			} else if (r == PY_RUN_END) {	/* the loop's own frame, natively */
				st->w.handed_back = 1;
				go = GO_NATIVE;
			}
		}
		if (go == GO_NATIVE) {	/* the loop's frame at once, in the same step */
			int r = native_step(st);

			if (r == STEP_DONE)
				go = GO_DONE;
			else if (r == STEP_HANDOFF)
				go = st->w.next == WALKER_PYTHON ? GO_PYTHON : GO_OTHER;
		}
	}
	if (go == GO_PYTHON) {
		bpf_tail_call(ctx, &walkers, WALKER_PYTHON);
	} else if (go == GO_NATIVE) {
		bpf_tail_call(ctx, &walkers, WALKER_NATIVE);
	} else if (go == GO_OTHER) {
		bpf_tail_call(ctx, &walkers, st->w.next);
		count(CNT_WALKER_MISSING);	/* not loaded: this frame natively */
		st->w.handed_back = 1;
		bpf_tail_call(ctx, &walkers, WALKER_NATIVE);
	}
	if (go != GO_DONE) {
		count(CNT_UNWIND_BUDGET);
		stop(&st->w, STACK_LOOP_BUDGET);
	}
	finish_user(st);
	return 0;
}

/* ---- the HotSpot walker ---------------------------------------------------- */

/* pid -> its JVM's code heaps and blob layout; written by the agent */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct jvm_proc);
} jvm_procs SEC(".maps");

/* JVM frames the walker takes per program before it tail-calls itself. */
#define JVM_FRAMES_PER_PROG 8
/* segment map hops back to a blob's first segment (a tag is at most 0xfe: 32 KiB
 * of 128-byte segments per hop); a longer blob is not walked */
#define JVM_SEGMAP_HOPS 16
#define JVM_MAX_FRAME_WORDS 8192

/* What a step of a walker of a runtime's code (the JVM's, V8's) tells its loop. */
enum code_step {
	CODE_MORE = 0,		/* the caller is the runtime's code too */
	CODE_NATIVE = 1,	/* the caller is native code (or unknown): the native walker's */
	CODE_END = 2,		/* the walk is over */
};

/*
 * The end of a program of such a walker (self): itself again, or the native
 * walker; nothing taken (the process not described, or the pc not its code
 * though the map said so) and the native walker keeps the frame, or the two
 * would hand it back and forth. A tail call that returns failed: the sample
 * goes out with what it has.
 */
static __always_inline void code_walker_next(struct bpf_perf_event_data *ctx,
					     struct walk_state *st, int r, __u32 n0, __u32 self)
{
	if (r == CODE_NATIVE && st->w.n == n0)
		st->w.handed_back = 1;
	if (r == CODE_MORE)
		bpf_tail_call(ctx, &walkers, self);
	else if (r == CODE_NATIVE)
		bpf_tail_call(ctx, &walkers, WALKER_NATIVE);
	if (r != CODE_END) {
		count(CNT_UNWIND_BUDGET);
		stop(&st->w, STACK_LOOP_BUDGET);
	}
	finish_user(st);
}

/* What a JVM step tells its loop. */
enum jvm_step {
	JVM_MORE = CODE_MORE,	/* the caller is in the code cache too */
	JVM_NATIVE = CODE_NATIVE,
	JVM_END = CODE_END,
};

/* The heap of the code cache that holds pc, or -1. */
static __always_inline int jvm_heap(const struct jvm_proc *jp, __u64 pc)
{
	for (int i = 0; i < JVM_MAX_HEAPS; i++)
		if (i < jp->nheaps && pc >= jp->lo[i] && pc < jp->hi[i])
			return i;
	return -1;
}

/* The blob that holds pc in heap h, from the segment map; 0 when none. */
static __always_inline __u64 jvm_blob(const struct jvm_proc *jp, int h, __u64 pc)
{
	__u64 lo, segmap, seg;
	__u8 shift, tag = 0xff;

	if (h < 0 || h >= JVM_MAX_HEAPS)
		return 0;
	lo = jp->lo[h];
	segmap = jp->segmap[h];
	shift = jp->shift[h] & 31;
	seg = (pc - lo) >> shift;
	for (int i = 0; i < JVM_SEGMAP_HOPS; i++) {
		if (bpf_probe_read_user(&tag, 1, (void *)(segmap + seg)) || tag == 0xff)
			return 0;
		if (tag == 0) {
			__u64 block = lo + (seg << shift);
			__u8 used = 1;

			/* a freed block keeps its tags: its header says it is not code */
			if (jp->hb_used != 0xff &&
			    (bpf_probe_read_user(&used, 1, (void *)(block + jp->hb_used)) || !used))
				return 0;
			return block + jp->heapblock;
		}
		if (tag > seg)
			return 0;
		seg -= tag;
	}
	return 0;
}

/* The code bounds of a blob: pointers, or offsets from it (23+). */
static __always_inline int jvm_code(const struct jvm_proc *jp, __u64 blob, __u64 *lo, __u64 *hi)
{
	if (jp->code_offsets) {
		__u32 b = 0, e = 0;

		if (bpf_probe_read_user(&b, 4, (void *)(blob + jp->cb_code_begin)) ||
		    bpf_probe_read_user(&e, 4, (void *)(blob + jp->cb_code_end)))
			return -1;
		*lo = blob + b;
		*hi = blob + e;
		return 0;
	}
	if (bpf_probe_read_user(lo, 8, (void *)(blob + jp->cb_code_begin)) ||
	    bpf_probe_read_user(hi, 8, (void *)(blob + jp->cb_code_end)))
		return -1;
	return 0;
}

static __always_inline int jvm_bad(struct walk *w)
{
	count(CNT_JVM_BAD_FRAME);
	stop(w, STACK_READ_FAULT);	/* a stack cut short, not a complete one */
	return JVM_END;
}

/* Whether pc can be a caller's: in the code cache, or in a mapping the walk knows. */
static __always_inline bool jvm_plausible(const struct jvm_proc *jp, __u32 pid, __u64 pc)
{
	struct mapping_key key = { .prefixlen = 32 + 64, .pid_be = bpf_htonl(pid),
				   .addr_be = bpf_cpu_to_be64(pc - 1) };

	return pc > 4096 && (jvm_heap(jp, pc) >= 0 || bpf_map_lookup_elem(&exe_mappings, &key));
}

/*
 * A compiled method interrupted in its prologue (before its frame is made, at
 * _frame_complete_offset) or at its epilogue's ret: the return address is at sp,
 * or after a saved rbp at sp + 8. Taken when it is a plausible caller; 1 when pc
 * is there, 0 when the frame is whole, -1 when neither place holds a caller.
 */
static __always_inline int jvm_pop_partial(struct walk *w, const struct jvm_proc *jp, __u64 blob,
					   __u64 lo)
{
	__s32 fc = 0;
	__u8 op = 0;
	__u64 top[2];

	if (bpf_probe_read_user(&fc, jp->frame_complete_size == 2 ? 2 : 4,
				(void *)(blob + jp->cb_frame_complete)))
		return -1;
	if (jp->frame_complete_size == 2)
		fc = (__s16)fc;
	bpf_probe_read_user(&op, 1, (void *)w->pc);
	if (!(fc > 0 && w->pc < lo + (__u64)fc) && op != 0xc3)
		return 0;
	if (bpf_probe_read_user(top, sizeof(top), (void *)w->sp))
		return -1;
	if (jvm_plausible(jp, w->pid, top[0])) {
		w->pc = top[0];
		w->sp += 8;
		return 1;
	}
	if (jvm_plausible(jp, w->pid, top[1])) {	/* after push rbp */
		w->bp = top[0];
		w->bp_valid = 1;
		w->pc = top[1];
		w->sp += 16;
		return 1;
	}
	return -1;
}

/* The next frame's registers: the caller of a frame of frame_size words at sp. */
static __always_inline int jvm_pop(struct walk *w, __s32 frame_size)
{
	__u64 top[2];

	if (frame_size <= 1 || frame_size > JVM_MAX_FRAME_WORDS)
		return -1;
	w->sp += (__u64)frame_size * 8;
	if (bpf_probe_read_user(top, sizeof(top), (void *)(w->sp - 16)))
		return -1;
	w->bp = top[0];	/* saved rbp, then the return address */
	w->bp_valid = 1;
	w->pc = top[1];
	return 0;
}

/* A frame with a frame pointer: the interpreter's, the call stub's. */
static __always_inline int jvm_pop_fp(struct walk *w, bool interpreted)
{
	__u64 top[2], sender = 0;

	if (!w->bp_valid || w->bp < w->sp || w->bp - w->sp > (1u << 20) ||
	    bpf_probe_read_user(top, sizeof(top), (void *)w->bp))
		return -1;
	if (interpreted &&
	    bpf_probe_read_user(&sender, 8, (void *)(w->bp + 8 * JVM_INTERP_SENDER_SP)))
		return -1;
	if (interpreted && (sender <= w->bp || sender - w->bp > (1u << 20)))
		sender = 0;	/* not a sender's sp: the frame's own end instead */
	w->sp = sender ? sender : w->bp + 16;
	w->bp_valid = top[0] > w->bp;
	w->bp = top[0];
	w->pc = top[1];
	return 0;
}

/* One frame in the code cache into the sample, then its caller's registers. */
static __always_inline int jvm_step(struct walk_state *st, const struct jvm_proc *jp)
{
	struct walk *w = &st->w;
	__u64 pc = w->pc, blob, name = 0, lo = 0, hi = 0, value = pc;
	__u32 n = w->n, kind, aux;
	__s32 frame_size = 0, compile_id = 0;
	char tag[4] = {};
	bool first = !w->native_seen || w->signal_frame;	/* pc was interrupted, not called */
	int h = jvm_heap(jp, pc), partial = 0;

	if (h < 0)
		return JVM_NATIVE;
	if (n >= PROFLEET_MAX_STACK) {
		count(CNT_UNWIND_DEPTH);
		stop(w, STACK_TRUNCATED);
		return JVM_END;
	}
	blob = jvm_blob(jp, h, pc);
	if (!blob) {
		count(CNT_JVM_NO_BLOB);
		stop(w, STACK_READ_FAULT);
		return JVM_END;
	}
	if (bpf_probe_read_user(&name, 8, (void *)(blob + jp->cb_name)) ||
	    bpf_probe_read_user(tag, sizeof(tag), (void *)name) || jvm_code(jp, blob, &lo, &hi) ||
	    bpf_probe_read_user(&frame_size, 4, (void *)(blob + jp->cb_frame_size)) ||
	    pc < lo || pc > hi)
		return jvm_bad(w);
	if (tag[0] == 'n' && (tag[1] == 'm' || tag[1] == 'a')) {	/* "nmethod", "native nmethod" */
		kind = JVM_COMPILED;
		if (bpf_probe_read_user(&compile_id, 4, (void *)(blob + jp->nm_compile_id)))
			return jvm_bad(w);
		aux = (__u32)compile_id & JVM_VALUE_MASK;
	} else if (tag[0] == 'I' && tag[1] == 'n' && tag[2] == 't') {	/* "Interpreter" */
		__u64 bcp = 0;

		kind = JVM_INTERPRETED;
		if (!w->bp_valid ||
		    bpf_probe_read_user(&value, 8, (void *)(w->bp + 8 * JVM_INTERP_METHOD)) || !value)
			return jvm_bad(w);
		/* the frame's bcp is saved at calls; the interrupted frame's current one
		 * is in r13, when that is near the saved one (the same method's bytecodes);
		 * not after a signal frame, whose r13 the walk does not restore */
		bpf_probe_read_user(&bcp, 8, (void *)(w->bp + 8 * JVM_INTERP_BCP));
		if (!w->native_seen && bcp && w->r13 - bcp + 65536 < 2 * 65536)
			bcp = w->r13;
		aux = (__u32)bcp & JVM_VALUE_MASK;
	} else {
		kind = JVM_STUB;
		aux = 0;
	}
	/* checked again next to the stores: 5.10's verifier loses n's bound across
	 * the reads above */
	n = w->n;
	if (n >= PROFLEET_MAX_STACK)
		return jvm_bad(w);
	st->e.ustack[n] = value;
	st->e.uaux[n] = kind << JVM_KIND_SHIFT | aux;
	st->e.ukind[n] = WALKER_JVM;
	w->n = n + 1;
	w->signal_frame = 0;
	w->native_seen = 1;	/* from here on pc is a return address */
	count(CNT_JVM_FRAMES);
	/* a compiled frame caught while it makes or unmakes itself */
	if (first && kind == JVM_COMPILED && (partial = jvm_pop_partial(w, jp, blob, lo)) < 0)
		return jvm_bad(w);
	/* interpreted frames and stubs without a size keep rbp; compiled ones do not */
	if (partial) {
		/* unwound above */
	} else if (kind == JVM_INTERPRETED || (kind == JVM_STUB && frame_size == 0)) {
		if (jvm_pop_fp(w, kind == JVM_INTERPRETED))
			return jvm_bad(w);
	} else if (jvm_pop(w, frame_size)) {
		return jvm_bad(w);
	}
	if (w->pc == 0) {
		stop(w, STACK_OK);
		return JVM_END;
	}
	if (!jvm_plausible(jp, w->pid, w->pc))
		return jvm_bad(w);	/* not a caller: the frame's size or rbp was not what we took */
	return jvm_heap(jp, w->pc) >= 0 ? JVM_MORE : JVM_NATIVE;
}

/*
 * The HotSpot walker, entered when the native walk reaches the code cache of a
 * JVM the agent described: compiled frames by their blob's frame size (they keep
 * no frame pointer), interpreted frames and the call stub by rbp, up to
 * JVM_FRAMES_PER_PROG, then itself again or back to the native walker.
 */
SEC("perf_event")
int walk_jvm(struct bpf_perf_event_data *ctx)
{
	struct walk_state *st = get_state();
	const struct jvm_proc *jp;
	int r = JVM_MORE;
	__u32 n0;

	if (!st)
		return 0;
	n0 = st->w.n;
	jp = bpf_map_lookup_elem(&jvm_procs, &st->w.pid);
	if (!jp) {	/* a process the agent has not described (yet) */
		count(CNT_JVM_NO_PROC);
		r = JVM_NATIVE;
	}
	for (int i = 0; jp && i < JVM_FRAMES_PER_PROG && r == JVM_MORE; i++)
		r = jvm_step(st, jp);
	code_walker_next(ctx, st, r, n0, WALKER_JVM);
	return 0;
}

/* ---- the V8 walker ---------------------------------------------------------- */

/* pid -> its V8's frame and object layout; written by the agent */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct v8_proc);
} v8_procs SEC(".maps");

/* V8 frames the walker takes per program before it tail-calls itself. */
#define V8_FRAMES_PER_PROG 8
/* a frame larger than this is not taken for one */
#define V8_MAX_FRAME (1u << 20)

/* What a V8 step tells its loop. */
enum v8_step {
	V8_MORE = CODE_MORE,	/* the caller is V8 code too */
	V8_NATIVE = CODE_NATIVE,
	V8_END = CODE_END,
};

/* A tagged pointer to a heap object (tag 01 on x86_64). */
static __always_inline bool v8_heap_object(__u64 v)
{
	return (v & 3) == 1 && v > 4096;
}

/* The instance type of the heap object at tagged address obj; 0 when unreadable. */
static __always_inline __u16 v8_type(const struct v8_proc *vp, __u64 obj)
{
	__u64 map = 0;
	__u16 type = 0;

	if (!v8_heap_object(obj) ||
	    bpf_probe_read_user(&map, 8, (void *)(obj - 1 + vp->map)) || !v8_heap_object(map) ||
	    bpf_probe_read_user(&type, 2, (void *)(map - 1 + vp->map_instance_type)))
		return 0;
	return type;
}

/*
 * The frame at rbp: a typed frame (its marker, an even word: the type << 1),
 * or a JavaScript frame, whose function's SharedFunctionInfo names it; an
 * interpreted one also has its BytecodeArray and its bytecode offset (a Smi).
 * Sets *value and returns the V8_* kind, 0 when the frame is not V8's.
 */
static __always_inline __u32 v8_frame(const struct v8_proc *vp, struct walk *w, __u64 *value,
				      __u32 *aux)
{
	__u64 marker = 0, fn = 0, sfi = 0, bytecode = 0, offset = 0;
	__u16 type;

	if (bpf_probe_read_user(&marker, 8, (void *)(w->bp + vp->fp_marker)))
		return 0;
	if (!(marker & 1)) {	/* a frame type marker; a Smi-tagged small number */
		if (marker >= 128)
			return 0;
		*value = w->pc;
		*aux = (__u32)(marker >> 1);
		return V8_STUB;
	}
	if (bpf_probe_read_user(&fn, 8, (void *)(w->bp + vp->fp_function)))
		return 0;
	type = v8_type(vp, fn);
	if (type < vp->first_fn_type || type > vp->last_fn_type || !type ||
	    bpf_probe_read_user(&sfi, 8, (void *)(fn - 1 + vp->fn_shared)) ||
	    v8_type(vp, sfi) != vp->sfi_type)
		return 0;
	*value = sfi;
	/* the code's pc, for its positions: a return address's call, not what follows */
	*aux = ((__u32)(w->native_seen && !w->signal_frame ? w->pc - 1 : w->pc) & V8_PC_MASK) |
	       (w->pc_anon ? V8_PC_JIT : 0);
	/* interpreted: the BytecodeArray slot holds one, the offset slot a Smi (a
	 * baseline frame keeps its feedback vector there), and the pc is the
	 * interpreter's, a builtin (code optimized on stack, OSR, keeps the
	 * interpreter's frame: its pc is in JIT code) */
	if (w->pc_anon ||
	    bpf_probe_read_user(&bytecode, 8, (void *)(w->bp + vp->fp_bytecode_array)) ||
	    v8_type(vp, bytecode) != vp->bytecode_array_type ||
	    bpf_probe_read_user(&offset, 8, (void *)(w->bp + vp->fp_bytecode_offset)) ||
	    (offset & 1))
		return V8_COMPILED;
	offset >>= vp->smi_shift & 63;
	/* the interrupted frame's current offset is in the interpreter's register (the
	 * slot is written at calls), when its array register holds this frame's array
	 * (same encoding: the offset plus the array's header, less the tag) */
	if (vp->leaf_regs && !w->native_seen && w->r12 == bytecode && w->r9 < (1u << 20))
		offset = w->r9;
	*aux = (__u32)offset & V8_VALUE_MASK;
	return V8_INTERPRETED;
}

/* One V8 frame into the sample (or a native one where it is not V8's), then its caller's. */
static __always_inline int v8_step(struct walk_state *st, const struct v8_proc *vp)
{
	struct walk *w = &st->w;
	__u64 value = 0, frame[2];
	__u32 n = w->n, kind, aux = 0;
	struct mapping_key key;
	const struct mapping_info *mi;
	const struct unwind_row *row = NULL;

	if (n >= PROFLEET_MAX_STACK) {
		count(CNT_UNWIND_DEPTH);
		stop(w, STACK_TRUNCATED);
		return V8_END;
	}
	if (!w->bp_valid || w->bp < w->sp || w->bp - w->sp > V8_MAX_FRAME ||
	    bpf_probe_read_user(frame, sizeof(frame), (void *)w->bp))
		return V8_NATIVE;	/* no frame here: the native walker ends or goes on */
	kind = v8_frame(vp, w, &value, &aux);
	n = w->n;	/* bounds again, next to the stores */
	if (n >= PROFLEET_MAX_STACK)
		return V8_END;
	if (kind) {
		st->e.ustack[n] = value;
		st->e.uaux[n] = kind << V8_KIND_SHIFT | (aux & V8_VALUE_MASK);
		st->e.ukind[n] = WALKER_V8;
		count(kind == V8_STUB ? CNT_V8_STUBS : CNT_V8_FRAMES);
	} else {	/* code without a table whose frame is not V8's: its pc, natively */
		st->e.ustack[n] = w->pc;
		st->e.uaux[n] = 0;
		st->e.ukind[n] = WALKER_NATIVE;
		count(CNT_V8_BAD_FRAME);
		if (w->pc_anon)	/* or a library mapped since the tables were made */
			w->need_tables = 1;
	}
	w->n = n + 1;
	w->signal_frame = 0;
	w->native_seen = 1;
	/* the caller, by the frame pointer */
	w->sp = w->bp + 16;
	w->pc = frame[1];
	w->bp_valid = frame[0] > w->bp;
	w->bp = frame[0];
	if (w->pc == 0) {
		stop(w, STACK_OK);
		return V8_END;
	}
	/* V8 code again (no table there, or a gap of one), or the native walker's */
	key.prefixlen = 32 + 64;
	key.pid_be = bpf_htonl(w->pid);
	key.addr_be = bpf_cpu_to_be64(w->pc - 1);
	mi = bpf_map_lookup_elem(&exe_mappings, &key);
	w->pc_anon = !mi;
	if (!mi)
		return V8_MORE;
	if (mi->walker != WALKER_NATIVE || !mi->nrows)
		return V8_NATIVE;
	row = find_row(mi->first_row, mi->nrows, w->pc - 1 - mi->bias);
	return !row || row->cfa_type == CFA_UNSUPPORTED ? V8_MORE : V8_NATIVE;
}

/*
 * The V8 walker, entered when the native walk of a process running V8 reaches
 * code without an unwind table: every frame there has a frame pointer; it
 * takes them up to V8_FRAMES_PER_PROG, then itself again or back to the native
 * walker.
 */
SEC("perf_event")
int walk_v8(struct bpf_perf_event_data *ctx)
{
	struct walk_state *st = get_state();
	const struct v8_proc *vp;
	int r = V8_MORE;
	__u32 n0;

	if (!st)
		return 0;
	n0 = st->w.n;
	vp = bpf_map_lookup_elem(&v8_procs, &st->w.pid);
	if (!vp)	/* gone since the walk began */
		r = V8_NATIVE;
	for (int i = 0; vp && i < V8_FRAMES_PER_PROG && r == V8_MORE; i++)
		r = v8_step(st, vp);
	code_walker_next(ctx, st, r, n0, WALKER_V8);
	return 0;
}

/*
 * The registers of the interrupted task's user mode: the perf event's own when
 * it interrupted user mode; else the ones saved on entry to the kernel, at the
 * top of the task's kernel stack (bpf_task_pt_regs from 5.15; before that,
 * found at task->stack + THREAD_SIZE, x86_64's task_pt_regs()).
 */
static __always_inline bool user_regs(struct bpf_perf_event_data *ctx, struct task_struct *task,
				      struct walk *w)
{
	/* cs is a 2-byte field in newer pt_regs, but the context only allows 8-byte reads */
	__u64 cs = *(volatile __u64 *)((char *)&ctx->regs + __builtin_offsetof(struct pt_regs, cs));
	struct pt_regs *regs;

	if ((cs & 3) == 3) {	/* interrupted in user mode */
		w->pc = ctx->regs.ip;
		w->sp = ctx->regs.sp;
		w->bp = ctx->regs.bp;
		w->r13 = ctx->regs.r13;
		w->r9 = ctx->regs.r9;
		w->r12 = ctx->regs.r12;
		return true;
	}
	if (cfg_have_task_pt_regs) {
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	} else {
		regs = (struct pt_regs *)((char *)BPF_CORE_READ(task, stack) + X86_THREAD_SIZE) - 1;
		if ((BPF_CORE_READ(regs, cs) & 0xffff) != X86_USER_CS) {
			count(CNT_USER_REGS_UNKNOWN);
			return false;
		}
	}
	w->pc = BPF_CORE_READ(regs, ip);
	w->sp = BPF_CORE_READ(regs, sp);
	w->bp = BPF_CORE_READ(regs, bp);
	w->r13 = BPF_CORE_READ(regs, r13);
	w->r9 = BPF_CORE_READ(regs, r9);
	w->r12 = BPF_CORE_READ(regs, r12);
	return true;
}

/* Starts the chain of walkers on the current task's user stack. */
static __always_inline void walk_user(struct bpf_perf_event_data *ctx, struct task_struct *task,
				      struct walk_state *st)
{
	struct sample_event *e = &st->e;

	st->w = (struct walk){ .pid = e->pid, .bp_valid = 1, .status = STACK_OK };
	st->w.v8 = bpf_map_lookup_elem(&v8_procs, &st->w.pid) != NULL;
	e->flags |= SAMPLE_F_USER_DWARF;
	if (!user_regs(ctx, task, &st->w) || st->w.pc == 0) {
		e->ustack_len = 0;
		e->ustack_status = STACK_EMPTY;
		count(CNT_USTACK_EMPTY);
		emit(e);
		return;
	}
	bpf_tail_call(ctx, &walkers, WALKER_NATIVE);
	count(CNT_TAIL_CALL_FAILED);
	stop(&st->w, STACK_CHAIN_FAILED);
	finish_user(st);
}

/* How a stack from bpf_get_stack() ended, from its length. */
static __always_inline __u8 len_status(__s16 len)
{
	return len >= PROFLEET_MAX_STACK ? STACK_TRUNCATED : len ? STACK_OK : STACK_EMPTY;
}

/* The user stack from frame pointers alone (--unwinder fp). */
static __always_inline void fp_user(struct bpf_perf_event_data *ctx, struct sample_event *e)
{
	long n = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);

	e->flags |= SAMPLE_F_USER_FP;
	if (n < 0) {
		e->ustack_status = STACK_ERR_FAULT;
		count(CNT_USTACK_FAULT);
		return;
	}
	e->ustack_len = n / sizeof(__u64);
	e->ustack_status = len_status(e->ustack_len);
	if (e->ustack_status == STACK_TRUNCATED)
		count(CNT_USTACK_TRUNCATED);
	else if (!e->ustack_len)
		count(CNT_USTACK_EMPTY);
}

static __always_inline void kernel_stack(struct bpf_perf_event_data *ctx, struct sample_event *e)
{
	long n;

	e->kstack_len = 0;
	e->kstack_status = STACK_EMPTY;
	if (!cfg_kernel_stacks)
		return;
	/* A sample taken in user mode has an empty kernel callchain. */
	n = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), 0);
	if (n < 0) {
		e->kstack_status = STACK_ERR_FAULT;
		count(CNT_KSTACK_FAULT);
		return;
	}
	e->kstack_len = n / sizeof(__u64);
	e->kstack_status = len_status(e->kstack_len);
	if (e->kstack_status == STACK_TRUNCATED)
		count(CNT_KSTACK_TRUNCATED);
	if (e->kstack_len)
		e->flags |= SAMPLE_F_KERNEL_MODE;
}

/*
 * Whether this sample is wanted; the target's policy bits in *bits and the
 * base-rate periods the sample stands for in *weight. Each target keeps one
 * sample in sample_every by its own phase, so targets sharing a CPU do not
 * steal each other's turns.
 */
static __always_inline bool wanted(__u32 tgid, __u32 *bits, __u32 *weight)
{
	struct target_cfg *tgt;
	__u32 every, ph;

	*bits = 0;
	*weight = 1;
	if (cfg_filter == FILTER_ALL)
		return true;
	tgt = lookup_target(tgid);
	if (!tgt) {
		count(CNT_FILTERED);
		return false;
	}
	*bits = tgt->policy_bits;
	every = tgt->sample_every;
	if (every > 1) {
		ph = tgt->phase;
		tgt->phase = ph + 1 < every ? ph + 1 : 0;
		if (ph) {
			count(CNT_SUBSAMPLED);
			return false;
		}
		*weight = every;
	}
	return true;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, bits, weight;
	struct task_struct *task;
	struct walk_state *st;
	struct sample_event *e;
	bool user;

	count(CNT_SAMPLES);
	if (tid == 0) {
		count(CNT_IDLE);
		return 0;
	}
	if (!wanted(tgid, &bits, &weight))
		return 0;
	st = get_state();
	if (!st)
		return 0;
	e = &st->e;
	e->pid = tgid;
	e->tid = tid;
	e->time_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	e->policy_bits = bits;
	e->weight = weight;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, group_leader, comm);

	kernel_stack(ctx, e);
	e->ustack_len = 0;
	e->ustack_status = STACK_EMPTY;
	user = cfg_user_stacks && !(BPF_CORE_READ(task, flags) & PF_KTHREAD);
	if (user && cfg_dwarf_unwind) {
		walk_user(ctx, task, st);	/* sends the sample at the end of the chain */
		return 0;
	}
	if (user)
		fp_user(ctx, e);
	emit(e);
	return 0;
}

/* A new process whose parent is targeted is targeted too (--pid, -- COMMAND). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct target_cfg *cfg;

	if (!(cfg_filter == FILTER_PIDS || cfg_pids_fallback) || !cfg_follow_children ||
	    ptgid == ctgid)
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

/*
 * cgroup filter: a process of a targeted cgroup that execs is noted here, so
 * that user space, reading the exec record, loads its tables as its image is
 * mapped rather than at its first sample (the cgroup id is the kernel's, right
 * whatever cgroup namespace the agent runs in). User space takes entries out,
 * also after the process exited (a short one is often gone by then); the LRU
 * drops what it never took, and an untargeted exec of a pid used again clears
 * what an earlier process left.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} exec_targeted SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 cg = bpf_get_current_cgroup_id();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 one = 1;

	if (cfg_filter != FILTER_CGROUPS)
		return 0;
	if (bpf_map_lookup_elem(&targets, &cg))
		bpf_map_update_elem(&exec_targeted, &tgid, &one, BPF_ANY);
	else
		bpf_map_delete_elem(&exec_targeted, &tgid);
	return 0;
}

/* Keeps the pids map from filling up with processes that are gone. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, pid) != tgid)
		return 0;
	if (cfg_filter == FILTER_PIDS || cfg_pids_fallback)
		bpf_map_delete_elem(&pids, &tgid);
	return 0;
}
