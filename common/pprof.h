/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PPROF_H
#define AGENT_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

struct profile;

/* Largest encoded profile (before gzip); a bigger one fails with -E2BIG. */
#define PPROF_MAX_BYTES ((size_t)256 << 20)

/*
 * Encodes p as a pprof Profile (proto/profile.proto):
 * - sample types samples/count and cpu/nanoseconds (values: count, cpu_ns),
 *   period_type cpu/nanoseconds, period = p->period_nanos, default sample type cpu;
 * - string table with "" at index 0;
 * - one Mapping per profile mapping (id = index + 1) with file name and build-id;
 *   the kernel's and the runtimes' locations each go under one pseudo-mapping,
 *   "[kernel.kallsyms]" or "[cpython]" (the profile's own if it has one, else
 *   one spanning the addresses seen);
 * - one Location per profile location (id = index + 1), one Line each;
 * - Functions deduplicated by (name, system name, file); the system name is the
 *   name unless the location has one (Python: "module.Class.method");
 * - labels per sample, string and numeric; comments; time_nanos, duration_nanos.
 * p is only read. gzip: wrap the bytes in gzip, as .pb.gz files are.
 * *ret_buf is malloc'd. 0, -EINVAL (a sample or location points outside the
 * profile), -E2BIG (more than PPROF_MAX_BYTES) or -ENOMEM.
 */
int pprof__encode(const struct profile *p, bool gzip, uint8_t **ret_buf, size_t *ret_len);

/* A string label. */
struct pprof_str_label {
	const char *key, *value;
};
/*
 * The same, with extra labels on every sample after its own: a target's
 * identity (namespace, pod, pod_uid, container, container_id, node, ...), so
 * that a profile merged with other pods' still tells them apart.
 */
int pprof__encode_labeled(const struct profile *p, const struct pprof_str_label *extra,
			  int nextra, bool gzip, uint8_t **ret_buf, size_t *ret_len);

/*
 * Writes p gzipped to path atomically: a temporary file next to it, fsync,
 * rename. path "-" writes to stdout. 0 or -errno.
 */
int pprof__write_file(const struct profile *p, const char *path);

/*
 * Writes len bytes of buf to path atomically, with mode: a temporary file next
 * to it (path.tmp.*), fsync, rename. 0 or -errno.
 */
int pprof_write_atomic(const char *path, const uint8_t *buf, size_t len, mode_t mode);

#endif
