// SPDX-License-Identifier: Apache-2.0
/*
 * The controller's built-in store: pprof merging (what a query returns) and
 * the on-disk store (bounds, retention, time ranges, restart, bad input).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "pprof.h"
#include "pprof_merge.h"
#include "profile.h"
#include "status.h"
#include "store.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "store");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

/*
 * One process's profile: main -> hot (n samples) and main -> cold (1), in
 * /app/bin mapped at base (ASLR: each process has its own), with a pid label.
 */
static void encode_one(uint64_t base, int64_t n, int pid, int64_t t0, uint8_t **buf, size_t *len)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = base, .limit = base + 0x10000, .file = "/app/bin",
				  .build_id = "abcd" };
	struct prof_location main_l = { .mapping = 0, .address = base + 0x100, .function = "main" };
	struct prof_location hot_l = { .mapping = 0, .address = base + 0x200, .function = "hot",
				       .file = "hot.c", .line = 7 };
	struct prof_location cold_l = { .mapping = 0, .address = base + 0x300, .function = "cold" };
	struct prof_label lb = { .key = "pid", .num = pid };
	uint32_t s1[] = { 1, 0 }, s2[] = { 2, 0 };

	assert_non_null(p);
	p->period_nanos = 10000000;
	p->time_nanos = t0;
	p->duration_nanos = 2000000000;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	assert_int_equal(profile__add_location(p, &main_l), 0);
	assert_int_equal(profile__add_location(p, &hot_l), 1);
	assert_int_equal(profile__add_location(p, &cold_l), 2);
	assert_true(profile__add_sample(p, s1, 2, n, &lb, 1) >= 0);
	assert_true(profile__add_sample(p, s2, 2, 1, &lb, 1) >= 0);
	assert_int_equal(pprof__encode(p, true, buf, len), 0);
	profile__free(p);
}

static int64_t total_of(const struct profile *p, const char *leaf)
{
	int64_t t = 0;

	for (uint32_t i = 0; i < p->nsamples; i++)
		if (!leaf || !strcmp(p->locations[p->samples[i].locs[0]].function, leaf))
			t += p->samples[i].count;
	return t;
}

static void test_merge_by_meaning(void **state)
{
	struct pprof_merge *m = pprof_merge_new();
	uint8_t *a, *b, *c;
	size_t la, lb, lc;
	char err[200];
	const struct profile *p;

	(void)state;
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	encode_one(0x7f0000000000ULL, 3, 10, 1002000000000LL, &b, &lb);	/* same pid label */
	encode_one(0x500000, 2, 11, 1001000000000LL, &c, &lc);		/* another pid */
	assert_int_equal(pprof_merge_add(m, a, la, err, sizeof(err)), 0);
	assert_int_equal(pprof_merge_add(m, b, lb, err, sizeof(err)), 0);
	assert_int_equal(pprof_merge_add(m, c, lc, err, sizeof(err)), 0);
	p = pprof_merge_profile(m);
	assert_int_equal(pprof_merge_inputs(m), 3);
	/* frames by meaning: three functions in one mapping, whatever the addresses */
	assert_int_equal(p->nlocations, 3);
	assert_int_equal(p->nmappings, 1);
	assert_string_equal(p->mappings[0].file, "/app/bin");
	assert_string_equal(p->mappings[0].build_id, "abcd");
	/* same stack + same labels summed: pid 10 hot = 5 + 3; pid 11 apart */
	assert_int_equal(p->nsamples, 4);
	assert_int_equal(total_of(p, "hot"), 10);
	assert_int_equal(total_of(p, "cold"), 3);
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		assert_int_equal(s->nlabels, 1);
		assert_int_equal(s->cpu_ns, s->count * 10000000);
		if (!strcmp(p->locations[s->locs[0]].function, "hot") && s->labels[0].num == 10)
			assert_int_equal(s->count, 8);
	}
	/* the span of the inputs */
	assert_int_equal(p->time_nanos, 1000000000000LL);
	assert_int_equal(p->duration_nanos, 4000000000LL);
	assert_int_equal(p->period_nanos, 10000000);
	/* the merge encodes again, and go tool pprof reads it */
	{
		char path[128], cmd[512], *out;

		snprintf(path, sizeof(path), "%s/merged.pb.gz", dir);
		assert_int_equal(pprof__write_file(p, path), 0);
		snprintf(cmd, sizeof(cmd), "go tool pprof -raw '%s' 2>/dev/null", path);
		out = run_capture(cmd);
		if (out) {
			assert_non_null(strstr(out, "hot"));
			assert_non_null(strstr(out, "cold"));
			free(out);
		}
	}
	free(a);
	free(b);
	free(c);
	pprof_merge_free(m);
}

