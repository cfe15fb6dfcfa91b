// SPDX-License-Identifier: Apache-2.0
#include "demangle.h"

#include <ctype.h>
#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>

/* "...::h0123456789abcdef" at the end of a legacy Rust name */
static void strip_rust_hash(char *s)
{
	size_t n = strlen(s);

	if (n < 19 || strncmp(s + n - 19, "::h", 3))
		return;
	for (size_t i = n - 16; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return;
	s[n - 19] = '\0';
}

char *demangle(const char *name)
{
	char *out;

	if (!name || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return NULL;
	if (name[1] == 'R')
		out = rust_demangle(name, DMGL_PARAMS | DMGL_ANSI);
	else
		out = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	if (out)
		strip_rust_hash(out);
	return out;
}
