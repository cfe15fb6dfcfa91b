// SPDX-License-Identifier: Apache-2.0
/*
 * The V8 reader (agent/v8/v8elf.c, v8sym.c) against heaps built here, in this
 * process's own memory (v8sym reads it with process_vm_readv, as it reads a
 * Node process's): functions named by a ScopeInfo (V8 13's raw flags and fixed
 * positions, V8 10-11's Smi flags and positions after the names) or by a
 * String, names inferred, anonymous functions, scripts named by cons, thin and
 * two-byte strings, lines from a source position table (the bytes of a real
 * one, V8 13's) and from the source's newlines; and heaps broken the ways a
 * live one can be: not a function, a table that never ends, a cons string
 * that contains itself, a ScopeInfo claiming a million locals.
 * The live Node processes are tests/system/node.sh's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "oncpu.h"
#include "v8code.h"
#include "v8elf.h"
#include "v8sym.h"

struct konst {
	const char *name;
	int64_t v;
};

/* Node 24's (V8 13.6) constants, as its libnode.so exports them (a subset). */
static const struct konst v8_13[] = {
	{ "off_fp_context_or_frame_type", -8 },
	{ "off_fp_function", -16 },
	{ "off_fp_bytecode_array", -32 },
	{ "off_fp_bytecode_offset", -40 },
	{ "class_HeapObject__map__Map", 0 },
	{ "class_Map__instance_type__uint16_t", 12 },
	{ "class_JSFunction__shared__SharedFunctionInfo", 32 },
	{ "FirstJSFunctionType", 2065 },
	{ "LastJSFunctionType", 2081 },
	{ "type_BytecodeArray__BYTECODE_ARRAY_TYPE", 186 },
	{ "class_SharedFunctionInfo__name_or_scope_info__Tagged_NameOrScopeInfoT_", 24 },
	{ "class_SharedFunctionInfo__raw_script__Tagged_Object_", 40 },
	{ "class_SharedFunctionInfo__script__Tagged_HeapObject_", 40 },
	{ "class_Script__name__Object", 16 },
	{ "class_Script__source__Object", 8 },
	{ "class_Script__line_ends__Object", 56 },
	{ "class_String__length__int32_t", 12 },
	{ "class_SeqOneByteString__chars__char", 16 },
	{ "class_SeqTwoByteString__chars__char", 16 },
	{ "class_ConsString__first__String", 16 },
	{ "class_ConsString__second__String", 24 },
	{ "class_ThinString__actual__String", 16 },
	{ "class_SlicedString__parent__String", 16 },
	{ "class_SlicedString__offset__SMI", 24 },
	{ "class_FixedArrayBase__length__SMI", 8 },
	{ "class_FixedArray__data__uintptr_t", 16 },
	{ "class_BytecodeArray__data__uintptr_t", 64 },
	{ "class_BytecodeArray__wrapper__Tagged_BytecodeWrapper_", 16 },
	{ "class_ExternalString__resource__Object", 16 },
	{ "FirstNonstringType", 128 },
	{ "StringRepresentationMask", 7 },
	{ "StringEncodingMask", 8 },
	{ "OneByteStringTag", 8 },
	{ "SeqStringTag", 0 },
	{ "ConsStringTag", 1 },
	{ "ExternalStringTag", 2 },
	{ "SlicedStringTag", 3 },
	{ "ThinStringTag", 5 },
	{ "type_SharedFunctionInfo__SHARED_FUNCTION_INFO_TYPE", 282 },
	{ "type_Script__SCRIPT_TYPE", 167 },
	{ "type_ScopeInfo__SCOPE_INFO_TYPE", 280 },
	{ "type_FixedArray__FIXED_ARRAY_TYPE", 205 },
	{ "type_ByteArray__BYTE_ARRAY_TYPE", 217 },
	{ "type_TrustedByteArray__TRUSTED_BYTE_ARRAY_TYPE", 196 },
	{ "scopeinfo_idx_first_vars", 5 },
	{ "scopeinfo_idx_ncontextlocals", 2 },
	{ "SmiShiftSize", 31 },
	{ "SmiTagMask", 1 },
	{ "TaggedSize", 8 },
	{ "type_Code__CODE_TYPE", 187 },
	{ "type_Map__MAP_TYPE", 272 },
	{ "type_InstructionStream__INSTRUCTION_STREAM_TYPE", 192 },
	{ "class_InstructionStream__instruction_start__uintptr_t", 32 },
	{ "class_Code__instruction_start__Address", 40 },
	{ "class_Code__instruction_size__int", 56 },
	{ "class_Code__flags__uint32_t", 52 },
	{ "CodeKindFieldMask", 15 },
	{ "CodeKindBaseline", 10 },
	{ "DeoptimizationDataInlinedFunctionCountIndex", 1 },
	{ "DeoptimizationDataLiteralArrayIndex", 3 },
	{ "DeoptimizationDataWrappedSharedFunctionInfoIndex", 7 },
	{ "DeoptimizationDataInliningPositionsIndex", 8 },
	{ "type_SharedFunctionInfoWrapper__SHARED_FUNCTION_INFO_WRAPPER_TYPE", 195 },
	{ "class_SharedFunctionInfoWrapper__shared_info__Tagged_SharedFunctionInfo_", 8 },
	{ NULL, 0 },
};

