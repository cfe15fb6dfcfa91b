#!/bin/sh
# End-to-end: the CRDs, profleet-controller and two agents posing as two nodes,
# against a real kube-apiserver + etcd (e2e/cluster.sh), or against the cluster
# in E2E_KUBECONFIG. Workloads run in kubelet-style pod cgroups on this host;
# each agent only gets its own "node"'s containers. TAP output.
# shellcheck shell=sh
set -u
. "$(dirname "$0")/lib.sh"
CTL=${PROFLEET_CONTROLLER:-$BUILD/bin/profleet-controller}	# the tsan tier runs its own
AGENT=$BUILD/bin/profleet-agent
BUSY=$BUILD/workloads/busy
workdir e2e
PIDS=""
CG=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	# kill what is left in the test cgroups (v2 and v1), then remove them deepest first
	for d in "$CG" "${CG1:-}"; do
		[ -n "$d" ] && [ -d "$d" ] || continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
		sleep 0.3
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -z "${E2E_KUBECONFIG:-}" ] && [ -f "$W/cluster/env" ] && sh "$TOP/e2e/cluster.sh" stop "$W/cluster" >/dev/null 2>&1
	keep_or_remove
}
trap cleanup EXIT
trap 'exit 1' INT TERM


for f in "$CTL" "$AGENT" "$BUSY"; do
	[ -x "$f" ] || bail "$f is not built (make)"
done
command -v kubectl >/dev/null || bail "kubectl is missing"
command -v jq >/dev/null || bail "jq is missing"

# ---- the cluster -------------------------------------------------------------
LOCAL=1
if [ -n "${E2E_KUBECONFIG:-}" ]; then
	LOCAL=0
	KC=$E2E_KUBECONFIG
	note "using the cluster of E2E_KUBECONFIG=$KC"
else
	sh "$TOP/e2e/cluster.sh" start "$W/cluster" >"$W/cluster.log" 2>&1 || {
		cat "$W/cluster.log"
		bail "cannot start kube-apiserver + etcd (e2e/cluster.sh)"
	}
	KC=$W/cluster/kubeconfig
fi
k() { kubectl --kubeconfig "$KC" "$@"; }

k apply -f "$TOP/crds/" >"$W/crds.log" 2>&1 &&
	k wait --for condition=established --timeout=60s crd/profilingpolicies.profiling.profleet.dev \
		crd/clusterprofilingpolicies.profiling.profleet.dev \
		crd/clusterprofilingbackends.profiling.profleet.dev >>"$W/crds.log" 2>&1
check "CRDs applied with kubectl and established" [ $? -eq 0 ]

# a per-run suffix keeps this test off anything else in a shared cluster
RUN=$(date +%s | tail -c 6)
SYS=pf-sys-$RUN
SHOP=pf-shop-$RUN
OTHER=pf-other-$RUN
NODE_A=pf-node-a-$RUN
NODE_B=pf-node-b-$RUN
NODE_C=pf-node-c-$RUN
k create namespace "$SYS" >/dev/null
k create namespace "$SHOP" >/dev/null
k create namespace "$OTHER" >/dev/null
k label namespace "$OTHER" team=blue >/dev/null
k label namespace "$SHOP" team=green >/dev/null
k create serviceaccount profleet-agent -n "$SYS" >/dev/null

