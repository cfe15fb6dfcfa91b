// SPDX-License-Identifier: Apache-2.0
/*
 * perf maps (/tmp/perf-PID.map) read from a fake /proc: PROC/<pid>/status says
 * the process is pid NSPID in its own namespace, and its map is
 * PROC/<pid>/root/tmp/perf-NSPID.map. Lookups at a range's edges, later lines
 * winning, malformed lines, appends (parsed at a look, merged at a lookup),
 * truncation and replacement, the caps and the shares (one per pid, all its
 * images), max_procs, what a merge frees, failed allocations and when a failed
 * merge is tried again, files that are not regular, and what a process leaves
 * when it ends or execs (its images, a map appended to across an exec).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include "perfmap.h"

#define PID 4242
#define NSPID 7		/* the process's pid in its container */

static char dir[64], proc[96];

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make(dir, sizeof(dir), "perfmap"))
		return -1;
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

/* PROC/pid with a status naming nspid and an empty root/tmp. */
static void fake_process(int pid, int nspid)
{
	char path[256];
	FILE *f;

	sh("rm -rf '%s/%d' && mkdir -p '%s/%d/root/tmp'", proc, pid, proc, pid);
	snprintf(path, sizeof(path), "%s/%d/status", proc, pid);
	f = fopen(path, "we");
	assert_non_null(f);
	fprintf(f, "Name:\tnode\nUmask:\t0022\nState:\tR (running)\nTgid:\t%d\nNgid:\t0\n"
		   "Pid:\t%d\nPPid:\t1\nNSpid:\t%d\t%d\nNSpgid:\t%d\t1\n",
		pid, pid, pid, nspid, pid);
	assert_int_equal(fclose(f), 0);
}

static void map_path(int pid, int nspid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%d/root/tmp/perf-%d.map", proc, pid, nspid);
}

/* Writes (mode "w") or appends ("a") text to process pid's map named nspid. */
static void map_write(int pid, int nspid, const char *mode, const char *text)
{
	char path[256];
	FILE *f;

	map_path(pid, nspid, path, sizeof(path));
	f = fopen(path, mode);
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static struct perfmaps *new_maps(uint32_t max_entries, uint64_t max_bytes, uint64_t read_max)
{
	struct perfmaps_opts o = { .proc_root = proc, .max_entries = max_entries,
				   .max_bytes = max_bytes, .read_max = read_max, .recheck_ns = 1 };
	struct perfmaps *pm = perfmaps__new(&o);

	assert_non_null(pm);
	return pm;
}

/* The name at addr (a lookup reads no file), or NULL. */
static const char *name_at(struct perfmaps *pm, int pid, uint64_t addr)
{
	const char *name = NULL;

	return perfmaps__lookup(pm, pid, addr, &name) == 0 ? name : NULL;
}

/* a macro: a failure names the test's line */
#define assert_name(pm, pid, addr, want)                          \
	do {                                                      \
		const char *got_ = name_at(pm, pid, addr);        \
		const char *want_ = (want);                       \
		if (!want_) {                                     \
			assert_null(got_);                        \
		} else {                                          \
			assert_non_null(got_);                    \
			assert_string_equal(got_, want_);         \
		}                                                 \
	} while (0)

static struct perfmaps_stats stats_of(const struct perfmaps *pm)
{
	struct perfmaps_stats st;

	perfmaps__stats(pm, &st);
	return st;
}

/*
 * The map named by the process's own pid, not ours for it; edges of a range;
 * a later line wins where it covers; what is not a line is counted.
 */
static void test_lookups(void **state)
{
	struct perfmaps *pm;
	struct perfmaps_stats st;

	(void)state;
	fake_process(PID, NSPID);
	/* the host's pid: a file the process did not write for itself */
	map_write(PID, PID, "w", "7f0000001000 100 wrong: the host pid's file\n");
	map_write(PID, NSPID, "w",
		  "7f0000001000 100 LazyCompile:*first /app/a.js:1:2\n"
		  "0x7f0000002000 0x40 second\n"
		  "this is not a line\n"
		  "7f0000003000 zz bad size\n"
		  "7f0000004000 0 empty range\n"
		  "ffffffffffffff00 1000 past the end of memory\n"
		  "7f0000005000 10\n"
		  "\n"
		  "7f0000001080 10 inner, later\n"
		  "7f0000006000 10 old\n"
		  "7f0000005ff0 100 covers old, later\n"
		  "\t7f0000007000\t20\tpy::tabs:/x.py  \r\n");
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 6);
	assert_name(pm, PID, 0x7f0000001000, "LazyCompile:*first /app/a.js:1:2");
	assert_name(pm, PID, 0x7f000000107f, "LazyCompile:*first /app/a.js:1:2");
	assert_name(pm, PID, 0x7f0000001080, "inner, later");
	assert_name(pm, PID, 0x7f000000108f, "inner, later");
	assert_name(pm, PID, 0x7f0000001090, "LazyCompile:*first /app/a.js:1:2");
	assert_name(pm, PID, 0x7f00000010ff, "LazyCompile:*first /app/a.js:1:2");
	assert_name(pm, PID, 0x7f0000001100, NULL);	/* one past the end */
	assert_name(pm, PID, 0x7f0000000fff, NULL);
	assert_name(pm, PID, 0x7f0000002000, "second");
	assert_name(pm, PID, 0x7f0000002040, NULL);
	assert_name(pm, PID, 0x7f0000004000, NULL);
	assert_name(pm, PID, 0x7f0000006000, "covers old, later");
	assert_name(pm, PID, 0x7f00000060ef, "covers old, later");
	assert_name(pm, PID, 0x7f0000007010, "py::tabs:/x.py");
	assert_name(pm, PID + 1, 0x7f0000001000, NULL);	/* another process */
	st = stats_of(pm);
	assert_int_equal(st.entries, 6);
	assert_int_equal(st.entries_held, 6);
	assert_int_equal(st.lines_malformed, 5);
	assert_int_equal(st.maps_read, 1);
	assert_int_equal(st.entries_dropped, 0);
	/* nothing new: nothing read */
	assert_int_equal(perfmaps__load(pm, PID), 0);
	assert_int_equal(stats_of(pm).maps_read, 1);
	perfmaps__free(pm);
}

