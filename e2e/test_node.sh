#!/bin/sh
# The node tier (issue 15): a real node (e2e/node.sh: kubelet, containerd,
# kube-proxy, the control plane) with the chart installed from our own images:
# the controller Deployment (2 replicas) and the agent DaemonSet run as Pods,
# next to workload Pods. Checks that the profiles carry what containerd and the
# API server say of the Pods, that what no policy selects is not profiled, that
# kubectl profleet works through the API server to the controller Pod, and
# that the fleet survives its Pods being deleted. TAP output.
# shellcheck shell=sh
set -u
. "$(dirname "$0")/lib.sh"
R=$BUILD/tools/chartrender
CHART=$TOP/charts/profleet
SYS=profleet-system
SHOP=shop
workdir node
N=$W/node

cleanup() {
	[ -n "${HOSTPID:-}" ] && kill "$HOSTPID" 2>/dev/null
	sh "$TOP/e2e/node.sh" stop "$N" >"$W/node-stop.log" 2>&1
	verdict "the node stopped and the host is as it was (bridge, iptables, sysctls, mounts, cgroups)" $?
	[ -s "$W/node-stop.log" ] && sed 's/^/# /' "$W/node-stop.log"
	# the images and the Pods' files (a gigabyte) go even when the logs stay
	rm -rf "$N/containerd/root" "$N/kubelet" 2>/dev/null
	keep_or_remove
	echo "1..$n"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	skip "the node tier needs root (a kubelet, containerd, a bridge)"
	trap - EXIT
	echo "1..$n"
	exit 0
fi
[ -x "$R" ] || bail "$R is not built (make tests)"
command -v kubectl >/dev/null || bail "kubectl is missing"

t0=$(date +%s)
sh "$TOP/e2e/node.sh" start "$N" >"$W/node-start.log" 2>&1
rc=$?
sed 's/^/# /' "$W/node-start.log" | grep -E '^# (node|images):' 
verdict "a node: kubelet, containerd, kube-proxy and the control plane, the images built ($(($(date +%s) - t0)) s)" $rc
[ $rc -eq 0 ] || { tail -30 "$W/node-start.log" | sed 's/^/# /'; bail "no node"; }
k() { kubectl --kubeconfig "$N/kubeconfig" "$@"; }
. "$N/env"

# ---- the chart, as a user installs it (with our images) ------------------------
"$R" --namespace "$SYS" --name profleet \
	--set agent.image.repository=localhost/profleet-agent --set agent.image.tag=e2e \
	--set controller.image.repository=localhost/profleet-controller --set controller.image.tag=e2e \
	--set agent.image.pullPolicy=Never --set controller.image.pullPolicy=Never \
	--set agent.intervalSeconds=10 --set agent.tableCache.hostPath="$W/unwind" \
	--set controller.logLevel=debug \
	"$CHART" >"$W/chart.yaml" 2>"$W/chart.err"
check "the chart renders with the e2e images" [ $? -eq 0 ]
k create namespace "$SYS" >/dev/null
k apply -f "$CHART/crds/" >"$W/crds.log" 2>&1 &&
	k wait --for condition=established --timeout=60s crd --all >/dev/null 2>&1
verdict "the CRDs are established" $?
k apply -f "$W/chart.yaml" >"$W/apply.log" 2>&1
verdict "every object of the chart applies" $?
sh "$TOP/e2e/node.sh" dns "$N"
CTL=$(k -n "$SYS" get deploy -l app.kubernetes.io/component=controller -o jsonpath='{.items[0].metadata.name}')
AGENT=$(k -n "$SYS" get ds -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.name}')
t0=$(date +%s)
k -n "$SYS" rollout status "deploy/$CTL" --timeout=240s >"$W/rollout-ctl.log" 2>&1
verdict "the controller Deployment: 2 of 2 replicas Ready ($(($(date +%s) - t0)) s)" $?
k -n "$SYS" rollout status "ds/$AGENT" --timeout=240s >"$W/rollout-agent.log" 2>&1
verdict "the agent DaemonSet: Ready on the node ($(($(date +%s) - t0)) s)" $?
sc=$(k -n "$SYS" get pods -l app.kubernetes.io/component=agent \
	-o jsonpath='{.items[0].spec.hostPID} {.items[0].spec.containers[0].securityContext.privileged} {.items[0].spec.containers[0].securityContext.capabilities.add}')
check "the agent's Pod: the host's PIDs, not privileged ($sc)" \
	sh -c "echo '$sc' | grep -q '^true false '"
# what the runtime really gave the agent's process: the capabilities, no more
# (DAC_READ_SEARCH 2, SYS_PTRACE 19, SYSLOG 34, PERFMON 38, BPF 39), and a read-only root
AUID=$(k -n "$SYS" get pods -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.uid}')
APID=""
for p in $(pgrep -x profleet-agent); do
	grep -q "pod$AUID" "/proc/$p/cgroup" 2>/dev/null && APID=$p
done
capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/${APID:-0}/status" 2>/dev/null)
check "the agent's process: CapEff $capeff is BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH, SYSLOG and nothing else" \
	[ "$capeff" = 000000c400080004 ]
check "the agent's process: its root file system is read-only" \
	sh -c "awk '\$5 == \"/\" { print \$6 }' '/proc/${APID:-0}/mountinfo' | grep -q '^ro'"
dump_sys() { # the system Pods' state and logs (kept when a check failed)
	k -n "$SYS" get pods -o wide >"$W/sys-pods.txt" 2>&1
	k -n "$SYS" describe pods >"$W/sys-describe.txt" 2>&1
	for p in $(k -n "$SYS" get pods -o name 2>/dev/null); do
		k -n "$SYS" logs "$p" --all-containers >"$W/log-${p#pod/}.txt" 2>&1
	done
}
AGENT_POD=$(k -n "$SYS" get pods -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.name}')

# ---- workloads: two selected, one not; and a process of the host -------------------
k create namespace "$SHOP" >/dev/null
pod() { # name labels command...
	name=$1 labels=$2
	shift 2
	args=""
	for a in "$@"; do args="$args${args:+, }\"$a\""; done
	cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: $SHOP, labels: {$labels}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/profleet-workload:e2e
    imagePullPolicy: Never
    command: [$args]
---
EOF
}
{
	pod web "app: web" /opt/workloads/busy 100000000
	pod py "app: py, tier: gold" python3 /opt/workloads/python/ratio.py 100000
	pod other "app: other" /opt/workloads/busy 100000000
	# built without frame pointers, and a stripped Go binary
	pod nofp "app: nofp, tier: gold" /opt/workloads/nofp/recurse 100000 40
	pod go "app: go, tier: gold" /opt/workloads/go/hot-stripped 100000
} >"$W/workloads.yaml"
k apply -f "$W/workloads.yaml" >/dev/null
k -n "$SHOP" wait --for=condition=Ready pod --all --timeout=120s >"$W/wait-pods.log" 2>&1
verdict "five workload Pods Running from the workload image" $?
"$BUILD/workloads/busy" 100000000 >/dev/null 2>&1 &
HOSTPID=$!
cat >"$W/policies.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: web, namespace: $SHOP}
spec:
  selector: {podSelector: {matchLabels: {app: web}}}
  sampling: {frequencyHz: 49}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingPolicy
metadata: {name: gold}
spec:
  selector: {podSelector: {matchLabels: {tier: gold}}}
  sampling: {frequencyHz: 49}
EOF
k apply -f "$W/policies.yaml" >/dev/null
verdict "a ProfilingPolicy and a ClusterProfilingPolicy applied" $?

uid() { k -n "$SHOP" get pod "$1" -o jsonpath='{.metadata.uid}'; }
cid() { k -n "$SHOP" get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}' | sed 's#^containerd://##'; }
UID_WEB=$(uid web) UID_PY=$(uid py) UID_OTHER=$(uid other)
CID_WEB=$(cid web) CID_PY=$(cid py)
note "web: pod $UID_WEB container $CID_WEB; py: pod $UID_PY"
# every check below greps for these: an empty one would match anything
for v in "$UID_WEB" "$UID_PY" "$UID_OTHER"; do
	echo "$v" | grep -qE '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' || bail "a pod UID is not one: '$v'"
done
for v in "$CID_WEB" "$CID_PY"; do
	echo "$v" | grep -qE '^[0-9a-f]{64}$' || bail "a container id is not one: '$v'"
done
ctr -a "$E2E_CONTAINERD" -n k8s.io containers ls -q >"$W/ctr.txt" 2>&1
check "the kubelet's container ids are containerd's (ctr lists web's and py's)" \
	sh -c "[ \$(printf %s '$CID_WEB' | wc -c) -eq 64 ] && grep -qx '$CID_WEB' '$W/ctr.txt' && grep -qx '$CID_PY' '$W/ctr.txt'"
# the containers are where the agent looks: the kubelet's cgroups, named by pod and container id
check "the web container's cgroup: kubepods/.../pod$UID_WEB/$CID_WEB" \
	sh -c "find /sys/fs/cgroup/ -maxdepth 6 -type d -path '*kubepods*pod$UID_WEB/$CID_WEB' 2>/dev/null | grep -q ."

wait_until 60 sh -c "[ \"\$(kubectl --kubeconfig '$N/kubeconfig' -n $SHOP get profilingpolicy web -o jsonpath='{.status.targetedPods}')\" = 1 ] &&
	[ \"\$(kubectl --kubeconfig '$N/kubeconfig' get clusterprofilingpolicy gold -o jsonpath='{.status.targetedPods}')\" = 3 ]"
check "the namespaced policy's status: 1 pod targeted" \
	[ "$(k -n "$SHOP" get profilingpolicy web -o jsonpath='{.status.targetedPods}/{.status.targetedNodes}')" = 1/1 ]
check "the cluster policy's status: 3 pods targeted" \
	[ "$(k get clusterprofilingpolicy gold -o jsonpath='{.status.targetedPods}/{.status.targetedNodes}')" = 3/1 ]

# ---- profiles, from the leader's store through the API server ------------------------
# (each replica has its own store: the leader's is the one the agents fill)
leader() { k -n "$SYS" get lease "$CTL" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
get() { # PATH OUT: prints the HTTP status of the leader's answer
	curl -s --cacert "$N/cluster/certs/apiserver.crt" -o "$2" -w '%{http_code}' \
		-H "Authorization: Bearer $E2E_ADMIN_TOKEN" -H "X-Profleet-Token: $E2E_ADMIN_TOKEN" \
		"$E2E_APISERVER_URL/api/v1/namespaces/$SYS/pods/$(leader):7471/proxy$1"
}
has() { # PATH OUT WORD: the profile holds samples in a function named WORD
	[ "$(get "$1" "$2")" = 200 ] && go tool pprof -raw "$2" >"$2.raw" 2>&1 && grep -q "$3" "$2.raw"
}
LEADER=$(leader)
check "a controller Pod leads: $LEADER" sh -c "[ -n '$LEADER' ] && kubectl --kubeconfig '$N/kubeconfig' -n $SYS get pod '$LEADER' >/dev/null"
WLOC=/api/v1/namespaces/$SHOP/profilingpolicies/web/profile
t0=$(date +%s)
wait_until 90 has "$WLOC" "$W/web.pb.gz" busy_loop
verdict "the store holds web's profile with its functions (busy_loop), $(($(date +%s) - t0)) s after the policy's status" $?
go tool pprof -tags "$W/web.pb.gz" >"$W/web.tags" 2>&1
check "web's samples carry the real pod UID" sh -c "grep -A3 '^ *pod_uid:' '$W/web.tags' | grep -q '$UID_WEB'"
check "web's samples carry the container id containerd reports" grep -q "$CID_WEB" "$W/web.tags"
check "web's samples carry the container's name (app) and the node's ($E2E_NODE)" \
	sh -c "grep -A2 '^ *container:' '$W/web.tags' | grep -qw app && grep -q '$E2E_NODE' '$W/web.tags'"
check "no other pod's UID in web's profile (other, py)" \
	sh -c "grep -q '^ *pod_uid:' '$W/web.tags' && ! grep -q '$UID_OTHER' '$W/web.tags' && ! grep -q '$UID_PY' '$W/web.tags'"
GLOC=/api/v1/clusterprofilingpolicies/gold/profile
# -traces: a sample's labels ("key: value"), then its frames, leaf first, one a line
recursion_whole() {
	awk '/^-----------/ { if (leaf && m) f = 1; n = 0; rec = 0; leaf = 0; m = 0; next }
		/^ *[a-z_]+: / { next }
		{ fn = $NF; n++; if (n == 1 && fn == "leaf_work") leaf = 1; if (fn == "recurse") rec++
		  if (fn == "main" && rec >= 41) m = 1 }
		END { if (leaf && m) f = 1; exit !f }' "$W/gold.traces"
}
# kernel frames: named from kallsyms (the agent can read the addresses: SYSLOG), none "[kernel]"
kernel_count() {
	go tool pprof -raw "$W/gold.pb.gz" 2>/dev/null | awk '
		/^Locations/ { loc = 1; next } /^Mappings/ { loc = 0; map = 1; next }
		loc { l[++nl] = $0 } map && /\[kernel\.kallsyms\]/ { sub(":", "", $1); km = $1 }
		END { for (i = 1; i <= nl; i++) if (index(l[i], " M=" km " ")) { split(l[i], f, " "); if (f[4] == "[kernel]") bad++; else good++ }
			print good + 0, bad + 0 }' >"$W/kernel.count"
	awk '{ exit !($1 > 0 && $2 == 0) }' "$W/kernel.count"
}
# the store merges every upload: wait until it holds all that the checks look for
# (the first uploads can precede the unwind tables and hold no kernel frame)
gold_whole() {
	has "$GLOC" "$W/gold.pb.gz" hot_three && grep -q main.hotLoop "$W/gold.pb.gz.raw" &&
		go tool pprof -traces "$W/gold.pb.gz" >"$W/gold.traces" 2>&1 && recursion_whole && kernel_count
}
t0=$(date +%s)
wait_until 150 gold_whole
note "the cluster policy's profile held every kind of frame $(($(date +%s) - t0)) s after web's"
go tool pprof -tags "$W/gold.pb.gz" >"$W/gold.tags" 2>&1
go tool pprof -traces "$W/gold.pb.gz" >"$W/gold.traces" 2>&1
check "the cluster policy's profile: the py Pod's Python frames (hot_three), its UID and container id" \
	sh -c "grep -q hot_three '$W/gold.pb.gz.raw' && grep -q '$UID_PY' '$W/gold.tags' && grep -q '$CID_PY' '$W/gold.tags'"
check "the cluster policy's profile: the frame-pointer-less recursion whole (leaf_work, 41 recurse, main)" \
	recursion_whole
kernel_count
check "kernel frames are named from kallsyms (named, unnamed: $(cat "$W/kernel.count"))" \
	awk '{ exit !($1 > 0 && $2 == 0) }' "$W/kernel.count"
check "the cluster policy's profile: the stripped Go binary's stack (runtime.main -> main.main -> main.hotLoop)" \
	awk 'BEGIN { RS = "-----------+" } /main\.hotLoop/ && /main\.main/ && /runtime\.main/ { f = 1 } END { exit !f }' "$W/gold.traces"
check "no unselected pod and no host process in the profiles (other's UID, the host's busy)" \
	sh -c "grep -q '^ *pod_uid:' '$W/gold.tags' && grep -q '^ *pid:' '$W/gold.tags' &&
		! grep -q '$UID_OTHER' '$W/gold.tags' '$W/web.tags' && ! grep -q '$UID_WEB' '$W/gold.tags' &&
		! grep -qE '^ *[0-9.]+[mun]?s +\\([ 0-9.]+%\\): $HOSTPID\$' '$W/gold.tags' '$W/web.tags'"

# ---- kubectl profleet, as a user runs it (through the Service: either replica) ------
PATH=$TOP/plugin:$PATH KUBECONFIG=$N/kubeconfig
export PATH KUBECONFIG
kubectl profleet record -n "$SHOP" -l app=web -d 8 -f 49 \
	--controller-namespace "$SYS" --controller-service "$CTL" -o "$W/rec.svg" >"$W/rec.log" 2>&1
check "kubectl profleet record: an SVG flame graph of web through the API server" \
	sh -c "xmllint --noout '$W/rec.svg' 2>/dev/null && grep -q busy_loop '$W/rec.svg'"
[ -s "$W/rec.svg" ] || sed 's/^/# /' "$W/rec.log"
kubectl profleet record -n "$SHOP" -l app=web -d 8 -f 49 \
	--controller-namespace "$SYS" --controller-service "$CTL" -o "$W/rec.pb.gz" >"$W/rec2.log" 2>&1
check "kubectl profleet record: a pprof (go tool pprof reads busy_loop)" \
	sh -c "go tool pprof -raw '$W/rec.pb.gz' 2>/dev/null | grep -q busy_loop"

dump_sys	# before the faults take Pods and their logs away

# ---- an OTLP receiver Pod behind a Service, as a ClusterProfilingBackend --------------
mkdir -p "$W/otlp"
cat >"$W/otlp.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: otlp-sink, namespace: $SHOP, labels: {app: otlp-sink}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sink
    image: localhost/profleet-workload:e2e
    imagePullPolicy: Never
    command: [/opt/workloads/httpsink, /sink, "4318", "200"]
    env: [{name: HTTPSINK_ANY, value: "1"}]
    volumeMounts: [{name: sink, mountPath: /sink}]
  volumes: [{name: sink, hostPath: {path: "$W/otlp", type: Directory}}]
---
apiVersion: v1
kind: Service
metadata: {name: otlp-sink, namespace: $SHOP}
spec: {selector: {app: otlp-sink}, ports: [{port: 4318, targetPort: 4318}]}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: otlp-sink}
spec: {type: otlp-http, url: "http://otlp-sink.$SHOP.svc:4318", allowedNamespaces: [$SHOP]}
YAML
k apply -f "$W/otlp.yaml" >/dev/null && sh "$TOP/e2e/node.sh" dns "$N" &&
	k -n "$SHOP" wait --for=condition=Ready pod/otlp-sink --timeout=60s >/dev/null 2>&1
verdict "an OTLP receiver Pod and its Service" $?
k -n "$SHOP" patch profilingpolicy web --type merge -p '{"spec":{"export":{"backendRefs":["otlp-sink"]}}}' >/dev/null
otlp_has() {
	for b in "$W"/otlp/body-*.bin; do
		[ -f "$b" ] && { zcat "$b" 2>/dev/null || cat "$b"; } | grep -aq "$UID_WEB" && return 0
	done
	return 1
}
wait_until 60 otlp_has
verdict "web's profiles reach the OTLP Pod through its Service, with the pod's UID ($(ls "$W/otlp" | grep -c '^body') requests)" $?
k -n "$SHOP" patch profilingpolicy web --type json -p '[{"op":"remove","path":"/spec/export"}]' >/dev/null

# ---- faults ----------------------------------------------------------------------------
running_agent() {
	k -n "$SYS" get pods -l app.kubernetes.io/component=agent \
		-o jsonpath='{range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\n"}{end}' 2>/dev/null | head -1
}
# the agent Pod deleted: the DaemonSet makes another, profiling goes on
metric() { # pod name: a metric of an agent's /metrics through the API server
	k get --raw "/api/v1/namespaces/$SYS/pods/$1:7472/proxy/metrics" 2>/dev/null |
		awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'
}
note "the agent's drops before its deletion: unattributed $(metric "$AGENT_POD" 'profleet_agent_samples_dropped_total{reason="unattributed"}'), all $(metric "$AGENT_POD" profleet_agent_samples_dropped_total)"
k -n "$SYS" delete pod "$AGENT_POD" --wait=false >/dev/null
k -n "$SYS" wait --for=delete "pod/$AGENT_POD" --timeout=60s >/dev/null 2>&1
k -n "$SYS" rollout status "ds/$AGENT" --timeout=120s >/dev/null 2>&1
verdict "the agent Pod deleted: the DaemonSet's rollout is whole again" $?
NEW_AGENT=$(running_agent)
check "the DaemonSet runs another agent ($NEW_AGENT)" sh -c "[ -n '$NEW_AGENT' ] && [ '$NEW_AGENT' != '$AGENT_POD' ]"
since=$(date +%s)
new_agent_exports() {
	[ "$(metric "$NEW_AGENT" 'profleet_agent_exports_total{backend="@store",result="sent"}')" -gt 0 ] &&
		has "$WLOC?from=$since" "$W/web2.pb.gz" busy_loop
}
wait_until 90 new_agent_exports
verdict "profiling goes on: the new agent's profiles stored ($(metric "$NEW_AGENT" 'profleet_agent_exports_total{backend="@store",result="sent"}') sent) with web's samples" $?

dump_sys
# the leader deleted: another replica leads within the Lease's time, the agent
# follows (the old leader gives the Lease up as it stops: the standby or the
# Deployment's new Pod, whichever asks first, takes it)
LEADER=$(leader)
STANDBY=$(k -n "$SYS" get pods -l app.kubernetes.io/component=controller -o name | sed 's#^pod/##' | grep -vx "$LEADER" | head -1)
t0=$(date +%s)
k -n "$SYS" delete pod "$LEADER" --wait=false >/dev/null
wait_until 60 sh -c "l=\$(kubectl -n $SYS get lease $CTL -o jsonpath='{.spec.holderIdentity}'); [ -n \"\$l\" ] && [ \"\$l\" != '$LEADER' ]"
took=$(($(date +%s) - t0))
NEW_LEADER=$(leader)
check "the leader Pod deleted: $NEW_LEADER leads ($([ "$NEW_LEADER" = "$STANDBY" ] && echo the standby || echo the new Pod)) within the Lease's 15 s ($took s)" \
	sh -c "[ -n '$NEW_LEADER' ] && [ '$NEW_LEADER' != '$LEADER' ] && [ $took -le 20 ]"
since=$(date +%s)
wait_until 90 has "$WLOC?from=$since" "$W/web3.pb.gz" busy_loop
verdict "the agent reconnects through the Service: the new leader's store fills ($(($(date +%s) - t0)) s after the deletion)" $?

# a container that restarts: a new container id, and its profiles say so (the
# workload is its container's PID 1: only SIGKILL reaches it from outside)
for p in $(pgrep -f '/opt/workloads/busy 100000000'); do
	grep -q "pod$UID_WEB" "/proc/$p/cgroup" 2>/dev/null && kill -KILL "$p"
done
wait_until 60 sh -c "[ \"\$(kubectl -n $SHOP get pod web -o jsonpath='{.status.containerStatuses[0].restartCount}')\" -ge 1 ] &&
	[ \"\$(kubectl -n $SHOP get pod web -o jsonpath='{.status.containerStatuses[0].ready}')\" = true ]"
CID_WEB2=$(cid web)
check "web's container restarted with a new id" sh -c "echo '$CID_WEB2' | grep -qE '^[0-9a-f]{64}\$' && [ '$CID_WEB2' != '$CID_WEB' ]"
since=$(date +%s)
new_cid() {
	[ -n "$CID_WEB2" ] && [ "$CID_WEB2" != "$CID_WEB" ] && has "$WLOC?from=$since" "$W/web4.pb.gz" busy_loop &&
		go tool pprof -tags "$W/web4.pb.gz" 2>/dev/null | grep -q "$CID_WEB2"
}
wait_until 90 new_cid
verdict "web's new profiles carry the new container id" $?

# containerd restarted under running Pods: they keep running, profiling goes on
sh "$TOP/e2e/node.sh" restart-containerd "$N" >"$W/restart-containerd.log" 2>&1
verdict "containerd restarted" $?
since=$(date +%s)
wait_until 90 has "$WLOC?from=$since" "$W/web5.pb.gz" busy_loop
verdict "profiling goes on after containerd's restart" $?
check "the workload Pods kept their containers (py never restarted)" \
	[ "$(k -n "$SHOP" get pod py -o jsonpath='{.status.containerStatuses[0].restartCount}')" = 0 ]

[ "$failures" -gt 0 ] && dump_sys
exit 0
