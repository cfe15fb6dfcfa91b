// SPDX-License-Identifier: Apache-2.0
/*
 * The HotSpot reader (agent/jvm/hotspot.c) against VM images built here: the
 * exported tables in JDK 17's shape (pointers to the code) and in JDK 23's
 * (offsets), a code heap with its segment map, an nmethod, the interpreter's
 * blob, a method with its pool, class and symbols; and the images broken the
 * ways a live VM can be: tables not filled in yet, a build without a field we
 * need, a table without an end, a member at a stride's end, a heap not reserved
 * yet, a freed blob (its segment map kept, as HotSpot keeps it), an address in a
 * blob's data, a name pointer into nothing, a pool index past the pool.
 * The live JVM is tests/system/jvm.sh's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "hotspot.h"
#include "jvmsym.h"

#define BASE 0x10000000ull
#define SIZE (2u << 20)	/* room for a table of 20,000 entries that never ends */

/* A VM's memory: [BASE, BASE + SIZE), allocated upwards. */
struct image {
	uint8_t mem[SIZE];
	uint64_t next;
	int reads;
};

static int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct image *im = ctx;

	im->reads++;
	if (addr < BASE || addr + len > BASE + SIZE || addr + len < addr)
		return -EFAULT;
	memcpy(buf, im->mem + (addr - BASE), len);
	return 0;
}

static uint64_t alloc(struct image *im, size_t n)
{
	uint64_t a = BASE + im->next;

	im->next = (im->next + n + 15) & ~15ull;
	assert_true(im->next <= SIZE);
	return a;
}

static void put(struct image *im, uint64_t addr, const void *v, size_t n)
{
	memcpy(im->mem + (addr - BASE), v, n);
}

static void put64(struct image *im, uint64_t addr, uint64_t v) { put(im, addr, &v, 8); }
static void put32(struct image *im, uint64_t addr, uint32_t v) { put(im, addr, &v, 4); }
static void put16(struct image *im, uint64_t addr, uint16_t v) { put(im, addr, &v, 2); }

static uint64_t str(struct image *im, const char *s)
{
	uint64_t a = alloc(im, strlen(s) + 1);

	put(im, a, s, strlen(s) + 1);
	return a;
}

/* A Symbol: u2 length at 4, the bytes at 6 (JDK 17). */
static uint64_t symbol(struct image *im, const char *s)
{
	uint64_t a = alloc(im, 8 + strlen(s));

	put16(im, a + 4, (uint16_t)strlen(s));
	put(im, a + 6, s, strlen(s));
	return a;
}

/* One VMStructEntry: stride 48, type 0, field 8, type string 16, static 24, offset 32, address 40. */
struct field {
	const char *type, *field;
	uint64_t offset, address;	/* address: a static */
};

/* Which shape of VM: where the code bounds are, and what is left out. */
struct shape {
	bool offsets;		/* JDK 23+: CodeBlob::_code_offset/_data_offset, nmethod::_method */
	bool data_offset_first;	/* JDK 17 also lists _data_offset (an int), before _code_end */
	bool data_offset_after;	/* ... or after it: the pointer is taken either way */
	const char *without;	/* a field this build lacks */
	bool no_end;		/* the structs table has no terminating entry */
	bool stride_zero;	/* the VM has not filled its tables in yet */
	bool heaps_null;	/* the code cache is not made yet */
};

/* The VM built, with what the tests look at. */
struct vm {
	struct hs_syms syms;
	uint64_t heap_lo, heap_hi, nm, nm_code, nm_data, interp, freed_pc, never_pc, bad_name_pc;
	uint64_t cm, cp, heap, high;
};

static void tables(struct image *im, const struct shape *sh, const struct field *f, int n,
		   struct vm *vm)
{
	static const char *const types[][2] = { { "HeapBlock", "16" }, { "ConstantPool", "72" },
						{ "Method", "88" }, { "ConstMethod", "48" },
						{ "PcDesc", "16" } };
	const int ntypes = (int)(sizeof(types) / sizeof(types[0]));
	uint64_t st = alloc(im, 48 * (size_t)(n + 1)), ty = alloc(im, 40 * (size_t)(ntypes + 1));
	uint64_t ints = alloc(im, 16 * 3);
	int k = 0;

