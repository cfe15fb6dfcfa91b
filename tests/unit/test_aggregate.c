// SPDX-License-Identifier: Apache-2.0
/*
 * The aggregator's profile, and what the writers make of it: kernel frames
 * lose their addresses (KASLR) unless agg_opts.kernel_addresses keeps them,
 * and keep their names; one location per kernel function.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <unistd.h>

#include "helpers.h"
#include "aggregate.h"
#include "flamegraph.h"
#include "ksyms.h"
#include "oncpu.h"
#include "otlp.h"
#include "perfmap.h"
#include "pprof.h"
#include "procs.h"
#include "profile.h"
#include "profile.pb-c.h"

#define KERNEL_MIN 0xffff800000000000ull	/* x86-64 and arm64 kernel halves start here or above */

static char dir[64];
static char kallsyms[128];

/* Every kernel address the samples hold, and every symbol start: none may leave the agent. */
static const uint64_t kaddrs[] = {
	0xffffffff81003010ull, 0xffffffff81003050ull, 0xffffffff81001020ull, 0xffffffff81002008ull,
	0xffffffffc0a01010ull, 0xffffffff81001040ull, 0xffffffff80000100ull,
	0xffffffff81000000ull, 0xffffffff81001000ull, 0xffffffff81002000ull, 0xffffffff81003000ull,
	0xffffffffc0a01000ull,
};

static int setup(void **state)
{
	FILE *f;

	(void)state;
	if (tmpdir_make(dir, sizeof(dir), "aggregate"))
		return -1;
	snprintf(kallsyms, sizeof(kallsyms), "%s/kallsyms", dir);
	f = fopen(kallsyms, "we");
	if (!f)
		return -1;
	fputs("ffffffff81000000 T _stext\n"
	      "ffffffff81001000 T do_syscall_64\n"
	      "ffffffff81002000 t entry_SYSCALL_64\n"
	      "ffffffff81003000 T schedule\n"
	      "ffffffffc0a01000 t xfs_foo\t[xfs]\n", f);
	return fclose(f) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void add(struct agg *a, const uint64_t *kstack, int nk, uint64_t ustack0, int times)
{
	static struct sample_event e;

	memset(&e, 0, sizeof(e));
	e.pid = 0x7ffffff0;	/* above any pid_max: no /proc entry, no mapping */
	e.tid = 0x7ffffff1;
	snprintf(e.comm, sizeof(e.comm), "app");
	snprintf(e.pcomm, sizeof(e.pcomm), "app");
	e.kstack_len = (int16_t)nk;
	memcpy(e.kstack, kstack, (size_t)nk * sizeof(*kstack));
	e.ustack_len = ustack0 ? 1 : 0;
	e.ustack[0] = ustack0;
	for (int i = 0; i < times; i++)
		assert_int_equal(agg__add(a, &e, 10000000), 0);
}

/*
 * schedule at two addresses (3 + 2 samples) under do_syscall_64 and
 * entry_SYSCALL_64, one with a user frame no mapping covers; a module's
 * function; and a frame below every symbol.
 */
static struct profile *build(bool keep, bool with_ksyms)
{
	const uint64_t s1[] = { 0xffffffff81003010ull, 0xffffffff81001020ull, 0xffffffff81002008ull };
	const uint64_t s2[] = { 0xffffffff81003050ull, 0xffffffff81001020ull, 0xffffffff81002008ull };
	const uint64_t s3[] = { 0xffffffffc0a01010ull, 0xffffffff81001040ull };
	const uint64_t s4[] = { 0xffffffff80000100ull, 0xffffffff81001040ull };
	const struct agg_opts keep_opts = { .kernel_addresses = true };
	struct procs *procs = procs__new(NULL);
	struct ksyms *ks = with_ksyms ? ksyms__load(kallsyms) : NULL;
	struct agg *a;
	struct profile *p = profile__new();

	assert_non_null(procs);
	assert_non_null(p);
	assert_true(ks || !with_ksyms);
	/* the default (NULL options) strips the addresses */
	a = agg__new(keep ? &keep_opts : NULL, procs, NULL);
	assert_non_null(a);
	add(a, s1, 3, 0, 3);
	add(a, s2, 3, 0x5000123, 2);
	add(a, s3, 2, 0, 1);
	add(a, s4, 2, 0, 1);
	p->period_nanos = 10000000;
	assert_int_equal(agg__build(a, ks, p), 0);
	agg__free(a);
	ksyms__free(ks);
	procs__free(procs);
	return p;
}

static int find_location(const struct profile *p, const char *fn)
{
	int found = -1;

	for (uint32_t i = 0; i < p->nlocations; i++) {
		if (strcmp(p->locations[i].function, fn))
			continue;
		if (found >= 0)
			fail_msg("two locations for %s", fn);
		found = (int)i;
	}
	return found;
}

/* Whether buf holds addr as a protobuf varint or as a fixed64. */
static bool holds(const uint8_t *buf, size_t len, uint64_t addr)
{
	uint8_t v[10], f[8];
	size_t n = 0;

	for (uint64_t x = addr; ; x >>= 7) {
		v[n++] = (uint8_t)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
		if (x < 0x80)
			break;
	}
	for (int i = 0; i < 8; i++)
		f[i] = (uint8_t)(addr >> (8 * i));
	return memmem(buf, len, v, n) || memmem(buf, len, f, sizeof(f));
}

static void expect_no_kernel_address(const uint8_t *buf, size_t len, const char *what)
{
	for (size_t i = 0; i < sizeof(kaddrs) / sizeof(kaddrs[0]); i++)
		if (holds(buf, len, kaddrs[i]))
			fail_msg("%s holds the kernel address 0x%" PRIx64, what, kaddrs[i]);
	if (memmem(buf, len, "ffffffff", 8))
		fail_msg("%s holds a kernel address as text", what);
}

static void test_kernel_frames_by_function(void **state)
{
	struct profile *p = build(false, true);
	int sched, sys, entry, xfs, unknown;
	int64_t under_schedule = 0;

	(void)state;
	sched = find_location(p, "schedule");
	sys = find_location(p, "do_syscall_64");
	entry = find_location(p, "entry_SYSCALL_64");
	xfs = find_location(p, "xfs_foo");
	unknown = find_location(p, "[kernel]");
	assert_true(sched >= 0 && sys >= 0 && entry >= 0 && xfs >= 0 && unknown >= 0);
	assert_true(sched != sys && sys != entry && xfs != sys);
	for (uint32_t i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];

		if (l->frame == PROF_FRAME_KERNEL && l->address)
			fail_msg("kernel frame %s kept its address 0x%" PRIx64, l->function,
				 l->address);
		if (l->frame != PROF_FRAME_KERNEL && l->address != 0x5000123)
			fail_msg("user frame %s: address 0x%" PRIx64, l->function, l->address);
	}
	/* schedule at 0x...3010 and 0x...3050: one location, 5 samples */
	for (uint32_t i = 0; i < p->nsamples; i++)
		if (p->samples[i].locs[0] == (uint32_t)sched)
			under_schedule += p->samples[i].count;
	assert_int_equal(under_schedule, 5);
	assert_int_equal(profile__total(p), 7);
	profile__free(p);
}