/* No NSpid line (a kernel before 4.1): the pid is the process's own. No process, no file. */
static void test_no_nspid_no_file(void **state)
{
	struct perfmaps *pm;

	(void)state;
	fake_process(PID, NSPID);
	map_write(PID, PID, "w", "7f0000001000 100 wrong: the host pid's file\n");
	sh("sed -i '/^NSpid/d' '%s/%d/status'", proc, PID);
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x7f0000001000, "wrong: the host pid's file");
	perfmaps__free(pm);
	/* no process, no file */
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID + 1), -ENOENT);
	sh("rm '%s/%d/root/tmp/perf-%d.map'", proc, PID, PID);
	assert_int_equal(perfmaps__load(pm, PID), -ENOENT);
	perfmaps__free(pm);
}


/* Lines over [0x10000, 0x10000 + SPACE + 2000): their starts and sizes. */
enum { SPACE = 20000 };

/*
 * Checks every step'th address against the last of lines [0, n) that covers
 * it; with step 1, also that the index holds one range per run of addresses
 * with the same last line.
 */
static void check_lines(struct perfmaps *pm, const uint64_t *start, const uint64_t *size, int n,
			int step)
{
	uint64_t runs = 0;
	int prev = -1;

	for (uint64_t a = 0x10000 - 5; a < 0x10000 + SPACE + 2100; a += (uint64_t)step) {
		char want[16];
		int last = -1;

		for (int i = 0; i < n; i++)
			if (a >= start[i] && a < start[i] + size[i])
				last = i;
		snprintf(want, sizeof(want), "f%d", last);
		assert_name(pm, PID, a, last < 0 ? NULL : want);
		runs += last >= 0 && last != prev;
		prev = last;
	}
	if (step == 1)
		assert_int_equal(stats_of(pm).entries_held, runs);
}

/*
 * Lines in random order over a small space, many overlapping, appended in
 * rounds: most merged at the next lookup, some only after the next round's
 * look too. Every address is named by the last line that covers it (checked
 * against a brute force).
 */
static void test_later_lines_win(void **state)
{
	enum { LINES = 3000, ROUNDS = 6, PER = LINES / ROUNDS };
	static uint64_t start[LINES], size[LINES];
	struct perfmaps *pm;
	char path[256];
	FILE *f;

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	srandom(7);
	for (int i = 0; i < LINES; i++) {
		start[i] = 0x10000 + (uint64_t)(random() % SPACE);
		size[i] = 1 + (uint64_t)(random() % (i % 10 ? 40 : 2000));
	}
	pm = new_maps(0, 0, 0);
	for (int round = 0; round < ROUNDS; round++) {
		f = fopen(path, round ? "ae" : "we");
		assert_non_null(f);
		for (int i = round * PER; i < (round + 1) * PER; i++)
			fprintf(f, "%" PRIx64 " %" PRIx64 " f%d\n", start[i], size[i], i);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(perfmaps__load(pm, PID), PER);
		if (round % 3 != 1)	/* rounds 1 and 4: merged with the next one's lines */
			check_lines(pm, start, size, (round + 1) * PER,
				    round == ROUNDS - 1 ? 1 : 13);
	}
	assert_int_equal(stats_of(pm).rebuilds, 4);
	assert_int_equal(stats_of(pm).rebuild_lines, LINES);
	perfmaps__free(pm);
}

/* Appended lines are read from where the last look stopped; a half-written line waits. */
static void test_append(void **state)
{
	struct perfmaps *pm;
	long long read0;

	(void)state;
	fake_process(PID, NSPID);
	map_write(PID, NSPID, "w", "1000 10 one\n");
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 1);
	map_write(PID, NSPID, "a", "2000 10 two\n3000 10 thr");
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x2000, "two");
	assert_name(pm, PID, 0x3000, NULL);	/* its newline is not there yet */
	map_write(PID, NSPID, "a", "ee\n1000 8 one, again\n");
	assert_name(pm, PID, 0x3000, NULL);	/* a lookup reads no file */
	assert_int_equal(perfmaps__load(pm, PID), 2);
	assert_name(pm, PID, 0x3000, "three");
	assert_name(pm, PID, 0x1000, "one, again");
	assert_name(pm, PID, 0x1008, "one");
	assert_int_equal(stats_of(pm).entries, 4);
	assert_int_equal(stats_of(pm).lines_malformed, 0);
	assert_int_equal(stats_of(pm).files_replaced, 0);
	/* only what was appended is read: a big file costs nothing more */
	for (int i = 0; i < 20000; i++) {
		char line[64];

		snprintf(line, sizeof(line), "%x 10 f%d\n", 0x100000 + i * 16, i);
		map_write(PID, NSPID, "a", line);
	}
	assert_int_equal(perfmaps__load(pm, PID), 20000);
	map_write(PID, NSPID, "a", "4000 10 four\n");
	read0 = bytes_read();
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_true(read0 >= 0 && bytes_read() - read0 < 4096);
	assert_name(pm, PID, 0x4000, "four");
	assert_name(pm, PID, 0x100000 + 19999 * 16, "f19999");
	perfmaps__free(pm);
}

/* 200,000 lines "f<i>", 0x100 bytes each from 0x100000: the map of a big JIT. */
#define BIG 200000
#define BIG_AT(i) ((uint64_t)0x100000 + (uint64_t)(i) * 0x100)

static void write_big(void)
{
	char path[256];
	FILE *f;

	map_path(PID, NSPID, path, sizeof(path));
	f = fopen(path, "we");
	assert_non_null(f);
	for (int i = 0; i < BIG; i++)
		fprintf(f, "%" PRIx64 " 100 f%d\n", BIG_AT(i), i);
	assert_int_equal(fclose(f), 0);
}

/*
 * A look at a big map that grew by a line reads that line and merges
 * nothing; the next lookup merges the k lines read since with the index (and
 * frees what they replaced): later lines win, among themselves too.
 */
