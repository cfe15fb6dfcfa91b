#!/bin/sh
# Java frames: profleet's HotSpot walker against the JDK's Flight Recorder and
# perf(1), in the same run, on tests/workloads/java/JvmRatio.java (main -> run ->
# pick, inlined -> hotThree or coldOne, called 3:1, each too large to inline) with
# each JDK's default collector and flags: Debian's OpenJDK 17, and 21 and 25 from
# trixie in its root file system (tests/python-root.sh, run with chroot).
#   - profleet: no flag, recorded with --pid once the JVM is warm;
#   - JFR: -XX:StartFlightRecording, read back with `jfr print`;
#   - perf (17 only): perf record -g of a JVM started with -XX:+PreserveFramePointer
#     and -XX:+DumpPerfMapAtExit (the flags perf needs to see Java at all).
# Prints, per tool: samples, the share whose stack holds the whole Java chain
# (main -> run -> leaf), the share that shows pick (inlined into run, a frame only
# for tools that expand inlining), hotThree's share of the two leaves (3:1 is
# 75%), the mean number of Java frames per sample; and profleet's BPF cost per
# sample (kernel.bpf_stats_enabled). Numbers, never pass/fail.
#
#   bench/jvm.sh [SECONDS]     (default 10; each tool records that long)
#   PROFLEET_JDKS="17 21 25"   (the JDKs to run; 21 and 25 need the trixie root)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
SECS=${1:-10}
WARM=5
[ -x "$AGENT" ] || { echo "bench: run 'make all' first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/profleet-jvmbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# report TOOL SAMPLES CHAIN PICK HOT COLD FRAMES [EXTRA]
report() {
	awk -v tool="$1" -v n="$2" -v c="$3" -v p="$4" -v h="$5" -v k="$6" -v f="$7" -v x="${8:-}" 'BEGIN {
		printf "  %-42s %6d samples, Java chain %5.1f%%, pick shown %5.1f%%, hotThree %5.1f%% of the leaves (75 is 3:1), %4.1f Java frames/sample%s\n",
			tool, n, n ? 100 * c / n : 0, n ? 100 * p / n : 0, h + k ? 100 * h / (h + k) : 0, n ? f / n : 0, x }'
}

sum() { awk '{ s += $NF } END { print s + 0 }'; }

# ours JAVA CP: profleet on a warm JvmRatio ($RUN: the prefix that runs java)
ours() {
	$RUN "$1" -cp "$2" JvmRatio $((WARM + SECS + 10)) >/dev/null 2>&1 &
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
	n=$(sum <"$tmp/ours.main")
	chain=$(grep -E 'JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];(JvmRatio\.pick_\[j\];)?JvmRatio\.(hotThree|coldOne)_\[j\]' "$tmp/ours.main" | sum)
	pick=$(grep -E 'JvmRatio\.pick_\[j\]' "$tmp/ours.main" | sum)
	hot=$(grep -E 'JvmRatio\.hotThree_\[j\]' "$tmp/ours.main" | sum)
	cold=$(grep -E 'JvmRatio\.coldOne_\[j\]' "$tmp/ours.main" | sum)
	frames=$(awk '{ c = gsub(/_\[j\]/, "&"); f += c * $NF } END { print f + 0 }' "$tmp/ours.main")
	cost=$(sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event.*/\1/p' "$tmp/ours.log" | head -1)
	report "profleet (no flags)" "$n" "$chain" "$pick" "$hot" "$cold" "$frames" ", BPF ${cost:-?} ns/sample"
}

# jfr JDK CP DIR: the Flight Recorder over the whole run; DIR: where the JVM writes (its root's)
jfr() {
	$RUN "$1/bin/java" "-XX:StartFlightRecording=filename=$3/r.jfr,settings=profile" -cp "$2" \
		JvmRatio $((WARM + SECS)) >/dev/null 2>&1
	$RUN "$1/bin/jfr" print --events jdk.ExecutionSample "$3/r.jfr" >"$tmp/jfr.txt" 2>&1
	# one event: "jdk.ExecutionSample {", its stackTrace's frames innermost first, "}"
	awk '
	/^jdk.ExecutionSample/ { inev = 1; top = ""; main = 0; run = 0; pick = 0; fr = 0; next }
	inev && /line:/ { fr++; if (top == "") top = $1; if ($1 ~ /^JvmRatio\.main/) main = 1
		if ($1 ~ /^JvmRatio\.run/) run = 1; if ($1 ~ /^JvmRatio\.pick/) pick = 1 }
	inev && /^}/ { inev = 0
		if (top !~ /^JvmRatio\./) next
		n++; f += fr; p += pick
		if (top ~ /hotThree/) h++; if (top ~ /coldOne/) k++
		if (main && run && top ~ /hotThree|coldOne/) c++ }
	END { print n + 0, c + 0, p + 0, h + 0, k + 0, f + 0 }' "$tmp/jfr.txt" >"$tmp/jfr.sum"
	# shellcheck disable=SC2046 # six numbers
	report "JFR (whole run, warm-up included)" $(cat "$tmp/jfr.sum")
}

