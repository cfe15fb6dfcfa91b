/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_CLI_H
#define AGENT_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_PIDS 256
#define CLI_MAX_OUTPUTS 8
#define CLI_MAX_EXPORTS 8
#define CLI_MAX_FREQUENCY 1000
#define CLI_DEFAULT_FREQUENCY 19	/* record's samples per second per CPU */

enum out_format { FMT_AUTO = 0, FMT_PPROF, FMT_FOLDED, FMT_SVG };

struct output {
	const char *path;
	enum out_format format;	/* never FMT_AUTO after cli_parse */
};

/* Everything `profleet-agent record` can be told, by option or environment variable. */
#include "export.h"

struct record_config {
	bool all;
	int pids[CLI_MAX_PIDS];
	int npids;
	double duration;	/* seconds; 0 = until the command exits */
	bool duration_set;
	int frequency;
	struct output outputs[CLI_MAX_OUTPUTS];
	int noutputs;
	enum out_format format;	/* --format: forces every output's format */
	bool kernel_stacks;
	bool kernel_addresses;	/* --kernel-addresses: keep kernel frames' addresses */
	bool dwarf_unwind;	/* --unwinder dwarf (default) or fp */
	bool python;		/* --python: CPython's frames walked in BPF (needs dwarf_unwind) */
	bool nodejs;		/* --nodejs: V8's JavaScript frames walked in BPF (needs dwarf_unwind) */
	uint32_t unwind_rows;	/* --unwind-rows: size of the BPF unwind table array; 0 = default */
	const char *table_cache;	/* --table-cache: compiled unwind tables on disk; NULL = none */
	bool progress;		/* progress line on a terminal */
	int top;		/* rows of the top table printed at the end, 0 = none */
	const char *log_target;
	const char *log_level;
	struct export_target exports[CLI_MAX_EXPORTS];	/* --export KIND=URL */
	int nexports;
	struct export_auth export_auth;	/* --export-header, --basic-auth, ... */
	const char *service_name;	/* --service-name: the exported profiles' name */
	char **command;		/* argv after "--", NULL-terminated, or NULL */
};

enum cli_result {
	CLI_OK = 0,
	CLI_EXIT_OK,		/* --help / --version was handled: exit 0 */
	CLI_USAGE_ERROR,	/* message already printed to err: exit 2 */
};

/*
 * Parses `record` arguments (argv[0] is "record"). Environment variables
 * (PROFLEET_FREQUENCY, ...) are read first; options override them.
 * Messages go to out (help, version) and err (one line per error).
 */
enum cli_result cli_parse_record(int argc, char **argv, char **envp, struct record_config *cfg,
				 FILE *out, FILE *err);
/* Format from a file name: .pb.gz/.pb/.pprof -> pprof, .svg -> svg, .txt/.folded -> folded. */
enum out_format cli_format_from_path(const char *path);
const char *cli_format_name(enum out_format f);
void cli_print_record_help(FILE *out);
void cli_print_main_help(FILE *out);
/* Set by SIGINT or SIGTERM once cli_catch_stop_signals ran: the commands stop cleanly. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop_signals(void);
/* on/true/yes/1 and off/false/no/0, any case; 0 or -EINVAL. Every boolean option takes these. */
int cli_parse_bool(const char *val, bool *ret);

#endif
