// SPDX-License-Identifier: Apache-2.0
#include "clock.h"
#include "sampler.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "grow.h"
#include "log.h"
#include "oncpu.skel.h"
#include "unwind.h"

struct sampler {
	struct oncpu_bpf *skel;
	struct ring_buffer *rb;
	struct perf_buffer *pb;
	struct bpf_link **links;
	int *pfds;
	int ncpus;
	sampler_sample_fn on_sample;
	sampler_task_fn on_task;
	sampler_drained_fn on_drained;
	void *ctx;
	int epfd;
	int cb_err;
	uint64_t tasks_drained_at;	/* CLOCK_MONOTONIC ns when task records were last drained */
	uint64_t task_records, task_lost;
	uint64_t drain_end_ns, drain_ns_max, drain_gap_ns_max;
	struct sampler_kernel kernel;
	/* one drain's task records, put in time order before they are handed on */
	struct batched *batch;
	uint32_t nbatch, cap_batch;
	char *strs;		/* their strings */
	size_t nstrs, cap_strs;
	bool in_drain;		/* drain_tasks runs: a nested call (from a callback) does nothing */
};

struct batched {
	struct task_record tr;	/* .str set when handed on */
	size_t str;		/* offset in strs */
	uint32_t seq;		/* arrival: keeps records of one time in order */
};

/* perf record bodies (see perf_event.h: PERF_RECORD_*) */
struct rec_mmap2 {
	struct perf_event_header h;
	__u32 pid, tid;
	__u64 addr, len, pgoff;
	__u32 maj, min;
	__u64 ino, ino_generation;
	__u32 prot, flags;
	char filename[];
};

struct rec_comm {
	struct perf_event_header h;
	__u32 pid, tid;
	char comm[];
};

struct rec_task {
	struct perf_event_header h;
	__u32 pid, ppid, tid, ptid;
	__u64 time;
};

struct rec_lost {
	struct perf_event_header h;
	__u64 id, lost;
};

/*
 * Why a load failed, in one line. While programs load, libbpf's warnings go to
 * debug level (a refused program's verifier log runs to hundreds of lines) and
 * the telling one is kept here: the verifier's last words, else the first
 * warning that is not one of libbpf's "failed to load" epilogues.
 */
static __thread struct {
	bool loading;
	bool from_verifier;
	char why[320];
} load_ctx;

/* A line of the verifier's trace (an instruction, a source line), not its words. */
static bool trace_line(const char *line)
{
	return (*line >= '0' && *line <= '9') || *line == ';';
}

int sampler_verifier_summary(const char *msg, char *out, size_t len)
{
	const char *begin = strstr(msg, "-- BEGIN PROG LOAD LOG --");
	const char *end = begin ? strstr(begin, "-- END PROG LOAD LOG --") : NULL;
	const char *stop = NULL, *from, *p;
	int taken = 0;

	if (!begin || !end)
		return -1;
	/* the closing "processed N insns ..." line */
	for (p = strstr(begin, "\nprocessed "); p && p < end; p = strstr(p + 1, "\nprocessed "))
		stop = p + 1;
	if (!stop) {
		/* before 6.4 a full log buffer keeps the log's head: no reason in it */
		if (!memchr(begin, '\n', (size_t)(end - begin)))
			return -1;
		snprintf(out, len, "%.*sverifier: refused, its log cut short", (int)(begin - msg),
			 msg);
		return 0;
	}
	/* the verifier's words just above it: up to two lines, not its trace */
	from = stop;
	for (p = stop - 1; p > begin && taken < 2; ) {
		const char *line = p;

		while (line > begin && line[-1] != '\n')
			line--;
		if (line == begin || trace_line(line))
			break;
		if (line < p) {		/* not an empty line */
			from = line;
			taken++;
		}
		p = line - 1;
	}
	if (from == stop)	/* nothing but trace above: the closing line itself */
		snprintf(out, len, "%.*sverifier: %.*s", (int)(begin - msg), msg,
			 (int)strcspn(stop, "\n"), stop);
	else
		snprintf(out, len, "%.*sverifier: %.*s", (int)(begin - msg), msg,
			 (int)(stop - from - 1), from);
	for (char *q = out; *q; q++)	/* one line */
		if (*q == '\n' || *q == '\t')
			*q = ' ';
	return 0;
}

