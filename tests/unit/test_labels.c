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

/* A policy's labels after the identity ones: nothing that passes for one of them. */
static void test_foreign(void **state)
{
	struct label_set ls;

	(void)state;
	assert_int_equal(label_set_init(&ls, 16), 0);
	assert_true(label_set_put(&ls, "namespace", "shop"));
	assert_true(label_set_put(&ls, "pod_uid", "u-1"));
	assert_false(label_set_put_foreign(&ls, "Service.Name", "early"));	/* before service_name */
	assert_false(label_set_put_foreign(&ls, "k8s.namespace.name", "victim"));
	assert_false(label_set_put_foreign(&ls, "Namespace", "victim"));
	assert_false(label_set_put_foreign(&ls, "Pod-UID", "u-2"));
	assert_false(label_set_put_foreign(&ls, "__name__", "x"));
	assert_true(label_set_put_foreign(&ls, "service_name", "checkout"));	/* the controller's */
	assert_false(label_set_put_foreign(&ls, "Service-Name", "other"));
	assert_false(label_set_put_foreign(&ls, "k8s.deployment.name", "x"));	/* not as we spell it */
	assert_true(label_set_put_foreign(&ls, "team", "blue"));
	assert_false(label_set_put_foreign(&ls, "team", "red"));
	assert_int_equal(ls.n, 4);
	assert_string_equal(label_set_get(&ls, "namespace"), "shop");
	assert_string_equal(label_set_get(&ls, "service_name"), "checkout");
	label_set_free(&ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_wins),
		cmocka_unit_test(test_foreign),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
