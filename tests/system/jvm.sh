#!/bin/sh
# The HotSpot walker and names (agent/jvm, walk_jvm in bpf/oncpu.bpf.c): Debian's
# OpenJDK 17 running a known call chain (tests/workloads/java/JvmRatio.java) with
# no flags, recorded once it is compiled. Compiled frames are walked by their
# blobs' frame sizes (they keep no frame pointer), interpreted ones by rbp; each
# is named from the JVM's own memory by its method's class and name (the call
# stub by its blob). Prints TAP.
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

# chain FILE REGEX: samples from the call stub through main to REGEX, the leaf
chain() { folded_sum "$1" ";JavaCalls::call_helper[^;]*;\\[jvm\\] StubRoutines \\(1\\)_\\[j\\];JvmRatio\\.main_\\[j\\];$2(;[^;]*_\\[k\\])* [0-9]+\$"; }

# --- tiered compilation (the default): C2 code of both leaves -----------------------
attach tiered 4 5
check "record --pid of java exits 0" test $? -eq 0
total=$(folded_total "$TMP/tiered.txt")
hot=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.hotThree_\[j\]')
cold=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.coldOne_\[j\]')
whole=$(chain "$TMP/tiered.txt" 'JvmRatio\.run_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\]')
echo "# tiered: hotThree=$hot coldOne=$cold of $total samples, $whole with the whole chain"
grep -vE 'JvmRatio\.(hotThree|coldOne)_\[j\]' "$TMP/tiered.txt" | sort -k2 -t' ' -rn | head -3 |
	sed 's/.*JavaCalls::call_helper[^;]*;//' | cut -c 1-240 | sed 's/^/# /'
check "the compiled leaves are named Class.method from the code cache in >= 90% of samples ($((hot + cold))/$total)" \
	awk -v c="$((hot + cold))" -v t="$total" 'BEGIN { exit !(t >= 500 && c >= 0.9 * t) }'
check "compiled frames walked without frame pointers: call_helper -> call stub -> main -> run -> leaf in >= 90% of samples ($whole/$total)" \
	awk -v c="$whole" -v t="$total" 'BEGIN { exit !(t >= 500 && c >= 0.9 * t) }'
pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
check "hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-7)" \
	awk -v p="$pct" 'BEGIN { exit !(p >= 68 && p <= 82) }'
check "no JIT frame is left as [jit]+0x... or [jvm]+0x... ($(grep -cE '\[(jit|jvm)\]\+0x' "$TMP/tiered.txt") stacks)" \
	test "$(grep -cE '\[(jit|jvm)\]\+0x' "$TMP/tiered.txt")" -eq 0
if command -v go >/dev/null 2>&1; then
	go tool pprof -raw "$TMP/tiered.pb.gz" >"$TMP/tiered.raw" 2>&1
	check "pprof: the leaves' locations carry their class's source file, JvmRatio.java" \
		grep -qE ' JvmRatio\.hotThree JvmRatio\.java' "$TMP/tiered.raw"
	check "pprof: their mapping is the [jvm] pseudo-mapping" \
		sh -c "grep -E '^ +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ JvmRatio\.hotThree' '$TMP/tiered.raw' | head -1 |
			sed -E 's/.* M=([0-9]+) .*/\\1/' | xargs -I M grep -qE '^ *M: .*\\[jvm\\]' '$TMP/tiered.raw'"
	check "the profile counts the walker's frames and what was named, with no read error" \
		sh -c "grep -qE 'profleet\.jvm\.frames=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.named=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.read_errors=0' '$TMP/tiered.raw'"
else
	skip "pprof: the leaves' locations carry their class's source file (no go tool pprof)"
	skip "pprof: their mapping is the [jvm] pseudo-mapping (no go tool pprof)"
	skip "the profile counts the walker's frames (no go tool pprof)"
fi

# --- the interpreter only: every frame by its Method* ------------------------------
attach xint 2 3 -Xint
check "record --pid of java -Xint exits 0" test $? -eq 0
total=$(folded_total "$TMP/xint.txt")
whole=$(chain "$TMP/xint.txt" 'JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\]')
hot=$(leaf_sum "$TMP/xint.txt" 'JvmRatio\.hotThree_\[j\]')
cold=$(leaf_sum "$TMP/xint.txt" 'JvmRatio\.coldOne_\[j\]')
echo "# -Xint: $whole of $total samples with the whole interpreted chain; hotThree=$hot coldOne=$cold"
check "-Xint: call_helper -> call stub -> main -> run -> pick -> leaf, each method named, in >= 90% of samples ($whole/$total)" \
	awk -v c="$whole" -v t="$total" 'BEGIN { exit !(t >= 200 && c >= 0.9 * t) }'
pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
check "-Xint: hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-10)" \
	awk -v p="$pct" 'BEGIN { exit !(p >= 65 && p <= 85) }'

# --- a JVM recorded from its start to its exit: named after it is gone -------------
"$AGENT" record --frequency 199 --top 0 --output "$TMP/child.txt" -- \
	"$JAVA" -cp "$TMP" JvmRatio 4 >"$TMP/child.log" 2>&1
check "record -- java exits 0" test $? -eq 0
total=$(folded_total "$TMP/child.txt")
named=$(leaf_sum "$TMP/child.txt" 'JvmRatio\.(hotThree|coldOne)_\[j\]')
echo "# record -- java: $named of $total samples end in a named leaf"
check "record -- java: the leaves are named though the JVM exited before the profile was built (>= 60%: $named/$total)" \
	awk -v c="$named" -v t="$total" 'BEGIN { exit !(t >= 300 && c >= 0.6 * t) }'

finish