static void test_merge_at_lookup(void **state)
{
	struct perfmaps *pm;
	struct perfmaps_stats st;
	uint64_t names = 0;
	long long read0;
	char line[160];

	(void)state;
	fake_process(PID, NSPID);
	write_big();
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), BIG);
	assert_int_equal(stats_of(pm).rebuilds, 0);
	assert_int_equal(stats_of(pm).entries_held, BIG);
	assert_name(pm, PID, BIG_AT(7), "f7");
	assert_int_equal(stats_of(pm).rebuilds, 1);
	assert_int_equal(stats_of(pm).rebuild_lines, BIG);
	/* one line, inside f10: read alone, merged at no look */
	snprintf(line, sizeof(line), "%" PRIx64 " 80 L1\n", BIG_AT(10) + 0x40);
	map_write(PID, NSPID, "a", line);
	read0 = bytes_read();
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_true(read0 >= 0 && bytes_read() - read0 < 4096);
	assert_int_equal(stats_of(pm).rebuilds, 1);
	/* three more: L2 over f20..f22, L3 inside L2, L4 over L1 */
	snprintf(line, sizeof(line), "%" PRIx64 " 300 L2\n%" PRIx64 " 10 L3\n%" PRIx64 " 80 L4\n",
		 BIG_AT(20), BIG_AT(21), BIG_AT(10) + 0x40);
	map_write(PID, NSPID, "a", line);
	assert_int_equal(perfmaps__load(pm, PID), 3);
	assert_int_equal(stats_of(pm).rebuilds, 1);
	assert_name(pm, PID, BIG_AT(10), "f10");
	st = stats_of(pm);
	assert_int_equal(st.rebuilds, 2);
	assert_int_equal(st.rebuild_lines, BIG + 4);
	assert_name(pm, PID, BIG_AT(10) + 0x3f, "f10");
	assert_name(pm, PID, BIG_AT(10) + 0x40, "L4");
	assert_name(pm, PID, BIG_AT(10) + 0xbf, "L4");
	assert_name(pm, PID, BIG_AT(10) + 0xc0, "f10");
	assert_name(pm, PID, BIG_AT(20), "L2");
	assert_name(pm, PID, BIG_AT(21) - 1, "L2");
	assert_name(pm, PID, BIG_AT(21), "L3");
	assert_name(pm, PID, BIG_AT(21) + 0x10, "L2");
	assert_name(pm, PID, BIG_AT(23) - 1, "L2");
	assert_name(pm, PID, BIG_AT(23), "f23");
	assert_name(pm, PID, BIG_AT(BIG - 1) + 0xff, "f199999");
	assert_int_equal(stats_of(pm).rebuilds, 2);	/* nothing new: no merge */
	/*
	 * What is held: f10 in two, L4; f20..f22 gone for L2, L3, L2; L1 and the
	 * names of f20..f22 freed: 24 bytes a range, 4 a name's offset, the names.
	 */
	for (int i = 0; i < BIG; i++)
		if (i < 20 || i > 22)
			names += (uint64_t)snprintf(line, sizeof(line), "f%d", i) + 1;
	names += 3 * 3;
	assert_int_equal(st.entries_held, BIG + 2);
	assert_int_equal(st.bytes_held, (BIG + 2) * 24 + BIG * 4 + names);
	perfmaps__free(pm);
}

/* A sanitizer (ASan, TSan) replaces malloc: mallinfo2 then tells nothing of the heap. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* The heap this process uses (malloc'd, mmap'd chunks included). */
static uint64_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* bytes_held is what the maps allocate: checked against the heap after 200,000 lines. */
static void test_bytes_held_is_memory(void **state)
{
	struct perfmaps *pm;
	uint64_t before, grew, held;

	(void)state;
	if (UNDER_SANITIZER)
		skip();
	fake_process(PID, NSPID);
	write_big();
	before = heap_used();
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), BIG);
	held = stats_of(pm).bytes_held;
	grew = heap_used() - before;
	assert_true(grew >= held && grew - held < held / 20 + (64 << 10));
	assert_name(pm, PID, BIG_AT(3), "f3");
	held = stats_of(pm).bytes_held;
	grew = heap_used() - before;
	print_message("held %" PRIu64 ", heap grew %" PRIu64 "\n", held, grew);
	assert_true(grew >= held && grew - held < held / 20 + (64 << 10));
	perfmaps__free(pm);
}

/*
 * A map of N lines f<i> (0x100 bytes each from 0x10000), merged, then K lines
 * n<i> over the ends of f0, f16, f32, ... read and aside.
 */
enum { FN = 300, FK = 10 };

static struct perfmaps *map_with_lines_aside(void)
{
	struct perfmaps *pm = new_maps(0, 0, 0);
	char text[64];

	map_write(PID, NSPID, "w", "");
	for (int i = 0; i < FN; i++) {
		snprintf(text, sizeof(text), "%x 100 f%d\n", 0x10000 + i * 0x100, i);
		map_write(PID, NSPID, "a", text);
	}
	assert_int_equal(perfmaps__load(pm, PID), FN);
	assert_name(pm, PID, 0x10000, "f0");
	for (int i = 0; i < FK; i++) {
		snprintf(text, sizeof(text), "%x 100 n%d\n", 0x10080 + i * 0x1000, i);
		map_write(PID, NSPID, "a", text);
	}
	assert_int_equal(perfmaps__load(pm, PID), FK);
	return pm;
}

/* The index as it was before the merge of the lines aside: every f<i> whole, held as before. */
static void check_unmerged(struct perfmaps *pm, const struct perfmaps_stats *before)
{
	char text[64];

	for (int i = 0; i < FN; i++) {
		snprintf(text, sizeof(text), "f%d", i);
		assert_name(pm, PID, 0x10000 + (uint64_t)i * 0x100 + 0xff, text);
	}
	assert_int_equal(stats_of(pm).entries_held, before->entries_held);
	assert_int_equal(stats_of(pm).bytes_held, before->bytes_held);
	assert_int_equal(stats_of(pm).rebuilds, 1);
}

