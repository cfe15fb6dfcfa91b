// SPDX-License-Identifier: Apache-2.0
/*
 * The record command's options, declared once in a table (after Redis'
 * config.c): each row gives the long option, its environment variable, its
 * help line and the setter, so --help, the environment and getopt can never
 * disagree.
 */
#include "cli.h"
#include "parse.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What a row sets: through its own setter, or a field of record_config of a plain kind. */
enum opt_kind {
	OPT_FUNC = 1,	/* not 0: a row that says neither FUNC nor FIELD is caught */
	OPT_BOOL,	/* on|off, true|false, ... into a bool */
	OPT_STRING,	/* a non-empty string */
	OPT_ANY_STRING,	/* a string, empty or not */
};

struct opt_def {
	const char *name;
	const char *env;
	const char *arg;	/* metavar, NULL for a flag */
	const char *help;
	enum opt_kind kind;	/* OPT_FUNC: set; else the field at off */
	int (*set)(struct record_config *cfg, const char *val, char *msg, size_t msglen);
	size_t off;
};

/* A row's target: its own setter, or a field of record_config of a plain kind. */
#define FUNC(fn) .kind = OPT_FUNC, .set = (fn)
#define FIELD(kind_, field) .kind = (kind_), .off = offsetof(struct record_config, field)

static int set_all(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (!val) {	/* --all */
		cfg->all = true;
		return 0;
	}
	if (cli_parse_bool(val, &cfg->all)) {	/* PROFLEET_ALL */
		snprintf(msg, len, "PROFLEET_ALL: '%s' is not on or off", val);
		return -EINVAL;
	}
	return 0;
}

static int parse_int(const char *val, long lo, long hi, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int add_pid(struct record_config *cfg, const char *tok, char *msg, size_t len)
{
	long v;

	if (parse_int(tok, 1, INT_MAX, &v)) {
		snprintf(msg, len, "--pid: '%s' is not a process id", tok);
		return -EINVAL;
	}
	if (cfg->npids == CLI_MAX_PIDS) {
		snprintf(msg, len, "--pid: at most %d processes", CLI_MAX_PIDS);
		return -E2BIG;
	}
	cfg->pids[cfg->npids++] = (int)v;
	return 0;
}

/* --pid 1 --pid 2, or --pid 1,2 (and PROFLEET_PID=1,2) */
static int set_pid(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	char buf[4096], *save = NULL, *tok;
	int err;

	if (strlen(val) >= sizeof(buf)) {
		snprintf(msg, len, "--pid: list too long");
		return -E2BIG;
	}
	strcpy(buf, val);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		err = add_pid(cfg, tok, msg, len);
		if (err)
			return err;
	}
	if (!cfg->npids) {
		snprintf(msg, len, "--pid: empty list");
		return -EINVAL;
	}
	return 0;
}

static int set_duration(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(val, &end);
	if (errno || end == val || *end || !isfinite(d) || d <= 0 || d > 366 * 86400.0) {
		snprintf(msg, len, "--duration: '%s' is not a number of seconds > 0", val);
		return -EINVAL;
	}
	cfg->duration = d;
	cfg->duration_set = true;
	return 0;
}

static int set_frequency(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	long v;

	if (parse_int(val, 1, CLI_MAX_FREQUENCY, &v)) {
		snprintf(msg, len, "--frequency: '%s' is not a whole number from 1 to %d", val,
			 CLI_MAX_FREQUENCY);
		return -EINVAL;
	}
	cfg->frequency = (int)v;
	return 0;
}

static int parse_format(const char *val, enum out_format *ret)
{
	if (!strcmp(val, "pprof"))
		*ret = FMT_PPROF;
	else if (!strcmp(val, "folded"))
		*ret = FMT_FOLDED;
	else if (!strcmp(val, "svg"))
		*ret = FMT_SVG;
	else
		return -EINVAL;
	return 0;
}

static int set_output(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (!*val) {
		snprintf(msg, len, "--output: empty file name");
		return -EINVAL;
	}
	if (cfg->noutputs == CLI_MAX_OUTPUTS) {
		snprintf(msg, len, "--output: at most %d outputs", CLI_MAX_OUTPUTS);
		return -E2BIG;
	}
	cfg->outputs[cfg->noutputs++] = (struct output){ .path = val, .format = FMT_AUTO };
	return 0;
}

