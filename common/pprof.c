// SPDX-License-Identifier: Apache-2.0
/* pprof encoder: struct profile -> perftools.profiles.Profile (proto/profile.proto). */
#include "pprof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pbw.h"
#include "profile.h"

/* Field numbers of proto/profile.proto. */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};
enum { VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2 };
enum { SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3 };
enum { LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3, LABEL_NUM_UNIT = 4 };
enum {
	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
};
enum { LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3, LOCATION_LINE = 4 };
enum { LINE_FUNCTION_ID = 1, LINE_LINE = 2, LINE_COLUMN = 3 };
enum { FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4 };

#define STRTAB_CACHE 1024	/* power of two */

/*
 * The string table, keyed by content. The profile interns its strings, but
 * the encoder does not rely on it: it also adds its own literals ("cpu", ...)
 * and must not write into a profile it was given as const.
 */
struct strtab {
	const char **strs;	/* index -> string, borrowed */
	uint32_t *hashes;	/* index -> hash of the string */
	uint32_t n, cap;
	uint32_t *slots;	/* open addressing: index + 1, 0 = free */
	uint32_t mask;
	/*
	 * In front of it, a direct-mapped cache by address: the profile's
	 * strings are interned, so the label keys and values repeated on every
	 * sample are found without hashing their bytes. The strings cannot
	 * change while the encoder runs, so an address seen once keeps its index.
	 */
	struct {
		const char *s;
		uint32_t idx;
	} cache[STRTAB_CACHE];
};

static uint32_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a, folded to 32 bits */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static int strtab_rehash(struct strtab *t, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++) {
		uint32_t j = t->hashes[i] & (nslots - 1);

		while (slots[j])
			j = (j + 1) & (nslots - 1);
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->mask = nslots - 1;
	return 0;
}

static int strtab_init(struct strtab *t)
{
	memset(t, 0, sizeof(*t));
	t->cap = 1024;
	t->strs = malloc(t->cap * sizeof(*t->strs));
	t->hashes = malloc(t->cap * sizeof(*t->hashes));
	if (!t->strs || !t->hashes)
		return -ENOMEM;
	t->strs[0] = "";	/* index 0 is "" and never in the hash */
	t->hashes[0] = 0;
	t->n = 1;
	return strtab_rehash(t, 2048);
}

static void strtab_fini(struct strtab *t)
{
	free(t->strs);
	free(t->hashes);
	free(t->slots);
}

/* Index of s, added if new; NULL and "" are 0. -ENOMEM or -E2BIG on failure. */
static int64_t strtab_index(struct strtab *t, const char *s)
{
	uint32_t h, j, c;

	if (!s || !*s)
		return 0;
	c = (uint32_t)(((uintptr_t)s * 0x9e3779b97f4a7c15ull) >> 54) & (STRTAB_CACHE - 1);
	if (t->cache[c].s == s)
		return t->cache[c].idx;
	h = hash_str(s);
	for (j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
		uint32_t i = t->slots[j] - 1;

		if (t->hashes[i] == h && !strcmp(t->strs[i], s)) {
			t->cache[c].s = s;
			t->cache[c].idx = i;
			return i;
		}
	}
	if (t->n == UINT32_MAX / 4)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t ncap = t->cap * 2;
		const char **ns = realloc(t->strs, ncap * sizeof(*ns));
		uint32_t *nh;

		if (!ns)
			return -ENOMEM;
		t->strs = ns;
		nh = realloc(t->hashes, ncap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		t->hashes = nh;
		t->cap = ncap;
	}
	t->strs[t->n] = s;
	t->hashes[t->n] = h;
	t->slots[j] = t->n + 1;
	t->cache[c].s = s;
	t->cache[c].idx = t->n;
	t->n++;
	/* keep the table at most half full */
	if (t->n * 2 > t->mask + 1 && strtab_rehash(t, (t->mask + 1) * 2))
		return -ENOMEM;
	return t->n - 1;
}

/* Functions, keyed by (name, file, system name) string indexes. */
struct fkey {
	uint32_t name, file, sys;
};

struct functab {
	struct fkey *keys;	/* slot -> key */
	uint32_t *ids;		/* slot -> function id, 0 = free */
	uint32_t mask;
	uint32_t n;
	struct fkey *funcs;	/* function id - 1 -> its key */
};

