// SPDX-License-Identifier: Apache-2.0
#include "pbw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WT_VARINT 0
#define WT_I64 1
#define WT_LEN 2

void pbw_init(struct pbw *w, size_t max_bytes)
{
	memset(w, 0, sizeof(*w));
	w->max = max_bytes ? max_bytes : (size_t)1 << 30;
}

void pbw_free(struct pbw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

uint8_t *pbw_take(struct pbw *w, size_t *ret_len)
{
	uint8_t *b = w->buf;

	*ret_len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	return b;
}

static bool reserve(struct pbw *w, size_t n)
{
	size_t ncap;
	uint8_t *nb;

	if (w->err)
		return false;
	if (w->len + n <= w->cap)
		return true;
	if (w->len + n > w->max) {
		w->err = -E2BIG;
		return false;
	}
	ncap = w->cap ? w->cap * 2 : 4096;
	while (ncap < w->len + n)
		ncap *= 2;
	if (ncap > w->max)
		ncap = w->max;
	nb = realloc(w->buf, ncap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = ncap;
	return true;
}

void pbw_raw(struct pbw *w, const void *data, size_t len)
{
	if (!len || !reserve(w, len))
		return;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
}

size_t pbw_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void pbw_varint(struct pbw *w, uint64_t v)
{
	uint8_t *p;

	if (!reserve(w, 10))
		return;
	p = w->buf + w->len;
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	w->len = (size_t)(p - w->buf);
}

void pbw_tag(struct pbw *w, uint32_t field, uint32_t wire_type)
{
	pbw_varint(w, (uint64_t)field << 3 | wire_type);
}

void pbw_uint64(struct pbw *w, uint32_t field, uint64_t v)
{
	if (!v)
		return;
	pbw_tag(w, field, WT_VARINT);
	pbw_varint(w, v);
}

void pbw_int64(struct pbw *w, uint32_t field, int64_t v)
{
	if (!v)
		return;
	pbw_tag(w, field, WT_VARINT);
	pbw_varint(w, (uint64_t)v);	/* negative int64: ten bytes, as protobuf says */
}

void pbw_bool(struct pbw *w, uint32_t field, bool v)
{
	if (!v)
		return;
	pbw_tag(w, field, WT_VARINT);
	pbw_varint(w, 1);
}

void pbw_fixed64(struct pbw *w, uint32_t field, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	pbw_tag(w, field, WT_I64);
	pbw_raw(w, b, 8);
}

void pbw_bytes(struct pbw *w, uint32_t field, const void *data, size_t len)
{
	pbw_tag(w, field, WT_LEN);
	pbw_varint(w, len);
	pbw_raw(w, data, len);
}

void pbw_string(struct pbw *w, uint32_t field, const char *s)
{
	pbw_bytes(w, field, s, strlen(s));
}

#define PACKED(name, type)                                                      \
	void name(struct pbw *w, uint32_t field, const type *v, size_t n)       \
	{                                                                       \
		size_t len = 0;                                                 \
		if (!n)                                                         \
			return;                                                 \
		for (size_t i = 0; i < n; i++)                                  \
			len += pbw_varint_size((uint64_t)v[i]);                 \
		pbw_tag(w, field, WT_LEN);                                      \
		pbw_varint(w, len);                                             \
		if (!reserve(w, len))                                           \
			return;                                                 \
		for (size_t i = 0; i < n; i++)                                  \
			pbw_varint(w, (uint64_t)v[i]);                          \
	}
PACKED(pbw_packed_u64, uint64_t)
PACKED(pbw_packed_u32, uint32_t)
PACKED(pbw_packed_i64, int64_t)

size_t pbw_begin(struct pbw *w, uint32_t field)
{
	pbw_tag(w, field, WT_LEN);
	if (!reserve(w, 5))
		return w->len;
	w->len += 5;	/* room for the length */
	return w->len;
}

void pbw_end(struct pbw *w, size_t mark)
{
	size_t body, need;
	uint8_t *p;

	if (w->err || mark < 5 || mark > w->len)
		return;
	body = w->len - mark;
	if (body > UINT32_MAX) {
		w->err = -E2BIG;
		return;
	}
	need = pbw_varint_size(body);
	p = w->buf + mark - 5;
	/* shortest form: move the body down over the unused length bytes */
	memmove(p + need, w->buf + mark, body);
	for (size_t i = 0; i < need; i++) {
		p[i] = (uint8_t)(body & 0x7f) | (i + 1 < need ? 0x80 : 0);
		body >>= 7;
	}
	w->len -= 5 - need;
}