static void check_pprof(const struct profile *p, bool keep)
{
	Perftools__Profiles__Profile *pb;
	uint8_t *buf;
	size_t len;
	bool seen = false;

	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	pb = perftools__profiles__profile__unpack(NULL, len, buf);
	assert_non_null(pb);
	for (size_t i = 0; i < pb->n_location; i++) {
		if (!keep && pb->location[i]->address >= KERNEL_MIN)
			fail_msg("pprof location %zu at 0x%" PRIx64, i, pb->location[i]->address);
		seen |= pb->location[i]->address == 0xffffffff81003010ull;
	}
	for (size_t i = 0; i < pb->n_mapping && !keep; i++)
		if (pb->mapping[i]->memory_start >= KERNEL_MIN ||
		    pb->mapping[i]->memory_limit >= KERNEL_MIN)
			fail_msg("pprof mapping %zu spans kernel addresses", i);
	assert_true(seen == keep);	/* the option restores them */
	if (!keep)
		expect_no_kernel_address(buf, len, "the pprof");
	perftools__profiles__profile__free_unpacked(pb, NULL);
	free(buf);
}

static void check_otlp(const struct profile *p, bool keep, bool names)
{
	struct export_label labels[] = { { "node", "n1" } };
	uint8_t *buf;
	size_t len;

	assert_int_equal(otlp__encode(p, "svc", labels, 1, &buf, &len), 0);
	if (keep)
		assert_true(holds(buf, len, 0xffffffff81003010ull));
	else
		expect_no_kernel_address(buf, len, "the OTLP request");
	assert_true(!names || memmem(buf, len, "schedule", 8));
	assert_true(!names || memmem(buf, len, "xfs_foo", 7));
	assert_true(names || memmem(buf, len, "[kernel]", 8));
	free(buf);
}

