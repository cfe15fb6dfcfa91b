// SPDX-License-Identifier: Apache-2.0
/*
 * The pprof encoder, checked by readers we did not write: protoc decodes it
 * against proto/profile.proto, go tool pprof reads the gzipped file. Plus the
 * exact bytes of the smallest interesting profile, worked out by hand.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "pprof.h"
#include "profile.h"

static char dir[64];

/* The repository root: $PROFLEET_SRCDIR, else -DPROFLEET_SRCDIR_DEFAULT="...", else ".". */
static const char *src_root(void)
{
	const char *s = getenv("PROFLEET_SRCDIR");

	if (s && *s)
		return s;
#ifdef PROFLEET_SRCDIR_DEFAULT
	return PROFLEET_SRCDIR_DEFAULT;
#else
	return ".";
#endif
}

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "pprof");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void add_loc(struct profile *p, uint32_t mapping, bool kernel, uint64_t addr,
		    const char *fn, const char *file, int64_t line, int want_idx)
{
	struct prof_location l = { .mapping = mapping, .address = addr,
				   .frame = kernel ? PROF_FRAME_KERNEL : PROF_FRAME_NATIVE,
				   .function = fn, .file = file, .line = line };

	assert_int_equal(profile__add_location(p, &l), want_idx);
}

/*
 * Two processes. app: main -> hot (3), main -> cold (1), main -> hot -> syscall
 * in the kernel (2); db: main -> hot (another file, so another function) ->
 * memcpy in libc (5). Locations 1 and 2 are two addresses of one function.
 */
static struct profile *sample_profile(void)
{
	struct profile *p = profile__new();
	struct prof_mapping app = { .start = 0x400000, .limit = 0x401000,
				    .file = "/usr/bin/app", .build_id = "abcdef0123" };
	struct prof_mapping libc = { .start = 0x7f0000001000, .limit = 0x7f0000100000,
				     .offset = 0x1000, .file = "/usr/lib/libc.so.6" };
	struct prof_label l_app[3] = { { .key = "pid", .num = 42 },
				       { .key = "comm", .str = "app" },
				       { .key = "thread", .num = 43 } };
	struct prof_label l_db[4] = { { .key = "pid", .num = 77 },
				      { .key = "comm", .str = "db" },
				      { .key = "thread", .num = 78 },
				      { .key = "rss", .num = 4096, .unit = "bytes" } };
	uint32_t a[2] = { 1, 0 }, b[2] = { 3, 0 }, c[4] = { 5, 6, 2, 0 }, d[3] = { 4, 7, 0 };

	assert_non_null(p);
	p->period_nanos = 10000000;	/* before the samples: cpu_ns = count * period */
	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 5000000000LL;
	assert_int_equal(profile__add_mapping(p, &app), 0);
	assert_int_equal(profile__add_mapping(p, &libc), 1);
	add_loc(p, 0, false, 0x400100, "main", "app.c", 10, 0);
	add_loc(p, 0, false, 0x400200, "hot", "app.c", 20, 1);
	add_loc(p, 0, false, 0x400210, "hot", "app.c", 21, 2);
	add_loc(p, 0, false, 0x400300, "cold", NULL, 0, 3);
	add_loc(p, 1, false, 0x7f0000002000, "memcpy", NULL, 0, 4);
	add_loc(p, PROFILE_NO_MAPPING, true, 0xffffffff81000010ull, "do_syscall_64", NULL, 0, 5);
	add_loc(p, PROFILE_NO_MAPPING, true, 0xffffffff81000100ull, "entry_SYSCALL_64", NULL, 0, 6);
	add_loc(p, 0, false, 0x400400, "hot", "other.c", 5, 7);
	assert_int_equal(profile__add_sample(p, a, 2, 3, l_app, 3), 0);
	assert_int_equal(profile__add_sample(p, b, 2, 1, l_app, 3), 1);
	assert_int_equal(profile__add_sample(p, c, 4, 2, l_app, 3), 2);
	assert_int_equal(profile__add_sample(p, d, 3, 5, l_db, 4), 3);
	assert_int_equal(profile__add_comment(p, "profleet.drops.ringbuf_full=%d", 7), 0);
	assert_int_equal(profile__add_comment(p, "profleet.frames.unsymbolized=%d", 0), 1);
	return p;
}

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
		n++;
	return n;
}

