// SPDX-License-Identifier: Apache-2.0
/*
 * common/hmap.c: what its users rely on when memory runs out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hmap.h"

static int fail_strdup;	/* the next strdup of this binary fails */

/* Interposed for the whole process (hmap.c's copies of its keys included). */
char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d;

	if (fail_strdup) {
		fail_strdup = 0;
		errno = ENOMEM;
		return NULL;
	}
	d = malloc(n);
	return d ? memcpy(d, s, n) : NULL;
}

/* n keys whose hashes start at the same slot of a 16-slot map (the first size). */
static void same_slot(char keys[][16], int n)
{
	int found = 0;

	for (int i = 0; found < n && i < 100000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		if (!found || (hmap_hash(k, strlen(k)) & 15) ==
			      (hmap_hash(keys[0], strlen(keys[0])) & 15))
			strcpy(keys[found++], k);
	}
	assert_int_equal(found, n);
}

/*
 * A key whose copy fails, put where a deleted key was: the keys probed past
 * that slot are still found (the tombstone must not become an empty slot,
 * which ends every probe there).
 */
static void test_put_without_memory_keeps_probe_chain(void **state)
{
	struct hmap m = { 0 };
	char k[3][16];

	(void)state;
	same_slot(k, 3);
	assert_int_equal(hmap_put(&m, k[0], (void *)1, NULL), 0);
	assert_int_equal(hmap_put(&m, k[1], (void *)2, NULL), 0);	/* probed past k[0] */
	assert_int_equal(m.cap, 16);
	assert_ptr_equal(hmap_del(&m, k[0]), (void *)1);	/* its slot: a tombstone */

	fail_strdup = 1;
	assert_int_equal(hmap_put(&m, k[2], (void *)3, NULL), -ENOMEM);
	assert_int_equal(fail_strdup, 0);	/* the failure was the injected one */
	assert_int_equal(m.used, 2);	/* k[1] and the tombstone */
	assert_ptr_equal(hmap_get(&m, k[1]), (void *)2);
	assert_null(hmap_get(&m, k[2]));
	assert_int_equal(m.n, 1);

	assert_int_equal(hmap_put(&m, k[2], (void *)3, NULL), 0);	/* memory again */
	assert_ptr_equal(hmap_get(&m, k[1]), (void *)2);
	assert_ptr_equal(hmap_get(&m, k[2]), (void *)3);
	assert_int_equal(m.n, 2);
	hmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_without_memory_keeps_probe_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
