// SPDX-License-Identifier: Apache-2.0
#include "v8sym.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "oncpu.h"
#include "utf8.h"
#include "v8elf.h"
#include "v8code.h"
#include "v8read.h"
#include "clock.h"

#define DEFAULT_FUNCTIONS 65536
#define MAX_BYTES (64u << 20)		/* of names, tables and line ends held */
#define MAX_UNITS 511			/* code units of a name read (a frame's file holds 511 bytes) */
#define MAX_SOURCE (8u << 20)		/* code units of a script's source scanned for lines */
#define MAX_TABLE (256u << 10)		/* bytes of a source position table read */
#define MAX_CONS_DEPTH 64		/* cons strings followed into */
#define SCOPE_INLINE_NAMES 75		/* a ScopeInfo with fewer context locals inlines their names */
#define MAX_CONTEXT_LOCALS (1 << 20)

/* ScopeInfo's flags (the same bits in V8 10 to 13) and scope types (by generation) */
#define SI_TYPE(f) ((f) & 0xf)
#define SI_SAVED_CLASS(f) ((f) >> 10 & 1)
#define SI_FUNCTION_VAR(f) ((f) >> 12 & 3)
#define SI_INFERRED(f) ((f) >> 14 & 1)
#define SI_MODULE_13 5
#define SI_LAST_POSITIONED_10 4	/* 10-11: class, eval, function, module, script scopes have positions */

struct v8script {
	char *name;
	uint32_t *ends;		/* offsets of its '\n's; NULL: no source read */
	size_t nends;
	size_t scanned;		/* code units of the source scanned: no line beyond */
	size_t bytes;
};

struct v8fn {
	char *name;		/* the function's own, else inferred, "" none */
	struct v8script *script;	/* shared (the scripts map owns it); NULL: none */
	int64_t start;		/* the function's start in its script, -1 unknown */
	uint8_t *table;		/* its bytecode's source position table */
	size_t ntable;
	uint64_t nsi;		/* its name_or_scope_info when read: changed, another function */
	size_t bytes;
};

#define CODE_RING 64		/* Codes found per process, most recent kept */
#define JIT_REREAD_NS 1000000000ull	/* a process's mappings read again no sooner */

struct v8pid {
	struct v8_elf l;
	bool gone;
	struct v8jit jit;	/* where its JIT code is */
	uint64_t jit_read_ns;	/* when (0: never) */
	uint64_t code_map;	/* the map of its code objects, once found */
	struct v8code codes[CODE_RING];	/* the Codes its pcs were found in (code 0: none) */
	int next_code;
};

struct v8sym {
	pthread_mutex_t lock;
	struct hmap pids;	/* "pid" -> struct v8pid */
	struct hmap fns;	/* "pid:sfi" -> struct v8fn */
	struct hmap scripts;	/* "pid:script" -> struct v8script */
	struct hmap chains;	/* "pid:p:pc:sfi" (pc's low 30 bits) -> struct v8chain (n 0: none there) */
	size_t max_functions, bytes;
	struct v8sym_stats stats;
};


struct v8sym *v8sym_new(size_t max_functions)
{
	struct v8sym *vs = calloc(1, sizeof(*vs));

	if (!vs)
		return NULL;
	pthread_mutex_init(&vs->lock, NULL);
	vs->max_functions = max_functions ? max_functions : DEFAULT_FUNCTIONS;
	return vs;
}

static void script_free(struct v8script *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->ends);
	free(s);
}

static void fn_free(struct v8fn *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->table);
	free(f);
}

static void pid_free(struct v8pid *p)
{
	if (!p)
		return;
	for (int i = 0; i < CODE_RING; i++)
		v8code_free(&p->codes[i]);
	free(p);
}

void v8sym_free(struct v8sym *vs)
{
	if (!vs)
		return;
	hmap_for_each(&vs->fns, it)
		fn_free(it->val);
	hmap_for_each(&vs->scripts, it)
		script_free(it->val);
	hmap_for_each(&vs->chains, it)
		free(it->val);
	hmap_for_each(&vs->pids, it)
		pid_free(it->val);
	hmap_free(&vs->fns);
	hmap_free(&vs->scripts);
	hmap_free(&vs->chains);
	hmap_free(&vs->pids);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}

