// SPDX-License-Identifier: Apache-2.0
#include "pprof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pbw.h"
#include "profile.h"

#define PROFLEET_MAX_FRAMES_HINT 512

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3, PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10, PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
	LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3, LABEL_NUM_UNIT = 4,
	MAPPING_ID = 1, MAPPING_MEMORY_START = 2, MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4, MAPPING_FILENAME = 5, MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3, LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1, LINE_LINE = 2,
	FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4,
};

/*
 * Strings of a profile are interned, so equal strings are the same pointer:
 * the string table and the function table hash pointers, not contents.
 */
struct ptrmap {
	const void **keys;	/* for functions: name and file interleaved */
	uint32_t *vals;
	uint32_t nslots, n, width;	/* width: pointers per key */
};

static uint64_t hash_ptrs(const void *const *k, uint32_t width)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (uint32_t i = 0; i < width; i++)
		h = (h ^ (uint64_t)(uintptr_t)k[i]) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 29);
}

static int ptrmap_init(struct ptrmap *m, uint32_t width, uint32_t expect)
{
	uint32_t n = 64;

	while (n < expect * 2)
		n *= 2;
	m->keys = calloc((size_t)n * width, sizeof(*m->keys));
	m->vals = calloc(n, sizeof(*m->vals));
	m->nslots = n;
	m->n = 0;
	m->width = width;
	return m->keys && m->vals ? 0 : -ENOMEM;
}

static void ptrmap_free(struct ptrmap *m)
{
	free(m->keys);
	free(m->vals);
}

/* Returns the value for key, inserting next_val if new (*ret_new = true). 0 = out of memory. */
static uint32_t ptrmap_get(struct ptrmap *m, const void *const *key, uint32_t next_val,
			   bool *ret_new)
{
	uint32_t j;

	*ret_new = false;
	if ((m->n + 1) * 2 > m->nslots) {
		struct ptrmap g;

		if (ptrmap_init(&g, m->width, m->nslots))
			return 0;
		for (uint32_t i = 0; i < m->nslots; i++) {
			if (!m->vals[i])
				continue;
			for (j = hash_ptrs(&m->keys[(size_t)i * m->width], m->width) & (g.nslots - 1);
			     g.vals[j]; j = (j + 1) & (g.nslots - 1))
				;
			memcpy(&g.keys[(size_t)j * m->width], &m->keys[(size_t)i * m->width],
			       m->width * sizeof(*m->keys));
			g.vals[j] = m->vals[i];
		}
		g.n = m->n;
		ptrmap_free(m);
		*m = g;
	}
	for (j = hash_ptrs(key, m->width) & (m->nslots - 1); m->vals[j];
	     j = (j + 1) & (m->nslots - 1)) {
		if (!memcmp(&m->keys[(size_t)j * m->width], key, m->width * sizeof(*key)))
			return m->vals[j];
	}
	memcpy(&m->keys[(size_t)j * m->width], key, m->width * sizeof(*key));
	m->vals[j] = next_val;
	m->n++;
	*ret_new = true;
	return next_val;
}

struct enc {
	struct pbw w;
	struct ptrmap strs;	/* string -> index + 1 */
	const char **table;	/* index -> string */
	uint32_t ntable, cap_table;
	int err;
};

static int64_t str_index(struct enc *e, const char *s)
{
	const void *key[1];
	bool is_new;
	uint32_t v;

	if (!s || !*s)
		return 0;
	key[0] = s;
	v = ptrmap_get(&e->strs, key, e->ntable + 1, &is_new);
	if (!v) {
		e->err = -ENOMEM;
		return 0;
	}
	if (is_new) {
		if (e->ntable == e->cap_table) {
			uint32_t n = e->cap_table * 2;
			const char **t = realloc(e->table, n * sizeof(*t));

			if (!t) {
				e->err = -ENOMEM;
				return 0;
			}
			e->table = t;
			e->cap_table = n;
		}
		e->table[e->ntable++] = s;
	}
	return v - 1;
}

static void value_type(struct enc *e, uint32_t field, const char *type, const char *unit)
{
	size_t m = pbw_begin(&e->w, field);

	pbw_int64(&e->w, VALUE_TYPE_TYPE, str_index(e, type));
	pbw_int64(&e->w, VALUE_TYPE_UNIT, str_index(e, unit));
	pbw_end(&e->w, m);
}

