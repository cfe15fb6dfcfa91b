// SPDX-License-Identifier: Apache-2.0
/*
 * The Kubernetes client against a scripted fake API server on 127.0.0.1:
 * list pages, watch events cut into pieces of every size (one event larger
 * than the first line buffer), bookmarks, 410 Gone -> re-list, a garbage event
 * -> re-list, Retry-After on a failed list, and plain requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

#include <signal.h>

#include "k8s.h"
#include "log.h"

/* ---- the fake server: one scripted answer per connection ---------------------- */

struct fake {
	int lfd, port;
	pthread_t thread;
	int nreq, lists;
	char reqs[16][512];	/* request lines seen */
	atomic_int stop;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void chunk(int fd, const char *data, size_t n)
{
	char hdr[32];

	snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
	send_all(fd, hdr, strlen(hdr));
	send_all(fd, data, n);
	send_all(fd, "\r\n", 2);
}

static char *big_event(const char *type, const char *name, const char *rv)
{
	size_t pad = 200000;	/* well over the 64 KiB the line buffer starts with */
	char *e = malloc(pad + 512), *p;

	p = e + sprintf(e, "{\"type\":\"%s\",\"object\":{\"metadata\":{\"name\":\"%s\","
			"\"resourceVersion\":\"%s\",\"annotations\":{\"pad\":\"", type, name, rv);
	memset(p, 'x', pad);
	p += pad;
	strcpy(p, "\"}}}}\n");
	return e;
}

static void serve(struct fake *f, int fd)
{
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n";

	if (n <= 0)
		return;
	buf[n] = 0;
	if (f->nreq < 16)
		snprintf(f->reqs[f->nreq++], sizeof(f->reqs[0]), "%.*s", (int)strcspn(buf, "\r"), buf);
	if (strstr(buf, "GET /api/v1/things?limit=500&continue=") ) {	/* page 2 */
		const char *b = "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":{\"name\":\"c\"}}]}";

		dprintf(fd, "%sContent-Length: %zu\r\n\r\n%s", ok, strlen(b), b);
	} else if (strstr(buf, "GET /api/v1/things?limit=500")) {
		if (++f->lists == 2) {	/* the second list fails once, asking us to come back */
			dprintf(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
				    "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
			return;
		}
		const char *b = f->lists == 1 ?
			"{\"metadata\":{\"resourceVersion\":\"9\",\"continue\":\"tok\"},\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}" :
			"{\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}]}";

		dprintf(fd, "%sContent-Length: %zu\r\n\r\n%s", ok, strlen(b), b);
	} else if (strstr(buf, "watch=1") && strstr(buf, "resourceVersion=10")) {
		/* events in pieces of 1, 2, 3... bytes, then 410 Gone */
		char *big = big_event("ADDED", "big", "11");
		const char *small = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"12\"}}}\n"
				    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"13\"}}}\n"
				    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"14\"}}}\n"
				    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"message\":\"too old\"}}\n";
		size_t off = 0, step = 1, len;

		dprintf(fd, "%sTransfer-Encoding: chunked\r\n\r\n", ok);
		len = strlen(big);
		while (off < len) {
			size_t m = step * 997 < len - off ? step * 997 : len - off;

			chunk(fd, big + off, m);
			off += m;
			step++;
		}
		len = strlen(small);
		for (off = 0, step = 1; off < len; off += step, step = step % 7 + 1)
			chunk(fd, small + off, step < len - off ? step : len - off);
		send_all(fd, "0\r\n\r\n", 5);
		free(big);
	} else if (strstr(buf, "watch=1") && strstr(buf, "resourceVersion=20")) {
		/* after the re-list: garbage, which must cause another re-list */
		dprintf(fd, "%sTransfer-Encoding: chunked\r\n\r\n", ok);
		chunk(fd, "{not json}\n", 11);
		send_all(fd, "0\r\n\r\n", 5);
	} else if (strstr(buf, "watch=1")) {
		dprintf(fd, "%sContent-Length: 0\r\n\r\n", ok);
	} else if (strstr(buf, "POST /echo")) {
		const char *body = strstr(buf, "\r\n\r\n");
		char auth[128] = "";
		const char *a = strstr(buf, "Authorization: Bearer ");

		if (a)
			snprintf(auth, sizeof(auth), "%.*s", (int)strcspn(a + 22, "\r"), a + 22);
		dprintf(fd, "HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n"
			    "{\"auth\":\"%s\",\"got\":%s}", auth, body ? body + 4 : "null");
	} else {
		const char *b = "{\"kind\":\"Status\",\"message\":\"no such thing\"}";

		dprintf(fd, "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
			strlen(b), b);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!f->stop) {
		int fd = accept(f->lfd, NULL, NULL);

		if (fd < 0)
			break;
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static int fake_start(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(f->lfd, 16) ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	f->port = ntohs(sa.sin_port);
	return pthread_create(&f->thread, NULL, fake_main, f);
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->thread, NULL);
}

/* ---- what the informer reported ------------------------------------------------ */

struct seen {
	pthread_mutex_t lock;
	int begins, ends, added, modified, deleted;
	char names[64][16];
	int nnames;
	bool big_ok;
};

static void s_begin(void *ctx)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->begins++;
	pthread_mutex_unlock(&s->lock);
}

static void s_event(void *ctx, enum k8s_event ev, const cJSON *obj)
{
	struct seen *s = ctx;
	const char *name = k8s_str(obj, "metadata.name");
	const char *pad = k8s_str(obj, "metadata.annotations.pad");

	pthread_mutex_lock(&s->lock);
	if (ev == K8S_ADDED)
		s->added++;
	else if (ev == K8S_MODIFIED)
		s->modified++;
	else
		s->deleted++;
	if (name && s->nnames < 64)
		snprintf(s->names[s->nnames++], 16, "%c%s", "AMD"[ev], name);
	if (name && !strcmp(name, "big") && pad && strlen(pad) == 200000)
		s->big_ok = true;
	pthread_mutex_unlock(&s->lock);
}

static void s_end(void *ctx)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->ends++;
	pthread_mutex_unlock(&s->lock);
}

static void test_informer(void **state)
{
	static const struct k8s_informer_ops ops = { s_begin, s_event, s_end };
	struct k8s_config cfg = { 0 };
	struct k8s_informer_stats st;
	struct k8s_informer *inf;
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct fake f;
	char server[64], all[1024] = "";
	int ends;

	(void)state;
	assert_int_equal(fake_start(&f), 0);
	snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
	cfg.server = server;
	inf = k8s_informer_start(&cfg, "/api/v1/things", &ops, &s);
	assert_non_null(inf);
	/* list (2 pages), watch (410), re-list after a 429 + Retry-After, watch (garbage), re-list */
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&s.lock);
		ends = s.ends;
		pthread_mutex_unlock(&s.lock);
		if (ends >= 3)
			break;
		usleep(100000);
	}
	k8s_informer_stats(inf, &st);
	k8s_informer_stop(inf);
	fake_stop(&f);
	for (int i = 0; i < s.nnames; i++)
		strcat(strcat(all, s.names[i]), " ");
	print_message("events: %s\n", all);
	assert_true(s.ends >= 3);
	assert_int_equal(s.begins, s.ends);
	/* first list: a b (page 1) c (page 2); then the watch: big a(M) b(D) */
	assert_non_null(strstr(all, "Aa Ab Ac Abig Ma Db Aa "));
	assert_true(s.big_ok);
	assert_true(st.relists_gone >= 1);
	assert_true(st.lists >= 3);
	assert_true(st.errors >= 2);	/* the 429 and the garbage event */
	/* the 429 was honoured: the list after it is not the next request */
	assert_non_null(strstr(f.reqs[3], "GET /api/v1/things?limit=500 "));
	assert_non_null(strstr(f.reqs[4], "GET /api/v1/things?limit=500 "));
	for (int i = 0; i < f.nreq; i++)
		print_message("request: %s\n", f.reqs[i]);
	assert_non_null(strstr(f.reqs[1], "continue=tok"));
	assert_non_null(strstr(f.reqs[2], "allowWatchBookmarks=true"));
	assert_non_null(strstr(f.reqs[2], "resourceVersion=10"));
}

