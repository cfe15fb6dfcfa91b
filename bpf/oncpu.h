/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Records and maps shared between bpf/oncpu.bpf.c and the agent.
 * Fixed-width types only, explicit padding, no pointers.
 */
#ifndef BPF_ONCPU_H
#define BPF_ONCPU_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PROFLEET_MAX_STACK 127
#define PROFLEET_COMM_LEN 16

/* How the BPF program decides whether a sample is wanted. */
enum filter_mode {
	FILTER_ALL = 0,		/* every task but the idle task */
	FILTER_PIDS = 1,	/* tgid must be in the pids map */
	FILTER_CGROUPS = 2,	/* cgroup id must be in the targets map */
};

/* Why a stack is short or missing; one counter each (see enum counter). */
enum stack_status {
	STACK_OK = 0,
	STACK_ERR_FAULT = 1,	/* bpf_get_stack() failed */
	STACK_EMPTY = 2,	/* no frames at all */
	STACK_TRUNCATED = 3,	/* hit PROFLEET_MAX_STACK */
	STACK_NO_MAPPING = 4,	/* a pc outside any known mapping, and no frame pointer to go on */
	STACK_READ_FAULT = 5,	/* reading the stack faulted (page not present, bad rule) */
	STACK_LOOP_BUDGET = 6,	/* the walk ran out of tail calls (the kernel allows 33) */
	STACK_CHAIN_FAILED = 7,	/* the native walker could not be entered (tail call failed) */
};

/*
 * The user-stack walkers, one BPF program each, chained by tail calls through
 * the walkers PROG_ARRAY at these indexes. A walker also names the kind of each
 * frame it puts in a sample (sample_event.ukind). The native walker hands a
 * frame over when its mapping names another walker (mapping_info.walker) and
 * takes the walk back when that walker is done (walk_state.w.handed_back in
 * bpf/oncpu.bpf.c).
 */
enum walker {
	WALKER_NATIVE = 0,	/* .eh_frame tables, frame pointers where there are none */
	WALKER_PYTHON = 1,	/* CPython: ustack = code object, uaux = instruction (code units) */
	WALKER_JVM = 2,		/* HotSpot: ustack = pc or Method*, uaux = JVM_* kind | value */
	WALKER_V8 = 3,		/* V8 (Node.js): ustack = SharedFunctionInfo or pc, uaux = V8_* kind | value */
	/* 4..WALKER_MAX-1: more interpreters plug in here */
	WALKER_MAX = 8,
};

/* uaux of a Python frame whose instruction is not known (the code's first line is used) */
#define PY_NO_INSTR 0xffffffffu

/* How the Python walker knows where one run of the evaluation loop's frames ends. */
enum py_entry {
	PY_ENTRY_ONE = 0,	/* 3.8-3.10: one frame object per call of the loop */
	PY_ENTRY_FLAG = 1,	/* 3.11: the run's first frame has is_entry set */
	PY_ENTRY_SHIM = 2,	/* 3.12+: a frame of owner >= entry_owner starts the run (skipped) */
};

/* What a frame's position field holds. */
enum py_instr {
	PY_INSTR_PTR = 0,	/* 3.11+: a pointer into the code's instructions */
	PY_INSTR_LASTI_BYTES = 1,	/* 3.8/3.9: int f_lasti, a byte offset */
	PY_INSTR_LASTI_UNITS = 2,	/* 3.10: int f_lasti, in code units */
};

#define PY_OFF_NONE 0xffff

/*
 * One process's CPython (pid -> py_proc, written by the agent from the ELF it
 * runs): where the sampled thread's own PyThreadState is (glibc's pthread
 * key slot of CPython's thread-state key, fsbase + tls_specific + 16 * key + 8),
 * and the layout of its frames, per version.
 */