/* Node 20's (V8 11.3): what differs. */
static const struct konst v8_11_changes[] = {
	{ "class_JSFunction__shared__SharedFunctionInfo", 24 },
	{ "class_SharedFunctionInfo__name_or_scope_info__Object", 16 },
	{ "class_SharedFunctionInfo__script_or_debug_info__HeapObject", 32 },
	{ "class_SharedFunctionInfo__function_data__Object", 8 },
	{ "class_BytecodeArray__data__uintptr_t", 54 },
	{ "type_JSFunction__JS_FUNCTION_TYPE", 2066 },
	{ "scopeinfo_idx_first_vars", 3 },
	{ NULL, 0 },
};

struct consts {
	const struct konst *base, *changes;
	const char *drop;	/* one constant left out */
	int64_t tagged;		/* TaggedSize, when not 0 */
};

static const struct konst *find(const struct konst *k, const char *name)
{
	size_t n = strlen(name);

	for (; k && k->name; k++)
		if (!strcmp(k->name, name) || (!strncmp(k->name, name, n) && !strncmp(k->name + n, "__", 2)))
			return k;
	return NULL;
}

static int konst_value(void *arg, const char *name, int64_t *v)
{
	const struct consts *c = arg;
	const struct konst *k;

	if (c->drop && !strncmp(name, c->drop, strlen(c->drop)))
		return -ENOENT;
	if (c->tagged && !strcmp(name, "TaggedSize")) {
		*v = c->tagged;
		return 0;
	}
	if (c->changes && !strcmp(name, "FirstJSFunctionType"))
		return -ENOENT;	/* not exported before V8 12 */
	if (c->changes && !strncmp(name, "class_BytecodeArray__wrapper", 28))
		return -ENOENT;
	if (c->changes && !strncmp(name, "class_SharedFunctionInfo__script", 33) &&
	    strcmp(name, "class_SharedFunctionInfo__script_or_debug_info"))
		return -ENOENT;
	if (c->changes && !strcmp(name, "class_SharedFunctionInfo__raw_script"))
		return -ENOENT;
	k = find(c->changes, name);
	if (!k)
		k = find(c->base, name);
	if (!k)
		return -ENOENT;
	*v = k->v;
	return 0;
}

static void layout(struct v8_elf *l, const struct konst *changes)
{
	struct consts c = { .base = v8_13, .changes = changes };

	assert_int_equal(v8elf_from(konst_value, &c, l), 0);
}

/* ---- a heap in this process's memory ------------------------------------ */

#define HEAP (1u << 20)

struct heap {
	uint8_t *mem;
	size_t next;
	const struct v8_elf *l;
	uint64_t maps[512];	/* instance type -> its map (tagged), made on first use */
};

static uint64_t h_alloc(struct heap *h, size_t n)
{
	uint64_t a = (uint64_t)(uintptr_t)(h->mem + h->next);

	h->next = (h->next + n + 15) & ~(size_t)15;
	assert_true(h->next <= HEAP);
	return a + 1;	/* tagged */
}

static void set64(uint64_t obj, size_t off, uint64_t v)
{
	memcpy((void *)(uintptr_t)(obj - 1 + off), &v, 8);
}

static uint64_t smi_of(int64_t v)
{
	return (uint64_t)v << 32;
}

static uint64_t map_of(struct heap *h, int type)
{
	if (!h->maps[type]) {
		uint16_t t = (uint16_t)type;

		h->maps[type] = h_alloc(h, 32);
		memcpy((void *)(uintptr_t)(h->maps[type] - 1 + 12), &t, 2);
	}
	return h->maps[type];
}

static uint64_t object(struct heap *h, int type, size_t size)
{
	uint64_t o = h_alloc(h, size);

	memset((void *)(uintptr_t)(o - 1), 0, size);
	set64(o, 0, map_of(h, type));
	return o;
}

static uint64_t one_byte(struct heap *h, const char *s)
{
	int32_t n = (int32_t)strlen(s);
	uint64_t o = object(h, 8 | 0x20, 16 + (size_t)n + 8);	/* seq, one-byte, not internalized */

	memcpy((void *)(uintptr_t)(o - 1 + 12), &n, 4);
	memcpy((void *)(uintptr_t)(o - 1 + 16), s, (size_t)n);
	return o;
}

static uint64_t two_byte(struct heap *h, const uint16_t *s, int32_t n)
{
	uint64_t o = object(h, 0x20, 16 + 2 * (size_t)n + 8);

	memcpy((void *)(uintptr_t)(o - 1 + 12), &n, 4);
	memcpy((void *)(uintptr_t)(o - 1 + 16), s, 2 * (size_t)n);
	return o;
}

