// SPDX-License-Identifier: Apache-2.0
/* OTLP profiles encoding; see otlp.h and proto/otlp_profiles.proto. */
#include "otlp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "pbw.h"
#include "profile.h"
#include "reserved_labels.h"

/* field numbers, proto/otlp_profiles.proto */
enum {
	REQ_RESOURCE_PROFILES = 1, REQ_DICTIONARY = 2,
	RP_RESOURCE = 1, RP_SCOPE_PROFILES = 2,
	RES_ATTRIBUTES = 1,
	KV_KEY = 1, KV_VALUE = 2,
	ANY_STRING = 1, ANY_INT = 3,
	SP_SCOPE = 1, SP_PROFILES = 2,
	SCOPE_NAME = 1, SCOPE_VERSION = 2,
	PROF_SAMPLE_TYPE = 1, PROF_SAMPLES = 2, PROF_TIME = 3, PROF_DURATION = 4,
	PROF_PERIOD_TYPE = 5, PROF_PERIOD = 6,
	VT_TYPE = 1, VT_UNIT = 2,
	SAMPLE_STACK = 1, SAMPLE_ATTRS = 2, SAMPLE_VALUES = 4,
	DICT_MAPPING = 1, DICT_LOCATION = 2, DICT_FUNCTION = 3, DICT_LINK = 4, DICT_STRING = 5,
	DICT_ATTRIBUTE = 6, DICT_STACK = 7,
	MAP_START = 1, MAP_LIMIT = 2, MAP_OFFSET = 3, MAP_FILENAME = 4,
	STACK_LOCATIONS = 1,
	LOC_MAPPING = 1, LOC_ADDRESS = 2, LOC_LINES = 3, LOC_ATTRS = 4,
	LINE_FUNCTION = 1, LINE_LINE = 2, LINE_COLUMN = 3,
	FN_NAME = 1, FN_SYSTEM_NAME = 2, FN_FILENAME = 3,
	KVU_KEY = 1, KVU_VALUE = 2, KVU_UNIT = 3,
};

/* profleet's label keys by OTel's semantic conventions: one table with the reserved labels */
const char *otlp__attr_key(const char *key)
{
	return label_otel_key(key);
}

#define ATTR_CACHE 1024	/* power of two */

/* an index table keyed by strings: value = index + 1 (0 = absent) */
struct table {
	struct hmap map;
	int32_t n;
};

static int32_t table_add(struct table *t, const char *key, bool *added)
{
	void *v = hmap_get(&t->map, key);

	*added = false;
	if (v)
		return (int32_t)(intptr_t)v - 1;
	if (hmap_put(&t->map, key, (void *)(intptr_t)(t->n + 1), NULL))
		return -1;
	*added = true;
	return t->n++;
}

struct enc {
	const struct profile *p;
	struct table strings, functions, stacks, attrs;
	char **str_order;	/* index -> string (owned copies) */
	int32_t str_cap;
	int32_t *loc_fn;	/* location -> function index */
	uint32_t *fn_loc;	/* function index -> a location of it (function 0: none) */
	int32_t fn_cap;
	int32_t frame_attr[PROF_FRAME_KINDS];	/* attribute of profile.frame.type, by kind */
	int32_t *sample_stack;	/* sample -> stack index */
	int32_t **sample_attrs;	/* sample -> attribute indices */
	char **attr_keys;	/* attribute index -> "k\tv" key (for writing) */
	int32_t attr_cap;
	uint32_t **stack_locs;	/* stack index -> locations (as table indices) */
	uint32_t *stack_n;
	int32_t stack_cap;
	int32_t st_samples, st_count, st_cpu, st_ns;	/* the value types' strings */
	int err;
	struct {
		bool used;
		const char *key, *str, *unit;
		int64_t num;
		int32_t idx;
	} attr_cache[ATTR_CACHE];
};

static enum prof_frame kind_of(const struct prof_location *l)
{
	return l->frame < PROF_FRAME_KINDS ? (enum prof_frame)l->frame : PROF_FRAME_NATIVE;
}

static int32_t str_idx(struct enc *e, const char *s)
{
	bool added;
	int32_t i = table_add(&e->strings, s ? s : "", &added);

	if (i < 0) {
		e->err = -ENOMEM;
		return 0;
	}
	if (added) {
		if (i >= e->str_cap) {
			int32_t cap = e->str_cap ? e->str_cap * 2 : 256;
			char **o = realloc(e->str_order, (size_t)cap * sizeof(*o));

			if (!o) {
				e->err = -ENOMEM;
				return 0;
			}
			e->str_order = o;
			e->str_cap = cap;
		}
		/* its own copy: callers may pass a string that does not outlive the call */
		e->str_order[i] = strdup(s ? s : "");
		if (!e->str_order[i]) {
			e->err = -ENOMEM;
			return 0;
		}
	}
	return i;
}

