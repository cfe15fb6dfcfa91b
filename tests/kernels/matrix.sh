#!/bin/sh
# The kernel tier: every kernel of the matrix (tests/kernels/fetch.sh: Debian's
# 5.10 to 7.x) booted under qemu (tests/kernels/boot.sh) runs
# tests/kernels/guest.sh with this build; the guest leaves files in
# $PROFLEET_BUILD/kernels/LABEL/ and the checks below read them. Prints TAP.
# Without qemu or the Debian archive: a failure on CI (CI=true), a skip elsewhere.
# Environment: PROFLEET_KERNELS (labels to run, default all), PROFLEET_BUILD,
# PROFLEET_KERNEL_CACHE, PROFLEET_BOOT_TIMEOUT (seconds per guest, default 600),
# PROFLEET_KERNELS_SECONDS (length of a guest's recordings, default 8).
. "$(dirname "$0")/../system/lib.sh"
HERE=$TOP/tests/kernels
RESULTS=$BUILD/kernels
# a guest's steps took up to 280 s under TCG in CI (each Node step about a minute);
# 600 s leaves room for a slow machine and still stops a hung guest
export PROFLEET_BOOT_TIMEOUT=${PROFLEET_BOOT_TIMEOUT:-600}

# what cannot run on this machine: a failure on CI, a skip elsewhere
missing() { if [ "${CI:-}" = true ]; then not_ok "$*"; else skip "$*"; fi; }
# share FILE REGEX: percentage of samples (weighted lines) matching REGEX
share() {
	awk -v re="$2" '{ t += $NF; if ($0 ~ re) m += $NF } END {
		if (t == 0) print "0.00"; else printf "%.2f", 100 * m / t }' "$1"
}
# at_least PCT MIN_PCT
at_least() { awk -v p="$1" -v m="$2" 'BEGIN { exit !(p + 0 >= m + 0) }'; }
# the exit status a guest step wrote, or "none"
rc_of() { cat "$1.rc" 2>/dev/null || echo none; }
# comment FILE LINES LABEL: the file's last lines as TAP comments
comment() { tail -n "$2" "$1" 2>/dev/null | sed "s/^/# $3: /"; }

# ---- the checks on one guest's files: one TAP line each ---------------------------
# step_ok LABEL OUTDIR STEP WHAT: the guest step's exit status, its log's end if not 0
step_ok() {
	if [ "$(rc_of "$2/$3")" = 0 ]; then
		ok "$1: $4"
	else
		comment "$2/$3.log" 15 "$1"
		not_ok "$1: $4 (status $(rc_of "$2/$3"))"
	fi
}

# the agent's own words on what it loaded: "kernel R: BPF programs loaded, ..."
check_load() { # label, outdir
	line=$(grep -m1 'BPF programs loaded' "$2/libc.log" 2>/dev/null)
	insns=$(echo "$line" | sed -n 's/.*(verified instructions: \(.*\))".*/\1/p')
	echo "# $1: verified instructions: ${insns:-?}"
	case $line in
	*"table-driven user stacks"*) ok "$1: the walker chain loads (table-driven user stacks)" ;;
	*) not_ok "$1: the walker chain loads (table-driven user stacks)" ;;
	esac
	check "$1: not degraded, no warning" sh -c "! grep -qE 'level=(warn|error)' '$2/libc.log'"
	cost=$(sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event.*/\1/p' "$2/libc.log")
	echo "# $1: BPF cost: ${cost:-?} ns per timer event (kernel.bpf_stats_enabled)"
}

check_libc() { # label, outdir
	step_ok "$1" "$2" libc "profleet-agent record --pid (libc_hot) exits 0"
	[ -f "$2/libc.txt" ] || { not_ok "$1: libc_hot: a folded profile"; return; }
	total=$(folded_total "$2/libc.txt")
	p=$(share "$2/libc.txt" '^libc_hot;_start;[^ ]*;main[; ]')
	echo "# $1: libc_hot: $p% of $total samples unwind from _start through main"
	if at_least "$p" 99; then
		ok "$1: libc_hot: >= 99% of samples reach main from _start ($p%)"
	else
		grep -vE '^libc_hot;_start;[^ ]*;main[; ]' "$2/libc.txt" | cut -c 1-200 | head -n 10 |
			sed "s/^/# $1: /"
		not_ok "$1: libc_hot: >= 99% of samples reach main from _start ($p%)"
	fi
	check "$1: libc_hot: enough samples ($total)" test "$total" -gt 500
}

