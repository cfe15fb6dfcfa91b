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

# most PART TOTAL MIN: PART is at least 90% of TOTAL, and TOTAL at least MIN
most() { awk -v c="$1" -v t="$2" -v m="$3" 'BEGIN { exit !(t >= m && c >= 0.9 * t) }'; }

# leaf_sum FILE REGEX: samples whose last user frame matches REGEX (kernel frames may follow)
leaf_sum() { folded_sum "$1" "(^|;)$2(;[^;]*_\\[k\\])* [0-9]+\$"; }

# recorded NAME WARMUP SECONDS JAVA-ARGUMENTS...: $JRUN "$JAVA" with them recorded
# after WARMUP seconds (another root's JDK with JRUN="chroot ROOT"), killed after
recorded() {
	name=$1 warm=$2 secs=$3
	shift 3
	$JRUN "$JAVA" "$@" >/dev/null 2>&1 &
	jpid=$!
	sleep "$warm"
	# shellcheck disable=SC2086 # $REC_ARGS: more options, split
	"$AGENT" record --pid "$jpid" --duration "$secs" --frequency 199 --top 0 --log-level info \
		--output "$TMP/$name.txt" --output "$TMP/$name.pb.gz" ${REC_ARGS:-} >"$TMP/$name.log" 2>&1
	rc=$?
	kill "$jpid" 2>/dev/null
	wait "$jpid" 2>/dev/null
	return $rc
}
# attach NAME WARMUP SECONDS JAVA-OPTIONS...: JvmRatio from class path $CP
JRUN="" CP=$TMP
attach() {
	_n=$1 _w=$2 _s=$3
	shift 3
	recorded "$_n" "$_w" "$_s" "$@" -cp "$CP" JvmRatio $((_w + _s + 20))
}

# the workload's source lines: pick's call of a leaf, run's call of pick, main's of run
SRC=$TOP/tests/workloads/java/JvmRatio.java
PICK_LINE=$(grep -n 'return (i & 3)' "$SRC" | cut -d: -f1)
RUN_LINE=$(grep -n 'sink += pick(i)' "$SRC" | cut -d: -f1)
RUN_FIRST=$(grep -n 'static void run' "$SRC" | cut -d: -f1)
HOT_FIRST=$(grep -n 'static long hotThree' "$SRC" | cut -d: -f1)
HOT_LAST=$(grep -n 'static long coldOne' "$SRC" | cut -d: -f1)

# lines RAW METHOD: the source lines of METHOD's locations in a `go tool pprof -raw` listing
# (a line is FILE:LINE, or FILE:LINE:COLUMN in newer pprof; 0 is no line)
lines() {
	awk -v m="$2" '$4 == m && split($5, a, ":") >= 2 && a[1] == "JvmRatio.java" && a[2] > 0 { print a[2] }' "$1" |
		sort -un | tr '\n' ' '
}
# in_run LINES: run's lines are its loop's, at least one its call of pick
in_run() {
	awk -v l="$1" -v a="$RUN_FIRST" -v b="$RUN_LINE" 'BEGIN {
		n = split(l, x, " "); for (i = 1; i <= n; i++) { if (x[i] <= a || x[i] > b) exit 1;
		if (x[i] == b) f = 1 } exit !f }'
}
# inlined RAW: a compiled pc that is pick at its call of a leaf and, inlined there, run at its call of pick
inlined() {
	awk -v pl="JvmRatio.java:$PICK_LINE" -v rl="JvmRatio.java:$RUN_LINE" '
		{ split($5, f, ":"); at = f[1] ":" f[2] }
		$2 != "0x0" && $4 == "JvmRatio.pick" && at == pl { p[$2] = 1 }
		$2 != "0x0" && $4 == "JvmRatio.run" && at == rl { r[$2] = 1 }
		END { for (a in p) if (a in r) exit 0; exit 1 }' "$1"
}
# lines_checks NAME RAW: pick's and run's frames carry their lines, pick inlined into run
lines_checks() {
	check "$1: pick's frames are at line $PICK_LINE, its call of a leaf (lines: $(lines "$2" JvmRatio.pick))" \
		test "$(lines "$2" JvmRatio.pick)" = "$PICK_LINE "
	# (run's own samples, in its loop, are at the loop's line)
	check "$1: run's frames are at line $RUN_LINE, its call of pick, or in its loop (lines: $(lines "$2" JvmRatio.run))" \
		in_run "$(lines "$2" JvmRatio.run)"
	check "$1: pick inlined into run's compiled code is a frame of its own (same pc, two locations)" \
		inlined "$2"
	check "$1: the signature is the system name (JvmRatio.pick(J)J)" \
		grep -qF 's=0(JvmRatio.pick(J)J)' "$2"
}

