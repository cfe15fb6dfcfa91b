#!/bin/sh
# The V8 walker and names (agent/v8, walk_v8 in bpf/oncpu.bpf.c): Debian's
# Node.js 18 (bookworm), 20 (trixie) and 24 (sid), each in a root file system of
# its suite (tests/python-root.sh) run with chroot, running a known call chain
# (tests/workloads/node/ratio.js) with no flags, recorded once TurboFan has
# compiled main with run and pick inlined (each a frame of its own, at its
# call's line, from the code's inlining tables); and in V8's interpreter alone
# (--jitless), where every frame has its bytecode offset, so its line and column. Then what services run: async functions, a
# crypto call into OpenSSL, a worker thread (tests/workloads/node/mixed.js).
# Prints TAP.
. "$(dirname "$0")/lib.sh"

if [ ! -r /sys/kernel/btf/vmlinux ] || [ "$(id -u)" -ne 0 ]; then
	skip "needs root and kernel BTF"
	finish
	exit 0
fi

SRC=$TOP/tests/workloads/node/ratio.js
PICK_LINE=$(grep -n 'return (i & 3)' "$SRC" | cut -d: -f1)
RUN_LINE=$(grep -n 'sink = (sink + pick(i))' "$SRC" | cut -d: -f1)
HOT_FIRST=$(grep -n '^function hotThree' "$SRC" | cut -d: -f1)
HOT_LAST=$(grep -n '^function coldOne' "$SRC" | cut -d: -f1)
FLAT_FIRST=$(grep -n 'a = (a + i) | 0;' "$TOP/tests/workloads/node/flat.js" | cut -d: -f1)

# most PART TOTAL MIN: PART is at least 90% of TOTAL, and TOTAL at least MIN
most() { awk -v c="$1" -v t="$2" -v m="$3" 'BEGIN { exit !(t >= m && c >= 0.9 * t) }'; }
# share A B LO HI: A / (A + B) in [LO, HI]
share() { awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(a + b > 0 && a / (a + b) >= lo && a / (a + b) <= hi) }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + b > 0) printf "%.1f", 100 * a / (a + b); else print "n/a" }'; }

# recorded NAME WARMUP SECONDS NODE-ARGUMENTS...: node in $ROOT with them, recorded
# with --pid after WARMUP seconds, killed after
recorded() {
	name=$1 warm=$2 secs=$3
	shift 3
	env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$ROOT" node "$@" >"$TMP/$name.out" 2>&1 &
	npid=$!
	sleep "$warm"
	# shellcheck disable=SC2086 # $REC_ARGS: more options, split
	"$AGENT" record --pid "$npid" --duration "$secs" --frequency 199 --top 0 --log-level info \
		--output "$TMP/$name.txt" --output "$TMP/$name.pb.gz" ${REC_ARGS:-} >"$TMP/$name.log" 2>&1
	rc=$?
	kill "$npid" 2>/dev/null
	wait "$npid" 2>/dev/null
	return $rc
}

# js_chain FILE REGEX: samples with main's frame, then REGEX, then what the leaf called
# (a builtin, a bytecode handler's stub, the kernel)
js_chain() { folded_sum "$1" ";main_\\[js\\];$2(;[^;]*)* [0-9]+\$"; }
# leaf FILE NAME: samples whose innermost frame of the workload's own is NAME's (what
# it called, a builtin like Math.imul, a stub, the kernel, counts as its own)
leaf() {
	awk -v want="$2_[js]" '{ n = split($0, f, ";"); sub(/ [0-9]+$/, "", f[n]); last = ""
		for (i = 1; i <= n; i++) if (f[i] ~ /^(main|run|pick|hotThree|coldOne)_\[js\]$/) last = f[i]
		if (last == want) s += $NF } END { print s + 0 }' "$1"
}