/* Runs protoc --decode on an encoded (not gzipped) profile; returns its text. */
static char *protoc_decode(const uint8_t *buf, size_t len)
{
	char path[128], cmd[1024], proto[512];
	struct stat st;

	snprintf(proto, sizeof(proto), "%s/proto/profile.proto", src_root());
	if (stat(proto, &st)) {
		print_error("%s not found: set PROFLEET_SRCDIR to the repository\n", proto);
		fail();
	}
	snprintf(path, sizeof(path), "%s/decode.pb", dir);
	write_bytes(path, buf, len);
	snprintf(cmd, sizeof(cmd),
		 "protoc --proto_path='%s/proto' --decode=perftools.profiles.Profile '%s' < '%s'",
		 src_root(), proto, path);
	return run_capture(cmd);
}

/* p encoded (not gzipped) and decoded by protoc */
static char *encode_decode(const struct profile *p)
{
	uint8_t *buf;
	size_t len;
	char *out;

	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	out = protoc_decode(buf, len);
	free(buf);
	assert_non_null(out);
	return out;
}

static void test_protoc_decodes(void **state)
{
	static const char *const strings[] = {
		"samples", "count", "cpu", "nanoseconds", "main", "hot", "cold", "memcpy",
		"do_syscall_64", "entry_SYSCALL_64", "app.c", "other.c", "/usr/bin/app",
		"abcdef0123", "/usr/lib/libc.so.6", "[kernel.kallsyms]", "pid", "comm", "thread",
		"app", "db", "rss", "bytes", "profleet.drops.ringbuf_full=7",
		"profleet.frames.unsymbolized=0",
	};
	struct profile *p = sample_profile();
	uint8_t *buf;
	size_t len;
	char *out, want[128];

	(void)state;
	if (!have_cmd("protoc")) {
		profile__free(p);
		skip();
	}
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	out = protoc_decode(buf, len);
	free(buf);
	assert_non_null(out);
	/* string_table[0] is "" and comes first */
	assert_non_null(strstr(out, "string_table: \"\"\nstring_table: \"samples\"\n"));
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(want, sizeof(want), "string_table: \"%s\"\n", strings[i]);
		assert_int_equal(count_of(out, want), 1);	/* each string once */
	}
	assert_int_equal(count_of(out, "\nsample {"), 4);
	assert_int_equal(count_of(out, "\nlocation {"), 8);
	/* 8 locations, 7 functions: "hot" in app.c twice, once more in other.c */
	assert_int_equal(count_of(out, "\nfunction {"), 7);
	/* app, libc, and the kernel mapping added for the kernel frames */
	assert_int_equal(count_of(out, "\nmapping {"), 3);
	assert_int_equal(count_of(out, "has_functions: true"), 3);
	/* app.c has files and lines; libc has neither */
	assert_int_equal(count_of(out, "has_filenames: true"), 1);
	assert_int_equal(count_of(out, "has_line_numbers: true"), 1);
	/* the kernel mapping spans the kernel addresses */
	assert_non_null(strstr(out, "  id: 3\n  memory_start: 18446744071578845200\n"
				    "  memory_limit: 18446744071578845441\n"));
	assert_non_null(strstr(out, "  memory_start: 139637976731648\n"));
	assert_non_null(strstr(out, "  file_offset: 4096\n"));
	/* samples: location ids leaf first, values count and cpu ns, labels */
	assert_non_null(strstr(out, "sample {\n  location_id: 6\n  location_id: 7\n"
				    "  location_id: 3\n  location_id: 1\n  value: 2\n"
				    "  value: 20000000\n"));
	assert_non_null(strstr(out, "  value: 5\n  value: 50000000\n"));
	assert_non_null(strstr(out, "    num: 42\n"));
	assert_non_null(strstr(out, "    num: 78\n"));
	assert_non_null(strstr(out, "    num: 4096\n    num_unit: "));
	assert_int_equal(count_of(out, "  label {\n"), 3 * 3 + 4);
	assert_non_null(strstr(out, "time_nanos: 1700000000000000000\n"));
	assert_non_null(strstr(out, "duration_nanos: 5000000000\n"));
	assert_non_null(strstr(out, "period: 10000000\n"));
	assert_non_null(strstr(out, "period_type {\n  type: 3\n  unit: 4\n}\n"));
	assert_non_null(strstr(out, "default_sample_type: 3\n"));
	assert_int_equal(count_of(out, "\ncomment: "), 2);
	free(out);
	profile__free(p);
}

