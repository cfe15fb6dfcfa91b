# Shared helpers for the system tests: TAP output and paths.
# shellcheck shell=sh
TOP=${PROFLEET_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${PROFLEET_BUILD:-$TOP/build}
AGENT=$BUILD/bin/profleet-agent
# the workloads are not what is tested: a sanitizer tier takes the plain build's
WL=${PROFLEET_WORKLOADS:-$BUILD/workloads}
TMP=$(mktemp -d /tmp/profleet-test.XXXXXX)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
n=0
failures=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's status
verdict() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
finish() { echo "1..$n"; [ "$failures" -eq 0 ]; }

# sum of the counts of folded lines matching an extended regex
folded_sum() { # file regex
	grep -E -- "$2" "$1" | awk '{ s += $NF } END { print s + 0 }'
}
folded_total() { awk '{ s += $NF } END { print s + 0 }' "$1"; }

# le64 N: N as 8 bytes, little-endian
le64() {
	_b=""
	for _i in 0 1 2 3 4 5 6 7; do
		_b="$_b\\$(printf '%03o' $((($1 >> (8 * _i)) & 255)))"
	done
	# shellcheck disable=SC2059
	printf "$_b"
}

# elf_sparse_copy SRC DST SECTION SIZE: a copy of the little-endian ELF64 file SRC whose
# SECTION header claims SIZE bytes, DST extended to hold them as a hole (a sparse file:
# as many KB on disk as SRC). Prints the section's file offset. (issue 12, item 9)
elf_sparse_copy() {
	_shoff=$(readelf -hW "$1" | awk '/Start of section headers/ { print $5 }')
	# "  [28] .symtab SYMTAB 0000000000000000 003040 000390 ...": index, name, offset
	_sec=$(readelf -SW "$1" | sed -n 's/^ *\[ *\([0-9]*\)\] */\1 /p' |
		awk -v s="$3" '$2 == s { print $1, $5; exit }')
	[ -n "$_shoff" ] && [ -n "$_sec" ] || return 1
	_off=$((0x${_sec#* }))
	cp "$1" "$2" || return 1
	# sh_size is at byte 32 of an Elf64_Shdr (64 bytes)
	le64 "$4" | dd of="$2" bs=1 seek=$((_shoff + ${_sec%% *} * 64 + 32)) conv=notrunc \
		2>/dev/null || return 1
	[ $((_off + $4)) -le "$(stat -c %s "$2")" ] || truncate -s $((_off + $4)) "$2" || return 1
	echo "$_off"
}

# kubeconfig FILE SERVER [CA]: a kubeconfig for a controller's API server (none answers at
# https://127.0.0.1:1: the informers just retry)
kubeconfig() {
	cat >"$1" <<KC
apiVersion: v1
kind: Config
current-context: x
clusters: [{name: x, cluster: {server: "$2"${3:+, certificate-authority: \"$3\"}}}]
users: [{name: x, user: {token: t}}]
contexts: [{name: x, context: {cluster: x, user: x}}]
KC
}
