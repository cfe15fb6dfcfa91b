// SPDX-License-Identifier: Apache-2.0
/*
 * The ELF symbolizer against binaries built here with gcc/g++: what nm says a
 * function's address is must come back as its name, through file offsets the way
 * /proc/PID/maps gives them; separate debug files, MiniDebugInfo, corrupt files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "elfsym.h"
#include "helpers.h"

static char dir[64];

#define BUILD_ID_HEX_LEN (2 * 64 + 1)

/* ---- helpers ------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

static char *read_all(const char *path, size_t *ret_len)
{
	struct stat st;
	char *buf;
	FILE *f = fopen(path, "re");

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*ret_len = (size_t)st.st_size;
	return buf;
}

static void tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* nm's address of a symbol (exact name), size in *ret_size when given */
static uint64_t nm_sym(const char *file, const char *sym, uint64_t *ret_size)
{
	char cmd[1024], *out;
	unsigned long long a = 0, sz = 0;

	snprintf(cmd, sizeof(cmd),
		 "nm -S %s | awk '$NF == \"%s\" { print $1, (NF == 4 ? $2 : 0); exit }'", file,
		 sym);
	out = run_capture(cmd);
	assert_non_null(out);
	if (sscanf(out, "%llx %llx", &a, &sz) < 1)
		fail_msg("nm: no %s in %s", sym, file);
	free(out);
	assert_true(a != 0);
	if (ret_size)
		*ret_size = sz;
	return a;
}

/* file offset of a vaddr: what /proc/PID/maps arithmetic produces */
static uint64_t vaddr_to_off(const char *file, uint64_t vaddr)
{
	char cmd[1024], *out;
	unsigned long long off = 0, va = 0;
	int found = 0;

	snprintf(cmd, sizeof(cmd), "readelf -lW %s | awk '$1 == \"LOAD\" { print $2, $3, $5 }'",
		 file);
	out = run_capture(cmd);
	assert_non_null(out);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long o, v, sz;

		if (sscanf(line, "%llx %llx %llx", &o, &v, &sz) == 3 && vaddr >= v &&
		    vaddr < v + sz) {
			off = o;
			va = v;
			found = 1;
		}
	}
	free(out);
	assert_true(found);
	return off + (vaddr - va);
}

static void expect_name(const struct elfobj *o, uint64_t vaddr, const char *want)
{
	const char *name = NULL;
	int err = elfobj__symbolize(o, vaddr, &name, NULL);

	if (err)
		fail_msg("0x%" PRIx64 ": %s, want %s", vaddr, strerror(-err), want);
	assert_string_equal(name, want);
}

/* true when vaddr does not come back as want */
static int not_named(const struct elfobj *o, uint64_t vaddr, const char *want)
{
	const char *name;

	return elfobj__symbolize(o, vaddr, &name, NULL) != 0 || strcmp(name, want) != 0;
}

/* sh_addr of a section, 0 when there is none */
static uint64_t section_addr(const char *file, const char *name)
{
	char cmd[1024], *out;
	uint64_t a;

	snprintf(cmd, sizeof(cmd),
		 "readelf -SW %s | sed 's/^ *\\[ *[0-9]*\\] *//' | awk '$1 == \"%s\" { print $3 }'",
		 file, name);
	out = run_capture(cmd);
	assert_non_null(out);
	a = strtoull(out, NULL, 16);
	free(out);
	return a;
}

struct mapping {
	uint64_t start, end, offset, dev, ino;
	char path[512];
};

/* the line of /proc/self/maps holding addr */
static int find_mapping(uintptr_t addr, struct mapping *m)
{
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "re");
	int found = 0;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off, ino;
		unsigned maj, min;
		int n = 0;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu %n", &s, &e, &off, &maj, &min, &ino,
			   &n) < 6 ||
		    addr < s || addr >= e)
			continue;
		m->start = s;
		m->end = e;
		m->offset = off;
		m->dev = makedev(maj, min);
		m->ino = ino;
		snprintf(m->path, sizeof(m->path), "%s", line + n);
		m->path[strcspn(m->path, "\n")] = '\0';
		found = 1;
	}
	fclose(f);
	return found;
}

/* ---- fixtures ----------------------------------------------------------- */

static const char prog_c[] =
	"int sym_alpha(int x) { return x * 3 + 1; }\n"
	"int sym_beta(int x) { return sym_alpha(x) - 2; }\n"
	"static __attribute__((noinline)) int static_fn(int x) { return x * 7 + sym_beta(x); }\n"
	"int main(int c, char **v) { (void)v; return static_fn(c); }\n";

/* linked into prog: what hand-written assembly does */
static const char asm_s[] =
	"\t.text\n"
	/* a function without a size */
	"\t.globl nosize_fn\n"
	"\t.type nosize_fn, @function\n"
	"nosize_fn:\n"
	"\tnop\n\tnop\n\tnop\n\tret\n"
	/* no type, but a size */
	"\t.globl untyped_fn\n"
	"untyped_fn:\n"
	"\tnop\n\tnop\n\tret\n"
	"\t.size untyped_fn, .-untyped_fn\n"
	/* a function inside another */
	"\t.globl outer_fn\n"
	"\t.type outer_fn, @function\n"
	"outer_fn:\n"
	"\tnop\n\tnop\n"
	"\t.type inner_fn, @function\n"
	"inner_fn:\n"
	"\tnop\n"
	"\t.size inner_fn, .-inner_fn\n"
	"\tnop\n\tnop\n\tret\n"
	"\t.size outer_fn, .-outer_fn\n"
	"\t.globl after_fn\n"
	"\t.type after_fn, @function\n"
	"after_fn:\n"
	"\tret\n"
	"\t.size after_fn, .-after_fn\n"
	"\t.section .note.GNU-stack, \"\", @progbits\n";

static const char lib_c[] =
	"int lib_gamma(int x) { return x * 5 + 3; }\n"
	/* aliases that sort first by name: only binding can put lib_gamma first */
	"extern int alias_weak(int) __attribute__((weak, alias(\"lib_gamma\")));\n"
	"static int alias_local(int) __attribute__((alias(\"lib_gamma\"), used));\n"
	"int lib_ver_impl(int x) { return x + 5; }\n"
	"__asm__(\".symver lib_ver_impl,lib_ver@@VERS_1\");\n";

static const char cxx_cc[] =
	"namespace ns { int foo(int x); int foo(int x) { return x + 1; } }\n"
	"struct S { int bar(double d); };\n"
	"int S::bar(double d) { return (int)d * 2; }\n"
	"template <typename T> T twice(T v) { return v + v; }\n"
	"template int twice<int>(int);\n";