/*
 * A function is (name, system name, file) of location loc; its key holds the
 * whole of each, lengths first, so that no two functions share one.
 */
static int32_t fn_idx(struct enc *e, uint32_t loc)
{
	const struct prof_location *l = &e->p->locations[loc];
	const char *name = l->function ? l->function : "", *file = l->file ? l->file : "";
	const char *sys = l->system_name ? l->system_name : name;
	char *key;
	bool added;
	int32_t i;

	if (asprintf(&key, "%zu:%s%zu:%s%s", strlen(name), name, strlen(sys), sys, file) < 0) {
		e->err = -ENOMEM;
		return 0;
	}
	i = table_add(&e->functions, key, &added);
	free(key);
	if (i < 0) {
		e->err = -ENOMEM;
		return 0;
	}
	if (added) {
		if (i >= e->fn_cap) {
			int32_t cap = e->fn_cap ? e->fn_cap * 2 : 256;
			uint32_t *f = realloc(e->fn_loc, (size_t)cap * sizeof(*f));

			if (!f) {
				e->err = -ENOMEM;
				return 0;
			}
			e->fn_loc = f;
			e->fn_cap = cap;
		}
		e->fn_loc[i] = loc;
		str_idx(e, name);
		str_idx(e, sys);
		str_idx(e, file);
	}
	return i;
}

static int32_t attr_idx(struct enc *e, const struct prof_label *l)
{
	char *key;
	int n;
	bool added;
	int32_t i;
	/* labels repeat on every sample with the same interned strings: a cache by
	 * address finds them without formatting a key */
	size_t slot = (((uintptr_t)l->key >> 4) ^ ((uintptr_t)l->str >> 4) * 31 ^
		       (uintptr_t)l->num * 131) & (ATTR_CACHE - 1);

	if (e->attr_cache[slot].used && e->attr_cache[slot].key == l->key &&
	    e->attr_cache[slot].str == l->str && e->attr_cache[slot].num == l->num &&
	    e->attr_cache[slot].unit == l->unit)
		return e->attr_cache[slot].idx;

	/* the whole key, of any length: a cut one would lose its fields */
	if (l->str)
		n = asprintf(&key, "s\t%s\t%s", l->key, l->str);
	else
		n = asprintf(&key, "i\t%s\t%lld\t%s", l->key, (long long)l->num,
			     l->unit ? l->unit : "");
	if (n < 0) {
		e->err = -ENOMEM;
		return 0;
	}
	i = table_add(&e->attrs, key, &added);
	if (i < 0) {
		free(key);
		e->err = -ENOMEM;
		return 0;
	}
	if (added) {
		if (i >= e->attr_cap) {
			int32_t cap = e->attr_cap ? e->attr_cap * 2 : 64;
			char **k = realloc(e->attr_keys, (size_t)cap * sizeof(*k));

			if (!k) {
				free(key);
				e->err = -ENOMEM;
				return 0;
			}
			memset(k + e->attr_cap, 0, (size_t)(cap - e->attr_cap) * sizeof(*k));
			e->attr_keys = k;
			e->attr_cap = cap;
		}
		e->attr_keys[i] = key;	/* owned by the table of keys now */
		key = NULL;
	}
	free(key);
	e->attr_cache[slot].used = true;
	e->attr_cache[slot].key = l->key;
	e->attr_cache[slot].str = l->str;
	e->attr_cache[slot].num = l->num;
	e->attr_cache[slot].unit = l->unit;
	e->attr_cache[slot].idx = i;
	return i;
}

