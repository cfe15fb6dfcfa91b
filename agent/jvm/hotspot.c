// SPDX-License-Identifier: Apache-2.0
/* A HotSpot JVM's layout, code cache and code addresses; see hotspot.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "elfutil.h"
#include "hotspot.h"

#define SYMTAB_BUDGET (64u << 20)	/* libjvm's .dynsym: 2 MiB in JDK 17 */
#define STRTAB_BUDGET (64u << 20)
#define MAX_ENTRIES 20000	/* JDK 17 exports 788 structs and 768 types */
#define MAX_STRIDE 256
#define MAX_NAME 128		/* a type or field name, with its NUL */
#define MAX_SEGMAP_HOPS 4096	/* back to a blob's first segment */

/* ---- the symbols ------------------------------------------------------------------ */

static const char *const sym_names[HS_NSYMS] = {
	[HS_STRUCTS] = "gHotSpotVMStructs",
	[HS_STRUCT_STRIDE] = "gHotSpotVMStructEntryArrayStride",
	[HS_STRUCT_TYPE] = "gHotSpotVMStructEntryTypeNameOffset",
	[HS_STRUCT_FIELD] = "gHotSpotVMStructEntryFieldNameOffset",
	[HS_STRUCT_TYPESTR] = "gHotSpotVMStructEntryTypeStringOffset",
	[HS_STRUCT_STATIC] = "gHotSpotVMStructEntryIsStaticOffset",
	[HS_STRUCT_OFFSET] = "gHotSpotVMStructEntryOffsetOffset",
	[HS_STRUCT_ADDRESS] = "gHotSpotVMStructEntryAddressOffset",
	[HS_TYPES] = "gHotSpotVMTypes",
	[HS_TYPE_STRIDE] = "gHotSpotVMTypeEntryArrayStride",
	[HS_TYPE_NAME] = "gHotSpotVMTypeEntryTypeNameOffset",
	[HS_TYPE_SIZE] = "gHotSpotVMTypeEntrySizeOffset",
};

int hs_elf_syms(Elf *elf, int fd, struct hs_syms *ret)
{
	GElf_Shdr sh;
	Elf_Data *d;
	size_t n;
	int err;

	memset(ret, 0, sizeof(*ret));
	err = elfutil_symtab(elf, fd, SHT_DYNSYM, SYMTAB_BUDGET, STRTAB_BUDGET, &d, &sh);
	if (err)
		return err == -ENOENT ? -ENOENT : -EINVAL;
	if (!sh.sh_entsize)
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(d, (int)i, &sym))
			break;
		if (!sym.st_value || sym.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(elf, sh.sh_link, sym.st_name);
		if (!name || strncmp(name, "gHotSpotVM", 10))
			continue;
		for (int k = 0; k < HS_NSYMS; k++)
			if (!strcmp(name, sym_names[k]))
				ret->addr[k] = sym.st_value;
	}
	for (int k = 0; k < HS_NSYMS; k++)
		if (!ret->addr[k])
			return -ENOENT;
	return 0;
}

/* ---- reading the VM's memory --------------------------------------------------------- */

static int rd_u64(hs_read_fn rd, void *ctx, uint64_t addr, uint64_t *v)
{
	return addr ? rd(ctx, addr, v, sizeof(*v)) : -EFAULT;
}

static int rd_u32(hs_read_fn rd, void *ctx, uint64_t addr, uint32_t *v)
{
	return addr ? rd(ctx, addr, v, sizeof(*v)) : -EFAULT;
}

static int rd_u16(hs_read_fn rd, void *ctx, uint64_t addr, uint16_t *v)
{
	return addr ? rd(ctx, addr, v, sizeof(*v)) : -EFAULT;
}

/*
 * A C string of at most len - 1 bytes at addr, read a piece at a time that never
 * crosses a page (the page after a short string may not be mapped). 0, or -EFAULT
 * (unreadable, or no NUL within len).
 */
static int rd_str(hs_read_fn rd, void *ctx, uint64_t addr, char *buf, size_t len)
{
	size_t have = 0;

	if (!addr)
		return -EFAULT;
	while (have < len) {
		size_t n = 4096 - ((addr + have) & 4095);

		if (n > len - have)
			n = len - have;
		if (n > 64)
			n = 64;
		if (rd(ctx, addr + have, buf + have, n))
			return -EFAULT;
		if (memchr(buf + have, 0, n))
			return 0;
		have += n;
	}
	buf[len - 1] = 0;
	return -EFAULT;
}

