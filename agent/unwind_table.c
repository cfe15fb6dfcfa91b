// SPDX-License-Identifier: Apache-2.0
/*
 * CFI -> unwind rows, in three passes:
 *
 * 1. list every FDE's [lo, hi) straight from the section bytes (dwarf_next_cfi
 *    plus our own reading of the address fields), dropping those outside the
 *    file's executable segments (tombstones of discarded functions, garbage);
 * 2. make the ranges disjoint: .eh_frame first (overlaps: the lower start
 *    wins), then .debug_frame for what .eh_frame leaves uncovered;
 * 3. in address order, ask libdw for the rule at each step of each range
 *    (dwarf_cfi_addrframe + dwarf_frame_info give [start, end) where it holds),
 *    so rows come out sorted and identical neighbours merge as they come.
 *
 * Cost: libdw re-runs an FDE's program from its start for each row we ask
 * for, so an FDE of k rows costs ~k^2/2 instruction steps (measured: 4000
 * rows 11 ms, 40000 rows 1.1 s). Real code stays far below (largest seen:
 * 6678 rows in gcc's cc1plus); FDE_MAX_ROWS and WORK_BUDGET bound what a
 * crafted file can cost.
 */
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
/* instruction steps libdw may run per file (~1.5 ns each): cc1plus needs 35M */
#define WORK_BUDGET (1ull << 28)
/* a .debug_frame is a few MB even for the largest libraries */
#define DEBUG_FRAME_MAX (256ull << 20)
#define MAX_EXEC_SEGS 32
/* decompressed MiniDebugInfo: a symbol table, rarely CFI */
#define MINIDEBUG_MAX (64u << 20)

enum { SRC_EH = 0, SRC_DEBUG = 1, NSRC };