/* Whether a cache key ("pid:...") is of a process to drop: pid, or (pid < 0) any live one. */
static bool key_dropped(const struct v8sym *vs, const char *key, int pid)
{
	char pk[16];
	const struct v8pid *p;
	size_t n = strcspn(key, ":");

	if (pid >= 0)
		return (int)strtol(key, NULL, 10) == pid;
	if (n >= sizeof(pk))
		return true;
	memcpy(pk, key, n);
	pk[n] = '\0';
	p = hmap_get(&vs->pids, pk);
	return !p || !p->gone;
}

/*
 * Drops what was read of pid, or (pid < 0) of every process still running (it
 * can be read again; what ended cannot): functions first, they point at
 * scripts. Under the lock.
 */
static void drop_pid(struct v8sym *vs, int pid)
{
	hmap_for_each(&vs->fns, it) {
		if (!key_dropped(vs, it->key, pid))
			continue;
		vs->bytes -= ((struct v8fn *)it->val)->bytes;
		vs->stats.functions--;
		fn_free(hmap_del_entry(&vs->fns, it));
	}
	hmap_for_each(&vs->scripts, it) {
		if (!key_dropped(vs, it->key, pid))
			continue;
		vs->bytes -= ((struct v8script *)it->val)->bytes;
		vs->stats.scripts--;
		script_free(hmap_del_entry(&vs->scripts, it));
	}
	hmap_for_each(&vs->chains, it) {
		if (!key_dropped(vs, it->key, pid))
			continue;
		vs->bytes -= sizeof(struct v8chain);
		vs->stats.chains--;
		free(hmap_del_entry(&vs->chains, it));
	}
}

void v8sym_set_pid(struct v8sym *vs, int pid, const struct v8_elf *l)
{
	char key[16];
	struct v8pid *p, *old = NULL;

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&vs->lock);
	p = hmap_get(&vs->pids, key);
	if (p && !p->gone && !memcmp(&p->l, l, sizeof(*l))) {
		pthread_mutex_unlock(&vs->lock);
		return;
	}
	drop_pid(vs, pid);	/* another process, or another V8, under this pid */
	p = calloc(1, sizeof(*p));
	if (p) {
		p->l = *l;
		if (hmap_put(&vs->pids, key, p, (void **)&old)) {
			free(p);
			p = NULL;
		}
	}
	if (!p)
		old = hmap_del(&vs->pids, key);
	pid_free(old);
	pthread_mutex_unlock(&vs->lock);
}

void v8sym_forget_pid(struct v8sym *vs, int pid)
{
	char key[16];
	struct v8pid *p;

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&vs->lock);
	p = hmap_get(&vs->pids, key);
	if (p) {
		p->gone = true;
		for (int i = 0; i < CODE_RING; i++)	/* what they named is in the chains */
			v8code_free(&p->codes[i]);
		memset(p->codes, 0, sizeof(p->codes));
	}
	pthread_mutex_unlock(&vs->lock);
}

/* Code units of a string appended to out (room for max); 0 or -errno. */
struct units {
	uint16_t *u;
	size_t n, max;
	int steps;		/* strings visited: a cons tree is bounded in nodes, not only depth */
};

#define MAX_STRING_STEPS 4096

static int put_chars(const struct reader *r, uint64_t addr, size_t len, bool one_byte,
		     struct units *out)
{
	size_t take = len < out->max - out->n ? len : out->max - out->n;

	if (!take)
		return 0;
	if (one_byte) {
		uint8_t *tmp = malloc(take);

		if (!tmp)
			return -ENOMEM;
		if (v8_peek(r->pid, addr, tmp, take)) {
			free(tmp);
			return -EFAULT;
		}
		for (size_t i = 0; i < take; i++)
			out->u[out->n + i] = tmp[i];
		free(tmp);
	} else if (v8_peek(r->pid, addr, out->u + out->n, take * 2)) {
		return -EFAULT;
	}
	out->n += take;
	return 0;
}

static int string_units(const struct reader *r, uint64_t s, size_t from, size_t len,
			struct units *out, int depth);

