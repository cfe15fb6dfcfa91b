// SPDX-License-Identifier: Apache-2.0
/* Four threads, each burning CPU in its own function, for argv[1] seconds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double secs = 3;
volatile unsigned long sink[4];

static double elapsed(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) + (b.tv_nsec - a->tv_nsec) / 1e9;
}

#define WORKER(n)                                                             \
	__attribute__((noinline)) void *worker_##n(void *arg)                 \
	{                                                                     \
		struct timespec a;                                            \
		(void)arg;                                                    \
		clock_gettime(CLOCK_MONOTONIC, &a);                           \
		while (elapsed(&a) < secs)                                    \
			for (unsigned long i = 0; i < 100000; i++)            \
				sink[n] += i;                                 \
		return NULL;                                                  \
	}
WORKER(0)
WORKER(1)
WORKER(2)
WORKER(3)

int main(int argc, char **argv)
{
	void *(*fns[4])(void *) = { worker_0, worker_1, worker_2, worker_3 };
	pthread_t t[4];

	if (argc > 1)
		secs = atof(argv[1]);
	for (int i = 0; i < 4; i++) {
		char name[16];

		pthread_create(&t[i], NULL, fns[i], NULL);
		snprintf(name, sizeof(name), "burner-%d", i);
		pthread_setname_np(t[i], name);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	return 0;
}
