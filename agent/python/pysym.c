// SPDX-License-Identifier: Apache-2.0
#include "pysym.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "hmap.h"
#include "oncpu.h"
#include "utf8.h"

#define DEFAULT_ENTRIES 65536
#define MAX_BYTES (32u << 20)	/* of names, files and line tables held */
#define MAX_STR 255		/* code points of a name or file read */
#define MAX_TABLE (64u << 10)	/* bytes of a line table read */

/* A code object's fields, per version (x86_64). */
struct code_layout {
	uint16_t firstlineno, filename, name, qualname, linetable;
	uint16_t ascii_data, compact_data;	/* where a str's characters start */
};

static const struct code_layout layout_38 = { 40, 104, 112, 0, 120, 48, 72 };
static const struct code_layout layout_311 = { 72, 112, 120, 128, 136, 48, 72 };
static const struct code_layout layout_312 = { 68, 112, 120, 128, 136, 40, 56 };

struct pycode {
	char *name, *file;
	uint8_t *table;
	size_t ntable;
	size_t bytes;		/* what it holds, against MAX_BYTES */
	int first_line;
};

struct pysym {
	pthread_mutex_t lock;
	struct hmap pids;	/* "pid" -> (intptr_t) minor, | PID_GONE once it ended */
	struct hmap codes;	/* "pid:code" -> struct pycode */
	size_t max_entries;
	size_t bytes;		/* held by the codes */
	struct pysym_stats stats;
};

static const struct code_layout *layout_of(int minor)
{
	return minor >= 12 ? &layout_312 : minor == 11 ? &layout_311 : &layout_38;
}

struct pysym *pysym_new(size_t max_entries)
{
	struct pysym *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	pthread_mutex_init(&ps->lock, NULL);
	ps->max_entries = max_entries ? max_entries : DEFAULT_ENTRIES;
	return ps;
}

static void code_free(struct pycode *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->file);
	free(c->table);
	free(c);
}

static void codes_clear(struct pysym *ps)
{
	hmap_for_each(&ps->codes, it)
		code_free(it->val);
	hmap_free(&ps->codes);
	ps->bytes = 0;
}

void pysym_free(struct pysym *ps)
{
	if (!ps)
		return;
	codes_clear(ps);
	hmap_free(&ps->pids);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

#define PID_GONE 0x100	/* in pids: the process ended; its names stay for the profile */

/* Drops the code objects of pid (only counts them when !drop); how many. Under ps->lock. */
static size_t codes_of_pid(struct pysym *ps, int pid, bool drop)
{
	char prefix[24];
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "%d:", pid), found = 0;

	hmap_for_each(&ps->codes, it) {
		struct pycode *c = it->val;

		if (strncmp(it->key, prefix, n))
			continue;
		found++;
		if (drop) {
			ps->bytes -= c->bytes;
			code_free(hmap_del_entry(&ps->codes, it));
		}
	}
	return found;
}

void pysym_set_pid(struct pysym *ps, int pid, int minor)
{
	char key[16];
	intptr_t was;

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&ps->lock);
	was = (intptr_t)hmap_get(&ps->pids, key);
	if (was & PID_GONE)	/* the pid is another process's now */
		codes_of_pid(ps, pid, true);
	hmap_put(&ps->pids, key, (void *)(intptr_t)minor, NULL);
	pthread_mutex_unlock(&ps->lock);
}

void pysym_forget_pid(struct pysym *ps, int pid)
{
	char key[16];
	intptr_t was;

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&ps->lock);
	was = (intptr_t)hmap_get(&ps->pids, key);
	if (was && !codes_of_pid(ps, pid, false))	/* nothing read: nothing to keep */
		hmap_del(&ps->pids, key);
	else if (was)
		hmap_put(&ps->pids, key, (void *)(was | PID_GONE), NULL);
	pthread_mutex_unlock(&ps->lock);
}

