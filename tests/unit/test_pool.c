// SPDX-License-Identifier: Apache-2.0
/*
 * controller/pool.c: every index of a job is run exactly once, job after job,
 * whatever the number of threads; the caller's writes before a job are seen
 * by the threads, and the threads' writes by the caller after it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <unistd.h>

#include "helpers.h"
#include "pool.h"

struct job {
	int *calls;		/* per index: how many times it ran */
	const int *input;	/* written by the caller before the job */
	int *output;
	pthread_t *who;		/* the thread that ran each index */
};

static void run_one(void *arg, int i)
{
	struct job *j = arg;

	__atomic_fetch_add(&j->calls[i], 1, __ATOMIC_RELAXED);
	j->output[i] = j->input[i] * 2;	/* a plain write: ThreadSanitizer checks the hand-over */
	j->who[i] = pthread_self();
	if (i % 97 == 0)
		usleep(100);	/* uneven work: the others take more */
}

static void jobs(int threads, int rounds, int n, bool *ret_shared)
{
	struct pool *p = pool_new(threads);
	int *calls = calloc((size_t)n + 1, sizeof(int)), *in = calloc((size_t)n + 1, sizeof(int));
	int *out = calloc((size_t)n + 1, sizeof(int));
	pthread_t *who = calloc((size_t)n + 1, sizeof(pthread_t));
	struct job j = { calls, in, out, who };

	assert_non_null(p);
	assert_non_null(calls);
	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(who);
	*ret_shared = false;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			in[i] = r * n + i;
			calls[i] = 0;
		}
		pool_run(p, n, run_one, &j);
		for (int i = 0; i < n; i++) {
			assert_int_equal(calls[i], 1);
			assert_int_equal(out[i], 2 * (r * n + i));
			*ret_shared |= !pthread_equal(who[i], pthread_self());
		}
	}
	pool_run(p, 0, run_one, &j);	/* nothing to do: returns */
	pool_free(p);
	free(calls);
	free(in);
	free(out);
	free(who);
}

static void test_every_index_once(void **state)
{
	bool shared;

	(void)state;
	jobs(3, 200, 1000, &shared);
	assert_true(shared);	/* the pool's threads took part */
	jobs(1, 50, 7, &shared);	/* a few indices, one thread: each still runs once */
	jobs(2, 50, 1, &shared);	/* one index: the caller alone */
	assert_false(shared);
}

static void test_no_threads(void **state)
{
	bool shared;

	(void)state;
	jobs(0, 20, 500, &shared);
	assert_false(shared);
	jobs(-3, 2, 10, &shared);	/* below 0: none */
	assert_false(shared);
}

static int threads_with(const char *cpu_max, int max)
{
	char path[] = "/tmp/test_pool.XXXXXX";
	int fd = mkstemp(path), n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, cpu_max, strlen(cpu_max)), (ssize_t)strlen(cpu_max));
	close(fd);
	n = pool_threads_for_cpus_in(path, max);
	unlink(path);
	return n;
}

/* The CPUs of the affinity, fewer under a cgroup quota, less the caller's. */
static void test_threads_for_cpus(void **state)
{
	cpu_set_t set;
	int cpus;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	cpus = CPU_COUNT(&set);
	assert_int_equal(pool_threads_for_cpus(0), 0);
	assert_int_equal(threads_with("max 100000\n", 8), cpus - 1 < 8 ? cpus - 1 : 8);
	assert_int_equal(pool_threads_for_cpus_in("/nonexistent/cpu.max", 8),
			 cpus - 1 < 8 ? cpus - 1 : 8);
	assert_int_equal(threads_with("100000 100000\n", 8), 0);	/* one CPU: the caller's */
	assert_int_equal(threads_with("50000 100000\n", 8), 0);	/* half of one */
	/* one and a half CPUs: two, if the affinity has them */
	assert_int_equal(threads_with("150000 100000\n", 8), cpus >= 2 ? 1 : 0);
	assert_int_equal(threads_with("garbage\n", 2), cpus - 1 < 2 ? cpus - 1 : 2);
	assert_int_equal(threads_with("800000 100000\n", 1), cpus >= 2 ? 1 : 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_index_once),
		cmocka_unit_test(test_no_threads),
		cmocka_unit_test(test_threads_for_cpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