check_deep() { # label, outdir
	step_ok "$1" "$2" deep "profleet-agent record --pid (recurse 200 deep) exits 0"
	full=$(awk '{ if (gsub(/;/, ";") >= 127) f += $NF; t += $NF } END { printf "%d/%d", f, t }' \
		"$2/deep.txt" 2>/dev/null)
	check "$1: a 200-deep stack fills all 127 frames in >= 95% of samples (${full:-none})" \
		awk -v s="$full" 'BEGIN { split(s, a, "/"); exit !(a[2] > 100 && a[1] >= 0.95 * a[2]) }'
}

check_python() { # label, outdir
	step_ok "$1" "$2" python "profleet-agent record --pid (python3.11 ratio.py) exits 0"
	total=$(folded_total "$2/python.txt" 2>/dev/null)
	# the whole chain down to loop, and Worker.* when the sample is in it (loop's
	# own work, its calls to time.monotonic and attribute lookups, is ~1% of samples)
	chain=$(folded_sum "$2/python.txt" ';_PyEval_EvalFrameDefault;ratio\.<module>_\[py\];ratio\.main_\[py\];ratio\.loop_\[py\](;ratio\.Worker\.(hot_three|cold_one)_\[py\])?( |;)' 2>/dev/null)
	echo "# $1: python: ${chain:-0} of ${total:-0} samples have <module> -> main -> loop (-> Worker.*)"
	check "$1: python3.11: >= 99% of samples name the Python chain (${chain:-0}/${total:-0})" \
		awk -v c="${chain:-0}" -v t="${total:-0}" 'BEGIN { exit !(t > 300 && c >= 0.99 * t) }'
}

check_ratio() { # label, outdir
	step_ok "$1" "$2" ratio "profleet-agent record -- ratio exits 0"
	hot=$(folded_sum "$2/ratio.txt" ';hot_three;burn ' 2>/dev/null)
	cold=$(folded_sum "$2/ratio.txt" ';cold_one;burn ' 2>/dev/null)
	pct=$(awk -v h="${hot:-0}" -v c="${cold:-0}" 'BEGIN { if (h + c == 0) print 0; else printf "%.1f", 100 * h / (h + c) }')
	check "$1: hot_three:cold_one is 3:1 (hot share $pct% of $((${hot:-0} + ${cold:-0})), want 75 +-5)" \
		awk -v p="$pct" -v n="$((${hot:-0} + ${cold:-0}))" 'BEGIN { exit !(n >= 300 && p >= 70 && p <= 80) }'
}

