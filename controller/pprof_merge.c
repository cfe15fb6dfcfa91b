// SPDX-License-Identifier: Apache-2.0
/* pprof reader and merger; see pprof_merge.h. */
#include "pprof_merge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hmap.h"
#include "grow.h"
#include "profile.h"
#include "profile.pb-c.h"


struct pprof_merge {
	struct profile *p;
	struct hmap maps;	/* "file\x1fbuild_id" -> mapping index + 1 */
	struct hmap locs;	/* "mapping\x1ffunction\x1ffile\x1fline\x1fk" -> location index + 1 */
	struct hmap samples;	/* "loc,loc,...|labels" -> sample index + 1 */
	unsigned int inputs;
	int64_t first_ns, last_ns;	/* span of the inputs */
};

struct pprof_merge *pprof_merge_new(void)
{
	struct pprof_merge *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->p = profile__new();
	if (!m->p) {
		free(m);
		return NULL;
	}
	return m;
}

void pprof_merge_free(struct pprof_merge *m)
{
	if (!m)
		return;
	profile__free(m->p);
	hmap_free(&m->maps);
	hmap_free(&m->locs);
	hmap_free(&m->samples);
	free(m);
}

const struct profile *pprof_merge_profile(const struct pprof_merge *m)
{
	return m->p;
}

unsigned int pprof_merge_inputs(const struct pprof_merge *m)
{
	return m->inputs;
}

int pprof_gunzip(const uint8_t *buf, size_t len, size_t max, uint8_t **ret, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t cap = len * 4 + 4096, n = 0;
	uint8_t *out;
	int zr;

	if (len < 2 || buf[0] != 0x1f || buf[1] != 0x8b) {
		if (len > max)
			return -E2BIG;
		out = malloc(len + 1);
		if (!out)
			return -ENOMEM;
		memcpy(out, buf, len);
		*ret = out;
		*ret_len = len;
		return 0;
	}
	if (cap > max)
		cap = max;
	out = malloc(cap);
	if (!out || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)buf;
	z.avail_in = (uInt)len;
	do {
		if (n == cap) {
			uint8_t *p;

			if (cap >= max) {
				inflateEnd(&z);
				free(out);
				return -E2BIG;
			}
			cap = cap * 2 > max ? max : cap * 2;
			p = realloc(out, cap);
			if (!p) {
				inflateEnd(&z);
				free(out);
				return -ENOMEM;
			}
			out = p;
		}
		z.next_out = out + n;
		z.avail_out = (uInt)(cap - n);
		zr = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
	} while (zr == Z_OK);
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(out);
		return -EINVAL;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

/* ---- validation: every index and id must resolve before anything is merged ---- */

struct idx {			/* id -> position, for one kind of message */
	uint64_t *ids;
	size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Positions sorted by id; the low 32 bits hold the position, ids must be < 2^32. */
static int idx_build(struct idx *ix, size_t n, uint64_t (*id_of)(const void *, size_t),
		     const void *arr)
{
	ix->n = n;
	ix->ids = calloc(n + 1, sizeof(uint64_t));
	if (!ix->ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t id = id_of(arr, i);

		if (!id || id >= (1ull << 32))
			return -EINVAL;
		ix->ids[i] = id << 32 | i;
	}
	qsort(ix->ids, n, sizeof(uint64_t), cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (ix->ids[i] >> 32 == ix->ids[i - 1] >> 32)
			return -EINVAL;	/* duplicate id */
	return 0;
}

/* Position of id, or -1. */
static long idx_find(const struct idx *ix, uint64_t id)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t v = ix->ids[mid] >> 32;

		if (v == id)
			return (long)(ix->ids[mid] & 0xffffffffu);
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static uint64_t map_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Mapping *const *)a)[i]->id;
}

static uint64_t loc_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Location *const *)a)[i]->id;
}

static uint64_t fn_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Function *const *)a)[i]->id;
}

static bool str_ok(const Perftools__Profiles__Profile *pb, int64_t i)
{
	return i >= 0 && (uint64_t)i < pb->n_string_table;
}

