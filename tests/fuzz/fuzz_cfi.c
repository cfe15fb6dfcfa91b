// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: arbitrary bytes as an ELF file through the CFI compiler. An input
 * holding SPLIT is two files: the part before it is the object, the part after
 * it its separate debug file (seed with e.g. a stripped program + SPLIT + its
 * objcopy --only-keep-debug). Besides "no crash", the table's invariants are
 * checked: rows sorted and merged, find exact at every row boundary.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unwind_table.h"

#define SPLIT "\n--profleet-debug-file--\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int to_memfd(const char *name, const uint8_t *data, size_t size, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static void check(const struct unwind_table *t)
{
	if (!t->nrows || t->rows[0].pc != t->min_pc || t->min_pc > t->max_pc ||
	    unwind_table__find(t, t->max_pc + 1) || !unwind_table__find(t, t->max_pc))
		__builtin_trap();
	if (t->min_pc && unwind_table__find(t, t->min_pc - 1))
		__builtin_trap();
	for (uint32_t i = 0; i < t->nrows; i++) {
		const struct unwind_row *r = &t->rows[i];

		if (r->cfa_type > CFA_UNSUPPORTED || r->rbp_type > RBP_UNSUPPORTED)
			__builtin_trap();
		if (i == 0)
			continue;
		if (r[-1].pc >= r->pc || !memcmp((const char *)&r[-1] + 4, (const char *)r + 4, 8))
			__builtin_trap();
		if (unwind_table__find(t, r->pc - 1) != r - 1 ||
		    (r->pc <= t->max_pc && unwind_table__find(t, r->pc) != r))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *split = memmem(data, size, SPLIT, sizeof(SPLIT) - 1);
	size_t main_size = split ? (size_t)(split - data) : size;
	char path[64], dpath[64] = "";
	struct unwind_table *t = NULL;
	int fd, dfd = -1;

	fd = to_memfd("fuzz-cfi", data, main_size, path, sizeof(path));
	if (fd < 0)
		return 0;
	if (split) {
		size_t off = main_size + sizeof(SPLIT) - 1;

		dfd = to_memfd("fuzz-cfi-debug", data + off, size - off, dpath, sizeof(dpath));
	}
	if (unwind_table__build(path, dfd >= 0 ? dpath : NULL, 1u << 18, &t) == 0) {
		check(t);
		unwind_table__free(t);
	}
	if (dfd >= 0)
		close(dfd);
	close(fd);
	return 0;
}
