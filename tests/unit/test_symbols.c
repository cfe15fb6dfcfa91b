// SPDX-License-Identifier: Apache-2.0
/* ELF symbolization, kernel symbols and demangling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "demangle.h"
#include "elfsym.h"
#include "helpers.h"
#include "ksyms.h"

static char dir[256];

static uint64_t nm_addr(const char *file, const char *sym)
{
	char cmd[1024], *out;
	uint64_t a = 0;

	snprintf(cmd, sizeof(cmd), "nm %s | awk '$3 == \"%s\" { print $1 }'", file, sym);
	out = run_capture(cmd);
	assert_non_null(out);
	a = strtoull(out, NULL, 16);
	free(out);
	assert_true(a != 0);
	return a;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-sym-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	sh("printf '%%s\\n' 'int sym_alpha(int x) { return x * 3 + 1; }' "
	   "'int sym_beta(int x) { return sym_alpha(x) - 2; }' "
	   "'int main(int c, char **v) { (void)v; return sym_beta(c); }' > %s/prog.c", dir);
	sh("gcc -O1 -g -fPIE -pie %s/prog.c -o %s/prog", dir, dir);
	sh("printf '%%s\\n' 'namespace ns { int foo(int x) { return x + 1; } }' "
	   "'int cxx_entry(int x) { return ns::foo(x); }' > %s/lib.cc", dir);
	sh("g++ -O1 -g -shared -fPIC %s/lib.cc -o %s/libx.so", dir, dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

/* file offset of a vaddr (what /proc/PID/maps-based math produces) */
static uint64_t vaddr_to_off(const char *file, uint64_t vaddr)
{
	char cmd[1024], *out;
	unsigned long long off = 0, va = 0;

	/* the LOAD segment holding vaddr: offset + (vaddr - segment vaddr) */
	snprintf(cmd, sizeof(cmd),
		 "readelf -lW %s | awk '$1 == \"LOAD\" { print $2, $3, $6 }'", file);
	out = run_capture(cmd);
	assert_non_null(out);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long o, v, sz;

		if (sscanf(line, "%llx %llx %llx", &o, &v, &sz) == 3 && vaddr >= v && vaddr < v + sz) {
			off = o;
			va = v;
		}
	}
	free(out);
	return off + (vaddr - va);
}

static void test_pie_symbols(void **state)
{
	struct symcache *c = symcache__new(NULL);
	char path[512];
	struct elfobj *o;
	const char *name;
	uint64_t a, v, off;

	(void)state;
	snprintf(path, sizeof(path), "%s/prog", dir);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	a = nm_addr(path, "sym_alpha");
	off = vaddr_to_off(path, a + 2);
	assert_int_equal(elfobj__offset_to_vaddr(o, off, &v), 0);
	assert_true(v == a + 2);
	assert_int_equal(elfobj__symbolize(o, v, &name, NULL), 0);
	assert_string_equal(name, "sym_alpha");
	a = nm_addr(path, "sym_beta");
	assert_int_equal(elfobj__symbolize(o, a, &name, NULL), 0);
	assert_string_equal(name, "sym_beta");
	/* outside every function */
	assert_int_equal(elfobj__symbolize(o, 0x10, &name, NULL), -ENOENT);
	symcache__free(c);
}

static void test_build_id(void **state)
{
	struct symcache *c = symcache__new(NULL);
	char path[512], cmd[1024], *out;
	struct elfobj *o;

	(void)state;
	snprintf(path, sizeof(path), "%s/prog", dir);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	snprintf(cmd, sizeof(cmd), "readelf -n %s | awk '/Build ID/ { print $3 }'", path);
	out = run_capture(cmd);
	assert_non_null(out);
	out[strcspn(out, "\n")] = '\0';
	assert_true(strlen(out) >= 16);
	assert_string_equal(elfobj__build_id(o), out);
	free(out);
	symcache__free(c);
}

static void test_cxx_demangled_in_shared_lib(void **state)
{
	struct symcache *c = symcache__new(NULL);
	char path[512];
	struct elfobj *o;
	const char *name;
	uint64_t a, v;

	(void)state;
	snprintf(path, sizeof(path), "%s/libx.so", dir);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	a = nm_addr(path, "_ZN2ns3fooEi");
	assert_int_equal(elfobj__offset_to_vaddr(o, vaddr_to_off(path, a), &v), 0);
	assert_int_equal(elfobj__symbolize(o, v + 1, &name, NULL), 0);
	assert_string_equal(name, "ns::foo(int)");
	symcache__free(c);
}

