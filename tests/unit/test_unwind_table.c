// SPDX-License-Identifier: Apache-2.0
/* CFI -> unwind rows, checked against readelf's own reading of the same CFI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "unwind_table.h"

static char dir[256];
#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-cfi-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	sh("printf '%%s\\n' '#include <stdlib.h>' 'volatile long s;' "
	   "'__attribute__((noinline)) long leaf(long x) { long a[16]; for (int i = 0; i < 16; i++) a[i] = x + i; return a[x & 15]; }' "
	   "'__attribute__((noinline)) long mid(long x) { long r = leaf(x) + leaf(x + 1); s += r; return r * 3; }' "
	   "'int main(int c, char **v) { (void)v; return (int)mid(c) + abs(c); }' > %s/w.c", dir);
	sh("gcc -O2 -fomit-frame-pointer %s/w.c -o %s/nofp", dir, dir);
	sh("gcc -O0 -fno-omit-frame-pointer %s/w.c -o %s/fp", dir, dir);
	sh("gcc -O2 -g -fno-asynchronous-unwind-tables -fno-unwind-tables %s/w.c -o %s/dbg", dir,
	   dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static uint64_t sym(const char *file, const char *name)
{
	char cmd[600], *out;
	uint64_t a;

	snprintf(cmd, sizeof(cmd), "nm %s | awk '$3 == \"%s\" { print $1 }'", file, name);
	out = run_capture(cmd);
	assert_non_null(out);
	a = strtoull(out, NULL, 16);
	free(out);
	assert_true(a != 0);
	return a;
}

static void check_sorted_merged(const struct unwind_table *t)
{
	for (uint32_t i = 1; i < t->nrows; i++) {
		const struct unwind_row *a = &t->rows[i - 1], *b = &t->rows[i];

		assert_true(a->pc < b->pc);
		assert_false(a->cfa_type == b->cfa_type && a->cfa_offset == b->cfa_offset &&
			     a->rbp_type == b->rbp_type && a->rbp_offset == b->rbp_offset);
		assert_ptr_equal(unwind_table__find(t, b->pc), b);
		assert_ptr_equal(unwind_table__find(t, b->pc - 1), a);
	}
}

/*
 * Every row readelf -wF prints for the file must agree with our table at that
 * pc: the CFA register and offset, and where rbp is.
 */
static void compare_with_readelf(const char *file, const struct unwind_table *t, int *ret_checked)
{
	char cmd[600], *out, *save = NULL;
	int checked = 0, rbp_col = -1;

	snprintf(cmd, sizeof(cmd), "readelf -wF %s 2>/dev/null; true", file);
	out = run_capture(cmd);
	assert_non_null(out);
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char cfa[64], cols[16][32];
		unsigned long long pc;
		const struct unwind_row *r;
		int n;

		if (strstr(line, "LOC") && strstr(line, "CFA")) {
			/* header: find the rbp column */
			char *tok, *s2 = NULL, copy[512];
			int col = 0;

			snprintf(copy, sizeof(copy), "%s", line);
			rbp_col = -1;
			for (tok = strtok_r(copy, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2), col++)
				if (!strcmp(tok, "rbp"))
					rbp_col = col - 2;	/* after LOC and CFA */
			continue;
		}
		n = sscanf(line, "%llx %63s %31s %31s %31s %31s %31s %31s %31s %31s %31s", &pc, cfa,
			   cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7],
			   cols[8]);
		/* rows only: a 16-digit pc, then the rules (not the CIE/FDE headers) */
		if (n < 2 || strlen(line) < 20 || line[0] == ' ' || line[16] != ' ' ||
		    strstr(line, "FDE") || strstr(line, "CIE") || pc == 0)
			continue;
		/* a register kept in another register ("r5 (rdi)"): ours says unsupported */
		if (strstr(line, " (r"))
			continue;
		r = unwind_table__find(t, pc);
		if (!r)
			fprintf(stderr, "no row for: %s\n", line);
		assert_non_null(r);
		{
			/* the last column is ra: "u" (undefined) marks the outermost frame */
			char copy[512], *last;
			size_t len;

			snprintf(copy, sizeof(copy), "%s", line);
			len = strlen(copy);
			while (len && copy[len - 1] == ' ')
				copy[--len] = '\0';
			last = strrchr(copy, ' ');
			if (last && !strcmp(last + 1, "u")) {
				assert_int_equal(r->cfa_type, CFA_END);
				checked++;
				continue;
			}
		}
		if (!strncmp(cfa, "rsp+", 4)) {
			if (r->cfa_type == CFA_SIGNAL)
				continue;
			if (r->cfa_type != CFA_SP)
				fprintf(stderr, "mismatch: %s (ours: %d %d)\n", line, r->cfa_type, r->cfa_offset);
			assert_int_equal(r->cfa_type, CFA_SP);
			assert_int_equal(r->cfa_offset, atoi(cfa + 4));
		} else if (!strncmp(cfa, "rbp+", 4)) {
			assert_int_equal(r->cfa_type, CFA_FP);
			assert_int_equal(r->cfa_offset, atoi(cfa + 4));
		} else if (!strcmp(cfa, "exp")) {
			/* expressions: the PLT's is checked in test_plt_rows */
			continue;
		} else {
			continue;	/* other registers: our table marks them unsupported */
		}
		if (rbp_col >= 0 && rbp_col < n - 2 && r->cfa_type != CFA_END) {
			const char *c = cols[rbp_col];

			if (c[0] == 'c' && c[1] == '-') {
				assert_int_equal(r->rbp_type, RBP_AT_CFA);
				assert_int_equal(r->rbp_offset, -atoi(c + 2));
			} else if (c[0] == 'u') {
				assert_int_equal(r->rbp_type, RBP_SAME);
			}
		}
		checked++;
	}
	free(out);
	*ret_checked = checked;
}