struct py_proc {
	__u64 tss_key_addr;	/* the pthread_key_t (int) of CPython's thread-state key */
	__u64 code_type;	/* &PyCode_Type: a frame's code object must be one */
	__u32 tls_specific;	/* glibc: struct pthread's specific_1stblock, from fsbase */
	__u16 ts_frame;		/* PyThreadState: frame (3.8-3.10), cframe (3.11/3.12), current_frame */
	__u16 cframe_frame;	/* _PyCFrame.current_frame, PY_OFF_NONE when ts_frame is the frame */
	__u16 f_code;		/* frame: f_code / f_executable */
	__u16 f_back;		/* frame: f_back / previous */
	__u16 f_instr;		/* frame: f_lasti / prev_instr / instr_ptr */
	__u16 f_entry;		/* frame: is_entry (3.11) or owner (3.12+), PY_OFF_NONE */
	__u16 co_code;		/* code object: co_code_adaptive (3.11+) */
	__u8 entry;		/* enum py_entry */
	__u8 instr;		/* enum py_instr */
	__u8 entry_owner;	/* PY_ENTRY_SHIM: owner values >= this are the loop's own frames */
	__u8 code_tag_mask;	/* f_executable's low bits that are tags (3.14: a _PyStackRef) */
	__u16 ts_thread_id;	/* PyThreadState.thread_id: pthread_self(), which is fsbase */
};

/*
 * uaux of a JVM frame: its kind in the top two bits, and below them
 * JVM_COMPILED: the nmethod's compile id (ustack: the pc, a raw return address);
 * JVM_INTERPRETED: the low 30 bits of its bytecode pointer, 0 when unknown (ustack:
 *   the Method*; a method's bytecodes are under 64 KiB, so the rest of the pointer
 *   is the method's, read in user space);
 * JVM_STUB: nothing (ustack: the pc).
 */
#define JVM_KIND_SHIFT 30
#define JVM_COMPILED 1u
#define JVM_INTERPRETED 2u
#define JVM_STUB 3u
#define JVM_VALUE_MASK ((1u << JVM_KIND_SHIFT) - 1)

#define JVM_MAX_HEAPS 4
/* interpreter frame slots from rbp, in words (x86_64, JDK 9 to 25: frame_x86.hpp) */
#define JVM_INTERP_SENDER_SP (-1)
#define JVM_INTERP_METHOD (-3)
#define JVM_INTERP_BCP (-8)

/*
 * One process's HotSpot JVM (pid -> jvm_proc, written by the agent from the VM's
 * exported tables): its code heaps and what the walker reads of a code blob.
 */
struct jvm_proc {
	__u64 lo[JVM_MAX_HEAPS];	/* a heap's reserved [lo, hi) */
	__u64 hi[JVM_MAX_HEAPS];
	__u64 segmap[JVM_MAX_HEAPS];	/* one byte per segment */
	__u8 shift[JVM_MAX_HEAPS];	/* log2 of the segment size */
	__u8 nheaps;
	__u8 code_offsets;	/* CodeBlob's code bounds are int offsets (23+), not pointers */
	__u16 heapblock;	/* sizeof(HeapBlock): a blob starts after its header */
	__u16 cb_name;		/* CodeBlob::_name, a const char * */
	__u16 cb_code_begin;	/* CodeBlob::_code_begin (or _code_offset) */
	__u16 cb_code_end;	/* CodeBlob::_code_end (or _data_offset) */
	__u16 cb_frame_size;	/* CodeBlob::_frame_size, an int, in words */
	__u16 nm_compile_id;	/* nmethod::_compile_id */
	__u16 cb_frame_complete;	/* CodeBlob::_frame_complete_offset: the prologue's end */
	__u8 frame_complete_size;	/* its width: 4 (an int), 2 (int16_t, 25+) */
	__u8 hb_used;		/* HeapBlock::Header::_used from the block, 0xff: not exported */
	__u16 pad;
};

/*
 * uaux of a V8 frame: its kind in the top two bits, and below them
 * V8_INTERPRETED: the frame's bytecode offset slot, a Smi's value (the offset
 *   plus BytecodeArray's header, less the heap object tag), 0 when unknown;
 * V8_COMPILED: V8_PC_JIT when the frame's pc is in JIT code (no mapping with
 *   a table: baseline, Maglev or TurboFan code; else a builtin), and the low 29
 *   bits of the pc, less one for a return address (the call, not what follows
 *   it); V8's code range is at most 512 MiB, so user space finds the whole pc
 *   from the process's mappings;
 *   for both, ustack is the function's SharedFunctionInfo (a tagged pointer);
 * V8_STUB: the frame type of a typed frame (entry, exit, stub: StackFrame::Type),
 *   ustack: the pc.
 */