/* The lines aside merged: the n<i> over the ends of the f<i>. */
static void check_merged(struct perfmaps *pm)
{
	char text[64];

	for (int i = 0; i < FK; i++) {
		snprintf(text, sizeof(text), "n%d", i);
		assert_name(pm, PID, 0x10080 + (uint64_t)i * 0x1000, text);
	}
	assert_name(pm, PID, 0x10000, "f0");
	assert_name(pm, PID, 0x10180, "f1");
	assert_int_equal(stats_of(pm).rebuilds, 2);
	assert_int_equal(stats_of(pm).entries_held, FN + FK);
}

/* The nth allocation of a merge (and every one after it) fails: whether the merge did. */
static bool merge_failing_at(uint32_t nth)
{
	struct perfmaps *pm = map_with_lines_aside();
	struct perfmaps_stats st = stats_of(pm);
	const char *name;
	bool failed;

	perfmaps__fail_alloc(pm, nth);
	name = name_at(pm, PID, 0x10080);	/* merges, or tries to */
	perfmaps__fail_alloc(pm, 0);
	failed = stats_of(pm).rebuilds_failed;
	assert_non_null(name);
	assert_string_equal(name, failed ? "f0" : "n0");
	if (failed) {
		/* every old line where it was, and nothing changed, until the next look */
		check_unmerged(pm, &st);
		assert_int_equal(stats_of(pm).rebuilds_failed, 1);
		assert_int_equal(perfmaps__load(pm, PID), 0);
	}
	check_merged(pm);
	perfmaps__free(pm);
	return failed;
}

/*
 * Every allocation of a merge failing in turn (and every one after it): the
 * index stays as it was, whole, until one succeeds.
 */
static void test_failed_allocations(void **state)
{
	bool failed_once = false, merged_once = false;

	(void)state;
	fake_process(PID, NSPID);
	for (uint32_t nth = 1; nth <= 12; nth++) {
		if (merge_failing_at(nth))
			failed_once = true;
		else
			merged_once = true;
	}
	assert_true(failed_once);
	assert_true(merged_once);
}

/* A look whose buffer, or whose room for its line, cannot be had: its lines dropped, counted. */
static void test_failed_look(void **state)
{
	struct perfmaps *pm;

	(void)state;
	fake_process(PID, NSPID);
	pm = map_with_lines_aside();
	assert_name(pm, PID, 0x10080, "n0");	/* merged: nothing aside, no room left */
	map_write(PID, NSPID, "a", "90000 10 late\n");
	perfmaps__fail_alloc(pm, 1);
	assert_int_equal(perfmaps__load(pm, PID), -ENOMEM);
	perfmaps__fail_alloc(pm, 2);
	assert_int_equal(perfmaps__load(pm, PID), 0);
	perfmaps__fail_alloc(pm, 0);
	assert_int_equal(stats_of(pm).entries_dropped, 1);
	assert_name(pm, PID, 0x90000, NULL);
	assert_name(pm, PID, 0x10000, "f0");
	perfmaps__free(pm);
}

/*
 * A failed merge is not tried again at every lookup of a profile's build (each
 * a JIT frame of the process): once after the next look at the file, or the
 * next gc.
 */
static void test_failed_merge_retried(void **state)
{
	struct perfmaps *pm;

	(void)state;
	fake_process(PID, NSPID);
	pm = map_with_lines_aside();
	perfmaps__fail_alloc(pm, 1);	/* every allocation from now */
	for (int i = 0; i < 5; i++)
		assert_name(pm, PID, 0x10080, "f0");
	assert_int_equal(stats_of(pm).rebuilds_failed, 1);
	assert_int_equal(perfmaps__load(pm, PID), 0);	/* a look, nothing new */
	assert_name(pm, PID, 0x10080, "f0");
	assert_name(pm, PID, 0x10080, "f0");
	assert_int_equal(stats_of(pm).rebuilds_failed, 2);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x10080, "f0");
	assert_int_equal(stats_of(pm).rebuilds_failed, 3);
	perfmaps__fail_alloc(pm, 0);
	assert_name(pm, PID, 0x10080, "f0");	/* memory again, but no look or gc since */
	assert_int_equal(stats_of(pm).rebuilds, 1);
	perfmaps__gc(pm);
	check_merged(pm);
	assert_int_equal(stats_of(pm).rebuilds_failed, 3);
	perfmaps__free(pm);
}

/* Lines past the caps, every process together or one process's quarter, are dropped and counted. */
static void test_caps(void **state)
{
	struct perfmaps *pm;
	struct perfmaps_stats st;

	(void)state;
	for (int i = 0; i < 5; i++)
		fake_process(PID + i, NSPID);
	map_write(PID, NSPID, "w", "1000 10 a\n2000 10 b\n3000 10 c\n");
	for (int i = 1; i < 5; i++)
		map_write(PID + i, NSPID, "w", "1000 10 x\n2000 10 y\n");
	pm = new_maps(8, 0, 0);	/* a process: 2 */
	assert_int_equal(perfmaps__load(pm, PID), 2);
	assert_name(pm, PID, 0x2000, "b");
	assert_name(pm, PID, 0x3000, NULL);
	for (int i = 1; i < 4; i++)
		assert_int_equal(perfmaps__load(pm, PID + i), 2);
	assert_int_equal(perfmaps__load(pm, PID + 4), 0);	/* all 8 held */
	st = stats_of(pm);
	assert_int_equal(st.entries, 8);
	assert_int_equal(st.entries_dropped, 3);
	assert_int_equal(st.entries_held, 8);
	/* the first process ends: its lines go at the second gc, room for others */
	perfmaps__forget_pid(pm, PID);
	assert_name(pm, PID, 0x2000, "b");	/* kept for its profile */
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x2000, "b");
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x2000, NULL);
	st = stats_of(pm);
	assert_int_equal(st.entries_held, 6);
	assert_int_equal(st.processes_forgotten, 1);
	/* a dropped line is not read again; the next ones find room */
	map_write(PID + 4, NSPID, "a", "5000 10 z\n");
	assert_int_equal(perfmaps__load(pm, PID + 4), 1);
	assert_name(pm, PID + 4, 0x5000, "z");
	assert_name(pm, PID + 4, 0x1000, NULL);
	perfmaps__free(pm);
}