# the schema: examples validate on the server, defaults are filled, bounds hold
for f in "$TOP"/crds/examples/*.yaml; do
	sed "s/namespace: shop/namespace: $SHOP/" "$f" | k apply --dry-run=server -f - >>"$W/crds.log" 2>&1 ||
		not_ok "crds/examples/$(basename "$f") validates on the API server"
done
ok "every crds/examples file validates on the API server (dry run)"
printf 'apiVersion: profiling.profleet.dev/v1alpha1\nkind: ProfilingPolicy\nmetadata: {name: defaults, namespace: %s}\nspec:\n  selector: {podSelector: {}}\n' "$SHOP" |
	k apply --dry-run=server -o jsonpath='{.spec.mode}/{.spec.sampling.frequencyHz}/{.spec.sampling.profileTypes[0]}' -f - >"$W/defaults.out" 2>"$W/defaults.err"
# stdout alone: the API server may add a warning (e.g. a deprecated API kubectl touched) on stderr
check "defaults: mode Continuous, 19 Hz, OnCPU ($(cat "$W/defaults.out"; tr '\n' ' ' <"$W/defaults.err"))" [ "$(cat "$W/defaults.out")" = Continuous/19/OnCPU ]
for bad in 'selector: {}' 'selector: {podSelector: {}}\n  mode: Sometimes' \
	'selector: {podSelector: {matchExpressions: [{key: a, operator: Like}]}}' \
	'selector: {podSelector: {}}\n  sampling: {frequencyHz: 0}'; do
	printf "apiVersion: profiling.profleet.dev/v1alpha1\nkind: ProfilingPolicy\nmetadata: {name: bad, namespace: %s}\nspec:\n  $bad\n" "$SHOP" |
		k apply --dry-run=server -f - >"$W/bad.out" 2>&1 && not_ok "the API server should refuse: $bad"
	# refused by the schema, not for some other reason
	grep -qE 'Invalid value|Required value|Unsupported value|ValidationError' "$W/bad.out" ||
		not_ok "refused for another reason: $(cat "$W/bad.out")"
done
ok "the API server refuses a missing podSelector, a bad mode, a bad operator, frequency 0"
cat >"$W/nodes.yaml" <<EOF
apiVersion: v1
kind: Node
metadata: {name: $NODE_A, labels: {pool: a}}
---
apiVersion: v1
kind: Node
metadata: {name: $NODE_B, labels: {pool: b}}
---
apiVersion: v1
kind: Node
metadata: {name: $NODE_C, labels: {pool: c}}
EOF
k apply -f "$W/nodes.yaml" >/dev/null


# ---- cgroups: where the "containers" run ---------------------------------------
V2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$V2" ] || bail "no cgroup v2 mount on this host"
CG=$V2/profleet-e2e-$RUN
mkdir -p "$CG" || bail "cannot create cgroups under $V2"


UID_WEB1=$(pod "$SHOP" web-1 "$NODE_A" '{"app": "web"}')
UID_WEB2=$(pod "$SHOP" web-2 "$NODE_B" '{"app": "web"}')
UID_DB1=$(pod "$SHOP" db-1 "$NODE_A" '{"app": "db"}')
UID_WEBX=$(pod "$OTHER" web-x "$NODE_A" '{"app": "web"}')
UID_AGA=$(pod "$SYS" agent-a "$NODE_A" '{"app": "profleet-agent"}' profleet-agent)
UID_AGB=$(pod "$SYS" agent-b "$NODE_B" '{"app": "profleet-agent"}' profleet-agent)
C_WEB1=$(cid) C_WEB1S=$(cid) C_WEB2=$(cid) C_WEB2S=$(cid)
C_DB1=$(cid) C_DB1S=$(cid) C_WEBX=$(cid) C_WEBXS=$(cid)
running "$SHOP" web-1 "$C_WEB1" "$C_WEB1S"
running "$SHOP" web-2 "$C_WEB2" "$C_WEB2S"
running "$SHOP" db-1 "$C_DB1" "$C_DB1S"
running "$OTHER" web-x "$C_WEBX" "$C_WEBXS"
running "$SYS" agent-a "$(cid)" "$(cid)"
running "$SYS" agent-b "$(cid)" "$(cid)"
workload "$UID_WEB1" "$C_WEB1" e2e-web1 systemd OTEL_SERVICE_NAME=checkout
workload "$UID_WEB2" "$C_WEB2" e2e-web2 cgroupfs
workload "$UID_DB1" "$C_DB1" e2e-db1 systemd
workload "$UID_WEBX" "$C_WEBX" e2e-webx systemd
check "pods created with spec.nodeName and running status" \
	[ "$(k get pod -n "$SHOP" web-1 -o jsonpath='{.status.containerStatuses[0].containerID}')" = "containerd://$C_WEB1" ]

# ---- tokens -------------------------------------------------------------------
token "$SYS" profleet-agent agent-a profleet >"$W/token-a"
token "$SYS" profleet-agent agent-b profleet >"$W/token-b"
token "$SYS" profleet-agent agent-a wrong-audience >"$W/token-aud"
echo "not-a-token" >"$W/token-bad"
[ -s "$W/token-a" ] && [ "$(head -c 3 "$W/token-a")" = eyJ ]
verdict "bound service-account tokens issued for the agent pods" $?

# ---- the controller -------------------------------------------------------------
PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 ))
# wss://, as the chart sets it up: backends' credentials go to agents only over TLS
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$W/tls.key" -out "$W/tls.crt" 2>/dev/null ||
	bail "openssl cannot make a certificate"
URL=wss://127.0.0.1:$PORT
HPORT=$((PORT + 100))	# the controllers' HTTP APIs: HPORT+1 (c1), HPORT+2 (c2)
start_controller() { # identity [extra args]
	id=$1
	shift
	case $id in c1) hport=$((HPORT + 1)) ;; *) hport=$((HPORT + 2)) ;; esac
	"$CTL" --kubeconfig "$KC" --listen "127.0.0.1:$PORT" --identity "$id" \
		--store-dir "$W/store-$id" --http-listen "0.0.0.0:$hport" --health-listen 127.0.0.1:0 \
		--agent-service-account "$SYS:profleet-agent" --lease "$SYS/profleet-controller" \
		--lease-duration 6 --max-frequency 250 --log-level debug \
		--tls-cert "$W/tls.crt" --tls-key "$W/tls.key" "$@" >>"$W/controller-$id.log" 2>&1 &
	CTL_PID=$!
	PIDS="$PIDS $CTL_PID"
}
start_controller c1
wait_until 20 sh -c "k() { kubectl --kubeconfig '$KC' \"\$@\"; }; [ \"\$(k get lease -n $SYS profleet-controller -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)\" = c1 ]"
check "controller takes the leader Lease" [ $? -eq 0 ]
check "the agents' connections are served on an epoll loop (libev), not lws's poll of every socket" \
	grep -q "epoll loop (libev)" "$W/controller-c1.log"

start_agent() { # name node token-file
	"$AGENT" run --controller "$URL" --ca-file "$W/tls.crt" --node-name "$2" --token-file "$3" \
		--state-file "$W/state-$1.json" \
		--output "$W/prof-$1.txt" --interval 2 --cgroup-root "$V2" --max-frequency 250 \
		--log "$W/agent-$1.log" --log-level debug ${AGENT_HTTP:+--http-listen "$AGENT_HTTP"} &
	eval "AG_$1=\$!"
	PIDS="$PIDS $!"
}
st() { jq -r "($2) // 0" "$W/state-$1.json" 2>/dev/null || echo 0; }	# numbers (missing: 0)
sv() { jq -r "$2" "$W/state-$1.json" 2>/dev/null; }	# strings and booleans

# ---- refusals ---------------------------------------------------------------------
start_agent bad "$NODE_A" "$W/token-bad"
start_agent aud "$NODE_A" "$W/token-aud"
start_agent liar "$NODE_B" "$W/token-a"	# agent-a's token, claiming node B
wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(jq -r .refusals '$W/state-bad.json' 2>/dev/null)\" -ge 1 ]"
[ "$(st bad .refusals)" -ge 1 ] && [ "$(st bad .version)" = 0 ]
verdict "an agent with a garbage token is refused" $?
note "refusal: $(sv bad .lastRefusal)"
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r .refusals '$W/state-aud.json' 2>/dev/null)\" -ge 1 ]"
check "an agent whose token has another audience is refused" [ "$(st aud .refusals)" -ge 1 ]
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r .refusals '$W/state-liar.json' 2>/dev/null)\" -ge 1 ]"
check "an agent claiming another pod's node is refused" \
	sh -c "jq -r .lastRefusal '$W/state-liar.json' | grep -q 'runs on node'"
note "refusal: $(sv liar .lastRefusal)"
kill $AG_bad $AG_aud $AG_liar 2>/dev/null
# agent-b's own token and node, from an address that is not its pod's: a replayed token
running "$SYS" agent-b "$(cid)" "$(cid)" 10.255.0.2
sleep 1	# the controller's pod cache sees the new IP
start_agent thief "$NODE_B" "$W/token-b"
wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(jq -r .refusals '$W/state-thief.json' 2>/dev/null)\" -ge 1 ]"
check "a pod's token used from another address is refused" \
	sh -c "jq -r .lastRefusal '$W/state-thief.json' | grep -q 'has IP 10.255.0.2; this connection comes from 127.0.0.1'"
note "refusal: $(sv thief .lastRefusal)"
kill $AG_thief 2>/dev/null
running "$SYS" agent-b "$(cid)" "$(cid)"
sleep 1

# ---- a continuous policy -------------------------------------------------------------
AGENT_HTTP=127.0.0.1:$((HPORT + 10)) start_agent a "$NODE_A" "$W/token-a"
start_agent b "$NODE_B" "$W/token-b"
wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(jq -r .connected '$W/state-a.json' 2>/dev/null)\" = true ] && [ \"\$(jq -r .connected '$W/state-b.json' 2>/dev/null)\" = true ]"
[ "$(sv a .connected)" = true ] && [ "$(st a .refusals)" = 0 ]
verdict "agents of two nodes connect with their bound tokens" $?

policy() { # name namespace hz [extra spec yaml lines]
	{
		echo "apiVersion: profiling.profleet.dev/v1alpha1"
		echo "kind: ProfilingPolicy"
		echo "metadata: {name: $1, namespace: $2}"
		echo "spec:"
		echo "  selector: {podSelector: {matchLabels: {app: web}}, containers: [app]}"
		echo "  sampling: {frequencyHz: $3}"
		shift 3
		for l in "$@"; do echo "  $l"; done
	} >"$W/policy.yaml"
	k apply -f "$W/policy.yaml" >/dev/null
}
pstatus() { k get profilingpolicy -n "$1" "$2" -o jsonpath="$3" 2>/dev/null; }

V0=$(st a .version)
T0=$(date +%s%N)
policy web "$SHOP" 49
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r .version '$W/state-a.json')\" != '$V0' ] && [ \"\$(jq -r '.targets | length' '$W/state-a.json')\" -ge 1 ]"
T1=$(date +%s%N)
note "kubectl apply -> agent state file showed the new set: $(( (T1 - T0) / 1000000 )) ms (includes kubectl and the 1 s state-file period)"
check "the policy reaches the agent of node A" [ "$(st a '.targets | length')" = 1 ]
 [ "$(sv a '.targets[0].containerID')" = "$C_WEB1" ] && [ "$(st a '.targets[0].cgroupID')" -gt 0 ]
verdict "node A's agent targets web-1's app container only" $?
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r '.targets[0].containerID' '$W/state-b.json')\" = '$C_WEB2' ]"
[ "$(sv b '.targets[0].containerID')" = "$C_WEB2" ] && [ "$(st b '.targets[0].cgroupID')" -gt 0 ]
verdict "node B's agent targets web-2 (cgroupfs-driver path)" $?
wait_until 15 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP web -o jsonpath='{.status.phase}')\" = Running ]"
check "status: phase Running, 2 pods on 2 nodes, Ready" \
	[ "$(pstatus "$SHOP" web '{.status.phase}/{.status.targetedPods}/{.status.targetedNodes}/{.status.conditions[?(@.type=="Ready")].status}')" = "Running/2/2/True" ]
sleep 4
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP web -o jsonpath='{.status.samplesCollected}')\" -gt 0 ]"
check "status counts the samples the agents collected" [ "$(pstatus "$SHOP" web '{.status.samplesCollected}')" -gt 0 ]
note "samplesCollected=$(pstatus "$SHOP" web '{.status.samplesCollected}')"
# what was sampled: the interval profile has only the selected workload
 sh -c "grep -q '^e2e-web1' '$W/prof-a.txt' && ! grep -qE '^e2e-(db1|webx|web2)' '$W/prof-a.txt'"
verdict "only the selected pod's process is in node A's profile" $?
 sh -c "grep -q '^e2e-web2' '$W/prof-b.txt' && ! grep -qE '^e2e-(db1|webx|web1)' '$W/prof-b.txt'"
verdict "only web-2 is in node B's profile" $?
check "the other namespace's pod with the same labels is not targeted" \
	sh -c "! jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_WEBX'"
[ "$(st a .kernelFiltered)" -gt 0 ] && [ "$(st a .samplesUnattributed)" = 0 ]
verdict "untargeted processes are filtered in the kernel" $?
# a process of the target that execs gets its unwind tables from the exec on
e0=$(st a .execsFollowed)
dir=$(pod_cgroup "$UID_WEB1" "$C_WEB1" systemd)
sh -c "echo \$\$ > '$dir/cgroup.procs' && exec /bin/true"
/bin/true	# control: an exec outside the targets is not counted
wait_until 5 sh -c "exec 2>/dev/null; [ \"\$(jq -r .execsFollowed '$W/state-a.json')\" -gt $e0 ]"
e1=$(st a .execsFollowed)
check "an exec in a targeted container is followed from its exec ($e0 -> $e1)" [ "$e1" = $((e0 + 1)) ]

# ---- export: a ClusterProfilingBackend (Pyroscope-style receiver) ----------------------------
mkdir -p "$W/sink"
"$BUILD/tools/httpsink" "$W/sink" 0 200 >"$W/sink.port" &
PIDS="$PIDS $!"
sleep 0.3
cat >"$W/cpb.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: sink-$RUN}
spec: {type: pyroscope, url: "http://127.0.0.1:$(cat "$W/sink.port")", tenantID: e2e, allowedNamespaces: [$SHOP],
       authSecretRef: {namespace: $SYS, name: sink-creds}}
EOF
k create secret generic sink-creds -n "$SYS" --from-literal=username=pyro --from-literal=password=s3cret >/dev/null
k label secret sink-creds -n "$SYS" profiling.profleet.dev/backend-credentials=true >/dev/null
mkdir -p "$W/otlp"
"$BUILD/tools/httpsink" "$W/otlp" 0 200 >"$W/otlp.port" &
PIDS="$PIDS $!"
sleep 0.3
cat >>"$W/cpb.yaml" <<EOF
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: otlp-$RUN}
spec: {type: otlp-http, url: "http://127.0.0.1:$(cat "$W/otlp.port")", allowedNamespaces: ["*"]}
EOF
k apply -f "$W/cpb.yaml" >/dev/null
policy web "$SHOP" 49 "export: {backendRefs: [sink-$RUN, otlp-$RUN]}"
wait_until 20 sh -c "grep -l 'pod%3Dweb-1' '$W'/sink/req-*.txt >/dev/null 2>&1 && grep -l 'pod%3Dweb-2' '$W'/sink/req-*.txt >/dev/null 2>&1"
r1=$(grep -l 'pod%3Dweb-1' "$W"/sink/req-*.txt 2>/dev/null | head -1)
r2=$(grep -l 'pod%3Dweb-2' "$W"/sink/req-*.txt 2>/dev/null | head -1)
note "export: $(head -1 "$r1" 2>/dev/null | cut -c1-300)"
check "each pod's profile reaches the policy's backend, named by service and pod identity" \
	sh -c "grep -q '^POST /ingest?name=checkout.cpu%7B' '$r1' && grep -q 'namespace%3D$SHOP' '$r1' && grep -q 'container%3Dapp' '$r1' && grep -q 'node%3D$NODE_A' '$r1' && grep -q 'pod_uid%3D$UID_WEB1' '$r1'"
check "service name: the process's OTEL_SERVICE_NAME, else <namespace>/<container>" \
	grep -q "^POST /ingest?name=${SHOP}_app.cpu%7B" "$r2"
check "the backend's tenant is sent" grep -qi '^X-Scope-OrgID: e2e' "$r1"
check "credentials from the backend's authSecretRef are sent (basic auth)" \
	grep -qi "^Authorization: Basic $(printf pyro:s3cret | base64)" "$r1"
# a backend cannot make the controller read a Secret not meant for backends: one without
# the label (as the controller's own TLS key), one outside --backend-secret-namespaces
k create secret generic not-creds -n "$SYS" --from-literal=token=private >/dev/null
k create secret generic far-creds -n "$SHOP" --from-literal=token=private >/dev/null
k label secret far-creds -n "$SHOP" profiling.profleet.dev/backend-credentials=true >/dev/null
cat >"$W/sneaky.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: sneaky-$RUN}
spec: {type: otlp-http, url: "http://127.0.0.1:9", authSecretRef: {namespace: $SYS, name: not-creds}}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: far-$RUN}
spec: {type: otlp-http, url: "http://127.0.0.1:9", authSecretRef: {namespace: $SHOP, name: far-creds}}
EOF
k apply -f "$W/sneaky.yaml" >/dev/null
wait_until 10 sh -c "grep -q 'Secret $SYS/not-creds is not labelled' '$W/controller-c1.log' &&
	grep -q 'Secret $SHOP/far-creds: namespace $SHOP is not one of' '$W/controller-c1.log'"
verdict "a backend's Secret must be labelled for backends and in the allowed namespaces" $?
# a controller whose agents connect over ws:// does not read the Secret at all
"$CTL" --kubeconfig "$KC" --listen "127.0.0.1:$((PORT + 3))" --identity c3 --no-store \
	--http-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 --agent-service-account "$SYS:profleet-agent" \
	--lease "$SYS/profleet-controller" --log-level info >"$W/controller-c3.log" 2>&1 &
c3=$!
wait_until 10 grep -q "backend sink-$RUN: credentials withheld: the agents connect over ws://" \
	"$W/controller-c3.log"
verdict "without TLS, backends' credentials are withheld from the agents" $?
kill $c3 2>/dev/null
wait $c3 2>/dev/null
k delete -f "$W/sneaky.yaml" >/dev/null
b1=$(echo "$r1" | sed 's/req-/body-/; s/\.txt$/.bin/')
perl -e 'local $/; open F, "<", $ARGV[0] or die; binmode F; $b = <F>;
	$i = index($b, "\x1f\x8b"); $j = rindex($b, "\r\n--");
	open O, ">", $ARGV[1] or die; binmode O; print O substr($b, $i, $j - $i);' "$b1" "$W/web1.pb.gz" 2>/dev/null
if command -v go >/dev/null; then
	check "go tool pprof reads the exported profile: web-1's busy_loop" \
		sh -c "go tool pprof -raw '$W/web1.pb.gz' 2>/dev/null | grep -q busy_loop"
else
	skip "go tool pprof missing"
fi
wait_until 5 sh -c "[ \"\$(jq -r '.exporters[\"sink-$RUN\"].sent // 0' '$W/state-a.json' 2>/dev/null)\" -ge 1 ]"
check "the agent counts what it exported" [ "$(st a ".exporters[\"sink-$RUN\"].sent")" -ge 1 ]
wait_until 10 sh -c "ls '$W'/otlp/body-*.bin >/dev/null 2>&1"
for b in "$W"/otlp/body-*.bin; do
	zcat "$b" 2>/dev/null | protoc --decode=profleet.otlp.ExportProfilesServiceRequest -I "$TOP/proto" \
		"$TOP/proto/otlp_profiles.proto" >>"$W/otlp.txt" 2>&1
done
check "OTLP: POST /v1development/profiles, protobuf, gzip" \
	sh -c "grep -q '^POST /v1development/profiles ' '$W/otlp/req-0.txt' && grep -qi '^Content-Encoding: gzip' '$W/otlp/req-0.txt'"
check "OTLP: resource and sample attributes by the semantic conventions, and the workload's frames" \
	sh -c "grep -q 'k8s.pod.name' '$W/otlp.txt' && grep -q 'string_value: \"web-1\"' '$W/otlp.txt' && grep -q 'k8s.namespace.name' '$W/otlp.txt' && grep -q 'string_value: \"checkout\"' '$W/otlp.txt' && grep -q '\"busy_loop\"' '$W/otlp.txt' && grep -q process.executable.name '$W/otlp.txt'"

wait_until 10 sh -c "exec 2>/dev/null; [ -n \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP web -o jsonpath='{.status.lastExportTime}')\" ]"
check "status: lastExportTime ($(pstatus "$SHOP" web '{.status.lastExportTime}')), not Degraded" \
	[ "$(pstatus "$SHOP" web '{.status.conditions[?(@.type=="Degraded")].status}')" = False ]

# ---- self-observability: /metrics, /healthz, /readyz ------------------------------------------
CH=http://127.0.0.1:$((HPORT + 1))
AH=http://127.0.0.1:$((HPORT + 10))
note "controller /readyz: $(curl -s $CH/readyz)"
check "controller /healthz and /readyz answer 200" \
	sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $CH/healthz)\" = 200 ] && [ \"\$(curl -s -o /dev/null -w '%{http_code}' $CH/readyz)\" = 200 ]"
curl -s "$CH/metrics" >"$W/ctl.metrics"
check "controller /metrics: leader, 2 agents, watch events, reconcile latency, exports" \
	sh -c "grep -q '^profleet_controller_leader 1' '$W/ctl.metrics' && grep -q '^profleet_controller_websocket_connections 2' '$W/ctl.metrics' &&
		grep -q '^profleet_controller_watch_events_total{resource=\"profilingpolicies\"} [1-9]' '$W/ctl.metrics' &&
		grep -q '^profleet_controller_reconcile_duration_seconds_count [1-9]' '$W/ctl.metrics' &&
		grep -q '^# TYPE profleet_controller_reconcile_duration_seconds histogram' '$W/ctl.metrics'"
curl -s "$AH/metrics" >"$W/agent.metrics"
check "agent /metrics: samples, drops and unwind failures by reason, exports by backend and result" \
	sh -c "grep -q '^profleet_agent_samples_total [1-9]' '$W/agent.metrics' && grep -q '^profleet_agent_samples_dropped_total{reason=\"ringbuf_full\"}' '$W/agent.metrics' &&
		grep -q '^profleet_agent_unwind_failures_total{reason=' '$W/agent.metrics' &&
		grep -q '^profleet_agent_exports_total{backend=\"sink-$RUN\",result=\"sent\"} [1-9]' '$W/agent.metrics' &&
		grep -q '^profleet_agent_websocket_connected 1' '$W/agent.metrics'"
# the kernel tells verified instructions from 5.16 on
vi='[1-9]'
printf '%s\n5.16\n' "$(uname -r | cut -d- -f1)" | sort -V | head -n 1 | grep -qx 5.16 || vi=0
check "agent /metrics: the kernel and the walker chain loaded, not degraded, verified instructions" \
	sh -c "grep -q '^profleet_agent_bpf_info{kernel=\"$(uname -r)\",unwinder=\"dwarf\",degraded=\"0\"} 1' '$W/agent.metrics' &&
		grep -q '^profleet_agent_bpf_verified_instructions $vi' '$W/agent.metrics'"
check "agent /readyz answers 200 once it holds a target set; /healthz 200" \
	sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $AH/readyz)\" = 200 ] && [ \"\$(curl -s -o /dev/null -w '%{http_code}' $AH/healthz)\" = 200 ]"

# the workload owner: web-1 belongs to a ReplicaSet of the Deployment "checkout"
k create deployment checkout -n "$SHOP" --image=busybox --replicas=0 >/dev/null 2>&1
DUID=$(k get deployment -n "$SHOP" checkout -o jsonpath='{.metadata.uid}')
cat >"$W/rs.json" <<EOF
{"apiVersion": "apps/v1", "kind": "ReplicaSet",
 "metadata": {"name": "checkout-5d8f", "namespace": "$SHOP",
	      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
				   "uid": "$DUID", "controller": true}]},
 "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
	  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}
EOF
k create -f "$W/rs.json" >/dev/null
RSUID=$(k get replicaset -n "$SHOP" checkout-5d8f -o jsonpath='{.metadata.uid}')
k patch pod -n "$SHOP" web-1 --type=merge -p "{\"metadata\": {\"ownerReferences\": [{\"apiVersion\": \"apps/v1\",
	\"kind\": \"ReplicaSet\", \"name\": \"checkout-5d8f\", \"uid\": \"$RSUID\", \"controller\": true}]}}" >/dev/null
wait_until 20 sh -c "grep -l 'deployment%3Dcheckout' '$W'/sink/req-*.txt >/dev/null 2>&1"
check "profiles name the workload: deployment=checkout, found through the pod's ReplicaSet" \
	sh -c "grep -l 'deployment%3Dcheckout' '$W'/sink/req-*.txt | xargs grep -l 'pod%3Dweb-1' | grep -q . &&
		grep -l 'policy%3D' '$W'/sink/req-*.txt | grep -q ."

# a backend that is down: the policy says so in its Degraded condition
cat >"$W/dead.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: dead-$RUN}
spec: {type: pyroscope, url: "http://127.0.0.1:1", allowedNamespaces: ["*"]}
EOF
k apply -f "$W/dead.yaml" >/dev/null
degraded() { k get profilingpolicy -n "$SHOP" web -o jsonpath="{.status.conditions[?(@.type==\"Degraded\")].$1}" 2>/dev/null; }
policy web "$SHOP" 49 "export: {backendRefs: [sink-$RUN, dead-$RUN]}"
end=$(($(date +%s) + 20))
while [ "$(date +%s)" -lt "$end" ] && [ "$(degraded reason)" != ExportFailing ]; do sleep 0.3; done
dmsg=$(degraded message)
dst=$(degraded status)
note "Degraded: $dmsg"
check "a dead backend: Degraded=True, reason ExportFailing, naming the backend" \
	sh -c "[ '$dst' = True ] && case \"\$1\" in *dead-$RUN*) true ;; *) false ;; esac" _ "$dmsg"
policy web "$SHOP" 49 "export: {backendRefs: [sink-$RUN, otlp-$RUN]}"
end=$(($(date +%s) + 15))
while [ "$(date +%s)" -lt "$end" ] && [ "$(degraded status)" != False ]; do sleep 0.3; done
check "without the dead backend the policy is no longer Degraded" [ "$(degraded status)" = False ]

# ---- a node whose containers are found in a cgroup v1 hierarchy ----------------------------
V1=$(awk '$9 == "cgroup" && $NF ~ /name=systemd/ { print $5; exit }' /proc/self/mountinfo)
if [ -n "$V1" ] && mkdir -p "$V1/profleet-e2e-$RUN"; then
	CG1=$V1/profleet-e2e-$RUN
	UID_WEB3=$(pod "$SHOP" web-3 "$NODE_C" '{"app": "web3"}')
	pod "$SYS" agent-c "$NODE_C" '{"app": "profleet-agent"}' profleet-agent >/dev/null
	C_WEB3=$(cid)
	running "$SHOP" web-3 "$C_WEB3" "$(cid)"
	running "$SYS" agent-c "$(cid)" "$(cid)"
	token "$SYS" profleet-agent agent-c profleet >"$W/token-c"
	d1=$CG1/kubepods/burstable/pod$UID_WEB3/$C_WEB3
	mkdir -p "$d1"
	cp "$BUSY" "$W/e2e-web3"
	sh -c "echo \$\$ > '$d1/cgroup.procs' && exec nice -n 10 '$W/e2e-web3' 100000000" &
	PIDS="$PIDS $!"
	echo $! >"$W/pid-e2e-web3"
	"$AGENT" run --controller "$URL" --ca-file "$W/tls.crt" --node-name "$NODE_C" --token-file "$W/token-c" \
		--state-file "$W/state-c.json" --output "$W/prof-c.txt" --interval 2 --cgroup-mode v1 \
		--log "$W/agent-c.log" --log-level debug &
	AG_c=$!
	PIDS="$PIDS $AG_c"
	sed "s/name: web, /name: web3, /; s/app: web}/app: web3}/; s/containers: \[app\]/containers: [app]/" \
		"$W/policy.yaml" >"$W/policy3.yaml"
	k apply -f "$W/policy3.yaml" >/dev/null
	wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(jq -r '.targets[0].cgroup' '$W/state-c.json')\" = '$d1' ]"
	check "cgroup v1: the container is found in the v1 hierarchy" [ "$(sv c '.targets[0].cgroup')" = "$d1" ]
	sleep 4
	check "cgroup v1: its process is sampled and attributed" [ "$(st c '.targets[0].samples')" -gt 0 ]
	check "cgroup v1: only that process is in node C's profile" \
		sh -c "grep -q '^e2e-web3' '$W/prof-c.txt' && ! grep -qE '^e2e-(web1|web2|db1|webx)' '$W/prof-c.txt'"
	# an exited process leaves the kernel's filter (its pid may be given to another pod's)
	P_WEB3=$(cat "$W/pid-e2e-web3")
	in_filter() { bpftool -j map dump name pids 2>/dev/null | jq -e --argjson p "$1" '[.. | objects | select(has("key")) | .key] | index($p) != null' >/dev/null; }
	check "cgroup v1: the target's process is in the kernel's pid filter" in_filter "$P_WEB3"
	kill "$P_WEB3"
	sleep 2
	! in_filter "$P_WEB3"
	verdict "cgroup v1: once it exits, its pid is out of the filter" $?
	# children forked between two scans are followed from their first sample: 20
	# short-lived children of a targeted shell, each under the 1 s rescan
	s0=$(st c '.targets[0].samples')
	cp "$BUSY" "$W/e2e-kid"
	sh -c "echo \$\$ > '$d1/cgroup.procs'; sleep 1.5; for i in \$(seq 20); do '$W/e2e-kid' 50; done; cut -d' ' -f16,17 /proc/\$\$/stat >'$W/kids.cpu'"
	sleep 3
	s1=$(st c '.targets[0].samples')
	kid_ms=$(awk '{ print ($1 + $2) * 10 }' "$W/kids.cpu")
	want=$((kid_ms * 49 / 1000))
	note "children: $((s1 - s0)) samples attributed, $want expected from their $kid_ms ms of CPU at 49 Hz"
	[ "$want" -gt 20 ] && [ $((s1 - s0)) -ge $((want * 3 / 4)) ] && [ $((s1 - s0)) -le $((want * 5 / 4)) ]
	verdict "cgroup v1: short-lived children are sampled and attributed (within 25%)" $?
	k delete -f "$W/policy3.yaml" >/dev/null
	wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r '.targets | length' '$W/state-c.json')\" = 0 ]"
	kill "$AG_c"
else
	skip "no cgroup v1 name=systemd hierarchy on this host"
	skip "no cgroup v1 name=systemd hierarchy on this host"
	skip "no cgroup v1 name=systemd hierarchy on this host"
fi

# ---- frequency change without restart ---------------------------------------------------
s0=$(st a '.targets[0].samples')
sleep 3
s1=$(st a '.targets[0].samples')
policy web "$SHOP" 199
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r .frequencyHz '$W/state-a.json')\" = 199 ]"
[ "$(st a .frequencyHz)" = 199 ] && kill -0 "$AG_a"
verdict "a frequency change reaches the running agent" $?
sleep 1
s2=$(st a '.targets[0].samples')
sleep 3
s3=$(st a '.targets[0].samples')
note "web-1 samples in 3 s: $((s1 - s0)) at 49 Hz, $((s3 - s2)) at 199 Hz"
check "the sampling rate follows (199 Hz gives over twice the samples of 49 Hz)" [ $((s3 - s2)) -gt $((2 * (s1 - s0))) ]

# ---- a second policy at a lower rate: subsampled in the kernel --------------------------------
cat >"$W/db.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: db-slow, namespace: $SHOP}
spec:
  selector: {podSelector: {matchLabels: {app: db}}, containers: [app]}
  sampling: {frequencyHz: 19}
EOF
k apply -f "$W/db.yaml" >/dev/null
wait_until 10 sh -c "jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_DB1'"
check "slower targets are subsampled from the fastest rate" \
	[ "$(jq -r ".targets[] | select(.containerID == \"$C_DB1\") | .sampleEvery" "$W/state-a.json")" = 10 ]

# CPU time: web-1 (199 Hz) and db-1 (19 Hz, kept 1 in 10) share CPU 0; what each pod's
# exported profiles say it used matches what /proc says it ran, window by window
policy web "$SHOP" 199 "export: {backendRefs: [sink-$RUN]}"
printf '  export: {backendRefs: [sink-%s]}\n' "$RUN" >>"$W/db.yaml"
k apply -f "$W/db.yaml" >/dev/null
P_WEB1=$(cat "$W/pid-e2e-web1") P_DB1=$(cat "$W/pid-e2e-db1")
taskset -a -p -c 0 "$P_WEB1" >/dev/null && taskset -a -p -c 0 "$P_DB1" >/dev/null
sleep 3	# the export reaches the agent; the next interval has both in force
(while :; do
	for p in "$P_WEB1" "$P_DB1"; do
		echo "$(date +%s%N) $(cut -d' ' -f14,15 "/proc/$p/stat")" >>"$W/stat-$p.log"
	done
	sleep 0.1
done) &
POLL=$!
PIDS="$PIDS $POLL"
CT0=$(date +%s%N)
sleep 16
CT1=$(date +%s%N)
kill "$POLL"
sleep 3	# the last window's export
for req in "$W"/sink/req-*.txt; do
	body=$(echo "$req" | sed 's/req-/body-/; s/\.txt$/.bin/')
	pod=$(grep -o 'pod%3D[a-z0-9-]*' "$req" | head -1 | sed 's/pod%3D//')
	case $pod in web-1 | db-1) ;; *) continue ;; esac
	perl -e 'local $/; open F, "<", $ARGV[0] or die; binmode F; $b = <F>;
		$i = index($b, "\x1f\x8b"); $j = rindex($b, "\r\n--");
		open O, ">", $ARGV[1] or die; binmode O; print O substr($b, $i, $j - $i);' "$body" "$W/cpu.pb.gz" 2>/dev/null &&
		zcat "$W/cpu.pb.gz" | protoc --decode=perftools.profiles.Profile -I "$TOP/proto" \
			"$TOP/proto/profile.proto" >"$req.prof.txt" 2>/dev/null && echo "$req.prof.txt" >>"$W/cpu-$pod.list"
done
for pod in web-1:$P_WEB1 db-1:$P_DB1; do
	name=${pod%%:*}
	r=$(perl "$TOP/e2e/cputime.pl" "$W/stat-${pod#*:}.log" "$CT0" "$CT1" $(cat "$W/cpu-$name.list" 2>/dev/null) 2>&1)
	note "$name: exported $(echo "$r" | cut -d' ' -f1) ms of CPU, /proc says $(echo "$r" | cut -d' ' -f2) ms, over $(echo "$r" | cut -d' ' -f3) windows"
	echo "$r" | awk '$3 >= 4 && $2 > 300 && $1 >= 0.9 * $2 && $1 <= 1.1 * $2 { ok = 1 } END { exit !ok }'
	verdict "$name's exported CPU time is within 10% of what it ran (/proc/PID/stat)" $?
done
k delete -f "$W/db.yaml" >/dev/null

# ---- invalid policies ------------------------------------------------------------------
cat >"$W/bad.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: no-duration, namespace: $SHOP}
spec:
  mode: OnDemand
  selector: {podSelector: {matchLabels: {app: web}}}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: over-cap, namespace: $SHOP}
spec:
  selector: {podSelector: {matchLabels: {app: web}}}
  sampling: {frequencyHz: 500}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: reach-out, namespace: $SHOP}
spec:
  selector: {podSelector: {}, namespaceSelector: {matchLabels: {team: blue}}}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: no-backend, namespace: $SHOP}
spec:
  selector: {podSelector: {}}
  export: {backendRefs: [does-not-exist]}
---
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: spoof, namespace: $SHOP}
spec:
  selector: {podSelector: {matchLabels: {app: web}}}
  labels: {static: {env: prod, k8s.namespace.name: $OTHER}}
EOF
k apply -f "$W/bad.yaml" >"$W/bad.log" 2>&1
for pr in no-duration:InvalidSpec over-cap:FrequencyOverCap reach-out:CrossNamespace no-backend:UnknownBackend \
	spoof:ReservedLabel; do
	name=${pr%%:*}
	reason=${pr#*:}
	wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP $name -o jsonpath='{.status.conditions[?(@.type==\"Accepted\")].reason}')\" = $reason ]"
	check "invalid policy $name: Accepted=False, reason $reason, phase Failed" \
		[ "$(pstatus "$SHOP" "$name" '{.status.conditions[?(@.type=="Accepted")].status}/{.status.phase}')" = "False/Failed" ]
done
note "message: $(pstatus "$SHOP" reach-out '{.status.conditions[?(@.type=="Accepted")].message}')"
# a tenant may not pass for another namespace (or pod, node, service...) on a shared backend
check "a label profleet sets itself is refused, the message names it ($(pstatus "$SHOP" spoof '{.status.conditions[?(@.type=="Accepted")].message}'))" \
	sh -c "kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP spoof -o jsonpath='{.status.conditions[?(@.type==\"Accepted\")].message}' | grep -q \"'k8s.namespace.name' is reserved: it would pass for 'namespace'\""
wait_until 10 sh -c "kubectl --kubeconfig '$KC' get events -n $SHOP --field-selector involvedObject.name=over-cap -o jsonpath='{.items[*].reason}' 2>/dev/null | grep -q Failed"
check "an invalid policy gets a Warning Event, reason Failed" \
	sh -c "kubectl --kubeconfig '$KC' get events -n $SHOP --field-selector involvedObject.name=over-cap,type=Warning -o jsonpath='{.items[*].reason}' | grep -q Failed"
# every policy an agent was ever given has a key in policySamples
check "invalid policies are never pushed to an agent" \
	sh -c "! jq -r '.policySamples | keys[]' '$W/state-a.json' '$W/state-b.json' | grep -qE '/(no-duration|over-cap|reach-out|no-backend|spoof)\$'"
check "(control: the valid policy was pushed)" \
	sh -c "jq -r '.policySamples | keys[]' '$W/state-a.json' | grep -q '/web\$'"
printf 'apiVersion: profiling.profleet.dev/v1alpha1\nkind: ProfilingPolicy\nmetadata: {name: too-fast, namespace: %s}\nspec:\n  selector: {podSelector: {}}\n  sampling: {frequencyHz: 5000}\n' "$SHOP" >"$W/fast.yaml"
check "the API server itself rejects frequencyHz 5000 (schema bounds)" sh -c "! kubectl --kubeconfig '$KC' apply -f '$W/fast.yaml' >/dev/null 2>&1"
# the exact keys are in the CRDs' schemas too: refused before the controller sees them
for l in 'static: {namespace: victim}' 'static: {service_name: x}' 'fromPodLabels: [pod]'; do
	printf 'apiVersion: profiling.profleet.dev/v1alpha1\nkind: ProfilingPolicy\nmetadata: {name: spoof2, namespace: %s}\nspec:\n  selector: {podSelector: {}}\n  labels: {%s}\n' "$SHOP" "$l" |
		k apply -f - >"$W/spoof2.out" 2>&1 && not_ok "the API server should refuse labels: {$l}"
	grep -q 'must not validate the schema' "$W/spoof2.out" || not_ok "refused for another reason: $(cat "$W/spoof2.out")"
done
ok "the API server refuses labels.static namespace and service_name, fromPodLabels [pod] (schema)"
k delete -f "$W/bad.yaml" >/dev/null 2>&1

# ---- a cluster policy -------------------------------------------------------------------
cat >"$W/cpp.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingPolicy
metadata: {name: blue-pool-a-$RUN}
spec:
  selector:
    podSelector: {matchLabels: {app: web}}
    namespaceSelector: {matchLabels: {team: blue}}
    nodeSelector: {matchLabels: {pool: a}}
    containers: [app]
  sampling: {frequencyHz: 29}
EOF
k apply -f "$W/cpp.yaml" >/dev/null
wait_until 10 sh -c "jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_WEBX'"
check "a ClusterProfilingPolicy reaches another namespace through its namespaceSelector" \
	sh -c "jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_WEBX'"
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get clusterprofilingpolicy blue-pool-a-$RUN -o jsonpath='{.status.targetedPods}')\" = 1 ]"
check "cluster policy status: 1 pod (node selector keeps node B out)" \
	[ "$(k get clusterprofilingpolicy "blue-pool-a-$RUN" -o jsonpath='{.status.targetedPods}/{.status.targetedNodes}')" = 1/1 ]
k delete -f "$W/cpp.yaml" >/dev/null
cat >"$W/cpp-spoof.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingPolicy
metadata: {name: spoof-$RUN}
spec:
  selector: {podSelector: {matchLabels: {app: web}}}
  labels: {fromPodLabels: [app, Node]}
EOF
k apply -f "$W/cpp-spoof.yaml" >/dev/null
cstatus() { k get clusterprofilingpolicy "spoof-$RUN" -o jsonpath="{.status.conditions[?(@.type==\"Accepted\")].$1}" 2>/dev/null; }
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get clusterprofilingpolicy spoof-$RUN -o jsonpath='{.status.conditions[?(@.type==\"Accepted\")].reason}')\" = ReservedLabel ]"
cmsg=$(cstatus message)
[ "$(cstatus status)/$(cstatus reason)" = False/ReservedLabel ] &&
	echo "$cmsg" | grep -q "'Node' is reserved: it would pass for 'node'"
verdict "a ClusterProfilingPolicy copying a reserved label: Accepted=False, ReservedLabel ($cmsg)" $?
k delete -f "$W/cpp-spoof.yaml" >/dev/null

# ---- OnDemand ------------------------------------------------------------------------
cat >"$W/od.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: db-now, namespace: $SHOP}
spec:
  mode: OnDemand
  durationSeconds: 4
  selector: {podSelector: {matchLabels: {app: db}}}
  sampling: {frequencyHz: 99}
EOF
k apply -f "$W/od.yaml" >/dev/null
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP db-now -o jsonpath='{.status.phase}')\" = Running ]"
[ "$(pstatus "$SHOP" db-now '{.status.phase}')" = Running ] && [ -n "$(pstatus "$SHOP" db-now '{.status.startTime}')" ]
verdict "OnDemand policy runs once its agents acked" $?
wait_until 15 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP db-now -o jsonpath='{.status.phase}')\" = Completed ]"
check "OnDemand policy completes after its duration: Succeeded=True" \
	[ "$(pstatus "$SHOP" db-now '{.status.phase}/{.status.conditions[?(@.type=="Succeeded")].status}')" = Completed/True ]
start=$(k get profilingpolicy -n "$SHOP" db-now -o jsonpath='{.status.startTime}')
end=$(k get profilingpolicy -n "$SHOP" db-now -o jsonpath='{.status.completionTime}')
note "OnDemand: start $start, completion $end, samples $(pstatus "$SHOP" db-now '{.status.samplesCollected}'), result $(pstatus "$SHOP" db-now '{.status.result}')"
 [ -n "$end" ] && [ "$(pstatus "$SHOP" db-now '{.status.result.samples}')" -gt 0 ]
verdict "OnDemand status has start/completion time and a sample count" $?
wait_until 5 sh -c "! jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_DB1'"
check "a completed OnDemand policy stops its sampling" sh -c "! jq -r '.targets[].containerID' '$W/state-a.json' | grep -q '$C_DB1'"

wait_until 10 sh -c "kubectl --kubeconfig '$KC' get events -n $SHOP --field-selector involvedObject.name=db-now -o jsonpath='{.items[*].reason}' 2>/dev/null | grep -q Completed"
ev=$(k get events -n "$SHOP" --field-selector involvedObject.name=db-now -o jsonpath='{.items[*].reason}')
check "the OnDemand policy's Events: Started, then Completed ($ev)" \
	sh -c "echo '$ev' | grep -q Started && echo '$ev' | grep -q Completed"

# ---- the built-in store: db-now named no backend, so its profiles went to the controller ----
HTTP=http://127.0.0.1:$((HPORT + 1))
LOC=/api/v1/namespaces/$SHOP/profilingpolicies/db-now
check "OnDemand result names the store's location ($(pstatus "$SHOP" db-now '{.status.result.location}'))" \
	[ "$(pstatus "$SHOP" db-now '{.status.result.location}|{.status.result.flameGraph}')" = "$LOC/profile|$LOC/flamegraph.svg" ]
wait_until 15 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP db-now -o jsonpath='{.status.result.profiles}')\" -ge 1 ]"
check "the store holds the agent's profiles of db-now (status.result.profiles $(pstatus "$SHOP" db-now '{.status.result.profiles}'))" \
	[ "$(pstatus "$SHOP" db-now '{.status.result.profiles}')" -ge 1 ]
get() { # TOKEN PATH OUT: prints the HTTP status
	curl -s -o "$3" -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} "$HTTP$2"
}
ADMIN_TOKEN=$(grep E2E_ADMIN_TOKEN= "$W/cluster/env" 2>/dev/null | cut -d= -f2)
ALICE_TOKEN=$(grep E2E_ALICE_TOKEN= "$W/cluster/env" 2>/dev/null | cut -d= -f2)
if [ "$LOCAL" = 1 ]; then
	code=$(get "$ADMIN_TOKEN" "$LOC/flamegraph.svg" "$W/od.svg")
	[ "$code" = 200 ] && xmllint --noout "$W/od.svg" 2>/dev/null && grep -q busy_loop "$W/od.svg" &&
		grep -q "e2e-db1" "$W/od.svg"
	verdict "the store serves db-now's flame graph: valid SVG with the workload's functions (HTTP $code)" $?
	code=$(get "$ADMIN_TOKEN" "$LOC/profile" "$W/od.pb.gz")
	[ "$code" = 200 ] && go tool pprof -raw "$W/od.pb.gz" >"$W/od.raw" 2>&1 && grep -q busy_loop "$W/od.raw"
	verdict "the store serves db-now's merged pprof, read by go tool pprof (HTTP $code)" $?
	code=$(get "" "$LOC/flamegraph.svg" "$W/od.noauth")
	check "a request without a token is refused (HTTP $code)" [ "$code" = 401 ]
	code=$(get "not-a-token" "$LOC/flamegraph.svg" "$W/od.badtok")
	check "a request with a bad token is refused (HTTP $code)" [ "$code" = 401 ]
	code=$(get "$ALICE_TOKEN" "$LOC/flamegraph.svg" "$W/od.alice")
	check "alice, without rights on $SHOP, is refused by the SubjectAccessReview (HTTP $code: $(cat "$W/od.alice"))" \
		[ "$code" = 403 ]
	k create role pp-reader -n "$SHOP" --verb=get,list --resource=profilingpolicies.profiling.profleet.dev >/dev/null
	k create rolebinding alice-pp -n "$SHOP" --role=pp-reader --user=alice >/dev/null
	wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $ALICE_TOKEN' '$HTTP$LOC/flamegraph.svg')\" = 200 ]"
	code=$(get "$ALICE_TOKEN" "$LOC/flamegraph.svg" "$W/od.alice2")
	check "alice, once she may get profilingpolicies in $SHOP, reads the flame graph (HTTP $code)" [ "$code" = 200 ]
	code=$(get "$ALICE_TOKEN" "/api/v1/namespaces/$OTHER/profilingpolicies/db-now/profile" "$W/od.alice3")
	check "... but not another namespace's policy (HTTP $code)" [ "$code" = 403 ]
	code=$(get "$ADMIN_TOKEN" "$LOC/profile?from=1&until=2" "$W/od.range")
	check "a time range with nothing in it: 404 (HTTP $code)" [ "$code" = 404 ]
	code=$(get "$ADMIN_TOKEN" "/api/v1/namespaces/$SHOP/profilingpolicies/../secrets/profile" "$W/od.trav")
	check "a malformed path is refused (HTTP $code)" [ "$code" = 404 ]
	# the admin's token and access were reviewed once, then kept (TokenReview and
	# SubjectAccessReview cost the API server two calls per request otherwise)
	cached=$(curl -s "$HTTP/metrics" | awk '$1 == "profleet_controller_auth_reviews_total{source=\"cache\"}" { print $2 }')
	check "repeated requests with one token are answered from the review cache ($cached)" \
		[ "${cached:-0}" -ge 3 ]
else
	skip "store HTTP checks need the local cluster's tokens"
fi

# runtime_pod POD APP COMMAND: a pod of node A labelled app=APP whose container runs
# COMMAND (a shell command line), and an OnDemand policy APP-now of 5 s selecting it;
# the command's pid in RT_PID
runtime_pod() {
	rt_uid=$(pod "$SHOP" "$1" "$NODE_A" "{\"app\": \"$2\"}")
	rt_cid=$(cid)
	running "$SHOP" "$1" "$rt_cid" "$(cid)"
	dir=$(pod_cgroup "$rt_uid" "$rt_cid" systemd)
	sh -c "echo \$\$ > '$dir/cgroup.procs' && exec $3" >/dev/null &
	RT_PID=$!
	PIDS="$PIDS $RT_PID"
	cat >"$W/$2.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ProfilingPolicy
metadata: {name: $2-now, namespace: $SHOP}
spec:
  mode: OnDemand
  durationSeconds: 5
  selector: {podSelector: {matchLabels: {app: $2}}}
  sampling: {frequencyHz: 99}
EOF
	k apply -f "$W/$2.yaml" >/dev/null
}

# runtime_done APP WHAT: APP-now completes with profiles in the store, checked
runtime_done() {
	wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP $1-now -o jsonpath='{.status.phase}')\" = Completed ]"
	wait_until 15 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get profilingpolicy -n $SHOP $1-now -o jsonpath='{.status.result.profiles}')\" -ge 1 ]"
	check "the $2 pod's OnDemand policy completes with profiles in the store ($(pstatus "$SHOP" "$1-now" '{.status.phase}/{.status.result.profiles}'))" \
		[ "$(pstatus "$SHOP" "$1-now" '{.status.phase}')" = Completed ]
}

# runtime_stored APP WHAT SVG-NAME SVG-REGEX PPROF-WHAT PPROF-REGEX: the store's flame
# graph (names SVG-NAME) and merged pprof (PPROF-WHAT) of APP-now
runtime_stored() {
	[ "$LOCAL" = 1 ] || return 0
	loc=/api/v1/namespaces/$SHOP/profilingpolicies/$1-now
	code=$(get "$ADMIN_TOKEN" "$loc/flamegraph.svg" "$W/$1.svg")
	[ "$code" = 200 ] && grep -qE "$4" "$W/$1.svg"
	verdict "the store's flame graph of the $2 pod names $3 (HTTP $code)" $?
	code=$(get "$ADMIN_TOKEN" "$loc/profile" "$W/$1.pb.gz")
	[ "$code" = 200 ] && go tool pprof -raw "$W/$1.pb.gz" >"$W/$1.raw" 2>&1 && grep -qE "$6" "$W/$1.raw"
	verdict "the store's merged pprof keeps $2 frames: $5 (HTTP $code)" $?
}

# ---- a Python pod: its functions by name, through the agent and the store ----------------
PY=/usr/bin/python3.11
if [ -x "$PY" ]; then
	runtime_pod py-1 py "'$PY' '$TOP/tests/workloads/python/ratio.py' 60 1"
	# each interval's profile replaces the last: look while the policy runs
	PYCHAIN=';_PyEval_EvalFrameDefault;ratio\.<module>_\[py\];ratio\.main_\[py\];ratio\.loop_\[py\];ratio\.Worker\.hot_three_\[py\]'
	wait_until 15 grep -qE "$PYCHAIN" "$W/prof-a.txt"
	check "node A's agent names the pod's Python functions: module.Class.method_[py], under the evaluation loop" \
		grep -qE "$PYCHAIN" "$W/prof-a.txt"
	runtime_done py Python
	runtime_stored py Python 'ratio.Worker.hot_three_[py]' 'ratio\.Worker\.hot_three_\[py\]' \
		'file, line 16, module' ' M=[0-9]+ Worker\.hot_three .*/ratio\.py:16 s=0\(ratio\.Worker\.hot_three\)$'
	if [ "$LOCAL" = 1 ]; then
		grep -qE '^ *[0-9]+: 0x0/0x1/0x0 \[cpython\]' "$W/py.raw"
		verdict "... under the [cpython] pseudo-mapping" $?
	fi
	kill "$RT_PID" 2>/dev/null
	k delete -f "$W/py.yaml" >/dev/null
