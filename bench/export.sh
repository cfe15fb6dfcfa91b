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
