# Shared helpers for the system tests: TAP output and paths.
# shellcheck shell=sh
TOP=${PROFLEET_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${PROFLEET_BUILD:-$TOP/build}
AGENT=$BUILD/bin/profleet-agent
# the workloads are not what is tested: a sanitizer tier takes the plain build's
WL=${PROFLEET_WORKLOADS:-$BUILD/workloads}
TMP=$(mktemp -d /tmp/profleet-test.XXXXXX)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
n=0
failures=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's status
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
finish() { echo "1..$n"; [ "$failures" -eq 0 ]; }

# sum of the counts of folded lines matching an extended regex
folded_sum() { # file regex
	grep -E -- "$2" "$1" | awk '{ s += $NF } END { print s + 0 }'
}
folded_total() { awk '{ s += $NF } END { print s + 0 }' "$1"; }
