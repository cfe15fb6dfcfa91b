// SPDX-License-Identifier: Apache-2.0
/*
 * dlopen-heavy: opens every shared library named on the command line (those
 * that fail are skipped), burns ~50 ms of CPU through a call chain, exits.
 * For the soak benchmark: each run maps dozens of libraries the agent has to
 * learn and forget.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) static void burn(void)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 100000; i++)
			sink = sink * 6364136223846793005ul + 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000000000l + (b.tv_nsec - a.tv_nsec) < 50000000l);
}

int main(int argc, char **argv)
{
	int opened = 0;

	for (int i = 1; i < argc; i++)
		if (dlopen(argv[i], RTLD_NOW | RTLD_LOCAL))
			opened++;
	burn();
	printf("%d\n", opened);
	return 0;
}
