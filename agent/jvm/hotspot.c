// SPDX-License-Identifier: Apache-2.0
/* A HotSpot JVM's layout, code cache and code addresses; see hotspot.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "elfutil.h"
#include "hotspot.h"

#define SYMTAB_BUDGET (64u << 20)	/* libjvm's .dynsym (2 MiB in JDK 17), its names */
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
	[HS_INTS] = "gHotSpotVMIntConstants",
	[HS_INT_STRIDE] = "gHotSpotVMIntConstantEntryArrayStride",
	[HS_INT_NAME] = "gHotSpotVMIntConstantEntryNameOffset",
	[HS_INT_VALUE] = "gHotSpotVMIntConstantEntryValueOffset",
};

/* One dynamic symbol: kept when it is one of sym_names. */
static int note_hs_sym(void *arg, const char *name, const GElf_Sym *sym)
{
	struct hs_syms *ret = arg;

	if (!sym->st_value || sym->st_shndx == SHN_UNDEF || strncmp(name, "gHotSpotVM", 10))
		return 0;
	for (int k = 0; k < HS_NSYMS; k++)
		if (!strcmp(name, sym_names[k]))
			ret->addr[k] = sym->st_value;
	return 0;
}

int hs_elf_syms(Elf *elf, int fd, struct hs_syms *ret)
{
	int err;

	memset(ret, 0, sizeof(*ret));
	err = elfutil_each_sym(elf, fd, SHT_DYNSYM, SYMTAB_BUDGET, note_hs_sym, ret);
	if (err)
		return err == -ENOENT ? -ENOENT : -EINVAL;
	for (int k = 0; k < HS_NREQUIRED; k++)
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
	/* lines */
	{ "ConstMethod", "_flags._flags|_flags", W_OFFSET, L(cm_flags), true },
	{ "ConstMethod", "_code_size", W_OFFSET, L(cm_code_size), true },
	{ "ConstMethod", "_constMethod_size", W_OFFSET, L(cm_size_words), true },
	/* scopes: in the nmethod before 23, in its immutable data (and metadata in its
	 * mutable data) from 25 */
	{ "nmethod", "_scopes_pcs_offset", W_OFFSET, L(nm_pcs), true },
	{ "nmethod", "_dependencies_offset", W_OFFSET, L(nm_pcs_end), true },
	{ "nmethod|CompiledMethod", "_scopes_data_begin", W_OFFSET, L(nm_sd_begin), true },
	{ "nmethod", "_metadata_offset", W_OFFSET, L(nm_metadata), true },
	{ "nmethod", "_immutable_data", W_OFFSET, L(nm_immutable), true },
	{ "nmethod", "_immutable_data_size", W_OFFSET, L(nm_immutable_size), true },
	{ "nmethod", "_scopes_data_offset", W_OFFSET, L(nm_sd_offset), true },
	{ "CodeBlob", "_mutable_data", W_OFFSET, L(cb_mutable), true },
	{ "CodeBlob", "_mutable_data_size", W_OFFSET, L(cb_mutable_size), true },
	{ "CodeBlob", "_relocation_size", W_OFFSET, L(cb_reloc_size), true },
	{ "PcDesc", "_pc_offset", W_OFFSET, L(pd_pc), true },
	{ "PcDesc", "_scope_decode_offset", W_OFFSET, L(pd_scope), true },
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
		if (!strcmp(type, "ConstMethod") && !strncmp(field, "_flags", 6)) {
			char ts[MAX_NAME];

			/* optional: unreadable, the VM just has no lines */
			l->cm_flags_size = rd_str(rd, ctx, entry_u64(e, t.off[5]), ts, sizeof(ts)) ? 0 :
					   !strcmp(ts, "u2") ? 2 : !strcmp(ts, "u4") ? 4 : 0;
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
	for (int i = 0; i < MAX_ENTRIES; i++) {
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
		} else if (!strcmp(type, "ConstMethod") && size <= 4096) {
			l->cm_sizeof = (uint32_t)size;
		} else if (!strcmp(type, "PcDesc") && size <= 256) {
			l->pd_size = (uint32_t)size;
		}
	}
	return heapblock && pool ? 0 : -ENOTSUP;
}

