// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: cgroup paths (what a node's cgroup tree and /proc/PID/cgroup hold). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = malloc(size + 1), uid[40], cid[72];

	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = 0;
	if (cg_parse_path(path, uid, sizeof(uid), cid, sizeof(cid)) == 1) {
		/* what it reports is always canonical */
		if (strlen(uid) != 36 || strlen(cid) != 64)
			abort();
		for (size_t i = 0; i < 64; i++)
			if (!((cid[i] >= '0' && cid[i] <= '9') || (cid[i] >= 'a' && cid[i] <= 'f')))
				abort();
	}
	/* small buffers are refused, never overrun */
	(void)cg_parse_path(path, uid, 8, cid, 8);
	free(path);
	return 0;
}
