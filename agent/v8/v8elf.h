/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_V8ELF_H
#define AGENT_V8ELF_H

/*
 * V8 found in an ELF file (a node executable with V8 built in, or Debian's
 * libnode.so): the layout of its frames and heap objects, from the v8dbg_*
 * constants V8 exports for debuggers (postmortem metadata). Field names carry
 * their type in newer V8 ("v8dbg_class_Script__name__Tagged_Object_", earlier
 * "__Object"): a field is found by its class and name whatever the type says.
 */

#include <libelf.h>
#include <stdint.h>

#include "oncpu.h"

#define V8ELF_NONE 0xffff	/* a field this V8 does not export */

/*
 * What the v8dbg constants do not say, by the generation of V8's layout (each
 * verified on live processes): where a BytecodeArray's source position table
 * is, how a ScopeInfo's header reads, where a function's positions are.
 */
enum v8_gen {
	V8GEN_UNKNOWN = 0,	/* frames walked and named where a name is a String; no lines */
	V8GEN_10 = 1,		/* V8 10 (Node 18): SharedFunctionInfo::function_data exported,
				   a Code holds its instructions */
	V8GEN_11 = 2,		/* V8 11 (Node 20): also InstructionStream exported */
	V8GEN_13 = 3,		/* V8 13 (Node 24): BytecodeArray::wrapper exported */
};

/* Offsets are from an object's untagged address. */
struct v8_elf {
	enum v8_gen gen;
	struct v8_proc proc;	/* what the BPF walker reads */
	uint16_t sfi_name_or_scope_info;	/* SharedFunctionInfo: a String, or a ScopeInfo */
	uint16_t sfi_script;	/* the Script (or a DebugInfo holding it, in older V8) */
	uint16_t sfi_function_data;	/* the BytecodeArray, or V8ELF_NONE */
	uint16_t script_name, script_source, script_line_ends;
	uint16_t string_length;	/* an int32 */
	uint16_t seq_one_chars, seq_two_chars;
	uint16_t cons_first, cons_second, thin_actual, sliced_parent, sliced_offset;
	uint16_t fixed_array_length, fixed_array_data;
	uint16_t bytecode_array_data;	/* where the bytecodes start */
	uint16_t first_nonstring_type;
	uint16_t string_repr_mask, string_encoding_mask, one_byte_tag;
	uint16_t seq_tag, cons_tag, thin_tag, sliced_tag, external_tag;
	uint16_t sfi_type, script_type, scope_info_type;
	uint16_t scope_info_first_vars;	/* v8dbg_scopeinfo_idx_first_vars */
	uint16_t scope_info_ncontext_locals;	/* v8dbg_scopeinfo_idx_ncontextlocals */
	uint16_t fixed_array_type, byte_array_type, trusted_byte_array_type;
	uint16_t external_resource;	/* ExternalString::resource (its data: the resource's next word) */
	uint16_t bytecode_positions;	/* BytecodeArray::source_position_table (derived, by gen) */
	uint16_t bytecode_array_type;
	/* optimized code (TurboFan, Maglev): from a pc to its Code, and its inlining */
	uint16_t map_type, code_type, istream_type;	/* istream_type: V8ELF_NONE before V8 11 */
	uint16_t istream_start;	/* InstructionStream: where its instructions start */
	uint16_t istream_code;	/* InstructionStream: its Code (a back pointer) */
	uint16_t code_start;	/* Code: its instructions (V8 10: inline, at this offset; else a field) */
	uint16_t code_size, code_flags, code_deopt, code_positions;
	uint16_t kind_mask, kind_maglev, kind_turbofan;
	uint16_t deopt_count, deopt_literals, deopt_sfi, deopt_inlining;	/* DeoptimizationData indexes */
	uint16_t sfi_wrapper_type, sfi_wrapper_sfi;	/* V8 13: the outer function's wrapper */
};

/*
 * Whether the file holds V8: 0, -ENOENT (no v8dbg constants), -ENOTSUP (some
 * the walker needs are missing: a build we cannot read), or another -errno.
 */
int v8elf_read(Elf *elf, int fd, struct v8_elf *ret);

/*
 * Fills ret from constants by name (tests: a table instead of a file); value()
 * returns 0 and sets *v, or -ENOENT. The same rules as v8elf_read.
 */
int v8elf_from(int (*value)(void *arg, const char *prefix, int64_t *v), void *arg,
	       struct v8_elf *ret);

#endif
