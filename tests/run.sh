#!/bin/sh
# Runs test tiers and ends with one line: "N passed, N failed, N skipped".
#   tests/run.sh all|unit|san|system|e2e|kernels [BUILD_DIR]
# Every test program speaks TAP ("ok N - name" / "not ok N - name", "# SKIP" for a skip);
# a program that exits non-zero without reporting a failure counts as one failure
# (a crash must never pass silently).
set -u
tier=${1:-all}
build=${2:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
logdir="$top/$build/test-logs"
mkdir -p "$logdir"
pass=0 fail=0 skip=0
failed_names=""

run_one() { # name, command...
	name=$1
	shift
	log="$logdir/$(echo "$name" | tr '/ ' '__').log"
	printf '== %s\n' "$name"
	CMOCKA_MESSAGE_OUTPUT=TAP PROFLEET_SRCDIR="$top" PROFLEET_BUILD="$top/$build" \
		"$@" >"$log" 2>&1
	rc=$?
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$log"
	fi
	grep -E '^(not ok|ok [0-9]+.*# *SKIP)' "$log" | sed 's/^/   /'
	[ "$f" -gt 0 ] && { tail -n 30 "$log" | sed 's/^/   | /'; failed_names="$failed_names $name"; }
	printf '   %s: %d passed, %d failed, %d skipped\n' "$name" "$p" "$f" "$s"
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
}

run_units() { # build dir
	for t in "$top/$1"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit$( [ "$1" = build/san ] && echo -san)/$(basename "$t")" "$t"
	done
}

case $tier in
all | unit) run_units "$build" ;;
esac
case $tier in
all | san) [ -d "$top/build/san/tests" ] && run_units build/san ;;
esac
case $tier in
all | system)
	for t in "$top"/tests/system/*.sh; do
		[ -f "$t" ] && [ "$(basename "$t")" != lib.sh ] || continue
		run_one "system/$(basename "$t" .sh)" sh "$t"
	done
	;;
esac

case $tier in
all | e2e)
	# a real kube-apiserver + etcd (e2e/cluster.sh), or E2E_KUBECONFIG's cluster
	for t in "$top"/e2e/test_*.sh; do
		[ -f "$t" ] || continue
		run_one "e2e/$(basename "$t" .sh)" sh "$t"
	done
	;;
esac

case $tier in
all | kernels)
	# Debian's kernels from 5.10 to 7.x under qemu (TCG), this build inside each
	run_one kernels sh "$top/tests/kernels/matrix.sh"
	;;
esac

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
