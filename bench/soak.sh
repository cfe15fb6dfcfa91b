#!/bin/sh
# Soak: `profleet-agent run` as a long-running DaemonSet would run it, against
# a real controller and API server (e2e/cluster.sh), with churn:
#   - three steady targets at 99, 49 and 19 Hz (pods soak-a, soak-b, soak-c);
#   - a fourth pod (soak-d, selected with soak-a) that runs SOAK_PROCS short
#     processes over SOAK_MINUTES: SOAK_BINARIES distinct binaries (copies of
#     a small program, each with its own build id), a dlopen-heavy program
#     every 10th, a four-thread one every 50th.
# Every minute it prints the agent's RSS (and at the end its peak, VmHWM), the BPF map memory it holds, the
# processes and mappings it tracks, the unwind rows in use and the ring
# buffer's drops; at the end the RSS slope after warm-up and, per steady
# target, the CPU time its exported profiles claim against /proc/PID/stat.
# A benchmark, not a test: goals are printed, not asserted.
#
#   sh bench/soak.sh        SOAK_MINUTES=20 SOAK_PROCS=20000 SOAK_BINARIES=200
# shellcheck shell=sh
set -u
. "$(dirname "$0")/../e2e/lib.sh"
MINUTES=${SOAK_MINUTES:-20}
PROCS=${SOAK_PROCS:-20000}
NBIN=${SOAK_BINARIES:-200}
WARMUP_MIN=3
CTL=$BUILD/bin/profleet-controller
AGENT=$BUILD/bin/profleet-agent
BUSY=$BUILD/workloads/busy
for f in "$CTL" "$AGENT" "$BUSY" "$BUILD/workloads/dlopener" "$BUILD/workloads/threads" \
	"$BUILD/tools/httpsink"; do
	[ -x "$f" ] || bail "$f is not built (make)"
done
for c in kubectl jq protoc perl readelf; do
	command -v "$c" >/dev/null || bail "$c is missing"
done
workdir soak
PIDS="" CG=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
		sleep 0.3
		find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	[ -f "$W/cluster/env" ] && sh "$TOP/e2e/cluster.sh" stop "$W/cluster" >/dev/null 2>&1
	echo "# work directory: $W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- cluster, controller, pods --------------------------------------------------------
sh "$TOP/e2e/cluster.sh" start "$W/cluster" >"$W/cluster.log" 2>&1 || bail "cannot start the API server"
KC=$W/cluster/kubeconfig
k() { kubectl --kubeconfig "$KC" "$@"; }
k apply -f "$TOP/crds/" >/dev/null &&
	k wait --for condition=established --timeout=60s crd/profilingpolicies.profiling.profleet.dev >/dev/null ||
	bail "CRDs"
NS=soak
NODE=soak-node
k create namespace $NS >/dev/null
printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n' $NODE | k apply -f - >/dev/null
V2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$V2" ] || bail "no cgroup v2 mount"
CG=$V2/profleet-soak-$$
mkdir -p "$CG"
for p in a b c d; do
	app=$p
	[ $p = d ] && app=a
	uid=$(pod $NS soak-$p $NODE "{\"app\": \"$app\"}")
	cid=$(cid)
	running $NS soak-$p "$cid" "$(cid)"
	echo "$uid $cid" >"$W/pod-$p"
done
mkdir -p "$W/sink"
"$BUILD/tools/httpsink" "$W/sink" 0 200 >"$W/sink.port" &
PIDS="$PIDS $!"
sleep 0.3
PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
"$CTL" --kubeconfig "$KC" --listen "127.0.0.1:$PORT" --no-leader-election --no-store \
	--http-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 --insecure-trust-agents >"$W/controller.log" 2>&1 &
PIDS="$PIDS $!"
cat >"$W/policies.yaml" <<EOF
apiVersion: profiling.profleet.dev/v1alpha1
kind: ClusterProfilingBackend
metadata: {name: soak-sink}
spec: {type: pyroscope, url: "http://127.0.0.1:$(cat "$W/sink.port")", allowedNamespaces: [$NS]}
EOF
for pr in a:99 b:49 c:19; do
	printf -- '---\napiVersion: profiling.profleet.dev/v1alpha1\nkind: ProfilingPolicy\nmetadata: {name: soak-%s, namespace: %s}\nspec:\n  selector: {podSelector: {matchLabels: {app: %s}}, containers: [app]}\n  sampling: {frequencyHz: %s}\n  export: {backendRefs: [soak-sink]}\n' \
		"${pr%%:*}" $NS "${pr%%:*}" "${pr#*:}" >>"$W/policies.yaml"
done
k apply -f "$W/policies.yaml" >/dev/null || bail "policies"

# ---- steady targets and the churn --------------------------------------------------------
for p in a b c; do
	set -- $(cat "$W/pod-$p")
	workload "$1" "$2" soak-busy-$p systemd
done
mkdir -p "$W/bin"
i=0
while [ $i -lt "$NBIN" ]; do	# distinct build ids: the agent cannot share their tables
	perl -e 'local $/; open F, "<", $ARGV[0] or die; binmode F; $b = <F>;
		$id = pack("H*", $ARGV[2]); $new = pack("H*", $ARGV[3]);
		$b =~ s/\Q$id\E/$new/; open O, ">", $ARGV[1] or die; binmode O; print O $b;' \
		"$BUSY" "$W/bin/churn-$i" \
		"$(readelf -n "$BUSY" | awk '/Build ID/ { print $3 }')" \
		"$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	chmod +x "$W/bin/churn-$i"
	i=$((i + 1))
done
LIBS=$(ls /usr/lib/x86_64-linux-gnu/lib*.so.[0-9] 2>/dev/null | grep -vE 'lib(a|t|ub|l|hwa)san' |
	head -60 | tr '\n' ' ')
