#!/bin/sh
# Short libFuzzer runs of every parser fed from outside (ELF symbols, CFI, /proc maps,
# cgroup paths, policies and pods from the API server, agents' websocket frames as the
# controller handles them, the controller's HTTP requests).
# FUZZ_SECONDS (default 20) per target; longer runs: make fuzz FUZZ_SECONDS=600. Prints TAP.
. "$(dirname "$0")/lib.sh"
secs=${FUZZ_SECONDS:-20}
FUZZ=$BUILD/fuzz
if [ ! -x "$FUZZ/fuzz_elf" ]; then
	skip "fuzz targets not built (clang with libFuzzer missing?)"
	finish
	exit 0
fi
# seeds: a few real ELF files
mkdir -p "$TMP/seed-elf" "$TMP/seed-maps" "$TMP/corpus-elf" "$TMP/corpus-maps"
cp "$WL/chain" "$WL/nofp/mt" "$TMP/seed-elf/" 2>/dev/null
head -c 200000 /lib/x86_64-linux-gnu/libgcc_s.so.1 >"$TMP/seed-elf/libgcc-head"
# sparse files (see fuzz_elf.c): sections of 3 GiB over a hole, which must never be read
for sec in .symtab .eh_frame; do
	off=$(elf_sparse_copy "$WL/chain" "$TMP/sparse" "$sec" $((3 << 30))) || continue
	{
		head -c "$(stat -c %s "$WL/chain")" "$TMP/sparse"
		printf '\n--profleet-sparse--\n'
		le64 $((off + (3 << 30)))
	} >"$TMP/seed-elf/sparse$sec"
	rm -f "$TMP/sparse"
done
cat /proc/self/maps >"$TMP/seed-maps/self"
cp -r "$TMP/seed-elf" "$TMP/seed-cfi"
mkdir -p "$TMP/corpus-cfi" "$TMP/seed-policy" "$TMP/corpus-policy" "$TMP/seed-cgpath" "$TMP/corpus-cgpath"
cp "$TOP"/crds/examples/*.yaml "$TMP/seed-policy/" 2>/dev/null
printf '{"metadata":{"name":"p","namespace":"n","uid":"u","labels":{"a":"b"}},"spec":{"selector":{"podSelector":{"matchExpressions":[{"key":"a","operator":"In","values":["b"]}]}},"sampling":{"frequencyHz":19}}}' >"$TMP/seed-policy/json"
printf '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-%064x.scope' 7 >"$TMP/seed-cgpath/systemd"
# agents' frames (fuzz_frames.c): a state byte, then 16-bit-length frames: hello, ack and
# counters before the review, and the same in another order from an accepted agent
mkdir -p "$TMP/seed-frames" "$TMP/corpus-frames" "$TMP/seed-http" "$TMP/corpus-http"
printf '\000\017\000\012\015\010\001\022\006\156\157\144\145\055\141\032\001\164\004\000\022\002\010\005\022\000\032\020\010\012\042\012\012\006\156\163\057\160\157\154\020\005\050\001' >"$TMP/seed-frames/hello-ack-counters"
printf '\002\022\000\032\020\010\012\042\012\012\006\156\163\057\160\157\154\020\005\050\001\004\000\022\002\010\005\017\000\012\015\010\001\022\006\156\157\144\145\055\141\032\001\164' >"$TMP/seed-frames/accepted"
# HTTP requests (fuzz_http.c): path, from, until, X-Profleet-Token, Authorization
printf '/api/v1/namespaces/shop/profilingpolicies/web/profile\0001700000000\000\000\000Bearer t' >"$TMP/seed-http/ns"
printf '/api/v1/clusterprofilingpolicies/all/flamegraph.svg\000\0001700000000\000tok' >"$TMP/seed-http/cluster"
printf '/metrics' >"$TMP/seed-http/metrics"
for t in elf cfi maps policy cgpath frames http; do
	[ -x "$FUZZ/fuzz_$t" ] || continue
	# -print_funcs=0: printing new functions runs llvm-symbolizer, which was seen to hang;
	# timeout: a fuzzer must never hold CI up
	timeout -k 10 $((secs + 120)) "$FUZZ/fuzz_$t" -max_total_time="$secs" -timeout=20 \
		-max_len=300000 -rss_limit_mb=2048 -print_funcs=0 \
		-artifact_prefix="$TMP/crash-$t-" "$TMP/corpus-$t" "$TMP/seed-$t" \
		>"$TMP/fuzz-$t.log" 2>&1
	rc=$?
	runs=$(grep -oE 'Done [0-9]+ runs' "$TMP/fuzz-$t.log" | grep -oE '[0-9]+')
	echo "# fuzz_$t: ${runs:-0} runs in $secs s"
	[ $rc -eq 0 ] || tail -30 "$TMP/fuzz-$t.log" | sed 's/^/# /'
	check "fuzz_$t: no crash, leak or sanitizer error in $secs s (${runs:-0} runs)" test $rc -eq 0
done
finish
