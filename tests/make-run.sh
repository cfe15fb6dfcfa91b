#!/bin/sh
# `make run`: profile this whole host for 10 s; write profile.pb.gz and flamegraph.svg here.
set -eu
agent=${1:-build/bin/profleet-agent}
if [ "$(id -u)" -ne 0 ]; then
	echo "make run: the agent needs root (CAP_BPF and CAP_PERFMON); try: sudo make run" >&2
	exit 1
fi
exec "$agent" record --all --duration "${DURATION:-10}" --frequency "${FREQUENCY:-99}" \
	--output profile.pb.gz --output flamegraph.svg