set -- $(cat "$W/pod-d")
DDIR=$(pod_cgroup "$1" "$2" systemd)
cat >"$W/churn.sh" <<EOF
echo \$\$ > '$DDIR/cgroup.procs'
i=0 start=\$(date +%s) per_s=\$(( ($PROCS + $MINUTES * 60 - 1) / ($MINUTES * 60) ))
while [ \$i -lt $PROCS ]; do
	j=0
	while [ \$j -lt \$per_s ] && [ \$i -lt $PROCS ]; do
		if [ \$((i % 50)) -eq 49 ]; then '$BUILD/workloads/threads' 0.1 >/dev/null
		elif [ \$((i % 10)) -eq 9 ]; then '$BUILD/workloads/dlopener' $LIBS >/dev/null
		else '$W/bin/churn-'\$((i % $NBIN)) 1; fi
		i=\$((i + 1)) j=\$((j + 1))
	done
	echo \$i >'$W/churn.count'
	while [ \$(date +%s) -lt \$((start + i / per_s)) ]; do sleep 0.05; done
done
EOF
sh "$W/churn.sh" &
CHURN=$!
PIDS="$PIDS $CHURN"

# ---- the agent ----------------------------------------------------------------------------
"$AGENT" run --controller "ws://127.0.0.1:$PORT" --node-name $NODE --token-file /dev/null \
	--state-file "$W/state.json" --interval 10 --cgroup-root "$V2" \
	--log "$W/agent.log" --log-level info &
AG=$!
PIDS="$PIDS $AG"
(while :; do
	for p in a b c; do
		pid=$(cat "$W/pid-soak-busy-$p")
		echo "$(date +%s%N) $(cut -d' ' -f14,15 "/proc/$pid/stat")" >>"$W/stat-$p.log"
	done
	sleep 0.2
done) &
PIDS="$PIDS $!"
st() { jq -r "($1) // 0" "$W/state.json" 2>/dev/null || echo 0; }
map_kib() { # BPF map memory the agent holds: the memlock of each map fd it has open
	cat /proc/"$AG"/fdinfo/* 2>/dev/null | awk '/^map_type/ { m = 1 } m && /^memlock/ { s += $2; m = 0 }
		END { print int(s / 1024) }'
}

printf '# %3s %8s %8s %7s %8s %8s %8s %7s %9s\n' min rss_kib maps_kib procs mappings urows uptabs drops churned
T0=$(date +%s%N)
m=0
while [ $m -lt "$MINUTES" ]; do
	sleep 60
	m=$((m + 1))
	kill -0 "$AG" 2>/dev/null || bail "the agent died (see $W/agent.log)"
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$AG/status")
	echo "$m $rss" >>"$W/rss.log"
	printf '# %3d %8d %8d %7d %8d %8d %8d %7d %9d\n' $m "$rss" "$(map_kib)" \
		"$(st .processesTracked)" "$(st .mappingsTracked)" "$(st .unwindRows)" \
		"$(st .unwindTables)" "$(st .dropped)" "$(cat "$W/churn.count" 2>/dev/null || echo 0)"
	[ $m -eq $WARMUP_MIN ] && TW=$(date +%s%N)
done
T1=$(date +%s%N)
kill "$CHURN" 2>/dev/null
sleep 12	# the last interval's export
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$AG/status" 2>/dev/null)

# ---- the verdict -------------------------------------------------------------------------
slope=$(awk -v w=$WARMUP_MIN '$1 >= w { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
	END { if (n < 2) print 0; else printf "%.1f", (n * sxy - sx * sy) / (n * sxx - sx * sx) }' "$W/rss.log")
max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$W/rss.log")
echo "# RSS: max $((max / 1024)) MiB at the minutes, $((${hwm:-0} / 1024)) MiB at its peak (VmHWM) (goal <= 64), slope after minute $WARMUP_MIN: $slope KiB/min (goal: flat)"
echo "# unwind tables: $(st .unwindTablesFailed) failed (no room in --unwind-rows, no CFI), found again without a rebuild $(st .unwindFailuresReused) times"
echo "# ring buffer drops: $(st .dropped) (goal 0); processes run by the churn: $(cat "$W/churn.count")"
for req in "$W"/sink/req-*.txt; do
	pod=$(grep -o 'pod%3Dsoak-[a-d]' "$req" | head -1 | sed 's/pod%3D//')
	case $pod in soak-a | soak-b | soak-c) ;; *) continue ;; esac
	body=$(echo "$req" | sed 's/req-/body-/; s/\.txt$/.bin/')
	perl -e 'local $/; open F, "<", $ARGV[0] or die; binmode F; $b = <F>;
		$i = index($b, "\x1f\x8b"); $j = rindex($b, "\r\n--");
		open O, ">", $ARGV[1] or die; binmode O; print O substr($b, $i, $j - $i);' "$body" "$W/p.pb.gz" &&
		zcat "$W/p.pb.gz" | protoc --decode=perftools.profiles.Profile -I "$TOP/proto" \
			"$TOP/proto/profile.proto" >"$req.prof" 2>/dev/null && echo "$req.prof" >>"$W/list-$pod"
done
for p in a b c; do
	set -- $(perl "$TOP/e2e/cputime.pl" "$W/stat-$p.log" "${TW:-$T0}" "$T1" $(cat "$W/list-soak-$p" 2>/dev/null))
	echo "# soak-$p: exported ${1:-0} ms of CPU, /proc says ${2:-0} ms over ${3:-0} windows:" \
		"ratio $(awk -v a="${1:-0}" -v b="${2:-1}" 'BEGIN { printf "%.3f", b ? a / b : 0 }') (goal 0.9..1.1)"
done