static void test_small_program_matches_readelf(void **state)
{
	struct unwind_table *t;
	char path[512];
	int checked;

	(void)state;
	snprintf(path, sizeof(path), "%s/nofp", dir);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), 0);
	assert_true(t->nrows > 5);
	check_sorted_merged(t);
	compare_with_readelf(path, t, &checked);
	assert_true(checked > 5);
	/* _start: the return address is undefined there: the end of every stack */
	assert_int_equal(unwind_table__find(t, sym(path, "_start") + 4)->cfa_type, CFA_END);
	unwind_table__free(t);
}

static void test_libc_matches_readelf(void **state)
{
	struct unwind_table *t;
	int checked;

	(void)state;
	assert_int_equal(unwind_table__build(LIBC, NULL, 0, &t), 0);
	assert_true(t->nrows > 10000);
	check_sorted_merged(t);
	compare_with_readelf(LIBC, t, &checked);
	assert_true(checked > 10000);
	/* glibc's signal return trampoline carries the 'S' augmentation */
	{
		int signal_rows = 0;

		for (uint32_t i = 0; i < t->nrows; i++)
			signal_rows += t->rows[i].cfa_type == CFA_SIGNAL;
		assert_true(signal_rows >= 1);
	}
	unwind_table__free(t);
}

static void test_frame_pointer_rows(void **state)
{
	struct unwind_table *t;
	char path[512];
	uint64_t mid;

	(void)state;
	snprintf(path, sizeof(path), "%s/fp", dir);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), 0);
	/* after push rbp; mov rsp, rbp: CFA = rbp + 16, rbp saved at CFA - 16 */
	mid = sym(path, "mid");
	{
		const struct unwind_row *r = unwind_table__find(t, mid + 8);

		assert_int_equal(r->cfa_type, CFA_FP);
		assert_int_equal(r->cfa_offset, 16);
		assert_int_equal(r->rbp_type, RBP_AT_CFA);
		assert_int_equal(r->rbp_offset, -16);
	}
	unwind_table__free(t);
}

static void test_plt_rows(void **state)
{
	struct unwind_table *t;
	char cmd[600], *out;
	uint64_t plt;

	(void)state;
	/* libc's own PLT: its stubs after PLT0 share one CFA expression */
	snprintf(cmd, sizeof(cmd), "readelf -SW %s | awk '$2 == \".plt\" { print $4 }'", LIBC);
	out = run_capture(cmd);
	assert_non_null(out);
	plt = strtoull(out, NULL, 16);
	free(out);
	if (!plt)
		skip();
	assert_int_equal(unwind_table__build(LIBC, NULL, 0, &t), 0);
	assert_int_equal(unwind_table__find(t, plt)->cfa_type, CFA_SP);	/* PLT0 */
	assert_int_equal(unwind_table__find(t, plt + 0x14)->cfa_type, CFA_PLT);
	assert_int_equal(unwind_table__find(t, plt + 0x14)->cfa_offset, 11);
	unwind_table__free(t);
}