static void test_debug_file_by_build_id(void **state)
{
	struct symcache_opts opts = { 0 };
	char root[512], path[512], bid[160];
	struct symcache *c;
	struct elfobj *o;
	const char *name;
	uint64_t a;

	(void)state;
	/* stripped binary; its symbols only in <root>/.build-id/xx/yyyy.debug */
	snprintf(root, sizeof(root), "%s/debugroot", dir);
	snprintf(path, sizeof(path), "%s/prog-stripped", dir);
	sh("objcopy --only-keep-debug %s/prog %s/prog.debug && strip -s %s/prog -o %s", dir, dir,
	   dir, path);
	c = symcache__new(NULL);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	snprintf(bid, sizeof(bid), "%s", elfobj__build_id(o));
	symcache__free(c);
	sh("mkdir -p %s/.build-id/%.2s && cp %s/prog.debug %s/.build-id/%.2s/%s.debug", root, bid,
	   dir, root, bid, bid + 2);

	opts.debug_root = root;
	c = symcache__new(&opts);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	{
		char src[512];

		snprintf(src, sizeof(src), "%s/prog", dir);
		a = nm_addr(src, "sym_alpha");
	}
	assert_int_equal(elfobj__symbolize(o, a + 1, &name, NULL), 0);
	assert_string_equal(name, "sym_alpha");
	{
		struct symcache_stats st;

		symcache__stats(c, &st);
		assert_int_equal(st.debug_files_used, 1);
	}
	symcache__free(c);
}

static void test_debug_file_by_debuglink(void **state)
{
	char path[512], real[512];
	struct symcache *c;
	struct elfobj *o;
	const char *name;
	uint64_t a;

	(void)state;
	/* .gnu_debuglink next to the file, in .debug/ */
	sh("mkdir -p %s/ld/.debug && objcopy --only-keep-debug %s/prog %s/ld/.debug/prog.dbg", dir,
	   dir, dir);
	sh("strip -s %s/prog -o %s/ld/prog.tmp && objcopy --remove-section=.note.gnu.build-id "
	   "--add-gnu-debuglink=%s/ld/.debug/prog.dbg %s/ld/prog.tmp %s/ld/prog",
	   dir, dir, dir, dir, dir);
	snprintf(real, sizeof(real), "%s/ld/prog", dir);
	snprintf(path, sizeof(path), "%s", real);
	c = symcache__new(NULL);
	o = symcache__get(c, path, real, 0, 0);
	assert_non_null(o);
	{
		char src[512];

		snprintf(src, sizeof(src), "%s/prog", dir);
		a = nm_addr(src, "sym_beta");
	}
	assert_int_equal(elfobj__symbolize(o, a, &name, NULL), 0);
	assert_string_equal(name, "sym_beta");
	symcache__free(c);
	/* a debuglink whose CRC does not match is not used */
	sh("printf 'garbage' >> %s/ld/.debug/prog.dbg", dir);
	c = symcache__new(NULL);
	o = symcache__get(c, path, real, 0, 0);
	assert_non_null(o);
	assert_int_not_equal(elfobj__symbolize(o, a, &name, NULL) == 0 &&
				     !strcmp(name, "sym_beta"),
			     1);
	symcache__free(c);
}

