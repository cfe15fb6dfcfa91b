// SPDX-License-Identifier: Apache-2.0
/* profleet-agent: parses the command line and hands over to the command's module. */
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "record.h"
#include "run.h"

extern char **environ;

/* --log and --log-level of either command; 0, or 2 after a message */
static int setup_log(const char *target, const char *level)
{
	int err;

	if (target && (err = log_open(target))) {
		fprintf(stderr, "profleet-agent: --log %s: %s\n", target, strerror(-err));
		return 2;
	}
	if (level && log_set_level_name(level)) {
		fprintf(stderr, "profleet-agent: --log-level %s: unknown level\n", level);
		return 2;
	}
	return 0;
}

/* The exit status of a parse that ends the program (help, version, a bad option), else -1. */
static int parse_exit(enum cli_result r)
{
	switch (r) {
	case CLI_EXIT_OK:
		return 0;
	case CLI_USAGE_ERROR:
		return 2;
	case CLI_OK:
		break;
	}
	return -1;
}

static int cmd_run(int argc, char **argv)
{
	struct run_config rc;
	int err = parse_exit(run_parse(argc, argv, environ, &rc, stdout, stderr));

	if (err >= 0)
		return err;
	if (setup_log(rc.log_target, rc.log_level))
		return 2;
	err = run_main(&rc);
	log_close();
	return err;
}

static int cmd_record(int argc, char **argv)
{
	struct record_config cfg;
	int err = parse_exit(cli_parse_record(argc, argv, environ, &cfg, stdout, stderr));

	if (err >= 0)
		return err;
	if (setup_log(cfg.log_target, cfg.log_level))
		return 2;
	err = record_run(&cfg);
	log_close();
	return err;
}

/*
 * Files held open at once: a table being built, a symbol file and its process's
 * root each hold one. A soft limit of 1024 (systemd's) is raised to the hard one.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	raise_nofile();
	if (argc < 2) {
		cli_print_main_help(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cli_print_main_help(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("profleet-agent %s\n", PROFLEET_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "record"))
		return cmd_record(argc - 1, argv + 1);
	fprintf(stderr, "profleet-agent: unknown command '%s' (see --help)\n", argv[1]);
	return 2;
}
