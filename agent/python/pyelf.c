// SPDX-License-Identifier: Apache-2.0
#include "pyelf.h"

#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfutil.h"

#define SYMTAB_BUDGET (64u << 20)	/* bytes of one symbol table read */
#define LOADER_BYTES 64			/* of PyGILState_GetThisThreadState decoded */
#define EVAL_BYTES (512u << 10)		/* of the loop's code scanned for its jumps */
#define COLD_MIN_JUMPS 2		/* jumps into a CFI range that make it the loop's */

/* glibc x86_64 (2.31 to 2.43): struct pthread's specific_1stblock, from fsbase */
#define GLIBC_SPECIFIC_1STBLOCK 0x310

/* One minor version's layout (x86_64, release builds with the GIL). */
struct py_version {
	int minor;
	uint32_t key_in_runtime;	/* _PyRuntime's autoTSSkey._key, when the code says nothing */
	uint16_t ts_frame, cframe_frame, ts_thread_id, f_code, f_back, f_instr, f_entry, co_code;
	uint8_t entry, instr, entry_owner, code_tag_mask;
};

static const struct py_version versions[] = {
	{ 8, 1396, 24, PY_OFF_NONE, 176, 32, 24, 104, PY_OFF_NONE, 0, PY_ENTRY_ONE,
	  PY_INSTR_LASTI_BYTES, 0, 0 },
	{ 9, 588, 24, PY_OFF_NONE, 176, 32, 24, 104, PY_OFF_NONE, 0, PY_ENTRY_ONE,
	  PY_INSTR_LASTI_BYTES, 0, 0 },
	{ 10, 588, 24, PY_OFF_NONE, 176, 32, 24, 96, PY_OFF_NONE, 0, PY_ENTRY_ONE,
	  PY_INSTR_LASTI_UNITS, 0, 0 },
	{ 11, 596, 56, 8, 152, 32, 48, 56, 68, 184, PY_ENTRY_FLAG, PY_INSTR_PTR, 0, 0 },
	{ 12, 1548, 56, 0, 136, 0, 8, 56, 70, 192, PY_ENTRY_SHIM, PY_INSTR_PTR, 3, 0 },
	{ 13, 2164, 72, PY_OFF_NONE, 152, 0, 8, 56, 70, 200, PY_ENTRY_SHIM, PY_INSTR_PTR, 3, 0 },
	{ 14, 2340, 72, PY_OFF_NONE, 152, 0, 8, 56, 74, 208, PY_ENTRY_SHIM, PY_INSTR_PTR, 3, 3 },
};

struct py_syms {
	GElf_Sym eval, runtime, version, loader, code_type;
	unsigned found;	/* bits: which of the above */
};

enum { S_EVAL = 1, S_RUNTIME = 2, S_VERSION = 4, S_LOADER = 8, S_CODE_TYPE = 16 };

static void note_sym(struct py_syms *s, const char *name, const GElf_Sym *sym)
{
	static const struct {
		const char *name;
		unsigned bit;
		size_t off;
	} want[] = {
		{ "_PyEval_EvalFrameDefault", S_EVAL, offsetof(struct py_syms, eval) },
		{ "_PyRuntime", S_RUNTIME, offsetof(struct py_syms, runtime) },
		{ "Py_Version", S_VERSION, offsetof(struct py_syms, version) },
		{ "PyGILState_GetThisThreadState", S_LOADER, offsetof(struct py_syms, loader) },
		{ "PyCode_Type", S_CODE_TYPE, offsetof(struct py_syms, code_type) },
	};

	if (!sym->st_value || sym->st_shndx == SHN_UNDEF)
		return;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!(s->found & want[i].bit) && !strcmp(name, want[i].name)) {
			memcpy((char *)s + want[i].off, sym, sizeof(*sym));
			s->found |= want[i].bit;
		}
}

static int note_one(void *arg, const char *name, const GElf_Sym *sym)
{
	if (name[0] == '_' || name[0] == 'P')
		note_sym(arg, name, sym);
	return 0;
}

/* The symbols we need from .dynsym (or .symtab, in a file not stripped). */
static int find_syms(Elf *elf, int fd, Elf64_Word type, struct py_syms *s)
{
	int err = elfutil_each_sym(elf, fd, type, SYMTAB_BUDGET, note_one, s);

	return err == -ENOENT ? -ENOENT : err ? -EINVAL : 0;
}

/*
 * x86_64 instructions of the loader's first lines: the key's address is the
 * first one loaded into the first argument (%edi: the key; %rdi: the Py_tss_t
 * whose key is its second int). Only the shapes compilers give it are decoded;
 * anything else ends the scan.
 */