check_jvm() { # label, outdir
	if [ ! -r "$RESULTS/java/JvmRatio.class" ]; then
		missing "$1: the JVM step (no javac: tests/deps.sh installs openjdk-17-jdk-headless)"
		return
	fi
	step_ok "$1" "$2" jvm "profleet-agent record --pid (java -Xint JvmRatio) exits 0"
	total=$(folded_total "$2/jvm.txt" 2>/dev/null)
	chain=$(folded_sum "$2/jvm.txt" ';\[jvm\] StubRoutines \(1\)_\[j\];JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\];JvmRatio\.(hotThree|coldOne)_\[j\]( |;)' 2>/dev/null)
	echo "# $1: jvm: ${chain:-0} of ${total:-0} samples have the call stub -> main -> run -> pick -> leaf"
	check "$1: java -Xint: >= 90% of samples name the Java chain (${chain:-0}/${total:-0})" \
		awk -v c="${chain:-0}" -v t="${total:-0}" 'BEGIN { exit !(t > 300 && c >= 0.9 * t) }'
	# lines from the frames' bytecode pointers (the walker's reads at rbp-64 and of r13)
	if ! command -v go >/dev/null 2>&1; then
		missing "$1: java -Xint lines (no go tool pprof)"
		return
	fi
	go tool pprof -raw "$2/jvm.pb.gz" >"$2/jvm.raw" 2>&1
	src=$TOP/tests/workloads/java/JvmRatio.java
	pl=$(grep -n 'return (i & 3)' "$src" | cut -d: -f1)
	# (FILE:LINE, or FILE:LINE:COLUMN in newer pprof; 0 is no line)
	picks=$(awk '$4 == "JvmRatio.pick" && split($5, a, ":") >= 2 && a[2] > 0 { print a[2] }' "$2/jvm.raw" |
		sort -un | tr '\n' ' ')
	hot=$(awk '$4 == "JvmRatio.hotThree" && split($5, a, ":") >= 2 && a[2] > 0 { print a[2] }' "$2/jvm.raw" |
		sort -un | wc -l)
	check "$1: java -Xint: lines from the frames' bytecode pointers: pick at $pl (${picks:-none}), the leaf over >= 8 lines ($hot)" \
		sh -c "[ '$picks' = '$pl ' ] && [ '$hot' -ge 8 ]"
	# C1: compiled frames by their frame sizes, pick inlined into run's code
	step_ok "$1" "$2" jvmc1 "profleet-agent record --pid (java -XX:TieredStopAtLevel=1 JvmRatio) exits 0"
	total=$(folded_total "$2/jvmc1.txt" 2>/dev/null)
	# (C1 code is slow enough that pick, inlined, is a leaf of its own in some samples)
	chain=$(folded_sum "$2/jvmc1.txt" ';\[jvm\] StubRoutines \(1\)_\[j\];JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\](;JvmRatio\.(hotThree|coldOne)_\[j\])?( |;)' 2>/dev/null)
	go tool pprof -raw "$2/jvmc1.pb.gz" >"$2/jvmc1.raw" 2>&1
	# compiled: a pc that is both pick (inlined) and run, at their calls' lines
	rl=$(grep -n 'sink += pick(i)' "$src" | cut -d: -f1)
	inl=$(awk -v pl="JvmRatio.java:$pl" -v rl="JvmRatio.java:$rl" '
		{ split($5, f, ":"); at = f[1] ":" f[2] }
		$2 != "0x0" && $4 == "JvmRatio.pick" && at == pl { p[$2] = 1 }
		$2 != "0x0" && $4 == "JvmRatio.run" && at == rl { r[$2] = 1 }
		END { for (a in p) if (a in r) n++; print n + 0 }' "$2/jvmc1.raw")
	echo "# $1: jvmc1: ${chain:-0} of ${total:-0} samples have the chain; $inl compiled pcs are pick inlined into run"
	check "$1: java C1: >= 90% of samples name the Java chain, pick inlined into run's compiled code (${chain:-0}/${total:-0}, $inl pcs)" \
		awk -v c="${chain:-0}" -v t="${total:-0}" -v i="$inl" 'BEGIN { exit !(t > 300 && c >= 0.9 * t && i >= 1) }'
}

check_node() { # label, outdir
	if [ ! -r "$RESULTS/node-root" ]; then
		missing "$1: the Node.js steps (no sid root with nodejs: tests/python-root.sh)"
		return
	fi
	step_ok "$1" "$2" node "profleet-agent record --pid (node --jitless ratio.js) exits 0"
	total=$(folded_total "$2/node.txt" 2>/dev/null)
	chain=$(folded_sum "$2/node.txt" ';main_\[js\];run_\[js\];pick_\[js\];(hotThree|coldOne)_\[js\]( |;)' 2>/dev/null)
	echo "# $1: node: ${chain:-0} of ${total:-0} samples have main -> run -> pick -> leaf"
	check "$1: node --jitless: >= 90% of samples name the JavaScript chain (${chain:-0}/${total:-0})" \
		awk -v c="${chain:-0}" -v t="${total:-0}" 'BEGIN { exit !(t > 300 && c >= 0.9 * t) }'
	if command -v go >/dev/null 2>&1; then
		go tool pprof -raw "$2/node.pb.gz" >"$2/node.raw" 2>&1
		pl=$(grep -n 'return (i & 3)' "$TOP/tests/workloads/node/ratio.js" | cut -d: -f1)
		picks=$(awk '$4 == "pick" && split($5, a, ":") >= 2 && a[2] > 0 { print a[2] }' "$2/node.raw" |
			sort -un | tr '\n' ' ')
		check "$1: node --jitless: pick's line from its bytecode offset is $pl (${picks:-none})" \
			test "$picks" = "$pl "
	else
		missing "$1: node --jitless lines (no go tool pprof)"
	fi
	step_ok "$1" "$2" nodeopt "profleet-agent record --pid (node ratio.js) exits 0"
	total=$(folded_total "$2/nodeopt.txt" 2>/dev/null)
	# under TCG run's and main's own loops take a tenth of the time: a sample in them ends there
	chain=$(folded_sum "$2/nodeopt.txt" ';main_\[js\](;run_\[js\](;pick_\[js\](;(hotThree|coldOne)_\[js\])?)?)?( |;)' 2>/dev/null)
	full=$(folded_sum "$2/nodeopt.txt" ';main_\[js\];run_\[js\];pick_\[js\];(hotThree|coldOne)_\[js\]( |;)' 2>/dev/null)
	inl=$(gzip -dc "$2/nodeopt.pb.gz" 2>/dev/null | grep -ac 'profleet\.v8\.inlined=[1-9]')
	echo "# $1: nodeopt: ${chain:-0} of ${total:-0} samples are in main -> run -> pick -> leaf, ${full:-0} in the leaf"
	check "$1: node (JIT): >= 90% of samples are in main -> run -> pick -> leaf, >= half in a leaf, run and pick inlined (${chain:-0}/${full:-0}/${total:-0}, inlined: $inl)" \
		awk -v c="${chain:-0}" -v f="${full:-0}" -v t="${total:-0}" -v i="${inl:-0}" \
			'BEGIN { exit !(t > 300 && c >= 0.9 * t && f >= 0.5 * t && i >= 1) }'
}

check_guest() { # label, release, outdir
	check "$1: uname -r in the guest is $2" grep -qxF "$2" "$3/uname.log"
	check "$1: kernel BTF at /sys/kernel/btf/vmlinux" test "$(rc_of "$3/btf")" = 0
	check_load "$1" "$3"
	check_libc "$1" "$3"
	check_deep "$1" "$3"
	check_ratio "$1" "$3"
	check_python "$1" "$3"
	check_jvm "$1" "$3"
	check_node "$1" "$3"
}

run_kernel() { # label, release, kernel dir
	out=$RESULTS/$1
	rm -rf "$out"
	mkdir -p "$out"
	t0=$(date +%s)
	PROFLEET_BUILD=$BUILD sh "$HERE/boot.sh" "$3" "$out" -- sh "$HERE/guest.sh" "$out" \
		>"$RESULTS/$1.log" 2>&1
	rc=$?
	grep -v 'level=' "$RESULTS/$1.log" | sed "s/^/# $1: /"
	if [ "$rc" -ne 0 ]; then
		not_ok "$1 ($2): boots and runs guest.sh (boot.sh exit status $rc; $RESULTS/$1.log)"
		return
	fi
	ok "$1 ($2): boots and runs guest.sh ($(($(date +%s) - t0)) s)"
	check_guest "$1" "$2" "$out"
}

# ---- main ----------------------------------------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	missing "qemu-system-x86_64 is not installed (tests/deps.sh installs it)"
	finish
	exit
fi
for f in "$BUILD/bin/profleet-agent" "$BUILD/obj/bpf/oncpu.bpf.o" "$BUILD/workloads/nofp/libc_hot"; do
	[ -e "$f" ] || { not_ok "$f is built (make all)"; finish; exit; }
done

labels=${PROFLEET_KERNELS:-$(sh "$HERE/fetch.sh" --list | tr "\n" " ")}
# shellcheck disable=SC2086 # one word per label
sh "$HERE/fetch.sh" $labels >"$TMP/kernels" 2>"$TMP/fetch.log"
sed 's/^/# /' "$TMP/fetch.log"
mkdir -p "$RESULTS"
# the JVM step's class (a guest sees the host's root read-only, and $BUILD)
rm -rf "$RESULTS/java"
javac=/usr/lib/jvm/java-17-openjdk-amd64/bin/javac
[ -x "$javac" ] && "$javac" -d "$RESULTS/java" "$TOP/tests/workloads/java/JvmRatio.java" >"$TMP/javac.log" 2>&1
# the Node.js steps' root (Node 24) and script, read-only in the guest
rm -f "$RESULTS/node-root"
if nroot=$(sh "$TOP/tests/python-root.sh" sid nodejs 2>"$TMP/noderoot.log"); then
	mkdir -p "$nroot/tmp/profleet-node" &&
		cp "$TOP/tests/workloads/node/ratio.js" "$nroot/tmp/profleet-node/" &&
		echo "$nroot" >"$RESULTS/node-root"
fi
start=$(date +%s)
for l in $labels; do
	# shellcheck disable=SC2046 # release, directory
	set -- $(awk -v l="$l" '$1 == l { print $2, $3 }' "$TMP/kernels")
	if [ $# -ne 2 ]; then
		missing "$l: kernel not in the cache and not fetched from the Debian archive"
		continue
	fi
	run_kernel "$l" "$1" "$2"
done
echo "# kernels: $(($(date +%s) - start)) s for $labels"
finish
