// SPDX-License-Identifier: Apache-2.0
/*
 * Two functions burning CPU 3:1, for the ratio check. Runs for argv[1] seconds (default 3);
 * argv[2] divides the work of each call (default 1; 10 under an emulator, which is that
 * much slower).
 * Each call lasts tens of milliseconds, many sampling periods: short calls would alias
 * with the sampling clock and bias the ratio.
 */
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;
static unsigned long scale = 1;

__attribute__((noinline)) void burn(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink += i * 7;
}

__attribute__((noinline)) void hot_three(void)
{
	burn(30000000 / scale);
}

__attribute__((noinline)) void cold_one(void)
{
	burn(10000000 / scale);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	struct timespec a, b;

	if (argc > 2 && atol(argv[2]) > 0)
		scale = (unsigned long)atol(argv[2]);

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		hot_three();
		cold_one();
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
	return 0;
}
