// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "helpers.h"

#include "procmaps.h"
#include "procs.h"

struct collect {
	struct maps_entry e[16];
	char paths[16][128];
	int n;
};

static int collect_cb(const struct maps_entry *e, void *ctx)
{
	struct collect *c = ctx;

	if (c->n == 16)
		return -1;
	c->e[c->n] = *e;
	snprintf(c->paths[c->n], sizeof(c->paths[0]), "%s", e->path);
	c->n++;
	return 0;
}

static void test_parse(void **state)
{
	char text[] =
		"55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234   /usr/bin/cat\n"
		"55d0c0a02000-55d0c0a07000 r-xp 00002000 fd:01 1234   /usr/bin/cat\n"
		"garbage line here\n"
		"7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n"
		"7f1000000000-7f1000002000 r-xp 00001000 08:02 99 /tmp/has space (deleted)\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n"
		"10-5 r-xp 0 0:0 0\n"; /* end before start: malformed */
	struct collect c = { 0 };

	(void)state;
	assert_int_equal(procmaps__parse(text, collect_cb, &c), 2);
	assert_int_equal(c.n, 5);
	assert_true(c.e[1].start == 0x55d0c0a02000ull && c.e[1].end == 0x55d0c0a07000ull);
	assert_true(c.e[1].offset == 0x2000 && c.e[1].exec && !c.e[0].exec);
	assert_int_equal(c.e[1].dev_major, 0xfd);
	assert_int_equal(c.e[1].ino, 1234);
	assert_string_equal(c.paths[1], "/usr/bin/cat");
	assert_string_equal(c.paths[2], "");
	assert_string_equal(c.paths[3], "/tmp/has space (deleted)");
	assert_string_equal(c.paths[4], "[vsyscall]");
}

static void test_parse_empty_and_truncated(void **state)
{
	char empty[] = "";
	char trunc[] = "55d0c0a00000-55d0c0a0";
	struct collect c = { 0 };

	(void)state;
	assert_int_equal(procmaps__parse(empty, collect_cb, &c), 0);
	assert_int_equal(procmaps__parse(trunc, collect_cb, &c), 1);
	assert_int_equal(c.n, 0);
}

static char root[256];

