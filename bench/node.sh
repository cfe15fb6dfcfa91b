#!/bin/sh
# JavaScript frames: profleet's V8 walker against perf(1), in the same run, on
# tests/workloads/node/ratio.js (main -> run -> pick -> hotThree or coldOne,
# called 3:1, each leaf too large to inline; run and pick are inlined by
# TurboFan) under Debian's Node.js 18, 20 and 24 (bookworm, trixie and sid root
# file systems: tests/python-root.sh, run with chroot):
#   - profleet: node with no flags, recorded with --pid once it is warm;
#   - perf: perf record -g of node started with --perf-basic-prof
#     --interpreted-frames-native-stack (what perf needs to name JavaScript).
# Prints, per tool: samples of the workload, the share whose stack holds the
# JavaScript chain unbroken down to where the sample is (main -> run -> pick ->
# leaf; a sample in pick's, run's or main's own code stops there), and the share
# down to a leaf, hotThree's share of the two leaves (3:1 is 75%), the mean
# number of JavaScript frames per sample; and profleet's BPF cost per sample
# (kernel.bpf_stats_enabled). Numbers, never pass/fail.
#
#   bench/node.sh [SECONDS]            (default 25: 2475 samples at 99 Hz; each tool that long)
#   PROFLEET_NODES="bookworm trixie sid"   (the suites whose node runs)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
SECS=${1:-25}
WARM=5
[ -x "$AGENT" ] || { echo "bench: run 'make all' first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/profleet-nodebench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# report TOOL SAMPLES CHAIN HOT COLD FRAMES IN-LEAF [EXTRA]
report() {
	awk -v tool="$1" -v n="$2" -v c="$3" -v h="$4" -v k="$5" -v f="$6" -v l="$7" -v x="${8:-}" 'BEGIN {
		printf "  %-42s %5d samples, JS chain %5.1f%% (%5.1f%% down to a leaf), hotThree %5.1f%% of the leaves (75 is 3:1), ratio %4.2f, %4.1f JS frames/sample%s\n",
			tool, n, n ? 100 * c / n : 0, n ? 100 * l / n : 0, h + k ? 100 * h / (h + k) : 0, k ? h / k : 0, n ? f / n : 0, x }'
}

# summarize: folded stacks (frames separated by ';', JavaScript ones tagged _[js]
# by profleet, any name by perf) on stdin -> SAMPLES CHAIN HOT COLD FRAMES of the
# main thread's samples in the workload
summarize() {
	awk -v tag="$1" '{
		n = split($0, f, ";"); sub(/ [0-9]+$/, "", f[n]); c = $NF; last = ""; js = 0; seq = ""
		for (i = 1; i <= n; i++) {
			name = f[i]; sub(/_\[js\]$/, "", name); sub(/^(LazyCompile|Function|JS):[*~^+]?\047?/, "", name)
			sub(/ .*/, "", name)
			if (tag == "" || f[i] ~ tag) js++
			if (name ~ /^(main|run|pick|hotThree|coldOne)$/) { last = name; seq = seq "/" name }
		}
		if (last == "") next
		N += c; F += js * c
		if (last == "hotThree") H += c; if (last == "coldOne") K += c
		# the chain unbroken down to where the sample is (a leaf, or the own code of
		# pick, run or main): no frame of it missing
		if (seq ~ /^\/main(\/run(\/pick(\/(hotThree|coldOne))?)?)?$/) C += c
		if (seq ~ /^\/main\/run\/pick\/(hotThree|coldOne)$/) L += c
	} END { print N + 0, C + 0, H + 0, K + 0, F + 0, L + 0 }'
}

ours() {
	env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$root" node /tmp/profleet-node/ratio.js \
		$((WARM + SECS + 10)) >/dev/null 2>&1 &
	npid=$!
	sleep "$WARM"
	stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
	sysctl -q kernel.bpf_stats_enabled=1 2>/dev/null
	"$AGENT" record --pid "$npid" --duration "$SECS" --frequency 99 --top 0 --log-level info \
		--output "$tmp/ours.txt" >"$tmp/ours.log" 2>&1
	sysctl -q kernel.bpf_stats_enabled="$stats" 2>/dev/null
	kill "$npid" 2>/dev/null
	wait "$npid" 2>/dev/null
	cost=$(sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event.*/\1/p' "$tmp/ours.log" | head -1)
	# shellcheck disable=SC2046 # five numbers
	report "profleet (no flags)" $(summarize '_\[js\]$' <"$tmp/ours.txt") ", BPF ${cost:-?} ns/sample"
}

perf_g() {
	if ! command -v perf >/dev/null 2>&1; then
		echo "  perf: not installed (linux-perf)"
		return
	fi
	env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$root" node --perf-basic-prof \
		--interpreted-frames-native-stack /tmp/profleet-node/ratio.js $((WARM + SECS + 2)) \
		>/dev/null 2>&1 &
	npid=$!
	sleep "$WARM"
	perf record -q -F 99 -g -p "$npid" -o "$tmp/perf.data" -- sleep "$SECS" >/dev/null 2>&1
	wait "$npid" 2>/dev/null
	# node wrote its map in its root's /tmp; perf reads the host's
	cp "$root/tmp/perf-$npid.map" "/tmp/perf-$npid.map" 2>/dev/null
	perf script -i "$tmp/perf.data" -F ip,sym 2>/dev/null | awk '
		NF == 0 { if (s != "") print s " 1"; s = ""; next }
		{ $1 = ""; sub(/^ /, ""); s = s == "" ? $0 : $0 ";" s }
		END { if (s != "") print s " 1" }' >"$tmp/perf.folded"
	rm -f "/tmp/perf-$npid.map" "$root/tmp/perf-$npid.map"
	# JavaScript frames in the map are "JS:*name file:line" (or "LazyCompile:", "Function:")
	# shellcheck disable=SC2046 # five numbers
	report "perf -g (--perf-basic-prof, native stack)" $(summarize '(JS|LazyCompile|Function):' <"$tmp/perf.folded")
}

for suite in ${PROFLEET_NODES:-bookworm trixie sid}; do
	if ! root=$(sh "$top/tests/python-root.sh" "$suite" nodejs 2>"$tmp/root.err"); then
		echo "== $suite: no root file system with nodejs ($(tail -1 "$tmp/root.err"))"
		continue
	fi
	mkdir -p "$root/tmp/profleet-node"
	cp "$top/tests/workloads/node/ratio.js" "$root/tmp/profleet-node/"
	echo "== Node.js $(chroot "$root" node --version) ($suite): ratio.js, $SECS s each, after $WARM s of warm-up"
	ours
	perf_g
done
