/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TESTS_UNIT_FAKE_API_H
#define TESTS_UNIT_FAKE_API_H
/*
 * A fake API server on 127.0.0.1 for the controller's unit tests: one request
 * per connection, each recorded ("METHOD path body"). It answers 201 to a POST
 * and 200 otherwise, but: a request for /hang waits until fake.release is set,
 * the first fail_first requests for /fail get a 500, and /gone404 gets a 404.
 * With answer_code set, every request gets that code and answer as its body.
 * Included after helpers.h (its asserts are cmocka's).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQS 64

struct fake {
	int lfd, port;
	pthread_t thread;
	pthread_mutex_t lock;
	int stop, release;	/* release: /hang answers */
	int fail_first;		/* that many PATCHes of /fail answered 500 */
	int answer_code;	/* not 0: the answer to every request, with answer */
	char answer[1024];
	char reqs[MAX_REQS][1024];	/* "METHOD path body" */
	int nreq;
};

/* The request's line and body (a small one: whole in one read, or a few). */
static inline bool read_request(int fd, char *buf, size_t len)
{
	size_t have = 0;
	const char *end, *cl;

	for (;;) {
		ssize_t n = read(fd, buf + have, len - 1 - have);

		if (n <= 0)
			return false;
		have += (size_t)n;
		buf[have] = 0;
		if (!(end = strstr(buf, "\r\n\r\n")))
			continue;
		cl = strcasestr(buf, "Content-Length: ");
		if (!cl || have >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16))
			return true;
	}
}

static inline void record(struct fake *f, const char *buf)
{
	const char *body = strstr(buf, "\r\n\r\n");

	pthread_mutex_lock(&f->lock);
	if (f->nreq < MAX_REQS)
		snprintf(f->reqs[f->nreq++], sizeof(f->reqs[0]), "%.*s %s",
			 (int)strcspn(buf, "\r") - 9, buf, body ? body + 4 : "");
	pthread_mutex_unlock(&f->lock);
}

static inline bool flag(struct fake *f, int *v)
{
	bool set;

	pthread_mutex_lock(&f->lock);
	set = *v;
	pthread_mutex_unlock(&f->lock);
	return set;
}

static inline void serve(struct fake *f, int fd)
{
	char buf[4096], out[sizeof(f->answer) + 160];
	int code = 200;

	if (!read_request(fd, buf, sizeof(buf)))
		return;
	record(f, buf);
	while (strstr(buf, " /hang") && !flag(f, &f->release) && !flag(f, &f->stop))
		usleep(5000);
	pthread_mutex_lock(&f->lock);
	if (!strncmp(buf, "POST", 4))
		code = 201;
	else if (strstr(buf, " /fail") && f->fail_first > 0 && f->fail_first--)
		code = 500;
	else if (strstr(buf, " /gone404"))
		code = 404;
	if (f->answer_code)
		code = f->answer_code;
	snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", code,
		 f->answer_code ? strlen(f->answer) : 2, f->answer_code ? f->answer : "{}");
	pthread_mutex_unlock(&f->lock);
	if (write(fd, out, strlen(out)) < 0)
		return;	/* the client went: nothing to answer */
}

static inline void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!flag(f, &f->stop)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 20) <= 0)
			continue;
		if ((fd = accept(f->lfd, NULL, NULL)) < 0)
			break;
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static inline void fake_start(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static inline void fake_stop(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	pthread_mutex_destroy(&f->lock);
}

static inline int nreq(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->nreq;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Waits (up to 10 s) for n requests; returns how many came. */
static inline int wait_reqs(struct fake *f, int n)
{
	for (int i = 0; i < 1000 && nreq(f) < n; i++)
		usleep(10000);
	return nreq(f);
}

#endif
