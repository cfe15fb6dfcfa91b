/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PPROF_H
#define AGENT_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct profile;

/*
 * Encodes p as a pprof Profile (proto/profile.proto): sample types
 * samples/count and cpu/nanoseconds, period cpu/nanoseconds, functions
 * deduplicated by (name, file), one location per profile location, kernel
 * frames under one "[kernel.kallsyms]" mapping, labels, comments. gzip: wrap
 * it in gzip, as pprof files are. *ret_buf is malloc'd. 0 or -errno.
 */
int pprof__encode(const struct profile *p, bool gzip, uint8_t **ret_buf, size_t *ret_len);
/* Writes a .pb.gz file atomically (temp file + rename). 0 or -errno. */
int pprof__write_file(const struct profile *p, const char *path);
/* gzip of a buffer; *ret_out is malloc'd. */
int gzip_buffer(const uint8_t *in, size_t len, uint8_t **ret_out, size_t *ret_len);

#endif