static int32_t stack_idx(struct enc *e, const uint32_t *locs, uint32_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *key = malloc((size_t)n * 8 + 2), *p;
	bool added;
	int32_t i;

	if (!key) {
		e->err = -ENOMEM;
		return 0;
	}
	/* 8 hex digits per location: fixed width, no separator, no printf */
	p = key;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t v = locs[k];

		for (int sh = 28; sh >= 0; sh -= 4)
			*p++ = hex[(v >> sh) & 15];
	}
	*p = 0;
	i = table_add(&e->stacks, key, &added);
	free(key);
	if (i < 0) {
		e->err = -ENOMEM;
		return 0;
	}
	if (added) {
		if (i >= e->stack_cap) {
			int32_t cap = e->stack_cap ? e->stack_cap * 2 : 256;
			uint32_t **l = realloc(e->stack_locs, (size_t)cap * sizeof(*l));
			uint32_t *c = realloc(e->stack_n, (size_t)cap * sizeof(*c));

			if (l) {
				memset(l + e->stack_cap, 0, (size_t)(cap - e->stack_cap) * sizeof(*l));
				e->stack_locs = l;
			}
			if (c)
				e->stack_n = c;
			if (!l || !c) {
				e->err = -ENOMEM;
				return 0;
			}
			e->stack_cap = cap;
		}
		e->stack_locs[i] = malloc((size_t)(n ? n : 1) * sizeof(uint32_t));
		e->stack_n[i] = n;
		for (uint32_t k = 0; e->stack_locs[i] && k < n; k++)
			e->stack_locs[i][k] = locs[k] + 1;	/* location_table[0] is the zero entry */
	}
	return i;
}

static void write_string_kv(struct pbw *w, uint32_t field, const char *key, const char *val)
{
	pbw__begin(w, field);
	pbw__string(w, KV_KEY, key);
	pbw__begin(w, KV_VALUE);
	pbw__string(w, ANY_STRING, val);
	pbw__end(w);
	pbw__end(w);
}

/* The zero entries of every table, and room for the per-location/sample indexes. */
static int enc_init(struct enc *e)
{
	const struct profile *p = e->p;
	bool added;

	str_idx(e, "");
	table_add(&e->functions, "", &added);	/* function 0: no name, no file */
	table_add(&e->stacks, "", &added);
	e->stack_locs = calloc(256, sizeof(*e->stack_locs));
	e->stack_n = calloc(256, sizeof(*e->stack_n));
	e->stack_cap = e->stack_locs && e->stack_n ? 256 : 0;
	table_add(&e->attrs, "", &added);
	e->attr_keys = calloc(64, sizeof(*e->attr_keys));
	e->attr_cap = e->attr_keys ? 64 : 0;
	e->st_samples = str_idx(e, "samples");
	e->st_count = str_idx(e, "count");
	e->st_cpu = str_idx(e, "cpu");
	e->st_ns = str_idx(e, "nanoseconds");
	e->loc_fn = calloc((size_t)p->nlocations + 1, sizeof(int32_t));
	e->sample_stack = calloc((size_t)p->nsamples + 1, sizeof(int32_t));
	e->sample_attrs = calloc((size_t)p->nsamples + 1, sizeof(int32_t *));
	if (!e->loc_fn || !e->sample_stack || !e->sample_attrs || !e->stack_cap || !e->attr_cap)
		return -ENOMEM;
	return 0;
}

/* Every string, function, stack and attribute the profile uses gets its index. */
static int enc_index(struct enc *e)
{
	const struct profile *p = e->p;

	for (uint32_t i = 0; i < p->nmappings; i++)
		str_idx(e, p->mappings[i].file);
	for (uint32_t i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];

		e->loc_fn[i] = fn_idx(e, i);
		if (!e->frame_attr[kind_of(l)])
			e->frame_attr[kind_of(l)] = attr_idx(e, &(struct prof_label){
				.key = "profile.frame.type",
				.str = prof_frame_type(kind_of(l)) });
	}
	str_idx(e, otlp__attr_key("profile.frame.type"));
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		e->sample_stack[i] = stack_idx(e, s->locs, s->nlocs);
		e->sample_attrs[i] = calloc((size_t)s->nlabels + 1, sizeof(int32_t));
		if (!e->sample_attrs[i])
			return -ENOMEM;
		for (uint32_t k = 0; k < s->nlabels; k++) {
			e->sample_attrs[i][k] = attr_idx(e, &s->labels[k]);
			str_idx(e, otlp__attr_key(s->labels[k].key));
			if (s->labels[k].unit)
				str_idx(e, s->labels[k].unit);
		}
	}
	return e->err;
}