/* Bytes: a process with long names fills its quarter, another still has its own. */
static void test_caps_bytes(void **state)
{
	struct perfmaps *pm;
	struct perfmaps_stats st;
	char line[160];
	int taken;

	(void)state;
	fake_process(PID, NSPID);
	fake_process(PID + 1, NSPID);
	map_write(PID + 1, NSPID, "w", "1000 10 x\n2000 10 y\n");
	map_write(PID, NSPID, "w", "");
	memset(line, 'n', 100);
	for (int i = 0; i < 100; i++) {
		char text[160];

		snprintf(text, sizeof(text), "%x 10 %.100s\n", 0x1000 + i * 0x10, line);
		map_write(PID, NSPID, "a", text);
	}
	pm = new_maps(0, 4 * 8192, 0);
	taken = perfmaps__load(pm, PID);
	st = stats_of(pm);
	assert_true(taken > 20 && taken < 100);
	assert_int_equal(st.entries_dropped, 100 - taken);
	assert_true(st.bytes_held <= 8192);
	assert_int_equal(perfmaps__load(pm, PID + 1), 2);
	assert_name(pm, PID + 1, 0x2000, "y");
	assert_true(stats_of(pm).bytes_held <= 2 * 8192);
	perfmaps__free(pm);
}

/*
 * max_procs processes followed: a look at another is refused and counted,
 * the ones followed still read; once one is freed (its exit, two gcs), there
 * is room again.
 */
static void test_max_procs(void **state)
{
	struct perfmaps_opts o = { .proc_root = proc, .recheck_ns = 1, .max_procs = 2 };
	struct perfmaps *pm = perfmaps__new(&o);

	(void)state;
	assert_non_null(pm);
	for (int i = 0; i < 3; i++) {
		fake_process(PID + i, NSPID);
		map_write(PID + i, NSPID, "w", "1000 10 x\n");
	}
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_int_equal(perfmaps__refresh(pm, PID + 1), 1);
	assert_int_equal(perfmaps__load(pm, PID + 2), -ENOSPC);
	assert_int_equal(perfmaps__refresh(pm, PID + 2), -ENOSPC);
	assert_int_equal(stats_of(pm).processes_full, 2);
	assert_name(pm, PID + 2, 0x1000, NULL);
	map_write(PID + 1, NSPID, "a", "2000 10 y\n");
	assert_int_equal(perfmaps__load(pm, PID + 1), 1);	/* one followed: read on */
	/* an exec is no new process: its new image takes no room of another */
	perfmaps__forget_pid(pm, PID + 1);
	map_write(PID + 1, NSPID, "a", "3000 10 z\n");
	assert_int_equal(perfmaps__load(pm, PID + 1), 1);
	assert_int_equal(stats_of(pm).processes_full, 2);
	perfmaps__forget_pid(pm, PID);
	perfmaps__gc(pm);
	assert_int_equal(perfmaps__load(pm, PID + 2), -ENOSPC);	/* its names kept a gc more */
	perfmaps__gc(pm);
	assert_int_equal(perfmaps__load(pm, PID + 2), 1);
	assert_name(pm, PID + 2, 0x1000, "x");
	assert_int_equal(stats_of(pm).processes_full, 3);
	perfmaps__free(pm);
}

/*
 * A long-running JIT writes new code over the old again and again (Node
 * --perf-basic-prof): a merge frees the lines later ones replaced, so the
 * process keeps getting names under a share it would otherwise fill at once.
 */
static void test_replaced_lines_freed(void **state)
{
	enum { CODE = 100, ROUNDS = 50 };
	struct perfmaps *pm;
	struct perfmaps_stats st;
	uint64_t bytes1 = 0;
	char text[64];

	(void)state;
	fake_process(PID, NSPID);
	fake_process(PID + 1, NSPID);
	map_write(PID, NSPID, "w", "");
	pm = new_maps(4 * 250, 0, 0);	/* a process: 250 */
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < CODE; i++) {
			snprintf(text, sizeof(text), "%x 100 r%d-%d\n", 0x10000 + i * 0x100,
				 round, i);
			map_write(PID, NSPID, "a", text);
		}
		assert_int_equal(perfmaps__load(pm, PID), CODE);
		snprintf(text, sizeof(text), "r%d-%d", round, CODE - 1);
		assert_name(pm, PID, 0x10000 + (CODE - 1) * 0x100, text);
		st = stats_of(pm);
		assert_int_equal(st.entries_held, CODE);
		bytes1 = bytes1 ? bytes1 : st.bytes_held;
		assert_true(st.bytes_held <= bytes1 + CODE * 2);	/* longer numbers */
	}
	st = stats_of(pm);
	assert_int_equal(st.entries, CODE * ROUNDS);
	assert_int_equal(st.entries_dropped, 0);
	assert_int_equal(st.rebuilds, ROUNDS);
	/* another process writes 1000 lines: it gets its share, no more */
	map_write(PID + 1, NSPID, "w", "");
	for (int i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "%x 10 hog%d\n", 0x10000 + i * 0x10, i);
		map_write(PID + 1, NSPID, "a", text);
	}
	assert_int_equal(perfmaps__load(pm, PID + 1), 250);
	assert_int_equal(stats_of(pm).entries_dropped, 750);
	map_write(PID, NSPID, "a", "90000 10 still named\n");
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x90000, "still named");
	perfmaps__free(pm);
}