/* ---- the tables ------------------------------------------------------------------ */

/* What the symbolizer takes from the structs table: one field, under any of its names. */
enum want_how { W_OFFSET, W_STATIC };
struct want {
	const char *types;	/* '|'-separated names of the type across versions */
	const char *fields;	/* '|'-separated names of the field */
	enum want_how how;
	size_t at;		/* offsetof(struct hs_layout, ...) */
	bool optional;
};

#define L(f) offsetof(struct hs_layout, f)
static const struct want wants[] = {
	{ "CodeCache", "_heaps", W_STATIC, L(heaps), false },
	{ "CodeCache", "_low_bound", W_STATIC, L(low_bound), false },
	{ "CodeCache", "_high_bound", W_STATIC, L(high_bound), false },
	{ "CodeHeap", "_memory", W_OFFSET, L(heap_memory), false },
	{ "CodeHeap", "_segmap", W_OFFSET, L(heap_segmap), false },
	{ "CodeHeap", "_log2_segment_size", W_OFFSET, L(heap_log2_seg), false },
	{ "VirtualSpace", "_low_boundary", W_OFFSET, L(vs_low), false },
	{ "VirtualSpace", "_high_boundary", W_OFFSET, L(vs_high), false },
	{ "GrowableArrayBase|GenericGrowableArray", "_len", W_OFFSET, L(ga_len), false },
	{ "GrowableArray<int>", "_data", W_OFFSET, L(ga_data), false },
	{ "CodeBlob", "_name", W_OFFSET, L(cb_name), false },
	{ "CodeBlob", "_code_begin|_code_offset", W_OFFSET, L(cb_code_begin), false },
	{ "CodeBlob", "_code_end|_data_offset", W_OFFSET, L(cb_code_end), false },
	{ "CodeBlob", "_frame_size", W_OFFSET, L(cb_frame_size), false },
	{ "CodeBlob", "_frame_complete_offset", W_OFFSET, L(cb_frame_complete), false },
	{ "nmethod|CompiledMethod", "_method", W_OFFSET, L(nm_method), false },
	{ "nmethod", "_compile_id", W_OFFSET, L(nm_compile_id), false },
	{ "Method", "_constMethod", W_OFFSET, L(method_const), false },
	{ "ConstMethod", "_constants", W_OFFSET, L(cm_constants), false },
	{ "ConstMethod", "_name_index", W_OFFSET, L(cm_name), false },
	{ "ConstMethod", "_signature_index", W_OFFSET, L(cm_signature), false },
	{ "ConstantPool", "_pool_holder", W_OFFSET, L(cp_holder), false },
	{ "ConstantPool", "_source_file_name_index", W_OFFSET, L(cp_source), true },
	{ "ConstantPool", "_length", W_OFFSET, L(cp_length), true },
	{ "HeapBlock::Header", "_used", W_OFFSET, L(hb_used), true },
	{ "Klass", "_name", W_OFFSET, L(klass_name), false },
	{ "Symbol", "_length", W_OFFSET, L(sym_length), false },
	{ "Symbol", "_body", W_OFFSET, L(sym_body), false },
};
#undef L
#define NWANTS (sizeof(wants) / sizeof(wants[0]))

/* Where name is in the '|'-separated list (0: first), or -1. */
static int name_in(const char *list, const char *name)
{
	size_t n = strlen(name);
	int i = 0;

	for (const char *p = list; *p; i++) {
		const char *end = strchr(p, '|');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !memcmp(p, name, n))
			return i;
		if (!end)
			break;
		p = end + 1;
	}
	return -1;
}

struct table {
	uint64_t base, stride;
	uint64_t off[6];	/* of the entry's members, in the order the caller asks */
	int noff;
};

/* The table's pointer, stride and member offsets; -EAGAIN while the VM fills them in. */
static int table_open(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
		      int base_sym, int stride_sym, const int *offs, int noff, struct table *t)
{
	memset(t, 0, sizeof(*t));
	if (rd_u64(rd, ctx, s->addr[base_sym] + bias, &t->base) ||
	    rd_u64(rd, ctx, s->addr[stride_sym] + bias, &t->stride))
		return -EFAULT;
	if (!t->base || !t->stride)
		return -EAGAIN;
	if (t->stride < 16 || t->stride > MAX_STRIDE || t->stride % 8)
		return -EINVAL;
	t->noff = noff;
	for (int i = 0; i < noff; i++) {
		if (rd_u64(rd, ctx, s->addr[offs[i]] + bias, &t->off[i]))
			return -EFAULT;
		if (t->off[i] > t->stride - 8)	/* each member is read as 8 bytes */
			return -EINVAL;
	}
	return 0;
}

