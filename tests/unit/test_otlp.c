// SPDX-License-Identifier: Apache-2.0
/*
 * What otlp__encode writes, checked against upstream's schema rather than our
 * own restatement of it (proto/otlp_profiles.proto, which the golden test in
 * test_export.c decodes with, would agree with a wrong field number of ours).
 *
 * A small protobuf wire walker reads our bytes with no schema of its own: tag
 * -> field number and wire type, into every known sub-message. Each field must
 * be one the table below lists for that message, with a wire type its type
 * allows; the fields we always write must be there, and the ones the test
 * profile calls for must show up somewhere.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

#include "otlp.h"
#include "profile.h"

/* ---- the schema, as facts ------------------------------------------------------- */

/*
 * How a field's type travels: varint (int32/int64/uint32/uint64/bool/enum),
 * 8 bytes (fixed64/double), or length-delimited (string, bytes, a message).
 * A repeated varint or 8-byte field may also come packed (length-delimited).
 */
enum kind { VARINT, I64, STR, BYTES, MSG };

/* ALWAYS: in every instance of the message we write; SOMEWHERE: at least once in the output */
enum want { MAY, SOMEWHERE, ALWAYS };

struct fact {
	const char *msg, *field;
	uint32_t num;
	enum kind kind;
	bool repeated;
	const char *sub;	/* MSG: the message type it holds */
	enum want want;		/* what otlp__encode must write for the test profile */
};

/*
 * Field numbers and types of every message reachable from
 * ExportProfilesServiceRequest, as open-telemetry/opentelemetry-proto declares
 * them at tag v1.10.0, in these files:
 *   opentelemetry/proto/collector/profiles/v1development/profiles_service.proto
 *   opentelemetry/proto/profiles/v1development/profiles.proto
 *   opentelemetry/proto/common/v1/common.proto
 *   opentelemetry/proto/resource/v1/resource.proto
 * The `want` column is ours: what our encoder writes, not what upstream requires
 * (proto3 has no required fields; a table's entry 0 is an empty message).
 */