/*
 * Two functions (and two mappings) whose names share their first 9000 bytes,
 * as long C++ template names do: the merge keeps them apart.
 */
static void test_merge_long_names(void **state)
{
	enum { LONG = 9000 };
	char *f1 = malloc(LONG + 2), *f2 = malloc(LONG + 2), *m1 = malloc(LONG + 3);
	char *m2 = malloc(LONG + 3), err[200];
	struct profile *p = profile__new();
	struct pprof_merge *m = pprof_merge_new();
	uint32_t s1[] = { 0 }, s2[] = { 1 }, s3[] = { 2 };
	uint8_t *buf;
	size_t len;
	const struct profile *q;

	(void)state;
	assert_non_null(f1 && f2 && m1 && m2 && p && m);
	memset(f1, 'f', LONG);
	memcpy(f2, f1, LONG);
	strcpy(f1 + LONG, "1");
	strcpy(f2 + LONG, "2");
	m1[0] = m2[0] = '/';
	memset(m1 + 1, 'm', LONG);
	memcpy(m2 + 1, m1 + 1, LONG);
	strcpy(m1 + LONG + 1, "1");
	strcpy(m2 + LONG + 1, "2");
	{
		struct prof_mapping ma = { .start = 0x1000, .limit = 0x2000, .file = m1 };
		struct prof_mapping mb = { .start = 0x3000, .limit = 0x4000, .file = m2 };
		struct prof_location la = { .mapping = 0, .address = 0x1100, .function = f1 };
		struct prof_location lb = { .mapping = 0, .address = 0x1200, .function = f2 };
		struct prof_location lc = { .mapping = 1, .address = 0x3100, .function = f1 };

		assert_int_equal(profile__add_mapping(p, &ma), 0);
		assert_int_equal(profile__add_mapping(p, &mb), 1);
		assert_int_equal(profile__add_location(p, &la), 0);
		assert_int_equal(profile__add_location(p, &lb), 1);
		assert_int_equal(profile__add_location(p, &lc), 2);
	}
	assert_true(profile__add_sample(p, s1, 1, 1, NULL, 0) >= 0);
	assert_true(profile__add_sample(p, s2, 1, 2, NULL, 0) >= 0);
	assert_true(profile__add_sample(p, s3, 1, 4, NULL, 0) >= 0);
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	assert_int_equal(pprof_merge_add(m, buf, len, err, sizeof(err)), 0);
	q = pprof_merge_profile(m);
	assert_int_equal(q->nmappings, 2);
	assert_int_equal(q->nlocations, 3);
	assert_int_equal(q->nsamples, 3);
	assert_int_equal(total_of(q, f1), 5);
	assert_int_equal(total_of(q, f2), 2);
	free(buf);
	pprof_merge_free(m);
	profile__free(p);
	free(f1);
	free(f2);
	free(m1);
	free(m2);
}

/*
 * Labels whose text holds the key's separators stay apart from the labels they
 * mimic; numeric labels of different units stay apart.
 */
static void test_merge_label_text(void **state)
{
	struct profile *p = profile__new();
	struct pprof_merge *m = pprof_merge_new();
	struct prof_mapping mp = { .start = 0x1000, .limit = 0x2000, .file = "/bin/a" };
	struct prof_location l = { .mapping = 0, .address = 0x1100, .function = "f" };
	struct prof_label one[] = { { .key = "a", .str = "x#0;b=y" } };	/* the old key of two */
	struct prof_label two[] = { { .key = "a", .str = "x" }, { .key = "b", .str = "y" } };
	/* the same number in two units: two samples, not one of 3 */
	struct prof_label bytes[] = { { .key = "n", .num = 5, .unit = "bytes" } };
	struct prof_label secs[] = { { .key = "n", .num = 5, .unit = "seconds" } };
	uint32_t s1[] = { 0 };
	uint8_t *buf;
	size_t len;
	char err[200];

	(void)state;
	assert_non_null(p && m);
	assert_int_equal(profile__add_mapping(p, &mp), 0);
	assert_int_equal(profile__add_location(p, &l), 0);
	assert_true(profile__add_sample(p, s1, 1, 1, one, 1) >= 0);
	assert_true(profile__add_sample(p, s1, 1, 2, two, 2) >= 0);
	assert_true(profile__add_sample(p, s1, 1, 1, bytes, 1) >= 0);
	assert_true(profile__add_sample(p, s1, 1, 2, secs, 1) >= 0);
	assert_int_equal(pprof__encode(p, false, &buf, &len), 0);
	assert_int_equal(pprof_merge_add(m, buf, len, err, sizeof(err)), 0);
	assert_int_equal(pprof_merge_profile(m)->nsamples, 4);
	free(buf);
	pprof_merge_free(m);
	profile__free(p);
}

