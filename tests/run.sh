#!/bin/sh
# Runs test tiers and ends with one line: "N passed, N failed, N skipped".
#   tests/run.sh all|unit|san|tsan|system|e2e|node|kernels [BUILD_DIR]
# Every test program speaks TAP ("ok N - name" / "not ok N - name", "# SKIP" for a skip);
# a program that exits non-zero without reporting a failure counts as one failure
# (a crash must never pass silently), and so does a tier that finds nothing to run.
# The exit status is 0 only when nothing failed.
set -u
tier=${1:-all}
build=${2:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
logdir="$top/$build/test-logs"
mkdir -p "$logdir" || exit 1
pass=0 fail=0 skip=0
failed_names=""
# the build the tests are pointed at (PROFLEET_BUILD); the tsan tier points it at build/tsan
pbuild=$build
# set by the tsan tier: the TSAN_OPTIONS of every test (each gets its own log_path)
tsan_base=""
tsan_prefix=""

# The e2e and node tiers use kubectl v1.20.2 built from Debian's kubernetes
# source (e2e/build-kube.sh, cached), not whatever kubectl a machine carries: a
# stock Debian machine has none.
use_tree_kubectl() {
	kc=$(sh "$top/e2e/build-kube.sh" kubectl) || return 1
	PATH=$(dirname "$kc"):$PATH
	export PATH
}

# A failure that is not a test program's: counted and named like one.
fail_one() { # name, message
	printf '== %s\n   not ok - %s\n' "$1" "$2"
	fail=$((fail + 1))
	failed_names="$failed_names $1"
}

skip_one() { # name, reason
	printf '== %s\n   ok - %s # SKIP %s\n' "$1" "$1" "$2"
	skip=$((skip + 1))
}

# ThreadSanitizer's reports of the test just run (log_path=PREFIX writes PREFIX.PID):
# each process that reported is one failure (tsan_n), its report goes into the test's log.
tsan_reports() { # log
	tsan_n=0
	for r in "$tsan_prefix".*; do
		[ -f "$r" ] || continue
		tsan_n=$((tsan_n + 1))
		echo "not ok - ThreadSanitizer: $(sed -n 's/^SUMMARY: ThreadSanitizer: //p' "$r" | head -1)" >>"$1"
		cat "$r" >>"$1"
		rm -f "$r"
	done
}

run_one() { # name, command...
	name=$1
	shift
	log="$logdir/$(echo "$name" | tr '/ ' '__').log"
	printf '== %s\n' "$name"
	if [ -n "$tsan_base" ]; then
		tsan_prefix="$logdir/tsan-$(echo "$name" | tr '/ ' '__')"
		rm -f "$tsan_prefix".*
		export TSAN_OPTIONS="$tsan_base log_path=$tsan_prefix"
	fi
	CMOCKA_MESSAGE_OUTPUT=TAP PROFLEET_SRCDIR="$top" PROFLEET_BUILD="$top/$pbuild" \
		"$@" >"$log" 2>&1
	rc=$?
	tsan_n=0
	[ -z "$tsan_base" ] || tsan_reports "$log"
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	# a skipped test is "ok N # SKIP" in TAP, "not ok N # SKIP" from cmocka 1.1
	s_ok=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log" | tr -d ' ')
	s_not=$(grep -cE '^not ok [0-9]+.*# *SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	s=$((s_ok + s_not))
	p=$((p - s_ok))
	f=$((f - s_not + tsan_n))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$log"
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		f=1
		echo "not ok - $name reported no test at all" >>"$log"
	fi
	grep -E '^(not ok|ok [0-9]+.*# *SKIP)' "$log" | sed 's/^/   /'
	[ "$f" -gt 0 ] && { tail -n 30 "$log" | sed 's/^/   | /'; failed_names="$failed_names $name"; }
	printf '   %s: %d passed, %d failed, %d skipped\n' "$name" "$p" "$f" "$s"
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
}

run_units() { # build dir, tier label
	found=0
	for t in "$top/$1"/tests/test_*; do
		[ -x "$t" ] || continue
		found=$((found + 1))
		run_one "$2/$(basename "$t")" "$t"
	done
	[ "$found" -gt 0 ] || fail_one "$2" "no unit tests found in $top/$1/tests (not built?)"
}

run_system() { # tier label; scripts named in $system_skip are skipped with their reason
	found=0
	for t in "$top"/tests/system/*.sh; do
		[ -f "$t" ] && [ "$(basename "$t")" != lib.sh ] || continue
		found=$((found + 1))
		base=$(basename "$t" .sh)
		why=$(printf '%s\n' "$system_skip" | sed -n "s/^$base: //p")
		if [ -n "$why" ]; then
			skip_one "$1/$base" "$why"
		else
			run_one "$1/$base" sh "$t"
		fi
	done
	[ "$found" -gt 0 ] || fail_one "$1" "no system tests found in $top/tests/system"
}

system_skip=""
case $tier in
all | unit) run_units "$build" unit ;;
esac
case $tier in
all | san) run_units build/san unit-san ;;
esac
case $tier in
all | system) run_system system ;;
esac

case $tier in
all | tsan)
	# ThreadSanitizer (make SANITIZE=thread): the unit tests and the system tier against
	# build/tsan's agent, controller and tools; the workloads are the plain build's (they
	# are what is profiled, not what is checked). Any report fails the test that caused it.
	tsan_base="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$top/tests/tsan.supp"
	run_units build/tsan unit-tsan
	pbuild=build/tsan
	export PROFLEET_WORKLOADS="$top/$build/workloads"
	# record mode's only threads are the exporters', which export.sh runs; record.sh and
	# unwind.sh measure sample shares that a 4-5 times slower agent start misses
	system_skip="valgrind: valgrind cannot run a ThreadSanitizer binary (both own the address space)
dockerfiles: checks the images' packages against the linked libraries; libtsan is no runtime dependency
fuzz: the libFuzzer targets are ASan builds of the plain tree; there is none under build/tsan
record: timing-sensitive (short workloads caught by --pid and --all, >= 90% of children named) and single-threaded
unwind: timing-sensitive (>= 95-99% of samples unwound needs tables loaded before the first samples) and single-threaded"
	run_system system-tsan
	# the e2e run with the controller under ThreadSanitizer, against a real API server;
	# the agents are the plain build's (the e2e checks time what they collect)
	system_skip="" pbuild=$build
	unset PROFLEET_WORKLOADS
	use_tree_kubectl || fail_one e2e-tsan "kubectl did not build (e2e/build-kube.sh)"
	export PROFLEET_CONTROLLER="$top/build/tsan/bin/profleet-controller"
	run_one e2e-tsan/test_fleet sh "$top/e2e/test_fleet.sh"
	tsan_base=""
	unset TSAN_OPTIONS PROFLEET_CONTROLLER
	;;
esac

case $tier in
all | e2e)
	# a real kube-apiserver + etcd (e2e/cluster.sh), or E2E_KUBECONFIG's cluster
	use_tree_kubectl || fail_one e2e "kubectl did not build (e2e/build-kube.sh)"
	for t in "$top"/e2e/test_*.sh; do
		[ -f "$t" ] || continue
		[ "$t" = "$top/e2e/test_node.sh" ] && continue	# the node tier's
		run_one "e2e/$(basename "$t" .sh)" sh "$t"
	done
	;;
esac

case $tier in
all | node)
	# a real node: kubelet, containerd, kube-proxy, the chart's Pods from our
	# images (e2e/node.sh); not against E2E_KUBECONFIG's cluster
	use_tree_kubectl || fail_one e2e/test_node "kubectl did not build (e2e/build-kube.sh)"
	run_one e2e/test_node sh "$top/e2e/test_node.sh"
	;;
esac

case $tier in
all | kernels)
	# Debian's kernels from 5.10 to 7.x under qemu (TCG), this build inside each
	run_one kernels sh "$top/tests/kernels/matrix.sh"
	;;
esac

case $tier in
all | unit | san | tsan | system | e2e | node | kernels) ;;
*) fail_one "$tier" "unknown tier (all, unit, san, tsan, system, e2e, node, kernels)" ;;
esac

# the failures again at the end, where a cut log (CI keeps its tail) still shows them
for name in $failed_names; do
	grep -E '^not ok' "$logdir/$(echo "$name" | tr '/ ' '__').log" 2>/dev/null |
		grep -vE '# *SKIP' | head -n 5 | sed "s|^|$name: |"
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
