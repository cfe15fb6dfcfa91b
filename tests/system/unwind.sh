#!/bin/sh
# Native unwinding without frame pointers: workloads built -O2 -fomit-frame-pointer
# whose hot paths run through Debian's libc and libstdc++ (which have none either)
# must unwind to main (or the thread's start) in >= 99% of samples. Prints TAP.
. "$(dirname "$0")/lib.sh"

if [ ! -r /sys/kernel/btf/vmlinux ] || [ "$(id -u)" -ne 0 ]; then
	skip "needs root and kernel BTF"
	finish
	exit 0
fi
NOFP=$WL/nofp

# share FILE REGEX: percentage of samples (weighted lines) matching REGEX
share() {
	awk -v re="$2" '{ t += $NF; if ($0 ~ re) m += $NF } END {
		if (t == 0) print "0.00"; else printf "%.2f", 100 * m / t }' "$1"
}
# at_least PCT MIN_PCT
at_least() { awk -v p="$1" -v m="$2" 'BEGIN { exit !(p + 0 >= m + 0) }'; }

record() { # name, workload args...
	name=$1
	shift
	"$AGENT" record --frequency 499 --output "$TMP/$name.txt" --output "$TMP/$name.pb.gz" \
		--top 0 --log-level info -- "$@" >"$TMP/$name.log" 2>&1
}

# --- C through libc: qsort + comparator, bsearch, memcpy ----------------------
record libc "$NOFP/libc_hot" 3
total=$(folded_total "$TMP/libc.txt")
p=$(share "$TMP/libc.txt" '^libc_hot;_start;[^ ]*;main;')
echo "# libc_hot: $p% of $total samples unwind from _start through main"
check "libc_hot: >= 99% of samples reach main from _start ($p%)" at_least "$p" 99
check "libc_hot: enough samples ($total)" test "$total" -gt 500
# every frame in the right order
bad=$(grep ';cmp_int' "$TMP/libc.txt" | grep ';main;' | grep -vcE ';main;do_(sort|search);(qsort|bsearch|msort|__qsort|__bsearch)[^;]*;.*cmp_int')
# (stacks that reached main: those that did not are the 99% check's)
check "libc_hot: cmp_int always under main;do_sort|do_search;qsort|bsearch ($bad lines wrong)" test "$bad" -eq 0
check "libc_hot: qsort's comparator seen" grep -q ';qsort[^;]*;.*cmp_int' "$TMP/libc.txt"
check "libc_hot: bsearch seen" grep -q ';main;do_search;bsearch' "$TMP/libc.txt"
check "libc_hot: memcpy under do_copy seen" grep -qE ';main;do_copy;[^;]*mem(cpy|move)' "$TMP/libc.txt"

# --- C++: std::sort with a lambda, virtual calls, exceptions ------------------
record cxx "$NOFP/cxx" 6
total=$(folded_total "$TMP/cxx.txt")
p=$(share "$TMP/cxx.txt" '^cxx;_start;[^ ]*;main;')
echo "# cxx: $p% of $total samples unwind from _start through main"
check "cxx: >= 99% of samples reach main from _start ($p%)" at_least "$p" 99
check "cxx: std::sort with the lambda" grep -qE ';main;work::sort_step\(.*std::.*sort.*lambda' "$TMP/cxx.txt"
check "cxx: virtual calls" grep -qE ';main;work::virtual_step\([^;]*;work::(Square|Tri)::area' "$TMP/cxx.txt"
check "cxx: exceptions unwound through libgcc/libstdc++" \
	grep -qE ';main;work::exception_step\(\);.*;__cxa_throw;_Unwind_RaiseException' "$TMP/cxx.txt"

# --- 60-deep recursion ----------------------------------------------------------
record rec "$NOFP/recurse" 3
total=$(folded_total "$TMP/rec.txt")
p=$(share "$TMP/rec.txt" '^recurse;_start;[^ ]*;main;')
deep=$(awk '/;leaf_work/ { n = gsub(/;recurse;|;recurse /, "&"); s += $NF; if (n >= 61 || gsub(/recurse/, "&") >= 61) d += $NF } END { printf "%d/%d", d, s }' "$TMP/rec.txt")
echo "# recurse: $p% reach main; samples in leaf_work with all 61 recurse frames: $deep"
check "recurse: >= 99% of samples reach main ($p%)" at_least "$p" 99
check "recurse: leaf_work stacks hold all 61 recurse frames ($deep)" \
	awk -v d="$deep" 'BEGIN { split(d, a, "/"); exit !(a[2] > 100 && a[1] >= 0.99 * a[2]) }'

