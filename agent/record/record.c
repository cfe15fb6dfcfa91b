// SPDX-License-Identifier: Apache-2.0
/* `profleet-agent record`: the standalone profiler, wiring sampler -> aggregator -> writers. */
#include "cli.h"
#include "clock.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "elfsym.h"
#include "export.h"
#include "flamegraph.h"
#include "ksyms.h"
#include "log.h"
#include "pprof.h"
#include "pipeline.h"
#include "procs.h"
#include "perfmap.h"
#include "jvmsym.h"
#include "pysym.h"
#include "v8sym.h"
#include "table_cache.h"
#include "profile.h"
#include "sampler.h"
#include "unwinder.h"

struct rec_state {
	struct agg *agg;
	struct unwinder *unw;	/* the pipeline's; NULL with --unwinder fp */
	uint64_t samples;
	int64_t period_ns;	/* of the sampling frequency */
	/* distinct processes seen, for the progress line (a small open-addressing set) */
	uint32_t *pids;
	uint32_t npids_cap, npids;
};

static void note_pid(struct rec_state *st, uint32_t pid)
{
	uint32_t j;

	if (st->npids * 2 >= st->npids_cap) {
		uint32_t n = st->npids_cap ? st->npids_cap * 2 : 1024;
		uint32_t *t = calloc(n, sizeof(*t));

		if (!t)
			return;
		for (uint32_t i = 0; i < st->npids_cap; i++) {
			if (!st->pids[i])
				continue;
			for (j = st->pids[i] & (n - 1); t[j]; j = (j + 1) & (n - 1))
				;
			t[j] = st->pids[i];
		}
		free(st->pids);
		st->pids = t;
		st->npids_cap = n;
	}
	for (j = pid & (st->npids_cap - 1); st->pids[j]; j = (j + 1) & (st->npids_cap - 1))
		if (st->pids[j] == pid)
			return;
	st->pids[j] = pid;
	st->npids++;
}

/* The pipeline's consumer: after the unwinder saw the sample. */
static int consume(void *ctx, const struct sample_event *e)
{
	struct rec_state *st = ctx;

	st->samples++;
	note_pid(st, e->pid);
	agg__add(st->agg, e, st->period_ns);	/* a full table is counted inside */
	return 0;
}

/*
 * Sends the profile to every --export and waits (up to 30 s) for them to take
 * it: a standalone recording must not exit with its profile still queued.
 * Returns 0 when every exporter delivered it, else 1 (and says why).
 */
static int export_profile(const struct record_config *cfg, const struct profile *prof,
			  int64_t start_real_ns, double elapsed)
{
	struct exporter_opts eo = { 0 };
	char host[256] = "localhost", svc[256], msg[256];
	struct export_label labels[1] = { { "hostname", host } };
	int64_t from = start_real_ns / 1000000000, until = from + (int64_t)(elapsed + 0.999);
	int ret = 0;

	gethostname(host, sizeof(host) - 1);
	if (cfg->service_name) {
		snprintf(svc, sizeof(svc), "%s", cfg->service_name);
	} else if (cfg->command) {
		const char *base = strrchr(cfg->command[0], '/');

		snprintf(svc, sizeof(svc), "%s", base ? base + 1 : cfg->command[0]);
	} else {
		snprintf(svc, sizeof(svc), "%s", host);
	}
	for (int i = 0; i < cfg->nexports; i++) {
		struct exporter *e = exporter_new(&cfg->exports[i], &cfg->export_auth, &eo, msg, sizeof(msg));
		struct exporter_stats st;
		unsigned int left;

		if (!e) {
			log_error("%s", msg);
			ret = 1;
			continue;
		}
		if (exporter_submit(e, prof, svc, labels, 1, from, until, cfg->frequency)) {
			log_error("export %s: cannot encode the profile", exporter_describe(e));
			exporter_free(e);
			ret = 1;
			continue;
		}
		left = exporter_drain(e, 30000);
		exporter_stats(e, &st);
		if (st.sent) {
			log_notice("exported to %s (%" PRIu64 " retries)", exporter_describe(e), st.retries);
		} else {
			log_error("export %s: not delivered%s (%s); the profile is still in the --output files",
				  exporter_describe(e), left ? " in 30 s" : "",
				  st.last_error[0] ? st.last_error : "rejected");
			ret = 1;
		}
		exporter_free(e);
	}
	return ret;
}