	for (int i = 0; i < n; i++) {
		uint64_t e = st + 48 * (uint64_t)k;

		if (sh->without && !strcmp(f[i].field, sh->without))
			continue;
		put64(im, e, str(im, f[i].type));
		put64(im, e + 8, str(im, f[i].field));
		/* the C type: ConstMethod::_flags is a u2 in 17, a u4 from 21 (its width is read) */
		put64(im, e + 16, str(im, !strcmp(f[i].field, "_flags") ? "u2" :
					  !strcmp(f[i].field, "_flags._flags") ? "u4" : "int"));
		put32(im, e + 24, f[i].address != 0);
		put64(im, e + 32, f[i].offset);
		put64(im, e + 40, f[i].address);
		k++;
	}
	for (int i = 0; i < ntypes; i++) {
		put64(im, ty + 40 * (uint64_t)i, str(im, types[i][0]));
		put64(im, ty + 40 * (uint64_t)i + 32, (uint64_t)atoi(types[i][1]));
	}
	/* the int constants: stride 16, name 0, value 8; the line table's flag, another */
	put64(im, ints, str(im, "InvocationEntryBci"));
	put64(im, ints + 8, (uint64_t)-1);
	put64(im, ints + 16, str(im, sh->offsets ? "ConstMethodFlags::_misc_has_linenumber_table" :
						   "ConstMethod::_has_linenumber_table"));
	put64(im, ints + 24, 1);
	/* the symbols' variables; bias 0: the file vaddrs are the addresses */
	static const uint64_t vals[HS_NSYMS] = {
		[HS_STRUCT_STRIDE] = 48, [HS_STRUCT_TYPE] = 0, [HS_STRUCT_FIELD] = 8,
		[HS_STRUCT_TYPESTR] = 16, [HS_STRUCT_STATIC] = 24, [HS_STRUCT_OFFSET] = 32,
		[HS_STRUCT_ADDRESS] = 40, [HS_TYPE_STRIDE] = 40, [HS_TYPE_NAME] = 0, [HS_TYPE_SIZE] = 32,
		[HS_INT_STRIDE] = 16, [HS_INT_NAME] = 0, [HS_INT_VALUE] = 8,
	};
	for (int s = 0; s < HS_NSYMS; s++) {
		vm->syms.addr[s] = alloc(im, 8);
		put64(im, vm->syms.addr[s], s == HS_STRUCTS ? st : s == HS_TYPES ? ty :
					    s == HS_INTS ? ints : vals[s]);
	}
	if (sh->stride_zero)
		put64(im, vm->syms.addr[HS_STRUCT_STRIDE], 0);
}

/* The structs table moved to the end of the image and its first entry repeated to the end. */
static void endless(struct image *im, struct vm *vm)
{
	uint64_t old, e;

	memcpy(&old, im->mem + (vm->syms.addr[HS_STRUCTS] - BASE), 8);
	put64(im, vm->syms.addr[HS_STRUCTS], BASE + im->next);
	for (e = BASE + im->next; e + 48 <= BASE + SIZE; e += 48)
		put(im, e, im->mem + (old - BASE), 48);
	im->next = SIZE;
}

/* A blob at segment seg of the heap, nseg segments long (segment map filled in). */
static uint64_t blob(struct image *im, struct vm *vm, uint64_t segmap, int seg, int nseg,
		     const char *name, bool offsets)
{
	uint64_t b = vm->heap_lo + ((uint64_t)seg << 7) + 16, end = b - 16 + ((uint64_t)nseg << 7);

	for (int i = 0; i < nseg; i++)
		im->mem[segmap - BASE + (uint64_t)(seg + i)] = (uint8_t)(i < 255 ? i : 254);
	im->mem[b - 16 + 8 - BASE] = 1;	/* HeapBlock::Header::_used */
	put64(im, b + 96, str(im, name));
	/* the code: from 0x40 into the blob to 0x40 before its end (then its data) */
	if (offsets) {
		put32(im, b + 32, 0x40);
		put32(im, b + 40, (uint32_t)(end - 0x40 - b));
	} else {
		put64(im, b + 32, b + 0x40);
		put64(im, b + 40, end - 0x40);
	}
	put32(im, b + 24, 0x7777);	/* _data_offset of 17: not where the code ends */
	return b;
}