/* A kernel mapping the profile has already is used, not doubled. */
static void test_own_kernel_mapping(void **state)
{
	struct profile *p = profile__new();
	struct prof_mapping k = { .start = 0xffffffff81000000ull, .limit = 0xffffffff82000000ull,
				  .file = "[kernel.kallsyms]" };
	uint32_t s[1] = { 0 };
	char *out;

	(void)state;
	if (!have_cmd("protoc")) {
		profile__free(p);
		skip();
	}
	assert_int_equal(profile__add_mapping(p, &k), 0);
	/* the kernel flag decides, whatever the mapping field says */
	add_loc(p, PROFILE_NO_MAPPING, true, 0xffffffff81000010ull, "schedule", NULL, 0, 0);
	assert_int_equal(profile__add_sample(p, s, 1, 1, NULL, 0), 0);
	out = encode_decode(p);
	assert_int_equal(count_of(out, "\nmapping {"), 1);
	assert_non_null(strstr(out, "location {\n  id: 1\n  mapping_id: 1\n"));
	free(out);
	profile__free(p);
}

/*
 * Python frames: under one synthesized "[cpython]" mapping, and a function per
 * (name, file, system name): "Worker.hot" of two modules are two functions.
 */
static void test_python_functions(void **state)
{
	struct profile *p = profile__new();
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_PYTHON,
				   .function = "Worker.hot", .file = "/app/w.py", .line = 3 };
	uint32_t s[2] = { 0, 1 };
	char *out;

	(void)state;
	if (!have_cmd("protoc")) {
		profile__free(p);
		skip();
	}
	l.system_name = "ratio.Worker.hot";
	assert_int_equal(profile__add_location(p, &l), 0);
	l.system_name = "other.Worker.hot";
	assert_int_equal(profile__add_location(p, &l), 1);
	assert_int_equal(profile__add_sample(p, s, 2, 1, NULL, 0), 0);
	out = encode_decode(p);
	assert_int_equal(count_of(out, "\nfunction {"), 2);
	assert_int_equal(count_of(out, "\nmapping {"), 1);
	assert_non_null(strstr(out, "\"[cpython]\""));
	assert_non_null(strstr(out, "location {\n  id: 1\n  mapping_id: 1\n"));
	assert_non_null(strstr(out, "location {\n  id: 2\n  mapping_id: 1\n"));
	assert_non_null(strstr(out, "\"ratio.Worker.hot\""));
	assert_non_null(strstr(out, "\"other.Worker.hot\""));
	free(out);
	profile__free(p);
}

/*
 * The smallest profile with one of everything, byte by byte. Strings get
 * indexes in the order the encoder meets them: its own four, then function
 * names (while it works out the functions), then sample labels (none here),
 * then mapping file names and build-ids.
 */
