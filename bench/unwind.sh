#!/bin/sh
# Unwinding completeness and cost on code without frame pointers, against peers
# measured in the same run: profleet (.eh_frame tables walked in BPF),
# perf record --call-graph dwarf (copies 8 KiB of stack per sample), perf record -g
# (frame pointers) and bpftrace's ustack (frame pointers).
#
# Prints, per workload and profiler: % of samples whose stack reaches main (or the
# thread start), mean depth; for profleet also the per-sample BPF cost
# (kernel.bpf_stats_enabled), agent CPU and peak RSS, BPF map memory, and the
# time to load the unwind tables of a new executable. Numbers, never pass/fail.
#
# Then, per kernel of the kernel tier's matrix (Debian's 5.10 to 7.x booted under
# qemu, tests/kernels/) and this host's kernel: verified instructions per program,
# BPF ns per timer event and per sample, and completeness, beside perf --call-graph
# dwarf on this host (BENCH_KERNELS=0 skips the guests).
#
#   bench/unwind.sh [SECONDS] [HZ]     (defaults: 5 s, 99 Hz)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
NOFP=$top/build/workloads/nofp
SECS=${1:-5}
HZ=${2:-99}
tmp=$(mktemp -d /tmp/profleet-unwind.XXXXXX)
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
trap 'rm -rf "$tmp"; sysctl -q kernel.bpf_stats_enabled="$stats_was" 2>/dev/null || true' EXIT
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$AGENT" ] || { echo "bench: run 'make' first" >&2; exit 1; }
clk_tck=$(getconf CLK_TCK)

# perf script / bpftrace output -> "complete% mean_depth samples"
perf_stats() { # file, regex of a complete stack's outermost wanted frame
	awk -v re="$2" '
		/^[^ \t]/ { if (n) { t++; d += depth; if (hit) c++ } n = 1; depth = 0; hit = 0; next }
		/^[ \t]+[0-9a-f]+ / { depth++; if ($0 ~ re) hit = 1; next }
		END { if (n) { t++; d += depth; if (hit) c++ }
			if (t) printf "%.1f%% %.1f %d", 100 * c / t, d / t, t; else print "- - 0" }' "$1"
}
bpftrace_stats() { # file, regex
	awk -v re="$2" '
		/^@\[/ { depth = 0; hit = 0; next }
		/^\]: [0-9]+/ { n = $2; t += n; d += depth * n; if (hit) c += n; next }
		/^[ \t]+/ { depth++; if ($0 ~ re) hit = 1 }
		END { if (t) printf "%.1f%% %.1f %d", 100 * c / t, d / t, t; else print "- - 0" }' "$1"
}
folded_stats() { # file, regex
	awk -v re="$2" '{ n = $NF; t += n; line = $0; sub(/ [0-9]+$/, "", line)
		k = gsub(/;/, ";", line); gsub(/_\[k\]/, "", line); d += k * n
		if ($0 ~ re) c += n }
		END { if (t) printf "%.1f%% %.1f %d", 100 * c / t, d / t, t; else print "- - 0" }' "$1"
}

printf '%-10s %-22s %10s %10s %8s %10s %10s %10s %14s\n' workload profiler complete depth samples \
	"BPF ns" "agent CPU" "agent RSS" "maps unw/all"
