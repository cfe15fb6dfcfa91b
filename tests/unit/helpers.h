/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the unit tests. */
#ifndef TESTS_HELPERS_H
#define TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
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

/* This process's peak resident set so far, in KiB. */
static inline long peak_rss_kb(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* Bytes this process has read through read(2) and its kin (/proc/self/io rchar), or -1. */
static inline long long bytes_read(void)
{
	FILE *f = fopen("/proc/self/io", "re");
	long long v = -1;
	char line[128];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

struct child_run {
	long grew_kb;		/* how much the child's peak RSS grew while fn ran */
	double secs;		/* how long fn took */
	long long read;		/* bytes it read (-1: unknown) */
};

/*
 * Runs fn(arg, out) in a child process, whose peak RSS starts from what it has at
 * the fork, not from this process's peak so far; out (out_len bytes) comes back.
 * fn must not use cmocka's asserts (they would go on in the child).
 */
static inline void run_in_child(void (*fn)(void *arg, void *out), void *arg, void *out,
				size_t out_len, struct child_run *ret)
{
	struct timespec t0, t1;
	struct rusage ru0, ru1;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct child_run r;
		long long read0;

		close(p[0]);
		read0 = bytes_read();
		getrusage(RUSAGE_SELF, &ru0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		fn(arg, out);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		getrusage(RUSAGE_SELF, &ru1);
		r.read = read0 < 0 ? -1 : bytes_read() - read0;
		r.grew_kb = ru1.ru_maxrss - ru0.ru_maxrss;
		r.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) &&
		      write(p[1], out, out_len) == (ssize_t)out_len ? 0 : 1);
	}
	close(p[1]);
	/* a child that died (out of memory, a crash) sends nothing */
	assert_int_equal(read(p[0], ret, sizeof(*ret)), sizeof(*ret));
	assert_int_equal(read(p[0], out, out_len), (ssize_t)out_len);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A copy of the little-endian ELF64 file src whose section name claims size bytes,
 * the copy extended to hold them as a hole: a few KB on disk (issue 12, item 9).
 * Returns the section's file offset.
 */
static inline uint64_t elf_sparse_copy(const char *src, const char *dst, const char *name,
				       uint64_t size)
{
	FILE *f = fopen(src, "rb");
	Elf64_Ehdr eh;
	Elf64_Shdr *sh;
	uint64_t off;
	char *img;
	long len;
	uint16_t i;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	img = malloc((size_t)len);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	memcpy(&eh, img, sizeof(eh));
	assert_true(eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_shentsize == sizeof(*sh) &&
		    eh.e_shoff + (uint64_t)eh.e_shnum * sizeof(*sh) <= (uint64_t)len &&
		    eh.e_shstrndx < eh.e_shnum && eh.e_shoff % 8 == 0);
	sh = (Elf64_Shdr *)(img + eh.e_shoff);
	for (i = 0; i < eh.e_shnum; i++)
		if (!strcmp(img + sh[eh.e_shstrndx].sh_offset + sh[i].sh_name, name))
			break;
	assert_true(i < eh.e_shnum);
	sh[i].sh_size = size;
	off = sh[i].sh_offset;
	f = fopen(dst, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(img, 1, (size_t)len, f), (size_t)len);
	assert_int_equal(fclose(f), 0);
	free(img);
	if (off + size > (uint64_t)len)
		assert_int_equal(truncate(dst, (off_t)(off + size)), 0);
	return off;
}

/*
 * A child process whose root directory is root (chroot), as a container's, until
 * *ret_fd is closed (then waitpid it); -1 when chroot is not allowed (not root).
 */
static inline pid_t rooted_child(const char *root, int *ret_fd)
{
	int go[2], ready[2];
	char c = 'n';
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		c = chroot(root) == 0 && chdir("/") == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) == 1 && c == 'y')
			while (read(go[0], &c, 1) > 0)
				;
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	*ret_fd = go[1];
	if (read(ready[0], &c, 1) != 1 || c != 'y') {
		close(go[1]);
		waitpid(pid, NULL, 0);
		*ret_fd = -1;
		pid = -1;
	}
	close(ready[0]);
	return pid;
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
