#!/bin/sh
# Installs every Debian package that the build, the tests and the benchmarks need.
# Idempotent: does nothing when all are present. Needs root (or sudo) to install.
set -eu

PKGS="make gcc clang llvm libbpf-dev libelf-dev libdw-dev zlib1g-dev liblzma-dev libiberty-dev bpftool
libcmocka-dev protobuf-compiler golang-go linux-perf bpftrace valgrind libxml2-utils g++
libclang-rt-14-dev
binutils procps"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