else
	skip "no $PY (tests/deps.sh installs python3.11)"
fi

# ---- a Java pod: HotSpot frames by class and method, inlined ones too, with lines ---------
JDK=/usr/lib/jvm/java-17-openjdk-amd64
if [ -x "$JDK/bin/java" ] && "$JDK/bin/javac" -d "$W" "$TOP/tests/workloads/java/JvmRatio.java" \
	>"$W/javac.log" 2>&1; then
	runtime_pod jvm-1 jvm "'$JDK/bin/java' -cp '$W' JvmRatio 60"
	JCHAIN=';\[jvm\] StubRoutines \(1\)_\[j\];JvmRatio\.main_\[j\];JvmRatio\.run_\[j\];JvmRatio\.pick_\[j\];JvmRatio\.hotThree_\[j\]'
	wait_until 15 grep -qE "$JCHAIN" "$W/prof-a.txt"
	check "node A's agent walks the Java pod's frames: call stub -> main -> run -> pick -> hotThree, each Class.method_[j]" \
		grep -qE "$JCHAIN" "$W/prof-a.txt"
	runtime_done jvm Java
	pl=$(grep -n 'return (i & 3)' "$TOP/tests/workloads/java/JvmRatio.java" | cut -d: -f1)
	runtime_stored jvm Java 'JvmRatio.hotThree_[j]' 'JvmRatio\.hotThree_\[j\]' \
		"JvmRatio.pick, file, line $pl, signature" \
		" M=[0-9]+ JvmRatio\\.pick JvmRatio\\.java:$pl(:[0-9]+)? s=0\\(JvmRatio\\.pick\\(J\\)J\\)\$"
	kill "$RT_PID" 2>/dev/null
	k delete -f "$W/jvm.yaml" >/dev/null
