#!/usr/bin/env bash
# A second Docker engine on this machine, standing in for a second box in
# the migration tests: its own socket, data root, exec root, pid file,
# configuration and default bridge, and no iptables rules (the first engine
# owns those). Never --bridge none: dockerd then deletes docker0, which the
# first engine's containers need.
#
#   scripts/second-engine.sh start [NAME]   prints the DOCKER_HOST to use
#   scripts/second-engine.sh stop  [NAME]   stops it (its data is kept)
#   scripts/second-engine.sh kill  [NAME]   crashes it: SIGKILL to dockerd
#   scripts/second-engine.sh purge [NAME]   stops it and removes its data
#
# Its configuration is the one setup gives the first engine: experimental
# mode and live-restore (containers keep running while the engine is down).
# FAAS_CRIU_ENGINE_LIVE_RESTORE=false at start gives one without
# live-restore, as engines were before. Like the first engine after setup,
# it offers the runtime faas-criu (runc with setup's CRIU script,
# /usr/local/lib/faas-criu/criu, which puts faas-criu-tar first on CRIU's
# PATH) when that script is installed;
# FAAS_CRIU_ENGINE_CRIU=PATH gives another script, =none no such runtime.
set -euo pipefail
cmd=${1:-}
name=${2:-b}
root=/var/lib/faas-criu-engine-$name
exec_root=/var/run/faas-criu-engine-$name
sock=/var/run/faas-criu-engine-$name.sock
pidfile=/var/run/faas-criu-engine-$name.pid
log=/var/log/faas-criu/engine-$name.log
host=unix://$sock
bridge=fce-$name
bridge_cidr=${FAAS_CRIU_ENGINE_BRIDGE_CIDR:-10.253.$((36 + $(printf '%d' "'${name:0:1}") % 200)).1/24}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
start)
	if running && DOCKER_HOST=$host docker version >/dev/null 2>&1; then
		echo "$host"
		exit 0
	fi
	mkdir -p "$root" "$exec_root" "$(dirname "$log")"
	if [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt 10485760 ]; then
		: >"$log"
	fi
	echo "=== $(date -Is) second-engine.sh start $name" >>"$log" # kept across restarts, for a failed test's look
	live_restore=true
	[ "${FAAS_CRIU_ENGINE_LIVE_RESTORE:-true}" = false ] && live_restore=false
	runtimes=
	criu=${FAAS_CRIU_ENGINE_CRIU:-/usr/local/lib/faas-criu/criu}
	if [ "$criu" != none ] && [ -x "$criu" ] && command -v runc >/dev/null; then
		runtimes=$(printf ', "runtimes": {"faas-criu": {"path": "%s", "runtimeArgs": ["--criu", "%s"]}}' "$(command -v runc)" "$criu")
	fi
	printf '{"experimental": true, "live-restore": %s%s}\n' "$live_restore" "$runtimes" >"$root.json"
	if ! ip link show "$bridge" >/dev/null 2>&1; then
		ip link add "$bridge" type bridge
		ip addr add "$bridge_cidr" dev "$bridge"
		ip link set "$bridge" up
	fi
	setsid dockerd --config-file "$root.json" --data-root "$root" --exec-root "$exec_root" \
		--host "$host" --pidfile "$pidfile" --bridge "$bridge" --iptables=false --ip-masq=false \
		>>"$log" 2>&1 </dev/null &
	for _ in $(seq 1 120); do
		if DOCKER_HOST=$host docker version >/dev/null 2>&1; then
			echo "$host"
			exit 0
		fi
		sleep 0.25
	done
	echo "second-engine: dockerd $name did not come up; see $log" >&2
	exit 1
	;;
kill)
	if running; then
		kill -KILL "$(cat "$pidfile")"
		for _ in $(seq 1 120); do running || break; sleep 0.05; done
	fi
	;;
stop | purge)
	if [ "$cmd" = purge ] && running; then
		# Containers and networks first, while the engine can remove them:
		# a network's bridge outlives a stopped engine, and a stale bridge
		# with the same subnet would capture the next engine's traffic.
		ids=$(DOCKER_HOST=$host docker ps -aq 2>/dev/null || true)
		[ -z "$ids" ] || DOCKER_HOST=$host docker rm -f $ids >/dev/null 2>&1 || true
		DOCKER_HOST=$host docker network prune -f >/dev/null 2>&1 || true
	fi
	if running; then
		kill "$(cat "$pidfile")"
		for _ in $(seq 1 120); do running || break; sleep 0.25; done
	fi
	if [ "$cmd" = purge ]; then
		# Shims of containers that ran when the engine went down outlive it
		# (to be taken up again by its next start): no next start now.
		pkill -f "containerd-shim.* -address $exec_root/" 2>/dev/null || true
		ip link del "$bridge" 2>/dev/null || true
		# Mounts left by a crashed engine must go before its data.
		# Its network namespaces are bind mounts under the exec root (seen
		# under /run, the target of /var/run).
		# The data root itself may be one too: a stopped engine can leave
		# its data root's bind mount of itself behind.
		for d in "$root" "$exec_root" "$(readlink -f "$exec_root" 2>/dev/null || echo "$exec_root")"; do
			grep -oE " $d(/[^ ]*)? " /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
		done
		rm -rf "$root" "$exec_root" "$root.json"
	fi
	;;
*)
	echo "usage: $0 start|stop|kill|purge [NAME]" >&2
	exit 2
	;;
esac