static void build(struct image *im, const struct shape *sh, struct vm *vm)
{
	/* the image starts empty: what follows is allocated from its start */
	uint64_t heaps_var = (memset(im, 0, sizeof(*im)), alloc(im, 8)), low = alloc(im, 8), high = alloc(im, 8),
		 major = alloc(im, 4), ga = alloc(im, 24), arr = alloc(im, 8), heap = alloc(im, 344),
		 segmap = alloc(im, 64), method = alloc(im, 88), cm = alloc(im, 48),
		 cp = alloc(im, 72 + 8 * 8), klass = alloc(im, 208);
	const struct field f[] = {
		{ "CodeCache", "_heaps", 0, heaps_var },
		{ "CodeCache", "_low_bound", 0, low },
		{ "CodeCache", "_high_bound", 0, high },
		{ "Abstract_VM_Version", "_vm_major_version", 0, major },
		{ "CodeHeap", "_memory", 8, 0 },
		{ "CodeHeap", "_segmap", 120, 0 },
		{ "CodeHeap", "_log2_segment_size", 256, 0 },
		{ "VirtualSpace", "_low_boundary", 0, 0 },
		{ "VirtualSpace", "_high_boundary", 8, 0 },
		{ "GrowableArrayBase", "_len", 0, 0 },
		{ "GrowableArray<int>", "_data", 8, 0 },
		{ "CodeBlob", "_name", 96, 0 },
		{ "CodeBlob", sh->offsets ? "_code_offset" : "_code_begin", 32, 0 },
		{ "CodeBlob", sh->data_offset_first ? "_data_offset" : "_header_size", 24, 0 },
		{ "CodeBlob", "_frame_size", 28, 0 },
		{ "CodeBlob", "_frame_complete_offset", 20, 0 },
		{ "CodeBlob", sh->offsets ? "_data_offset" : "_code_end", 40, 0 },
		{ "CodeBlob", sh->data_offset_after ? "_data_offset" : "_header_size", 24, 0 },
		{ "HeapBlock::Header", "_used", 8, 0 },
		{ "ConstantPool", "_length", 60, 0 },
		{ sh->offsets ? "nmethod" : "CompiledMethod", "_method", 112, 0 },
		{ "nmethod", "_compile_id", 304, 0 },
		{ "Method", "_constMethod", 8, 0 },
		{ "ConstMethod", "_constants", 8, 0 },
		{ "ConstMethod", "_name_index", 34, 0 },
		{ "ConstMethod", "_signature_index", 36, 0 },
		{ "ConstantPool", "_pool_holder", 24, 0 },
		{ "ConstantPool", "_source_file_name_index", 54, 0 },
		{ "Klass", "_name", 24, 0 },
		{ "Symbol", "_length", 4, 0 },
		{ "Symbol", "_body", 6, 0 },
		/* lines; the scopes in the nmethod (17) or its immutable data (25) */
		{ "ConstMethod", sh->offsets ? "_flags._flags" : "_flags", 28, 0 },
		{ "ConstMethod", "_code_size", 32, 0 },
		{ "ConstMethod", "_constMethod_size", 24, 0 },
		{ "PcDesc", "_pc_offset", 0, 0 },
		{ "PcDesc", "_scope_decode_offset", 4, 0 },
		{ "nmethod", "_scopes_pcs_offset", 268, 0 },
		{ sh->offsets ? "nmethod" : "CompiledMethod",
		  sh->offsets ? "_immutable_data" : "_scopes_data_begin", 120, 0 },
		{ "nmethod", sh->offsets ? "_scopes_data_offset" : "_dependencies_offset", 272, 0 },
		{ "nmethod", sh->offsets ? "_immutable_data_size" : "_metadata_offset", 260, 0 },
		{ "CodeBlob", sh->offsets ? "_mutable_data" : "_header_size", 48, 0 },
		{ "CodeBlob", sh->offsets ? "_mutable_data_size" : "_header_size", 56, 0 },
		{ "CodeBlob", sh->offsets ? "_relocation_size" : "_header_size", 60, 0 },
	};

	memset(vm, 0, sizeof(*vm));
	vm->cm = cm;
	vm->cp = cp;
	vm->heap = heap;
	vm->high = high;
	tables(im, sh, f, (int)(sizeof(f) / sizeof(f[0])), vm);
	put32(im, major, sh->offsets ? 23 : 17);
	vm->heap_lo = alloc(im, 64 << 7);
	vm->heap_hi = vm->heap_lo + (64 << 7);
	put64(im, low, vm->heap_lo);
	put64(im, high, vm->heap_hi);
	put64(im, heaps_var, sh->heaps_null ? 0 : ga);
	put32(im, ga, 1);
	put64(im, ga + 8, arr);
	put64(im, arr, heap);
	put64(im, heap + 8, vm->heap_lo);
	put64(im, heap + 16, vm->heap_hi);
	put64(im, heap + 120, segmap);
	put32(im, heap + 256, 7);
	memset(im->mem + (segmap - BASE), 0xff, 64);	/* free, until a blob is there */
	/* an nmethod of 5 segments, a freed blob of 2 (its tags kept, as HotSpot
	 * keeps them), the interpreter of 2, never used space, a stub */
	vm->nm = blob(im, vm, segmap, 0, 5, "nmethod", sh->offsets);
	vm->nm_code = vm->nm + 0x40;
	vm->nm_data = vm->nm - 16 + (5 << 7) - 0x20;
	vm->freed_pc = blob(im, vm, segmap, 5, 2, "nmethod", sh->offsets) + 0x100;
	im->mem[vm->heap_lo + (5 << 7) + 8 - BASE] = 0;	/* freed */
	vm->interp = blob(im, vm, segmap, 8, 2, "Interpreter", sh->offsets);
	vm->never_pc = vm->heap_lo + (10 << 7) + 20;
	put32(im, vm->nm + 304, 42);
	put64(im, vm->nm + 112, method);
	put64(im, method + 8, cm);
	put64(im, cm + 8, cp);
	put16(im, cm + 34, 3);
	put16(im, cm + 36, 4);
	put64(im, cp + 24, klass);
	put16(im, cp + 54, 5);
	put32(im, cp + 60, 8);	/* entries in the pool */
	put64(im, cp + 72 + 8 * 3, symbol(im, "leafA"));
	put64(im, cp + 72 + 8 * 4, symbol(im, "(J)J") | 1);	/* a tagged entry */
	put64(im, cp + 72 + 8 * 5, symbol(im, "Hot.java"));
	put64(im, klass + 24, symbol(im, "com/example/Hot"));
	/* a stub whose name points nowhere */
	vm->bad_name_pc = blob(im, vm, segmap, 12, 1, "x", sh->offsets) + 0x50;
	put64(im, vm->bad_name_pc - 0x50 + 96, 0xdead0000);
	if (sh->no_end)
		endless(im, vm);
}

