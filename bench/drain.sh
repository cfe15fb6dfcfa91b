#!/bin/sh
# The ring buffer's drain while big unwind tables are built: `record --all`
# (999 Hz, no table cache, room for libLLVM's and libclang-cpp's tables) while
# clang starts three times. Printed side by side: the longest table build (on
# the unwinder's worker thread) and the longest drain pass and gap (on the
# drain thread). Before tables moved to the worker, a drain pass lasted as long
# as the build it ran. Numbers, never pass/fail.
#
#   bench/drain.sh [RUNS]     (default 3)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$top/build/bin/profleet-agent
[ -x "$AGENT" ] || { echo "bench: make agent first" >&2; exit 1; }
command -v clang >/dev/null || { echo "bench: clang is missing" >&2; exit 1; }
command -v go >/dev/null || { echo "bench: go is missing (go tool pprof reads the comments)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/profleet-drain.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "${1:-3}"); do
	"$AGENT" record --all --frequency 999 --duration 8 --unwind-rows 4194304 \
		--output "$tmp/p.pb.gz" --top 0 >"$tmp/log" 2>&1 &
	a=$!
	sleep 2
	for _ in 1 2 3; do
		echo 'int main(void){return 0;}' | clang -x c -O2 -c - -o /dev/null
	done
	wait $a
	go tool pprof -comments "$tmp/p.pb.gz" 2>/dev/null >"$tmp/c"
	build=$(sed -n 's/^profleet.unwind.table_load_ms_max=//p' "$tmp/c")
	pass=$(sed -n 's/^profleet.drain.pass_ms_max=//p' "$tmp/c")
	gap=$(sed -n 's/^profleet.drain.gap_ms_max=//p' "$tmp/c")
	lost=$(sed -n 's/^profleet.drops.ringbuf_full=//p' "$tmp/c")
	echo "run $i: longest table build $build ms (worker); longest drain pass $pass ms," \
		"longest gap $gap ms (drain); ring buffer full $lost;" \
		"pass/build $(awk -v p="$pass" -v b="$build" 'BEGIN { if (b > 0) printf "%.3f", p / b; else print "-" }')"
done
