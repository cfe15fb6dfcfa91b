/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Pod sandbox of the node tier (e2e/images.sh): holds the Pod's namespaces
 * and does nothing else until it is told to stop. As PID 1 of its own PID
 * namespace it reaps what is reparented to it.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = stop };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;)
		pause();
	return EXIT_FAILURE;
}
