// SPDX-License-Identifier: Apache-2.0
/* Folded stacks and the SVG flame graph. */
#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "flamegraph.h"
#include "helpers.h"
#include "profile.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "fg");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static int add_fn(struct profile *p, const char *name, bool kernel)
{
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING,
				   .frame = kernel ? PROF_FRAME_KERNEL : PROF_FRAME_NATIVE,
				   .address = 0x1000 + p->nlocations, .function = name };
	int idx = profile__add_location(p, &l);

	assert_true(idx >= 0);
	return idx;
}

/* Adds a sample; stack given root first, as people read it, ending with -1. */
static void add_stack(struct profile *p, const char *comm, int pid, int64_t count, ...)
{
	struct prof_label labels[2] = { { .key = "pid", .num = pid }, { .key = "comm", .str = comm } };
	uint32_t root_first[64], leaf_first[64], n = 0;
	va_list ap;
	int loc;

	va_start(ap, count);
	while ((loc = va_arg(ap, int)) >= 0)
		root_first[n++] = (uint32_t)loc;
	va_end(ap);
	for (uint32_t i = 0; i < n; i++)
		leaf_first[i] = root_first[n - 1 - i];
	assert_true(profile__add_sample(p, leaf_first, n, count, labels, comm ? 2 : 1) >= 0);
}