static uint64_t cons(struct heap *h, uint64_t a, uint64_t b, int32_t n)
{
	uint64_t o = object(h, 1 | 8, 32);

	memcpy((void *)(uintptr_t)(o - 1 + 12), &n, 4);
	set64(o, 16, a);
	set64(o, 24, b);
	return o;
}

static uint64_t thin(struct heap *h, uint64_t actual, int32_t n)
{
	uint64_t o = object(h, 5, 24);	/* its own encoding bit says two-byte: the target's wins */

	memcpy((void *)(uintptr_t)(o - 1 + 12), &n, 4);
	set64(o, 16, actual);
	return o;
}

static uint64_t script(struct heap *h, uint64_t name, uint64_t source)
{
	uint64_t o = object(h, h->l->script_type, 80);

	set64(o, h->l->script_name, name);
	set64(o, h->l->script_source, source);
	set64(o, h->l->script_line_ends, 0);	/* not computed (13: Smi 0) */
	return o;
}

static uint64_t byte_array(struct heap *h, int type, const uint8_t *b, size_t n)
{
	uint64_t o = object(h, type, 16 + n + 8);

	set64(o, 8, smi_of((int64_t)n));
	memcpy((void *)(uintptr_t)(o - 1 + 16), b, n);
	return o;
}

/* A ScopeInfo of V8 13 (raw flags, positions in slots 3 and 4) or 10-11 (Smi flags,
 * positions after the names): name and inferred name (0: none), nlocals locals. */
static uint64_t scope_info(struct heap *h, uint64_t name, uint64_t inferred, int64_t nlocals,
			   int64_t start)
{
	bool v13 = h->l->gen == V8GEN_13;
	uint32_t flags = (v13 ? 4 : 2) | (name ? 1u << 12 : 0) | (inferred ? 1u << 14 : 0);
	int64_t i = v13 ? 5 : 3, n = nlocals < 75 ? nlocals : 1;
	uint64_t o = object(h, h->l->scope_info_type, 8 + 8 * (size_t)(i + n + nlocals + 8));

	set64(o, 8, v13 ? flags : smi_of(flags));
	set64(o, 8 + 8 * 2, smi_of(nlocals));
	if (v13) {
		set64(o, 8 + 8 * 3, smi_of(start));
		set64(o, 8 + 8 * 4, smi_of(start + 100));
	}
	for (int64_t k = 0; k < n; k++)
		set64(o, 8 + 8 * (size_t)(i + k), one_byte(h, "local"));
	i += n + nlocals;
	if (name) {
		set64(o, 8 + 8 * (size_t)i, name);
		i += 2;
	}
	if (inferred)
		set64(o, 8 + 8 * (size_t)i++, inferred);
	if (!v13)
		set64(o, 8 + 8 * (size_t)i, smi_of(start));
	return o;
}

/* A SharedFunctionInfo: named by nsi (a String or ScopeInfo), in script sc, its bytecode ba. */
static uint64_t sfi(struct heap *h, uint64_t nsi, uint64_t sc, uint64_t ba)
{
	uint64_t o = object(h, h->l->sfi_type, 64);

	set64(o, h->l->sfi_name_or_scope_info, nsi);
	set64(o, h->l->sfi_script, sc);
	set64(o, h->l->sfi_function_data, ba);
	return o;
}

/* Node 24's Klass.method table (decoded with --print-bytecode): offsets -1..23. */
static const uint8_t method_table[] = { 0x01, 0xf0, 0x07, 0x03, 0x00, 0x10, 0x6c, 0x05, 0x08,
					0x07, 0x07, 0x04, 0x64, 0x0a, 0xf4, 0x01, 0x06, 0x20 };

static uint64_t bytecode(struct heap *h, const uint8_t *table, size_t n)
{
	uint64_t o = object(h, h->l->bytecode_array_type, 96);
	uint64_t t = byte_array(h, h->l->gen == V8GEN_13 ? h->l->trusted_byte_array_type :
							     h->l->byte_array_type, table, n);

	set64(o, h->l->bytecode_positions, t);
	return o;
}

/* A source whose offsets 251 .. 372 fall on known lines: '\n' every 25 characters. */
static uint64_t source(struct heap *h)
{
	char s[1001];

	for (int i = 0; i < 1000; i++)
		s[i] = i % 25 == 24 ? '\n' : 'x';
	s[1000] = '\0';
	return one_byte(h, s);
}

/* The interpreted frame's slot for bytecode offset off. */
static uint32_t interp(const struct v8_elf *l, int off)
{
	return V8_INTERPRETED << V8_KIND_SHIFT | (uint32_t)(off + l->bytecode_array_data - 1);
}

/* The heap is anonymous executable memory, as V8's code space is: v8sym finds a
 * pc's whole address from its low bits in such mappings of the process. */