static void keep_load_reason(const char *msg)
{
	char sum[sizeof(load_ctx.why)];

	if (!strncmp(msg, "libbpf: ", 8))
		msg += 8;
	if (sampler_verifier_summary(msg, sum, sizeof(sum)) == 0) {
		snprintf(load_ctx.why, sizeof(load_ctx.why), "%s", sum);
		load_ctx.from_verifier = true;
		return;
	}
	if (load_ctx.from_verifier || load_ctx.why[0] || strstr(msg, "failed to load") ||
	    strstr(msg, "Retrying without BTF"))
		return;
	snprintf(load_ctx.why, sizeof(load_ctx.why), "%s", msg);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf = NULL;
	int n;

	if (level == LIBBPF_DEBUG && log_get_level() < LOG_LVL_DEBUG)
		return 0;
	n = vasprintf(&buf, fmt, ap);
	if (n < 0)
		return 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (load_ctx.loading && level == LIBBPF_WARN)
		keep_load_reason(buf);
	log_msg(level == LIBBPF_WARN && !load_ctx.loading ? LOG_LVL_WARN : LOG_LVL_DEBUG, "%s",
		buf);
	free(buf);
	return n;
}

static int cmp_batched(const void *a, const void *b)
{
	const struct batched *x = a, *y = b;

	if (x->tr.time != y->tr.time)
		return x->tr.time < y->tr.time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The records of all CPUs' buffers, handed on in time order: a child's exec and
 * mmaps (on its CPU) may sit in a buffer read before its parent's fork record
 * (on another), and must not be taken before it.
 */
/* A burst's batch is not kept: back to the first size once it is four times what a drain needs. */
static void batch_shrink(struct sampler *s)
{
	if (s->cap_batch > 1024 && s->cap_batch / 4 > s->nbatch) {
		free(s->batch);
		s->batch = NULL;
		s->cap_batch = 0;
	}
	if (s->cap_strs > (256u << 10) && s->cap_strs / 4 > s->nstrs) {
		free(s->strs);
		s->strs = NULL;
		s->cap_strs = 0;
	}
}

static void drain_tasks(struct sampler *s)
{
	if (s->in_drain)
		return;
	s->in_drain = true;
	s->tasks_drained_at = clock_mono_ns();
	s->nbatch = 0;
	s->nstrs = 0;
	perf_buffer__consume(s->pb);
	qsort(s->batch, s->nbatch, sizeof(*s->batch), cmp_batched);
	for (uint32_t i = 0; i < s->nbatch; i++) {
		s->batch[i].tr.str = s->strs + s->batch[i].str;
		if (s->on_task)
			s->on_task(s->ctx, &s->batch[i].tr);
	}
	batch_shrink(s);
	s->in_drain = false;
	if (s->on_drained)
		s->on_drained(s->ctx);
}

static int handle_sample(void *ctx, void *data, size_t size)
{
	struct sampler *s = ctx;
	const struct sample_event *e = data;
	int err;

	if (size < sizeof(struct sample_event))
		return 0;
	/*
	 * Causality: every mmap/exec before this sample must be known before it is
	 * aggregated. Samples keep arriving while we consume, so a sample newer
	 * than our last look at the task records sends us back to them first.
	 */
	if (e->time_ns > s->tasks_drained_at)
		drain_tasks(s);
	err = s->on_sample(s->ctx, data);
	if (err < 0 && !s->cb_err)
		s->cb_err = err;
	return 0;
}

/* Bounded copy of a string that may not be NUL-terminated inside the record. */
static void rec_str(char *dst, size_t cap, const char *src, const void *rec_end)
{
	size_t max = (const char *)rec_end - src, i;

	if ((const char *)rec_end < src)
		max = 0;
	for (i = 0; i + 1 < cap && i < max && src[i]; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

/* Into this drain's batch (a record that does not fit in memory is counted as lost). */
static void task_out(struct sampler *s, const struct task_record *tr)
{
	const char *str = tr->str ? tr->str : "";
	size_t n = strlen(str) + 1;

	if (grow_array((void **)&s->batch, &s->cap_batch, s->nbatch + 1, sizeof(*s->batch), 256) ||
	    grow_bytes(&s->strs, &s->cap_strs, s->nstrs + n, 16384)) {
		s->task_lost++;
		return;
	}
	memcpy(s->strs + s->nstrs, str, n);
	s->batch[s->nbatch] = (struct batched){ .tr = *tr, .str = s->nstrs, .seq = s->nbatch };
	s->nstrs += n;
	s->nbatch++;
}

static enum bpf_perf_event_ret handle_task_record(void *ctx, int cpu, struct perf_event_header *h)
{
	struct sampler *s = ctx;
	const void *end = (const char *)h + h->size;
	char str[4096];
	uint64_t time = 0;
	struct task_record tr;

	/* the sample_id trailer: u32 pid, u32 tid, u64 time */
	if (h->type != PERF_RECORD_LOST && h->size >= sizeof(*h) + 16) {
		memcpy(&time, (const char *)end - 8, 8);
		end = (const char *)end - 16;
	}

	(void)cpu;
	s->task_records++;
	switch (h->type) {
	case PERF_RECORD_MMAP2: {
		const struct rec_mmap2 *m = (const void *)h;

		if (h->size < sizeof(*m))
			break;
		rec_str(str, sizeof(str), m->filename, end);
		tr = (struct task_record){ .ev = TASK_MMAP, .pid = (int)m->pid, .time = time,
					   .str = str, .addr = m->addr, .len = m->len,
					   .pgoff = m->pgoff, .ino = m->ino, .maj = m->maj,
					   .min = m->min };
		task_out(s, &tr);
		break;
	}
	case PERF_RECORD_COMM: {
		const struct rec_comm *c = (const void *)h;

		if (h->size < sizeof(*c) || !(h->misc & PERF_RECORD_MISC_COMM_EXEC))
			break;
		rec_str(str, sizeof(str), c->comm, end);
		if (c->pid == c->tid) {
			tr = (struct task_record){ .ev = TASK_EXEC, .pid = (int)c->pid, .time = time,
						   .str = str };
			task_out(s, &tr);
		}
		break;
	}
	case PERF_RECORD_FORK: {
		const struct rec_task *t = (const void *)h;

		if (h->size >= sizeof(*t) && t->pid != t->ppid) {
			tr = (struct task_record){ .ev = TASK_FORK, .pid = (int)t->pid,
						   .ppid = (int)t->ppid, .time = time };
			task_out(s, &tr);
		}
		break;
	}
	case PERF_RECORD_EXIT: {
		const struct rec_task *t = (const void *)h;

		if (h->size >= sizeof(*t) && t->pid == t->tid) {
			tr = (struct task_record){ .ev = TASK_EXIT, .pid = (int)t->pid, .time = time };
			task_out(s, &tr);
		}
		break;
	}
	case PERF_RECORD_LOST: {
		const struct rec_lost *l = (const void *)h;

		if (h->size >= sizeof(*l))
			s->task_lost += l->lost;
		break;
	}
	default:
		break;
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static int open_cpu_clock(int cpu, int freq)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = (__u64)freq,
	};
	int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* ---- what the kernel offers ----------------------------------------------- */

struct feature {
	const char *what;	/* named in the one-line error */
	const char *since;	/* the first kernel that has it */
	int (*probe)(int arg);
	int arg;
};

static int probe_map(int type)
{
	return libbpf_probe_bpf_map_type((enum bpf_map_type)type, NULL);
}

static int probe_prog(int type)
{
	return libbpf_probe_bpf_prog_type((enum bpf_prog_type)type, NULL);
}

static int probe_perf_helper(int id)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, (enum bpf_func_id)id, NULL);
}

/* What every variant of the programs needs. */
static const struct feature required[] = {
	{ "BPF perf_event programs", "4.9", probe_prog, BPF_PROG_TYPE_PERF_EVENT },
	{ "the BPF ring buffer", "5.8", probe_map, BPF_MAP_TYPE_RINGBUF },
	{ "BPF LPM trie maps", "4.11", probe_map, BPF_MAP_TYPE_LPM_TRIE },
	{ "BPF program arrays (tail calls)", "4.2", probe_map, BPF_MAP_TYPE_PROG_ARRAY },
	{ "the bpf_probe_read_user helper", "5.5", probe_perf_helper, BPF_FUNC_probe_read_user },
	{ "the bpf_ringbuf_output helper", "5.8", probe_perf_helper, BPF_FUNC_ringbuf_output },
	{ "the bpf_get_stack helper", "4.18", probe_perf_helper, BPF_FUNC_get_stack },
};

/* PROFLEET_FAULT_INJECT=verifier (tests only): make the verifier refuse walk_native. */
static bool fault_inject_verifier(void)
{
	const char *v = getenv("PROFLEET_FAULT_INJECT");

	return v && !strcmp(v, "verifier");
}

/*
 * libbpf's feature probes answer 0 for "not allowed" as for "not there": first
 * load the smallest perf_event program (CAP_BPF and CAP_PERFMON), and tell
 * EPERM apart. -1 with errno.
 */
static int probe_allowed(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_PERF_EVENT, NULL, "GPL", insns, 2, NULL);

	if (fd < 0 && (errno == EPERM || errno == EACCES))
		return -1;
	if (fd >= 0)
		close(fd);
	return 0;
}

int sampler__probe_kernel(struct sampler_kernel *k, char *err, size_t errlen)
{
	struct utsname u;

	memset(k, 0, sizeof(*k));
	if (uname(&u) == 0)
		snprintf(k->release, sizeof(k->release), "%s", u.release);
	if (probe_allowed() < 0) {
		snprintf(err, errlen, "not allowed to load BPF programs (%s): run as root, or with "
			 "CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE", strerror(errno));
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(err, errlen, "kernel %s has no BTF at /sys/kernel/btf/vmlinux "
			 "(CONFIG_DEBUG_INFO_BTF): BPF CO-RE cannot load", k->release);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (required[i].probe(required[i].arg) == 1)
			continue;
		snprintf(err, errlen, "kernel %s lacks %s (Linux %s+)", k->release, required[i].what,
			 required[i].since);
		return -ENOTSUP;
	}
	k->task_pt_regs = probe_perf_helper(BPF_FUNC_task_pt_regs) == 1;
	return 0;
}

/* Verified instructions of each program (0 where the kernel does not say: before 5.16). */
static void read_verified(struct sampler *s)
{
	struct bpf_program *progs[] = { s->skel->progs.on_cpu_sample, s->skel->progs.walk_native,
					 s->skel->progs.walk_python, s->skel->progs.walk_jvm,
					 s->skel->progs.walk_v8 };
	char *p = s->kernel.verified, *end = p + sizeof(s->kernel.verified);

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int n;

		if (bpf_program__fd(progs[i]) < 0 ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len) ||
		    !info.verified_insns)
			continue;
		n = snprintf(p, (size_t)(end - p), "%s%s=%u", p == s->kernel.verified ? "" : " ",
			     bpf_program__name(progs[i]), info.verified_insns);
		if (n < 0 || n >= end - p)
			break;
		p += n;
		s->kernel.verified_total += info.verified_insns;
	}
}

