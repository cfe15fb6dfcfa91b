/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_YAMLJSON_H
#define COMMON_YAMLJSON_H
/*
 * YAML (and therefore JSON) to cJSON, with libyaml. Enough for kubeconfig files
 * and Kubernetes manifests: mappings, sequences, scalars, anchors and aliases
 * (aliases are copied, depth-limited). Plain scalars become numbers, booleans
 * and null by the YAML 1.2 core schema; quoted scalars stay strings.
 */
#include <stddef.h>
#include <cjson/cJSON.h>

/* Parses the first document. Returns NULL and writes a message to err on error. */
cJSON *yaml_to_json(const char *text, size_t len, char *err, size_t errlen);
cJSON *yaml_file_to_json(const char *path, char *err, size_t errlen);

/* Decodes standard base64 (padding optional, whitespace skipped). Returns a malloc'd
 * buffer (NUL-terminated for convenience) and its length, or NULL on bad input. */
unsigned char *base64_decode(const char *in, size_t *ret_len);
#endif