static char *render_folded(const struct profile *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(folded__write(p, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static char *render_svg(const struct profile *p, const struct flamegraph_opts *o, size_t *ret_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(flamegraph__write_svg(p, f, o), 0);
	assert_int_equal(fclose(f), 0);
	if (ret_len)
		*ret_len = len;
	return text;
}

static void test_folded_exact(void **state)
{
	struct profile *p = profile__new();
	int m, hot, cold, sys, semi, colon, hotoff, worker;
	char *out;

	(void)state;
	p->period_nanos = 1;
	m = add_fn(p, "main", false);
	hot = add_fn(p, "hot", false);
	cold = add_fn(p, "cold", false);
	sys = add_fn(p, "do_syscall_64", true);
	semi = add_fn(p, "a;b\nc", false);	/* folds to "a:b c" ... */
	colon = add_fn(p, "a:b c", false);	/* ... which is this one: merged */
	hotoff = add_fn(p, "hot+0x10", false);
	worker = add_fn(p, "worker", false);

	add_stack(p, "app", 1, 3, m, hot, -1);
	add_stack(p, "app", 2, 4, m, hot, -1);		/* another pid, same folded stack */
	add_stack(p, "app", 1, 1, m, cold, -1);
	add_stack(p, "app", 1, 2, m, hot, sys, -1);
	add_stack(p, "app", 1, 1, m, semi, -1);
	add_stack(p, "app", 1, 2, m, colon, -1);
	add_stack(p, "app", 1, 1, m, hotoff, -1);
	add_stack(p, NULL, 9, 1, m, worker, -1);	/* no comm: starts at the root frame */
	add_stack(p, "app", 1, 0, m, hot, -1);		/* zero: left out */
	add_stack(p, NULL, 9, 2, -1);			/* nothing at all */
	add_stack(p, "app", 1, 1, -1);			/* a comm and no frames */

	out = render_folded(p);
	/*
	 * Sorted frame by frame, so "hot" and everything above it come before
	 * "hot+0x10" (sort(1) on whole lines would put '+' before ';').
	 */
	assert_string_equal(out, "[unknown] 2\n"
				 "app 1\n"
				 "app;main;a:b c 3\n"
				 "app;main;cold 1\n"
				 "app;main;hot 7\n"
				 "app;main;hot;do_syscall_64_[k] 2\n"
				 "app;main;hot+0x10 1\n"
				 "main;worker 1\n");
	free(out);
	profile__free(p);
}

static void test_folded_empty(void **state)
{
	struct profile *p = profile__new();
	char *out;

	(void)state;
	out = render_folded(p);
	assert_string_equal(out, "");
	free(out);
	profile__free(p);
}

/* Profiles put together by hand can hold what the aggregator never writes. */
static void test_folded_odd_input(void **state)
{
	struct profile *p = profile__new();
	int m, empty;
	char *out, *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	m = add_fn(p, "main", false);
	empty = add_fn(p, "x", false);
	p->locations[empty].function = "";	/* an empty name would make "main;" */
	add_stack(p, "", 1, 2, m, empty, -1);	/* an empty comm is no comm */
	out = render_folded(p);
	assert_string_equal(out, "main;[unknown] 2\n");
	free(out);

	/* a location index past the end is refused, and nothing is written */
	p->samples[0].locs[0] = 99;
	f = open_memstream(&text, &len);
	assert_int_equal(folded__write(p, f), -EINVAL);
	assert_int_equal(flamegraph__write_svg(p, f, NULL), -EINVAL);
	fclose(f);
	assert_int_equal(len, 0);
	free(text);
	profile__free(p);
}

static int cmp_frames(const char *a, const char *b)
{
	/* frame by frame: ';' and the end of the stack sort before any byte */
	for (;; a++, b++) {
		int ca = *a == ';' || *a == ' ' ? -1 : (unsigned char)*a;
		int cb = *b == ';' || *b == ' ' ? -1 : (unsigned char)*b;

		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (*a == ' ')
			return 0;
	}
}

/* 20k samples, 1000 distinct folded stacks of depth 40: merged and sorted. */
static void test_folded_many(void **state)
{
	struct profile *p = profile__new();
	uint32_t stack[40];
	int64_t total = 0, sum = 0;
	char *out, *line, *prev = NULL;
	size_t lines = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fn_%03d", i);
		add_fn(p, name, i >= 190);
	}
	for (uint32_t s = 0; s < 20000; s++) {
		struct prof_label l = { .key = "comm", .str = s % 1000 < 500 ? "even" : "odd" };
		uint32_t pat = s % 1000;

		for (uint32_t k = 0; k < 40; k++)
			stack[k] = (pat * 13 + k * 7) % 200;
		stack[0] = pat % 200;
		stack[1] = pat / 200;	/* leaf and caller: different for every pattern */
		assert_true(profile__add_sample(p, stack, 40, 1 + s % 3, &l, 1) >= 0);
		total += 1 + s % 3;
	}
	out = render_folded(p);
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		const char *sp = strrchr(line, ' ');

		assert_non_null(sp);
		sum += atoll(sp + 1);
		assert_int_equal(strncmp(line, "even;", 5) && strncmp(line, "odd;", 4), 0);
		if (prev)
			assert_true(cmp_frames(prev, line) < 0);
		prev = line;
		lines++;
	}
	assert_int_equal(lines, 1000);
	assert_int_equal(sum, total);
	free(out);
	profile__free(p);
}

/* main -> a (3), main -> b (1), main -> a -> sys [kernel] (1 of a's 3) */
static struct profile *ratio_profile(void)
{
	struct profile *p = profile__new();
	int m, a, b, sys;

	p->period_nanos = 1;
	m = add_fn(p, "main", false);
	a = add_fn(p, "a", false);
	b = add_fn(p, "b", false);
	sys = add_fn(p, "sys", true);
	add_stack(p, NULL, 1, 2, m, a, -1);
	add_stack(p, NULL, 1, 1, m, a, sys, -1);
	add_stack(p, NULL, 1, 1, m, b, -1);
	return p;
}

/* The value of attribute attr in the frame whose data-n is name. */
static double frame_attr(const char *svg, const char *name, const char *attr)
{
	char key[600];
	const char *g, *v;

	snprintf(key, sizeof(key), "<g class=\"f\" data-n=\"%s\"", name);
	g = strstr(svg, key);
	assert_non_null(g);
	snprintf(key, sizeof(key), " %s=\"", attr);
	v = strstr(g, key);
	assert_non_null(v);
	assert_true(v < strstr(g, "</g>"));
	return atof(v + strlen(key));
}

static void test_svg_widths(void **state)
{
	struct profile *p = ratio_profile();
	double wa, wb, xa, xb;
	char *svg;

	(void)state;
	svg = render_svg(p, NULL, NULL);
	wa = frame_attr(svg, "a", "width");
	wb = frame_attr(svg, "b", "width");
	xa = frame_attr(svg, "a", "x");
	xb = frame_attr(svg, "b", "x");
	/* 1200 px wide, 10 px margins: 4 samples on 1180 px */
	assert_true(wa == 885.0 && wb == 295.0);
	assert_true(wa / wb == 3.0);
	/* siblings in name order, side by side */
	assert_true(xa == 10.0 && xb == 895.0);
	assert_true(frame_attr(svg, "main", "width") == 1180.0);
	assert_true(frame_attr(svg, "all", "width") == 1180.0);
	/* root at the bottom: deeper frames are higher up */
	assert_true(frame_attr(svg, "all", "y") > frame_attr(svg, "main", "y"));
	assert_true(frame_attr(svg, "main", "y") > frame_attr(svg, "a", "y"));
	assert_true(frame_attr(svg, "a", "y") > frame_attr(svg, "sys_[k]", "y"));
	assert_non_null(strstr(svg, "<title>a (3 samples, 75.00%)</title>"));
	assert_non_null(strstr(svg, "<title>b (1 samples, 25.00%)</title>"));
	assert_non_null(strstr(svg, "<title>all (4 samples, 100.00%)</title>"));
	assert_non_null(strstr(svg, "'Function: '"));	/* the hover line */
	free(svg);
	profile__free(p);
}

static void fill_of(const char *svg, const char *name, unsigned rgb[3])
{
	char key[300];
	const char *g, *f;

	snprintf(key, sizeof(key), "<g class=\"f\" data-n=\"%s\"", name);
	g = strstr(svg, key);
	assert_non_null(g);
	f = strstr(g, "fill=\"rgb(");
	assert_non_null(f);
	assert_int_equal(sscanf(f, "fill=\"rgb(%u,%u,%u)", &rgb[0], &rgb[1], &rgb[2]), 3);
}

static void test_svg_colours(void **state)
{
	struct profile *p = ratio_profile();
	unsigned k[3], u[3], u2[3];
	char *svg;

	(void)state;
	svg = render_svg(p, NULL, NULL);
	fill_of(svg, "sys_[k]", k);
	assert_true(k[2] > k[0] && k[2] > 150);	/* kernel: blue */
	fill_of(svg, "a", u);
	assert_true(u[0] >= 200 && u[0] > u[2]);	/* user: warm */
	fill_of(svg, "main", u2);
	assert_true(u2[0] >= 200 && u2[0] > u2[2]);
	free(svg);
	profile__free(p);
}

/* A Python frame: "module.Class.method_[py]" from its system name, green */
static void test_python_frame(void **state)
{
	struct profile *p = profile__new();
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_PYTHON,
				   .function = "Worker.hot", .system_name = "ratio.Worker.hot",
				   .file = "/app/ratio.py", .line = 16 };
	unsigned g[3];
	int m, py;
	char *svg, *out;

	(void)state;
	p->period_nanos = 1;
	m = add_fn(p, "main", false);
	py = profile__add_location(p, &l);
	assert_true(py >= 0);
	add_stack(p, NULL, 1, 2, m, py, -1);
	out = render_folded(p);
	assert_string_equal(out, "main;ratio.Worker.hot_[py] 2\n");
	free(out);
	svg = render_svg(p, NULL, NULL);
	fill_of(svg, "ratio.Worker.hot_[py]", g);
	assert_true(g[1] > g[0] && g[1] > g[2] && g[1] >= 170);
	free(svg);
	profile__free(p);
}