# lines RAW FUNCTION: the source lines of FUNCTION's locations in ratio.js (pprof -raw)
lines() {
	awk -v m="$2" '$4 == m && split($5, a, ":") >= 2 && a[1] ~ /ratio\.js$/ && a[2] > 0 { print a[2] }' "$1" |
		sort -un | tr '\n' ' '
}
# in_run LINES: run's call of pick, and maybe its loop's line or its entry's (a sample in
# run itself)
in_run() {
	awk -v l="$1" -v a="$((RUN_LINE - 2))" -v b="$RUN_LINE" 'BEGIN { n = split(l, x, " ")
		for (i = 1; i <= n; i++) { if (x[i] < a || x[i] > b) exit 1; if (x[i] == b) f = 1 }
		exit !f }'
}

# body LINES FIRST LAST: every line in [FIRST, LAST) (FIRST: the function's entry), and
# at least 3 of them in its body
body() {
	awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { n = split(l, x, " ")
		for (i = 1; i <= n; i++) { if (x[i] < a || x[i] >= b) exit 1; if (x[i] > a) k++ }
		exit !(k >= 3) }'
}

have_pprof=false
command -v go >/dev/null 2>&1 && have_pprof=true

for v in bookworm:18 trixie:20 sid:24; do
	suite=${v%%:*} major=${v#*:}
	if ! ROOT=$(sh "$TOP/tests/python-root.sh" "$suite" nodejs 2>"$TMP/root.err"); then
		sed 's/^/# /' "$TMP/root.err"
		skip "no $suite root file system with nodejs (tests/python-root.sh)"
		continue
	fi
	mkdir -p "$ROOT/tmp/profleet-node"
	cp "$TOP"/tests/workloads/node/*.js "$ROOT/tmp/profleet-node/"
	got=$(chroot "$ROOT" node --version 2>/dev/null)
	check "Node $major: $suite's node runs ($got)" test "${got%%.*}" = "v$major"

	# --- no flags: interpreted, then optimized ----------------------------------------
	recorded "n$major" 4 5 /tmp/profleet-node/ratio.js 30
	check "Node $major: record --pid exits 0" test $? -eq 0
	f=$TMP/n$major.txt
	total=$(folded_total "$f")
	chain=$(js_chain "$f" "run_\\[js\\];pick_\\[js\\];(hotThree|coldOne)_\\[js\\]")
	hot=$(leaf "$f" hotThree) cold=$(leaf "$f" coldOne)
	echo "# Node $major: $chain of $total samples have main -> run -> pick -> leaf; hotThree $hot, coldOne $cold ($(pct "$hot" "$cold")%)"
	check "Node $major: >= 90% of >= 500 samples have main -> run -> pick -> leaf, run and pick inlined by TurboFan ($chain/$total)" \
		most "$chain" "$total" 500
	check "Node $major: hotThree has 3 of each 4 leaf samples, 70-80% ($(pct "$hot" "$cold")%)" \
		share "$hot" "$cold" 0.70 0.80
	check "Node $major: the profile counts the walker's JavaScript frames (profleet.v8.frames > 0)" \
		sh -c "gzip -dc '$TMP/n$major.pb.gz' | grep -aq 'profleet.v8.frames=[1-9]'"
	check "Node $major: the profile counts the inlined frames it named (profleet.v8.inlined > 0)" \
		sh -c "gzip -dc '$TMP/n$major.pb.gz' | grep -aq 'profleet.v8.inlined=[1-9]'"
	if $have_pprof; then
		go tool pprof -raw "$TMP/n$major.pb.gz" >"$TMP/n$major.raw" 2>&1
		check "Node $major: inlined pick is at line $PICK_LINE, its call of a leaf (lines: $(lines "$TMP/n$major.raw" pick))" \
			test "$(lines "$TMP/n$major.raw" pick)" = "$PICK_LINE "
		check "Node $major: inlined run is at line $RUN_LINE, its call of pick, or its loop's or entry's (lines: $(lines "$TMP/n$major.raw" run))" \
			in_run "$(lines "$TMP/n$major.raw" run)"
		check "Node $major: optimized hotThree's frames are on >= 3 lines of its body (lines: $(lines "$TMP/n$major.raw" hotThree))" \
			body "$(lines "$TMP/n$major.raw" hotThree)" "$HOT_FIRST" "$HOT_LAST"
	fi

	# --- the interpreter alone: every frame's bytecode offset, its line --------------
	recorded "j$major" 3 5 --jitless /tmp/profleet-node/ratio.js 30
	check "Node $major --jitless: record --pid exits 0" test $? -eq 0
	f=$TMP/j$major.txt
	total=$(folded_total "$f")
	chain=$(js_chain "$f" "run_\\[js\\];pick_\\[js\\];(hotThree|coldOne)_\\[js\\]")
	echo "# Node $major --jitless: $chain of $total samples have main -> run -> pick -> leaf"
	check "Node $major --jitless: >= 90% of >= 500 samples have main -> run -> pick -> leaf ($chain/$total)" \
		most "$chain" "$total" 500
	if $have_pprof; then
		go tool pprof -raw "$TMP/j$major.pb.gz" >"$TMP/j$major.raw" 2>&1
		check "Node $major --jitless: pick's frames are at line $PICK_LINE, its call of a leaf (lines: $(lines "$TMP/j$major.raw" pick))" \
			test "$(lines "$TMP/j$major.raw" pick)" = "$PICK_LINE "
		check "Node $major --jitless: run's frames are at line $RUN_LINE, its call of pick, or its loop's or entry's (lines: $(lines "$TMP/j$major.raw" run))" \
			in_run "$(lines "$TMP/j$major.raw" run)"
		check "Node $major --jitless: hotThree's frames are on >= 3 lines of its body (lines: $(lines "$TMP/j$major.raw" hotThree))" \
			body "$(lines "$TMP/j$major.raw" hotThree)" "$HOT_FIRST" "$HOT_LAST"
	else
		skip "Node $major --jitless: lines (no go tool pprof)"
	fi

	# --- the interrupted frame's own line: a leaf that calls nothing (its frame's slot
	# is written at calls only; its offset is in the interpreter's register) ---------
	recorded "f$major" 2 3 --jitless /tmp/profleet-node/flat.js 30
	if $have_pprof; then
		go tool pprof -raw "$TMP/f$major.pb.gz" >"$TMP/f$major.raw" 2>&1
		fl=$(awk '$4 == "flat" && split($5, a, ":") >= 2 && a[1] ~ /flat\.js$/ { print a[2] }' "$TMP/f$major.raw" |
			sort -un | tr '\n' ' ')
		check "Node $major --jitless: a leaf that calls nothing is on >= 3 of its loop's 4 lines, $FLAT_FIRST-$((FLAT_FIRST + 3)) (lines: $fl)" \
			awk -v l="$fl" -v a="$FLAT_FIRST" 'BEGIN { n = split(l, x, " ")
				for (i = 1; i <= n; i++) if (x[i] >= a && x[i] <= a + 3) k++; exit !(k >= 3) }'
	else
		skip "Node $major --jitless: a leaf's lines (no go tool pprof)"
	fi

	# --- a class constructor (a function type of its own) on the stack ---------------
	recorded "c$major" 2 3 --jitless /tmp/profleet-node/ctor.js 30
	total=$(folded_total "$TMP/c$major.txt")
	ctor=$(folded_sum "$TMP/c$major.txt" ";make_\\[js\\](;[^;]*)*;Hot_\\[js\\](;[^;]*)* [0-9]+\$")
	check "Node $major --jitless: a class constructor's frame is named, under its caller ($ctor of $total)" \
		most "$ctor" "$total" 300
done

# --- columns, in pprof's Line (field 3) ----------------------------------------------
if command -v protoc >/dev/null 2>&1 && [ -s "$TMP/j24.pb.gz" ]; then
	gzip -dc "$TMP/j24.pb.gz" | protoc --decode=perftools.profiles.Profile -I "$TOP/proto" \
		"$TOP/proto/profile.proto" >"$TMP/j24.decoded" 2>&1
	check "Node 24 --jitless: pprof's lines carry columns" grep -q 'column: [1-9]' "$TMP/j24.decoded"
else
	skip "columns (no protoc, or no Node 24)"
fi

# --- OTLP over gRPC: the frame type, a line and its column --------------------------
if [ -n "${ROOT:-}" ] && command -v protoc >/dev/null 2>&1 && /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
	mkdir -p "$TMP/otlp"
	/usr/bin/python3 "$TOP/tests/tools/grpcsink.py" "$TMP/otlp" >"$TMP/otlp.port" 2>"$TMP/otlp.err" &
	gpid=$!
	for _ in $(seq 50); do [ -s "$TMP/otlp.port" ] && break; sleep 0.1; done
	REC_ARGS="--export otlp-grpc=http://127.0.0.1:$(cat "$TMP/otlp.port")" \
		recorded otlp 3 3 /tmp/profleet-node/ratio.js 30
	rc=$?
	kill "$gpid" 2>/dev/null
	protoc --decode=profleet.otlp.ExportProfilesServiceRequest --proto_path="$TOP/proto" \
		"$TOP/proto/otlp_profiles.proto" <"$TMP/otlp/req-1.bin" >"$TMP/otlp.txt" 2>&1
	# a Line with line PICK_LINE and, next to it, its column
	check "OTLP: the profile decodes with pick, its script, line $PICK_LINE with its column, frame type v8js (record $rc)" \
		sh -c "grep -qF '\"pick\"' '$TMP/otlp.txt' && grep -qF 'ratio.js\"' '$TMP/otlp.txt' &&
			awk '/^ *line: $PICK_LINE\$/ { l = NR } /^ *column: [1-9]/ && l && NR == l + 1 { f = 1 } END { exit !f }' '$TMP/otlp.txt' &&
			grep -qF 'string_value: \"v8js\"' '$TMP/otlp.txt'"
else
	skip "OTLP: no Node root, protoc or python3-grpcio"
fi

# --- async functions, a crypto call, a worker thread (the last root: Node 24) -------
if [ -n "${ROOT:-}" ]; then
	recorded mixed 3 5 /tmp/profleet-node/mixed.js 30
	check "mixed: record --pid exits 0" test $? -eq 0
	f=$TMP/mixed.txt
	total=$(folded_total "$f")
	worker=$(folded_sum "$f" ";workerHot_\\[js\\](;[^;]*)* [0-9]+\$")
	async=$(folded_sum "$f" ";asyncStep_\\[js\\](;[^;]*)* [0-9]+\$")
	# C++ frames hold spaces ("void node::crypto::Decode<...>(...)"): only ";" splits frames
	crypto=$(folded_sum "$f" "(^|;)asyncLoop_\\[js\\];hashWork_\\[js\\];(.*;)?(SHA256_[A-Za-z_]*|libcrypto\\.so[^;]*)(;[^;]*)* [0-9]+\$")
	echo "# mixed: $total samples: the worker's workerHot $worker, asyncStep $async, asyncLoop over OpenSSL $crypto"
	check "mixed: the worker thread's samples are in workerHot, named ($worker of $total)" \
		awk -v a="$worker" -v t="$total" 'BEGIN { exit !(a >= 0.3 * t) }'
	check "mixed: an async function's synchronous part is named, in >= 2% of the samples (asyncStep: $async of $total)" \
		awk -v a="$async" -v t="$total" 'BEGIN { exit !(t > 0 && a >= 0.02 * t) }'
	check "mixed: a crypto call: OpenSSL's frames under asyncLoop and hashWork, in >= 5% of the samples ($crypto of $total)" \
		awk -v a="$crypto" -v t="$total" 'BEGIN { exit !(t > 0 && a >= 0.05 * t) }'
else
	skip "mixed (no Node root)"
fi

# --- --nodejs off: V8's code walked natively, no JavaScript frame ------------------------
if [ -n "$ROOT" ]; then
	REC_ARGS="--nodejs off" recorded off 3 3 /tmp/profleet-node/ratio.js 30
	check "--nodejs off: record --pid exits 0" test $? -eq 0
	total=$(folded_total "$TMP/off.txt")
	check "--nodejs off: $total samples, none with a JavaScript frame" \
		sh -c "[ $total -gt 100 ] && ! grep -q '_\\[js\\]' '$TMP/off.txt'"
fi

finish