static uint32_t hash_fkey(const struct fkey *k)
{
	uint64_t h = ((uint64_t)k->name << 32 | k->file) ^ (uint64_t)k->sys * 0x9e3779b97f4a7c15ull;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static int functab_init(struct functab *f, uint32_t max_funcs)
{
	uint32_t nslots = 64;

	memset(f, 0, sizeof(*f));
	if (max_funcs > UINT32_MAX / 4)
		return -E2BIG;
	while (nslots < max_funcs * 2)
		nslots *= 2;
	f->keys = malloc(nslots * sizeof(*f->keys));
	f->ids = calloc(nslots, sizeof(*f->ids));
	f->funcs = malloc((max_funcs + 1) * sizeof(*f->funcs));
	f->mask = nslots - 1;
	return f->keys && f->ids && f->funcs ? 0 : -ENOMEM;
}

static void functab_fini(struct functab *f)
{
	free(f->keys);
	free(f->ids);
	free(f->funcs);
}

/* Function id of k, added if new. Sized for every location: never full. */
static uint32_t functab_id(struct functab *f, struct fkey k)
{
	uint32_t j;

	for (j = hash_fkey(&k) & f->mask; f->ids[j]; j = (j + 1) & f->mask) {
		if (!memcmp(&f->keys[j], &k, sizeof(k)))
			return f->ids[j];
	}
	f->keys[j] = k;
	f->funcs[f->n] = k;
	f->ids[j] = ++f->n;
	return f->n;
}

struct enc {
	const struct profile *p;
	struct pbw w;
	struct strtab st;
	struct functab ft;
	uint32_t *loc_func;	/* location index -> function id */
	uint32_t *ids;		/* scratch: one sample's location ids */
	uint8_t *map_flags;	/* mapping index -> MF_* */
	/* by frame kind: the pseudo-mapping of the kernel's and the runtimes' frames */
	struct {
		uint64_t id;		/* mapping id, 0 = none needed */
		bool synthesized;	/* ... and it is ours, not one of the profile's */
		uint64_t lo, hi;	/* the addresses of its locations, hi one past */
	} pseudo[PROF_FRAME_KINDS];
	uint64_t s_samples, s_count, s_cpu, s_ns;	/* string indexes */
	const struct pprof_str_label *extra;	/* on every sample, after its own */
	int nextra;
	int err;
};

enum { MF_FILENAMES = 1, MF_LINES = 2 };

/* String index; a failure is remembered in e->err and index 0 used meanwhile. */
static uint64_t str(struct enc *e, const char *s)
{
	int64_t i = strtab_index(&e->st, s);

	if (i < 0) {
		e->err = (int)i;
		return 0;
	}
	return (uint64_t)i;
}

static void value_type(struct enc *e, uint32_t field, uint64_t type, uint64_t unit)
{
	pbw__begin(&e->w, field);
	pbw__uint64(&e->w, VALUE_TYPE_TYPE, type);
	pbw__uint64(&e->w, VALUE_TYPE_UNIT, unit);
	pbw__end(&e->w);
}

/* The profile's own pseudo-mappings, if it has them (a merged profile does). */
static void pseudo_own(struct enc *e)
{
	for (int f = 0; f < PROF_FRAME_KINDS; f++)
		e->pseudo[f].lo = UINT64_MAX;
	for (uint32_t i = 0; i < e->p->nmappings; i++) {
		enum prof_frame f = prof_frame_of_mapping(e->p->mappings[i].file);

		if (f != PROF_FRAME_NATIVE && !e->pseudo[f].id)
			e->pseudo[f].id = i + 1;
	}
}

/* Ours, after the profile's mappings, for the kinds of frames that have none. */
static void pseudo_synthesize(struct enc *e)
{
	uint64_t next = (uint64_t)e->p->nmappings + 1;

	for (int f = 0; f < PROF_FRAME_KINDS; f++) {
		if (e->pseudo[f].lo == UINT64_MAX || e->pseudo[f].id)
			continue;
		e->pseudo[f].id = next++;
		e->pseudo[f].synthesized = true;
	}
}

/* Checks the indexes in p, and works out functions and mapping flags. */
static int prepare(struct enc *e)
{
	const struct profile *p = e->p;
	uint32_t max_locs = 0;
	int err;

	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		for (uint32_t k = 0; k < s->nlocs; k++)
			if (s->locs[k] >= p->nlocations)
				return -EINVAL;
		if (s->nlocs > max_locs)
			max_locs = s->nlocs;
	}
	e->loc_func = malloc(((size_t)p->nlocations + 1) * sizeof(*e->loc_func));
	e->map_flags = calloc((size_t)p->nmappings + 1, 1);
	e->ids = malloc(((size_t)max_locs + 1) * sizeof(*e->ids));
	if (!e->loc_func || !e->map_flags || !e->ids)
		return -ENOMEM;
	err = functab_init(&e->ft, p->nlocations);
	if (err)
		return err;

	pseudo_own(e);
	for (uint32_t i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];
		uint64_t name = str(e, l->function), file = str(e, l->file);
		uint64_t sys = l->system_name ? str(e, l->system_name) : name;

		if (l->mapping != PROFILE_NO_MAPPING && l->mapping >= p->nmappings)
			return -EINVAL;
		e->loc_func[i] = functab_id(&e->ft, (struct fkey){ (uint32_t)name, (uint32_t)file,
								   (uint32_t)sys });
		if (l->frame != PROF_FRAME_NATIVE && l->frame < PROF_FRAME_KINDS) {
			uint64_t *lo = &e->pseudo[l->frame].lo, *hi = &e->pseudo[l->frame].hi;

			if (l->address < *lo)
				*lo = l->address;
			if (l->address >= *hi)	/* one past; the last page saturates */
				*hi = l->address == UINT64_MAX ? UINT64_MAX : l->address + 1;
		}
		if (l->mapping != PROFILE_NO_MAPPING) {
			e->map_flags[l->mapping] |= (l->file ? MF_FILENAMES : 0) |
						    (l->line ? MF_LINES : 0);
		}
	}
	pseudo_synthesize(e);
	return e->err;
}