static int set_format(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (parse_format(val, &cfg->format)) {
		snprintf(msg, len, "--format: '%s' is not one of pprof, folded, svg", val);
		return -EINVAL;
	}
	return 0;
}

int cli_parse_bool(const char *val, bool *ret)
{
	return parse_bool(val, ret);
}

static int set_unwinder(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (!strcmp(val, "dwarf"))
		cfg->dwarf_unwind = true;
	else if (!strcmp(val, "fp"))
		cfg->dwarf_unwind = false;
	else {
		snprintf(msg, len, "--unwinder: '%s' is not dwarf or fp", val);
		return -EINVAL;
	}
	return 0;
}

static int set_unwind_rows(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	long v;

	if (parse_int(val, 1024, INT_MAX, &v)) {
		snprintf(msg, len, "--unwind-rows: '%s' is not a number from 1024 to %d", val, INT_MAX);
		return -EINVAL;
	}
	cfg->unwind_rows = (uint32_t)v;
	return 0;
}

static int set_top(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	long v;

	if (parse_int(val, 0, 1000, &v)) {
		snprintf(msg, len, "--top: '%s' is not a whole number from 0 to 1000", val);
		return -EINVAL;
	}
	cfg->top = (int)v;
	return 0;
}

static int set_log_level(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	enum log_level lvl;

	if (log_level_parse(val, &lvl)) {
		snprintf(msg, len, "--log-level: '%s' is not one of error, warn, notice, info, debug",
			 val);
		return -EINVAL;
	}
	cfg->log_level = val;
	return 0;
}

static int set_export(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (cfg->nexports == CLI_MAX_EXPORTS) {
		snprintf(msg, len, "--export: at most %d", CLI_MAX_EXPORTS);
		return -E2BIG;
	}
	if (export_parse_target(val, &cfg->exports[cfg->nexports], msg, len))
		return -EINVAL;
	cfg->nexports++;
	return 0;
}

static int set_export_header(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	const char *colon = strchr(val, ':');

	if (!colon || colon == val || strpbrk(val, "\r\n")) {
		snprintf(msg, len, "--export-header: '%s' is not 'Name: value'", val);
		return -EINVAL;
	}
	if (cfg->export_auth.nheaders == EXPORT_MAX_HEADERS) {
		snprintf(msg, len, "--export-header: at most %d", EXPORT_MAX_HEADERS);
		return -E2BIG;
	}
	cfg->export_auth.headers[cfg->export_auth.nheaders++] = val;
	return 0;
}

static int set_basic_auth(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (!strchr(val, ':')) {
		snprintf(msg, len, "--basic-auth: want USER:PASSWORD");
		return -EINVAL;
	}
	cfg->export_auth.basic = val;
	return 0;
}

static int set_bearer_file(struct record_config *cfg, const char *val, char *msg, size_t len)
{
	if (access(val, R_OK)) {
		snprintf(msg, len, "--bearer-token-file: %s: %s", val, strerror(errno));
		return -EINVAL;
	}
	cfg->export_auth.bearer_file = val;
	return 0;
}