static int setup(void **state)
{
	char p[512];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-elfsym-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	tpath(p, sizeof(p), "prog.c");
	write_str(p, prog_c);
	tpath(p, sizeof(p), "asm.s");
	write_str(p, asm_s);
	tpath(p, sizeof(p), "lib.c");
	write_str(p, lib_c);
	tpath(p, sizeof(p), "lib.map");
	write_str(p, "VERS_1 { global: *; };\n");
	tpath(p, sizeof(p), "cxx.cc");
	write_str(p, cxx_cc);
	sh("cd %s && gcc -O1 -g -fPIE -pie prog.c asm.s -o prog", dir);
	sh("cd %s && gcc -O1 -g -shared -fPIC -Wl,--version-script=lib.map lib.c -o lib.so", dir);
	sh("cd %s && g++ -O1 -g -shared -fPIC cxx.cc -o cxx.so", dir);
	sh("cd %s && gcc -O1 -Wl,--build-id=none prog.c asm.s -o prog-nobid", dir);
	/* stripped, with its debug file kept apart */
	sh("cd %s && objcopy --only-keep-debug prog prog.debug && strip -s prog -o prog-stripped",
	   dir);
	sh("mkdir -p %s/empty-root", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static struct symcache *cache_with_root(const char *root, size_t max)
{
	struct symcache_opts opts = { .max_objects = max, .debug_root = root };
	struct symcache *c = symcache__new(&opts);

	assert_non_null(c);
	return c;
}

static struct symcache *cache_no_debug(void)
{
	char root[512];

	tpath(root, sizeof(root), "empty-root");
	return cache_with_root(root, 0);
}

/* The byte budget holds after a trim, not during loads: both objects stay until then. */
static void test_trim_budget(void **state)
{
	struct symcache_opts opts = { .max_bytes = 1 };
	struct symcache *c = symcache__new(&opts);
	struct symcache_stats st;
	struct elfobj *a, *b;

	(void)state;
	assert_non_null(c);
	a = symcache__get(c, "/proc/self/exe", NULL, 0, 0);
	b = symcache__get(c, "/bin/sh", NULL, 0, 0);
	assert_non_null(a);
	assert_non_null(b);
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, 0);	/* a big binary and libc may take turns */
	assert_true(st.bytes > 1);
	symcache__trim(c);
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, 1);	/* one is always kept */
	assert_non_null(symcache__get(c, "/bin/sh", NULL, 0, 0));	/* the newest stayed */
	symcache__stats(c, &st);
	assert_int_equal(st.misses, 2);
	symcache__free(c);
}

/* ---- symbols ------------------------------------------------------------ */

static void test_pie_executable(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512];
	struct elfobj *o;
	const char *name;
	uint64_t a, size, v, off;

	(void)state;
	tpath(path, sizeof(path), "prog");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_true(elfobj__nsyms(o) >= 5);

	/* a file offset in the mapping -> vaddr -> name, with the offset into the function */
	a = nm_sym(path, "sym_alpha", &size);
	assert_true(size > 2);
	off = vaddr_to_off(path, a + 2);
	assert_int_equal(elfobj__offset_to_vaddr(o, off, &v), 0);
	assert_true(v == a + 2);
	assert_int_equal(elfobj__symbolize(o, v, &name, &off), 0);
	assert_string_equal(name, "sym_alpha");
	assert_int_equal(off, 2);
	/* first and last byte; the byte after belongs to someone else */
	expect_name(o, a, "sym_alpha");
	expect_name(o, a + size - 1, "sym_alpha");
	assert_true(not_named(o, a + size, "sym_alpha"));

	expect_name(o, nm_sym(path, "sym_beta", NULL), "sym_beta");
	expect_name(o, nm_sym(path, "static_fn", NULL) + 1, "static_fn");	/* local */
	expect_name(o, nm_sym(path, "main", NULL), "main");
	/* below every function; a file offset past every segment */
	assert_int_equal(elfobj__symbolize(o, 0x10, &name, NULL), -ENOENT);
	assert_int_equal(elfobj__offset_to_vaddr(o, 1ull << 40, &v), -ENOENT);
	symcache__free(c);
}

static void test_unsized_untyped_nested(void **state)
{
	struct symcache *c = cache_no_debug();
	uint64_t a, inner_size;
	char path[512];
	struct elfobj *o;

	(void)state;
	tpath(path, sizeof(path), "prog");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	/* size 0: up to the next symbol */
	expect_name(o, nm_sym(path, "nosize_fn", NULL) + 1, "nosize_fn");
	/* no type, but a size in .text */
	expect_name(o, nm_sym(path, "untyped_fn", NULL) + 1, "untyped_fn");
	/* inner_fn inside outer_fn: past inner's end is outer again */
	a = nm_sym(path, "inner_fn", &inner_size);
	assert_true(inner_size > 0);
	expect_name(o, a, "inner_fn");
	expect_name(o, a + inner_size, "outer_fn");
	expect_name(o, nm_sym(path, "outer_fn", NULL), "outer_fn");
	expect_name(o, nm_sym(path, "after_fn", NULL), "after_fn");
	/* _init has no size, and the PLT follows its section: the PLT is not _init */
	expect_name(o, nm_sym(path, "_init", NULL) + 1, "_init");
	a = section_addr(path, ".plt");
	if (a)
		assert_true(not_named(o, a + 1, "_init"));
	symcache__free(c);
}

static void test_shared_library(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512];
	struct elfobj *o;
	const char *name;
	uint64_t a, v;

	(void)state;
	tpath(path, sizeof(path), "lib.so");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	/* global, weak and local names at one address: the global one */
	a = nm_sym(path, "lib_gamma", NULL);
	assert_int_equal(elfobj__offset_to_vaddr(o, vaddr_to_off(path, a + 1), &v), 0);
	assert_true(v == a + 1);
	expect_name(o, v, "lib_gamma");
	/* "lib_ver@@VERS_1" in .symtab: the version is no part of the name */
	a = nm_sym(path, "lib_ver_impl", NULL);
	assert_int_equal(elfobj__symbolize(o, a, &name, NULL), 0);
	assert_null(strchr(name, '@'));
	assert_true(!strcmp(name, "lib_ver") || !strcmp(name, "lib_ver_impl"));
	symcache__free(c);
}

/* A versioned name with no plain twin in .dynsym ("memcpy@GLIBC_2.2.5" in libc's .symtab). */
static void test_symbol_version_dropped(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512], prog[512];
	struct elfobj *o;

	(void)state;
	tpath(prog, sizeof(prog), "prog");
	tpath(path, sizeof(path), "prog-ver");
	sh("objcopy --redefine-sym static_fn=static_fn@VERS_2 --redefine-sym sym_beta=@odd %s %s",
	   prog, path);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	expect_name(o, nm_sym(prog, "static_fn", NULL), "static_fn");
	/* a name that starts with '@' keeps it: there would be nothing left */
	expect_name(o, nm_sym(prog, "sym_beta", NULL), "@odd");
	symcache__free(c);
}

/* The real thing: a library mapped into this process, found through /proc/self/maps. */
static void test_mapped_library(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512], open_path[512];
	struct mapping m;
	struct elfobj *o;
	void *h, *fn;
	uint64_t v;

	(void)state;
	tpath(path, sizeof(path), "lib.so");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	fn = dlsym(h, "lib_gamma");
	assert_non_null(fn);
	assert_true(find_mapping((uintptr_t)fn + 1, &m));
	assert_string_equal(m.path, path);
	/* by map_files when we may, else by path */
	snprintf(open_path, sizeof(open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
		 (int)getpid(), m.start, m.end);
	if (access(open_path, R_OK))
		snprintf(open_path, sizeof(open_path), "%s", m.path);
	o = symcache__get(c, open_path, m.path, m.dev, m.ino);
	assert_non_null(o);
	assert_int_equal(elfobj__offset_to_vaddr(o, (uintptr_t)fn + 1 - m.start + m.offset, &v),
			 0);
	expect_name(o, v, "lib_gamma");
	dlclose(h);
	symcache__free(c);
}

static __attribute__((noinline)) int self_marker(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 11 + 1;
}