/* Puts a loaded walker at its index of the walkers program array. 0 or -errno. */
static int set_walker(struct sampler *s, __u32 key, struct bpf_program *prog)
{
	int fd = bpf_program__fd(prog);

	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.walkers), &key, &fd, BPF_ANY)) {
		log_error("cannot put walker %s in its program array: %s", bpf_program__name(prog),
			  strerror(errno));
		return -errno;
	}
	return 0;
}

/* The interpreters' walkers of a variant, as bits. */
enum { W_PYTHON = 1, W_JVM = 2, W_V8 = 4, W_ALL = 7 };

/*
 * Opens and loads the programs of one variant: the walker chain (with the
 * interpreters' walkers of the mask walkers), or frame pointers only.
 */
static int load_variant(struct sampler *s, const struct sampler_opts *opts, bool dwarf,
			unsigned walkers, size_t rb_bytes)
{
	struct {
		unsigned bit;
		struct bpf_program *prog;
		struct bpf_map *procs;
		__u32 key;
	} w[3];
	int err;

	oncpu_bpf__destroy(s->skel);
	s->skel = oncpu_bpf__open();
	if (!s->skel) {
		err = -errno;
		log_error("cannot open the BPF object: %s", strerror(errno));
		return err;
	}
	w[0] = (typeof(w[0])){ W_PYTHON, s->skel->progs.walk_python, s->skel->maps.py_procs,
				WALKER_PYTHON };
	w[1] = (typeof(w[0])){ W_JVM, s->skel->progs.walk_jvm, s->skel->maps.jvm_procs, WALKER_JVM };
	w[2] = (typeof(w[0])){ W_V8, s->skel->progs.walk_v8, s->skel->maps.v8_procs, WALKER_V8 };
	s->skel->rodata->cfg_filter = opts->filter;
	s->skel->rodata->cfg_kernel_stacks = opts->kernel_stacks;
	s->skel->rodata->cfg_user_stacks = opts->user_stacks;
	s->skel->rodata->cfg_follow_children = opts->follow_children;
	s->skel->rodata->cfg_pids_fallback = opts->pids_fallback;
	s->skel->rodata->cfg_dwarf_unwind = dwarf;
	s->skel->rodata->cfg_have_task_pt_regs = s->kernel.task_pt_regs;
	s->skel->rodata->cfg_fault_verifier = dwarf && fault_inject_verifier();
	s->skel->rodata->cfg_wakeup_bytes = rb_bytes / 4;
	bpf_map__set_max_entries(s->skel->maps.samples, (__u32)rb_bytes);
	/* no tables with frame pointers only: keep the array tiny */
	bpf_map__set_max_entries(s->skel->maps.unwind_rows,
				 !dwarf ? 1 : opts->unwind_rows ? opts->unwind_rows : UNWIND_DEFAULT_ROWS);
	bpf_program__set_autoload(s->skel->progs.walk_native, dwarf);
	for (int i = 0; i < 3; i++) {
		bool on = dwarf && (walkers & w[i].bit);

		bpf_program__set_autoload(w[i].prog, on);
		if (!on)	/* unused: no room taken */
			bpf_map__set_max_entries(w[i].procs, 1);
	}

	load_ctx.loading = true;
	load_ctx.from_verifier = false;
	load_ctx.why[0] = '\0';
	err = oncpu_bpf__load(s->skel);
	load_ctx.loading = false;
	if (!err && load_ctx.why[0])	/* libbpf warned, yet it loaded */
		log_info("BPF load: %s", load_ctx.why);
	if (err || !dwarf)
		return err;
	err = set_walker(s, WALKER_NATIVE, s->skel->progs.walk_native);
	for (int i = 0; i < 3 && !err; i++)
		if (walkers & w[i].bit)
			err = set_walker(s, w[i].key, w[i].prog);
	return err;
}