static void encode(struct enc *e, const struct profile *p)
{
	struct ptrmap funcs;
	uint64_t *ids = NULL;
	uint32_t kernel_mapping = 0, nfuncs = 0;
	bool any_kernel = false;

	e->w.err = ptrmap_init(&funcs, 2, p->nlocations + 16);
	/* literal strings below are not interned in the profile: intern them too */
	const char *s_samples = profile__intern((struct profile *)p, "samples");
	const char *s_count = profile__intern((struct profile *)p, "count");
	const char *s_cpu = profile__intern((struct profile *)p, "cpu");
	const char *s_ns = profile__intern((struct profile *)p, "nanoseconds");
	const char *s_kernel = profile__intern((struct profile *)p, "[kernel.kallsyms]");

	if (!s_samples || !s_count || !s_cpu || !s_ns || !s_kernel) {
		e->err = -ENOMEM;
		goto out;
	}
	value_type(e, PROFILE_SAMPLE_TYPE, s_samples, s_count);
	value_type(e, PROFILE_SAMPLE_TYPE, s_cpu, s_ns);

	ids = malloc((PROFLEET_MAX_FRAMES_HINT + 1) * sizeof(*ids));
	for (uint32_t i = 0; i < p->nsamples && !e->err; i++) {
		const struct prof_sample *s = &p->samples[i];
		int64_t vals[2] = { s->count, s->cpu_ns };
		size_t m = pbw_begin(&e->w, PROFILE_SAMPLE);
		uint64_t *v = s->nlocs <= PROFLEET_MAX_FRAMES_HINT ? ids : malloc(s->nlocs * sizeof(*v));

		if (!v) {
			e->err = -ENOMEM;
			break;
		}
		for (uint32_t k = 0; k < s->nlocs; k++)
			v[k] = (uint64_t)s->locs[k] + 1;
		pbw_packed_u64(&e->w, SAMPLE_LOCATION_ID, v, s->nlocs);
		pbw_packed_i64(&e->w, SAMPLE_VALUE, vals, 2);
		for (uint32_t k = 0; k < s->nlabels; k++) {
			const struct prof_label *l = &s->labels[k];
			size_t lm = pbw_begin(&e->w, SAMPLE_LABEL);

			pbw_int64(&e->w, LABEL_KEY, str_index(e, l->key));
			if (l->str) {
				pbw_int64(&e->w, LABEL_STR, str_index(e, l->str));
			} else {
				/* always write num: a numeric label of 0 is still a label */
				pbw_tag(&e->w, LABEL_NUM, 0);
				pbw_varint(&e->w, (uint64_t)l->num);
				pbw_int64(&e->w, LABEL_NUM_UNIT, str_index(e, l->unit));
			}
			pbw_end(&e->w, lm);
		}
		pbw_end(&e->w, m);
		if (v != ids)
			free(v);
	}

	for (uint32_t i = 0; i < p->nmappings; i++) {
		const struct prof_mapping *pm = &p->mappings[i];
		size_t m = pbw_begin(&e->w, PROFILE_MAPPING);

		pbw_uint64(&e->w, MAPPING_ID, i + 1);
		pbw_uint64(&e->w, MAPPING_MEMORY_START, pm->start);
		pbw_uint64(&e->w, MAPPING_MEMORY_LIMIT, pm->limit);
		pbw_uint64(&e->w, MAPPING_FILE_OFFSET, pm->offset);
		pbw_int64(&e->w, MAPPING_FILENAME, str_index(e, pm->file));
		pbw_int64(&e->w, MAPPING_BUILD_ID, str_index(e, pm->build_id));
		pbw_bool(&e->w, MAPPING_HAS_FUNCTIONS, true);
		pbw_end(&e->w, m);
	}
	for (uint32_t i = 0; i < p->nlocations; i++)
		any_kernel |= p->locations[i].kernel;
	if (any_kernel) {
		size_t m = pbw_begin(&e->w, PROFILE_MAPPING);

		kernel_mapping = p->nmappings + 1;
		pbw_uint64(&e->w, MAPPING_ID, kernel_mapping);
		pbw_int64(&e->w, MAPPING_FILENAME, str_index(e, s_kernel));
		pbw_bool(&e->w, MAPPING_HAS_FUNCTIONS, true);
		pbw_end(&e->w, m);
	}

	for (uint32_t i = 0; i < p->nlocations && !e->err; i++) {
		const struct prof_location *l = &p->locations[i];
		const void *key[2] = { l->function, l->file };
		bool is_new;
		uint32_t fid = ptrmap_get(&funcs, key, nfuncs + 1, &is_new);
		size_t m, lm;

		if (!fid) {
			e->err = -ENOMEM;
			break;
		}
		if (is_new) {
			/* functions go in the same stream: order of fields does not matter */
			size_t fm = pbw_begin(&e->w, PROFILE_FUNCTION);

			nfuncs++;
			pbw_uint64(&e->w, FUNCTION_ID, fid);
			pbw_int64(&e->w, FUNCTION_NAME, str_index(e, l->function));
			pbw_int64(&e->w, FUNCTION_SYSTEM_NAME, str_index(e, l->function));
			pbw_int64(&e->w, FUNCTION_FILENAME, str_index(e, l->file));
			pbw_end(&e->w, fm);
		}
		m = pbw_begin(&e->w, PROFILE_LOCATION);
		pbw_uint64(&e->w, LOCATION_ID, i + 1);
		pbw_uint64(&e->w, LOCATION_MAPPING_ID,
			   l->kernel ? kernel_mapping :
			   l->mapping == PROFILE_NO_MAPPING ? 0 : l->mapping + 1);
		pbw_uint64(&e->w, LOCATION_ADDRESS, l->address);
		lm = pbw_begin(&e->w, LOCATION_LINE);
		pbw_uint64(&e->w, LINE_FUNCTION_ID, fid);
		pbw_int64(&e->w, LINE_LINE, l->line);
		pbw_end(&e->w, lm);
		pbw_end(&e->w, m);
	}

	pbw_int64(&e->w, PROFILE_TIME_NANOS, p->time_nanos);
	pbw_int64(&e->w, PROFILE_DURATION_NANOS, p->duration_nanos);
	value_type(e, PROFILE_PERIOD_TYPE, s_cpu, s_ns);
	pbw_int64(&e->w, PROFILE_PERIOD, p->period_nanos);
	for (uint32_t i = 0; i < p->ncomments; i++)
		pbw_int64(&e->w, PROFILE_COMMENT, str_index(e, p->comments[i]));
	pbw_int64(&e->w, PROFILE_DEFAULT_SAMPLE_TYPE, str_index(e, s_cpu));

	for (uint32_t i = 0; i < e->ntable; i++)
		pbw_string(&e->w, PROFILE_STRING_TABLE, e->table[i]);
out:
	free(ids);
	ptrmap_free(&funcs);
}

