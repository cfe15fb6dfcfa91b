// SPDX-License-Identifier: Apache-2.0
#include "v8elf.h"

#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "elfutil.h"

#define SYMTAB_BUDGET (64u << 20)	/* bytes of one symbol table read */
#define MAX_CONSTS 4096			/* v8dbg_* symbols kept (V8 13 has ~500) */
#define VALUE_BUDGET 4096		/* bytes of one constant read */

enum need { OPTIONAL = 0, WALKER = 1, NAMES = 2 };

/* One constant: its name after "v8dbg_", and where it goes (a u16 or s16 of ret). */
struct want {
	const char *name;	/* a class field matches with any type suffix */
	size_t off;
	enum need need;
	bool is_signed;
};

#define P(f) offsetof(struct v8_elf, proc.f)
#define E(f) offsetof(struct v8_elf, f)

static const struct want wants[] = {
	{ "off_fp_context_or_frame_type", P(fp_marker), WALKER, true },
	{ "off_fp_function", P(fp_function), WALKER, true },
	{ "off_fp_bytecode_array", P(fp_bytecode_array), WALKER, true },
	{ "off_fp_bytecode_offset", P(fp_bytecode_offset), WALKER, true },
	{ "class_HeapObject__map", P(map), WALKER, false },
	{ "class_Map__instance_type", P(map_instance_type), WALKER, false },
	{ "class_JSFunction__shared", P(fn_shared), WALKER, false },
	{ "FirstJSFunctionType", P(first_fn_type), OPTIONAL, false },
	{ "LastJSFunctionType", P(last_fn_type), OPTIONAL, false },
	{ "type_BytecodeArray__BYTECODE_ARRAY_TYPE", P(bytecode_array_type), WALKER, false },
	{ "class_SharedFunctionInfo__name_or_scope_info", E(sfi_name_or_scope_info), NAMES, false },
	{ "class_SharedFunctionInfo__function_data", E(sfi_function_data), OPTIONAL, false },
	{ "class_Script__name", E(script_name), NAMES, false },
	{ "class_Script__source", E(script_source), OPTIONAL, false },
	{ "class_Script__line_ends", E(script_line_ends), OPTIONAL, false },
	{ "class_String__length", E(string_length), NAMES, false },
	{ "class_SeqOneByteString__chars", E(seq_one_chars), NAMES, false },
	{ "class_SeqTwoByteString__chars", E(seq_two_chars), NAMES, false },
	{ "class_ConsString__first", E(cons_first), OPTIONAL, false },
	{ "class_ConsString__second", E(cons_second), OPTIONAL, false },
	{ "class_ThinString__actual", E(thin_actual), OPTIONAL, false },
	{ "class_SlicedString__parent", E(sliced_parent), OPTIONAL, false },
	{ "class_SlicedString__offset", E(sliced_offset), OPTIONAL, false },
	{ "class_FixedArrayBase__length", E(fixed_array_length), NAMES, false },
	{ "class_FixedArray__data", E(fixed_array_data), NAMES, false },
	{ "class_BytecodeArray__data", E(bytecode_array_data), OPTIONAL, false },
	{ "FirstNonstringType", E(first_nonstring_type), NAMES, false },
	{ "StringRepresentationMask", E(string_repr_mask), NAMES, false },
	{ "StringEncodingMask", E(string_encoding_mask), NAMES, false },
	{ "OneByteStringTag", E(one_byte_tag), NAMES, false },
	{ "SeqStringTag", E(seq_tag), NAMES, false },
	{ "ConsStringTag", E(cons_tag), OPTIONAL, false },
	{ "ThinStringTag", E(thin_tag), OPTIONAL, false },
	{ "SlicedStringTag", E(sliced_tag), OPTIONAL, false },
	{ "ExternalStringTag", E(external_tag), OPTIONAL, false },
	{ "type_SharedFunctionInfo__SHARED_FUNCTION_INFO_TYPE", E(sfi_type), NAMES, false },
	{ "type_Script__SCRIPT_TYPE", E(script_type), NAMES, false },
	{ "type_ScopeInfo__SCOPE_INFO_TYPE", E(scope_info_type), OPTIONAL, false },
	{ "scopeinfo_idx_first_vars", E(scope_info_first_vars), OPTIONAL, false },
	{ "scopeinfo_idx_ncontextlocals", E(scope_info_ncontext_locals), OPTIONAL, false },
	{ "type_FixedArray__FIXED_ARRAY_TYPE", E(fixed_array_type), NAMES, false },
	{ "type_ByteArray__BYTE_ARRAY_TYPE", E(byte_array_type), OPTIONAL, false },
	{ "type_TrustedByteArray__TRUSTED_BYTE_ARRAY_TYPE", E(trusted_byte_array_type), OPTIONAL, false },
	{ "class_ExternalString__resource", E(external_resource), OPTIONAL, false },
	{ "type_BytecodeArray__BYTECODE_ARRAY_TYPE", E(bytecode_array_type), OPTIONAL, false },
	{ "type_Code__CODE_TYPE", E(code_type), OPTIONAL, false },
	{ "type_Map__MAP_TYPE", E(map_type), OPTIONAL, false },
	{ "type_InstructionStream__INSTRUCTION_STREAM_TYPE", E(istream_type), OPTIONAL, false },
	{ "class_InstructionStream__instruction_start", E(istream_start), OPTIONAL, false },
	{ "class_Code__instruction_start", E(code_start), OPTIONAL, false },
	{ "class_Code__instruction_size", E(code_size), OPTIONAL, false },
	{ "class_Code__flags", E(code_flags), OPTIONAL, false },
	{ "class_Code__deoptimization_data", E(code_deopt), OPTIONAL, false },
	{ "class_Code__source_position_table", E(code_positions), OPTIONAL, false },
	{ "CodeKindFieldMask", E(kind_mask), OPTIONAL, false },
	{ "CodeKindBaseline", E(kind_maglev), OPTIONAL, false },
	{ "DeoptimizationDataInlinedFunctionCountIndex", E(deopt_count), OPTIONAL, false },
	{ "DeoptimizationDataLiteralArrayIndex", E(deopt_literals), OPTIONAL, false },
	{ "DeoptimizationDataSharedFunctionInfoIndex", E(deopt_sfi), OPTIONAL, false },
	{ "DeoptimizationDataWrappedSharedFunctionInfoIndex", E(deopt_sfi), OPTIONAL, false },
	{ "DeoptimizationDataInliningPositionsIndex", E(deopt_inlining), OPTIONAL, false },
	{ "type_SharedFunctionInfoWrapper__SHARED_FUNCTION_INFO_WRAPPER_TYPE", E(sfi_wrapper_type), OPTIONAL, false },
	{ "class_SharedFunctionInfoWrapper__shared_info", E(sfi_wrapper_sfi), OPTIONAL, false },
};

