#!/bin/bash
# mount-variants.sh ROUNDS VARIANT... (issue 13, tried 30 "mounts"): function
# containers that differ only in their mounts, dumped and restored in turn on
# a private engine (ENGINE, default "mounts"), the order rotating each round.
# The engine's default runtime must be a runc whose runc.conf has the same
# options as /etc/criu/runc.conf but a work-dir of its own (WD), so that
# dump.log and restore.log are this script's (see README.md).
# Variants: base (as Docker makes it), sys (/sys/firmware and /sys/fs/cgroup
# read-only binds of empty directories in EMPTY instead of tmpfs), shm (sys,
# and IpcMode shareable: /dev/shm a bind of the engine's own tmpfs).
# Prints per dump and restore: dump (checkpoint create, ms), cdump (CRIU's
# dump.log span), start (engine start with the checkpoint), first (to the
# first answer), criu (restore.log span), dmnt and rmnt (CRIU's mount phase
# of the dump and of the restore, from the logs), cpuct (CPU time of the
# container's cgroup after the restore: CRIU, its tars, the function), cpud
# and cpur (CPU of the engine's cgroup ENGINE_CG over the dump and over the
# restore to the first answer), count.
set -u
ENGINE=${ENGINE:-mounts}
S=/var/run/faas-criu-engine-$ENGINE.sock
export DOCKER_HOST=unix://$S
ROOT=/var/lib/faas-criu-engine-$ENGINE
WD=${WD:-/tmp/mounts/wd}
EMPTY=${EMPTY:-/tmp/mounts/empty}
NET=${NET:-mounts-net}
PFX=${PFX:-10.213.139}
IMG=${IMG:-mounts/fixture}
rounds=$1; shift
vars=("$@")
declare -A IP
mp='["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi"]'
# One empty directory per mount point: CRIU 4.2 restores a second bind of
# the same directory without its read-only flag.
mkdir -p $EMPTY/sys-firmware $EMPTY/sys-fs-cgroup && chmod 555 $EMPTY/sys-firmware $EMPTY/sys-fs-cgroup
binds="[{\"Type\":\"bind\",\"Source\":\"$EMPTY/sys-firmware\",\"Target\":\"/sys/firmware\",\"ReadOnly\":true},{\"Type\":\"bind\",\"Source\":\"$EMPTY/sys-fs-cgroup\",\"Target\":\"/sys/fs/cgroup\",\"ReadOnly\":true}]"
k=30
for v in "${vars[@]}"; do
	k=$((k + 1)); ip=$PFX.$k; IP[$v]=$ip
	case $v in
	base) hc='{}' ;;
	sys) hc="{\"MaskedPaths\":$mp,\"Mounts\":$binds}" ;;
	shm) hc="{\"MaskedPaths\":$mp,\"Mounts\":$binds,\"IpcMode\":\"shareable\"}" ;;
	*) echo "unknown variant $v" >&2; exit 2 ;;
	esac
	hc=$(echo "$hc" | sed "s/^{/{\"NetworkMode\":\"container:sb-$v\",/; s/,}/}/")
	docker rm -f fn-$v sb-$v >/dev/null 2>&1
	docker run -d --name sb-$v --network $NET --ip $ip -e LISTEN=:9 $IMG >/dev/null
	curl -sf --unix-socket $S -H 'Content-Type: application/json' -X POST "http://d/v1.41/containers/create?name=fn-$v" \
		-d "{\"Image\":\"$IMG\",\"Env\":[\"GODEBUG=multipathtcp=0\"],\"HostConfig\":$hc}" >/dev/null || { echo "create $v failed" >&2; exit 1; }
	docker start fn-$v >/dev/null
	for i in $(seq 50); do curl -s -m1 http://$ip:8080/count >/dev/null && break; sleep 0.1; done
done
# engine_cpu: ns of CPU used by the engine's cpuacct cgroup ENGINE_CG (its
# dockerd, containerd, shims, runc and CRIU's dump; create it and move them
# in by hand), 0 without one.
ENGINE_CG=${ENGINE_CG:-/sys/fs/cgroup/cpuacct/$ENGINE-engine}
engine_cpu() { cat $ENGINE_CG/cpuacct.usage 2>/dev/null || echo 0; }
span() { tail -1 "$1" | sed -n 's/^(\([0-9.]*\)).*/\1/p'; }
# phase LOG FROM TO: ms between the first lines matching FROM and TO (after it)
phase() { awk -v a="$2" -v b="$3" '$0 ~ a && !s { s = substr($1, 2) + 0 } s && $0 ~ b { printf "%.1f", (substr($1, 2) - s) * 1000; exit }' "$1"; }
for r in $(seq "$rounds"); do
	n=${#vars[@]}
	for j in $(seq 0 $((n - 1))); do
		v=${vars[$(((j + r) % n))]}; ip=${IP[$v]}
		id=$(docker inspect -f '{{.Id}}' fn-$v)
		e0=$(engine_cpu)
		d0=$(date +%s%N); docker checkpoint create fn-$v cp$r >/dev/null || { echo "dump fail $v"; continue; }; d1=$(date +%s%N)
		e1=$(engine_cpu)
		cd=$(span $WD/dump.log)
		dm=$(phase $WD/dump.log 'mnt: Dumping mountpoints' 'Dumping file-locks')
		touch $ROOT/containers/$id/checkpoints/cp$r/mounts-marker # unique content for containerd's store
		sleep 0.3
		e2=$(engine_cpu)
		t0=$(date +%s%N)
		curl -s --unix-socket $S -X POST "http://d/v1.41/containers/fn-$v/start?checkpoint=cp$r" >/tmp/mounts/start.out
		t1=$(date +%s%N)
		c=""
		for i in $(seq 2000); do c=$(curl -s -m1 http://$ip:8080/count) && [ -n "$c" ] && break; done
		t2=$(date +%s%N)
		e3=$(engine_cpu)
		cpu=$(($(cat /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage 2>/dev/null || echo 0) / 100000))
		echo "$r $v dump=$(((d1 - d0) / 1000000)) cdump=$cd start=$(((t1 - t0) / 1000000)) first=$(((t2 - t0) / 1000000)) criu=$(span $WD/restore.log) dmnt=$dm cpud=$(((e1 - e0) / 1000000)) cpur=$(((e3 - e2) / 1000000)) cpuct=$((cpu / 10)).$((cpu % 10)) rmnt=$(phase $WD/restore.log 'mnt: Start with 0:' 'Move the root to .*/[0-9]+-[0-9]+$') count=$c $(cat /tmp/mounts/start.out)"
		docker checkpoint rm fn-$v cp$r >/dev/null 2>&1
	done
	for d in /tmp/ctrd-checkpoint*; do [ -e $d/mounts-marker ] && rm -rf $d; done
done