else
	skip "no $JDK/bin/javac (tests/deps.sh installs openjdk-17-jdk-headless)"
fi

# ---- a Node.js pod: JavaScript frames, those TurboFan inlined too, with lines ---------------
if NROOT=$(sh "$TOP/tests/python-root.sh" sid nodejs 2>"$W/noderoot.err"); then
	mkdir -p "$NROOT/tmp/profleet-node"
	cp "$TOP/tests/workloads/node/ratio.js" "$NROOT/tmp/profleet-node/"
	runtime_pod js-1 js "env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot '$NROOT' node /tmp/profleet-node/ratio.js 60"
	NCHAIN=';main_\[js\];run_\[js\];pick_\[js\];hotThree_\[js\]'
	wait_until 20 grep -qE "$NCHAIN" "$W/prof-a.txt"
	check "node A's agent walks the Node.js pod's frames: main -> run -> pick -> hotThree (run and pick inlined), each name_[js]" \
		grep -qE "$NCHAIN" "$W/prof-a.txt"
	runtime_done js JavaScript
	pl=$(grep -n 'return (i & 3)' "$TOP/tests/workloads/node/ratio.js" | cut -d: -f1)
	runtime_stored js JavaScript 'hotThree_[js]' 'hotThree_\[js\]' \
		"pick, its script, line $pl" " M=[0-9]+ pick /tmp/profleet-node/ratio\\.js:$pl(:[0-9]+)? s=0\$"
	kill "$RT_PID" 2>/dev/null
	k delete -f "$W/js.yaml" >/dev/null
