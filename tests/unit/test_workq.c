// SPDX-License-Identifier: Apache-2.0
/*
 * The work queue: items come back done, in order; the worker stops at max_done
 * untaken results; the eventfd is readable exactly while results wait; freeing
 * gives every item back, done or not.
 */
#include <poll.h>
#include <unistd.h>

#include "helpers.h"
#include "workq.h"

struct job {
	struct workq_item item;
	int n;
	bool done;
};

static int started;	/* items whose work began (the worker's only write is to its item) */

static void work(struct workq_item *it)
{
	struct job *j = (struct job *)it;

	__atomic_fetch_add(&started, 1, __ATOMIC_SEQ_CST);
	j->done = true;
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void test_order_and_fd(void **state)
{
	struct job jobs[5];
	struct workq *q = workq_new("t-workq", 8);

	(void)state;
	assert_non_null(q);
	assert_false(readable(workq_fd(q)));
	for (int i = 0; i < 5; i++) {
		jobs[i] = (struct job){ .item.work = work, .n = i };
		workq_submit(q, &jobs[i].item);
	}
	assert_true(workq_wait_idle(q, 10000));
	assert_true(readable(workq_fd(q)));
	assert_int_equal(workq_outstanding(q), 5);
	for (int i = 0; i < 5; i++) {
		struct job *j = (struct job *)workq_take(q);

		assert_non_null(j);
		assert_int_equal(j->n, i);
		assert_true(j->done);
	}
	assert_null(workq_take(q));
	assert_false(readable(workq_fd(q)));
	assert_int_equal(workq_outstanding(q), 0);
	workq_free(q, NULL);
}

static int released;

static void release(struct workq_item *it)
{
	(void)it;
	released++;
}

static void test_bounded_results(void **state)
{
	struct job jobs[4];
	struct workq *q = workq_new("t-workq", 1);

	(void)state;
	started = 0;
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct job){ .item.work = work, .n = i };
		workq_submit(q, &jobs[i].item);
	}
	/* one result waits untaken: the worker goes no further (the wait returns then) */
	assert_false(workq_wait_idle(q, -1));
	assert_int_equal(__atomic_load_n(&started, __ATOMIC_SEQ_CST), 1);
	assert_false(workq_wait_item(q, &jobs[1].item, 0));	/* not started */
	assert_int_equal(((struct job *)workq_take(q))->n, 0);
	assert_true(workq_wait_item(q, &jobs[1].item, -1));
	assert_int_equal(__atomic_load_n(&started, __ATOMIC_SEQ_CST), 2);
	/* a queued item taken back is never run */
	assert_true(workq_cancel(q, &jobs[3].item));
	assert_false(workq_cancel(q, &jobs[1].item));	/* done already */
	/* freed with one done and one not started: both given back */
	released = 0;
	workq_free(q, release);
	assert_int_equal(released, 2);
	assert_int_equal(__atomic_load_n(&started, __ATOMIC_SEQ_CST), 2);
}

static int gate_open, order;

struct ordered {
	struct workq_item item;
	bool block;		/* waits for gate_open */
	int started;		/* set first thing */
	int ran;		/* its turn, from 1 */
};

static void ordered_work(struct workq_item *it)
{
	struct ordered *o = (struct ordered *)it;

	__atomic_store_n(&o->started, 1, __ATOMIC_SEQ_CST);
	while (o->block && !__atomic_load_n(&gate_open, __ATOMIC_SEQ_CST))
		usleep(1000);
	o->ran = __atomic_add_fetch(&order, 1, __ATOMIC_SEQ_CST);
}

/*
 * One item at a time across queues, and an urgent queue's item before another
 * queue's that was queued first: while a blocking item runs, a plain item and
 * then an urgent one are queued; the urgent one runs second.
 */
static void test_urgent_first(void **state)
{
	struct workq *plain = workq_new("t-plain", 4), *urgent = workq_new("t-urgent", 4);
	struct ordered blocker = { .item.work = ordered_work, .block = true };
	struct ordered p2 = { .item.work = ordered_work }, u1 = { .item.work = ordered_work };

	(void)state;
	assert_non_null(plain);
	assert_non_null(urgent);
	workq_set_urgent(urgent);
	gate_open = order = 0;
	workq_submit(plain, &blocker.item);
	while (!__atomic_load_n(&blocker.started, __ATOMIC_SEQ_CST))
		usleep(1000);	/* it holds the slot */
	workq_submit(plain, &p2.item);
	workq_submit(urgent, &u1.item);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&order, __ATOMIC_SEQ_CST), 0);	/* one at a time */
	__atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
	assert_true(workq_wait_item(plain, &p2.item, -1));
	assert_true(workq_wait_item(urgent, &u1.item, -1));
	assert_int_equal(blocker.ran, 1);
	assert_int_equal(u1.ran, 2);
	assert_int_equal(p2.ran, 3);
	workq_free(plain, NULL);
	workq_free(urgent, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_fd),
		cmocka_unit_test(test_bounded_results),
		cmocka_unit_test(test_urgent_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
