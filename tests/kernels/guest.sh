#!/bin/sh
# Runs INSIDE a kernel-tier guest (started by tests/kernels/matrix.sh through
# boot.sh) and checks nothing itself: each step leaves NAME.rc (its exit
# status) and NAME.log (its output), plus any files of its own, in OUTDIR, and
# matrix.sh turns them into TAP lines on the host.
#   guest.sh OUTDIR
# To add a check: a `step` here, and a line in matrix.sh's check_guest.
# TCG is slow (a verifier rejection at 1M instructions takes about a minute; the
# agent compiles its own libraries' unwind tables in about 6 s): keep steps short.
set -u
OUT=$1
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${PROFLEET_BUILD:-$TOP/build}
AGENT=$BUILD/bin/profleet-agent
WL=$BUILD/workloads
# seconds each attached recording lasts
SECS=${PROFLEET_KERNELS_SECONDS:-8}

# step NAME COMMAND...: OUTDIR/NAME.log gets the output, OUTDIR/NAME.rc the status
step() {
	name=$1
	shift
	t0=$(cut -d ' ' -f 1 /proc/uptime)
	"$@" >"$OUT/$name.log" 2>&1
	rc=$?
	echo "$rc" >"$OUT/$name.rc"
	echo "guest: $name: exit status $rc, $(awk -v t="$t0" '{ printf "%.1f", $1 - t }' /proc/uptime) s"
	return 0
}

# attached NAME SECONDS WORKLOAD [ARGS...]: records a running workload with --pid.
# Under TCG a process's exec and the dynamic loader take 40-90 ms, sampled before
# its tables are in the map (frame pointers then, which these workloads lack):
# attaching once it runs measures the walk itself. `-- COMMAND` is the ratio step.
attached() {
	name=$1 secs=$2 wl=$3
	shift 3
	"$wl" "$((secs + 60))" "$@" &
	wpid=$!
	sleep "${ATTACH_DELAY:-1}"
	"$AGENT" record --pid "$wpid" --duration "$secs" --frequency 199 --top 0 --log-level info \
		--output "$OUT/$name.txt" --output "$OUT/$name.pb.gz"
	rc=$?
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	return $rc
}

echo "guest: $(uname -r), $(nproc) CPU, PROFLEET_BUILD=$BUILD"
step uname uname -r
step btf test -r /sys/kernel/btf/vmlinux
# the BPF programs' cost, read back from the profile's comments (profleet.bpf.run_ns)
sysctl -q kernel.bpf_stats_enabled=1 2>/dev/null
step libc attached libc "$SECS" "$WL/nofp/libc_hot"
sysctl -q kernel.bpf_stats_enabled=0 2>/dev/null
# deeper than a sample holds: 127 frames through the chain of tail calls
step deep attached deep 4 "$WL/nofp/recurse" 200
# Debian's python3.11 (the host's, seen read-only): the CPython walker's chain
# (its start-up under TCG takes seconds: attached once it runs its loop)
ATTACH_DELAY=5
step python attached python "$SECS" "$TOP/tests/workloads/python/run-ratio"
# Debian's OpenJDK 17 in its interpreter (C2 under TCG would take minutes): the
# HotSpot walker's frames by rbp, named by their methods (matrix.sh compiles the class);
# then C1's compiled code
if [ -r "$BUILD/kernels/java/JvmRatio.class" ]; then
	export JAVA_OPTS=-Xint JVMRATIO_CLASSES="$BUILD/kernels/java"
	ATTACH_DELAY=8
	step jvm attached jvm "$SECS" "$TOP/tests/workloads/java/run-ratio"
	# C1 (tiered compilation stopped at its first level) compiles in seconds even
	# here: compiled frames without frame pointers, pick inlined into run
	export JAVA_OPTS=-XX:TieredStopAtLevel=1
	ATTACH_DELAY=12
	step jvmc1 attached jvmc1 "$SECS" "$TOP/tests/workloads/java/run-ratio"
	unset JAVA_OPTS JVMRATIO_CLASSES
fi
# Debian's Node.js 24 (sid's root, which matrix.sh names and fills): interpreted
# (--jitless), then as it runs, Sparkplug's and TurboFan's code (V8's frames by rbp)
if [ -r "$BUILD/kernels/node-root" ]; then
	export NODE_ROOT="$(cat "$BUILD/kernels/node-root")"
	export NODE_OPTS=--jitless
	ATTACH_DELAY=6
	step node attached node "$SECS" "$TOP/tests/workloads/node/run-ratio"
	export NODE_OPTS=
	ATTACH_DELAY=15
	step nodeopt attached nodeopt "$SECS" "$TOP/tests/workloads/node/run-ratio"
	unset NODE_ROOT NODE_OPTS
fi
ATTACH_DELAY=1
step ratio "$AGENT" record --frequency 199 --top 0 --log-level info --output "$OUT/ratio.txt" \
	-- "$WL/ratio" "$SECS" 10
exit 0