static uint64_t entry_u64(const uint8_t *e, uint64_t off)
{
	uint64_t v;

	memcpy(&v, e + off, sizeof(v));
	return v;
}

/*
 * One entry of the structs table against what is wanted. A field under several
 * names takes the first of its list that the VM has, wherever it sits in the
 * table (JDK 17 has both CodeBlob::_code_end, a pointer, and _data_offset, which
 * is where the code ends only from 23 on); rank[i]: the name taken, + 1.
 */
static void note_field(struct hs_layout *l, const char *type, const char *field, bool is_static,
		       uint64_t offset, uint64_t address, uint8_t *rank)
{
	for (size_t i = 0; i < NWANTS; i++) {
		const struct want *w = &wants[i];
		int r;

		if (name_in(w->types, type) < 0 || (r = name_in(w->fields, field)) < 0 ||
		    (rank[i] && rank[i] <= r + 1))
			continue;
		if (w->how == W_STATIC) {
			if (!is_static || !address)
				continue;
			*(uint64_t *)((char *)l + w->at) = address;
		} else {
			if (is_static || offset > 65535)
				continue;
			*(uint32_t *)((char *)l + w->at) = (uint32_t)offset;
		}
		if (w->at == offsetof(struct hs_layout, cb_code_begin))
			l->cb_code_offsets = !strcmp(field, "_code_offset");
		if (!strcmp(field, "_source_file_name_index"))
			l->cp_has_source = 1;
		if (!strcmp(type, "ConstantPool") && !strcmp(field, "_length"))
			l->cp_has_length = 1;
		if (!strcmp(field, "_used"))
			l->hb_has_used = 1;
		if (w->at == offsetof(struct hs_layout, cb_code_end))
			l->cb_end_offset = !strcmp(field, "_data_offset");
		rank[i] = (uint8_t)(r + 1);
	}
}

static int read_structs(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
			struct hs_layout *l, uint8_t *rank, uint64_t *major_addr)
{
	static const int offs[] = { HS_STRUCT_TYPE, HS_STRUCT_FIELD, HS_STRUCT_STATIC,
				    HS_STRUCT_OFFSET, HS_STRUCT_ADDRESS, HS_STRUCT_TYPESTR };
	uint8_t e[MAX_STRIDE];
	char type[MAX_NAME], field[MAX_NAME];
	uint64_t last_type = 0;
	struct table t;
	int err = table_open(rd, ctx, s, bias, HS_STRUCTS, HS_STRUCT_STRIDE, offs, 6, &t);

	if (err)
		return err;
	for (int i = 0; i < MAX_ENTRIES; i++) {
		uint64_t tn, fn, st;

		if (rd(ctx, t.base + (uint64_t)i * t.stride, e, t.stride))
			return -EFAULT;
		tn = entry_u64(e, t.off[0]);
		if (!tn)
			return 0;	/* the end */
		fn = entry_u64(e, t.off[1]);
		if (tn != last_type && rd_str(rd, ctx, tn, type, sizeof(type)))
			return -EFAULT;
		last_type = tn;
		if (!fn || rd_str(rd, ctx, fn, field, sizeof(field)))
			continue;	/* a type's entry without a field */
		st = (uint32_t)entry_u64(e, t.off[2]);
		if (st && !strcmp(type, "Abstract_VM_Version") && !strcmp(field, "_vm_major_version"))
			*major_addr = entry_u64(e, t.off[4]);
		if (!strcmp(type, "CodeBlob") && !strcmp(field, "_frame_complete_offset")) {
			char ts[MAX_NAME];	/* its C type: its width changed in 25 */

			if (rd_str(rd, ctx, entry_u64(e, t.off[5]), ts, sizeof(ts)))
				return -EFAULT;
			l->cb_frame_complete_size = !strcmp(ts, "int16_t") || !strcmp(ts, "short") ? 2 :
						    !strcmp(ts, "int") || !strcmp(ts, "int32_t") ? 4 : 0;
		}
		note_field(l, type, field, st != 0, entry_u64(e, t.off[3]), entry_u64(e, t.off[4]),
			   rank);
	}
	return -EINVAL;	/* no end in sight */
}