/* The has-line-number-table bit of ConstMethod's flags (int constants; 0: not there). */
static uint32_t read_lnt_flag(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias)
{
	static const int offs[] = { HS_INT_NAME, HS_INT_VALUE };
	uint8_t e[MAX_STRIDE];
	char name[MAX_NAME];
	struct table t;

	for (int k = HS_INTS; k < HS_NSYMS; k++)
		if (!s->addr[k])
			return 0;
	if (table_open(rd, ctx, s, bias, HS_INTS, HS_INT_STRIDE, offs, 2, &t))
		return 0;
	for (int i = 0; i < MAX_ENTRIES; i++) {
		uint64_t nm;
		int32_t v;

		if (rd(ctx, t.base + (uint64_t)i * t.stride, e, t.stride) ||
		    !(nm = entry_u64(e, t.off[0])) || rd_str(rd, ctx, nm, name, sizeof(name)))
			return 0;
		if (name_in("ConstMethod::_has_linenumber_table|"
			    "ConstMethodFlags::_misc_has_linenumber_table", name) < 0)
			continue;
		v = (int32_t)entry_u64(e, t.off[1]);
		return v > 0 && !(v & (v - 1)) ? (uint32_t)v : 0;	/* one bit */
	}
	return 0;
}

/* Whether the structs table had the field at offsetof(struct hs_layout, at). */
static bool had(const uint8_t *rank, size_t at)
{
	for (size_t i = 0; i < NWANTS; i++)
		if (wants[i].at == at)
			return rank[i] != 0;
	return false;
}

/* What the optional fields allow: lines, and which generation of scopes. */
static void optional_parts(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
			   const uint8_t *rank, struct hs_layout *l)
{
#define HAD(f) had(rank, offsetof(struct hs_layout, f))
	l->lnt_flag = read_lnt_flag(rd, ctx, s, bias);
	/* the streams' encoding depends on the version: no lines without it */
	l->has_lines = l->major && HAD(cm_flags) && HAD(cm_code_size) && HAD(cm_size_words) &&
		       l->cm_flags_size && l->cm_sizeof && l->lnt_flag;
	/* the compressed streams exclude the byte 0 from 20 on (UNSIGNED5) */
	l->stream_x = l->major >= 20 ? 1 : 0;
	if (!l->major || !HAD(pd_pc) || !HAD(pd_scope) || l->pd_size < 8)
		return;
	if (HAD(nm_pcs) && HAD(nm_pcs_end) && HAD(nm_sd_begin) && HAD(nm_metadata))
		l->scopes = HS_SCOPES_HEADER;
	else if (HAD(nm_pcs) && HAD(nm_immutable) && HAD(nm_immutable_size) &&
		 HAD(nm_sd_offset) && HAD(cb_mutable) && HAD(cb_mutable_size) && HAD(cb_reloc_size))
		l->scopes = HS_SCOPES_IMMUTABLE;
#undef HAD
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
	optional_parts(rd, ctx, s, bias, rank, ret);
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
	ret->blob_addr = blob;
	ret->code_lo = lo;
	if (ret->kind != HS_COMPILED && ret->kind != HS_NATIVE)
		return 0;
	if (rd_u32(rd, ctx, blob + l->nm_compile_id, (uint32_t *)&ret->compile_id) ||
	    rd_u64(rd, ctx, blob + l->nm_method, &method))
		return -EFAULT;
	ret->method_addr = method;
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
	ret->method_addr = method;
	snprintf(ret->blob, sizeof(ret->blob), "Interpreter");
	if (!method || rd_method(rd, ctx, l, method, ret)) {
		ret->klass[0] = ret->method[0] = ret->signature[0] = ret->file[0] = 0;
		return -EFAULT;
	}
	return 0;
}

/* ---- lines and scopes ------------------------------------------------------------- */