static void read_vm(struct image *im, struct vm *vm, struct hs_layout *l, struct hs_heaps *h)
{
	assert_int_equal(hs_layout_read(img_read, im, &vm->syms, 0, l), 0);
	assert_int_equal(hs_heaps_read(img_read, im, l, h), 0);
}

static void check_vm(struct image *im, struct vm *vm, int major)
{
	struct hs_layout l;
	struct hs_heaps h;
	struct hs_frame f;
	char name[300];

	read_vm(im, vm, &l, &h);
	assert_int_equal(l.major, major);
	/* the optional parts: lines and scopes, in the shape of the VM's generation */
	assert_int_equal(l.has_lines, 1);
	assert_int_equal(l.cm_flags_size, major >= 21 ? 4 : 2);
	assert_int_equal(l.cm_sizeof, 48);
	assert_int_equal(l.lnt_flag, 1);
	assert_int_equal(l.stream_x, major >= 20);
	assert_int_equal(l.pd_size, 16);
	assert_int_equal(l.pd_scope, 4);
	assert_int_equal(l.scopes, major >= 23 ? HS_SCOPES_IMMUTABLE : HS_SCOPES_HEADER);
	assert_int_equal(l.heapblock_size, 16);
	assert_int_equal(l.cp_size, 72);
	assert_int_equal(h.n, 1);
	assert_true(h.h[0].lo == vm->heap_lo && h.h[0].hi == vm->heap_hi && h.h[0].shift == 7);
	assert_true(h.low == vm->heap_lo && h.high == vm->heap_hi);

	/* in the nmethod's 4th segment: back to its first through the segment map */
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->heap_lo + (3 << 7) + 5, &f), 0);
	assert_int_equal(f.kind, HS_COMPILED);
	assert_string_equal(f.blob, "nmethod");
	assert_string_equal(f.klass, "com.example.Hot");
	assert_string_equal(f.method, "leafA");
	assert_string_equal(f.signature, "(J)J");
	assert_string_equal(f.file, "Hot.java");
	assert_int_equal(f.compile_id, 42);
	hs_frame_name(&f, name, sizeof(name));
	assert_string_equal(name, "com.example.Hot.leafA");

	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->interp + 0x60, &f), 0);
	assert_int_equal(f.kind, HS_INTERPRETER);
	assert_string_equal(f.method, "");
	hs_frame_name(&f, name, sizeof(name));
	assert_string_equal(name, "[jvm] Interpreter");

	/* a freed blob (its segment map kept), space never used, outside every heap */
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->freed_pc, &f), -ENOENT);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->never_pc, &f), -ENOENT);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->heap_hi + 8, &f), -ENOENT);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->heap_lo - 8, &f), -ENOENT);
	/* a blob whose name cannot be read; the nmethod's header and its data: not code */
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->bad_name_pc, &f), -EFAULT);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->nm + 8, &f), -EFAULT);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->nm_data, &f), -EFAULT);
	/* a method's name index past its pool's length (a ConstMethod reused since) */
	put16(im, vm->cm + 34, 9);
	assert_int_equal(hs_frame_of(img_read, im, &l, &h, vm->nm_code, &f), -EFAULT);
	put16(im, vm->cm + 34, 3);
}

