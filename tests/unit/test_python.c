// SPDX-License-Identifier: Apache-2.0
/*
 * The CPython support's user-space half: the thread-state key found in the
 * code of PyGILState_GetThisThreadState (the shapes of Debian's 3.11, 3.13 and
 * 3.14), line tables of 3.8 to 3.14 against what each CPython itself says
 * (python_lines.h), Debian's python3.11 read as an ELF file, and code objects
 * of a live python3.11 named from its memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "elfutil.h"
#include "oncpu.h"
#include "pyelf.h"
#include "pysym.h"
#include "python_lines.h"

#define DEBIAN_PY311 "/usr/bin/python3.11"

/* PyGILState_GetThisThreadState as Debian builds it (objdump of the binaries). */
static void test_key_from_code(void **state)
{
	/* 3.11.2: cmpq $0,d(%rip); je rel32; mov d(%rip),%edi; jmp pthread_getspecific */
	static const uint8_t py311[] = { 0x48, 0x83, 0x3d, 0x50, 0x3d, 0x56, 0x00, 0x00, 0x0f, 0x84,
					 0x1f, 0xc8, 0xf2, 0xff, 0x8b, 0x3d, 0x50, 0x3d, 0x56, 0x00,
					 0xe9, 0xa7, 0x8a, 0xf2, 0xff, 0, 0, 0 };
	/* 3.11.2-6+deb12u9: cmpq; je rel8; mov d(%rip),%edi */
	static const uint8_t py311u9[] = { 0x48, 0x83, 0x3d, 0x10, 0x91, 0x58, 0x00, 0x00, 0x74, 0x10,
					   0x8b, 0x3d, 0x14, 0x91, 0x58, 0x00, 0xe9, 0, 0, 0, 0, 0 };
	/* 3.13.5: endbr64; cmpl $0,d(%rip); je rel32; mov d(%rip),%edi */
	static const uint8_t py313[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x83, 0x3d, 0x65, 0xc8, 0x51, 0x00,
					 0x00, 0x0f, 0x84, 0xd0, 0x2a, 0xf0, 0xff, 0x8b, 0x3d, 0x5d,
					 0xc8, 0x51, 0x00, 0xe9, 0x94, 0xe3, 0xef, 0xff, 0, 0, 0, 0 };
	/* 3.14.1: endbr64; cmpl; je rel8; mov $Py_tss_t,%edi; jmp PyThread_tss_get */
	static const uint8_t py314[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x83, 0x3d, 0x3b, 0x49, 0x77, 0x00,
					 0x00, 0x74, 0x0a, 0xbf, 0xe0, 0x10, 0xba, 0x00, 0xe9, 0x7f,
					 0x2e, 0x11, 0x00, 0x31, 0xc0, 0xc3, 0, 0 };
	static const uint8_t junk[] = { 0x55, 0x48, 0x89, 0xe5, 0x8b, 0x3d, 1, 2, 3, 4, 0, 0 };
	uint8_t noise[64];

	(void)state;
	assert_int_equal(pyelf_key_from_code(py311, sizeof(py311), 0x4f7c30), 0xa5b994);
	assert_int_equal(pyelf_key_from_code(py311u9, sizeof(py311u9), 0x4cd350), 0xa56474);
	assert_int_equal(pyelf_key_from_code(py313, sizeof(py313), 0x523400), 0xa3fc74);
	/* the Py_tss_t's address: its key is the second int */
	assert_int_equal(pyelf_key_from_code(py314, sizeof(py314), 0x42c79a), 0xba10e0 + 4);
	/* a push first: not a shape we know, no guess */
	assert_int_equal(pyelf_key_from_code(junk, sizeof(junk), 0x1000), 0);
	/* cut short: no read past the end */
	assert_int_equal(pyelf_key_from_code(py311, 10, 0x4f7c30), 0);
	srand(7);
	for (int i = 0; i < 100000; i++) {	/* anything, never past the buffer (ASan) */
		for (size_t k = 0; k < sizeof(noise); k++)
			noise[k] = (uint8_t)rand();
		pyelf_key_from_code(noise, (size_t)(rand() % (int)sizeof(noise)), 0x400000);
	}
}

static void check_lines(int minor, const uint8_t *table, size_t len, int first,
			const int (*lines)[2], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = pysym_line(minor, table, len, first, (uint32_t)lines[i][0]);

		if (got != lines[i][1])
			fail_msg("3.%d: instruction %d: line %d, CPython says %d", minor, lines[i][0],
				 got, lines[i][1]);
	}
}

