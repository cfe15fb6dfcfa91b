// SPDX-License-Identifier: Apache-2.0
/*
 * CFI -> unwind rows.
 *
 * elfutils' libdw runs the DWARF CFA programs; we decide what it may run and
 * which FDE owns which address. Per CFI section (.eh_frame, .debug_frame):
 *
 * 1. walk the entries (dwarf_next_cfi) and vet each one: its CIE's
 *    augmentation and address encoding, its range (inside an executable
 *    segment; not 0, the tombstone of a discarded function), and its
 *    instructions, decoded without being run: known opcodes, registers below
 *    MAX_REG, remember_state nested at most MAX_REMEMBER deep. The decoding
 *    also says how many instruction steps libdw will take to produce the rows
 *    (see below), charged against WORK_BUDGET;
 * 2. hand libdw a copy of the section alone, in an ELF image in memory, in
 *    which every entry that failed is overwritten by a harmless CIE of the
 *    same length. Without .eh_frame_hdr libdw finds FDEs by walking the
 *    entries in order, so it only ever runs the programs we vetted. (The
 *    image also keeps dwarf_begin_elf from decompressing a debug file's whole
 *    .debug_info, which it does up front, to read a few MB of .debug_frame.)
 *
 * Then the FDE ranges are made disjoint (.eh_frame first, the lower start
 * wins an overlap; .debug_frame fills what .eh_frame leaves uncovered), and in
 * address order libdw is asked for the rule at each step of each range
 * (dwarf_cfi_addrframe, dwarf_frame_info's [start, end)), so that rows come
 * out sorted and identical neighbours merge as they come.
 *
 * Cost: libdw re-runs an FDE's program from its start for each row asked
 * for, so an FDE of k rows costs ~k^2/2 steps (4000 rows: 11 ms, 40000: 1.1 s
 * measured). Real code stays far below (largest seen: 6678 rows in one FDE of
 * gcc's cc1plus, 35M steps for the whole file); FDE_MAX_ROWS and WORK_BUDGET
 * bound what a crafted file costs. Unvetted, a single DW_CFA_offset naming
 * register 2^27 made libdw allocate and clear 2 GB per row.
 */
#include "grow.h"
#include "unwind_table.h"

#include "elfutil.h"
#include "log.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* rows libdw is asked for per FDE; the rest of a longer one becomes CFA_UNSUPPORTED */
#define FDE_MAX_ROWS 8192
/* instruction steps libdw may take per file (ns each): cc1plus needs 35M */
#define WORK_BUDGET (1ull << 28)
/* x86_64's DWARF registers end at 130 (k7): libdw sizes every frame by the largest named */
#define MAX_REG 130
#define MAX_REMEMBER 64
/* a CFI section: .debug_frame is a few MB even for the largest libraries; more is not read */
#define CFI_MAX_BYTES (256ull << 20)
/* what of .eh_frame_hdr is read: version, three encodings, eh_frame_ptr */
#define EH_FRAME_HDR_READ 64
#define MAX_EXEC_SEGS 32
/* decompressed MiniDebugInfo: a symbol table, rarely CFI */
#define MINIDEBUG_MAX (64u << 20)

enum { SRC_EH = 0, SRC_DEBUG = 1, NSRC };

/* A CIE that passed: how its FDEs encode addresses, whether they carry augmentation data. */
struct cie_info {
	Dwarf_Off off;
	uint8_t enc;
	bool z;
};

/* One CFI section. */
struct cfi_src {
	bool eh;
	const uint8_t *buf;	/* the section as found in the file */
	size_t size;
	uint64_t addr;		/* vaddr of buf[0], for pc-relative pointers (.eh_frame) */
	size_t end;		/* where the walk stopped: libdw sees [0, end) */
	struct cie_info *cies;	/* in section order */
	uint32_t ncies, cap_cies;
	/* what libdw reads: an ELF image holding the vetted copy of the section */
	uint8_t *image, *copy;
	Elf *elf;
	Dwarf *dw;
	Dwarf_CFI *cfi;
};

/* What one FDE owns once ranges are disjoint. */
struct fde_range {
	uint64_t lo, hi;
	uint64_t fde_lo;	/* the FDE's own start: libdw's rows must not begin before it */
	uint32_t seq;		/* order in its section: equal starts go to the earlier */
	uint8_t src;
};

struct range_list {
	struct fde_range *v;
	uint32_t n, cap;
};

struct builder {
	struct cfi_src src[NSRC];
	const unsigned char *ident;
	struct range_list fdes;
	uint64_t seg_lo[MAX_EXEC_SEGS], seg_hi[MAX_EXEC_SEGS];
	int nsegs;
	struct unwind_row *rows;
	uint32_t nrows, cap_rows, max_rows;
	uint64_t work;
	struct unwind_table_stats st;
};

static int range_push(struct range_list *l, const struct fde_range *r)
{
	if (l->n == UINT32_MAX)
		return -EFBIG;
	if (grow_array((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v), 1024))
		return -ENOMEM;
	l->v[l->n++] = *r;
	return 0;
}

static bool same_rule(const struct unwind_row *a, const struct unwind_row *b)
{
	return a->cfa_type == b->cfa_type && a->cfa_offset == b->cfa_offset &&
	       a->rbp_type == b->rbp_type && a->rbp_offset == b->rbp_offset;
}