static void test_golden_bytes(void **state)
{
	static const uint8_t want[] = {
		/* field 1 sample_type (tag 1<<3|2 = 0x0a), 4 bytes: type 1 "samples", unit 2 "count" */
		0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,
		/* field 1 sample_type: type 3 "cpu", unit 4 "nanoseconds" */
		0x0a, 0x04, 0x08, 0x03, 0x10, 0x04,
		/* field 2 sample (0x12), 8 bytes: */
		0x12, 0x08,
		0x0a, 0x01, 0x01,		/* location_id (1, packed), 1 byte: id 1 */
		0x12, 0x03, 0x05, 0xf4, 0x03,	/* value (2, packed), 3 bytes: 5; 500 = 0x1f4 */
		/* field 3 mapping (0x1a), 14 bytes: */
		0x1a, 0x0e,
		0x08, 0x01,			/* id 1 */
		0x10, 0x80, 0x20,		/* memory_start 0x1000: 7 low bits 0, then 0x1000 >> 7 = 32 */
		0x18, 0x80, 0x40,		/* memory_limit 0x2000: 0, then 64 */
						/* file_offset 0: left out */
		0x28, 0x06,			/* filename 6 "/x" */
		0x30, 0x07,			/* build_id 7 "ab" */
		0x38, 0x01,			/* has_functions true */
		/* field 4 location (0x22), 11 bytes: */
		0x22, 0x0b,
		0x08, 0x01,			/* id 1 */
		0x10, 0x01,			/* mapping_id 1 */
		0x18, 0x90, 0x20,		/* address 0x1010: 0x10 | 0x80, then 0x1010 >> 7 = 32 */
		0x22, 0x02, 0x08, 0x01,		/* line (4), 2 bytes: function_id 1; line 0 left out */
		/* field 5 function (0x2a), 6 bytes: id 1, name 5 "f", system_name 5; no file */
		0x2a, 0x06, 0x08, 0x01, 0x10, 0x05, 0x18, 0x05,
		/* field 6 string_table (0x32), one field per string */
		0x32, 0x00,						/* 0 "" */
		0x32, 0x07, 's', 'a', 'm', 'p', 'l', 'e', 's',		/* 1 */
		0x32, 0x05, 'c', 'o', 'u', 'n', 't',			/* 2 */
		0x32, 0x03, 'c', 'p', 'u',				/* 3 */
		0x32, 0x0b, 'n', 'a', 'n', 'o', 's', 'e', 'c', 'o', 'n', 'd', 's', /* 4 */
		0x32, 0x01, 'f',					/* 5 */
		0x32, 0x02, '/', 'x',					/* 6 */
		0x32, 0x02, 'a', 'b',					/* 7 */
		/* time_nanos (9), duration_nanos (10): 0, left out */
		/* field 11 period_type (11<<3|2 = 0x5a): cpu / nanoseconds */
		0x5a, 0x04, 0x08, 0x03, 0x10, 0x04,
		/* field 12 period (12<<3 = 0x60): 100 */
		0x60, 0x64,
		/* comments (13): none. field 14 default_sample_type (0x70): 3 "cpu" */
		0x70, 0x03,
	};
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x1000, .limit = 0x2000, .file = "/x", .build_id = "ab" };
	uint32_t loc = 0;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(p);
	p->period_nanos = 100;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	add_loc(p, 0, false, 0x1010, "f", NULL, 0, 0);
	assert_int_equal(profile__add_sample(p, &loc, 1, 5, NULL, 0), 0);
	assert_int_equal(p->samples[0].cpu_ns, 500);
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	free(buf);
	profile__free(p);
}

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *ret_len)
{
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap);
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_non_null(out);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);	/* gzip only */
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);	/* nothing after the gzip trailer */
	*ret_len = z.total_out;
	inflateEnd(&z);
	return out;
}

static void test_gzip_round_trip(void **state)
{
	struct profile *p = sample_profile();
	uint8_t *raw, *gz, *back;
	size_t raw_len, gz_len, back_len;

	(void)state;
	assert_int_equal(pprof__encode(p, false, &raw, &raw_len), 0);
	assert_int_equal(pprof__encode(p, true, &gz, &gz_len), 0);
	/* gzip member header: magic 1f 8b, method 8 (deflate) */
	assert_true(gz_len > 18);
	assert_int_equal(gz[0], 0x1f);
	assert_int_equal(gz[1], 0x8b);
	assert_int_equal(gz[2], 8);
	back = gunzip(gz, gz_len, &back_len);
	assert_int_equal(back_len, raw_len);
	assert_memory_equal(back, raw, raw_len);
	free(raw);
	free(gz);
	free(back);
	profile__free(p);
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_write_file(void **state)
{
	struct profile *p = sample_profile();
	char sub[128], path[192], longpath[5000];
	uint8_t *raw, *back, file[1 << 16];
	size_t raw_len, back_len, n;
	FILE *f;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/w", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/p.pb.gz", sub);
	/* an old file is replaced whole */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old contents", f);
	fclose(f);
	assert_int_equal(pprof__write_file(p, path), 0);
	assert_int_equal(dir_entries(sub), 1);	/* no temporary left behind */
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(file, 1, sizeof(file), f);
	fclose(f);
	back = gunzip(file, n, &back_len);
	assert_int_equal(pprof__encode(p, false, &raw, &raw_len), 0);
	assert_int_equal(back_len, raw_len);
	assert_memory_equal(back, raw, raw_len);
	free(raw);
	free(back);

	assert_int_equal(pprof__write_file(p, "/nonexistent-profleet-dir/p.pb.gz"), -ENOENT);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(pprof__write_file(p, longpath), -ENAMETOOLONG);
	profile__free(p);
}

