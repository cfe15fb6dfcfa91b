// SPDX-License-Identifier: Apache-2.0
/* Logging sinks modelled on what ddprof offers: stdout, stderr, syslog, disable, or a file. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

enum sink { SINK_STDERR, SINK_STDOUT, SINK_SYSLOG, SINK_NONE, SINK_FILE };

static enum sink sink = SINK_STDERR;
static FILE *sink_file;
static enum log_level level = LOG_LVL_NOTICE;

static const char *const level_names[] = { "error", "warn", "notice", "info", "debug" };

int log_level_parse(const char *name, enum log_level *ret)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*ret = LOG_LVL_WARN;
		return 0;
	}
	return -EINVAL;
}

int log_set_level_name(const char *name)
{
	enum log_level lvl;
	int err = log_level_parse(name, &lvl);

	if (!err)
		level = lvl;
	return err;
}

void log_set_level(enum log_level lvl)
{
	level = lvl;
}

enum log_level log_get_level(void)
{
	return level;
}

void log_close(void)
{
	if (sink == SINK_FILE && sink_file)
		fclose(sink_file);
	if (sink == SINK_SYSLOG)
		closelog();
	sink_file = NULL;
	sink = SINK_STDERR;
}

int log_open(const char *target)
{
	FILE *f = NULL;
	enum sink s;

	if (!target || !strcmp(target, "stderr")) {
		s = SINK_STDERR;
	} else if (!strcmp(target, "stdout")) {
		s = SINK_STDOUT;
	} else if (!strcmp(target, "syslog")) {
		s = SINK_SYSLOG;
	} else if (!strcmp(target, "disable")) {
		s = SINK_NONE;
	} else {
		f = fopen(target, "ae");
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOLBF, 0);
		s = SINK_FILE;
	}
	log_close();
	sink = s;
	sink_file = f;
	if (s == SINK_SYSLOG)
		openlog("profleet", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	return 0;
}

/* logfmt value: quoted, with \ " and newlines escaped */
static void put_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out), fputc(*s, out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, out);
	}
	fputc('"', out);
}

static void log_v(enum log_level lvl, const char *const *kv, const char *fmt, va_list ap)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
	char ts[32], msg[2048];
	struct timespec now;
	struct tm tm;
	FILE *out;

	if (lvl > level || sink == SINK_NONE)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (sink == SINK_SYSLOG) {
		syslog(syslog_prio[lvl], "%s", msg);
		return;
	}
	out = sink == SINK_FILE ? sink_file : sink == SINK_STDOUT ? stdout : stderr;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* logfmt: easy for people and for log shippers */
	flockfile(out);
	fprintf(out, "time=%s.%03ldZ level=%s msg=", ts, now.tv_nsec / 1000000, level_names[lvl]);
	put_quoted(out, msg);
	for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
		fprintf(out, " %s=", kv[i]);
		put_quoted(out, kv[i + 1]);
	}
	fputc('\n', out);
	funlockfile(out);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(lvl, NULL, fmt, ap);
	va_end(ap);
}

void log_kv(enum log_level lvl, const char *const *kv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(lvl, kv, fmt, ap);
	va_end(ap);
}