# --- threads ----------------------------------------------------------------------
record mt "$NOFP/mt" 3
total=$(folded_total "$TMP/mt.txt")
p=$(share "$TMP/mt.txt" '^mt;(_start;[^ ]*;main;|(__)?clone3?;start_thread;mt_worker;)')
echo "# mt: $p% of $total samples reach main or clone3;start_thread;mt_worker"
check "mt: >= 99% of samples reach the thread start or main ($p%)" at_least "$p" 99

# --- signal frames: through the kernel's signal frame back to the interrupted code --
record sig "$NOFP/sig" 3
inh=$(folded_sum "$TMP/sig.txt" ';handler_burn( |;)')
full=$(folded_sum "$TMP/sig.txt" '^sig;_start;[^ ]*;main;[^ ]*;on_prof;handler_burn( |;)')
echo "# sig: $full of $inh samples in the signal handler unwind through the signal frame to _start"
check "signal handler samples unwind through __restore_rt to main ($full of $inh)" \
	awk -v f="$full" -v t="$inh" 'BEGIN { exit !(t > 50 && f >= 0.95 * t) }'

# --- the frame-pointer path where tables are missing ------------------------------
"$AGENT" record --unwinder fp --frequency 499 --output "$TMP/fp.txt" --top 0 \
	-- "$WL/chain" 2 >"$TMP/fp.log" 2>&1
in_c=$(folded_sum "$TMP/fp.txt" ';chain_c( |;)')
full=$(folded_sum "$TMP/fp.txt" ';main;chain_a;chain_b;chain_c( |;)')
check "--unwinder fp still walks frame-pointer code ($full of $in_c)" \
	awk -v f="$full" -v t="$in_c" 'BEGIN { exit !(t > 100 && f >= 0.95 * t) }'

# --- Go, stripped: names from .gopclntab --------------------------------------
if [ -x "$WL/go/hot-stripped" ]; then
	check "the Go workload really is stripped (no .symtab)" sh -c "! readelf -SW '$WL/go/hot-stripped' | grep -q '\.symtab'"
	"$AGENT" record --frequency 199 --output "$TMP/go.txt" --top 0 -- "$WL/go/hot-stripped" 2 \
		>"$TMP/go.log" 2>&1
	total=$(folded_total "$TMP/go.txt")
	hot=$(folded_sum "$TMP/go.txt" ';runtime.main;main.main;(main.outer;)?main.hotLoop( |;)')
	echo "# go: $hot of $total samples named runtime.main;main.main;...;main.hotLoop"
	check "stripped Go binary: function names from .gopclntab ($hot of $total)" \
		awk -v h="$hot" -v t="$total" 'BEGIN { exit !(t > 100 && h >= 0.9 * t) }'
else
	skip "go not installed"
fi

# --- deeper than the sample holds: 127 frames through the chain of tail calls ----
record deep "$NOFP/recurse" 2 200
full=$(awk '{ if (gsub(/;/, ";") >= 127) f += $NF; t += $NF } END { printf "%d/%d", f, t }' "$TMP/deep.txt")
echo "# recurse 200 deep: samples with 127 user frames: $full"
check "a 200-deep stack fills all 127 frames in >= 95% of samples ($full)" \
	awk -v s="$full" 'BEGIN { split(s, a, "/"); exit !(a[2] > 300 && a[1] >= 0.95 * a[2]) }'
if command -v go >/dev/null 2>&1; then
	go tool pprof -comments "$TMP/deep.pb.gz" >"$TMP/deep-comments.txt" 2>&1
	check "a 200-deep stack is counted as truncated, never as out of tail calls" \
		sh -c "grep -q '^profleet.unwind.tail_call_budget=0\$' '$TMP/deep-comments.txt' &&
			grep -qE '^profleet.stack_errors.user_truncated=[1-9]' '$TMP/deep-comments.txt'"
fi

# --- counters in the profile -------------------------------------------------------
if command -v go >/dev/null 2>&1; then
	go tool pprof -comments "$TMP/libc.pb.gz" >"$TMP/comments.txt" 2>&1
	check "unwind counters are in the profile" grep -q 'profleet.unwind.complete=' "$TMP/comments.txt"
	check "the profile names the kernel and the table-driven unwinder, not degraded" \
		sh -c "grep -q '^profleet.kernel=$(uname -r)\$' '$TMP/comments.txt' &&
			grep -q '^profleet.unwinder=dwarf\$' '$TMP/comments.txt' &&
			! grep -q 'profleet.degraded' '$TMP/comments.txt'"