/* This test program itself (a PIE built with symbols), through its own mapping. */
static void test_self(void **state)
{
	struct symcache *c = cache_no_debug();
	int (*volatile fp)(int) = self_marker;
	uintptr_t pc = (uintptr_t)fp + 1;
	char open_path[600];
	struct mapping m;
	struct elfobj *o;
	uint64_t v;

	(void)state;
	assert_int_equal(fp(1), 12);
	assert_true(find_mapping(pc, &m));
	snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", (int)getpid(), m.path);
	o = symcache__get(c, open_path, m.path, m.dev, m.ino);
	assert_non_null(o);
	assert_int_equal(elfobj__offset_to_vaddr(o, pc - m.start + m.offset, &v), 0);
	expect_name(o, v, "self_marker");
	symcache__free(c);
}

static void test_cxx_demangled(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512];
	struct elfobj *o;
	uint64_t a, v;

	(void)state;
	tpath(path, sizeof(path), "cxx.so");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	a = nm_sym(path, "_ZN2ns3fooEi", NULL);
	assert_int_equal(elfobj__offset_to_vaddr(o, vaddr_to_off(path, a), &v), 0);
	expect_name(o, v, "ns::foo(int)");
	expect_name(o, nm_sym(path, "_ZN1S3barEd", NULL), "S::bar(double)");
	expect_name(o, nm_sym(path, "_Z5twiceIiET_S0_", NULL), "int twice<int>(int)");
	symcache__free(c);
}

static void test_build_id(void **state)
{
	struct symcache *c = cache_no_debug();
	char path[512], cmd[1024], *out;
	struct elfobj *o, *o2;

	(void)state;
	tpath(path, sizeof(path), "prog");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	snprintf(cmd, sizeof(cmd), "readelf -n %s | awk '/Build ID/ { print $3 }'", path);
	out = run_capture(cmd);
	assert_non_null(out);
	out[strcspn(out, "\n")] = '\0';
	assert_true(strlen(out) >= 16);
	assert_string_equal(elfobj__build_id(o), out);
	free(out);
	/* the stripped copy keeps the note */
	tpath(path, sizeof(path), "prog-stripped");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	tpath(path, sizeof(path), "prog");
	o2 = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o2);
	assert_string_equal(elfobj__build_id(o), elfobj__build_id(o2));
	/* none at all */
	tpath(path, sizeof(path), "prog-nobid");
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_string_equal(elfobj__build_id(o), "");
	expect_name(o, nm_sym(path, "sym_beta", NULL), "sym_beta");
	symcache__free(c);
}

/* ---- separate debug files ----------------------------------------------- */

static void test_debug_file_by_build_id(void **state)
{
	char root[512], path[512], prog[512], other[512];
	struct symcache_stats st;
	struct symcache *c;
	struct elfobj *o;
	const char *bid;
	uint64_t a;

	(void)state;
	tpath(prog, sizeof(prog), "prog");
	tpath(path, sizeof(path), "prog-stripped");
	tpath(root, sizeof(root), "bid-root");
	a = nm_sym(prog, "static_fn", NULL);	/* only in .symtab, which strip removed */

	c = cache_no_debug();
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_true(not_named(o, a, "static_fn"));
	bid = elfobj__build_id(o);
	assert_true(strlen(bid) > 2);
	sh("mkdir -p %s/.build-id/%.2s && cp %s/prog.debug %s/.build-id/%.2s/%s.debug", root, bid,
	   dir, root, bid, bid + 2);
	/* a debug file of another build under that name is not used */
	tpath(other, sizeof(other), "bid-root-wrong");
	sh("mkdir -p %s/.build-id/%.2s && objcopy --only-keep-debug %s/lib.so "
	   "%s/.build-id/%.2s/%s.debug",
	   other, bid, dir, other, bid, bid + 2);
	symcache__free(c);

	c = cache_with_root(root, 0);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	expect_name(o, a, "static_fn");
	expect_name(o, nm_sym(prog, "sym_alpha", NULL) + 1, "sym_alpha");
	symcache__stats(c, &st);
	assert_int_equal(st.debug_files_used, 1);
	symcache__free(c);

	c = cache_with_root(other, 0);
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_true(not_named(o, a, "static_fn"));
	symcache__stats(c, &st);
	assert_int_equal(st.debug_files_used, 0);
	symcache__free(c);
}

static void test_debug_file_by_debuglink(void **state)
{
	static const char *const where[] = { "same directory", ".debug/", "debug root" };
	char root[128], dl[128], path[512], prog[512], moved[512];
	struct symcache_stats st;
	struct symcache *c;
	struct elfobj *o;
	uint64_t a;

	(void)state;
	tpath(prog, sizeof(prog), "prog");
	tpath(dl, sizeof(dl), "dl");
	tpath(root, sizeof(root), "dl-root");
	a = nm_sym(prog, "static_fn", NULL);
	/* no build-id, so only the debuglink can lead to prog.dbg */
	sh("mkdir -p %s/.debug %s%s && objcopy --only-keep-debug %s %s/prog.dbg", dl, root, dl,
	   prog, dl);
	sh("strip -s %s -o %s/prog.tmp && objcopy --remove-section=.note.gnu.build-id "
	   "--add-gnu-debuglink=%s/prog.dbg %s/prog.tmp %s/prog && rm %s/prog.tmp",
	   prog, dl, dl, dl, dl, dl);
	snprintf(path, sizeof(path), "%s/prog", dl);
	for (int i = 0; i < 3; i++) {
		if (i == 1)
			snprintf(moved, sizeof(moved), "%s/.debug/prog.dbg", dl);
		else if (i == 2)
			snprintf(moved, sizeof(moved), "%s%s/prog.dbg", root, dl);
		if (i)
			sh("mv %s/prog.dbg %s", dl, moved);
		c = cache_with_root(root, 0);
		o = symcache__get(c, path, path, 0, 0);
		assert_non_null(o);
		assert_string_equal(elfobj__build_id(o), "");
		if (not_named(o, a, "static_fn"))
			fail_msg("debuglink in %s not found", where[i]);
		symcache__stats(c, &st);
		assert_int_equal(st.debug_files_used, 1);
		symcache__free(c);
		if (i)
			sh("mv %s %s/prog.dbg", moved, dl);
	}
	/* a debug file whose CRC does not match is not used */
	sh("cp %s/prog.dbg %s/prog.good && printf 'garbage' >> %s/prog.dbg", dl, dl, dl);
	c = cache_with_root(root, 0);
	o = symcache__get(c, path, path, 0, 0);
	assert_non_null(o);
	assert_true(not_named(o, a, "static_fn"));
	symcache__stats(c, &st);
	assert_int_equal(st.debug_files_used, 0);
	symcache__free(c);
	sh("mv %s/prog.good %s/prog.dbg", dl, dl);
}