/* The script of a function: its field's name changed over V8's versions. */
static const char *const script_fields[] = {
	"class_SharedFunctionInfo__script",		/* 12+ */
	"class_SharedFunctionInfo__raw_script",
	"class_SharedFunctionInfo__script_or_debug_info",	/* 9-11 */
};

static int store(struct v8_elf *ret, const struct want *w, int64_t v)
{
	if (w->is_signed ? v < INT16_MIN || v > INT16_MAX : v < 0 || v >= V8ELF_NONE)
		return -ERANGE;
	if (w->is_signed)
		*(int16_t *)((char *)ret + w->off) = (int16_t)v;
	else
		*(uint16_t *)((char *)ret + w->off) = (uint16_t)v;
	return 0;
}

/* A field not exported in some versions: the value verified on those. */
static void fact(uint16_t *field, uint16_t v)
{
	if (*field == V8ELF_NONE)
		*field = v;
}

/*
 * Optimized code's layout by generation: the fields of a Code and the indexes
 * of its DeoptimizationData the exports leave out (each verified on live
 * processes of Node 18, 20 and 24). Maglev's and TurboFan's kinds follow
 * baseline's (CodeKindBaseline is exported: the next two).
 */
static void code_facts(struct v8_elf *ret)
{
	uint16_t baseline = ret->kind_maglev;

	ret->istream_code = 8;
	if (ret->gen == V8GEN_10) {	/* instructions inside the Code, at code_start */
		ret->istream_type = V8ELF_NONE;
		fact(&ret->code_deopt, 16);
		fact(&ret->code_positions, 24);
	} else if (ret->gen == V8GEN_11) {
		ret->code_start = 40;	/* the exported one is the InstructionStream's */
		fact(&ret->code_size, 56);
		fact(&ret->code_flags, 48);
		fact(&ret->code_deopt, 16);
		fact(&ret->code_positions, 24);
	} else {
		fact(&ret->code_deopt, 8);
		fact(&ret->code_positions, 16);
	}
	fact(&ret->deopt_count, 1);
	fact(&ret->deopt_literals, 2);
	fact(&ret->deopt_sfi, 6);
	fact(&ret->deopt_inlining, 7);
	if (baseline == V8ELF_NONE || ret->code_type == V8ELF_NONE || ret->map_type == V8ELF_NONE ||
	    ret->code_start == V8ELF_NONE ||
	    ret->code_size == V8ELF_NONE || ret->code_flags == V8ELF_NONE ||
	    ret->kind_mask == V8ELF_NONE || (ret->gen != V8GEN_10 && ret->istream_type == V8ELF_NONE)) {
		ret->code_type = V8ELF_NONE;	/* optimized frames by their function alone */
		return;
	}
	ret->kind_maglev = (uint16_t)(baseline + 1);
	ret->kind_turbofan = (uint16_t)(baseline + 2);
}

