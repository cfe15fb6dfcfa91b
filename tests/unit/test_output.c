// SPDX-License-Identifier: Apache-2.0
/* The protobuf writer, the pprof encoder, folded stacks and the SVG flame graph. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <unistd.h>
#include <cmocka.h>

#include "flamegraph.h"
#include "helpers.h"
#include "pbw.h"
#include "pprof.h"
#include "profile.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/profleet-out-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_varints(void **state)
{
	static const struct {
		uint64_t v;
		uint8_t bytes[10];
		size_t n;
	} cases[] = {
		{ 0, { 0x00 }, 1 },
		{ 127, { 0x7f }, 1 },
		{ 128, { 0x80, 0x01 }, 2 },
		{ 300, { 0xac, 0x02 }, 2 },
		{ 1ull << 63, { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 10 },
		{ UINT64_MAX, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pbw w;

		pbw_init(&w, 0);
		pbw_varint(&w, cases[i].v);
		assert_int_equal(w.err, 0);
		assert_int_equal(w.len, cases[i].n);
		assert_memory_equal(w.buf, cases[i].bytes, cases[i].n);
		assert_int_equal(pbw_varint_size(cases[i].v), cases[i].n);
		pbw_free(&w);
	}
}

static void test_nested_and_cap(void **state)
{
	struct pbw w;
	char big[300];
	size_t m, m2;

	(void)state;
	pbw_init(&w, 0);
	m = pbw_begin(&w, 2);		/* field 2, length-delimited: tag 0x12 */
	pbw_uint64(&w, 1, 150);		/* 08 96 01 */
	m2 = pbw_begin(&w, 3);		/* 1a len */
	pbw_string(&w, 1, "hi");	/* 0a 02 68 69 */
	pbw_end(&w, m2);
	pbw_end(&w, m);
	{
		static const uint8_t want[] = { 0x12, 0x09, 0x08, 0x96, 0x01, 0x1a, 0x04,
						0x0a, 0x02, 'h',  'i' };

		assert_int_equal(w.err, 0);
		assert_int_equal(w.len, sizeof(want));
		assert_memory_equal(w.buf, want, sizeof(want));
	}
	pbw_free(&w);

	/* a body of 300 bytes needs a two-byte length */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pbw_init(&w, 0);
	m = pbw_begin(&w, 1);
	pbw_raw(&w, big, 299);
	pbw_end(&w, m);
	assert_int_equal(w.len, 1 + 2 + 299);
	assert_int_equal(w.buf[1], 0xab);
	assert_int_equal(w.buf[2], 0x02);
	pbw_free(&w);

	/* the cap is an error, not a reallocation */
	pbw_init(&w, 16);
	pbw_raw(&w, big, 10);
	assert_int_equal(w.err, 0);
	pbw_raw(&w, big, 10);
	assert_int_equal(w.err, -E2BIG);
	assert_int_equal(w.len, 10);
	pbw_free(&w);
}

/* main -> hot (3 samples) and main -> cold (1), in process "app", plus one kernel frame */
static struct profile *sample_profile(void)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x401000, .offset = 0,
				  .file = "/usr/bin/app", .build_id = "abcdef0123" };
	struct prof_location l_main = { .mapping = 0, .address = 0x400100, .function = "main" };
	struct prof_location l_hot = { .mapping = 0, .address = 0x400200, .function = "hot<a&b>" };
	struct prof_location l_cold = { .mapping = 0, .address = 0x400300, .function = "cold" };
	struct prof_location l_k = { .mapping = PROFILE_NO_MAPPING, .kernel = true,
				     .address = 0xffffffff81000000ull, .function = "do_syscall_64" };
	struct prof_label labels[3] = {
		{ .key = "pid", .num = 42 },
		{ .key = "comm", .str = "app" },
		{ .key = "thread", .num = 43 },
	};
	uint32_t hot[2] = { 1, 0 }, cold[2] = { 2, 0 }, k[3] = { 3, 1, 0 };

	assert_non_null(p);
	p->period_nanos = 10000000;
	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 5000000000LL;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	assert_int_equal(profile__add_location(p, &l_main), 0);
	assert_int_equal(profile__add_location(p, &l_hot), 1);
	assert_int_equal(profile__add_location(p, &l_cold), 2);
	assert_int_equal(profile__add_location(p, &l_k), 3);
	assert_true(profile__add_sample(p, hot, 2, 3, labels, 3) >= 0);
	assert_true(profile__add_sample(p, cold, 2, 1, labels, 3) >= 0);
	assert_true(profile__add_sample(p, k, 3, 2, labels, 3) >= 0);
	profile__add_comment(p, "profleet.drops.ringbuf_full=%d", 7);
	return p;
}

