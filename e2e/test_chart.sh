#!/bin/sh
# The Helm chart (charts/profleet), rendered as `helm template` would by
# build/tools/chartrender (Go text/template + sprig + Helm's functions), then
# handed to a real kube-apiserver (e2e/cluster.sh, v1.20.2): every object is
# validated by the server (kubectl apply --dry-run=server), then applied for
# real to check what RBAC grants. TAP output.
# shellcheck shell=sh
set -u
. "$(dirname "$0")/lib.sh"
R=$BUILD/tools/chartrender
CHART=$TOP/charts/profleet
workdir chart

cleanup() {
	[ -f "$W/cluster/env" ] && sh "$TOP/e2e/cluster.sh" stop "$W/cluster" >/dev/null 2>&1
	keep_or_remove
	echo "1..$n"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ -x "$R" ] || bail "$R is not built (make tests)"
command -v kubectl >/dev/null || bail "kubectl is missing"

# ---- rendering alone -------------------------------------------------------------
"$R" --namespace profleet-system --name profleet "$CHART" >"$W/default.yaml" 2>"$W/default.err"
check "the chart renders with its default values" [ $? -eq 0 ]
kinds=$(grep '^kind:' "$W/default.yaml" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
note "objects: $kinds"
y() { # FILE KIND NAME-SUFFIX: the YAML document of that object
	awk -v k="kind: $2" -v nm="$3" 'BEGIN { RS = "\n---\n" } index($0, "\n" k "\n") && $0 ~ ("name: [a-z0-9-]*" nm "\n") { print; exit }' "$1"
}
y "$W/default.yaml" DaemonSet agent >"$W/ds.yaml"
y "$W/default.yaml" Deployment controller >"$W/deploy.yaml"
check "agent: hostPID, not privileged, read-only root, every taint tolerated" \
	sh -c "grep -q 'hostPID: true' '$W/ds.yaml' && grep -q 'privileged: false' '$W/ds.yaml' &&
		grep -q 'readOnlyRootFilesystem: true' '$W/ds.yaml' && grep -q 'operator: Exists' '$W/ds.yaml'"
check "agent: capabilities BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH, SYSLOG, all others dropped (SYS_RESOURCE too)" \
	sh -c "for c in BPF PERFMON SYS_PTRACE DAC_READ_SEARCH SYSLOG; do grep -q \"^ *- \$c\$\" '$W/ds.yaml' || exit 1; done;
		! grep -q SYS_RESOURCE '$W/ds.yaml';
		grep -q 'drop:' '$W/ds.yaml' && ! grep -q SYS_ADMIN '$W/ds.yaml'"
check "agent: SYS_RESOURCE added with agent.memlockCapability=true (kernels before 5.11)" \
	sh -c "'$R' --set agent.memlockCapability=true '$CHART' | grep -q '^ *- SYS_RESOURCE\$'"
check "agent: a projected token with the controller's audience, no default token" \
	sh -c "grep -q 'audience: profleet' '$W/ds.yaml' && grep -q 'automountServiceAccountToken: false' '$W/ds.yaml'"
# /metrics and the probes on the pod's IP only, from the downward API (not 0.0.0.0)
check "agent: the unwind table cache on a hostPath of the node, off with tableCache.hostPath=''" \
	sh -c "grep -qF -- '- --table-cache=/var/cache/profleet/unwind' '$W/ds.yaml' &&
		grep -q 'path: \"/var/cache/profleet/unwind\", type: DirectoryOrCreate' '$W/ds.yaml' &&
		! '$R' --set agent.tableCache.hostPath= '$CHART' | grep -q table-cache"
check "agent: --http-listen=\$(POD_IP):7472, POD_IP from status.podIP, nothing on 0.0.0.0" \
	sh -c "grep -qF -- '- --http-listen=\$(POD_IP):7472' '$W/ds.yaml' &&
		grep -A1 'name: POD_IP' '$W/ds.yaml' | grep -q 'fieldPath: status.podIP' &&
		! grep -q -- '--http-listen=0\.0\.0\.0' '$W/ds.yaml'"
"$R" --namespace profleet-system --set agent.kernelAddresses=true "$CHART" >"$W/kaddr.yaml"
check "agent: kernel addresses stripped unless agent.kernelAddresses (cluster-wide)" \
	sh -c "grep -qF -- '- --kernel-addresses=false' '$W/ds.yaml' && grep -qF -- '- --kernel-addresses=true' '$W/kaddr.yaml'"
check "controller: restricted (non-root, no privilege escalation, caps dropped, RuntimeDefault seccomp), 2 replicas, probes" \
	sh -c "grep -q 'runAsNonRoot: true' '$W/deploy.yaml' && grep -q 'allowPrivilegeEscalation: false' '$W/deploy.yaml' &&
		grep -q 'drop:' '$W/deploy.yaml' && grep -q 'type: RuntimeDefault' '$W/deploy.yaml' &&
		grep -q 'replicas: 2' '$W/deploy.yaml' && grep -q 'path: /readyz' '$W/deploy.yaml' && grep -q 'path: /healthz' '$W/deploy.yaml'"
check "controller: the probes on their own port (7473), not the HTTP API's" \
	sh -c "grep -qF -- '- --health-listen=0.0.0.0:7473' '$W/deploy.yaml' &&
		grep -q 'httpGet: {path: /healthz, port: probes}' '$W/deploy.yaml' &&
		grep -q 'httpGet: {path: /readyz, port: probes}' '$W/deploy.yaml'"
check "v1.20: the PodDisruptionBudget is policy/v1beta1" \
	sh -c "grep -B1 '^kind: PodDisruptionBudget' '$W/default.yaml' | grep -q 'apiVersion: policy/v1beta1'"
"$R" --kube-version v1.25.0 --api-versions v1 --api-versions apps/v1 --api-versions policy/v1 \
	--namespace profleet-system "$CHART" >"$W/v125.yaml"
check "v1.25 (policy/v1 served): the PodDisruptionBudget is policy/v1" \
	sh -c "grep -B1 '^kind: PodDisruptionBudget' '$W/v125.yaml' | grep -q 'apiVersion: policy/v1\$'"
# TLS by default: a CA and the controller's certificate made at install
y "$W/default.yaml" Secret controller-tls >"$W/tls-secret.yaml"
for k_ in tls.crt tls.key ca.crt; do
	awk -v k="  $k_:" 'index($0, k) == 1 { print $2 }' "$W/tls-secret.yaml" | base64 -d >"$W/gen-$k_" 2>/dev/null
done
check "TLS by default: a generated kubernetes.io/tls Secret whose certificate its CA verifies, for the Service's names" \
	sh -c "grep -q 'type: kubernetes.io/tls' '$W/tls-secret.yaml' &&
		openssl verify -CAfile '$W/gen-ca.crt' '$W/gen-tls.crt' >/dev/null 2>&1 &&
		openssl x509 -in '$W/gen-tls.crt' -noout -ext subjectAltName | grep -q 'DNS:profleet-controller.profleet-system.svc,' &&
		openssl rsa -in '$W/gen-tls.key' -check -noout >/dev/null 2>&1"
check "... the agents dial wss:// and verify it with ca.crt; the controller serves it" \
	sh -c "grep -qF -- '- --controller=wss://profleet-controller.profleet-system.svc:7470' '$W/ds.yaml' &&
		grep -qF -- '- --ca-file=/etc/profleet/tls/ca.crt' '$W/ds.yaml' &&
		grep -qF 'secretName: profleet-controller-tls' '$W/ds.yaml' &&
		grep -qF -- '- --tls-cert=/etc/profleet/tls/tls.crt' '$W/deploy.yaml' &&
		grep -qF 'secretName: profleet-controller-tls' '$W/deploy.yaml'"
"$R" --namespace profleet-system --api-versions v1 --api-versions cert-manager.io/v1 "$CHART" >"$W/cm.yaml"
check "where cert-manager.io/v1 is served: a CA Issuer and the controller's Certificate instead" \
	sh -c "[ \$(grep -c '^kind: Issuer' '$W/cm.yaml') = 2 ] && [ \$(grep -c '^kind: Certificate' '$W/cm.yaml') = 2 ] &&
		! grep -q '^kind: Secret' '$W/cm.yaml' && grep -qF 'secretName: profleet-controller-tls' '$W/cm.yaml'"
y "$W/cm.yaml" Certificate controller-ca >"$W/cm-ca.yaml"
y "$W/cm.yaml" Certificate controller >"$W/cm-leaf.yaml"
hours() { awk '$1 == "duration:" { sub(/h$/, "", $2); print $2 }' "$1"; }
ca_h=$(hours "$W/cm-ca.yaml") leaf_h=$(hours "$W/cm-leaf.yaml")
check "... the CA outlives the certificate it signs (${ca_h:-?} h > ${leaf_h:-?} h) and keeps its key" \
	sh -c "[ '${ca_h:-0}' -gt '${leaf_h:-0}' ] && [ '${leaf_h:-0}' -gt 0 ] && grep -q 'rotationPolicy: Never' '$W/cm-ca.yaml'"
"$R" --namespace profleet-system --set controller.tls.enabled=false "$CHART" >"$W/plain.yaml"
check "tls.enabled=false: ws://, no certificate" \
	sh -c "grep -qF -- '- --controller=ws://' '$W/plain.yaml' && ! grep -q '^kind: Secret' '$W/plain.yaml' &&
		! grep -q -- '--tls-cert' '$W/plain.yaml'"
"$R" --set controller.tls.certManager=maybe "$CHART" >/dev/null 2>"$W/badcm.err"
check "tls.certManager must be auto, true or false" \
	sh -c "[ $? -ne 0 ] && grep -q 'want auto, true or false' '$W/badcm.err'"
"$R" --namespace profleet-system --set metrics.serviceMonitor.enabled=true "$CHART" >"$W/nosm.yaml"
check "a ServiceMonitor only where the cluster serves monitoring.coreos.com/v1" \
	sh -c "! grep -q '^kind: ServiceMonitor' '$W/nosm.yaml'"
"$R" --namespace profleet-system --set metrics.serviceMonitor.enabled=true \
	--api-versions v1 --api-versions monitoring.coreos.com/v1/ServiceMonitor "$CHART" >"$W/sm.yaml"
check "... and there it is" grep -q '^kind: ServiceMonitor' "$W/sm.yaml"
"$R" --notes --namespace profleet-system "$CHART" >"$W/notes.txt"
check "NOTES.txt tells the first command to run" grep -q 'kubectl profleet record' "$W/notes.txt"

# ---- the real API server ---------------------------------------------------------
sh "$TOP/e2e/cluster.sh" start "$W/cluster" >"$W/cluster.log" 2>&1 || {
	cat "$W/cluster.log"
	bail "cannot start kube-apiserver + etcd (e2e/cluster.sh)"
}
KC=$W/cluster/kubeconfig
k() { kubectl --kubeconfig "$KC" "$@"; }
k apply -f "$CHART/crds/" >"$W/crds.log" 2>&1 &&
	k wait --for condition=established --timeout=60s crd/profilingpolicies.profiling.profleet.dev >>"$W/crds.log" 2>&1
check "the chart's crds/ (the project's CRDs) apply" [ $? -eq 0 ]
k create namespace profleet-system >/dev/null
k create namespace team-a >/dev/null
k create namespace team-b >/dev/null

cat >"$W/variant.yaml" <<EOF
controller:
  replicas: 1
  tls: {enabled: true, secretName: profleet-tls}
  store: {persistence: {enabled: true, size: 1Gi}}
  secretNamespaces: [team-a, team-b]
  extraArgs: [--log-level=debug]
agent:
  seccompProfile: RuntimeDefault
  priorityClassName: system-node-critical
  nodeSelector: {kubernetes.io/os: linux}
rbac: {aggregateToDefaultRoles: false, storeThroughApiServerProxy: false}
EOF
"$R" --namespace profleet-system -f "$W/variant.yaml" "$CHART" >"$W/variant.out.yaml"
"$R" --namespace profleet-system --set controller.store.enabled=false --name other "$CHART" >"$W/nostore.yaml"
for v in default variant.out nostore; do
	k apply --dry-run=server -f "$W/$v.yaml" >"$W/$v.dry" 2>&1
	rc=$?
	cnt=$(grep -c 'server dry run' "$W/$v.dry")
	check "the API server accepts every object of the $v rendering ($cnt objects, dry run)" \
		sh -c "[ $rc -eq 0 ] && [ $cnt -eq $(grep -c '^kind:' "$W/$v.yaml") ]"
	[ $rc -eq 0 ] || sed 's/^/#   /' "$W/$v.dry" | head -20
done
check "variant: a PVC for the store, wss with the given Secret's CA, Roles for Secrets in team-a and team-b" \
	sh -c "grep -q '^kind: PersistentVolumeClaim' '$W/variant.out.yaml' && grep -q 'ca-file=/etc/profleet/tls/ca.crt' '$W/variant.out.yaml' &&
		! grep -q '^kind: Secret' '$W/variant.out.yaml' && grep -qF 'secretName: profleet-tls' '$W/variant.out.yaml' &&
		grep -q 'controller=wss://' '$W/variant.out.yaml' && [ \$(grep -c 'name: profleet-controller-backend-secrets' '$W/variant.out.yaml') -ge 4 ]"
check "no store: the controller runs with --no-store" grep -q -- '- --no-store' "$W/nostore.yaml"

# applied for real: what RBAC grants each service account
k apply -f "$W/default.yaml" >"$W/apply.log" 2>&1
check "the default rendering applies" [ $? -eq 0 ]
CSA=system:serviceaccount:profleet-system:profleet-controller
ASA=system:serviceaccount:profleet-system:profleet-agent
can() { k auth can-i --as="$1" "$2" "$3" ${4:+-n "$4"} >/dev/null 2>&1; }
check "controller may watch pods, replicasets and policies, patch policy status, create events and reviews" \
	sh -c "k() { kubectl --kubeconfig '$KC' \"\$@\"; }
		for a in 'watch pods' 'list replicasets.apps' 'watch profilingpolicies.profiling.profleet.dev' \
			'patch profilingpolicies.profiling.profleet.dev --subresource=status' 'create events' \
			'create tokenreviews.authentication.k8s.io' 'create subjectaccessreviews.authorization.k8s.io'; do
			k auth can-i --as=$CSA \$a -n team-a >/dev/null 2>&1 || { echo \"# cannot: \$a\"; exit 1; }
		done"
check "controller may use its own Lease, not others', and read Secrets only in its namespace" \
	sh -c "k() { kubectl --kubeconfig '$KC' \"\$@\"; }
		k auth can-i --as=$CSA update leases.coordination.k8s.io/profleet-controller -n profleet-system >/dev/null &&
		! k auth can-i --as=$CSA update leases.coordination.k8s.io/other -n profleet-system >/dev/null &&
		k auth can-i --as=$CSA get secrets -n profleet-system >/dev/null &&
		! k auth can-i --as=$CSA get secrets -n team-a >/dev/null &&
		! k auth can-i --as=$CSA list secrets -n profleet-system >/dev/null &&
		! k auth can-i --as=$CSA create pods -n team-a >/dev/null"
check "agents have no rights on the Kubernetes API" \
	sh -c "k() { kubectl --kubeconfig '$KC' \"\$@\"; }
		for a in 'get pods' 'list nodes' 'get secrets' 'list profilingpolicies.profiling.profleet.dev' 'create tokenreviews.authentication.k8s.io'; do
			! k auth can-i --as=$ASA \$a -n team-a >/dev/null 2>&1 || { echo \"# can: \$a\"; exit 1; }
		done"
check "any user may reach the store through the service proxy (the controller checks each request)" \
	sh -c "kubectl --kubeconfig '$KC' auth can-i --as=alice --as-group=system:authenticated get services/profleet-controller:http --subresource=proxy -n profleet-system >/dev/null 2>&1 ||
		kubectl --kubeconfig '$KC' auth can-i --as=alice --as-group=system:authenticated get services/proxy -n profleet-system >/dev/null 2>&1"
[ "$failures" -eq 0 ]
