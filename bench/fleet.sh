#!/bin/sh
# The controller at fleet scale, on 127.0.0.1: a real kube-apiserver + etcd
# (e2e/cluster.sh), profleet-controller, and bench/fleetsim's simulated agents
# (one websocket each, acking every target set at once).
#
# Prints, per size: policy change -> every agent holds the new set (p50/p99/max
# over ROUNDS changes), controller CPU when the fleet is idle and during the
# changes, controller RSS and peak RSS. Targets (issue 4): p99 <= 1 s at 500
# agents; RSS <= 64 MiB at 1000 agents and 10k pods; no CPU for idle agents.
# The peer measured in the same run is the kube-apiserver serving the same
# objects (its RSS is printed next to ours). Numbers, never pass/fail.
#
#   bench/fleet.sh [ROUNDS]     (default 10)
# Environment: FLEET_SIZES (default "500:5000 1000:10000", AGENTS:PODS each),
# FLEET_POLICIES (default 1: the changing one; more select a tenth of the pods
# each), FLEET_CHURN (pods created and deleted a second during the rounds,
# default 0; the rounds start once the window is full and pods are being
# deleted), FLEET_CHURN_WINDOW (churn pods alive at once, default 2000),
# PROFLEET_CONTROLLER (another controller binary, e.g. an older build, to
# compare in the same conditions), FLEET_LOG_LEVEL (the controller's, default
# warn; its log is copied to FLEET_LOG.AGENTS when FLEET_LOG is set),
# FLEET_FULL_DECODE=1 (the simulated agents decode each set whole with
# protobuf-c, as real agents do on their own nodes; by default they read only
# its version, its targets' count and the first one's frequency).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
CTL=${PROFLEET_CONTROLLER:-$top/build/bin/profleet-controller}
SIM=$top/build/bench/fleetsim
ROUNDS=${1:-10}
tmp=$(mktemp -d /tmp/profleet-fleetbench.XXXXXX)
[ -x "$CTL" ] && [ -x "$SIM" ] || { echo "bench: run 'make all build/bench/fleetsim' first" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cleanup() {
	[ -n "${CTL_PID:-}" ] && kill "$CTL_PID" 2>/dev/null
	sh "$top/e2e/cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
apiserver_pid() { pgrep -f "kube-apiserver.*$tmp/cluster" | head -1; }

# a fresh cluster per size: without a kube-controller-manager nothing would
# garbage-collect the previous size's pods
for size in ${FLEET_SIZES:-500:5000 1000:10000}; do
	agents=${size%%:*}
	pods=${size#*:}
	sh "$top/e2e/cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1
	rm -rf "$tmp/cluster"
	sh "$top/e2e/cluster.sh" start "$tmp/cluster" >"$tmp/cluster.log" 2>&1 || { cat "$tmp/cluster.log"; exit 1; }
	KC=$tmp/cluster/kubeconfig
	kubectl --kubeconfig "$KC" apply -f "$top/crds/" >/dev/null
	kubectl --kubeconfig "$KC" wait --for condition=established --timeout=60s \
		crd/profilingpolicies.profiling.profleet.dev >/dev/null
	port=$((30000 + agents))
	probes=""	# an older controller (PROFLEET_CONTROLLER) may not have the option
	"$CTL" --help | grep -q -- --health-listen && probes="--health-listen 127.0.0.1:0"
	# the simulated policies all live in one namespace: no cap on them
	"$CTL" --help | grep -q -- --max-policies-per-namespace &&
		probes="$probes --max-policies-per-namespace 0"
	# shellcheck disable=SC2086
	"$CTL" --kubeconfig "$KC" --listen "127.0.0.1:$port" --no-leader-election --no-store --http-listen "127.0.0.1:$((port + 1))" $probes \
		--insecure-trust-agents --log-level "${FLEET_LOG_LEVEL:-warn}" >"$tmp/ctl-$agents.log" 2>&1 &
	CTL_PID=$!
	sleep 1
	echo "== $agents agents, $pods pods"
	"$SIM" --kubeconfig "$KC" --url "ws://127.0.0.1:$port" --controller-pid "$CTL_PID" \
		--agents "$agents" --pods "$pods" --rounds "$ROUNDS" --namespace "fleet-$agents" \
		--policies "${FLEET_POLICIES:-1}" --churn "${FLEET_CHURN:-0}" \
		--churn-window "${FLEET_CHURN_WINDOW:-2000}" ${FLEET_FULL_DECODE:+--full-decode} \
		>"$tmp/sim.out"
	sed 's/^fleetsim: /  /; /^RESULT/d' "$tmp/sim.out"
	rm -f "$tmp/metrics"
	curl -sSf --max-time 30 -o "$tmp/metrics" "http://127.0.0.1:$((port + 1))/metrics" ||
		echo "  controller: no metrics (curl exit $?)"
	awk '
		/^profleet_controller_reconcile_duration_seconds_count/ { passes = $2 }
		/^profleet_controller_reconcile_duration_seconds_sum/ { sum = $2 }
		/^profleet_controller_reconciles_total\{kind="resolve"\}/ { resolves = $2 }
		/^profleet_controller_reconcile_queue_depth_max/ { depth = $2 }
		/^profleet_controller_target_pushes_total/ { pushes = $2 }
		/^profleet_controller_lock_hold_seconds_bucket/ { split($1, a, "\""); nb += 0; le[nb] = a[2]; cum[nb++] = $2 }
		/^profleet_controller_lock_hold_seconds_count/ { holds = $2 }
		/^profleet_controller_policy_rollout_seconds_bucket/ { split($1, a, "\""); nr += 0; rle[nr] = a[2]; rcum[nr++] = $2 }
		/^profleet_controller_policy_rollout_seconds_count/ { rollouts = $2 }
		END {
			p99 = "n/a"
			for (i = 0; i < nb; i++) if (cum[i] >= 0.99 * holds) { p99 = "<= " le[i] " s"; break }
			printf "  controller: %d resolve passes (%.1f ms each on average), %d target sets pushed, reconcile queue depth max %s, lock hold p99 %s (%d holds)\n",
				passes, passes ? 1000 * sum / passes : 0, pushes, depth == "" ? "n/a" : depth, p99, holds
			# what the controller adds: from the policy event it got to every ack
			r50 = r99 = "n/a"
			for (i = nr - 1; i >= 0; i--) {
				if (rcum[i] >= 0.5 * rollouts) r50 = "<= " rle[i] " s"
				if (rcum[i] >= 0.99 * rollouts) r99 = "<= " rle[i] " s"
			}
			if (rollouts) printf "  controller: policy event received -> every agent holds it: p50 %s, p99 %s (%d rollouts, from its histogram)\n", r50, r99, rollouts }' "$tmp/metrics" 2>/dev/null

	ap=$(apiserver_pid)
	ctl_kb=$(awk '/VmRSS/ { print $2 }' /proc/"$CTL_PID"/status)
	[ -n "$ap" ] && awk -v c="$ctl_kb" '/VmRSS/ { printf "  peer: kube-apiserver RSS %.1f MiB serving the same objects; controller/apiserver RSS ratio %.3f\n", $2 / 1024, c / $2 }' /proc/"$ap"/status
	awk '/^RESULT/ { split($2, p, "="); split($3, r, "="); split($5, d, "="); printf "  against the targets: p99 %s ms / 1000 ms = %.3f; RSS %s MiB / 64 MiB = %.3f (the agents'"'"' sets: decode=%s)\n", p[2], p[2] / 1000, r[2], r[2] / 64, d[2] }' "$tmp/sim.out"
	kill "$CTL_PID"
	wait "$CTL_PID" 2>/dev/null
	CTL_PID=
	[ -z "${FLEET_LOG:-}" ] || cp "$tmp/ctl-$agents.log" "$FLEET_LOG.$agents"
done
