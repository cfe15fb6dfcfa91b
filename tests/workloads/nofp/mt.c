// SPDX-License-Identifier: Apache-2.0
/* Threads without frame pointers, each in its own hot function; unwinds must end at the thread start. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static double secs = 3;
volatile unsigned long sink[4];

static double elapsed(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) + (b.tv_nsec - a->tv_nsec) / 1e9;
}

__attribute__((noinline)) void spin(int n)
{
	for (unsigned long i = 0; i < 100000; i++)
		sink[n] += i ^ (unsigned long)n;
}

__attribute__((noinline)) void *mt_worker(void *arg)
{
	int n = (int)(long)arg;
	struct timespec a;

	clock_gettime(CLOCK_MONOTONIC, &a);
	while (elapsed(&a) < secs)
		spin(n);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[3];

	if (argc > 1)
		secs = atof(argv[1]);
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, mt_worker, (void *)i);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	return 0;
}