static const struct opt_def record_opts[] = {
	{ "all", "PROFLEET_ALL", NULL,
	  "profile every process on this host (the default)",
	  FUNC(set_all) },
	{ "pid", "PROFLEET_PID", "PID",
	  "profile this process and its threads (repeatable, or a comma-separated list)",
	  FUNC(set_pid) },
	{ "duration", "PROFLEET_DURATION", "SECONDS",
	  "how long to record (default 10; with a command: until it exits)",
	  FUNC(set_duration) },
	{ "frequency", "PROFLEET_FREQUENCY", "HZ",
	  "samples per second per CPU, 1 to 1000 (default 19)",
	  FUNC(set_frequency) },
	{ "output", "PROFLEET_OUTPUT", "FILE",
	  "where to write the profile (repeatable; default profile.pb.gz)",
	  FUNC(set_output) },
	{ "format", "PROFLEET_FORMAT", "FMT",
	  "pprof, folded or svg (default: from the file name: .pb.gz, .txt, .svg)",
	  FUNC(set_format) },
	{ "kernel-stacks", "PROFLEET_KERNEL_STACKS", "on|off",
	  "include kernel frames (default on)",
	  FIELD(OPT_BOOL, kernel_stacks) },
	{ "kernel-addresses", "PROFLEET_KERNEL_ADDRESSES", "on|off",
	  "keep kernel frames' addresses in the profile (default off: a kernel frame is its "
	  "function's name at address 0, so the profile does not reveal where the kernel is)",
	  FIELD(OPT_BOOL, kernel_addresses) },
	{ "unwinder", "PROFLEET_UNWINDER", "dwarf|fp",
	  "user stacks: unwind tables from .eh_frame with frame-pointer fallback (dwarf, the "
	  "default), or frame pointers only (fp)",
	  FUNC(set_unwinder) },
	{ "python", "PROFLEET_PYTHON", "on|off",
	  "name CPython's functions: its frames walked in the kernel, read from the "
	  "interpreter (default on; with --unwinder dwarf)",
	  FIELD(OPT_BOOL, python) },
	{ "nodejs", "PROFLEET_NODEJS", "on|off",
	  "name Node.js's JavaScript functions: V8's frames walked in the kernel, read from "
	  "the process (default on; with --unwinder dwarf)",
	  FIELD(OPT_BOOL, nodejs) },
	{ "unwind-rows", "PROFLEET_UNWIND_ROWS", "N",
	  "rows of the kernel's unwind table array, 16 bytes each (default 1048576)",
	  FUNC(set_unwind_rows) },
	{ "table-cache", "PROFLEET_TABLE_CACHE", "DIR",
	  "keep compiled unwind tables in DIR, by build id, for the next run (default: none)",
	  FIELD(OPT_STRING, table_cache) },
	{ "progress", "PROFLEET_PROGRESS", "on|off",
	  "progress line while recording (default on when stderr is a terminal)",
	  FIELD(OPT_BOOL, progress) },
	{ "top", "PROFLEET_TOP", "N",
	  "print the N hottest functions at the end (default 10, 0 = none)",
	  FUNC(set_top) },
	{ "export", "PROFLEET_EXPORT", "KIND=URL",
	  "also send the profile to a backend: otlp-http=http://HOST:4318, "
	  "otlp-grpc=http://HOST:4317, pyroscope=http://HOST:4040 (/ingest), "
	  "pyroscope-push=http://HOST:4040 (Connect push API) or dir=PATH (repeatable)",
	  FUNC(set_export) },
	{ "export-header", "PROFLEET_EXPORT_HEADER", "'NAME: VALUE'",
	  "an extra HTTP header for the exports (repeatable)",
	  FUNC(set_export_header) },
	{ "basic-auth", "PROFLEET_BASIC_AUTH", "USER:PASSWORD",
	  "HTTP basic authentication for the exports",
	  FUNC(set_basic_auth) },
	{ "bearer-token-file", "PROFLEET_BEARER_TOKEN_FILE", "FILE",
	  "send 'Authorization: Bearer' with this file's token (re-read at every send)",
	  FUNC(set_bearer_file) },
	{ "tenant-id", "PROFLEET_TENANT_ID", "ID",
	  "send X-Scope-OrgID: ID (multi-tenant Pyroscope)",
	  FIELD(OPT_ANY_STRING, export_auth.tenant) },
	{ "service-name", "PROFLEET_SERVICE_NAME", "NAME",
	  "the exported profiles' service name (default: the command's name, else the host name)",
	  FIELD(OPT_STRING, service_name) },
	{ "log", "PROFLEET_LOG", "TARGET",
	  "stdout, stderr (default), syslog, disable, or a file path",
	  FIELD(OPT_STRING, log_target) },
	{ "log-level", "PROFLEET_LOG_LEVEL", "LEVEL",
	  "error, warn, notice (default), info or debug",
	  FUNC(set_log_level) },
};

#define NOPTS (sizeof(record_opts) / sizeof(record_opts[0]))

