// SPDX-License-Identifier: Apache-2.0
/*
 * kubelet's cgroup layouts, as they appear under a cgroup mount:
 *   cgroupfs driver: kubepods[/burstable|/besteffort]/pod<uid>/<64 hex>
 *   systemd driver:  kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/
 *                    <runtime>-<64 hex>.scope   (runtime: cri-containerd, docker, crio)
 *   containerd with systemd cgroups inside a unit: ...pod<uid_>.slice:cri-containerd:<64 hex>
 * where <uid_> has underscores instead of dashes. cri-o's crio-conmon-<id>.scope
 * is its monitor process, not the container.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroups.h"

#define CG_MAX_DEPTH 16

/* uid as 8-4-4-4-12 hex with '-' or '_' separators; writes the canonical form. */
static bool parse_uid(const char *s, size_t n, char *out, size_t outlen)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	size_t k = 0;

	if (n != 36 || outlen < 37)
		return false;
	for (int g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, k++) {
			if (!isxdigit((unsigned char)s[k]))
				return false;
			out[k] = (char)tolower((unsigned char)s[k]);
		}
		if (g < 4) {
			if (s[k] != '-' && s[k] != '_')
				return false;
			out[k++] = '-';
		}
	}
	out[36] = 0;
	return true;
}

static bool parse_cid(const char *s, size_t n, char *out, size_t outlen)
{
	if (n != 64 || outlen < 65)
		return false;
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[64] = 0;
	return true;
}

/* "pod<uid>" or "...-pod<uid>.slice" (one path component) */
static bool pod_component(const char *c, size_t n, char *uid, size_t uidlen)
{
	bool slice = n > 6 && !memcmp(c + n - 6, ".slice", 6);
	const char *p;

	if (slice)
		n -= 6;
	if (n < 39)
		return false;
	p = c + n - 39;	/* "pod" + 36 */
	if (memcmp(p, "pod", 3))
		return false;
	/* cgroupfs: exactly "pod<uid>"; systemd: "kubepods[-<qos>]-pod<uid>.slice" */
	if (slice ? p == c || p[-1] != '-' || strncmp(c, "kubepods", 8) : p != c)
		return false;
	return parse_uid(p + 3, 36, uid, uidlen);
}

/* "<64hex>", "<runtime>-<64hex>.scope"; not "crio-conmon-..." */
static bool container_component(const char *c, size_t n, char *cid, size_t cidlen)
{
	static const char *const prefixes[] = { "cri-containerd-", "docker-", "crio-", "containerd-",
						NULL };

	if (n == 64)
		return parse_cid(c, n, cid, cidlen);
	if (n < 6 || memcmp(c + n - 6, ".scope", 6))
		return false;
	n -= 6;
	for (int i = 0; prefixes[i]; i++) {
		size_t pl = strlen(prefixes[i]);

		if (n == pl + 64 && !memcmp(c, prefixes[i], pl))
			return parse_cid(c + pl, 64, cid, cidlen);
	}
	return false;
}

int cg_parse_path(const char *path, char *pod_uid, size_t pod_uid_len, char *container_id,
		  size_t cid_len)
{
	const char *end, *last, *prev, *colon;
	size_t len;

	if (!path)
		return 0;
	len = strlen(path);
	if (len > 4096)
		return 0;
	end = path + len;
	while (end > path && end[-1] == '/')
		end--;
	last = end;
	while (last > path && last[-1] != '/')
		last--;
	if (last == end)
		return 0;
	/* containerd's systemd form: "<pod slice>:cri-containerd:<id>" in one component */
	colon = memchr(last, ':', (size_t)(end - last));
	if (colon) {
		const char *c2 = memchr(colon + 1, ':', (size_t)(end - colon - 1));

		if (!c2 || !pod_component(last, (size_t)(colon - last), pod_uid, pod_uid_len))
			return 0;
		return parse_cid(c2 + 1, (size_t)(end - c2 - 1), container_id, cid_len) ? 1 : 0;
	}
	if (!container_component(last, (size_t)(end - last), container_id, cid_len))
		return 0;
	prev = last - 1;	/* the '/' before last */
	if (prev <= path)
		return 0;
	end = prev;
	last = end;
	while (last > path && last[-1] != '/')
		last--;
	return pod_component(last, (size_t)(end - last), pod_uid, pod_uid_len) ? 1 : 0;
}