/* An extra label is not written twice, nor empty (a string index 0 reads as
 * a number): the sample's own label of that key wins. */
static bool sample_has(const struct prof_sample *s, const char *key)
{
	for (uint32_t k = 0; k < s->nlabels; k++)
		if (s->labels[k].key && !strcmp(s->labels[k].key, key))
			return true;
	return false;
}

static void write_samples(struct enc *e)
{
	const struct profile *p = e->p;
	struct pbw *w = &e->w;

	for (uint32_t i = 0; i < p->nsamples && !e->err && !w->err; i++) {
		const struct prof_sample *s = &p->samples[i];
		int64_t values[2] = { s->count, s->cpu_ns };

		pbw__begin(w, PROFILE_SAMPLE);
		/* location ids are index + 1, leaf first as in the profile */
		for (uint32_t k = 0; k < s->nlocs; k++)
			e->ids[k] = (uint32_t)s->locs[k] + 1;
		pbw__packed_u32(w, SAMPLE_LOCATION_ID, e->ids, s->nlocs);
		pbw__packed_i64(w, SAMPLE_VALUE, values, 2);
		for (uint32_t k = 0; k < s->nlabels; k++) {
			const struct prof_label *l = &s->labels[k];

			pbw__begin(w, SAMPLE_LABEL);
			pbw__uint64(w, LABEL_KEY, str(e, l->key));
			if (l->str) {
				pbw__uint64(w, LABEL_STR, str(e, l->str));
			} else {
				pbw__int64(w, LABEL_NUM, l->num);
				pbw__uint64(w, LABEL_NUM_UNIT, str(e, l->unit));
			}
			pbw__end(w);
		}
		for (int k = 0; k < e->nextra; k++) {
			if (!e->extra[k].key || !e->extra[k].value || !e->extra[k].value[0] ||
			    sample_has(s, e->extra[k].key))
				continue;
			pbw__begin(w, SAMPLE_LABEL);
			pbw__uint64(w, LABEL_KEY, str(e, e->extra[k].key));
			pbw__uint64(w, LABEL_STR, str(e, e->extra[k].value));
			pbw__end(w);
		}
		pbw__end(w);
	}
}

