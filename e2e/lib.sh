# Shared by the e2e tests: TAP output, a work directory, waiting.
# shellcheck shell=sh
TOP=${PROFLEET_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${PROFLEET_BUILD:-$TOP/build}
n=0
failures=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
verdict() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }	# after a compound test
note() { echo "# $*"; }
bail() { echo "Bail out! $*"; exit 1; }

# workdir NAME: a fresh directory in $W, kept by keep_or_remove when a check failed or E2E_KEEP is set
workdir() { W=$(mktemp -d "/tmp/profleet-$1.XXXXXX") || bail "cannot make a work directory"; }
keep_or_remove() {
	if [ "$failures" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
		echo "# logs kept in $W"
	else
		rm -rf "$W"
	fi
}

# wait_until TIMEOUT_S COMMAND...: polls every 0.2 s
wait_until() {
	t=$1
	shift
	end=$(($(date +%s) + t))
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}