/*
 * Loads the walker chain. Where the verifier refuses it (and the caller allows),
 * the frame-pointer variant instead, said once and kept in s->kernel.degraded;
 * any other failure (a map the kernel cannot create, say) is an error.
 */
static int load_programs(struct sampler *s, const struct sampler_opts *opts, size_t rb_bytes)
{
	/* the walker chain with every interpreter's walker asked for; where the
	 * verifier refuses, without one of them, then without two, then without
	 * any: the native walk is worth more than their frames */
	static const unsigned variants[] = { W_ALL, W_ALL & ~W_V8, W_ALL & ~W_JVM,
					     W_ALL & ~W_PYTHON, W_PYTHON, W_JVM, W_V8, 0 };
	static const struct {
		unsigned bit;
		const char *what;
	} names[] = { { W_PYTHON, "CPython walker (Python frames are not named)" },
		      { W_JVM, "HotSpot walker (Java frames are named only where a sample is)" },
		      { W_V8, "V8 walker (JavaScript frames are not named)" } };
	unsigned want = 0, walkers = 0, tried = 0;	/* tried: bit v for variant v */
	char why[sizeof(load_ctx.why)] = "";
	int err = -EINVAL;

	if (opts->dwarf_unwind)
		want = (opts->python ? W_PYTHON : 0) | (opts->jvm ? W_JVM : 0) | (opts->v8 ? W_V8 : 0);
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		unsigned v = variants[i] & want;

		if (tried & 1u << v)
			continue;	/* tried already (what was not asked for is left out) */
		if (tried && !load_ctx.from_verifier)
			break;	/* no verifier refusal to get around */
		tried |= 1u << v;
		walkers = v;
		err = load_variant(s, opts, opts->dwarf_unwind, walkers, rb_bytes);
		if (!err || !load_ctx.from_verifier)
			break;
		if (!why[0])
			snprintf(why, sizeof(why), "%s", load_ctx.why);
	}
	for (size_t i = 0; !err && i < sizeof(names) / sizeof(names[0]); i++)
		if ((want & names[i].bit) && !(walkers & names[i].bit))
			log_warn("kernel %s refused the %s: %s (the verifier's log at --log-level "
				 "debug)", s->kernel.release, names[i].what, why);
	if (err && opts->dwarf_unwind && opts->allow_degraded && load_ctx.from_verifier) {
		snprintf(s->kernel.degraded, sizeof(s->kernel.degraded),
			 "kernel %s refused the table-driven unwinder (%s): user stacks from "
			 "frame pointers only", s->kernel.release, load_ctx.why);
		log_warn("degraded: %s; code built without frame pointers loses its callers "
			 "(the verifier's log at --log-level debug)", s->kernel.degraded);
		walkers = 0;
		err = load_variant(s, opts, false, 0, rb_bytes);
	}
	s->kernel.python = !err && (walkers & W_PYTHON);
	s->kernel.jvm = !err && (walkers & W_JVM);
	s->kernel.v8 = !err && (walkers & W_V8);
	if (err)
		log_error("cannot load the BPF programs on kernel %s: %s (details at --log-level "
			  "debug)", s->kernel.release, load_ctx.why[0] ? load_ctx.why : strerror(-err));
	return err;
}