/* A process's file seen through /proc/PID/root and /proc/PID/map_files: its own directory. */
static void test_debuglink_through_proc(void **state)
{
	char path[512], open_path[600];
	struct symcache *c;
	struct elfobj *o;
	struct mapping m;
	uint64_t a;
	size_t len;
	void *p;
	int fd;

	(void)state;
	tpath(path, sizeof(path), "prog");
	a = nm_sym(path, "static_fn", NULL);
	tpath(path, sizeof(path), "dl/prog");	/* from the debuglink test */

	snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", (int)getpid(), path);
	c = cache_no_debug();
	o = symcache__get(c, open_path, NULL, 0, 0);
	assert_non_null(o);
	expect_name(o, a, "static_fn");
	symcache__free(c);

	/* map_files has no directory: the real path gives it */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	len = (size_t)lseek(fd, 0, SEEK_END);
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	assert_true(p != MAP_FAILED);
	assert_true(find_mapping((uintptr_t)p, &m));
	snprintf(open_path, sizeof(open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
		 (int)getpid(), m.start, m.end);
	if (access(open_path, R_OK) == 0) {
		c = cache_no_debug();
		o = symcache__get(c, open_path, path, m.dev, m.ino);
		assert_non_null(o);
		expect_name(o, a, "static_fn");
		symcache__free(c);
	}
	munmap(p, len);
}

static void test_minidebuginfo(void **state)
{
	char prog[512], path[512];
	struct symcache_stats st;
	struct symcache *c;
	struct elfobj *o;

	(void)state;
	if (!have_cmd("xz"))
		skip();
	tpath(prog, sizeof(prog), "prog");
	tpath(path, sizeof(path), "prog-mini");
	/* the recipe of gdb's manual: local function symbols, xz'd into .gnu_debugdata */
	sh("cd %s && echo static_fn > keep.txt && objcopy --only-keep-debug prog mini.full && "
	   "objcopy -S --remove-section .gdb_index --remove-section .comment "
	   "--keep-symbols=keep.txt mini.full mini.dbg && xz -f mini.dbg && "
	   "strip -s prog -o prog-mini && "
	   "objcopy --add-section .gnu_debugdata=mini.dbg.xz prog-mini",
	   dir);
	c = cache_no_debug();
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	expect_name(o, nm_sym(prog, "static_fn", NULL) + 1, "static_fn");
	symcache__stats(c, &st);
	assert_int_equal(st.minidebuginfo_used, 1);
	assert_int_equal(st.debug_files_used, 0);
	symcache__free(c);
	/* corrupt xz data: the file still loads, without those symbols */
	sh("cd %s && head -c 100 mini.dbg.xz > bad.xz && strip -s prog -o prog-badmini && "
	   "objcopy --add-section .gnu_debugdata=bad.xz prog-badmini",
	   dir);
	tpath(path, sizeof(path), "prog-badmini");
	c = cache_no_debug();
	o = symcache__get(c, path, NULL, 0, 0);
	assert_non_null(o);
	assert_true(not_named(o, nm_sym(prog, "static_fn", NULL) + 1, "static_fn"));
	symcache__stats(c, &st);
	assert_int_equal(st.minidebuginfo_used, 0);
	symcache__free(c);
}

/* ---- the cache ---------------------------------------------------------- */

static void test_eviction(void **state)
{
	struct symcache *c;
	struct symcache_stats st;
	char a[512], b[512], d[512];
	struct elfobj *o;

	(void)state;
	tpath(a, sizeof(a), "prog");
	tpath(b, sizeof(b), "lib.so");
	tpath(d, sizeof(d), "cxx.so");
	c = cache_with_root("/nonexistent", 2);
	assert_non_null(symcache__get(c, a, NULL, 0, 0));
	assert_non_null(symcache__get(c, b, NULL, 0, 0));
	assert_non_null(symcache__get(c, d, NULL, 0, 0));	/* evicts a */
	o = symcache__get(c, a, NULL, 0, 0);			/* evicts b, loads a again */
	assert_non_null(o);
	expect_name(o, nm_sym(a, "sym_beta", NULL), "sym_beta");
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.objects_loaded, 4);
	assert_int_equal(st.lookups, 4);
	assert_int_equal(st.misses, 4);
	/* least recently used goes first: d was used before a */
	assert_non_null(symcache__get(c, d, NULL, 0, 0));	/* hit */
	assert_non_null(symcache__get(c, b, NULL, 0, 0));	/* evicts a */
	assert_non_null(symcache__get(c, d, NULL, 0, 0));	/* still there */
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, 3);
	assert_int_equal(st.objects_loaded, 5);
	assert_int_equal(st.lookups, 7);
	assert_int_equal(st.misses, 5);
	symcache__free(c);
}

static void test_keys_and_sharing(void **state)
{
	char a[512], link[512], copy[512], stripped[512];
	struct symcache_stats st;
	struct elfobj *o1, *o2;
	struct symcache *c;
	struct stat sa, sc;

	(void)state;
	tpath(a, sizeof(a), "prog");
	tpath(link, sizeof(link), "prog-link");
	tpath(copy, sizeof(copy), "prog-copy");
	tpath(stripped, sizeof(stripped), "prog-stripped");
	sh("ln -sf %s %s && cp %s %s", a, link, a, copy);
	assert_int_equal(stat(a, &sa), 0);
	assert_int_equal(stat(copy, &sc), 0);

	c = cache_no_debug();
	/* one file under two names, keyed by (dev, ino): loaded once */
	o1 = symcache__get(c, a, NULL, sa.st_dev, sa.st_ino);
	o2 = symcache__get(c, link, NULL, sa.st_dev, sa.st_ino);
	assert_non_null(o1);
	assert_ptr_equal(o1, o2);
	/* another file with the same build-id: shares the loaded object */
	o2 = symcache__get(c, copy, NULL, sc.st_dev, sc.st_ino);
	assert_ptr_equal(o1, o2);
	symcache__stats(c, &st);
	assert_int_equal(st.objects_loaded, 1);
	assert_int_equal(st.objects_shared, 1);
	assert_int_equal(st.misses, 2);
	symcache__free(c);

	/* a stripped file first: the full one with the same build-id is not served by it */
	c = cache_no_debug();
	o1 = symcache__get(c, stripped, NULL, 0, 0);
	o2 = symcache__get(c, a, NULL, 0, 0);
	assert_non_null(o1);
	assert_non_null(o2);
	assert_ptr_not_equal(o1, o2);
	expect_name(o2, nm_sym(a, "static_fn", NULL), "static_fn");
	/* ... but a second stripped one is, by the full one */
	o1 = symcache__get(c, stripped, NULL, 1, 1);
	assert_ptr_equal(o1, o2);
	symcache__stats(c, &st);
	assert_int_equal(st.objects_loaded, 2);
	assert_int_equal(st.objects_shared, 1);
	symcache__free(c);
}

static void test_negative_entries(void **state)
{
	struct symcache *c = cache_no_debug();
	struct symcache_stats st;
	char path[512];

	(void)state;
	errno = 0;
	assert_null(symcache__get(c, "/nonexistent/lib.so", NULL, 0, 0));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(symcache__get(c, "/nonexistent/lib.so", NULL, 0, 0));
	assert_int_equal(errno, ENOENT);
	tpath(path, sizeof(path), "prog.c");	/* not ELF */
	assert_null(symcache__get(c, path, NULL, 0, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(symcache__get(c, path, NULL, 0, 0));
	assert_int_equal(errno, EINVAL);
	symcache__stats(c, &st);
	assert_int_equal(st.lookups, 4);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.objects_failed, 2);
	assert_int_equal(st.objects_loaded, 0);
	symcache__free(c);
}

/* ---- corrupt input ------------------------------------------------------ */

/* Anything the symbolizer says about a broken object must still be sane. */
static void poke(struct elfobj *o)
{
	const char *name;
	uint64_t v, off;

	if (!o)
		return;
	assert_true(strlen(elfobj__build_id(o)) <= 128);
	for (uint64_t x = 0; x < 0x6000; x += 0x11) {
		if (elfobj__offset_to_vaddr(o, x, &v) == 0 &&
		    elfobj__symbolize(o, v, &name, &off) == 0)
			assert_true(strlen(name) <= 4096 && off <= v);
		if (elfobj__symbolize(o, x, &name, NULL) == 0)
			assert_true(strlen(name) <= 4096);
	}
}

/* Loads path in a cache of its own: 1 when it loaded (and was poked), 0 with errno set. */
static int get_fresh(const char *path)
{
	struct symcache *c = cache_no_debug();
	struct elfobj *o = symcache__get(c, path, NULL, 0, 0);
	int err = errno;

	poke(o);
	symcache__free(c);
	errno = err;
	return o != NULL;
}

/* The file offset of section name's header in an ELF64 file image. */
static size_t shdr_offset(const char *file, const char *name, size_t *ret_ndx)
{
	size_t shstrndx, off = 0;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	Elf *elf;
	int fd = open(file, O_RDONLY);

	assert_true(fd >= 0);
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	assert_non_null(gelf_getehdr(elf, &eh));
	assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		gelf_getshdr(scn, &shdr);
		if (!strcmp(elf_strptr(elf, shstrndx, shdr.sh_name), name)) {
			*ret_ndx = elf_ndxscn(scn);
			off = eh.e_shoff + elf_ndxscn(scn) * eh.e_shentsize;
		}
	}
	elf_end(elf);
	close(fd);
	assert_true(off != 0);
	return off;
}