static void write_mappings(struct enc *e)
{
	const struct profile *p = e->p;
	struct pbw *w = &e->w;

	for (uint32_t i = 0; i < p->nmappings; i++) {
		const struct prof_mapping *m = &p->mappings[i];

		pbw__begin(w, PROFILE_MAPPING);
		pbw__uint64(w, MAPPING_ID, (uint64_t)i + 1);
		pbw__uint64(w, MAPPING_MEMORY_START, m->start);
		pbw__uint64(w, MAPPING_MEMORY_LIMIT, m->limit);
		pbw__uint64(w, MAPPING_FILE_OFFSET, m->offset);
		pbw__uint64(w, MAPPING_FILENAME, str(e, m->file));
		pbw__uint64(w, MAPPING_BUILD_ID, str(e, m->build_id));
		/*
		 * Every location has a function name (unresolved ones are
		 * "module+0xoffset"): say so, or pprof tries to symbolize again.
		 */
		pbw__bool(w, MAPPING_HAS_FUNCTIONS, true);
		pbw__bool(w, MAPPING_HAS_FILENAMES, e->map_flags[i] & MF_FILENAMES);
		pbw__bool(w, MAPPING_HAS_LINE_NUMBERS, e->map_flags[i] & MF_LINES);
		pbw__end(w);
	}
	for (int f = 0; f < PROF_FRAME_KINDS; f++) {
		if (!e->pseudo[f].synthesized)
			continue;
		pbw__begin(w, PROFILE_MAPPING);
		pbw__uint64(w, MAPPING_ID, e->pseudo[f].id);
		pbw__uint64(w, MAPPING_MEMORY_START, e->pseudo[f].lo);
		pbw__uint64(w, MAPPING_MEMORY_LIMIT, e->pseudo[f].hi);
		pbw__uint64(w, MAPPING_FILENAME, str(e, prof_frame_mapping((enum prof_frame)f)));
		pbw__bool(w, MAPPING_HAS_FUNCTIONS, true);
		pbw__bool(w, MAPPING_HAS_FILENAMES, prof_frame_has_lines(f));
		pbw__bool(w, MAPPING_HAS_LINE_NUMBERS, prof_frame_has_lines(f));
		pbw__end(w);
	}
}

static void write_locations(struct enc *e)
{
	const struct profile *p = e->p;
	struct pbw *w = &e->w;

	for (uint32_t i = 0; i < p->nlocations && !w->err; i++) {
		const struct prof_location *l = &p->locations[i];
		uint64_t mapping = 0;

		if (l->frame != PROF_FRAME_NATIVE && l->frame < PROF_FRAME_KINDS)
			mapping = e->pseudo[l->frame].id;
		else if (l->mapping != PROFILE_NO_MAPPING)
			mapping = (uint64_t)l->mapping + 1;

		pbw__begin(w, PROFILE_LOCATION);
		pbw__uint64(w, LOCATION_ID, (uint64_t)i + 1);
		pbw__uint64(w, LOCATION_MAPPING_ID, mapping);
		pbw__uint64(w, LOCATION_ADDRESS, l->address);
		pbw__begin(w, LOCATION_LINE);
		pbw__uint64(w, LINE_FUNCTION_ID, e->loc_func[i]);
		pbw__int64(w, LINE_LINE, l->line);
		if (l->column)
			pbw__int64(w, LINE_COLUMN, l->column);
		pbw__end(w);
		pbw__end(w);
	}
}

static void write_functions(struct enc *e)
{
	struct pbw *w = &e->w;

	for (uint32_t i = 0; i < e->ft.n && !w->err; i++) {
		pbw__begin(w, PROFILE_FUNCTION);
		pbw__uint64(w, FUNCTION_ID, (uint64_t)i + 1);
		pbw__uint64(w, FUNCTION_NAME, e->ft.funcs[i].name);
		/* the mangled name is not kept: the demangled one, or the
		 * name with its namespace (a Python module) */
		pbw__uint64(w, FUNCTION_SYSTEM_NAME, e->ft.funcs[i].sys);
		pbw__uint64(w, FUNCTION_FILENAME, e->ft.funcs[i].file);
		pbw__end(w);
	}
}

/*
 * Fields go out in field-number order, as protoc would write them. Every
 * string must have its index before the string table (6) is written, so the
 * strings of the fields after it (period type, comments) are added first.
 */