static void test_pprof_decodes_with_protoc(void **state)
{
	struct profile *p = sample_profile();
	char path[512], cmd[1024], *out;
	uint8_t *buf;
	size_t len;
	FILE *f;

	(void)state;
	if (!have_cmd("protoc")) {
		profile__free(p);
		skip();
	}
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	snprintf(path, sizeof(path), "%s/raw.pb", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	snprintf(cmd, sizeof(cmd),
		 "protoc --proto_path=%s/proto --decode=perftools.profiles.Profile %s/proto/profile.proto < %s",
		 srcdir(), srcdir(), path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_non_null(strstr(out, "string_table: \"hot<a&b>\""));
	assert_non_null(strstr(out, "string_table: \"/usr/bin/app\""));
	assert_non_null(strstr(out, "string_table: \"abcdef0123\""));
	assert_non_null(strstr(out, "string_table: \"[kernel.kallsyms]\""));
	assert_non_null(strstr(out, "string_table: \"profleet.drops.ringbuf_full=7\""));
	assert_non_null(strstr(out, "value: 3\n  value: 30000000"));	/* count, cpu ns */
	assert_non_null(strstr(out, "period: 10000000"));
	assert_non_null(strstr(out, "time_nanos: 1700000000000000000"));
	assert_non_null(strstr(out, "num: 42"));
	free(out);
	profile__free(p);
}

static void test_pprof_read_by_go_pprof(void **state)
{
	struct profile *p = sample_profile();
	char path[512], cmd[1024], *out;

	(void)state;
	if (!have_cmd("go")) {
		profile__free(p);
		skip();
	}
	snprintf(path, sizeof(path), "%s/p.pb.gz", dir);
	assert_int_equal(pprof__write_file(p, path), 0);
	snprintf(cmd, sizeof(cmd), "go tool pprof -raw %s 2>&1", path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_non_null(strstr(out, "samples/count cpu/nanoseconds"));
	/* pprof renumbers locations: the hot sample is hot, main */
	assert_non_null(strstr(out, "3   30000000: 1 2"));
	assert_non_null(strstr(out, "pid:[42] thread:[43]"));
	assert_non_null(strstr(out, "/usr/bin/app abcdef0123"));
	assert_non_null(strstr(out, "hot<a&b>"));
	assert_non_null(strstr(out, "do_syscall_64"));
	free(out);
	snprintf(cmd, sizeof(cmd), "go tool pprof -top -sample_index=samples %s 2>&1", path);
	out = run_capture(cmd);
	assert_non_null(out);
	/* -top shortens C++-looking names: "hot", the hottest with 3 of 6 samples */
	assert_non_null(strstr(out, "3 50.00% 50.00%          5 83.33%  hot"));
	free(out);
	profile__free(p);
}

/* the smallest profile, byte by byte */
static void test_pprof_golden_bytes(void **state)
{
	struct profile *p = profile__new();
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING, .address = 0x10, .function = "f" };
	uint32_t loc = 0;
	uint8_t *buf;
	size_t len;
	static const uint8_t want[] = {
		0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,	/* sample_type {type: 1 "samples", unit: 2 "count"} */
		0x0a, 0x04, 0x08, 0x03, 0x10, 0x04,	/* sample_type {3 "cpu", 4 "nanoseconds"} */
		0x12, 0x08,				/* sample, 8 bytes: */
		0x0a, 0x01, 0x01,			/*   location_id [1] (packed) */
		0x12, 0x03, 0x05, 0x80, 0x01,		/*   value [5, 128] (packed) */
		0x2a, 0x06, 0x08, 0x01, 0x10, 0x05, 0x18, 0x05, /* function {id 1, name 5 "f", system_name 5} */
		0x22, 0x08, 0x08, 0x01, 0x18, 0x10, 0x22, 0x02, 0x08, 0x01, /* location {id 1, address 0x10, line {function_id 1}} */
		0x5a, 0x04, 0x08, 0x03, 0x10, 0x04,	/* period_type {cpu, nanoseconds} */
		0x60, 0x19,				/* period 25 */
		0x70, 0x03,				/* default_sample_type 3 "cpu" */
		0x32, 0x00,				/* string_table "" */
		0x32, 0x07, 's', 'a', 'm', 'p', 'l', 'e', 's',
		0x32, 0x05, 'c', 'o', 'u', 'n', 't',
		0x32, 0x03, 'c', 'p', 'u',
		0x32, 0x0b, 'n', 'a', 'n', 'o', 's', 'e', 'c', 'o', 'n', 'd', 's',
		0x32, 0x01, 'f',
	};

	(void)state;
	p->period_nanos = 25;
	assert_int_equal(profile__add_location(p, &l), 0);
	assert_true(profile__add_sample(p, &loc, 1, 5, NULL, 0) >= 0);	/* cpu_ns = 5 * 25 = 125? */
	p->samples[0].cpu_ns = 128;
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	free(buf);
	profile__free(p);
}

static void test_folded(void **state)
{
	struct profile *p = sample_profile();
	char out[4096] = { 0 };
	FILE *f = fmemopen(out, sizeof(out) - 1, "w");

	(void)state;
	assert_int_equal(folded__write(p, f), 0);
	fclose(f);
	assert_string_equal(out, "app;main;cold 1\n"
				 "app;main;hot<a&b> 3\n"
				 "app;main;hot<a&b>;do_syscall_64_[k] 2\n");
	profile__free(p);
}

static double rect_width(const char *svg, const char *name)
{
	char key[256];
	const char *g, *w;

	snprintf(key, sizeof(key), "data-n=\"%s\"", name);
	g = strstr(svg, key);
	assert_non_null(g);
	w = strstr(g, "<rect");
	assert_non_null(w);
	w = strstr(w, "width=\"");
	assert_non_null(w);
	return atof(w + 7);
}

static void test_svg(void **state)
{
	struct profile *p = sample_profile();
	char path[512], cmd[600];
	char *svg;
	size_t len;
	FILE *f;
	double hot, cold;

	(void)state;
	f = open_memstream(&svg, &len);
	assert_int_equal(flamegraph__write_svg(p, f, NULL), 0);
	fclose(f);
	assert_non_null(strstr(svg, "<svg"));
	/* names are escaped */
	assert_non_null(strstr(svg, "hot&lt;a&amp;b&gt;"));
	assert_null(strstr(svg, "hot<a&b>"));
	assert_non_null(strstr(svg, "(5 samples, 83.33%)"));	/* hot + its kernel child */
	hot = rect_width(svg, "hot&lt;a&amp;b&gt;");
	cold = rect_width(svg, "cold");
	assert_true(hot / cold > 4.99 && hot / cold < 5.01);
	/* deterministic */
	{
		char *svg2;
		size_t len2;
		FILE *f2 = open_memstream(&svg2, &len2);

		assert_int_equal(flamegraph__write_svg(p, f2, NULL), 0);
		fclose(f2);
		assert_int_equal(len, len2);
		assert_memory_equal(svg, svg2, len);
		free(svg2);
	}
	snprintf(path, sizeof(path), "%s/fg.svg", dir);
	f = fopen(path, "w");
	fwrite(svg, 1, len, f);
	fclose(f);
	free(svg);
	if (have_cmd("xmllint")) {
		snprintf(cmd, sizeof(cmd), "xmllint --noout %s", path);
		assert_int_equal(system(cmd), 0);
	}
	profile__free(p);
}

static void test_svg_empty(void **state)
{
	struct profile *p = profile__new();
	char *svg;
	size_t len;
	FILE *f = open_memstream(&svg, &len);

	(void)state;
	assert_int_equal(flamegraph__write_svg(p, f, NULL), 0);
	fclose(f);
	assert_non_null(strstr(svg, "no samples"));
	assert_non_null(strstr(svg, "</svg>"));
	free(svg);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varints),
		cmocka_unit_test(test_nested_and_cap),
		cmocka_unit_test(test_pprof_decodes_with_protoc),
		cmocka_unit_test(test_pprof_read_by_go_pprof),
		cmocka_unit_test(test_pprof_golden_bytes),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_svg),
		cmocka_unit_test(test_svg_empty),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
