// SPDX-License-Identifier: Apache-2.0
#include "ksyms.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ksyms {
	struct ksym *syms;
	uint32_t n, cap;
	char *strs;		/* names and module names, back to back */
	size_t strs_len, strs_cap;
};

/* Stores a string; returns its offset (names are fixed up to pointers at the end). */
static long add_str(struct ksyms *k, const char *s)
{
	size_t len = strlen(s) + 1;

	if (k->strs_len + len > k->strs_cap) {
		size_t ncap = k->strs_cap ? k->strs_cap * 2 : 1 << 20;
		char *n;

		while (ncap < k->strs_len + len)
			ncap *= 2;
		n = realloc(k->strs, ncap);
		if (!n)
			return -ENOMEM;
		k->strs = n;
		k->strs_cap = ncap;
	}
	memcpy(k->strs + k->strs_len, s, len);
	k->strs_len += len;
	return (long)(k->strs_len - len);
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return 0;
}

void ksyms__free(struct ksyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->strs);
	free(k);
}

struct ksyms *ksyms__load(const char *path)
{
	char line[1024], name[512], mod[256];
	struct ksyms *k;
	bool nonzero = false;
	int err = 0;
	FILE *f;

	f = fopen(path ? path : "/proc/kallsyms", "re");
	if (!f)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		err = -ENOMEM;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char type;
		long noff, moff = -1;
		int n;

		mod[0] = '\0';
		n = sscanf(line, "%llx %c %511s [%255[^]]]", &addr, &type, name, mod);
		if (n < 3)
			continue;
		if (addr)
			nonzero = true;
		/* text symbols only */
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (k->n == k->cap) {
			uint32_t ncap = k->cap ? k->cap * 2 : 65536;
			struct ksym *ns = realloc(k->syms, ncap * sizeof(*ns));

			if (!ns) {
				err = -ENOMEM;
				goto out;
			}
			k->syms = ns;
			k->cap = ncap;
		}
		noff = add_str(k, name);
		if (noff >= 0 && n == 4 && mod[0])
			moff = add_str(k, mod);
		if (noff < 0 || (n == 4 && mod[0] && moff < 0)) {
			err = -ENOMEM;
			goto out;
		}
		/* offsets for now: strs may still move */
		k->syms[k->n++] = (struct ksym){ .addr = addr, .name = (const char *)(uintptr_t)noff,
						 .module = (const char *)(intptr_t)moff };
	}
	if (!nonzero) {
		err = -EPERM;
		goto out;
	}
	for (uint32_t i = 0; i < k->n; i++) {
		intptr_t m = (intptr_t)k->syms[i].module;

		k->syms[i].name = k->strs + (uintptr_t)k->syms[i].name;
		k->syms[i].module = m >= 0 ? k->strs + m : NULL;
	}
	qsort(k->syms, k->n, sizeof(*k->syms), cmp_ksym);
out:
	fclose(f);
	if (err) {
		ksyms__free(k);
		errno = -err;
		return NULL;
	}
	return k;
}

const struct ksym *ksyms__find(const struct ksyms *k, uint64_t addr)
{
	uint32_t lo = 0, hi = k->n;

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
	return k->n;
}