int cg_mounts_read(const char *mountinfo_path, struct cg_mounts *ret)
{
	FILE *f = fopen(mountinfo_path, "re");
	char line[4096];
	int v1_rank = 0;

	memset(ret, 0, sizeof(*ret));
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *fields[6] = { 0 }, *save = NULL, *tok, *dash, *fstype, *super;
		int nf = 0;

		dash = strstr(line, " - ");
		if (!dash)
			continue;
		*dash = 0;
		for (tok = strtok_r(line, " ", &save); tok && nf < 6; tok = strtok_r(NULL, " ", &save))
			fields[nf++] = tok;
		if (nf < 5)
			continue;
		fstype = strtok_r(dash + 3, " ", &save);
		strtok_r(NULL, " ", &save);	/* source */
		super = strtok_r(NULL, " \n", &save);
		if (!fstype || strlen(fields[4]) >= sizeof(ret->v2))
			continue;
		if (!strcmp(fstype, "cgroup2")) {
			if (!ret->v2[0])
				snprintf(ret->v2, sizeof(ret->v2), "%s", fields[4]);
		} else if (!strcmp(fstype, "cgroup")) {
			int rank = 1;

			if (super && strstr(super, "name=systemd"))
				rank = 4;
			else if (super && (strstr(super, "cpuacct") || strstr(super, "cpu,")))
				rank = 3;
			else if (super && strstr(super, "memory"))
				rank = 2;
			if (rank > v1_rank) {
				v1_rank = rank;
				snprintf(ret->v1, sizeof(ret->v1), "%s", fields[4]);
			}
		}
	}
	fclose(f);
	return ret->v2[0] || ret->v1[0] ? 0 : -ENOENT;
}

struct walk {
	cg_container_fn fn;
	void *ctx;
	bool v2;
	dev_t dev;
	int found;
	char path[4096];
};

static int walk_dir(struct walk *w, size_t len, int depth)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (depth > CG_MAX_DEPTH)
		return 0;
	d = opendir(w->path);
	if (!d)
		return 0;	/* gone meanwhile, or not readable */
	while (!ret && (de = readdir(d))) {
		struct cg_container c;
		struct stat st;
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || len + 1 + n >= sizeof(w->path) || n > 255)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;	/* files and symlinks */
		w->path[len] = '/';
		memcpy(w->path + len + 1, de->d_name, n + 1);
		if (lstat(w->path, &st) || !S_ISDIR(st.st_mode) || st.st_dev != w->dev)
			goto next;
		memset(&c, 0, sizeof(c));
		if (cg_parse_path(w->path, c.pod_uid, sizeof(c.pod_uid), c.container_id,
				  sizeof(c.container_id)) == 1 &&
		    len + 1 + n < sizeof(c.path)) {
			c.v2 = w->v2;
			c.cgroup_id = w->v2 ? (uint64_t)st.st_ino : 0;
			memcpy(c.path, w->path, len + 1 + n + 1);
			w->found++;
			ret = w->fn(w->ctx, &c);
			goto next;	/* nothing to find below a container */
		}
		ret = walk_dir(w, len + 1 + n, depth + 1);
next:
		w->path[len] = 0;
	}
	closedir(d);
	return ret;
}

int cg_walk(const char *root, bool v2, cg_container_fn fn, void *ctx)
{
	struct walk w = { .fn = fn, .ctx = ctx, .v2 = v2 };
	struct stat st;
	size_t len = strlen(root);
	int ret;

	if (len >= sizeof(w.path) || stat(root, &st))
		return len >= sizeof(w.path) ? -ENAMETOOLONG : -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	w.dev = st.st_dev;
	memcpy(w.path, root, len + 1);
	while (len > 1 && w.path[len - 1] == '/')
		w.path[--len] = 0;
	ret = walk_dir(&w, len, 0);
	return ret ? ret : w.found;
}

int cg_read_procs(const char *dir, int *pids, int cap)
{
	char path[4200], buf[64];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (n < cap && fgets(buf, sizeof(buf), f)) {
		char *end;
		long v = strtol(buf, &end, 10);

		if (v > 0 && v <= 0x7fffffff && (*end == '\n' || !*end))
			pids[n++] = (int)v;
	}
	fclose(f);
	return n;
}
