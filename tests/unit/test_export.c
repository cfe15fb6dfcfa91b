// SPDX-License-Identifier: Apache-2.0
/*
 * Exporters against scripted receivers on 127.0.0.1: what Pyroscope's /ingest
 * gets (query, auth, multipart pprof that protoc decodes), retries on 5xx and
 * 429 with Retry-After, no retry on 4xx, a dead backend that comes back (the
 * queue keeps the newest, drops and counts the oldest), a receiver that never
 * answers, the dir exporter's rotation, and the stats read while the sender
 * thread records failures (a data race under ThreadSanitizer once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#include "export.h"
#include "flamegraph.h"
#include "log.h"
#include "otlp.h"
#include "pprof.h"
#include "pprof_merge.h"
#include "profile.h"
#include "pyroscope_push.pb-c.h"

/* ---- a receiver that answers from a script ---------------------------------------- */

#define MAX_REQ 32

struct req {
	char line[1024];
	char headers[4096];
	uint8_t *body;
	size_t len;
	double at;
};

struct recv {
	int lfd, port;
	pthread_t thread;
	atomic_int stop;
	const char *const *script;	/* one answer per request; NULL = 200 */
	int nscript;
	int hang_ms;			/* "HANG": hold the request this long */
	pthread_mutex_t lock;
	int nreq;
	struct req reqs[MAX_REQ];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void read_request(int fd, struct req *r)
{
	char buf[1 << 16];
	size_t n = 0, need = 0;
	char *hend = NULL;

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
	buf[n] = 0;
	snprintf(r->line, sizeof(r->line), "%.*s", (int)strcspn(buf, "\r"), buf);
	if (hend) {
		snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(hend - buf), buf);
		r->len = n - (size_t)(hend + 4 - buf);
		r->body = malloc(r->len + 1);
		memcpy(r->body, hend + 4, r->len);
	}
}

static void *recv_main(void *arg)
{
	struct recv *rv = arg;

	while (!rv->stop) {
		int fd = accept(rv->lfd, NULL, NULL), k;
		const char *answer;
		struct req r = { 0 };

		if (fd < 0)
			break;
		read_request(fd, &r);
		r.at = now_s();
		pthread_mutex_lock(&rv->lock);
		k = rv->nreq;
		if (rv->nreq < MAX_REQ)
			rv->reqs[rv->nreq++] = r;
		else
			free(r.body);
		pthread_mutex_unlock(&rv->lock);
		answer = k < rv->nscript && rv->script[k] ? rv->script[k] : "200";
		if (!strcmp(answer, "HANG")) {
			usleep((useconds_t)rv->hang_ms * 1000);
		} else if (!strcmp(answer, "429")) {
			dprintf(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
				    "Connection: close\r\n\r\n");
		} else if (!strcmp(answer, "GARBAGE")) {
			dprintf(fd, "this is not HTTP\r\n\r\n");
		} else {
			dprintf(fd, "HTTP/1.1 %s X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
				answer);
		}
		close(fd);
	}
	return NULL;
}

static void recv_start(struct recv *rv, const char *const *script, int nscript)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(rv, 0, sizeof(*rv));
	rv->script = script;
	rv->nscript = nscript;
	pthread_mutex_init(&rv->lock, NULL);
	rv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(rv->lfd >= 0);
	assert_int_equal(bind(rv->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(rv->lfd, 16), 0);
	assert_int_equal(getsockname(rv->lfd, (struct sockaddr *)&sa, &sl), 0);
	rv->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&rv->thread, NULL, recv_main, rv), 0);
}

static void recv_stop(struct recv *rv)
{
	rv->stop = 1;
	shutdown(rv->lfd, SHUT_RDWR);
	close(rv->lfd);
	pthread_join(rv->thread, NULL);
	for (int i = 0; i < rv->nreq; i++)
		free(rv->reqs[i].body);
}

static int nreq(struct recv *rv)
{
	int n;

	pthread_mutex_lock(&rv->lock);
	n = rv->nreq;
	pthread_mutex_unlock(&rv->lock);
	return n;
}

/*
 * Request i, once the receiver has stored it: taken under its lock, since the
 * reply that told the exporter it was done travelled through a socket, which
 * orders nothing between the receiver's thread and this one.
 */
static const struct req *req_at(struct recv *rv, int i)
{
	if (i >= nreq(rv))
		fail_msg("request %d never arrived", i);
	return &rv->reqs[i];
}

/* ---- profiles ------------------------------------------------------------------------ */

static struct profile *make_profile(const char *fn, int64_t count)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x401000, .file = "/usr/bin/app" };
	struct prof_location l1 = { .mapping = 0, .address = 0x400100, .function = "main" };
	struct prof_location l2 = { .mapping = 0, .address = 0x400200, .function = fn };
	uint32_t locs[2] = { 1, 0 };

	p->period_nanos = 10000000;
	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 10000000000LL;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	assert_int_equal(profile__add_location(p, &l1), 0);
	assert_int_equal(profile__add_location(p, &l2), 1);
	assert_int_equal(profile__add_sample(p, locs, 2, count, NULL, 0), 0);
	return p;
}

static struct exporter *pyro(struct recv *rv, const struct export_auth *auth, unsigned int cap)
{
	char url[64], msg[256];
	struct export_target t = { .kind = EXPORT_PYROSCOPE, .url = url };
	struct exporter_opts o = { .queue_cap = cap, .backoff_base_ms = 50, .backoff_cap_ms = 200,
				   .timeout_ms = 2000 };
	struct exporter *e;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", rv ? rv->port : 1);
	e = exporter_new(&t, auth, &o, msg, sizeof(msg));
	if (!e)
		fail_msg("exporter_new: %s", msg);
	return e;
}