static void test_merge_refuses_garbage(void **state)
{
	struct pprof_merge *m = pprof_merge_new();
	uint8_t *a, garbage[64], *trunc;
	size_t la;
	char err[200];

	(void)state;
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	assert_int_equal(pprof_merge_add(m, a, la, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 37 + 11);
	err[0] = 0;
	assert_int_equal(pprof_merge_add(m, garbage, sizeof(garbage), err, sizeof(err)), -EINVAL);
	assert_true(err[0]);
	/* gzip cut in half */
	trunc = malloc(la / 2);
	memcpy(trunc, a, la / 2);
	assert_int_equal(pprof_merge_add(m, trunc, la / 2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "gzip"));
	/* the empty input is an empty profile: string_table[0] missing */
	assert_int_equal(pprof_merge_add(m, (const uint8_t *)"", 0, err, sizeof(err)), -EINVAL);
	/* what was merged before is intact */
	assert_int_equal(pprof_merge_inputs(m), 1);
	assert_int_equal(total_of(pprof_merge_profile(m), NULL), 6);
	free(trunc);
	free(a);
	pprof_merge_free(m);
}

/* A profile whose sample points at a location that does not exist. */
static void test_merge_refuses_dangling_ids(void **state)
{
	struct pprof_merge *m = pprof_merge_new();
	/* sample { location_id: 9 } and string_table: "" */
	static const uint8_t pb[] = { 0x12, 0x03, 0x0a, 0x01, 0x09, 0x32, 0x00 };
	char err[200];

	(void)state;
	err[0] = 0;
	assert_int_equal(pprof_merge_add(m, pb, sizeof(pb), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no location 9"));
	assert_int_equal(pprof_merge_inputs(m), 0);
	pprof_merge_free(m);
}

static int count_files(const char *path)
{
	char cmd[512], *out;
	int n;

	snprintf(cmd, sizeof(cmd), "find '%s' -name '*.pb.gz' | wc -l", path);
	out = run_capture(cmd);
	assert_non_null(out);
	n = atoi(out);
	free(out);
	return n;
}

/* One profile for one policy. */
static int put1(struct store *s, const char *key, const char *node, int64_t from, int64_t until,
		const uint8_t *buf, size_t len)
{
	size_t stored;

	return store_put(s, (const char *[]){ key }, 1, node, from, until, buf, len, &stored);
}

static void test_store_put_query_bounds(void **state)
{
	char sdir[128], err[200];
	struct store_opts o = { .dir = sdir, .max_bytes = 0, .retention_s = 3600 };
	struct store *s;
	struct store_stats st;
	struct store_policy_stats ps;
	uint8_t *a;
	size_t la;
	unsigned int bad;
	struct pprof_merge *m;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/s1", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	/* room for 4 profiles: the fifth pushes the oldest out */
	o.max_bytes = (la + STORE_ENTRY_CHARGE) * 4 + la / 2;
	o.ns_max_bytes = o.max_bytes;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 5; i++)
		assert_int_equal(put1(s, "shop/web", "node-a", 1000 + i * 10, 1010 + i * 10, a, la),
				 0);
	assert_int_equal(put1(s, "cluster-wide", "node-b", 1000, 1010, a, la), 0);
	store_stats(s, &st);
	assert_int_equal(st.stored, 6);
	assert_int_equal(st.files, 4);
	/* the two oldest of shop/web: its share (all of it here), then the store */
	assert_int_equal(st.evicted_quota, 1);
	assert_int_equal(st.evicted_full, 1);
	assert_true(st.bytes <= o.max_bytes);
	assert_int_equal(count_files(sdir), 4);
	assert_int_equal(access("/dev/null", F_OK), 0);
	{
		char p1[256];

		snprintf(p1, sizeof(p1), "%s/ns/shop/web", sdir);
		assert_int_equal(count_files(p1), 3);
		snprintf(p1, sizeof(p1), "%s/cluster/cluster-wide", sdir);
		assert_int_equal(count_files(p1), 1);
	}
	store_policy_stats(s, "shop/web", &ps);
	assert_int_equal(ps.files, 3);
	assert_int_equal(ps.first_s, 1020);
	assert_int_equal(ps.last_s, 1050);
	/* a query merges what overlaps the range */
	m = pprof_merge_new();
	assert_int_equal(store_query(s, "shop/web", 0, 0, m, &bad), 3);
	assert_int_equal(bad, 0);
	assert_int_equal(total_of(pprof_merge_profile(m), NULL), 18);
	pprof_merge_free(m);
	m = pprof_merge_new();
	assert_int_equal(store_query(s, "shop/web", 1031, 1045, m, &bad), 2);
	pprof_merge_free(m);
	m = pprof_merge_new();
	assert_int_equal(store_query(s, "shop/web", 5000, 0, m, &bad), 0);
	assert_int_equal(store_query(s, "shop/other", 0, 0, m, &bad), 0);
	pprof_merge_free(m);
	/* keys that are not Kubernetes names never reach the disk */
	assert_int_equal(put1(s, "../etc/passwd", "n", 1, 2, a, la), -EINVAL);
	assert_int_equal(put1(s, "shop/../../x", "n", 1, 2, a, la), -EINVAL);
	assert_int_equal(put1(s, "Shop/Web", "n", 1, 2, a, la), -EINVAL);
	assert_int_equal(put1(s, "shop/web", "n", 20, 10, a, la), -EINVAL);	/* until < from */
	store_stats(s, &st);
	assert_int_equal(st.refused, 4);
	/* a file that went bad on disk is skipped and counted */
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "f=$(ls '%s'/ns/shop/web/*.pb.gz | head -1); "
			 "printf garbage > \"$f\"", sdir);
		assert_int_equal(system(cmd), 0);
	}
	m = pprof_merge_new();
	assert_int_equal(store_query(s, "shop/web", 0, 0, m, &bad), 2);
	assert_int_equal(bad, 1);
	pprof_merge_free(m);
	store_close(s);

	/* a restarted controller finds what was stored; a write cut short is cleaned up */
	{
		char tmp[256];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s/ns/shop/web/000000001060-000000001070-n-9.pb.gz.tmp", sdir);
		f = fopen(tmp, "w");
		assert_non_null(f);
		fputs("half", f);
		fclose(f);
		s = store_open(&o, err, sizeof(err));
		assert_non_null(s);
		assert_int_equal(access(tmp, F_OK), -1);
	}
	store_stats(s, &st);
	assert_int_equal(st.files, 4);
	store_policy_stats(s, "cluster-wide", &ps);
	assert_int_equal(ps.files, 1);
	/* retention: everything ended before now - 3600 goes */
	store_expire(s, 1040 + 3600);
	store_stats(s, &st);
	assert_int_equal(st.evicted_age, 2);	/* cluster-wide (1010), shop/web 1030 */
	assert_int_equal(st.files, 2);
	assert_int_equal(count_files(sdir), 2);
	store_close(s);
	free(a);
}

