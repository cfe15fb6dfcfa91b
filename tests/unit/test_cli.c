// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "run.h"

/* Parses a space-separated command line with the given environment. */
static enum cli_result parse(const char *line, char **envp, struct record_config *cfg,
			     char *errbuf, size_t errlen)
{
	static char buf[1024];
	static char *argv[64];
	int argc = 0;
	FILE *out = fopen("/dev/null", "w"), *err = fmemopen(errbuf, errlen, "w");
	enum cli_result r;

	memset(errbuf, 0, errlen);
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	r = cli_parse_record(argc, argv, envp, cfg, out, err);
	fclose(out);
	fclose(err);
	return r;
}

/* The same for `run`. */
static enum cli_result parse_run(const char *line, char **envp, struct run_config *cfg,
				 char *errbuf, size_t errlen)
{
	static char buf[1024];
	static char *argv[64];
	int argc = 0;
	FILE *out = fopen("/dev/null", "w"), *err = fmemopen(errbuf, errlen, "w");
	enum cli_result r;

	memset(errbuf, 0, errlen);
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	r = run_parse(argc, argv, envp, cfg, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void test_run(void **state)
{
	char *env[] = { "NODE_NAME=from-downward-api", "PROFLEET_MAX_FREQUENCY=99",
			"PROFLEET_CGROUP_MODE=v1", "PROFLEET_KERNEL_ADDRESSES=true", NULL };
	char *env_bad[] = { "PROFLEET_INTERVAL=soon", NULL };
	struct run_config c;
	char err[256];

	(void)state;
	assert_int_equal(parse_run("run --controller ws://c:7470 --node-name n1", NULL, &c, err,
				   sizeof(err)), CLI_OK);
	assert_string_equal(c.controller, "ws://c:7470");
	assert_string_equal(c.node_name, "n1");
	assert_int_equal(c.max_frequency, 250);
	assert_true(c.interval == 60);
	assert_true(c.kernel_stacks && c.dwarf_unwind);
	assert_false(c.kernel_addresses);	/* KASLR: stripped unless asked */
	assert_true(c.python);
	assert_string_equal(c.token_file, "/var/run/secrets/profleet/token");
	assert_int_equal(c.cgroup_mode, 0);

	/* every boolean option takes the same words as record's */
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --kernel-stacks off", NULL,
				   &c, err, sizeof(err)), CLI_OK);
	assert_false(c.kernel_stacks);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --kernel-stacks ON", NULL,
				   &c, err, sizeof(err)), CLI_OK);
	assert_true(c.kernel_stacks);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --kernel-stacks maybe",
				   NULL, &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_int_equal(parse_run("run --controller ws://c:1 -o a.pb.gz --output b.svg --interval 5 "
				   "--unwinder fp --kernel-stacks false --cgroup-mode v2", env, &c, err,
				   sizeof(err)), CLI_OK);
	assert_string_equal(c.node_name, "from-downward-api");	/* NODE_NAME */
	assert_int_equal(c.max_frequency, 99);
	assert_int_equal(c.noutputs, 2);
	assert_int_equal(c.outputs[0].format, FMT_PPROF);
	assert_int_equal(c.outputs[1].format, FMT_SVG);
	assert_true(c.interval == 5);
	assert_false(c.dwarf_unwind);
	assert_false(c.kernel_stacks);
	assert_true(c.kernel_addresses);	/* PROFLEET_KERNEL_ADDRESSES */
	assert_int_equal(c.cgroup_mode, 2);	/* the option wins over the environment */
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --kernel-addresses maybe",
				   NULL, &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--kernel-addresses"));
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --python off", NULL,
				   &c, err, sizeof(err)), CLI_OK);
	assert_false(c.python);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --python sometimes",
				   NULL, &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--python"));
	/* --nodejs: not --node-name's abbreviation, nor the other way round */
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n", NULL, &c, err,
				   sizeof(err)), CLI_OK);
	assert_true(c.nodejs);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --nodejs off", NULL,
				   &c, err, sizeof(err)), CLI_OK);
	assert_false(c.nodejs);
	assert_string_equal(c.node_name, "n");
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --nodejs later",
				   NULL, &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--nodejs"));

	assert_int_equal(parse_run("run --node-name n", NULL, &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--controller"));
	assert_int_equal(parse_run("run --controller ws://c:1", NULL, &c, err, sizeof(err)),
			 CLI_USAGE_ERROR);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --max-frequency 1001", NULL,
				   &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--max-frequency"));
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --cgroup-mode v3", NULL, &c,
				   err, sizeof(err)), CLI_USAGE_ERROR);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --bogus", NULL, &c, err,
				   sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n extra", NULL, &c, err,
				   sizeof(err)), CLI_USAGE_ERROR);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n", env_bad, &c, err,
				   sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--interval soon"));
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --unwind-rows 4096", NULL,
				   &c, err, sizeof(err)), CLI_OK);
	assert_int_equal(c.unwind_rows, 4096);
	assert_int_equal(parse_run("run --controller ws://c:1 --node-name n --unwind-rows 12", NULL,
				   &c, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--unwind-rows 12"));
	assert_int_equal(parse_run("run --help", NULL, &c, err, sizeof(err)), CLI_EXIT_OK);
}

static void test_defaults(void **state)
{
	struct record_config cfg;
	char e[256];

	(void)state;
	assert_int_equal(parse("record", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_true(cfg.all);
	assert_int_equal(cfg.frequency, 19);
	assert_true(cfg.duration == 10.0);
	assert_true(cfg.kernel_stacks);
	assert_false(cfg.kernel_addresses);
	assert_int_equal(cfg.noutputs, 1);
	assert_string_equal(cfg.outputs[0].path, "profile.pb.gz");
	assert_int_equal(cfg.outputs[0].format, FMT_PPROF);
	assert_null(cfg.command);
	assert_int_equal(cfg.unwind_rows, 0);	/* the sampler's default */
	assert_int_equal(parse("record --unwind-rows 2048", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_int_equal(cfg.unwind_rows, 2048);
	assert_int_equal(parse("record --unwind-rows 100", NULL, &cfg, e, sizeof(e)), CLI_USAGE_ERROR);
	assert_non_null(strstr(e, "--unwind-rows"));
	assert_int_equal(parse("record --kernel-addresses on", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_true(cfg.kernel_addresses);
	assert_true(cfg.python);
	assert_int_equal(parse("record --python off", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_false(cfg.python);
	assert_int_equal(parse("record --python perhaps", NULL, &cfg, e, sizeof(e)),
			 CLI_USAGE_ERROR);
	assert_true(cfg.nodejs);
	assert_int_equal(parse("record --nodejs off", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_false(cfg.nodejs);
	assert_int_equal(parse("record --nodejs perhaps", NULL, &cfg, e, sizeof(e)),
			 CLI_USAGE_ERROR);
}

static void test_options(void **state)
{
	struct record_config cfg;
	char e[256];

	(void)state;
	assert_int_equal(parse("record --pid 12 --pid 34,56 --frequency 99 --duration 2.5 "
			       "--output a.svg --output b.txt --output c.pb.gz --kernel-stacks off",
			       NULL, &cfg, e, sizeof(e)),
			 CLI_OK);
	assert_false(cfg.all);
	assert_int_equal(cfg.npids, 3);
	assert_int_equal(cfg.pids[0], 12);
	assert_int_equal(cfg.pids[2], 56);
	assert_int_equal(cfg.frequency, 99);
	assert_true(cfg.duration == 2.5);
	assert_false(cfg.kernel_stacks);
	assert_int_equal(cfg.noutputs, 3);
	assert_int_equal(cfg.outputs[0].format, FMT_SVG);
	assert_int_equal(cfg.outputs[1].format, FMT_FOLDED);
	assert_int_equal(cfg.outputs[2].format, FMT_PPROF);

	assert_int_equal(parse("record --output x.data --format svg", NULL, &cfg, e, sizeof(e)),
			 CLI_OK);
	assert_int_equal(cfg.outputs[0].format, FMT_SVG);

	/* the rows that set a field of record_config without a setter of their own */
	assert_int_equal(parse("record --progress off --kernel-addresses on --table-cache /tc "
			       "--service-name svc --tenant-id t1 --log stdout",
			       NULL, &cfg, e, sizeof(e)),
			 CLI_OK);
	assert_false(cfg.progress);
	assert_true(cfg.kernel_addresses);
	assert_string_equal(cfg.table_cache, "/tc");
	assert_string_equal(cfg.service_name, "svc");
	assert_string_equal(cfg.export_auth.tenant, "t1");
	assert_string_equal(cfg.log_target, "stdout");
}

static void test_command(void **state)
{
	struct record_config cfg;
	char e[256];

	(void)state;
	assert_int_equal(parse("record --frequency 50 -- sleep -x 1", NULL, &cfg, e, sizeof(e)),
			 CLI_OK);
	assert_non_null(cfg.command);
	assert_string_equal(cfg.command[0], "sleep");
	assert_string_equal(cfg.command[1], "-x");
	assert_false(cfg.all);
	assert_true(cfg.duration == 0);	/* until the command exits */
	assert_int_equal(parse("record --duration 3 -- true", NULL, &cfg, e, sizeof(e)), CLI_OK);
	assert_true(cfg.duration == 3);
}

static void test_environment(void **state)
{
	char *env[] = { "PROFLEET_FREQUENCY=77", "PROFLEET_OUTPUT=env.svg", "PROFLEET_PID=9",
			"PROFLEET_KERNEL_STACKS=off", NULL };
	struct record_config cfg;
	char e[256];

	(void)state;
	assert_int_equal(parse("record", env, &cfg, e, sizeof(e)), CLI_OK);
	assert_int_equal(cfg.frequency, 77);
	assert_string_equal(cfg.outputs[0].path, "env.svg");
	assert_int_equal(cfg.npids, 1);
	assert_false(cfg.all);
	assert_false(cfg.kernel_stacks);
	/* the option wins over the environment */
	assert_int_equal(parse("record --frequency 5", env, &cfg, e, sizeof(e)), CLI_OK);
	assert_int_equal(cfg.frequency, 5);

	char *bad[] = { "PROFLEET_FREQUENCY=fast", NULL };
	assert_int_equal(parse("record", bad, &cfg, e, sizeof(e)), CLI_USAGE_ERROR);
	assert_non_null(strstr(e, "PROFLEET_FREQUENCY"));
}

static void test_errors(void **state)
{
	static const char *const bad[] = {
		"record --frequency 0",	     "record --frequency 1001", "record --frequency 12x",
		"record --duration -1",	     "record --duration abc",	"record --pid 0",
		"record --pid abc",	     "record --pid 1 -- true",	"record --all --pid 3",
		"record --format png",	     "record --output x.data",	"record --bogus",
		"record --kernel-stacks maybe", "record --log-level loud", "record --frequency",
		"record --progress maybe",   "record --kernel-addresses 2",
	};
	struct record_config cfg;
	char e[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], NULL, &cfg, e, sizeof(e)), CLI_USAGE_ERROR);
		/* one line, naming the problem */
		assert_true(strlen(e) > 10);
		assert_non_null(strchr(e, '\n'));
		assert_null(strchr(strchr(e, '\n') + 1, '\n'));
	}
}

static void test_help_version(void **state)
{
	struct record_config cfg;
	char e[256];

	(void)state;
	assert_int_equal(parse("record --help", NULL, &cfg, e, sizeof(e)), CLI_EXIT_OK);
	assert_int_equal(parse("record --version", NULL, &cfg, e, sizeof(e)), CLI_EXIT_OK);
}

static void test_help_lists_every_env(void **state)
{
	char buf[8192] = { 0 };
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	(void)state;
	cli_print_record_help(f);
	fclose(f);
	assert_non_null(strstr(buf, "--frequency HZ"));
	assert_non_null(strstr(buf, "PROFLEET_FREQUENCY"));
	assert_non_null(strstr(buf, "PROFLEET_LOG_LEVEL"));
	assert_non_null(strstr(buf, "-- COMMAND"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),    cmocka_unit_test(test_options),
		cmocka_unit_test(test_command),	    cmocka_unit_test(test_environment),
		cmocka_unit_test(test_errors),	    cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_help_lists_every_env),
		cmocka_unit_test(test_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
