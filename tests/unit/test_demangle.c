// SPDX-License-Identifier: Apache-2.0
/* Demangling: C++ (Itanium ABI), Rust legacy and v0, and what must stay as it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "demangle.h"

static void expect(const char *mangled, const char *want)
{
	char *s = demangle(mangled);

	if (!s)
		fail_msg("%s: not demangled, want %s", mangled, want);
	assert_string_equal(s, want);
	free(s);
}

static void test_cxx(void **state)
{
	(void)state;
	expect("_ZN2ns3fooEi", "ns::foo(int)");
	expect("_ZNSt6vectorIiSaIiEE9push_backEOi",
	       "std::vector<int, std::allocator<int> >::push_back(int&&)");
	expect("_ZNKSt8functionIFvvEEclEv", "std::function<void ()>::operator()() const");
	expect("_ZN1S3barEd", "S::bar(double)");
	expect("_Z5twiceIiET_S0_", "int twice<int>(int)");
	expect("_ZZ4mainE1x", "main::x");
	/* gcc's clones keep their suffix, readably */
	expect("_Z3foov.cold", "foo() [clone .cold]");
	expect("_ZN2ns3fooEi.constprop.0", "ns::foo(int) [clone .constprop.0]");
}

static void test_rust(void **state)
{
	(void)state;
	/* legacy: the ::h<16 hex> hash goes */
	expect("_ZN4core3ptr13drop_in_place17h0123456789abcdefE", "core::ptr::drop_in_place");
	expect("_ZN3std2rt10lang_start17h9f1bd4b1a4eb2d2fE", "std::rt::lang_start");
	expect("_ZN4core3ptr13drop_in_place17h0123456789abcdefE.llvm.4242",
	       "core::ptr::drop_in_place");
	/* v0 */
	expect("_RNvCs1234_7mycrate3foo", "mycrate::foo");
	expect("_RNvNtCs9ltgdHTiPiY_4core3ptr13drop_in_place", "core::ptr::drop_in_place");
}

static void test_not_mangled(void **state)
{
	(void)state;
	assert_null(demangle("main"));
	assert_null(demangle("schedule"));
	assert_null(demangle("_start"));
	assert_null(demangle("__libc_start_main"));
	assert_null(demangle("_Z"));
	assert_null(demangle("_R"));
	assert_null(demangle("_Znot a name at all"));
	assert_null(demangle("_ZN3fooE17h0123"));
	assert_null(demangle(""));
	assert_null(demangle(NULL));
}

/* "S_" for substitution 0, else "S<seq-id>_" with seq-id = n - 1 in base 36 (0-9A-Z) */
static void subst_ref(char *buf, size_t len, unsigned n)
{
	char digits[8];
	int k = 0;

	if (n == 0) {
		snprintf(buf, len, "S_");
		return;
	}
	n--;
	do {
		digits[k++] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 36];
		n /= 36;
	} while (n);
	buf[0] = 'S';
	for (int j = 0; j < k; j++)
		buf[1 + j] = digits[k - 1 - j];
	buf[1 + k] = '_';
	buf[2 + k] = '\0';
}

/* Inputs from files: over-long or hostile names stay mangled, nothing blows up. */
static void test_hostile(void **state)
{
	size_t n = 100000;
	char *s = malloc(n + 1);
	char *out;

	(void)state;
	assert_non_null(s);
	/* far longer than any real name */
	memcpy(s, "_ZN", 3);
	for (size_t i = 3; i + 2 < n; i += 2)
		memcpy(s + i, "1a", 2);
	s[n - 1] = 'E';
	s[n] = '\0';
	assert_null(demangle(s));
	/* deep nesting within the length limit: rejected or bounded, never a crash */
	memset(s, 0, n + 1);
	strcpy(s, "_Z1f");
	for (size_t i = strlen(s); i < 6000; i++)
		s[i] = 'P';
	strcat(s, "i");
	out = demangle(s);
	assert_true(!out || strlen(out) < 32768);
	free(out);
	/*
	 * f(A, void (*)(A, A), void (*)(void (*)(A, A), void (*)(A, A)), ...): each
	 * parameter names the previous one twice, through a back-reference. 40 of them
	 * are under 500 bytes and would demangle to terabytes: it must give up at once.
	 */
	strcpy(s, "_Z1f1A");
	/* substitutions: A is #0; each level adds its function type and a pointer to it */
	for (unsigned i = 0, prev = 0; i < 40; i++, prev = 2 * i) {
		char ref[16];

		subst_ref(ref, sizeof(ref), prev);
		strcat(s, "PFv");
		strcat(s, ref);
		strcat(s, ref);
		strcat(s, "E");
	}
	assert_true(strlen(s) < 500);
	assert_null(demangle(s));
	/* the first levels are a fine name */
	out = demangle("_Z1f1APFvS_S_EPFvS1_S1_E");
	assert_non_null(out);
	assert_string_equal(out, "f(A, void (*)(A, A), void (*)(void (*)(A, A), void (*)(A, A)))");
	free(out);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cxx),
		cmocka_unit_test(test_rust),
		cmocka_unit_test(test_not_mangled),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