/* Sets what row o of the table says from val; 0, or -errno with msg. */
static int opt_set(const struct opt_def *o, struct record_config *cfg, const char *val, char *msg,
		   size_t len)
{
	void *field = (char *)cfg + o->off;

	switch (o->kind) {
	case OPT_FUNC:
		return o->set(cfg, val, msg, len);
	case OPT_BOOL:
		if (cli_parse_bool(val, field)) {
			snprintf(msg, len, "--%s: '%s' is not on or off", o->name, val);
			return -EINVAL;
		}
		return 0;
	case OPT_STRING:
		if (!*val) {
			snprintf(msg, len, "--%s: empty", o->name);
			return -EINVAL;
		}
		/* fall through */
	case OPT_ANY_STRING:
		*(const char **)field = val;
		return 0;
	}
	snprintf(msg, len, "--%s: the option table has no setter for it", o->name);
	return -EINVAL;
}

void cli_print_main_help(FILE *out)
{
	fprintf(out,
		"Usage: profleet-agent COMMAND [OPTIONS]\n"
		"\n"
		"An eBPF CPU profiler: samples kernel and user stacks on every CPU and writes\n"
		"pprof, folded stacks or an SVG flame graph.\n"
		"\n"
		"Commands:\n"
		"  record     profile this host, some processes, or a command, then write the result\n"
		"  run        the per-node agent of a fleet: profile what profleet-controller targets\n"
		"\n"
		"Options:\n"
		"  -h, --help     this help; `profleet-agent record --help` and\n"
		"                 `profleet-agent run --help` for each command's options\n"
		"  -V, --version  print the version\n");
}

void cli_print_record_help(FILE *out)
{
	fprintf(out, "Usage: profleet-agent record [OPTIONS] [-- COMMAND [ARGS...]]\n\n"
		     "Options (each also read from the environment variable shown):\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", record_opts[i].name,
			 record_opts[i].arg ? " " : "", record_opts[i].arg ? record_opts[i].arg : "");
		fprintf(out, "  %-24s %s\n  %-24s [%s]\n", left, record_opts[i].help, "",
			record_opts[i].env);
	}
	fprintf(out, "  %-24s %s\n  %-24s %s\n", "-h, --help", "this help", "-V, --version",
		"print the version");
	fprintf(out, "\nWith -- COMMAND, the command is started, profiled with its children, and the\n"
		     "recording stops when it exits. Exit status: 0 on success, 1 on a runtime\n"
		     "error, 2 on a usage error.\n");
}

enum out_format cli_format_from_path(const char *path)
{
	size_t n = strlen(path);
	static const struct {
		const char *suffix;
		enum out_format f;
	} sfx[] = {
		{ ".pb.gz", FMT_PPROF }, { ".pprof", FMT_PPROF }, { ".pb", FMT_PPROF },
		{ ".svg", FMT_SVG },	 { ".txt", FMT_FOLDED },  { ".folded", FMT_FOLDED },
	};

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t m = strlen(sfx[i].suffix);

		if (n >= m && !strcasecmp(path + n - m, sfx[i].suffix))
			return sfx[i].f;
	}
	return FMT_AUTO;
}

const char *cli_format_name(enum out_format f)
{
	switch (f) {
	case FMT_PPROF:
		return "pprof";
	case FMT_FOLDED:
		return "folded";
	case FMT_SVG:
		return "svg";
	default:
		return "auto";
	}
}

