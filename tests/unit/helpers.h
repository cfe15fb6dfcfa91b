/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the unit tests. */
#ifndef TESTS_HELPERS_H
#define TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Runs a shell command, returns its whole stdout (malloc'd, NUL-terminated) or NULL. */
static inline char *run_capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	size_t len = 0, cap = 65536;
	char *buf;

	if (!p)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, p);

		len += n;
		if (n == 0)
			break;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	if (pclose(p) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Runs a shell command built like printf; the test fails if it does. */
static inline __attribute__((format(printf, 1, 2))) void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* A fresh /tmp/profleet-NAME-XXXXXX directory in dir; 0 or -1 (a cmocka setup's return). */
static inline int tmpdir_make(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/profleet-%s-XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

/* Removes what tmpdir_make made, with everything in it. */
static inline int tmpdir_remove(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static inline int have_cmd(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static inline const char *srcdir(void)
{
	const char *s = getenv("PROFLEET_SRCDIR");

	return s && *s ? s : ".";
}

/* PROFLEET_TEST_FILTER=PATTERN runs only the tests whose names match (cmocka's * and ?). */
static inline void test_filter_from_env(void)
{
	const char *f = getenv("PROFLEET_TEST_FILTER");

	if (f && *f)
		cmocka_set_test_filter(f);
}

#endif