static void submit(struct exporter *e, const char *fn, const char *svc)
{
	struct profile *p = make_profile(fn, 7);
	struct export_label l[2] = { { "namespace", "shop" }, { "pod", "web-1,x" } };

	assert_int_equal(exporter_submit(e, p, svc, l, 2, 1700000000, 1700000010, 19), 0);
	profile__free(p);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_parse(void **state)
{
	struct export_target t;
	char msg[256];

	(void)state;
	assert_int_equal(export_parse_target("pyroscope=http://h:4040", &t, msg, sizeof(msg)), 0);
	assert_int_equal(t.kind, EXPORT_PYROSCOPE);
	assert_string_equal(t.url, "http://h:4040");
	assert_int_equal(export_parse_target("dir=/tmp/x", &t, msg, sizeof(msg)), 0);
	assert_int_equal(t.kind, EXPORT_DIR);
	assert_int_equal(export_parse_target("otlp-grpc=https://c:4317", &t, msg, sizeof(msg)), 0);
	assert_int_equal(t.kind, EXPORT_OTLP_GRPC);
	assert_int_equal(export_parse_target("pyroscope=ftp://h", &t, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(export_parse_target("zipkin=http://h", &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "unknown kind"));
	assert_int_equal(export_parse_target("pyroscope", &t, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(export_parse_target("=http://h", &t, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(export_parse_target("dir=", &t, msg, sizeof(msg)), -EINVAL);
	{	/* the built-in store has no URL of its own: only the agent's connection */
		struct export_target o = { .kind = EXPORT_CONTROLLER, .url = "store" };

		assert_null(exporter_new(&o, NULL, NULL, msg, sizeof(msg)));
		assert_non_null(strstr(msg, "connection to the controller"));
		assert_int_equal(export_parse_target("controller=x", &t, msg, sizeof(msg)), -EINVAL);
	}
}

static void test_pyroscope_ingest(void **state)
{
	struct recv rv;
	char dir[128], tokf[256], cmd[1024];
	struct export_auth auth = { .headers = { "X-Extra: 1" }, .nheaders = 1,
				    .tenant = "team-a", .bearer_file = tokf };
	struct exporter_stats st;
	struct exporter *e;
	const struct req *r;
	const uint8_t *gz;
	FILE *f;
	char *out;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "pyro"), 0);
	snprintf(tokf, sizeof(tokf), "%s/token", dir);
	f = fopen(tokf, "w");
	fputs("tok-123\n", f);
	fclose(f);
	recv_start(&rv, NULL, 0);
	e = pyro(&rv, &auth, 4);
	submit(e, "hot_function", "checkout");
	assert_int_equal(exporter_drain(e, 5000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retries, 0);
	assert_int_equal(nreq(&rv), 1);
	r = req_at(&rv, 0);
	print_message("%s\n", r->line);
	assert_non_null(strstr(r->line, "POST /ingest?name=checkout.cpu%7Bnamespace%3Dshop%2Cpod%3Dweb-1_x%7D&"));
	assert_non_null(strstr(r->line, "&from=1700000000&until=1700000010&sampleRate=19&spyName=profleet&format=pprof"));
	assert_non_null(strcasestr(r->headers, "X-Scope-OrgID: team-a"));
	assert_non_null(strcasestr(r->headers, "Authorization: Bearer tok-123"));
	assert_non_null(strcasestr(r->headers, "X-Extra: 1"));
	assert_non_null(strcasestr(r->headers, "Content-Type: multipart/form-data"));
	assert_non_null(strstr((const char *)r->body, "name=\"profile\""));
	/* the part's bytes: gzip, and protoc decodes them as a pprof Profile */
	gz = memmem(r->body, r->len, "\x1f\x8b", 2);
	assert_non_null(gz);
	snprintf(cmd, sizeof(cmd), "%s/profile.pb.gz", dir);
	f = fopen(cmd, "w");
	fwrite(gz, 1, r->len - (size_t)(gz - r->body), f);
	fclose(f);
	if (have_cmd("protoc")) {
		char top[512];

		assert_non_null(realpath(srcdir(), top));
		snprintf(cmd, sizeof(cmd),
			 "cd %s && (zcat profile.pb.gz 2>/dev/null || true) | protoc --decode=perftools.profiles.Profile "
			 "-I %s/proto %s/proto/profile.proto", dir, top, top);
		out = run_capture(cmd);
		assert_non_null(out);
		assert_non_null(strstr(out, "\"hot_function\""));
		assert_non_null(strstr(out, "value: 7"));
		/* the labels are in the series' name, not repeated on every sample */
		assert_null(strstr(out, "\"shop\""));
		free(out);
	}
	exporter_free(e);
	recv_stop(&rv);
	tmpdir_remove(dir);
}

static void test_retries(void **state)
{
	static const char *const script[] = { "500", "503", "GARBAGE", "200", "429", "200", "400" };
	struct recv rv;
	struct exporter_stats st;
	struct exporter *e;

	(void)state;
	recv_start(&rv, script, 7);
	e = pyro(&rv, NULL, 4);
	submit(e, "a", "svc");
	assert_int_equal(exporter_drain(e, 10000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retries, 3);	/* 500, 503, garbage, then 200 */
	assert_int_equal(nreq(&rv), 4);
	/* 429 with Retry-After: 1 -> the next try a second later, not at once */
	submit(e, "b", "svc");
	assert_int_equal(exporter_drain(e, 10000), 0);
	assert_int_equal(nreq(&rv), 6);
	assert_true(req_at(&rv, 5)->at - req_at(&rv, 4)->at >= 0.9);
	/* 400: the backend will never take it: dropped, counted, not retried */
	submit(e, "c", "svc");
	assert_int_equal(exporter_drain(e, 10000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.dropped_rejected, 1);
	assert_int_equal(nreq(&rv), 7);
	assert_int_equal(st.submitted, 3);
	exporter_free(e);
	recv_stop(&rv);
}

static void test_backend_down_then_back(void **state)
{
	struct recv rv;
	struct exporter_stats st;
	struct exporter *e;
	char url[64], msg[128];
	struct export_target t = { .kind = EXPORT_PYROSCOPE, .url = url };
	struct exporter_opts o = { .queue_cap = 3, .backoff_base_ms = 50, .backoff_cap_ms = 100,
				   .timeout_ms = 2000 };
	int fd, port;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	(void)state;
	/* a port nobody listens on yet */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	e = exporter_new(&t, NULL, &o, msg, sizeof(msg));
	assert_non_null(e);
	submit(e, "p1", "svc");
	submit(e, "p2", "svc");
	submit(e, "p3", "svc");
	submit(e, "p4", "svc");
	submit(e, "p5", "svc");
	usleep(300000);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 0);
	assert_true(st.retries >= 1);
	assert_int_equal(st.dropped_full, 2);	/* 5 into a queue of 3: the 2 oldest */
	assert_int_equal(st.queued, 3);
	/* the backend comes up on that port */
	{
		struct recv *r2 = &rv;
		struct sockaddr_in sb = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int one = 1;

		memset(r2, 0, sizeof(*r2));
		pthread_mutex_init(&r2->lock, NULL);
		r2->lfd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(r2->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		assert_int_equal(bind(r2->lfd, (struct sockaddr *)&sb, sizeof(sb)), 0);
		assert_int_equal(listen(r2->lfd, 16), 0);
		r2->port = port;
		assert_int_equal(pthread_create(&r2->thread, NULL, recv_main, r2), 0);
	}
	assert_int_equal(exporter_drain(e, 10000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 3);
	assert_int_equal(nreq(&rv), 3);
	/* what the queue could hold arrived, oldest of them first: p3, p4, p5 */
	for (int i = 0; i < 3; i++) {
		const struct req *r = req_at(&rv, i);
		const uint8_t *gz = memmem(r->body, r->len, "\x1f\x8b", 2);
		char path[128], cmd[256], *out;
		FILE *f;

		assert_non_null(gz);
		snprintf(path, sizeof(path), "/tmp/profleet-export-%d-%d.gz", (int)getpid(), i);
		f = fopen(path, "w");
		fwrite(gz, 1, r->len - (size_t)(gz - r->body), f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "zcat %s 2>/dev/null | grep -c -a p%d; rm -f %s", path, i + 3, path);
		out = run_capture(cmd);
		assert_non_null(out);
		assert_true(atoi(out) >= 1);
		free(out);
	}
	exporter_free(e);
	recv_stop(&rv);
}

static void test_slow_backend(void **state)
{
	static const char *const script[] = { "HANG", "200" };
	struct recv rv;
	struct exporter_stats st;
	struct exporter *e;
	double t0;

	(void)state;
	recv_start(&rv, script, 2);
	rv.hang_ms = 3000;
	e = pyro(&rv, NULL, 2);	/* request timeout 2 s */
	t0 = now_s();
	for (int i = 0; i < 5; i++)
		submit(e, "x", "svc");	/* never waits for the backend */
	exporter_stats(e, &st);
	print_message("5 submissions to a hanging backend took %.3f s\n", now_s() - t0);
	/* nothing blocked: all 5 were taken; the queue holds 2, at most one is in
	 * flight, the rest were dropped and counted */
	assert_int_equal(st.submitted, 5);
	assert_true(st.queued <= 2);
	assert_true(st.dropped_full >= 2 && st.dropped_full + st.queued >= 4);
	assert_int_equal(exporter_drain(e, 15000), 0);
	exporter_stats(e, &st);
	assert_true(st.retries >= 1);	/* the timeout */
	assert_int_equal(st.sent + st.dropped_full, 5);
	exporter_free(e);
	recv_stop(&rv);
}

static void test_dir(void **state)
{
	char dir[128], out[256], msg[128];
	struct export_target t = { .kind = EXPORT_DIR, .url = out };
	struct exporter_opts o = { .dir_max_files = 3 };
	struct exporter *e;
	char *ls;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "expdir"), 0);
	snprintf(out, sizeof(out), "%s/profiles", dir);
	e = exporter_new(&t, NULL, &o, msg, sizeof(msg));
	assert_non_null(e);
	for (int i = 0; i < 5; i++) {
		struct profile *p = make_profile("f", 1);

		assert_int_equal(exporter_submit(e, p, "my svc/x", NULL, 0, 1700000000 + i, 1700000001 + i,
						 19), 0);
		profile__free(p);
		assert_int_equal(exporter_drain(e, 5000), 0);
	}
	exporter_free(e);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "ls %s | sort", out);
		ls = run_capture(cmd);
	}
	if (!ls)
		fail_msg("cannot list %s", out);
	/* the newest 3, named by time and service */
	assert_non_null(strstr(ls, "profleet-001700000002-my_svc_x.pb.gz"));
	assert_non_null(strstr(ls, "profleet-001700000004-my_svc_x.pb.gz"));
	assert_null(strstr(ls, "profleet-001700000001"));
	free(ls);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "zcat %s/profleet-001700000004-my_svc_x.pb.gz | wc -c", out);
		ls = run_capture(cmd);
		assert_true(atoi(ls) > 20);
		free(ls);
	}
	/* a file where the directory should be: refused */
	snprintf(out, sizeof(out), "%s/profiles/profleet-001700000004-my_svc_x.pb.gz", dir);
	assert_null(exporter_new(&t, NULL, &o, msg, sizeof(msg)));
	tmpdir_remove(dir);
}


/* A controller that never takes the profile, and says so in words of its own each time. */
static int refuse_upload(void *ctx, const struct export_route *route, const uint8_t *buf,
			 size_t len, int64_t from_s, int64_t until_s, char *err, size_t errlen)
{
	atomic_int *calls = ctx;

	(void)route, (void)buf, (void)len, (void)from_s, (void)until_s;
	snprintf(err, errlen, "controller busy, try %d", atomic_fetch_add(calls, 1) + 1);
	return -EAGAIN;
}

/*
 * exporter_stats() here, over and over, while the sender thread records one
 * failure after another: every snapshot is whole, and names the failure.
 * The sender once wrote last_error outside the lock exporter_stats() takes.
 */
static void stats_while_failing(struct exporter *e, const char *want)
{
	struct exporter_stats st;
	double t0 = now_s();
	unsigned int reads = 0;

	submit(e, "f", "svc");
	do {
		exporter_stats(e, &st);
		if (!st.retries)
			continue;	/* no failure recorded yet */
		reads++;
		if (!strstr(st.last_error, want))
			fail_msg("last_error '%s' does not say '%s'", st.last_error, want);
	} while ((st.retries < 20 || reads < 20) && now_s() - t0 < 20);
	print_message("%u reads while the sender failed %llu times\n", reads,
		      (unsigned long long)st.retries);
	assert_true(st.retries >= 20);
	assert_int_equal(st.sent, 0);
	assert_true(st.last_failure_unix > 0);
	assert_int_equal(st.last_success_unix, 0);
}

static void test_stats_while_failing(void **state)
{
	struct exporter_opts o = { .queue_cap = 2, .backoff_base_ms = 1, .backoff_cap_ms = 2,
				   .timeout_ms = 2000, .upload = refuse_upload };
	struct export_target t = { .kind = EXPORT_CONTROLLER, .url = "store" };
	atomic_int calls = 0;
	char msg[256];
	struct exporter *e;

	(void)state;
	/* the controller's store: the reason comes from the upload function */
	o.upload_ctx = &calls;
	e = exporter_new(&t, NULL, &o, msg, sizeof(msg));
	if (!e)
		fail_msg("exporter_new: %s", msg);
	stats_while_failing(e, "controller busy, try ");
	exporter_free(e);
	assert_true(atomic_load(&calls) >= 20);
	/* HTTP: the reason is curl's (nobody listens on port 1) */
	t.kind = EXPORT_PYROSCOPE;
	t.url = "http://127.0.0.1:1";
	e = exporter_new(&t, NULL, &o, msg, sizeof(msg));
	if (!e)
		fail_msg("exporter_new: %s", msg);
	stats_while_failing(e, "connect");
	exporter_free(e);
}

/*
 * Our OTLP bytes against protoc's encoding of want (text format, written by
 * hand); on a difference, fails with ours decoded.
 */
static void assert_same_as_protoc(const uint8_t *buf, size_t len, const char *want)
{
	char dir[128], path[300], cmd[1200], top[512], *out;
	FILE *f;

	assert_non_null(realpath(srcdir(), top));
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "otlp"), 0);
	snprintf(path, sizeof(path), "%s/ours.bin", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	snprintf(path, sizeof(path), "%s/want.txt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(want, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "protoc --encode=profleet.otlp.ExportProfilesServiceRequest -I %s/proto "
		 "%s/proto/otlp_profiles.proto <%s/want.txt >%s/want.bin && "
		 "cmp %s/want.bin %s/ours.bin && echo same", top, top, dir, dir, dir, dir);
	out = run_capture(cmd);
	if (!out || strncmp(out, "same", 4)) {
		free(out);
		snprintf(cmd, sizeof(cmd),
			 "protoc --decode=profleet.otlp.ExportProfilesServiceRequest -I %s/proto "
			 "%s/proto/otlp_profiles.proto <%s/ours.bin | tr -s ' \\n' ' '", top, top, dir);
		out = run_capture(cmd);
		fail_msg("our OTLP bytes differ from protoc's; ours: %s", out ? out : "?");
	}
	free(out);
	tmpdir_remove(dir);
}

/* Our encoding against protoc's encoding of the same message written by hand (with our
 * restatement of the schema: test_otlp.c holds the bytes against upstream's numbers). */
static void test_otlp_golden(void **state)
{
	struct profile *p = make_profile("hot_function", 7);
	struct export_label l[1] = { { "namespace", "shop" } };
	uint8_t *buf;
	char *want;
	size_t len;

	(void)state;
	if (!have_cmd("protoc"))
		skip();
	assert_int_equal(otlp__encode(p, "checkout", l, 1, &buf, &len), 0);
	assert_true(asprintf(&want,
		"resource_profiles {\n"
		"  resource {\n"
		"    attributes { key: \"service.name\" value { string_value: \"checkout\" } }\n"
		"    attributes { key: \"k8s.namespace.name\" value { string_value: \"shop\" } }\n"
		"  }\n"
		"  scope_profiles {\n"
		"    scope { name: \"profleet\" version: \"%s\" }\n"
		"    profiles {\n"
		"      sample_type { type_strindex: 1 unit_strindex: 2 }\n"
		"      samples { stack_index: 1 values: 7 }\n"
		"      time_unix_nano: 1700000000000000000\n"
		"      duration_nano: 10000000000\n"
		"      period_type { type_strindex: 3 unit_strindex: 4 }\n"
		"      period: 10000000\n"
		"    }\n"
		"  }\n"
		"}\n"
		"dictionary {\n"
		"  mapping_table {}\n"
		"  mapping_table { memory_start: 4194304 memory_limit: 4198400 filename_strindex: 5 }\n"
		"  location_table {}\n"
		"  location_table { mapping_index: 1 address: 4194560 lines { function_index: 1 }"
		" attribute_indices: [1] }\n"
		"  location_table { mapping_index: 1 address: 4194816 lines { function_index: 2 }"
		" attribute_indices: [1] }\n"
		"  function_table {}\n"
		"  function_table { name_strindex: 6 system_name_strindex: 6 }\n"
		"  function_table { name_strindex: 7 system_name_strindex: 7 }\n"
		"  link_table {}\n"
		"  string_table: [\"\", \"samples\", \"count\", \"cpu\", \"nanoseconds\", \"/usr/bin/app\", \"main\", \"hot_function\","
		" \"profile.frame.type\"]\n"
		"  attribute_table {}\n"
		"  attribute_table { key_strindex: 8 value { string_value: \"native\" } }\n"
		"  stack_table {}\n"
		"  stack_table { location_indices: [2, 1] }\n"
		"}\n", otlp__scope_version()) > 0);
	assert_same_as_protoc(buf, len, want);
	free(want);
	free(buf);
	profile__free(p);
}

/*
 * Function names of any length (long C++ template names are real): at 4095
 * bytes the "name\tfile" key once lost its tab and the encoder crashed.
 */
static void test_otlp_long_names(void **state)
{
	static const size_t lens[] = { 4094, 4095, 4096, 4097, 9000 };
	char *name = malloc(9001);

	(void)state;
	assert_non_null(name);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		struct profile *p;
		uint8_t *buf;
		size_t len;

		/* "std::vector<std::vector<...>>" of exactly lens[k] bytes */
		for (size_t i = 0; i < lens[k]; i++)
			name[i] = "std::vector<"[i % 12];
		name[lens[k]] = '\0';
		p = make_profile(name, 3);
		assert_int_equal(otlp__encode(p, "svc", NULL, 0, &buf, &len), 0);
		/* the whole name is one string of the table: its length prefix says lens[k] */
		{
			const uint8_t *at = memmem(buf, len, name, lens[k]);

			assert_non_null(at);
			assert_true(at - buf >= 2);
			assert_int_equal(at[-2], (lens[k] & 0x7f) | 0x80);
			assert_int_equal(at[-1], lens[k] >> 7);
		}
		assert_non_null(memmem(buf, len, "main", 4));
		free(buf);
		profile__free(p);
	}
	free(name);
}

static void test_otlp_http(void **state)
{
	struct recv rv;
	char url[64], msg[256], dir[128], path[300], cmd[1200], top[512], *out;
	struct export_target t = { .kind = EXPORT_OTLP_HTTP, .url = url };
	struct export_auth a = { .headers = { "X-Api-Key: k1" }, .nheaders = 1 };
	struct exporter_opts o = { .backoff_base_ms = 50, .backoff_cap_ms = 100 };
	struct exporter_stats st;
	struct exporter *e;
	const struct req *r;
	FILE *f;
	static const char *const script[] = { "503", "200" };

	(void)state;
	recv_start(&rv, script, 2);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", rv.port);
	e = exporter_new(&t, &a, &o, msg, sizeof(msg));
	assert_non_null(e);
	submit(e, "otlp_function", "checkout");
	assert_int_equal(exporter_drain(e, 10000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retries, 1);
	r = req_at(&rv, 1);
	assert_non_null(strstr(r->line, "POST /v1development/profiles "));
	assert_non_null(strcasestr(r->headers, "Content-Type: application/x-protobuf"));
	assert_non_null(strcasestr(r->headers, "Content-Encoding: gzip"));
	assert_non_null(strcasestr(r->headers, "X-Api-Key: k1"));
	if (have_cmd("protoc")) {
		assert_non_null(realpath(srcdir(), top));
		assert_int_equal(tmpdir_make(dir, sizeof(dir), "otlphttp"), 0);
		snprintf(path, sizeof(path), "%s/body.gz", dir);
		f = fopen(path, "w");
		fwrite(r->body, 1, r->len, f);
		fclose(f);
		snprintf(cmd, sizeof(cmd),
			 "zcat %s | protoc --decode=profleet.otlp.ExportProfilesServiceRequest -I %s/proto "
			 "%s/proto/otlp_profiles.proto", path, top, top);
		out = run_capture(cmd);
		assert_non_null(out);
		assert_non_null(strstr(out, "\"otlp_function\""));
		assert_non_null(strstr(out, "\"k8s.pod.name\""));	/* pod -> semantic convention */
		assert_non_null(strstr(out, "string_value: \"web-1,x\""));	/* no Pyroscope escaping here */
		assert_non_null(strstr(out, "\"service.name\""));
		free(out);
		tmpdir_remove(dir);
	}
	exporter_free(e);
	recv_stop(&rv);
}

/* The Connect push API: a PushRequest that Pyroscope's schema reads, with a pprof inside. */
static void test_pyroscope_push(void **state)
{
	struct recv rv;
	static const char *const script[] = { "503", "200" };
	struct export_auth auth = { .tenant = "team-p", .basic = "u:pw" };
	char url[64], msg[256], err[200];
	struct export_target t = { .kind = EXPORT_PYROSCOPE_PUSH, .url = url };
	struct exporter_opts o = { .queue_cap = 4, .backoff_base_ms = 50, .backoff_cap_ms = 200,
				   .timeout_ms = 2000 };
	Profleet__Pyroscope__PushRequest *pr;
	struct exporter_stats st;
	struct pprof_merge *m;
	struct exporter *e;
	const struct req *r;
	const struct profile *mp;
	bool name = false, svc = false, ns = false, fn = false;

	(void)state;
	assert_int_equal(export_parse_target("pyroscope-push=http://h:4040", &t, msg, sizeof(msg)), 0);
	assert_int_equal(t.kind, EXPORT_PYROSCOPE_PUSH);
	t.url = url;
	recv_start(&rv, script, 2);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", rv.port);
	e = exporter_new(&t, &auth, &o, msg, sizeof(msg));
	assert_non_null(e);
	submit(e, "hot_function", "checkout");
	assert_int_equal(exporter_drain(e, 5000), 0);
	exporter_stats(e, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retries, 1);	/* the 503 */
	assert_int_equal(nreq(&rv), 2);
	r = req_at(&rv, 1);
	assert_non_null(strstr(r->line, "POST /push.v1.PusherService/Push "));
	assert_non_null(strcasestr(r->headers, "Content-Type: application/proto"));
	assert_non_null(strcasestr(r->headers, "X-Scope-OrgID: team-p"));
	assert_non_null(strcasestr(r->headers, "Authorization: Basic dTpwdw=="));
	pr = profleet__pyroscope__push_request__unpack(NULL, r->len, r->body);
	assert_non_null(pr);
	assert_int_equal(pr->n_series, 1);
	for (size_t i = 0; i < pr->series[0]->n_labels; i++) {
		const Profleet__Pyroscope__LabelPair *l = pr->series[0]->labels[i];

		name |= !strcmp(l->name, "__name__") && !strcmp(l->value, "process_cpu");
		svc |= !strcmp(l->name, "service_name") && !strcmp(l->value, "checkout");
		ns |= !strcmp(l->name, "namespace") && !strcmp(l->value, "shop");
	}
	assert_true(name && svc && ns);
	assert_int_equal(pr->series[0]->n_samples, 1);
	assert_int_equal(strlen(pr->series[0]->samples[0]->id), 36);
	/* the raw profile is a gzipped pprof with the function in it */
	m = pprof_merge_new();
	assert_int_equal(pprof_merge_add(m, pr->series[0]->samples[0]->raw_profile.data,
					 pr->series[0]->samples[0]->raw_profile.len, err, sizeof(err)), 0);
	mp = pprof_merge_profile(m);
	for (uint32_t i = 0; i < mp->nlocations; i++)
		fn |= !strcmp(mp->locations[i].function, "hot_function");
	assert_true(fn);
	assert_int_equal(profile__total(mp), 7);
	pprof_merge_free(m);
	profleet__pyroscope__push_request__free_unpacked(pr, NULL);
	exporter_free(e);
	recv_stop(&rv);
}

/*
 * More attributes (a tid each) and stacks than the encoder's first tables hold:
 * they grow, and what they held is freed, nothing else (ASan's tier checks).
 */
static void test_otlp_many_attributes(void **state)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x1000, .limit = 0x100000, .file = "/bin/app" };
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(p);
	assert_int_equal(profile__add_mapping(p, &m), 0);
	for (uint32_t i = 0; i < 600; i++) {
		char fn[32];
		struct prof_location l = { .mapping = 0, .address = 0x1000 + i * 16, .function = fn };
		struct prof_label lb[2] = { { .key = "pid", .num = 7 }, { .key = "thread", .num = i } };
		uint32_t loc;

		snprintf(fn, sizeof(fn), "f%u", i);
		loc = (uint32_t)profile__add_location(p, &l);
		assert_true(profile__add_sample(p, &loc, 1, 1, lb, 2) >= 0);
	}
	p->period_nanos = 10000000;
	assert_int_equal(otlp__encode(p, "svc", NULL, 0, &buf, &len), 0);
	assert_true(len > 600 * 8);
	free(buf);
	profile__free(p);
}

