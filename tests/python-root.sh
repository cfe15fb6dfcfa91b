#!/bin/sh
# A Debian root file system with a newer CPython, for the Python walker's tests:
# made once with debootstrap --variant=minbase from this machine's own Debian
# archive (tests/debian-archive.sh), cached outside the checkout, and run with
# chroot (which also proves a process whose root is not the host's, as in a
# container). Prints the root's path.
#   tests/python-root.sh SUITE PACKAGE     e.g. trixie python3.13
# PROFLEET_ROOTS: the cache (default /var/cache/profleet/roots).
set -eu
suite=$1 pkg=$2
top=$(cd "$(dirname "$0")/.." && pwd)
root=${PROFLEET_ROOTS:-/var/cache/profleet/roots}/$suite
if [ ! -f "$root/.profleet-$pkg" ]; then
	command -v debootstrap >/dev/null || { echo "python-root.sh: no debootstrap" >&2; exit 1; }
	uri=$(sh "$top/tests/debian-archive.sh")
	if [ ! -f "$root/.profleet-base" ]; then
		rm -rf "$root"
		mkdir -p "$(dirname "$root")"
		debootstrap --variant=minbase "$suite" "$root" "$uri" >"$root.log" 2>&1 ||
			{ tail -5 "$root.log" >&2; exit 1; }
		touch "$root/.profleet-base"
	fi
	# apt inside the root needs /proc and /dev/null only
	mount -t proc proc "$root/proc" 2>/dev/null || true
	rc=0
	chroot "$root" sh -c "apt-get -o Acquire::Check-Valid-Until=false update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkg" \
		>>"$root.log" 2>&1 || rc=$?
	umount "$root/proc" 2>/dev/null || true
	[ "$rc" -eq 0 ] || { tail -5 "$root.log" >&2; exit 1; }
	touch "$root/.profleet-$pkg"
fi
echo "$root"
