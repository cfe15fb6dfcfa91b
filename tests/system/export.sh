#!/bin/sh
# record --export: a real recording sent to a Pyroscope-style receiver (and read
# back by go tool pprof) and to a directory; retries; a dead backend is an error
# that keeps the --output file.
. "$(dirname "$0")/lib.sh"
SINK=$BUILD/tools/httpsink
mkdir -p "$TMP/sink" "$TMP/sink2"
# the multipart part's bytes: from the gzip magic to the closing boundary
extract_gz() { # body-file out-file
	perl -e 'local $/; open F, "<", $ARGV[0] or die; binmode F; $b = <F>;
		$i = index($b, "\x1f\x8b"); $j = rindex($b, "\r\n--");
		open O, ">", $ARGV[1] or die; binmode O; print O substr($b, $i, $j - $i);' "$1" "$2"
}

"$SINK" "$TMP/sink" 0 200 >"$TMP/port" &
sink=$!
sleep 0.3
port=$(cat "$TMP/port")
# (the workloads end on their own: a command outlives --duration, as with perf)
"$AGENT" record --frequency 99 --output "$TMP/out.pb.gz" --top 0 \
	--export "pyroscope=http://127.0.0.1:$port" --export "dir=$TMP/dir" --tenant-id team-a \
	--export-header 'X-Test: yes' -- "$WL/busy" 1000 >"$TMP/rec.log" 2>&1
check "record --export exits 0 when every backend took the profile" test $? -eq 0
kill $sink
req=$TMP/sink/req-0.txt
check "Pyroscope got POST /ingest with the service name and host label" \
	grep -qE '^POST /ingest\?name=busy\.cpu%7Bhostname%3D[^&]+%7D&from=[0-9]+&until=[0-9]+&sampleRate=99&spyName=profleet&format=pprof' "$req"
check "tenant and extra headers are sent" sh -c "grep -qi '^X-Scope-OrgID: team-a' '$req' && grep -qi '^X-Test: yes' '$req'"
extract_gz "$TMP/sink/body-0.bin" "$TMP/sent.pb.gz"
if command -v go >/dev/null; then
	go tool pprof -raw "$TMP/sent.pb.gz" >"$TMP/sent.raw" 2>&1
	check "go tool pprof reads what Pyroscope got, with the workload's functions" grep -q busy_loop "$TMP/sent.raw"
	f=$(ls "$TMP"/dir/profleet-*-busy.pb.gz 2>/dev/null | head -1)
	check "the dir backend has the profile as a pprof file" sh -c "[ -n '$f' ] && go tool pprof -raw '$f' 2>/dev/null | grep -q busy_loop"
else
	skip "go tool pprof missing"
	skip "go tool pprof missing"
fi

# retries: 503 twice, then taken
"$SINK" "$TMP/sink2" 0 503 503 200 >"$TMP/port2" &
sink=$!
sleep 0.3
port=$(cat "$TMP/port2")
"$AGENT" record --output "$TMP/out2.pb.gz" --top 0 --log-level notice \
	--export "pyroscope=http://127.0.0.1:$port" -- "$WL/busy" 300 >"$TMP/rec2.log" 2>&1
check "a backend answering 503 twice gets the profile on the third try" \
	sh -c "[ $? -eq 0 ] && [ -f '$TMP/sink2/req-2.txt' ] && [ ! -f '$TMP/sink2/req-3.txt' ] && grep -q '2 retries' '$TMP/rec2.log'"
kill $sink

# a backend that never comes: an error, and the --output file is still there
timeout 60 "$AGENT" record --output "$TMP/out3.pb.gz" --top 0 \
	--export "pyroscope=http://127.0.0.1:1" -- "$WL/busy" 300 >"$TMP/rec3.log" 2>&1
rc=$?
check "a dead backend makes record exit 1 with a message" sh -c "[ $rc -eq 1 ] && grep -q 'not delivered' '$TMP/rec3.log'"
check "... and the --output file is written anyway" test -s "$TMP/out3.pb.gz"

# OTLP over gRPC, received by Debian's grpcio (tests/tools/grpcsink.py)
grpcsink() { # DIR [--fail N CODE]: starts it, sets $gport and $gpid
	mkdir -p "$1"
	/usr/bin/python3 "$TOP/tests/tools/grpcsink.py" "$@" >"$1.port" 2>"$1.err" &
	gpid=$!
	for _ in $(seq 50); do [ -s "$1.port" ] && break; sleep 0.1; done
	gport=$(cat "$1.port")
}
if /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
	grpcsink "$TMP/g1"
	echo "s3cret-token" >"$TMP/bearer"
	"$AGENT" record --frequency 99 --output "$TMP/out4.pb.gz" --top 0 --tenant-id team-b \
		--bearer-token-file "$TMP/bearer" --export "otlp-grpc=http://127.0.0.1:$gport" \
		-- "$WL/busy" 500 >"$TMP/rec4.log" 2>&1
	check "record --export otlp-grpc exits 0 once the gRPC server took it" test $? -eq 0
	kill $gpid
	protoc --decode=profleet.otlp.ExportProfilesServiceRequest --proto_path="$TOP/proto" \
		"$TOP/proto/otlp_profiles.proto" <"$TMP/g1/req-1.bin" >"$TMP/g1.txt" 2>&1
	check "the gRPC request decodes as an ExportProfilesServiceRequest with the workload's functions" \
		sh -c "grep -q busy_loop '$TMP/g1.txt' && grep -q stack_index '$TMP/g1.txt'"
	check "... with service.name, and the auth headers as gRPC metadata" \
		sh -c "grep -q 'service.name' '$TMP/g1.txt' &&
			grep -qi '^authorization: Bearer s3cret-token' '$TMP/g1/req-1.meta' &&
			grep -qi '^x-scope-orgid: team-b' '$TMP/g1/req-1.meta'"
	grpcsink "$TMP/g2" --fail 2 UNAVAILABLE
	"$AGENT" record --output "$TMP/out5.pb.gz" --top 0 --log-level notice \
		--export "otlp-grpc=http://127.0.0.1:$gport" -- "$WL/busy" 300 >"$TMP/rec5.log" 2>&1
	rc=$?
	check "gRPC UNAVAILABLE twice: delivered on the third try" \
		sh -c "[ $rc -eq 0 ] && [ -f '$TMP/g2/req-1.bin' ] && grep -q '2 retries' '$TMP/rec5.log'"
	kill $gpid
	grpcsink "$TMP/g3" --fail 100 INVALID_ARGUMENT
	timeout 60 "$AGENT" record --output "$TMP/out6.pb.gz" --top 0 \
		--export "otlp-grpc=http://127.0.0.1:$gport" -- "$WL/busy" 300 >"$TMP/rec6.log" 2>&1
	rc=$?
	check "gRPC INVALID_ARGUMENT: rejected at once, counted, record exits 1" \
		sh -c "[ $rc -eq 1 ] && grep -q 'grpc-status 3' '$TMP/rec6.log' && [ ! -f '$TMP/g3/req-1.bin' ]"
	kill $gpid
else
	for _ in 1 2 3 4 5; do skip "python3-grpcio missing"; done
fi
"$AGENT" record --export bogus >/dev/null 2>&1
check "a malformed --export exits 2" test $? -eq 2
finish