/* What the controller transport was handed (the built-in store's route). */
static struct {
	size_t n;
	char *policies[256];
	size_t gzlen;
	uint8_t *gz;
} got_upload;

static int fake_upload(void *ctx, const struct export_route *route, const uint8_t *gz, size_t len,
		       int64_t from_s, int64_t until_s, char *err, size_t errlen)
{
	(void)ctx, (void)from_s, (void)until_s, (void)err, (void)errlen;
	got_upload.n = route->npolicies;
	for (size_t i = 0; i < route->npolicies && i < 256; i++)
		got_upload.policies[i] = strdup(route->policies[i]);
	got_upload.gzlen = len;
	free(got_upload.gz);
	got_upload.gz = malloc(len);
	if (got_upload.gz)
		memcpy(got_upload.gz, gz, len);
	return 0;
}

/* 200 policies with long names (12 KB in all) reach the transport as they are. */
static void test_controller_route(void **state)
{
	struct export_target t = { .kind = EXPORT_CONTROLLER, .url = "store" };
	struct exporter_opts o = { .upload = fake_upload };
	char names[200][64], msg[128];
	const char *pv[200];
	struct export_route route = { pv, 200 };
	struct profile *p = make_profile("f", 1);
	struct exporter *e = exporter_new(&t, NULL, &o, msg, sizeof(msg));

	(void)state;
	assert_non_null(e);
	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "namespace-%03d/a-policy-with-a-long-name-%03d", i,
			 i);
		pv[i] = names[i];
	}
	assert_int_equal(exporter_submit_routed(e, p, "svc", NULL, 0, 1, 2, 19, &route), 0);
	assert_int_equal(exporter_drain(e, 5000), 0);
	assert_int_equal(got_upload.n, 200);
	assert_true(got_upload.gzlen > 0);
	for (int i = 0; i < 200; i++) {
		assert_string_equal(got_upload.policies[i], names[i]);
		free(got_upload.policies[i]);
	}
	free(got_upload.gz);
	got_upload.gz = NULL;
	profile__free(p);
	exporter_free(e);
}