uint64_t pyelf_key_from_code(const uint8_t *c, size_t len, uint64_t pc)
{
	size_t i = 0;

	while (i + 8 <= len) {
		int32_t d;

		if (!memcmp(c + i, "\xf3\x0f\x1e\xfa", 4)) {		/* endbr64 */
			i += 4;
		} else if (c[i] == 0x48 && c[i + 1] == 0x83 && c[i + 2] == 0x3d) {
			i += 8;						/* cmpq $imm8, d(%rip) */
		} else if (c[i] == 0x83 && c[i + 1] == 0x3d) {
			i += 7;						/* cmpl $imm8, d(%rip) */
		} else if (c[i] == 0x74 || c[i] == 0x75) {
			i += 2;						/* je/jne rel8 */
		} else if (c[i] == 0x0f && (c[i + 1] == 0x84 || c[i + 1] == 0x85)) {
			i += 6;						/* je/jne rel32 */
		} else if (c[i] == 0x8b && c[i + 1] == 0x3d) {		/* mov d(%rip), %edi */
			memcpy(&d, c + i + 2, 4);
			return pc + i + 6 + (int64_t)d;
		} else if (c[i] == 0x48 && c[i + 1] == 0x8d && c[i + 2] == 0x3d) {	/* lea d(%rip), %rdi */
			memcpy(&d, c + i + 3, 4);
			return pc + i + 7 + (int64_t)d + 4;
		} else if (c[i] == 0xbf) {				/* mov $imm32, %edi */
			memcpy(&d, c + i + 1, 4);
			return (uint64_t)(uint32_t)d + 4;
		} else {
			return 0;
		}
	}
	return 0;
}

/*
 * "python3.11", "libpython3.12.so.1.0": the version in a file name, else -1. A
 * debug ("3.12d") or free-threaded ("3.13t") build's objects are laid out
 * otherwise: -ENOTSUP.
 */
static int version_from_name(const char *name, int *ret_minor)
{
	const char *b = strrchr(name, '/'), *p;
	int major, minor, end = 0;

	b = b ? b + 1 : name;
	p = strstr(b, "python");
	if (!p || sscanf(p + 6, "%d.%d%n", &major, &minor, &end) != 2 || major != 3)
		return -1;
	if (p[6 + end] == 'd' || p[6 + end] == 't')
		return -ENOTSUP;
	*ret_minor = minor;
	return 0;
}

static const struct py_version *version_of(int minor)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (versions[i].minor == minor)
			return &versions[i];
	return NULL;
}

/* The key's address: from the loader's code, checked to lie in _PyRuntime; else the table's. */
static uint64_t key_address(Elf *elf, int fd, const struct py_syms *s, const struct py_version *v)
{
	uint8_t code[LOADER_BYTES];
	uint64_t key = 0;

	if ((s->found & S_LOADER) && !elfutil_read_vaddr(elf, fd, EVAL_BYTES, s->loader.st_value, code, sizeof(code)))
		key = pyelf_key_from_code(code, sizeof(code), s->loader.st_value);
	if (key >= s->runtime.st_value && key + 4 <= s->runtime.st_value + s->runtime.st_size &&
	    key % 4 == 0)
		return key;
	return s->runtime.st_value + v->key_in_runtime;
}

/*
 * The FDE starts of .eh_frame_hdr's search table, sorted (the table gcc and ld
 * write: version 1, a 4-byte count, datarel sdata4 pairs). NULL when there is
 * none of that shape.
 */
static int32_t *fde_starts(Elf *elf, int fd, uint64_t *ret_base, uint32_t *ret_n)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".eh_frame_hdr", &sh);
	Elf_Data *d;
	const uint8_t *b;
	uint32_t n;
	int32_t *v;

	if (!scn || elfutil_getdata(fd, scn, SYMTAB_BUDGET, &d) || d->d_size < 12)
		return NULL;
	b = d->d_buf;
	/* version, eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4 */
	if (b[0] != 1 || b[1] != 0x1b || b[2] != 0x03 || b[3] != 0x3b)
		return NULL;
	memcpy(&n, b + 8, 4);
	if (!n || n > (d->d_size - 12) / 8 || !(v = malloc(n * sizeof(*v))))
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		memcpy(&v[i], b + 12 + 8 * (size_t)i, 4);
	*ret_base = sh.sh_addr;
	*ret_n = n;
	return v;
}

/* The FDE that holds target, as [lo, the next FDE's start): into the candidates, counted. */
static void note_target(const int32_t *starts, uint32_t n, uint64_t base, uint64_t target,
			uint64_t (*cand)[3], int *ncand)
{
	uint32_t lo = 0, hi = n;
	uint64_t from, to;
	int i;

	while (hi - lo > 1) {	/* the last start <= target */
		uint32_t mid = lo + (hi - lo) / 2;

		if (base + (int64_t)starts[mid] <= target)
			lo = mid;
		else
			hi = mid;
	}
	from = base + (int64_t)starts[lo];
	if (from > target || lo + 1 >= n)
		return;	/* before the first FDE, or in the last: no end known */
	to = base + (int64_t)starts[lo + 1];
	for (i = 0; i < *ncand && cand[i][0] != from; i++)
		;
	if (i == *ncand) {
		if (*ncand == 16)
			return;
		cand[(*ncand)++][0] = from;
		cand[i][1] = to;
		cand[i][2] = 0;
	}
	cand[i][2]++;
}

