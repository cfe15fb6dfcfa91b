// SPDX-License-Identifier: Apache-2.0
/* A target's labels: unique keys, the first put wins (identity labels go first). */
#include "helpers.h"
#include "labels.h"

static void test_first_wins(void **state)
{
	struct label_set ls;

	(void)state;
	assert_int_equal(label_set_init(&ls, 4), 0);
	assert_true(label_set_put(&ls, "namespace", "shop"));
	assert_true(label_set_put(&ls, "pod", "web-1"));
	/* a policy's static labels come after: same keys are refused */
	assert_false(label_set_put(&ls, "namespace", "victim"));
	assert_false(label_set_put(&ls, "pod", "other"));
	assert_true(label_set_put(&ls, "team", "blue"));
	assert_int_equal(ls.n, 3);
	assert_string_equal(label_set_get(&ls, "namespace"), "shop");
	assert_string_equal(label_set_get(&ls, "pod"), "web-1");
	assert_null(label_set_get(&ls, "zone"));
	/* no more room than asked for */
	assert_true(label_set_put(&ls, "a", "1"));
	assert_false(label_set_put(&ls, "b", "2"));
	assert_int_equal(ls.n, 4);
	label_set_free(&ls);
	assert_int_equal(ls.n, 0);
	assert_false(label_set_put(&ls, "x", "y"));	/* freed: refuses, no crash */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
