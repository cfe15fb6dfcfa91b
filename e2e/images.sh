#!/bin/sh
# The images of the node tier (e2e/test_node.sh), built offline with buildah and
# imported into a containerd's k8s.io namespace:
#
#   e2e/images.sh CONTAINERD_SOCKET
#
# - localhost/profleet-base:bookworm: `debootstrap --variant=minbase bookworm`
#   from this machine's own Debian archive (tests/debian-archive.sh), cached
#   under $PROFLEET_CACHE/node (default /var/cache/profleet/node);
# - localhost/profleet-agent:e2e and localhost/profleet-controller:e2e: built
#   from Dockerfile.agent and Dockerfile.controller with that base (their
#   BUILD_IMAGE and RUNTIME_IMAGE arguments), the sources as the context;
# - localhost/profleet-workload:e2e: the base, python3, build/workloads and a
#   static tests/tools/httpsink;
# - localhost/profleet-pause:e2e: the Pod sandbox, a static program that pauses.
#
# No registry: an image build reaches the Debian archive at the address this
# machine resolves for it (passed with --add-host, as its /etc/hosts may name it).
# Prints what each step took; exits non-zero with the failing step's log.
set -eu
sock=${1:?usage: images.sh CONTAINERD_SOCKET}
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${PROFLEET_CACHE:-/var/cache/profleet}/node
store=$cache/buildah
log=$cache/images.log
mkdir -p "$cache"
: >"$log"
bh() { buildah --storage-driver vfs --root "$store/root" --runroot "$store/run" "$@"; }
step() { # what command...
	what=$1
	shift
	t0=$(date +%s)
	if ! "$@" >>"$log" 2>&1; then
		echo "images: $what failed; the log ends with:" >&2
		tail -25 "$log" >&2
		exit 1
	fi
	echo "images: $what in $(($(date +%s) - t0)) s"
}

uri=$(sh "$top/tests/debian-archive.sh")
host=$(echo "$uri" | sed -n 's#^[a-z+]*://\([^/:]*\).*#\1#p')
addhost=""
if [ -n "$host" ]; then
	ip=$(getent ahostsv4 "$host" | awk '{ print $1; exit }')
	[ -n "$ip" ] && addhost="--add-host=$host:$ip"
fi

base_rootfs() {
	rm -rf "$cache/base" "$cache/base.tar"
	debootstrap --variant=minbase bookworm "$cache/base" "$uri"
	tar -C "$cache/base" -cf "$cache/base.tar.tmp" .
	mv "$cache/base.tar.tmp" "$cache/base.tar"
	rm -rf "$cache/base"
}
base_image() {
	c=$(bh from scratch)
	bh add "$c" "$cache/base.tar" /
	bh config --cmd /bin/sh "$c"
	bh commit --rm "$c" localhost/profleet-base:bookworm
}
pause_image() {
	gcc -static -O2 -o "$cache/pause" "$top/e2e/pause.c"
	c=$(bh from scratch)
	bh copy "$c" "$cache/pause" /pause
	bh config --entrypoint '["/pause"]' "$c"
	bh commit --rm "$c" localhost/profleet-pause:e2e
}
dockerfile_image() { # component
	# shellcheck disable=SC2086
	bh bud --isolation chroot --layers $addhost \
		--build-arg BUILD_IMAGE=localhost/profleet-base:bookworm \
		--build-arg RUNTIME_IMAGE=localhost/profleet-base:bookworm \
		-f "$top/Dockerfile.$1" -t "localhost/profleet-$1:e2e" "$top"
}
workload_image() {
	ctx=$cache/workload-ctx
	rm -rf "$ctx"
	mkdir -p "$ctx"
	cp -r "$top/build/workloads" "$ctx/workloads"
	cp "$top/tests/workloads/python/"*.py "$ctx/workloads/python/"
	# a receiver for a backend Pod (static: the image has no libraries of ours)
	gcc -static -O2 -o "$ctx/workloads/httpsink" "$top/tests/tools/httpsink.c"
	cat >"$ctx/Dockerfile" <<'EOF'
FROM localhost/profleet-base:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-minimal \
    && rm -rf /var/lib/apt/lists/*
COPY workloads /opt/workloads
EOF
	# shellcheck disable=SC2086
	bh bud --isolation chroot --layers $addhost -t localhost/profleet-workload:e2e "$ctx"
}
import() { # image
	rm -f "$cache/image.tar"
	bh push "$1" "docker-archive:$cache/image.tar:$1"
	ctr -a "$sock" -n k8s.io images import "$cache/image.tar"
	rm -f "$cache/image.tar"
}

[ -x "$top/build/bin/profleet-agent" ] && [ -x "$top/build/workloads/busy" ] ||
	{ echo "images: build first (make all): build/gen/vmlinux.h and build/workloads go in" >&2; exit 1; }
[ -f "$cache/base.tar" ] || step "base root file system (debootstrap)" base_rootfs
bh rmi --all --force >>"$log" 2>&1 || true	# what an interrupted run left
step "base image" base_image
step "pause image" pause_image
step "agent image (Dockerfile.agent)" dockerfile_image agent
step "controller image (Dockerfile.controller)" dockerfile_image controller
step "workload image" workload_image
for img in pause agent controller workload; do
	step "import of profleet-$img" import "localhost/profleet-$img:e2e"
done
# containerd has them now: buildah's copies go (with vfs, each layer is a whole
# root file system: kept, they would fill the disk run after run)
bh rmi --all --force >>"$log" 2>&1 || true
