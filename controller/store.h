/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_STORE_H
#define CONTROLLER_STORE_H
/*
 * The built-in profile store: what agents send for policies without a backend,
 * kept on disk per policy, bounded in bytes (in all, and per namespace) and in
 * age, oldest dropped first.
 *
 * Layout under the store directory (one gzipped pprof per agent, target set
 * and interval; the name says when and where it came from):
 *   ns/<namespace>/<policy>/<from>-<until>-<node>-<seq>.pb.gz   ProfilingPolicy
 *   cluster/<policy>/<from>-<until>-<node>-<seq>.pb.gz         ClusterProfilingPolicy
 * <from> and <until> are UNIX seconds, zero-padded to 12 digits. The index is
 * rebuilt from the names at start, so a restarted controller serves what an
 * earlier one stored. Thread-safe.
 */
#include <stddef.h>
#include <stdint.h>

struct pprof_merge;

/*
 * Every file and link also weighs this against the bounds (its index and
 * directory entries): policies linking one upload are not free.
 */
#define STORE_ENTRY_CHARGE 512

struct store_opts {
	const char *dir;
	uint64_t max_bytes;	/* 0 = 1 GiB */
	uint64_t ns_max_bytes;	/* one namespace's share (cluster policies: one more); 0 = a quarter */
	int64_t retention_s;	/* 0 = 7 days */
};

struct store_stats {
	uint64_t files;		/* profiles held now (one linked into several policies: once) */
	uint64_t bytes;		/* their bytes, and STORE_ENTRY_CHARGE per file and link */
	uint64_t stored, refused;	/* uploads stored / refused (bad input, disk errors) */
	uint64_t evicted_full, evicted_age;	/* profiles dropped to stay within the bounds */
	uint64_t evicted_quota;	/* ... within their namespace's share */
	uint64_t namespaces;	/* namespaces holding profiles now (cluster policies: one more) */
};

struct store_policy_stats {
	uint64_t files, bytes;
	int64_t first_s, last_s;	/* span of the held profiles; 0 when none */
};

struct store;

struct store *store_open(const struct store_opts *opts, char *err, size_t errlen);
void store_close(struct store *s);

/*
 * Path of a policy key ("ns/name" or "name", as in policy.key) relative to the store, or
 * -EINVAL when the key holds anything but what Kubernetes names allow.
 */
int store_policy_dir(const char *key, char *buf, size_t len);

/*
 * Stores one profile (already checked to be a pprof) for the policies keys:
 * written once per namespace and linked into each of its policies (so that
 * policies multiply no bytes), then the bounds are kept. A namespace over its
 * share loses its own oldest profiles; a full store loses the oldest of the
 * namespace holding the most. Never the profile just stored. 0 when at least
 * one policy got it (*ret_stored: how many), else -errno.
 */
int store_put(struct store *s, const char *const *keys, size_t nkeys, const char *node,
	      int64_t from_s, int64_t until_s, const uint8_t *buf, size_t len,
	      size_t *ret_stored);

/*
 * Merges the policy's profiles that overlap [from_s, until_s) (until_s 0 = no
 * end) into m. Returns how many were merged; files that cannot be read or
 * decoded are skipped and counted in *ret_bad.
 */
int store_query(struct store *s, const char *policy_key, int64_t from_s, int64_t until_s,
		struct pprof_merge *m, unsigned int *ret_bad);

/*
 * Drops what is older than the retention; called now and then. One pass
 * under the lock; the files are removed after it.
 */
void store_expire(struct store *s, int64_t now_s);

void store_stats(struct store *s, struct store_stats *ret);
void store_policy_stats(struct store *s, const char *policy_key, struct store_policy_stats *ret);

#endif
