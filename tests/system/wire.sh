#!/bin/sh
# The controller's agent websocket against hostile frames: each bad connection is
# closed, a well-behaved agent next to it keeps working, the controller lives on.
# No API server is needed: the controller's informers just retry in the background.
. "$(dirname "$0")/lib.sh"
CTL=$BUILD/bin/profleet-controller
PROBE=$BUILD/tools/wsprobe
kubeconfig "$TMP/kubeconfig" https://127.0.0.1:1
port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 ))
"$CTL" --kubeconfig "$TMP/kubeconfig" --listen "127.0.0.1:$port" --no-leader-election --no-store --http-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 \
	--insecure-trust-agents --log-level info >"$TMP/ctl.log" 2>&1 &
ctl=$!
sleep 0.5
for m in garbage text oversize empty twice-hello no-hello; do
	out=$("$PROBE" "ws://127.0.0.1:$port" "$m")
	echo "# $m: $out"
	check "a $m frame closes that connection only; the other agent keeps its set" \
		[ "$out" = "bad=closed good=open got_set=1" ]
done
out=$("$PROBE" "ws://127.0.0.1:$port" valid)
check "control: a proper hello stays connected ($out)" [ "$out" = "bad=open good=open got_set=1" ]
check "the controller survived every frame" kill -0 $ctl
check "undecodable frames are logged" grep -q "undecodable frame" "$TMP/ctl.log"
"$CTL" --kubeconfig "$TMP/kubeconfig" --listen "127.0.0.1:$port" --no-leader-election --no-store --http-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 >"$TMP/ctl2.log" 2>&1
check "a second controller on a taken port exits with an error" sh -c "[ $? -ne 0 ] && grep -q 'cannot listen' '$TMP/ctl2.log'"
check "--help documents the options" sh -c "'$CTL' --help | grep -q -- '--agent-service-account'"
"$CTL" --max-frequency 0 >/dev/null 2>&1
check "a bad option exits 2" [ $? -eq 2 ]
kill $ctl
wait $ctl
check "the controller stops cleanly on SIGTERM" [ $? -eq 0 ]

# wss://: the agent verifies the controller's certificate
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
"$CTL" --kubeconfig "$TMP/kubeconfig" --listen "127.0.0.1:$port" --no-leader-election --no-store --http-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 \
	--insecure-trust-agents --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key" >"$TMP/ctl-tls.log" 2>&1 &
ctl=$!
sleep 0.5
# agent run, stopped with SIGINT once its state file (rewritten every second) satisfies a
# jq expression, or SECS seconds after it first appeared: how long the agent takes to start
# differs a lot between builds (several times longer under ThreadSanitizer)
agent_until() { # secs jq-expr state-file agent-args...
	secs=$1 expr=$2 state=$3
	shift 3
	"$AGENT" run --state-file "$state" "$@" &
	apid=$!
	for _ in $(seq 600); do
		[ -s "$state" ] || ! kill -0 $apid 2>/dev/null && break
		sleep 0.1
	done
	for _ in $(seq $((secs * 10))); do
		[ "$(jq -r "$expr" "$state" 2>/dev/null)" = true ] || ! kill -0 $apid 2>/dev/null && break
		sleep 0.1
	done
	kill -INT $apid 2>/dev/null
	wait $apid
}
agent_until 30 '.connects >= 1 and .version > 0' "$TMP/tls-ok.json" \
	--controller "wss://127.0.0.1:$port" --ca-file "$TMP/tls.crt" --node-name tls-node \
	--log "$TMP/agent-tls.log"
# (nothing to wait for here: it must never connect; 3 s of its retries)
agent_until 3 false "$TMP/tls-bad.json" --controller "wss://127.0.0.1:$port" \
	--node-name tls-node2 --log "$TMP/agent-tls2.log"
check "an agent trusting the controller's CA gets its targets over wss://" \
	sh -c "[ \"\$(jq -r '.connects >= 1 and .version > 0' '$TMP/tls-ok.json')\" = true ]"
check "an agent that cannot verify the certificate does not connect" \
	sh -c "[ \"\$(jq -r '.connects == 0 and .version == 0' '$TMP/tls-bad.json')\" = true ]"
[ "$failures" -eq 0 ] || for l in ctl-tls agent-tls agent-tls2; do tail -5 "$TMP/$l.log" | sed "s/^/# $l: /"; done
"$CTL" --kubeconfig "$TMP/kubeconfig" --tls-cert "$TMP/tls.crt" >/dev/null 2>&1
check "--tls-cert without --tls-key is refused" [ $? -eq 2 ]

# a renewed certificate (the files replaced, as the kubelet updates a Secret) is
# served without a restart: within the 30 s between checks
cp "$TMP/tls.crt" "$TMP/old.crt"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/new.key" -out "$TMP/new.crt" 2>/dev/null
cp "$TMP/new.crt" "$TMP/tls.crt.tmp" && mv "$TMP/tls.crt.tmp" "$TMP/tls.crt"
cp "$TMP/new.key" "$TMP/tls.key.tmp" && mv "$TMP/tls.key.tmp" "$TMP/tls.key"
for _ in $(seq 700); do	# a check between the two mv's waits for the next
	grep -q "certificate $TMP/tls.crt read again" "$TMP/ctl-tls.log" && break
	sleep 0.1
done
agent_until 30 '.connects >= 1 and .version > 0' "$TMP/tls-new.json" \
	--controller "wss://127.0.0.1:$port" --ca-file "$TMP/new.crt" --node-name tls-node3 \
	--log "$TMP/agent-tls3.log"
agent_until 3 false "$TMP/tls-old.json" --controller "wss://127.0.0.1:$port" \
	--ca-file "$TMP/old.crt" --node-name tls-node4 --log "$TMP/agent-tls4.log"
check "a renewed certificate is served without a restart (agents trusting the new one connect)" \
	sh -c "grep -q 'read again' '$TMP/ctl-tls.log' &&
		[ \"\$(jq -r '.connects >= 1 and .version > 0' '$TMP/tls-new.json')\" = true ]"
check "... and the old one is no longer served" \
	sh -c "[ \"\$(jq -r '.connects == 0' '$TMP/tls-old.json')\" = true ]"
# a certificate that is not its key's (a Secret edited by hand): refused, the one in use stays
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/other.key" -out "$TMP/other.crt" 2>/dev/null
cp "$TMP/other.crt" "$TMP/tls.crt.tmp" && mv "$TMP/tls.crt.tmp" "$TMP/tls.crt"
for _ in $(seq 450); do
	grep -q "do not load: the certificate in use stays" "$TMP/ctl-tls.log" && break
	sleep 0.1
done
agent_until 30 '.connects >= 1 and .version > 0' "$TMP/tls-kept.json" \
	--controller "wss://127.0.0.1:$port" --ca-file "$TMP/new.crt" --node-name tls-node5 \
	--log "$TMP/agent-tls5.log"
check "a certificate that is not its key's is refused; the one in use is still served" \
	sh -c "grep -q 'do not load' '$TMP/ctl-tls.log' &&
		[ \"\$(jq -r '.connects >= 1 and .version > 0' '$TMP/tls-kept.json')\" = true ]"
kill $ctl
wait $ctl
finish
