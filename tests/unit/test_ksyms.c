// SPDX-License-Identifier: Apache-2.0
/* Kernel symbols from kallsyms files written here, and from this kernel's /proc/kallsyms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "ksyms.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-ksyms-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static void write_kallsyms(const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void expect(const struct ksyms *k, uint64_t addr, const char *name, const char *module)
{
	const struct ksym *s = ksyms__find(k, addr);

	if (!s)
		fail_msg("0x%" PRIx64 ": no symbol, want %s", addr, name);
	assert_string_equal(s->name, name);
	if (module)
		assert_string_equal(s->module, module);
	else
		assert_null(s->module);
}

static void test_synthetic(void **state)
{
	struct ksyms *k;

	(void)state;
	/* unsorted, data and absolute symbols, modules, junk */
	write_kallsyms("ffffffff81000200 T second\n"
		       "ffffffff81000000 T _stext\n"
		       "ffffffff81000100 t first_local\n"
		       "ffffffff81001000 D some_data\n"
		       "0000000000000000 A fixed_percpu_data\n"
		       "ffffffff81000300 W weak_one\n"
		       "ffffffffc0002000 t mod_b_func\t[mod_b]\n"
		       "ffffffffc0000000 t mod_func\t[xfs]\n"
		       "ffffffffc0000100 T mod_func2\t[xfs]\n"
		       "ffffffffc0000080 d mod_data\t[xfs]\n"
		       "bad line\n"
		       "ffffffffzz000000 T not_hex\n"
		       "ffffffff81000400 T\n"
		       "\n");
	k = ksyms__load(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 7);
	assert_null(ksyms__find(k, 0x1000));
	assert_null(ksyms__find(k, 0xffffffff80ffffffull));
	expect(k, 0xffffffff81000000ull, "_stext", NULL);
	expect(k, 0xffffffff810000ffull, "_stext", NULL);
	expect(k, 0xffffffff81000100ull, "first_local", NULL);
	expect(k, 0xffffffff81000150ull, "first_local", NULL);
	expect(k, 0xffffffff81000250ull, "second", NULL);
	expect(k, 0xffffffff81001010ull, "weak_one", NULL);	/* data is not a function */
	expect(k, 0xffffffffc0000010ull, "mod_func", "xfs");
	expect(k, 0xffffffffc0000090ull, "mod_func", "xfs");
	expect(k, 0xffffffffc0000100ull, "mod_func2", "xfs");
	expect(k, 0xffffffffc0002004ull, "mod_b_func", "mod_b");
	expect(k, UINT64_MAX, "mod_b_func", "mod_b");
	ksyms__free(k);
}

static void test_aliases(void **state)
{
	struct ksyms *k;

	(void)state;
	/* one address, several names: global before local, fewer leading underscores */
	write_kallsyms("ffffffff81000000 t __local_alias\n"
		       "ffffffff81000000 T __do_thing\n"
		       "ffffffff81000000 T do_thing\n"
		       "ffffffff81000040 t b_local\n"
		       "ffffffff81000040 t a_local\n");
	k = ksyms__load(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 2);
	expect(k, 0xffffffff81000010ull, "do_thing", NULL);
	expect(k, 0xffffffff81000040ull, "a_local", NULL);
	ksyms__free(k);
}

static void test_long_lines(void **state)
{
	char *text = malloc(8192);
	struct ksyms *k;
	size_t n;

	(void)state;
	assert_non_null(text);
	/* a name longer than any line kallsyms prints is skipped, the next line still read */
	n = (size_t)snprintf(text, 8192, "ffffffff81000000 T ");
	memset(text + n, 'x', 5000);
	snprintf(text + n + 5000, 8192 - n - 5000,
		 "\nffffffff81000100 T after_long\nffffffff81000000 T short_one\n");
	write_kallsyms(text);
	free(text);
	k = ksyms__load(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 2);
	expect(k, 0xffffffff81000010ull, "short_one", NULL);
	expect(k, 0xffffffff81000110ull, "after_long", NULL);
	ksyms__free(k);
	/* no newline at the end of the file */
	write_kallsyms("ffffffff81000000 T last_line");
	k = ksyms__load(path);
	assert_non_null(k);
	expect(k, 0xffffffff81000000ull, "last_line", NULL);
	ksyms__free(k);
}

/* Many symbols in random order: the binary search agrees with a linear one. */
static void test_many(void **state)
{
	enum { N = 50000 };
	uint64_t *addrs = malloc(N * sizeof(*addrs));
	unsigned seed = 99;
	struct ksyms *k;
	FILE *f;

	(void)state;
	assert_non_null(addrs);
	f = fopen(path, "we");
	assert_non_null(f);
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		/* distinct: i in the low 24 bits */
		addrs[i] = 0xffff000000000000ull + ((uint64_t)(seed >> 8) << 24) + (uint64_t)i * 16;
		fprintf(f, "%016" PRIx64 " %c sym_%d\n", addrs[i], i % 2 ? 'T' : 't', i);
	}
	assert_int_equal(fclose(f), 0);
	k = ksyms__load(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), N);
	for (int q = 0; q < 2000; q++) {
		uint64_t a, best = 0;
		const struct ksym *s;
		int bi = -1;
		char want[32];

		seed = seed * 1103515245u + 12345u;
		a = addrs[seed % N] + (seed >> 28);
		for (int i = 0; i < N; i++)
			if (addrs[i] <= a && (bi < 0 || addrs[i] > best)) {
				best = addrs[i];
				bi = i;
			}
		s = ksyms__find(k, a);
		assert_non_null(s);
		snprintf(want, sizeof(want), "sym_%d", bi);
		assert_string_equal(s->name, want);
		assert_true(s->addr == best);
	}
	free(addrs);
	ksyms__free(k);
}

static void test_rejected(void **state)
{
	(void)state;
	/* kptr_restrict: every address reads as zero */
	write_kallsyms("0000000000000000 T _stext\n0000000000000000 t foo\n"
		       "0000000000000000 t bar\t[xfs]\n");
	errno = 0;
	assert_null(ksyms__load(path));
	assert_int_equal(errno, EPERM);
	/* nothing that looks like kallsyms */
	write_kallsyms("");
	errno = 0;
	assert_null(ksyms__load(path));
	assert_int_equal(errno, EINVAL);
	write_kallsyms("hello world\nthis is not kallsyms\n");
	errno = 0;
	assert_null(ksyms__load(path));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ksyms__load("/nonexistent/kallsyms"));
	assert_int_equal(errno, ENOENT);
	/* NULL is fine where a table is expected */
	assert_null(ksyms__find(NULL, 0x1000));
	ksyms__free(NULL);
}

static void test_real_kallsyms(void **state)
{
	struct ksyms *k = ksyms__load(NULL);
	const struct ksym *s;
	char *out;
	uint64_t a;

	(void)state;
	if (!k)
		skip();	/* not root, or kptr_restrict */
	out = run_capture("awk '$3 == \"schedule\" && $2 ~ /[tT]/ { print $1; exit }' "
			  "/proc/kallsyms");
	assert_non_null(out);
	a = strtoull(out, NULL, 16);
	free(out);
	assert_true(a != 0);
	s = ksyms__find(k, a);
	assert_non_null(s);
	assert_string_equal(s->name, "schedule");
	assert_null(s->module);
	s = ksyms__find(k, a + 4);
	assert_string_equal(s->name, "schedule");
	assert_true(ksyms__count(k) > 10000);
	ksyms__free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_real_kallsyms),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
