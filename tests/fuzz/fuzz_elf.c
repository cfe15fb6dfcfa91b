// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: arbitrary bytes as an ELF file, through the symbolizer (symbols,
 * build-id, debuglink, MiniDebugInfo, .gopclntab, demangling), the CFI
 * compiler and the HotSpot reader's symbol lookup (libjvm.so's gHotSpotVM*);
 * and the first bytes as a symbol name, through the demangler.
 *
 * An input ending in SPARSE and 8 bytes (a length, little-endian) is a sparse
 * file: the bytes before SPARSE, extended to that length (at most SPARSE_MAX)
 * with a hole, which its headers may claim as sections (seeds: a .symtab and an
 * .eh_frame of 3 GiB). Nothing may read the hole: libFuzzer's malloc and RSS
 * limits (2 GiB in fuzz.sh) report it as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "demangle.h"
#include "elfsym.h"
#include "elfutil.h"
#include "hotspot.h"
#include "unwind_table.h"

#define SPARSE "\n--profleet-sparse--\n"
#define SPARSE_MAX (16ull << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length a sparse input asks for (0: none); *size becomes that of its bytes. */
static uint64_t sparse_length(const uint8_t *data, size_t *size)
{
	size_t tail = sizeof(SPARSE) - 1 + 8;
	uint64_t len = 0;

	if (*size < tail || memcmp(data + *size - tail, SPARSE, sizeof(SPARSE) - 1))
		return 0;
	for (int i = 0; i < 8; i++)
		len |= (uint64_t)data[*size - 8 + i] << (8 * i);
	*size -= tail;
	return len > SPARSE_MAX ? SPARSE_MAX : len;
}

/* Whatever the object says must be a sane string. */
static void check_name(const struct elfobj *o, uint64_t vaddr)
{
	const char *name;
	uint64_t off;

	if (elfobj__symbolize(o, vaddr, &name, &off) == 0 &&
	    (strlen(name) > 4096 || off > vaddr))
		abort();
}

static void fuzz_symbols(const char *path, size_t size)
{
	struct symcache_opts opts = { .max_objects = 2, .debug_root = "/nonexistent" };
	struct symcache *c = symcache__new(&opts);
	struct elfobj *o, *o2;
	uint64_t v, step = size / 64 + 1;

	if (!c)
		return;
	o = symcache__get(c, path, NULL, 0, 0);
	if (o) {
		if (strlen(elfobj__build_id(o)) > 128)
			abort();
		/* file offsets as /proc/PID/maps gives them, and raw addresses */
		for (uint64_t off = 0; off < size + step; off += step)
			if (elfobj__offset_to_vaddr(o, off, &v) == 0)
				check_name(o, v);
		for (uint64_t a = 0; a < 0x3000; a += 0x40)
			check_name(o, a);
		check_name(o, UINT64_MAX);
		/* the same file under other keys: shared by build-id, or loaded again */
		o2 = symcache__get(c, path, NULL, 1, 1);
		if (o2)
			check_name(o2, 0x1000);
		symcache__get(c, path, NULL, 2, 2);	/* evicts */
	}
	symcache__free(c);
}

static void fuzz_demangle(const uint8_t *data, size_t size)
{
	char name[600];
	size_t n = size < 512 ? size : 512;
	char *out;

	for (int i = 0; i < 2; i++) {
		memcpy(name, i ? "_R" : "_Z", 2);
		memcpy(name + 2, data, n);
		name[n + 2] = '\0';
		out = demangle(name);
		if (out && strlen(out) >= 32768)
			abort();
		free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unwind_table *t = NULL;
	char path[64];
	int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
	uint64_t extend;

	fuzz_demangle(data, size);
	if (fd < 0)
		return 0;
	extend = sparse_length(data, &size);
	if (write(fd, data, size) != (ssize_t)size ||
	    (extend > size && ftruncate(fd, (off_t)extend))) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fuzz_symbols(path, size);
	{
		struct hs_syms syms;
		int efd;
		Elf *elf = elfutil_open(path, &efd);

		if (elf) {
			if (hs_elf_syms(elf, efd, &syms) == 0)
				for (int i = 0; i < HS_NSYMS; i++)
					if (!syms.addr[i])
						abort();	/* 0 is "not found": never success */
			elfutil_close(elf, efd);
		}
	}
	if (unwind_table__build(path, NULL, 1u << 16, &t) == 0) {
		for (uint64_t pc = 0; pc < 0x3000; pc += 0x40)
			unwind_table__find(t, pc);
		unwind_table__free(t);
	}
	close(fd);
	return 0;
}