static void test_request(void **state)
{
	struct k8s_config cfg = { .token = "sekret" };
	struct k8s_response r;
	struct k8s_client *c;
	struct fake f;
	char server[64];

	(void)state;
	assert_int_equal(fake_start(&f), 0);
	snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
	cfg.server = server;
	c = k8s_client_new(&cfg);
	if (k8s_request(c, "POST", "/echo", NULL, "{\"x\":1}", &r))
		fail_msg("POST /echo: %s", r.error);
	assert_int_equal(r.status, 201);
	assert_string_equal(k8s_str(r.json, "auth"), "sekret");
	assert_int_equal(k8s_get(r.json, "got.x")->valueint, 1);
	k8s_response_free(&r);
	assert_int_equal(k8s_request(c, "GET", "/nothing", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(k8s_response_message(&r), "no such thing");
	k8s_response_free(&r);
	k8s_client_free(c);
	fake_stop(&f);
	/* nobody listening: a transport error, not a crash */
	cfg.server = "http://127.0.0.1:1";
	c = k8s_client_new(&cfg);
	assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, &r), -EIO);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(k8s_response_message(&r), "/x"));
	k8s_response_free(&r);
	k8s_client_free(c);
}

int main(void)
{
	/* the fake server may write to a connection the client has dropped (after the
	 * garbage event): that is EPIPE for it, not the end of the test */
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_informer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