/* A map that shrank, or is another file: read from the start, the old names kept until gc. */
static void test_truncated_or_replaced(void **state)
{
	struct perfmaps *pm;
	char path[256];

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	map_write(PID, NSPID, "w", "1000 10 old one\n2000 10 old two\n");
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 2);
	/* truncated in place (same file), then a shorter map written */
	sh("truncate -s 0 '%s'", path);
	map_write(PID, NSPID, "a", "2000 10 new\n");
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x2000, "new");	/* the newest first */
	assert_name(pm, PID, 0x1000, "old one");	/* for frames collected before */
	assert_int_equal(stats_of(pm).files_replaced, 1);
	assert_int_equal(stats_of(pm).entries_held, 3);
	/* another file (a new process with the pid), no shorter than the old */
	sh("printf '4000 10 other file\\n' > '%s.new' && mv '%s.new' '%s'", path, path, path);
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x4000, "other file");
	assert_name(pm, PID, 0x2000, "new");
	assert_int_equal(stats_of(pm).files_replaced, 2);
	assert_int_equal(stats_of(pm).entries_held, 4);
	perfmaps__gc(pm);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x1000, NULL);
	assert_name(pm, PID, 0x2000, NULL);
	assert_name(pm, PID, 0x4000, "other file");
	assert_int_equal(stats_of(pm).entries_held, 1);
	perfmaps__free(pm);
}

/* Whether openat2 can be used: else a symlink is followed, inside the root. */
static bool have_openat2(void)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC };
	long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

/*
 * What a process puts at /tmp/perf-N.map is its own to shape: a symlink (to a
 * file of ours or of another root), a FIFO (a reader would block), a
 * directory are refused.
 */
static void test_refused_files(void **state)
{
	/* a symlink is refused (openat2), or followed inside the root, where there is none */
	const int link_err = have_openat2() ? -EINVAL : -ENOENT;
	struct perfmaps *pm;
	char path[256], target[256];
	struct perfmaps_stats st;

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	snprintf(target, sizeof(target), "%s/outside.map", dir);
	sh("printf '1000 10 outside\\n' > '%s'", target);
	pm = new_maps(0, 0, 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(perfmaps__load(pm, PID), link_err);
	assert_name(pm, PID, 0x1000, NULL);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("../../../../outside.map", path), 0);	/* relative, climbing */
	assert_int_equal(perfmaps__load(pm, PID), link_err);
	assert_name(pm, PID, 0x1000, NULL);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(perfmaps__load(pm, PID), -EINVAL);	/* and did not block */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(perfmaps__load(pm, PID), -EINVAL);
	assert_int_equal(rmdir(path), 0);
	st = stats_of(pm);
	assert_int_equal(st.files_refused, link_err == -EINVAL ? 4 : 2);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.maps_read, 0);
	perfmaps__free(pm);
}

/*
 * A 5000-byte name is cut, a 100 KiB line skipped, control bytes and a NUL
 * in a name made printable, more than 16 hex digits refused.
 */
static void test_hostile_lines(void **state)
{
	struct perfmaps *pm;
	struct perfmaps_stats st;
	char path[256], *line;
	const char *name;
	FILE *f;

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	line = malloc(200000);
	assert_non_null(line);
	f = fopen(path, "we");
	assert_non_null(f);
	memset(line, 'n', 5000);
	line[5000] = '\0';
	fprintf(f, "1000 10 %s\n", line);
	memset(line, 'x', 100000);
	line[100000] = '\0';
	fprintf(f, "2000 10 %s\n", line);
	fprintf(f, "3000 10 after\n");
	fwrite("4000 10 a\tb\033c\0d\n", 1, 16, f);
	fprintf(f, "00000000000005000 10 seventeen digits\n");
	fprintf(f, "0x00000000000006000 10 seventeen after 0x\n");
	fprintf(f, "8000 00000000000000010 a size of seventeen\n");
	fprintf(f, "0x0000000000007000 10 sixteen\n");
	assert_int_equal(fclose(f), 0);
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 4);
	assert_int_equal(perfmaps__lookup(pm, PID, 0x1000, &name), 0);
	assert_int_equal(strlen(name), 1024);
	assert_name(pm, PID, 0x2000, NULL);
	assert_name(pm, PID, 0x3000, "after");
	assert_name(pm, PID, 0x4000, "a?b?c?d");
	assert_name(pm, PID, 0x5000, NULL);
	assert_name(pm, PID, 0x6000, NULL);
	assert_name(pm, PID, 0x8000, NULL);
	assert_name(pm, PID, 0x7000, "sixteen");
	assert_int_equal(perfmaps__load(pm, PID), 0);	/* all of it consumed */
	st = stats_of(pm);
	assert_int_equal(st.lines_malformed, 4);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.entries_dropped, 0);
	assert_int_equal(st.files_refused, 0);
	perfmaps__free(pm);
	free(line);
}

/* A look reads read_max bytes at most: 10,000 lines of 32 bytes, 64 KiB per look, in five. */
static void test_read_max(void **state)
{
	struct perfmaps *pm;
	char path[256];
	FILE *f;

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	f = fopen(path, "we");
	assert_non_null(f);
	for (int i = 0; i < 10000; i++)
		fprintf(f, "%08x 10 name-of-%011d\n", 0x100000 + i * 16, i);
	assert_int_equal(fclose(f), 0);
	pm = new_maps(0, 0, 1);	/* the least: one chunk of 64 KiB */
	assert_int_equal(perfmaps__load(pm, PID), 65536 / 32);
	assert_int_equal(stats_of(pm).reads_capped, 1);
	assert_name(pm, PID, 0x100000 + 9999 * 16, NULL);
	for (int i = 0; i < 4; i++)
		assert_true(perfmaps__load(pm, PID) > 0);
	assert_int_equal(perfmaps__load(pm, PID), 0);
	assert_name(pm, PID, 0x100000 + 9999 * 16, "name-of-00000009999");
	assert_int_equal(stats_of(pm).entries, 10000);
	assert_int_equal(stats_of(pm).reads_capped, 4);
	assert_int_equal(stats_of(pm).lines_malformed, 0);
	perfmaps__free(pm);
}

/*
 * An exec: the process is alive, a lookup reads no file and finds the old
 * image's names; the drain's next look reads the new image's map (written
 * anew here: shorter than what was read, so from the start), kept apart: both
 * named in one profile, the old until the second gc.
 */