/* A JVM frame: "Class.method_[j]", aqua (green and blue over red) */
static void test_jvm_frame(void **state)
{
	struct profile *p = profile__new();
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_JVM,
				   .function = "JvmRatio.hotThree", .file = "JvmRatio.java" };
	unsigned c[3];
	int m, j;
	char *svg, *out;

	(void)state;
	p->period_nanos = 1;
	m = add_fn(p, "main", false);
	j = profile__add_location(p, &l);
	assert_true(j >= 0);
	add_stack(p, NULL, 1, 2, m, j, -1);
	out = render_folded(p);
	assert_string_equal(out, "main;JvmRatio.hotThree_[j] 2\n");
	free(out);
	svg = render_svg(p, NULL, NULL);
	fill_of(svg, "JvmRatio.hotThree_[j]", c);
	assert_true(c[1] >= 180 && c[2] >= 180 && c[0] < 100);
	free(svg);
	profile__free(p);
}

static void test_svg_escaping(void **state)
{
	struct profile *p = profile__new();
	struct flamegraph_opts o = { .title = "t<&>", .subtitle = "s\"'" };
	int m, q, bad, cafe;
	char *svg;

	(void)state;
	p->period_nanos = 1;
	m = add_fn(p, "main", false);
	q = add_fn(p, "q<\"it's\">&co", false);
	bad = add_fn(p, "bad\xff\xfe\x01name\xe2\x82", false);	/* invalid UTF-8, a control char */
	cafe = add_fn(p, "caf\xc3\xa9", false);
	add_stack(p, NULL, 1, 1, m, q, -1);
	add_stack(p, NULL, 1, 1, m, bad, -1);
	add_stack(p, NULL, 1, 1, m, cafe, -1);
	svg = render_svg(p, &o, NULL);
	assert_non_null(strstr(svg, "data-n=\"q&lt;&quot;it&apos;s&quot;&gt;&amp;co\""));
	assert_non_null(strstr(svg, "<title>q&lt;&quot;it&apos;s&quot;&gt;&amp;co (1 samples"));
	assert_null(strstr(svg, "q<"));
	assert_null(strstr(svg, "it's"));
	assert_non_null(strstr(svg, ">t&lt;&amp;&gt;</text>"));
	assert_non_null(strstr(svg, ">s&quot;&apos;</text>"));
	assert_non_null(strstr(svg, "data-n=\"bad\xef\xbf\xbd\xef\xbf\xbd?name\xef\xbf\xbd\xef\xbf\xbd\""));
	assert_non_null(strstr(svg, "data-n=\"caf\xc3\xa9\""));	/* valid UTF-8 kept */
	free(svg);
	profile__free(p);
}