static const char *str_of(const Perftools__Profiles__Profile *pb, int64_t i)
{
	return pb->string_table[i];
}

static int validate(const Perftools__Profiles__Profile *pb, struct idx *mx, struct idx *lx,
		    struct idx *fx, char *err, size_t errlen)
{
	int e;

	if (!pb->n_string_table || pb->string_table[0][0]) {
		snprintf(err, errlen, "string_table[0] must be the empty string");
		return -EINVAL;
	}
	if ((e = idx_build(mx, pb->n_mapping, map_id, pb->mapping)) ||
	    (e = idx_build(lx, pb->n_location, loc_id, pb->location)) ||
	    (e = idx_build(fx, pb->n_function, fn_id, pb->function))) {
		snprintf(err, errlen, e == -ENOMEM ? "out of memory" : "zero, duplicate or huge id");
		return e;
	}
	for (size_t i = 0; i < pb->n_mapping; i++) {
		const Perftools__Profiles__Mapping *mp = pb->mapping[i];

		if (!str_ok(pb, mp->filename) || !str_ok(pb, mp->build_id))
			goto bad_str;
	}
	for (size_t i = 0; i < pb->n_function; i++) {
		const Perftools__Profiles__Function *f = pb->function[i];

		if (!str_ok(pb, f->name) || !str_ok(pb, f->filename) || !str_ok(pb, f->system_name))
			goto bad_str;
	}
	for (size_t i = 0; i < pb->n_location; i++) {
		const Perftools__Profiles__Location *l = pb->location[i];

		if (l->mapping_id && idx_find(mx, l->mapping_id) < 0) {
			snprintf(err, errlen, "location %" PRIu64 ": no mapping %" PRIu64, l->id,
				 l->mapping_id);
			return -EINVAL;
		}
		for (size_t j = 0; j < l->n_line; j++)
			if (idx_find(fx, l->line[j]->function_id) < 0) {
				snprintf(err, errlen, "location %" PRIu64 ": no function %" PRIu64,
					 l->id, l->line[j]->function_id);
				return -EINVAL;
			}
	}
	for (size_t i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];

		if (s->n_value != pb->n_sample_type) {
			snprintf(err, errlen, "sample %zu has %zu values for %zu sample types", i,
				 s->n_value, pb->n_sample_type);
			return -EINVAL;
		}
		for (size_t j = 0; j < s->n_location_id; j++)
			if (idx_find(lx, s->location_id[j]) < 0) {
				snprintf(err, errlen, "sample %zu: no location %" PRIu64, i,
					 s->location_id[j]);
				return -EINVAL;
			}
		for (size_t j = 0; j < s->n_label; j++)
			if (!str_ok(pb, s->label[j]->key) || !str_ok(pb, s->label[j]->str) ||
			    !str_ok(pb, s->label[j]->num_unit))
				goto bad_str;
	}
	for (size_t i = 0; i < pb->n_sample_type; i++)
		if (!str_ok(pb, pb->sample_type[i]->type) || !str_ok(pb, pb->sample_type[i]->unit))
			goto bad_str;
	return 0;
bad_str:
	snprintf(err, errlen, "a string index is outside string_table");
	return -EINVAL;
}

/* ---- merging ------------------------------------------------------------------ */

static void *as_val(uint32_t i)
{
	return (void *)(uintptr_t)(i + 1);
}

static uint32_t of_val(void *v)
{
	return (uint32_t)((uintptr_t)v - 1);
}

static int merge_mapping(struct pprof_merge *m, const Perftools__Profiles__Profile *pb,
			 const Perftools__Profiles__Mapping *mp, uint32_t *ret)
{
	const char *file = str_of(pb, mp->filename), *bid = str_of(pb, mp->build_id);
	char *key;
	void *v;
	struct prof_mapping pm;
	int i, err = 0;

	/* keys hold whole names: a cut key would merge two mappings */
	if (asprintf(&key, "%s\x1f%s", file, bid) < 0)
		return -ENOMEM;
	v = hmap_get(&m->maps, key);
	if (v) {
		*ret = of_val(v);
		goto out;
	}
	pm = (struct prof_mapping){ .start = mp->memory_start, .limit = mp->memory_limit,
				    .offset = mp->file_offset, .file = file, .build_id = bid };
	i = profile__add_mapping(m->p, &pm);
	if (i < 0 || hmap_put(&m->maps, key, as_val((uint32_t)i), NULL)) {
		err = -ENOMEM;
		goto out;
	}
	*ret = (uint32_t)i;
out:
	free(key);
	return err;
}

