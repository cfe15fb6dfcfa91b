// SPDX-License-Identifier: Apache-2.0
/* YAML to cJSON through libyaml's document API. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yamljson.h"

#define YJ_MAX_DEPTH 64
#define YJ_MAX_FILE (16u << 20)

static bool plain_is(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (!strcmp(s, *words))
			return true;
	return false;
}

static cJSON *scalar_to_json(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	const char *s = (const char *)n->data.scalar.value;
	char *end;
	double d;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return cJSON_CreateString(s);
	if (plain_is(s, nulls))
		return cJSON_CreateNull();
	if (plain_is(s, trues))
		return cJSON_CreateTrue();
	if (plain_is(s, falses))
		return cJSON_CreateFalse();
	if ((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+' || s[0] == '.') && s[1])) {
		errno = 0;
		d = strtod(s, &end);
		/* not hex, not inf/nan words: only what YAML 1.2 core calls a number */
		if (!errno && !*end && !strpbrk(s, "xXiInN"))
			return cJSON_CreateNumber(d);
	}
	return cJSON_CreateString(s);
}

static cJSON *node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	cJSON *out, *child;

	if (!n || depth > YJ_MAX_DEPTH)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return scalar_to_json(n);
	case YAML_SEQUENCE_NODE:
		out = cJSON_CreateArray();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     out && it < n->data.sequence.items.top; it++) {
			child = node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1);
			if (!child) {
				cJSON_Delete(out);
				return NULL;
			}
			cJSON_AddItemToArray(out, child);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = cJSON_CreateObject();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);

			if (!k || k->type != YAML_SCALAR_NODE) {
				cJSON_Delete(out);
				return NULL;
			}
			child = node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1);
			if (!child) {
				cJSON_Delete(out);
				return NULL;
			}
			/* a repeated key: the last one wins, as in most YAML readers */
			cJSON_DeleteItemFromObjectCaseSensitive(out, (const char *)k->data.scalar.value);
			cJSON_AddItemToObject(out, (const char *)k->data.scalar.value, child);
		}
		return out;
	default:
		return NULL;
	}
}

cJSON *yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	cJSON *out = NULL;
	yaml_node_t *root;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "YAML error at line %zu: %s", parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "unknown");
		yaml_parser_delete(&parser);
		return NULL;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root)
		snprintf(err, errlen, "empty document");
	else if (!(out = node_to_json(&doc, root, 0)))
		snprintf(err, errlen, "unsupported YAML (non-scalar key or nesting over %d)",
			 YJ_MAX_DEPTH);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return out;
}

cJSON *yaml_file_to_json(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	cJSON *out;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(YJ_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, YJ_MAX_FILE + 1, f);
	fclose(f);
	if (n > YJ_MAX_FILE) {
		free(buf);
		snprintf(err, errlen, "%s: larger than %u bytes", path, YJ_MAX_FILE);
		return NULL;
	}
	out = yaml_to_json(buf, n, err, errlen);
	free(buf);
	return out;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

unsigned char *base64_decode(const char *in, size_t *ret_len)
{
	size_t cap = strlen(in) / 4 * 3 + 4, n = 0;
	unsigned char *out = malloc(cap + 1);
	unsigned int acc = 0;
	int bits = 0, v;
	bool pad = false;

	if (!out)
		return NULL;
	for (; *in; in++) {
		if (*in == ' ' || *in == '\n' || *in == '\r' || *in == '\t')
			continue;
		if (*in == '=') {
			pad = true;
			continue;
		}
		v = b64val((unsigned char)*in);
		if (v < 0 || pad) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6) {	/* one stray character: not base64 */
		free(out);
		return NULL;
	}
	out[n] = 0;
	*ret_len = n;
	return out;
}