static void heap_init(struct heap *h, const struct v8_elf *l)
{
	memset(h, 0, sizeof(*h));
	h->mem = mmap(NULL, HEAP, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	assert_true(h->mem != MAP_FAILED);
	h->l = l;
}

static void heap_free(struct heap *h)
{
	munmap(h->mem, HEAP);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_position_table(void **state)
{
	(void)state;
	/* the entries: -1:251 0:251 8:278 10:280 13:278 15:303 20:364 23:372 */
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), -1), 251);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 0), 251);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 7), 251);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 8), 278);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 12), 280);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 20), 364);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), 1000), 372);
	assert_int_equal(v8sym_position(method_table, sizeof(method_table), -2), -1);
	/* cut in the middle of a number, and a number that never ends */
	assert_int_equal(v8sym_position(method_table, 2, 5), -1);
	uint8_t endless[64];

	memset(endless, 0xff, sizeof(endless));
	assert_int_equal(v8sym_position(endless, sizeof(endless), 5), -1);
	assert_int_equal(v8sym_position(NULL, 0, 5), -1);
}

static void test_lines(void **state)
{
	const uint32_t ends[] = { 9, 19, 29 };	/* lines 1..4 */
	int line, col;

	(void)state;
	v8sym_line(ends, 3, 0, &line, &col);
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
	v8sym_line(ends, 3, 9, &line, &col);	/* the newline itself ends line 1 */
	assert_int_equal(line, 1);
	assert_int_equal(col, 10);
	v8sym_line(ends, 3, 10, &line, &col);
	assert_int_equal(line, 2);
	assert_int_equal(col, 1);
	v8sym_line(ends, 3, 35, &line, &col);
	assert_int_equal(line, 4);
	assert_int_equal(col, 6);
	v8sym_line(ends, 0, 7, &line, &col);
	assert_int_equal(line, 1);
	assert_int_equal(col, 8);
	v8sym_line(ends, 3, -1, &line, &col);
	assert_int_equal(line, 0);
}

static void test_layouts(void **state)
{
	struct v8_elf l;
	struct consts c = { .base = v8_13 };

	(void)state;
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.gen, V8GEN_13);
	assert_int_equal(l.proc.fp_marker, -8);
	assert_int_equal(l.proc.fp_bytecode_offset, -40);
	assert_int_equal(l.proc.fn_shared, 32);
	assert_int_equal(l.proc.first_fn_type, 2065);
	assert_int_equal(l.proc.last_fn_type, 2081);
	assert_int_equal(l.proc.sfi_type, 282);
	assert_int_equal(l.proc.smi_shift, 32);
	assert_int_equal(l.sfi_script, 40);
	assert_int_equal(l.bytecode_positions, 24);	/* after the wrapper */
	assert_int_equal(l.sfi_function_data, 8);

	assert_int_equal(l.code_start, 40);
	assert_int_equal(l.code_positions, 16);	/* V8 13: not exported, verified */
	assert_int_equal(l.kind_maglev, 11);
	assert_int_equal(l.kind_turbofan, 12);
	assert_int_equal(l.deopt_sfi, 7);

	c.changes = v8_11_changes;
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.gen, V8GEN_11);
	assert_int_equal(l.code_start, 40);	/* the Code's field, not the stream's */
	assert_int_equal(l.code_deopt, 16);
	assert_int_equal(l.code_positions, 24);
	assert_int_equal(l.code_size, 56);
	/* V8 10: no InstructionStream, instructions inside the Code */
	c.drop = "type_InstructionStream";
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.gen, V8GEN_10);
	assert_int_equal(l.code_deopt, 16);
	assert_int_equal(l.code_positions, 24);
	c.drop = NULL;
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.proc.fn_shared, 24);
	/* one type before V8 12 exported the range: the 16 from it (constructors, class
	 * constructors last), the shared field checked too */
	assert_int_equal(l.proc.first_fn_type, 2066);
	assert_int_equal(l.proc.last_fn_type, 2081);
	assert_int_equal(l.sfi_script, 32);
	assert_int_equal(l.bytecode_positions, 32);

	/* what the walker needs, missing: a build we cannot walk */
	c = (struct consts){ .base = v8_13, .drop = "off_fp_function" };
	assert_int_equal(v8elf_from(konst_value, &c, &l), -ENOTSUP);
	c = (struct consts){ .base = v8_13, .drop = "type_SharedFunctionInfo" };
	assert_int_equal(v8elf_from(konst_value, &c, &l), -ENOTSUP);
	c = (struct consts){ .base = v8_13, .tagged = 4 };	/* pointer compression */
	assert_int_equal(v8elf_from(konst_value, &c, &l), -ENOTSUP);
	/* what names need, missing: walked, not named */
	c = (struct consts){ .base = v8_13, .drop = "class_Script__name" };
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.sfi_name_or_scope_info, V8ELF_NONE);
	/* neither generation's mark: walked and named, no lines */
	c = (struct consts){ .base = v8_13, .drop = "class_BytecodeArray__wrapper" };
	assert_int_equal(v8elf_from(konst_value, &c, &l), 0);
	assert_int_equal(l.gen, V8GEN_UNKNOWN);
	assert_int_equal(l.bytecode_positions, V8ELF_NONE);
}