else
	sed 's/^/# /' "$W/noderoot.err"
	skip "no sid root file system with nodejs (tests/python-root.sh)"
fi


# ---- kubectl profleet: record through the API server's service proxy ------------------------
HOSTIP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -1)
if [ "$LOCAL" = 1 ] && [ -n "$HOSTIP" ]; then
	# what a Service in front of the controller's pod would be: a Pod whose IP is this
	# host's (the API server's proxy checks that an endpoint is a pod's) and its Endpoints
	cat >"$W/ctlpod.json" <<EOF
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "controller-0", "namespace": "$SYS"},
 "spec": {"nodeName": "$NODE_A", "automountServiceAccountToken": false, "containers": [{"name": "c", "image": "busybox"}]}}
EOF
	k create -f "$W/ctlpod.json" >/dev/null
	status_merge "$SYS" controller-0 \
		"{\"phase\": \"Running\", \"podIP\": \"$HOSTIP\", \"podIPs\": [{\"ip\": \"$HOSTIP\"}]}"
	cat >"$W/svc.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: profleet-controller, namespace: $SYS}
spec:
  ports: [{name: http, port: 7471, targetPort: $((HPORT + 1))}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: profleet-controller, namespace: $SYS}
subsets:
  - addresses: [{ip: $HOSTIP, targetRef: {kind: Pod, name: controller-0, namespace: $SYS}}]
    ports: [{name: http, port: $((HPORT + 1))}]
