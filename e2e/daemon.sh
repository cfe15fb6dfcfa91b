# Shared by e2e/cluster.sh and e2e/node.sh: ports for what they start, and
# stopping it.

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
# free_port FROM: the first port from FROM on that nothing listens on
free_port() {
	p=$1
	while ! port_free "$p"; do p=$((p + 1)); done
	echo "$p"
}
# shellcheck shell=sh

# ours PID WHAT: the process's command line names WHAT (a pid file's process,
# not another that got its number since)
ours() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid PIDFILE WHAT: TERM, 10 s, then KILL; the pid file goes
stop_pid() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	ours "$pid" "$2" || { rm -f "$1"; return 0; }
	kill "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$1"
}