/*
 * A location not seen before (pl without its kind): its function is its name,
 * or "file+0xaddr" unsymbolized; its kind from its mapping's name.
 */
static int new_location(struct pprof_merge *m, struct prof_location *pl, const char *mfile)
{
	pl->frame = (uint8_t)prof_frame_of_mapping(mfile);
	/* a native one may be mangled: not a name to show */
	if (!prof_frame_has_lines(pl->frame))
		pl->system_name = NULL;
	if (!*pl->function) {
		const char *base = strrchr(mfile, '/');

		pl->function = profile__internf(m->p, "%s+0x%" PRIx64, base ? base + 1 : *mfile ?
						mfile : "unknown", pl->address);
		if (!pl->function)
			return -ENOMEM;
	}
	return profile__add_location(m->p, pl);
}

/* A function's system name when it is not its name (a Python module's qualified name). */
static const char *sysname_of(const Perftools__Profiles__Profile *pb,
			      const Perftools__Profiles__Function *f)
{
	const char *s = f ? str_of(pb, f->system_name) : "";

	return *s && strcmp(s, str_of(pb, f->name)) ? s : NULL;
}

/* One merged location per (mapping, function, file, line, column); kernel frames by mapping name. */
static int merge_frame(struct pprof_merge *m, const Perftools__Profiles__Profile *pb,
		       const Perftools__Profiles__Location *l, const Perftools__Profiles__Line *ln,
		       const struct idx *mx, const struct idx *fx, uint32_t *ret)
{
	uint32_t mi = PROFILE_NO_MAPPING;
	const Perftools__Profiles__Function *f = NULL;
	const char *fname, *file = NULL, *mfile = "";
	int64_t line = ln ? ln->line : 0, column = ln ? ln->column : 0;
	char *key;
	void *v;
	int i, n;

	if (l->mapping_id) {
		const Perftools__Profiles__Mapping *mp = pb->mapping[idx_find(mx, l->mapping_id)];

		if (merge_mapping(m, pb, mp, &mi))
			return -ENOMEM;
		mfile = str_of(pb, mp->filename);
	}
	if (ln)
		f = pb->function[idx_find(fx, ln->function_id)];
	fname = f ? str_of(pb, f->name) : "";
	if (f && f->filename)
		file = str_of(pb, f->filename);
	/* whole names in the key (a cut one would merge two functions); unsymbolized by address */
	if (!*fname)
		n = asprintf(&key, "%u\x1f#%" PRIx64, mi, l->address);
	else
		n = asprintf(&key, "%u\x1f%s\x1f%s\x1f%" PRId64 ":%" PRId64, mi, fname,
			     file ? file : "", line, column);
	if (n < 0)
		return -ENOMEM;
	v = hmap_get(&m->locs, key);
	if (v) {
		*ret = of_val(v);
		free(key);
		return 0;
	}
	i = new_location(m, &(struct prof_location){
				.mapping = mi, .address = l->address, .function = fname,
				.file = file, .line = line, .column = column,
				.system_name = sysname_of(pb, f) }, mfile);
	if (i < 0 || hmap_put(&m->locs, key, as_val((uint32_t)i), NULL)) {
		free(key);
		return -ENOMEM;
	}
	free(key);
	*ret = (uint32_t)i;
	return 0;
}