/*
 * The store merges many pods' profiles of a policy: each sample of an upload
 * carries the target's identity labels, after its own, and the merge keeps
 * them (a profile encoded without them could not tell two pods apart).
 */
static void test_controller_labels(void **state)
{
	struct export_target t = { .kind = EXPORT_CONTROLLER, .url = "store" };
	struct exporter_opts o = { .upload = fake_upload };
	static const char *const uid[2] = { "0b5e7c1a-0000-4000-8000-000000000001",
					    "0b5e7c1a-0000-4000-8000-000000000002" };
	const char *pv[1] = { "shop/web" };
	struct export_route route = { pv, 1 };
	struct profile *p = make_profile("f", 3);
	struct pprof_merge *m = pprof_merge_new();
	struct exporter *e;
	const struct profile *mp;
	int seen = 0;
	char msg[200];

	(void)state;
	assert_non_null(m);
	e = exporter_new(&t, NULL, &o, msg, sizeof(msg));
	assert_non_null(e);
	/* the same stack from two pods of the policy, and an empty label (skipped) */
	for (int i = 0; i < 2; i++) {
		const struct export_label l[4] = { { "namespace", "shop" }, { "pod_uid", uid[i] },
						   { "container_id", "c0ffee" }, { "zone", "" } };

		assert_int_equal(exporter_submit_routed(e, p, "svc", l, 4, 1, 2, 19, &route), 0);
		assert_int_equal(exporter_drain(e, 5000), 0);
		assert_non_null(got_upload.gz);
		assert_int_equal(pprof_merge_add(m, got_upload.gz, got_upload.gzlen, msg, sizeof(msg)),
				 0);
		for (size_t k = 0; k < got_upload.n; k++)
			free(got_upload.policies[k]);
	}
	mp = pprof_merge_profile(m);
	assert_int_equal(mp->nsamples, 2);	/* not summed into one: the pods differ */
	for (uint32_t i = 0; i < mp->nsamples; i++) {
		const struct prof_sample *sm = &mp->samples[i];
		int found = 0;

		for (uint32_t k = 0; k < sm->nlabels; k++) {
			const struct prof_label *lb = &sm->labels[k];

			assert_string_not_equal(lb->key, "zone");
			if (!lb->str)
				continue;
			found |= !strcmp(lb->key, "namespace") && !strcmp(lb->str, "shop");
			found |= (!strcmp(lb->key, "container_id") && !strcmp(lb->str, "c0ffee")) << 1;
			for (int u = 0; u < 2; u++)
				if (!strcmp(lb->key, "pod_uid") && !strcmp(lb->str, uid[u]))
					seen |= 1 << u, found |= 4;
		}
		assert_int_equal(found, 7);
		assert_int_equal(sm->count, 3);
	}
	assert_int_equal(seen, 3);
	pprof_merge_free(m);
	free(got_upload.gz);
	got_upload.gz = NULL;
	profile__free(p);
	exporter_free(e);
}

