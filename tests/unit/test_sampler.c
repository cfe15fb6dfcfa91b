// SPDX-License-Identifier: Apache-2.0
/* The sampler's load diagnostics: the verifier log's one-line reason, the kernel probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "sampler.h"

/* As libbpf 1.1 prints a refused program (cut), with its last two lines the reason. */
static const char too_large[] =
	"libbpf: prog 'walk_native': -- BEGIN PROG LOAD LOG --\n"
	"0: R1=ctx() R10=fp0\n"
	"; int walk_native(struct bpf_perf_event_data *ctx) @ oncpu.bpf.c:336\n"
	"0: (bf) r6 = r1                       ; R1=ctx() R6=ctx()\n"
	"\n"
	"BPF program is too large. Processed 1000001 insn\n"
	"processed 1000001 insns (limit 1000000) max_states_per_insn 30 total_states 42\n"
	"-- END PROG LOAD LOG --";

static void test_summary_of_a_refusal(void **state)
{
	char out[320];

	(void)state;
	assert_int_equal(sampler_verifier_summary(too_large, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "prog 'walk_native': "));
	assert_string_equal(out, "libbpf: prog 'walk_native': verifier: BPF program is too large. "
			    "Processed 1000001 insn");
	/* not the body of the log */
	assert_null(strstr(out, "R6=ctx()"));
}

static void test_summary_bounded_and_odd_input(void **state)
{
	char out[32], big[320];

	(void)state;
	/* cut to the buffer, still NUL-terminated */
	assert_int_equal(sampler_verifier_summary(too_large, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	/* not a verifier log */
	assert_int_equal(sampler_verifier_summary("libbpf: failed to load object 'x'", big,
						  sizeof(big)), -1);
	/* no end marker, and an empty log */
	assert_int_equal(sampler_verifier_summary("p: -- BEGIN PROG LOAD LOG --\nabc\n", big,
						  sizeof(big)), -1);
	assert_int_equal(sampler_verifier_summary("p: -- BEGIN PROG LOAD LOG ---- END PROG LOAD LOG --",
						  big, sizeof(big)), -1);
	/* a log cut short (before 6.4 a full buffer keeps the head): no "processed N insns" */
	assert_int_equal(sampler_verifier_summary("p: -- BEGIN PROG LOAD LOG --\n0: (bf) r6 = r1\n"
						  "1: (85) call bpf_get_current_pid_tgid#14\n"
						  "-- END PROG LOAD LOG --", big, sizeof(big)), 0);
	assert_string_equal(big, "p: verifier: refused, its log cut short");
	/* one line only */
	assert_int_equal(sampler_verifier_summary("p: -- BEGIN PROG LOAD LOG --\ninvalid func unknown#196\n"
						  "processed 3 insns\n-- END PROG LOAD LOG --", big,
						  sizeof(big)), 0);
	assert_string_equal(big, "p: verifier: invalid func unknown#196");
	/* the two lines of words above the closing line, none of the trace above them */
	assert_int_equal(sampler_verifier_summary(
				 "q: -- BEGIN PROG LOAD LOG --\n"
				 "18: (b7) r2 = 0                       ; R2=0\n"
				 "19: (7b) *(u64 *)(r1 +5200) = r2\n"
				 "invalid access to map value, value_size=2792 off=5200 size=8\n"
				 "R1 min value is outside of the allowed memory range\n"
				 "processed 18 insns (limit 1000000) max_states_per_insn 0\n"
				 "-- END PROG LOAD LOG --", big, sizeof(big)), 0);
	assert_string_equal(big, "q: verifier: invalid access to map value, value_size=2792 "
			    "off=5200 size=8 R1 min value is outside of the allowed memory range");
	/* only trace above the closing line: the closing line */
	assert_int_equal(sampler_verifier_summary("r: -- BEGIN PROG LOAD LOG --\n0: (95) exit\n"
						  "processed 1 insns (limit 1000000)\n"
						  "-- END PROG LOAD LOG --", big, sizeof(big)), 0);
	assert_string_equal(big, "r: verifier: processed 1 insns (limit 1000000)");
}

/* On this machine's kernel every required feature is there (the tier needs root and BTF). */
static void test_probe_this_kernel(void **state)
{
	struct sampler_kernel k;
	char why[256] = "";
	int err;

	(void)state;
	if (geteuid() != 0 || access("/sys/kernel/btf/vmlinux", R_OK)) {
		skip();
		return;
	}
	err = sampler__probe_kernel(&k, why, sizeof(why));
	if (err)
		print_message("probe: %s\n", why);
	assert_int_equal(err, 0);
	{
		char *rel = run_capture("uname -r");

		assert_non_null(rel);
		rel[strcspn(rel, "\n")] = '\0';
		assert_string_equal(k.release, rel);
		free(rel);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_of_a_refusal),
		cmocka_unit_test(test_summary_bounded_and_odd_input),
		cmocka_unit_test(test_probe_this_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