static struct image img;

/* JDK 17: the code's bounds are pointers; _data_offset is listed too, before _code_end. */
static void test_jdk17_shape(void **state)
{
	struct vm vm;

	(void)state;
	build(&img, &(struct shape){ .data_offset_first = true }, &vm);
	check_vm(&img, &vm, 17);
}

/* _code_end listed before _data_offset: still the pointer (the first name of its list wins) */
static void test_preferred_name_first(void **state)
{
	struct vm vm;

	(void)state;
	build(&img, &(struct shape){ .data_offset_after = true }, &vm);
	check_vm(&img, &vm, 17);
}

/* JDK 23+: offsets from the blob, nmethod::_method. */
static void test_jdk23_shape(void **state)
{
	struct vm vm;

	(void)state;
	build(&img, &(struct shape){ .offsets = true }, &vm);
	check_vm(&img, &vm, 23);
}

/* A method that went away under us (its ConstMethod pointer now points nowhere). */
static void test_method_gone(void **state)
{
	struct hs_layout l;
	struct hs_heaps h;
	struct hs_frame f;
	struct vm vm;
	uint64_t method;

	(void)state;
	build(&img, &(struct shape){ 0 }, &vm);
	read_vm(&img, &vm, &l, &h);
	memcpy(&method, img.mem + (vm.nm + 112 - BASE), 8);
	put64(&img, method + 8, 0x1000);
	assert_int_equal(hs_frame_of(img_read, &img, &l, &h, vm.nm_code, &f), -EFAULT);
	assert_string_equal(f.method, "");
	assert_string_equal(f.klass, "");
}

static void test_bad_tables(void **state)
{
	struct hs_layout l;
	struct hs_heaps h;
	struct vm vm;

	(void)state;
	build(&img, &(struct shape){ .stride_zero = true }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), -EAGAIN);

	/* an optional field missing: the layout is read, what needs it is off */
	build(&img, &(struct shape){ .without = "_scopes_pcs_offset" }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), 0);
	assert_int_equal(l.scopes, HS_SCOPES_NONE);
	assert_int_equal(l.has_lines, 1);
	build(&img, &(struct shape){ .without = "_code_size" }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), 0);
	assert_int_equal(l.has_lines, 0);
	assert_int_equal(l.scopes, HS_SCOPES_HEADER);

	build(&img, &(struct shape){ .without = "_name" }, &vm);	/* Klass::_name, CodeBlob::_name */
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), -ENOTSUP);
	build(&img, &(struct shape){ .without = "_source_file_name_index" }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), 0);	/* optional */
	assert_int_equal(l.cp_has_source, 0);

	/* a pointer's start and an offset's end: two generations' names, not a layout */
	build(&img, &(struct shape){ .data_offset_first = true, .without = "_code_end" }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), -ENOTSUP);

	/* an entry's member at the stride's last 4 bytes: an 8-byte read would leave it */
	build(&img, &(struct shape){ 0 }, &vm);
	put64(&img, vm.syms.addr[HS_STRUCT_STRIDE], 256);
	put64(&img, vm.syms.addr[HS_STRUCT_ADDRESS], 252);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), -EINVAL);

	/* a heap listed before it is reserved; heaps short of the code cache's bounds */
	build(&img, &(struct shape){ 0 }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), 0);
	put64(&img, vm.heap + 8, 0);
	assert_int_equal(hs_heaps_read(img_read, &img, &l, &h), -EAGAIN);
	put64(&img, vm.heap + 8, vm.heap_lo);
	put64(&img, vm.high, vm.heap_hi + 4096);
	assert_int_equal(hs_heaps_read(img_read, &img, &l, &h), -EAGAIN);
	put64(&img, vm.high, vm.heap_hi);
	assert_int_equal(hs_heaps_read(img_read, &img, &l, &h), 0);

	build(&img, &(struct shape){ .no_end = true }, &vm);
	img.reads = 0;
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), -EINVAL);
	assert_true(img.reads < 20000 * 3 + 100);	/* each entry and its field name, once */

	build(&img, &(struct shape){ .heaps_null = true }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0, &l), 0);
	assert_int_equal(hs_heaps_read(img_read, &img, &l, &h), -EAGAIN);

	/* the symbols in memory that is not the VM's */
	build(&img, &(struct shape){ 0 }, &vm);
	assert_int_equal(hs_layout_read(img_read, &img, &vm.syms, 0x100000000ull, &l), -EFAULT);
}