#define V8_KIND_SHIFT 30
#define V8_INTERPRETED 1u
#define V8_COMPILED 2u
#define V8_STUB 3u
#define V8_VALUE_MASK ((1u << V8_KIND_SHIFT) - 1)
#define V8_PC_JIT (1u << 29)
#define V8_PC_MASK (V8_PC_JIT - 1)

/*
 * One process's V8 (pid -> v8_proc, written by the agent from the v8dbg_*
 * constants of the binary that holds V8): what the walker reads of a frame and
 * of the heap objects it names. Offsets of frame slots are from rbp.
 */
struct v8_proc {
	__s16 fp_marker;	/* v8dbg_off_fp_context_or_frame_type: a context, or a type marker */
	__s16 fp_function;	/* v8dbg_off_fp_function: the JSFunction */
	__s16 fp_bytecode_array;	/* v8dbg_off_fp_bytecode_array */
	__s16 fp_bytecode_offset;	/* v8dbg_off_fp_bytecode_offset: a Smi */
	__u16 map;		/* HeapObject::map */
	__u16 map_instance_type;	/* Map::instance_type, a u16 */
	__u16 fn_shared;	/* JSFunction::shared */
	__u16 first_fn_type;	/* the JSFunction instance types, inclusive (a superset will do: */
	__u16 last_fn_type;	/*   the shared field must hold a SharedFunctionInfo too) */
	__u16 bytecode_array_type;	/* BYTECODE_ARRAY_TYPE */
	__u8 smi_shift;		/* a Smi's value is the word >> smi_shift (32 without pointer compression) */
	__u8 leaf_regs;		/* the interpreter keeps its bytecode offset in r9, its array in r12 */
	__u16 sfi_type;		/* SHARED_FUNCTION_INFO_TYPE: what a function's shared field holds */
};

/* Frames the native walker takes per program before it tail-calls itself. */
#define NATIVE_FRAMES_PER_PROG 8

/* sample_event.flags */
#define SAMPLE_F_KERNEL_MODE (1u << 0)	/* interrupted in kernel mode */
#define SAMPLE_F_USER_FP (1u << 1)	/* user stack from frame pointers only (bpf_get_stack) */
#define SAMPLE_F_USER_DWARF (1u << 2)	/* user stack walked with unwind tables */
#define SAMPLE_F_NEED_TABLES (1u << 3)	/* some frame had no table loaded: user space should load it */

/*
 * One sample, as sent through the ring buffer. The user stack slot is filled by
 * whichever unwinder ran (frame pointers alone, or the chain of walkers) and says
 * which in flags; ustack_status tells why it stopped. Frame i of the user stack
 * is ustack[i], made by walker ukind[i], with uaux[i] for that walker's use
 * (an interpreter's instruction offset, say); native frames have 0 there.
 */
struct sample_event {
	__u32 pid;		/* tgid */
	__u32 tid;
	__u64 time_ns;		/* bpf_ktime_get_ns() */
	__u64 cgroup_id;
	__u32 cpu;
	__u32 flags;
	__u32 policy_bits;	/* from the targets map, 0 in standalone mode */
	__s16 kstack_len;	/* frames in kstack */
	__s16 ustack_len;	/* frames in ustack */
	__u8 kstack_status;	/* enum stack_status */
	__u8 ustack_status;
	__u8 pad[2];
	__u32 weight;		/* base-rate periods this sample stands for (its target's sample_every) */
	char comm[PROFLEET_COMM_LEN];	/* thread name */
	char pcomm[PROFLEET_COMM_LEN];	/* process (group leader) name */
	__u64 kstack[PROFLEET_MAX_STACK];
	__u64 ustack[PROFLEET_MAX_STACK];
	__u32 uaux[PROFLEET_MAX_STACK + 1];
	__u8 ukind[PROFLEET_MAX_STACK + 1];	/* enum walker */
};

/* Processes the pids map holds at once (cgroup v1 hosts, --pid and their children). */
#define PROFLEET_MAX_PIDS 65536