/* native -> Python -> kernel, one sample: what each writer marks as which */
static struct profile *make_kinds_profile(void)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x401000, .file = "/usr/bin/python3" };
	struct prof_location l[3] = {
		{ .frame = PROF_FRAME_KERNEL, .mapping = PROFILE_NO_MAPPING,
		  .function = "do_syscall_64" },
		{ .frame = PROF_FRAME_PYTHON, .mapping = PROFILE_NO_MAPPING,
		  .function = "Worker.hot", .system_name = "ratio.Worker.hot",
		  .file = "/app/ratio.py", .line = 16 },
		{ .mapping = 0, .address = 0x400100, .function = "main" },
	};
	uint32_t locs[3] = { 0, 1, 2 };

	assert_non_null(p);
	p->period_nanos = 10000000;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(profile__add_location(p, &l[i]), i);
	assert_int_equal(profile__add_sample(p, locs, 3, 5, NULL, 0), 0);
	p->samples[0].cpu_ns = 50000000;
	return p;
}

/*
 * OTLP, byte for byte against protoc: each location points at the
 * profile.frame.type of its own kind, the Python function has its
 * module-qualified system name.
 */
static void test_frame_kinds_otlp(void **state)
{
	struct profile *p = make_kinds_profile();
	uint8_t *buf;
	char *want;
	size_t len;

	(void)state;
	if (!have_cmd("protoc"))
		skip();
	assert_int_equal(otlp__encode(p, "svc", NULL, 0, &buf, &len), 0);
	assert_true(asprintf(&want,
		"resource_profiles {\n"
		"  resource { attributes { key: \"service.name\" value { string_value: \"svc\" } } }\n"
		"  scope_profiles {\n"
		"    scope { name: \"profleet\" version: \"%s\" }\n"
		"    profiles {\n"
		"      sample_type { type_strindex: 1 unit_strindex: 2 }\n"
		"      samples { stack_index: 1 values: 5 }\n"
		"      duration_nano: 0\n"
		"      period_type { type_strindex: 3 unit_strindex: 4 }\n"
		"      period: 10000000\n"
		"    }\n"
		"  }\n"
		"}\n"
		"dictionary {\n"
		"  mapping_table {}\n"
		"  mapping_table { memory_start: 4194304 memory_limit: 4198400 filename_strindex: 5 }\n"
		"  location_table {}\n"
		"  location_table { lines { function_index: 1 } attribute_indices: [1] }\n"
		"  location_table { lines { function_index: 2 line: 16 } attribute_indices: [2] }\n"
		"  location_table { mapping_index: 1 address: 4194560 lines { function_index: 3 }"
		" attribute_indices: [3] }\n"
		"  function_table {}\n"
		"  function_table { name_strindex: 6 system_name_strindex: 6 }\n"
		"  function_table { name_strindex: 7 system_name_strindex: 8 filename_strindex: 9 }\n"
		"  function_table { name_strindex: 10 system_name_strindex: 10 }\n"
		"  link_table {}\n"
		"  string_table: [\"\", \"samples\", \"count\", \"cpu\", \"nanoseconds\",\n"
		"    \"/usr/bin/python3\", \"do_syscall_64\", \"Worker.hot\", \"ratio.Worker.hot\",\n"
		"    \"/app/ratio.py\", \"main\", \"profile.frame.type\"]\n"
		"  attribute_table {}\n"
		"  attribute_table { key_strindex: 11 value { string_value: \"kernel\" } }\n"
		"  attribute_table { key_strindex: 11 value { string_value: \"cpython\" } }\n"
		"  attribute_table { key_strindex: 11 value { string_value: \"native\" } }\n"
		"  stack_table {}\n"
		"  stack_table { location_indices: [1, 2, 3] }\n"
		"}\n", otlp__scope_version()) > 0);
	assert_same_as_protoc(buf, len, want);
	free(want);
	free(buf);
	profile__free(p);
}

