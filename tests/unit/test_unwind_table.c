// SPDX-License-Identifier: Apache-2.0
/*
 * CFI -> unwind rows, checked against binutils' own reading of the same CFI
 * (readelf --debug-dump=frames-interp), on the system's libc and libstdc++ and
 * on programs built here; then corrupt inputs, which must give an error or a
 * partial table and never a crash (the unit tier runs under ASan/UBSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <dwarf.h>

#include "helpers.h"
#include "unwind_table.h"

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define LIBSTDCXX "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"

static char dir[256];

/* ---- programs built at test time ------------------------------------------ */

static const char prog_c[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"volatile long s;\n"
	"__attribute__((noinline)) long leaf(long x)\n"
	"{ long a[16]; for (int i = 0; i < 16; i++) a[i] = x + i; return a[x & 15]; }\n"
	"__attribute__((noinline)) long mid(long x)\n"
	"{ long r = leaf(x) + leaf(x + 1); s += r; return r * 3; }\n"
	"int main(int c, char **v)\n"
	"{ if (getenv(\"PROFLEET_NOPE\")) puts(v[0]); return (int)mid(c) & 1; }\n";

/* three objects: CFI in .eh_frame only, in .debug_frame only, in both */
static const char eh_c[] = "__attribute__((noinline)) long fa(long x)\n"
			   "{ volatile long a[8]; a[x & 7] = x; return a[(x + 1) & 7] + x; }\n";
static const char dbg_c[] = "__attribute__((noinline)) long fb(long x)\n"
			    "{ volatile long a[8]; a[x & 7] = x; return a[(x + 3) & 7] + x; }\n";
static const char both_c[] = "long fa(long), fb(long);\n"
			     "int main(int c, char **v) { (void)v; return (int)(fa(c) + fb(c)); }\n";

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	FILE *f;
	char path[512];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-cfi-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file("w.c", prog_c);
	write_file("eh.c", eh_c);
	write_file("dbg.c", dbg_c);
	write_file("both.c", both_c);
	/* -z lazy: a classic .plt, whose CFA is the PLT expression */
	sh("cd %s && gcc -O2 -fomit-frame-pointer -Wl,-z,lazy w.c -o nofp", dir);
	sh("cd %s && gcc -O0 -fno-omit-frame-pointer w.c -o fp", dir);
	sh("cd %s && gcc -O2 -g -fno-asynchronous-unwind-tables -fno-unwind-tables w.c -o dbg", dir);
	sh("cd %s && gcc -O2 -c eh.c && gcc -O2 -g -fno-asynchronous-unwind-tables -c dbg.c && "
	   "gcc -O2 -S both.c -o both.s && "
	   "sed -i '1i .cfi_sections .eh_frame, .debug_frame' both.s && "
	   "gcc eh.o dbg.o both.s -o mixed", dir);
	/* an FDE with more rows than the compiler asks libdw for */
	snprintf(path, sizeof(path), "%s/long.s", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(".text\n.globl longf\n.type longf,@function\nlongf:\n.cfi_startproc\n", f);
	for (int i = 0; i < 5000; i++)
		fputs("push %rax\n.cfi_adjust_cfa_offset 8\npop %rax\n.cfi_adjust_cfa_offset -8\n", f);
	fputs("ret\n.cfi_endproc\n.size longf,.-longf\n", f);
	assert_int_equal(fclose(f), 0);
	sh("cd %s && gcc -shared -nostdlib long.s -o long.so", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

/* Address and size of a symbol (.symtab, else .dynsym); the test fails without it. */
static uint64_t sym(const char *file, const char *name, uint64_t *ret_size)
{
	char cmd[700], *out;
	unsigned long long a = 0, sz = 0;

	snprintf(cmd, sizeof(cmd),
		 "readelf -sW --dyn-syms %s 2>/dev/null | awk '{ split($8, n, \"@\") } n[1] == \"%s\" && $2 != 0 "
		 "{ print $2, $3; exit }'", file, name);
	out = run_capture(cmd);
	assert_non_null(out);
	if (sscanf(out, "%llx %lli", &a, &sz) < 1)
		a = 0;
	free(out);
	if (!a)
		fprintf(stderr, "no symbol %s in %s\n", name, file);
	assert_true(a != 0);
	if (ret_size)
		*ret_size = sz;
	return a;
}

/* Address of a section, 0 when there is none. */
static uint64_t section_addr(const char *file, const char *name, uint64_t *ret_off,
			     uint64_t *ret_size)
{
	char cmd[700], *out;
	unsigned long long a = 0, off = 0, size = 0;

	snprintf(cmd, sizeof(cmd),
		 "readelf -SW %s 2>/dev/null | sed 's/^ *\\[ *[0-9]*\\]//' | "
		 "awk '$1 == \"%s\" { print $3, $4, $5 }'", file, name);
	out = run_capture(cmd);
	assert_non_null(out);
	if (sscanf(out, "%llx %llx %llx", &a, &off, &size) != 3)
		a = 0;
	free(out);
	if (ret_off)
		*ret_off = off;
	if (ret_size)
		*ret_size = size;
	return a;
}

/* ---- readelf's reading ------------------------------------------------------ */

struct ref_row {
	uint64_t pc;
	char cfa[24], rbp[24], ra[24];
};

struct ref_fde {
	uint64_t lo, hi, cie_off;
	int sec;	/* CIE offsets are per section: .eh_frame, .debug_frame */
	bool signal;
	size_t first, n;	/* its rows in ref.rows */
};

struct ref_cie {
	uint64_t off;
	int sec;
	bool signal;
	struct ref_row init;
};

struct ref {
	struct ref_row *rows;
	size_t nrows, cap_rows;
	struct ref_fde *fdes;
	size_t nfdes, cap_fdes;
	struct ref_cie cies[64];
	size_t ncies;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 1024;
	p = realloc(p, *cap * size);
	assert_non_null(p);
	return p;
}

/* Splits a line into cells: "r12 (r12)" (a register kept in another) stays one cell. */
static int cells(char *line, char **tok, int max)
{
	int n = 0;

	for (char *save = NULL, *t = strtok_r(line, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (t[0] == '(' && n > 0) {
			t[-1] = '_';	/* glue onto the previous cell */
			continue;
		}
		if (n < max)
			tok[n++] = t;
	}
	return n;
}

static int cmp_ref_fde(const void *a, const void *b)
{
	const struct ref_fde *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static const struct ref_cie *ref_cie(const struct ref *r, int sec, uint64_t off)
{
	for (size_t i = 0; i < r->ncies; i++)
		if (r->cies[i].sec == sec && r->cies[i].off == off)
			return &r->cies[i];
	return NULL;
}

/*
 * Reads `readelf -wF` of file: every FDE with its rows (readelf prints none
 * for an FDE without instructions: its CIE's initial row holds), and whether
 * its CIE has the 'S' augmentation.
 */
static void ref_load(const char *file, struct ref *r)
{
	char cmd[600], *out, *save = NULL, cols[48][16];
	struct ref_cie *cie = NULL;
	struct ref_fde *fde = NULL;
	int ncols = 0, sec = 0;

	memset(r, 0, sizeof(*r));
	snprintf(cmd, sizeof(cmd), "readelf -wF %s 2>/dev/null; true", file);
	out = run_capture(cmd);
	assert_non_null(out);
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[48];
		int n = cells(line, tok, 48);
		unsigned long long a, b;

		if (n >= 2 && !strcmp(tok[0], "Contents") && !strcmp(tok[1], "of")) {
			sec++;
			cie = NULL;
			fde = NULL;
		} else if (n >= 5 && !strcmp(tok[3], "CIE")) {
			assert_true(r->ncies < sizeof(r->cies) / sizeof(r->cies[0]));
			cie = &r->cies[r->ncies++];
			memset(cie, 0, sizeof(*cie));
			cie->off = strtoull(tok[0], NULL, 16);
			cie->sec = sec;
			cie->signal = strchr(tok[4], 'S') != NULL;
			fde = NULL;
			ncols = 0;
		} else if (n >= 6 && !strcmp(tok[3], "FDE") && !strncmp(tok[4], "cie=", 4) &&
			   sscanf(tok[5], "pc=%llx..%llx", &a, &b) == 2) {
			r->fdes = grow(r->fdes, &r->cap_fdes, r->nfdes, sizeof(*r->fdes));
			fde = &r->fdes[r->nfdes++];
			*fde = (struct ref_fde){ .lo = a, .hi = b, .first = r->nrows, .sec = sec,
						 .cie_off = strtoull(tok[4] + 4, NULL, 16) };
			cie = NULL;
			ncols = 0;
		} else if (n >= 2 && !strcmp(tok[0], "LOC")) {
			ncols = n - 2;
			for (int i = 0; i < ncols; i++)
				snprintf(cols[i], sizeof(cols[i]), "%s", tok[i + 2]);
		} else if (n >= 2 && strlen(tok[0]) == 16 && (fde || cie)) {
			struct ref_row row = { .pc = strtoull(tok[0], NULL, 16) };

			snprintf(row.cfa, sizeof(row.cfa), "%s", tok[1]);
			for (int i = 0; i < ncols && i + 2 < n; i++) {
				if (!strcmp(cols[i], "rbp"))
					snprintf(row.rbp, sizeof(row.rbp), "%s", tok[i + 2]);
				else if (!strcmp(cols[i], "ra"))
					snprintf(row.ra, sizeof(row.ra), "%s", tok[i + 2]);
			}
			if (fde) {
				r->rows = grow(r->rows, &r->cap_rows, r->nrows, sizeof(*r->rows));
				r->rows[r->nrows++] = row;
				fde->n++;
			} else if (cie->init.cfa[0] == '\0') {
				cie->init = row;
			}
		}
	}
	free(out);
	for (size_t i = 0; i < r->nfdes; i++) {
		struct ref_fde *f = &r->fdes[i];
		const struct ref_cie *c = ref_cie(r, f->sec, f->cie_off);

		assert_non_null(c);
		f->signal = c->signal;
		if (f->n)
			continue;
		r->rows = grow(r->rows, &r->cap_rows, r->nrows, sizeof(*r->rows));
		r->rows[r->nrows] = c->init;
		r->rows[r->nrows].pc = f->lo;
		f->first = r->nrows++;
		f->n = 1;
	}
	qsort(r->fdes, r->nfdes, sizeof(*r->fdes), cmp_ref_fde);
}

static void ref_free(struct ref *r)
{
	free(r->rows);
	free(r->fdes);
}

/* readelf's row at pc (NULL outside every FDE); *ret_fde: its FDE. */
static const struct ref_row *ref_at(const struct ref *r, uint64_t pc,
				    const struct ref_fde **ret_fde)
{
	const struct ref_row *best = NULL;

	for (size_t i = 0; i < r->nfdes; i++) {
		const struct ref_fde *f = &r->fdes[i];

		if (pc < f->lo || pc >= f->hi)
			continue;
		for (size_t k = 0; k < f->n; k++)
			if (r->rows[f->first + k].pc <= pc)
				best = &r->rows[f->first + k];
		*ret_fde = f;
		return best;
	}
	return NULL;
}

/* Whether our row says what readelf's row says; a reason when not. */
static const char *row_agrees(const struct unwind_row *u, const struct ref_row *x, bool signal)
{
	if (!u)
		return "no row";
	if (signal)
		return u->cfa_type == CFA_SIGNAL ? NULL : "want CFA_SIGNAL";
	if (!strcmp(x->ra, "u"))
		return u->cfa_type == CFA_END ? NULL : "want CFA_END (ra undefined)";
	if (strcmp(x->ra, "c-8"))
		return u->cfa_type == CFA_UNSUPPORTED ? NULL : "ra not at CFA-8: want unsupported";
	if (!strncmp(x->cfa, "rsp+", 4)) {
		if (u->cfa_type != CFA_SP || u->cfa_offset != atoi(x->cfa + 4))
			return "want CFA_SP";
	} else if (!strncmp(x->cfa, "rbp+", 4)) {
		if (u->cfa_type != CFA_FP || u->cfa_offset != atoi(x->cfa + 4))
			return "want CFA_FP";
	} else if (!strcmp(x->cfa, "exp")) {
		/* the PLT's expression, or another we do not translate */
		if (u->cfa_type != CFA_PLT && u->cfa_type != CFA_UNSUPPORTED)
			return "want CFA_PLT or unsupported";
		return NULL;
	} else {
		return u->cfa_type == CFA_UNSUPPORTED ? NULL : "CFA on another register: want unsupported";
	}
	/* rbp: readelf's "u" also means "not mentioned yet", which x86_64 reads as same value */
	if (!x->rbp[0] || !strcmp(x->rbp, "u") || !strcmp(x->rbp, "s"))
		return u->rbp_type == RBP_SAME ? NULL : "want RBP_SAME";
	if (x->rbp[0] == 'c' && (x->rbp[1] == '-' || x->rbp[1] == '+'))
		return u->rbp_type == RBP_AT_CFA && u->rbp_offset == atoi(x->rbp + 1) ?
			       NULL : "want RBP_AT_CFA";
	return u->rbp_type == RBP_UNSUPPORTED ? NULL : "want RBP_UNSUPPORTED";
}

static bool covered(const struct ref *r, uint64_t pc)
{
	const struct ref_fde *f;

	return ref_at(r, pc, &f) != NULL;
}

/*
 * Every row readelf prints must agree with our row at its first and at its
 * last pc, and the pc after each FDE (unless another FDE starts there) must
 * be unsupported. Returns the rows checked.
 */
static size_t compare_all(const struct ref *r, const struct unwind_table *t)
{
	size_t checked = 0, bad = 0;

	for (size_t i = 0; i < r->nfdes; i++) {
		const struct ref_fde *f = &r->fdes[i];
		const struct unwind_row *u;

		for (size_t k = 0; k < f->n; k++) {
			const struct ref_row *x = &r->rows[f->first + k];
			uint64_t end = k + 1 < f->n ? r->rows[f->first + k + 1].pc : f->hi;
			const char *why;

			if (x->pc >= end)
				continue;	/* a row readelf prints at the FDE's very end */
			why = row_agrees(unwind_table__find(t, x->pc), x, f->signal);
			if (!why)
				why = row_agrees(unwind_table__find(t, end - 1), x, f->signal);
			checked++;
			if (why && bad++ < 10)
				fprintf(stderr, "pc %#llx (FDE %#llx..%#llx) cfa %s rbp %s ra %s: %s\n",
					(unsigned long long)x->pc, (unsigned long long)f->lo,
					(unsigned long long)f->hi, x->cfa, x->rbp, x->ra, why);
		}
		if (!covered(r, f->hi)) {
			u = unwind_table__find(t, f->hi);
			if (u && u->cfa_type != CFA_UNSUPPORTED && bad++ < 10)
				fprintf(stderr, "gap after FDE %#llx..%#llx not unsupported\n",
					(unsigned long long)f->lo, (unsigned long long)f->hi);
		}
	}
	assert_int_equal(bad, 0);
	return checked;
}

/* Every pc of a function: our row == readelf's row; unsupported where no FDE is. */
static void compare_function(const struct ref *r, const struct unwind_table *t, uint64_t addr,
			     uint64_t size)
{
	size_t bad = 0;

	assert_true(size > 0);
	for (uint64_t pc = addr; pc < addr + size; pc++) {
		const struct ref_fde *f = NULL;
		const struct ref_row *x = ref_at(r, pc, &f);
		const char *why;

		const struct unwind_row *u = unwind_table__find(t, pc);

		if (!x)	/* no FDE here (clone has a hole): not the previous rule */
			why = !u || u->cfa_type == CFA_UNSUPPORTED ? NULL : "gap: want unsupported";
		else
			why = row_agrees(u, x, f->signal);
		if (why && bad++ < 5)
			fprintf(stderr, "pc %#llx: %s\n", (unsigned long long)pc, why);
	}
	assert_int_equal(bad, 0);
}

/* Rows sorted, merged; unwind_table__find exact at both ends of each row. */
static void check_sorted_merged(const struct unwind_table *t)
{
	assert_true(t->nrows > 0);
	assert_int_equal(t->rows[0].pc, t->min_pc);
	assert_null(unwind_table__find(t, t->min_pc - 1));
	assert_null(unwind_table__find(t, t->max_pc + 1));
	assert_non_null(unwind_table__find(t, t->max_pc));
	assert_true(t->rows[t->nrows - 1].pc <= t->max_pc + 1);
	for (uint32_t i = 1; i < t->nrows; i++) {
		const struct unwind_row *a = &t->rows[i - 1], *b = &t->rows[i];

		assert_true(a->pc < b->pc);
		assert_false(a->cfa_type == b->cfa_type && a->cfa_offset == b->cfa_offset &&
			     a->rbp_type == b->rbp_type && a->rbp_offset == b->rbp_offset);
		assert_true(a->cfa_type <= CFA_UNSUPPORTED && a->rbp_type <= RBP_UNSUPPORTED);
		assert_ptr_equal(unwind_table__find(t, a->pc), a);
		if (b->pc <= t->max_pc)
			assert_ptr_equal(unwind_table__find(t, b->pc), b);
		assert_ptr_equal(unwind_table__find(t, b->pc - 1), a);
	}
}

static struct unwind_table *build_ok(const char *path, const char *debug)
{
	struct unwind_table *t = NULL;
	int err = unwind_table__build(path, debug, 0, &t);

	if (err)
		fprintf(stderr, "unwind_table__build(%s, %s): %d\n", path, debug ? debug : "-", err);
	assert_int_equal(err, 0);
	assert_non_null(t);
	check_sorted_merged(t);
	return t;
}

static void compare_file(const char *path, const char *debug, size_t min_rows)
{
	struct unwind_table *t = build_ok(path, debug);
	struct ref r;

	ref_load(debug ? debug : path, &r);
	assert_true(compare_all(&r, t) >= min_rows);
	ref_free(&r);
	unwind_table__free(t);
}

/* ---- tests ------------------------------------------------------------------ */

/* (1) a program built -O2 -fomit-frame-pointer: every row as readelf reads it */
static void test_program_matches_readelf(void **state)
{
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/nofp", dir);
	compare_file(path, NULL, 10);
}

/* (1) libc: every row, and every pc of a few functions, its PLT and __restore_rt */
static void test_libc_matches_readelf(void **state)
{
	static const char *const funcs[] = { "qsort", "memcpy", "malloc", "printf",
					     "pthread_create", "clone" };
	struct unwind_table *t = build_ok(LIBC, NULL);
	const struct unwind_row *u;
	struct ref r;
	uint64_t plt;
	int signal_fdes = 0, end_rows = 0;

	(void)state;
	assert_true(t->nrows > 10000);
	assert_int_equal(t->stats.fdes_bad, 0);
	ref_load(LIBC, &r);
	assert_true(compare_all(&r, t) > 10000);
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		uint64_t size, a = sym(LIBC, funcs[i], &size);

		compare_function(&r, t, a, size);
	}
	/* glibc's signal return trampoline: its CIE has 'S'; __restore_rt is not exported */
	for (size_t i = 0; i < r.nfdes; i++) {
		if (!r.fdes[i].signal)
			continue;
		signal_fdes++;
		for (uint64_t pc = r.fdes[i].lo; pc < r.fdes[i].hi; pc++)
			assert_int_equal(unwind_table__find(t, pc)->cfa_type, CFA_SIGNAL);
	}
	assert_true(signal_fdes >= 1);
	/* thread starts (clone, clone3) end the stack */
	for (uint32_t i = 0; i < t->nrows; i++)
		end_rows += t->rows[i].cfa_type == CFA_END;
	assert_true(end_rows >= 1);
	/* libc's own PLT: PLT0 pushes twice, the entries after it share the expression */
	plt = section_addr(LIBC, ".plt", NULL, NULL);
	if (plt) {
		assert_int_equal(unwind_table__find(t, plt)->cfa_type, CFA_SP);
		assert_int_equal(unwind_table__find(t, plt)->cfa_offset, 16);
		u = unwind_table__find(t, plt + 0x14);
		assert_int_equal(u->cfa_type, CFA_PLT);
		assert_int_equal(u->cfa_offset, 11);
	}
	ref_free(&r);
	unwind_table__free(t);
}

/* (1) libstdc++: personality and LSDA augmentations ("zPLR") */
static void test_libstdcxx_matches_readelf(void **state)
{
	(void)state;
	if (access(LIBSTDCXX, R_OK))
		skip();
	compare_file(LIBSTDCXX, NULL, 10000);
}

/* (2) -fno-omit-frame-pointer: after the prologue, CFA = rbp + 16, rbp saved at CFA-16 */
static void test_frame_pointer_rows(void **state)
{
	static const char *const funcs[] = { "leaf", "mid", "main" };
	struct unwind_table *t;
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/fp", dir);
	t = build_ok(path, NULL);
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		uint64_t size, a = sym(path, funcs[i], &size);
		const struct unwind_row *u = unwind_table__find(t, a + size / 2);

		assert_non_null(u);
		assert_int_equal(u->cfa_type, CFA_FP);
		assert_int_equal(u->cfa_offset, 16);
		assert_int_equal(u->rbp_type, RBP_AT_CFA);
		assert_int_equal(u->rbp_offset, -16);
		/* at entry: nothing pushed yet */
		u = unwind_table__find(t, a);
		assert_int_equal(u->cfa_type, CFA_SP);
		assert_int_equal(u->cfa_offset, 8);
		assert_int_equal(u->rbp_type, RBP_SAME);
	}
	unwind_table__free(t);
}

/* (3) _start: return address undefined, the end of every stack */
static void test_start_is_end(void **state)
{
	struct unwind_table *t;
	char path[512];
	uint64_t size, a;

	(void)state;
	snprintf(path, sizeof(path), "%s/nofp", dir);
	t = build_ok(path, NULL);
	a = sym(path, "_start", &size);
	assert_int_equal(unwind_table__find(t, a)->cfa_type, CFA_END);
	assert_int_equal(unwind_table__find(t, a + 4)->cfa_type, CFA_END);
	unwind_table__free(t);
}

/* (4) the .plt of a program linked -z lazy */
static void test_plt_rows(void **state)
{
	struct unwind_table *t;
	const struct unwind_row *u;
	char path[512];
	uint64_t plt, size;

	(void)state;
	snprintf(path, sizeof(path), "%s/nofp", dir);
	plt = section_addr(path, ".plt", NULL, &size);
	assert_true(plt != 0 && size >= 32);
	t = build_ok(path, NULL);
	u = unwind_table__find(t, plt);	/* PLT0: pushq GOT+8 */
	assert_int_equal(u->cfa_type, CFA_SP);
	assert_int_equal(u->cfa_offset, 16);
	u = unwind_table__find(t, plt + 6);	/* after it: jmp *GOT+16 */
	assert_int_equal(u->cfa_type, CFA_SP);
	assert_int_equal(u->cfa_offset, 24);
	for (uint64_t pc = plt + 16; pc < plt + size; pc++) {
		u = unwind_table__find(t, pc);
		assert_int_equal(u->cfa_type, CFA_PLT);
		assert_int_equal(u->cfa_offset, 11);	/* the pushq of each entry is at +11 */
	}
	unwind_table__free(t);
}

/* (6) .debug_frame only, in a separate debug file; the stripped file alone has no CFI */
static void test_debug_frame_only(void **state)
{
	struct unwind_table *t;
	char path[512], dbg[512], prog[512];
	uint64_t size, a;

	(void)state;
	snprintf(prog, sizeof(prog), "%s/dbg", dir);
	snprintf(path, sizeof(path), "%s/dbg-stripped", dir);
	snprintf(dbg, sizeof(dbg), "%s/dbg.debug", dir);
	/* crt files and ld bring their own .eh_frame: remove it too */
	sh("objcopy --only-keep-debug %s %s && strip -s --remove-section=.eh_frame "
	   "--remove-section=.eh_frame_hdr %s -o %s", prog, dbg, prog, path);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -ENOENT);
	t = build_ok(path, dbg);
	assert_true(t->stats.from_debug_frame >= 3);
	assert_int_equal(t->stats.from_eh_frame, 0);
	a = sym(dbg, "mid", &size);
	assert_int_equal(unwind_table__find(t, a)->cfa_type, CFA_SP);
	assert_int_equal(unwind_table__find(t, a)->cfa_offset, 8);
	unwind_table__free(t);
	/* every row of the debug file's .debug_frame */
	compare_file(path, dbg, 6);
	/* a debug file that is no ELF file is ignored */
	assert_int_equal(unwind_table__build(path, "/nonexistent", 0, &t), -ENOENT);
	/* zlib-compressed .debug_frame, as distributions ship debug files */
	sh("objcopy --compress-debug-sections=zlib %s %s.z", dbg, dbg);
	strcat(dbg, ".z");
	t = build_ok(path, dbg);
	assert_true(t->stats.from_debug_frame >= 3);
	unwind_table__free(t);
}

/* (6) .eh_frame and .debug_frame together: .eh_frame wins where both cover a pc */
static void test_eh_frame_wins(void **state)
{
	struct unwind_table *t;
	char path[512];
	uint64_t size, a;

	(void)state;
	snprintf(path, sizeof(path), "%s/mixed", dir);
	t = build_ok(path, NULL);
	/* fb is only in .debug_frame; main is in both and comes from .eh_frame */
	assert_int_equal(t->stats.from_debug_frame, 1);
	assert_true(t->stats.from_eh_frame >= 3);
	a = sym(path, "fb", &size);
	assert_int_equal(unwind_table__find(t, a)->cfa_type, CFA_SP);
	unwind_table__free(t);
	compare_file(path, NULL, 8);
}

/* CFI that only MiniDebugInfo (.gnu_debugdata) carries */
static void test_minidebuginfo(void **state)
{
	struct unwind_table *t, *t0;
	char path[512], dbg[512];

	(void)state;
	if (!have_cmd("xz"))
		skip();
	snprintf(path, sizeof(path), "%s/dbg-mini", dir);
	snprintf(dbg, sizeof(dbg), "%s/dbg", dir);
	sh("objcopy --only-keep-debug %s %s/m.debug && rm -f %s/m.debug.xz && xz -k %s/m.debug && "
	   "strip -s --remove-section=.eh_frame --remove-section=.eh_frame_hdr %s -o %s.tmp && "
	   "objcopy --add-section .gnu_debugdata=%s/m.debug.xz %s.tmp %s",
	   dbg, dir, dir, dir, dbg, path, dir, path, path);
	t = build_ok(path, NULL);
	assert_true(t->stats.from_debug_frame > 0);
	assert_non_null(unwind_table__find(t, sym(dbg, "mid", NULL) + 1));
	unwind_table__free(t);

	/* .eh_frame only in MiniDebugInfo: the same rows as the original's */
	snprintf(path, sizeof(path), "%s/nofp-mini", dir);
	snprintf(dbg, sizeof(dbg), "%s/nofp", dir);
	sh("objcopy -j .eh_frame %s %s/e.elf 2>/dev/null && rm -f %s/e.elf.xz && xz -k %s/e.elf && "
	   "strip -s --remove-section=.eh_frame --remove-section=.eh_frame_hdr %s -o %s.tmp && "
	   "objcopy --add-section .gnu_debugdata=%s/e.elf.xz %s.tmp %s",
	   dbg, dir, dir, dir, dbg, path, dir, path, path);
	t0 = build_ok(dbg, NULL);
	t = build_ok(path, NULL);
	assert_int_equal(t->nrows, t0->nrows);
	assert_memory_equal(t->rows, t0->rows, t->nrows * sizeof(*t->rows));
	unwind_table__free(t);
	unwind_table__free(t0);
}

/* A file without section headers: .eh_frame found through PT_GNU_EH_FRAME. */
static void test_no_section_headers(void **state)
{
	static const char *const files[] = { LIBC, "nofp" };
	char src[512], path[512];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct unwind_table *t, *t0;

		if (files[i][0] == '/')
			snprintf(src, sizeof(src), "%s", files[i]);
		else
			snprintf(src, sizeof(src), "%s/%s", dir, files[i]);
		snprintf(path, sizeof(path), "%s/noshdr", dir);
		/* e_shoff (0x28, 8 bytes), e_shnum (0x3c) and e_shstrndx (0x3e) = 0 */
		sh("cp %s %s && printf '\\0\\0\\0\\0\\0\\0\\0\\0' | dd of=%s bs=1 seek=40 "
		   "conv=notrunc 2>/dev/null && printf '\\0\\0\\0\\0' | dd of=%s bs=1 seek=60 "
		   "conv=notrunc 2>/dev/null", src, path, path, path);
		t0 = build_ok(src, NULL);
		t = build_ok(path, NULL);
		assert_int_equal(t->nrows, t0->nrows);
		assert_memory_equal(t->rows, t0->rows, t->nrows * sizeof(*t->rows));
		unwind_table__free(t);
		unwind_table__free(t0);
	}
}