sysctl -q kernel.bpf_stats_enabled=1
for w in libc_hot cxx mt; do
	case $w in
	mt) want='(main|start_thread)'; fwant=';(main|start_thread);' ;;
	*) want='[ \t]main\+|[ \t]main$| main \(|^main$'; fwant=';main;' ;;
	esac

	# profleet
	"$AGENT" record --frequency "$HZ" --top 0 --progress off --output "$tmp/p.txt" \
		--output "$tmp/p.pb.gz" -- "$NOFP/$w" "$SECS" >"$tmp/p.log" 2>&1 &
	ap=$!
	sleep "$(awk -v s="$SECS" 'BEGIN { print (s > 1 ? s - 1 : s / 2) }')"
	bpf=$(bpftool prog show 2>/dev/null | awk '/on_cpu_sample/ { for (i = 1; i <= NF; i++) {
		if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
		END { if (c > 0) printf "%.0f", t / c; else print "-" }')
	# unwind maps (the rows array and the LPM trie) / all of the agent's maps
	mapmem=$(bpftool map show 2>/dev/null | awk '/name (exe_mappings|unwind_rows|samples|state|walkers|counters|pids|targets|phase|task_events)/ {
			want = 1; unw = ($0 ~ /exe_mappings|unwind_rows/); next }
		want && /memlock/ { for (i = 1; i <= NF; i++) if ($i == "memlock") { s = $(i + 1); sub(/B$/, "", s); m += s; if (unw) u += s } want = 0 }
		END { printf "%.1f/%.1fMiB", u / 1048576, m / 1048576 }')
	cpu=$(awk -v t="$clk_tck" '{ printf "%.2fs", ($14 + $15) / t }' /proc/$ap/stat 2>/dev/null)
	rss=$(awk '/^VmHWM/ { printf "%.1fMiB", $2 / 1024 }' /proc/$ap/status 2>/dev/null)
	wait $ap
	set -- $(folded_stats "$tmp/p.txt" "$fwant")
	printf '%-10s %-22s %10s %10s %8s %10s %10s %10s %14s\n' "$w" "profleet" "$1" "$2" "$3" \
		"$bpf" "$cpu" "$rss" "$mapmem"
	go tool pprof -comments "$tmp/p.pb.gz" 2>/dev/null | grep -E 'table_(bytes_peak|load_ms_max)' |
		sed "s/^/           /"

	# perf, DWARF (stack copies)
	perf record -q --call-graph dwarf -F "$HZ" -o "$tmp/perf.data" -- "$NOFP/$w" "$SECS" \
		>/dev/null 2>&1
	perf script -i "$tmp/perf.data" -F comm,ip,sym 2>/dev/null >"$tmp/perf.txt"
	set -- $(perf_stats "$tmp/perf.txt" "$want")
	printf '%-10s %-22s %10s %10s %8s\n' "$w" "perf --call-graph dwarf" "$1" "$2" "$3"
	[ "$w" = libc_hot ] && perf_dwarf_libc=$1

	# perf, frame pointers
	perf record -q -g -F "$HZ" -o "$tmp/perf.data" -- "$NOFP/$w" "$SECS" >/dev/null 2>&1
	perf script -i "$tmp/perf.data" -F comm,ip,sym 2>/dev/null >"$tmp/perf.txt"
	set -- $(perf_stats "$tmp/perf.txt" "$want")
	printf '%-10s %-22s %10s %10s %8s\n' "$w" "perf -g" "$1" "$2" "$3"

	# bpftrace, frame pointers
	if command -v bpftrace >/dev/null 2>&1; then
		"$NOFP/$w" "$SECS" &
		wp=$!
		timeout $((SECS + 5)) bpftrace -q -e "profile:hz:$HZ /pid == $wp/ { @[ustack] = count(); }" \
			>"$tmp/bt.txt" 2>/dev/null &
		bp=$!
		wait $wp
		sleep 0.5
		kill -INT $bp 2>/dev/null
		wait $bp 2>/dev/null
		set -- $(bpftrace_stats "$tmp/bt.txt" "$want")
		printf '%-10s %-22s %10s %10s %8s\n' "$w" "bpftrace ustack" "$1" "$2" "$3"
	fi
done
echo "complete = % of the workload's samples whose user stack reaches main (mt: main or start_thread)"

# ---- per kernel: the kernel tier's guests, and this host through the same script ----
# kernel_row LABEL OUTDIR: one line from guest.sh's files
kernel_row() {
	dir=$2 log=$2/libc.log
	rel=$(cat "$2/uname.log" 2>/dev/null)
	if grep -q 'table-driven user stacks' "$log" 2>/dev/null; then load=loads
	elif grep -q 'degraded' "$log" 2>/dev/null; then load=degraded
	else load=refused; fi
	insns=$(sed -n 's/.*(verified instructions: \(.*\))".*/\1/p' "$log" | sed 's/not reported before 5.16/n\/a/')
	set -- $(sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event over \([0-9]*\) events.*/\1 \2/p' "$log") - -
	ev=$1 nev=$2
	samples=$(sed -n 's/^profleet: \([0-9]*\) samples.*/\1/p' "$log")
	per=$(awk -v e="$ev" -v n="$nev" -v s="${samples:-0}" 'BEGIN { if (s > 0 && n != "-") printf "%.0f", e * n / s; else print "-" }')
	set -- $(folded_stats "$dir/libc.txt" '^libc_hot;_start;[^ ]*;main[; ]' 2>/dev/null) - - -
	printf '%-20s %-24s %-9s %-36s %8s %8s %10s\n' "$LABEL" "$rel" "$load" "${insns:--}" "$ev" "$per" "$1"
}
echo
echo "per kernel: the walker chain under each verifier, libc_hot attached for 8 s at 199 Hz"
printf '%-20s %-24s %-9s %-36s %8s %8s %10s\n' label kernel load "verified instructions" \
	"ns/event" "ns/smpl" complete
LABEL=host
mkdir -p "$tmp/host"
sh "$top/tests/kernels/guest.sh" "$tmp/host" >/dev/null 2>&1
sysctl -q kernel.bpf_stats_enabled=1	# guest.sh turned it off
kernel_row host "$tmp/host"
if [ "${BENCH_KERNELS:-1}" != 0 ]; then
	PROFLEET_BUILD=$top/build sh "$top/tests/kernels/matrix.sh" >"$tmp/matrix.tap" 2>&1
	for LABEL in $(sh "$top/tests/kernels/fetch.sh" --list); do
		kernel_row "$LABEL" "$top/build/kernels/$LABEL"
	done
	grep '^not ok' "$tmp/matrix.tap" | sed 's/^/  kernel tier: /'
fi
printf '%-20s %-24s %-9s %-36s %8s %8s %10s\n' "perf --call-graph dwarf" "$(uname -r)" - - - - \
	"${perf_dwarf_libc:--}"
echo "ns/event = BPF run time per timer event (kernel.bpf_stats_enabled; under TCG in the guests);"
echo "ns/smpl = the same over the samples sent; complete = libc_hot samples reaching _start;...;main"