/*
 * The generation of the layout, and what it fixes: the source position table
 * follows the BytecodeArray's wrapper (13), or is its fourth field (10-11).
 */
static void layout_gen(int (*value)(void *arg, const char *name, int64_t *v), void *arg,
		       struct v8_elf *ret)
{
	int64_t v;

	ret->gen = V8GEN_UNKNOWN;
	ret->bytecode_positions = V8ELF_NONE;
	if (!value(arg, "class_BytecodeArray__wrapper", &v) && v > 0 && v < 256) {
		ret->gen = V8GEN_13;
		ret->bytecode_positions = (uint16_t)(v + 8);
		ret->sfi_function_data = 8;	/* the trusted function data */
	} else if (ret->sfi_function_data != V8ELF_NONE) {
		ret->gen = ret->istream_type != V8ELF_NONE ? V8GEN_11 : V8GEN_10;
		ret->bytecode_positions = 32;
	}
	if (ret->gen == V8GEN_UNKNOWN)
		ret->code_type = V8ELF_NONE;
	else
		code_facts(ret);
}

int v8elf_from(int (*value)(void *arg, const char *name, int64_t *v), void *arg,
	       struct v8_elf *ret)
{
	bool walker = true, names = true;
	int64_t v, shift = 0, mask = 0;

	memset(ret, 0xff, sizeof(*ret));	/* V8ELF_NONE everywhere */
	memset(&ret->proc, 0, sizeof(ret->proc));
	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
		if (value(arg, wants[i].name, &v) || store(ret, &wants[i], v)) {
			walker &= wants[i].need != WALKER;
			names &= wants[i].need != NAMES;
		}
	}
	ret->sfi_script = V8ELF_NONE;
	for (size_t i = 0; i < sizeof(script_fields) / sizeof(script_fields[0]); i++) {
		if (!value(arg, script_fields[i], &v) && v > 0 && v < V8ELF_NONE) {
			ret->sfi_script = (uint16_t)v;
			break;
		}
	}
	/* a Smi's value: the word shifted right by the tag and the shift (32 on x86_64
	 * without pointer compression, which Node does not enable) */
	if (value(arg, "SmiShiftSize", &shift) || value(arg, "SmiTagMask", &mask) || mask != 1 ||
	    shift < 0 || shift > 62)
		walker = false;
	ret->proc.smi_shift = (uint8_t)(shift + 1);
	/* the interpreter's registers, by their x86_64 codes: r9 and r12 since V8 8 */
	ret->proc.leaf_regs = !value(arg, "InterpreterBytecodeOffsetRegister", &v) && v == 9 &&
			      !value(arg, "InterpreterBytecodeArrayRegister", &v) && v == 12;
	if (!value(arg, "TaggedSize", &v) && v != 8)
		walker = false;	/* pointer compression: tagged fields are 4 bytes */
	/* the JSFunction types: a range from V8 10, one type before */
	if (ret->proc.first_fn_type == 0 || ret->proc.last_fn_type < ret->proc.first_fn_type) {
		/* JS_FUNCTION_TYPE is the first of 16 in V8 10-11 (constructors: typed arrays,
		 * Array, Promise, RegExp, classes, verified); the walker checks the shared
		 * field's type too */
		if (value(arg, "type_JSFunction__JS_FUNCTION_TYPE", &v) || v <= 0 || v >= V8ELF_NONE - 15) {
			walker = false;
		} else {
			ret->proc.first_fn_type = (uint16_t)v;
			ret->proc.last_fn_type = (uint16_t)(v + 15);
		}
	}
	names &= ret->sfi_script != V8ELF_NONE;
	ret->proc.sfi_type = ret->sfi_type;
	if (ret->sfi_type == V8ELF_NONE)
		walker = false;
	if (!walker)
		return -ENOTSUP;
	layout_gen(value, arg, ret);
	if (!names) {	/* frames walked, names not read: none */
		ret->sfi_name_or_scope_info = V8ELF_NONE;
		ret->sfi_script = V8ELF_NONE;
	}
	return 0;
}