#define CHECK_LINES(minor, tag)                                                            \
	check_lines(minor, table_##tag, sizeof(table_##tag), FIRST_##tag, lines_##tag,      \
		    sizeof(lines_##tag) / sizeof(lines_##tag[0]))

/* Every instruction's line, as each CPython's own co_positions/co_lines/findlinestarts. */
static void test_line_tables(void **state)
{
	uint8_t junk[300];

	(void)state;
	CHECK_LINES(8, 38);
	CHECK_LINES(9, 39);
	CHECK_LINES(10, 310);
	CHECK_LINES(11, 311);
	CHECK_LINES(12, 312);
	CHECK_LINES(13, 313);
	CHECK_LINES(14, 314);
	/* unknown instruction, no table: the first line */
	assert_int_equal(pysym_line(11, table_311, sizeof(table_311), 42, PY_NO_INSTR), 42);
	assert_int_equal(pysym_line(11, NULL, 0, 42, 3), 42);
	/* past the table's end: the first line, not garbage */
	assert_int_equal(pysym_line(11, table_311, sizeof(table_311), FIRST_311, 100000), FIRST_311);
	srand(11);
	for (int i = 0; i < 20000; i++) {	/* junk tables: never past the buffer */
		size_t n = (size_t)(rand() % (int)sizeof(junk));

		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rand();
		pysym_line(8 + rand() % 7, junk, n, 1, (uint32_t)(rand() % 400));
	}
}

/* Debian's python3.11: version, evaluation loop, key, layout. */
static void test_debian_python311(void **state)
{
	struct py_elf py;
	char bid[80];
	Elf *elf;
	int fd;

	(void)state;
	if (access(DEBIAN_PY311, X_OK))
		skip();
	elf = elfutil_open(DEBIAN_PY311, &fd);
	assert_non_null(elf);
	assert_int_equal(pyelf_read(elf, fd, DEBIAN_PY311, &py), 0);
	assert_int_equal(py.minor, 11);
	assert_true(py.ranges[0].start && py.ranges[0].end > py.ranges[0].start + 1000);
	/* its .cold part (error paths), out of the symbol: found from its jumps */
	assert_true(py.nranges >= 2);
	for (int i = 1; i < py.nranges; i++)
		assert_true(py.ranges[i].end <= py.ranges[0].start ||
			    py.ranges[i].start >= py.ranges[0].end);
	/* Debian's builds: the key their loader loads (objdump), _PyRuntime + 596 */
	assert_int_equal(elfutil_build_id(elf, fd, bid, sizeof(bid)), 0);
	if (!strcmp(bid, "571d98e01096d5c1c32420d229a6731a0a50d2a0"))	/* 3.11.2-6+deb12u6 */
		assert_int_equal(py.layout.tss_key_addr, 0xa5b994);
	if (!strcmp(bid, "c561f3aa7232f2bd6ac6d56bd475f1c154a00486"))	/* 3.11.2-6+deb12u9 */
		assert_int_equal(py.layout.tss_key_addr, 0xa56474);
	assert_int_equal(py.layout.tss_key_addr % 4, 0);
	assert_int_equal(py.layout.ts_thread_id, 152);
	assert_int_equal(py.layout.entry, PY_ENTRY_FLAG);
	assert_int_equal(py.layout.co_code, 184);	/* PyCode_Type.tp_basicsize */
	assert_int_equal(py.layout.tls_specific, 0x310);
	assert_true(py.layout.code_type != 0);
	/* a debug or free-threaded build's objects are laid out otherwise: refused */
	assert_int_equal(pyelf_read(elf, fd, "/usr/bin/python3.11d", &py), -ENOTSUP);
	assert_int_equal(pyelf_read(elf, fd, "/usr/lib/libpython3.13t.so.1.0", &py), -ENOTSUP);
	elfutil_close(elf, fd);
	/* not a CPython: refused, not guessed */
	elf = elfutil_open("/bin/sh", &fd);
	assert_non_null(elf);
	assert_int_equal(pyelf_read(elf, fd, "/usr/bin/python3.11", &py), -ENOENT);
	elfutil_close(elf, fd);
}

static pid_t child = -1;	/* killed by teardown, whatever the test's outcome */

static int kill_child(void **state)
{
	(void)state;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	child = -1;
	return 0;
}

/* A live python3.11: its function's code object named from its memory. */
static void test_live_code_object(void **state)
{
	static const char script[] =
		"import sys, time\n"
		"class Worker:\n"
		"    def hot(self):\n"
		"        return 1\n"
		"print(id(Worker.hot.__code__), flush=True)\n"
		"time.sleep(60)\n";
	struct pysym *ps;
	struct pysym_frame f;
	struct pysym_stats st;
	unsigned long long code = 0;
	int out[2];
	pid_t pid;
	FILE *r;

	(void)state;
	if (access(DEBIAN_PY311, X_OK))
		skip();
	assert_int_equal(pipe(out), 0);
	pid = child = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execl(DEBIAN_PY311, "python3.11", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	r = fdopen(out[0], "r");
	assert_int_equal(fscanf(r, "%llu", &code), 1);
	ps = pysym_new(4);
	assert_non_null(ps);
	/* no CPython said for the pid yet */
	assert_int_equal(pysym_lookup(ps, pid, code, PY_NO_INSTR, &f), -ENOENT);
	pysym_set_pid(ps, pid, 11);
	assert_int_equal(pysym_lookup(ps, pid, code, PY_NO_INSTR, &f), 0);
	assert_string_equal(f.name, "Worker.hot");	/* co_qualname */
	assert_string_equal(f.file, "<string>");
	assert_int_equal(f.line, 3);
	/* instruction 1 (after RESUME) is on line 4 */
	assert_int_equal(pysym_lookup(ps, pid, code, 1, &f), 0);
	assert_int_equal(f.line, 4);
	/* addresses that are no code object: an error, no crash */
	assert_int_equal(pysym_lookup(ps, pid, 8, 0, &f), -EFAULT);
	assert_int_equal(pysym_lookup(ps, pid, code + 4096 * 1024 * 1024ull, 0, &f), -EFAULT);
	kill_child(NULL);
	fclose(r);
	/* gone: what was read stays (for its profile), nothing more is read */
	pysym_forget_pid(ps, pid);
	assert_int_equal(pysym_lookup(ps, pid, code, 1, &f), 0);
	assert_string_equal(f.name, "Worker.hot");
	assert_int_equal(pysym_lookup(ps, pid, code + 64, 1, &f), -EFAULT);
	/* the pid is another CPython process's: the old names go */
	pysym_set_pid(ps, pid, 11);
	pysym_stats(ps, &st);
	assert_int_equal(st.entries, 0);
	pysym_free(ps);
}

/* "module.Class.method": the module from the file name, as folded stacks show it */
static void test_qualified_names(void **state)
{
	static const struct {
		const char *file, *name, *want;
	} cases[] = {
		{ "/app/ratio.py", "Worker.hot", "ratio.Worker.hot" },
		{ "ratio.py", "loop", "ratio.loop" },
		{ "/usr/lib/python3.11/json/__init__.py", "dumps", "json.dumps" },
		{ "json/__init__.py", "dumps", "json.dumps" },
		{ "__init__.py", "f", "f" },		/* no directory: no package */
		{ "./__init__.py", "f", "f" },		/* nor "." or ".." */
		{ "../__init__.py", "f", "f" },
		{ "/app/json/decoder.py", "scan", "decoder.scan" },	/* the base name */
		{ "/usr/lib/python3.11/threading.pyc", "Thread.run", "threading.Thread.run" },
		{ "<frozen importlib._bootstrap>", "_load", "importlib._bootstrap._load" },
		{ "<string>", "<module>", "<module>" },
		{ "<frozen >", "f", "f" },
		{ "/app/README", "f", "f" },		/* not a Python file */
		{ "/app/.py", "f", "f" },
		{ "", "f", "f" },
	};
	struct pysym_frame f;
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(f.file, sizeof(f.file), "%s", cases[i].file);
		snprintf(f.name, sizeof(f.name), "%s", cases[i].name);
		pysym_qualified(&f, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
	/* cut to fit, never past the buffer */
	snprintf(f.file, sizeof(f.file), "/app/%0200d.py", 0);
	pysym_qualified(&f, buf, sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_from_code),
		cmocka_unit_test(test_line_tables),
		cmocka_unit_test(test_qualified_names),
		cmocka_unit_test(test_debian_python311),
		cmocka_unit_test_teardown(test_live_code_object, kill_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
