// SPDX-License-Identifier: Apache-2.0
#include "procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_line(char *line, struct maps_entry *e)
{
	char perms[5];
	int path_off = -1;
	unsigned long long start, end, off, ino;
	unsigned maj, min;

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min,
		   &ino, &path_off) < 7)
		return -EINVAL;
	if (end <= start || strlen(perms) != 4)
		return -EINVAL;
	e->start = start;
	e->end = end;
	e->offset = off;
	e->dev_major = maj;
	e->dev_minor = min;
	e->ino = ino;
	e->exec = perms[2] == 'x';
	e->path = path_off >= 0 ? line + path_off : "";
	return 0;
}

int procmaps__parse(char *text, int (*cb)(const struct maps_entry *e, void *ctx), void *ctx)
{
	int bad = 0;
	char *line = text;

	while (line && *line) {
		char *nl = strchr(line, '\n');
		struct maps_entry e;
		int err;

		if (nl)
			*nl = '\0';
		if (parse_line(line, &e) == 0) {
			err = cb(&e, ctx);
			if (err < 0)
				return err;
		} else if (*line) {
			bad++;
		}
		line = nl ? nl + 1 : NULL;
	}
	return bad;
}

int procmaps__read(const char *proc_root, int pid, size_t max_bytes, char **ret_text)
{
	char path[256];
	size_t len = 0, cap = 16384;
	char *buf = NULL, *nb;
	int fd, err = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/maps", proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= max_bytes) {
				err = -EFBIG;
				goto out;
			}
			cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	/* maps of a zombie or a process that just exited read as empty */
	if (len == 0) {
		err = -ESRCH;
		goto out;
	}
	*ret_text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}