static void test_bad_indexes(void **state)
{
	struct profile *p = sample_profile();
	uint8_t *buf = (uint8_t *)"untouched";
	size_t len = 12345;

	(void)state;
	p->samples[1].locs[0] = p->nlocations;	/* one past the end */
	assert_int_equal(pprof__encode(p, false, &buf, &len), -EINVAL);
	assert_string_equal((const char *)buf, "untouched");	/* ret_* written only on success */
	assert_int_equal(len, 12345);
	p->samples[1].locs[0] = 3;
	p->locations[4].mapping = 9;
	assert_int_equal(pprof__encode(p, false, &buf, &len), -EINVAL);
	profile__free(p);
}

static void test_empty_profile(void **state)
{
	struct profile *p = profile__new();
	uint8_t *buf;
	size_t len;
	char *out;

	(void)state;
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	if (have_cmd("protoc")) {
		out = protoc_decode(buf, len);
		assert_non_null(out);
		assert_int_equal(count_of(out, "sample_type {"), 2);
		assert_null(strstr(out, "\nsample {"));
		free(out);
	}
	free(buf);
	profile__free(p);
}

/* -raw: "   count   cpu_ns: id id ..." per sample, then "   id: 0xaddr M=n name file:line ...". */
static void raw_stacks(const char *raw, char stacks[][256], size_t *ret_n)
{
	const char *names[64] = { 0 };
	size_t name_len[64] = { 0 }, n = 0;
	const char *locs = strstr(raw, "\nLocations\n"), *s;

	assert_non_null(locs);
	for (s = locs + 11; *s && strncmp(s, "Mappings", 8); s = strchr(s, '\n') + 1) {
		unsigned id;
		int off = 0;

		if (sscanf(s, " %u: 0x%*x M=%*u %n", &id, &off) == 1 && off && id < 64) {
			names[id] = s + off;
			name_len[id] = strcspn(s + off, " \n");
		}
		if (!strchr(s, '\n'))
			break;
	}
	for (s = strstr(raw, "[dflt]\n"); s && s < locs; s = strchr(s, '\n')) {
		long count, ns;
		int off = 0;

		s++;
		if (sscanf(s, " %ld %ld:%n", &count, &ns, &off) != 2)
			continue;
		{
			char *w = stacks[n];
			const char *ids = s + off;
			unsigned id;
			int used;

			w += sprintf(w, "%ld %ld", count, ns);
			while (sscanf(ids, " %u%n", &id, &used) == 1) {
				assert_true(id < 64 && names[id]);
				w += sprintf(w, " %.*s", (int)name_len[id], names[id]);
				ids += used;
			}
		}
		n++;
	}
	*ret_n = n;
}

/* From -top: "flat flat% sum% cum cum% name" for name; returns flat, *ret_cum gets cum. */
static long top_flat_cum(const char *top, const char *name, long *ret_cum)
{
	for (const char *s = top; s; s = strchr(s, '\n')) {
		char fn[128];
		long flat, cum;

		s += *s == '\n';
		if (sscanf(s, " %ld %*s %*s %ld %*s %127s", &flat, &cum, fn) == 3 && !strcmp(fn, name)) {
			*ret_cum = cum;
			return flat;
		}
	}
	print_error("%s not in go tool pprof -top:\n%s\n", name, top);
	fail();
	return -1;
}

