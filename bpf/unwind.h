/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unwind tables shared between the agent (which compiles them from .eh_frame /
 * .debug_frame) and the BPF unwinder (which walks user stacks with them).
 * x86_64 only for now: the return address is always at CFA - 8.
 */
#ifndef BPF_UNWIND_H
#define BPF_UNWIND_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* How to compute the CFA at a pc. */
enum cfa_type {
	CFA_SP = 0,		/* CFA = rsp + cfa_offset */
	CFA_FP = 1,		/* CFA = rbp + cfa_offset */
	CFA_PLT = 2,		/* PLT stub: CFA = rsp + 8 + ((rip & 15) >= cfa_offset ? 8 : 0) */
	CFA_SIGNAL = 3,		/* signal trampoline (__restore_rt): registers come from the ucontext at rsp */
	CFA_END = 4,		/* return address undefined: outermost frame (_start, thread start) */
	CFA_UNSUPPORTED = 5,	/* a rule we cannot express: fall back to frame pointers here */
};

/* Where the caller's rbp is. */
enum rbp_type {
	RBP_SAME = 0,		/* unchanged by this frame */
	RBP_AT_CFA = 1,		/* saved at CFA + rbp_offset */
	RBP_UNSUPPORTED = 2,	/* a rule we cannot express (rbp becomes unknown) */
};

/*
 * One row: the rule holds from pc up to the next row's pc. Rows of one object
 * are sorted by pc, identical neighbours merged. pc is the ELF virtual address
 * (objects with vaddrs >= 4 GiB are not supported: their table is empty).
 * A gap (addresses covered by no FDE) is a row with CFA_UNSUPPORTED.
 */
struct unwind_row {
	__u32 pc;
	__s32 cfa_offset;
	__s16 rbp_offset;
	__u8 cfa_type;		/* enum cfa_type */
	__u8 rbp_type;		/* enum rbp_type */
};

/*
 * exe_mappings LPM trie: (pid, address) -> which table covers it. A mapping
 * [start, end) is split into aligned power-of-two blocks, one key each.
 * pid and addr are big-endian so that the trie compares them most
 * significant bit first; prefixlen counts 32 bits of pid plus the address bits.
 */
struct mapping_key {
	__u32 prefixlen;
	__u32 pid_be;
	__u64 addr_be;
};

struct mapping_info {
	__u32 first_row;	/* the table's rows are unwind_rows[first_row, first_row + nrows) */
	__u32 nrows;
	__u64 bias;		/* ELF vaddr = address - bias */
	__u8 walker;		/* enum walker: who walks the frames of this mapping (0: native) */
	__u8 pad[7];
};

#define UNWIND_MAX_TABLES 4096
/* default size of the unwind_rows array (12 bytes each): libc + libstdc++ need ~70k */
#define UNWIND_DEFAULT_ROWS (1u << 20)
/* binary search steps: enough for 2^24 rows in one table */
#define UNWIND_SEARCH_STEPS 24

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct unwind_row) == 12, "unwind_row layout");
_Static_assert(sizeof(struct mapping_key) == 16, "mapping_key layout");
_Static_assert(sizeof(struct mapping_info) == 24, "mapping_info layout");
#endif

#endif