/* The parts of a cons string (first, second) that [from, from + len) covers. */
static int cons_units(const struct reader *r, uint64_t s, size_t from, size_t len,
		      struct units *out, int depth)
{
	const struct v8_elf *l = r->l;
	uint64_t first, second;
	int32_t flen = 0;
	size_t end = from + len;
	int err = 0;

	if (v8_field(r, s, l->cons_first, &first) || v8_field(r, s, l->cons_second, &second) ||
	    !v8_heap_object(first) || v8_peek(r->pid, first - 1 + l->string_length, &flen, 4) || flen < 0)
		return -EFAULT;
	if (from < (size_t)flen)
		err = string_units(r, first, from, (end < (size_t)flen ? end : (size_t)flen) - from,
				   out, depth + 1);
	if (!err && end > (size_t)flen) {
		size_t at = from > (size_t)flen ? from : (size_t)flen;

		err = string_units(r, second, at - (size_t)flen, end - at, out, depth + 1);
	}
	return err;
}

/* The code units [from, from + len) of the string s, flattened into out. */
static int string_units(const struct reader *r, uint64_t s, size_t from, size_t len,
			struct units *out, int depth)
{
	const struct v8_elf *l = r->l;
	int t = v8_type_of(r, s), repr;
	int32_t slen = 0;
	uint64_t a, b;
	bool one;

	if (t < 0 || t >= l->first_nonstring_type || depth > MAX_CONS_DEPTH ||
	    ++out->steps > MAX_STRING_STEPS ||
	    v8_peek(r->pid, s - 1 + l->string_length, &slen, 4) || slen < 0)
		return -EFAULT;
	if (from >= (size_t)slen || out->n >= out->max)
		return 0;
	if (len > (size_t)slen - from)
		len = (size_t)slen - from;
	one = (t & l->string_encoding_mask) == l->one_byte_tag;
	repr = t & l->string_repr_mask;
	if (repr == l->seq_tag)
		return put_chars(r, s - 1 + (one ? l->seq_one_chars : l->seq_two_chars) +
					    from * (one ? 1 : 2), len, one, out);
	if (repr == l->thin_tag)	/* its own encoding bit may differ from its target's */
		return v8_field(r, s, l->thin_actual, &a) ? -EFAULT :
						       string_units(r, a, from, len, out, depth + 1);
	if (repr == l->sliced_tag) {
		if (v8_field(r, s, l->sliced_parent, &a) || v8_field(r, s, l->sliced_offset, &b) ||
		    !v8_is_smi(b) || v8_smi(r, b) < 0)
			return -EFAULT;
		return string_units(r, a, from + (size_t)v8_smi(r, b), len, out, depth + 1);
	}
	if (repr == l->cons_tag)
		return cons_units(r, s, from, len, out, depth);
	if (repr == l->external_tag && l->external_resource != V8ELF_NONE) {
		/* the resource's data, cached in the next word (not when 0x10: uncached) */
		if ((t & 0x10) || v8_field(r, s, l->external_resource + 8, &a) || !a)
			return -EFAULT;
		return put_chars(r, a + from * (one ? 1 : 2), len, one, out);
	}
	return -EFAULT;
}

/* The string s as UTF-8 in buf (len bytes; cut on a character); 0, or -EFAULT when it is not one. */
static int read_string(const struct reader *r, uint64_t s, char *buf, size_t len)
{
	uint16_t u[MAX_UNITS];
	/* a code unit is a byte or more of UTF-8: no more than fit are read */
	struct units out = { .u = u, .max = len - 1 < MAX_UNITS ? len - 1 : MAX_UNITS };
	size_t o = 0;

	buf[0] = '\0';
	if (string_units(r, s, 0, out.max, &out, 0))
		return -EFAULT;
	for (size_t i = 0; i < out.n; i++) {
		uint32_t c = u[i];
		char tmp[4];
		size_t k;

		if (c >= 0xd800 && c < 0xdc00 && i + 1 < out.n && u[i + 1] >= 0xdc00 &&
		    u[i + 1] < 0xe000) {	/* a surrogate pair */
			c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00);
			i++;
		} else if ((c >= 0xd800 && c < 0xe000) || c == 0) {
			c = 0xfffd;
		}
		k = utf8_put(c, tmp);
		if (o + k >= len)
			break;
		memcpy(buf + o, tmp, k);
		o += k;
	}
	buf[o] = '\0';
	return 0;
}