fi

# --- a kernel that refuses the walker chain: frame pointers, said once -------------
# PROFLEET_FAULT_INJECT=verifier (tests only) makes walk_native read out of bounds:
# a real refusal by this kernel's verifier.
PROFLEET_FAULT_INJECT=verifier "$AGENT" record --frequency 99 --output "$TMP/deg.pb.gz" \
	--output "$TMP/deg.txt" --top 0 -- "$WL/chain" 1 >"$TMP/deg.log" 2>&1
rc=$?
check "refused walker chain: the recording still succeeds (exit $rc)" test "$rc" -eq 0
check "refused walker chain: one warning with the verifier's reason" \
	sh -c "[ \$(grep -c 'level=warn' '$TMP/deg.log') -eq 1 ] &&
		grep -q \"degraded: .*refused the table-driven unwinder (prog 'walk_native': verifier: .*): user stacks from frame pointers only\" '$TMP/deg.log'"
check "refused walker chain: no libbpf chatter at the default level" \
	sh -c "! grep -qE 'libbpf|Retrying|LOAD LOG' '$TMP/deg.log'"
check "refused walker chain: frame-pointer stacks still recorded" \
	grep -q ';main;' "$TMP/deg.txt"
if command -v go >/dev/null 2>&1; then
	go tool pprof -comments "$TMP/deg.pb.gz" >"$TMP/deg-comments.txt" 2>&1
	check "refused walker chain: the profile says degraded and unwinder=fp" \
		sh -c "grep -q '^profleet.degraded=.*refused the table-driven unwinder' '$TMP/deg-comments.txt' &&
			grep -q '^profleet.unwinder=fp\$' '$TMP/deg-comments.txt'"
fi
# --- not allowed to load BPF: one line that says so, no fallback -----------------
# (a copy of the agent in a directory that nobody can reach, whatever the checkout's)
if id nobody >/dev/null 2>&1; then
	np=$(mktemp -d /tmp/profleet-nobody.XXXXXX)
	chmod 755 "$np"
	cp "$AGENT" "$np/profleet-agent"
	su nobody -s /bin/sh -c "'$np/profleet-agent' record --format folded --output /dev/null -- /bin/true" \
		>"$TMP/eperm.log" 2>&1
	rc=$?
	rm -rf "$np"
	check "without privileges: exit status 1 ($rc) and one line naming it" \
		sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$TMP/eperm.log') -eq 1 ] &&
			grep -q 'not allowed to load BPF programs' '$TMP/eperm.log'"
else
	skip "without privileges: no user nobody"
fi
# --- the table cache: a second run reads the tables the first compiled -------
tc_record() { # name
	"$AGENT" record --frequency 499 --table-cache "$TMP/tables" --output "$TMP/$1.txt" \
		--output "$TMP/$1.pb.gz" --top 0 -- "$NOFP/cxx" 2 >"$TMP/$1.log" 2>&1
}
if command -v go >/dev/null 2>&1; then
	tc_record tc1 && tc_record tc2
	go tool pprof -comments "$TMP/tc1.pb.gz" >"$TMP/tc1-comments.txt" 2>&1
	go tool pprof -comments "$TMP/tc2.pb.gz" >"$TMP/tc2-comments.txt" 2>&1
	echo "# $(grep table_cache "$TMP/tc1-comments.txt") / $(grep table_cache "$TMP/tc2-comments.txt")"
	check "table cache: the first run writes the tables it compiled" \
		grep -qE '^profleet.unwind.table_cache=hits [0-9]+ misses [1-9][0-9]* written [1-9]' "$TMP/tc1-comments.txt"
	check "table cache: the second run reads them (hits, nothing written)" \
		grep -qE '^profleet.unwind.table_cache=hits [1-9][0-9]* misses [0-9]+ written 0 rejected 0' "$TMP/tc2-comments.txt"
	p=$(share "$TMP/tc2.txt" '^cxx;_start;[^ ]*;main;')
	check "table cache: tables from the cache unwind as well (cxx: $p% reach main)" at_least "$p" 99
else
	skip "table cache: go tool pprof missing"
fi
finish