/* Appends a row (pcs only grow), merging it into an identical predecessor. */
static int add_row(struct builder *b, const struct unwind_row *r)
{
	if (b->nrows) {
		const struct unwind_row *last = &b->rows[b->nrows - 1];

		if (r->pc <= last->pc || same_rule(last, r))
			return 0;
	}
	if (b->nrows == b->cap_rows) {
		uint32_t ncap = b->cap_rows ? b->cap_rows * 2 : 4096;
		struct unwind_row *nr;

		if (b->nrows >= b->max_rows)
			return -EFBIG;
		if (ncap > b->max_rows || ncap <= b->cap_rows)
			ncap = b->max_rows;
		nr = realloc(b->rows, (size_t)ncap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		b->rows = nr;
		b->cap_rows = ncap;
	}
	b->rows[b->nrows++] = *r;
	return 0;
}

static void row_unsupported(struct unwind_row *r, uint32_t pc)
{
	*r = (struct unwind_row){ .pc = pc, .cfa_type = CFA_UNSUPPORTED,
				  .rbp_type = RBP_UNSUPPORTED };
}

/* ---- libdw's frame state -> a row --------------------------------------------- */

/* "saved at CFA + off" as libdw spells it: DW_OP_call_frame_cfa [DW_OP_plus_uconst off] */
static bool at_cfa(const Dwarf_Op *ops, size_t n, int64_t *off)
{
	if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
		*off = 0;
		return true;
	}
	if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	if (n == 3 && ops[0].atom == DW_OP_call_frame_cfa &&
	    (ops[1].atom == DW_OP_consts || ops[1].atom == DW_OP_constu) &&
	    ops[2].atom == DW_OP_plus) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	return false;
}

/*
 * The CFA gcc and ld describe lazy-binding PLT entries with:
 * rsp + 8 + ((rip & 15) >= N) << 3, i.e. DW_OP_breg7 8; DW_OP_breg16 0;
 * DW_OP_lit15; DW_OP_and; DW_OP_litN; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus.
 */
static bool is_plt_expr(const Dwarf_Op *o, size_t n, int32_t *ret_n)
{
	if (n != 9 || o[0].atom != DW_OP_breg7 || o[0].number != 8 || o[1].atom != DW_OP_breg16 ||
	    o[1].number != 0 || o[2].atom != DW_OP_lit15 || o[3].atom != DW_OP_and ||
	    o[4].atom < DW_OP_lit0 || o[4].atom > DW_OP_lit15 || o[5].atom != DW_OP_ge ||
	    o[6].atom != DW_OP_lit3 || o[7].atom != DW_OP_shl || o[8].atom != DW_OP_plus)
		return false;
	*ret_n = o[4].atom - DW_OP_lit0;
	return true;
}

/* The CFA rule, for CFA_SP / CFA_FP / CFA_PLT; false for anything else. */
static bool translate_cfa(Dwarf_Frame *f, struct unwind_row *r)
{
	Dwarf_Op *ops;
	size_t n;
	int64_t off;

	if (dwarf_frame_cfa(f, &ops, &n) || n == 0)
		return false;
	if (n == 1 && ops[0].atom == DW_OP_bregx &&
	    (ops[0].number == REG_RSP || ops[0].number == REG_RBP)) {
		r->cfa_type = ops[0].number == REG_RSP ? CFA_SP : CFA_FP;
		off = (int64_t)ops[0].number2;
	} else if (n == 1 && (ops[0].atom == DW_OP_breg7 || ops[0].atom == DW_OP_breg6)) {
		r->cfa_type = ops[0].atom == DW_OP_breg7 ? CFA_SP : CFA_FP;
		off = (int64_t)ops[0].number;
	} else if (is_plt_expr(ops, n, &r->cfa_offset)) {
		r->cfa_type = CFA_PLT;
		return true;
	} else {
		return false;
	}
	if (off < INT32_MIN || off > INT32_MAX)
		return false;
	r->cfa_offset = (int32_t)off;
	return true;
}

/* The row for libdw's frame state f; ra_reg: the CIE's return address column. */
static void translate(Dwarf_Frame *f, int ra_reg, bool signal, struct unwind_row *r)
{
	Dwarf_Op mem[3], *ops;
	size_t n;
	int64_t off;
	uint32_t pc = r->pc;

	row_unsupported(r, pc);
	if (ra_reg != REG_RA)
		return;
	if (signal) {
		/* the 'S' augmentation (__restore_rt): registers come from the ucontext */
		*r = (struct unwind_row){ .pc = pc, .cfa_type = CFA_SIGNAL, .rbp_type = RBP_SAME };
		return;
	}
	if (dwarf_frame_register(f, REG_RA, mem, &ops, &n))
		return;
	if (n == 0 && ops == mem) {
		/* return address "undefined": the outermost frame (_start, thread start) */
		*r = (struct unwind_row){ .pc = pc, .cfa_type = CFA_END, .rbp_type = RBP_SAME };
		return;
	}
	/* x86_64: the BPF side always reads the return address at CFA - 8 */
	if (!at_cfa(ops, n, &off) || off != -8)
		return;
	if (!translate_cfa(f, r)) {
		row_unsupported(r, pc);
		return;
	}
	if (dwarf_frame_register(f, REG_RBP, mem, &ops, &n)) {
		r->rbp_type = RBP_UNSUPPORTED;
	} else if (n == 0) {
		/* same value (ops NULL), or undefined (ops == mem): rbp cannot be recovered */
		r->rbp_type = ops == NULL ? RBP_SAME : RBP_UNSUPPORTED;
	} else if (at_cfa(ops, n, &off) && off >= INT16_MIN && off <= INT16_MAX) {
		r->rbp_type = RBP_AT_CFA;
		r->rbp_offset = (int16_t)off;
	} else {
		r->rbp_type = RBP_UNSUPPORTED;	/* in a register, val_offset, expression */
	}
}

