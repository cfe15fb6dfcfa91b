/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_POOL_H
#define CONTROLLER_POOL_H
/*
 * A fixed set of threads that run one job at a time with the thread that asks:
 * pool_run(p, n, fn, arg) calls fn(arg, i) once for each i in [0, n), spread
 * over the pool's threads and the caller's, and returns when every call has
 * returned. One caller at a time (the pool has one owner). fn must not call
 * pool_run.
 */
struct pool;

#define POOL_MAX_THREADS 8

/* threads: how many besides the caller's (0: pool_run runs everything itself).
 * NULL when out of memory or a thread cannot start. */
struct pool *pool_new(int threads);
void pool_free(struct pool *p);
void pool_run(struct pool *p, int n, void (*fn)(void *arg, int i), void *arg);
/* Threads for the CPUs this process may run on (its affinity, and the cgroup v2
 * quota of /sys/fs/cgroup/cpu.max, or of cpu_max), besides the caller's: 0 to max. */
int pool_threads_for_cpus(int max);
int pool_threads_for_cpus_in(const char *cpu_max, int max);
#endif