static void write_maps(int pid, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d", root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/maps", root, pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup_root(void **state)
{
	(void)state;
	return tmpdir_make(root, sizeof(root), "procs");
}

static int teardown_root(void **state)
{
	(void)state;
	return tmpdir_remove(root);
}

static void test_resolve_from_proc(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p;
	const struct mapping *m;
	uint32_t id;

	(void)state;
	write_maps(100, "400000-401000 r-xp 00001000 fd:01 77 /bin/app\n"
			"7f0000000000-7f0000010000 r-xp 00000000 fd:01 78 /lib/libc.so.6\n"
			"7f0000010000-7f0000020000 rw-p 00010000 fd:01 78 /lib/libc.so.6\n");
	p = procs__new(&o);
	assert_non_null(p);
	assert_int_equal(procs__resolve(p, 100, 0x400123, &id), 0);
	m = procs__mapping(p, id);
	assert_string_equal(m->path, "/bin/app");
	assert_true(m->pgoff == 0x1000 && m->dev == makedev(0xfd, 1) && m->ino == 77);
	assert_int_equal(procs__resolve(p, 100, 0x7f0000000010, &id), 0);
	assert_string_equal(procs__mapping(p, id)->path, "/lib/libc.so.6");
	/* not executable: not tracked */
	assert_int_equal(procs__resolve(p, 100, 0x7f0000010010, &id), -ENOENT);
	/* a process that does not exist */
	assert_int_equal(procs__resolve(p, 4242, 0x400000, &id), -ENOENT);
	assert_false(procs__alive(p, 4242));
	procs__free(p);
}

/* record times are CLOCK_MONOTONIC, like the /proc reads they are compared with */
static uint64_t later(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ms * 1000000ull;
}

static void test_records(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p = procs__new(&o);
	uint32_t id, id2;
	uint64_t t;

	(void)state;
	write_maps(200, "400000-401000 r-xp 00000000 fd:01 77 /bin/parent\n");
	assert_int_equal(procs__resolve(p, 200, 0x400010, &id), 0);
	/* a child forked after we started: inherits the parent's mappings */
	procs__on_fork(p, 201, 200, later(50));
	assert_int_equal(procs__resolve(p, 201, 0x400010, &id2), 0);
	assert_int_equal(id, id2);
	/* it then execs something else and exits before it is sampled */
	t = later(100);
	procs__on_exec(p, 201, "child", t);
	procs__on_mmap(p, 201, 0x500000, 0x2000, 0x1000, 0xfd, 1, 90, "/bin/child", t + 1);
	/* a record of the old image, reported late by another CPU, is ignored */
	procs__on_mmap(p, 201, 0x600000, 0x1000, 0, 0xfd, 1, 92, "/bin/old", t - 1);
	procs__on_exit(p, 201);
	assert_int_equal(procs__resolve(p, 201, 0x400010, &id2), -ENOENT);
	assert_int_equal(procs__resolve(p, 201, 0x501000, &id2), 0);
	assert_string_equal(procs__mapping(p, id2)->path, "/bin/child");
	/* a new mapping over part of an old one wins there, the rest stays */
	assert_int_equal(procs__resolve(p, 201, 0x600010, &id2), -ENOENT);
	procs__on_mmap(p, 201, 0x501000, 0x800, 0, 0xfd, 1, 91, "/bin/overlay", t + 2);
	assert_int_equal(procs__resolve(p, 201, 0x501100, &id2), 0);
	assert_string_equal(procs__mapping(p, id2)->path, "/bin/overlay");
	assert_int_equal(procs__resolve(p, 201, 0x500100, &id2), 0);
	assert_string_equal(procs__mapping(p, id2)->path, "/bin/child");
	assert_int_equal(procs__resolve(p, 201, 0x501900, &id2), 0);
	assert_string_equal(procs__mapping(p, id2)->path, "/bin/child");
	procs__free(p);
}

/* /proc entries that cannot be read: the lookup fails, is counted, nothing crashes */
/* the exec record is read after the new image's first mmap (they came from different CPUs) */
/*
 * A child's exec and mmaps read before its parent's fork record (another CPU's
 * buffer): the fork does not put the parent's image back over the child's. A
 * later fork that reuses the pid gets the parent's image, not the dead one's.
 */
static void test_fork_after_exec(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p = procs__new(&o);
	uint32_t id;
	uint64_t t = later(100);

	(void)state;
	write_maps(500, "400000-401000 r-xp 00000000 fd:01 77 /bin/parent\n");
	assert_int_equal(procs__resolve(p, 500, 0x400010, &id), 0);
	procs__on_exec(p, 501, "child", t);
	procs__on_mmap(p, 501, 0x500000, 0x1000, 0, 0xfd, 1, 90, "/bin/child", t + 1);
	procs__on_fork(p, 501, 500, t - 10);
	assert_int_equal(procs__resolve(p, 501, 0x500010, &id), 0);
	assert_string_equal(procs__mapping(p, id)->path, "/bin/child");
	assert_int_equal(procs__resolve(p, 501, 0x400010, &id), -ENOENT);
	/* 501 exits; a later fork reuses the pid: the parent's image, not /bin/child */
	procs__on_exit(p, 501);
	procs__on_fork(p, 501, 500, t + 100);
	assert_int_equal(procs__resolve(p, 501, 0x400010, &id), 0);
	assert_string_equal(procs__mapping(p, id)->path, "/bin/parent");
	assert_int_equal(procs__resolve(p, 501, 0x500010, &id), -ENOENT);
	procs__free(p);
}

static void test_out_of_order(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p = procs__new(&o);
	uint32_t id;

	(void)state;
	write_maps(400, "400000-401000 r-xp 00000000 fd:01 77 /bin/parent\n");
	assert_int_equal(procs__resolve(p, 400, 0x400010, &id), 0);
	procs__on_mmap(p, 400, 0x7f0000000000, 0x1000, 0, 0xfd, 1, 5, "/lib/libc.so.6", later(200));
	procs__on_exec(p, 400, "new", later(100));
	/* the old image's mapping is gone, the new one's stays */
	assert_int_equal(procs__resolve(p, 400, 0x400010, &id), -ENOENT);
	assert_int_equal(procs__resolve(p, 400, 0x7f0000000010, &id), 0);
	assert_string_equal(procs__mapping(p, id)->path, "/lib/libc.so.6");
	procs__free(p);
}

static void test_unreadable(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p = procs__new(&o);
	struct procs_stats st;
	char path[512];
	uint32_t id;

	(void)state;
	snprintf(path, sizeof(path), "%s/300", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/300/maps", root);
	mkdir(path, 0755); /* reading a directory fails with EISDIR */
	write_maps(301, "");	/* a zombie: empty maps */
	write_maps(302, "not a maps file at all\n\x01\x02\n");
	assert_int_equal(procs__resolve(p, 300, 0x1000, &id), -ENOENT);
	assert_int_equal(procs__resolve(p, 301, 0x1000, &id), -ENOENT);
	assert_int_equal(procs__resolve(p, 302, 0x1000, &id), -ENOENT);
	procs__stats(p, &st);
	assert_true(st.maps_read_failed >= 2);
	assert_int_equal(st.resolve_misses, 3);
	procs__free(p);
}

/*
 * A long run through many short processes: with procs__gc between intervals,
 * exited processes and their mappings are forgotten, so a table of 10 mappings
 * serves 300 processes, each resolved while it lives; a live process keeps its
 * mapping and its id across every collection.
 */
static void test_bounded(void **state)
{
	struct procs_opts o = { .proc_root = root, .max_procs = 64, .max_mappings = 10 };
	struct procs *p = procs__new(&o);
	struct procs_stats st;
	uint32_t id, live_id, id2;
	int me = getpid();	/* a process that really lives: procs__gc checks */
	int gone = me == 6000 ? 6001 : 6000;	/* one that exits */

	(void)state;
	procs__on_exec(p, me, "live", 1);
	procs__on_mmap(p, me, 0x7000, 0x1000, 0, 1, 1, 5000, "/bin/live", 2);
	assert_int_equal(procs__resolve(p, me, 0x7000, &live_id), 0);
	for (int pid = 1000; pid < 1300; pid++) {
		if (pid == me)	/* pids wrap: this test's own may be among them */
			continue;
		procs__on_exec(p, pid, "x", 10);
		procs__on_mmap(p, pid, 0x1000, 0x1000, 0, 1, 1, (uint64_t)pid, "/bin/x", 11);
		assert_int_equal(procs__resolve(p, pid, 0x1000, &id), 0);
		assert_string_equal(procs__mapping(p, id)->path, "/bin/x");
		procs__on_exit(p, pid);
		if (pid % 4 == 3)	/* an interval ends: the aggregates were reset */
			assert_int_equal(procs__gc(p), 0);
	}
	procs__stats(p, &st);
	assert_int_equal(st.mappings_full, 0);
	assert_true(st.mappings_live <= 9);
	assert_true(st.procs_live <= 9);
	assert_true(st.mappings_freed >= 290);
	assert_true(procs__nmappings(p) <= 10);	/* freed ids were given again */
	/* the live one is untouched */
	assert_int_equal(procs__resolve(p, me, 0x7000, &id2), 0);
	assert_int_equal(id2, live_id);
	assert_string_equal(procs__mapping(p, live_id)->path, "/bin/live");
	/* a process that just exited still resolves (samples in flight), until two
	 * collections later */
	procs__on_exec(p, gone, "y", 20);
	procs__on_mmap(p, gone, 0x1000, 0x1000, 0, 1, 1, 6000, "/bin/y", 21);
	procs__on_exit(p, gone);
	assert_int_equal(procs__resolve(p, gone, 0x1000, &id), 0);
	assert_int_equal(procs__gc(p), 0);
	assert_int_equal(procs__resolve(p, gone, 0x1000, &id), 0);
	assert_string_equal(procs__mapping(p, id)->path, "/bin/y");
	assert_int_equal(procs__gc(p), 0);
	assert_int_equal(procs__resolve(p, gone, 0x1000, &id), -ENOENT);
	assert_null(procs__mapping(p, 10000));
	procs__free(p);
}

/* A process whose exit record never came is found gone by procs__gc. */
static void test_vanished(void **state)
{
	struct procs_opts o = { .proc_root = root };
	struct procs *p = procs__new(&o);
	struct procs_stats st;
	uint32_t id;
	pid_t kid = fork();

	(void)state;
	if (kid == 0)
		_exit(0);
	waitpid(kid, NULL, 0);	/* gone; no exit record is given to procs */
	procs__on_exec(p, kid, "x", 10);
	procs__on_mmap(p, kid, 0x1000, 0x1000, 0, 1, 1, 77, "/bin/x", 11);
	assert_true(procs__alive(p, kid));
	assert_int_equal(procs__gc(p), 0);
	assert_false(procs__alive(p, kid));
	procs__stats(p, &st);
	assert_int_equal(st.procs_vanished, 1);
	assert_int_equal(procs__resolve(p, kid, 0x1000, &id), 0);	/* until the next collection */
	assert_int_equal(st.mappings_live, 1);
	assert_int_equal(procs__gc(p), 0);
	procs__stats(p, &st);
	assert_int_equal(st.mappings_live, 0);
	procs__free(p);
}

/*
 * A dead process's file by its host name, only if (dev, ino) match; never a
 * name under /proc (a container can make "/proc/self/fd/N/x" mean our own
 * descriptor to us).
 */
static void test_mapping_path_fallback(void **state)
{
	char buf[600], exe[512];
	struct mapping m = { .start = 0x1000, .end = 0x2000, .pid = 2147483647 };
	struct stat sb;
	ssize_t n;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_int_equal(stat(exe, &sb), 0);
	m.dev = (uint64_t)sb.st_dev;
	m.ino = (uint64_t)sb.st_ino;
	m.path = exe;
	assert_int_equal(procs__mapping_path(&m, m.pid, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, exe);
	m.ino++;
	assert_int_equal(procs__mapping_path(&m, m.pid, false, buf, sizeof(buf)), -ENOENT);
	m.ino--;
	m.path = "/proc/self/exe";	/* the same file, by a /proc name */
	assert_int_equal(procs__mapping_path(&m, m.pid, false, buf, sizeof(buf)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_empty_and_truncated),
		cmocka_unit_test(test_resolve_from_proc),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_fork_after_exec),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_vanished),
		cmocka_unit_test(test_mapping_path_fallback),
	};

	return cmocka_run_group_tests(tests, setup_root, teardown_root);
}
