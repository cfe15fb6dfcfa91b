// SPDX-License-Identifier: Apache-2.0
/*
 * The on-disk cache of compiled unwind tables: what comes back is what went
 * in; a file that was cut, flipped, swapped for another format or options,
 * or whose rows are out of order is refused and removed; names are build ids
 * only; the directory keeps its byte budget.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>
#include <unistd.h>

#include "helpers.h"
#include "table_cache.h"

#define BID "0123456789abcdef0123456789abcdef01234567"
#define MAXR 1000000u

static char dir[128];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "tcache");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void fill(struct unwind_row *r, uint32_t n, uint32_t base)
{
	for (uint32_t i = 0; i < n; i++)
		r[i] = (struct unwind_row){ .pc = base + i * 16, .cfa_offset = (int32_t)(8 + i % 64),
					    .rbp_offset = -16, .cfa_type = 1, .rbp_type = 1 };
}

static void test_round_trip(void **state)
{
	struct table_cache *c = table_cache_open(dir, 0);
	struct unwind_row in[500], *out = NULL;
	struct table_cache_stats st;
	uint32_t n = 0;

	(void)state;
	assert_non_null(c);
	fill(in, 500, 0x1000);
	assert_int_equal(table_cache_get(c, BID, 0, MAXR, &out, &n), -ENOENT);
	assert_int_equal(table_cache_put(c, BID, 0, MAXR, in, 500), 0);
	assert_int_equal(table_cache_get(c, BID, 0, MAXR, &out, &n), 0);
	assert_int_equal(n, 500);
	assert_memory_equal(out, in, sizeof(in));
	free(out);
	/* built with other options: not this one's table, a miss (left for its owner) */
	assert_int_equal(table_cache_get(c, BID, TABLE_CACHE_F_DEBUG_FILE, MAXR, &out, &n), -ENOENT);
	assert_int_equal(table_cache_get(c, BID, 0, MAXR, &out, &n), 0);	/* still there */
	free(out);
	assert_int_equal(table_cache_put(c, BID, 0, 4096, in, 500), 0);
	assert_int_equal(table_cache_get(c, BID, 0, MAXR, &out, &n), -ENOENT);
	/* names are build ids, nothing else */
	assert_int_equal(table_cache_put(c, "../../etc/passwd", 0, MAXR, in, 500), -EINVAL);
	assert_int_equal(table_cache_get(c, "../x", 0, MAXR, &out, &n), -EINVAL);
	assert_int_equal(table_cache_get(c, "", 0, MAXR, &out, &n), -EINVAL);
	table_cache_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.written, 2);
	assert_int_equal(st.rejected, 0);
	table_cache_close(c);
}

/* Writes the good file, then damages it with f; the get must refuse and remove it. */
static void damaged(struct table_cache *c, void (*f)(const char *path))
{
	struct unwind_row in[300], *out = NULL;
	char path[256];
	uint32_t n = 0;

	fill(in, 300, 0x2000);
	assert_int_equal(table_cache_put(c, BID, 0, MAXR, in, 300), 0);
	snprintf(path, sizeof(path), "%s/%s.tbl", dir, BID);
	f(path);
	assert_int_equal(table_cache_get(c, BID, 0, MAXR, &out, &n), -EBADMSG);
	assert_null(out);
	assert_int_not_equal(access(path, F_OK), 0);	/* removed */
}

static void poke(const char *path, off_t at, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, at), (ssize_t)len);
	close(fd);
}

static void cut(const char *path)
{
	assert_int_equal(truncate(path, 32 + 299 * 12), 0);
}

static void flip_row(const char *path)
{
	poke(path, 32 + 100 * 12 + 5, "\xff", 1);
}

static void huge_count(const char *path)
{
	uint32_t n = 0x7fffffff;

	poke(path, 8, &n, 4);	/* nrows: the size no longer matches, nor the budget */
}

static void unsorted(const char *path)
{
	struct unwind_row r[2];
	int fd = open(path, O_RDWR);
	uint32_t crc;

	assert_true(fd >= 0);
	/* swap two rows and fix the CRC up: only the order check can catch it */
	assert_int_equal(pread(fd, r, sizeof(r), 32 + 10 * 12), (ssize_t)sizeof(r));
	{
		struct unwind_row t = r[0];

		r[0] = r[1];
		r[1] = t;
	}
	assert_int_equal(pwrite(fd, r, sizeof(r), 32 + 10 * 12), (ssize_t)sizeof(r));
	{
		static struct unwind_row all[300];

		assert_int_equal(pread(fd, all, sizeof(all), 32), (ssize_t)sizeof(all));
		crc = (uint32_t)crc32(0, (const unsigned char *)all, sizeof(all));
	}
	assert_int_equal(pwrite(fd, &crc, 4, 20), 4);
	close(fd);
}

static void not_a_table(const char *path)
{
	poke(path, 0, "ELF!", 4);
}

static void test_damaged(void **state)
{
	struct table_cache *c = table_cache_open(dir, 0);

	(void)state;
	assert_non_null(c);
	damaged(c, cut);
	damaged(c, flip_row);
	damaged(c, huge_count);
	damaged(c, unsorted);
	damaged(c, not_a_table);
	table_cache_close(c);
}

/* A symlink in place of a table is not followed. */
static void test_symlink(void **state)
{
	struct table_cache *c = table_cache_open(dir, 0);
	struct unwind_row *out = NULL;
	char path[256];
	uint32_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s.tbl", dir, "ab");
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(table_cache_get(c, "ab", 0, MAXR, &out, &n), -ENOENT);
	unlink(path);
	table_cache_close(c);
}

/* 20 tables of 40 KiB under a 200 KiB budget: the oldest go, the newest stay. */
static void test_budget(void **state)
{
	static struct unwind_row in[3400];
	struct table_cache *c = table_cache_open(dir, 200u << 10);
	struct table_cache_stats st;
	struct unwind_row *out;
	uint32_t n;
	char bid[16];

	(void)state;
	fill(in, 3400, 0x4000);
	for (int i = 0; i < 20; i++) {
		struct timespec ts = { 0, 2000000 };

		snprintf(bid, sizeof(bid), "%02x", i);
		assert_int_equal(table_cache_put(c, bid, 0, MAXR, in, 3400), 0);
		nanosleep(&ts, NULL);	/* distinct mtimes */
	}
	table_cache_stats(c, &st);
	assert_true(st.bytes <= 200u << 10);
	assert_true(st.evicted >= 15);
	assert_int_equal(table_cache_get(c, "13", 0, MAXR, &out, &n), 0);	/* the newest */
	free(out);
	assert_int_equal(table_cache_get(c, "00", 0, MAXR, &out, &n), -ENOENT);	/* the oldest */
	table_cache_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