static void check_folded(const struct profile *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(folded__write(p, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(text, "app;entry_SYSCALL_64_[k];do_syscall_64_[k];schedule_[k] 3\n"));
	assert_non_null(strstr(text, "app;do_syscall_64_[k];xfs_foo_[k] 1\n"));
	expect_no_kernel_address((const uint8_t *)text, len, "the folded stacks");
	free(text);
}

static void test_encoders_strip(void **state)
{
	struct profile *p = build(false, true);

	(void)state;
	check_pprof(p, false);
	check_otlp(p, false, true);
	check_folded(p);
	profile__free(p);
}

/* No kernel symbols at all: every kernel frame is "[kernel]", still no address. */
static void test_no_ksyms(void **state)
{
	struct profile *p = build(false, false);

	(void)state;
	for (uint32_t i = 0; i < p->nlocations; i++)
		if (p->locations[i].frame == PROF_FRAME_KERNEL)
			assert_string_equal(p->locations[i].function, "[kernel]");
	check_pprof(p, false);
	check_otlp(p, false, false);
	profile__free(p);
}

static void test_option_keeps_addresses(void **state)
{
	struct profile *p = build(true, true);
	int n_sched = 0;

	(void)state;
	for (uint32_t i = 0; i < p->nlocations; i++)
		n_sched += !strcmp(p->locations[i].function, "schedule");
	assert_int_equal(n_sched, 2);	/* one per address, as before */
	check_pprof(p, true);
	check_otlp(p, true, true);
	profile__free(p);
}

/* Two aggregates sharing a budget: the second is refused once the first filled it,
 * and gets room again when the first is reset. */
static void test_shared_budget(void **state)
{
	struct procs *procs = procs__new(NULL);
	struct agg_budget b = { .max = 4096 };
	struct agg *x = agg__new(&(struct agg_opts){ .budget = &b }, procs, NULL);
	struct agg *y = agg__new(&(struct agg_opts){ .budget = &b }, procs, NULL);
	static struct sample_event e;
	int refused = 0;

	(void)state;
	assert_non_null(x && y);
	memset(&e, 0, sizeof(e));
	e.pid = 0x7ffffff0;
	e.kstack_len = 1;
	for (uint64_t i = 0; i < 200; i++) {	/* distinct stacks until the budget is spent */
		e.kstack[0] = 0xffffffff81000000ull + i;
		if (agg__add(x, &e, 1000))
			break;
	}
	assert_true(b.used > 0 && b.used <= b.max);
	e.kstack[0] = 0xffffffff82000000ull;
	refused = agg__add(y, &e, 1000) != 0;
	assert_true(refused);
	agg__reset(x);
	assert_int_equal(b.used, 0);
	assert_int_equal(agg__add(y, &e, 1000), 0);
	agg__free(y);
	assert_int_equal(b.used, 0);
	agg__free(x);
	procs__free(procs);
}

/* A sample whose user stack is a native leaf over Python frames (code, instr pairs). */
static void add_python(struct agg *a, const uint64_t (*py)[2], int n, int times)
{
	static struct sample_event e;

	memset(&e, 0, sizeof(e));
	e.pid = 0x7ffffff0;
	e.tid = 0x7ffffff1;
	snprintf(e.comm, sizeof(e.comm), "python3");
	e.ustack_len = (int16_t)(n + 1);
	e.ustack[0] = 0x401000;	/* the native leaf: no mapping here */
	for (int i = 0; i < n; i++) {
		e.ustack[i + 1] = py[i][0];
		e.uaux[i + 1] = (uint32_t)py[i][1];
		e.ukind[i + 1] = WALKER_PYTHON;
	}
	for (int i = 0; i < times; i++)
		assert_int_equal(agg__add(a, &e, 10000000), 0);
}

/*
 * Python frames: a stack is its code objects and their instructions (the same
 * code at another instruction is another stack), never resolved in a mapping;
 * without a symbolizer they are "[python]+0x<code>" with no address. A stack
 * without them costs what it did.
 */
static void test_python_frames(void **state)
{
	static const uint64_t at_10[][2] = { { 0x7f0000001000, 10 }, { 0x7f0000002000, 3 } };
	static const uint64_t at_12[][2] = { { 0x7f0000001000, 12 }, { 0x7f0000002000, 3 } };
	struct procs *procs = procs__new(NULL);
	struct agg *a = agg__new(NULL, procs, NULL);
	struct profile *p = profile__new();
	struct agg_stats st;
	bool named = false;

	(void)state;
	assert_non_null(a);
	add_python(a, at_10, 2, 3);
	add_python(a, at_12, 2, 2);
	add(a, kaddrs, 0, 0x401000, 1);	/* the same leaf, native alone: its own stack */
	agg__stats(a, &st);
	assert_int_equal(st.stacks, 3);
	assert_int_equal(st.samples, 6);
	assert_int_equal(st.frames_python, 4);	/* counted per new stack's frame */
	p->period_nanos = 10000000;
	assert_int_equal(agg__build(a, NULL, p), 0);
	assert_int_equal(p->nsamples, 3);
	for (uint32_t i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];

		if (strncmp(l->function, "[python]+0x", 11))
			continue;
		named = true;
		assert_int_equal(l->address, 0);
		assert_int_equal(l->mapping, PROFILE_NO_MAPPING);
		assert_int_equal(l->frame, PROF_FRAME_PYTHON);
	}
	assert_true(named);
	profile__free(p);
	agg__free(a);
	procs__free(procs);
}

