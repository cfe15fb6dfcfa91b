/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_PBW_H
#define COMMON_PBW_H

/*
 * A protobuf wire-format writer: a growable buffer with a hard cap. Nested
 * messages are written in place: pbw_begin() leaves room for a 5-byte length,
 * pbw_end() writes it (as a padded varint, which every decoder accepts) or,
 * when small, moves the body down to use the shortest encoding.
 * Errors are sticky: check pbw.err once at the end.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pbw {
	uint8_t *buf;
	size_t len, cap, max;
	int err;		/* 0 or -ENOMEM / -E2BIG */
};

void pbw_init(struct pbw *w, size_t max_bytes);
void pbw_free(struct pbw *w);
/* Hands the buffer over to the caller (malloc'd); the writer is empty afterwards. */
uint8_t *pbw_take(struct pbw *w, size_t *ret_len);

void pbw_raw(struct pbw *w, const void *data, size_t len);
void pbw_varint(struct pbw *w, uint64_t v);
void pbw_tag(struct pbw *w, uint32_t field, uint32_t wire_type);
void pbw_uint64(struct pbw *w, uint32_t field, uint64_t v);	/* omitted when 0 */
void pbw_int64(struct pbw *w, uint32_t field, int64_t v);	/* omitted when 0 */
void pbw_bool(struct pbw *w, uint32_t field, bool v);		/* omitted when false */
void pbw_bytes(struct pbw *w, uint32_t field, const void *data, size_t len);
void pbw_string(struct pbw *w, uint32_t field, const char *s);	/* written even when "" */
void pbw_fixed64(struct pbw *w, uint32_t field, uint64_t v);
/* packed repeated varints */
void pbw_packed_u64(struct pbw *w, uint32_t field, const uint64_t *v, size_t n);
void pbw_packed_u32(struct pbw *w, uint32_t field, const uint32_t *v, size_t n);
void pbw_packed_i64(struct pbw *w, uint32_t field, const int64_t *v, size_t n);

/* Nested message: returns a mark for pbw_end. */
size_t pbw_begin(struct pbw *w, uint32_t field);
void pbw_end(struct pbw *w, size_t mark);

size_t pbw_varint_size(uint64_t v);

#endif