static void test_go_pprof(void **state)
{
	static const char *const want[] = {
		"3 30000000 hot main",
		"1 10000000 cold main",
		"2 20000000 do_syscall_64 entry_SYSCALL_64 hot main",
		"5 50000000 memcpy hot main",
	};
	struct profile *p = sample_profile();
	char path[128], cmd[512], *out, stacks[16][256];
	long cum;
	size_t n;

	(void)state;
	if (!have_cmd("go")) {
		print_message("go not in PATH: go tool pprof not checked\n");
		profile__free(p);
		skip();
	}
	snprintf(path, sizeof(path), "%s/go.pb.gz", dir);
	assert_int_equal(pprof__write_file(p, path), 0);
	profile__free(p);

	snprintf(cmd, sizeof(cmd), "go tool pprof -symbolize=none -raw '%s' 2>&1", path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_non_null(strstr(out, "PeriodType: cpu nanoseconds\n"));
	assert_non_null(strstr(out, "Period: 10000000\n"));
	assert_non_null(strstr(out, "Duration: 5s\n"));
	assert_non_null(strstr(out, "samples/count cpu/nanoseconds[dflt]\n"));
	assert_non_null(strstr(out, "Comment: profleet.drops.ringbuf_full=7\n"));
	assert_non_null(strstr(out, "pid:[42] thread:[43]"));
	assert_non_null(strstr(out, "comm:[db]"));
	assert_non_null(strstr(out, "rss:[4096 bytes]"));
	assert_non_null(strstr(out, "/usr/bin/app abcdef0123 [FN][FL][LN]"));
	assert_non_null(strstr(out, "[kernel.kallsyms]"));
	assert_non_null(strstr(out, " hot app.c:20 "));
	assert_non_null(strstr(out, " hot other.c:5 "));
	raw_stacks(out, stacks, &n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		bool found = false;

		for (size_t k = 0; k < n; k++)
			found |= !strcmp(stacks[k], want[i]);
		if (!found)
			print_error("stack \"%s\" not in go tool pprof -raw:\n%s\n", want[i], out);
		assert_true(found);
	}
	free(out);

	/* -top: flat counts per function, total 11 */
	snprintf(cmd, sizeof(cmd),
		 "go tool pprof -symbolize=none -top -sample_index=samples '%s' 2>&1", path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_non_null(strstr(out, "Type: samples\n"));
	assert_non_null(strstr(out, "Total samples = 11"));
	assert_int_equal(top_flat_cum(out, "memcpy", &cum), 5);
	assert_int_equal(cum, 5);
	assert_int_equal(top_flat_cum(out, "hot", &cum), 3);	/* both "hot"s, by name */
	assert_int_equal(cum, 3 + 2 + 5);
	assert_int_equal(top_flat_cum(out, "main", &cum), 0);
	assert_int_equal(cum, 11);
	free(out);
	/* the default sample type is cpu */
	snprintf(cmd, sizeof(cmd), "go tool pprof -symbolize=none -top '%s' 2>&1", path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_non_null(strstr(out, "Type: cpu\n"));
	assert_non_null(strstr(out, "Total samples = 110ms"));
	free(out);
}

/* 10k distinct stacks, 30 deep: every sample survives the trip through protoc. */
static void test_many_stacks(void **state)
{
	struct profile *p = profile__new();
	uint32_t stack[30];
	char cmd[1024], path[128], *out;
	uint8_t *buf;
	size_t len;

	(void)state;
	if (!have_cmd("protoc")) {
		profile__free(p);
		skip();
	}
	p->period_nanos = 1000;
	for (int i = 0; i < 1000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fn_%d", i);
		add_loc(p, PROFILE_NO_MAPPING, false, 0x1000 + (uint64_t)i, name, NULL, 0, i);
	}
	for (uint32_t s = 0; s < 10000; s++) {
		for (uint32_t k = 0; k < 30; k++)
			stack[k] = (s * 7 + k * 131 + (s >> k)) % 1000;
		stack[0] = s % 1000;
		stack[29] = s / 1000;	/* (leaf, root) differ for every s */
		assert_true(profile__add_sample(p, stack, 30, 1 + s % 5, NULL, 0) >= 0);
	}
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	snprintf(path, sizeof(path), "%s/many.pb", dir);
	write_bytes(path, buf, len);
	free(buf);
	snprintf(cmd, sizeof(cmd),
		 "protoc --proto_path='%s/proto' --decode=perftools.profiles.Profile "
		 "'%s/proto/profile.proto' < '%s' | grep -c '^sample {'",
		 src_root(), src_root(), path);
	out = run_capture(cmd);
	assert_non_null(out);
	assert_string_equal(out, "10000\n");
	free(out);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protoc_decodes),
		cmocka_unit_test(test_own_kernel_mapping),
		cmocka_unit_test(test_python_functions),
		cmocka_unit_test(test_golden_bytes),
		cmocka_unit_test(test_gzip_round_trip),
		cmocka_unit_test(test_write_file),
		cmocka_unit_test(test_bad_indexes),
		cmocka_unit_test(test_empty_profile),
		cmocka_unit_test(test_go_pprof),
		cmocka_unit_test(test_many_stacks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