int gzip_buffer(const uint8_t *in, size_t len, uint8_t **ret_out, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t cap = compressBound((uLong)len) + 64;
	uint8_t *out = malloc(cap);
	int rc;

	if (!out)
		return -ENOMEM;
	/* 15 + 16: gzip wrapper; level 6 is zlib's sweet spot */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	*ret_out = out;
	*ret_len = z.total_out;
	return 0;
}

int pprof__encode(const struct profile *p, bool gzip, uint8_t **ret_buf, size_t *ret_len)
{
	struct enc e = { 0 };
	uint8_t *raw, *gz;
	size_t len, gzlen;
	int err;

	pbw_init(&e.w, (size_t)1 << 31);
	e.cap_table = 1024;
	e.table = malloc(e.cap_table * sizeof(*e.table));
	err = ptrmap_init(&e.strs, 1, 1024);
	if (!e.table || err) {
		err = -ENOMEM;
		goto out;
	}
	e.table[e.ntable++] = "";	/* index 0 is always "" */
	encode(&e, p);
	err = e.err ? e.err : e.w.err;
	if (err)
		goto out;
	raw = pbw_take(&e.w, &len);
	if (!gzip) {
		*ret_buf = raw;
		*ret_len = len;
		goto out;
	}
	err = gzip_buffer(raw, len, &gz, &gzlen);
	free(raw);
	if (!err) {
		*ret_buf = gz;
		*ret_len = gzlen;
	}
out:
	pbw_free(&e.w);
	ptrmap_free(&e.strs);
	free(e.table);
	return err;
}

int pprof__write_file(const struct profile *p, const char *path)
{
	char tmp[4200];
	uint8_t *buf = NULL;
	size_t len, off = 0;
	int fd, err;

	err = pprof__encode(p, true, &buf, &len);
	if (err)
		return err;
	if (!strcmp(path, "-")) {
		fd = STDOUT_FILENO;
	} else {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			err = -errno;
			goto out;
		}
	}
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (fd != STDOUT_FILENO) {
		if (close(fd) && !err)
			err = -errno;
		if (!err && rename(tmp, path))
			err = -errno;
		if (err)
			unlink(tmp);
	}
out:
	free(buf);
	return err;
}
