/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_GROW_H
#define COMMON_GROW_H
/* Growing an array of elements of size sz to hold at least need of them. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Makes *arr (of *cap elements of sz bytes) hold need elements: doubles the
 * capacity from first (when 0) until it does. 0 or -ENOMEM (*arr unchanged).
 */
static inline int grow_array(void **arr, uint32_t *cap, uint32_t need, size_t sz, uint32_t first)
{
	uint32_t ncap = *cap ? *cap : first;
	void *na;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > UINT32_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if ((size_t)ncap > SIZE_MAX / sz)
		return -ENOMEM;
	na = realloc(*arr, (size_t)ncap * sz);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*cap = ncap;
	return 0;
}

/*
 * The same for a buffer of *cap bytes that must hold need: doubles from first
 * (when 0). Callers bound need themselves (each has its own limit). 0 or
 * -ENOMEM (*buf unchanged).
 */
static inline int grow_bytes(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	char *nb;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	nb = realloc(*buf, ncap);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

#endif
