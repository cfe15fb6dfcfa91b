/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_PBW_H
#define COMMON_PBW_H

/*
 * pbw: a protobuf wire-format writer (pprof today, OTLP and the fleet protocol
 * later). No schema, no reflection: callers write fields in the order they
 * like, with the field numbers of their .proto file.
 *
 * The output is one growable buffer with a hard cap: a write that would take
 * it past the cap fails with -E2BIG instead of growing. Errors are sticky: once
 * a write failed, every later write is a no-op, so an encoder checks once, at
 * pbw__take() or pbw__error(), instead of after every field.
 *
 * Nested messages are written in place. pbw__begin() leaves five bytes for the
 * length (enough for any length below 2^35); pbw__end() writes the length in
 * its shortest form and moves the body down over the bytes it did not need,
 * so the output is canonical (what protoc would write) and no scratch buffer
 * or size pre-pass is needed. The move costs one memmove of the body per
 * nesting level, which is cheap next to encoding it.
 *
 * Presence: the scalar helpers (pbw__uint64, pbw__int64, pbw__bool,
 * pbw__fixed64, pbw__fixed32, pbw__double) leave out a field equal to its
 * default, as proto3 writers do for fields without explicit presence. Fields
 * with presence (oneof members, proto3 `optional`) use pbw__varint_field and
 * pbw__fixed64_field, which always write. Strings and bytes are always
 * written (pprof needs "" as string_table[0]).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protobuf messages are limited to 2 GiB; no writer buffer may be larger. */
#define PBW_MAX_LIMIT ((size_t)INT32_MAX)
/* Nested messages open at once; pprof needs 3, OTLP profiles about 6. */
#define PBW_MAX_DEPTH 32

enum pbw_wire_type {
	PBW_WT_VARINT = 0,
	PBW_WT_I64 = 1,
	PBW_WT_LEN = 2,
	PBW_WT_I32 = 5,
};

/*
 * Embedded by value (usually on the stack); fields are read-only for callers.
 * buf/len are the bytes written so far.
 */
struct pbw {
	uint8_t *buf;
	size_t len;	/* bytes written */
	size_t cap;	/* bytes allocated */
	size_t max;	/* hard cap on len */
	int err;	/* 0, -E2BIG, -ENOMEM or -EINVAL (unbalanced begin/end) */
	uint32_t depth;	/* nested messages open */
	size_t open[PBW_MAX_DEPTH];	/* where each open message's body starts */
};

/* max_bytes: hard cap; 0 or more than PBW_MAX_LIMIT means PBW_MAX_LIMIT. Allocates nothing. */
void pbw__init(struct pbw *w, size_t max_bytes);
/* Empties the writer and clears its error, keeping the allocation for reuse. */
void pbw__reset(struct pbw *w);
/* Frees the buffer; the writer is empty (and reusable) afterwards. NULL is fine. */
void pbw__release(struct pbw *w);
/* Grows the allocation to hold n more bytes now. 0 or the (sticky) error. */
int pbw__reserve(struct pbw *w, size_t n);
/* The sticky error, or -EINVAL if a nested message is still open; 0 if all is well. */
int pbw__error(const struct pbw *w);
/*
 * Hands the bytes over: *ret_buf is malloc'd (never NULL on success, even for
 * zero bytes) and the writer is empty afterwards. On error nothing is handed
 * over, the writer is left as it is, and the error is returned.
 */
int pbw__take(struct pbw *w, uint8_t **ret_buf, size_t *ret_len);

/* Bytes a value takes as a varint: 1..10. */
size_t pbw__varint_size(uint64_t v);

/* Low level: raw bytes, a bare varint, a field key. */
void pbw__raw(struct pbw *w, const void *data, size_t len);
void pbw__varint(struct pbw *w, uint64_t v);
void pbw__tag(struct pbw *w, uint32_t field, enum pbw_wire_type wt);

/* Scalars, left out when equal to the default (0 / false). */
void pbw__uint64(struct pbw *w, uint32_t field, uint64_t v);	/* also uint32, enum */
void pbw__int64(struct pbw *w, uint32_t field, int64_t v);	/* negative: 10 bytes, as protobuf says */
void pbw__bool(struct pbw *w, uint32_t field, bool v);
void pbw__fixed64(struct pbw *w, uint32_t field, uint64_t v);	/* also sfixed64 */
void pbw__fixed32(struct pbw *w, uint32_t field, uint32_t v);	/* also sfixed32 */
void pbw__double(struct pbw *w, uint32_t field, double v);	/* left out when +0.0 */

/* Scalars with presence: always written. */
void pbw__varint_field(struct pbw *w, uint32_t field, uint64_t v);
void pbw__fixed64_field(struct pbw *w, uint32_t field, uint64_t v);

/* Length-delimited, always written. s == NULL writes "". */
void pbw__bytes(struct pbw *w, uint32_t field, const void *data, size_t len);
void pbw__string(struct pbw *w, uint32_t field, const char *s);

/* Packed repeated varints; nothing is written when n == 0. Negative int64 take 10 bytes. */
void pbw__packed_u64(struct pbw *w, uint32_t field, const uint64_t *v, size_t n);
void pbw__packed_u32(struct pbw *w, uint32_t field, const uint32_t *v, size_t n);
void pbw__packed_i64(struct pbw *w, uint32_t field, const int64_t *v, size_t n);

/*
 * Nested message: pbw__begin opens field `field`, every write up to the
 * matching pbw__end goes into it. Opens and ends pair up like parentheses;
 * more than PBW_MAX_DEPTH open at once, or an end without a begin, is -EINVAL.
 */
void pbw__begin(struct pbw *w, uint32_t field);
void pbw__end(struct pbw *w);

#endif