/* Links of one file, by path relative to the store. */
static int nlink_of(const char *sdir, const char *rel_glob)
{
	char cmd[512], *out;
	int n;

	snprintf(cmd, sizeof(cmd), "stat -c %%h $(ls '%s'/%s | head -1)", sdir, rel_glob);
	out = run_capture(cmd);
	assert_non_null(out);
	n = atoi(out);
	free(out);
	return n;
}

/*
 * An upload for many policies of one namespace is one file (linked into each
 * policy's directory) and counts once; another namespace's policy gets its own.
 * A restarted store sees the links as one profile.
 */
static void test_store_one_copy(void **state)
{
	const char *keys[] = { "shop/a", "shop/b", "shop/c", "wide", "Bad/Key" };
	char sdir[128], err[200];
	struct store_opts o = { .dir = sdir, .max_bytes = 1 << 20, .retention_s = 3600 };
	struct store_policy_stats ps;
	struct store_stats st;
	struct store *s;
	unsigned int bad;
	size_t la, stored;
	uint8_t *a;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/one", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_put(s, keys, 5, "n1", 1000, 1010, a, la, &stored), 0);
	assert_int_equal(stored, 4);	/* not the bad key */
	store_stats(s, &st);
	assert_int_equal(st.files, 2);	/* shop's one file, wide's */
	assert_int_equal(st.bytes, 2 * la + 4 * STORE_ENTRY_CHARGE);	/* and 4 names */
	assert_int_equal(count_files(sdir), 4);	/* names: one per policy */
	assert_int_equal(nlink_of(sdir, "ns/shop/b/*.pb.gz"), 3);
	assert_int_equal(nlink_of(sdir, "cluster/wide/*.pb.gz"), 1);
	for (int i = 0; i < 4; i++) {
		struct pprof_merge *m = pprof_merge_new();

		store_policy_stats(s, keys[i], &ps);
		assert_int_equal(ps.files, 1);
		assert_int_equal(store_query(s, keys[i], 0, 0, m, &bad), 1);
		pprof_merge_free(m);
	}
	store_close(s);
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	store_stats(s, &st);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.bytes, 2 * la + 4 * STORE_ENTRY_CHARGE);
	/* the same node and times again after the restart: a new name, not the old file's */
	assert_int_equal(store_put(s, keys, 2, "n1", 1000, 1010, a, la, &stored), 0);
	assert_int_equal(stored, 2);
	store_stats(s, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(count_files(sdir), 6);
	/* retention takes every link */
	store_expire(s, 1010 + 3601);
	store_stats(s, &st);
	assert_int_equal(st.evicted_age, 3);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(count_files(sdir), 0);
	store_close(s);
	free(a);
}