static const char *env_lookup(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static void record_defaults(struct record_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->all = true;
	cfg->duration = 10;
	cfg->frequency = CLI_DEFAULT_FREQUENCY;
	cfg->kernel_stacks = true;
	cfg->dwarf_unwind = true;
	cfg->python = true;
	cfg->nodejs = true;
	cfg->top = 10;
	cfg->progress = true;
}

/* The PROFLEET_* variables, before the options (which win). */
static enum cli_result record_env(char **envp, struct record_config *cfg, FILE *err)
{
	char msg[256];

	for (size_t i = 0; i < NOPTS; i++) {
		const char *v = env_lookup(envp, record_opts[i].env);

		if (v && opt_set(&record_opts[i], cfg, v, msg, sizeof(msg))) {
			fprintf(err, "profleet-agent: %s (from %s)\n", msg, record_opts[i].env);
			return CLI_USAGE_ERROR;
		}
	}
	return CLI_OK;
}

/* The options; *all_given: --all was among them. */
static enum cli_result record_options(int argc, char **argv, struct record_config *cfg,
				      bool *all_given, FILE *out, FILE *err)
{
	struct option longopts[NOPTS + 3];
	char msg[256];
	int c, idx;

	for (size_t i = 0; i < NOPTS; i++)
		longopts[i] = (struct option){ record_opts[i].name,
					       record_opts[i].arg ? required_argument : no_argument,
					       NULL, 1000 + (int)i };
	longopts[NOPTS] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[NOPTS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[NOPTS + 2] = (struct option){ 0 };
	optind = 1;
	opterr = 0;
	/* '+': stop at the first non-option, so "-- cmd -x" and "cmd -x" both keep -x for cmd */
	while ((c = getopt_long(argc, argv, "+hV", longopts, &idx)) != -1) {
		if (c == 'h') {
			cli_print_record_help(out);
			return CLI_EXIT_OK;
		}
		if (c == 'V') {
			fprintf(out, "profleet-agent %s\n", PROFLEET_VERSION);
			return CLI_EXIT_OK;
		}
		if (c == '?' || c == ':') {
			if (optopt)
				fprintf(err, "profleet-agent: option -%c is unknown or needs a value "
					     "(see --help)\n", optopt);
			else
				fprintf(err, "profleet-agent: option '%s' is unknown or needs a "
					     "value (see --help)\n", argv[optind - 1]);
			return CLI_USAGE_ERROR;
		}
		c -= 1000;
		*all_given |= c == 0;
		if (opt_set(&record_opts[c], cfg, optarg, msg, sizeof(msg))) {
			fprintf(err, "profleet-agent: %s\n", msg);
			return CLI_USAGE_ERROR;
		}
	}
	if (optind < argc)
		cfg->command = &argv[optind];
	return CLI_OK;
}

/* Each output's format: --format, else its name's extension ("-" is folded). */
static enum cli_result record_formats(struct record_config *cfg, FILE *err)
{
	if (!cfg->noutputs)
		cfg->outputs[cfg->noutputs++] = (struct output){ .path = "profile.pb.gz" };
	for (int i = 0; i < cfg->noutputs; i++) {
		struct output *o = &cfg->outputs[i];

		o->format = cfg->format ? cfg->format : cli_format_from_path(o->path);
		if (o->format != FMT_AUTO)
			continue;
		if (!strcmp(o->path, "-")) {
			o->format = FMT_FOLDED;
			continue;
		}
		fprintf(err, "profleet-agent: cannot tell the format of '%s' from its name; "
			     "use --format pprof|folded|svg\n", o->path);
		return CLI_USAGE_ERROR;
	}
	return CLI_OK;
}

enum cli_result cli_parse_record(int argc, char **argv, char **envp, struct record_config *cfg,
				 FILE *out, FILE *err)
{
	bool all_given = false;
	enum cli_result r;

	record_defaults(cfg);
	r = record_env(envp, cfg, err);
	/* PROFLEET_PID means --pid, which turns --all off (below); an explicit --all wins */
	if (r == CLI_OK)
		r = record_options(argc, argv, cfg, &all_given, out, err);
	if (r != CLI_OK)
		return r;
	if (cfg->npids && cfg->command) {
		fprintf(err, "profleet-agent: --pid and a command cannot be combined\n");
		return CLI_USAGE_ERROR;
	}
	if (all_given && (cfg->npids || cfg->command)) {
		fprintf(err, "profleet-agent: --all cannot be combined with --pid or a command\n");
		return CLI_USAGE_ERROR;
	}
	if (cfg->npids || cfg->command)
		cfg->all = false;
	if (cfg->command && !cfg->duration_set)
		cfg->duration = 0;
	return record_formats(cfg, err);
}

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	cli_stop_requested = 1;
}

void cli_catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a closed socket or pipe is an error, not an exit */
}
