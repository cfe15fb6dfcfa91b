#!/bin/sh
# HotSpot code named from the JVM's own memory (agent/jvm): Debian's OpenJDK 17
# running a known call chain (tests/workloads/java/JvmRatio.java) with no flags,
# recorded once it is compiled. The native walk ends at the first frame in the
# code cache (no frame pointers there); that frame is named by the compiled
# method's class and name, or by its blob (the interpreter, a stub). Prints TAP.
. "$(dirname "$0")/lib.sh"

JAVA=${PROFLEET_JAVA:-/usr/lib/jvm/java-17-openjdk-amd64/bin/java}
JAVAC=${PROFLEET_JAVAC:-/usr/lib/jvm/java-17-openjdk-amd64/bin/javac}
if [ ! -r /sys/kernel/btf/vmlinux ] || [ "$(id -u)" -ne 0 ]; then
	skip "needs root and kernel BTF"
	finish
	exit 0
fi
if [ ! -x "$JAVA" ] || [ ! -x "$JAVAC" ]; then
	skip "no $JAVAC (tests/deps.sh installs openjdk-17-jdk-headless)"
	finish
	exit 0
fi
"$JAVAC" -d "$TMP" "$TOP/tests/workloads/java/JvmRatio.java" >"$TMP/javac.log" 2>&1
check "javac compiles the workload" test -s "$TMP/JvmRatio.class"

# leaf_sum FILE REGEX: samples whose last user frame matches REGEX (kernel frames may follow)
leaf_sum() { folded_sum "$1" "(^|;)$2(;[^;]*_\\[k\\])* [0-9]+\$"; }

# attach NAME WARMUP SECONDS JAVA-OPTIONS...: JvmRatio recorded after WARMUP seconds
attach() {
	name=$1 warm=$2 secs=$3
	shift 3
	"$JAVA" "$@" -cp "$TMP" JvmRatio $((warm + secs + 20)) >/dev/null 2>&1 &
	jpid=$!
	sleep "$warm"
	"$AGENT" record --pid "$jpid" --duration "$secs" --frequency 199 --top 0 --log-level info \
		--output "$TMP/$name.txt" --output "$TMP/$name.pb.gz" >"$TMP/$name.log" 2>&1
	rc=$?
	kill "$jpid" 2>/dev/null
	wait "$jpid" 2>/dev/null
	return $rc
}

# --- tiered compilation (the default): C2 code of both leaves -----------------------
attach tiered 4 5
check "record --pid of java exits 0" test $? -eq 0
total=$(folded_total "$TMP/tiered.txt")
jvm=$(folded_sum "$TMP/tiered.txt" '_\[j\]( |;)')
hot=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.hotThree_\[j\]')
cold=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.coldOne_\[j\]')
echo "# tiered: $jvm of $total samples have a JVM frame; hotThree=$hot coldOne=$cold"
grep -vE 'JvmRatio\.(hotThree|coldOne)_\[j\]' "$TMP/tiered.txt" | sort -k2 -t' ' -rn | head -3 |
	cut -c 1-240 | sed 's/^/# /'
check "the compiled leaves are named Class.method from the code cache in >= 90% of samples ($((hot + cold))/$total)" \
	awk -v c="$((hot + cold))" -v t="$total" 'BEGIN { exit !(t >= 500 && c >= 0.9 * t) }'
pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
check "hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-7)" \
	awk -v p="$pct" 'BEGIN { exit !(p >= 68 && p <= 82) }'
check "no JIT frame is left as [jit]+0x... ($(grep -c '\[jit\]' "$TMP/tiered.txt") stacks)" \
	test "$(grep -c '\[jit\]' "$TMP/tiered.txt")" -eq 0
if command -v go >/dev/null 2>&1; then
	go tool pprof -raw "$TMP/tiered.pb.gz" >"$TMP/tiered.raw" 2>&1
	check "pprof: the leaves' locations carry their class's source file, JvmRatio.java" \
		grep -qE ' JvmRatio\.hotThree JvmRatio\.java' "$TMP/tiered.raw"
	check "pprof: their mapping is the [jvm] pseudo-mapping" \
		sh -c "grep -E '^ +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ JvmRatio\.hotThree' '$TMP/tiered.raw' | head -1 |
			sed -E 's/.* M=([0-9]+) .*/\1/' | xargs -I M grep -qE '^ *M: .*\[jvm\]' '$TMP/tiered.raw'"
	check "the profile counts what the code cache named (profleet.jvm.named > 0, no read error)" \
		sh -c "grep -qE 'profleet\.jvm\.named=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.read_errors=0' '$TMP/tiered.raw'"
fi

# --- the interpreter only: its blob names the frame -------------------------------
attach xint 2 3 -Xint
check "record --pid of java -Xint exits 0" test $? -eq 0
total=$(folded_total "$TMP/xint.txt")
interp=$(leaf_sum "$TMP/xint.txt" '\[jvm\] Interpreter_\[j\]')
stub=$(folded_sum "$TMP/xint.txt" ';JavaCalls::call_helper[^;]*;\[jvm\] StubRoutines \(1\)_\[j\];\[jvm\] Interpreter_\[j\]')
echo "# -Xint: $interp of $total samples end in the interpreter, $stub enter it from the call stub"
check "-Xint: the interpreter's code is named [jvm] Interpreter in >= 80% of samples ($interp/$total)" \
	awk -v c="$interp" -v t="$total" 'BEGIN { exit !(t >= 200 && c >= 0.8 * t) }'
# the interpreter keeps frame pointers: the native walk goes on through its frames
check "-Xint: JavaCalls::call_helper -> [jvm] StubRoutines (1) -> [jvm] Interpreter in >= 80% of samples ($stub/$total)" \
	awk -v c="$stub" -v t="$total" 'BEGIN { exit !(t >= 200 && c >= 0.8 * t) }'

finish