/* Which value index holds what: [count, cpu] by type name, else the first two. */
static void value_slots(const Perftools__Profiles__Profile *pb, int *count_i, int *cpu_i)
{
	*count_i = *cpu_i = -1;
	for (size_t i = 0; i < pb->n_sample_type; i++) {
		const char *t = str_of(pb, pb->sample_type[i]->type);
		const char *u = str_of(pb, pb->sample_type[i]->unit);

		if (*count_i < 0 && (!strcmp(u, "count") || !strcmp(t, "samples")))
			*count_i = (int)i;
		else if (*cpu_i < 0 && !strcmp(u, "nanoseconds"))
			*cpu_i = (int)i;
	}
	if (*count_i < 0 && pb->n_sample_type)
		*count_i = 0;
}

/* gunzip + unpack + validate; on success *ret and the indexes are the caller's. */
static int decode(const uint8_t *buf, size_t len, Perftools__Profiles__Profile **ret,
		  struct idx *mx, struct idx *lx, struct idx *fx, char *err, size_t errlen)
{
	Perftools__Profiles__Profile *pb;
	uint8_t *raw = NULL;
	size_t rawlen;
	int e;

	e = pprof_gunzip(buf, len, PPROF_MERGE_MAX_INPUT, &raw, &rawlen);
	if (e) {
		snprintf(err, errlen, e == -E2BIG ? "larger than %zu bytes unpacked" :
			 e == -ENOMEM ? "out of memory" : "broken gzip data",
			 PPROF_MERGE_MAX_INPUT);
		return e == -ENOMEM ? e : -EINVAL;
	}
	pb = perftools__profiles__profile__unpack(NULL, rawlen, raw);
	free(raw);
	if (!pb) {
		snprintf(err, errlen, "not a pprof profile (protobuf decoding failed)");
		return -EINVAL;
	}
	e = validate(pb, mx, lx, fx, err, errlen);
	if (e) {
		free(mx->ids);
		free(lx->ids);
		free(fx->ids);
		perftools__profiles__profile__free_unpacked(pb, NULL);
		return e;
	}
	*ret = pb;
	return 0;
}

int pprof_validate(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	Perftools__Profiles__Profile *pb;
	struct idx mx = { 0 }, lx = { 0 }, fx = { 0 };
	int e = decode(buf, len, &pb, &mx, &lx, &fx, err, errlen);

	if (e)
		return e;
	free(mx.ids);
	free(lx.ids);
	free(fx.ids);
	perftools__profiles__profile__free_unpacked(pb, NULL);
	return 0;
}

/* Labels a merged sample keeps; more are dropped (pprof writers emit a handful). */
#define MERGE_MAX_LABELS 32

struct frames {
	uint32_t *locs;
	uint32_t n, cap;
};

static int frames_push(struct frames *f, uint32_t li)
{
	if (grow_array((void **)&f->locs, &f->cap, f->n + 1, sizeof(*f->locs), 64))
		return -ENOMEM;
	f->locs[f->n++] = li;
	return 0;
}

/* The sample's merged locations (one per line of each location) into f. */
static int sample_frames(struct pprof_merge *m, const Perftools__Profiles__Profile *pb,
			 const Perftools__Profiles__Sample *s, const struct idx *mx,
			 const struct idx *lx, const struct idx *fx, struct frames *f)
{
	f->n = 0;
	for (size_t j = 0; j < s->n_location_id; j++) {
		const Perftools__Profiles__Location *l = pb->location[idx_find(lx,
								       s->location_id[j])];
		size_t nlines = l->n_line ? l->n_line : 1;

		for (size_t k = 0; k < nlines; k++) {
			uint32_t li;
			int e = merge_frame(m, pb, l, l->n_line ? l->line[k] : NULL, mx, fx, &li);

			if (e || (e = frames_push(f, li)))
				return e;
		}
	}
	return 0;
}

/*
 * "loc,loc,...|len:key len:str#num len:unit;..." of any length (a cut key would
 * merge two samples; so would one without the unit: 5 bytes and 5 seconds).
 */