/* Value of the targets (cgroup id) and pids maps. */
struct target_cfg {
	__u32 sample_every;	/* keep one sample in N (per-target rate below the base rate); 0/1 = all */
	__u32 policy_bits;	/* the agent's reference for the target, copied into its samples */
	/*
	 * The target's own subsampling phase, advanced by the BPF program on every
	 * sample of the target (on any CPU; a lost update between two CPUs only
	 * shifts the phase). User space writes 0.
	 */
	__u32 phase;
};

/* Per-CPU counters, index into the counters array map. */
enum counter {
	CNT_SAMPLES = 0,	/* perf events seen by the program */
	CNT_IDLE,		/* idle task, skipped */
	CNT_FILTERED,		/* not targeted */
	CNT_SUBSAMPLED,		/* targeted, skipped by sample_every */
	CNT_SENT,		/* written to the ring buffer */
	CNT_RINGBUF_FULL,	/* lost: ring buffer full */
	CNT_KSTACK_FAULT,
	CNT_USTACK_FAULT,
	CNT_USTACK_EMPTY,
	CNT_KSTACK_TRUNCATED,
	CNT_USTACK_TRUNCATED,
	CNT_CHILDREN_ADDED,	/* forks followed into the pids map */
	CNT_PIDS_FULL,		/* a child could not be added to the pids map */
	/* the table-driven user unwinder, per sample: why the walk ended */
	CNT_UNWIND_COMPLETE,	/* reached the outermost frame (RA undefined / zero) */
	CNT_UNWIND_NO_TABLE,	/* a frame in a mapping without a table: frame pointers used there */
	CNT_UNWIND_TABLE_NOT_LOADED,	/* the table was known but not loaded yet */
	CNT_UNWIND_NO_MAPPING,	/* pc outside every mapping we know for the process */
	CNT_UNWIND_READ_FAULT,	/* bpf_probe_read_user failed */
	CNT_UNWIND_DEPTH,	/* PROFLEET_MAX_STACK frames and still going */
	CNT_UNWIND_FP_FALLBACK,	/* frames taken from frame pointers (count of frames, not samples) */
	CNT_UNWIND_UNSUPPORTED,	/* a CFA rule we cannot run */
	CNT_UNWIND_BUDGET,	/* the chain ran out of tail calls before the stack ended */
	CNT_WALKER_MISSING,	/* a mapping named a walker whose program is not loaded */
	CNT_TAIL_CALL_FAILED,	/* the native walker itself could not be entered */
	CNT_USER_REGS_UNKNOWN,	/* before 5.15: the registers at the top of the kernel stack are not user mode's */
	/* the Python walker */
	CNT_PY_FRAMES,		/* Python frames put in samples */
	CNT_PY_NO_PROC,		/* the evaluation loop of a process the agent has not described */
	CNT_PY_NO_THREAD,	/* no thread state (a thread that never ran Python, a read fault) */
	CNT_PY_READ_FAULT,	/* a frame could not be read */
	CNT_PY_BAD_CODE,	/* a frame's code is not a code object: the rest of the run skipped */
	/* the JVM walker */
	CNT_JVM_FRAMES,		/* JVM frames put in samples */
	CNT_JVM_NO_PROC,	/* code of a process the agent has not described */
	CNT_JVM_NO_BLOB,	/* a pc in the code cache's free space, or the segment map unreadable */
	CNT_JVM_BAD_FRAME,	/* a blob or frame that does not hold together: the walk ends */
	/* the V8 walker */
	CNT_V8_FRAMES,		/* JavaScript frames put in samples */
	CNT_V8_STUBS,		/* typed frames (entry, exit, stubs) put in samples */
	CNT_V8_BAD_FRAME,	/* a frame that is not V8's, or whose function does not read: kept as native */
	CNT_MAX,
};

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct sample_event) ==
		       80 + 2 * 8 * PROFLEET_MAX_STACK + 5 * (PROFLEET_MAX_STACK + 1),
	       "sample_event layout changed: update both sides");
_Static_assert(sizeof(struct target_cfg) == 12, "target_cfg layout");
_Static_assert(sizeof(struct py_proc) == 40, "py_proc layout");
_Static_assert(sizeof(struct jvm_proc) == 120, "jvm_proc layout");
_Static_assert(sizeof(struct v8_proc) == 24, "v8_proc layout");
#endif

#endif
