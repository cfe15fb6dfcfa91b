#!/bin/sh
# Export encoding cost and size: a profile of 10k distinct stacks encoded as
# pprof and as OTLP profiles (bench/exportbench), and the same pprof re-encoded
# by the peer, go tool pprof -proto, in the same run. Numbers, never pass/fail.
#
#   bench/export.sh [STACKS]     (default 10000)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/build/bench/exportbench
[ -x "$B" ] || { echo "bench: make build/bench/exportbench first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/profleet-exportbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$B" "${1:-10000}" 21 "$tmp/ours.pb.gz"
if command -v go >/dev/null; then
	t0=$(date +%s%N)
	go tool pprof -proto "$tmp/ours.pb.gz" >"$tmp/go.pb.gz" 2>/dev/null
	t1=$(date +%s%N)
	ours=$(stat -c %s "$tmp/ours.pb.gz")
	theirs=$(stat -c %s "$tmp/go.pb.gz")
	echo "  peer: go tool pprof -proto of the same profile: $theirs bytes gzipped (ours $ours;" \
		"ratio ours/go $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.3f", a / b }'))," \
		"$(( (t1 - t0) / 1000000 )) ms including Go's start and parse"
fi

# The agent's extra CPU with two exporters on (otlp-http and pyroscope, to local
# receivers) at 19 Hz: the same 10 s system-wide recording with and without
# them, user+system CPU of the agent (median of 3 runs each). The difference is
# one export cycle: build, encode twice, gzip, send.
AGENT=$top/build/bin/profleet-agent
SINK=$top/build/tools/httpsink
WL=$top/build/workloads/busy
if [ -x "$AGENT" ] && [ -x "$SINK" ] && [ -x "$WL" ] && [ "$(id -u)" = 0 ]; then
	mkdir -p "$tmp/s1" "$tmp/s2"
	"$SINK" "$tmp/s1" 0 200 >"$tmp/p1" &
	s1=$!
	"$SINK" "$tmp/s2" 0 200 >"$tmp/p2" &
	s2=$!
	sleep 0.3
	"$WL" 3000000000 >/dev/null 2>&1 &
	wl=$!
	cpu() { # args: the agent's CPU seconds for one run
		perl -MPOSIX -e 'my $pid = fork; if (!$pid) { open STDOUT, ">/dev/null"; open STDERR, ">/dev/null"; exec @ARGV; exit 127 }
			waitpid $pid, 0; my @t = POSIX::times(); printf "%.3f\n", ($t[3] + $t[4]) / POSIX::sysconf(POSIX::_SC_CLK_TCK())' "$@"
	}
	med() { sort -n | sed -n 2p; }
	base=$(for i in 1 2 3; do cpu "$AGENT" record --frequency 19 --duration 10 --top 0 --output "$tmp/b.pb.gz"; done | med)
	two=$(for i in 1 2 3; do cpu "$AGENT" record --frequency 19 --duration 10 --top 0 --output "$tmp/t.pb.gz" \
		--export "otlp-http=http://127.0.0.1:$(cat "$tmp/p1")" --export "pyroscope=http://127.0.0.1:$(cat "$tmp/p2")"; done | med)
	kill $wl $s1 $s2 2>/dev/null
	n1=$(ls "$tmp/s1" | grep -c '^req-')
	n2=$(ls "$tmp/s2" | grep -c '^req-')
	echo "agent CPU, 10 s system-wide at 19 Hz: ${base} s without exporters, ${two} s with otlp-http + pyroscope" \
		"(extra $(awk -v a="$two" -v b="$base" 'BEGIN { printf "%.0f ms per export cycle, %.2f%% of one core over the 10 s", (a - b) * 1000, (a - b) * 10 }');" \
		"receivers got $n1 and $n2 profiles)"
else
	echo "agent CPU with exporters: skipped (needs root and make all)"
fi