/* The i-th tagged slot of a ScopeInfo (after its map). */
static int slot(const struct reader *r, uint64_t si, int64_t i, uint64_t *v)
{
	if (i < 0 || i > 4 * MAX_CONTEXT_LOCALS)
		return -EFAULT;
	return v8_peek(r->pid, si - 1 + 8 + 8 * (uint64_t)i, v, 8);
}

/*
 * A compiled function's ScopeInfo: its name (or the name V8 inferred) into
 * name, its start offset in its script into *start (-1 unknown).
 */
static void scope_info(const struct reader *r, uint64_t si, char *name, size_t len, int64_t *start)
{
	const struct v8_elf *l = r->l;
	uint64_t w, n, v;
	uint32_t flags;
	int64_t i, nlocals;

	if (l->gen == V8GEN_UNKNOWN || l->scope_info_first_vars == V8ELF_NONE ||
	    l->scope_info_ncontext_locals == V8ELF_NONE || slot(r, si, 0, &w) ||
	    slot(r, si, l->scope_info_ncontext_locals, &n) || !v8_is_smi(n))
		return;
	/* the flags: a Smi (10-11), a raw uint32 (13) */
	flags = l->gen == V8GEN_13 ? (uint32_t)w : (uint32_t)v8_smi(r, w);
	nlocals = v8_smi(r, n);
	if (nlocals < 0 || nlocals > MAX_CONTEXT_LOCALS)
		return;
	i = l->scope_info_first_vars;
	if (l->gen == V8GEN_13) {
		if (!slot(r, si, 3, &v) && v8_is_smi(v))
			*start = v8_smi(r, v);
		if (SI_TYPE(flags) == SI_MODULE_13)
			i++;	/* module_variable_count */
	}
	i += nlocals < SCOPE_INLINE_NAMES ? nlocals : 1;	/* names, or their hash table */
	i += nlocals;	/* their infos */
	i += SI_SAVED_CLASS(flags);
	if (SI_FUNCTION_VAR(flags)) {
		if (!slot(r, si, i, &v) && v8_heap_object(v))
			read_string(r, v, name, len);
		i += 2;
	}
	if (SI_INFERRED(flags)) {
		if (!name[0] && !slot(r, si, i, &v) && v8_heap_object(v))
			read_string(r, v, name, len);
		i++;
	}
	if (l->gen != V8GEN_13 && SI_TYPE(flags) <= SI_LAST_POSITIONED_10 && !slot(r, si, i, &v) &&
	    v8_is_smi(v))
		*start = v8_smi(r, v);
}

/* The offsets of the '\n's of source (a string), into s; 0 or -errno. */
static int line_ends(const struct reader *r, uint64_t source, struct v8script *s)
{
	struct units out = { .u = NULL };
	int32_t slen = 0;
	size_t cap = 0;

	if (v8_type_of(r, source) < 0 || v8_type_of(r, source) >= r->l->first_nonstring_type ||
	    v8_peek(r->pid, source - 1 + r->l->string_length, &slen, 4) || slen < 0)
		return -EFAULT;
	out.max = (size_t)slen < MAX_SOURCE ? (size_t)slen : MAX_SOURCE;
	out.u = malloc(out.max * 2 + 2);
	if (!out.u)
		return -ENOMEM;
	if (string_units(r, source, 0, out.max, &out, 0)) {
		free(out.u);
		return -EFAULT;
	}
	s->scanned = out.n;
	for (size_t i = 0; i < out.n; i++) {
		if (out.u[i] != '\n')
			continue;
		if (s->nends == cap) {
			size_t nc = cap ? cap * 2 : 256;
			uint32_t *ne = realloc(s->ends, nc * sizeof(*ne));

			if (!ne) {
				free(out.u);
				return -ENOMEM;
			}
			s->ends = ne;
			cap = nc;
		}
		s->ends[s->nends++] = (uint32_t)i;
	}
	free(out.u);
	if (!s->ends)	/* one line: an empty list that is not "unread" */
		s->ends = malloc(sizeof(*s->ends));
	return s->ends ? 0 : -ENOMEM;
}