/* ---- reading CIEs and FDEs ----------------------------------------------------- */

/* Size of an encoded pointer (DW_EH_PE_* low bits), 0 for variable or unknown sizes. */
static size_t encoded_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		return 8;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4:
		return 4;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2:
		return 2;
	default:
		return 0;
	}
}

/*
 * Reads one encoded pointer at p; field_addr: its vaddr (pc-relative),
 * data_addr: the base of data-relative ones. Only what FDEs and .eh_frame_hdr
 * use: fixed sizes, absolute or pc/data-relative, direct. Returns the bytes
 * read, 0 when unsupported or truncated.
 */
static size_t read_encoded(const uint8_t *p, const uint8_t *end, uint8_t enc, uint64_t field_addr,
			   uint64_t data_addr, uint64_t *ret)
{
	size_t len = encoded_size(enc);
	uint64_t v = 0;

	if (enc == DW_EH_PE_omit || (enc & DW_EH_PE_indirect) || !len || (size_t)(end - p) < len)
		return 0;
	for (size_t i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	if ((enc & 0x0f) == DW_EH_PE_sdata4)
		v = (uint64_t)(int64_t)(int32_t)v;
	else if ((enc & 0x0f) == DW_EH_PE_sdata2)
		v = (uint64_t)(int64_t)(int16_t)v;
	switch (enc & 0x70) {
	case DW_EH_PE_absptr:
		break;
	case DW_EH_PE_pcrel:
		v += field_addr;
		break;
	case DW_EH_PE_datarel:
		v += data_addr;
		break;
	default:
		return 0;
	}
	*ret = v;
	return len;
}

/*
 * Reads a LEB128 number (sleb: its bits as unsigned). More than 10 bytes is
 * refused: libdw stops reading there and would not see the stream as we do.
 */
static bool read_leb128(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 10 && *p < end; i++) {
		uint8_t byte = *(*p)++;

		v |= (uint64_t)(byte & 0x7f) << (7 * i);
		if (!(byte & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

/* A LEB128 register number: it must stay small (libdw sizes frames by it). */
static bool read_reg(const uint8_t **p, const uint8_t *end)
{
	uint64_t reg;

	return read_leb128(p, end, &reg) && reg <= MAX_REG;
}

static bool skip_bytes(const uint8_t **p, const uint8_t *end, uint64_t n)
{
	if ((uint64_t)(end - *p) < n)
		return false;
	*p += n;
	return true;
}

/*
 * Steps over one CFA instruction of the extended set (op, its operands after
 * *pp). *row: it starts a new row; *depth: remember_state nesting. false when
 * it is unknown, truncated or nests too deep.
 */
static bool skip_extended(uint8_t op, const uint8_t **pp, const uint8_t *end, size_t addr_size,
			  int *depth, bool *row)
{
	uint64_t v;

	switch (op) {
	case DW_CFA_nop:
		return true;
	case DW_CFA_set_loc:
		return (*row = skip_bytes(pp, end, addr_size));
	case DW_CFA_advance_loc1:
	case DW_CFA_advance_loc2:
	case DW_CFA_advance_loc4:
		return (*row = skip_bytes(pp, end, op == DW_CFA_advance_loc1 ? 1 :
						   op == DW_CFA_advance_loc2 ? 2 : 4));
	case DW_CFA_offset_extended:
	case DW_CFA_offset_extended_sf:
	case DW_CFA_val_offset:
	case DW_CFA_val_offset_sf:
	case DW_CFA_def_cfa:
	case DW_CFA_def_cfa_sf:
	case DW_CFA_GNU_negative_offset_extended:
		return read_reg(pp, end) && read_leb128(pp, end, &v);
	case DW_CFA_restore_extended:
	case DW_CFA_undefined:
	case DW_CFA_same_value:
	case DW_CFA_def_cfa_register:
		return read_reg(pp, end);
	case DW_CFA_register:
		return read_reg(pp, end) && read_reg(pp, end);
	case DW_CFA_remember_state:
		return ++*depth <= MAX_REMEMBER;
	case DW_CFA_restore_state:
		return --*depth >= 0;
	case DW_CFA_def_cfa_offset:
	case DW_CFA_def_cfa_offset_sf:
	case DW_CFA_GNU_args_size:
		return read_leb128(pp, end, &v);
	case DW_CFA_def_cfa_expression:
		return read_leb128(pp, end, &v) && skip_bytes(pp, end, v);
	case DW_CFA_expression:
	case DW_CFA_val_expression:
		return read_reg(pp, end) && read_leb128(pp, end, &v) && skip_bytes(pp, end, v);
	default:
		return false;
	}
}

/*
 * Decodes a CFA instruction stream without running it. False on an opcode
 * libdw's x86_64 reading does not know, a truncated operand, a register past
 * MAX_REG, a restore_state without remember_state or nesting past
 * MAX_REMEMBER. *ret_work (may be NULL): the steps libdw takes to produce the
 * stream's rows, one addrframe call per row (the first FDE_MAX_ROWS), each
 * running the stream from its start up to that row's end.
 */
static bool scan_cfa(const uint8_t *p, const uint8_t *end, size_t addr_size, uint64_t *ret_work)
{
	uint64_t ops = 0, work = 0, v;
	uint32_t rows = 0;
	int depth = 0;

	while (p < end) {
		uint8_t op = *p++;
		bool row = false;

		ops++;
		switch (op & 0xc0) {
		case DW_CFA_advance_loc:
			row = true;
			break;
		case DW_CFA_offset:
			if (!read_leb128(&p, end, &v))
				return false;
			break;
		case DW_CFA_restore:
			break;
		default:
			if (!skip_extended(op, &p, end, addr_size, &depth, &row))
				return false;
		}
		if (row && rows < FDE_MAX_ROWS) {
			rows++;
			work += ops;
		}
	}
	if (ret_work)
		*ret_work = work + ops;
	return true;
}

/* How a CIE's FDEs encode addresses ('R'; absptr without), and whether it has 'z'. */
static int cie_parse(const Dwarf_CIE *cie, uint8_t *ret_enc, bool *ret_z)
{
	const char *aug = cie->augmentation;
	const uint8_t *d = cie->augmentation_data, *end = d + cie->augmentation_data_size;
	uint64_t v;

	*ret_enc = DW_EH_PE_absptr;
	*ret_z = false;
	if (!aug || !aug[0])
		return 0;
	if (aug[0] != 'z')
		return -EINVAL;	/* "eh" and other pre-'z' forms: layout unknown */
	*ret_z = true;
	for (aug++; *aug; aug++) {
		switch (*aug) {
		case 'P': {
			uint8_t penc;

			if (d >= end)
				return -EINVAL;
			penc = *d++;
			if ((penc & 0x0f) == DW_EH_PE_uleb128 || (penc & 0x0f) == DW_EH_PE_sleb128) {
				if (!read_leb128(&d, end, &v))
					return -EINVAL;
			} else if (!encoded_size(penc) || !skip_bytes(&d, end, encoded_size(penc))) {
				return -EINVAL;
			}
			break;
		}
		case 'L':
			if (!skip_bytes(&d, end, 1))
				return -EINVAL;
			break;
		case 'R':
			if (d >= end)
				return -EINVAL;
			*ret_enc = *d++;
			break;
		case 'S':
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static bool in_exec_segment(const struct builder *b, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < b->nsegs; i++)
		if (lo >= b->seg_lo[i] && hi <= b->seg_hi[i])
			return true;
	return false;
}

static const struct cie_info *find_cie(const struct cfi_src *s, Dwarf_Off off)
{
	uint32_t lo = 0, hi = s->ncies;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->cies[mid].off == off)
			return &s->cies[mid];
		if (s->cies[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The CIEs of a section, vetted; where its walk ends. */
static int index_cies(struct builder *b, struct cfi_src *s)
{
	Elf_Data data = { .d_buf = (void *)s->buf, .d_size = s->size };
	Dwarf_Off off = 0;

	s->end = s->size;
	for (;;) {
		Dwarf_CFI_Entry e;
		Dwarf_Off next = (Dwarf_Off)-1;
		struct cie_info ci = { .off = off };
		int rc = dwarf_next_cfi(b->ident, &data, s->eh, off, &next, &e);
		uint64_t work;

		if (rc > 0) {
			s->end = off;	/* the end, or .eh_frame's zero terminator */
			break;
		}
		if (next == (Dwarf_Off)-1 || next <= off || next > s->size) {
			/* without a sane length nothing after this entry can be trusted */
			s->end = off;
			break;
		}
		off = next;
		if (rc < 0 || !dwarf_cfi_cie_p(&e) || cie_parse(&e.cie, &ci.enc, &ci.z) ||
		    (!s->eh && (ci.enc & 0x70) != DW_EH_PE_absptr) ||
		    !scan_cfa(e.cie.initial_instructions, e.cie.initial_instructions_end,
			      encoded_size(ci.enc), &work))
			continue;
		b->work += work;
		if (grow_array((void **)&s->cies, &s->cap_cies, s->ncies + 1, sizeof(*s->cies), 16))
			return -ENOMEM;
		s->cies[s->ncies++] = ci;
	}
	return 0;
}

/*
 * Vets one FDE: its CIE passed, its range decodes and lies in the code, its
 * instructions decode. Its range and libdw's cost on success, -EINVAL else.
 */
static int vet_fde(struct builder *b, const struct cfi_src *s, const Dwarf_CFI_Entry *e,
		   uint64_t *ret_lo, uint64_t *ret_hi, uint64_t *ret_work)
{
	const struct cie_info *ci = find_cie(s, e->fde.CIE_pointer);
	const uint8_t *p = e->fde.start, *end = e->fde.end;
	uint64_t lo, range, aug;
	size_t n;

	if (!ci || p < s->buf || end > s->buf + s->end || p > end)
		return -EINVAL;
	n = read_encoded(p, end, ci->enc, s->addr + (uint64_t)(p - s->buf), 0, &lo);
	if (!n)
		return -EINVAL;
	p += n;
	n = read_encoded(p, end, ci->enc & 0x0f, 0, 0, &range);
	if (!n)
		return -EINVAL;
	p += n;
	if (ci->z && (!read_leb128(&p, end, &aug) || !skip_bytes(&p, end, aug)))
		return -EINVAL;
	/* lo == 0: the tombstone linkers leave for a discarded function */
	if (!range || !lo || lo + range < lo || !in_exec_segment(b, lo, lo + range) ||
	    !scan_cfa(p, end, encoded_size(ci->enc), ret_work))
		return -EINVAL;
	*ret_lo = lo;
	*ret_hi = lo + range;
	return 0;
}

/*
 * Overwrites the entry [off, next) of libdw's copy with a CIE nothing refers
 * to (version 1, no augmentation, only DW_CFA_nop), so that libdw skips it.
 */
static void neutralize(struct cfi_src *s, size_t off, size_t next)
{
	uint8_t *p = s->copy + off;
	size_t payload = next - off - 4;
	uint32_t len;

	memcpy(&len, p, 4);
	if (len == 0xffffffffu) {
		s->end = off;	/* 64-bit DWARF: never in real CFI; libdw sees nothing from here */
		return;
	}
	if (payload < 9) {
		/* too short to be a CIE: an unknown CIE version, which libdw refuses */
		if (payload >= 5)
			p[8] = 0xff;
		if (payload >= 4)
			memset(p + 4, s->eh ? 0 : 0xff, 4);
		return;
	}
	memset(p + 4, s->eh ? 0 : 0xff, 4);	/* the CIE id of each format */
	p[8] = 1;				/* version */
	p[9] = 0;				/* augmentation "" */
	p[10] = 1;				/* code alignment */
	p[11] = 0x78;				/* data alignment -8 */
	p[12] = REG_RA;				/* return address column */
	memset(p + 13, DW_CFA_nop, payload - 9);
}

/* Builds the ELF image libdw reads: one section, a copy of [0, s->end) of s. */
static int image_alloc(struct cfi_src *s)
{
	size_t data_off = sizeof(Elf64_Ehdr);

	s->image = calloc(1, data_off + s->end + 64 + 3 * sizeof(Elf64_Shdr));
	if (!s->image)
		return -ENOMEM;
	s->copy = s->image + data_off;
	memcpy(s->copy, s->buf, s->end);
	return 0;
}

static int image_open(struct cfi_src *s)
{
	static const char eh_names[] = "\0.eh_frame\0.shstrtab";
	static const char debug_names[] = "\0.debug_frame\0.shstrtab";
	const char *names = s->eh ? eh_names : debug_names;
	size_t names_len = s->eh ? sizeof(eh_names) : sizeof(debug_names);
	size_t data_off = sizeof(Elf64_Ehdr), str_off = data_off + s->end;
	size_t sh_off = (str_off + names_len + 7) & ~(size_t)7;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)s->image;
	Elf64_Shdr *sh = (Elf64_Shdr *)(s->image + sh_off);

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;	/* libdw's x86_64 defaults: callee-saved registers keep their value */
	eh->e_version = EV_CURRENT;
	eh->e_shoff = sh_off;
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 3;
	eh->e_shstrndx = 2;
	memcpy(s->image + str_off, names, names_len);
	sh[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_PROGBITS, .sh_offset = data_off,
			      .sh_size = s->end, .sh_addralign = 1,
			      .sh_addr = s->eh ? s->addr : 0, .sh_flags = s->eh ? SHF_ALLOC : 0 };
	sh[2] = (Elf64_Shdr){ .sh_name = (uint32_t)strlen(names + 1) + 2, .sh_type = SHT_STRTAB,
			      .sh_offset = str_off, .sh_size = names_len, .sh_addralign = 1 };
	s->elf = elf_memory((char *)s->image, sh_off + 3 * sizeof(Elf64_Shdr));
	if (!s->elf)
		return -EINVAL;
	if (s->eh) {
		s->cfi = dwarf_getcfi_elf(s->elf);
	} else {
		s->dw = dwarf_begin_elf(s->elf, DWARF_C_READ, NULL);
		s->cfi = s->dw ? dwarf_getcfi(s->dw) : NULL;
	}
	return s->cfi ? 0 : -EINVAL;
}

/*
 * The FDEs of one section: vetted, their ranges listed, the failures
 * neutralized in libdw's copy, which is then opened.
 */
static int collect_fdes(struct builder *b, int which)
{
	struct cfi_src *s = &b->src[which];
	Elf_Data data;
	Dwarf_Off off = 0;
	uint32_t seq = 0;
	int err;

	err = index_cies(b, s);
	if (!err)
		err = image_alloc(s);
	if (err)
		return err;
	data = (Elf_Data){ .d_buf = (void *)s->buf, .d_size = s->end };
	while (off < s->end) {
		Dwarf_CFI_Entry e;
		Dwarf_Off next = (Dwarf_Off)-1;
		struct fde_range r;
		uint64_t work;
		int rc = dwarf_next_cfi(b->ident, &data, s->eh, off, &next, &e);

		if (rc > 0 || next == (Dwarf_Off)-1 || next <= off || next > s->end)
			break;
		if (rc == 0 && dwarf_cfi_cie_p(&e)) {
			if (!find_cie(s, off))
				neutralize(s, off, next);
			off = next;
			continue;
		}
		b->st.fdes++;	/* an FDE, or an entry too broken to tell */
		if (rc < 0 || vet_fde(b, s, &e, &r.lo, &r.hi, &work)) {
			b->st.fdes_bad++;
			neutralize(s, off, next);
		} else {
			b->work += work;
			if (b->work > WORK_BUDGET)
				return -EFBIG;
			r.fde_lo = r.lo;
			r.seq = seq++;
			r.src = (uint8_t)which;
			err = range_push(&b->fdes, &r);
			if (err)
				return err;
		}
		off = next;
	}
	return image_open(s);
}

/* ---- which FDE owns which pc, and the rows ------------------------------------- */

static int cmp_range(const void *pa, const void *pb)
{
	const struct fde_range *a = pa, *b = pb;

	if (a->src != b->src)
		return a->src < b->src ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_lo(const void *pa, const void *pb)
{
	const struct fde_range *a = pa, *b = pb;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/*
 * Disjoint ranges, sorted. .eh_frame keeps what it covers (between
 * overlapping FDEs of one section, the lower start wins); .debug_frame FDEs
 * keep the pieces no .eh_frame FDE covers.
 */
static int own_ranges(struct builder *b, struct range_list *out)
{
	struct fde_range *v = b->fdes.v;
	uint32_t n = b->fdes.n, neh = 0, k = 0;
	uint64_t cov = 0;
	int err = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_range);
	for (uint32_t i = 0; i < n && v[i].src == SRC_EH; i++) {
		struct fde_range r = v[i];

		if (r.lo < cov)
			r.lo = cov;
		if (r.lo >= r.hi)
			continue;
		cov = r.hi;
		b->st.from_eh_frame++;
		v[neh++] = r;	/* in place: neh <= i */
	}
	for (uint32_t i = 0; i < neh && !err; i++)
		err = range_push(out, &v[i]);
	/* .debug_frame: sorted by start, so the .eh_frame cursor k only moves forward */
	cov = 0;
	for (uint32_t i = 0; i < n && !err; i++) {
		struct fde_range r = v[i];
		uint64_t cur, hi = r.hi;
		bool used = false;

		if (r.src != SRC_DEBUG)
			continue;
		cur = r.lo > cov ? r.lo : cov;
		if (hi > cov)
			cov = hi;
		while (cur < hi && !err) {
			while (k < neh && v[k].hi <= cur)
				k++;
			if (k < neh && v[k].lo <= cur) {
				cur = v[k].hi;
				continue;
			}
			r.lo = cur;
			r.hi = k < neh && v[k].lo < hi ? v[k].lo : hi;
			err = range_push(out, &r);
			used = true;
			cur = r.hi;
		}
		b->st.from_debug_frame += used;
	}
	if (!err)
		qsort(out->v, out->n, sizeof(*out->v), cmp_lo);
	return err;
}

/*
 * The rows of one range: one per step of its FDE's program, then a gap row at
 * its end unless the next range starts right there (next_lo), so that pcs no
 * FDE covers do not inherit the last rule.
 */
static int emit_range(struct builder *b, const struct fde_range *r, uint64_t next_lo)
{
	Dwarf_CFI *cfi = b->src[r->src].cfi;
	struct unwind_row row;
	uint64_t addr = r->lo;
	uint32_t k = 0;
	int err = 0;

	while (addr < r->hi && !err) {
		Dwarf_Frame *f;
		Dwarf_Addr start, end;
		bool signal = false;
		int ra;

		if (k == FDE_MAX_ROWS || dwarf_cfi_addrframe(cfi, addr, &f)) {
			b->st.fdes_bad++;
			row_unsupported(&row, (uint32_t)addr);
			err = add_row(b, &row);
			break;
		}
		ra = dwarf_frame_info(f, &start, &end, &signal);
		/* libdw looks FDEs up by itself: make sure it answered from ours */
		if (ra < 0 || start < r->fde_lo || start > addr || end <= addr) {
			free(f);
			b->st.fdes_bad++;
			row_unsupported(&row, (uint32_t)addr);
			err = add_row(b, &row);
			break;
		}
		row.pc = (uint32_t)addr;
		translate(f, ra, signal, &row);
		free(f);
		b->st.rows_raw++;
		b->st.rows_unsupported += row.cfa_type == CFA_UNSUPPORTED;
		err = add_row(b, &row);
		addr = end < r->hi ? end : r->hi;
		k++;
	}
	if (!err && next_lo != r->hi) {
		row_unsupported(&row, (uint32_t)r->hi);
		err = add_row(b, &row);
	}
	return err;
}

/* ---- the files ------------------------------------------------------------------ */

/*
 * The file must be x86_64 ELF64, an executable or shared object. For the main
 * file, also note its executable segments: every FDE must lie in one, and
 * none may reach 4 GiB (rows hold 32-bit pcs).
 */
static int check_elf(struct builder *b, Elf *elf, bool main)
{
	GElf_Ehdr eh;
	size_t phnum;

	if (!gelf_getehdr(elf, &eh) || gelf_getclass(elf) != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
		return -EINVAL;
	if (!main)
		return 0;
	if (elf_getphdrnum(elf, &phnum))
		return -EINVAL;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr || ph.p_vaddr + ph.p_memsz > UINT32_MAX)
			return -EINVAL;
		if (b->nsegs == MAX_EXEC_SEGS)
			return -EINVAL;
		b->seg_lo[b->nsegs] = ph.p_vaddr;
		b->seg_hi[b->nsegs] = ph.p_vaddr + ph.p_memsz;
		b->nsegs++;
	}
	return 0;
}

/*
 * .eh_frame of a file without section headers: PT_GNU_EH_FRAME points at
 * .eh_frame_hdr, whose eh_frame_ptr gives where .eh_frame starts; it runs to
 * its zero terminator, at the latest to the end of its segment.
 */
static int eh_frame_from_phdr(Elf *elf, int fd, struct cfi_src *s)
{
	GElf_Phdr hdr_ph = { 0 }, ph;
	size_t phnum;
	Elf_Data *d;
	const uint8_t *p;
	uint64_t ptr, off, len;
	bool found = false;
	int err;

	if (elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum && !found; i++)
		if (gelf_getphdr(elf, (int)i, &hdr_ph) && hdr_ph.p_type == PT_GNU_EH_FRAME)
			found = true;
	if (!found || hdr_ph.p_filesz < 8)
		return -ENOENT;
	len = hdr_ph.p_filesz < EH_FRAME_HDR_READ ? hdr_ph.p_filesz : EH_FRAME_HDR_READ;
	err = elfutil_rawchunk(elf, fd, hdr_ph.p_offset, len, len, ELF_T_BYTE, &d);
	if (err)
		return err == -EFBIG ? err : -EINVAL;
	if (d->d_size < 8)
		return -EINVAL;
	p = d->d_buf;
	if (p[0] != 1 ||
	    !read_encoded(p + 4, p + d->d_size, p[1], hdr_ph.p_vaddr + 4, hdr_ph.p_vaddr, &ptr))
		return -EINVAL;
	for (size_t i = 0; i < phnum; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || ptr < ph.p_vaddr ||
		    ptr - ph.p_vaddr >= ph.p_filesz)
			continue;
		off = ph.p_offset + (ptr - ph.p_vaddr);
		len = ph.p_filesz - (ptr - ph.p_vaddr);
		if (off < ph.p_offset)
			return -EINVAL;
		/* to the end of the segment, but no more than a section may have */
		err = elfutil_rawchunk(elf, fd, off, len < CFI_MAX_BYTES ? len : CFI_MAX_BYTES,
				       CFI_MAX_BYTES, ELF_T_BYTE, &d);
		if (err)
			return err == -EFBIG ? err : -EINVAL;
		s->buf = d->d_buf;
		s->size = d->d_size;
		s->addr = ptr;
		return 0;
	}
	return -EINVAL;
}

/*
 * A compressed .debug_frame, decompressed: CFI_MAX_BYTES of it at most, compressed
 * or not. 0, -EINVAL, or -EFBIG when the file is sparse under it.
 */
static int decompress_cfi(int fd, Elf_Scn *scn, const GElf_Shdr *sh, Elf_Data **ret)
{
	GElf_Chdr ch;
	Elf_Data *d;
	int err;

	/* gelf_getchdr reads the whole compressed section */
	if (sh->sh_size > CFI_MAX_BYTES)
		return -EINVAL;
	err = elfutil_check_range(fd, sh->sh_offset, sh->sh_size, CFI_MAX_BYTES);
	if (err)
		return err == -EFBIG ? err : -EINVAL;	/* EFBIG: over a hole */
	/* zlib cannot expand more than ~1032:1: a larger claim is a bomb */
	if (!gelf_getchdr(scn, &ch) || ch.ch_size > CFI_MAX_BYTES ||
	    ch.ch_size / 1032 > sh->sh_size || elf_compress(scn, 0, 0) < 0)
		return -EINVAL;
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf)
		return -EINVAL;
	*ret = d;
	return 0;
}

/*
 * Finds a CFI section's bytes (decompressed), of fd (-1: an image in memory);
 * -ENOENT when there is none (or it cannot be read), -EINVAL when it is corrupt,
 * -EFBIG when the file is sparse under it.
 */
static int find_cfi(Elf *elf, int fd, bool eh, struct cfi_src *s)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, eh ? ".eh_frame" : ".debug_frame", &sh);
	Elf_Data *d;
	size_t nscn;
	int err;

	s->eh = eh;
	if (!scn) {
		/* no section headers at all: .eh_frame through PT_GNU_EH_FRAME */
		if (!eh || elf_getshdrnum(elf, &nscn) || nscn > 0)
			return -ENOENT;
		return eh_frame_from_phdr(elf, fd, s);
	}
	if (!sh.sh_size)
		return -ENOENT;
	if (sh.sh_flags & SHF_COMPRESSED) {
		err = eh ? -EINVAL : decompress_cfi(fd, scn, &sh, &d);
	} else {
		/* no more than CFI_MAX_BYTES of it read: the walk stops there anyway */
		err = elfutil_rawchunk(elf, fd, sh.sh_offset,
				       sh.sh_size < CFI_MAX_BYTES ? sh.sh_size : CFI_MAX_BYTES,
				       CFI_MAX_BYTES, ELF_T_BYTE, &d);
		if (err && err != -EFBIG)
			err = -ENOENT;	/* past the end of the file: as libelf always said */
	}
	if (err)
		return err;
	if (!d->d_size)
		return -ENOENT;
	s->buf = d->d_buf;
	s->size = d->d_size < CFI_MAX_BYTES ? d->d_size : CFI_MAX_BYTES;
	s->addr = sh.sh_addr;
	return 0;
}

static void cfi_src_close(struct cfi_src *s)
{
	if (s->dw)
		dwarf_end(s->dw);
	else if (s->cfi)
		dwarf_cfi_end(s->cfi);
	elf_end(s->elf);
	free(s->image);
	free(s->cies);
}

/* The ELF file in .gnu_debugdata (MiniDebugInfo), decompressed once, on first need. */
static Elf *minidebuginfo(Elf *elf, int fd, bool *tried, void **buf)
{
	Elf *mini;
	int err;

	if (*tried)
		return NULL;
	*tried = true;
	mini = elfutil_minidebuginfo(elf, fd, MINIDEBUG_MAX, buf, &err);
	if (!mini)
		return NULL;
	if (gelf_getclass(mini) != ELFCLASS64 || elf_getident(mini, NULL)[EI_DATA] != ELFDATA2LSB) {
		elf_end(mini);
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	return mini;
}

/* The files a table is built from, open while it is. */
struct cfi_files {
	Elf *elf, *delf, *mini;	/* the file; its debug file; its MiniDebugInfo */
	int fd, dfd;
	void *mini_buf;
	bool mini_tried;
};

static Elf *files_mini(struct cfi_files *f)
{
	if (!f->mini)
		f->mini = minidebuginfo(f->elf, f->fd, &f->mini_tried, &f->mini_buf);
	return f->mini;
}

/* The files and what libelf read of them; the sources' pointers into them are cleared. */
static void files_close(struct builder *b, struct cfi_files *f)
{
	for (int i = 0; i < NSRC; i++)
		b->src[i].buf = NULL;
	b->ident = NULL;
	elf_end(f->mini);
	free(f->mini_buf);
	elfutil_close(f->delf, f->dfd);
	elfutil_close(f->elf, f->fd);
	*f = (struct cfi_files){ .fd = -1, .dfd = -1 };
}

/*
 * The FDEs of one CFI section into b: *have counts sections found, *broken
 * those that were corrupt. 0, or -errno for what must stop the build.
 */
static int collect_src(struct builder *b, int src, int err, int *have, int *broken)
{
	if (err == 0) {
		(*have)++;
		err = collect_fdes(b, src);
	}
	*broken += err == -EINVAL;
	return err == -ENOENT || err == -EINVAL ? 0 : err;
}

/* .eh_frame: the file's own, else (rarely) MiniDebugInfo's */
static int read_eh_frame(struct builder *b, struct cfi_files *f, int *have, int *broken)
{
	int err = find_cfi(f->elf, f->fd, true, &b->src[SRC_EH]);

	if (err == -ENOENT && files_mini(f))
		err = find_cfi(f->mini, -1, true, &b->src[SRC_EH]);
	return collect_src(b, SRC_EH, err, have, broken);
}

/* .debug_frame: the separate debug file's, else MiniDebugInfo's, else the file's own */
static int read_debug_frame(struct builder *b, struct cfi_files *f, const char *debug_path,
			    int *have, int *broken)
{
	int err;

	if (debug_path) {
		f->delf = elfutil_open(debug_path, &f->dfd);
		if (f->delf && check_elf(b, f->delf, false)) {
			elfutil_close(f->delf, f->dfd);
			f->delf = NULL;
		}
		if (!f->delf)
			log_debug("unwind table: ignoring debug file %s", debug_path);
	}
	err = f->delf ? find_cfi(f->delf, f->dfd, false, &b->src[SRC_DEBUG]) : -ENOENT;
	if (err == -ENOENT && files_mini(f))
		err = find_cfi(f->mini, -1, false, &b->src[SRC_DEBUG]);
	if (err == -ENOENT)
		err = find_cfi(f->elf, f->fd, false, &b->src[SRC_DEBUG]);
	return collect_src(b, SRC_DEBUG, err, have, broken);
}

/* The rows of the file's own code ranges, into a new table (the rows move to it). */
static int emit_table(struct builder *b, int have, int broken, struct unwind_table **ret)
{
	struct range_list own = { 0 };
	struct unwind_table *t;
	int err = own_ranges(b, &own);

	/* the FDE list is done with: not held beside the rows (a big file's are MiBs) */
	free(b->fdes.v);
	b->fdes = (struct range_list){ 0 };
	for (uint32_t i = 0; i < own.n && !err; i++)
		err = emit_range(b, &own.v[i], i + 1 < own.n ? own.v[i + 1].lo : 0);
	if (!err && !b->nrows)	/* sections, but nothing usable in them: corrupt rather than absent */
		err = broken || (have && b->st.fdes_bad) ? -EINVAL : -ENOENT;
	if (!err && !(t = calloc(1, sizeof(*t))))
		err = -ENOMEM;
	if (!err) {
		t->rows = b->rows;
		t->nrows = b->nrows;
		b->rows = NULL;
		t->min_pc = own.v[0].lo;
		t->max_pc = own.v[own.n - 1].hi - 1;
		t->stats = b->st;
		*ret = t;
	}
	free(own.v);
	return err;
}

int unwind_table__build(const char *path, const char *debug_path, uint32_t max_rows,
			struct unwind_table **ret)
{
	struct builder b = { .max_rows = max_rows ? max_rows : UNWIND_TABLE_MAX_ROWS };
	struct cfi_files f = { .fd = -1, .dfd = -1 };
	int err, have = 0, broken = 0;

	f.elf = elfutil_open(path, &f.fd);
	if (!f.elf)
		return errno == ENOENT || errno == EFBIG ? -errno : -EINVAL;
	err = check_elf(&b, f.elf, true);
	if (!err) {
		b.ident = (const unsigned char *)elf_getident(f.elf, NULL);
		err = b.ident ? 0 : -EINVAL;
	}
	if (!err)
		err = read_eh_frame(&b, &f, &have, &broken);
	if (!err)
		err = read_debug_frame(&b, &f, debug_path, &have, &broken);
	/* libdw reads its own copies from here: the files' section bytes go first */
	files_close(&b, &f);
	if (!err)
		err = emit_table(&b, have, broken, ret);
	for (int i = 0; i < NSRC; i++)
		cfi_src_close(&b.src[i]);
	free(b.fdes.v);
	free(b.rows);
	return err;
}

void unwind_table__free(struct unwind_table *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t);
}

const struct unwind_row *unwind_table__find(const struct unwind_table *t, uint64_t pc)
{
	uint32_t lo = 0, hi;

	if (!t || !t->nrows || pc < t->min_pc || pc > t->max_pc)
		return NULL;
	hi = t->nrows;
	/* the last row whose pc <= pc */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->rows[mid].pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &t->rows[lo - 1] : NULL;
}
