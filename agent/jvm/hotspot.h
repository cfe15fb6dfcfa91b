/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_HOTSPOT_H
#define AGENT_HOTSPOT_H

/*
 * A HotSpot JVM read from the outside (docs/design/jvm.md): the layout of its
 * structures from the tables the VM exports for debuggers (gHotSpotVMStructs,
 * gHotSpotVMTypes: field offsets, static addresses, type sizes, by name, with
 * the names of JDK 17 to 25), never from per-version constants; its code cache
 * (the heaps, their segment maps); and what a code address is: the blob that
 * holds it (an nmethod, the interpreter, a stub) and, for compiled code, the
 * Java method (class, name, signature, source file).
 *
 * Pure: every read of the VM's memory goes through a hs_read_fn (the target
 * process's memory in the agent, an image in the tests). Nothing here caches or
 * locks; jvmsym.h does, per process.
 */

#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

/* Reads len bytes at addr of the VM's memory into buf: 0, or -EFAULT. */
typedef int (*hs_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/* The exported symbols the tables are found by (libjvm.so's .dynsym), file vaddrs. */
enum hs_sym {
	HS_STRUCTS,		/* gHotSpotVMStructs: a pointer to the entries */
	HS_STRUCT_STRIDE,	/* gHotSpotVMStructEntryArrayStride, ...: ints (uint64_t) */
	HS_STRUCT_TYPE,		/* ...EntryTypeNameOffset */
	HS_STRUCT_FIELD,	/* ...EntryFieldNameOffset */
	HS_STRUCT_TYPESTR,	/* ...EntryTypeStringOffset */
	HS_STRUCT_STATIC,	/* ...EntryIsStaticOffset */
	HS_STRUCT_OFFSET,	/* ...EntryOffsetOffset */
	HS_STRUCT_ADDRESS,	/* ...EntryAddressOffset */
	HS_TYPES,		/* gHotSpotVMTypes */
	HS_TYPE_STRIDE,
	HS_TYPE_NAME,
	HS_TYPE_SIZE,
	HS_NREQUIRED,		/* the rest may be missing: what they give is left out */
	HS_INTS = HS_NREQUIRED,	/* gHotSpotVMIntConstants: name, int value */
	HS_INT_STRIDE,
	HS_INT_NAME,
	HS_INT_VALUE,
	HS_NSYMS
};

struct hs_syms {
	uint64_t addr[HS_NSYMS];	/* file vaddrs; 0: not found */
};

/* The gHotSpot* symbols of a libjvm.so: 0, or -ENOENT (not a HotSpot VM), -EINVAL. */
int hs_elf_syms(Elf *elf, int fd, struct hs_syms *ret);

#define HS_MAX_HEAPS 8

/* What the symbolizer reads of one VM: offsets and sizes in bytes. */
struct hs_layout {
	int major;			/* the JDK's feature version; 0 when unknown */
	uint64_t heaps;			/* &CodeCache::_heaps (a GrowableArray<CodeHeap*> *) */
	uint64_t low_bound, high_bound;	/* &CodeCache::_low_bound, &_high_bound */
	uint32_t heap_memory, heap_segmap, heap_log2_seg;	/* CodeHeap */
	uint32_t vs_low, vs_high;	/* VirtualSpace::_low_boundary, _high_boundary */
	uint32_t ga_len, ga_data;	/* GrowableArrayBase::_len, GrowableArray<int>::_data */
	uint32_t heapblock_size;	/* sizeof(HeapBlock): a blob starts after its header */
	uint32_t hb_used;		/* HeapBlock::Header::_used (a bool), from the block */
	int hb_has_used;		/* the VM exports it (a freed block keeps its segment map) */
	uint32_t cb_name, cb_code_begin, cb_code_end;	/* CodeBlob */
	uint32_t cb_frame_size;		/* CodeBlob::_frame_size: an int, in words */
	uint32_t cb_frame_complete;	/* CodeBlob::_frame_complete_offset */
	int cb_frame_complete_size;	/* its width in bytes: 4 (int), 2 (int16_t, 25+) */
	int cb_code_offsets;		/* 1: _code_offset/_data_offset (ints from the blob, 23+) */
	int cb_end_offset;		/* the end was found as _data_offset: must agree with the above */
	uint32_t nm_method, nm_compile_id;	/* nmethod (CompiledMethod before 23) */
	uint32_t method_const;		/* Method::_constMethod */
	uint32_t cm_constants, cm_name, cm_signature;	/* ConstMethod: the pool, u2 indexes */
	uint32_t cp_holder, cp_source, cp_size;	/* ConstantPool: _pool_holder, u2 index, sizeof */
	uint32_t cp_length;		/* ConstantPool::_length: an index must be below it */
	int cp_has_length;
	int cp_has_source;		/* _source_file_name_index is in the pool (15+) */
	uint32_t klass_name;		/* Klass::_name */
	uint32_t sym_length, sym_body;	/* Symbol: u2 length, the bytes */

	/* bytecode index -> line (has_lines 0: the VM lacks a field, frames have no line) */
	int has_lines;
	uint32_t cm_flags, cm_code_size;	/* ConstMethod::_flags(._flags), _code_size (u2) */
	int cm_flags_size;		/* 2 (u2, before 21) or 4 (ConstMethodFlags) */
	uint32_t cm_size_words;		/* ConstMethod::_constMethod_size: an int, in words */
	uint32_t cm_sizeof;		/* sizeof(ConstMethod): the bytecodes follow it */
	uint32_t lnt_flag;		/* the has-line-number-table bit of _flags */
	int stream_x;			/* the compressed streams' excluded bytes: 0 before 20, 1 */

	/* the scopes of compiled code (inlined methods) */
	enum { HS_SCOPES_NONE, HS_SCOPES_HEADER, HS_SCOPES_IMMUTABLE } scopes;
	uint32_t nm_pcs, nm_pcs_end;	/* nmethod::_scopes_pcs_offset, _dependencies_offset */
	uint32_t nm_sd_begin;		/* CompiledMethod::_scopes_data_begin (a pointer, < 23) */
	uint32_t nm_metadata;		/* nmethod::_metadata_offset (from the blob, < 23) */
	uint32_t nm_immutable, nm_immutable_size;	/* nmethod::_immutable_data, its size (24+) */
	uint32_t nm_sd_offset;		/* nmethod::_scopes_data_offset (from _immutable_data) */
	uint32_t cb_mutable, cb_mutable_size, cb_reloc_size;	/* CodeBlob (25+: metadata) */
	uint32_t pd_pc, pd_scope, pd_size;	/* PcDesc::_pc_offset, _scope_decode_offset, size */
};

/*
 * The layout of the VM whose libjvm.so is loaded at bias (process address of
 * file vaddr 0), from its tables. 0; -EAGAIN: the tables are not filled in yet
 * (a VM starting: try again later); -ENOTSUP: an entry the symbolizer needs is
 * missing (an unknown build); -EFAULT: unreadable; -EINVAL: tables out of bounds.
 */
int hs_layout_read(hs_read_fn rd, void *ctx, const struct hs_syms *s, uint64_t bias,
		   struct hs_layout *ret);

/* The code cache's heaps of one VM (their reserved ranges do not move). */
struct hs_heaps {
	int n;
	struct {
		uint64_t lo, hi;	/* reserved [lo, hi) */
		uint64_t segmap;	/* one byte per segment */
		int shift;		/* log2 of the segment size */
	} h[HS_MAX_HEAPS];
	uint64_t low, high;		/* CodeCache::_low_bound, _high_bound */
};

/* 0; -EAGAIN: no code cache yet (a VM starting); -EFAULT; -EINVAL: out of bounds. */
int hs_heaps_read(hs_read_fn rd, void *ctx, const struct hs_layout *l, struct hs_heaps *ret);

enum hs_kind {
	HS_STUB,		/* any other blob: adapters, runtime stubs, the call stub */
	HS_INTERPRETER,		/* the template interpreter's code */
	HS_COMPILED,		/* an nmethod: C1 or C2 code of a Java method */
	HS_NATIVE,		/* a native method's wrapper (an nmethod too) */
};

struct hs_frame {
	enum hs_kind kind;
	char blob[64];		/* the blob's name ("nmethod", "Interpreter", "StubRoutines (1)") */
	/* HS_COMPILED, HS_NATIVE: the method; empty when it could not be read */
	char klass[256];	/* "java.util.HashMap" */
	char method[128];	/* "get" */
	char signature[256];	/* "(Ljava/lang/Object;)Ljava/lang/Object;" */
	char file[128];		/* "HashMap.java"; empty when the class has none */
	int compile_id;
	uint64_t blob_addr;	/* the blob; 0 for an interpreted frame */
	uint64_t method_addr;	/* the Method*; 0 when none */
	uint64_t code_lo;	/* the blob's code begins: PcDesc offsets are from here */
};

#define HS_MAX_SCOPES 16

/* One Java frame of compiled code: a method and where in it (bci -1: its entry). */
struct hs_scope {
	uint64_t method;
	int bci;
};

/*
 * The Java frames at pc of the compiled method f (hs_frame_of's): those of the
 * first PcDesc at or after pc (a return address has its own; another pc gets
 * the next call's or safepoint's), innermost (inlined) first, f's own method
 * last; their count (0: no debug information there). More than max (>= 2): the
 * innermost max - 1 and the outermost, *cut the rest. -ENOTSUP: the VM's tables
 * lack what this needs; -EFAULT: unreadable (freed under us); -EINVAL: the
 * scopes do not hold together (the outermost is not f's method, an index out of
 * its table, a loop).
 */
int hs_scopes(hs_read_fn rd, void *ctx, const struct hs_layout *l, const struct hs_frame *f,
	      uint64_t pc, struct hs_scope *ret, int max, int *cut);

/*
 * The bytecode index of an interpreted frame's bytecode pointer, of which the
 * walker kept the low 30 bits (a method's bytecodes are under 64 KiB): the bci,
 * or -1 when bcp_low is not in method's bytecodes.
 */
int hs_bci(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
	   uint32_t bcp_low);

/* The source line of bytecode index bci of method (-1: its entry): > 0, or 0 unknown. */
int hs_line(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method, int bci);

/*
 * What the code address pc is in: -ENOENT when it is in no heap or in free
 * space, -EFAULT when the blob cannot be read or is not one (the VM freed it
 * under us), 0 with ret filled.
 */
int hs_frame_of(hs_read_fn rd, void *ctx, const struct hs_layout *l, const struct hs_heaps *h,
		uint64_t pc, struct hs_frame *ret);

/*
 * An interpreted frame's method (a Method*, as the walker read it from the
 * frame): ret's class, method, signature and file, kind HS_INTERPRETER. 0, or
 * -EFAULT (not readable: not a method, or one unloaded since).
 */
int hs_method(hs_read_fn rd, void *ctx, const struct hs_layout *l, uint64_t method,
	      struct hs_frame *ret);

/* "klass.method" of f for a profile's function name (cut to fit len > 0). */
void hs_frame_name(const struct hs_frame *f, char *buf, size_t len);
/* "klass.method(signature)": the name with its signature (overloads apart). */
void hs_frame_signature(const struct hs_frame *f, char *buf, size_t len);

#endif
