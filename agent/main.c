// SPDX-License-Identifier: Apache-2.0
/* profleet-agent: parses the command line and hands over to the command's module. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "record.h"

extern char **environ;

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
	if (cfg.log_target) {
		err = log_open(cfg.log_target);
		if (err) {
			fprintf(stderr, "profleet-agent: --log %s: %s\n", cfg.log_target, strerror(-err));
			return 2;
		}
	}
	if (cfg.log_level)
		log_set_level_name(cfg.log_level);
	err = record_run(&cfg);
	log_close();
	return err;
}
