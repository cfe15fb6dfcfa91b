#!/bin/sh
# Builds Kubernetes v1.20.2 commands from Debian bookworm's `kubernetes` source
# package, offline, with Debian's Go 1.19, for the e2e tiers.
#
#   e2e/build-kube.sh [COMMAND...]    (default kube-apiserver)
#
# COMMAND is one of the tree's cmd/ directories: kube-apiserver, kubelet,
# kube-controller-manager, kube-scheduler, kube-proxy, kubectl. Prints each
# binary's path, one a line, in the order asked. The binaries are cached outside
# the checkout: $PROFLEET_CACHE (default /var/cache/profleet), so only the first
# run pays (about 6 minutes for the first command on 2 cores, 2 for each next).
#
# Why GOPATH mode: Go 1.19 refuses the Go-1.15-era vendor/modules.txt of this tree
# ("updates to go.mod needed"); in GOPATH mode the vendor/ directory (whose k8s.io/*
# entries are symlinks to staging/) is used as it is, and no module graph is built.
# Known facts this script encodes (see also issue 4):
# - pkg/generated/openapi/zz_generated.openapi.go is not in the tarball: it is
#   generated with the vendored openapi-gen from every package tagged
#   +k8s:openapi-gen=true;
# - the vendored modern-go/reflect2 1.0.1 breaks at run time with Go >= 1.18:
#   Debian's golang-github-modern-go-reflect2-dev (1.0.2) replaces it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# (the directory is named after the first command it cached)
cache=${PROFLEET_CACHE:-/var/cache/profleet}/kube-apiserver-1.20.2
GO=/usr/lib/go-1.19/bin/go
[ $# -gt 0 ] || set -- kube-apiserver
for c in "$@"; do
	case $c in
	kube-apiserver | kubelet | kube-controller-manager | kube-scheduler | kube-proxy | kubectl) ;;
	*) echo "build-kube: not a command of this tree: $c" >&2; exit 2 ;;
	esac
done
built=true
for c in "$@"; do [ -x "$cache/bin/$c" ] || built=false; done
if $built; then
	for c in "$@"; do echo "$cache/bin/$c"; done
	exit 0
fi
# one build at a time in the cache (they share the tree and the Go cache)
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ &&
	! grep -qs '^deb-src .* bookworm ' /etc/apt/sources.list; then
	uri=$(sh "$top/tests/debian-archive.sh")
	cat >/etc/apt/sources.list.d/profleet-deb-src.sources <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	apt-get update -qq >&2
fi
apt-get install -y -qq golang-1.19-go golang-github-modern-go-reflect2-dev >&2

mkdir -p "$cache/src" "$cache/bin"
cd "$cache/src"
ls kubernetes_*.orig.tar.gz >/dev/null 2>&1 || apt-get source --download-only kubernetes >&2
# .unpacked: written once the whole tree is out (an interrupted tar is done again)
if [ ! -f kubernetes-1.20.2/.unpacked ]; then
	rm -rf kubernetes-1.20.2
	tar xzf kubernetes_*.orig.tar.gz
	touch kubernetes-1.20.2/.unpacked
fi
tree=$cache/src/kubernetes-1.20.2

export GOPATH=$cache/gopath GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE=$cache/gocache HOME=$cache
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$tree" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2

if [ ! -f pkg/generated/openapi/.generated ]; then
	"$GO" build -o "$cache/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
	pkgs=$(grep -Rl --include='*.go' '^// +k8s:openapi-gen=true' vendor/k8s.io pkg |
		xargs -n1 dirname | sed 's#^vendor/##; s#^pkg/#k8s.io/kubernetes/pkg/#' |
		sort -u | paste -sd, -)
	"$cache/bin/openapi-gen" --input-dirs "$pkgs" \
		--output-package k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
		--go-header-file hack/boilerplate/boilerplate.generatego.txt \
		--output-base "$GOPATH/src" --report-filename "$cache/openapi-violations.txt" >&2
	touch pkg/generated/openapi/.generated
fi
# the version kubectl sees (it is v0.0.0-master otherwise)
v=k8s.io/kubernetes/vendor/k8s.io/component-base/version
for c in "$@"; do
	bin=$cache/bin/$c
	if [ ! -x "$bin" ]; then
		"$GO" build -ldflags "-X $v.gitVersion=v1.20.2 -X $v.gitMajor=1 -X $v.gitMinor=20" \
			-o "$bin.tmp" "./cmd/$c" >&2
		mv "$bin.tmp" "$bin"
	fi
done
for c in "$@"; do echo "$cache/bin/$c"; done
