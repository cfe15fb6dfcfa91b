/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_RUN_H
#define AGENT_RUN_H
#include <stdio.h>
#include "cli.h"

struct run_config {
	const char *controller;
	const char *node_name;
	const char *token_file;
	const char *ca_file;
	int max_frequency;
	struct output outputs[CLI_MAX_OUTPUTS];
	int noutputs;
	struct export_target exports[CLI_MAX_EXPORTS];	/* --export: every target's profile */
	int nexports;
	double interval;
	const char *state_file;
	const char *http_listen;	/* /metrics, /healthz, /readyz; NULL = none */
	const char *cgroup_root;	/* a cgroup v2 mount to search instead of mountinfo's */
	int cgroup_mode;		/* 0 auto (v2 when mounted), 1 v1 only, 2 v2 only */
	const char *mountinfo;		/* tests: a mountinfo file; NULL = /proc/self/mountinfo */
	bool kernel_stacks;
	bool kernel_addresses;	/* --kernel-addresses: keep kernel frames' addresses */
	bool dwarf_unwind;
	bool python;		/* --python: CPython's frames walked in BPF (needs dwarf_unwind) */
	bool nodejs;		/* --nodejs: V8's JavaScript frames walked in BPF (needs dwarf_unwind) */
	uint32_t unwind_rows;	/* --unwind-rows; 0 = the default */
	const char *table_cache;	/* --table-cache: compiled unwind tables on disk; NULL = none */
	const char *log_target, *log_level;
};

/* Parses `run` arguments (argv[0] is "run"); environment first, options override. */
enum cli_result run_parse(int argc, char **argv, char **envp, struct run_config *cfg, FILE *out,
			  FILE *err);
void run_print_help(FILE *out);
/* Runs the fleet agent until SIGINT/SIGTERM; returns the exit status. */
int run_main(const struct run_config *cfg);
#endif
