#!/bin/sh
# A one-node Kubernetes on this machine for the node tier (e2e/test_node.sh):
# etcd and kube-apiserver (e2e/cluster.sh), kube-controller-manager,
# kube-scheduler, kube-proxy and a kubelet (v1.20.2, e2e/build-kube.sh) on
# Debian's containerd and runc, Pods on a bridge with Debian's CNI plugins, and
# dnsmasq answering the Services' names (the stand-in for a cluster DNS).
#
#   e2e/node.sh start DIR      everything; DIR/kubeconfig, DIR/env as cluster.sh's
#   e2e/node.sh stop DIR       stops it all and puts the host back as it was
#   e2e/node.sh dns DIR        the Services' names again (after Services changed)
#   e2e/node.sh restart-containerd DIR
#
# Nothing routes off the machine: the node's address (10.217.0.1) and the
# Pods' (10.217.0.16-250) live on a bridge made here, the Services' in
# 10.217.1.0/24, and what a Pod sends elsewhere is dropped. Stop kills what
# runs in the Pods' cgroups, removes the bridge, the Pods' network namespaces,
# cgroups, mounts, logs and the runtime's directories outside DIR, and puts
# back the iptables rules and the sysctls the kubelet and kube-proxy change
# (saved at start in DIR/host); it fails when something could not be put
# back. One node at a time on a machine: $LOCK names the running one's DIR.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac	# the daemons' paths name it whole
NODE=e2e-node
NODE_IP=10.217.0.1
BRIDGE=pfe2e0
SERVICE_CIDR=10.217.1.0/24
SOCK=$dir/containerd/containerd.sock
LOCK=/run/profleet-node.owner
# directories the kubelet and containerd use whatever they are told (1.20, 1.6)
OUTSIDE="/var/log/pods /var/log/containers /var/lib/kubelet /run/containerd /opt/containerd"
# what the kubelet and kube-proxy set, put back at stop
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet
vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
kernel.keys.root_maxbytes"

log() { echo "node: $*"; }
die() { echo "node: $*" >&2; exit 1; }

. "$top/e2e/daemon.sh"	# ours, stop_pid, free_port