static void xmllint_ok(const char *svg, size_t len, const char *name)
{
	char path[128], cmd[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(svg, 1, len, f), len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static void test_svg_well_formed(void **state)
{
	struct profile *p = ratio_profile(), *q = profile__new(), *e = profile__new();
	struct flamegraph_opts o = { .title = "a & b", .subtitle = "<sub>" };
	int m, bad;
	char *svg;
	size_t len;

	(void)state;
	if (!have_cmd("xmllint")) {
		print_message("xmllint not installed (apt-get install libxml2-utils): not checked\n");
		profile__free(p);
		profile__free(q);
		profile__free(e);
		skip();
	}
	svg = render_svg(p, &o, &len);
	xmllint_ok(svg, len, "ratio.svg");
	free(svg);

	m = add_fn(q, "main", false);
	bad = add_fn(q, "x\xc0\xaf<y>\x1f\xed\xa0\x80\xef\xbf\xbe", false);	/* overlong, surrogate, U+FFFE */
	add_stack(q, "c&c", 1, 5, m, bad, -1);
	svg = render_svg(q, NULL, &len);
	xmllint_ok(svg, len, "bad.svg");
	free(svg);

	svg = render_svg(e, NULL, &len);
	xmllint_ok(svg, len, "empty.svg");
	free(svg);

	/* names are bytes from binaries: every byte value, and 300 random byte strings */
	{
		struct profile *r = profile__new();
		char name[256];
		uint64_t x = 0x9e3779b97f4a7c15ull;
		int root = add_fn(r, "root", false);

		for (int i = 1; i < 256; i++)
			name[i - 1] = (char)i;
		name[255] = '\0';
		add_stack(r, NULL, 1, 1, root, add_fn(r, name, false), -1);
		for (int i = 0; i < 300; i++) {
			size_t n = 1 + i % 60;

			for (size_t k = 0; k < n; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				name[k] = (char)(x % 255 + 1);
			}
			name[n] = '\0';
			add_stack(r, NULL, 1, 1 + i % 4, root, add_fn(r, name, i % 3 == 0), -1);
		}
		svg = render_svg(r, NULL, &len);
		xmllint_ok(svg, len, "bytes.svg");
		free(svg);
		profile__free(r);
	}
	profile__free(p);
	profile__free(q);
	profile__free(e);
}

static void test_svg_no_samples(void **state)
{
	struct profile *p = profile__new();
	int m;
	char *svg;

	(void)state;
	svg = render_svg(p, NULL, NULL);
	assert_non_null(strstr(svg, "<svg "));
	assert_non_null(strstr(svg, ">no samples</text>"));
	assert_null(strstr(svg, "class=\"f\""));
	assert_non_null(strstr(svg, "</svg>\n"));
	free(svg);
	/* samples that all count zero are no samples either */
	m = add_fn(p, "main", false);
	add_stack(p, NULL, 1, 0, m, -1);
	svg = render_svg(p, NULL, NULL);
	assert_non_null(strstr(svg, ">no samples</text>"));
	free(svg);
	profile__free(p);
}

static void test_svg_elided_and_cut(void **state)
{
	struct profile *p = profile__new();
	struct flamegraph_opts o = { .min_width_px = 20 };
	char longname[301], want[400];
	int m, big, leaf, small, s1, s2, lng;
	char *svg;

	(void)state;
	p->period_nanos = 1;
	memset(longname, 'x', 300);
	longname[300] = '\0';
	m = add_fn(p, "main", false);
	big = add_fn(p, "big", false);
	leaf = add_fn(p, "leaf", false);
	small = add_fn(p, "small", false);
	s1 = add_fn(p, "s1", false);
	s2 = add_fn(p, "s2", false);
	lng = add_fn(p, longname, false);
	add_stack(p, NULL, 1, 990, m, big, leaf, lng, -1);
	add_stack(p, NULL, 1, 10, m, small, s1, s2, -1);	/* 11.8 px of 1180 */
	svg = render_svg(p, &o, NULL);
	assert_null(strstr(svg, "data-n=\"small\""));
	assert_null(strstr(svg, "data-n=\"s2\""));
	assert_non_null(strstr(svg, ">3 frames narrower than 20.00 px not shown</text>"));
	/* the long name: whole in the title, cut to fit in the label */
	snprintf(want, sizeof(want), "<title>%s (990 samples, 99.00%%)</title>", longname);
	assert_non_null(strstr(svg, want));
	assert_non_null(strstr(svg, "xxxxxx..</text>"));
	free(svg);

	/* a minimum wider than the picture leaves out everything, root included */
	o.min_width_px = INFINITY;
	svg = render_svg(p, &o, NULL);
	assert_null(strstr(svg, "class=\"f\""));
	assert_non_null(strstr(svg, ">8 frames narrower than 1200.00 px not shown</text>"));
	free(svg);

	/* the default 0.1 px keeps everything here */
	svg = render_svg(p, NULL, NULL);
	assert_non_null(strstr(svg, "data-n=\"s2\""));
	assert_null(strstr(svg, "narrower than"));
	free(svg);
	profile__free(p);
}

static void test_svg_stable(void **state)
{
	struct profile *p = ratio_profile();
	struct flamegraph_opts o = { .width = 800, .title = "x" };
	size_t l1, l2;
	char *a, *b;

	(void)state;
	a = render_svg(p, &o, &l1);
	b = render_svg(p, &o, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(a, b, l1);
	assert_non_null(strstr(a, "width=\"800\""));
	assert_true(frame_attr(a, "main", "width") == 780.0);
	free(a);
	free(b);
	profile__free(p);
}

static void test_write_error(void **state)
{
	struct profile *p = ratio_profile();
	FILE *f = fopen("/dev/full", "w");

	(void)state;
	if (!f) {
		profile__free(p);
		skip();
	}
	assert_int_equal(flamegraph__write_svg(p, f, NULL), -EIO);
	assert_int_equal(folded__write(p, f), -EIO);
	fclose(f);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folded_exact),
		cmocka_unit_test(test_folded_empty),
		cmocka_unit_test(test_folded_odd_input),
		cmocka_unit_test(test_folded_many),
		cmocka_unit_test(test_svg_widths),
		cmocka_unit_test(test_svg_colours),
		cmocka_unit_test(test_python_frame),
		cmocka_unit_test(test_jvm_frame),
		cmocka_unit_test(test_svg_escaping),
		cmocka_unit_test(test_svg_well_formed),
		cmocka_unit_test(test_svg_no_samples),
		cmocka_unit_test(test_svg_elided_and_cut),
		cmocka_unit_test(test_svg_stable),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