/*
 * A JVM frame (agent/jvm): through pprof to the controller and back it stays
 * one, with its class's source file, under the "[jvm]" pseudo-mapping; folded
 * as "_[j]"; OTLP's profile.frame.type "jvm".
 */
static void test_jvm_frame_kind(void **state)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x401000, .file = "/usr/bin/java" };
	struct prof_location l[2] = {
		{ .frame = PROF_FRAME_JVM, .mapping = PROFILE_NO_MAPPING, .address = 0x7f0000001234,
		  .function = "JvmRatio.hotThree", .file = "JvmRatio.java" },
		{ .mapping = 0, .address = 0x400100, .function = "main" },
	};
	uint32_t locs[2] = { 0, 1 };
	const struct profile *mp;
	struct pprof_merge *pm;
	char err[200], *text = NULL;
	uint8_t *buf;
	size_t len, tlen = 0;
	FILE *f;
	bool seen = false;

	(void)state;
	assert_non_null(p);
	p->period_nanos = 10000000;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(profile__add_location(p, &l[i]), i);
	assert_int_equal(profile__add_sample(p, locs, 2, 3, NULL, 0), 0);
	assert_string_equal(prof_frame_type(PROF_FRAME_JVM), "jvm");
	/* OTLP: the location's profile.frame.type is the string "jvm" (AnyValue field 1) */
	assert_int_equal(otlp__encode(p, "svc", NULL, 0, &buf, &len), 0);
	assert_non_null(memmem(buf, len, "\x0a\x03jvm", 5));
	free(buf);
	assert_int_equal(pprof__encode(p, true, &buf, &len), 0);
	pm = pprof_merge_new();
	assert_non_null(pm);
	assert_int_equal(pprof_merge_add(pm, buf, len, err, sizeof(err)), 0);
	mp = pprof_merge_profile(pm);
	for (uint32_t i = 0; i < mp->nlocations; i++)
		if (!strcmp(mp->locations[i].function, "JvmRatio.hotThree")) {
			assert_int_equal(mp->locations[i].frame, PROF_FRAME_JVM);
			assert_string_equal(mp->locations[i].file, "JvmRatio.java");
			assert_int_equal(mp->locations[i].address, 0x7f0000001234);
			seen = true;
		}
	assert_true(seen);
	seen = false;
	for (uint32_t i = 0; i < mp->nmappings; i++)
		seen |= !strcmp(mp->mappings[i].file, "[jvm]");
	assert_true(seen);	/* the pprof had it: the merge keeps it */
	f = open_memstream(&text, &tlen);
	assert_non_null(f);
	assert_int_equal(folded__write(mp, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "main;JvmRatio.hotThree_[j] 3"));
	free(text);
	pprof_merge_free(pm);
	free(buf);
	profile__free(p);
}

