// SPDX-License-Identifier: Apache-2.0
#include "grow.h"
#include "profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * String arena with a hash set on top: profiles repeat the same few thousand
 * names (functions, files, comm) across many samples, so interning keeps the
 * memory proportional to distinct strings.
 */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct prof_strings {
	struct arena_chunk *chunks;
	const char **slots;
	size_t nslots, count;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static char *arena_alloc(struct prof_strings *st, size_t n)
{
	struct arena_chunk *c = st->chunks;

	if (!c || c->cap - c->used < n) {
		size_t cap = n > 60000 ? n : 60000;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = st->chunks;
		st->chunks = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

static int strings_grow(struct prof_strings *st)
{
	size_t n = st->nslots ? st->nslots * 2 : 1024;
	const char **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < st->nslots; i++) {
		const char *s = st->slots[i];
		size_t j;

		if (!s)
			continue;
		for (j = hash_str(s) & (n - 1); slots[j]; j = (j + 1) & (n - 1))
			;
		slots[j] = s;
	}
	free(st->slots);
	st->slots = slots;
	st->nslots = n;
	return 0;
}

const char *profile__intern(struct profile *p, const char *s)
{
	struct prof_strings *st = p->strings;
	size_t j, len;
	char *copy;

	if (!s)
		return NULL;
	if ((st->count + 1) * 2 > st->nslots && strings_grow(st))
		return NULL;
	for (j = hash_str(s) & (st->nslots - 1); st->slots[j]; j = (j + 1) & (st->nslots - 1)) {
		if (!strcmp(st->slots[j], s))
			return st->slots[j];
	}
	len = strlen(s) + 1;
	copy = arena_alloc(st, len);
	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	st->slots[j] = copy;
	st->count++;
	return copy;
}

const char *profile__internf(struct profile *p, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return profile__intern(p, buf);
}

struct profile *profile__new(void)
{
	struct profile *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->strings = calloc(1, sizeof(*p->strings));
	if (!p->strings) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void profile__free(struct profile *p)
{
	struct arena_chunk *c, *next;

	if (!p)
		return;
	for (uint32_t i = 0; i < p->nsamples; i++) {
		free(p->samples[i].locs);
		free(p->samples[i].labels);
	}
	free(p->samples);
	free(p->locations);
	free(p->mappings);
	free(p->comments);
	for (c = p->strings->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(p->strings->slots);
	free(p->strings);
	free(p);
}

/* Grows *arr (of elem-size sz) so that one more element fits. */
static int grow(void **arr, uint32_t *cap, uint32_t n, size_t sz)
{
	return grow_array(arr, cap, n + 1, sz, 64);
}

int profile__add_mapping(struct profile *p, const struct prof_mapping *m)
{
	struct prof_mapping *dst;

	if (grow((void **)&p->mappings, &p->cap_mappings, p->nmappings, sizeof(*m)))
		return -ENOMEM;
	dst = &p->mappings[p->nmappings];
	*dst = *m;
	dst->file = profile__intern(p, m->file ? m->file : "");
	dst->build_id = profile__intern(p, m->build_id ? m->build_id : "");
	if (!dst->file || !dst->build_id)
		return -ENOMEM;
	return (int)p->nmappings++;
}

static const struct {
	const char *type, *mapping;
} frame_kinds[PROF_FRAME_KINDS] = {
	[PROF_FRAME_NATIVE] = { "native", NULL },
	[PROF_FRAME_KERNEL] = { "kernel", "[kernel.kallsyms]" },
	[PROF_FRAME_PYTHON] = { "cpython", "[cpython]" },
	[PROF_FRAME_JVM] = { "jvm", "[jvm]" },
	[PROF_FRAME_V8] = { "v8js", "[v8js]" },
};

const char *prof_frame_type(enum prof_frame f)
{
	return f < PROF_FRAME_KINDS ? frame_kinds[f].type : frame_kinds[PROF_FRAME_NATIVE].type;
}

const char *prof_frame_mapping(enum prof_frame f)
{
	return f < PROF_FRAME_KINDS ? frame_kinds[f].mapping : NULL;
}

enum prof_frame prof_frame_of_mapping(const char *file)
{
	for (int f = PROF_FRAME_NATIVE + 1; file && f < PROF_FRAME_KINDS; f++)
		if (!strcmp(file, frame_kinds[f].mapping))
			return (enum prof_frame)f;
	return PROF_FRAME_NATIVE;
}

int profile__add_location(struct profile *p, const struct prof_location *l)
{
	struct prof_location *dst;

	if (grow((void **)&p->locations, &p->cap_locations, p->nlocations, sizeof(*l)))
		return -ENOMEM;
	dst = &p->locations[p->nlocations];
	*dst = *l;
	dst->function = profile__intern(p, l->function ? l->function : "[unknown]");
	dst->file = l->file ? profile__intern(p, l->file) : NULL;
	dst->system_name = l->system_name ? profile__intern(p, l->system_name) : NULL;
	if (!dst->function || (l->file && !dst->file) || (l->system_name && !dst->system_name))
		return -ENOMEM;
	return (int)p->nlocations++;
}

int profile__add_sample(struct profile *p, const uint32_t *locs, uint32_t nlocs, int64_t count,
			const struct prof_label *labels, uint32_t nlabels)
{
	struct prof_sample *s;

	if (grow((void **)&p->samples, &p->cap_samples, p->nsamples, sizeof(*s)))
		return -ENOMEM;
	s = &p->samples[p->nsamples];
	memset(s, 0, sizeof(*s));
	if (nlocs) {
		s->locs = malloc(nlocs * sizeof(*locs));
		if (!s->locs)
			return -ENOMEM;
		memcpy(s->locs, locs, nlocs * sizeof(*locs));
	}
	if (nlabels) {
		s->labels = malloc(nlabels * sizeof(*labels));
		if (!s->labels) {
			free(s->locs);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < nlabels; i++) {
			s->labels[i] = labels[i];
			s->labels[i].key = profile__intern(p, labels[i].key);
			s->labels[i].str = profile__intern(p, labels[i].str);
			s->labels[i].unit = profile__intern(p, labels[i].unit);
		}
	}
	s->nlocs = nlocs;
	s->nlabels = nlabels;
	s->count = count;
	s->cpu_ns = count * p->period_nanos;
	return (int)p->nsamples++;
}

int profile__add_comment(struct profile *p, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (grow((void **)&p->comments, &p->cap_comments, p->ncomments, sizeof(*p->comments)))
		return -ENOMEM;
	p->comments[p->ncomments] = profile__intern(p, buf);
	if (!p->comments[p->ncomments])
		return -ENOMEM;
	return (int)p->ncomments++;
}

int64_t profile__total(const struct profile *p)
{
	int64_t t = 0;

	for (uint32_t i = 0; i < p->nsamples; i++)
		t += p->samples[i].count;
	return t;
}