/* The dummy event's records (mmap, exec, fork, exit) and the samples' ring buffer, in one epoll set. */
static int open_buffers(struct sampler *s)
{
	struct perf_event_attr task_attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(task_attr),
		.config = PERF_COUNT_SW_DUMMY,
		.mmap = 1,
		.mmap2 = 1,
		.comm = 1,
		.comm_exec = 1,
		.task = 1,
		/*
		 * Wake up on every record (wakeup_events counts only samples, so a byte
		 * watermark): a new mapping's unwind table must be loaded before the
		 * process is sampled in it.
		 */
		.watermark = 1,
		.wakeup_watermark = 1,
		/* every record ends with (pid, tid, time): records from different CPUs can be ordered */
		.sample_id_all = 1,
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME,
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC,
	};
	struct epoll_event ev = { .events = EPOLLIN };

	/* Mappings first, so that no sample can name a mapping we never heard of. */
	s->pb = perf_buffer__new_raw(bpf_map__fd(s->skel->maps.task_events), 64, &task_attr,
				     handle_task_record, s, NULL);
	if (!s->pb) {
		log_error("cannot open the mmap/task perf events: %s", strerror(errno));
		return -errno;
	}
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.samples), handle_sample, s, NULL);
	if (!s->rb) {
		log_error("cannot open the sample ring buffer: %s", strerror(errno));
		return -errno;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(s->rb), &ev) ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, perf_buffer__epoll_fd(s->pb), &ev)) {
		log_error("epoll: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* One CPU-clock event per online CPU, the sampling program attached to each. */
static int attach_cpus(struct sampler *s, const struct sampler_opts *opts)
{
	int attached = 0;

	s->links = calloc((size_t)s->ncpus, sizeof(*s->links));
	s->pfds = calloc((size_t)s->ncpus, sizeof(*s->pfds));
	if (!s->links || !s->pfds)
		return -ENOMEM;
	for (int cpu = 0; cpu < s->ncpus; cpu++) {
		int fd = open_cpu_clock(cpu, opts->frequency);

		s->pfds[cpu] = -1;
		if (fd < 0) {
			if (fd == -ENODEV)	/* possible but offline CPU */
				continue;
			log_error("perf_event_open(cpu-clock, cpu %d): %s", cpu, strerror(-fd));
			return fd;
		}
		s->pfds[cpu] = fd;
		s->links[cpu] = bpf_program__attach_perf_event(s->skel->progs.on_cpu_sample, fd);
		if (!s->links[cpu]) {
			log_error("cannot attach to the perf event of cpu %d: %s", cpu,
				  strerror(errno));
			return -errno;
		}
		if (opts->start_disabled && ioctl(fd, PERF_EVENT_IOC_DISABLE, 0))
			return -errno;
		attached++;
	}
	if (!attached) {
		log_error("no online CPU to sample");
		return -ENODEV;
	}
	return attached;
}

/* Probes the kernel, loads the programs (the best variant it takes), attaches the tracepoints. */
static int load(struct sampler *s, const struct sampler_opts *opts, size_t rb_bytes)
{
	char why[256];
	int err = sampler__probe_kernel(&s->kernel, why, sizeof(why));

	if (err) {
		log_error("%s", why);
		return err;
	}
	err = load_programs(s, opts, rb_bytes);
	if (err)
		return err;
	s->kernel.dwarf = opts->dwarf_unwind && !s->kernel.degraded[0];
	read_verified(s);
	log_info("kernel %s: BPF programs loaded, %s user stacks%s (verified instructions: %s)",
		 s->kernel.release, s->kernel.dwarf ? "table-driven" : "frame-pointer",
		 s->kernel.task_pt_regs ? "" : ", user registers from the kernel stack",
		 s->kernel.verified[0] ? s->kernel.verified : "not reported before 5.16");
	if (opts->filter == FILTER_ALL)
		return 0;
	/* the fork/exit/exec tracepoints: children followed, the exited taken out,
	 * targeted execs noted */
	err = oncpu_bpf__attach(s->skel);
	if (err)
		log_error("cannot attach the fork tracepoints: %s", strerror(-err));
	return err;
}

struct sampler *sampler__new(const struct sampler_opts *opts)
{
	struct sampler *s;
	size_t rb_bytes;
	int err = 0;

	libbpf_set_print(libbpf_log);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->on_sample = opts->on_sample;
	s->on_task = opts->on_task;
	s->on_drained = opts->on_tasks_drained;
	s->ctx = opts->ctx;
	s->epfd = -1;
	s->ncpus = libbpf_num_possible_cpus();
	if (s->ncpus <= 0) {
		err = s->ncpus ? s->ncpus : -EINVAL;
		goto out;
	}
	/* a second of samples from every CPU (the drain may stall that long on a big
	 * table or symbol file), at least 4 MiB */
	rb_bytes = (size_t)s->ncpus * (size_t)opts->frequency * sizeof(struct sample_event);
	rb_bytes = pow2_at_least(rb_bytes < (4u << 20) ? (4u << 20) : rb_bytes);
	if (rb_bytes > (256u << 20))
		rb_bytes = 256u << 20;
	err = load(s, opts, rb_bytes);
	if (!err)
		err = open_buffers(s);
	if (!err) {
		err = attach_cpus(s, opts);
		if (err > 0) {
			log_info("sampling %d CPUs at %d Hz, ring buffer %zu KiB", err,
				 opts->frequency, rb_bytes >> 10);
			err = 0;
		}
	}
out:
	if (err) {
		sampler__free(s);
		errno = -err;
		return NULL;
	}
	return s;
}

void sampler__stop(struct sampler *s)
{
	if (!s || !s->links)
		return;
	for (int cpu = 0; cpu < s->ncpus; cpu++) {
		bpf_link__destroy(s->links[cpu]);
		s->links[cpu] = NULL;
		if (s->pfds[cpu] >= 0)
			close(s->pfds[cpu]);
		s->pfds[cpu] = -1;
	}
}

void sampler__free(struct sampler *s)
{
	if (!s)
		return;
	sampler__stop(s);
	free(s->links);
	free(s->pfds);
	if (s->epfd >= 0)
		close(s->epfd);
	ring_buffer__free(s->rb);
	perf_buffer__free(s->pb);
	oncpu_bpf__destroy(s->skel);
	free(s->batch);
	free(s->strs);
	free(s);
}

int sampler__add_pid(struct sampler *s, int pid)
{
	struct target_cfg cfg = { .sample_every = 1 };
	__u32 key = (__u32)pid;

	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.pids), &key, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

/* Writes key -> cfg unless the same rate and bits are there (which keeps the phase). */
static int put_cfg(int fd, const void *key, const struct target_cfg *cfg)
{
	struct target_cfg cur, v = { .sample_every = cfg->sample_every,
				     .policy_bits = cfg->policy_bits };

	if (bpf_map_lookup_elem(fd, key, &cur) == 0 && cur.sample_every == v.sample_every &&
	    cur.policy_bits == v.policy_bits)
		return 0;
	if (bpf_map_update_elem(fd, key, &v, BPF_ANY))
		return -errno;
	return 0;
}

int sampler__set_target(struct sampler *s, uint64_t cgroup_id, const struct target_cfg *cfg)
{
	__u64 key = cgroup_id;

	return put_cfg(bpf_map__fd(s->skel->maps.targets), &key, cfg);
}

static int cmp_pid(const void *a, const void *b)
{
	uint32_t x = ((const struct sampler_pid *)a)->pid, y = ((const struct sampler_pid *)b)->pid;

	return x < y ? -1 : x > y;
}

int sampler__pids_snapshot(struct sampler *s, uint32_t **ret, size_t *ret_n)
{
	int fd = bpf_map__fd(s->skel->maps.pids);
	__u32 key, next, *keys = malloc(PROFLEET_MAX_PIDS * sizeof(*keys));
	size_t n = 0;

	if (!keys)
		return -ENOMEM;
	while (n < PROFLEET_MAX_PIDS && bpf_map_get_next_key(fd, n ? &key : NULL, &next) == 0) {
		keys[n++] = next;
		key = next;
	}
	*ret = keys;
	*ret_n = n;
	return 0;
}

int sampler__sync_pids(struct sampler *s, struct sampler_pid *want, size_t n,
		       const uint32_t *before, size_t nbefore, size_t *ret_dropped)
{
	int fd = bpf_map__fd(s->skel->maps.pids), err = 0;
	size_t dropped = 0;

	qsort(want, n, sizeof(*want), cmp_pid);
	for (size_t i = 0; i < n; i++) {
		__u32 key = want[i].pid;
		int e = put_cfg(fd, &key, &want[i].cfg);

		if (e && !err)
			err = e;
	}
	/* only what was there before the scan: a child the kernel added since stays */
	for (size_t i = 0; i < nbefore; i++) {
		struct sampler_pid k = { .pid = before[i] };
		__u32 key = before[i];

		if (bsearch(&k, want, n, sizeof(*want), cmp_pid))
			continue;
		if (bpf_map_delete_elem(fd, &key) && errno != ENOENT) {
			if (!err)
				err = -errno;
		} else {
			dropped++;
		}
	}
	if (ret_dropped)
		*ret_dropped = dropped;
	return err;
}

int sampler__del_target(struct sampler *s, uint64_t cgroup_id)
{
	__u64 key = cgroup_id;

	if (bpf_map_delete_elem(bpf_map__fd(s->skel->maps.targets), &key) && errno != ENOENT)
		return -errno;
	return 0;
}

bool sampler__exec_targeted(struct sampler *s, int pid)
{
	__u32 key = (__u32)pid;
	__u8 v;
	int fd = bpf_map__fd(s->skel->maps.exec_targeted);

	if (bpf_map_lookup_elem(fd, &key, &v))
		return false;
	bpf_map_delete_elem(fd, &key);
	return true;
}

bool sampler__pid_targeted(struct sampler *s, int pid)
{
	struct target_cfg cfg;
	__u32 key = (__u32)pid;

	return bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.pids), &key, &cfg) == 0;
}