# chain FILE REGEX: samples from the call stub through main to REGEX, the leaf
chain() { folded_sum "$1" ";JavaCalls::call_helper[^;]*;\\[jvm\\] StubRoutines \\(1\\)_\\[j\\];JvmRatio\\.main_\\[j\\];$2(;[^;]*_\\[k\\])* [0-9]+\$"; }

# --- tiered compilation (the default): C2 code of both leaves -----------------------
attach tiered 4 5
check "record --pid of java exits 0" test $? -eq 0
total=$(folded_total "$TMP/tiered.txt")
hot=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.hotThree_\[j\]')
cold=$(leaf_sum "$TMP/tiered.txt" 'JvmRatio\.coldOne_\[j\]')
whole=$(chain "$TMP/tiered.txt" 'JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\]')
echo "# tiered: hotThree=$hot coldOne=$cold of $total samples, $whole with the whole chain"
grep -vE 'JvmRatio\.(hotThree|coldOne)_\[j\]' "$TMP/tiered.txt" | sort -k2 -t' ' -rn | head -3 |
	sed 's/.*JavaCalls::call_helper[^;]*;//' | cut -c 1-240 | sed 's/^/# /'
check "the compiled leaves are named Class.method from the code cache in >= 90% of samples ($((hot + cold))/$total)" \
	most "$((hot + cold))" "$total" 500
check "compiled frames walked without frame pointers: call_helper -> call stub -> main -> run -> pick (inlined) -> leaf in >= 90% of samples ($whole/$total)" \
	most "$whole" "$total" 500
pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
check "hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-7)" \
	awk -v p="$pct" 'BEGIN { exit !(p >= 68 && p <= 82) }'
check "no JIT frame is left as [jit]+0x... or [jvm]+0x... ($(grep -cE '\[(jit|jvm)\]\+0x' "$TMP/tiered.txt") stacks)" \
	test "$(grep -cE '\[(jit|jvm)\]\+0x' "$TMP/tiered.txt")" -eq 0
if command -v go >/dev/null 2>&1; then
	go tool pprof -raw "$TMP/tiered.pb.gz" >"$TMP/tiered.raw" 2>&1
	check "pprof: the leaves' locations carry their class's source file, JvmRatio.java" \
		grep -qE ' JvmRatio\.hotThree JvmRatio\.java' "$TMP/tiered.raw"
	# (the mapping's number in a shell variable: an "xargs -I M" also replaced
	# an M that mktemp may put in $TMP)
	jvm_map=$(grep -E '^ +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ JvmRatio\.hotThree' "$TMP/tiered.raw" |
		head -1 | sed -E 's/.* M=([0-9]+) .*/\1/')
	check "pprof: their mapping is the [jvm] pseudo-mapping (M=$jvm_map)" \
		sh -c "[ -n '$jvm_map' ] && grep -qE '^ *$jvm_map: .*\\[jvm\\]' '$TMP/tiered.raw'"
	check "the profile counts the walker's frames, what was named and inlined, with no read error" \
		sh -c "grep -qE 'profleet\.jvm\.frames=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.named=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.inlined=[1-9]' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.scope_errors=0' '$TMP/tiered.raw' &&
			grep -qE 'profleet\.jvm\.read_errors=0' '$TMP/tiered.raw'"
	lines_checks tiered "$TMP/tiered.raw"
else
	skip "pprof: the leaves' locations carry their class's source file (no go tool pprof)"
	skip "pprof: their mapping is the [jvm] pseudo-mapping (no go tool pprof)"
	skip "the profile counts the walker's frames (no go tool pprof)"
	for i in 1 2 3 4; do skip "tiered: lines, inlining (no go tool pprof)"; done
fi