#define MAX_LINE_PAIRS 65536	/* a method's bytecodes are under 64 KiB */
#define MAX_PCDESCS (1u << 20)
#define MAX_SCOPE_CHAIN 1024	/* scopes of one pc, however they are kept */

/*
 * A compressed stream of the VM's (line number tables, debug information),
 * read through a small window, never past end.
 */
struct stream {
	hs_read_fn rd;
	void *ctx;
	uint64_t pos, end;
	uint64_t base;		/* of the window */
	uint32_t len;
	int x;			/* UNSIGNED5's excluded bytes */
	uint8_t buf[128];
};

static void stream_open(struct stream *st, hs_read_fn rd, void *ctx, const struct hs_layout *l,
			uint64_t pos, uint64_t end)
{
	st->rd = rd;
	st->ctx = ctx;
	st->pos = pos;
	st->end = end;
	st->base = st->len = 0;
	st->x = l->stream_x;
}

static int stream_byte(struct stream *st, uint8_t *b)
{
	if (st->pos >= st->end)
		return -EINVAL;
	if (st->pos < st->base || st->pos >= st->base + st->len) {
		uint64_t n = st->end - st->pos;

		st->len = n < sizeof(st->buf) ? (uint32_t)n : (uint32_t)sizeof(st->buf);
		st->base = st->pos;
		if (st->rd(st->ctx, st->base, st->buf, st->len)) {
			st->len = 0;
			return -EFAULT;
		}
	}
	*b = st->buf[st->pos++ - st->base];
	return 0;
}

/*
 * An unsigned int as HotSpot compresses it (UNSIGNED5): up to five bytes of
 * which all but the last are >= L; each adds its value minus x times 64^i.
 */
static int stream_uint(struct stream *st, uint32_t *v)
{
	const uint32_t l = 256 - 64 - (uint32_t)st->x;
	uint32_t sum = 0;
	uint8_t b;

	for (int i = 0, shift = 0; i < 5; i++, shift += 6) {
		if (stream_byte(st, &b) || b < st->x)
			return -EINVAL;
		sum += ((uint32_t)b - (uint32_t)st->x) << shift;
		if ((uint32_t)b - (uint32_t)st->x < l)
			break;
	}
	*v = sum;
	return 0;
}

static int stream_int(struct stream *st, int32_t *v)
{
	uint32_t u;

	if (stream_uint(st, &u))
		return -EINVAL;
	*v = (int32_t)u;
	return 0;
}