/*
 * A namespace over its share loses its own oldest profiles, not another's;
 * a full store takes from the namespace holding the most, even when another
 * namespace's profile is older.
 */
static void test_store_namespace_quota(void **state)
{
	char sdir[128], err[200];
	struct store_opts o = { .dir = sdir, .retention_s = 1 << 30 };
	struct store_policy_stats ps;
	struct store_stats st;
	struct store *s;
	size_t la, stored, w1, w3;
	uint8_t *a;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/quota", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	w1 = la + STORE_ENTRY_CHARGE;		/* a profile of one policy */
	w3 = la + 3 * STORE_ENTRY_CHARGE;	/* one of three */
	o.max_bytes = w3 * 10;
	o.ns_max_bytes = w3 * 2 + w3 / 2;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(put1(s, "good/p", "n", 100, 110, a, la), 0);
	for (int i = 0; i < 6; i++)	/* three policies each time: one copy, counted once */
		assert_int_equal(store_put(s, (const char *[]){ "evil/x", "evil/y", "evil/z" }, 3,
					   "n", 200 + i * 10, 210 + i * 10, a, la, &stored), 0);
	store_stats(s, &st);
	assert_int_equal(st.evicted_quota, 4);
	assert_int_equal(st.evicted_full, 0);
	store_policy_stats(s, "evil/y", &ps);
	assert_int_equal(ps.files, 2);
	assert_int_equal(ps.first_s, 240);	/* its newest two */
	store_policy_stats(s, "good/p", &ps);
	assert_int_equal(ps.files, 1);
	store_close(s);

	/* full: the biggest namespace pays, though good's profile is the oldest */
	o.max_bytes = w1 + 2 * w3 + w1 / 2;	/* what it holds, and half a profile */
	o.ns_max_bytes = o.max_bytes;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 2; i++)
		assert_int_equal(put1(s, "evil/x", "n", 300 + i * 10, 310 + i * 10, a, la), 0);
	store_stats(s, &st);
	assert_int_equal(st.files, 4);
	assert_int_equal(st.evicted_full, 1);	/* evil's 240 */
	store_policy_stats(s, "good/p", &ps);
	assert_int_equal(ps.files, 1);
	assert_int_equal(ps.first_s, 100);
	store_policy_stats(s, "evil/x", &ps);
	assert_int_equal(ps.files, 3);
	assert_int_equal(ps.first_s, 250);
	store_close(s);
	free(a);
}

/*
 * Namespaces come and go: the store forgets one once it holds nothing of it
 * (expired, evicted for room, or trimmed at start), and knows it again at its
 * next profile. Kept, 200 namespaces' worth of index stayed for good.
 */
static void test_store_namespaces_forgotten(void **state)
{
	char sdir[128], err[200], key[64];
	struct store_opts o = { .dir = sdir, .max_bytes = 1 << 30, .retention_s = 3600 };
	struct store_stats st;
	struct store *s;
	size_t la, w1;
	uint8_t *a;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/nsgone", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	w1 = la + STORE_ENTRY_CHARGE;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "ns-%d/p", i);
		assert_int_equal(put1(s, key, "n", 1000 + i, 1010 + i, a, la), 0);
	}
	store_stats(s, &st);
	assert_int_equal(st.namespaces, 200);
	assert_int_equal(st.files, 200);
	/* the first 100 ended before the cutoff, then the rest */
	store_expire(s, 1010 + 100 + 3600);
	store_stats(s, &st);
	assert_int_equal(st.namespaces, 100);
	store_expire(s, 1010 + 200 + 3600);
	store_stats(s, &st);
	assert_int_equal(st.evicted_age, 200);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.namespaces, 0);
	assert_int_equal(count_files(sdir), 0);
	/* one comes back: known again, its bytes counted to it */
	assert_int_equal(put1(s, "ns-5/p", "n", 9000, 9010, a, la), 0);
	store_stats(s, &st);
	assert_int_equal(st.namespaces, 1);
	assert_int_equal(st.bytes, w1);
	store_close(s);

	/* room for three: a fourth namespace's profile pushes one out, and its name */
	o.max_bytes = 3 * w1 + w1 / 2;
	o.ns_max_bytes = o.max_bytes;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(put1(s, "ns-a/p", "n", 9100, 9110, a, la), 0);
	assert_int_equal(put1(s, "ns-b/p", "n", 9200, 9210, a, la), 0);
	assert_int_equal(put1(s, "ns-c/p", "n", 9300, 9310, a, la), 0);
	store_stats(s, &st);
	assert_int_equal(st.evicted_full, 1);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.namespaces, 3);
	store_close(s);

	/* a smaller store at start: trimmed to one, which is all it knows */
	o.max_bytes = w1 + w1 / 2;
	o.ns_max_bytes = o.max_bytes;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	store_stats(s, &st);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.namespaces, 1);
	store_close(s);
	free(a);
}