static void test_exec(void **state)
{
	struct perfmaps *pm;
	uint64_t reads;

	(void)state;
	fake_process(PID, NSPID);
	map_write(PID, NSPID, "w", "1000 10 before exec\n2000 10 both, old\n");
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), 2);
	perfmaps__forget_pid(pm, PID);
	map_write(PID, NSPID, "w", "2000 10 both, new\n3000 10 after exec\n");
	reads = stats_of(pm).maps_read;
	assert_name(pm, PID, 0x1000, "before exec");
	assert_name(pm, PID, 0x2000, "both, old");
	assert_name(pm, PID, 0x3000, NULL);
	assert_int_equal(stats_of(pm).maps_read, reads);	/* no file read */
	assert_int_equal(perfmaps__refresh(pm, PID), 2);	/* the new image: at once */
	assert_name(pm, PID, 0x1000, "before exec");
	/*
	 * A known limit: a lookup does not know which image a frame is from and
	 * tries the newest first, so a frame of the old image collected before
	 * the exec, at an address both maps name, gets the new image's name.
	 */
	assert_name(pm, PID, 0x2000, "both, new");
	assert_name(pm, PID, 0x3000, "after exec");
	assert_int_equal(stats_of(pm).entries_held, 4);
	assert_int_equal(stats_of(pm).processes_forgotten, 1);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x1000, "before exec");
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x1000, NULL);
	assert_name(pm, PID, 0x2000, "both, new");
	assert_int_equal(stats_of(pm).entries_held, 2);
	/* a process gone though no exit said so: found by gc, freed at the next two */
	sh("rm -rf '%s/%d'", proc, PID);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x2000, "both, new");
	assert_int_equal(stats_of(pm).processes_forgotten, 2);
	perfmaps__gc(pm);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x2000, NULL);
	assert_int_equal(stats_of(pm).entries_held, 0);
	assert_int_equal(stats_of(pm).bytes_held, 0);
	perfmaps__free(pm);
}

/*
 * perfmaps__refresh, asked at every sample in JIT code: a look at most every
 * recheck_ns per process, at once for a pid not seen or forgotten since (a
 * new image). An exited process's late samples find no file: its names stay.
 */
static void test_refresh(void **state)
{
	struct perfmaps_opts o = { .proc_root = proc, .recheck_ns = 3600ull * 1000000000 };
	struct perfmaps *pm;

	(void)state;
	fake_process(PID, NSPID);
	map_write(PID, NSPID, "w", "1000 10 one\n");
	pm = perfmaps__new(&o);
	assert_non_null(pm);
	assert_int_equal(perfmaps__refresh(pm, PID), 1);	/* never looked at: now */
	map_write(PID, NSPID, "a", "2000 10 two\n");
	assert_int_equal(perfmaps__refresh(pm, PID), 0);	/* looked at an hour ago or less */
	assert_int_equal(perfmaps__refresh(pm, PID + 7), -ENOENT);	/* another in between */
	assert_int_equal(perfmaps__refresh(pm, PID), 0);
	assert_name(pm, PID, 0x2000, NULL);
	assert_int_equal(perfmaps__load(pm, PID), 1);
	assert_name(pm, PID, 0x2000, "two");
	/* an exec: its new image is read at once, on from where the old stopped (one file) */
	perfmaps__forget_pid(pm, PID);
	map_write(PID, NSPID, "a", "3000 10 three\n");
	assert_int_equal(perfmaps__refresh(pm, PID), 1);
	assert_int_equal(perfmaps__refresh(pm, PID), 0);
	perfmaps__free(pm);

	map_write(PID, NSPID, "w", "1000 10 one\n");
	pm = new_maps(0, 0, 0);	/* recheck_ns 1 */
	assert_int_equal(perfmaps__refresh(pm, PID), 1);
	map_write(PID, NSPID, "a", "2000 10 two\n");
	assert_int_equal(perfmaps__refresh(pm, PID), 1);
	/* it exits; a late sample looks: no process, no file, its names stay */
	perfmaps__forget_pid(pm, PID);
	sh("rm -rf '%s/%d'", proc, PID);
	assert_int_equal(perfmaps__refresh(pm, PID), -ENOENT);
	assert_name(pm, PID, 0x1000, "one");
	assert_name(pm, PID, 0x2000, "two");
	perfmaps__gc(pm);
	perfmaps__gc(pm);
	assert_name(pm, PID, 0x2000, NULL);
	assert_int_equal(stats_of(pm).processes_forgotten, 1);
	assert_int_equal(stats_of(pm).bytes_held, 0);
	perfmaps__free(pm);
}

/*
 * An exec whose new image appends to the file its old one wrote (CPython
 * opens its map O_APPEND): the new image reads on from where the old one
 * stopped, not the old image's lines again. Another file, or one shorter than
 * what was read (written anew), is read from the start.
 */
static void test_exec_same_file(void **state)
{
	enum { OLD = 20000 };
	struct perfmaps *pm;
	char path[256], line[64];
	long long read0;
	FILE *f;

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	f = fopen(path, "we");
	assert_non_null(f);
	for (int i = 0; i < OLD; i++)
		fprintf(f, "%x 10 old%d\n", 0x100000 + i * 16, i);
	assert_int_equal(fclose(f), 0);
	pm = new_maps(0, 0, 0);
	assert_int_equal(perfmaps__load(pm, PID), OLD);
	for (int exec = 0; exec < 2; exec++) {
		perfmaps__forget_pid(pm, PID);
		snprintf(line, sizeof(line), "%x 10 new%d\n", 0x1000 + exec * 16, exec);
		map_write(PID, NSPID, "a", line);
		read0 = bytes_read();
		assert_int_equal(perfmaps__refresh(pm, PID), 1);
		assert_true(read0 >= 0 && bytes_read() - read0 < 4096);
	}
	assert_int_equal(stats_of(pm).entries, OLD + 2);
	assert_int_equal(stats_of(pm).entries_held, OLD + 2);
	assert_int_equal(stats_of(pm).files_replaced, 0);
	assert_name(pm, PID, 0x1000, "new0");	/* an older image's */
	assert_name(pm, PID, 0x1010, "new1");
	assert_name(pm, PID, 0x100000 + (OLD - 1) * 16, "old19999");
	/* another file after an exec (written beside, then renamed over): from the start */
	perfmaps__forget_pid(pm, PID);
	sh("printf '2000 10 other\\n1000 10 other too\\n' > '%s.new' && mv '%s.new' '%s'", path,
	   path, path);
	assert_int_equal(perfmaps__refresh(pm, PID), 2);
	assert_name(pm, PID, 0x1000, "other too");
	assert_int_equal(stats_of(pm).files_replaced, 0);	/* an exec's file, not replaced */
	perfmaps__free(pm);
}

