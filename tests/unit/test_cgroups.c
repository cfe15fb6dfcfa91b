// SPDX-License-Identifier: Apache-2.0
/* Pods -> cgroups: kubelet's path forms, mountinfo, the walk over a fake tree. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

#include "cgroups.h"

#define UID "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
#define UIDU "1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d"
#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CIDUP "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

static void test_parse_forms(void **state)
{
	static const char *const good[] = {
		"/kubepods/pod" UID "/" CID,
		"/kubepods/burstable/pod" UID "/" CID,
		"/kubepods/besteffort/pod" UID "/" CID "/",
		"kubepods/pod" UID "/" CID,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice/cri-containerd-" CID ".scope",
		"/kubepods.slice/kubepods-pod" UIDU ".slice/cri-containerd-" CID ".scope",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice/docker-" CID ".scope",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice/crio-" CID ".scope",
		"/system.slice/containerd.service/kubepods-burstable-pod" UIDU ".slice:cri-containerd:" CID,
		"/sys/fs/cgroup/unified/kind/node1/kubepods/burstable/pod" UID "/" CID,
		"/kubepods/pod" UID "/" CIDUP,
	};
	static const char *const bad[] = {
		"",
		"/",
		"/docker/" CID,	/* a container, but no pod */
		"/kubepods/pod" UID,	/* the pod itself */
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice",
		"/kubepods.slice/kubepods-pod" UIDU ".slice/crio-conmon-" CID ".scope",	/* cri-o's monitor */
		"/kubepods/pod" UID "/" "0123",	/* short id */
		"/kubepods/pod" UID "/" CID "00",	/* long id */
		"/kubepods/pod" UID "/" "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"/kubepods/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6/" CID,	/* short uid */
		"/kubepods/pod1a2b3c4d5e6f-7a8b-9c0d-1e2f3a4b5c6d-/" CID,	/* dashes misplaced */
		"/kubepods/podZa2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" CID,
		"/kubepods/xpod" UID "/" CID,
		"/system.slice/pod" UID ".slice/docker-" CID ".scope",	/* a slice not kubelet's */
		"/kubepods/pod" UID "/../" CID,
		"/kubepods.slice/kubepods-pod" UIDU ".slice/cri-containerd-" CID ".scop",
		"/x.slice:cri-containerd:" CID,
		"/kubepods-pod" UIDU ".slice:cri-containerd:" CID "0",
		"/kubepods-pod" UIDU ".slice:cri-containerd",
	};
	char uid[40], cid[72];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(uid, 0, sizeof(uid));
		memset(cid, 0, sizeof(cid));
		if (cg_parse_path(good[i], uid, sizeof(uid), cid, sizeof(cid)) != 1)
			fail_msg("not recognised: %s", good[i]);
		assert_string_equal(uid, UID);
		assert_string_equal(cid, CID);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cg_parse_path(bad[i], uid, sizeof(uid), cid, sizeof(cid)) != 0)
			fail_msg("wrongly recognised: %s", bad[i]);
	assert_int_equal(cg_parse_path(NULL, uid, sizeof(uid), cid, sizeof(cid)), 0);
	/* buffers too small are refused, not overrun */
	assert_int_equal(cg_parse_path(good[0], uid, 10, cid, sizeof(cid)), 0);
	assert_int_equal(cg_parse_path(good[0], uid, sizeof(uid), cid, 10), 0);
	{
		char long_path[8192];

		memset(long_path, 'a', sizeof(long_path) - 1);
		long_path[sizeof(long_path) - 1] = 0;
		assert_int_equal(cg_parse_path(long_path, uid, sizeof(uid), cid, sizeof(cid)), 0);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_mounts(void **state)
{
	char dir[128], path[256];
	struct cg_mounts m;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "cgmounts"), 0);
	snprintf(path, sizeof(path), "%s/v2", dir);
	write_file(path, "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
	assert_int_equal(cg_mounts_read(path, &m), 0);
	assert_string_equal(m.v2, "/sys/fs/cgroup");
	assert_string_equal(m.v1, "");

	snprintf(path, sizeof(path), "%s/hybrid", dir);
	write_file(path,
		   "25 24 0:22 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755\n"
		   "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw\n"
		   "28 25 0:25 / /sys/fs/cgroup/memory rw shared:7 - cgroup cgroup rw,memory\n"
		   "27 25 0:24 / /sys/fs/cgroup/systemd rw shared:6 - cgroup cgroup rw,xattr,name=systemd\n");
	assert_int_equal(cg_mounts_read(path, &m), 0);
	assert_string_equal(m.v2, "/sys/fs/cgroup/unified");
	assert_string_equal(m.v1, "/sys/fs/cgroup/systemd");

	snprintf(path, sizeof(path), "%s/v1", dir);
	write_file(path,
		   "28 25 0:25 / /sys/fs/cgroup/memory rw shared:7 - cgroup cgroup rw,memory\n"
		   "29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:8 - cgroup cgroup rw,cpu,cpuacct\n");
	assert_int_equal(cg_mounts_read(path, &m), 0);
	assert_string_equal(m.v2, "");
	assert_string_equal(m.v1, "/sys/fs/cgroup/cpu,cpuacct");

	snprintf(path, sizeof(path), "%s/garbage", dir);
	write_file(path, "nothing\n - \n\n1 2 3\n- cgroup2\n30 23 0:26 / /x - ext4 /dev/sda rw\n");
	assert_int_equal(cg_mounts_read(path, &m), -ENOENT);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_true(cg_mounts_read(path, &m) < 0);
	tmpdir_remove(dir);
}