/* (5) and limits: max_rows, the per-FDE cap, code at 4 GiB */
static void test_limits(void **state)
{
	struct unwind_table *t = build_ok(LIBC, NULL), *t2;
	uint32_t n = t->nrows;
	char path[512];
	uint64_t size, a;

	(void)state;
	unwind_table__free(t);
	assert_int_equal(unwind_table__build(LIBC, NULL, 100, &t), -EFBIG);
	assert_int_equal(unwind_table__build(LIBC, NULL, n - 1, &t), -EFBIG);
	t = build_ok(LIBC, NULL);
	assert_int_equal(unwind_table__build(LIBC, NULL, n, &t2), 0);
	assert_int_equal(t2->nrows, n);
	assert_memory_equal(t2->rows, t->rows, n * sizeof(*t->rows));
	unwind_table__free(t);
	unwind_table__free(t2);

	/* 10000 rows in one FDE: the first 8192 come out, the rest is unsupported */
	snprintf(path, sizeof(path), "%s/long.so", dir);
	t = build_ok(path, NULL);
	a = sym(path, "longf", &size);
	assert_true(t->stats.fdes_bad >= 1);
	assert_int_equal(unwind_table__find(t, a)->cfa_type, CFA_SP);
	assert_int_equal(unwind_table__find(t, a + 1)->cfa_offset, 16);
	assert_int_equal(unwind_table__find(t, a + size - 1)->cfa_type, CFA_UNSUPPORTED);
	unwind_table__free(t);

	/* rows hold 32-bit pcs */
	write_file("lib4g.c", "long f(long x) { return x * 3; }\n");
	sh("cd %s && gcc -O2 -shared -fPIC -Wl,-Ttext-segment=0x100000000 lib4g.c -o lib4g.so", dir);
	snprintf(path, sizeof(path), "%s/lib4g.so", dir);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -EINVAL);
}