# --- OTLP: the same frames, lines and inlining, to a gRPC receiver ------------------
if command -v protoc >/dev/null 2>&1 && /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
	mkdir -p "$TMP/otlp"
	/usr/bin/python3 "$TOP/tests/tools/grpcsink.py" "$TMP/otlp" >"$TMP/otlp.port" 2>"$TMP/otlp.err" &
	gpid=$!
	for _ in $(seq 50); do [ -s "$TMP/otlp.port" ] && break; sleep 0.1; done
	REC_ARGS="--export otlp-grpc=http://127.0.0.1:$(cat "$TMP/otlp.port")"
	attach otlp 4 3
	rc=$?
	REC_ARGS=""
	kill "$gpid" 2>/dev/null
	protoc --decode=profleet.otlp.ExportProfilesServiceRequest --proto_path="$TOP/proto" \
		"$TOP/proto/otlp_profiles.proto" <"$TMP/otlp/req-1.bin" >"$TMP/otlp.txt" 2>&1
	# pick's function and a line at its call of a leaf, the [jvm] frame type
	check "OTLP: the JVM's profile decodes with JvmRatio.pick, its file, a line $PICK_LINE, frame type jvm (record $rc)" \
		sh -c "grep -qF '\"JvmRatio.pick\"' '$TMP/otlp.txt' && grep -qF '\"JvmRatio.java\"' '$TMP/otlp.txt' &&
			grep -qE '^ *line: $PICK_LINE\$' '$TMP/otlp.txt' && grep -qF 'string_value: \"jvm\"' '$TMP/otlp.txt'"
else
	skip "OTLP: no protoc or python3-grpcio"
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
	most "$whole" "$total" 200
pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
check "-Xint: hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-10)" \
	awk -v p="$pct" 'BEGIN { exit !(p >= 65 && p <= 85) }'
if command -v go >/dev/null 2>&1; then
	go tool pprof -raw "$TMP/xint.pb.gz" >"$TMP/xint.raw" 2>&1
	hl=$(lines "$TMP/xint.raw" JvmRatio.hotThree)
	# the leaf's line from the interrupted bcp (r13), its callers' from their frames' bcp
	check "-Xint: the interpreted leaf's samples spread over its body's lines, $HOT_FIRST..$HOT_LAST, >= 8 of them ($hl)" \
		awk -v l="$hl" -v a="$HOT_FIRST" -v b="$HOT_LAST" 'BEGIN { n = split(l, x, " ");
			for (i = 1; i <= n; i++) if (x[i] <= a || x[i] >= b) exit 1; exit !(n >= 8) }'
	check "-Xint: pick's frames are at line $PICK_LINE ($(lines "$TMP/xint.raw" JvmRatio.pick))" \
		test "$(lines "$TMP/xint.raw" JvmRatio.pick)" = "$PICK_LINE "
	check "-Xint: run's frames are at line $RUN_LINE, or in its loop ($(lines "$TMP/xint.raw" JvmRatio.run))" \
		in_run "$(lines "$TMP/xint.raw" JvmRatio.run)"
else
	for i in 1 2 3; do skip "-Xint: lines (no go tool pprof)"; done