/* ---- lines and scopes ---------------------------------------------------------- */

/* HotSpot's compressed int (UNSIGNED5, x excluded bytes), written as its writer does. */
static size_t u5(uint8_t *out, uint32_t v, int x)
{
	const uint32_t l = 256 - 64 - (uint32_t)x;
	size_t n = 0;

	for (int i = 0; i < 5; i++) {
		if (v < l || i == 4) {
			out[n++] = (uint8_t)(v + (uint32_t)x);
			break;
		}
		v -= l;
		out[n++] = (uint8_t)(l + v % 64 + (uint32_t)x);
		v >>= 6;
	}
	return n;
}

static size_t s5(uint8_t *out, int32_t v, int x)
{
	return u5(out, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31), x);
}

/* A Method whose ConstMethod has 200 bytecodes and the line table of pairs. */
static uint64_t lined_method(struct image *im, int x, bool with_table)
{
	static const int pairs[][2] = { { 0, 10 }, { 5, 12 }, { 100, 20 }, { 150, 320 },
					{ 180, 319 } };
	uint64_t m = alloc(im, 88), cm = alloc(im, 48 + 200 + 64);
	uint8_t t[64];
	size_t n = 0;
	int bci = 0, line = 0;

	put64(im, m + 8, cm);
	put32(im, cm + 24, (48 + 200 + 64) / 8);	/* _constMethod_size, words */
	put16(im, cm + 28, with_table ? 1 | 4 : 4);	/* _flags: has a line table, and more */
	put16(im, cm + 32, 200);			/* _code_size */
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int db = pairs[i][0] - bci, dl = pairs[i][1] - line;

		if (db >= 0 && db < 32 && dl >= 0 && dl < 8 && ((db << 3) | dl) != 0xff) {
			t[n++] = (uint8_t)(db << 3 | dl);
		} else {
			t[n++] = 0xff;
			n += s5(t + n, db, x);
			n += s5(t + n, dl, x);
		}
		bci = pairs[i][0];
		line = pairs[i][1];
	}
	t[n++] = 0;
	put(im, cm + 48 + 200, t, n);
	return m;
}

static void lines_layout(struct hs_layout *l, int x)
{
	memset(l, 0, sizeof(*l));
	l->has_lines = 1;
	l->method_const = 8;
	l->cm_size_words = 24;
	l->cm_flags = 28;
	l->cm_flags_size = 2;
	l->cm_code_size = 32;
	l->cm_sizeof = 48;
	l->lnt_flag = 1;
	l->stream_x = x;
}

/* The line table in both encodings (17's, and 20+'s without the byte 0). */
static void test_lines(void **state)
{
	(void)state;
	for (int x = 0; x <= 1; x++) {
		struct hs_layout l;
		uint64_t m, code;

		memset(&img, 0, sizeof(img));
		lines_layout(&l, x);
		m = lined_method(&img, x, true);
		memcpy(&code, img.mem + (m + 8 - BASE), 8);
		code += 48;
		assert_int_equal(hs_line(img_read, &img, &l, m, 0), 10);
		assert_int_equal(hs_line(img_read, &img, &l, m, -1), 10);	/* the entry */
		assert_int_equal(hs_line(img_read, &img, &l, m, 4), 10);
		assert_int_equal(hs_line(img_read, &img, &l, m, 5), 12);
		assert_int_equal(hs_line(img_read, &img, &l, m, 99), 12);
		assert_int_equal(hs_line(img_read, &img, &l, m, 100), 20);
		assert_int_equal(hs_line(img_read, &img, &l, m, 170), 320);	/* multi-byte */
		assert_int_equal(hs_line(img_read, &img, &l, m, 199), 319);	/* going back */
		assert_int_equal(hs_line(img_read, &img, &l, m, 200), 0);	/* past the code */
		/* the other encoding reads other numbers (or none), never these */
		l.stream_x = !x;
		assert_int_not_equal(hs_line(img_read, &img, &l, m, 170), 320);
		l.stream_x = x;
		/* the bcp's low 30 bits: the bci; outside the bytecodes: none */
		assert_int_equal(hs_bci(img_read, &img, &l, m, (uint32_t)(code + 37) & 0x3fffffff), 37);
		assert_int_equal(hs_bci(img_read, &img, &l, m, (uint32_t)(code + 200) & 0x3fffffff), -1);
		assert_int_equal(hs_bci(img_read, &img, &l, m, 0), -1);
		/* a method without a table, a Method* into nothing, a VM without lines */
		assert_int_equal(hs_line(img_read, &img, &l, lined_method(&img, x, false), 5), 0);
		assert_int_equal(hs_line(img_read, &img, &l, 0xdead0000, 5), 0);
		assert_int_equal(hs_bci(img_read, &img, &l, 0xdead0000, 37), -1);
		l.has_lines = 0;
		assert_int_equal(hs_line(img_read, &img, &l, m, 5), 0);
	}
}

