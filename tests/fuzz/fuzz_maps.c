// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: arbitrary /proc/PID/maps text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cb(const struct maps_entry *e, void *ctx)
{
	size_t *n = ctx;

	*n += strlen(e->path) + (e->end > e->start);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	size_t n = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	procmaps__parse(text, cb, &n);
	free(text);
	return 0;
}
