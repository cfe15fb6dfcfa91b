// SPDX-License-Identifier: Apache-2.0
#include "unwind_table.h"

#include "elfutil.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* a row before merging: pc plus whether it only ends the previous FDE */
struct raw_row {
	struct unwind_row r;
	uint8_t terminator;
	uint8_t prio;		/* 0: .eh_frame, 1: .debug_frame */
};

struct builder {
	struct raw_row *rows;
	uint32_t n, cap, max;
	int err;
	struct unwind_table_stats st;
	/* FDE ranges of .eh_frame, to let it win over .debug_frame */
	uint64_t (*eh_ranges)[2];
	uint32_t neh, cap_eh;
};

static void push(struct builder *b, const struct unwind_row *r, bool term, uint8_t prio)
{
	if (b->err)
		return;
	if (b->n == b->cap) {
		uint32_t ncap = b->cap ? b->cap * 2 : 4096;
		struct raw_row *nr;

		if (b->n >= b->max) {
			b->err = -EFBIG;
			return;
		}
		nr = realloc(b->rows, ncap * sizeof(*nr));
		if (!nr) {
			b->err = -ENOMEM;
			return;
		}
		b->rows = nr;
		b->cap = ncap;
	}
	b->rows[b->n++] = (struct raw_row){ *r, term, prio };
}

/* "saved at CFA + off": DW_OP_call_frame_cfa, then DW_OP_plus_uconst/consts+plus */
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

/* The PLT's CFA: rsp + 8 + ((rip & 15) >= N) << 3 */
static bool is_plt_expr(const Dwarf_Op *o, size_t n, int32_t *ret_n)
{
	if (n != 9 || o[0].atom != DW_OP_breg7 || o[0].number != 8 || o[1].atom != DW_OP_breg16 ||
	    o[1].number != 0 || o[2].atom != DW_OP_lit15 || o[3].atom != DW_OP_and ||
	    o[4].atom < DW_OP_lit0 || o[4].atom > DW_OP_lit31 || o[5].atom != DW_OP_ge ||
	    o[6].atom != DW_OP_lit3 || o[7].atom != DW_OP_shl || o[8].atom != DW_OP_plus)
		return false;
	*ret_n = o[4].atom - DW_OP_lit0;
	return true;
}

static void translate(Dwarf_Frame *f, bool signal, struct unwind_row *r)
{
	Dwarf_Op mem[3], *ops;
	size_t n;
	int64_t off;

	r->cfa_type = CFA_UNSUPPORTED;
	r->rbp_type = RBP_SAME;
	r->cfa_offset = 0;
	r->rbp_offset = 0;
	if (signal) {
		r->cfa_type = CFA_SIGNAL;
		return;
	}
	/* the return address: undefined marks the outermost frame */
	if (dwarf_frame_register(f, REG_RA, mem, &ops, &n))
		return;
	if (n == 0 && ops == mem) {
		r->cfa_type = CFA_END;
		return;
	}
	if (!at_cfa(ops, n, &off) || off != -8)
		return;	/* x86_64: anything but CFA-8 is not ours to follow */

	if (dwarf_frame_cfa(f, &ops, &n) || n == 0)
		return;
	if (n == 1 && ops[0].atom == DW_OP_bregx &&
	    (ops[0].number == REG_RSP || ops[0].number == REG_RBP)) {
		int64_t o = (int64_t)ops[0].number2;

		if (o < INT32_MIN || o > INT32_MAX)
			return;
		r->cfa_type = ops[0].number == REG_RSP ? CFA_SP : CFA_FP;
		r->cfa_offset = (int32_t)o;
	} else if (n == 1 && (ops[0].atom == DW_OP_breg7 || ops[0].atom == DW_OP_breg6)) {
		r->cfa_type = ops[0].atom == DW_OP_breg7 ? CFA_SP : CFA_FP;
		r->cfa_offset = (int32_t)(int64_t)ops[0].number;
	} else if (is_plt_expr(ops, n, &r->cfa_offset)) {
		r->cfa_type = CFA_PLT;
	} else {
		return;
	}

	if (dwarf_frame_register(f, REG_RBP, mem, &ops, &n)) {
		r->rbp_type = RBP_UNSUPPORTED;
	} else if (n == 0 && ops == NULL) {
		r->rbp_type = RBP_SAME;
	} else if (at_cfa(ops, n, &off) && off >= INT16_MIN && off <= INT16_MAX) {
		r->rbp_type = RBP_AT_CFA;
		r->rbp_offset = (int16_t)off;
	} else {
		r->rbp_type = RBP_UNSUPPORTED;
	}
}

/* Reads one encoded pointer (DW_EH_PE_*); returns bytes used or 0 when unsupported. */
static size_t read_encoded(const uint8_t *p, const uint8_t *end, uint8_t enc, uint64_t field_addr,
			   uint64_t *ret)
{
	uint64_t v = 0;
	size_t len;

	if (enc == DW_EH_PE_omit)
		return 0;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		len = 8;
		break;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4:
		len = 4;
		break;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2:
		len = 2;
		break;
	default:
		return 0;	/* uleb128 pointers: never seen for FDEs on x86_64 */
	}
	if (p + len > end)
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
	default:
		return 0;
	}
	*ret = v;
	return len;
}