static void test_debug_frame_only(void **state)
{
	struct unwind_table *t;
	char path[512], dbg[512];
	const struct unwind_row *r;

	(void)state;
	snprintf(path, sizeof(path), "%s/dbg-stripped", dir);
	snprintf(dbg, sizeof(dbg), "%s/dbg.debug", dir);
	/* crt files bring their own .eh_frame: remove it, keep only the debug file's CFI */
	sh("objcopy --only-keep-debug %s/dbg %s && strip -s --remove-section=.eh_frame "
	   "--remove-section=.eh_frame_hdr %s/dbg -o %s", dir, dbg, dir, path);
	/* no CFI in the file itself */
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -ENOENT);
	assert_int_equal(unwind_table__build(path, dbg, 0, &t), 0);
	assert_true(t->stats.from_debug_frame > 0);
	r = unwind_table__find(t, sym(dbg, "mid") + 1);
	assert_non_null(r);
	assert_true(r->cfa_type == CFA_SP || r->cfa_type == CFA_FP);
	unwind_table__free(t);
}

/* CFI that only MiniDebugInfo (.gnu_debugdata) carries */
static void test_minidebuginfo(void **state)
{
	struct unwind_table *t;
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
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), 0);
	assert_true(t->stats.from_debug_frame > 0);
	assert_non_null(unwind_table__find(t, sym(dbg, "mid") + 1));
	unwind_table__free(t);
}

static void test_corrupt(void **state)
{
	static const long cuts[] = { 0, 16, 64, 1000, 100000, 1000000 };
	char path[512], cmd[1024], *out;
	struct unwind_table *t = NULL;
	unsigned long long off, size;
	int err;

	(void)state;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		snprintf(path, sizeof(path), "%s/libc-cut", dir);
		sh("head -c %ld %s > %s", cuts[i], LIBC, path);
		err = unwind_table__build(path, NULL, 0, &t);
		if (!err)
			unwind_table__free(t);
		else
			assert_true(err == -EINVAL || err == -ENOENT);
	}
	/* flip bytes all over .eh_frame */
	snprintf(cmd, sizeof(cmd), "readelf -SW %s | awk '$2 == \".eh_frame\" { print $5, $6 }'",
		 LIBC);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_int_equal(sscanf(out, "%llx %llx", &off, &size), 2);
	free(out);
	for (int seed = 1; seed <= 5; seed++) {
		snprintf(path, sizeof(path), "%s/libc-flip", dir);
		sh("cp %s %s", LIBC, path);
		for (int k = 0; k < 200; k++) {
			unsigned long long at = off + ((unsigned long long)seed * 7919 * (k + 1) * 104729) % size;

			sh("printf '\\%03o' %d | dd of=%s bs=1 seek=%llu conv=notrunc 2>/dev/null",
			   (k * 37 + seed) & 0xff, 0, path, at);
		}
		err = unwind_table__build(path, NULL, 0, &t);
		if (!err) {
			check_sorted_merged(t);
			unwind_table__free(t);
		}
	}
	assert_int_equal(unwind_table__build(dir, NULL, 0, &t), -EINVAL);
	assert_int_equal(unwind_table__build("/nonexistent", NULL, 0, &t), -ENOENT);
	assert_int_equal(unwind_table__build("/dev/zero", NULL, 0, &t), -EINVAL);
	/* the row cap */
	assert_int_equal(unwind_table__build(LIBC, NULL, 100, &t), -EFBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_program_matches_readelf),
		cmocka_unit_test(test_libc_matches_readelf),
		cmocka_unit_test(test_frame_pointer_rows),
		cmocka_unit_test(test_plt_rows),
		cmocka_unit_test(test_debug_frame_only),
		cmocka_unit_test(test_minidebuginfo),
		cmocka_unit_test(test_corrupt),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