/*
 * The loop's parts outside its symbol: the FDEs that its direct jumps (jmp
 * rel32, jcc rel32) land in, each hit at least COLD_MIN_JUMPS times (a byte
 * pattern misread as a jump lands anywhere, once).
 */
static void cold_ranges(Elf *elf, int fd, struct py_elf *py)
{
	uint64_t start = py->ranges[0].start, len = py->ranges[0].end - start, cand[16][3], base = 0;
	uint32_t n = 0;
	int32_t *starts = fde_starts(elf, fd, &base, &n);
	uint8_t *c;
	int ncand = 0;

	len = len < EVAL_BYTES ? len : EVAL_BYTES;
	c = starts ? malloc(len) : NULL;
	if (!c || elfutil_read_vaddr(elf, fd, EVAL_BYTES, start, c, len)) {
		free(c);
		free(starts);
		return;
	}
	for (uint64_t i = 0; i + 6 <= len; i++) {
		int32_t d;
		uint64_t target;

		if (c[i] == 0xe9) {
			memcpy(&d, c + i + 1, 4);
			target = start + i + 5 + (int64_t)d;
		} else if (c[i] == 0x0f && (c[i + 1] & 0xf0) == 0x80) {
			memcpy(&d, c + i + 2, 4);
			target = start + i + 6 + (int64_t)d;
		} else {
			continue;
		}
		if (target < start || target >= py->ranges[0].end)
			note_target(starts, n, base, target, cand, &ncand);
	}
	for (int i = 0; i < ncand && py->nranges < PYELF_MAX_RANGES; i++)
		if (cand[i][2] >= COLD_MIN_JUMPS && cand[i][1] > cand[i][0] &&
		    cand[i][1] - cand[i][0] <= EVAL_BYTES) {
			py->ranges[py->nranges].start = cand[i][0];
			py->ranges[py->nranges++].end = cand[i][1];
		}
	free(c);
	free(starts);
}

int pyelf_read(Elf *elf, int fd, const char *name, struct py_elf *ret)
{
	struct py_syms s = { 0 };
	const struct py_version *v;
	uint32_t hex = 0;
	uint64_t basicsize = 0;
	uint8_t dbg[24];
	int minor = -1, named;

	memset(ret, 0, sizeof(*ret));
	if (find_syms(elf, fd, SHT_DYNSYM, &s) && find_syms(elf, fd, SHT_SYMTAB, &s))
		return -ENOENT;
	if ((s.found & (S_EVAL | S_RUNTIME)) != (S_EVAL | S_RUNTIME))
		return -ENOENT;
	named = version_from_name(name, &minor);
	if (named == -ENOTSUP)
		return -ENOTSUP;
	if ((s.found & S_VERSION) && !elfutil_read_vaddr(elf, fd, EVAL_BYTES, s.version.st_value, &hex, sizeof(hex)) &&
	    hex >> 24 == 3)
		minor = (int)(hex >> 16 & 0xff);
	else if (named)
		return -ENOTSUP;
	/* 3.13+: _PyRuntime starts with its debug offsets, which say a free-threaded build */
	if (minor >= 13 && (elfutil_read_vaddr(elf, fd, EVAL_BYTES, s.runtime.st_value, dbg, sizeof(dbg)) ||
			    memcmp(dbg, "xdebugpy", 8) || dbg[16]))
		return -ENOTSUP;
	v = version_of(minor);
	if (!v || !(s.found & S_CODE_TYPE))
		return -ENOTSUP;
	ret->major = 3;
	ret->minor = minor;
	ret->ranges[0].start = s.eval.st_value;
	ret->ranges[0].end = s.eval.st_value + (s.eval.st_size ? s.eval.st_size : 1);
	ret->nranges = 1;
	cold_ranges(elf, fd, ret);
	ret->layout = (struct py_proc){
		.tss_key_addr = key_address(elf, fd, &s, v),
		.code_type = s.code_type.st_value,
		.tls_specific = GLIBC_SPECIFIC_1STBLOCK,
		.ts_frame = v->ts_frame, .cframe_frame = v->cframe_frame,
		.ts_thread_id = v->ts_thread_id,
		.f_code = v->f_code, .f_back = v->f_back, .f_instr = v->f_instr,
		.f_entry = v->f_entry, .co_code = v->co_code,
		.entry = v->entry, .instr = v->instr, .entry_owner = v->entry_owner,
		.code_tag_mask = v->code_tag_mask,
	};
	/* 3.11+: the instructions start where a code object's fixed part ends */
	if (minor >= 11 && !elfutil_read_vaddr(elf, fd, EVAL_BYTES, s.code_type.st_value + 32, &basicsize, 8) &&
	    basicsize >= 160 && basicsize <= 512)
		ret->layout.co_code = (uint16_t)basicsize;
	return 0;
}