/* One CFI section: its raw bytes for pass 1, libdw's reader for pass 3. */
struct cfi_src {
	Dwarf_CFI *cfi;
	const uint8_t *buf;
	size_t size;
	uint64_t addr;		/* vaddr of buf[0], for pc-relative pointers (.eh_frame) */
	/* the last CIE looked up: FDEs mostly share one */
	Dwarf_Off cie_off;
	int cie_enc;		/* its FDE pointer encoding, -1 unusable, -2 none cached */
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

/* The separate .debug_frame reader: an in-memory ELF holding only that section. */
struct debug_frame {
	void *image;
	Elf *elf;
	Dwarf *dw;
};

static int range_push(struct range_list *l, const struct fde_range *r)
{
	if (l->n == l->cap) {
		uint32_t ncap = l->cap ? l->cap * 2 : 1024;
		struct fde_range *nv;

		if (ncap <= l->cap)
			return -EFBIG;
		nv = realloc(l->v, (size_t)ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
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

/* Size of one encoded pointer's value (DW_EH_PE_* low bits), 0 when variable/unknown. */
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
 * Reads one encoded pointer at p (vaddr field_addr when pc-relative matters).
 * Only what FDEs and .eh_frame_hdr use: fixed sizes, absolute or pc/data-relative.
 * Returns the bytes read, 0 when unsupported or truncated.
 */
static size_t read_encoded(const uint8_t *p, const uint8_t *end, uint8_t enc, uint64_t field_addr,
			   uint64_t data_addr, uint64_t *ret)
{
	size_t len = encoded_size(enc);
	uint64_t v = 0;

	if (enc == DW_EH_PE_omit || !len || (size_t)(end - p) < len)
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
	if (enc & DW_EH_PE_indirect)
		return 0;
	*ret = v;
	return len;
}

/* Skips an (s|u)leb128; false when it runs past end. */
static bool skip_leb128(const uint8_t **p, const uint8_t *end)
{
	while (*p < end)
		if (!(*(*p)++ & 0x80))
			return true;
	return false;
}

/* The FDE pointer encoding a CIE announces with 'R' (absptr without one). */
static int cie_fde_encoding(const Dwarf_CIE *cie, uint8_t *ret)
{
	const char *aug = cie->augmentation;
	const uint8_t *d = cie->augmentation_data, *end = d + cie->augmentation_data_size;

	*ret = DW_EH_PE_absptr;
	if (!aug || !aug[0])
		return 0;
	if (aug[0] != 'z')
		return -EINVAL;	/* "eh" and other pre-'z' forms: layout unknown */
	for (aug++; *aug; aug++) {
		switch (*aug) {
		case 'P': {
			uint8_t penc;

			if (d >= end)
				return -EINVAL;
			penc = *d++;
			if ((penc & 0x0f) == DW_EH_PE_uleb128 || (penc & 0x0f) == DW_EH_PE_sleb128) {
				if (!skip_leb128(&d, end))
					return -EINVAL;
			} else if (!encoded_size(penc) || (size_t)(end - d) < encoded_size(penc)) {
				return -EINVAL;
			} else {
				d += encoded_size(penc);
			}
			break;
		}
		case 'L':
			if (d >= end)
				return -EINVAL;
			d++;
			break;
		case 'R':
			if (d >= end)
				return -EINVAL;
			*ret = *d;
			return 0;
		case 'S':
		case 'B':
		case 'G':
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

/* The range of one FDE, or -EINVAL. */
static int fde_bounds(struct builder *b, struct cfi_src *s, bool eh, const Dwarf_CFI_Entry *e,
		      uint64_t *ret_lo, uint64_t *ret_hi)
{
	const uint8_t *p = e->fde.start, *end = e->fde.end;
	uint64_t lo, range;
	size_t n1, n2;

	if (e->fde.CIE_pointer != s->cie_off || s->cie_enc == -2) {
		Dwarf_CFI_Entry cie;
		Dwarf_Off next;
		uint8_t enc;

		s->cie_off = e->fde.CIE_pointer;
		s->cie_enc = -1;
		if (dwarf_next_cfi(b->ident, &(Elf_Data){ .d_buf = (void *)s->buf, .d_size = s->size },
				   eh, e->fde.CIE_pointer, &next, &cie) == 0 &&
		    dwarf_cfi_cie_p(&cie) && cie_fde_encoding(&cie.cie, &enc) == 0)
			s->cie_enc = enc;
	}
	if (s->cie_enc < 0)
		return -EINVAL;
	/* .debug_frame is not loaded: only absolute addresses mean anything there */
	if (!eh && (s->cie_enc & 0x70) != DW_EH_PE_absptr)
		return -EINVAL;
	if (p < s->buf || end > s->buf + s->size || p > end)
		return -EINVAL;
	n1 = read_encoded(p, end, (uint8_t)s->cie_enc, s->addr + (uint64_t)(p - s->buf), 0, &lo);
	n2 = n1 ? read_encoded(p + n1, end, (uint8_t)s->cie_enc & 0x0f, 0, 0, &range) : 0;
	/* lo == 0: the tombstone linkers leave for a discarded function */
	if (!n1 || !n2 || !range || !lo || lo + range < lo ||
	    !in_exec_segment(b, lo, lo + range))
		return -EINVAL;
	*ret_lo = lo;
	*ret_hi = lo + range;
	return 0;
}

/* Pass 1: the range of every FDE of one section. */
static int collect_fdes(struct builder *b, int which)
{
	struct cfi_src *s = &b->src[which];
	Elf_Data data = { .d_buf = (void *)s->buf, .d_size = s->size };
	bool eh = which == SRC_EH;
	Dwarf_Off off = 0;
	uint32_t seq = 0;
	int err = 0;

	s->cie_enc = -2;
	while (!err) {
		Dwarf_CFI_Entry e;
		Dwarf_Off next = (Dwarf_Off)-1;
		struct fde_range r;
		int rc = dwarf_next_cfi(b->ident, &data, eh, off, &next, &e);

		if (rc > 0)
			break;		/* the end, or .eh_frame's zero terminator */
		if (rc < 0 || next == (Dwarf_Off)-1 || next <= off) {
			/* without a sane length nothing after this entry can be trusted */
			b->st.fdes_bad++;
			break;
		}
		off = next;
		if (dwarf_cfi_cie_p(&e))
			continue;
		b->st.fdes++;
		if (fde_bounds(b, s, eh, &e, &r.lo, &r.hi)) {
			b->st.fdes_bad++;
			continue;
		}
		r.fde_lo = r.lo;
		r.seq = seq++;
		r.src = (uint8_t)which;
		err = range_push(&b->fdes, &r);
	}
	return err;
}

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
 * Pass 2: disjoint ranges, sorted. .eh_frame keeps what it covers (between
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
 * Pass 3 for one range: a row per step of its FDE's program, then a gap row at
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

		b->work += k + 1;
		if (b->work > WORK_BUDGET)
			return -EFBIG;
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
static int eh_frame_from_phdr(Elf *elf, struct cfi_src *s)
{
	GElf_Phdr hdr_ph = { 0 }, ph;
	size_t phnum;
	Elf_Data *d;
	const uint8_t *p;
	uint64_t ptr;
	bool found = false;

	if (elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum && !found; i++)
		if (gelf_getphdr(elf, (int)i, &hdr_ph) && hdr_ph.p_type == PT_GNU_EH_FRAME)
			found = true;
	if (!found || hdr_ph.p_filesz < 8)
		return -ENOENT;
	d = elf_getdata_rawchunk(elf, (int64_t)hdr_ph.p_offset, hdr_ph.p_filesz, ELF_T_BYTE);
	if (!d || !d->d_buf || d->d_size < 8)
		return -EINVAL;
	p = d->d_buf;
	if (p[0] != 1 ||
	    !read_encoded(p + 4, p + d->d_size, p[1], hdr_ph.p_vaddr + 4, hdr_ph.p_vaddr, &ptr))
		return -EINVAL;
	for (size_t i = 0; i < phnum; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || ptr < ph.p_vaddr ||
		    ptr - ph.p_vaddr >= ph.p_filesz)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)(ph.p_offset + (ptr - ph.p_vaddr)),
					 ph.p_filesz - (ptr - ph.p_vaddr), ELF_T_BYTE);
		if (!d || !d->d_buf)
			return -EINVAL;
		s->buf = d->d_buf;
		s->size = d->d_size;
		s->addr = ptr;
		return 0;
	}
	return -EINVAL;
}

static int open_eh_frame(Elf *elf, struct cfi_src *s)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".eh_frame", &sh);
	Elf_Data *d;
	int err;

	size_t nscn;

	if (scn) {
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || !d->d_size)
			return -ENOENT;
		s->buf = d->d_buf;
		s->size = d->d_size;
		s->addr = sh.sh_addr;
	} else if (elf_getshdrnum(elf, &nscn) || nscn > 0) {
		return -ENOENT;	/* sections, but no .eh_frame (a stale PT_GNU_EH_FRAME is no proof) */
	} else if ((err = eh_frame_from_phdr(elf, s))) {
		return err;
	}
	s->cfi = dwarf_getcfi_elf(elf);
	return s->cfi ? 0 : -EINVAL;
}

static void debug_frame_close(struct debug_frame *df)
{
	dwarf_end(df->dw);
	elf_end(df->elf);
	free(df->image);
}

/*
 * libdw reads .debug_frame only through a Dwarf, and dwarf_begin_elf
 * decompresses every compressed debug section of the file up front: a whole
 * .debug_info to get at a few MB of CFI. So hand it a minimal ELF in memory
 * that holds .debug_frame alone.
 */
static int open_debug_frame(Elf *elf, struct debug_frame *df, struct cfi_src *s)
{
	static const char shstr[] = "\0.debug_frame\0.shstrtab";
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".debug_frame", &sh);
	Elf_Data *d;
	Elf64_Ehdr *eh;
	Elf64_Shdr *shdr;
	size_t data_off = sizeof(Elf64_Ehdr), str_off, sh_off, len;
	uint8_t *img;

	if (!scn)
		return -ENOENT;
	if (sh.sh_flags & SHF_COMPRESSED) {
		GElf_Chdr ch;

		/* zlib cannot expand more than ~1032:1: a larger claim is a bomb */
		if (!gelf_getchdr(scn, &ch) || ch.ch_size > DEBUG_FRAME_MAX ||
		    ch.ch_size / 1032 > sh.sh_size || elf_compress(scn, 0, 0) < 0)
			return -EINVAL;
	}
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf || !d->d_size)
		return -ENOENT;
	if (d->d_size > DEBUG_FRAME_MAX)
		return -EFBIG;
	str_off = data_off + d->d_size;
	sh_off = (str_off + sizeof(shstr) + 7) & ~(size_t)7;
	len = sh_off + 3 * sizeof(Elf64_Shdr);
	img = calloc(1, len);
	if (!img)
		return -ENOMEM;
	df->image = img;
	eh = (Elf64_Ehdr *)img;
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
	memcpy(img + data_off, d->d_buf, d->d_size);
	memcpy(img + str_off, shstr, sizeof(shstr));
	shdr = (Elf64_Shdr *)(img + sh_off);
	shdr[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_PROGBITS, .sh_offset = data_off,
				.sh_size = d->d_size, .sh_addralign = 1 };
	shdr[2] = (Elf64_Shdr){ .sh_name = 14, .sh_type = SHT_STRTAB, .sh_offset = str_off,
				.sh_size = sizeof(shstr), .sh_addralign = 1 };
	df->elf = elf_memory((char *)img, len);
	df->dw = df->elf ? dwarf_begin_elf(df->elf, DWARF_C_READ, NULL) : NULL;
	s->cfi = df->dw ? dwarf_getcfi(df->dw) : NULL;
	if (!s->cfi)
		return -EINVAL;
	s->buf = img + data_off;
	s->size = d->d_size;
	s->addr = 0;
	return 0;
}

