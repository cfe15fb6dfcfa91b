# Shared by the e2e tests: TAP output, a work directory, waiting.
# shellcheck shell=sh
TOP=${PROFLEET_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${PROFLEET_BUILD:-$TOP/build}
n=0
failures=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
verdict() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }	# after a compound test
note() { echo "# $*"; }
bail() { echo "Bail out! $*"; exit 1; }

# workdir NAME: a fresh directory in $W, kept by keep_or_remove when a check failed or E2E_KEEP is set
workdir() { W=$(mktemp -d "/tmp/profleet-$1.XXXXXX") || bail "cannot make a work directory"; }
keep_or_remove() {
	if [ "$failures" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
		echo "# logs kept in $W"
	else
		rm -rf "$W"
	fi
}

# wait_until TIMEOUT_S COMMAND...: polls every 0.2 s
wait_until() {
	t=$1
	shift
	end=$(($(date +%s) + t))
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

# ---- a cluster without kubelets: Pod objects, their status, containers as cgroups ----
# These use k (kubectl on the test's cluster), W (the work directory) and, for
# workload, CG (where the pod cgroups go) and BUSY.

# pod NS NAME NODE LABELS_JSON [SERVICE_ACCOUNT]: creates a Pod object, prints its uid
pod() {
	cat >"$W/pod-$2.json" <<EOF
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$2", "namespace": "$1", "labels": $4},
 "spec": {"nodeName": "$3", "serviceAccountName": "${5:-default}", "automountServiceAccountToken": false,
	  "containers": [{"name": "app", "image": "busybox"}, {"name": "sidecar", "image": "busybox"}]}}
EOF
	k create -f "$W/pod-$2.json" >/dev/null && k get pod -n "$1" "$2" -o jsonpath='{.metadata.uid}'
}

# status_merge NS POD JSON: JSON's fields into the pod's status, through the
# status subresource (kubectl v1.20 has no --subresource: the pod is read,
# merged with jq and PUT raw)
status_merge() {
	k get pod -n "$1" "$2" -o json | jq --argjson s "$3" '.status += $s' >"$W/status-$2.json" &&
		k replace --raw "/api/v1/namespaces/$1/pods/$2/status" -f "$W/status-$2.json" >/dev/null
}

# running NS NAME CID_APP CID_SIDECAR: what a kubelet would report
running() { # NS POD CID1 CID2 [POD_IP, default 127.0.0.1: where our agents connect from]
	ip_=${5:-127.0.0.1}
	status_merge "$1" "$2" "{\"phase\": \"Running\",
		\"podIP\": \"$ip_\", \"podIPs\": [{\"ip\": \"$ip_\"}],
		\"containerStatuses\": [
		{\"name\": \"app\", \"containerID\": \"containerd://$3\", \"ready\": true, \"restartCount\": 0,
		 \"image\": \"busybox\", \"imageID\": \"\", \"state\": {\"running\": {}}},
		{\"name\": \"sidecar\", \"containerID\": \"containerd://$4\", \"ready\": true, \"restartCount\": 0,
		 \"image\": \"busybox\", \"imageID\": \"\", \"state\": {\"running\": {}}}]}"
}

cid() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# pod_cgroup POD_UID CID FORM: makes the container's cgroup as a kubelet would (FORM
# systemd or cgroupfs) under CG, prints its path
pod_cgroup() {
	uid_=$(echo "$1" | tr - _)
	case $3 in
	systemd) dir=$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$uid_.slice/cri-containerd-$2.scope ;;
	*) dir=$CG/kubepods/besteffort/pod$1/$2 ;;
	esac
	mkdir -p "$dir" && echo "$dir"
}

# workload POD_UID CID NAME FORM [ENV=VALUE]: a busy process named NAME in the container's cgroup
workload() {
	dir=$(pod_cgroup "$1" "$2" "$4")
	cp "$BUSY" "$W/$3"
	# starts inside the cgroup: the shell moves itself there, then execs
	sh -c "echo \$\$ > '$dir/cgroup.procs' && exec env ${5:-} nice -n 10 '$W/$3' 100000000" &
	PIDS="$PIDS $!"
	echo $! >"$W/pid-$3"
}

token() { # SA_NS SA POD AUDIENCE: a service-account token bound to the pod
	puid=$(k get pod -n "$1" "$3" -o jsonpath='{.metadata.uid}')
	echo "{\"apiVersion\": \"authentication.k8s.io/v1\", \"kind\": \"TokenRequest\",
	       \"spec\": {\"audiences\": [\"$4\"], \"expirationSeconds\": 3600,
			  \"boundObjectRef\": {\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"name\": \"$3\", \"uid\": \"$puid\"}}}" \
		>"$W/tokreq.json"
	k create --raw "/api/v1/namespaces/$1/serviceaccounts/$2/token" -f "$W/tokreq.json" | jq -r .status.token
}
