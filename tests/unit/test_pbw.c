// SPDX-License-Identifier: Apache-2.0
/* The protobuf writer: exact bytes, nested lengths, the size cap, misuse. */
#include <errno.h>
#include <unistd.h>

#include "helpers.h"
#include "pbw.h"

static void assert_bytes(const struct pbw *w, const uint8_t *want, size_t n)
{
	assert_int_equal(pbw__error(w), 0);
	assert_int_equal(w->len, n);
	assert_memory_equal(w->buf, want, n);
}

static void test_varint_edges(void **state)
{
	static const struct {
		uint64_t v;
		uint8_t bytes[10];
		size_t n;
	} cases[] = {
		{ 0, { 0x00 }, 1 },
		{ 1, { 0x01 }, 1 },
		{ 127, { 0x7f }, 1 },			/* largest one-byte value */
		{ 128, { 0x80, 0x01 }, 2 },		/* low 7 bits 0 + continuation, then 1 */
		{ 300, { 0xac, 0x02 }, 2 },		/* 300 = 0b10_0101100 */
		{ 16383, { 0xff, 0x7f }, 2 },
		{ 16384, { 0x80, 0x80, 0x01 }, 3 },
		{ UINT32_MAX, { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5 },
		{ (uint64_t)1 << 63,
		  { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 10 },
		{ UINT64_MAX, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pbw w;

		pbw__init(&w, 64);
		pbw__varint(&w, cases[i].v);
		assert_bytes(&w, cases[i].bytes, cases[i].n);
		assert_int_equal(pbw__varint_size(cases[i].v), cases[i].n);
		pbw__release(&w);
	}
}

static void test_scalar_fields(void **state)
{
	static const uint8_t want[] = {
		0x08, 0x96, 0x01,		/* field 1 varint: 150 */
		0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* 2: int64 -1 */
		0x18, 0x01,			/* 3: true */
		0x21, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* 4: fixed64, little-endian */
		0x2d, 0x04, 0x03, 0x02, 0x01,	/* 5: fixed32 */
		0x31, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* 6: double 1.0 */
		0x38, 0x00,			/* 7: varint with presence, 0 is written */
		0x41, 0, 0, 0, 0, 0, 0, 0, 0,	/* 8: fixed64 with presence, 0 */
		0x4a, 0x02, 'h', 'i',		/* 9: string */
		0x52, 0x00,			/* 10: "" is written */
		0x5a, 0x00,			/* 11: NULL string is "" */
		0x62, 0x03, 0x00, 0xff, 0x10,	/* 12: bytes, with a NUL inside */
		0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01, /* field 2^29-1: tag 0xfffffff8, 5 bytes */
	};
	struct pbw w;

	(void)state;
	pbw__init(&w, 0);
	pbw__uint64(&w, 1, 150);
	pbw__int64(&w, 2, -1);
	pbw__bool(&w, 3, true);
	pbw__fixed64(&w, 4, 0x0102030405060708ull);
	pbw__fixed32(&w, 5, 0x01020304u);
	pbw__double(&w, 6, 1.0);
	pbw__varint_field(&w, 7, 0);
	pbw__fixed64_field(&w, 8, 0);
	pbw__string(&w, 9, "hi");
	pbw__string(&w, 10, "");
	pbw__string(&w, 11, NULL);
	pbw__bytes(&w, 12, "\x00\xff\x10", 3);
	pbw__uint64(&w, (1u << 29) - 1, 1);
	/* proto3 defaults are left out */
	pbw__uint64(&w, 20, 0);
	pbw__int64(&w, 21, 0);
	pbw__bool(&w, 22, false);
	pbw__fixed64(&w, 23, 0);
	pbw__fixed32(&w, 24, 0);
	pbw__double(&w, 25, 0.0);
	assert_bytes(&w, want, sizeof(want));
	pbw__release(&w);
}

static void test_packed(void **state)
{
	static const uint64_t u64[] = { 1, 150, (uint64_t)1 << 63 };
	static const uint32_t u32[] = { 3, 270, 86942 };
	static const int64_t i64[] = { -2, 5 };
	static const uint8_t want[] = {
		0x0a, 0x0d,				/* field 1, 13 bytes: */
		0x01,					/*   1 */
		0x96, 0x01,				/*   150 */
		0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, /* 2^63 */
		0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05, /* field 4: the protobuf docs' example */
		0x1a, 0x0b,				/* field 3, 11 bytes: */
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* -2 */
		0x05,					/*   5 */
	};
	struct pbw w;

	(void)state;
	pbw__init(&w, 0);
	pbw__packed_u64(&w, 1, u64, 3);
	pbw__packed_u64(&w, 2, u64, 0);	/* empty: nothing at all */
	pbw__packed_u32(&w, 4, u32, 3);
	pbw__packed_i64(&w, 3, i64, 2);
	assert_bytes(&w, want, sizeof(want));
	pbw__release(&w);
}

static void test_nested_lengths(void **state)
{
	static const uint8_t want[] = {
		0x12, 0x09,		/* field 2, 9 bytes: */
		0x08, 0x96, 0x01,	/*   field 1 = 150 */
		0x1a, 0x04,		/*   field 3, 4 bytes: */
		0x0a, 0x02, 'h', 'i',	/*     field 1 = "hi" */
		0x22, 0x00,		/* field 4, empty message */
		0x28, 0x07,		/* field 5 = 7, after the nested ones */
	};
	struct pbw w;

	(void)state;
	pbw__init(&w, 0);
	pbw__begin(&w, 2);
	pbw__uint64(&w, 1, 150);
	pbw__begin(&w, 3);
	pbw__string(&w, 1, "hi");
	pbw__end(&w);
	pbw__end(&w);
	pbw__begin(&w, 4);
	pbw__end(&w);
	pbw__uint64(&w, 5, 7);
	assert_bytes(&w, want, sizeof(want));
	pbw__release(&w);
}

/* Bodies around each varint length boundary: the length is shortest, the body intact. */
static void test_nested_sizes(void **state)
{
	static const size_t bodies[] = { 127, 128, 16383, 16384, 2097151, 2097152 };
	uint8_t *data = malloc(2097152 + 16);

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < 2097152 + 16; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		size_t body = bodies[i], n = pbw__varint_size(body);
		struct pbw w, want;

		pbw__init(&want, 0);
		pbw__tag(&want, 7, PBW_WT_LEN);
		pbw__varint(&want, body);
		pbw__raw(&want, data, body);
		pbw__raw(&want, "\x08\x01", 2);

		pbw__init(&w, 0);
		pbw__begin(&w, 7);
		pbw__raw(&w, data, body);
		pbw__end(&w);
		pbw__uint64(&w, 1, 1);
		assert_int_equal(w.len, 1 + n + body + 2);
		assert_bytes(&w, want.buf, want.len);
		pbw__release(&w);
		pbw__release(&want);
	}
	free(data);
}

static void test_cap_is_an_error(void **state)
{
	uint8_t filler[32] = { 0 }, *buf;
	size_t len;
	struct pbw w;

	(void)state;
	pbw__init(&w, 16);
	pbw__raw(&w, filler, 10);
	assert_int_equal(pbw__error(&w), 0);
	pbw__raw(&w, filler, 10);	/* 20 > 16: refused, nothing written */
	assert_int_equal(pbw__error(&w), -E2BIG);
	assert_int_equal(w.len, 10);
	assert_true(w.cap <= 16);
	/* sticky: later writes that would fit do nothing */
	pbw__varint(&w, 1);
	assert_int_equal(w.len, 10);
	assert_int_equal(pbw__take(&w, &buf, &len), -E2BIG);
	/* reset clears the error and keeps the allocation */
	pbw__reset(&w);
	assert_int_equal(pbw__error(&w), 0);
	assert_int_equal(w.len, 0);

	/* exactly up to the cap is fine, one byte more is not */
	pbw__raw(&w, filler, 15);
	pbw__varint(&w, 127);
	assert_int_equal(pbw__error(&w), 0);
	assert_int_equal(w.len, 16);
	pbw__varint(&w, 0);
	assert_int_equal(pbw__error(&w), -E2BIG);
	assert_int_equal(w.len, 16);

	/* the room of a nested length counts too */
	pbw__reset(&w);
	pbw__raw(&w, filler, 11);
	pbw__begin(&w, 1);	/* 1 tag byte + 5 length bytes: 17 */
	assert_int_equal(pbw__error(&w), -E2BIG);
	pbw__release(&w);

	/* pbw__reserve reports the cap too */
	pbw__init(&w, 100);
	assert_int_equal(pbw__reserve(&w, 100), 0);
	assert_int_equal(pbw__reserve(&w, 101), -E2BIG);
	pbw__release(&w);

	/* 0 and anything too large mean the protobuf limit */
	pbw__init(&w, 0);
	assert_int_equal(w.max, PBW_MAX_LIMIT);
	pbw__init(&w, (size_t)1 << 40);
	assert_int_equal(w.max, PBW_MAX_LIMIT);
	assert_int_equal(pbw__reserve(&w, PBW_MAX_LIMIT + 1), -E2BIG);
	pbw__release(&w);
}

static void test_unbalanced(void **state)
{
	uint8_t *buf;
	size_t len;
	struct pbw w;

	(void)state;
	pbw__init(&w, 0);
	pbw__end(&w);
	assert_int_equal(pbw__error(&w), -EINVAL);
	pbw__release(&w);

	pbw__begin(&w, 1);
	assert_int_equal(pbw__error(&w), -EINVAL);	/* still open */
	assert_int_equal(pbw__take(&w, &buf, &len), -EINVAL);
	pbw__end(&w);
	assert_int_equal(pbw__take(&w, &buf, &len), 0);
	assert_int_equal(len, 2);
	free(buf);

	for (int i = 0; i < PBW_MAX_DEPTH; i++)
		pbw__begin(&w, 1);
	assert_int_equal(w.err, 0);
	pbw__begin(&w, 1);
	assert_int_equal(pbw__error(&w), -EINVAL);
	pbw__release(&w);
}

static void test_take(void **state)
{
	uint8_t *buf;
	size_t len;
	struct pbw w;

	(void)state;
	pbw__init(&w, 0);
	assert_int_equal(pbw__take(&w, &buf, &len), 0);	/* empty message: still a buffer */
	assert_non_null(buf);
	assert_int_equal(len, 0);
	free(buf);

	pbw__uint64(&w, 1, 1);
	assert_int_equal(pbw__take(&w, &buf, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "\x08\x01", 2);
	assert_int_equal(w.len, 0);
	assert_null(w.buf);
	/* reusable afterwards */
	pbw__uint64(&w, 2, 2);
	assert_bytes(&w, (const uint8_t *)"\x10\x02", 2);
	free(buf);
	pbw__release(&w);
	pbw__release(NULL);
}

/* protoc's own parser agrees with the writer on a message with every kind of field. */
static void test_protoc_decode_raw(void **state)
{
	char path[] = "/tmp/profleet-pbw-XXXXXX", cmd[256], *out;
	static const uint64_t ids[] = { 1, 300 };
	char big[1000];
	struct pbw w;
	int fd;

	(void)state;
	if (!have_cmd("protoc"))
		skip();
	memset(big, 'z', sizeof(big));
	pbw__init(&w, 0);
	pbw__uint64(&w, 1, 150);
	pbw__int64(&w, 2, -7);
	pbw__begin(&w, 3);
	pbw__string(&w, 1, "inner");
	pbw__begin(&w, 2);
	pbw__packed_u64(&w, 4, ids, 2);
	pbw__bytes(&w, 5, big, sizeof(big));	/* a two-byte length inside */
	pbw__end(&w);
	pbw__end(&w);
	pbw__fixed64(&w, 4, 42);
	assert_int_equal(pbw__error(&w), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, w.buf, w.len), (ssize_t)w.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "protoc --decode_raw < %s", path);
	out = run_capture(cmd);
	unlink(path);
	assert_non_null(out);
	assert_non_null(strstr(out, "1: 150\n"));
	assert_non_null(strstr(out, "2: 18446744073709551609\n"));	/* -7 as uint64 */
	assert_non_null(strstr(out, "3 {\n  1: \"inner\"\n  2 {\n    4: \"\\001\\254\\002\"\n"));
	assert_non_null(strstr(out, "    5: \"zzzz"));
	assert_non_null(strstr(out, "4: 0x000000000000002a\n"));
	free(out);
	pbw__release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_edges),
		cmocka_unit_test(test_scalar_fields),
		cmocka_unit_test(test_packed),
		cmocka_unit_test(test_nested_lengths),
		cmocka_unit_test(test_nested_sizes),
		cmocka_unit_test(test_cap_is_an_error),
		cmocka_unit_test(test_unbalanced),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_protoc_decode_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