/* ---- corrupt input ---------------------------------------------------------- */

/* In a child process: builds the table of arg (a path); its result in *out. */
static void build_in_child(void *arg, void *out)
{
	struct unwind_table *t = NULL;
	int *err = out;

	*err = unwind_table__build(arg, NULL, 0, &t);
	if (!*err)
		unwind_table__free(t);
}

/*
 * A copy whose CFI section (or section name table) claims 3 GiB over a hole of a
 * sparse file: refused before libelf reads it, not held in memory. (issue 12, item 9)
 */
static void test_sparse_sections(void **state)
{
	static const struct {
		const char *file, *section;
		int err;
	} cases[] = {
		{ "nofp", ".eh_frame", -EFBIG },
		{ "dbg", ".debug_frame", -EFBIG },
		{ "nofp", ".shstrtab", -ENOENT },	/* no section names: no .eh_frame */
	};
	char src[512], path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/sparse", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct child_run run;
		struct stat sb;
		int err;

		snprintf(src, sizeof(src), "%s/%s", dir, cases[i].file);
		elf_sparse_copy(src, path, cases[i].section, 3ull << 30);
		assert_int_equal(stat(path, &sb), 0);
		assert_true(sb.st_size > (3ll << 30) && sb.st_blocks * 512 < (1 << 20));
		run_in_child(build_in_child, path, &err, sizeof(err), &run);
		print_message("# %s with %s of 3 GiB: %d in %.3f s, peak RSS +%ld KiB\n",
			      cases[i].file, cases[i].section, err, run.secs, run.grew_kb);
		assert_true(run.grew_kb < 64 * 1024);
		assert_int_equal(err, cases[i].err);
		assert_int_equal(unlink(path), 0);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint8_t *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*ret_len = (size_t)len;
	return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Builds a table of a damaged file: an error or a sane table, nothing else. */
static void try_damaged(const char *path, const char *debug)
{
	struct unwind_table *t = NULL;
	int err = unwind_table__build(path, debug, 0, &t);

	if (err) {
		if (err != -EINVAL && err != -ENOENT && err != -EFBIG)
			fprintf(stderr, "%s: unexpected %d\n", path, err);
		assert_true(err == -EINVAL || err == -ENOENT || err == -EFBIG);
		return;
	}
	check_sorted_merged(t);
	unwind_table__free(t);
}

/* Flips n random bytes of [off, off + size) in a copy of orig, and builds. */
static void flip_and_try(const uint8_t *orig, size_t len, uint64_t off, uint64_t size, int n,
			 const char *path, const char *debug_of)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	memcpy(buf, orig, len);
	for (int k = 0; k < n && size; k++)
		buf[off + rnd() % size] ^= (uint8_t)(1u << (rnd() % 8)) | (uint8_t)(rnd() & 0xff);
	spit(path, buf, len);
	if (debug_of)
		try_damaged(debug_of, path);
	else
		try_damaged(path, NULL);
	free(buf);
}