/* The script at tagged addr, read and kept (NULL: not a script). Under the lock. */
static struct v8script *script_get(struct v8sym *vs, const struct reader *r, uint64_t addr)
{
	const struct v8_elf *l = r->l;
	char key[64], name[512] = "";	/* a frame's file: v8sym_frame.file */
	struct v8script *s;
	uint64_t v, source = 0;

	/* by its source too: another script the collector put at the address has another */
	if (v8_type_of(r, addr) != l->script_type ||
	    (l->script_source != V8ELF_NONE && v8_field(r, addr, l->script_source, &source)))
		return NULL;
	snprintf(key, sizeof(key), "%d:%" PRIx64 ":%" PRIx64, r->pid, addr, source);
	s = hmap_get(&vs->scripts, key);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (!v8_field(r, addr, l->script_name, &v) && v8_heap_object(v))
		read_string(r, v, name, sizeof(name));
	s->name = strdup(name);
	/* the source's line ends: the script's own once V8 computed them, a
	 * FixedArray of Smis, are what the source says too; counted here once */
	if (source)
		line_ends(r, source, s);
	s->bytes = sizeof(*s) + strlen(name) + 1 + s->nends * sizeof(*s->ends);
	if (!s->name || vs->bytes + s->bytes > MAX_BYTES ||
	    hmap_put(&vs->scripts, key, s, NULL)) {
		vs->stats.dropped++;
		script_free(s);
		return NULL;
	}
	vs->bytes += s->bytes;
	vs->stats.scripts++;
	return s;
}

/* The source position table of the function's bytecode, copied into f. */
static void positions(const struct reader *r, uint64_t sfi, struct v8fn *f)
{
	const struct v8_elf *l = r->l;
	uint64_t bytecode, table, n;
	int t;

	if (l->bytecode_positions == V8ELF_NONE || v8_field(r, sfi, l->sfi_function_data, &bytecode) ||
	    v8_type_of(r, bytecode) != l->bytecode_array_type ||
	    v8_field(r, bytecode, l->bytecode_positions, &table))
		return;
	t = v8_type_of(r, table);
	if (t < 0 || (t != l->byte_array_type && t != l->trusted_byte_array_type) ||
	    v8_field(r, table, l->fixed_array_length, &n) || !v8_is_smi(n) || v8_smi(r, n) <= 0 ||
	    v8_smi(r, n) > MAX_TABLE)
		return;
	f->ntable = (size_t)v8_smi(r, n);
	f->table = malloc(f->ntable);
	if (f->table && v8_peek(r->pid, table - 1 + l->fixed_array_data, f->table, f->ntable)) {
		free(f->table);
		f->table = NULL;
	}
	if (!f->table)
		f->ntable = 0;
}

/* The function of SharedFunctionInfo sfi, read. NULL: not one, or unreadable. */
static struct v8fn *fn_read(struct v8sym *vs, const struct reader *r, uint64_t sfi)
{
	const struct v8_elf *l = r->l;
	char name[256] = "";	/* a frame's name: v8sym_frame.name */
	struct v8fn *f;
	uint64_t v;
	int t;

	vs->stats.reads++;
	if (v8_type_of(r, sfi) != l->sfi_type || v8_field(r, sfi, l->sfi_name_or_scope_info, &v))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->start = -1;
	f->nsi = v;
	t = v8_type_of(r, v);
	if (t >= 0 && t < l->first_nonstring_type)	/* lazy functions, builtins */
		read_string(r, v, name, sizeof(name));
	else if (t >= 0 && t == l->scope_info_type)
		scope_info(r, v, name, sizeof(name), &f->start);
	f->name = strdup(name);
	if (!v8_field(r, sfi, l->sfi_script, &v) && v8_heap_object(v))
		f->script = script_get(vs, r, v);
	positions(r, sfi, f);
	if (!f->name) {
		fn_free(f);
		return NULL;
	}
	f->bytes = sizeof(*f) + strlen(f->name) + 1 + f->ntable;
	return f;
}