static void test_corrupt_files(void **state)
{
	static const long cuts[] = { 0, 1, 4, 16, 52, 63, 64, 100, 500, 2000, -1 };
	char src[512], path[512];
	struct symcache_opts opts = { .max_objects = 4 };
	struct symcache *c = symcache__new(&opts);
	struct stat st;
	const char *name;
	uint64_t v;

	(void)state;
	snprintf(src, sizeof(src), "%s/prog", dir);
	assert_int_equal(stat(src, &st), 0);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		long len = cuts[i] < 0 ? st.st_size - 1 : cuts[i];
		struct elfobj *o;

		snprintf(path, sizeof(path), "%s/cut%zu", dir, i);
		sh("head -c %ld %s > %s", len, src, path);
		o = symcache__get(c, path, NULL, 0, 0);
		/* either rejected, or usable without reading out of bounds */
		if (o) {
			elfobj__offset_to_vaddr(o, 0x1000, &v);
			elfobj__symbolize(o, 0x1139, &name, NULL);
		}
	}
	/* header fields that lie: section headers and program headers far outside the file */
	snprintf(path, sizeof(path), "%s/lies", dir);
	sh("cp %s %s && printf '\\377\\377\\377\\377\\377\\377\\377\\177' | dd of=%s bs=1 seek=40 "
	   "conv=notrunc 2>/dev/null && printf '\\377\\377' | dd of=%s bs=1 seek=60 conv=notrunc "
	   "2>/dev/null", src, path, path, path);
	{
		/* section headers unreachable: rejected, or kept with no symbols at all */
		struct elfobj *o = symcache__get(c, path, NULL, 0, 0);

		assert_true(!o || elfobj__nsyms(o) == 0);
	}
	snprintf(path, sizeof(path), "%s/random", dir);
	sh("head -c 65536 /dev/urandom > %s", path);
	assert_null(symcache__get(c, path, NULL, 0, 0));
	snprintf(path, sizeof(path), "%s/random-elf", dir);
	sh("(printf '\\177ELF\\002\\001\\001'; head -c 65536 /dev/urandom) > %s", path);
	symcache__get(c, path, NULL, 0, 0);
	assert_null(symcache__get(c, dir, NULL, 0, 0));	/* a directory */
	assert_null(symcache__get(c, "/nonexistent/file", NULL, 0, 0));
	assert_null(symcache__get(c, "/dev/zero", NULL, 0, 0));
	symcache__free(c);
}

static void test_eviction(void **state)
{
	struct symcache_opts opts = { .max_objects = 2 };
	struct symcache *c = symcache__new(&opts);
	struct symcache_stats st;
	char a[512], b[512], d[512];

	(void)state;
	snprintf(a, sizeof(a), "%s/prog", dir);
	snprintf(b, sizeof(b), "%s/libx.so", dir);
	snprintf(d, sizeof(d), "%s/prog-stripped", dir);
	assert_non_null(symcache__get(c, a, NULL, 0, 0));
	assert_non_null(symcache__get(c, b, NULL, 0, 0));
	assert_non_null(symcache__get(c, d, NULL, 0, 0));
	assert_non_null(symcache__get(c, a, NULL, 0, 0));
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.objects_loaded, 4);
	symcache__free(c);
}

static void test_demangle(void **state)
{
	char *s;

	(void)state;
	s = demangle("_ZN2ns3fooEi");
	assert_string_equal(s, "ns::foo(int)");
	free(s);
	s = demangle("_ZNSt6vectorIiSaIiEE9push_backEOi");
	assert_string_equal(s, "std::vector<int, std::allocator<int> >::push_back(int&&)");
	free(s);
	s = demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE");
	assert_string_equal(s, "core::ptr::drop_in_place");
	free(s);
	assert_null(demangle("main"));
	assert_null(demangle("_Znot a name at all"));
	assert_null(demangle(""));
}

static void test_ksyms_synthetic(void **state)
{
	char path[512];
	struct ksyms *k;
	const struct ksym *s;

	(void)state;
	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	sh("printf '%%s\\n' 'ffffffff81000200 T second' 'ffffffff81000000 T _stext' "
	   "'ffffffff81000100 t first_local' 'ffffffff81001000 D some_data' "
	   "'ffffffffc0000000 t mod_func\t[xfs]' 'bad line' > %s", path);
	k = ksyms__load(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 4);
	s = ksyms__find(k, 0xffffffff81000150ull);
	assert_string_equal(s->name, "first_local");
	assert_null(s->module);
	s = ksyms__find(k, 0xffffffffc0000010ull);
	assert_string_equal(s->name, "mod_func");
	assert_string_equal(s->module, "xfs");
	assert_null(ksyms__find(k, 0x1000));
	ksyms__free(k);

	sh("printf '%%s\\n' '0000000000000000 T a' '0000000000000000 T b' > %s", path);
	assert_null(ksyms__load(path));
	assert_int_equal(errno, EPERM);
	assert_null(ksyms__load("/nonexistent/kallsyms"));
}

static void test_ksyms_real(void **state)
{
	struct ksyms *k = ksyms__load(NULL);
	char *out;
	uint64_t a;

	(void)state;
	if (!k)
		skip();	/* not root, or kptr_restrict */
	out = run_capture("awk '$3 == \"schedule\" { print $1; exit }' /proc/kallsyms");
	assert_non_null(out);
	a = strtoull(out, NULL, 16);
	free(out);
	assert_string_equal(ksyms__find(k, a + 4)->name, "schedule");
	ksyms__free(k);
}