/* An nmethod's PcDescs, scopes and metadata, where JDK 17 (header) or 25 (immutable) keeps them. */
struct scoped {
	struct hs_layout l;
	struct hs_frame f;
	uint64_t outer, mid, inner, sd, md;
};

static void scoped_nmethod(struct image *im, bool immutable, struct scoped *s)
{
	const int x = immutable ? 1 : 0;
	/* the nmethod's order before 23: metadata, scopes, PcDescs; from 25 the
	 * PcDescs then the scopes in the immutable data, the metadata elsewhere */
	uint64_t nm = alloc(im, 512), md = alloc(im, 24), imm = alloc(im, 5 * 16 + 64);
	uint64_t sd = immutable ? imm + 5 * 16 : alloc(im, 64), pcs = immutable ? imm : alloc(im, 5 * 16);
	const int32_t pd[] = { -1, 0x10, 0x20, 0x7fffffff };
	uint8_t st[64];
	size_t n = 0, outer_at, mid_at, inner_at;

	memset(s, 0, sizeof(*s));
	s->outer = alloc(im, 88);
	s->mid = alloc(im, 88);
	s->inner = alloc(im, 88);
	/* the scopes: a dummy byte, the outer (no sender, metadata 1, bci 7), the
	 * method inlined into it (metadata 3, bci 20), the one inlined into that */
	st[n++] = 0xff;
	outer_at = n;
	n += u5(st + n, 0, x);
	n += u5(st + n, 1, x);
	n += u5(st + n, 7 + 1, x);
	mid_at = n;
	n += u5(st + n, (uint32_t)outer_at, x);
	n += u5(st + n, 3, x);
	n += u5(st + n, 20 + 1, x);
	inner_at = n;
	n += u5(st + n, (uint32_t)mid_at, x);
	n += u5(st + n, 2, x);
	n += u5(st + n, 300 + 1, x);	/* two bytes: 301 is over L */
	put(im, sd, st, n);
	put64(im, md, s->outer);
	put64(im, md + 8, s->inner);
	put64(im, md + 16, s->mid);
	for (int i = 0; i < 4; i++) {
		put32(im, pcs + 16 * (uint64_t)i, (uint32_t)pd[i]);
		put32(im, pcs + 16 * (uint64_t)i + 4, i == 1 ? (uint32_t)inner_at : 0);
	}
	s->l.pd_pc = 0;
	s->l.pd_scope = 4;
	s->l.pd_size = 16;
	s->l.stream_x = x;
	if (!immutable) {
		s->l.scopes = HS_SCOPES_HEADER;
		s->l.nm_pcs = 100;
		s->l.nm_pcs_end = 104;
		s->l.nm_metadata = 108;
		s->l.nm_sd_begin = 112;
		put32(im, nm + 100, (uint32_t)(pcs - nm));
		put32(im, nm + 104, (uint32_t)(pcs + 4 * 16 - nm));
		put32(im, nm + 108, (uint32_t)(md - nm));
		put64(im, nm + 112, sd);
	} else {
		s->l.scopes = HS_SCOPES_IMMUTABLE;
		s->l.nm_immutable = 120;
		s->l.nm_immutable_size = 128;
		s->l.nm_pcs = 132;
		s->l.nm_sd_offset = 136;
		s->l.cb_mutable = 144;
		s->l.cb_reloc_size = 152;
		s->l.cb_mutable_size = 156;
		put64(im, nm + 120, imm);
		put32(im, nm + 128, 5 * 16 + 64);
		put32(im, nm + 132, 0);
		put32(im, nm + 136, 4 * 16);
		sd = imm + 4 * 16;	/* the scopes right after the PcDescs */
		put(im, sd, st, n);
		put64(im, nm + 144, md - 24);	/* 24 bytes of relocations, then the metadata */
		put32(im, nm + 152, 24);
		put32(im, nm + 156, 24 + 24);
	}
	s->sd = sd;
	s->md = md;
	s->f.kind = HS_COMPILED;
	s->f.blob_addr = nm;
	s->f.method_addr = s->outer;
	s->f.code_lo = nm + 256;
}