/* The ELF file in .gnu_debugdata (MiniDebugInfo), decompressed once, on first need. */
static Elf *minidebuginfo(Elf *elf, bool *tried, void **buf)
{
	Elf *mini;
	int err;

	if (*tried)
		return NULL;
	*tried = true;
	mini = elfutil_minidebuginfo(elf, MINIDEBUG_MAX, buf, &err);
	if (!mini)
		return NULL;
	if (elf_kind(mini) != ELF_K_ELF || gelf_getclass(mini) != ELFCLASS64 ||
	    elf_getident(mini, NULL)[EI_DATA] != ELFDATA2LSB) {
		elf_end(mini);
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	return mini;
}

int unwind_table__build(const char *path, const char *debug_path, uint32_t max_rows,
			struct unwind_table **ret)
{
	struct builder b = { .max_rows = max_rows ? max_rows : UNWIND_TABLE_MAX_ROWS };
	struct debug_frame df = { 0 };
	struct range_list own = { 0 };
	struct unwind_table *t = NULL;
	Elf *elf, *delf = NULL, *mini = NULL;
	void *mini_buf = NULL;
	bool mini_tried = false;
	int fd = -1, dfd = -1, err, have = 0, broken = 0;

	elf = elfutil_open(path, &fd);
	if (!elf)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	err = check_elf(&b, elf, true);
	if (err)
		goto out;
	b.ident = (const unsigned char *)elf_getident(elf, NULL);
	if (!b.ident) {
		err = -EINVAL;
		goto out;
	}

	/* .eh_frame: the file's own, else (rarely) MiniDebugInfo's */
	err = open_eh_frame(elf, &b.src[SRC_EH]);
	if (err == -ENOENT && (mini = minidebuginfo(elf, &mini_tried, &mini_buf)))
		err = open_eh_frame(mini, &b.src[SRC_EH]);
	broken += err == -EINVAL;
	if (err == 0) {
		have++;
		err = collect_fdes(&b, SRC_EH);
		if (err)
			goto out;
	}

	/* .debug_frame: the separate debug file's, else MiniDebugInfo's, else the file's own */
	if (debug_path) {
		delf = elfutil_open(debug_path, &dfd);
		if (delf && check_elf(&b, delf, false)) {
			elfutil_close(delf, dfd);
			delf = NULL;
		}
		if (!delf)
			log_debug("unwind table: ignoring debug file %s", debug_path);
	}
	err = delf ? open_debug_frame(delf, &df, &b.src[SRC_DEBUG]) : -ENOENT;
	if (err == -ENOENT && (mini || (mini = minidebuginfo(elf, &mini_tried, &mini_buf))))
		err = open_debug_frame(mini, &df, &b.src[SRC_DEBUG]);
	if (err == -ENOENT)
		err = open_debug_frame(elf, &df, &b.src[SRC_DEBUG]);
	broken += err == -EINVAL;
	if (err == 0) {
		have++;
		err = collect_fdes(&b, SRC_DEBUG);
		if (err)
			goto out;
	}

	err = own_ranges(&b, &own);
	if (err)
		goto out;
	for (uint32_t i = 0; i < own.n && !err; i++)
		err = emit_range(&b, &own.v[i], i + 1 < own.n ? own.v[i + 1].lo : 0);
	if (err)
		goto out;
	if (!b.nrows) {
		/* sections, but nothing usable in them: corrupt rather than absent */
		err = broken || (have && b.st.fdes_bad) ? -EINVAL : -ENOENT;
		goto out;
	}

	t = calloc(1, sizeof(*t));
	if (!t) {
		err = -ENOMEM;
		goto out;
	}
	t->rows = b.rows;
	t->nrows = b.nrows;
	b.rows = NULL;
	t->min_pc = own.v[0].lo;
	t->max_pc = own.v[own.n - 1].hi - 1;
	t->stats = b.st;
out:
	debug_frame_close(&df);
	if (b.src[SRC_EH].cfi)
		dwarf_cfi_end(b.src[SRC_EH].cfi);
	elf_end(mini);
	free(mini_buf);
	elfutil_close(delf, dfd);
	elfutil_close(elf, fd);
	free(own.v);
	free(b.fdes.v);
	free(b.rows);
	if (!err)
		*ret = t;
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