/* The forked child: names itself, says so, waits at the gate, then execs. */
static void __attribute__((noreturn)) gated_child(char **argv, const char *name, int ready_fd,
						  int gate_fd)
{
	char c = 'r', msg[512];

	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (write(ready_fd, &c, 1) != 1 || read(gate_fd, &c, 1) != 1)
		_exit(127);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	execvp(argv[0], argv);
	/* the parent's threads may hold stdio's locks: no fprintf in this child */
	snprintf(msg, sizeof(msg), "profleet-agent: cannot run '%s': %s\n", argv[0],
		 strerrordesc_np(errno) ? strerrordesc_np(errno) : "error");
	if (write(STDERR_FILENO, msg, strlen(msg)) < 0) {
		/* nowhere to say it: the status tells */
	}
	_exit(127);
}

/*
 * Starts the command stopped at a gate: the caller puts its pid in the filter
 * first, so that not one of its samples is missed, then opens the gate.
 * Returns only once the child has taken the command's name: what it runs
 * before that (the end of fork, page faults, lazy binding) is the agent's
 * work, and must not be sampled as the command's.
 */
static pid_t spawn_gated(char **argv, int *ret_gate_fd)
{
	const char *base = strrchr(argv[0], '/');
	int gate[2], ready[2];
	pid_t pid;
	char c;

	if (pipe2(gate, O_CLOEXEC))
		return -errno;
	if (pipe2(ready, O_CLOEXEC)) {
		pid = -errno;
		goto out_gate;
	}
	pid = fork();
	if (pid < 0) {
		pid = -errno;
		goto out_ready;
	}
	if (pid == 0) {
		close(gate[1]);
		close(ready[0]);
		gated_child(argv, base ? base + 1 : argv[0], ready[1], gate[0]);
	}
	close(ready[1]);
	while (read(ready[0], &c, 1) < 0 && errno == EINTR)
		;
	/* a child that died before it was ready: its status says why */
	close(ready[0]);
	close(gate[0]);
	*ret_gate_fd = gate[1];
	return pid;
out_ready:
	close(ready[0]);
	close(ready[1]);
out_gate:
	close(gate[0]);
	close(gate[1]);
	return pid;
}

static bool any_alive(const int *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (kill(pids[i], 0) == 0 || errno == EPERM)
			return true;
	return false;
}