EOF
	k apply -f "$W/svc.yaml" >/dev/null
	PATH=$TOP/plugin:$PATH KUBECONFIG=$KC kubectl profleet record -n "$SHOP" -l app=db --duration 3 \
		--frequency 99 -o "$W/plugin.svg" --controller-namespace "$SYS" >"$W/plugin.log" 2>&1
	rc=$?
	sed 's/^/#   /' "$W/plugin.log" | head -12
	check "kubectl profleet record: an OnDemand policy, its progress, the flame graph through the service proxy" \
		sh -c "[ $rc -eq 0 ] && grep -q busy_loop '$W/plugin.svg' && grep -q e2e-db1 '$W/plugin.svg' && grep -q 'Completed' '$W/plugin.log'"
	check "... and the policy is deleted afterwards" \
		sh -c "! kubectl --kubeconfig '$KC' get profilingpolicies -n $SHOP -o name | grep -q profleet-record"
	PATH=$TOP/plugin:$PATH KUBECONFIG=$KC kubectl profleet record -n "$SHOP" -l app=db --duration 2 \
		-o "$W/plugin.pb.gz" --controller-namespace "$SYS" >"$W/plugin2.log" 2>&1
	check "kubectl profleet record -o profile.pb.gz: a pprof go tool pprof reads" \
		sh -c "go tool pprof -raw '$W/plugin.pb.gz' 2>/dev/null | grep -q busy_loop"
	k create role pp-author -n "$SHOP" --verb=create,get,delete,list --resource=profilingpolicies.profiling.profleet.dev >/dev/null
	k create rolebinding alice-author -n "$SHOP" --role=pp-author --user=alice >/dev/null
	k create role proxy -n "$SYS" --verb=get --resource=services/proxy >/dev/null
	k create rolebinding alice-proxy -n "$SYS" --role=proxy --user=alice >/dev/null
	PATH=$TOP/plugin:$PATH KUBECONFIG=$KC kubectl profleet --context alice record -n "$SHOP" -l app=db \
		--duration 2 -o "$W/alice.svg" --controller-namespace "$SYS" >"$W/plugin3.log" 2>&1
	check "alice records in her namespace with her own token (SubjectAccessReview as alice)" \
		sh -c "grep -q busy_loop '$W/alice.svg'"
	PATH=$TOP/plugin:$PATH KUBECONFIG=$KC kubectl profleet status -n "$SHOP" >"$W/status.txt" 2>"$W/status.err"
	check "kubectl profleet status lists the policies with phase, pods and samples" \
		sh -c "head -1 '$W/status.txt' | grep -q 'PHASE' && grep -q '^$SHOP  *db-now  *OnDemand  *Completed' '$W/status.txt'"
