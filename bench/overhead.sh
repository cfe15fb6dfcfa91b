#!/bin/sh
# Overhead of profleet-agent against perf record -g, measured in the same run.
#
# A fixed CPU-bound workload (tests/workloads/busy.c) is timed with no profiler,
# then while each profiler records the whole host at 19 and 99 Hz. Prints the
# slowdown ratios, the profiler's own CPU time and peak RSS, and the per-sample
# cost of our BPF program (kernel.bpf_stats_enabled: run_time_ns / run_cnt).
# Numbers, never a pass/fail: these machines are noisy.
#
#   bench/overhead.sh [REPS] [WORK]      (defaults: 5 repetitions, 1500 M iterations)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
WORK=$top/build/workloads/busy
REPS=${1:-5}
ITERS=${2:-1500}
tmp=$(mktemp -d /tmp/profleet-bench.XXXXXX)
trap 'rm -rf "$tmp"; sysctl -q kernel.bpf_stats_enabled=0 2>/dev/null || true' EXIT
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$AGENT" ] && [ -x "$WORK" ] || { echo "bench: run 'make' first" >&2; exit 1; }
clk_tck=$(getconf CLK_TCK)

now() { date +%s.%N; }
# median wall time of REPS runs of the workload
time_workload() {
	i=0
	: >"$tmp/times"
	while [ $i -lt "$REPS" ]; do
		t0=$(now)
		"$WORK" "$ITERS"
		t1=$(now)
		echo "$t0 $t1" | awk '{ printf "%.4f\n", $2 - $1 }' >>"$tmp/times"
		i=$((i + 1))
	done
	sort -n "$tmp/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
# CPU seconds (user+sys) and peak RSS (KiB) of a live process
proc_cpu() { awk -v t="$clk_tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
proc_hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# runs the workload under a profiler started by "$@" (in the background); prints
# "median_s cpu_s rss_kib wall_s"
under() {
	"$@" >"$tmp/prof.log" 2>&1 &
	ppid=$!
	sleep 2 # let it load and settle
	t0=$(now)
	c0=$(proc_cpu $ppid)
	med=$(time_workload)
	c1=$(proc_cpu $ppid)
	t1=$(now)
	hwm=$(proc_hwm $ppid)
	kill -INT $ppid
	wait $ppid 2>/dev/null || true
	echo "$med $c0 $c1 $hwm $t0 $t1" | awk '{ printf "%s %.3f %s %.1f\n", $1, $3 - $2, $4, $6 - $5 }'
}

echo "workload: $WORK $ITERS (median of $REPS runs), $(nproc) CPUs, kernel $(uname -r)"
base=$(time_workload)
printf '%-28s %9s %9s %10s %10s %9s\n' "profiler" "median s" "slowdown" "prof CPU%" "prof RSS" "BPF ns"
printf '%-28s %9s %9s %10s %10s %9s\n' "none" "$base" "1.000" "-" "-" "-"

sysctl -q kernel.bpf_stats_enabled=1
for hz in 19 99; do
	r=$(under "$AGENT" record --all --duration 100000 --frequency $hz --top 0 \
		--progress off --output "$tmp/p$hz.pb.gz")
	# per-sample BPF cost, from the program's own stats (the agent has exited: use bpftool
	# while a short second run is loaded)
	"$AGENT" record --all --duration 3 --frequency $hz --top 0 --progress off \
		--output "$tmp/q.pb.gz" >/dev/null 2>&1 &
	qp=$!
	sleep 2.5
	bpfns=$(bpftool prog show 2>/dev/null | awk '/on_cpu_sample/ { for (i = 1; i <= NF; i++) {
		if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
		END { if (c > 0) printf "%.0f", t / c; else print "-" }')
	wait $qp || true
	echo "$r" | awk -v b="$base" -v hz=$hz -v bpf="$bpfns" '{
		printf "%-28s %9s %9.3f %9.3f%% %7.1fMiB %9s\n", "profleet-agent " hz " Hz",
			$1, $1 / b, 100 * $2 / $4, $3 / 1024, bpf }'
	r=$(under perf record -g -a -F $hz -o "$tmp/perf$hz.data")
	echo "$r" | awk -v b="$base" -v hz=$hz '{
		printf "%-28s %9s %9.3f %9.3f%% %7.1fMiB %9s\n", "perf record -g " hz " Hz",
			$1, $1 / b, 100 * $2 / $4, $3 / 1024, "-" }'
done

# idle host: the agent's own CPU when there is almost nothing to sample (after the
# peers above have finished writing their files, and the agent has loaded its tables)
sleep 5
"$AGENT" record --all --duration 100000 --frequency 19 --top 0 --progress off \
	--output "$tmp/idle.pb.gz" >/dev/null 2>&1 &
ap=$!
sleep 5
c0=$(proc_cpu $ap)
sleep 20
c1=$(proc_cpu $ap)
kill -INT $ap
wait $ap 2>/dev/null || true
echo "$c0 $c1" | awk '{ printf "agent CPU on an idle host at 19 Hz: %.3f%% of one core over 20 s\n", 100 * ($2 - $1) / 20 }'
echo "slowdown = median workload time under the profiler / median with none"
