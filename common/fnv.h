/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_FNV_H
#define COMMON_FNV_H
/* FNV-1a, 64 bits: start with FNV_OFFSET, feed bytes in as they come. */
#include <stddef.h>
#include <stdint.h>

#define FNV_OFFSET 14695981039346656037ull

static inline uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}
#endif