static void test_truncated(void **state)
{
	char src[512], path[512];
	size_t len;
	char *img;

	(void)state;
	tpath(src, sizeof(src), "prog");
	img = read_all(src, &len);
	{
		const size_t cuts[] = { 0, 1, 4, 16, 52, 63, 64, 100, 500, 4096, len / 2, len - 1 };

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			int loaded;

			snprintf(path, sizeof(path), "%s/cut-%zu", dir, cuts[i]);
			write_file(path, img, cuts[i]);
			loaded = get_fresh(path);
			/* no complete header: no ELF */
			if (cuts[i] < 64)
				assert_false(loaded);
		}
	}
	free(img);
}

static void test_lying_headers(void **state)
{
	struct {
		const char *what;
		size_t off, size;
		uint64_t val;
	} lies[] = {
		{ "e_phoff huge", offsetof(Elf64_Ehdr, e_phoff), 8, 0x7fffffffffffff00ull },
		{ "e_shoff huge", offsetof(Elf64_Ehdr, e_shoff), 8, 0x7fffffffffffff00ull },
		{ "e_shoff past the end", offsetof(Elf64_Ehdr, e_shoff), 8, 0 /* set below */ },
		{ "e_phnum huge", offsetof(Elf64_Ehdr, e_phnum), 2, 0xffff },
		{ "e_shnum huge", offsetof(Elf64_Ehdr, e_shnum), 2, 0xfeff },
		{ "e_shnum 0 (extended)", offsetof(Elf64_Ehdr, e_shnum), 2, 0 },
		{ "e_shstrndx huge", offsetof(Elf64_Ehdr, e_shstrndx), 2, 0xfffe },
		{ "e_shentsize 1", offsetof(Elf64_Ehdr, e_shentsize), 2, 1 },
		{ "e_phentsize 3", offsetof(Elf64_Ehdr, e_phentsize), 2, 3 },
		{ ".symtab sh_offset huge", offsetof(Elf64_Shdr, sh_offset), 8, 0x7fffffffff00ull },
		{ ".symtab sh_size huge", offsetof(Elf64_Shdr, sh_size), 8, 0x7fffffffff00ull },
		{ ".symtab sh_link bad", offsetof(Elf64_Shdr, sh_link), 4, 0xfff0 },
		{ ".symtab sh_link to itself", offsetof(Elf64_Shdr, sh_link), 4, 0 /* below */ },
		{ ".symtab sh_entsize 0", offsetof(Elf64_Shdr, sh_entsize), 8, 0 },
		{ ".strtab sh_size 1", offsetof(Elf64_Shdr, sh_size), 8, 1 },
		{ ".strtab sh_offset at the end", offsetof(Elf64_Shdr, sh_offset), 8, 0 /* set */ },
		{ "section 0 sh_size huge", offsetof(Elf64_Shdr, sh_size), 8, 0xffffffffull },
	};
	char src[512], path[512];
	size_t len, symtab_hdr, strtab_hdr, symtab_ndx, strtab_ndx;
	Elf64_Ehdr *eh;
	char *img;

	(void)state;
	tpath(src, sizeof(src), "prog");
	img = read_all(src, &len);
	eh = (Elf64_Ehdr *)img;
	assert_int_equal(img[EI_CLASS], ELFCLASS64);
	symtab_hdr = shdr_offset(src, ".symtab", &symtab_ndx);
	strtab_hdr = shdr_offset(src, ".strtab", &strtab_ndx);
	lies[2].val = len + 8;
	lies[12].val = symtab_ndx;
	lies[15].val = len - 2;
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		char *copy = malloc(len);
		size_t base = 0;

		assert_non_null(copy);
		memcpy(copy, img, len);
		if (lies[i].what[0] == '.')
			base = strncmp(lies[i].what, ".symtab", 7) ? strtab_hdr : symtab_hdr;
		else if (!strncmp(lies[i].what, "section 0", 9)) {
			/* e_shnum 0: the count is section 0's sh_size */
			base = eh->e_shoff;
			memset(copy + offsetof(Elf64_Ehdr, e_shnum), 0, 2);
		}
		/* little-endian: the low bytes of val */
		memcpy(copy + base + lies[i].off, &lies[i].val, lies[i].size);
		snprintf(path, sizeof(path), "%s/lie-%zu", dir, i);
		write_file(path, copy, len);
		free(copy);
		print_message("# %s\n", lies[i].what);
		get_fresh(path);
	}
	/* every symbol's name out of its string table */
	{
		Elf64_Shdr sym;
		char *copy = malloc(len);

		assert_non_null(copy);
		memcpy(copy, img, len);
		memcpy(&sym, img + symtab_hdr, sizeof(sym));
		for (uint64_t k = 0; k < sym.sh_size / sizeof(Elf64_Sym); k++) {
			Elf64_Sym *s = (Elf64_Sym *)(copy + sym.sh_offset) + k;

			s->st_name = 0xfffffff0u - (uint32_t)k;
		}
		snprintf(path, sizeof(path), "%s/lie-names", dir);
		write_file(path, copy, len);
		free(copy);
		{
			struct symcache *c = cache_no_debug();
			struct elfobj *o = symcache__get(c, path, NULL, 0, 0);

			/* still an ELF file: .dynsym has main; none of .symtab's names */
			assert_non_null(o);
			poke(o);
			assert_true(not_named(o, nm_sym(src, "static_fn", NULL), "static_fn"));
			symcache__free(c);
		}
	}
	free(img);
}

/* Random bytes flipped in the headers: whatever comes out, no crash, no bad read. */
static void test_bit_flips(void **state)
{
	char src[512], path[512];
	unsigned seed = 12345;
	size_t len;
	char *img, *copy;
	Elf64_Ehdr *eh;

	(void)state;
	tpath(src, sizeof(src), "prog");
	img = read_all(src, &len);
	copy = malloc(len);
	assert_non_null(copy);
	eh = (Elf64_Ehdr *)img;
	tpath(path, sizeof(path), "flipped");
	for (int round = 0; round < 300; round++) {
		memcpy(copy, img, len);
		for (int k = 0; k < 8; k++) {
			size_t at;

			seed = seed * 1103515245u + 12345u;
			/* the ELF header, the program headers, the section headers */
			switch ((seed >> 8) % 3) {
			case 0:
				at = (seed >> 12) % 64;
				break;
			case 1:
				at = eh->e_phoff + (seed >> 12) % (eh->e_phnum * eh->e_phentsize);
				break;
			default:
				at = eh->e_shoff + (seed >> 12) % (eh->e_shnum * eh->e_shentsize);
				break;
			}
			if (at < len)
				copy[at] ^= (char)(1u << ((seed >> 4) % 8));
		}
		write_file(path, copy, len);
		get_fresh(path);
	}
	free(copy);
	free(img);
}

