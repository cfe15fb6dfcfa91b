// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: arbitrary bytes as an ELF file, through the symbolizer and the CFI compiler. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"
#include "unwind_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct symcache_opts opts = { .max_objects = 2, .debug_root = "/nonexistent" };
	struct unwind_table *t = NULL;
	struct symcache *c;
	struct elfobj *o;
	char path[64];
	const char *name;
	uint64_t v;
	int fd = memfd_create("fuzz-elf", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = symcache__new(&opts);
	o = c ? symcache__get(c, path, NULL, 0, 0) : NULL;
	if (o) {
		for (uint64_t off = 0; off < 0x3000; off += 0x100)
			if (elfobj__offset_to_vaddr(o, off, &v) == 0)
				elfobj__symbolize(o, v, &name, NULL);
		elfobj__build_id(o);
	}
	symcache__free(c);
	if (unwind_table__build(path, NULL, 1u << 16, &t) == 0) {
		for (uint64_t pc = 0; pc < 0x3000; pc += 0x40)
			unwind_table__find(t, pc);
		unwind_table__free(t);
	}
	close(fd);
	return 0;
}
