// SPDX-License-Identifier: Apache-2.0
/*
 * The pool (see pool.h). A job is published under the lock with a new
 * generation; each thread takes indices from one atomic counter until none
 * is left, then reports done. The owner waits for every thread to report, so
 * that no thread still reads the job when pool_run returns.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool.h"

struct pool {
	pthread_mutex_t lock;	/* the job's fields but next */
	pthread_cond_t work, done;
	pthread_t thread[POOL_MAX_THREADS];
	int nthreads;
	unsigned gen;		/* of the current job */
	int finished;		/* threads done with it */
	bool stop;
	void (*fn)(void *arg, int i);
	void *arg;
	int n;
	int next;		/* atomic: the next index to take */
};

/* Calls fn for indices taken until none is left. */
static void drain(struct pool *p, void (*fn)(void *, int), void *arg, int n)
{
	int i;

	while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < n)
		fn(arg, i);
}

static void *pool_main(void *arg)
{
	struct pool *p = arg;
	unsigned seen = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		seen = p->gen;
		void (*fn)(void *, int) = p->fn;
		void *job = p->arg;
		int n = p->n;

		pthread_mutex_unlock(&p->lock);
		drain(p, fn, job, n);
		pthread_mutex_lock(&p->lock);
		if (++p->finished == p->nthreads)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void stop_threads(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->thread[i], NULL);
}

struct pool *pool_new(int threads)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	threads = threads < 0 ? 0 : threads > POOL_MAX_THREADS ? POOL_MAX_THREADS : threads;
	for (; p->nthreads < threads; p->nthreads++)
		if (pthread_create(&p->thread[p->nthreads], NULL, pool_main, p)) {
			stop_threads(p);
			pool_free(p);
			return NULL;
		}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	if (!p->stop)
		stop_threads(p);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void pool_run(struct pool *p, int n, void (*fn)(void *arg, int i), void *arg)
{
	if (n <= 0)
		return;
	if (!p->nthreads || n == 1) {	/* nothing to share */
		for (int i = 0; i < n; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->finished = 0;
	__atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
	p->gen++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	drain(p, fn, arg, n);
	pthread_mutex_lock(&p->lock);
	while (p->finished < p->nthreads)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* CPUs the cgroup v2 quota allows (cpu.max "QUOTA PERIOD", rounded up), 0: no quota. */
static int quota_cpus(const char *path)
{
	long long quota, period;
	char buf[64] = "";
	FILE *f = fopen(path, "re");
	int n = 0;

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%lld %lld", &quota, &period) == 2 &&
	    quota > 0 && period > 0)
		n = (int)((quota + period - 1) / period);
	fclose(f);
	return n;
}

int pool_threads_for_cpus_in(const char *cpu_max, int max)
{
	cpu_set_t set;
	int n = 1, q = quota_cpus(cpu_max);

	if (!sched_getaffinity(0, sizeof(set), &set))
		n = CPU_COUNT(&set);
	if (q && q < n)
		n = q;
	n -= 1;	/* the caller's thread is one */
	return n < 0 ? 0 : n > max ? max : n;
}

int pool_threads_for_cpus(int max)
{
	/* in a container, its own cgroup: the namespace's root */
	return pool_threads_for_cpus_in("/sys/fs/cgroup/cpu.max", max);
}