static void write_samples(struct enc *e, struct pbw *w)
{
	const struct profile *p = e->p;

	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		uint32_t attrs[64];
		uint32_t na = s->nlabels < 64 ? s->nlabels : 64;
		/* samples weighted by the periods they stand for (a target sampled 1 in N
		 * counts N each), so that value x period is the CPU time */
		int64_t v = p->period_nanos > 0 ?
			(s->cpu_ns + p->period_nanos / 2) / p->period_nanos : s->count;

		for (uint32_t k = 0; k < na; k++)
			attrs[k] = (uint32_t)e->sample_attrs[i][k];
		pbw__begin(w, PROF_SAMPLES);
		pbw__uint64(w, SAMPLE_STACK, (uint64_t)e->sample_stack[i]);
		pbw__packed_u32(w, SAMPLE_ATTRS, attrs, na);
		pbw__packed_i64(w, SAMPLE_VALUES, &v, 1);
		pbw__end(w);
	}
}

/* resource_profiles: the resource's attributes, the scope, the profile and its samples. */
static void write_resource_profiles(struct enc *e, struct pbw *w, const char *service,
				    const struct export_label *labels, int nlabels)
{
	const struct profile *p = e->p;

	pbw__begin(w, REQ_RESOURCE_PROFILES);
	pbw__begin(w, RP_RESOURCE);
	if (service && *service)
		write_string_kv(w, RES_ATTRIBUTES, "service.name", service);
	for (int i = 0; i < nlabels; i++)
		if (labels[i].key && labels[i].value && strcmp(labels[i].key, "service_name"))
			write_string_kv(w, RES_ATTRIBUTES, otlp__attr_key(labels[i].key), labels[i].value);
	pbw__end(w);
	pbw__begin(w, RP_SCOPE_PROFILES);
	pbw__begin(w, SP_SCOPE);
	pbw__string(w, SCOPE_NAME, "profleet");
	pbw__string(w, SCOPE_VERSION, otlp__scope_version());
	pbw__end(w);
	pbw__begin(w, SP_PROFILES);
	pbw__begin(w, PROF_SAMPLE_TYPE);
	pbw__uint64(w, VT_TYPE, (uint64_t)e->st_samples);
	pbw__uint64(w, VT_UNIT, (uint64_t)e->st_count);
	pbw__end(w);
	write_samples(e, w);
	pbw__fixed64(w, PROF_TIME, (uint64_t)p->time_nanos);
	pbw__uint64(w, PROF_DURATION, (uint64_t)p->duration_nanos);
	pbw__begin(w, PROF_PERIOD_TYPE);
	pbw__uint64(w, VT_TYPE, (uint64_t)e->st_cpu);
	pbw__uint64(w, VT_UNIT, (uint64_t)e->st_ns);
	pbw__end(w);
	pbw__int64(w, PROF_PERIOD, p->period_nanos);
	pbw__end(w);	/* profile */
	pbw__end(w);	/* scope_profiles */
	pbw__end(w);	/* resource_profiles */
}

static void write_mappings_locations(struct enc *e, struct pbw *w)
{
	const struct profile *p = e->p;

	pbw__begin(w, DICT_MAPPING);	/* mapping 0 */
	pbw__end(w);
	for (uint32_t i = 0; i < p->nmappings; i++) {
		const struct prof_mapping *m = &p->mappings[i];

		pbw__begin(w, DICT_MAPPING);
		pbw__uint64(w, MAP_START, m->start);
		pbw__uint64(w, MAP_LIMIT, m->limit);
		pbw__uint64(w, MAP_OFFSET, m->offset);
		pbw__uint64(w, MAP_FILENAME, (uint64_t)str_idx(e, m->file));
		pbw__end(w);
	}
	pbw__begin(w, DICT_LOCATION);	/* location 0 */
	pbw__end(w);
	for (uint32_t i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];

		pbw__begin(w, DICT_LOCATION);
		if (l->mapping != PROFILE_NO_MAPPING)
			pbw__uint64(w, LOC_MAPPING, (uint64_t)l->mapping + 1);
		pbw__uint64(w, LOC_ADDRESS, l->address);
		pbw__begin(w, LOC_LINES);
		pbw__uint64(w, LINE_FUNCTION, (uint64_t)e->loc_fn[i]);
		pbw__int64(w, LINE_LINE, l->line);
		if (l->column)
			pbw__int64(w, LINE_COLUMN, l->column);
		pbw__end(w);
		pbw__packed_u32(w, LOC_ATTRS,
				&(uint32_t){ (uint32_t)e->frame_attr[kind_of(l)] }, 1);
		pbw__end(w);
	}
}