daemon() { # name command...: started in the background, its log DIR/NAME.log
	name=$1
	shift
	"$@" >>"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}

alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

wait_for() { # seconds what command...
	t=$1 what=$2
	shift 2
	for _ in $(seq $((t * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what: not within $t s"
}

# Alive: the start or the stop of DIR runs, or one of its daemons does.
node_alive() { # dir
	for f in "$1"/*.pid "$1"/cluster/*.pid; do
		[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
	done
	return 1
}

# The lock is a symbolic link to the running node's DIR (made at once, owner
# and all); a stale one is taken over by one rename, which only one start wins.
take_lock() {
	ln -s "$dir" "$LOCK" 2>/dev/null && return 0
	owner=$(readlink "$LOCK" 2>/dev/null || true)
	[ "$owner" = "$dir" ] && return 0
	[ -n "$owner" ] || die "$LOCK is not a lock of this script: remove it by hand"
	node_alive "$owner" && die "another node tier runs in $owner"
	mv "$LOCK" "$LOCK.stale.$$" 2>/dev/null || die "another start is taking $LOCK over"
	echo "node: the run in $owner ended without stopping: its state is put back first" >&2
	if [ -d "$owner/host" ]; then
		(dir=$owner; host_back) || echo "node: the host is not all as it was before $owner" >&2
	fi
	rm -f "$LOCK.stale.$$"
	ln -s "$dir" "$LOCK" 2>/dev/null || die "cannot take $LOCK"
}

release_lock() {
	[ "$(readlink "$LOCK" 2>/dev/null)" = "$dir" ] && rm -f "$LOCK"
	return 0
}

save_host() {
	mkdir -p "$dir/host"
	for s in $SYSCTLS; do
		v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
	done >"$dir/host/sysctl"
	iptables-save >"$dir/host/iptables"
	ls /var/run/netns 2>/dev/null >"$dir/host/netns" || : >"$dir/host/netns"
	# the kubelet writes the containers' logs there whatever its root directory
	ls /var/log/pods /var/log/containers 2>/dev/null >"$dir/host/logs" || : >"$dir/host/logs"
	for d in $OUTSIDE; do [ -e "$d" ] || echo "$d"; done >"$dir/host/absent"
}

network() {
	ip link add "$BRIDGE" type bridge
	touch "$dir/host/bridge"	# ours to remove
	ip addr add "$NODE_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# a Pod's answer from another Pod of the bridge through a Service is de-NATed
	# only when bridged frames pass iptables (built in on some kernels)
	[ -e /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
	sysctl -qw net.ipv4.ip_forward=1
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
		echo "node: no br_netfilter: a Service between Pods of the bridge may not answer" >&2
	# nothing a Pod sends leaves the machine; only the API server reaches the kubelet
	iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
	iptables -I INPUT -i "$BRIDGE" -p tcp --dport 10250 -j DROP
	mkdir -p "$dir/cni/net.d" "$dir/cni/ipam"
	cat >"$dir/cni/net.d/10-profleet-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "profleet-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "10.217.0.0/24", "rangeStart": "10.217.0.16",
                     "rangeEnd": "10.217.0.250", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

containerd_start() {
	mkdir -p "$dir/containerd"
	cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/profleet-pause:e2e"
  # this machine's capability bounding set has no CAP_SYS_RESOURCE: no
  # negative oom_score_adj can be set, the runtime keeps the one it has
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "$dir/containerd/runc"
EOF
	daemon containerd containerd --config "$dir/containerd/config.toml"
	wait_for 30 "containerd's socket" ctr -a "$SOCK" version
}

kubeconfig_for() { # file token
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
current-context: c
clusters:
- name: e2e
  cluster: {server: "$E2E_APISERVER_URL", certificate-authority: "$dir/cluster/certs/apiserver.crt"}
users:
- name: u
  user: {token: $2}
contexts:
- name: c
  context: {cluster: e2e, user: u}
EOF
}

control_plane() {
	kcm=$1 sched=$2
	daemon controller-manager "$kcm" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
		--port=0 --secure-port=0 \
		--service-account-private-key-file="$dir/cluster/sa.key" \
		--root-ca-file="$dir/cluster/certs/apiserver.crt" \
		--service-cluster-ip-range="$SERVICE_CIDR" --controllers='*,-nodeipam'
	daemon scheduler "$sched" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
		--port=0 --secure-port=0
}

kubelet_start() {
	bin=$1
	kubeconfig_for "$dir/kubelet.kubeconfig" "$(cat "$dir/cluster/node.token")"
	echo "nameserver $NODE_IP" >"$dir/resolv.conf"
	cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
# only the API server's proxy reaches it, on the test's own bridge
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
# a shared machine's disk: never evict the test's Pods for it
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
EOF
	daemon kubelet "$bin" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
		--root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
		--container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
		--pod-infra-container-image=localhost/profleet-pause:e2e \
		--hostname-override="$NODE" --node-ip="$NODE_IP"
}

proxy_start() {
	hp=$(free_port 30256)
	mp=$(free_port $((hp + 1)))
	daemon kube-proxy "$1" --kubeconfig "$dir/kubeconfig" --hostname-override="$NODE" \
		--bind-address="$NODE_IP" --cluster-cidr=10.217.0.0/24 --proxy-mode=iptables \
		--conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
		--conntrack-tcp-timeout-close-wait=0 --healthz-bind-address="127.0.0.1:$hp" \
		--metrics-bind-address="127.0.0.1:$mp"
}

dns_hosts() {
	kubectl --kubeconfig "$dir/kubeconfig" get svc -A \
		-o jsonpath='{range .items[*]}{.spec.clusterIP} {.metadata.name}.{.metadata.namespace}.svc.cluster.local{"\n"}{end}' |
		awk '$1 != "None" && $1 != ""' >"$dir/dns.hosts.tmp"
	mv "$dir/dns.hosts.tmp" "$dir/dns.hosts"
}

dns_start() {
	dns_hosts
	daemon dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
		--listen-address="$NODE_IP" --except-interface=lo --local=/cluster.local/ \
		--addn-hosts="$dir/dns.hosts" --pid-file= --user=root
	sleep 0.5
	alive dnsmasq || die "dnsmasq did not start: $(tail -3 "$dir/dnsmasq.log")"
}

node_ready() {
	kubectl --kubeconfig "$dir/kubeconfig" get node "$NODE" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

start() {
	[ -d "$dir/host" ] && die "$dir holds a node already (stop it first)"
	mkdir -p "$dir"
	echo $$ >"$dir/start.pid"
	take_lock
	ip link show "$BRIDGE" >/dev/null 2>&1 && die "a bridge $BRIDGE that is not ours exists"
	for d in "$dir"/*.pid; do [ "$d" = "$dir/start.pid" ] || rm -f "$d"; done
	for c in iptables containerd ctr dnsmasq kubectl; do
		command -v "$c" >/dev/null || die "$c is missing (tests/deps.sh installs it)"
	done
	bins=$(sh "$top/e2e/build-kube.sh" kube-controller-manager kube-scheduler kubelet kube-proxy) ||
		die "the Kubernetes binaries did not build"
	# shellcheck disable=SC2086
	set -- $bins
	save_host
	network
	E2E_BIND_ADDRESS=$NODE_IP E2E_SERVICE_CIDR=$SERVICE_CIDR E2E_NODE_NAME=$NODE \
		sh "$top/e2e/cluster.sh" start "$dir/cluster" || die "the control plane did not start"
	cp "$dir/cluster/kubeconfig" "$dir/kubeconfig"
	. "$dir/cluster/env"
	sed "s#^E2E_KUBECONFIG=.*#E2E_KUBECONFIG=$dir/kubeconfig#" "$dir/cluster/env" >"$dir/env"
	echo "E2E_NODE=$NODE" >>"$dir/env"
	echo "E2E_NODE_IP=$NODE_IP" >>"$dir/env"
	echo "E2E_CONTAINERD=$SOCK" >>"$dir/env"
	containerd_start
	t0=$(date +%s)
	sh "$top/e2e/images.sh" "$SOCK" || die "the images did not build"
	log "images built and imported in $(($(date +%s) - t0)) s"
	control_plane "$1" "$2"
	kubelet_start "$3"
	proxy_start "$4"
	dns_start
	t0=$(date +%s)
	wait_for 120 "node $NODE Ready" node_ready
	log "node $NODE Ready in $(($(date +%s) - t0)) s, on $NODE_IP"
	rm -f "$dir/start.pid"
}

# the Pods' sandboxes and containers, gone whatever the kubelet did
containers_gone() {
	[ -S "$SOCK" ] || return 0
	for t in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
		ctr -a "$SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
	done
	sleep 1
	for t in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
		ctr -a "$SOCK" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
	done
	for c in $(ctr -a "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
		ctr -a "$SOCK" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
	done
}

# The rules and chains of a table that are the kubelet's, kube-proxy's or ours
# (KUBE-*, the bridge), as now and as saved at start; counters left out.
rules_now() { # table
	iptables -t "$1" -S 2>/dev/null | grep -E 'KUBE-|'"$BRIDGE" | sort
}
rules_saved() { # table
	awk -v t="*$1" '$0 == t { in_t = 1; next } /^\*/ { in_t = 0 }
		in_t && /^:/ { print "-N " substr($1, 2) } in_t && /^-A / { print }' "$dir/host/iptables" |
		grep -E 'KUBE-|'"$BRIDGE" | grep -vE '^-N (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)$' | sort
}

# What the run added to a table goes, and nothing else: its rules first (the
# jumps to the chains), then its chains; rules of chains that were there
# before and are gone are put back.
iptables_back() { # table
	t=$1
	rules_now "$t" | grep '^-A ' | while read -r rule; do
		rules_saved "$t" | grep -qxF -- "$rule" && continue
		eval "iptables -t $t -D ${rule#-A }" 2>/dev/null || true
	done
	rules_now "$t" | awk '$1 == "-N" { print $2 }' | while read -r c; do
		rules_saved "$t" | grep -qx -- "-N $c" && continue
		iptables -t "$t" -F "$c" 2>/dev/null || true
		iptables -t "$t" -X "$c" 2>/dev/null || true
	done
	rules_saved "$t" | grep '^-A ' | while read -r rule; do
		rules_now "$t" | grep -qxF -- "$rule" || eval "iptables -t $t $rule" 2>/dev/null || true
	done
}

# what still runs in the Pods' cgroups (containers whose shim was killed)
pods_killed() {
	for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$h" ] || continue
		find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
	sleep 0.5
}

# What is not as it was, one line each (nothing: all put back).
host_diff() {
	ip link show "$BRIDGE" >/dev/null 2>&1 && echo "the bridge $BRIDGE"
	for t in filter nat mangle; do
		now=$(rules_now "$t")
		saved=$(rules_saved "$t")
		[ "$now" = "$saved" ] || echo "iptables $t: now [$(echo "$now" | tr '\n' ';')], was [$(echo "$saved" | tr '\n' ';')]"
	done
	[ "$(ls /var/run/netns 2>/dev/null)" = "$(cat "$dir/host/netns")" ] || echo "network namespaces"
	while IFS='=' read -r k v; do
		[ "$(sysctl -n "$k" 2>/dev/null)" = "$v" ] || echo "sysctl $k"
	done <"$dir/host/sysctl"
	awk -v d="$dir/" 'index($2, d) == 1 { print "mount " $2 }' /proc/self/mounts
	for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$h" ] && echo "cgroup $h"
	done
	while read -r d; do [ -e "$d" ] && echo "$d"; done <"$dir/host/absent"
	return 0
}

host_back() {
	[ -d "$dir/host" ] || return 0
	pods_killed
	# network namespaces made for the Pods (the CNI plugin removes a Pod's veth
	# with them)
	for ns in $(ls /var/run/netns 2>/dev/null); do
		grep -qx "$ns" "$dir/host/netns" && continue
		ip netns delete "$ns" 2>/dev/null || { umount "/var/run/netns/$ns" 2>/dev/null; rm -f "/var/run/netns/$ns"; }
	done
	[ -f "$dir/host/bridge" ] && { ip link del "$BRIDGE" 2>/dev/null || true; }
	for d in /var/log/pods /var/log/containers; do
		for f in $(ls "$d" 2>/dev/null); do
			grep -qx "$f" "$dir/host/logs" || rm -rf "${d:?}/$f"
		done
	done
	for t in filter nat mangle; do iptables_back "$t"; done
	while IFS='=' read -r k v; do
		sysctl -qw "$k=$v" 2>/dev/null || true
	done <"$dir/host/sysctl"
	# the Pods' cgroups, deepest first
	for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$h" ] && { find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
	done
	# mounts under DIR: the Pods' volumes, the containers' root file systems
	awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	while read -r d; do
		case $d in /var/lib/kubelet | /run/containerd | /opt/containerd | /var/log/pods | /var/log/containers)
			rm -rf "$d" ;;
		esac
	done <"$dir/host/absent"
	left=$(host_diff)
	if [ -n "$left" ]; then
		echo "node: not put back:" >&2
		echo "$left" | sed 's/^/  /' >&2
		return 1
	fi
	rm -rf "$dir/host"
}

stop() {
	[ -d "$dir" ] || die "no $dir"
	owner=$(readlink "$LOCK" 2>/dev/null || true)
	if [ -n "$owner" ] && [ "$owner" != "$dir" ] && node_alive "$owner"; then
		die "the node tier running is $owner's: $dir is left as it is"
	fi
	echo $$ >"$dir/stop.pid"	# (alive until the host is back)
	stop_pid "$dir/start.pid" node.sh
	# nothing makes Pods again, then the Pods go through their kubelet, so that
	# their networks go the proper way
	stop_pid "$dir/controller-manager.pid" "$dir"
	stop_pid "$dir/scheduler.pid" "$dir"
	if alive kubelet && [ -f "$dir/kubeconfig" ]; then
		kubectl --kubeconfig "$dir/kubeconfig" delete pods -A --all --force --grace-period=0 \
			--wait=false >/dev/null 2>&1 || true
		for _ in $(seq 60); do
			[ -z "$(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null)" ] && break
			sleep 0.5
		done
	fi
	stop_pid "$dir/kube-proxy.pid" "$dir"
	stop_pid "$dir/kubelet.pid" "$dir"
	stop_pid "$dir/dnsmasq.pid" "$dir"
	containers_gone
	stop_pid "$dir/containerd.pid" "$dir"
	# a shim outlives its containerd: ours are those of this socket
	pkill -9 -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
	sh "$top/e2e/cluster.sh" stop "$dir/cluster" >/dev/null 2>&1 || true
	rc=0
	host_back || rc=1
	# a host not all put back keeps the lock: the next start tries again
	[ $rc -eq 0 ] && release_lock
	rm -f "$dir/stop.pid"
	return $rc
}

case $cmd in
start) start ;;
stop) stop ;;
dns)
	dns_hosts
	alive dnsmasq && kill -HUP "$(cat "$dir/dnsmasq.pid")"
	;;
restart-containerd)
	stop_pid "$dir/containerd.pid" "$dir"
	containerd_start
	;;
*) die "unknown command $cmd" ;;
esac
