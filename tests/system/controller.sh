#!/bin/sh
# The controller's own housekeeping, without an API server (its informers just
# retry): it does nothing while nothing changes, and enforces the store's
# retention while it runs, not only at its start.
. "$(dirname "$0")/lib.sh"
CTL=$BUILD/bin/profleet-controller
kubeconfig "$TMP/kubeconfig" https://127.0.0.1:1
port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 ))
hport=$((port + 1))
metric() { # name: its value on /metrics (empty when absent)
	curl -s "http://127.0.0.1:$hport/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# a profile stored a moment ago, of a policy whose profiles are kept 2 s
now=$(date +%s)
mkdir -p "$TMP/store/ns/default/web"
printf 'x' >"$TMP/store/ns/default/web/$(printf '%012d-%012d' "$now" "$now")-node-1.pb.gz"
"$CTL" --kubeconfig "$TMP/kubeconfig" --listen "127.0.0.1:$port" --no-leader-election \
	--store-dir "$TMP/store" --store-retention 2s --http-listen "127.0.0.1:$hport" \
	--health-listen "127.0.0.1:$((hport + 10))" \
	--insecure-trust-agents --log-level info >"$TMP/ctl.log" 2>&1 &
ctl=$!
for _ in $(seq 50); do [ -n "$(metric profleet_controller_store_files)" ] && break; sleep 0.1; done
check "the profile is in the store at the start" [ "$(metric profleet_controller_store_files)" = 1 ]

# an agent connects: the controller resolves once for it, then has nothing to do
"$AGENT" run --controller "ws://127.0.0.1:$port" --node-name idle-node \
	--state-file "$TMP/agent.json" --log "$TMP/agent.log" &
agent=$!
for _ in $(seq 300); do
	[ "$(jq -r '.version > 0' "$TMP/agent.json" 2>/dev/null)" = true ] && break
	sleep 0.1
done
check "the agent got its (empty) target set" sh -c "[ \"\$(jq -r '.version > 0' '$TMP/agent.json')\" = true ]"
sleep 1
r0=$(metric 'profleet_controller_reconciles_total{kind="resolve"}')
s0=$(metric 'profleet_controller_reconciles_total{kind="status"}')
sleep 4
r1=$(metric 'profleet_controller_reconciles_total{kind="resolve"}')
s1=$(metric 'profleet_controller_reconciles_total{kind="status"}')
echo "# passes: resolve $r0 then $r1, status $s0 then $s1 four seconds later"
check "nothing changed for 4 s: no reconcile pass ran, of either kind" \
	sh -c "[ -n '$r0' ] && [ '$r0' = '$r1' ] && [ -n '$s0' ] && [ '$s0' = '$s1' ]"

# meanwhile the profile's 2 s ran out: gone from the disk, counted
check "the store dropped the profile once it was older than its retention" \
	sh -c "[ -z \"\$(find '$TMP/store' -name '*.pb.gz')\" ]"
check "the eviction is counted as by age" \
	[ "$(metric 'profleet_controller_store_evictions_total{reason="age"}')" = 1 ]
# clients of the HTTP API holding every connection it serves with requests they never
# finish cannot starve the kubelet's probes: those have their own listener
python3 -c 'import socket, sys, time
held = []
for _ in range(80):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    except OSError:
        pass
time.sleep(8)' "$hport" &
hog=$!
sleep 2
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((hport + 10))/healthz")
check "with the API's connections held by half-sent requests, /healthz answers on its own port ($code)" \
	[ "$code" = 200 ]
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((hport + 10))/metrics")
check "the probes' port serves nothing else ($code)" [ "$code" = 404 ]
kill $hog 2>/dev/null
wait $hog 2>/dev/null
kill -INT $agent
wait $agent
kill $ctl
wait $ctl
check "the controller stops cleanly" [ $? -eq 0 ]
[ "$failures" -eq 0 ] || tail -20 "$TMP/ctl.log" | sed 's/^/# ctl: /'

# the API server unreachable: an agent's TokenReview fails, which says nothing of its
# token. The refusal says to retry soon, and the agent does (within its first
# backoff steps, not up to 30 s later as for a real refusal)
"$CTL" --kubeconfig "$TMP/kubeconfig" --listen "127.0.0.1:$port" --no-leader-election \
	--no-store --http-listen "127.0.0.1:$hport" --health-listen 127.0.0.1:0 \
	>"$TMP/ctl-down.log" 2>&1 &
ctl=$!
printf 'not-reviewed' >"$TMP/token"
"$AGENT" run --controller "ws://127.0.0.1:$port" --node-name down-node --token-file "$TMP/token" \
	--state-file "$TMP/agent-down.json" --log "$TMP/agent-down.log" &
agent=$!
sleep 15
kill -INT $agent
wait $agent
refusals=$(grep -c 'refused this agent' "$TMP/agent-down.log")
soon=$(grep -c 'refused this agent: token review failed.*(retry soon)' "$TMP/agent-down.log")
# the longest wait between the first 8 refusals (the log's time=...T12:34:56.789Z)
gap=$(grep 'refused this agent' "$TMP/agent-down.log" | head -n 8 |
	sed -n 's/^time=[^T]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z.*/\1 \2 \3/p' |
	awk '{ t = $1 * 3600 + $2 * 60 + $3; if (NR > 1 && t - p > g) g = t - p; p = t; n++ }
		END { if (n < 8) print "n/a"; else printf "%.2f", g }')
echo "# API server down: $refusals refusals in 15 s, the longest wait between the first 8 $gap s; the first: $(grep -m1 'refused this agent' "$TMP/agent-down.log")"
check "a review that could not reach the API server is refused with '(retry soon)' ($soon of $refusals)" \
	sh -c "[ '$soon' -ge 1 ] && [ '$soon' = '$refusals' ]"
# after such a refusal the agent waits 0.25-2.25 s; backing off as from a real one it
# would wait up to 0.75, 1.25, 2.25, 4.25, 8.25 s...
check "the agent tries again within 2.25 s of each of its first 8 refusals (longest: $gap s)" \
	awk -v g="$gap" 'BEGIN { exit !(g != "n/a" && g <= 2.6) }'
kill $ctl
wait $ctl

# an API server that takes connections, completes TLS and never answers: an agent's
# TokenReview hangs (30 s, the client's timeout), and its connection must not wait with it
sport=$((port + 2))
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/silent.key" -out "$TMP/silent.crt" 2>/dev/null
python3 -c 'import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept()
    try:
        held.append(ctx.wrap_socket(c, server_side=True))
    except Exception:
        pass' "$sport" "$TMP/silent.crt" "$TMP/silent.key" &
silent=$!
kubeconfig "$TMP/kubeconfig-silent" "https://127.0.0.1:$sport" "$TMP/silent.crt"
# with TLS, as the chart runs it: its certificate check (every 30 s) is a timer
# set before any hello's, which under lws's libev loop held the later-set but
# earlier hello timeout back until it
"$CTL" --kubeconfig "$TMP/kubeconfig-silent" --listen "127.0.0.1:$port" --no-leader-election \
	--no-store --http-listen "127.0.0.1:$hport" --health-listen 127.0.0.1:0 \
	--tls-cert "$TMP/silent.crt" --tls-key "$TMP/silent.key" \
	>"$TMP/ctl-silent.log" 2>&1 &
ctl=$!
sleep 0.5
out=$("$BUILD/tools/wsprobe" "wss://127.0.0.1:$port" pending)
echo "# pending: $out"
check "a hello whose review hangs is closed at the hello timeout (10 s), not after the review" \
	[ "${out%% *}" = "bad=closed" ]
check "the controller lives on" kill -0 $ctl
kill $ctl $silent
wait $ctl
finish
