// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP server of /metrics, /healthz and the controller's API: where it
 * listens, and that idle connections from one client cannot starve the
 * kubelet's probe (issue 12). All of 127/8 is this host: the idle client is
 * 127.0.0.2, the probe 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "helpers.h"
#include "httpd.h"

static void ok_handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	(void)ctx;
	httpd_text(resp, 200, "ok %s", req->url);
}

/* A TCP connection from src (a 127/8 address) to dst:port, or -1. */
static int connect_from(const char *src, const char *dst, int port)
{
	struct sockaddr_in s = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	d.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, src, &s.sin_addr) != 1 || inet_pton(AF_INET, dst, &d.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&s, sizeof(s)) ||
	    connect(fd, (struct sockaddr *)&d, sizeof(d))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether the peer closed fd within timeout_ms. */
static int closed_within(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, timeout_ms) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* GET path from src: the HTTP status, or -1 when no answer came within timeout_ms. */
static int get_status(const char *src, int port, const char *path, int timeout_ms)
{
	char req[256], buf[512];
	size_t len = 0;
	int fd = connect_from(src, "127.0.0.1", port), status = -1;
	struct pollfd p;

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto out;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (len < sizeof(buf) - 1 && poll(&p, 1, timeout_ms) == 1) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		if (strstr(buf, "\r\n"))
			break;
	}
	buf[len] = 0;
	if (len > 12 && !strncmp(buf, "HTTP/1.", 7))
		status = atoi(buf + 9);
out:
	close(fd);
	return status;
}

static int can_bind_127_0_0_2(void)
{
	struct sockaddr_in s = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	inet_pton(AF_INET, "127.0.0.2", &s.sin_addr);
	ok = fd >= 0 && !bind(fd, (struct sockaddr *)&s, sizeof(s));
	if (fd >= 0)
		close(fd);
	return ok;
}

/* 80 idle connections from one client: the probe from another still gets 200 at once. */
static void test_idle_client_cannot_starve_the_probe(void **state)
{
	char err[256];
	struct httpd *d = httpd_start("127.0.0.1:0", NULL, ok_handler, NULL, err, sizeof(err));
	int fds[80], port, opened = 0;

	(void)state;
	if (!can_bind_127_0_0_2())
		skip();
	assert_non_null(d);
	port = httpd_port(d);
	for (int i = 0; i < 80; i++) {
		fds[i] = connect_from("127.0.0.2", "127.0.0.1", port);
		opened += fds[i] >= 0;
	}
	assert_true(opened >= 64);	/* the kernel accepted them: the server decides */
	usleep(300 * 1000);
	assert_int_equal(get_status("127.0.0.1", port, "/healthz", 3000), 200);
	/* the idle client itself was held to a few: most of its sockets were closed */
	{
		int closed = 0;

		for (int i = 0; i < 80; i++)
			closed += fds[i] >= 0 && closed_within(fds[i], 0);
		if (closed < 80 - 2 * HTTPD_PER_IP)
			fail_msg("only %d of the idle client's 80 connections were refused", closed);
	}
	for (int i = 0; i < 80; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	httpd_stop(d);
}

/* A connection that sends nothing is closed after the idle timeout. */
static void test_idle_timeout(void **state)
{
	char err[256];
	const struct httpd_opts o = { .idle_timeout_s = 1 };
	struct httpd *d = httpd_start("127.0.0.1:0", &o, ok_handler, NULL, err, sizeof(err));
	int fd;

	(void)state;
	assert_non_null(d);
	fd = connect_from("127.0.0.1", "127.0.0.1", httpd_port(d));
	assert_true(fd >= 0);
	assert_false(closed_within(fd, 300));
	assert_true(closed_within(fd, 4000));
	close(fd);
	httpd_stop(d);
}

/* ":PORT" is 127.0.0.1 only (a standalone agent shows nothing to the network). */
static void test_listen_addresses(void **state)
{
	static const char *const bad[] = { "bogus:1", "1.2.3.4:99999", "127.0.0.1:", "127.0.0.1:x",
					   "[::1:80", "" };
	char err[256];
	struct httpd *d = httpd_start(":0", NULL, ok_handler, NULL, err, sizeof(err));
	int fd;

	(void)state;
	assert_non_null(d);
	assert_int_equal(get_status("127.0.0.1", httpd_port(d), "/metrics", 3000), 200);
	if (can_bind_127_0_0_2()) {
		fd = connect_from("127.0.0.2", "127.0.0.2", httpd_port(d));
		assert_true(fd < 0);	/* not on 0.0.0.0 */
	}
	httpd_stop(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		d = httpd_start(bad[i], NULL, ok_handler, NULL, err, sizeof(err));
		if (d)
			fail_msg("'%s' should be refused", bad[i]);
		assert_non_null(strstr(err, "want HOST:PORT"));
	}
	/* IPv6, with or without brackets (a pod's IP from the downward API has none) */
	d = httpd_start("[::1]:0", NULL, ok_handler, NULL, err, sizeof(err));
	if (!d)
		skip();		/* no IPv6 loopback here */
	httpd_stop(d);
	d = httpd_start("::1:0", NULL, ok_handler, NULL, err, sizeof(err));
	assert_non_null(d);
	httpd_stop(d);
}

/*
 * A controller with thousands of agents has thousands of sockets open: the
 * HTTP API's sockets are numbered past FD_SETSIZE (1024), which select() cannot
 * watch (the API, /metrics and the probes reset every connection at 1000 agents).
 */
static void test_descriptors_past_fd_setsize(void **state)
{
	struct rlimit rl, saved;
	int fill[1200], n = 0, status = -1;
	struct httpd *d;
	char err[256];

	(void)state;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		fail_msg("getrlimit: %s", strerror(errno));
	saved = rl;
	if (rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
		rl.rlim_cur = 2048;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 2048)
		skip();		/* cannot open enough descriptors here */
	while (n < (int)(sizeof(fill) / sizeof(fill[0]))) {
		if ((fill[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			break;
		if (fill[n++] > 1100)
			break;
	}
	err[0] = 0;
	d = n && fill[n - 1] > 1100 ?
		    httpd_start("127.0.0.1:0", NULL, ok_handler, NULL, err, sizeof(err)) : NULL;
	if (d)
		status = get_status("127.0.0.1", httpd_port(d), "/metrics", 3000);
	httpd_stop(d);
	while (n > 0)
		close(fill[--n]);
	setrlimit(RLIMIT_NOFILE, &saved);
	if (!d)
		fail_msg("no server with descriptors past 1024: %s", err[0] ? err : strerror(errno));
	assert_int_equal(status, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_client_cannot_starve_the_probe),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_descriptors_past_fd_setsize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