static int read_types(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
		      struct hs_layout *l)
{
	static const int offs[] = { HS_TYPE_NAME, HS_TYPE_SIZE };
	uint8_t e[MAX_STRIDE];
	char type[MAX_NAME];
	struct table t;
	int err = table_open(rd, ctx, s, bias, HS_TYPES, HS_TYPE_STRIDE, offs, 2, &t);
	bool heapblock = false, pool = false;

	if (err)
		return err;
	for (int i = 0; i < MAX_ENTRIES && !(heapblock && pool); i++) {
		uint64_t tn, size;

		if (rd(ctx, t.base + (uint64_t)i * t.stride, e, t.stride))
			return -EFAULT;
		if (!(tn = entry_u64(e, t.off[0])))
			break;
		if (rd_str(rd, ctx, tn, type, sizeof(type)))
			return -EFAULT;
		size = entry_u64(e, t.off[1]);
		if (!strcmp(type, "HeapBlock") && size && size <= 256) {
			l->heapblock_size = (uint32_t)size;
			heapblock = true;
		} else if (!strcmp(type, "ConstantPool") && size && size <= 4096) {
			l->cp_size = (uint32_t)size;
			pool = true;
		}
	}
	return heapblock && pool ? 0 : -ENOTSUP;
}

int hs_layout_read(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
		   struct hs_layout *ret)
{
	uint8_t rank[NWANTS] = { 0 };
	uint64_t major_addr = 0;
	uint32_t major;
	int err;

	memset(ret, 0, sizeof(*ret));
	err = read_structs(rd, ctx, s, bias, ret, rank, &major_addr);
	if (!err)
		err = read_types(rd, ctx, s, bias, ret);
	if (err)
		return err;
	for (size_t i = 0; i < NWANTS; i++)
		if (!wants[i].optional && !rank[i])
			return -ENOTSUP;
	if (ret->cb_code_offsets != ret->cb_end_offset)
		return -ENOTSUP;	/* a pointer and an offset: names of two generations */
	if (!ret->cb_frame_complete_size)
		return -ENOTSUP;	/* a width we do not know */
	if (major_addr && !rd_u32(rd, ctx, major_addr, &major) && major < 1000)
		ret->major = (int)major;
	return 0;
}

/* ---- the code cache ------------------------------------------------------------------ */

/* The heaps together are [low, high) of the code cache, nothing more or less. */
static bool heaps_cover(const struct hs_heaps *h)
{
	uint64_t total = 0, lo = UINT64_MAX, hi = 0;

	for (int i = 0; i < h->n; i++) {
		total += h->h[i].hi - h->h[i].lo;
		lo = h->h[i].lo < lo ? h->h[i].lo : lo;
		hi = h->h[i].hi > hi ? h->h[i].hi : hi;
		for (int k = 0; k < i; k++)
			if (h->h[i].lo < h->h[k].hi && h->h[k].lo < h->h[i].hi)
				return false;	/* overlapping heaps */
	}
	return h->n && lo == h->low && hi == h->high && total == hi - lo;
}

int hs_heaps_read(hs_read_fn rd, void *ctx, const struct hs_layout *l, struct hs_heaps *ret)
{
	uint64_t arr, data;
	uint32_t len;

	memset(ret, 0, sizeof(*ret));
	if (rd_u64(rd, ctx, l->heaps, &arr))
		return -EFAULT;
	if (!arr)
		return -EAGAIN;
	if (rd_u32(rd, ctx, arr + l->ga_len, &len) || rd_u64(rd, ctx, arr + l->ga_data, &data))
		return -EFAULT;
	if (!len || !data)
		return -EAGAIN;
	if (len > HS_MAX_HEAPS)
		return -EINVAL;
	if (rd_u64(rd, ctx, l->low_bound, &ret->low) || rd_u64(rd, ctx, l->high_bound, &ret->high))
		return -EFAULT;
	for (uint32_t i = 0; i < len; i++) {
		uint64_t heap, lo, hi, segmap;
		uint32_t shift;

		if (rd_u64(rd, ctx, data + 8 * i, &heap) ||
		    rd_u64(rd, ctx, heap + l->heap_memory + l->vs_low, &lo) ||
		    rd_u64(rd, ctx, heap + l->heap_memory + l->vs_high, &hi) ||
		    rd_u64(rd, ctx, heap + l->heap_segmap + l->vs_low, &segmap) ||
		    rd_u32(rd, ctx, heap + l->heap_log2_seg, &shift))
			return -EFAULT;
		/* CodeCache::add_heap lists a heap before it reserves it: not yet */
		if (!lo || !hi || !segmap || !shift)
			return -EAGAIN;
		if (lo >= hi || shift < 4 || shift > 16)
			return -EINVAL;
		ret->h[ret->n].lo = lo;
		ret->h[ret->n].hi = hi;
		ret->h[ret->n].segmap = segmap;
		ret->h[ret->n].shift = (int)shift;
		ret->n++;
	}
	return heaps_cover(ret) ? 0 : -EAGAIN;	/* the bounds come after the last heap */
}