int record_write_output(const struct profile *p, const struct output *o)
{
	struct flamegraph_opts fo = { 0 };
	char tmp[4200];
	FILE *f;
	int err;

	if (o->format == FMT_PPROF)
		return pprof__write_file(p, o->path);
	if (!strcmp(o->path, "-"))
		return o->format == FMT_SVG ? flamegraph__write_svg(p, stdout, &fo) :
					      folded__write(p, stdout);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", o->path, getpid());
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	err = o->format == FMT_SVG ? flamegraph__write_svg(p, f, &fo) : folded__write(p, f);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, o->path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

struct fn_stat {
	const char *name;
	int64_t self, total;
	uint32_t seen;	/* sample index + 1 that last counted total (recursion counts once) */
};

static int cmp_self(const void *a, const void *b)
{
	const struct fn_stat *x = a, *y = b;

	if (x->self != y->self)
		return x->self < y->self ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Hottest functions by self samples; names are interned, so pointers compare. */
static void print_top(const struct profile *p, int top, FILE *out)
{
	int64_t total = profile__total(p);
	uint32_t nfn = 0, cap = p->nlocations + 1;
	struct fn_stat *fns = calloc(cap, sizeof(*fns));
	uint32_t *loc_fn = calloc(p->nlocations + 1, sizeof(*loc_fn));

	if (!fns || !loc_fn || !total)
		goto out;
	for (uint32_t i = 0; i < p->nlocations; i++) {
		uint32_t j;

		for (j = 0; j < nfn; j++)	/* few distinct names per location set: linear is ok */
			if (fns[j].name == p->locations[i].function)
				break;
		if (j == nfn)
			fns[nfn++].name = p->locations[i].function;
		loc_fn[i] = j;
		if (nfn > 50000)
			break;
	}
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		if (!s->nlocs)
			continue;
		fns[loc_fn[s->locs[0]]].self += s->count;
		for (uint32_t k = 0; k < s->nlocs; k++) {
			struct fn_stat *f = &fns[loc_fn[s->locs[k]]];

			if (f->seen != i + 1) {
				f->seen = i + 1;
				f->total += s->count;
			}
		}
	}
	qsort(fns, nfn, sizeof(*fns), cmp_self);
	fprintf(out, "  %6s %7s %8s  %s\n", "self%", "total%", "samples", "function");
	for (uint32_t i = 0; i < nfn && (int)i < top && fns[i].self; i++)
		fprintf(out, "  %5.1f%% %6.1f%% %8" PRId64 "  %s\n", 100.0 * fns[i].self / total,
			100.0 * fns[i].total / total, fns[i].self, fns[i].name);
out:
	free(fns);
	free(loc_fn);
}

/* The sampler's counters written as profile comments, "profleet.<name>=N". */
static const struct {
	const char *name;
	int cnt;
	bool unwind;		/* only with the table-driven unwinder */
} counter_comments[] = {
	{ "unwind.complete", CNT_UNWIND_COMPLETE, true },
	{ "unwind.no_table", CNT_UNWIND_NO_TABLE, true },
	{ "unwind.table_not_loaded", CNT_UNWIND_TABLE_NOT_LOADED, true },
	{ "unwind.read_fault", CNT_UNWIND_READ_FAULT, true },
	{ "unwind.depth_limit", CNT_UNWIND_DEPTH, true },
	{ "unwind.unsupported_rule", CNT_UNWIND_UNSUPPORTED, true },
	{ "unwind.fp_fallback_frames", CNT_UNWIND_FP_FALLBACK, true },
	{ "unwind.tail_call_budget", CNT_UNWIND_BUDGET, true },
	{ "unwind.walker_missing", CNT_WALKER_MISSING, true },
	{ "unwind.chain_not_entered", CNT_TAIL_CALL_FAILED, true },
	{ "unwind.user_regs_unknown", CNT_USER_REGS_UNKNOWN, true },
	{ "python.frames", CNT_PY_FRAMES, true },
	{ "python.no_process", CNT_PY_NO_PROC, true },
	{ "python.no_thread_state", CNT_PY_NO_THREAD, true },
	{ "python.read_fault", CNT_PY_READ_FAULT, true },
	{ "python.bad_code", CNT_PY_BAD_CODE, true },
	{ "jvm.frames", CNT_JVM_FRAMES, true },
	{ "jvm.no_process", CNT_JVM_NO_PROC, true },
	{ "jvm.no_blob", CNT_JVM_NO_BLOB, true },
	{ "jvm.bad_frame", CNT_JVM_BAD_FRAME, true },
	{ "v8.frames", CNT_V8_FRAMES, true },
	{ "v8.stub_frames", CNT_V8_STUBS, true },
	{ "v8.bad_frame", CNT_V8_BAD_FRAME, true },
	{ "samples.seen", CNT_SAMPLES, false },
	{ "drops.ringbuf_full", CNT_RINGBUF_FULL, false },
	{ "stack_errors.kernel_fault", CNT_KSTACK_FAULT, false },
	{ "stack_errors.user_fault", CNT_USTACK_FAULT, false },
	{ "stack_errors.user_empty", CNT_USTACK_EMPTY, false },
	{ "stack_errors.kernel_truncated", CNT_KSTACK_TRUNCATED, false },
	{ "stack_errors.user_truncated", CNT_USTACK_TRUNCATED, false },
	{ "samples.idle_skipped", CNT_IDLE, false },
};

struct named_value {
	const char *name;
	uint64_t v;
};

static void add_values(struct profile *p, const struct named_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		profile__add_comment(p, "profleet.%s=%" PRIu64, v[i].name, v[i].v);
}

static void add_drop_comments(struct profile *p, const struct sampler_stats *ss,
			      const struct agg_stats *as, const struct procs_stats *ps,
			      const struct unwinder_stats *us)
{
	const struct named_value ours[] = {
		{ "samples.recorded", as->samples - as->dropped_full },
		{ "drops.stack_table_full", as->dropped_full },
		{ "drops.task_records_lost", ss->task_lost },
		{ "frames.unmapped", as->frames_unmapped },
		{ "frames.unsymbolized", as->frames_unsymbolized },
		{ "frames.python", as->frames_python },
		{ "frames.jvm", as->frames_jvm },
		{ "frames.v8", as->frames_v8 },
		{ "frames.cut", as->frames_cut },
		{ "procs.maps_read_failed", ps->maps_read_failed },
	};

	profile__add_comment(p, "profleet.kernel=%s", ss->kernel.release);
	profile__add_comment(p, "profleet.unwinder=%s", ss->kernel.dwarf ? "dwarf" : "fp");
	if (ss->kernel.degraded[0])
		profile__add_comment(p, "profleet.degraded=%s", ss->kernel.degraded);
	if (ss->kernel.verified[0])
		profile__add_comment(p, "profleet.bpf.verified_insns=%s", ss->kernel.verified);
	for (size_t i = 0; i < sizeof(counter_comments) / sizeof(counter_comments[0]); i++)
		if (us || !counter_comments[i].unwind)
			profile__add_comment(p, "profleet.%s=%" PRIu64, counter_comments[i].name,
					     ss->counters[counter_comments[i].cnt]);
	if (us) {
		const struct named_value tables[] = {
			{ "unwind.tables_loaded", us->tables_loaded },
			{ "unwind.tables_failed", us->tables_failed },
			{ "unwind.tables_cancelled", us->tables_cancelled },
			{ "unwind.failures_reused", us->failures_reused },
			{ "unwind.executables_without_cfi", us->no_cfi },
			{ "unwind.table_bytes_peak", us->bytes_peak },
		};

		add_values(p, tables, sizeof(tables) / sizeof(tables[0]));
		profile__add_comment(p, "profleet.unwind.table_load_ms_max=%.1f",
				     us->load_ns_max / 1e6);
	}
	add_values(p, ours, sizeof(ours) / sizeof(ours[0]));
	profile__add_comment(p, "profleet.drain.pass_ms_max=%.1f", ss->drain_ns_max / 1e6);
	profile__add_comment(p, "profleet.drain.gap_ms_max=%.1f", ss->drain_gap_ns_max / 1e6);
}

/* What the perf maps named JIT code with, and what they could not give ("profleet.perfmap.*"). */
static void add_perfmap_comments(struct profile *p, const struct perfmaps_stats *s)
{
	const struct named_value v[] = {
		{ "perfmap.maps_read", s->maps_read },
		{ "perfmap.entries", s->entries },
		{ "perfmap.entries_dropped", s->entries_dropped },
		{ "perfmap.lines_malformed", s->lines_malformed },
		{ "perfmap.files_refused", s->files_refused },
		{ "perfmap.reads_capped", s->reads_capped },
		{ "perfmap.files_replaced", s->files_replaced },
		{ "perfmap.processes_forgotten", s->processes_forgotten },
		{ "perfmap.processes_full", s->processes_full },
		{ "perfmap.images_dropped", s->images_dropped },
		{ "perfmap.rebuilds", s->rebuilds },
		{ "perfmap.rebuild_lines", s->rebuild_lines },
		{ "perfmap.rebuilds_failed", s->rebuilds_failed },
	};

	add_values(p, v, sizeof(v) / sizeof(v[0]));
}

/* What HotSpot JVMs' code caches named ("profleet.jvm.*"). */
static void add_jvm_comments(struct profile *p, const struct jvmsym_stats *s)
{
	const struct named_value v[] = {
		{ "jvm.processes", s->jvms },
		{ "jvm.lookups", s->lookups },
		{ "jvm.named", s->named },
		{ "jvm.read_errors", s->read_errors },
		{ "jvm.recycled", s->recycled },
		{ "jvm.inlined", s->inlined },
		{ "jvm.inlined_cut", s->inlined_cut },
		{ "jvm.scope_errors", s->scope_errors },
		{ "jvm.no_line", s->no_line },
		{ "jvm.names_dropped", s->names_dropped },
		{ "jvm.unsupported", s->unsupported },
	};

	add_values(p, v, sizeof(v) / sizeof(v[0]));
}

/* What V8 processes' heaps named ("profleet.v8.*"). */
static void add_v8_comments(struct profile *p, const struct v8sym_stats *s,
			    const struct unwinder_stats *us)
{
	const struct named_value v[] = {
		{ "v8.processes", us ? us->v8_procs : 0 },
		{ "v8.unsupported", us ? us->v8_unsupported : 0 },
		{ "v8.lookups", s->lookups },
		{ "v8.functions_read", s->reads },
		{ "v8.read_errors", s->read_errors },
		{ "v8.no_line", s->no_line },
		{ "v8.inlined", s->inlined },
		{ "v8.inlined_cut", s->inlined_cut },
		{ "v8.code_missing", s->code_missing },
		{ "v8.scope_errors", s->scope_errors },
		{ "v8.functions_moved", s->moved },
		{ "v8.cache_evictions", s->evictions },
		{ "v8.jit_ranges_dropped", s->jit_ranges_dropped },
		{ "v8.names_dropped", s->dropped },
	};

	add_values(p, v, sizeof(v) / sizeof(v[0]));
}

/* One recording, from the sampler's start to the last output. */
struct recording {
	const struct record_config *cfg;
	struct rec_state st;
	struct pipeline pl;
	struct procs *procs;
	struct symcache *sc;
	struct pysym *pysym;	/* names of Python frames */
	struct perfmaps *perfmaps;	/* names of JIT code */
	struct jvmsym *jvmsym;	/* names of HotSpot code */
	struct v8sym *v8sym;	/* names of JavaScript functions */
	struct sampler *s;
	pid_t child;		/* the command, -1 once reaped (or none) */
	int gate;		/* write end of the command's start gate, -1 once used */
	int status;		/* the command's wait status */
	double start, elapsed;
	int64_t start_real;
};

static int check_pids(const struct record_config *cfg)
{
	for (int i = 0; i < cfg->npids; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d", cfg->pids[i]);
		if (access(path, F_OK)) {
			log_error("no process with pid %d", cfg->pids[i]);
			return -ESRCH;
		}
	}
	return 0;
}

/* Waits up to seconds for the worker's tables, draining the task records meanwhile. */
static bool settle_tables(struct recording *rc, int seconds)
{
	for (int i = 0; i < seconds * 10; i++) {
		if (unwinder__settle(rc->st.unw, 100))
			return true;
		sampler__drain(rc->s);
	}
	return false;
}

/* procs, symbols, the aggregate, the sampler and the pipeline's unwinder. 0 or -1 (logged). */
static int rec_open(struct recording *rc)
{
	const struct record_config *cfg = rc->cfg;
	struct sampler_opts so = {
		.frequency = cfg->frequency,
		.filter = cfg->all ? FILTER_ALL : FILTER_PIDS,
		.kernel_stacks = cfg->kernel_stacks,
		.user_stacks = true,
		.follow_children = cfg->command != NULL,
		.dwarf_unwind = cfg->dwarf_unwind,
		.unwind_rows = cfg->unwind_rows,
		.allow_degraded = true,
		.python = cfg->dwarf_unwind && cfg->python,
		.jvm = cfg->dwarf_unwind,
		.v8 = cfg->dwarf_unwind && cfg->nodejs,
	};

	rc->procs = procs__new(NULL);
	rc->sc = symcache__new(NULL);
	rc->pysym = pysym_new(0);
	rc->perfmaps = perfmaps__new(NULL);
	rc->jvmsym = jvmsym_new();
	rc->v8sym = v8sym_new(0);
	rc->st.agg = rc->procs && rc->sc && rc->pysym && rc->perfmaps && rc->jvmsym && rc->v8sym ?
		agg__new(&(struct agg_opts){ .kernel_addresses = cfg->kernel_addresses,
					     .pysym = rc->pysym, .perfmaps = rc->perfmaps,
					     .jvmsym = rc->jvmsym, .v8sym = rc->v8sym },
			 rc->procs, rc->sc) : NULL;
	rc->st.period_ns = 1000000000LL / cfg->frequency;
	if (!rc->st.agg) {
		log_error("out of memory");
		return -1;
	}
	rc->pl = (struct pipeline){ .procs = rc->procs, .pysym = rc->pysym,
				    .perfmaps = rc->perfmaps, .jvmsym = rc->jvmsym, .v8sym = rc->v8sym,
				    .table_cache_dir = cfg->table_cache,
				    .consume = consume, .ctx = &rc->st };
	pipeline_bind(&rc->pl, &so);
	rc->s = sampler__new(&so);
	if (!rc->s)
		return -1;	/* logged */
	if (pipeline_start_unwinder(&rc->pl, rc->s)) {
		log_error("out of memory");
		return -1;
	}
	rc->st.unw = rc->pl.unw;
	if (rc->st.unw) {
		/* a command forked from us maps our libc and loader: built first (not
		 * for --pid alone, where they would only take room from the targets') */
		if (cfg->command)
			unwinder__sync_pid(rc->st.unw, getpid(), false);
		for (int i = 0; i < cfg->npids; i++)
			unwinder__sync_pid(rc->st.unw, cfg->pids[i], false);
		/*
		 * The targets are put in the filter (rec_target) once these are built:
		 * their first samples then have their tables, and a command (forked
		 * from us, it maps the same files) finds ours done, its own the
		 * worker's first. --all does not wait (no filter to hold it back).
		 */
		if ((cfg->command || cfg->npids) && !settle_tables(rc, 30))
			log_warn("unwind tables still being built after 30 s; sampling starts");
	}
	return 0;
}

/* The --pid processes and the command (started, held at its gate) into the filter. */
static int rec_target(struct recording *rc)
{
	const struct record_config *cfg = rc->cfg;
	int err;

	for (int i = 0; i < cfg->npids; i++) {
		err = sampler__add_pid(rc->s, cfg->pids[i]);
		if (err) {
			log_error("cannot target pid %d: %s", cfg->pids[i], strerror(-err));
			return -1;
		}
	}
	if (!cfg->command)
		return 0;
	rc->child = spawn_gated(cfg->command, &rc->gate);
	if (rc->child < 0) {
		log_error("cannot start '%s': %s", cfg->command[0], strerror((int)-rc->child));
		return -1;
	}
	if (rc->st.unw)	/* followed from its exec on */
		unwinder__sync_pid(rc->st.unw, rc->child, false);
	err = sampler__add_pid(rc->s, rc->child);
	if (err) {
		log_error("cannot target the command: %s", strerror(-err));
		kill(rc->child, SIGKILL);
		return -1;
	}
	return 0;
}

static void show_progress(const struct recording *rc)
{
	if (rc->cfg->duration > 0)
		fprintf(stderr, "\r\033[K[profleet] %5.1f/%.0f s  %" PRIu64 " samples  %u processes",
			rc->elapsed, rc->cfg->duration, rc->st.samples, rc->st.npids);
	else
		fprintf(stderr, "\r\033[K[profleet] %5.1f s  %" PRIu64 " samples  %u processes",
			rc->elapsed, rc->st.samples, rc->st.npids);
}

/* Samples until the duration, the command's end, the targets' end or a signal. */
static void rec_loop(struct recording *rc)
{
	const struct record_config *cfg = rc->cfg;
	bool progress = cfg->progress && isatty(STDERR_FILENO);
	double last_progress = 0;
	int err;

	for (;;) {
		err = sampler__poll(rc->s, 100);
		if (err < 0 && err != -EINTR) {
			log_error("polling samples: %s", strerror(-err));
			break;
		}
		rc->elapsed = clock_mono_s() - rc->start;
		if (cli_stop_requested) {
			log_notice("interrupted after %.1f s; writing what was recorded", rc->elapsed);
			break;
		}
		if (cfg->duration > 0 && rc->elapsed >= cfg->duration)
			break;
		if (rc->child > 0 && waitpid(rc->child, &rc->status, WNOHANG) == rc->child) {
			rc->child = -1;
			break;
		}
		if (cfg->npids && !any_alive(cfg->pids, cfg->npids)) {
			log_notice("every target process has exited; stopping");
			break;
		}
		if (progress && rc->elapsed - last_progress >= 0.5) {
			last_progress = rc->elapsed;
			show_progress(rc);
		}
	}
	rc->elapsed = clock_mono_s() - rc->start;
	if (progress)
		fprintf(stderr, "\r\033[K");
}

static void rec_command_end(const struct recording *rc)
{
	if (rc->child > 0) {
		/* duration over or interrupted: the command keeps running, as with perf */
		log_notice("the command (pid %d) is still running; no longer profiling it", rc->child);
	} else if (rc->cfg->command) {
		if (WIFEXITED(rc->status) && WEXITSTATUS(rc->status))
			log_notice("the command exited with status %d", WEXITSTATUS(rc->status));
		else if (WIFSIGNALED(rc->status))
			log_notice("the command was killed by signal %d", WTERMSIG(rc->status));
	}
}

/* The profile's comments: what was dropped, what the unwinder and its cache did, BPF's cost. */
static void rec_comments(const struct recording *rc, struct profile *prof,
			 const struct sampler_stats *ss, const struct agg_stats *as)
{
	struct procs_stats ps;
	struct unwinder_stats us;
	struct perfmaps_stats pms;
	struct jvmsym_stats js;
	struct v8sym_stats vs;
	uint64_t run_ns = 0, run_cnt = 0;

	procs__stats(rc->procs, &ps);
	if (rc->st.unw)
		unwinder__stats(rc->st.unw, &us);
	add_drop_comments(prof, ss, as, &ps, rc->st.unw ? &us : NULL);
	perfmaps__stats(rc->perfmaps, &pms);
	add_perfmap_comments(prof, &pms);
	jvmsym_stats(rc->jvmsym, &js);
	add_jvm_comments(prof, &js);
	v8sym_stats(rc->v8sym, &vs);
	add_v8_comments(prof, &vs, rc->st.unw ? &us : NULL);
	if (rc->pl.cache) {
		struct table_cache_stats ts;

		table_cache_stats(rc->pl.cache, &ts);
		profile__add_comment(prof, "profleet.unwind.table_cache=hits %" PRIu64 " misses %"
				     PRIu64 " written %" PRIu64 " rejected %" PRIu64, ts.hits,
				     ts.misses, ts.written, ts.rejected);
	}
	/* counted only while kernel.bpf_stats_enabled=1 (bench/unwind.sh, the kernel tier) */
	if (sampler__prog_stats(rc->s, &run_ns, &run_cnt) == 0 && run_cnt) {
		profile__add_comment(prof, "profleet.bpf.run_ns=%" PRIu64, run_ns);
		profile__add_comment(prof, "profleet.bpf.run_cnt=%" PRIu64, run_cnt);
		log_info("BPF cost: %.0f ns per timer event over %" PRIu64 " events",
			 (double)run_ns / (double)run_cnt, run_cnt);
	}
}

/* Symbolizes what was recorded into *ret. 0 or -1 (logged). */
static int rec_build(const struct recording *rc, struct profile **ret, struct sampler_stats *ss,
		     struct agg_stats *as)
{
	struct ksyms *ks = ksyms__load(NULL);
	struct profile *prof;
	int err;

	if (!ks && rc->cfg->kernel_stacks)
		log_warn("kernel symbols unavailable (%s): kernel frames keep their addresses",
			 strerror(errno));
	prof = profile__new();
	if (!prof) {
		ksyms__free(ks);
		log_error("out of memory");
		return -1;
	}
	prof->period_nanos = 1000000000LL / rc->cfg->frequency;
	prof->time_nanos = rc->start_real;
	prof->duration_nanos = (int64_t)(rc->elapsed * 1e9);
	err = agg__build(rc->st.agg, ks, prof);
	ksyms__free(ks);
	if (err) {
		log_error("building the profile: %s", strerror(-err));
		profile__free(prof);
		return -1;
	}
	sampler__stats(rc->s, ss);
	agg__stats(rc->st.agg, as);
	rec_comments(rc, prof, ss, as);
	if (ss->counters[CNT_RINGBUF_FULL] || as->dropped_full || ss->task_lost)
		log_warn("dropped samples: ring buffer full %" PRIu64 ", stack table full %" PRIu64
			 ", lost mmap records %" PRIu64,
			 ss->counters[CNT_RINGBUF_FULL], as->dropped_full, ss->task_lost);
	log_info("stack errors: kernel %" PRIu64 ", user %" PRIu64 " (empty %" PRIu64
		 "), frames outside mappings %" PRIu64 ", unsymbolized %" PRIu64,
		 ss->counters[CNT_KSTACK_FAULT], ss->counters[CNT_USTACK_FAULT],
		 ss->counters[CNT_USTACK_EMPTY], as->frames_unmapped, as->frames_unsymbolized);
	*ret = prof;
	return 0;
}

/* The summary lines (and --top), on stderr when the profile itself went to stdout. */
static void rec_summary(const struct recording *rc, const struct profile *prof, uint64_t dropped)
{
	const struct record_config *cfg = rc->cfg;
	bool to_stdout = false;
	FILE *out;

	for (int i = 0; i < cfg->noutputs; i++)
		to_stdout |= !strcmp(cfg->outputs[i].path, "-");
	out = to_stdout ? stderr : stdout;
	fprintf(out, "profleet: %" PRId64 " samples from %u processes in %.1f s at %d Hz "
		     "(dropped: %" PRIu64 ")\n",
		profile__total(prof), rc->st.npids, rc->elapsed, cfg->frequency, dropped);
	for (int i = 0; i < cfg->noutputs; i++) {
		char abs[4200];
		const char *path = cfg->outputs[i].path;

		if (!strcmp(path, "-"))
			continue;
		if (!realpath(path, abs))
			snprintf(abs, sizeof(abs), "%s", path);
		fprintf(out, "profleet: wrote %s (%s)\n", abs, cli_format_name(cfg->outputs[i].format));
	}
	if (cfg->top > 0)
		print_top(prof, cfg->top, out);
}

/* Writes every --output and sends to every --export; 0, or 1 if one failed. */
static int rec_deliver(const struct recording *rc, const struct profile *prof)
{
	const struct record_config *cfg = rc->cfg;
	int ret = 0, err;

	for (int i = 0; i < cfg->noutputs; i++) {
		err = record_write_output(prof, &cfg->outputs[i]);
		if (err) {
			log_error("cannot write %s: %s", cfg->outputs[i].path, strerror(-err));
			ret = 1;
		}
	}
	if (cfg->nexports && export_profile(cfg, prof, rc->start_real, rc->elapsed))
		ret = 1;
	return ret;
}

static void rec_close(struct recording *rc)
{
	if (rc->gate >= 0)
		close(rc->gate);
	pipeline_free(&rc->pl);	/* its unwinder uses the sampler's maps */
	sampler__free(rc->s);
	agg__free(rc->st.agg);
	symcache__free(rc->sc);
	pysym_free(rc->pysym);
	perfmaps__free(rc->perfmaps);
	jvmsym_free(rc->jvmsym);
	v8sym_free(rc->v8sym);
	procs__free(rc->procs);
	free(rc->st.pids);
}

int record_run(const struct record_config *cfg)
{
	struct recording rc = { .cfg = cfg, .child = -1, .gate = -1 };
	struct profile *prof = NULL;
	struct sampler_stats ss;
	struct agg_stats as;
	int ret = 1;

	if (check_pids(cfg))
		return 1;
	cli_catch_stop_signals();
	if (rec_open(&rc) || rec_target(&rc))
		goto out;
	rc.start = clock_mono_s();
	rc.start_real = clock_real_ns();
	if (rc.gate >= 0) {
		if (write(rc.gate, "g", 1) != 1)
			log_warn("cannot start the command: %s", strerror(errno));
		close(rc.gate);
		rc.gate = -1;
	}
	log_notice("recording %s at %d Hz%s", cfg->all ? "the whole host" : cfg->command ?
		   "the command" : "the given processes", cfg->frequency,
		   cfg->duration > 0 ? "" : " until the command exits");
	rec_loop(&rc);
	sampler__stop(rc.s);
	sampler__drain(rc.s);
	rec_command_end(&rc);
	if (rec_build(&rc, &prof, &ss, &as))
		goto out;
	ret = rec_deliver(&rc, prof);
	rec_summary(&rc, prof, ss.counters[CNT_RINGBUF_FULL] + as.dropped_full);
out:
	profile__free(prof);
	rec_close(&rc);
	return ret;
}