/* pprof to the controller and back: kinds by pseudo-mapping, Python's system name kept */
static void test_frame_kinds_pprof_merge(void **state)
{
	struct profile *p = make_kinds_profile();
	const struct profile *mp;
	struct pprof_merge *m;
	char err[200], *text = NULL;
	uint8_t *buf;
	size_t len, tlen = 0;
	FILE *f;
	int seen = 0;

	(void)state;
	assert_int_equal(pprof__encode(p, true, &buf, &len), 0);
	m = pprof_merge_new();
	assert_non_null(m);
	assert_int_equal(pprof_merge_add(m, buf, len, err, sizeof(err)), 0);
	mp = pprof_merge_profile(m);
	for (uint32_t i = 0; i < mp->nlocations; i++) {
		const struct prof_location *l = &mp->locations[i];

		if (!strcmp(l->function, "Worker.hot")) {
			assert_int_equal(l->frame, PROF_FRAME_PYTHON);
			assert_non_null(l->system_name);
			assert_string_equal(l->system_name, "ratio.Worker.hot");
			assert_string_equal(l->file, "/app/ratio.py");
			assert_int_equal(l->line, 16);
			seen |= 1;
		} else if (!strcmp(l->function, "do_syscall_64")) {
			assert_int_equal(l->frame, PROF_FRAME_KERNEL);
			seen |= 2;
		} else if (!strcmp(l->function, "main")) {
			assert_int_equal(l->frame, PROF_FRAME_NATIVE);
			assert_null(l->system_name);
			seen |= 4;
		}
	}
	assert_int_equal(seen, 7);
	/* and the controller's flame graph says which is which */
	f = open_memstream(&text, &tlen);
	assert_non_null(f);
	assert_int_equal(folded__write(mp, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "main;ratio.Worker.hot_[py];do_syscall_64_[k] 5"));
	free(text);
	pprof_merge_free(m);
	free(buf);
	profile__free(p);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* receivers may write to a client that gave up */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_pyroscope_ingest),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_backend_down_then_back),
		cmocka_unit_test(test_slow_backend),
		cmocka_unit_test(test_stats_while_failing),
		cmocka_unit_test(test_dir),
		cmocka_unit_test(test_otlp_golden),
		cmocka_unit_test(test_otlp_long_names),
		cmocka_unit_test(test_otlp_http),
		cmocka_unit_test(test_pyroscope_push),
		cmocka_unit_test(test_controller_route),
		cmocka_unit_test(test_controller_labels),
		cmocka_unit_test(test_otlp_many_attributes),
		cmocka_unit_test(test_frame_kinds_otlp),
		cmocka_unit_test(test_frame_kinds_pprof_merge),
		cmocka_unit_test(test_jvm_frame_kind),
	};

	log_set_level(LOG_LVL_ERROR);
	test_filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
