// SPDX-License-Identifier: Apache-2.0
/* A fixed amount of CPU work (argv[1] million iterations, default 2000) through a short call chain. */
#include <stdlib.h>

volatile unsigned long sink;

__attribute__((noinline)) unsigned long mix_step(unsigned long x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

__attribute__((noinline)) void busy_loop(unsigned long n)
{
	unsigned long x = 88172645463325252ul;

	for (unsigned long i = 0; i < n; i++)
		x = mix_step(x);
	sink = x;
}

int main(int argc, char **argv)
{
	unsigned long millions = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;

	busy_loop(millions * 1000000ul);
	return 0;
}