/* Profiles under path whose names match the shell pattern glob. */
static int count_named(const char *path, const char *glob)
{
	char cmd[512], *out;
	int n;

	snprintf(cmd, sizeof(cmd), "find '%s' -name '%s' | wc -l", path, glob);
	out = run_capture(cmd);
	assert_non_null(out);
	n = atoi(out);
	free(out);
	return n;
}

/* A policy directory's profiles (rel: under the store). */
static int count_in(const char *sdir, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", sdir, rel);
	return access(path, F_OK) ? 0 : count_files(path);
}

/*
 * Retention amid what stays: old and new profiles interleaved in time (a
 * long one started early and still running), across namespaces, cluster
 * policies, and an upload linked into two policies. Exactly the old ones
 * go, with all their links and files; the totals are exact.
 */
static void test_store_expire_mixed(void **state)
{
	static const struct {
		const char *keys[2];
		int64_t from, until;
		bool kept;
	} up[] = {
		{ { "shop/a", "shop/b" }, 100, 110, false },
		{ { "shop/a", "shop/b" }, 5000, 5010, true },
		{ { "shop/c" }, 120, 130, false },
		{ { "web/x" }, 105, 4800, true },	/* early, still running */
		{ { "web/y" }, 200, 210, false },
		{ { "wide" }, 50, 60, false },
		{ { "wide" }, 4600, 4610, true },
		{ { "gone/p" }, 300, 310, false },	/* its namespace's only one */
		{ { "shop/c" }, 4490, 4499, false },	/* ended just before the cutoff */
		{ { "shop/c" }, 4490, 4500, true },	/* ... at it */
	};
	char sdir[128], err[200];
	struct store_opts o = { .dir = sdir, .max_bytes = 1 << 30, .retention_s = 3600 };
	struct store_policy_stats ps;
	struct store_stats st;
	struct store *s;
	size_t la, stored;
	uint8_t *a;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/mixed", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &a, &la);
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		size_t n = up[i].keys[1] ? 2 : 1;

		assert_int_equal(store_put(s, up[i].keys, n, "n", up[i].from, up[i].until, a, la,
					   &stored), 0);
		assert_int_equal(stored, n);
	}
	store_stats(s, &st);
	assert_int_equal(st.files, 10);
	assert_int_equal(st.bytes, 10 * la + 12 * STORE_ENTRY_CHARGE);
	assert_int_equal(st.namespaces, 4);	/* shop, web, gone, the cluster's */
	assert_int_equal(count_files(sdir), 12);

	store_expire(s, 4500 + 3600);	/* the cutoff: 4500 */
	store_stats(s, &st);
	assert_int_equal(st.evicted_age, 6);	/* the linked one once */
	assert_int_equal(st.evicted_full + st.evicted_quota, 0);
	assert_int_equal(st.files, 4);
	assert_int_equal(st.bytes, 4 * la + 5 * STORE_ENTRY_CHARGE);
	assert_int_equal(st.namespaces, 3);
	/* on disk: the kept ones' files (both links), none of the others' */
	assert_int_equal(count_files(sdir), 5);
	assert_int_equal(count_named(sdir, "000000005000-000000005010-*"), 2);
	assert_int_equal(nlink_of(sdir, "ns/shop/a/000000005000-*"), 2);
	assert_int_equal(count_named(sdir, "000000000105-000000004800-*"), 1);
	assert_int_equal(count_named(sdir, "000000004600-000000004610-*"), 1);
	assert_int_equal(count_named(sdir, "000000004490-000000004500-*"), 1);
	assert_int_equal(count_named(sdir, "000000004490-000000004499-*"), 0);
	assert_int_equal(count_in(sdir, "ns/web/y") + count_in(sdir, "ns/gone/p"), 0);
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		char glob[64];

		snprintf(glob, sizeof(glob), "%012lld-%012lld-*", (long long)up[i].from,
			 (long long)up[i].until);
		assert_int_equal(count_named(sdir, glob) > 0, up[i].kept);
	}
	/* the index, still in time order: what each policy holds, and spans */
	store_policy_stats(s, "shop/c", &ps);
	assert_int_equal(ps.files, 1);
	assert_int_equal(ps.last_s, 4500);
	store_policy_stats(s, "shop/b", &ps);
	assert_int_equal(ps.files, 1);
	assert_int_equal(ps.first_s, 5000);
	store_policy_stats(s, "web/x", &ps);
	assert_int_equal(ps.first_s, 105);
	store_policy_stats(s, "gone/p", &ps);
	assert_int_equal(ps.files, 0);
	{
		struct pprof_merge *m = pprof_merge_new();
		unsigned int bad;

		assert_int_equal(store_query(s, "shop/a", 0, 0, m, &bad), 1);
		assert_int_equal(bad, 0);
		pprof_merge_free(m);
	}

	/* again, later: the kept ones moved down in the index go in their turn */
	store_expire(s, 4700 + 3600);	/* shop/c's 4500 and wide's 4610 */
	store_stats(s, &st);
	assert_int_equal(st.evicted_age, 8);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.bytes, 2 * la + 3 * STORE_ENTRY_CHARGE);
	assert_int_equal(st.namespaces, 2);	/* shop, web */
	assert_int_equal(count_files(sdir), 3);
	store_close(s);

	/* and a restarted store finds just that */
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	store_stats(s, &st);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.bytes, 2 * la + 3 * STORE_ENTRY_CHARGE);
	assert_int_equal(st.namespaces, 2);
	store_close(s);
	free(a);
}