perf_g() { # JDK
	if ! command -v perf >/dev/null 2>&1; then
		echo "  perf: not installed (linux-perf)"
		return
	fi
	(cd "$tmp" && exec "$1/bin/java" -XX:+PreserveFramePointer -XX:+UnlockDiagnosticVMOptions \
		-XX:+DumpPerfMapAtExit -cp "$tmp" JvmRatio $((WARM + SECS + 2)) >/dev/null 2>&1) &
	jpid=$!
	sleep "$WARM"
	perf record -q -F 99 -g -p "$jpid" -o "$tmp/perf.data" -- sleep "$SECS" >/dev/null 2>&1
	wait "$jpid" 2>/dev/null	# the perf map is written as it exits
	perf script -i "$tmp/perf.data" -F comm,tid,ip,sym 2>/dev/null >"$tmp/perf.txt"
	# one sample: a header line, then its frames innermost first, then a blank line
	awk '
	/^[^ \t]/ { ins = 1; top = ""; main = 0; run = 0; pick = 0; fr = 0; next }
	ins && NF >= 2 { s = $0; sub(/^[ \t]*[0-9a-f]+ /, "", s)
		if (s ~ /JvmRatio/) { fr++; if (top == "") top = s }
		else if (top == "") top = "-"
		if (s ~ /JvmRatio[.:]+main/) main = 1; if (s ~ /JvmRatio[.:]+run/) run = 1
		if (s ~ /JvmRatio[.:]+pick/) pick = 1 }
	ins && NF == 0 { ins = 0
		if (top !~ /JvmRatio/) next
		n++; f += fr; p += pick
		if (top ~ /hotThree/) h++; if (top ~ /coldOne/) k++
		if (main && run && top ~ /hotThree|coldOne/) c++ }
	END { print n + 0, c + 0, p + 0, h + 0, k + 0, f + 0 }' "$tmp/perf.txt" >"$tmp/perf.sum"
	# shellcheck disable=SC2046 # six numbers
	report "perf -g (PreserveFramePointer + perf map)" $(cat "$tmp/perf.sum")
}

for v in ${PROFLEET_JDKS:-17 21 25}; do
	jdk=/usr/lib/jvm/java-$v-openjdk-amd64
	if [ "$v" = 17 ]; then
		[ -x "$jdk/bin/javac" ] || { echo "== OpenJDK 17: no $jdk/bin/javac (openjdk-17-jdk-headless)"; continue; }
		"$jdk/bin/javac" -d "$tmp" "$top/tests/workloads/java/JvmRatio.java" || exit 1
		RUN="" cp=$tmp dir=$tmp
	else
		if ! root=$(sh "$top/tests/python-root.sh" trixie "openjdk-$v-jdk-headless" 2>"$tmp/root.err"); then
			echo "== OpenJDK $v: no trixie root file system ($(tail -1 "$tmp/root.err"))"
			continue
		fi
		[ -s "$tmp/JvmRatio.class" ] ||
			/usr/lib/jvm/java-17-openjdk-amd64/bin/javac -d "$tmp" "$top/tests/workloads/java/JvmRatio.java" || exit 1
		mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
		dir=$(mktemp -d "$root/tmp/profleet-jvmbench.XXXXXX")
		cp "$tmp/JvmRatio.class" "$dir/"
		cp=${dir#"$root"}
		RUN="chroot $root env LD_LIBRARY_PATH=$jdk/lib"
	fi
	echo "== OpenJDK $v: JvmRatio on $($RUN "$jdk/bin/java" -version 2>&1 | head -1), $SECS s each, after $WARM s of warm-up"
	ours "$jdk/bin/java" "$cp"
	jfr "$jdk" "$cp" "$cp"
	[ "$v" = 17 ] && perf_g "$jdk"
	[ "$v" = 17 ] || rm -rf "$dir"
done
