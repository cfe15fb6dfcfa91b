// SPDX-License-Identifier: Apache-2.0
/*
 * httpsink: a receiver for the export system tests. Listens on 127.0.0.1:PORT
 * (0 = any; the port is printed on stdout), and for request N writes
 * DIR/req-N.txt (request line and headers) and DIR/body-N.bin, then answers
 * with the Nth status of the list (the last one repeats).
 *
 *   httpsink DIR PORT STATUS...      e.g. httpsink /tmp/x 0 503 503 200
 *
 * HTTPSINK_ANY=1 listens on every address instead (in a Pod of the node tier).
 */
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd, one = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: httpsink DIR PORT STATUS...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);	/* a client that gave up is no reason to stop */
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (getenv("HTTPSINK_ANY"))
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("httpsink");
		return 1;
	}
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (int k = 0;; k++) {
		static char buf[64 << 20];
		size_t n = 0, need = 0;
		char *hend = NULL, path[4200];
		int fd = accept(lfd, NULL, NULL);
		const char *status = argv[3 + (k < argc - 3 ? k : argc - 4)];
		FILE *f;

		if (fd < 0)
			return 1;
		while (n < sizeof(buf) - 1) {
			ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);

			if (got <= 0)
				break;
			n += (size_t)got;
			buf[n] = 0;
			if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
				const char *cl = strcasestr(buf, "Content-Length:");

				need = (size_t)(hend + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			}
			if (hend && n >= need)
				break;
		}
		snprintf(path, sizeof(path), "%s/req-%d.txt", argv[1], k);
		if ((f = fopen(path, "w"))) {
			fwrite(buf, 1, hend ? (size_t)(hend - buf) : n, f);
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/body-%d.bin", argv[1], k);
		if (hend && (f = fopen(path, "w"))) {
			fwrite(hend + 4, 1, n - (size_t)(hend + 4 - buf), f);
			fclose(f);
		}
		dprintf(fd, "HTTP/1.1 %s X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
		close(fd);
	}
}