/* hs_scopes at pc, with room for max: the count, *cut, the scopes in sc. */
static int scopes(struct scoped *s, uint64_t pc, struct hs_scope *sc, int max, int *cut)
{
	return hs_scopes(img_read, &img, &s->l, &s->f, pc, sc, max, cut);
}

static void test_scopes(void **state)
{
	(void)state;
	for (int imm = 0; imm <= 1; imm++) {
		struct hs_scope sc[HS_MAX_SCOPES];
		struct scoped s;
		uint64_t c;
		int cut;

		memset(&img, 0, sizeof(img));
		scoped_nmethod(&img, imm, &s);
		c = s.f.code_lo;
		/* a return address (exact), a pc before it: the inlined methods, then the outer */
		for (int k = 0; k < 2; k++) {
			assert_int_equal(scopes(&s, c + (k ? 0x09 : 0x10), sc, HS_MAX_SCOPES, &cut), 3);
			assert_int_equal(cut, 0);
			assert_true(sc[0].method == s.inner && sc[0].bci == 300);
			assert_true(sc[1].method == s.mid && sc[1].bci == 20);
			assert_true(sc[2].method == s.outer && sc[2].bci == 7);
		}
		/* no scope at the next PcDesc, past the last one: no frames, no error */
		assert_int_equal(scopes(&s, c + 0x18, sc, HS_MAX_SCOPES, &cut), 0);
		assert_int_equal(scopes(&s, c + 0x7fffff, sc, HS_MAX_SCOPES, &cut), 0);
		/* room for two: the innermost and the outermost, the middle one counted */
		assert_int_equal(scopes(&s, c + 0x10, sc, 2, &cut), 2);
		assert_int_equal(cut, 1);
		assert_true(sc[0].method == s.inner && sc[1].method == s.outer && sc[1].bci == 7);
		assert_int_equal(scopes(&s, c + 0x10, sc, 1, &cut), -EINVAL);
		/* the outermost must be the nmethod's method */
		s.f.method_addr = s.inner;
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -EINVAL);
		s.f.method_addr = s.outer;
		/* a metadata index past the table */
		img.mem[s.sd + 1 + 1 - BASE] = (uint8_t)(9 + imm);
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -EINVAL);
		img.mem[s.sd + 1 + 1 - BASE] = (uint8_t)(1 + imm);
		/* a sender that is not below its callee: a loop */
		img.mem[s.sd + 1 - BASE] = (uint8_t)(5 + imm);
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -EINVAL);
		img.mem[s.sd + 1 - BASE] = (uint8_t)(0 + imm);
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), 3);
		/* the tables' pointer into nothing; a VM without scopes; an interpreted frame */
		s.f.blob_addr = 0xdead0000;
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -EFAULT);
		s.f.blob_addr = c - 256;
		s.l.scopes = HS_SCOPES_NONE;
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -ENOTSUP);
		s.f.kind = HS_INTERPRETER;
		assert_int_equal(scopes(&s, c + 0x10, sc, HS_MAX_SCOPES, &cut), -EINVAL);
	}
}

/* A process that runs no JVM (this one), or none at all: nothing read, nothing named. */
static void test_jvmsym_no_jvm(void **state)
{
	struct jvmsym *js = jvmsym_new();
	struct jvmsym_stats s;
	struct hs_layout l;
	struct hs_heaps h;
	struct jvmsym_frames fr;

	(void)state;
	assert_non_null(js);
	assert_int_equal(jvmsym_frames(js, getpid(), (uint64_t)(uintptr_t)&test_jvmsym_no_jvm,
				       JVMSYM_CODE, 0, &fr), -ENOENT);
	assert_int_equal(fr.n, 0);
	assert_int_equal(jvmsym_frames(js, 999999999, 0x1000, JVMSYM_METHOD, 0, &fr), -ENOENT);
	assert_int_equal(jvmsym_layout(js, getpid(), &l, &h), -ENOENT);
	jvmsym_exit(js, getpid());
	assert_int_equal(jvmsym_layout(js, getpid(), &l, &h), -ENOENT);
	jvmsym_stats(js, &s);
	assert_int_equal(s.jvms, 0);
	assert_int_equal(s.lookups, 0);
	assert_int_equal(s.unsupported, 0);
	jvmsym_free(js);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jdk17_shape),
		cmocka_unit_test(test_preferred_name_first),
		cmocka_unit_test(test_jdk23_shape),
		cmocka_unit_test(test_method_gone),
		cmocka_unit_test(test_bad_tables),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_jvmsym_no_jvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