/* PID's map, another file (written beside, renamed over): LINES lines "e<exec>-<i>". */
static void write_image_map(int exec, int lines)
{
	char path[256];
	FILE *f;

	map_path(PID, NSPID, path, sizeof(path));
	sh("rm -f '%s.new'", path);
	strcat(path, ".new");
	f = fopen(path, "we");
	assert_non_null(f);
	for (int i = 0; i < lines; i++)
		fprintf(f, "%x 10 e%d-%d\n", 0x100000 + i * 16, exec, i);
	assert_int_equal(fclose(f), 0);
	map_path(PID, NSPID, path, sizeof(path));
	sh("mv '%s.new' '%s'", path, path);
}

/*
 * A process that execs again and again, each image writing a map of its own:
 * one share for all its images (entries and bytes), no more than two older
 * images kept (the oldest dropped, counted), and another process still gets
 * all its lines.
 */
static void test_exec_loop_share(void **state)
{
	enum { EXECS = 25, LINES = 50000, SHARE_ENTRIES = 100000 };
	const uint64_t share_bytes = 4 << 20;
	struct perfmaps *pm;
	struct perfmaps_stats st;

	(void)state;
	fake_process(PID, NSPID);
	fake_process(PID + 1, NSPID);
	pm = new_maps(4 * SHARE_ENTRIES, 4 * share_bytes, 0);
	for (int exec = 0; exec < EXECS; exec++) {
		write_image_map(exec, LINES);
		if (exec)
			perfmaps__forget_pid(pm, PID);
		assert_true(perfmaps__refresh(pm, PID) >= 0);
		st = stats_of(pm);
		assert_true(st.entries_held <= SHARE_ENTRIES);
		assert_true(st.bytes_held <= share_bytes);
	}
	st = stats_of(pm);
	assert_true(st.entries_dropped > 0);
	map_write(PID + 1, NSPID, "w", "");
	for (int i = 0; i < 1000; i++) {
		char text[64];

		snprintf(text, sizeof(text), "%x 10 other%d\n", 0x10000 + i * 0x10, i);
		map_write(PID + 1, NSPID, "a", text);
	}
	assert_int_equal(perfmaps__load(pm, PID + 1), 1000);
	assert_name(pm, PID + 1, 0x10000 + 999 * 0x10, "other999");
	/* two intervals later the older images are gone: the next one has the share */
	perfmaps__gc(pm);
	perfmaps__gc(pm);
	write_image_map(EXECS, LINES);
	perfmaps__forget_pid(pm, PID);
	assert_int_equal(perfmaps__refresh(pm, PID), LINES);
	assert_name(pm, PID, 0x100000 + (LINES - 1) * 16, "e25-49999");
	perfmaps__free(pm);
}

/*
 * Each image of a process that execs keeps its names (for the frames it
 * collected) until the second gc, but no more than two older images: the
 * oldest goes at the next exec, counted.
 */
static void test_exec_images_kept(void **state)
{
	struct perfmaps *pm;
	char path[256], text[64];

	(void)state;
	fake_process(PID, NSPID);
	map_path(PID, NSPID, path, sizeof(path));
	pm = new_maps(0, 0, 0);
	for (int exec = 0; exec < 5; exec++) {
		/* another file each time (written beside, renamed over): read from the start */
		sh("printf '%x 10 image%d\\n' > '%s.new' && mv '%s.new' '%s'", 0x1000 + exec * 0x10,
		   exec, path, path, path);
		if (exec)
			perfmaps__forget_pid(pm, PID);
		assert_int_equal(perfmaps__refresh(pm, PID), 1);
	}
	assert_int_equal(stats_of(pm).images_dropped, 2);
	assert_int_equal(stats_of(pm).entries_held, 3);
	assert_name(pm, PID, 0x1000, NULL);
	assert_name(pm, PID, 0x1010, NULL);
	for (int exec = 2; exec < 5; exec++) {
		snprintf(text, sizeof(text), "image%d", exec);
		assert_name(pm, PID, 0x1000 + (uint64_t)exec * 0x10, text);
	}
	perfmaps__free(pm);
}

static void test_anon_paths(void **state)
{
	(void)state;
	assert_true(perfmap_anon(""));
	assert_true(perfmap_anon("//anon"));
	assert_true(perfmap_anon("[anon:v8 code]"));
	assert_false(perfmap_anon("/usr/bin/node"));
	assert_false(perfmap_anon("[vdso]"));
	assert_false(perfmap_anon("/memfd:x (deleted)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_no_nspid_no_file),
		cmocka_unit_test(test_later_lines_win),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_merge_at_lookup),
		cmocka_unit_test(test_bytes_held_is_memory),
		cmocka_unit_test(test_failed_allocations),
		cmocka_unit_test(test_failed_look),
		cmocka_unit_test(test_failed_merge_retried),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_caps_bytes),
		cmocka_unit_test(test_max_procs),
		cmocka_unit_test(test_replaced_lines_freed),
		cmocka_unit_test(test_truncated_or_replaced),
		cmocka_unit_test(test_refused_files),
		cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_read_max),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_exec_same_file),
		cmocka_unit_test(test_exec_loop_share),
		cmocka_unit_test(test_exec_images_kept),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(test_anon_paths),
	};

	test_filter_from_env();
	return cmocka_run_group_tests(tests, setup, teardown);
}