/* A signed int: the sign in the low bit (zigzag). */
static int stream_sint(struct stream *st, int32_t *v)
{
	uint32_t u;

	if (stream_uint(st, &u))
		return -EINVAL;
	*v = (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
	return 0;
}

/* A method's ConstMethod, its bytecodes' start and size, flags and end. */
struct const_method {
	uint64_t cm, code, end;
	uint16_t code_size;
	uint32_t flags;
};

static int rd_const_method(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
			   struct const_method *c)
{
	int32_t words;

	memset(c, 0, sizeof(*c));
	if (!l->has_lines || !method || rd_u64(rd, ctx, method + l->method_const, &c->cm) ||
	    !c->cm || rd_u16(rd, ctx, c->cm + l->cm_code_size, &c->code_size) ||
	    rd(ctx, c->cm + l->cm_flags, &c->flags, (size_t)l->cm_flags_size) ||
	    rd(ctx, c->cm + l->cm_size_words, &words, sizeof(words)))
		return -EFAULT;
	c->code = c->cm + l->cm_sizeof;
	c->end = c->cm + 8ull * (uint32_t)words;
	if (words <= 0 || c->end < c->code + c->code_size)
		return -EFAULT;	/* not a ConstMethod */
	return 0;
}

int hs_bci(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
	   uint32_t bcp_low)
{
	const uint64_t mask = (1ull << 30) - 1;
	struct const_method c;
	uint64_t bcp;

	if (!bcp_low || rd_const_method(rd, ctx, l, method, &c))
		return -1;
	bcp = (c.code & ~mask) | (bcp_low & mask);
	if (bcp < c.code)
		bcp += mask + 1;	/* the bytecodes straddle a 1 GiB boundary */
	return bcp < c.code + c.code_size ? (int)(bcp - c.code) : -1;
}

/*
 * The line of bci from the method's compressed line number table (right after
 * its bytecodes): pairs of (bci, line) deltas, one byte (5 bits of bci, 3 of
 * line) or 0xFF and two signed ints, ended by a 0. The line of bci itself, or
 * of the closest bci below it.
 */
int hs_line(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method, int bci)
{
	struct const_method c;
	struct stream st;
	int64_t at = 0, line = 0, best_at = 0, best = 0;	/* deltas from the target: no overflow */
	int32_t d1, d2;
	uint8_t b;

	if (rd_const_method(rd, ctx, l, method, &c) || !(c.flags & l->lnt_flag))
		return 0;
	if (bci < 0)
		bci = 0;	/* the method's entry */
	if (bci >= c.code_size)
		return 0;
	stream_open(&st, rd, ctx, l, c.code + c.code_size, c.end);
	for (int i = 0; i < MAX_LINE_PAIRS; i++) {
		if (stream_byte(&st, &b) || b == 0)
			break;
		if (b == 0xff) {
			if (stream_sint(&st, &d1) || stream_sint(&st, &d2))
				break;
			at += d1;
			line += d2;
		} else {
			at += b >> 3;
			line += b & 7;
		}
		if (at == bci)
			return line > 0 && line <= INT32_MAX ? (int)line : 0;
		if (at < bci && at >= best_at) {
			best_at = at;
			best = line;
		}
	}
	return best > 0 && best <= INT32_MAX ? (int)best : 0;
}

/* Where an nmethod's PcDescs, scopes and metadata are, by the VM's generation. */
struct nm_tables {
	uint64_t pcs, pcs_end, sd, sd_end, md, md_end;
};

static int nm_tables(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t nm,
		     struct nm_tables *t)
{
	int32_t pcs, end, md, sd, size, reloc;
	uint64_t imm, mut;

	if (l->scopes == HS_SCOPES_HEADER) {
		if (rd(ctx, nm + l->nm_pcs, &pcs, 4) || rd(ctx, nm + l->nm_pcs_end, &end, 4) ||
		    rd(ctx, nm + l->nm_metadata, &md, 4) || rd_u64(rd, ctx, nm + l->nm_sd_begin, &t->sd))
			return -EFAULT;
		t->pcs = nm + (uint32_t)pcs;
		t->pcs_end = nm + (uint32_t)end;
		t->sd_end = t->pcs;	/* the scopes, then the PcDescs */
		t->md = nm + (uint32_t)md;
		t->md_end = t->sd;	/* the metadata, then the scopes */
	} else if (l->scopes == HS_SCOPES_IMMUTABLE) {
		if (rd_u64(rd, ctx, nm + l->nm_immutable, &imm) ||
		    rd(ctx, nm + l->nm_immutable_size, &size, 4) || rd(ctx, nm + l->nm_pcs, &pcs, 4) ||
		    rd(ctx, nm + l->nm_sd_offset, &sd, 4) || rd_u64(rd, ctx, nm + l->cb_mutable, &mut) ||
		    rd(ctx, nm + l->cb_reloc_size, &reloc, 4) ||
		    rd(ctx, nm + l->cb_mutable_size, &end, 4))
			return -EFAULT;
		if (pcs < 0 || sd < pcs || size < sd || reloc < 0 || end < reloc)
			return -EINVAL;
		t->pcs = imm + (uint32_t)pcs;
		t->pcs_end = t->sd = imm + (uint32_t)sd;
		t->sd_end = imm + (uint32_t)size;
		t->md = mut + (uint32_t)reloc;	/* the relocations, then the metadata */
		t->md_end = mut + (uint32_t)end;
	} else {
		return -ENOTSUP;
	}
	if (t->pcs > t->pcs_end || t->sd > t->sd_end || t->md > t->md_end ||
	    (t->pcs_end - t->pcs) / l->pd_size > MAX_PCDESCS)
		return -EINVAL;
	return 0;
}

/* The scope decode offset of the first PcDesc at or after code offset off. */
static int pc_scope(hs_read_fn rd, void *ctx, const struct hs_layout *l,
		    const struct nm_tables *t, int64_t off, int32_t *scope)
{
	uint64_t lo = 0, hi = (t->pcs_end - t->pcs) / l->pd_size;
	int32_t at;

	while (lo < hi) {	/* sorted by pc offset */
		uint64_t mid = lo + (hi - lo) / 2;

		if (rd(ctx, t->pcs + mid * l->pd_size + l->pd_pc, &at, 4))
			return -EFAULT;
		if (at < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo * l->pd_size >= t->pcs_end - t->pcs)
		return -ENOENT;
	return rd(ctx, t->pcs + lo * l->pd_size + l->pd_scope, scope, 4) ? -EFAULT : 0;
}

/* One scope at decode offset at: its method and bci, and its caller's offset. */
static int scope_at(hs_read_fn rd, void *ctx, const struct hs_layout *l, const struct nm_tables *t,
		    int32_t at, struct hs_scope *sc, int32_t *sender)
{
	struct stream st;
	int32_t idx, bci;

	stream_open(&st, rd, ctx, l, t->sd + (uint32_t)at, t->sd_end);
	if (stream_int(&st, sender) || stream_int(&st, &idx) || stream_int(&st, &bci))
		return -EINVAL;
	/* the caller's is serialized before: offsets go down to 0, never round */
	if (idx <= 0 || (uint64_t)idx > (t->md_end - t->md) / 8 || *sender < 0 || *sender >= at ||
	    bci < 0 || bci > 65536)
		return -EINVAL;
	if (rd_u64(rd, ctx, t->md + 8ull * (uint32_t)(idx - 1), &sc->method))
		return -EFAULT;
	sc->bci = bci - 1;	/* stored + 1: InvocationEntryBci is -1 */
	return 0;
}

int hs_scopes(hs_read_fn rd, void *ctx, const struct hs_layout *l, const struct hs_frame *f,
	      uint64_t pc, struct hs_scope *ret, int max, int *cut)
{
	struct nm_tables t;
	int32_t at, sender;
	int n = 0, err;

	*cut = 0;
	if (f->kind != HS_COMPILED || !f->blob_addr || !f->method_addr || pc < f->code_lo || max < 2)
		return -EINVAL;
	if ((err = nm_tables(rd, ctx, l, f->blob_addr, &t)))
		return err;
	if ((err = pc_scope(rd, ctx, l, &t, (int64_t)(pc - f->code_lo), &at)))
		return err == -ENOENT ? 0 : err;
	/* innermost first; past max - 1, the middle ones are left out (counted) and
	 * the last slot keeps the outermost */
	for (int i = 0; at > 0; i++) {
		if (i == MAX_SCOPE_CHAIN)
			return -EINVAL;
		if (n == max) {
			n--;
			(*cut)++;
		}
		if ((err = scope_at(rd, ctx, l, &t, at, &ret[n], &sender)))
			return err;
		n++;
		at = sender;
	}
	if (n && ret[n - 1].method != f->method_addr)
		return -EINVAL;	/* the tables are not where we took them to be */
	return n;
}

void hs_frame_name(const struct hs_frame *f, char *buf, size_t len)
{
	if (f->method[0])
		snprintf(buf, len, "%s%s%s", f->klass, f->klass[0] ? "." : "", f->method);
	else
		snprintf(buf, len, "[jvm] %s", f->blob[0] ? f->blob : "code");
}

void hs_frame_signature(const struct hs_frame *f, char *buf, size_t len)
{
	if (f->method[0])
		snprintf(buf, len, "%s%s%s%s", f->klass, f->klass[0] ? "." : "", f->method,
			 f->signature);
	else
		hs_frame_name(f, buf, len);
}