int sampler__del_pid(struct sampler *s, int pid)
{
	__u32 key = (__u32)pid;

	if (bpf_map_delete_elem(bpf_map__fd(s->skel->maps.pids), &key) && errno != ENOENT)
		return -errno;
	return 0;
}

int sampler__set_frequency(struct sampler *s, int hz)
{
	/*
	 * The cpu-clock event is an hrtimer: at open the kernel turns attr.sample_freq
	 * into a fixed period in nanoseconds and clears attr.freq, so what
	 * PERF_EVENT_IOC_PERIOD takes afterwards is that period, not a frequency.
	 */
	__u64 period = hz > 0 ? 1000000000ull / (__u64)hz : 0;
	int err = 0;

	for (int i = 0; i < s->ncpus; i++) {
		if (s->pfds[i] < 0)
			continue;
		if (hz <= 0) {
			if (ioctl(s->pfds[i], PERF_EVENT_IOC_DISABLE, 0))
				err = -errno;
			continue;
		}
		if (ioctl(s->pfds[i], PERF_EVENT_IOC_PERIOD, &period) ||
		    ioctl(s->pfds[i], PERF_EVENT_IOC_ENABLE, 0))
			err = -errno;
	}
	return err;
}

int sampler__drain(struct sampler *s)
{
	uint64_t t0 = clock_mono_ns();
	int n;

	if (s->drain_end_ns && t0 - s->drain_end_ns > s->drain_gap_ns_max)
		s->drain_gap_ns_max = t0 - s->drain_end_ns;
	drain_tasks(s);
	n = ring_buffer__consume(s->rb);
	s->drain_end_ns = clock_mono_ns();
	if (s->drain_end_ns - t0 > s->drain_ns_max)
		s->drain_ns_max = s->drain_end_ns - t0;
	if (s->cb_err) {
		n = s->cb_err;
		s->cb_err = 0;
	}
	return n;
}