/* The location of a frame at addr, or NULL. */
static const struct prof_location *location_at(const struct profile *p, uint64_t addr)
{
	for (uint32_t i = 0; i < p->nlocations; i++)
		if (p->locations[i].address == addr)
			return &p->locations[i];
	return NULL;
}

/* A macro: a failure names the test's line. The function at addr, named want. */
#define assert_function_at(p, addr, want)                      \
	do {                                                   \
		const struct prof_location *l_ = location_at(p, addr); \
		assert_non_null(l_);                           \
		assert_string_equal(l_->function, want);       \
	} while (0)

/*
 * PROC/pid (PROC = DIR/jitproc, into proc): a process (nspid in its own
 * namespace) with 64 KiB of anonymous executable memory at base; its perf
 * map's path into path, the file not written.
 */
static void jit_process_pid(int pid, int nspid, char *proc, size_t proc_len, char *path,
			    size_t path_len, uint64_t base)
{
	FILE *f;

	snprintf(proc, proc_len, "%s/jitproc", dir);
	sh("mkdir -p '%s/%d/root/tmp'", proc, pid);
	snprintf(path, path_len, "%s/%d/maps", proc, pid);
	f = fopen(path, "we");
	assert_non_null(f);
	fprintf(f, "%" PRIx64 "-%" PRIx64 " r-xp 00000000 00:00 0 \n", base, base + 0x10000);
	assert_int_equal(fclose(f), 0);
	snprintf(path, path_len, "%s/%d/status", proc, pid);
	f = fopen(path, "we");
	assert_non_null(f);
	fprintf(f, "Name:\tnode\nPid:\t%d\nNSpid:\t%d\t%d\n", pid, pid, nspid);
	assert_int_equal(fclose(f), 0);
	snprintf(path, path_len, "%s/%d/root/tmp/perf-%d.map", proc, pid, nspid);
}

/* PROC/4321, 9 in its own namespace (jit_process_pid). */
static void jit_process(char *proc, size_t proc_len, char *path, size_t path_len, uint64_t base)
{
	jit_process_pid(4321, 9, proc, proc_len, path, path_len, base);
}

/* Writes (mode "w") or appends ("a") a perf map line: START SIZE name. */
static void map_line(const char *path, const char *mode, uint64_t start, uint64_t size,
		     const char *name)
{
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	fprintf(f, "%" PRIx64 " %" PRIx64 " %s\n", start, size, name);
	assert_int_equal(fclose(f), 0);
}

/* A sample of pid (its only thread) whose user stack is n frames of stack. */
static void add_user(struct agg *a, int pid, const uint64_t *stack, int n)
{
	static struct sample_event e;

	memset(&e, 0, sizeof(e));
	e.pid = e.tid = (uint32_t)pid;
	snprintf(e.comm, sizeof(e.comm), "node");
	e.ustack_len = (int16_t)n;
	memcpy(e.ustack, stack, (size_t)n * sizeof(*stack));
	assert_int_equal(agg__add(a, &e, 10000000), 0);
}