/* ---- a code address -------------------------------------------------------------------- */

/*
 * The blob whose block holds segment seg: back through the segment map (a tag
 * is how far back to go; 0 starts a block, 0xff is unused space), read 256 tags
 * at a time; a freed block keeps its tags, so the block's header says whether it
 * is in use. Its address, or 0 with *ret_err.
 */
static uint64_t block_of(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t lo,
			 uint64_t segmap, int shift, uint64_t seg, int *ret_err)
{
	uint8_t tags[256];
	uint64_t base = 0;	/* tags[] holds [base, base + 256) */
	bool have = false;

	for (int hop = 0; hop < MAX_SEGMAP_HOPS; hop++) {
		uint8_t tag, used = 1;

		if (!have || seg < base || seg >= base + sizeof(tags)) {
			base = seg >= sizeof(tags) - 1 ? seg - (sizeof(tags) - 1) : 0;
			if (rd(ctx, segmap + base, tags, (size_t)(seg - base + 1))) {
				*ret_err = -EFAULT;
				return 0;
			}
			have = true;
		}
		tag = tags[seg - base];
		if (tag == 0xff)
			break;	/* free space */
		if (!tag) {
			uint64_t block = lo + (seg << shift);

			if (l->hb_has_used && rd(ctx, block + l->hb_used, &used, 1)) {
				*ret_err = -EFAULT;
				return 0;
			}
			if (!used)
				break;	/* a freed block */
			return block + l->heapblock_size;
		}
		if (tag > seg)
			break;
		seg -= tag;
	}
	*ret_err = -ENOENT;
	return 0;
}

/* The blob holding pc, from the heap's segment map: its address, or 0. */
static uint64_t blob_of(hs_read_fn rd, void *ctx, const struct hs_layout *l,
			const struct hs_heaps *h, uint64_t pc, int *ret_err)
{
	for (int i = 0; i < h->n; i++) {
		uint64_t seg;

		if (pc < h->h[i].lo || pc >= h->h[i].hi)
			continue;
		seg = (pc - h->h[i].lo) >> h->h[i].shift;
		return block_of(rd, ctx, l, h->h[i].lo, h->h[i].segmap, h->h[i].shift, seg, ret_err);
	}
	*ret_err = -ENOENT;
	return 0;
}

/* The code's bounds of the blob: pointers before JDK 23, offsets from the blob since. */
static int code_range(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t blob,
		      uint64_t *lo, uint64_t *hi)
{
	if (l->cb_code_offsets) {
		uint32_t b, e;

		if (rd_u32(rd, ctx, blob + l->cb_code_begin, &b) ||
		    rd_u32(rd, ctx, blob + l->cb_code_end, &e))
			return -EFAULT;
		*lo = blob + b;
		*hi = blob + e;
		return 0;
	}
	if (rd_u64(rd, ctx, blob + l->cb_code_begin, lo) || rd_u64(rd, ctx, blob + l->cb_code_end, hi))
		return -EFAULT;
	return 0;
}

/* A Symbol's bytes as a C string (cut to len - 1). */
static int rd_symbol(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t sym,
		     char *buf, size_t len)
{
	uint16_t n;

	sym &= ~1ull;	/* the pool tags a pseudo-string entry in the low bit */
	if (!sym || rd_u16(rd, ctx, sym + l->sym_length, &n))
		return -EFAULT;
	if (n >= len)
		n = (uint16_t)(len - 1);
	if (n && rd(ctx, sym + l->sym_body, buf, n))
		return -EFAULT;
	buf[n] = 0;
	return memchr(buf, 0, n) ? -EFAULT : 0;	/* a NUL inside: not a name */
}