struct consts {
	struct { char *name; int64_t v; } *c;
	size_t n;
};

struct collecting {
	Elf *elf;
	int fd;
	struct consts *cs;
};

static int cmp_const(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name exactly, else a class field with a type after its name ("name__Type") */
static int const_value(void *arg, const char *name, int64_t *v)
{
	const struct consts *cs = arg;
	size_t lo = 0, hi = cs->n, len = strlen(name);

	while (lo < hi) {	/* the first >= name */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(cs->c[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < cs->n && !strncmp(cs->c[lo].name, name, len); lo++) {
		if (cs->c[lo].name[len] == '\0' || !strncmp(cs->c[lo].name + len, "__", 2)) {
			*v = cs->c[lo].v;
			return 0;
		}
	}
	return -ENOENT;
}

/* One v8dbg_ symbol's value: an int of its size (1, 2, 4 or 8 bytes), signed. */
static int read_const(Elf *elf, int fd, const GElf_Sym *sym, int64_t *v)
{
	union { int8_t i8; int16_t i16; int32_t i32; int64_t i64; } u;

	if (sym->st_size != 1 && sym->st_size != 2 && sym->st_size != 4 && sym->st_size != 8)
		return -EINVAL;
	if (elfutil_read_vaddr(elf, fd, VALUE_BUDGET, sym->st_value, &u, sym->st_size))
		return -EIO;
	*v = sym->st_size == 1 ? u.i8 : sym->st_size == 2 ? u.i16 : sym->st_size == 4 ? u.i32 : u.i64;
	return 0;
}

/* A v8dbg_ symbol's value, kept (the others are skipped). */
static int keep_const(void *arg, const char *name, const GElf_Sym *sym)
{
	struct collecting *c = arg;
	int64_t v;

	if (strncmp(name, "v8dbg_", 6) || sym->st_shndx == SHN_UNDEF || c->cs->n == MAX_CONSTS ||
	    read_const(c->elf, c->fd, sym, &v))
		return 0;
	c->cs->c[c->cs->n].name = strdup(name + 6);
	if (!c->cs->c[c->cs->n].name)
		return -ENOMEM;
	c->cs->c[c->cs->n++].v = v;
	return 0;
}

static int collect(Elf *elf, int fd, Elf64_Word type, struct consts *cs)
{
	struct collecting c = { elf, fd, cs };

	return elfutil_each_sym(elf, fd, type, SYMTAB_BUDGET, keep_const, &c);
}

int v8elf_read(Elf *elf, int fd, struct v8_elf *ret)
{
	struct consts cs = { .c = calloc(MAX_CONSTS, sizeof(*cs.c)) };
	int err;

	if (!cs.c)
		return -ENOMEM;
	err = collect(elf, fd, SHT_DYNSYM, &cs);
	if (!err && !cs.n)
		err = collect(elf, fd, SHT_SYMTAB, &cs);
	if (!err && !cs.n)
		err = -ENOENT;
	if (!err) {
		qsort(cs.c, cs.n, sizeof(*cs.c), cmp_const);
		err = v8elf_from(const_value, &cs, ret);
	}
	for (size_t i = 0; i < cs.n; i++)
		free(cs.c[i].name);
	free(cs.c);
	return err == -ENOENT || err == -ENOTSUP || err == -ENOMEM ? err : err ? -EINVAL : 0;
}
