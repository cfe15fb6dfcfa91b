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
# ($JRUN "$JAVA" from class path $CP: another root's JDK with JRUN="chroot ROOT")
JRUN="" CP=$TMP
attach() {
	name=$1 warm=$2 secs=$3
	shift 3
	$JRUN "$JAVA" "$@" -cp "$CP" JvmRatio $((warm + secs + 20)) >/dev/null 2>&1 &
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

# --- OpenJDK 21 and 25 from trixie, in its root file system (run with chroot) ------
# their layouts differ from 17's (25: code bounds as offsets, nmethod::_method, ...):
# what the walker and the names need comes from each VM's own tables
for v in 21 25; do
	if ! root=$(sh "$TOP/tests/python-root.sh" trixie "openjdk-$v-jdk-headless" 2>"$TMP/root.err"); then
		sed 's/^/# /' "$TMP/root.err"
		skip "no trixie root file system with openjdk-$v (tests/python-root.sh)"
		continue
	fi
	# this run's own directory in the shared, cached root
	mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
	cls=$(mktemp -d "$root/tmp/profleet-jvm.XXXXXX")
	cp "$TMP/JvmRatio.class" "$cls/"
	# (no /proc in the root: the launcher's $ORIGIN would need /proc/self/exe)
	jdk=/usr/lib/jvm/java-$v-openjdk-amd64
	host_java=$JAVA
	JRUN="chroot $root env LD_LIBRARY_PATH=$jdk/lib" JAVA=$jdk/bin/java CP=${cls#"$root"}
	attach "jdk$v" 5 5
	rc=$?
	JRUN="" JAVA=$host_java CP=$TMP
	rm -rf "$cls"
	[ "$rc" -eq 0 ] || tail -n 5 "$TMP/jdk$v.log" | sed 's/^/# /'
	check "record --pid of OpenJDK $v in a trixie chroot exits 0" test "$rc" -eq 0
	total=$(folded_total "$TMP/jdk$v.txt")
	hot=$(leaf_sum "$TMP/jdk$v.txt" 'JvmRatio\.hotThree_\[j\]')
	cold=$(leaf_sum "$TMP/jdk$v.txt" 'JvmRatio\.coldOne_\[j\]')
	whole=$(folded_sum "$TMP/jdk$v.txt" ';\[jvm\] StubRoutines[^;]*_\[j\];JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\](;[^;]*_\[k\])* [0-9]+$')
	echo "# OpenJDK $v: hotThree=$hot coldOne=$cold of $total samples, $whole with the whole chain"
	grep -vE 'JvmRatio\.(hotThree|coldOne)_\[j\]' "$TMP/jdk$v.txt" | sort -k2 -t' ' -rn | head -3 |
		sed 's/.*JavaCalls::call_helper[^;]*;//' | cut -c 1-240 | sed 's/^/# /'
	check "OpenJDK $v: call stub -> main -> run -> leaf, each named, in >= 90% of samples ($whole/$total)" \
		awk -v c="$whole" -v t="$total" 'BEGIN { exit !(t >= 500 && c >= 0.9 * t) }'
	pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
	check "OpenJDK $v: hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-7)" \
		awk -v p="$pct" 'BEGIN { exit !(p >= 68 && p <= 82) }'
done

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
