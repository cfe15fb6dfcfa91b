// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel text symbols from /proc/kallsyms: "ffffffff81000000 T _stext" and
 * "ffffffffc0a01000 t xfs_foo\t[xfs]". Only text (t/T/w/W) is kept, sorted by
 * address, one symbol per address; names and module names live in one arena.
 */
#include "ksyms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"

#define KSYMS_MAX (16u << 20)	/* a real kernel has a few hundred thousand */
#define KSYM_LINE_MAX 1024	/* a longer line is not kallsyms: skipped */

struct ksyms {
	struct ksym *syms;
	uint32_t n, cap;
	char *strs;		/* names and module names, back to back */
	size_t strs_len, strs_cap;
};

/* Stores a string; returns its offset (made into a pointer once the arena stops moving). */
static long add_str(struct ksyms *k, const char *s, size_t len)
{
	if (k->strs_len + len + 1 > k->strs_cap) {
		size_t ncap = k->strs_cap ? k->strs_cap * 2 : 1 << 16;
		char *n;

		while (ncap < k->strs_len + len + 1)
			ncap *= 2;
		n = realloc(k->strs, ncap);
		if (!n)
			return -ENOMEM;
		k->strs = n;
		k->strs_cap = ncap;
	}
	memcpy(k->strs + k->strs_len, s, len);
	k->strs[k->strs_len + len] = '\0';
	k->strs_len += len + 1;
	return (long)(k->strs_len - len - 1);
}

static unsigned leading_underscores(const char *s)
{
	unsigned n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/* A symbol while loading: the arena still moves, so names are offsets. */
struct kent {
	uint64_t addr;
	long name, module;	/* offsets in strs, module -1 for vmlinux */
	bool global;
};

/*
 * By address; at one address the preferred alias first: global (T/W) before
 * local, then the one with fewer leading underscores, then by name (stable output).
 */
static int cmp_kent(const void *a, const void *b, void *strs)
{
	const struct kent *x = a, *y = b;
	const char *xn, *yn;
	unsigned ux, uy;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->global != y->global)
		return x->global ? -1 : 1;
	xn = (const char *)strs + x->name;
	yn = (const char *)strs + y->name;
	ux = leading_underscores(xn);
	uy = leading_underscores(yn);
	if (ux != uy)
		return ux < uy ? -1 : 1;
	return strcmp(xn, yn);
}

/*
 * Parses one line. Returns 1 for a text symbol (fills *ret and the spans of
 * name and module), 0 for a valid line of another type, -EINVAL for garbage.
 */
static int parse_line(const char *line, uint64_t *ret_addr, char *ret_type, const char **ret_name,
		      size_t *ret_name_len, const char **ret_mod, size_t *ret_mod_len)
{
	const char *p = line, *name, *mod = NULL;
	size_t name_len, mod_len = 0;
	uint64_t addr = 0;
	int digits = 0;
	char type;

	for (; *p && *p != ' '; p++, digits++) {
		int v;

		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			return -EINVAL;
		addr = addr << 4 | (uint64_t)v;
	}
	if (!digits || digits > 16 || *p != ' ' || !p[1] || p[2] != ' ')
		return -EINVAL;
	type = p[1];
	name = p + 3;
	name_len = strcspn(name, " \t\r\n");
	if (!name_len)
		return -EINVAL;
	p = name + name_len;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		mod = p + 1;
		mod_len = strcspn(mod, "]\r\n");
		if (mod[mod_len] != ']' || !mod_len)
			return -EINVAL;
	}
	*ret_addr = addr;
	*ret_type = type;
	if (type != 't' && type != 'T' && type != 'w' && type != 'W')
		return 0;
	*ret_name = name;
	*ret_name_len = name_len;
	*ret_mod = mod;
	*ret_mod_len = mod_len;
	return 1;
}

void ksyms__free(struct ksyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->strs);
	free(k);
}

/* kallsyms as it is read: its entries, and what was seen. */
struct kread {
	struct kent *ents;
	uint32_t nents, cap;
	uint64_t lines, bad;
	long last_mod;		/* offset of the module name stored last, or -1 */
	size_t last_mod_len;
	bool nonzero;		/* an address was not 0 (kptr_restrict hides them all) */
};