else
	skip "kubectl profleet needs the local cluster and a non-loopback address"
	skip "kubectl profleet"
	skip "kubectl profleet"
	skip "kubectl profleet"
	skip "kubectl profleet"
fi

# ---- the controller goes away and comes back ----------------------------------------------
kill -9 "$CTL_PID"
wait "$CTL_PID" 2>/dev/null
sa0=$(st a '.targets[0].samples')
sleep 3
sa1=$(st a '.targets[0].samples')
[ "$sa1" -gt "$sa0" ] && [ "$(sv a .connected)" = false ]
verdict "agents keep profiling while the controller is down" $?
start_controller c1
wait_until 30 sh -c "exec 2>/dev/null; [ \"\$(jq -r .connects '$W/state-a.json')\" -ge 2 ] && [ \"\$(jq -r .connected '$W/state-a.json')\" = true ]"
check "agents reconnect to the restarted controller" [ "$(sv a .connected)" = true ]
policy web "$SHOP" 149
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r .frequencyHz '$W/state-a.json')\" = 149 ]"
check "after a controller restart, changes reach the agents again" [ "$(st a .frequencyHz)" = 149 ]

# ---- the API server goes away and comes back ----------------------------------------------
if [ "$LOCAL" = 1 ]; then
	sh "$TOP/e2e/cluster.sh" stop-apiserver "$W/cluster" >/dev/null 2>&1
	sleep 3
	sb0=$(st a '.targets[0].samples')
	sleep 2
	check "agents keep profiling while the API server is down" [ "$(st a '.targets[0].samples')" -gt "$sb0" ]
	sh "$TOP/e2e/cluster.sh" start-apiserver "$W/cluster" >>"$W/cluster.log" 2>&1
	policy web "$SHOP" 79
	wait_until 60 sh -c "exec 2>/dev/null; [ \"\$(jq -r .frequencyHz '$W/state-a.json')\" = 79 ]"
	check "after an API server restart the controller watches again (change applied)" [ "$(st a .frequencyHz)" = 79 ]