static int encode(struct enc *e)
{
	const struct profile *p = e->p;
	struct pbw *w = &e->w;
	int64_t *comments = NULL;
	int err;

	e->s_samples = str(e, "samples");
	e->s_count = str(e, "count");
	e->s_cpu = str(e, "cpu");
	e->s_ns = str(e, "nanoseconds");
	if (p->ncomments) {
		comments = malloc(p->ncomments * sizeof(*comments));
		if (!comments)
			return -ENOMEM;
		for (uint32_t i = 0; i < p->ncomments; i++)
			comments[i] = (int64_t)str(e, p->comments[i]);
	}
	err = prepare(e);
	if (err)
		goto out;

	value_type(e, PROFILE_SAMPLE_TYPE, e->s_samples, e->s_count);
	value_type(e, PROFILE_SAMPLE_TYPE, e->s_cpu, e->s_ns);
	write_samples(e);
	write_mappings(e);
	write_locations(e);
	write_functions(e);
	for (uint32_t i = 0; i < e->st.n && !w->err; i++)
		pbw__string(w, PROFILE_STRING_TABLE, e->st.strs[i]);
	pbw__int64(w, PROFILE_TIME_NANOS, p->time_nanos);
	pbw__int64(w, PROFILE_DURATION_NANOS, p->duration_nanos);
	value_type(e, PROFILE_PERIOD_TYPE, e->s_cpu, e->s_ns);
	pbw__int64(w, PROFILE_PERIOD, p->period_nanos);
	pbw__packed_i64(w, PROFILE_COMMENT, comments, p->ncomments);
	pbw__uint64(w, PROFILE_DEFAULT_SAMPLE_TYPE, e->s_cpu);
	err = e->err ? e->err : pbw__error(w);
out:
	free(comments);
	return err;
}

/*
 * gzip (RFC 1952) in one deflate call. Level 1, as Go's runtime/pprof uses:
 * profiles are varints and repeated strings, which compress well even at the
 * fastest level, and the agent should not spend its CPU budget on zlib.
 */
static int gzip_buffer(const uint8_t *in, size_t len, uint8_t **ret_out, size_t *ret_len)
{
	z_stream z;
	uint8_t *out = NULL;
	size_t cap;
	int err = 0;

	memset(&z, 0, sizeof(z));
	if (len > PPROF_MAX_BYTES)
		return -E2BIG;
	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len);
	out = malloc(cap);
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		err = -EIO;
		goto out;
	}
	*ret_out = out;
	*ret_len = z.total_out;
	out = NULL;
out:
	deflateEnd(&z);
	free(out);
	return err;
}

int pprof__encode(const struct profile *p, bool gzip, uint8_t **ret_buf, size_t *ret_len)
{
	return pprof__encode_labeled(p, NULL, 0, gzip, ret_buf, ret_len);
}

int pprof__encode_labeled(const struct profile *p, const struct pprof_str_label *extra,
			  int nextra, bool gzip, uint8_t **ret_buf, size_t *ret_len)
{
	struct enc e;
	uint8_t *raw = NULL;
	size_t len;
	int err;

	memset(&e, 0, sizeof(e));
	e.p = p;
	e.extra = extra;
	e.nextra = extra ? nextra : 0;
	pbw__init(&e.w, PPROF_MAX_BYTES);
	err = strtab_init(&e.st);
	if (err)
		goto out;
	/* a guess that saves most of the regrowing: ~8 bytes per frame of every sample */
	pbw__reserve(&e.w, 4096 + (size_t)p->nsamples * 64 + (size_t)p->nlocations * 32);
	pbw__reset(&e.w);	/* a failed guess is no error */
	err = encode(&e);
	if (!err)
		err = pbw__take(&e.w, &raw, &len);
	if (err)
		goto out;
	if (gzip) {
		err = gzip_buffer(raw, len, ret_buf, ret_len);
	} else {
		*ret_buf = raw;
		*ret_len = len;
		raw = NULL;
	}
out:
	free(raw);
	pbw__release(&e.w);
	strtab_fini(&e.st);
	functab_fini(&e.ft);
	free(e.loc_func);
	free(e.map_flags);
	free(e.ids);
	return err;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int pprof_write_atomic(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
	static atomic_uint seq;
	char tmp[4096];
	int fd, err, n;

	/* unique per process and call: concurrent writers never share a temporary */
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int)getpid(),
		     atomic_fetch_add(&seq, 1));
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	err = write_all(fd, buf, len);
	/* the data reaches the disk before the name does: no empty file after a crash */
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int pprof__write_file(const struct profile *p, const char *path)
{
	uint8_t *buf = NULL;
	size_t len;
	int err = pprof__encode(p, true, &buf, &len);

	if (err)
		return err;
	err = !strcmp(path, "-") ? write_all(STDOUT_FILENO, buf, len) :
				   pprof_write_atomic(path, buf, len, 0644);
	free(buf);
	return err;
}