static void test_not_elf(void **state)
{
	char path[512], fifo[512];
	unsigned char junk[65536];
	unsigned seed = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (unsigned char)(seed >> 16);
	}
	tpath(path, sizeof(path), "random");
	write_file(path, junk, sizeof(junk));
	assert_false(get_fresh(path));
	/* random, after a valid ELF magic and class */
	memcpy(junk, "\177ELF\002\001\001", 7);
	tpath(path, sizeof(path), "random-elf");
	write_file(path, junk, sizeof(junk));
	get_fresh(path);
	tpath(path, sizeof(path), "empty");
	write_file(path, "", 0);
	errno = 0;
	assert_false(get_fresh(path));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_false(get_fresh(dir));	/* a directory */
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_false(get_fresh("/nonexistent/file"));
	assert_int_equal(errno, ENOENT);
	assert_false(get_fresh("/dev/zero"));
	assert_false(get_fresh("/dev/null"));
	/* a FIFO nobody writes to: must not block */
	tpath(fifo, sizeof(fifo), "fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_false(get_fresh(fifo));
}

/* ---- what a file's headers can make us spend (issue 12, item 9) ---------- */

#define RSS_GROWTH_MAX_KB (64 * 1024)
#define GIB (1ull << 30)

struct load_result {
	int err, err_again;	/* errno of symcache__get (0: loaded), and of a second one */
	struct symcache_stats st;
};

/* In a child process: loads arg (a path) twice in a cache of its own. */
static void load_twice(void *arg, void *out)
{
	struct symcache_opts opts = { .max_objects = 0 };
	struct load_result *r = out;
	struct symcache *c;
	char root[512];

	tpath(root, sizeof(root), "empty-root");
	opts.debug_root = root;
	c = symcache__new(&opts);
	if (!c)
		_exit(1);
	r->err = symcache__get(c, arg, NULL, 0, 0) ? 0 : errno;
	r->err_again = symcache__get(c, arg, NULL, 0, 0) ? 0 : errno;
	symcache__stats(c, &r->st);
	symcache__free(c);
}

/*
 * Loads path (in a child process, whose peak RSS is its own): quickly and
 * without growing its peak RSS by RSS_GROWTH_MAX_KB; it fails with want_err
 * (EFBIG: refused, counted, and remembered), or loads when want_err is 0.
 */
static void load_cheaply(const char *path, int want_err)
{
	struct load_result r;
	struct child_run run;

	run_in_child(load_twice, (void *)path, &r, sizeof(r), &run);
	print_message("# %s: %s in %.3f s, peak RSS +%ld KiB\n", path,
		      r.err ? strerror(r.err) : "loaded", run.secs, run.grew_kb);
	assert_true(run.grew_kb < RSS_GROWTH_MAX_KB);
	assert_true(run.secs < 1.0);
	assert_int_equal(r.err, want_err);
	assert_int_equal(r.err_again, want_err);
	assert_int_equal(r.st.objects_refused, want_err == EFBIG);
	/* remembered (a failure) or cached: opened once */
	assert_int_equal(r.st.misses, 1);
	if (!want_err)
		assert_true(get_fresh(path));	/* and what it says is sane */
}

/* prog, with one section claiming 3 GiB over a hole: 20 KB on disk, 3 GiB long. */
static void test_sparse_sections(void **state)
{
	static const struct {
		const char *name;
		int err;	/* 0: loaded without what it holds */
	} cases[] = {
		{ ".symtab", EFBIG }, { ".strtab", EFBIG }, { ".dynsym", EFBIG },
		{ ".dynstr", EFBIG }, { ".note.gnu.build-id", 0 },
	};
	char src[512], path[512];
	struct stat sb;

	(void)state;
	tpath(src, sizeof(src), "prog");
	tpath(path, sizeof(path), "sparse");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		elf_sparse_copy(src, path, cases[i].name, 3 * GIB);
		assert_int_equal(stat(path, &sb), 0);
		/* really sparse, or this proves nothing */
		assert_true((uint64_t)sb.st_size > 3 * GIB && sb.st_blocks * 512 < (1 << 20));
		print_message("# %s claims 3 GiB\n", cases[i].name);
		load_cheaply(path, cases[i].err);
		assert_int_equal(unlink(path), 0);
	}
}

/*
 * Extended numbering: e_shnum 0 and the section count in section 0's sh_size,
 * or e_phnum PN_XNUM and the program header count in its sh_info; the headers
 * themselves in a hole. elf_begin allocated for every section (4 GiB for 20 million).
 */
static void test_sparse_header_counts(void **state)
{
	char src[512], path[512];
	Elf64_Ehdr *eh;
	Elf64_Shdr *s0;
	size_t len;
	char *img;

	(void)state;
	tpath(src, sizeof(src), "prog");
	tpath(path, sizeof(path), "sparse-counts");
	for (int phdrs = 0; phdrs < 2; phdrs++) {
		uint64_t n = 4u << 20, end;

		img = read_all(src, &len);
		eh = (Elf64_Ehdr *)img;
		s0 = (Elf64_Shdr *)(img + eh->e_shoff);
		if (phdrs) {
			eh->e_phnum = PN_XNUM;
			s0->sh_info = (uint32_t)n;
			end = eh->e_phoff + n * sizeof(Elf64_Phdr);
		} else {
			eh->e_shnum = 0;
			s0->sh_size = n;
			end = eh->e_shoff + n * sizeof(Elf64_Shdr);
		}
		write_file(path, img, len);
		free(img);
		assert_int_equal(truncate(path, (off_t)end), 0);
		print_message("# %s: %" PRIu64 "\n", phdrs ? "program headers" : "sections", n);
		load_cheaply(path, EFBIG);
		assert_int_equal(unlink(path), 0);
	}
}

/* A .gnu_debuglink naming a 3 GiB sparse file: its CRC is not computed over the holes. */
static void test_sparse_debuglink_target(void **state)
{
	struct load_result r;
	struct child_run run;
	char d[512], path[512];

	(void)state;
	tpath(d, sizeof(d), "sparse-dl");
	sh("mkdir -p %s && cd %s && strip -s prog -o %s/prog.tmp && "
	   "objcopy --remove-section=.note.gnu.build-id --add-gnu-debuglink=prog.debug "
	   "%s/prog.tmp %s/prog && rm %s/prog.tmp && truncate -s 3G %s/prog.debug",
	   d, dir, d, d, d, d, d);
	snprintf(path, sizeof(path), "%s/prog", d);
	run_in_child(load_twice, path, &r, sizeof(r), &run);
	print_message("# %s: read %lld bytes in %.3f s\n", path, run.read, run.secs);
	if (run.read < 0)
		skip();	/* no /proc/self/io */
	assert_true(run.read < 64ll << 20);
	assert_int_equal(r.err, 0);
	sh("rm -rf %s", d);
}

/* A zlib stream of n bytes, mostly zeros (about 85:1), malloc'd; its length in *ret_len. */
static unsigned char *zlib_bomb(size_t n, size_t *ret_len)
{
	unsigned char chunk[1 << 16];
	size_t cap = n / 16, done = 0;
	unsigned char *out = malloc(cap);
	z_stream z = { 0 };
	int rc = Z_OK;

	assert_non_null(out);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = i % 256 ? 0 : (unsigned char)(i / 256) | 1;
	assert_int_equal(deflateInit(&z, Z_DEFAULT_COMPRESSION), Z_OK);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	while (done < n) {
		size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);

		z.next_in = chunk;
		z.avail_in = (uInt)k;
		rc = deflate(&z, done + k == n ? Z_FINISH : Z_NO_FLUSH);
		assert_int_equal(z.avail_in, 0);
		done += k;
	}
	assert_int_equal(rc, Z_STREAM_END);
	*ret_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/*
 * prog whose .strtab is SHF_COMPRESSED: 1.5 MB of zlib that inflates to 128 MiB.
 * elf_strptr inflates a compressed string table whole, to the size it claims.
 */