else
	skip "API server restart (not on an external cluster)"
	skip "API server restart (not on an external cluster)"
fi

# ---- leader election ------------------------------------------------------------------
C1_PID=$CTL_PID
PORT1=$PORT
PORT=$((PORT + 1))
start_controller c2
C2_PID=$CTL_PID
sleep 3
check "a second replica waits: the lease stays with c1" \
	[ "$(k get lease -n "$SYS" profleet-controller -o jsonpath='{.spec.holderIdentity}')" = c1 ]
T0=$(date +%s%N)
kill "$C1_PID"
wait_until 20 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get lease -n $SYS profleet-controller -o jsonpath='{.spec.holderIdentity}')\" = c2 ]"
check "when the leader stops, the other replica takes over" \
	[ "$(k get lease -n "$SYS" profleet-controller -o jsonpath='{.spec.holderIdentity}')" = c2 ]
note "takeover after SIGTERM to the leader: $(( ($(date +%s%N) - T0) / 1000000 )) ms"
if [ "$(k get lease -n "$SYS" profleet-controller -o jsonpath='{.spec.holderIdentity}')" != c2 ]; then
	note "the lease: $(k get lease -n "$SYS" profleet-controller -o jsonpath='{.spec}')"
	for id in c1 c2; do
		grep -E 'lease|leader|stopp' "$W/controller-$id.log" | tail -n 12 | sed "s/^/$id: /" |
			while IFS= read -r line; do note "$line"; done
	done
fi
wait_until 10 sh -c "! kill -0 $C1_PID 2>/dev/null"
PORT=$PORT1

# ---- deletion ----------------------------------------------------------------------------
kill "$C2_PID" 2>/dev/null
wait_until 10 sh -c "! kill -0 $C2_PID 2>/dev/null"
start_controller c1
wait_until 30 sh -c "exec 2>/dev/null; [ \"\$(kubectl --kubeconfig '$KC' get lease -n $SYS profleet-controller -o jsonpath='{.spec.holderIdentity}')\" = c1 ]"
# both agents back: one refused while the API server was down may be in its
# backoff (up to 30 s) for a while yet
wait_until 45 sh -c "exec 2>/dev/null; [ \"\$(jq -r .connected '$W/state-a.json')\" = true ] && [ \"\$(jq -r .connected '$W/state-b.json')\" = true ]"
k delete profilingpolicy -n "$SHOP" web >/dev/null
wait_until 10 sh -c "exec 2>/dev/null; [ \"\$(jq -r '.targets | length' '$W/state-a.json')\" = 0 ] && [ \"\$(jq -r '.targets | length' '$W/state-b.json')\" = 0 ]"
[ "$(st a '.targets | length')" = 0 ] && [ "$(st b '.targets | length')" = 0 ]
verdict "deleting the policy empties both agents' targets" $?
k0=$(st a .kernelSeen)
sleep 2
k1=$(st a .kernelSeen)
[ "$k1" = "$k0" ] && [ "$(st a .frequencyHz)" = 0 ]
verdict "with nothing targeted, the agent's perf events are off" $?

# ---- clean up the objects (the cluster may be someone else's) ------------------------------
for ns in "$SHOP" "$OTHER" "$SYS"; do	# no kubelet will confirm these pods' deletion
	k delete pods --all -n "$ns" --force --grace-period=0 >/dev/null 2>&1
done
k delete namespace "$SHOP" "$OTHER" "$SYS" --wait=false >/dev/null 2>&1
k delete node "$NODE_A" "$NODE_B" "$NODE_C" >/dev/null 2>&1
for f in controller-c1 controller-c2; do
	if grep -qE 'AddressSanitizer|runtime error' "$W/$f.log" 2>/dev/null; then
		not_ok "$f log has sanitizer reports"
	fi
done
echo "1..$n"
[ "$failures" -eq 0 ]