static char *sample_key(const struct frames *f, const struct prof_label *labels, size_t nl)
{
	char *key = NULL;
	size_t klen;
	FILE *o = open_memstream(&key, &klen);

	if (!o)
		return NULL;
	for (size_t j = 0; j < f->n; j++)
		fprintf(o, "%x,", f->locs[j]);
	fputc('|', o);
	/* lengths first: a label's text may hold any of the separators */
	for (size_t j = 0; j < nl; j++) {
		const char *str = labels[j].str ? labels[j].str : "";
		const char *unit = labels[j].unit ? labels[j].unit : "";

		fprintf(o, "%zu:%s%zu:%s#%" PRId64 " %zu:%s;", strlen(labels[j].key), labels[j].key,
			strlen(str), str, labels[j].num, strlen(unit), unit);
	}
	if (fclose(o)) {
		free(key);
		return NULL;
	}
	return key;
}

static int merge_sample(struct pprof_merge *m, const Perftools__Profiles__Profile *pb,
			const Perftools__Profiles__Sample *s, const struct frames *f,
			int64_t count, int64_t cpu)
{
	struct prof_label labels[MERGE_MAX_LABELS];
	size_t nl = s->n_label < MERGE_MAX_LABELS ? s->n_label : MERGE_MAX_LABELS;
	char *key;
	void *v;
	int e = 0;

	for (size_t j = 0; j < nl; j++) {
		const Perftools__Profiles__Label *lb = s->label[j];

		labels[j] = (struct prof_label){ .key = str_of(pb, lb->key),
						 .str = lb->str ? str_of(pb, lb->str) : NULL,
						 .num = lb->num,
						 .unit = lb->num_unit ? str_of(pb, lb->num_unit) : NULL };
	}
	key = sample_key(f, labels, nl);
	if (!key)
		return -ENOMEM;
	v = hmap_get(&m->samples, key);
	if (v) {
		struct prof_sample *ps = &m->p->samples[of_val(v)];

		ps->count += count;
		ps->cpu_ns += cpu;
		goto out;
	}
	e = profile__add_sample(m->p, f->locs, (uint32_t)f->n, count, labels, (uint32_t)nl);
	if (e < 0)
		goto out;
	m->p->samples[e].cpu_ns = cpu;
	e = hmap_put(&m->samples, key, as_val((uint32_t)e), NULL) ? -ENOMEM : 0;
out:
	free(key);
	return e;
}

int pprof_merge_add(struct pprof_merge *m, const uint8_t *buf, size_t len, char *err,
		    size_t errlen)
{
	Perftools__Profiles__Profile *pb;
	struct idx mx = { 0 }, lx = { 0 }, fx = { 0 };
	struct frames f = { 0 };
	int e, count_i, cpu_i;
	int64_t period;

	e = decode(buf, len, &pb, &mx, &lx, &fx, err, errlen);
	if (e)
		return e;
	value_slots(pb, &count_i, &cpu_i);
	period = pb->period > 0 ? pb->period : 0;
	if (!m->p->period_nanos)
		m->p->period_nanos = period;
	for (size_t i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];
		int64_t count = count_i >= 0 ? s->value[count_i] : 0;
		int64_t cpu = cpu_i >= 0 ? s->value[cpu_i] : count * period;

		e = sample_frames(m, pb, s, &mx, &lx, &fx, &f);
		if (!e)
			e = merge_sample(m, pb, s, &f, count, cpu);
		if (e)
			goto out;
	}
	if (pb->time_nanos > 0) {
		int64_t end = pb->time_nanos + (pb->duration_nanos > 0 ? pb->duration_nanos : 0);

		if (!m->first_ns || pb->time_nanos < m->first_ns)
			m->first_ns = pb->time_nanos;
		if (end > m->last_ns)
			m->last_ns = end;
		m->p->time_nanos = m->first_ns;
		m->p->duration_nanos = m->last_ns - m->first_ns;
	}
	for (size_t i = 0; i < pb->n_comment; i++)
		if (pb->comment[i] > 0 && (uint64_t)pb->comment[i] < pb->n_string_table &&
		    m->p->ncomments < 256)
			profile__add_comment(m->p, "%s", str_of(pb, pb->comment[i]));
	m->inputs++;
	e = 0;
out:
	if (e == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	free(f.locs);
	free(mx.ids);
	free(lx.ids);
	free(fx.ids);
	perftools__profiles__profile__free_unpacked(pb, NULL);
	return e;
}
