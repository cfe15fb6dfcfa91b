// SPDX-License-Identifier: Apache-2.0
/* Protobuf wire-format writer; see pbw.h for the rules it follows. */
#include "pbw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A nested message's length is written into this many bytes, then shrunk. */
#define LEN_ROOM 5
#define INITIAL_CAP 256

void pbw__init(struct pbw *w, size_t max_bytes)
{
	memset(w, 0, sizeof(*w));
	w->max = max_bytes && max_bytes <= PBW_MAX_LIMIT ? max_bytes : PBW_MAX_LIMIT;
}

void pbw__reset(struct pbw *w)
{
	w->len = 0;
	w->err = 0;
	w->depth = 0;
}

void pbw__release(struct pbw *w)
{
	size_t max;

	if (!w)
		return;
	max = w->max;
	free(w->buf);
	pbw__init(w, max);
}

/* Slow path of reserve(): make room for n more bytes, within the cap. */
static bool grow(struct pbw *w, size_t n)
{
	size_t ncap;
	uint8_t *nb;

	if (n > w->max - w->len) {
		w->err = -E2BIG;
		return false;
	}
	ncap = w->cap ? w->cap : INITIAL_CAP;
	if (ncap > w->max)
		ncap = w->max;	/* the allocation never exceeds the cap either */
	while (ncap - w->len < n)
		ncap = ncap > w->max / 2 ? w->max : ncap * 2;
	nb = realloc(w->buf, ncap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = ncap;
	return true;
}

/* True when n more bytes fit; false (with w->err set) otherwise. */
static inline bool reserve(struct pbw *w, size_t n)
{
	if (w->err)
		return false;
	if (n <= w->cap - w->len)
		return true;
	return grow(w, n);
}

int pbw__reserve(struct pbw *w, size_t n)
{
	return reserve(w, n) ? 0 : w->err;
}

int pbw__error(const struct pbw *w)
{
	if (w->err)
		return w->err;
	return w->depth ? -EINVAL : 0;
}

int pbw__take(struct pbw *w, uint8_t **ret_buf, size_t *ret_len)
{
	int err = pbw__error(w);
	uint8_t *b;

	if (err)
		return err;
	b = w->buf;
	if (!b) {
		b = malloc(1);	/* "malloc'd" holds for an empty message too */
		if (!b)
			return -ENOMEM;
	}
	*ret_buf = b;
	*ret_len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	return 0;
}

size_t pbw__varint_size(uint64_t v)
{
	/* 7 payload bits per byte; v | 1 keeps clz defined for 0 */
	return (size_t)(64 - __builtin_clzll(v | 1) + 6) / 7;
}

/* Writes v at p, which has room for it; returns the bytes written. */
static inline size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

void pbw__raw(struct pbw *w, const void *data, size_t len)
{
	if (!len || !reserve(w, len))
		return;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
}

void pbw__varint(struct pbw *w, uint64_t v)
{
	if (w->err)
		return;
	/* fast path: ten bytes fit any varint; near the cap, ask for the exact size */
	if (w->cap - w->len < 10 && !reserve(w, pbw__varint_size(v)))
		return;
	w->len += put_varint(w->buf + w->len, v);
}

void pbw__tag(struct pbw *w, uint32_t field, enum pbw_wire_type wt)
{
	pbw__varint(w, (uint64_t)field << 3 | (uint64_t)wt);
}

void pbw__varint_field(struct pbw *w, uint32_t field, uint64_t v)
{
	pbw__tag(w, field, PBW_WT_VARINT);
	pbw__varint(w, v);
}

void pbw__uint64(struct pbw *w, uint32_t field, uint64_t v)
{
	if (v)
		pbw__varint_field(w, field, v);
}

void pbw__int64(struct pbw *w, uint32_t field, int64_t v)
{
	if (v)
		pbw__varint_field(w, field, (uint64_t)v);
}

void pbw__bool(struct pbw *w, uint32_t field, bool v)
{
	if (v)
		pbw__varint_field(w, field, 1);
}

static void put_fixed(struct pbw *w, uint32_t field, enum pbw_wire_type wt, uint64_t v,
		      size_t nbytes)
{
	uint8_t b[8];

	/* little-endian on the wire, whatever the host is */
	for (size_t i = 0; i < nbytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	pbw__tag(w, field, wt);
	pbw__raw(w, b, nbytes);
}

void pbw__fixed64_field(struct pbw *w, uint32_t field, uint64_t v)
{
	put_fixed(w, field, PBW_WT_I64, v, 8);
}

void pbw__fixed64(struct pbw *w, uint32_t field, uint64_t v)
{
	if (v)
		put_fixed(w, field, PBW_WT_I64, v, 8);
}

void pbw__fixed32(struct pbw *w, uint32_t field, uint32_t v)
{
	if (v)
		put_fixed(w, field, PBW_WT_I32, v, 4);
}

void pbw__double(struct pbw *w, uint32_t field, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if (bits)	/* -0.0 has a bit set and is written, as protobuf does */
		put_fixed(w, field, PBW_WT_I64, bits, 8);
}

void pbw__bytes(struct pbw *w, uint32_t field, const void *data, size_t len)
{
	pbw__tag(w, field, PBW_WT_LEN);
	pbw__varint(w, len);
	pbw__raw(w, data, len);
}

void pbw__string(struct pbw *w, uint32_t field, const char *s)
{
	pbw__bytes(w, field, s ? s : "", s ? strlen(s) : 0);
}

/*
 * Packed fields: sum the sizes first so the length goes in front without a
 * move, then write every element with no further checks.
 */
#define DEFINE_PACKED(name, type)                                                \
	void name(struct pbw *w, uint32_t field, const type *v, size_t n)        \
	{                                                                        \
		size_t len = 0;                                                  \
		uint8_t *p;                                                      \
                                                                                 \
		if (!n)                                                          \
			return;                                                  \
		for (size_t i = 0; i < n; i++)                                   \
			len += pbw__varint_size((uint64_t)v[i]);                 \
		pbw__tag(w, field, PBW_WT_LEN);                                  \
		pbw__varint(w, len);                                             \
		if (!reserve(w, len))                                            \
			return;                                                  \
		p = w->buf + w->len;                                             \
		for (size_t i = 0; i < n; i++)                                   \
			p += put_varint(p, (uint64_t)v[i]);                      \
		w->len += len;                                                   \
	}

DEFINE_PACKED(pbw__packed_u64, uint64_t)
DEFINE_PACKED(pbw__packed_u32, uint32_t)
DEFINE_PACKED(pbw__packed_i64, int64_t)

void pbw__begin(struct pbw *w, uint32_t field)
{
	pbw__tag(w, field, PBW_WT_LEN);
	if (w->err)
		return;
	if (w->depth == PBW_MAX_DEPTH) {
		w->err = -EINVAL;
		return;
	}
	if (!reserve(w, LEN_ROOM))
		return;
	w->len += LEN_ROOM;
	w->open[w->depth++] = w->len;
}

void pbw__end(struct pbw *w)
{
	size_t start, body, need;
	uint8_t *p;

	if (w->err)
		return;
	if (!w->depth) {
		w->err = -EINVAL;
		return;
	}
	start = w->open[--w->depth];
	body = w->len - start;	/* < 2 GiB: the cap says so, and 5 bytes hold 35 bits */
	need = pbw__varint_size(body);
	p = w->buf + start - LEN_ROOM;
	if (need < LEN_ROOM)
		memmove(p + need, w->buf + start, body);
	put_varint(p, body);
	w->len -= LEN_ROOM - need;
}