/* MiniDebugInfo: the symbol table xz'd into .gnu_debugdata of a stripped file */
static void test_minidebuginfo(void **state)
{
	char src[512], path[512];
	struct symcache *c;
	struct elfobj *o;
	const char *name;
	struct symcache_stats st;
	uint64_t a;

	(void)state;
	if (!have_cmd("xz"))
		skip();
	snprintf(src, sizeof(src), "%s/prog", dir);
	snprintf(path, sizeof(path), "%s/prog-mini", dir);
	sh("objcopy --only-keep-debug %s %s/mini.debug && rm -f %s/mini.debug.xz && "
	   "xz -k %s/mini.debug && strip -s %s -o %s.tmp && "
	   "objcopy --remove-section=.note.gnu.build-id --remove-section=.gnu_debuglink "
	   "--add-section .gnu_debugdata=%s/mini.debug.xz %s.tmp %s",
	   src, dir, dir, dir, src, path, dir, path, path);
	sh("! readelf -SW %s | grep -q '\\.symtab'", path);
	c = symcache__new(NULL);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	a = nm_addr(src, "sym_alpha");
	assert_int_equal(elfobj__symbolize(o, a + 1, &name, NULL), 0);
	assert_string_equal(name, "sym_alpha");
	symcache__stats(c, &st);
	assert_int_equal(st.minidebuginfo_used, 1);
	symcache__free(c);

	/* a corrupt .gnu_debugdata: no symbols from it, no crash */
	sh("head -c 100 %s/mini.debug.xz > %s/bad.xz && objcopy --remove-section=.gnu_debugdata "
	   "--add-section .gnu_debugdata=%s/bad.xz %s %s-bad", dir, dir, dir, path, path);
	c = symcache__new(NULL);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "-bad");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_int_not_equal(elfobj__symbolize(o, a + 1, &name, NULL) == 0 &&
				     !strcmp(name, "sym_alpha"), 1);
	symcache__free(c);
}

/* a stripped Go binary: names from .gopclntab, at the addresses the unstripped build's nm gives */
static void test_go_pclntab(void **state)
{
	char src[512], plain[512], stripped[512];
	struct symcache *c;
	struct elfobj *o;
	const char *name;
	uint64_t a;

	(void)state;
	if (!have_cmd("go"))
		skip();
	snprintf(src, sizeof(src), "%s/tests/workloads/go/hot.go", srcdir());
	snprintf(plain, sizeof(plain), "%s/go-plain", dir);
	snprintf(stripped, sizeof(stripped), "%s/go-stripped", dir);
	sh("cd %s && HOME=%s GOCACHE=%s/gocache GO111MODULE=off GOPROXY=off go build -o %s %s && "
	   "HOME=%s GOCACHE=%s/gocache GO111MODULE=off GOPROXY=off go build -ldflags=-s -o %s %s",
	   dir, dir, dir, plain, src, dir, dir, stripped, src);
	sh("! readelf -SW %s | grep -q '\\.symtab'", stripped);
	a = nm_addr(plain, "main.hotLoop");
	c = symcache__new(NULL);
	o = symcache__get(c, stripped, NULL, 0, 0);
	assert_non_null(o);
	assert_int_equal(elfobj__symbolize(o, a + 3, &name, NULL), 0);
	assert_string_equal(name, "main.hotLoop");
	a = nm_addr(plain, "runtime.main");
	assert_int_equal(elfobj__symbolize(o, a + 1, &name, NULL), 0);
	assert_string_equal(name, "runtime.main");
	{
		struct symcache_stats st;

		symcache__stats(c, &st);
		assert_int_equal(st.go_pclntab_used, 1);
	}
	symcache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pie_symbols),
		cmocka_unit_test(test_build_id),
		cmocka_unit_test(test_cxx_demangled_in_shared_lib),
		cmocka_unit_test(test_debug_file_by_build_id),
		cmocka_unit_test(test_debug_file_by_debuglink),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_demangle),
		cmocka_unit_test(test_ksyms_synthetic),
		cmocka_unit_test(test_ksyms_real),
		cmocka_unit_test(test_go_pclntab),
		cmocka_unit_test(test_minidebuginfo),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
