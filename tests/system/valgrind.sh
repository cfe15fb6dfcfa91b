#!/bin/sh
# A short real recording under valgrind: no invalid access, no leak. Prints TAP.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v valgrind >/dev/null 2>&1; then
	skip "needs root and valgrind"
	finish
	exit 0
fi
valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=9 --suppressions="$TOP/tests/valgrind.supp" \
	"$AGENT" record --duration 2 --frequency 99 --top 3 --output "$TMP/vg.txt" \
	--output "$TMP/vg.pb.gz" --output "$TMP/vg.svg" -- "$WL/chain" 1 >"$TMP/vg.log" 2>&1
rc=$?
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' "$TMP/vg.log" | sed 's/^/# /'
check "valgrind: no errors, no leaks (exit $rc)" test $rc -eq 0
check "valgrind: ERROR SUMMARY is 0" grep -q 'ERROR SUMMARY: 0 errors' "$TMP/vg.log"
check "valgrind: the recording still produced the profile" grep -q ';chain_c ' "$TMP/vg.txt"
# the encoders' growing tables (ASan does not see a free of an uninitialised slot)
PROFLEET_TEST_FILTER=test_otlp_many_attributes valgrind -q --error-exitcode=9 \
	"$BUILD/tests/test_export" >"$TMP/vg-otlp.log" 2>&1
rc=$?
check "valgrind: the OTLP encoder growing its tables past their first size (exit $rc)" \
	sh -c "[ $rc -eq 0 ] && grep -q 'test_otlp_many_attributes' '$TMP/vg-otlp.log'"
finish