int64_t v8sym_position(const uint8_t *table, size_t len, int64_t off)
{
	int64_t raw = v8code_raw_position(table, len, off, -1);

	/* SourcePosition: bit 0 external, bits 1-30 the script offset + 1 */
	return raw < 0 ? -1 : (raw >> 1 & 0x3fffffff) - 1;
}

void v8sym_line(const uint32_t *ends, size_t nends, int64_t pos, int *line, int *column)
{
	size_t lo = 0, hi = nends;

	*line = *column = 0;
	if (pos < 0)
		return;
	while (lo < hi) {	/* the first '\n' at or after pos */
		size_t mid = lo + (hi - lo) / 2;

		if ((int64_t)ends[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	*line = (int)lo + 1;
	*column = (int)(pos - (lo ? (int64_t)ends[lo - 1] + 1 : 0)) + 1;
}

/* The frame of f at script offset pos (-1: its start) into ret. */
static void frame_at(const struct v8fn *f, int64_t pos, struct v8sym_frame *ret)
{
	const char *file = f->script ? f->script->name : "";
	int fl = 0, fc = 0;

	if (pos < 0)
		pos = f->start;
	snprintf(ret->file, sizeof(ret->file), "%s", file);	/* read to fit */
	ret->line = ret->column = 0;
	if (f->script && f->script->ends && (uint64_t)pos < f->script->scanned + 1)
		v8sym_line(f->script->ends, f->script->nends, pos, &ret->line, &ret->column);
	if (f->name[0]) {
		snprintf(ret->name, sizeof(ret->name), "%s", f->name);	/* read to fit */
		return;
	}
	if (f->script && f->script->ends && f->start >= 0 &&
	    (uint64_t)f->start < f->script->scanned + 1)
		v8sym_line(f->script->ends, f->script->nends, f->start, &fl, &fc);
	if (fl) {
		const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
		int cut = (int)utf8_cut(base, strlen(base), sizeof(ret->name) - 32);

		snprintf(ret->name, sizeof(ret->name), "<anonymous@%.*s:%d>", cut, base, fl);
	} else {
		snprintf(ret->name, sizeof(ret->name), "<anonymous>");
	}
}

/* An interpreted frame's script offset: its bytecode offset's position; -1 unknown. */
static int64_t interpreted_pos(const struct v8fn *f, const struct v8_elf *l, uint32_t aux)
{
	/* the slot holds the offset plus the array's header, less the tag */
	int64_t off = (int64_t)(aux & V8_VALUE_MASK) - (l->bytecode_array_data - 1);

	if (!f->table || l->bytecode_array_data == V8ELF_NONE)
		return -1;
	return v8sym_position(f->table, f->ntable, off);
}

/*
 * Whether the cache has room for bytes more in one more entry of a table holding
 * *count; when not, what was read of running processes goes (they can be read
 * again; what ended is kept for its profile, until v8sym_gc). Under the lock.
 */
static bool room(struct v8sym *vs, const uint64_t *count, size_t bytes)
{
	if (*count < vs->max_functions && vs->bytes + bytes <= MAX_BYTES)
		return true;
	vs->stats.evictions++;
	drop_pid(vs, -1);
	return *count < vs->max_functions && vs->bytes + bytes <= MAX_BYTES;
}

/* Keeps f under key, within the cache's bounds; false: not kept (counted). Under the lock. */
static bool fn_keep(struct v8sym *vs, const char *key, struct v8fn *f)
{
	if (!room(vs, &vs->stats.functions, f->bytes) || hmap_put(&vs->fns, key, f, NULL)) {
		vs->stats.dropped++;
		return false;
	}
	vs->bytes += f->bytes;
	vs->stats.functions++;
	return true;
}

/* Functions read for one lookup and not kept: freed at its end. */
struct unkept {
	struct v8fn *f[V8CODE_MAX_CHAIN + 1];
	int n;
};

/*
 * Whether what is at sfi now is not the function read there: it no longer is a
 * SharedFunctionInfo, or holds another name or ScopeInfo (a compaction moved
 * it, and put another object there). Two reads.
 */
static bool fn_moved(const struct reader *r, uint64_t sfi, const struct v8fn *f)
{
	uint64_t v;

	return v8_type_of(r, sfi) != r->l->sfi_type ||
	       v8_field(r, sfi, r->l->sfi_name_or_scope_info, &v) || v != f->nsi;
}

/*
 * The function sfi of p: cached (checked against the process's memory when
 * fresh: a sample just taken), else read (unless p is gone). NULL: unreadable.
 * Under the lock.
 */
static struct v8fn *fn_get(struct v8sym *vs, const struct reader *r, const struct v8pid *p,
			   uint64_t sfi, bool fresh, struct unkept *u)
{
	char key[48];
	struct v8fn *f;

	snprintf(key, sizeof(key), "%d:%" PRIx64, r->pid, sfi);
	f = hmap_get(&vs->fns, key);
	if (f && fresh && !p->gone && fn_moved(r, sfi, f)) {
		vs->stats.moved++;	/* the collector moved it, another is there */
		vs->stats.functions--;
		vs->bytes -= f->bytes;
		fn_free(hmap_del(&vs->fns, key));
		f = NULL;
	}
	if (f) {
		vs->stats.hits++;
		return f;
	}
	if (p->gone || !(f = fn_read(vs, r, sfi))) {
		vs->stats.read_errors++;
		return NULL;
	}
	if (!fn_keep(vs, key, f))
		u->f[u->n++] = f;
	return f;
}

/* The Code of p that holds pc: one found before, else found in its memory. Under the lock. */
static const struct v8code *code_of(const struct reader *r, struct v8pid *p, uint64_t pc)
{
	struct v8code *c;
	uint64_t code;

	for (int i = 0; i < CODE_RING; i++) {
		c = &p->codes[i];
		if (c->code && pc >= c->start && pc - c->start < c->size)
			return c;
	}
	code = v8code_find(r, pc, &p->code_map);
	if (!code)
		return NULL;
	c = &p->codes[p->next_code];
	p->next_code = (p->next_code + 1) % CODE_RING;
	v8code_free(c);
	if (v8code_read(r, code, c)) {
		memset(c, 0, sizeof(*c));
		return NULL;
	}
	return c;
}

/* The Code holding a compiled frame's pc, from its low bits: one of the candidates in
 * p's JIT mappings (read again when none is, at most once a second). */
static const struct v8code *code_at(struct v8sym *vs, const struct reader *r, struct v8pid *p,
				    uint32_t low, uint64_t *pc)
{
	uint64_t pcs[4], now;
	const struct v8code *c;
	int n = v8code_full_pcs(&p->jit, low, pcs, 4);

	now = clock_mono_ns();
	if (!n && (!p->jit_read_ns || now - p->jit_read_ns >= JIT_REREAD_NS)) {
		p->jit_read_ns = now;
		if (!v8code_jit_ranges(r->pid, &p->jit))
			n = v8code_full_pcs(&p->jit, low, pcs, 4);
		vs->stats.jit_ranges_dropped += (uint64_t)p->jit.dropped;
	}
	for (int i = 0; i < n; i++) {
		if ((c = code_of(r, p, pcs[i]))) {
			*pc = pcs[i];
			return c;
		}
	}
	vs->stats.code_missing++;
	return NULL;
}

/*
 * The functions at a compiled frame's pc (aux: V8_PC_JIT and its low bits) in
 * the function sfi, into ch: those optimized code inlined there, innermost
 * first, and sfi itself last; n 0 when it is not optimized code, or its tables
 * say another function. Cached when that is final (not when the code was not
 * found: it may be, later). Under the lock.
 */
static void chain_get(struct v8sym *vs, const struct reader *r, struct v8pid *p, uint64_t sfi,
		      uint32_t aux, struct v8chain *ch)
{
	char key[64];
	struct v8chain *kept;
	const struct v8code *c;
	uint64_t pc;

	memset(ch, 0, sizeof(*ch));
	if (!(aux & V8_PC_JIT))
		return;	/* a builtin's pc: its function alone */
	/* the function too: code freed and another's put at the same pc is another key */
	snprintf(key, sizeof(key), "%d:p:%" PRIx32 ":%" PRIx64, r->pid, aux & V8_PC_MASK, sfi);
	kept = hmap_get(&vs->chains, key);
	if (kept) {
		*ch = *kept;
		return;
	}
	if (p->gone || !(c = code_at(vs, r, p, aux & V8_PC_MASK, &pc)))
		return;
	if (!v8code_chain(c, pc, ch) && ch->sfi[ch->n - 1] != sfi) {
		vs->stats.scope_errors++;	/* not this function's code: its own name alone */
		ch->n = 0;
	}
	if (!room(vs, &vs->stats.chains, sizeof(*ch)) || !(kept = malloc(sizeof(*kept)))) {
		vs->stats.dropped++;
		return;
	}
	*kept = *ch;
	if (hmap_put(&vs->chains, key, kept, NULL)) {
		free(kept);
		vs->stats.dropped++;
		return;
	}
	vs->bytes += sizeof(*kept);
	vs->stats.chains++;
}

/* The frames of a compiled frame's optimized code (0 when it is not known). Under the lock. */
static int compiled_frames(struct v8sym *vs, const struct reader *r, struct v8pid *p,
			   uint64_t sfi, uint32_t aux, bool fresh, struct v8sym_frames *ret,
			   struct unkept *u)
{
	struct v8chain ch;
	struct v8fn *f;

	if (r->l->code_type == V8ELF_NONE)
		return 0;
	chain_get(vs, r, p, sfi, aux, &ch);
	for (int i = 0; i < ch.n; i++) {
		if (!(f = fn_get(vs, r, p, ch.sfi[i], fresh, u)))
			continue;	/* an inlined function unreadable: left out */
		frame_at(f, ch.pos[i], &ret->f[ret->n++]);
	}
	vs->stats.inlined += ret->n > 1 ? (uint64_t)(ret->n - 1) : 0;
	vs->stats.inlined_cut += (uint64_t)ch.cut;
	return ret->n;
}

int v8sym_frames(struct v8sym *vs, int pid, uint64_t sfi, uint32_t aux, bool fresh,
		 struct v8sym_frames *ret)
{
	char key[16];
	struct v8pid *p;
	struct v8fn *f;
	struct reader r = { .pid = pid };
	struct unkept u = { .n = 0 };
	uint32_t kind = aux >> V8_KIND_SHIFT;
	int err = 0;

	ret->n = 0;
	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&vs->lock);
	vs->stats.lookups++;
	p = hmap_get(&vs->pids, key);
	if (!p) {
		pthread_mutex_unlock(&vs->lock);
		return -ENOENT;
	}
	r.l = &p->l;
	if (kind == V8_COMPILED && compiled_frames(vs, &r, p, sfi, aux, fresh, ret, &u))
		goto out;
	f = fn_get(vs, &r, p, sfi, fresh, &u);
	if (!f) {
		err = -EFAULT;
		goto out;
	}
	frame_at(f, kind == V8_INTERPRETED ? interpreted_pos(f, r.l, aux) : -1, &ret->f[0]);
	ret->n = 1;
out:
	for (int i = 0; i < ret->n; i++)
		vs->stats.no_line += !ret->f[i].line;
	for (int i = 0; i < u.n; i++)
		fn_free(u.f[i]);
	pthread_mutex_unlock(&vs->lock);
	return err;
}

int v8sym_lookup(struct v8sym *vs, int pid, uint64_t sfi, uint32_t aux, struct v8sym_frame *ret)
{
	struct v8sym_frames fr;
	int err = v8sym_frames(vs, pid, sfi, aux, true, &fr);

	if (!err)
		*ret = fr.f[0];
	return err;
}

void v8sym_gc(struct v8sym *vs)
{
	pthread_mutex_lock(&vs->lock);
	hmap_for_each(&vs->pids, it) {
		struct v8pid *p = it->val;

		if (!p->gone)
			continue;
		drop_pid(vs, (int)strtol(it->key, NULL, 10));
		pid_free(hmap_del_entry(&vs->pids, it));
	}
	pthread_mutex_unlock(&vs->lock);
}

void v8sym_stats(struct v8sym *vs, struct v8sym_stats *ret)
{
	pthread_mutex_lock(&vs->lock);
	*ret = vs->stats;
	ret->bytes = vs->bytes;
	pthread_mutex_unlock(&vs->lock);
}