/* One generation's functions named, with their lines, from this process's memory. */
static void named(const struct konst *changes)
{
	struct v8_elf l;
	struct heap h;
	struct v8sym *vs = v8sym_new(0);
	struct v8sym_frame f;
	uint64_t sc, m, anon, inf, lazy;
	int pid = getpid();

	layout(&l, changes);
	heap_init(&h, &l);
	assert_non_null(vs);
	v8sym_set_pid(vs, pid, &l);
	/* a script named by a thin string to a cons of two one-byte strings */
	sc = script(&h, thin(&h, cons(&h, one_byte(&h, "/srv/app/"), one_byte(&h, "t1.js"), 14), 14),
		    source(&h));
	m = sfi(&h, scope_info(&h, one_byte(&h, "method"), 0, 2, 251), sc,
		bytecode(&h, method_table, sizeof(method_table)));
	assert_int_equal(v8sym_lookup(vs, pid, m, interp(&l, 20), &f), 0);
	assert_string_equal(f.name, "method");
	assert_string_equal(f.file, "/srv/app/t1.js");
	assert_int_equal(f.line, 364 / 25 + 1);	/* offset 20 is at 364 */
	assert_int_equal(f.column, 364 % 25 + 1);
	assert_int_equal(v8sym_lookup(vs, pid, m, interp(&l, 8), &f), 0);
	assert_int_equal(f.line, 278 / 25 + 1);
	/* compiled: the function's start */
	assert_int_equal(v8sym_lookup(vs, pid, m, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_int_equal(f.line, 251 / 25 + 1);
	assert_int_equal(f.column, 251 % 25 + 1);
	/* 80 context locals: their names in a hash table, not inline */
	m = sfi(&h, scope_info(&h, one_byte(&h, "many80"), 0, 80, 300), sc, 0);
	assert_int_equal(v8sym_lookup(vs, pid, m, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_string_equal(f.name, "many80");
	/* no name, an inferred one; neither: anonymous at its first line */
	inf = sfi(&h, scope_info(&h, one_byte(&h, ""), one_byte(&h, "obj.foo"), 0, 596), sc, 0);
	assert_int_equal(v8sym_lookup(vs, pid, inf, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_string_equal(f.name, "obj.foo");
	anon = sfi(&h, scope_info(&h, 0, 0, 1, 767), sc, 0);
	assert_int_equal(v8sym_lookup(vs, pid, anon, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_string_equal(f.name, "<anonymous@t1.js:31>");
	/* a builtin: a String name, no script */
	lazy = sfi(&h, one_byte(&h, "forEach"), 0, 0);
	assert_int_equal(v8sym_lookup(vs, pid, lazy, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_string_equal(f.name, "forEach");
	assert_string_equal(f.file, "");
	assert_int_equal(f.line, 0);

	/* read once, then from the cache, also once the process is gone */
	struct v8sym_stats st;

	v8sym_stats(vs, &st);
	assert_int_equal(st.reads, 5);
	assert_int_equal(v8sym_lookup(vs, pid, inf, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	v8sym_stats(vs, &st);
	assert_int_equal(st.reads, 5);
	/* another function where a cached one was (the collector moved it): read again */
	set64(inf, l.sfi_name_or_scope_info, one_byte(&h, "movedIn"));
	assert_int_equal(v8sym_lookup(vs, pid, inf, V8_COMPILED << V8_KIND_SHIFT, &f), 0);
	assert_string_equal(f.name, "movedIn");
	v8sym_stats(vs, &st);
	assert_int_equal(st.moved, 1);
	assert_int_equal(st.reads, 6);
	v8sym_forget_pid(vs, pid);
	assert_int_equal(v8sym_lookup(vs, pid, m, interp(&l, 8), &f), 0);
	assert_string_equal(f.name, "many80");
	v8sym_stats(vs, &st);
	assert_int_equal(st.reads, 6);
	/* not read any more: a function never seen */
	assert_int_equal(v8sym_lookup(vs, pid, sfi(&h, one_byte(&h, "new"), 0, 0), 0, &f), -EFAULT);
	/* another V8 under the pid: the old names go */
	v8sym_set_pid(vs, pid, &l);
	v8sym_stats(vs, &st);
	assert_int_equal(st.functions, 0);
	assert_int_equal(v8sym_lookup(vs, pid + 1000000, m, 0, &f), -ENOENT);
	v8sym_free(vs);
	heap_free(&h);
}

static void test_named_13(void **state)
{
	(void)state;
	named(NULL);
}

static void test_named_11(void **state)
{
	(void)state;
	named(v8_11_changes);
}

static void test_strings(void **state)
{
	struct v8_elf l;
	struct heap h;
	struct v8sym *vs = v8sym_new(0);
	struct v8sym_frame f;
	const uint16_t u[] = { 'c', 'a', 'f', 0xe9, '-', 0xd83d, 0xde00, '.', 'j', 's' };
	uint64_t sc, fn, self;
	int pid = getpid();

	(void)state;
	layout(&l, NULL);
	heap_init(&h, &l);
	v8sym_set_pid(vs, pid, &l);
	/* a two-byte name, with a surrogate pair: UTF-8 */
	sc = script(&h, two_byte(&h, u, 10), one_byte(&h, "a\nb\n"));
	fn = sfi(&h, one_byte(&h, "f"), sc, 0);
	assert_int_equal(v8sym_lookup(vs, pid, fn, 0, &f), 0);
	assert_string_equal(f.file, "caf\xc3\xa9-\xf0\x9f\x98\x80.js");
	/* a cons string that contains itself: bounded, no name, no crash */
	self = object(&h, 1 | 8, 32);
	int32_t n = 10;

	memcpy((void *)(uintptr_t)(self - 1 + 12), &n, 4);
	set64(self, 16, self);
	set64(self, 24, self);
	fn = sfi(&h, self, script(&h, self, self), 0);
	assert_int_equal(v8sym_lookup(vs, pid, fn, 0, &f), 0);
	assert_string_equal(f.name, "<anonymous>");
	assert_string_equal(f.file, "");
	v8sym_free(vs);
	heap_free(&h);
}

static void test_bad_heaps(void **state)
{
	struct v8_elf l;
	struct heap h;
	struct v8sym *vs = v8sym_new(0);
	struct v8sym_frame f;
	uint8_t endless[32];
	uint64_t sc, fn, si;
	int pid = getpid();

	(void)state;
	layout(&l, NULL);
	heap_init(&h, &l);
	v8sym_set_pid(vs, pid, &l);
	sc = script(&h, one_byte(&h, "x.js"), source(&h));
	/* not a SharedFunctionInfo, not a heap object, nothing mapped there */
	assert_int_equal(v8sym_lookup(vs, pid, sc, 0, &f), -EFAULT);
	assert_int_equal(v8sym_lookup(vs, pid, 0x1000, 0, &f), -EFAULT);
	assert_int_equal(v8sym_lookup(vs, pid, 0x10 + 1, 0, &f), -EFAULT);
	/* a position table that never ends: the function's start instead */
	memset(endless, 0x81, sizeof(endless));
	fn = sfi(&h, scope_info(&h, one_byte(&h, "g"), 0, 0, 60), sc,
		 bytecode(&h, endless, sizeof(endless)));
	assert_int_equal(v8sym_lookup(vs, pid, fn, interp(&l, 5), &f), 0);
	assert_string_equal(f.name, "g");
	assert_int_equal(f.line, 60 / 25 + 1);
	/* a ScopeInfo claiming a million and one locals: no name read past it */
	si = scope_info(&h, 0, 0, 1, 10);
	set64(si, 8 + 8 * 2, smi_of((1 << 20) + 1));
	fn = sfi(&h, si, sc, 0);
	assert_int_equal(v8sym_lookup(vs, pid, fn, 0, &f), 0);
	assert_string_equal(f.name, "<anonymous>");
	/* a bytecode offset before the table's first entry: the start */
	fn = sfi(&h, scope_info(&h, one_byte(&h, "k"), 0, 0, 300), sc,
		 bytecode(&h, method_table, sizeof(method_table)));
	assert_int_equal(v8sym_lookup(vs, pid, fn, interp(&l, -5), &f), 0);
	assert_int_equal(f.line, 300 / 25 + 1);
	v8sym_free(vs);
	heap_free(&h);
}

/* ---- optimized code: from a pc to its Code, and the functions inlined there ---- */

/* A zigzag VLQ into b at *n. */
static void vlq(uint8_t *b, size_t *n, int64_t v)
{
	uint64_t u = (uint64_t)(v << 1) ^ (uint64_t)(v >> 63);

	do {
		b[(*n)++] = (uint8_t)((u & 0x7f) | (u > 0x7f ? 0x80 : 0));
		u >>= 7;
	} while (u);
}

/* A SourcePosition: script offset pos, inlining id (-1: the outer function). */
static int64_t src_pos(int64_t pos, int64_t inlining)
{
	return (pos + 1) << 1 | (inlining + 1) << 31;
}

/* A meta map, and the map of objects of type t under it. */
static uint64_t typed_map(struct heap *h, uint64_t *meta, int t)
{
	uint64_t m;
	uint16_t tt = (uint16_t)t;

	if (!*meta) {
		uint16_t mt = (uint16_t)h->l->map_type;

		*meta = h_alloc(h, 32);
		set64(*meta, 0, *meta);
		memcpy((void *)(uintptr_t)(*meta - 1 + 12), &mt, 2);
	}
	m = h_alloc(h, 32);
	set64(m, 0, *meta);
	memcpy((void *)(uintptr_t)(m - 1 + 12), &tt, 2);
	return m;
}

struct optimized {
	uint64_t code, start, main, run, pick;
	uint64_t istream_map;
};

/*
 * V8 13's TurboFan code of main with run inlined at offset 150 and pick inlined
 * into run at 250: pc offsets [0, 10) are main at 100, [10, 20) run at 260,
 * [20, 64) pick at 300; its InstructionStream with 64 bytes of instructions
 * after 256 bytes of other objects' words.
 */
static void optimized(struct heap *h, uint64_t sc, struct optimized *o)
{
	const struct v8_elf *l = h->l;
	uint64_t meta = 0, is, dd, lits, wrapper, inl, pt;
	uint8_t table[64], inlining[32];
	size_t n = 0;
	int64_t raw, prev = 0;
	int32_t fid, size = 64;
	uint32_t flags = l->kind_turbofan;
	const struct { int64_t off, raw; } e[] = {
		{ 0, src_pos(100, -1) }, { 10, src_pos(260, 0) }, { 20, src_pos(300, 1) },
	};

	o->main = sfi(h, scope_info(h, one_byte(h, "main"), 0, 0, 90), sc, 0);
	o->run = sfi(h, scope_info(h, one_byte(h, "run"), 0, 0, 240), sc, 0);
	o->pick = sfi(h, scope_info(h, one_byte(h, "pick"), 0, 0, 290), sc, 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {	/* statements: offsets as is */
		vlq(table, &n, e[i].off - (i ? e[i - 1].off : 0));
		vlq(table, &n, e[i].raw - prev);
		prev = e[i].raw;
	}
	pt = byte_array(h, l->trusted_byte_array_type, table, n);
	/* inlining 0: run, called from main at 150; 1: pick, called from run at 250 */
	raw = src_pos(150, -1);
	memcpy(inlining, &raw, 8);
	fid = 0;
	memcpy(inlining + 8, &fid, 4);
	raw = src_pos(250, 0);
	memcpy(inlining + 16, &raw, 8);
	fid = 1;
	memcpy(inlining + 24, &fid, 4);
	inl = byte_array(h, l->trusted_byte_array_type, inlining, sizeof(inlining));
	lits = object(h, l->fixed_array_type, 16 + 16);
	set64(lits, 8, smi_of(2));
	set64(lits, 16, o->run);
	set64(lits, 24, o->pick | 2);	/* a weak reference */
	wrapper = object(h, l->sfi_wrapper_type, 16);
	set64(wrapper, 8, o->main);
	dd = object(h, l->fixed_array_type, 16 + 8 * 9);
	set64(dd, 8, smi_of(9));
	set64(dd, 16 + 8 * 1, smi_of(2));
	set64(dd, 16 + 8 * 3, lits);
	set64(dd, 16 + 8 * 7, wrapper);
	set64(dd, 16 + 8 * 8, inl);
	o->code = object(h, l->code_type, 64);
	set64(o->code, l->code_deopt, dd);
	set64(o->code, l->code_positions, pt);
	memcpy((void *)(uintptr_t)(o->code - 1 + l->code_flags), &flags, 4);
	memcpy((void *)(uintptr_t)(o->code - 1 + l->code_size), &size, 4);
	/* other words, some of them tagged, before the instruction stream */
	for (int i = 0; i < 32; i++)
		set64(h_alloc(h, 8), 0, (uint64_t)i * 0x1001 + 1);
	o->istream_map = typed_map(h, &meta, l->istream_type);
	is = h_alloc(h, l->istream_start + 64);
	set64(is, 0, o->istream_map);
	set64(is, 8, o->code);
	o->start = is - 1 + l->istream_start;
	memset((void *)(uintptr_t)o->start, 0xcc, 64);
	set64(o->code, l->code_start, o->start);
}

/* A compiled frame's aux for a pc in JIT code. */
static uint32_t jit_aux(uint64_t pc)
{
	return V8_COMPILED << V8_KIND_SHIFT | V8_PC_JIT | (uint32_t)(pc & V8_PC_MASK);
}

static void test_inlined(void **state)
{
	struct v8_elf l;
	struct heap h;
	struct optimized o;
	struct v8sym *vs = v8sym_new(0);
	struct v8sym_frames fr;
	struct v8code c;
	struct v8chain ch;
	struct reader r = { .pid = getpid(), .l = &l };
	uint64_t map = 0, sc;
	int pid = getpid();

	(void)state;
	layout(&l, NULL);
	assert_int_equal(l.kind_turbofan, 12);
	heap_init(&h, &l);
	sc = script(&h, one_byte(&h, "app.js"), source(&h));
	optimized(&h, sc, &o);
	/* found back from any pc of its instructions, its map learned */
	assert_int_equal(v8code_find(&r, o.start + 63, &map), o.code);
	assert_int_equal(map, o.istream_map);
	assert_int_equal(v8code_find(&r, o.start, &map), o.code);
	assert_int_equal(v8code_find(&r, o.start + 64, &map), 0);	/* past its end */
	assert_int_equal(v8code_read(&r, o.code, &c), 0);
	assert_int_equal(c.kind, V8CODE_OPTIMIZED);
	assert_int_equal(c.start, o.start);
	assert_int_equal(c.outer, o.main);
	/* pick inlined into run inlined into main */
	assert_int_equal(v8code_chain(&c, o.start + 25, &ch), 0);
	assert_int_equal(ch.n, 3);
	assert_int_equal(ch.sfi[0], o.pick);
	assert_int_equal(ch.pos[0], 300);
	assert_int_equal(ch.sfi[1], o.run);
	assert_int_equal(ch.pos[1], 250);
	assert_int_equal(ch.sfi[2], o.main);
	assert_int_equal(ch.pos[2], 150);
	assert_int_equal(v8code_chain(&c, o.start + 5, &ch), 0);	/* main's own */
	assert_int_equal(ch.n, 1);
	assert_int_equal(ch.pos[0], 100);
	assert_int_equal(v8code_chain(&c, o.start + 64, &ch), -EINVAL);
	/* an inlining that is its own parent: refused, not followed forever */
	int64_t loop = src_pos(250, 1);

	memcpy(c.inlining + 16, &loop, 8);
	assert_int_equal(v8code_chain(&c, o.start + 25, &ch), -EINVAL);
	v8code_free(&c);

	/* through v8sym, from the walker's low 30 bits of the pc */
	v8sym_set_pid(vs, pid, &l);
	assert_int_equal(v8sym_frames(vs, pid, o.main, jit_aux(o.start + 25), true, &fr), 0);
	assert_int_equal(fr.n, 3);
	assert_string_equal(fr.f[0].name, "pick");
	assert_int_equal(fr.f[0].line, 300 / 25 + 1);
	assert_string_equal(fr.f[1].name, "run");
	assert_int_equal(fr.f[1].line, 250 / 25 + 1);
	assert_string_equal(fr.f[2].name, "main");
	assert_int_equal(fr.f[2].line, 150 / 25 + 1);
	assert_string_equal(fr.f[2].file, "app.js");
	/* the same pc in another function's frame: not its code, its own name alone */
	assert_int_equal(v8sym_frames(vs, pid, o.run, jit_aux(o.start + 25), true, &fr), 0);
	assert_int_equal(fr.n, 1);
	assert_string_equal(fr.f[0].name, "run");
	struct v8sym_stats st;

	v8sym_stats(vs, &st);
	assert_int_equal(st.inlined, 2);
	assert_int_equal(st.scope_errors, 1);
	/* a pc in no code: the function's start */
	assert_int_equal(v8sym_frames(vs, pid, o.main, V8_COMPILED << V8_KIND_SHIFT | V8_PC_JIT | 8,
				      true, &fr), 0);
	assert_int_equal(fr.n, 1);
	assert_int_equal(fr.f[0].line, 90 / 25 + 1);
	/* the same pc said to be a builtin's (not in JIT code): not looked for */
	assert_int_equal(v8sym_frames(vs, pid, o.main, jit_aux(o.start + 25) & ~V8_PC_JIT, true, &fr),
			 0);
	assert_int_equal(fr.n, 1);
	assert_string_equal(fr.f[0].name, "main");
	v8sym_free(vs);
	heap_free(&h);
}

static void test_jit_ranges(void **state)
{
	struct v8jit j;
	uint64_t pc;

	(void)state;
	v8code_jit_parse("5644-5645 r-xp 00001000 fe:00 12 /usr/bin/node\n"
			 "7f33f4000000-7f3414000000 rwxp 00000000 00:00 0 \n"
			 "7f3434201000-7f3434202000 r-xp 00001000 fe:00 13    /lib/x.so\n"
			 "7ffd000-7ffe000 r-xp 00000000 00:00 0                  [vdso]\n"
			 "1000-2000 r-xp 00000000 00:00 0 [anon:v8]\n"
			 "3000-4000 rw-p 00000000 00:00 0\n", &j);
	assert_int_equal(j.n, 2);
	assert_int_equal(j.lo[0], 0x7f33f4000000ull);
	assert_int_equal(j.hi[0], 0x7f3414000000ull);
	assert_int_equal(j.lo[1], 0x1000);
	/* a 512 MiB range: one place in it for each value of the low 29 bits */
	uint64_t pcs[4];

	assert_int_equal(v8code_full_pcs(&j, 0x14000010, pcs, 4), 1);
	assert_int_equal(pcs[0], 0x7f33f4000010ull);
	assert_int_equal(v8code_full_pcs(&j, 0x10, pcs, 4), 1);
	assert_int_equal(pcs[0], 0x7f3400000010ull);
	assert_int_equal(v8code_full_pcs(&j, 0x13ffffff, pcs, 4), 1);
	assert_int_equal(pcs[0], 0x7f3413ffffffull);
	/* in both ranges: both, the larger range's first */
	assert_int_equal(v8code_full_pcs(&j, 0x1500, pcs, 4), 2);
	assert_int_equal(pcs[0], 0x7f3400001500ull);
	assert_int_equal(pcs[1], 0x1500);
	assert_int_equal(v8code_full_pcs(&j, 0x1500, pcs, 1), 1);
	(void)pc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_position_table),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_named_13),
		cmocka_unit_test(test_named_11),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_bad_heaps),
		cmocka_unit_test(test_inlined),
		cmocka_unit_test(test_jit_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
