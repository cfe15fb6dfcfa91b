// SPDX-License-Identifier: Apache-2.0
/*
 * Signal frames, without frame pointers: a profiling timer interrupts
 * main_work() every 10 ms of CPU, and the handler burns CPU itself. Samples in
 * the handler must unwind through the kernel's signal frame (__restore_rt)
 * back into main_work() and main. Runs argv[1] seconds.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void handler_burn(void)
{
	for (unsigned long i = 0; i < 3000000; i++)
		sink += i ^ 3;
}

__attribute__((noinline)) void on_prof(int sig)
{
	(void)sig;
	handler_burn();
	sink++;
}

__attribute__((noinline)) void main_work(void)
{
	for (unsigned long i = 0; i < 1000000; i++)
		sink += i * 5;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
	struct sigaction sa = { 0 };
	struct timespec a, b;

	sa.sa_handler = on_prof;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
	setitimer(ITIMER_PROF, &it, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		main_work();
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
	return 0;
}
