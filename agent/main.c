// SPDX-License-Identifier: Apache-2.0
/* profleet-agent: parses the command line and hands over to the command's module. */
#include <stdio.h>
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

int main(int argc, char **argv)
{
	struct record_config cfg;
	int err;

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
	if (!strcmp(argv[1], "run")) {
		struct run_config rc;

		switch (run_parse(argc - 1, argv + 1, environ, &rc, stdout, stderr)) {
		case CLI_EXIT_OK:
			return 0;
		case CLI_USAGE_ERROR:
			return 2;
		case CLI_OK:
			break;
		}
		if (setup_log(rc.log_target, rc.log_level))
			return 2;
		err = run_main(&rc);
		log_close();
		return err;
	}
	if (strcmp(argv[1], "record")) {
		fprintf(stderr, "profleet-agent: unknown command '%s' (see --help)\n", argv[1]);
		return 2;
	}
	switch (cli_parse_record(argc - 1, argv + 1, environ, &cfg, stdout, stderr)) {
	case CLI_EXIT_OK:
		return 0;
	case CLI_USAGE_ERROR:
		return 2;
	case CLI_OK:
		break;
	}
	if (setup_log(cfg.log_target, cfg.log_level))
		return 2;
	err = record_run(&cfg);
	log_close();
	return err;
}