struct got {
	int n;
	struct cg_container c[8];
};

static int collect(void *ctx, const struct cg_container *c)
{
	struct got *g = ctx;

	if (g->n < 8)
		g->c[g->n++] = *c;
	return 0;
}

static int stop_at_first(void *ctx, const struct cg_container *c)
{
	(void)ctx;
	(void)c;
	return 42;
}

static void test_walk(void **state)
{
	char dir[128], a[512], b[512], link[600];
	struct got g = { 0 };
	struct stat st;
	int pids[4];

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "cgwalk"), 0);
	snprintf(a, sizeof(a), "%s/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
		 ".slice/cri-containerd-" CID ".scope", dir);
	snprintf(b, sizeof(b), "%s/kubepods/besteffort/pod" UID "/" CID, dir);
	sh("mkdir -p '%s' '%s' '%s/system.slice/sshd.service' '%s/kubepods/besteffort/pod" UID "/"
	   CID "/nested'", a, b, dir, dir);
	/* a symlink loop and a symlink to a container: neither is followed */
	snprintf(link, sizeof(link), "%s/kubepods.slice/loop", dir);
	assert_int_equal(symlink(dir, link), 0);
	snprintf(link, sizeof(link), "%s/pod-link", dir);
	assert_int_equal(symlink(a, link), 0);
	write_file(strcat(strcpy(link, a), "/cgroup.procs"), "12\n34\nbad\n0\n56");

	assert_int_equal(cg_walk(dir, true, collect, &g), 2);
	assert_int_equal(g.n, 2);
	for (int i = 0; i < 2; i++) {
		const struct cg_container *c = &g.c[i];

		assert_string_equal(c->pod_uid, UID);
		assert_string_equal(c->container_id, CID);
		assert_true(c->v2);
		assert_int_equal(stat(c->path, &st), 0);
		assert_int_equal(c->cgroup_id, (uint64_t)st.st_ino);
		assert_true(!strcmp(c->path, a) || !strcmp(c->path, b));
	}
	g.n = 0;
	assert_int_equal(cg_walk(dir, false, collect, &g), 2);
	assert_int_equal(g.c[0].cgroup_id, 0);
	assert_int_equal(cg_walk(dir, true, stop_at_first, NULL), 42);
	assert_true(cg_walk("/nonexistent/cgroup", true, collect, &g) < 0);

	assert_int_equal(cg_read_procs(a, pids, 4), 3);
	assert_int_equal(pids[0], 12);
	assert_int_equal(pids[1], 34);
	assert_int_equal(pids[2], 56);
	assert_int_equal(cg_read_procs(a, pids, 2), 2);
	assert_true(cg_read_procs(b, pids, 4) < 0);
	tmpdir_remove(dir);
}

static void test_depth_limit(void **state)
{
	char dir[128], path[4096];
	struct got g = { 0 };
	size_t n;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "cgdeep"), 0);
	/* 20 levels, then a container: deeper than the walk goes */
	n = (size_t)snprintf(path, sizeof(path), "%s", dir);
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "/d%d", i);
	snprintf(path + n, sizeof(path) - n, "/kubepods/pod" UID "/" CID);
	sh("mkdir -p '%s'", path);
	assert_int_equal(cg_walk(dir, true, collect, &g), 0);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_depth_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