/* (7) truncated copies of libc, random bytes, flipped CFI, headers, odd paths */
static void test_corrupt(void **state)
{
	char path[512], noshdr[512], stripped[512], dbg[512];
	uint64_t eh_off, eh_size, hdr_off, hdr_size, df_off, df_size;
	size_t len, dlen;
	uint8_t *libc = slurp(LIBC, &len), *buf;
	struct unwind_table *t = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad", dir);
	assert_true(section_addr(LIBC, ".eh_frame", &eh_off, &eh_size) != 0);
	assert_true(section_addr(LIBC, ".eh_frame_hdr", &hdr_off, &hdr_size) != 0);

	/* truncated: at fixed lengths, around and inside .eh_frame, and at random ones */
	{
		size_t cuts[96];
		int n = 0;

		for (size_t c = 0; c <= 4096; c = c ? c * 4 : 1)
			cuts[n++] = c;
		cuts[n++] = 63;
		cuts[n++] = 65;
		for (int k = 0; k < 16; k++)
			cuts[n++] = eh_off + eh_size * (size_t)k / 16;
		cuts[n++] = hdr_off + hdr_size / 2;
		cuts[n++] = len - 1;
		while (n < 96)
			cuts[n++] = rnd() % len;
		for (int i = 0; i < n; i++) {
			spit(path, libc, cuts[i]);
			try_damaged(path, NULL);
		}
	}
	/* ... and without section headers, so that PT_GNU_EH_FRAME leads to the damage */
	buf = malloc(len);
	assert_non_null(buf);
	memcpy(buf, libc, len);
	memset(buf + 0x28, 0, 8);
	memset(buf + 0x3c, 0, 4);
	snprintf(noshdr, sizeof(noshdr), "%s/noshdr-bad", dir);
	for (int k = 1; k < 24; k++) {
		spit(noshdr, buf, eh_off + eh_size * (size_t)k / 24);
		try_damaged(noshdr, NULL);
	}
	for (int k = 0; k < 20; k++)
		flip_and_try(buf, len, hdr_off, hdr_size + eh_size, 1 + k * 10, noshdr, NULL);

	/* random bytes, with and without a real ELF header in front */
	for (int k = 0; k < 40; k++) {
		size_t n = 1 + rnd() % 65536;
		uint8_t *r = malloc(n);

		assert_non_null(r);
		for (size_t i = 0; i < n; i++)
			r[i] = (uint8_t)rnd();
		if (k & 1)
			memcpy(r, libc, n < 64 ? n : 64);
		spit(path, r, n);
		try_damaged(path, NULL);
		free(r);
	}

	/* flipped bytes in .eh_frame, in .eh_frame_hdr (libdw's FDE index), in the headers */
	for (int k = 0; k < 60; k++)
		flip_and_try(libc, len, eh_off, eh_size, 1 + (k % 20) * 5, path, NULL);
	for (int k = 0; k < 20; k++)
		flip_and_try(libc, len, hdr_off, hdr_size, 1 + k * 3, path, NULL);
	for (int k = 0; k < 40; k++)
		flip_and_try(libc, len, 0, 4096, 1 + k % 4, path, NULL);

	/* flipped bytes in a separate debug file's .debug_frame */
	snprintf(stripped, sizeof(stripped), "%s/dbg-stripped", dir);
	snprintf(dbg, sizeof(dbg), "%s/dbg.debug", dir);
	if (access(stripped, R_OK) == 0 && access(dbg, R_OK) == 0 &&
	    section_addr(dbg, ".debug_frame", &df_off, &df_size) == 0 && df_size) {
		uint8_t *d = slurp(dbg, &dlen);

		snprintf(path, sizeof(path), "%s/bad.debug", dir);
		for (int k = 0; k < 60; k++)
			flip_and_try(d, dlen, df_off, df_size, 1 + k % 8, path, stripped);
		free(d);
	}

	/* not x86_64, not ELF64, not an executable or shared object */
	memcpy(buf, libc, len);
	buf[0x12] = 0xb7;	/* e_machine = EM_AARCH64 */
	snprintf(path, sizeof(path), "%s/bad", dir);
	spit(path, buf, len);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -EINVAL);
	memcpy(buf, libc, len);
	buf[0x10] = ET_REL;
	spit(path, buf, len);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -EINVAL);
	memcpy(buf, libc, len);
	buf[4] = ELFCLASS32;
	spit(path, buf, len);
	try_damaged(path, NULL);

	/* empty file, directory, device, nothing */
	spit(path, libc, 0);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -EINVAL);
	assert_int_equal(unwind_table__build(dir, NULL, 0, &t), -EINVAL);
	assert_int_equal(unwind_table__build("/dev/zero", NULL, 0, &t), -EINVAL);
	assert_int_equal(unwind_table__build("/nonexistent", NULL, 0, &t), -ENOENT);
	assert_int_equal(unwind_table__build(LIBC, dir, 0, &t), 0);	/* bad debug file: ignored */
	unwind_table__free(t);
	unwind_table__free(NULL);
	assert_null(unwind_table__find(NULL, 0));
	free(buf);
	free(libc);
}

