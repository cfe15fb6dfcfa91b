#!/bin/sh
# Java frames: profleet's HotSpot walker against the JDK's Flight Recorder and
# perf(1), in the same run, on tests/workloads/java/JvmRatio.java (main -> run ->
# pick, inlined -> hotThree or coldOne, called 3:1, each too large to inline) under
# Debian's OpenJDK 17 with its default collector and flags.
#   - profleet: no flag, recorded with --pid once the JVM is warm;
#   - JFR: -XX:StartFlightRecording, read back with `jfr print`;
#   - perf: perf record -g of a JVM started with -XX:+PreserveFramePointer and
#     -XX:+DumpPerfMapAtExit (the flags perf needs to see Java at all).
# Prints, per tool: samples, the share whose stack holds the whole Java chain
# (main -> run -> leaf), hotThree's share of the two leaves (3:1 is 75%), the mean
# number of Java frames per sample; and profleet's BPF cost per sample
# (kernel.bpf_stats_enabled). Numbers, never pass/fail.
#
#   bench/jvm.sh [SECONDS]     (default 10; each tool records that long)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
JDK=${PROFLEET_JDK:-/usr/lib/jvm/java-17-openjdk-amd64}
SECS=${1:-10}
WARM=5
[ -x "$AGENT" ] || { echo "bench: run 'make all' first" >&2; exit 1; }
[ -x "$JDK/bin/javac" ] || { echo "bench: no $JDK/bin/javac (openjdk-17-jdk-headless)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/profleet-jvmbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$JDK/bin/javac" -d "$tmp" "$top/tests/workloads/java/JvmRatio.java" || exit 1

# report TOOL SAMPLES CHAIN HOT COLD FRAMES [EXTRA]
report() {
	awk -v tool="$1" -v n="$2" -v c="$3" -v h="$4" -v k="$5" -v f="$6" -v x="${7:-}" 'BEGIN {
		printf "  %-44s %6d samples, whole Java chain %5.1f%%, hotThree %5.1f%% of the leaves (75 is 3:1), %4.1f Java frames/sample%s\n",
			tool, n, n ? 100 * c / n : 0, h + k ? 100 * h / (h + k) : 0, n ? f / n : 0, x }'
}

echo "== jvm bench: JvmRatio on $("$JDK/bin/java" -version 2>&1 | head -1), $SECS s each, after $WARM s of warm-up"

# --- profleet -------------------------------------------------------------------
"$JDK/bin/java" -cp "$tmp" JvmRatio $((WARM + SECS + 10)) >/dev/null &
jpid=$!
sleep "$WARM"
stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -q kernel.bpf_stats_enabled=1 2>/dev/null
"$AGENT" record --pid "$jpid" --duration "$SECS" --frequency 99 --top 0 --log-level info \
	--output "$tmp/ours.txt" >"$tmp/ours.log" 2>&1
sysctl -q kernel.bpf_stats_enabled="$stats" 2>/dev/null
kill "$jpid" 2>/dev/null
wait "$jpid" 2>/dev/null
# the main thread's samples (the JVM's own threads, GC and JIT, are not the workload)
grep -E 'JvmRatio\.' "$tmp/ours.txt" >"$tmp/ours.main" || true
n=$(awk '{ s += $NF } END { print s + 0 }' "$tmp/ours.main")
chain=$(grep -E 'JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\]' "$tmp/ours.main" |
	awk '{ s += $NF } END { print s + 0 }')
hot=$(grep -E 'JvmRatio\.hotThree_\[j\]' "$tmp/ours.main" | awk '{ s += $NF } END { print s + 0 }')
cold=$(grep -E 'JvmRatio\.coldOne_\[j\]' "$tmp/ours.main" | awk '{ s += $NF } END { print s + 0 }')
frames=$(awk '{ c = gsub(/_\[j\]/, "&"); f += c * $NF } END { print f + 0 }' "$tmp/ours.main")
cost=$(sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event.*/\1/p' "$tmp/ours.log" | head -1)
report "profleet (no flags)" "$n" "$chain" "$hot" "$cold" "$frames" ", BPF ${cost:-?} ns/sample"

# --- JFR ---------------------------------------------------------------------------
"$JDK/bin/java" "-XX:StartFlightRecording=filename=$tmp/r.jfr,settings=profile" -cp "$tmp" \
	JvmRatio $((WARM + SECS)) >/dev/null 2>&1
"$JDK/bin/jfr" print --events jdk.ExecutionSample "$tmp/r.jfr" >"$tmp/jfr.txt" 2>&1
# one event: "jdk.ExecutionSample {", its stackTrace's frames innermost first, "}"
awk '
/^jdk.ExecutionSample/ { inev = 1; top = ""; main = 0; run = 0; fr = 0; next }
inev && /line:/ { fr++; if (top == "") top = $1; if ($1 ~ /^JvmRatio\.main/) main = 1; if ($1 ~ /^JvmRatio\.run/) run = 1 }
inev && /^}/ { inev = 0
	if (top !~ /^JvmRatio\./) next
	n++; f += fr
	if (top ~ /hotThree/) h++; if (top ~ /coldOne/) k++
	if (main && run && top ~ /hotThree|coldOne/) c++ }
END { print n + 0, c + 0, h + 0, k + 0, f + 0 }' "$tmp/jfr.txt" >"$tmp/jfr.sum"
# shellcheck disable=SC2046 # five numbers
report "JFR (whole run, warm-up included)" $(cat "$tmp/jfr.sum")

# --- perf -------------------------------------------------------------------------
if command -v perf >/dev/null 2>&1; then
	(cd "$tmp" && exec "$JDK/bin/java" -XX:+PreserveFramePointer -XX:+UnlockDiagnosticVMOptions \
		-XX:+DumpPerfMapAtExit -cp "$tmp" JvmRatio $((WARM + SECS + 2)) >/dev/null 2>&1) &
	jpid=$!
	sleep "$WARM"
	perf record -q -F 99 -g -p "$jpid" -o "$tmp/perf.data" -- sleep "$SECS" >/dev/null 2>&1
	wait "$jpid" 2>/dev/null	# the perf map is written as it exits
	perf script -i "$tmp/perf.data" -F comm,tid,ip,sym 2>/dev/null >"$tmp/perf.txt"
	# one sample: a header line, then its frames innermost first, then a blank line
	awk '
	/^[^ \t]/ { ins = 1; top = ""; main = 0; run = 0; fr = 0; next }
	ins && NF >= 2 { s = $0; sub(/^[ \t]*[0-9a-f]+ /, "", s)
		if (s ~ /JvmRatio/) { fr++; if (top == "") top = s }
		else if (top == "") top = "-"
		if (s ~ /JvmRatio[.:]+main/) main = 1; if (s ~ /JvmRatio[.:]+run/) run = 1 }
	ins && NF == 0 { ins = 0
		if (top !~ /JvmRatio/) next
		n++; f += fr
		if (top ~ /hotThree/) h++; if (top ~ /coldOne/) k++
		if (main && run && top ~ /hotThree|coldOne/) c++ }
	END { print n + 0, c + 0, h + 0, k + 0, f + 0 }' "$tmp/perf.txt" >"$tmp/perf.sum"
	# shellcheck disable=SC2046 # five numbers
	report "perf -g (PreserveFramePointer + perf map)" $(cat "$tmp/perf.sum")
else
	echo "  perf: not installed (linux-perf)"
fi
