// SPDX-License-Identifier: Apache-2.0
/*
 * Opening files inside another root: a fake root directory full of symlinks that
 * try to leave it (absolute, climbing with "..", a directory linked to "/"), for
 * openat2 and for the walk it falls back to; then a process chrooted there, seen
 * through /proc/PID/root as the agent sees a container's process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "elfutil.h"
#include "helpers.h"
#include "rootfs.h"
#include "unwind_table.h"

static char dir[64];		/* the host: secret holds "host" */
static char root[128];		/* the fake root: <root><dir>/secret holds "inside" */

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	char up[128] = "", p[512];

	(void)state;
	if (tmpdir_make(dir, sizeof(dir), "rootfs"))
		return -1;
	snprintf(root, sizeof(root), "%s/root", dir);
	for (int i = 0; i < 16; i++)
		strcat(up, "../");
	sh("mkdir -p %s%s %s/in %s/usr/lib", root, dir, root, root);
	snprintf(p, sizeof(p), "%s/secret", dir);
	put(p, "host");
	snprintf(p, sizeof(p), "%s%s/secret", root, dir);
	put(p, "inside");
	snprintf(p, sizeof(p), "%s/in/file", root);
	put(p, "file");
	sh("cd %s && ln -s %s/secret abs && ln -s %s%s/secret rel && ln -s / usr/lib/debug && "
	   "ln -s .. in/up && ln -s ../in/file in/rlink && ln -s loop loop && "
	   "ln -s /nonexistent gone && ln -s %s escdir",
	   root, dir, up, dir, dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	return 0;
}

/* What fd reads (fd is closed), or the error as "-errno". */
static void slurp_fd(int fd, char *buf, size_t len)
{
	ssize_t n;

	if (fd < 0) {
		snprintf(buf, len, "%d", fd);
		return;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
}

static const struct {
	const char *path, *want;	/* what it reads, or "-errno" */
} cases[] = {
	{ "in/file", "file" },
	{ "/in/file", "file" },
	{ "abs", "inside" },			/* -> /host/secret */
	{ "rel", "inside" },			/* -> ../../(...)/host/secret */
	{ "usr/lib/debug/DIR/secret", "inside" },	/* usr/lib/debug -> / */
	{ "../../../../../../DIR/secret", "inside" },
	{ "in/up/in/up/in/file", "file" },	/* in/up -> .. */
	{ "in/rlink", "file" },			/* -> ../in/file */
	{ "escdir/secret", "inside" },		/* escdir -> /host */
	{ "loop", "-40" },			/* ELOOP */
	{ "gone", "-2" },			/* ENOENT */
	{ "in/file/x", "-20" },			/* ENOTDIR */
};

static void check_cases(int (*open_in)(int, const char *, int), int root_fd)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512], got[64];
		const char *d = strstr(cases[i].path, "DIR");

		if (d)
			snprintf(path, sizeof(path), "%.*s%s%s", (int)(d - cases[i].path),
				 cases[i].path, dir + 1, d + 3);
		else
			snprintf(path, sizeof(path), "%s", cases[i].path);
		slurp_fd(open_in(root_fd, path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
		print_message("# %s: %s\n", path, got);
		assert_string_equal(got, cases[i].want);
	}
}

static void test_openat2_stays_inside(void **state)
{
	int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	assert_true(root_fd >= 0);
	check_cases(rootfs_openat, root_fd);
	close(root_fd);
}

static void test_walk_stays_inside(void **state)
{
	int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	assert_true(root_fd >= 0);
	check_cases(rootfs_openat_walk, root_fd);
	close(root_fd);
}

/* A process chrooted to the fake root, through /proc/PID/root: what the agent opens. */
static void test_proc_pid_root(void **state)
{
	char path[600], got[64], prog[512];
	struct unwind_table *t = NULL;
	int fd, go;
	pid_t pid;

	(void)state;
	pid = rooted_child(root, &go);
	if (pid < 0)
		skip();	/* chroot needs root */
	/* what a plain open does: the host's file */
	snprintf(path, sizeof(path), "/proc/%d/root/abs", (int)pid);
	slurp_fd(open(path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
	assert_string_equal(got, "host");
	slurp_fd(rootfs_open(path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
	assert_string_equal(got, "inside");
	assert_int_equal(rootfs_readable(path), 0);
	/* an ELF file reached through a link to the host's directory */
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	sh("cp /proc/self/exe %s", prog);
	snprintf(path, sizeof(path), "/proc/%d/root/escdir/prog", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);	/* plain open: there it is */
	close(fd);
	assert_int_equal(rootfs_readable(path), -ENOENT);
	errno = 0;
	assert_null(elfutil_open(path, &fd));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(unwind_table__build(path, NULL, 0, &t), -ENOENT);
	/* other paths are opened as they are */
	slurp_fd(rootfs_open(prog, O_RDONLY | O_CLOEXEC), got, 5);
	assert_memory_equal(got, "\177ELF", 4);
	close(go);
	waitpid(pid, NULL, 0);
}

/*
 * A root pinned by our descriptor (/proc/self/fd/N/rest): confined the same way,
 * and still there after the process whose root it was has exited.
 */
static void test_pinned_root(void **state)
{
	char path[600], got[64], proc_root[64];
	int go, root_fd;
	pid_t pid;

	(void)state;
	pid = rooted_child(root, &go);
	if (pid < 0)
		skip();	/* chroot needs root */
	snprintf(proc_root, sizeof(proc_root), "/proc/%d/root", (int)pid);
	root_fd = open(proc_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root_fd >= 0);
	close(go);
	waitpid(pid, NULL, 0);
	snprintf(path, sizeof(path), "%s/abs", proc_root);
	assert_true(rootfs_open(path, O_RDONLY | O_CLOEXEC) < 0);	/* gone with it */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/abs", root_fd);
	slurp_fd(open(path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
	assert_string_equal(got, "host");	/* the kernel's magic link alone */
	slurp_fd(rootfs_open(path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
	assert_string_equal(got, "inside");
	snprintf(path, sizeof(path), "/proc/self/fd/%d/in/up/in/file", root_fd);
	slurp_fd(rootfs_open(path, O_RDONLY | O_CLOEXEC), got, sizeof(got));
	assert_string_equal(got, "file");
	close(root_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openat2_stays_inside),
		cmocka_unit_test(test_walk_stays_inside),
		cmocka_unit_test(test_proc_pid_root),
		cmocka_unit_test(test_pinned_root),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