static int peek(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* A compact str object at addr as UTF-8 (truncated at MAX_STR code points); NULL on a fault. */
static char *read_str(int pid, uint64_t addr, const struct code_layout *l)
{
	uint8_t hdr[40], raw[MAX_STR * 4];
	int64_t len;
	uint32_t state, kind;
	char *out, *p;

	if (!addr || peek(pid, addr, hdr, sizeof(hdr)))
		return NULL;
	memcpy(&len, hdr + 16, 8);
	memcpy(&state, hdr + 32, 4);
	kind = state >> 2 & 7;
	if (len < 0 || !(state >> 5 & 1) || (kind != 1 && kind != 2 && kind != 4))
		return NULL;	/* not a compact str: not what a code object names */
	if (len > MAX_STR)
		len = MAX_STR;
	if (len && peek(pid, addr + (state >> 6 & 1 ? l->ascii_data : l->compact_data), raw,
			(size_t)len * kind))
		return NULL;
	out = p = malloc((size_t)len * 4 + 1);
	if (!out)
		return NULL;
	for (int64_t i = 0; i < len; i++) {
		uint32_t c = kind == 1 ? raw[i] : kind == 2 ? (uint32_t)raw[2 * i] | raw[2 * i + 1] << 8 :
			     (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
				     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;

		/* NUL and lone surrogates (surrogateescape'd file names) are no UTF-8 */
		p += utf8_put(c && (c < 0xd800 || c > 0xdfff) ? c : 0xfffd, p);
	}
	*p = '\0';
	return out;
}

/* A bytes object's contents (at most MAX_TABLE bytes). */
static int read_bytes(int pid, uint64_t addr, uint8_t **ret, size_t *ret_len)
{
	int64_t n;

	*ret = NULL;
	*ret_len = 0;
	if (!addr || peek(pid, addr + 16, &n, sizeof(n)) || n < 0)
		return -EFAULT;
	if ((uint64_t)n > MAX_TABLE)
		n = MAX_TABLE;
	*ret = malloc((size_t)n + 1);
	if (!*ret)
		return -ENOMEM;
	if (n && peek(pid, addr + 32, *ret, (size_t)n)) {
		free(*ret);
		*ret = NULL;
		return -EFAULT;
	}
	*ret_len = (size_t)n;
	return 0;
}

static struct pycode *code_read(int pid, int minor, uint64_t code)
{
	const struct code_layout *l = layout_of(minor);
	uint8_t obj[144];
	uint64_t filename, name, qualname = 0, table;
	int32_t first;
	struct pycode *c;

	if (peek(pid, code, obj, sizeof(obj)))
		return NULL;
	memcpy(&first, obj + l->firstlineno, 4);
	memcpy(&filename, obj + l->filename, 8);
	memcpy(&name, obj + l->name, 8);
	if (l->qualname)
		memcpy(&qualname, obj + l->qualname, 8);
	memcpy(&table, obj + l->linetable, 8);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->first_line = first;
	c->name = read_str(pid, qualname ? qualname : name, l);
	c->file = read_str(pid, filename, l);
	read_bytes(pid, table, &c->table, &c->ntable);
	if (!c->name) {	/* nothing names it: not a code object any more */
		code_free(c);
		return NULL;
	}
	if (!c->file)
		c->file = strdup("");
	if (!c->file) {
		code_free(c);
		return NULL;
	}
	c->bytes = sizeof(*c) + strlen(c->name) + strlen(c->file) + c->ntable + 2;
	return c;
}

/* 3.8/3.9 co_lnotab: (byte increment, signed line increment) pairs. */
static int64_t line_lnotab(const uint8_t *t, size_t len, int64_t line, uint32_t byte_off)
{
	uint32_t addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > byte_off)
			break;
		line += (int8_t)t[i + 1];
	}
	return line;
}

/* 3.10 co_linetable: (byte range length, signed line delta; -128 = no line) pairs. */
static int64_t line_310(const uint8_t *t, size_t len, int64_t first, uint32_t byte_off)
{
	uint32_t end = 0;
	int64_t line = first;

	for (size_t i = 0; i + 1 < len; i += 2) {
		uint32_t start = end;

		end += t[i];
		if ((int8_t)t[i + 1] != -128)
			line += (int8_t)t[i + 1];
		if (byte_off >= start && byte_off < end)
			return (int8_t)t[i + 1] == -128 ? first : line;
	}
	return first;
}