static const struct fact facts[] = {
	/* the collector's request */
	{ "ExportProfilesServiceRequest", "resource_profiles", 1, MSG, true, "ResourceProfiles", ALWAYS },
	{ "ExportProfilesServiceRequest", "dictionary", 2, MSG, false, "ProfilesDictionary", ALWAYS },
	/* resource and scope */
	{ "ResourceProfiles", "resource", 1, MSG, false, "Resource", ALWAYS },
	{ "ResourceProfiles", "scope_profiles", 2, MSG, true, "ScopeProfiles", ALWAYS },
	{ "ResourceProfiles", "schema_url", 3, STR, false, NULL, MAY },
	{ "Resource", "attributes", 1, MSG, true, "KeyValue", ALWAYS },
	{ "Resource", "dropped_attributes_count", 2, VARINT, false, NULL, MAY },
	{ "Resource", "entity_refs", 3, MSG, true, "EntityRef", MAY },
	{ "EntityRef", "schema_url", 1, STR, false, NULL, MAY },
	{ "EntityRef", "type", 2, STR, false, NULL, MAY },
	{ "EntityRef", "id_keys", 3, STR, true, NULL, MAY },
	{ "EntityRef", "description_keys", 4, STR, true, NULL, MAY },
	{ "ScopeProfiles", "scope", 1, MSG, false, "InstrumentationScope", ALWAYS },
	{ "ScopeProfiles", "profiles", 2, MSG, true, "Profile", ALWAYS },
	{ "ScopeProfiles", "schema_url", 3, STR, false, NULL, MAY },
	{ "InstrumentationScope", "name", 1, STR, false, NULL, ALWAYS },
	{ "InstrumentationScope", "version", 2, STR, false, NULL, ALWAYS },
	{ "InstrumentationScope", "attributes", 3, MSG, true, "KeyValue", MAY },
	{ "InstrumentationScope", "dropped_attributes_count", 4, VARINT, false, NULL, MAY },
	/* common values */
	{ "KeyValue", "key", 1, STR, false, NULL, ALWAYS },
	{ "KeyValue", "value", 2, MSG, false, "AnyValue", ALWAYS },
	{ "KeyValue", "key_strindex", 3, VARINT, false, NULL, MAY },
	{ "AnyValue", "string_value", 1, STR, false, NULL, SOMEWHERE },	/* one of 1..8 */
	{ "AnyValue", "bool_value", 2, VARINT, false, NULL, MAY },
	{ "AnyValue", "int_value", 3, VARINT, false, NULL, SOMEWHERE },
	{ "AnyValue", "double_value", 4, I64, false, NULL, MAY },
	{ "AnyValue", "array_value", 5, MSG, false, "ArrayValue", MAY },
	{ "AnyValue", "kvlist_value", 6, MSG, false, "KeyValueList", MAY },
	{ "AnyValue", "bytes_value", 7, BYTES, false, NULL, MAY },
	{ "AnyValue", "string_value_strindex", 8, VARINT, false, NULL, MAY },
	{ "ArrayValue", "values", 1, MSG, true, "AnyValue", MAY },
	{ "KeyValueList", "values", 1, MSG, true, "KeyValue", MAY },
	/* the profile */
	{ "Profile", "sample_type", 1, MSG, false, "ValueType", ALWAYS },
	{ "Profile", "samples", 2, MSG, true, "Sample", ALWAYS },
	{ "Profile", "time_unix_nano", 3, I64, false, NULL, ALWAYS },
	{ "Profile", "duration_nano", 4, VARINT, false, NULL, ALWAYS },
	{ "Profile", "period_type", 5, MSG, false, "ValueType", ALWAYS },
	{ "Profile", "period", 6, VARINT, false, NULL, ALWAYS },
	{ "Profile", "profile_id", 7, BYTES, false, NULL, MAY },
	{ "Profile", "dropped_attributes_count", 8, VARINT, false, NULL, MAY },
	{ "Profile", "original_payload_format", 9, STR, false, NULL, MAY },
	{ "Profile", "original_payload", 10, BYTES, false, NULL, MAY },
	{ "Profile", "attribute_indices", 11, VARINT, true, NULL, MAY },
	{ "ValueType", "type_strindex", 1, VARINT, false, NULL, ALWAYS },
	{ "ValueType", "unit_strindex", 2, VARINT, false, NULL, ALWAYS },
	{ "Sample", "stack_index", 1, VARINT, false, NULL, ALWAYS },
	{ "Sample", "attribute_indices", 2, VARINT, true, NULL, SOMEWHERE },
	{ "Sample", "link_index", 3, VARINT, false, NULL, MAY },
	{ "Sample", "values", 4, VARINT, true, NULL, ALWAYS },
	{ "Sample", "timestamps_unix_nano", 5, I64, true, NULL, MAY },
	/* the dictionary: tables the profile's indices point into */
	{ "ProfilesDictionary", "mapping_table", 1, MSG, true, "Mapping", ALWAYS },
	{ "ProfilesDictionary", "location_table", 2, MSG, true, "Location", ALWAYS },
	{ "ProfilesDictionary", "function_table", 3, MSG, true, "Function", ALWAYS },
	{ "ProfilesDictionary", "link_table", 4, MSG, true, "Link", ALWAYS },
	{ "ProfilesDictionary", "string_table", 5, STR, true, NULL, ALWAYS },
	{ "ProfilesDictionary", "attribute_table", 6, MSG, true, "KeyValueAndUnit", ALWAYS },
	{ "ProfilesDictionary", "stack_table", 7, MSG, true, "Stack", ALWAYS },
	{ "Mapping", "memory_start", 1, VARINT, false, NULL, SOMEWHERE },
	{ "Mapping", "memory_limit", 2, VARINT, false, NULL, SOMEWHERE },
	{ "Mapping", "file_offset", 3, VARINT, false, NULL, SOMEWHERE },
	{ "Mapping", "filename_strindex", 4, VARINT, false, NULL, SOMEWHERE },
	{ "Mapping", "attribute_indices", 5, VARINT, true, NULL, MAY },
	{ "Location", "mapping_index", 1, VARINT, false, NULL, SOMEWHERE },
	{ "Location", "address", 2, VARINT, false, NULL, SOMEWHERE },
	{ "Location", "lines", 3, MSG, true, "Line", SOMEWHERE },
	/* attribute_indices: profile.frame.type */
	{ "Location", "attribute_indices", 4, VARINT, true, NULL, SOMEWHERE },
	{ "Line", "function_index", 1, VARINT, false, NULL, SOMEWHERE },
	{ "Line", "line", 2, VARINT, false, NULL, SOMEWHERE },
	{ "Line", "column", 3, VARINT, false, NULL, MAY },
	{ "Function", "name_strindex", 1, VARINT, false, NULL, SOMEWHERE },
	{ "Function", "system_name_strindex", 2, VARINT, false, NULL, SOMEWHERE },
	{ "Function", "filename_strindex", 3, VARINT, false, NULL, SOMEWHERE },
	{ "Function", "start_line", 4, VARINT, false, NULL, MAY },
	{ "Link", "trace_id", 1, BYTES, false, NULL, MAY },
	{ "Link", "span_id", 2, BYTES, false, NULL, MAY },
	{ "Stack", "location_indices", 1, VARINT, true, NULL, SOMEWHERE },
	{ "KeyValueAndUnit", "key_strindex", 1, VARINT, false, NULL, SOMEWHERE },
	{ "KeyValueAndUnit", "value", 2, MSG, false, "AnyValue", SOMEWHERE },
	{ "KeyValueAndUnit", "unit_strindex", 3, VARINT, false, NULL, SOMEWHERE },
};

