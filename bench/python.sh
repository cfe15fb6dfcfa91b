#!/bin/sh
# The CPython walker against a known call chain (tests/workloads/python/ratio.py:
# <module> -> main -> loop -> Worker.hot_three x3 / Worker.cold_one x1), under
# Debian's python3.11 and, in trixie and sid root file systems
# (tests/python-root.sh), python3.13 and python3.14. Per version: the share of
# samples whose Python chain is whole, the hot_three:cold_one ratio (3
# expected), the share of hot_three's samples on its
# hot line (16), and the BPF cost per timer event beside a native workload's.
# Peer in the same run: perf record -g of python3.13 -X perf (perf maps),
# its ratio and stack depth printed beside ours. Numbers, never pass/fail.
#   bench/python.sh [SECONDS]     (default 12; needs root)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
WL=$top/build/workloads
SECS=${1:-12}
tmp=$(mktemp -d /tmp/profleet-pybench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
[ -x "$AGENT" ] || { echo "bench: run 'make all' first" >&2; exit 1; }

# the numbers of one folded profile: whole-chain share, ratio, hot-line share
summary() { # label file.txt file.pb.gz
	awk -v l="$1" '{ t += $NF }
		/;ratio\.<module>_\[py\];ratio\.main_\[py\];ratio\.loop_\[py\];ratio\.Worker\.(hot_three|cold_one)_\[py\]( |;)/ ||
		/;threading\.Thread\._bootstrap_inner_\[py\];threading\.Thread\.run_\[py\];ratio\.loop_\[py\];ratio\.Worker\.(hot_three|cold_one)_\[py\]( |;)/ { c += $NF }
		/;ratio\.loop_\[py\];ratio\.Worker\.hot_three_\[py\]( |;)/ { h += $NF }
		/;ratio\.loop_\[py\];ratio\.Worker\.cold_one_\[py\]( |;)/ { k += $NF }
		END { printf "  %-28s %6d samples, whole Python chain %5.1f%%, hot_three:cold_one %.2f (goal 3 +- 0.15)\n",
			l, t, t ? 100 * c / t : 0, k ? h / k : 0 }' "$2"
	if command -v go >/dev/null 2>&1 && [ -f "$3" ]; then
		# a trace's first line is "TIME leaf-function file:line": its time, by unit
		go tool pprof -traces -lines "$3" 2>/dev/null | awk -v l="$1" '
			/^ +[0-9.]+(ns|us|ms|s) +Worker\.hot_three / {
				v = $1 + 0; u = $1; sub(/^[0-9.]+/, "", u)
				v *= u == "s" ? 1e9 : u == "ms" ? 1e6 : u == "us" ? 1e3 : 1
				t += v; if ($NF ~ /ratio\.py:16$/) on += v }
			END { if (t) printf "  %-28s samples in Worker.hot_three itself on its hot line (ratio.py:16): %.1f%%\n", l, 100 * on / t }'
	fi
}

# recorded NAME COMMAND...: COMMAND started, recorded once it runs, stopped;
# prints the BPF cost of the recording (kernel.bpf_stats_enabled)
recorded() {
	name=$1
	shift
	"$@" >/dev/null 2>&1 &
	wpid=$!
	sleep 2
	"$AGENT" record --pid "$wpid" --duration "$SECS" --frequency 199 --top 0 --log-level info \
		--output "$tmp/$name.txt" --output "$tmp/$name.pb.gz" >"$tmp/$name.log" 2>&1
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	sed -n 's/.*BPF cost: \([0-9]*\) ns per timer event.*/\1/p' "$tmp/$name.log" | tail -1
}

root=$(sh "$top/tests/python-root.sh" trixie python3.13) || { echo "bench: no trixie root" >&2; exit 1; }
sid=$(sh "$top/tests/python-root.sh" sid python3.14) || { echo "bench: no sid root" >&2; exit 1; }
for r in "$root" "$sid"; do
	mkdir -p "$r/opt/profleet-test"
	cp "$top/tests/workloads/python/ratio.py" "$r/opt/profleet-test/"
done
sysctl -q kernel.bpf_stats_enabled=1
echo "== CPython walker, $SECS s at 199 Hz per run"
cost=$(recorded native "$WL/ratio" $((SECS + 20)) 10)
echo "  native C workload (ratio)    BPF cost ${cost:-?} ns per timer event"
cost=$(recorded py311 env PYTHON=/usr/bin/python3.11 "$top/tests/workloads/python/run-ratio" $((SECS + 20)))
summary "python3.11 (bookworm)" "$tmp/py311.txt" "$tmp/py311.pb.gz"
echo "  python3.11                   BPF cost ${cost:-?} ns per timer event"
cost=$(recorded py313 chroot "$root" /usr/bin/python3.13 /opt/profleet-test/ratio.py $((SECS + 20)))
summary "python3.13 (trixie, chroot)" "$tmp/py313.txt" "$tmp/py313.pb.gz"
echo "  python3.13                   BPF cost ${cost:-?} ns per timer event"
cost=$(recorded py314 chroot "$sid" /usr/bin/python3.14 /opt/profleet-test/ratio.py $((SECS + 20)))
summary "python3.14 (sid, chroot)" "$tmp/py314.txt" "$tmp/py314.pb.gz"
echo "  python3.14                   BPF cost ${cost:-?} ns per timer event"
sysctl -q kernel.bpf_stats_enabled=0

# peer: perf with CPython's own perf maps (-X perf, 3.12+)
if command -v perf >/dev/null 2>&1; then
	chroot "$root" /usr/bin/python3.13 -X perf /opt/profleet-test/ratio.py $((SECS + 20)) \
		>/dev/null 2>&1 &
	wpid=$!
	sleep 2
	perf record -F 199 -g -p "$wpid" -o "$tmp/perf.data" -- sleep "$SECS" >/dev/null 2>&1
	# the map is written inside the root; perf looks for it in the host's /tmp
	cp "$root/tmp/perf-$wpid.map" "/tmp/perf-$wpid.map" 2>/dev/null
	# one sample: a line with the comm, then "ip symbol" lines leaf first, then a blank line
	perf script -i "$tmp/perf.data" -F comm,ip,sym 2>/dev/null | awk '
		function flush(   out, i) {
			if (n) { for (i = n; i >= 1; i--) out = out (i < n ? ";" : "") f[i]; print out " 1" }
			n = 0
		}
		/^[ \t]*$/ { flush(); next }
		/^[^ \t]/ { flush(); next }
		{ s = $2; sub(/^py::/, "", s); sub(/:.*$/, "", s); f[++n] = s }
		END { flush() }' >"$tmp/perf.txt"
	rm -f "/tmp/perf-$wpid.map" "$root/tmp/perf-$wpid.map"
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	awk '{ t++; d += gsub(/;/, ";") + 1 }
		/;loop;(Worker\.)?hot_three( |;)/ { h++ } /;loop;(Worker\.)?cold_one( |;)/ { c++ }
		END { printf "  %-28s %6d samples, hot_three:cold_one %s, mean depth %.1f frames\n",
			"peer: perf -g, -X perf 3.13", t, c ? sprintf("%.2f", h / c) : "n/a (no Python chain)",
			t ? d / t : 0 }' "$tmp/perf.txt"
	awk '{ t += $NF; d += $NF * (gsub(/;/, ";") + 1) }
		END { printf "  %-28s mean depth %.1f frames\n", "ours: python3.13", t ? d / t : 0 }' \
		"$tmp/py313.txt"
else
	echo "  peer: perf not installed"
fi