static size_t encoded_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8: return 8;
	case DW_EH_PE_udata4: case DW_EH_PE_sdata4: return 4;
	case DW_EH_PE_udata2: case DW_EH_PE_sdata2: return 2;
	default: return 0;
	}
}

/* The FDE pointer encoding a CIE announces with 'R' (absptr for .debug_frame). */
static int cie_fde_encoding(const Dwarf_CIE *cie, uint8_t *ret)
{
	const char *aug = cie->augmentation;
	const uint8_t *d = cie->augmentation_data;
	size_t i = 0, n = cie->augmentation_data_size;

	*ret = DW_EH_PE_absptr;
	if (!aug || aug[0] != 'z')
		return aug && aug[0] ? -EINVAL : 0;
	for (aug++; *aug; aug++) {
		switch (*aug) {
		case 'P': {
			size_t sz;

			if (i >= n)
				return -EINVAL;
			sz = encoded_size(d[i]);
			if (!sz)
				return -EINVAL;
			i += 1 + sz;
			break;
		}
		case 'L':
			i++;
			break;
		case 'R':
			if (i >= n)
				return -EINVAL;
			*ret = d[i++];
			return 0;
		case 'S':
		case 'B':
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static bool covered_by_eh(const struct builder *b, uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < b->neh; i++)
		if (lo < b->eh_ranges[i][1] && hi > b->eh_ranges[i][0])
			return true;
	return false;
}

static void note_eh_range(struct builder *b, uint64_t lo, uint64_t hi)
{
	if (b->neh == b->cap_eh) {
		uint32_t ncap = b->cap_eh ? b->cap_eh * 2 : 1024;
		uint64_t(*nr)[2] = realloc(b->eh_ranges, ncap * sizeof(*nr));

		if (!nr) {
			b->err = -ENOMEM;
			return;
		}
		b->eh_ranges = nr;
		b->cap_eh = ncap;
	}
	b->eh_ranges[b->neh][0] = lo;
	b->eh_ranges[b->neh][1] = hi;
	b->neh++;
}

/* Emits the rows of one FDE range by asking libdw for the rule at each step. */
static void fde_rows(struct builder *b, Dwarf_CFI *cfi, uint64_t lo, uint64_t hi, uint8_t prio)
{
	uint64_t addr = lo;
	struct unwind_row r;

	if (hi <= lo || hi > UINT32_MAX) {
		b->st.fdes_bad++;
		return;
	}
	while (addr < hi && !b->err) {
		Dwarf_Frame *f;
		Dwarf_Addr start, end;
		bool signal = false;

		if (dwarf_cfi_addrframe(cfi, addr, &f)) {
			b->st.fdes_bad++;
			break;
		}
		if (dwarf_frame_info(f, &start, &end, &signal) < 0 || end <= addr) {
			free(f);
			b->st.fdes_bad++;
			break;
		}
		translate(f, signal, &r);
		free(f);
		r.pc = (uint32_t)addr;
		if (r.cfa_type == CFA_UNSUPPORTED)
			b->st.rows_unsupported++;
		push(b, &r, false, prio);
		b->st.rows_raw++;
		addr = end;
	}
	/* the gap after this FDE belongs to nobody, unless a later FDE starts here */
	r = (struct unwind_row){ .pc = (uint32_t)hi, .cfa_type = CFA_UNSUPPORTED };
	push(b, &r, true, prio);
}

/* Walks every CIE/FDE of a CFI section. */
static int walk_section(struct builder *b, Elf *elf, Dwarf_CFI *cfi, bool eh)
{
	const char *ident = elf_getident(elf, NULL);
	Elf_Data *data;
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, eh ? ".eh_frame" : ".debug_frame", &sh);
	Dwarf_Off off = 0, next;
	int found = 0;

	if (!scn || !ident)
		return -ENOENT;
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || !data->d_size)
		return -ENOENT;
	for (int guard = 0; guard < 10000000 && !b->err; guard++) {
		Dwarf_CFI_Entry entry, cie_entry;
		Dwarf_Off cie_next;
		uint64_t lo, range;
		uint8_t enc;
		size_t n1, n2;
		const uint8_t *p, *end;
		int rc = dwarf_next_cfi((const unsigned char *)ident, data, eh, off, &next, &entry);

		if (rc > 0)
			break;
		if (rc < 0) {
			b->st.fdes_bad++;
			if (next == (Dwarf_Off)-1 || next <= off)
				break;
			off = next;
			continue;
		}
		off = next;
		if (dwarf_cfi_cie_p(&entry))
			continue;
		b->st.fdes++;
		/* its CIE tells how the FDE's addresses are encoded */
		if (dwarf_next_cfi((const unsigned char *)ident, data, eh, entry.fde.CIE_pointer,
				   &cie_next, &cie_entry) != 0 ||
		    !dwarf_cfi_cie_p(&cie_entry) || cie_fde_encoding(&cie_entry.cie, &enc)) {
			b->st.fdes_bad++;
			continue;
		}
		p = entry.fde.start;
		end = entry.fde.end;
		if (p < (const uint8_t *)data->d_buf || end > (const uint8_t *)data->d_buf + data->d_size)
			continue;
		n1 = read_encoded(p, end, enc, sh.sh_addr + (uint64_t)(p - (uint8_t *)data->d_buf), &lo);
		n2 = n1 ? read_encoded(p + n1, end, enc & 0x0f, 0, &range) : 0;
		if (!n1 || !n2 || !range || lo + range < lo) {
			b->st.fdes_bad++;
			continue;
		}
		if (eh) {
			note_eh_range(b, lo, lo + range);
			b->st.from_eh_frame++;
		} else {
			if (covered_by_eh(b, lo, lo + range))
				continue;
			b->st.from_debug_frame++;
		}
		fde_rows(b, cfi, lo, lo + range, eh ? 0 : 1);
		found++;
	}
	return found ? 0 : -ENOENT;
}