/*
 * test_jit_frames with perf maps or without: two samples of process 4321 (the
 * second in code compiled after the first); it exits and its file goes before
 * the profile is built.
 */
static void jit_frames_run(const char *proc, const char *path, uint64_t base, bool with_maps)
{
	const uint64_t stack[] = { base + 0x120, base + 0x240, base + 0x300 };
	const uint64_t late[] = { base + 0x400, base + 0x240, base + 0x300 };
	struct perfmaps_opts mo = { .proc_root = proc, .recheck_ns = 1 };
	struct procs *procs = procs__new(&(struct procs_opts){ .proc_root = proc });
	struct perfmaps *pm = with_maps ? perfmaps__new(&mo) : NULL;
	struct agg *a = agg__new(&(struct agg_opts){ .perfmaps = pm }, procs, NULL);
	struct profile *p = profile__new();
	struct perfmaps_stats pst;

	assert_non_null(a);
	add_user(a, 4321, stack, 3);
	/* code compiled after the first sample, run by the next one */
	map_line(path, "ae", base + 0x400, 0x10, "late::compiled");
	add_user(a, 4321, late, 3);
	/* the process ends and its file goes: what was read at its samples stays */
	procs__on_exit(procs, 4321);
	if (pm)
		perfmaps__forget_pid(pm, 4321);
	sh("mv '%s' '%s.gone'", path, path);
	p->period_nanos = 10000000;
	assert_int_equal(agg__build(a, NULL, p), 0);
	sh("mv '%s.gone' '%s'", path, path);
	assert_int_equal(p->nsamples, 2);
	/* the leaf; a return address (its call at 0x23f); 0x2ff, which no line covers */
	assert_function_at(p, base + 0x120, with_maps ? "py::hot:/app/x.py" : "[jit]+0x120");
	assert_function_at(p, base + 0x240,
			   with_maps ? "LazyCompile:*main /app/y.js:3:1" : "[jit]+0x240");
	assert_function_at(p, base + 0x300, "[jit]+0x300");
	assert_function_at(p, base + 0x400, with_maps ? "late::compiled" : "[jit]+0x400");
	if (pm) {
		perfmaps__stats(pm, &pst);
		assert_int_equal(pst.entries, 3);
		assert_int_equal(pst.maps_read, 2);
	}
	profile__free(p);
	agg__free(a);
	perfmaps__free(pm);
	procs__free(procs);
}

/*
 * A process (pid 4321 here, 9 in its own namespace) with code in anonymous
 * memory and a perf map in its root: its frames get the map's names, read at
 * the first sample and at later ones (code compiled since), so they stay after
 * it exits; an address the map does not cover, or no perf maps at all, is
 * "[jit]+0x<offset in the mapping>".
 */
static void test_jit_frames(void **state)
{
	const uint64_t base = 0x7f1000000000ull;
	char proc[128], path[256];

	(void)state;
	jit_process(proc, sizeof(proc), path, sizeof(path), base);
	map_line(path, "we", base + 0x100, 0x80, "py::hot:/app/x.py");
	map_line(path, "ae", base + 0x200, 0x40, "LazyCompile:*main /app/y.js:3:1");
	jit_frames_run(proc, path, base, true);
	map_line(path, "we", base + 0x100, 0x80, "py::hot:/app/x.py");
	map_line(path, "ae", base + 0x200, 0x40, "LazyCompile:*main /app/y.js:3:1");
	jit_frames_run(proc, path, base, false);
}

/* The leaf's function of the sample of pid whose leaf is at addr, or NULL. */
static const char *leaf_of(const struct profile *p, int pid, uint64_t addr)
{
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		const struct prof_location *l = &p->locations[s->locs[0]];

		if (s->labels[0].num == pid && l->address == addr)
			return l->function;
	}
	return NULL;
}

/*
 * Two processes with anonymous memory at one address (a parent and its forked
 * child: CPython -X perf makes its trampolines again in a child, where the
 * parent had them) share one mapping id, each with its own perf map: each
 * one's frames are named from its own map, and code the child inherited,
 * which its map does not name, from the parent's (the mapping's last to map it).
 */