/* Functions in index order, each from a location of it. */
static void write_functions(struct enc *e, struct pbw *w)
{
	pbw__begin(w, DICT_FUNCTION);	/* function 0 */
	pbw__end(w);
	for (int32_t i = 1; i < e->functions.n; i++) {
		const struct prof_location *l = &e->p->locations[e->fn_loc[i]];

		pbw__begin(w, DICT_FUNCTION);
		pbw__uint64(w, FN_NAME, (uint64_t)str_idx(e, l->function));
		pbw__uint64(w, FN_SYSTEM_NAME,
			    (uint64_t)str_idx(e, l->system_name ? l->system_name : l->function));
		pbw__uint64(w, FN_FILENAME, (uint64_t)str_idx(e, l->file));
		pbw__end(w);
	}
}

static void write_attributes(struct enc *e, struct pbw *w)
{
	pbw__begin(w, DICT_ATTRIBUTE);	/* attribute 0 */
	pbw__end(w);
	for (int32_t i = 1; i < e->attrs.n; i++) {
		char *k = e->attr_keys[i], *f1, *f2, *f3;

		/* every key was made whole by attr_idx: an entry is never skipped (the
		 * samples' attribute indexes count them) */
		f1 = strchr(k, '\t');
		f2 = strchr(f1 + 1, '\t');
		*f2 = 0;
		pbw__begin(w, DICT_ATTRIBUTE);
		pbw__uint64(w, KVU_KEY, (uint64_t)str_idx(e, otlp__attr_key(f1 + 1)));
		pbw__begin(w, KVU_VALUE);
		if (k[0] == 's') {
			pbw__string(w, ANY_STRING, f2 + 1);
		} else {
			f3 = strchr(f2 + 1, '\t');
			if (f3)
				*f3 = 0;
			pbw__int64(w, ANY_INT, strtoll(f2 + 1, NULL, 10));
			if (f3 && f3[1]) {
				pbw__end(w);
				pbw__uint64(w, KVU_UNIT, (uint64_t)str_idx(e, f3 + 1));
				pbw__end(w);
				continue;
			}
		}
		pbw__end(w);
		pbw__end(w);
	}
}

/* The dictionary the profile's indexes point into. */
static int write_dictionary(struct enc *e, struct pbw *w)
{
	pbw__begin(w, REQ_DICTIONARY);
	write_mappings_locations(e, w);
	write_functions(e, w);
	pbw__begin(w, DICT_LINK);	/* link 0: samples have no links */
	pbw__end(w);
	for (int32_t i = 0; i < e->strings.n; i++)
		pbw__string(w, DICT_STRING, e->str_order[i] ? e->str_order[i] : "");
	write_attributes(e, w);
	for (int32_t i = 0; i < e->stacks.n; i++) {
		pbw__begin(w, DICT_STACK);
		if (i && e->stack_locs[i])
			pbw__packed_u32(w, STACK_LOCATIONS, e->stack_locs[i], e->stack_n[i]);
		pbw__end(w);
	}
	pbw__end(w);
	return e->err;
}

static void enc_free(struct enc *e)
{
	hmap_free(&e->strings.map);
	hmap_free(&e->functions.map);
	hmap_free(&e->stacks.map);
	hmap_free(&e->attrs.map);
	for (int32_t i = 0; e->str_order && i < e->strings.n && i < e->str_cap; i++)
		free(e->str_order[i]);
	free(e->str_order);
	free(e->loc_fn);
	free(e->fn_loc);
	free(e->sample_stack);
	for (uint32_t i = 0; e->sample_attrs && i < e->p->nsamples; i++)
		free(e->sample_attrs[i]);
	free(e->sample_attrs);
	for (int32_t i = 0; i < e->attrs.n && i < e->attr_cap && e->attr_keys; i++)
		free(e->attr_keys[i]);
	free(e->attr_keys);
	for (int32_t i = 0; i < e->stacks.n && i < e->stack_cap && e->stack_locs; i++)
		free(e->stack_locs[i]);
	free(e->stack_locs);
	free(e->stack_n);
}

int otlp__encode(const struct profile *p, const char *service, const struct export_label *labels,
		 int nlabels, uint8_t **ret_buf, size_t *ret_len)
{
	struct enc e = { .p = p };
	struct pbw w;
	int err;

	pbw__init(&w, 0);
	err = enc_init(&e);
	if (!err)
		err = enc_index(&e);
	if (!err) {
		write_resource_profiles(&e, &w, service, labels, nlabels);
		err = write_dictionary(&e, &w);
	}
	if (!err)
		err = pbw__take(&w, ret_buf, ret_len);
	pbw__release(&w);
	enc_free(&e);
	return err;
}

const char *otlp__scope_version(void)
{
	return PROFLEET_VERSION;
}