/* x86_64 ELF files only: the rows assume its registers and return address */
static Elf *open_elf(const char *path, int *ret_fd)
{
	Elf *elf = elfutil_open(path, ret_fd);
	GElf_Ehdr eh;

	if (elf && (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64 ||
		    gelf_getclass(elf) != ELFCLASS64)) {
		elfutil_close(elf, *ret_fd);
		errno = EINVAL;
		return NULL;
	}
	return elf;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct raw_row *x = a, *y = b;

	if (x->r.pc != y->r.pc)
		return x->r.pc < y->r.pc ? -1 : 1;
	/* at one pc: a real row beats an FDE's end marker, .eh_frame beats .debug_frame */
	if (x->terminator != y->terminator)
		return x->terminator ? -1 : 1;
	return (int)y->prio - (int)x->prio;
}

static bool same_rule(const struct unwind_row *a, const struct unwind_row *b)
{
	return a->cfa_type == b->cfa_type && a->cfa_offset == b->cfa_offset &&
	       a->rbp_type == b->rbp_type && a->rbp_offset == b->rbp_offset;
}

int unwind_table__build(const char *path, const char *debug_path, uint32_t max_rows,
			struct unwind_table **ret)
{
	struct builder b = { .max = max_rows ? max_rows : 4u << 20 };
	struct unwind_table *t = NULL;
	int fd = -1, dfd = -1, err = 0, have = 0;
	Elf *elf, *delf = NULL;
	void *mini_buf = NULL;
	Dwarf_CFI *eh_cfi = NULL;
	Dwarf *dw = NULL;

	elf_version(EV_CURRENT);
	elf = open_elf(path, &fd);
	if (!elf)
		return errno == ENOENT ? -ENOENT : -EINVAL;

	eh_cfi = dwarf_getcfi_elf(elf);
	if (eh_cfi && walk_section(&b, elf, eh_cfi, true) == 0)
		have++;
	/* .debug_frame: the separate debug file's, else MiniDebugInfo's, else the file's own */
	if (debug_path)
		delf = open_elf(debug_path, &dfd);
	if (!delf) {
		int merr;

		delf = elfutil_minidebuginfo(elf, 64u << 20, &mini_buf, &merr);
	}
	dw = dwarf_begin_elf(delf ? delf : elf, DWARF_C_READ, NULL);
	if (dw) {
		Dwarf_CFI *dcfi = dwarf_getcfi(dw);

		if (dcfi && walk_section(&b, delf ? delf : elf, dcfi, false) == 0)
			have++;
	}
	if (b.err) {
		err = b.err;
		goto out;
	}
	if (!have || !b.n) {
		err = -ENOENT;
		goto out;
	}

	qsort(b.rows, b.n, sizeof(*b.rows), cmp_raw);
	t = calloc(1, sizeof(*t));
	if (!t || !(t->rows = malloc(b.n * sizeof(*t->rows)))) {
		err = -ENOMEM;
		goto out;
	}
	t->min_pc = b.rows[0].r.pc;
	t->max_pc = b.rows[b.n - 1].r.pc;
	for (uint32_t i = 0; i < b.n; i++) {
		const struct unwind_row *r = &b.rows[i].r;

		/* the last row at a pc wins (sorted so that it is the best one) */
		if (i + 1 < b.n && b.rows[i + 1].r.pc == r->pc)
			continue;
		if (t->nrows && same_rule(&t->rows[t->nrows - 1], r))
			continue;	/* merge identical neighbours */
		t->rows[t->nrows++] = *r;
	}
	t->stats = b.st;
out:
	if (err) {
		unwind_table__free(t);
		t = NULL;
	}
	dwarf_end(dw);
	if (eh_cfi)
		dwarf_cfi_end(eh_cfi);
	elfutil_close(delf, dfd);
	free(mini_buf);
	elfutil_close(elf, fd);
	free(b.rows);
	free(b.eh_ranges);
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
	uint32_t lo = 0, hi = t->nrows;

	if (!t->nrows || pc < t->rows[0].pc || pc > UINT32_MAX)
		return NULL;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->rows[mid].pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return &t->rows[lo - 1];
}