/*
 * An FDE whose program names register 1000 (libdw would size every frame by
 * it) is refused, and only it: the FDEs after it in the section still count.
 * Its range is stretched over the next function's: libdw, which finds FDEs
 * by itself, must not answer for that function from the refused one.
 */
static void test_bad_fde_is_isolated(void **state)
{
	char src[512], path[512];
	uint64_t addr, off, size, leaf, leaf_size, mid, mid_size, pos = 0;
	struct unwind_table *t0, *t;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool done = false;
	FILE *f;

	(void)state;
	snprintf(src, sizeof(src), "%s/nofp", dir);
	snprintf(path, sizeof(path), "%s/badreg", dir);
	addr = section_addr(src, ".eh_frame", &off, &size);
	leaf = sym(src, "leaf", &leaf_size);
	mid = sym(src, "mid", &mid_size);
	assert_true(mid > leaf);
	f = fopen(src, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
	/* find leaf's FDE ("zR", pc-relative sdata4) and put DW_CFA_undefined r1000 first */
	while (!done && pos + 16 < size) {
		uint8_t *e = buf + off + pos;
		uint32_t elen, id;
		int32_t rel;

		memcpy(&elen, e, 4);
		memcpy(&id, e + 4, 4);
		memcpy(&rel, e + 8, 4);
		if (!elen)
			break;
		if (id && addr + pos + 8 + (uint64_t)(int64_t)rel == leaf) {
			assert_int_equal(e[16], 0);	/* no augmentation data */
			assert_true(elen >= 16);
			uint32_t range = (uint32_t)(mid + mid_size - leaf);

			memcpy(e + 12, &range, 4);
			e[17] = DW_CFA_undefined;
			e[18] = 0xe8;
			e[19] = 0x07;
			done = true;
		}
		pos += 4 + elen;
	}
	assert_true(done);
	spit(path, buf, len);
	free(buf);
	t0 = build_ok(src, NULL);
	t = build_ok(path, NULL);
	assert_int_equal(t->stats.fdes_bad, 1);
	assert_int_equal(t->stats.fdes, t0->stats.fdes);
	assert_int_equal(unwind_table__find(t, leaf)->cfa_type, CFA_UNSUPPORTED);
	assert_int_equal(unwind_table__find(t, mid + 4)->cfa_type, CFA_SP);
	/* everywhere else the same rule */
	for (uint32_t i = 0; i < t0->nrows; i++) {
		const struct unwind_row *a = &t0->rows[i], *b;

		if ((a->pc >= leaf && a->pc < leaf + leaf_size) || a->pc > t0->max_pc)
			continue;
		b = unwind_table__find(t, a->pc);
		assert_non_null(b);
		assert_memory_equal((const char *)a + 4, (const char *)b + 4, 8);
	}
	unwind_table__free(t);
	unwind_table__free(t0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_program_matches_readelf),
		cmocka_unit_test(test_libc_matches_readelf),
		cmocka_unit_test(test_libstdcxx_matches_readelf),
		cmocka_unit_test(test_frame_pointer_rows),
		cmocka_unit_test(test_start_is_end),
		cmocka_unit_test(test_plt_rows),
		cmocka_unit_test(test_debug_frame_only),
		cmocka_unit_test(test_eh_frame_wins),
		cmocka_unit_test(test_minidebuginfo),
		cmocka_unit_test(test_no_section_headers),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bad_fde_is_isolated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_sparse_sections),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
