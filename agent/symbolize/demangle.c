// SPDX-License-Identifier: Apache-2.0
/*
 * Demangling through libiberty's callback interface rather than cplus_demangle():
 * same demanglers, same order (Rust first, then the Itanium C++ ABI, which is what
 * cplus_demangle does with DMGL_AUTO), but the output goes through our own buffer.
 * Names come from files we do not control, and back-references let a name of a
 * few hundred bytes demangle to gigabytes, taking hours: once the output passes
 * DEMANGLE_MAX_OUT the callback longjmps out of the demangler. That is safe
 * because the callback interface allocates nothing (it keeps its state on the
 * stack, so that it can run where malloc cannot).
 */
#include "demangle.h"
#include "grow.h"

#include <ctype.h>
#include <libiberty/demangle.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * libiberty's C++ demangler keeps two arrays sized by the input's length on the
 * stack (about 50 bytes per input byte): longer names stay mangled. Real names
 * longer than this are very rare; such a name is still shown, mangled.
 */
#define DEMANGLE_MAX_IN 8192
#define DEMANGLE_MAX_OUT 32768

struct dm_buf {
	char *s;
	size_t len, cap;
	jmp_buf out;		/* where to go when the output is too long */
};

typedef int (*demangler_fn)(const char *, int, demangle_callbackref, void *);

static void dm_append(const char *s, size_t n, void *opaque)
{
	struct dm_buf *b = opaque;

	/* len < DEMANGLE_MAX_OUT always holds: no underflow */
	if (n > DEMANGLE_MAX_OUT - b->len - 1)
		longjmp(b->out, 1);
	if (grow_bytes(&b->s, &b->cap, b->len + n + 1, 128))
		longjmp(b->out, 1);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Runs one demangler into b (emptied first); true when it produced a name. */
static bool run_demangler(demangler_fn fn, const char *name, struct dm_buf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
	if (setjmp(b->out))
		return false;	/* too long: the name stays mangled */
	return fn(name, DMGL_PARAMS | DMGL_ANSI, dm_append, b) && b->len;
}

/* Legacy Rust: "...17h" + 16 hex digits + "E", maybe followed by a ".llvm.NNN" suffix. */
static bool is_rust_legacy(const char *name, size_t len)
{
	const char *e = memchr(name, '.', len);
	size_t n = e ? (size_t)(e - name) : len;

	if (n < 2 + 3 + 16 + 1 || strncmp(name + n - 20, "17h", 3) || name[n - 1] != 'E')
		return false;
	for (size_t i = n - 17; i < n - 1; i++)
		if (!isxdigit((unsigned char)name[i]))
			return false;
	return true;
}

/* "...::h0123456789abcdef" at the end: the hash makes one function look like many */
static void strip_rust_hash(char *s, size_t *len)
{
	size_t n = *len;

	if (n < 19 || strncmp(s + n - 19, "::h", 3))
		return;
	for (size_t i = n - 16; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return;
	s[n - 19] = '\0';
	*len = n - 19;
}

char *demangle(const char *name)
{
	struct dm_buf b = { 0 };
	bool ok = false, rust = false;
	size_t len;

	if (!name || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return NULL;
	len = strnlen(name, DEMANGLE_MAX_IN + 1);
	if (len > DEMANGLE_MAX_IN)
		return NULL;
	if (name[1] == 'R' || is_rust_legacy(name, len)) {
		rust = true;
		ok = run_demangler(rust_demangle_callback, name, &b);
	}
	if (!ok && name[1] == 'Z') {
		rust = false;
		ok = run_demangler(cplus_demangle_v3_callback, name, &b);
	}
	if (!ok) {
		free(b.s);
		return NULL;
	}
	if (rust)
		strip_rust_hash(b.s, &b.len);
	return b.s;
}
