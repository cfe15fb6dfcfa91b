/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CONTROLLER_PPROF_MERGE_H
#define CONTROLLER_PPROF_MERGE_H
/*
 * Reads pprof profiles (gzipped or not) and merges them into one struct
 * profile: the controller's built-in store answers a query for a policy and a
 * time range with the merge of every profile its agents sent.
 *
 * Frames are merged by what they mean, not by address (every process has its
 * own address space): a location is (mapping file, build id, function, source
 * file, line). Samples with the same stack and the same labels are summed.
 * Inlined frames (a location with several lines) become one frame per line.
 */
#include <stddef.h>
#include <stdint.h>

struct profile;
struct pprof_merge;

/* Limits of what one input may hold; beyond them the input is refused. */
#define PPROF_MERGE_MAX_INPUT ((size_t)64 << 20)	/* bytes after gunzip */

struct pprof_merge *pprof_merge_new(void);
/*
 * Adds one encoded profile. Returns 0, or -EINVAL (not a profile: the message
 * in err says why) or -ENOMEM; a refused input leaves the merge as it was
 * before the call, except for strings it interned.
 */
int pprof_merge_add(struct pprof_merge *m, const uint8_t *buf, size_t len, char *err,
		    size_t errlen);
/* Checks that buf decodes as a pprof whose ids and indexes all resolve, without
 * merging it. 0 or -EINVAL (err says why) or -ENOMEM. */
int pprof_validate(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* The merged profile so far (owned by the merge); time and duration span all inputs. */
const struct profile *pprof_merge_profile(const struct pprof_merge *m);
unsigned int pprof_merge_inputs(const struct pprof_merge *m);
void pprof_merge_free(struct pprof_merge *m);

/* gunzip when buf starts with the gzip magic, else a copy; at most max bytes out. */
int pprof_gunzip(const uint8_t *buf, size_t len, size_t max, uint8_t **ret, size_t *ret_len);

#endif
