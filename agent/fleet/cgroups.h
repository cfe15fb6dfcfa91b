/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_CGROUPS_H
#define AGENT_CGROUPS_H
/*
 * Kubernetes containers -> cgroups. The BPF side keys targets by the cgroup v2
 * id (bpf_get_current_cgroup_id(): the inode of the v2 directory); on v1-only
 * hosts the agent targets the processes inside the container's v1 cgroup.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cg_container {
	char pod_uid[40];	/* canonical form with dashes, lower case: 8-4-4-4-12 */
	char container_id[72];	/* 64 hex digits, lower case, no runtime prefix */
	uint64_t cgroup_id;	/* inode of the directory (v2), 0 if v1 */
	bool v2;
	char path[512];		/* absolute path of the cgroup directory */
};

/* Where cgroups are mounted: the v2 (unified) mount if any, and one v1 hierarchy
 * to read pids from (name=systemd, else cpu/cpuacct, else memory, else any). */
struct cg_mounts {
	char v2[256];
	char v1[256];
};
int cg_mounts_read(const char *mountinfo_path, struct cg_mounts *ret);

/* 1 if the last components of path name a kubelet container cgroup (pod_uid and
 * container_id filled), 0 if not (pod-level cgroups, conmon, system slices, garbage). */
int cg_parse_path(const char *path, char *pod_uid, size_t pod_uid_len, char *container_id,
		  size_t cid_len);

typedef int (*cg_container_fn)(void *ctx, const struct cg_container *c);
/* Walks root (depth <= 16, no symlinks, same mount) and calls fn for every container
 * cgroup. Returns the number reported, fn's non-zero return, or -errno. */
int cg_walk(const char *root, bool v2, cg_container_fn fn, void *ctx);

/* Reads a cgroup directory's cgroup.procs; returns the count (<= cap) or -errno. */
int cg_read_procs(const char *dir, int *pids, int cap);
#endif
