// SPDX-License-Identifier: Apache-2.0
/*
 * Opening files inside a target's root. openat2(2) with RESOLVE_IN_ROOT does it in
 * the kernel (Linux 5.6; we support 5.10 and later). Where it is missing all the
 * same (a container runtime's seccomp profile from before openat2 answers ENOSYS
 * or EPERM), rootfs_openat_walk does it one component at a time with the same
 * meaning: "/" and ".." at the root stay at the root, absolute symlinks start
 * again from the root, magic links are never followed (only their text is read,
 * as an ordinary symlink's). It does not refuse those paths: it keeps them
 * inside, as the kernel does, so that the answer does not depend on the runtime.
 */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WALK_MAX_DEPTH 64	/* directories below the root held at once */
#define WALK_MAX_LINKS 40	/* symlinks followed in one path, the kernel's limit */
#define EAGAIN_RETRIES 4	/* openat2 saw a rename race on ".." */

/* ---- the walk, without openat2 ------------------------------------------ */

struct walk {
	int root;
	int dirs[WALK_MAX_DEPTH];	/* O_PATH fds of the directories entered, root last */
	int depth;
	int links;
	char unresolved[2 * PATH_MAX];	/* what is left to resolve */
};

static int walk_dir(const struct walk *w)
{
	return w->depth ? w->dirs[w->depth - 1] : w->root;
}

static void walk_to_root(struct walk *w)
{
	while (w->depth)
		close(w->dirs[--w->depth]);
}

/* What is left becomes target + "/" + rest (rest may point into w->unresolved). 0 or -errno. */
static int walk_splice(struct walk *w, const char *target, const char *rest)
{
	char tmp[sizeof(w->unresolved)];
	int n = snprintf(tmp, sizeof(tmp), "%s/%s", target, rest);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(w->unresolved, tmp, (size_t)n + 1);
	return 0;
}

/*
 * One component (not "." or ".."): a directory is entered, a symlink's text put in
 * front of what is left (*rest). 1 when name is the last component and no symlink:
 * the caller opens it. 0 to go on, or -errno.
 */
static int walk_step(struct walk *w, const char *name, bool last, const char **rest)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd = openat(walk_dir(w), name, O_PATH | O_NOFOLLOW | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (S_ISLNK(st.st_mode)) {
		n = readlinkat(fd, "", target, sizeof(target) - 1);
		err = n < 0 ? -errno : 0;
		close(fd);
		if (err)
			return err;
		if (++w->links > WALK_MAX_LINKS)
			return -ELOOP;
		target[n] = '\0';
		if (target[0] == '/')
			walk_to_root(w);	/* absolute: from the target's root, not ours */
		err = walk_splice(w, target, *rest);
		*rest = w->unresolved;
		return err;
	}
	if (last) {
		close(fd);
		return 1;
	}
	if (!S_ISDIR(st.st_mode) || w->depth == WALK_MAX_DEPTH) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -ENAMETOOLONG : -ENOTDIR;
	}
	w->dirs[w->depth++] = fd;
	return 0;
}

int rootfs_openat_walk(int root_fd, const char *path, int flags)
{
	struct walk w = { .root = root_fd };
	const char *p = w.unresolved;
	int ret;

	if ((size_t)snprintf(w.unresolved, sizeof(w.unresolved), "%s", path) >= sizeof(w.unresolved))
		return -ENAMETOOLONG;
	for (;;) {
		char name[NAME_MAX + 1];
		size_t len;

		p += strspn(p, "/");
		if (!*p) {	/* the path names a directory */
			ret = openat(walk_dir(&w), ".", flags);
			ret = ret < 0 ? -errno : ret;
			break;
		}
		len = strcspn(p, "/");
		if (len > NAME_MAX) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			if (w.depth)	/* at the root, ".." is the root */
				close(w.dirs[--w.depth]);
			continue;
		}
		ret = walk_step(&w, name, !p[strspn(p, "/")], &p);
		if (ret == 1) {
			/* O_NOFOLLOW: a symlink put there since walk_step looked is refused */
			ret = openat(walk_dir(&w), name, flags | O_NOFOLLOW);
			ret = ret < 0 ? -errno : ret;
			break;
		}
		if (ret < 0)
			break;
	}
	walk_to_root(&w);
	return ret;
}

/* ---- openat2 ------------------------------------------------------------ */

int rootfs_openat(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)flags,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = -1;

	for (int i = 0; i < EAGAIN_RETRIES; i++) {
		fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd >= 0)
		return (int)fd;
	if (errno == ENOSYS || errno == EPERM)
		return rootfs_openat_walk(root_fd, path, flags);
	return -errno;
}

/*
 * "/proc/<pid>/root[/rest]": root gets "/proc/<pid>/root", *ret_rest the rest ("/"
 * for none). "/proc/self/fd/<n>/rest", a root pinned by our descriptor n (see
 * rootfs.h), is split the same way.
 */
static bool split_proc_root(const char *path, char *root, size_t len, const char **ret_rest)
{
	size_t digits, n;
	const char *p;

	if (!strncmp(path, "/proc/self/fd/", 14)) {
		digits = strspn(path + 14, "0123456789");
		p = path + 14 + digits;
		if (!digits || digits > 10 || *p != '/')
			return false;
		n = (size_t)(p - path);
		if (n >= len)
			return false;
		memcpy(root, path, n);
		root[n] = '\0';
		*ret_rest = p;
		return true;
	}
	if (strncmp(path, "/proc/", 6))
		return false;
	digits = strspn(path + 6, "0123456789");
	p = path + 6 + digits;
	if (!digits || digits > 10 || strncmp(p, "/root", 5) || (p[5] && p[5] != '/'))
		return false;
	n = (size_t)(p + 5 - path);
	if (n >= len)
		return false;
	memcpy(root, path, n);
	root[n] = '\0';
	*ret_rest = path[n] ? path + n : "/";
	return true;
}

int rootfs_open(const char *path, int flags)
{
	char root[32];
	const char *rest;
	int root_fd, fd;

	if (!split_proc_root(path, root, sizeof(root), &rest)) {
		fd = open(path, flags);
		return fd < 0 ? -errno : fd;
	}
	root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;
	fd = rootfs_openat(root_fd, rest, flags);
	close(root_fd);
	return fd;
}

int rootfs_readable(const char *path)
{
	char root[32], self[40];
	const char *rest;
	int fd, err = 0;

	if (!split_proc_root(path, root, sizeof(root), &rest))
		return access(path, R_OK) ? -errno : 0;
	fd = rootfs_open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return fd;
	/* our own descriptor's link leads to the file found inside the root */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (access(self, R_OK))
		err = -errno;
	close(fd);
	return err;
}