/* The Symbol of constant pool entry idx. */
static int rd_pool_symbol(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t cp,
			  uint16_t idx, char *buf, size_t len)
{
	uint64_t sym;
	int32_t n;

	if (!idx || (l->cp_has_length &&
		     (rd(ctx, cp + l->cp_length, &n, sizeof(n)) || idx >= n)))
		return -EFAULT;
	if (rd_u64(rd, ctx, cp + l->cp_size + 8ull * idx, &sym))
		return -EFAULT;
	return rd_symbol(rd, ctx, l, sym, buf, len);
}

/* Method* -> class, name, signature, source file. */
static int rd_method(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
		     struct hs_frame *f)
{
	uint64_t cm, cp, klass, kname;
	uint16_t ni, si, fi = 0;

	if (rd_u64(rd, ctx, method + l->method_const, &cm) ||
	    rd_u64(rd, ctx, cm + l->cm_constants, &cp) ||
	    rd_u64(rd, ctx, cp + l->cp_holder, &klass) ||
	    rd_u64(rd, ctx, klass + l->klass_name, &kname) ||
	    rd_u16(rd, ctx, cm + l->cm_name, &ni) || rd_u16(rd, ctx, cm + l->cm_signature, &si) ||
	    (l->cp_has_source && rd_u16(rd, ctx, cp + l->cp_source, &fi)))
		return -EFAULT;
	if (rd_symbol(rd, ctx, l, kname, f->klass, sizeof(f->klass)) ||
	    rd_pool_symbol(rd, ctx, l, cp, ni, f->method, sizeof(f->method)) ||
	    rd_pool_symbol(rd, ctx, l, cp, si, f->signature, sizeof(f->signature)))
		return -EFAULT;
	for (char *c = f->klass; *c; c++)
		if (*c == '/')
			*c = '.';
	if (fi && rd_pool_symbol(rd, ctx, l, cp, fi, f->file, sizeof(f->file)))
		f->file[0] = 0;
	return 0;
}

static enum hs_kind kind_of(const char *name)
{
	if (!strcmp(name, "nmethod"))
		return HS_COMPILED;
	if (!strcmp(name, "native nmethod"))
		return HS_NATIVE;
	if (!strcmp(name, "Interpreter"))
		return HS_INTERPRETER;
	return HS_STUB;
}

int hs_frame_of(hs_read_fn rd, void *ctx, const struct hs_layout *l, const struct hs_heaps *h,
		uint64_t pc, struct hs_frame *ret)
{
	uint64_t name, lo, hi, method;
	int err = 0;
	uint64_t blob = blob_of(rd, ctx, l, h, pc, &err);

	memset(ret, 0, sizeof(*ret));
	if (!blob)
		return err;
	if (rd_u64(rd, ctx, blob + l->cb_name, &name) ||
	    rd_str(rd, ctx, name, ret->blob, sizeof(ret->blob)) ||
	    code_range(rd, ctx, l, blob, &lo, &hi))
		return -EFAULT;
	/* not code of this blob (its data, or a blob reused since the segment map
	 * was read); a return address may be the code's end */
	if (lo < blob || lo > hi || pc < lo || pc > hi)
		return -EFAULT;
	ret->kind = kind_of(ret->blob);
	if (ret->kind != HS_COMPILED && ret->kind != HS_NATIVE)
		return 0;
	if (rd_u32(rd, ctx, blob + l->nm_compile_id, (uint32_t *)&ret->compile_id) ||
	    rd_u64(rd, ctx, blob + l->nm_method, &method))
		return -EFAULT;
	if (method && rd_method(rd, ctx, l, method, ret)) {
		ret->klass[0] = ret->method[0] = ret->signature[0] = ret->file[0] = 0;
		return -EFAULT;
	}
	return 0;
}

int hs_method(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
	      struct hs_frame *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = HS_INTERPRETER;
	snprintf(ret->blob, sizeof(ret->blob), "Interpreter");
	if (!method || rd_method(rd, ctx, l, method, ret)) {
		ret->klass[0] = ret->method[0] = ret->signature[0] = ret->file[0] = 0;
		return -EFAULT;
	}
	return 0;
}

void hs_frame_name(const struct hs_frame *f, char *buf, size_t len)
{
	if (f->method[0])
		snprintf(buf, len, "%s%s%s", f->klass, f->klass[0] ? "." : "", f->method);
	else
		snprintf(buf, len, "[jvm] %s", f->blob[0] ? f->blob : "code");
}