static void test_compressed_strtab(void **state)
{
	Elf64_Chdr ch = { .ch_type = ELFCOMPRESS_ZLIB, .ch_size = 128u << 20, .ch_addralign = 1 };
	char src[512], path[512];
	size_t len, zlen, ndx, hdr, off;
	unsigned char *z;
	Elf64_Shdr sh;
	char *img, *out;

	(void)state;
	tpath(src, sizeof(src), "prog");
	tpath(path, sizeof(path), "zstrtab");
	img = read_all(src, &len);
	hdr = shdr_offset(src, ".strtab", &ndx);
	z = zlib_bomb(ch.ch_size, &zlen);
	off = (len + 7) & ~(size_t)7;
	out = calloc(1, off + sizeof(ch) + zlen);
	assert_non_null(out);
	memcpy(out, img, len);
	memcpy(out + off, &ch, sizeof(ch));
	memcpy(out + off + sizeof(ch), z, zlen);
	memcpy(&sh, out + hdr, sizeof(sh));
	sh.sh_offset = off;
	sh.sh_size = sizeof(ch) + zlen;
	sh.sh_flags |= SHF_COMPRESSED;
	sh.sh_addralign = 8;
	memcpy(out + hdr, &sh, sizeof(sh));
	write_file(path, out, off + sizeof(ch) + zlen);
	print_message("# .strtab: %zu bytes of zlib claiming %" PRIu64 "\n", zlen,
		      (uint64_t)ch.ch_size);
	load_cheaply(path, EINVAL);
	free(out);
	free(z);
	free(img);
}

/* ---- symlinks in a container's root (issue 12, item 12) ------------------ */

/*
 * Whether file, as the rooted process names it, gets static_fn's name at a (from
 * prog.debug somewhere): 1, 0, or -1 when it cannot be loaded at all. Counts a
 * result other than want in *bad.
 */
static void expect_in_root(pid_t pid, const char *file, uint64_t a, int want, const char *what,
			   int *bad)
{
	struct symcache *c = cache_no_debug();
	char open_path[600];
	struct elfobj *o;
	int named;

	snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", (int)pid, file);
	o = symcache__get(c, open_path, NULL, 0, 0);
	named = o ? !not_named(o, a, "static_fn") : -1;
	symcache__free(c);
	print_message("# %s: %d (want %d)%s\n", what, named, want, named == want ? "" : " WRONG");
	*bad += named != want;
}

/* static_fn's address in prog, and the build id of prog-stripped (its copy without symbols). */
static uint64_t stripped_prog(char bid[BUILD_ID_HEX_LEN])
{
	char path[512];
	struct symcache *c = cache_no_debug();
	uint64_t a;

	tpath(path, sizeof(path), "prog");
	a = nm_sym(path, "static_fn", NULL);
	tpath(path, sizeof(path), "prog-stripped");
	snprintf(bid, BUILD_ID_HEX_LEN, "%s", elfobj__build_id(symcache__get(c, path, NULL, 0, 0)));
	symcache__free(c);
	assert_true(strlen(bid) > 2);
	return a;
}

/*
 * A container's root holds symlinks to the host's files: as debug files, a debug
 * directory, a .gnu_debuglink target, the mapped file's directory. None is read;
 * links that stay inside the root still work.
 */
static void test_container_symlinks(void **state)
{
	char root[512], dbg[512], up[256] = "", bid[BUILD_ID_HEX_LEN];
	int fd, bad = 0;
	uint64_t a;
	pid_t pid;

	(void)state;
	tpath(root, sizeof(root), "froot");
	sh("mkdir -p %s/usr/bin %s/inroot", root, root);
	pid = rooted_child(root, &fd);
	if (pid < 0)
		skip();	/* chroot needs root */
	a = stripped_prog(bid);
	for (int i = 0; i < 16; i++)
		strcat(up, "../");
	/* the debug root cache_no_debug uses, inside the container */
	snprintf(dbg, sizeof(dbg), "%s%s/empty-root/.build-id/%.2s", root, dir, bid);
	sh("mkdir -p %s && cp %s/prog-stripped %s/usr/bin/prog && cp %s/prog.debug %s/inroot/",
	   dbg, dir, root, dir, root);

	sh("ln -sfn %s/prog.debug %s/%s.debug", dir, dbg, bid + 2);
	expect_in_root(pid, "/usr/bin/prog", a, 0, "build-id link, absolute, to the host", &bad);
	sh("ln -sfn %s%s/prog.debug %s/%s.debug", up, dir, dbg, bid + 2);
	expect_in_root(pid, "/usr/bin/prog", a, 0, "build-id link climbing out with ..", &bad);
	sh("ln -sfn /inroot/prog.debug %s/%s.debug", dbg, bid + 2);
	expect_in_root(pid, "/usr/bin/prog", a, 1, "build-id link, absolute, inside", &bad);
	sh("mkdir -p %s/hostbid/%.2s && cp %s/prog.debug %s/hostbid/%.2s/%s.debug && "
	   "rm -rf %s%s/empty-root/.build-id && ln -sfn %s/hostbid %s%s/empty-root/.build-id",
	   dir, bid, dir, dir, bid, bid + 2, root, dir, dir, root, dir);
	expect_in_root(pid, "/usr/bin/prog", a, 0, ".build-id -> the host's directory", &bad);
	sh("cd %s && strip -s prog -o dl.tmp && objcopy --remove-section=.note.gnu.build-id "
	   "--add-gnu-debuglink=prog.debug dl.tmp %s/usr/bin/dlprog && rm dl.tmp && "
	   "ln -sfn %s/prog.debug %s/usr/bin/prog.debug",
	   dir, root, dir, root);
	expect_in_root(pid, "/usr/bin/dlprog", a, 0, "debuglink target -> the host's", &bad);
	sh("ln -sfn /inroot/prog.debug %s/usr/bin/prog.debug", root);
	expect_in_root(pid, "/usr/bin/dlprog", a, 1, "debuglink target, inside", &bad);
	sh("ln -sfn %s %s/usr/hostdir", dir, root);
	expect_in_root(pid, "/usr/hostdir/prog", a, -1, "mapped file's directory -> the host's",
		       &bad);
	close(fd);
	waitpid(pid, NULL, 0);
	assert_int_equal(bad, 0);
}

/*
 * symcache__prefetch opens a process's file and its root at once and reads them
 * on the loader thread: the debug file inside the process's root is still found
 * when the process has exited before the loader gets to it (a queue of host
 * libraries ahead of it makes that the likely order).
 */
