#!/usr/bin/env bash
# Docker's view and safety of the shell way (README.md), on container NAME
# (setup.sh shell NAME IP; awake). Prints what it sees; no verdicts.
#   checks.sh view NAME IP     ps/inspect/top/logs awake and hibernated, memory of each
#   checks.sh stop NAME IP     docker stop awake-after-restore, then again hibernated (recreated between)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 name=$2 ip=$3
id() { docker inspect -f '{{.Id}}' "$name"; }
holder() { docker inspect -f '{{.State.Pid}}' "$name"; }
fnpid() { local h; h=$(holder); for p in $(cat "/sys/fs/cgroup/pids/docker/$(id)/cgroup.procs"); do [ "$p" = "$h" ] || echo "$p"; done; }
kb() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/smaps_rollup"; }
mem() {
	local cg=/sys/fs/cgroup/memory/docker/$(id) h shim
	h=$(holder); shim=$(ps -o ppid= -p "$h" | tr -d ' ')
	echo "  memory cgroup: usage $(($(cat $cg/memory.usage_in_bytes) / 1024)) KiB; $(grep -E '^(total_rss|total_cache|total_shmem) ' $cg/memory.stat | awk '{printf "%s %d KiB; ", $1, $2/1024}')"
	echo "  holder $h: RSS $(kb "$h" Rss) KiB, PSS $(kb "$h" Pss) KiB, private $(($(kb "$h" Private_Clean) + $(kb "$h" Private_Dirty))) KiB"
	echo "  shim $shim: RSS $(kb "$shim" Rss) KiB, PSS $(kb "$shim" Pss) KiB"
	for f in $(fnpid); do echo "  function $f: RSS $(kb "$f" Rss) KiB, PSS $(kb "$f" Pss) KiB, cgroup $(grep memory /proc/$f/cgroup)"; done
}
view() {
	echo "-- docker ps:"; docker ps -a --filter "name=^$name\$" --format '   {{.Names}} {{.Status}} {{.Command}}'
	echo "-- docker inspect: $(docker inspect -f '{{.State.Status}} running={{.State.Running}} pid={{.State.Pid}} exit={{.State.ExitCode}} restarts={{.RestartCount}}' "$name")"
	echo "-- docker top:"; docker top "$name" | sed 's/^/   /'
	echo "-- memory:"; mem
}
case "$cmd" in
view)
	echo "== awake"; view
	line="printed-after-restore-$(date +%s%N)"
	curl -s "$ip:8080/log?line=$line" >/dev/null
	echo "-- docker logs --tail 2:"; docker logs --tail 2 "$name" 2>&1 | sed 's/^/   /'
	docker logs "$name" 2>&1 | grep -q "$line" && echo "   (the line printed by the function after its restore is in docker logs)"
	"$here/shellcr.sh" dump "$name"
	sleep 0.5
	echo 1 >/proc/sys/vm/drop_caches
	echo "== hibernated"; view
	"$here/shellcr.sh" restore "$name"
	echo "== awake again: count $(curl -s "$ip:8080/count")"; view
	;;
stop)
	cid=$(id)
	t0=$(date +%s%N); docker stop "$name" >/dev/null; t1=$(date +%s%N)
	echo "docker stop: $(((t1 - t0) / 1000000)) ms; state $(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' "$name")"
	left=$(for p in $(pgrep -x fn); do grep -q "$cid" "/proc/$p/cgroup" 2>/dev/null && echo -n "$p "; done)
	echo "fixture processes of this container left on the host: [${left}] (all fn on the host, other containers': $(pgrep -x fn | tr '\n' ' '))"
	;;
esac
