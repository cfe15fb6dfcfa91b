// SPDX-License-Identifier: Apache-2.0
#include "v8code.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOW_BITS 29			/* of a pc the walker keeps (V8_PC_MASK) */
#define MAX_CODE_SCAN (1u << 20)	/* bytes scanned back from a pc for its Code */
#define MAX_MAP_CHECKS 4096		/* words checked as the code objects' map, not known yet */
#define MAX_CODE_SIZE (64u << 20)
#define MAX_TABLE (256u << 10)		/* bytes of a position table read */
#define MAX_INLINED 4096		/* InliningPositions entries read */
#define MAX_LITERALS 4096
#define INLINING_ENTRY 16		/* raw position (8), function id (4), padding (4) */
#define MAX_MAPS (1u << 20)		/* bytes of /proc/PID/maps read */

int v8code_jit_parse(const char *maps, struct v8jit *ret)
{
	const char *line = maps;

	ret->n = ret->dropped = 0;
	while (line && *line) {
		unsigned long long lo, hi, ino;
		char perms[8], dev[16];
		int used = 0;

		if (sscanf(line, "%llx-%llx %7s %*x %15s %llu%n", &lo, &hi, perms, dev, &ino, &used) >=
			    5 && perms[2] == 'x' && ino == 0 && hi > lo) {
			const char *path = line + used;

			while (*path == ' ' || *path == '\t')	/* not into the next line */
				path++;

			/* anonymous: no path, or a name given to anonymous memory */
			if ((*path == '\n' || *path == '\0' || !strncmp(path, "[anon", 5)) &&
			    ret->n == V8CODE_MAX_JIT) {
				ret->dropped++;
			} else if (*path == '\n' || *path == '\0' || !strncmp(path, "[anon", 5)) {
				ret->lo[ret->n] = lo;
				ret->hi[ret->n++] = hi;
			}
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

int v8code_jit_ranges(int pid, struct v8jit *ret)
{
	char path[64], *buf;
	size_t n = 0;
	FILE *f;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	buf = malloc(MAX_MAPS + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, MAX_MAPS, f);
	fclose(f);
	buf[n] = '\0';
	err = v8code_jit_parse(buf, ret);
	free(buf);
	return err;
}

int v8code_full_pcs(const struct v8jit *j, uint32_t low, uint64_t *pcs, int max)
{
	const uint64_t span = 1ull << LOW_BITS;
	int n = 0;

	low &= (uint32_t)(span - 1);
	for (int i = 0; i < j->n && n < max; i++) {
		/* a range larger than the span holds several: its first few */
		for (uint64_t base = j->lo[i] & ~(span - 1); base < j->hi[i] && n < max; base += span) {
			uint64_t c = base | low;

			if (c >= j->lo[i] && c < j->hi[i])
				pcs[n++] = c;
		}
	}
	return n;
}

/* Whether w is the map of the objects that hold instructions (its map: the meta map). */
static bool is_code_map(const struct reader *r, uint64_t w)
{
	const struct v8_elf *l = r->l;
	uint16_t t;
	int want = l->gen == V8GEN_10 ? l->code_type : l->istream_type;

	return v8_type_of(r, w) == l->map_type &&
	       !v8_peek(r->pid, w - 1 + l->proc.map_instance_type, &t, 2) && t == want;
}

/* The Code of the object obj that holds instructions, and their bounds. 0 or -EFAULT. */
static int code_bounds(const struct reader *r, uint64_t obj, uint64_t *code, uint64_t *start,
		       uint32_t *size)
{
	const struct v8_elf *l = r->l;
	int32_t sz;

	if (l->gen == V8GEN_10) {	/* the instructions are the Code's own */
		*code = obj;
		*start = obj - 1 + l->code_start;
	} else if (v8_field(r, obj, l->istream_code, code) || v8_type_of(r, *code) != l->code_type ||
		   v8_field(r, *code, l->code_start, start) ||
		   *start != obj - 1 + l->istream_start) {	/* the Code's back pointer is this one */
		return -EFAULT;
	}
	if (v8_peek(r->pid, *code - 1 + l->code_size, &sz, 4) || sz <= 0 || sz > (int32_t)MAX_CODE_SIZE)
		return -EFAULT;
	*size = (uint32_t)sz;
	return 0;
}

uint64_t v8code_find(const struct reader *r, uint64_t pc, uint64_t *code_map)
{
	uint64_t page = pc & ~4095ull, words[512], code, start;
	uint32_t size;
	int checks = 0;

	if (r->l->code_type == V8ELF_NONE)
		return 0;
	for (uint64_t scanned = 0; scanned < MAX_CODE_SCAN && page; scanned += 4096, page -= 4096) {
		int top = page == (pc & ~4095ull) ? (int)((pc & 4095) / 8) : 511;

		if (v8_peek(r->pid, page, words, sizeof(words)))
			return 0;
		for (int i = top; i >= 0; i--) {
			uint64_t w = words[i];

			if ((w & 3) != 1)
				continue;
			if (!*code_map && ++checks > MAX_MAP_CHECKS)
				return 0;	/* bounded: the map is learnt from another pc */
			if (*code_map ? w != *code_map : !is_code_map(r, w))
				continue;
			if (code_bounds(r, page + 8 * (uint64_t)i + 1, &code, &start, &size))
				continue;	/* instructions that look like the map */
			if (pc < start || pc - start >= size)
				return 0;	/* the last object before pc ends before it */
			*code_map = w;
			return code;
		}
	}
	return 0;
}

/* The bytes of a ByteArray (or TrustedByteArray) arr, copied; NULL when it is not one. */
static uint8_t *byte_array(const struct reader *r, uint64_t arr, size_t max, size_t *n)
{
	const struct v8_elf *l = r->l;
	int t = v8_type_of(r, arr);
	uint64_t len;
	uint8_t *b;

	if (t < 0 || (t != l->byte_array_type && t != l->trusted_byte_array_type) ||
	    v8_field(r, arr, l->fixed_array_length, &len) || !v8_is_smi(len) ||
	    v8_smi(r, len) <= 0 || (uint64_t)v8_smi(r, len) > max)
		return NULL;
	*n = (size_t)v8_smi(r, len);
	b = malloc(*n);
	if (b && v8_peek(r->pid, arr - 1 + l->fixed_array_data, b, *n)) {
		free(b);
		b = NULL;
	}
	return b;
}

/* Slot i of a fixed array (FixedArray, its weak and protected kinds), bounds checked. */
static int array_slot(const struct reader *r, uint64_t arr, int64_t i, uint64_t *v)
{
	uint64_t len;

	if (v8_field(r, arr, r->l->fixed_array_length, &len) || !v8_is_smi(len) || i < 0 ||
	    i >= v8_smi(r, len))
		return -EFAULT;
	return v8_peek(r->pid, arr - 1 + r->l->fixed_array_data + 8 * (uint64_t)i, v, 8);
}

/* The function an optimized code was compiled for: an SFI, or its wrapper's (13). */
static uint64_t outer_function(const struct reader *r, uint64_t v)
{
	int t = v8_type_of(r, v);

	if (t >= 0 && t == r->l->sfi_wrapper_type && r->l->sfi_wrapper_sfi != V8ELF_NONE &&
	    v8_field(r, v, r->l->sfi_wrapper_sfi, &v))
		return 0;
	return v8_type_of(r, v) == r->l->sfi_type ? v : 0;
}

/* The optimized code's tables: positions, inlining, the inlined functions. */
static int read_optimized(const struct reader *r, struct v8code *c)
{
	const struct v8_elf *l = r->l;
	uint64_t dd, v, count;

	if (v8_field(r, c->code, l->code_positions, &v) ||
	    !(c->table = byte_array(r, v, MAX_TABLE, &c->ntable)) ||
	    v8_field(r, c->code, l->code_deopt, &dd) ||
	    array_slot(r, dd, l->deopt_sfi, &v) || !(c->outer = outer_function(r, v)))
		return -EFAULT;
	if (array_slot(r, dd, l->deopt_count, &count) || !v8_is_smi(count) || v8_smi(r, count) < 0)
		return -EFAULT;
	if (!v8_smi(r, count))
		return 0;	/* nothing inlined */
	if (array_slot(r, dd, l->deopt_inlining, &v))
		return -EFAULT;
	size_t n = 0;

	c->inlining = byte_array(r, v, (size_t)MAX_INLINED * INLINING_ENTRY, &n);
	c->ninlining = (uint32_t)(n / INLINING_ENTRY);
	if (!c->inlining || array_slot(r, dd, l->deopt_literals, &v))
		return -EFAULT;
	c->nliterals = (uint32_t)(v8_smi(r, count) < MAX_LITERALS ? v8_smi(r, count) : MAX_LITERALS);
	c->literals = calloc(c->nliterals, sizeof(*c->literals));
	if (!c->literals)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nliterals; i++) {
		uint64_t f = 0;

		if (array_slot(r, v, i, &f))
			return -EFAULT;
		c->literals[i] = f & ~2ull;	/* a weak reference (tag 11) to its object */
	}
	return 0;
}

int v8code_read(const struct reader *r, uint64_t code, struct v8code *ret)
{
	const struct v8_elf *l = r->l;
	uint32_t flags, kind;
	int32_t size;
	int err;

	memset(ret, 0, sizeof(*ret));
	ret->code = code;
	if (l->gen == V8GEN_10)
		ret->start = code - 1 + l->code_start;
	else if (v8_field(r, code, l->code_start, &ret->start))
		return -EFAULT;
	if (v8_peek(r->pid, code - 1 + l->code_size, &size, 4) || size <= 0 ||
	    v8_peek(r->pid, code - 1 + l->code_flags, &flags, 4))
		return -EFAULT;
	ret->size = (uint32_t)size;
	kind = flags & l->kind_mask;
	ret->kind = kind == l->kind_maglev || kind == l->kind_turbofan ? V8CODE_OPTIMIZED :
		    kind == (uint32_t)l->kind_maglev - 1 ? V8CODE_BASELINE : V8CODE_OTHER;
	if (ret->kind == V8CODE_OPTIMIZED && (err = read_optimized(r, ret))) {
		v8code_free(ret);
		return err;
	}
	ret->bytes = sizeof(*ret) + ret->ntable + (size_t)ret->ninlining * INLINING_ENTRY +
		     ret->nliterals * sizeof(*ret->literals);
	return 0;
}

void v8code_free(struct v8code *c)
{
	free(c->table);
	free(c->inlining);
	free(c->literals);
	c->table = c->inlining = NULL;
	c->literals = NULL;
}

int64_t v8code_raw_position(const uint8_t *table, size_t len, int64_t off, int64_t first)
{
	/* sums in unsigned arithmetic: a table that overflows them gives garbage, not UB */
	uint64_t code = (uint64_t)first, raw = 0;
	int64_t best = -1;
	size_t i = 0;

	while (i < len) {
		int64_t v[2];

		for (int k = 0; k < 2; k++) {	/* zigzag VLQ, 7 bits a byte, low first */
			uint64_t u = 0;
			int shift = 0;
			uint8_t b;

			do {
				if (i >= len || shift > 63)
					return best;
				b = table[i++];
				u |= (uint64_t)(b & 0x7f) << shift;
				shift += 7;
			} while (b & 0x80);
			v[k] = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
		}
		/* an expression's delta is stored as -delta - 1, a statement's as is */
		code += v[0] >= 0 ? (uint64_t)v[0] : ~(uint64_t)v[0];
		raw += (uint64_t)v[1];
		if ((int64_t)code > off)
			break;
		best = (int64_t)(raw & ((1ull << 47) - 1));	/* 1 + 30 + 16 bits */
	}
	return best;
}

/* Appends (sfi, pos) to the chain: the innermost MAX - 1 and then the outermost. */
static void chain_push(struct v8chain *ch, uint64_t sfi, int64_t pos)
{
	if (ch->n == V8CODE_MAX_CHAIN) {	/* the last slot is the outermost's */
		ch->cut++;
		ch->n--;
	}
	ch->sfi[ch->n] = sfi;
	ch->pos[ch->n++] = pos;
}

int v8code_chain(const struct v8code *c, uint64_t pc, struct v8chain *ret)
{
	int64_t raw;

	memset(ret, 0, sizeof(*ret));
	if (c->kind != V8CODE_OPTIMIZED || pc < c->start || pc - c->start >= c->size)
		return -EINVAL;
	raw = v8code_raw_position(c->table, c->ntable, (int64_t)(pc - c->start), 0);
	if (raw < 0) {	/* before the first position: the function itself */
		chain_push(ret, c->outer, -1);
		return 0;
	}
	for (uint32_t steps = 0; raw >= 0; steps++) {
		int64_t id = raw >> 31 & 0xffff, pos = (raw >> 1 & 0x3fffffff) - 1;
		int64_t next;
		int32_t fid;

		if (id == 0) {
			chain_push(ret, c->outer, pos);
			return 0;
		}
		/* each step goes to an inlining's parent: more steps than inlinings is a loop */
		if (steps > c->ninlining || id > c->ninlining)
			break;
		memcpy(&next, c->inlining + (id - 1) * INLINING_ENTRY, 8);
		memcpy(&fid, c->inlining + (id - 1) * INLINING_ENTRY + 8, 4);
		if (fid < 0 || (uint32_t)fid >= c->nliterals || !v8_heap_object(c->literals[fid]))
			break;
		chain_push(ret, c->literals[fid], pos);
		raw = next;
	}
	memset(ret, 0, sizeof(*ret));
	return -EINVAL;
}
