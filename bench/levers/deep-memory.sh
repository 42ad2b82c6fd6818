#!/usr/bin/env bash
# Where the deep tier's memory is (tried 34): N trivial functions deployed
# on a private engine, called once, hibernated and left to go deep by their
# own com.openfaas.criu.deep-after=1s; the box read before the deploys, in
# deep, and after the deletion, each state 3 times, caches dropped before
# every read. Per read: /proc/cgroups (num_cgroups counts dying cgroups too:
# it falls only when the kernel frees one), the directories really present,
# meminfo's kernel counters, the root memcg's totals, slabinfo, mounts,
# processes, and the RSS of the engine's dockerd and containerd and of the
# provider.
#
#   bench/levers/deep-memory.sh OUT [N]     (as root; engine from
#   scripts/second-engine.sh start deepmem)
# Env: DM_ENGINE (deepmem), DM_PORT (39700), DM_SUBNET (10.97.16.0/20),
# DM_DROP (3; the bench drops with 1), DM_READS (3: reads per state),
# DM_DEEP_READS (reads in deep, DM_READS by default), DM_HOLD=1 (wait in
# deep until OUT/holding is removed).
set -euo pipefail
out=${1:?OUT}
n=${2:-40}
engine=${DM_ENGINE:-deepmem}
port=${DM_PORT:-39700}
subnet=${DM_SUBNET:-10.97.16.0/20}
net=${engine}-net
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$engine.sock
docker version >/dev/null
bin=$out/faas-criu
[ -x "$bin" ] || (cd "$root" && go build -o "$bin" .)
state=$(mktemp -d /tmp/deepmem-state-XXXX)
"$bin" serve --port "$port" --state-dir "$state" --network "$net" --subnet "$subnet" \
	--autoscale=false >"$out/provider.log" 2>&1 &
ppid=$!
trap 'kill $ppid 2>/dev/null || true; wait $ppid 2>/dev/null || true; rm -rf "$state"' EXIT
url=http://127.0.0.1:$port
for _ in $(seq 120); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.25; done
auth="admin:$(cat "$state/credentials/basic-auth-password")"

dpid=$(cat /var/run/faas-criu-engine-$engine.pid)
cpid=$(pgrep -P "$dpid" -x containerd || true)
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

read_box() { # $1 = tag; one line in reads.tsv and the snapshots $out/TAG.*
	local tag=$1 f=$out/$1
	sync
	echo "${DM_DROP:-3}" >/proc/sys/vm/drop_caches
	sleep 2
	cp /proc/cgroups "$f.cgroups"
	for c in memory cpu cpuacct pids blkio devices freezer cpuset; do
		printf '%s %s\n' "$c" "$(find /sys/fs/cgroup/$c/ -mindepth 1 -type d 2>/dev/null | wc -l)"
	done >"$f.dirs"
	grep -E '^(MemAvailable|MemFree|Percpu|Slab|SUnreclaim|SReclaimable|KReclaimable|VmallocUsed|Shmem|AnonPages|Mapped|Buffers|Cached|KernelStack|PageTables|Unevictable|Mlocked|Dirty|Writeback):' /proc/meminfo >"$f.meminfo"
	cp /sys/fs/cgroup/memory/memory.stat "$f.memstat"
	cp /proc/slabinfo "$f.slab"
	printf 'dockerd %s\ncontainerd %s\nprovider %s\nmounts %s\nprocs %s\n' "$(rss "$dpid")" "$(rss "${cpid:-0}")" \
		"$(rss "$ppid")" "$(wc -l <"/proc/$dpid/mountinfo")" "$(ls -d /proc/[0-9]* | wc -l)" >"$f.rss"
	printf '%s\t%s\t%s\t%s\t%s\n' "$tag" "$(date +%T)" "$(awk '/^memory/{print $3}' /proc/cgroups)" \
		"$(awk '/^memory/{print $2}' "$f.dirs")" "$(awk '/MemAvailable/{print $2}' /proc/meminfo)" >>"$out/reads.tsv"
}
# cgroups before any drop: a memcg whose pages are still cached stays
# dying (counted in num_cgroups, no directory) until they are reclaimed.
undropped() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$1-nodrop" "$(date +%T)" "$(awk '/^memory/{print $3}' /proc/cgroups)" \
		"$(find /sys/fs/cgroup/memory/ -mindepth 1 -type d | wc -l)" "$(awk '/MemAvailable/{print $2}' /proc/meminfo)" >>"$out/reads.tsv"
}
reads() { undropped "$1"; for i in $(seq "${2:-3}"); do read_box "$1-$i"; done; }

api() { curl -fsS -u "$auth" -X "$1" "$url$2" ${3:+-d "$3"}; }
tier() { api GET "/system/function/$1" | sed -n 's/.*"com.openfaas.criu.tier":"\([a-z]*\)".*/\1/p'; }

printf 'tag\ttime\tmemcg_num_cgroups\tmemcg_dirs\tMemAvailable_kB\n' >"$out/reads.tsv"
reads before "${DM_READS:-3}"
for i in $(seq -w 1 "$n"); do
	api POST /system/functions "{\"service\":\"dm-$i\",\"image\":\"faas-criu-bench/fixture:latest\",\"labels\":{\"com.openfaas.criu.strategy\":\"checkpoint\",\"com.openfaas.criu.deep-after\":\"1s\"}}"
done
for i in $(seq -w 1 "$n"); do
	for _ in $(seq 240); do curl -fs "$url/function/dm-$i/count" >/dev/null && break; sleep 0.25; done
	api POST "/system/scale-function/dm-$i" "{\"serviceName\":\"dm-$i\",\"replicas\":0}"
done
for i in $(seq -w 1 "$n"); do
	for _ in $(seq 600); do [ "$(tier "dm-$i")" = deep ] && break; sleep 0.5; done
	[ "$(tier "dm-$i")" = deep ] || { echo "dm-$i not deep" >&2; exit 1; }
done
sleep 3
docker ps -a --format '{{.Names}} {{.Status}}' >"$out/containers-deep.txt"
reads deep "${DM_DEEP_READS:-${DM_READS:-3}}"
if [ -n "${DM_HOLD:-}" ]; then # keep the deep state for a look by hand
	touch "$out/holding"
	while [ -e "$out/holding" ]; do sleep 1; done
fi
for i in $(seq -w 1 "$n"); do api DELETE /system/functions "{\"functionName\":\"dm-$i\"}"; done
for _ in $(seq 240); do [ -z "$(docker ps -aq)" ] && break; sleep 0.5; done
sleep 3
reads after "${DM_READS:-3}"
echo "done: $out/reads.tsv"
