#!/bin/sh
# Installs every Debian package that the build, the tests and the benchmarks need.
# Idempotent: does nothing when all are present. Needs root (or sudo) to install.
# .ci/run installs the same lists (the PKGS_* lines, one line each).
set -eu

PKGS_BUILD="make gcc g++ clang llvm libbpf-dev libelf-dev libdw-dev zlib1g-dev liblzma-dev libiberty-dev bpftool libwebsockets-dev libcjson-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libyaml-dev libmicrohttpd-dev libssl-dev"
PKGS_TEST="libcmocka-dev python3.11 libpython3.11-dev openjdk-17-jdk-headless pkg-config debootstrap protobuf-compiler golang-go linux-perf bpftrace valgrind libxml2-utils libclang-rt-14-dev binutils procps time jq openssl python3-grpcio golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev"
PKGS_E2E="etcd-server golang-1.19-go golang-github-modern-go-reflect2-dev dpkg-dev"
# the node tier (e2e/node.sh, e2e/images.sh): a kubelet's runtime, networks, images, DNS
PKGS_NODE="containerd runc buildah containernetworking-plugins dnsmasq-base iptables debootstrap"
# the kernel tier (tests/kernels): qemu-system-common has /usr/lib/qemu/virtiofsd;
# kmod's depmod writes the fetched kernels' modules.dep, xz/zstd unpack modules
PKGS_KERNELS="qemu-system-x86 busybox-static cpio kmod xz-utils zstd"
# kubectl: v1.20.2 built from Debian's kubernetes source by e2e/build-kube.sh (tests/run.sh)

missing=""
for p in $PKGS_BUILD $PKGS_TEST $PKGS_E2E $PKGS_NODE $PKGS_KERNELS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
