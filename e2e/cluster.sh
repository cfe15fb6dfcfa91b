#!/bin/sh
# A real, minimal control plane on 127.0.0.1 for the e2e tests and benchmarks:
# Debian's etcd and kube-apiserver v1.20.2 (built by e2e/build-apiserver.sh).
# No kubelet, scheduler or controller-manager: tests create Pod objects with
# spec.nodeName and patch their status themselves.
#
#   e2e/cluster.sh start DIR            etcd + apiserver; writes DIR/kubeconfig and DIR/env
#   e2e/cluster.sh stop DIR             stops both (DIR is kept, with the logs)
#   e2e/cluster.sh stop-apiserver DIR   stops only the apiserver (etcd keeps the data)
#   e2e/cluster.sh start-apiserver DIR  starts it again with the same flags and port
#
# DIR/env has E2E_APISERVER_URL, E2E_ADMIN_TOKEN, E2E_ALICE_TOKEN (a user with no
# rights), E2E_KUBECONFIG. Ports: E2E_ETCD_PORT, E2E_ETCD_PEER_PORT,
# E2E_APISERVER_PORT, else free ones are picked.
# For a cluster with a real node (e2e/node.sh): E2E_BIND_ADDRESS (the apiserver's
# address, default 127.0.0.1), E2E_SERVICE_CIDR (default 10.96.0.0/24),
# E2E_NODE_NAME (a kubelet's credentials, DIR/node.token, in group system:nodes;
# and the ServiceAccount admission plugin on, for its Pods' tokens).
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)

. "$top/e2e/daemon.sh"	# ours, stop_pid, free_port

start_apiserver() {
	. "$dir/ports"
	admission=--disable-admission-plugins=ServiceAccount
	kubelet_addr=""
	if [ -n "$NODE_NAME" ]; then	# (a node's name is not in any DNS here)
		admission=--enable-admission-plugins=ServiceAccount
		kubelet_addr=--kubelet-preferred-address-types=InternalIP
	fi
	"$APISERVER" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--secure-port="$API_PORT" --bind-address="$BIND" --advertise-address="$BIND" \
		--cert-dir="$dir/certs" \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-account-key-file="$dir/sa.key" \
		--service-account-signing-key-file="$dir/sa.key" \
		--api-audiences=https://kubernetes.default.svc,profleet \
		--authorization-mode=Node,RBAC --token-auth-file="$dir/tokens.csv" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		"$admission" ${kubelet_addr:+"$kubelet_addr"} \
		--enable-priority-and-fairness=false \
		>>"$dir/apiserver.log" 2>&1 &
	echo $! >"$dir/apiserver.pid"
	# ready: /readyz answers ok (up to 60 s)
	for _ in $(seq 300); do
		if curl -skf -H "Authorization: Bearer $(cat "$dir/admin.token")" \
			"https://$BIND:$API_PORT/readyz" 2>/dev/null | grep -q ok; then
			return 0
		fi
		kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || break
		sleep 0.2
	done
	echo "cluster: kube-apiserver did not become ready; its log ends with:" >&2
	tail -20 "$dir/apiserver.log" >&2
	return 1
}

case $cmd in
start)
	[ -f "$dir/etcd.pid" ] && kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null &&
		{ echo "cluster: already running in $dir" >&2; exit 1; }
	APISERVER=$(sh "$top/e2e/build-apiserver.sh")
	mkdir -p "$dir/certs"
	ETCD_PORT=${E2E_ETCD_PORT:-$(free_port 23790)}
	ETCD_PEER_PORT=${E2E_ETCD_PEER_PORT:-$(free_port $((ETCD_PORT + 1)))}
	API_PORT=${E2E_APISERVER_PORT:-$(free_port 26443)}
	printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\nAPISERVER=%s\nBIND=%s\nSERVICE_CIDR=%s\nNODE_NAME=%s\n' \
		"$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$APISERVER" "${E2E_BIND_ADDRESS:-127.0.0.1}" \
		"${E2E_SERVICE_CIDR:-10.96.0.0/24}" "${E2E_NODE_NAME:-}" >"$dir/ports"
	. "$dir/ports"
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin.token"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/alice.token"
	{
		echo "$(cat "$dir/admin.token"),admin,admin,\"system:masters\""
		echo "$(cat "$dir/alice.token"),alice,alice"
		if [ -n "$NODE_NAME" ]; then
			head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/node.token"
			echo "$(cat "$dir/node.token"),system:node:$NODE_NAME,node-$NODE_NAME,\"system:nodes\""
		fi
	} >"$dir/tokens.csv"
	etcd --name e2e --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
		>"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q true && break
		sleep 0.1
	done
	start_apiserver || exit 1
	# the apiserver's self-signed serving certificate (for $BIND and the first
	# service address) is the CA
	cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: e2e
  cluster:
    server: https://$BIND:$API_PORT
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user: {token: $(cat "$dir/admin.token")}
- name: alice
  user: {token: $(cat "$dir/alice.token")}
contexts:
- name: admin
  context: {cluster: e2e, user: admin}
- name: alice
  context: {cluster: e2e, user: alice}
EOF
	cat >"$dir/env" <<EOF
E2E_APISERVER_URL=https://$BIND:$API_PORT
E2E_ADMIN_TOKEN=$(cat "$dir/admin.token")
E2E_ALICE_TOKEN=$(cat "$dir/alice.token")
E2E_KUBECONFIG=$dir/kubeconfig
EOF
	kubectl --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null ||
		{ echo "cluster: kubectl cannot reach the apiserver with $dir/kubeconfig" >&2; exit 1; }
	echo "cluster: kube-apiserver on https://$BIND:$API_PORT, etcd on 127.0.0.1:$ETCD_PORT"
	;;
stop)
	stop_pid "$dir/apiserver.pid" "$dir"
	stop_pid "$dir/etcd.pid" "$dir"
	;;
stop-apiserver)
	stop_pid "$dir/apiserver.pid" "$dir"
	;;
start-apiserver)
	start_apiserver
	;;
*)
	echo "cluster: unknown command $cmd" >&2
	exit 2
	;;
esac