int sampler__watch_fd(struct sampler *s, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int sampler__poll(struct sampler *s, int timeout_ms)
{
	struct epoll_event ev[3];
	int n = epoll_wait(s->epfd, ev, 3, timeout_ms);

	if (n < 0 && errno != EINTR)
		return -errno;
	return sampler__drain(s);
}

void sampler__stats(struct sampler *s, struct sampler_stats *ret)
{
	uint64_t *vals = calloc((size_t)s->ncpus, sizeof(*vals));

	memset(ret, 0, sizeof(*ret));
	ret->ncpus = (uint32_t)s->ncpus;
	ret->task_records = s->task_records;
	ret->task_lost = s->task_lost;
	ret->drain_ns_max = s->drain_ns_max;
	ret->drain_gap_ns_max = s->drain_gap_ns_max;
	ret->kernel = s->kernel;
	if (!vals)
		return;
	for (__u32 i = 0; i < CNT_MAX; i++) {
		if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.counters), &i, vals))
			continue;
		for (int cpu = 0; cpu < s->ncpus; cpu++)
			ret->counters[i] += vals[cpu];
	}
	free(vals);
}

int sampler__prog_stats(struct sampler *s, uint64_t *ret_run_ns, uint64_t *ret_run_cnt)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(s->skel->progs.on_cpu_sample), &info, &len))
		return -errno;
	*ret_run_ns = info.run_time_ns;
	*ret_run_cnt = info.run_cnt;
	return 0;
}

const struct sampler_kernel *sampler__kernel(const struct sampler *s)
{
	return &s->kernel;
}

int sampler__py_procs_fd(struct sampler *s)
{
	return s->kernel.python ? bpf_map__fd(s->skel->maps.py_procs) : -1;
}

int sampler__jvm_procs_fd(struct sampler *s)
{
	return s->kernel.jvm ? bpf_map__fd(s->skel->maps.jvm_procs) : -1;
}

int sampler__v8_procs_fd(struct sampler *s)
{
	return s->kernel.v8 ? bpf_map__fd(s->skel->maps.v8_procs) : -1;
}

int sampler__unwind_fds(struct sampler *s, int *ret_mappings_fd, int *ret_rows_fd,
			uint32_t *ret_rows_cap)
{
	*ret_mappings_fd = bpf_map__fd(s->skel->maps.exe_mappings);
	*ret_rows_fd = bpf_map__fd(s->skel->maps.unwind_rows);
	*ret_rows_cap = bpf_map__max_entries(s->skel->maps.unwind_rows);
	return 0;
}