/* Uploads for test_store_expire_concurrent: NPUT, in time order, over 20 namespaces. */
enum { NPUT = 200 };

struct putter {
	struct store *s;
	uint8_t *buf;
	size_t len;
	int done;	/* uploads stored so far (atomic) */
	int failed;
};

static void *put_all(void *arg)
{
	struct putter *p = arg;
	char key[64];

	for (int i = 0; i < NPUT; i++) {
		snprintf(key, sizeof(key), "ns-%d/p", i % 20);
		p->failed += put1(p->s, key, "n", 1000 + i, 1005 + i, p->buf, p->len) != 0;
		__atomic_store_n(&p->done, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * Retention while uploads go on (its files are removed after the lock, its
 * namespaces forgotten meanwhile): what the index holds is what is on disk,
 * and nothing is counted twice or lost.
 */
static void test_store_expire_concurrent(void **state)
{
	char sdir[128], err[200];
	struct store_opts o = { .dir = sdir, .max_bytes = 1 << 30, .retention_s = 3600 };
	struct putter p = { 0 };
	struct store_stats st;
	pthread_t t;
	int done;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/concurrent", dir);
	encode_one(0x400000, 5, 10, 1000000000000LL, &p.buf, &p.len);
	p.s = store_open(&o, err, sizeof(err));
	assert_non_null(p.s);
	assert_int_equal(pthread_create(&t, NULL, put_all, &p), 0);
	do {	/* what ended 50 uploads ago goes */
		done = __atomic_load_n(&p.done, __ATOMIC_ACQUIRE);
		store_expire(p.s, 1000 + done - 50 + 3600);
	} while (done < NPUT);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(p.failed, 0);
	store_stats(p.s, &st);
	assert_int_equal(st.stored, NPUT);
	assert_int_equal(st.evicted_age + st.files, NPUT);
	assert_int_equal(st.files, 55);	/* the last cutoff: 1000 + NPUT - 50, until_s 1005 + i */
	assert_int_equal(count_files(sdir), (int)st.files);
	assert_int_equal(st.bytes, st.files * (p.len + STORE_ENTRY_CHARGE));
	store_expire(p.s, 1000 + NPUT + 5 + 3601);
	store_stats(p.s, &st);
	assert_int_equal(st.evicted_age, NPUT);
	assert_int_equal(st.files + st.bytes + st.namespaces, 0);
	assert_int_equal(count_files(sdir), 0);
	store_close(p.s);
	free(p.buf);
}

static void test_store_dir_unusable(void **state)
{
	char err[200], path[128];
	struct store_opts o = { .dir = path };
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/afile", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/afile/store", dir);
	err[0] = 0;
	assert_null(store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "store directory"));
}


/*
 * A policy's status is written once, then not again while it is unchanged,
 * however long it is: here an OnDemand policy with the longest names,
 * completed into the store while an export fails, with large counts: over
 * 2 KiB of JSON, which a fixed 2 KiB copy of the last status truncated, so
 * that it never compared equal and was written at every pass.
 */
static void writes_free(struct status_write *w)
{
	while (w) {
		struct status_write *next = w->next;

		status_write_free(w);
		w = next;
	}
}

static void test_status_long_written_once(void **state)
{
	char ns[64], name[254], key[320], failing[300];
	struct store_opts o = { .dir = dir, .max_bytes = 1 << 20, .retention_s = 3600 };
	struct policy p = { 0 };
	struct policy_result r = { .accepted = true, .pods = 3, .nodes = 1 };
	struct status_input in = { .p = &p, .r = &r, .nodes = 1, .acked = 1, .connected = 1,
				   .samples = 98765432109, .identity = "ctl-0",
				   .now = 1800000000 };
	struct status_write *events = NULL, *w;
	struct policy_rt *rt;
	cJSON *body;
	char err[256];
	bool completed;

	(void)state;
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = 0;
	memset(name, 'p', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	memset(failing, 'e', sizeof(failing) - 1);
	failing[sizeof(failing) - 1] = 0;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	p.ns = ns;
	p.name = name;
	p.key = key;
	p.uid = "u1";
	p.generation = 123456;
	p.mode = MODE_ONDEMAND;
	p.duration_s = 60;
	p.srv_start = in.now - 120;
	in.store = store_open(&o, err, sizeof(err));
	assert_non_null(in.store);
	snprintf(in.ex.failing, sizeof(in.ex.failing), "%s", failing);
	in.ex.last_success = in.now - 30;
	in.ex.dropped = 12345;
	rt = policy_rt_new(&p);
	assert_non_null(rt);
	w = policy_status(&in, rt, &events, &completed);
	assert_non_null(w);
	assert_true(completed);
	assert_true(strlen(w->body) > 2047);
	assert_non_null(strstr(w->body, "\"phase\":\"Completed\""));
	assert_non_null(strstr(w->body, failing));
	/* the server holds it now, and the controller's cache with it */
	body = cJSON_Parse(w->body);
	assert_non_null(body);
	p.srv_conditions = cJSON_DetachItemFromObject(cJSON_GetObjectItem(body, "status"),
						      "conditions");
	cJSON_Delete(body);
	status_write_free(w);
	/* the same a second later, and a minute later: nothing to write */
	for (int i = 0; i < 2; i++) {
		in.now += i ? 60 : 1;
		assert_null(policy_status(&in, rt, &events, &completed));
		assert_false(completed);
	}
	/* the status rewritten after STATUS_REWRITE_S even when unchanged */
	in.now += STATUS_REWRITE_S;
	w = policy_status(&in, rt, &events, &completed);
	assert_non_null(w);
	status_write_free(w);
	writes_free(events);
	policy_rt_free(rt);
	cJSON_Delete(p.srv_conditions);
	store_close(in.store);
}

/* A status whose numbers alone moved is held back within the second it was
 * written (and written at retry_at); one whose words changed is written at once. */
static void test_status_numbers_held_back(void **state)
{
	struct policy p = { .ns = "shop", .name = "web", .key = "shop/web", .uid = "u1",
			    .generation = 1, .frequency_hz = 19 };
	struct policy_result r = { .accepted = true, .pods = 30, .nodes = 3 };
	struct status_input in = { .p = &p, .r = &r, .nodes = 3, .acked = 1, .connected = 3,
				   .identity = "ctl-0", .now = 1800000000 };
	struct status_write *events = NULL, *w;
	struct policy_rt *rt = policy_rt_new(&p);
	bool completed;

	(void)state;
	assert_non_null(rt);
	w = policy_status(&in, rt, &events, &completed);
	assert_non_null(w);
	assert_non_null(strstr(w->body, "1 of 3 node(s) have applied"));
	status_write_free(w);
	in.acked = 2;	/* the same second, a number: held back */
	assert_null(policy_status(&in, rt, &events, &completed));
	assert_int_equal(rt->retry_at, in.now + STATUS_NUMBERS_GAP_S);
	in.acked = 3;	/* words: every node applied them, Ready */
	w = policy_status(&in, rt, &events, &completed);
	assert_non_null(w);
	assert_non_null(strstr(w->body, "AgentsProfiling"));
	status_write_free(w);
	r.pods = 31;	/* a number again, the same second */
	assert_null(policy_status(&in, rt, &events, &completed));
	in.now += STATUS_NUMBERS_GAP_S;	/* its time: written as it is then */
	w = policy_status(&in, rt, &events, &completed);
	assert_non_null(w);
	assert_non_null(strstr(w->body, "31 pod(s)"));
	status_write_free(w);
	writes_free(events);
	policy_rt_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_by_meaning),
		cmocka_unit_test(test_merge_long_names),
		cmocka_unit_test(test_merge_label_text),
		cmocka_unit_test(test_merge_refuses_garbage),
		cmocka_unit_test(test_merge_refuses_dangling_ids),
		cmocka_unit_test(test_store_put_query_bounds),
		cmocka_unit_test(test_store_one_copy),
		cmocka_unit_test(test_store_namespace_quota),
		cmocka_unit_test(test_store_namespaces_forgotten),
		cmocka_unit_test(test_store_expire_mixed),
		cmocka_unit_test(test_store_expire_concurrent),
		cmocka_unit_test(test_store_dir_unusable),
		cmocka_unit_test_setup_teardown(test_status_long_written_once, setup, teardown),
		cmocka_unit_test(test_status_numbers_held_back),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
