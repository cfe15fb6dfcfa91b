// SPDX-License-Identifier: Apache-2.0
/* main -> chain_a -> chain_b -> chain_c, where chain_c burns CPU. Runs argv[1] seconds. */
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

static double elapsed(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) + (b.tv_nsec - a->tv_nsec) / 1e9;
}

__attribute__((noinline)) void chain_c(void)
{
	for (unsigned long i = 0; i < 2000000; i++)
		sink += i ^ 0x55;
}

__attribute__((noinline)) void chain_b(void)
{
	chain_c();
	sink++;
}

__attribute__((noinline)) void chain_a(void)
{
	chain_b();
	sink++;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	struct timespec a;

	clock_gettime(CLOCK_MONOTONIC, &a);
	while (elapsed(&a) < secs)
		chain_a();
	return 0;
}