static void test_jit_frames_per_process(void **state)
{
	const uint64_t base = 0x7f3000000000ull;
	const uint64_t own[] = { base + 0x120 }, inherited[] = { base + 0x420 };
	char proc[128], parent_map[256], child_map[256];
	struct procs *procs;
	struct perfmaps *pm;
	struct profile *p = profile__new();
	uint32_t parent_id, child_id;
	struct agg *a;

	(void)state;
	jit_process_pid(4331, 11, proc, sizeof(proc), parent_map, sizeof(parent_map), base);
	jit_process_pid(4332, 12, proc, sizeof(proc), child_map, sizeof(child_map), base);
	map_line(parent_map, "we", base + 0x100, 0x80, "py::parent:/app/p.py");
	map_line(parent_map, "ae", base + 0x400, 0x80, "py::inherited:/app/p.py");
	map_line(child_map, "we", base + 0x100, 0x80, "py::child:/app/c.py");
	procs = procs__new(&(struct procs_opts){ .proc_root = proc });
	pm = perfmaps__new(&(struct perfmaps_opts){ .proc_root = proc, .recheck_ns = 1 });
	a = agg__new(&(struct agg_opts){ .perfmaps = pm }, procs, NULL);
	assert_non_null(a);
	add_user(a, 4332, own, 1);	/* the child's mappings read first: the parent's last */
	add_user(a, 4331, own, 1);
	add_user(a, 4332, inherited, 1);
	assert_int_equal(procs__resolve(procs, 4331, base + 0x120, &parent_id), 0);
	assert_int_equal(procs__resolve(procs, 4332, base + 0x120, &child_id), 0);
	assert_int_equal(parent_id, child_id);	/* one mapping id for both */
	p->period_nanos = 10000000;
	assert_int_equal(agg__build(a, NULL, p), 0);
	assert_int_equal(p->nsamples, 3);
	assert_string_equal(leaf_of(p, 4331, base + 0x120), "py::parent:/app/p.py");
	assert_string_equal(leaf_of(p, 4332, base + 0x120), "py::child:/app/c.py");
	assert_string_equal(leaf_of(p, 4332, base + 0x420), "py::inherited:/app/p.py");
	profile__free(p);
	agg__free(a);
	perfmaps__free(pm);
	procs__free(procs);
}

/*
 * A sample in JIT code looks at its process's perf map at most once per
 * recheck_ns, the first sample of a new aggregate (after agg__reset) too:
 * only a process never seen is looked at at once.
 */
static void test_jit_looks_rate_limited(void **state)
{
	const uint64_t base = 0x7f2000000000ull;
	struct perfmaps_opts mo = { .recheck_ns = 3600ull * 1000000000 };
	struct procs_opts po = { 0 };
	static struct sample_event e;
	char proc[128], path[256];
	struct procs *procs;
	struct perfmaps *pm;
	struct agg *a;
	FILE *f;

	(void)state;
	jit_process(proc, sizeof(proc), path, sizeof(path), base);
	f = fopen(path, "we");
	assert_non_null(f);
	fprintf(f, "%" PRIx64 " 80 first\n", base + 0x100);
	assert_int_equal(fclose(f), 0);
	po.proc_root = mo.proc_root = proc;
	procs = procs__new(&po);
	pm = perfmaps__new(&mo);
	a = agg__new(&(struct agg_opts){ .perfmaps = pm }, procs, NULL);
	assert_non_null(a);
	memset(&e, 0, sizeof(e));
	e.pid = e.tid = 4321;
	e.ustack_len = 1;
	e.ustack[0] = base + 0x120;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(agg__add(a, &e, 10000000), 0);
		agg__reset(a);
		if (i)
			continue;
		/* code compiled since: not looked for before an hour has passed */
		f = fopen(path, "ae");
		assert_non_null(f);
		fprintf(f, "%" PRIx64 " 80 second\n", base + 0x200);
		assert_int_equal(fclose(f), 0);
	}
	e.ustack[0] = base + 0x8000;
	assert_int_equal(agg__add(a, &e, 10000000), 0);
	{
		struct perfmaps_stats st;

		perfmaps__stats(pm, &st);
		assert_int_equal(st.maps_read, 1);
		assert_int_equal(st.entries, 1);
	}
	agg__free(a);
	perfmaps__free(pm);
	procs__free(procs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_frames_by_function),
		cmocka_unit_test(test_encoders_strip),
		cmocka_unit_test(test_no_ksyms),
		cmocka_unit_test(test_option_keeps_addresses),
		cmocka_unit_test(test_shared_budget),
		cmocka_unit_test(test_python_frames),
		cmocka_unit_test(test_jit_frames),
		cmocka_unit_test(test_jit_frames_per_process),
		cmocka_unit_test(test_jit_looks_rate_limited),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
