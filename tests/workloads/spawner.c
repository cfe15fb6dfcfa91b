// SPDX-License-Identifier: Apache-2.0
/*
 * Short-lived children: forks argv[1] children one after another (default 10);
 * each burns ~100 ms of CPU in child_burn() and exits. The parent only waits.
 * With argv[2] = "exec", each child execs this program again ("spawner child"),
 * so that mappings must be learnt from a fresh exec rather than a fork.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

__attribute__((noinline)) void child_burn(void)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (unsigned long i = 0; i < 100000; i++)
			sink += i;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < 0.1);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	int do_exec = argc > 2 && !strcmp(argv[2], "exec");

	if (argc > 1 && !strcmp(argv[1], "child")) {
		child_burn();
		return 0;
	}

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			if (do_exec)
				execl("/proc/self/exe", "spawner", "child", (char *)NULL);
			child_burn();
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return 0;
}