static void test_prefetch_outlives_process(void **state)
{
	static const char *const libs[] = {
		"libc.so.6", "libm.so.6", "libstdc++.so.6", "libcurl.so.4", "libelf.so.1",
		"libdw.so.1", "libcrypto.so.3", "libssl.so.3", "libgnutls.so.30", "libz.so.1",
		"liblzma.so.5", "libp11-kit.so.0",
	};
	char root[512], dbg[512], open_path[600], file[600], bid[BUILD_ID_HEX_LEN];
	struct symcache_stats st;
	struct symcache *c;
	struct stat sb;
	int fd, queued = 0;
	uint64_t a;
	pid_t pid;

	(void)state;
	tpath(root, sizeof(root), "proot");
	sh("mkdir -p %s/usr/bin", root);
	pid = rooted_child(root, &fd);
	if (pid < 0)
		skip();	/* chroot needs root */
	a = stripped_prog(bid);
	/* the debug file only inside the process's root, where cache_no_debug looks */
	snprintf(dbg, sizeof(dbg), "%s%s/empty-root/.build-id/%.2s", root, dir, bid);
	sh("mkdir -p %s && cp %s/prog-stripped %s/usr/bin/prog && cp %s/prog.debug %s/%s.debug",
	   dbg, dir, root, dir, dbg, bid + 2);
	snprintf(file, sizeof(file), "%s/usr/bin/prog", root);
	assert_int_equal(stat(file, &sb), 0);

	c = cache_no_debug();
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		struct stat lb;

		snprintf(file, sizeof(file), "/usr/lib/x86_64-linux-gnu/%s", libs[i]);
		if (stat(file, &lb) == 0 &&
		    symcache__prefetch(c, file, file, (uint64_t)lb.st_dev, (uint64_t)lb.st_ino) == 0)
			queued++;
	}
	snprintf(open_path, sizeof(open_path), "/proc/%d/root/usr/bin/prog", (int)pid);
	assert_int_equal(symcache__prefetch(c, open_path, "/usr/bin/prog", (uint64_t)sb.st_dev,
					    (uint64_t)sb.st_ino), 0);
	close(fd);
	waitpid(pid, NULL, 0);
	assert_int_equal(access(open_path, F_OK), -1);	/* gone with its process */
	expect_name(symcache__find(c, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino), a, "static_fn");
	symcache__stats(c, &st);
	print_message("# %d host libraries queued ahead; %" PRIu64 " loaded, %" PRIu64
		      " debug files used\n", queued, st.objects_loaded, st.debug_files_used);
	assert_true(st.debug_files_used >= 1);
	assert_int_equal(st.prefetches_dropped, 0);
	symcache__free(c);
}

/*
 * A file whose first path was gone (its process exited: ENOENT) is tried again
 * at once by another path to the same file (the next child's), not refused for
 * 10 s; the same gone path is not tried again.
 */
static void test_gone_path_not_sticky(void **state)
{
	struct symcache *c = cache_no_debug();
	struct symcache_stats st;
	char path[512];
	struct stat sb;

	(void)state;
	tpath(path, sizeof(path), "prog");
	assert_int_equal(stat(path, &sb), 0);
	errno = 0;
	assert_null(symcache__get(c, "/proc/2147483647/map_files/1000-2000", path,
				  (uint64_t)sb.st_dev, (uint64_t)sb.st_ino));
	assert_int_equal(errno, ENOENT);
	assert_null(symcache__get(c, "/proc/2147483647/map_files/1000-2000", path,
				  (uint64_t)sb.st_dev, (uint64_t)sb.st_ino));
	assert_non_null(symcache__get(c, path, path, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino));
	symcache__stats(c, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.objects_loaded, 1);
	symcache__free(c);
}

/*
 * Entries evicted while their files load (one entry at most: each prefetch
 * evicts the one before), then the cache freed with loads queued and running:
 * the results are dropped, nothing leaks (the ASan and valgrind tiers), no hang.
 */
static void test_free_while_loading(void **state)
{
	struct symcache_opts opts = { .max_objects = 1 };
	struct symcache *c = symcache__new(&opts);
	struct symcache_stats st;
	char file[256];
	struct stat lb;
	int n = 0;

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < 3; i++) {
		snprintf(file, sizeof(file), "/usr/lib/x86_64-linux-gnu/%s",
			 i == 0 ? "libc.so.6" : i == 1 ? "libm.so.6" : "libz.so.1");
		assert_int_equal(stat(file, &lb), 0);
		assert_int_equal(symcache__prefetch(c, file, file, (uint64_t)lb.st_dev,
						    (uint64_t)lb.st_ino), 0);
		n++;
	}
	symcache__stats(c, &st);
	assert_int_equal(st.evictions, n - 1);
	/* the last one is there once loaded */
	assert_non_null(symcache__find(c, (uint64_t)lb.st_dev, (uint64_t)lb.st_ino));
	symcache__free(c);
}

/* ---- Go ------------------------------------------------------------------ */

static void test_go_pclntab(void **state)
{
	/* static, PIE (.data.rel.ro.gopclntab), and with cgo (a few .dynsym entries) */
	static const char *const modes[] = { "exe", "pie", "cgo" };
	char src[512], plain[512], stripped[512];
	struct symcache_stats st;
	struct symcache *c;
	struct elfobj *o;

	(void)state;
	if (!have_cmd("go"))
		skip();
	snprintf(src, sizeof(src), "%s/tests/workloads/go/hot.go", srcdir());
	if (access(src, R_OK))
		skip();
	sh("mkdir -p %s/gosrc && cp %s %s/gosrc/ && printf 'package main\\n\\nimport \"C\"\\n' "
	   "> %s/gosrc/cgo.go",
	   dir, src, dir, dir);
	for (int i = 0; i < 3; i++) {
		const char *files = i == 2 ? "hot.go cgo.go" : "hot.go";
		const char *mode = i == 1 ? "pie" : "exe";

		snprintf(plain, sizeof(plain), "%s/go-%s", dir, modes[i]);
		snprintf(stripped, sizeof(stripped), "%s/go-%s-stripped", dir, modes[i]);
		sh("cd %s/gosrc && export HOME=%s GOCACHE=%s/gocache GO111MODULE=off GOPROXY=off "
		   "GOFLAGS= && go build -buildmode=%s -o %s %s && "
		   "go build -buildmode=%s -ldflags=-s -o %s %s",
		   dir, dir, dir, mode, plain, files, mode, stripped, files);
		sh("! readelf -SW %s | grep -q '\\.symtab'", stripped);
		if (i == 2)
			sh("readelf -SW %s | grep -q '\\.dynsym'", stripped);
		c = cache_no_debug();
		o = symcache__get(c, stripped, NULL, 0, 0);
		assert_non_null(o);
		expect_name(o, nm_sym(plain, "main.hotLoop", NULL) + 3, "main.hotLoop");
		expect_name(o, nm_sym(plain, "runtime.main", NULL) + 1, "runtime.main");
		symcache__stats(c, &st);
		assert_int_equal(st.go_pclntab_used, 1);
		symcache__free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim_budget),
		cmocka_unit_test(test_pie_executable),
		cmocka_unit_test(test_unsized_untyped_nested),
		cmocka_unit_test(test_shared_library),
		cmocka_unit_test(test_symbol_version_dropped),
		cmocka_unit_test(test_mapped_library),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_cxx_demangled),
		cmocka_unit_test(test_build_id),
		cmocka_unit_test(test_debug_file_by_build_id),
		cmocka_unit_test(test_debug_file_by_debuglink),
		cmocka_unit_test(test_debuglink_through_proc),
		cmocka_unit_test(test_minidebuginfo),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_keys_and_sharing),
		cmocka_unit_test(test_negative_entries),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_lying_headers),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_sparse_sections),
		cmocka_unit_test(test_sparse_header_counts),
		cmocka_unit_test(test_sparse_debuglink_target),
		cmocka_unit_test(test_compressed_strtab),
		cmocka_unit_test(test_container_symlinks),
		cmocka_unit_test(test_prefetch_outlives_process),
		cmocka_unit_test(test_free_while_loading),
		cmocka_unit_test(test_gone_path_not_sticky),
		cmocka_unit_test(test_go_pclntab),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
