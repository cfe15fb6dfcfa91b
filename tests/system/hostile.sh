#!/bin/sh
# The agent against files a target controls (issue 12, item 9): a program whose .symtab
# claims 3 GiB over the hole of a sparse file, a few KB on disk, is run, sampled and
# symbolized; the agent refuses that table instead of reading it (it took the agent to
# 3.1 GiB, where the chart allows 512 MiB). Prints TAP.
. "$(dirname "$0")/lib.sh"

if [ ! -r /sys/kernel/btf/vmlinux ] || [ "$(id -u)" -ne 0 ]; then
	skip "needs root and kernel BTF"
	finish
	exit 0
fi
if [ ! -x /usr/bin/time ]; then
	skip "GNU time (package time) missing: no peak RSS"
	finish
	exit 0
fi

bomb=$TMP/ratio-sparse
elf_sparse_copy "$WL/ratio" "$bomb" .symtab $((3 << 30)) >/dev/null
check "made a copy of ratio whose .symtab claims 3 GiB" test $? -eq 0
long=$(stat -c %s "$bomb")
disk=$(($(stat -c %b "$bomb") * $(stat -c %B "$bomb")))
echo "# $bomb: $long bytes long, $disk on disk"
check "it is sparse: over 3 GiB long, under 1 MiB on disk" \
	test "$long" -gt $((3 << 30)) -a "$disk" -lt $((1 << 20))

/usr/bin/time -f '%M' -o "$TMP/rss" "$AGENT" record --frequency 199 --top 0 \
	--output "$TMP/sparse.txt" -- "$bomb" 2 >"$TMP/sparse.log" 2>&1
rc=$?
rss=$(tail -n 1 "$TMP/rss")
echo "# agent exit $rc, peak RSS ${rss} KiB"
[ $rc -eq 0 ] || tail -n 20 "$TMP/sparse.log" | sed 's/^/# /'
check "record of the sparse program exits 0" test $rc -eq 0
check "agent peak RSS under 256 MiB (${rss} KiB)" test "${rss:-999999999}" -lt $((256 * 1024))
check "a profile was written, of the program's samples" grep -q '^ratio-sparse;' "$TMP/sparse.txt"
check "the refusal is logged" grep -q 'not reading symbols of .*ratio-sparse' "$TMP/sparse.log"
finish