/* One symbol line into r. 0 or -errno. */
static int kread_add(struct ksyms *k, struct kread *r, uint64_t addr, char type, const char *name,
		     size_t name_len, const char *mod, size_t mod_len)
{
	struct kent *e;

	if (r->nents >= KSYMS_MAX)
		return -E2BIG;
	if (grow_array((void **)&r->ents, &r->cap, r->nents + 1, sizeof(*r->ents), 4096))
		return -ENOMEM;
	e = &r->ents[r->nents];
	e->addr = addr;
	e->global = type == 'T' || type == 'W';
	e->name = add_str(k, name, name_len);
	e->module = -1;
	if (e->name < 0)
		return -ENOMEM;
	if (mod) {
		/* a module's symbols come in one run: store its name once */
		if (r->last_mod < 0 || r->last_mod_len != mod_len ||
		    memcmp(k->strs + r->last_mod, mod, mod_len)) {
			r->last_mod = add_str(k, mod, mod_len);
			if (r->last_mod < 0)
				return -ENOMEM;
			r->last_mod_len = mod_len;
		}
		e->module = r->last_mod;
	}
	r->nents++;
	return 0;
}

/* Every line of f into r. 0 or -errno. */
static int kread_file(struct ksyms *k, struct kread *r, FILE *f)
{
	char line[KSYM_LINE_MAX];
	int err = 0;

	while (!err && fgets(line, sizeof(line), f)) {
		const char *name = NULL, *mod = NULL;
		size_t name_len = 0, mod_len = 0;
		uint64_t addr = 0;
		char type = 0;
		int n;

		if (!strchr(line, '\n') && !feof(f)) {
			int ch;

			/* too long for kallsyms: skip the rest of it */
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			r->bad++;
			continue;
		}
		n = parse_line(line, &addr, &type, &name, &name_len, &mod, &mod_len);
		if (n < 0) {
			r->bad++;
			continue;
		}
		r->lines++;
		r->nonzero |= addr != 0;
		if (n > 0)
			err = kread_add(k, r, addr, type, name, name_len, mod, mod_len);
	}
	return err ? err : ferror(f) ? -EIO : 0;
}

/* The entries, sorted, one per address (the preferred alias sorts first), into k. */
static int kread_finish(struct ksyms *k, struct kread *r)
{
	uint32_t w = 0;

	if (r->nents)
		qsort_r(r->ents, r->nents, sizeof(*r->ents), cmp_kent, k->strs);
	k->syms = malloc((r->nents ? r->nents : 1) * sizeof(*k->syms));
	if (!k->syms)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nents; i++) {
		if (w && k->syms[w - 1].addr == r->ents[i].addr)
			continue;
		k->syms[w++] = (struct ksym){
			.addr = r->ents[i].addr,
			.name = k->strs + r->ents[i].name,
			.module = r->ents[i].module >= 0 ? k->strs + r->ents[i].module : NULL,
		};
	}
	k->n = w;
	k->cap = w;
	return 0;
}

static struct ksyms *load_once(const char *file, int *ret_err)
{
	struct kread r = { .last_mod = -1 };
	struct ksyms *k;
	int err;
	FILE *f;

	f = fopen(file, "re");
	if (!f) {
		*ret_err = -errno;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	err = k ? kread_file(k, &r, f) : -ENOMEM;
	if (!err && !r.lines) {
		log_debug("%s: no kallsyms lines (%" PRIu64 " unreadable)", file, r.bad);
		err = -EINVAL;
	}
	if (!err && !r.nonzero)
		err = -EPERM;	/* kptr_restrict: the kernel hides the addresses from us */
	if (!err)
		err = kread_finish(k, &r);
	free(r.ents);
	fclose(f);
	if (err) {
		ksyms__free(k);
		k = NULL;
	}
	*ret_err = err;
	return k;
}

struct ksyms *ksyms__load(const char *path)
{
	const char *file = path ? path : "/proc/kallsyms";
	struct ksyms *k;
	int err;

	/* a read of /proc/kallsyms can fail while symbols come and go (a BPF
	 * program unloaded, a module): read it again once */
	k = load_once(file, &err);
	if (!k && err == -EIO) {
		log_debug("%s: read failed (EIO), reading it again", file);
		k = load_once(file, &err);
	}
	if (!k)
		errno = -err;
	return k;
}

const struct ksym *ksyms__find(const struct ksyms *k, uint64_t addr)
{
	uint32_t lo = 0, hi;

	if (!k)
		return NULL;
	hi = k->n;
	/* the first symbol above addr; the one before it is ours */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &k->syms[lo - 1] : NULL;
}

uint32_t ksyms__count(const struct ksyms *k)
{
	return k ? k->n : 0;
}
