// SPDX-License-Identifier: Apache-2.0
/*
 * A recursion (built -O2 -fomit-frame-pointer) burning CPU at the bottom:
 *   recurse [SECONDS [DEPTH]]   (defaults 3 s, 60 deep)
 */
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void leaf_work(void)
{
	for (unsigned long i = 0; i < 200000; i++)
		sink += i * 3;
}

__attribute__((noinline)) unsigned long recurse(int depth)
{
	unsigned long r;

	if (depth == 0) {
		leaf_work();
		return sink;
	}
	r = recurse(depth - 1);
	sink += r & 1;	/* keeps the call from becoming a tail call */
	return r + 1;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int depth = argc > 2 ? atoi(argv[2]) : 60;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		recurse(depth);
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
	return 0;
}