static uint32_t varint(const uint8_t *t, size_t len, size_t *i)
{
	uint32_t v = 0;
	unsigned shift = 0;

	while (*i < len && shift < 32) {
		uint8_t b = t[(*i)++];

		v |= (uint32_t)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	return v;
}

static int32_t svarint(const uint8_t *t, size_t len, size_t *i)
{
	uint32_t u = varint(t, len, i);

	return u & 1 ? -(int32_t)(u >> 1) : (int32_t)(u >> 1);
}

/* 3.11+ location table (PEP 657): entries of a code and a length in code units. */
static int64_t line_311(const uint8_t *t, size_t len, int64_t first, uint32_t unit)
{
	uint32_t addr = 0;
	int64_t line = first;
	size_t i = 0;

	while (i < len) {
		uint8_t b = t[i++];
		unsigned code = b >> 3 & 15, n = (b & 7) + 1;
		int64_t delta = 0;

		if (!(b & 0x80))
			continue;	/* not an entry's first byte: resynchronize */
		if (code == 14) {		/* long form */
			delta = svarint(t, len, &i);
			varint(t, len, &i);
			varint(t, len, &i);
			varint(t, len, &i);
		} else if (code == 13) {	/* no columns */
			delta = svarint(t, len, &i);
		} else if (code >= 10 && code <= 12) {	/* one line */
			delta = (int64_t)code - 10;
			i += 2;
		} else if (code < 10) {		/* short form: same line */
			i += 1;
		}
		line += delta;
		if (unit >= addr && unit < addr + n)
			return code == 15 ? first : line;
		addr += n;
	}
	return first;
}

int pysym_line(int minor, const uint8_t *table, size_t len, int first_line, uint32_t instr)
{
	int64_t line;

	if (instr == PY_NO_INSTR || !table)
		return first_line;
	if (minor >= 11)
		line = line_311(table, len, first_line, instr);
	else if (minor == 10)
		line = line_310(table, len, first_line, instr * 2u);
	else
		line = line_lnotab(table, len, first_line, instr * 2u);
	/* a table of the process's own making may say anything: lines are positive ints */
	return line > 0 && line <= INT32_MAX ? (int)line : first_line;
}

/* Keeps c under ckey, within the entry and byte bounds; the one kept. Under ps->lock. */
static struct pycode *code_keep(struct pysym *ps, const char *ckey, struct pycode *c)
{
	struct pycode *had = hmap_get(&ps->codes, ckey);

	if (had) {	/* read meanwhile by another caller */
		code_free(c);
		return had;
	}
	if (ps->codes.n >= ps->max_entries || ps->bytes + c->bytes > MAX_BYTES) {
		ps->stats.evictions += ps->codes.n;	/* bounded: start again */
		codes_clear(ps);
		hmap_for_each(&ps->pids, it)	/* and the ended processes go */
			if ((intptr_t)it->val & PID_GONE)
				hmap_del_entry(&ps->pids, it);
	}
	if (hmap_put(&ps->codes, ckey, c, NULL)) {
		code_free(c);
		return NULL;
	}
	ps->bytes += c->bytes;
	return c;
}

int pysym_lookup(struct pysym *ps, int pid, uint64_t code, uint32_t instr,
		 struct pysym_frame *ret)
{
	char pkey[16], ckey[48];
	struct pycode *c;
	intptr_t minor;
	int err = 0;

	snprintf(pkey, sizeof(pkey), "%d", pid);
	snprintf(ckey, sizeof(ckey), "%d:%" PRIx64, pid, code);
	pthread_mutex_lock(&ps->lock);
	ps->stats.lookups++;
	minor = (intptr_t)hmap_get(&ps->pids, pkey);
	c = minor ? hmap_get(&ps->codes, ckey) : NULL;
	if (c) {
		ps->stats.hits++;
	} else if (!minor || (minor & PID_GONE)) {	/* no CPython known, or nothing to read */
		err = minor ? -EFAULT : -ENOENT;
		ps->stats.read_errors += minor != 0;
		goto out;
	} else {
		ps->stats.reads++;
		/* read without the lock: a slow process holds up no other caller */
		pthread_mutex_unlock(&ps->lock);
		c = code_read(pid, (int)(minor & 0xff), code);
		pthread_mutex_lock(&ps->lock);
		ps->stats.read_errors += !c;
		/* the process ended or exec'd meanwhile: what was read may be another's */
		if (c && (intptr_t)hmap_get(&ps->pids, pkey) != minor) {
			code_free(c);
			c = NULL;
		}
		if (!c || !(c = code_keep(ps, ckey, c))) {
			err = -EFAULT;
			goto out;
		}
	}
	snprintf(ret->name, sizeof(ret->name), "%s", c->name);
	snprintf(ret->file, sizeof(ret->file), "%s", c->file);
	ret->line = pysym_line((int)(minor & 0xff), c->table, c->ntable, c->first_line, instr);
out:
	pthread_mutex_unlock(&ps->lock);
	return err;
}

void pysym_stats(struct pysym *ps, struct pysym_stats *ret)
{
	pthread_mutex_lock(&ps->lock);
	*ret = ps->stats;
	ret->entries = ps->codes.n;
	pthread_mutex_unlock(&ps->lock);
}

/* The module file names: [*ret, *ret + *ret_len) of file, or length 0 for none. */
static void module_of(const char *file, const char **ret, size_t *ret_len)
{
	const char *base = strrchr(file, '/'), *dot;
	size_t n;

	*ret_len = 0;
	if (file[0] == '<') {	/* "<frozen importlib._bootstrap>", "<string>" */
		if (!strncmp(file, "<frozen ", 8) && (n = strlen(file)) > 9 && file[n - 1] == '>') {
			*ret = file + 8;
			*ret_len = n - 9;
		}
		return;
	}
	base = base ? base + 1 : file;
	dot = strrchr(base, '.');
	if (!dot || dot == base || (strcmp(dot, ".py") && strcmp(dot, ".pyc") && strcmp(dot, ".pyw")))
		return;
	if ((size_t)(dot - base) == 8 && !strncmp(base, "__init__", 8)) {
		const char *dir = base - 1;	/* the '/' before it; the package is the directory */

		if (base == file)
			return;
		while (dir > file && dir[-1] != '/')
			dir--;
		n = (size_t)(base - 1 - dir);
		if ((n == 1 && dir[0] == '.') || (n == 2 && !strncmp(dir, "..", 2)))
			return;	/* "./__init__.py": no package name */
		*ret = dir;
		*ret_len = n;
		return;
	}
	*ret = base;
	*ret_len = (size_t)(dot - base);
}

void pysym_qualified(const struct pysym_frame *f, char *buf, size_t len)
{
	const char *mod;
	size_t n;

	module_of(f->file, &mod, &n);
	if (n)
		snprintf(buf, len, "%.*s.%s", (int)n, mod, f->name);
	else
		snprintf(buf, len, "%s", f->name);
}