#define NFACTS (sizeof(facts) / sizeof(facts[0]))

static const struct fact *fact_find(const char *msg, uint32_t num)
{
	for (size_t i = 0; i < NFACTS; i++)
		if (!strcmp(facts[i].msg, msg) && facts[i].num == num)
			return &facts[i];
	return NULL;
}

/* ---- the walker ------------------------------------------------------------------- */

struct walk {
	unsigned int seen[NFACTS];	/* instances of each field in the whole output */
	char err[512];			/* the first problem, "" if none */
};

static bool walk_fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool walk_fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	if (!w->err[0]) {
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof(w->err), fmt, ap);
		va_end(ap);
	}
	return false;
}

/* A varint at *p (at most 10 bytes, within end); false if it runs off the end. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

/* proto3 strings must be UTF-8: a decoder may refuse the whole message otherwise */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = s[i] < 0x80 ? 0 : (s[i] & 0xe0) == 0xc0 ? 1 : (s[i] & 0xf0) == 0xe0 ? 2 :
			   (s[i] & 0xf8) == 0xf0 ? 3 : 9;

		if (k == 9 || i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/* A packed run of a repeated scalar: whole varints, or a multiple of 8 bytes. */
static bool packed_ok(const struct fact *f, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	uint64_t v;

	if (f->kind == I64)
		return n % 8 == 0;
	while (p < end)
		if (!get_varint(&p, end, &v))
			return false;
	return true;
}

static bool walk_msg(struct walk *w, const char *msg, const uint8_t *p, size_t len, int depth);

/* One length-delimited field's payload: a sub-message, a string, bytes, or a packed run. */
static bool walk_len(struct walk *w, const struct fact *f, const uint8_t *p, size_t n, int depth)
{
	if (f->kind == MSG)
		return walk_msg(w, f->sub, p, n, depth + 1);
	if (f->kind == STR && !utf8_ok(p, n))
		return walk_fail(w, "%s.%s: not UTF-8", f->msg, f->field);
	if ((f->kind == VARINT || f->kind == I64) && !packed_ok(f, p, n))
		return walk_fail(w, "%s.%s: a packed run of %zu bytes that does not parse", f->msg,
				 f->field, n);
	return true;
}

/* The wire types a field's type may travel as. */
static bool wire_type_ok(const struct fact *f, unsigned int wt)
{
	switch (f->kind) {
	case VARINT:
		return wt == 0 || (f->repeated && wt == 2);
	case I64:
		return wt == 1 || (f->repeated && wt == 2);
	default:
		return wt == 2;
	}
}

/* One field at *pp: known to msg, with a wire type its type allows, its payload walked. */
static bool walk_field(struct walk *w, const char *msg, const uint8_t **pp, const uint8_t *end,
		       unsigned int *here, int depth)
{
	uint64_t key, v;
	const struct fact *f;
	unsigned int wt;

	if (!get_varint(pp, end, &key))
		return walk_fail(w, "%s: a tag runs off the end", msg);
	wt = key & 7;
	if (key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return walk_fail(w, "%s: field number %llu", msg, (unsigned long long)(key >> 3));
	f = fact_find(msg, (uint32_t)(key >> 3));
	if (!f)
		return walk_fail(w, "%s: field %u (wire type %u) is not in v1.10.0", msg,
				 (unsigned int)(key >> 3), wt);
	if (!wire_type_ok(f, wt))
		return walk_fail(w, "%s.%s (%u): wire type %u does not fit its type", msg, f->field,
				 f->num, wt);
	if (here[f - facts]++ && !f->repeated)
		return walk_fail(w, "%s.%s (%u): written twice, but it is not repeated", msg, f->field,
				 f->num);
	w->seen[f - facts]++;
	if (wt == 0)
		return get_varint(pp, end, &v) || walk_fail(w, "%s.%s: varint runs off the end", msg, f->field);
	if (wt == 1) {
		if (end - *pp < 8)
			return walk_fail(w, "%s.%s: 8 bytes run off the end", msg, f->field);
		*pp += 8;
		return true;
	}
	if (!get_varint(pp, end, &v) || v > (uint64_t)(end - *pp))
		return walk_fail(w, "%s.%s: its length runs off the end", msg, f->field);
	*pp += v;
	return walk_len(w, f, *pp - v, (size_t)v, depth);
}

static bool walk_msg(struct walk *w, const char *msg, const uint8_t *p, size_t len, int depth)
{
	const uint8_t *end = p + len;
	unsigned int here[NFACTS] = { 0 };

	if (depth > 16)
		return walk_fail(w, "%s: nested deeper than the schema goes", msg);
	while (p < end)
		if (!walk_field(w, msg, &p, end, here, depth))
			return false;
	for (size_t i = 0; i < NFACTS; i++)
		if (facts[i].want == ALWAYS && !strcmp(facts[i].msg, msg) && !here[i])
			return walk_fail(w, "%s.%s (%u) is missing", msg, facts[i].field, facts[i].num);
	return true;
}

/* The whole request; then every field the test profile calls for was seen somewhere. */
static bool walk_request(struct walk *w, const uint8_t *buf, size_t len)
{
	memset(w, 0, sizeof(*w));
	if (!walk_msg(w, "ExportProfilesServiceRequest", buf, len, 0))
		return false;
	for (size_t i = 0; i < NFACTS; i++)
		if (facts[i].want == SOMEWHERE && !w->seen[i])
			return walk_fail(w, "%s.%s (%u) never written", facts[i].msg, facts[i].field,
					 facts[i].num);
	return true;
}

/* ---- tests -------------------------------------------------------------------------- */

/* The table itself: no number twice in a message, every sub-message described. */
static void test_facts_consistent(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFACTS; i++) {
		assert_ptr_equal(fact_find(facts[i].msg, facts[i].num), &facts[i]);
		assert_true((facts[i].kind == MSG) == (facts[i].sub != NULL));
		if (facts[i].sub) {
			bool described = false;

			for (size_t k = 0; k < NFACTS; k++)
				described |= !strcmp(facts[k].msg, facts[i].sub);
			if (!described)
				fail_msg("%s.%s holds %s, which the table does not describe", facts[i].msg,
					 facts[i].field, facts[i].sub);
		}
	}
}

/* Everything otlp__encode writes: mappings with offsets, a frame without one, lines,
 * string and numeric labels (one with a unit), resource attributes. */
static struct profile *rich_profile(void)
{
	struct profile *p = profile__new();
	struct prof_mapping m = { .start = 0x400000, .limit = 0x401000, .offset = 0x1000,
				  .file = "/usr/bin/app", .build_id = "" };
	struct prof_location l[3] = {
		{ .mapping = 0, .address = 0x400100, .function = "main", .file = "app.c", .line = 10 },
		{ .mapping = 0, .address = 0x400200, .function = "hot", .file = "app.c", .line = 20 },
		{ .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_KERNEL,
		  .address = 0xffffffff81000000,
		  .function = "do_syscall_64" },
	};
	struct prof_label lab[3] = { { .key = "thread_name", .str = "worker" },
				     { .key = "thread", .num = 42 },
				     { .key = "alloc", .num = 4096, .unit = "bytes" } };
	uint32_t s1[2] = { 1, 0 }, s2[2] = { 2, 0 };

	assert_non_null(p);
	p->period_nanos = 10000000;
	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 10000000000LL;
	assert_int_equal(profile__add_mapping(p, &m), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(profile__add_location(p, &l[i]), i);
	assert_int_equal(profile__add_sample(p, s1, 2, 7, lab, 3), 0);
	assert_int_equal(profile__add_sample(p, s2, 2, 3, lab, 2), 1);
	return p;
}

static void test_upstream_schema(void **state)
{
	struct export_label l[2] = { { "namespace", "shop" }, { "pod", "web-1" } };
	struct profile *p = rich_profile();
	struct walk w;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(otlp__encode(p, "checkout", l, 2, &buf, &len), 0);
	if (!walk_request(&w, buf, len))
		fail_msg("our OTLP bytes disagree with opentelemetry-proto v1.10.0: %s", w.err);
	/* two samples, three locations and the zero entry, two distinct stacks and the zero one */
	assert_int_equal(w.seen[fact_find("Profile", 2) - facts], 2);
	assert_int_equal(w.seen[fact_find("ProfilesDictionary", 2) - facts], 4);
	assert_int_equal(w.seen[fact_find("ProfilesDictionary", 7) - facts], 3);
	free(buf);
	profile__free(p);
}

/* The walker can say no: hand-made requests that break the schema in one way each. */
static void test_walker_refuses(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[16];
		size_t n;
		const char *want;
	} bad[] = {
		/* field 3, which the request has not */
		{ "unknown field", { 0x18, 0x01 }, 2, "field 3 (wire type 0) is not in v1.10.0" },
		/* dictionary as a varint */
		{ "wrong wire type", { 0x10, 0x01 }, 2, "wire type 0" },
		/* dictionary { string_table: 0xff } */
		{ "bad UTF-8", { 0x12, 0x03, 0x2a, 0x01, 0xff }, 5, "UTF-8" },
		/* a length past the end */
		{ "truncated", { 0x12, 0x09, 0x2a }, 3, "off the end" },
		/* resource_profiles { } without its resource */
		{ "missing field", { 0x0a, 0x00 }, 2, "ResourceProfiles.resource (1) is missing" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct walk w;

		if (walk_request(&w, bad[i].bytes, bad[i].n))
			fail_msg("%s: the walker took it", bad[i].what);
		if (!strstr(w.err, bad[i].want))
			fail_msg("%s: '%s' does not say '%s'", bad[i].what, w.err, bad[i].want);
	}
	/* time_unix_nano is fixed64: as a varint it is refused */
	{
		struct walk w;
		const struct fact *f = fact_find("Profile", 3);

		assert_false(wire_type_ok(f, 0));
		assert_true(wire_type_ok(f, 1));
		assert_true(wire_type_ok(fact_find("Sample", 4), 2));	/* packed values */
		assert_false(wire_type_ok(fact_find("Sample", 1), 2));
		memset(&w, 0, sizeof(w));
		assert_false(walk_msg(&w, "Profile", (const uint8_t *)"\x18\x01", 2, 0));
		assert_non_null(strstr(w.err, "time_unix_nano (3): wire type 0"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_facts_consistent),
		cmocka_unit_test(test_upstream_schema),
		cmocka_unit_test(test_walker_refuses),
	};

	test_filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