fi

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
	attach "jdk$v" 6 5
	rc=$?
	JRUN="" JAVA=$host_java CP=$TMP
	rm -rf "$cls"
	[ "$rc" -eq 0 ] || tail -n 5 "$TMP/jdk$v.log" | sed 's/^/# /'
	check "record --pid of OpenJDK $v in a trixie chroot exits 0" test "$rc" -eq 0
	total=$(folded_total "$TMP/jdk$v.txt")
	hot=$(leaf_sum "$TMP/jdk$v.txt" 'JvmRatio\.hotThree_\[j\]')
	cold=$(leaf_sum "$TMP/jdk$v.txt" 'JvmRatio\.coldOne_\[j\]')
	whole=$(folded_sum "$TMP/jdk$v.txt" ';\[jvm\] StubRoutines[^;]*_\[j\];JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\](;[^;]*_\[k\])* [0-9]+$')
	echo "# OpenJDK $v: hotThree=$hot coldOne=$cold of $total samples, $whole with the whole chain"
	grep -vE 'JvmRatio\.(hotThree|coldOne)_\[j\]' "$TMP/jdk$v.txt" | sort -k2 -t' ' -rn | head -3 |
		sed 's/.*JavaCalls::call_helper[^;]*;//' | cut -c 1-240 | sed 's/^/# /'
	check "OpenJDK $v: call stub -> main -> run -> pick (inlined) -> leaf, each named, in >= 90% of samples ($whole/$total)" \
		most "$whole" "$total" 500
	pct=$(awk -v h="$hot" -v c="$cold" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
	check "OpenJDK $v: hotThree:coldOne is 3:1 (hot share $pct%, want 75 +-7)" \
		awk -v p="$pct" 'BEGIN { exit !(p >= 68 && p <= 82) }'
	if command -v go >/dev/null 2>&1; then
		go tool pprof -raw "$TMP/jdk$v.pb.gz" >"$TMP/jdk$v.raw" 2>&1
		lines_checks "OpenJDK $v" "$TMP/jdk$v.raw"
	else
		for i in 1 2 3 4; do skip "OpenJDK $v: lines, inlining (no go tool pprof)"; done
	fi
done

# --- Java -> C (JNI) -> Java, and a deep Java stack (tests/workloads/java/JvmJni.java) ---
JDK_HOME=${JAVA%/bin/java}
"$JAVAC" -d "$TMP" "$TOP/tests/workloads/java/JvmJni.java" >>"$TMP/javac.log" 2>&1 &&
	${CC:-cc} -O2 -fPIC -shared -I"$JDK_HOME/include" -I"$JDK_HOME/include/linux" \
		-o "$TMP/libjvmjni.so" "$TOP/tests/workloads/java/jvmjni.c" >>"$TMP/javac.log" 2>&1
check "the JNI workload and its native library build" test -s "$TMP/libjvmjni.so"
# jrun NAME WARMUP SECONDS MODE [DEPTH]: JvmJni recorded after WARMUP seconds
jrun() {
	recorded "$1" "$2" "$3" -Djava.library.path="$TMP" -cp "$TMP" JvmJni "$4" $(($2 + $3 + 20)) "${5:-0}"
}
jrun jni 4 4 jni
check "record --pid of java calling C calling Java exits 0" test $? -eq 0
DOWN=';JvmJni\.main_\[j\];JvmJni\.loop_\[j\];JvmJni\.down_\[j\];Java_JvmJni_down'
cspin=$(leaf_sum "$TMP/jni.txt" 'c_spin')
cspin_whole=$(folded_sum "$TMP/jni.txt" "$DOWN;c_spin(;[^;]*_\\[k\\])* [0-9]+\$")
up=$(leaf_sum "$TMP/jni.txt" 'JvmJni\.upLeaf_\[j\]')
up_whole=$(folded_sum "$TMP/jni.txt" "$DOWN;jni_CallStaticLongMethod;.*;JavaCalls::call_helper[^;]*;\\[jvm\\] StubRoutines[^;]*_\\[j\\];JvmJni\\.up_\\[j\\];JvmJni\\.upLeaf_\\[j\\](;[^;]*_\\[k\\])* [0-9]+\$")
echo "# JNI: c_spin=$cspin ($cspin_whole whole), upLeaf=$up ($up_whole whole)"
check "JNI: C called from Java: main -> loop -> down (the native method) -> Java_JvmJni_down -> c_spin in >= 90% of c_spin's samples ($cspin_whole/$cspin)" \
	most "$cspin_whole" "$cspin" 100
check "JNI: and back into Java: Java_JvmJni_down -> jni_CallStaticLongMethod -> (the JVM) -> call stub -> up -> upLeaf in >= 90% of upLeaf's samples ($up_whole/$up)" \
	most "$up_whole" "$up" 100

# 100 recursive calls: the whole stack, which fits a sample even with no inlining
jrun deep 4 3 deep 100
check "record --pid of a Java stack 100 calls deep exits 0" test $? -eq 0
deepest=$(awk '{ n = gsub(/JvmJni\.deep_\[j\]/, "&"); if (n > m) m = n } END { print m + 0 }' "$TMP/deep.txt")
whole=$(folded_sum "$TMP/deep.txt" ';JvmJni\.main_\[j\](;JvmJni\.deep_\[j\]){101};JvmJni\.deepLeaf_\[j\](;[^;]*_\[k\])* [0-9]+$')
total=$(folded_total "$TMP/deep.txt")
check "a stack 100 calls deep: main -> 101 deep frames -> deepLeaf in >= 90% of samples ($whole/$total, deepest $deepest)" \
	most "$whole" "$total" 200
# 1000: more frames than a sample holds (127): cut, counted, the leaf still named
jrun deeper 4 3 deep 1000
check "record --pid of a Java stack 1000 calls deep exits 0" test $? -eq 0
total=$(folded_total "$TMP/deeper.txt")
leaf=$(folded_sum "$TMP/deeper.txt" ';JvmJni\.deep_\[j\];JvmJni\.deepLeaf_\[j\](;[^;]*_\[k\])* [0-9]+$')
if command -v go >/dev/null 2>&1; then
	cut=$(go tool pprof -comments "$TMP/deeper.pb.gz" 2>/dev/null |
		sed -n 's/^profleet\.stack_errors\.user_truncated=//p')
	check "a stack 1000 calls deep: cut at the sample's room and counted (user_truncated=$cut), the leaf named in >= 90% ($leaf/$total)" \
		awk -v c="$leaf" -v t="$total" -v n="${cut:-0}" 'BEGIN { exit !(t >= 200 && c >= 0.9 * t && n >= 0.9 * t) }'
else
	skip "a stack 1000 calls deep: cut and counted (no go tool pprof to read the counters)"
fi

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
