#!/bin/bash
# cg-variants.sh ROUNDS VARIANT... (tried 38, from tar-variants.sh): function
# containers identical but for their runtime (cg-VARIANT: a runc copy reading
# its own runc.conf, work-dir WD_VARIANT, network-lock nftables / iptables /
# skip), each in a sandbox of its own on network NET, dumped and restored in
# turn, the order rotating every round, on private engine ENGINE. Prints per
# cycle: dump (docker checkpoint create, ms), start (engine API start with the
# checkpoint), first (to the first answer), restore-gaps.py's CRIU figures,
# count and load; copies each restore.log to /tmp/cgap/logs/ROUND-VARIANT.log.
set -u
ENGINE=${ENGINE:-criugap}
S=/var/run/faas-criu-engine-$ENGINE.sock
export DOCKER_HOST=unix://$S
ROOT=/var/lib/faas-criu-engine-$ENGINE
NET=${NET:-criugap-net}
IMG=${IMG:-criugap-fixture:1}
HERE=$(dirname "$0")
rounds=$1; shift
vars=("$@")
declare -A IP
for v in "${vars[@]}"; do
	docker rm -f fn-$v sb-$v >/dev/null 2>&1
	docker run -d --name sb-$v --network $NET -e LISTEN=:9 $IMG >/dev/null
	IP[$v]=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" sb-$v)
	docker run -d --name fn-$v --network container:sb-$v --runtime cg-$v -e GODEBUG=multipathtcp=0 $IMG >/dev/null
	for i in $(seq 50); do curl -s -m1 http://${IP[$v]}:8080/count >/dev/null && break; sleep 0.1; done
done
for r in $(seq "$rounds"); do
	n=${#vars[@]}
	for j in $(seq 0 $((n - 1))); do
		v=${vars[$(((j + r) % n))]}; ip=${IP[$v]}; wd=$(eval echo \$WD_$v)
		id=$(docker inspect -f '{{.Id}}' fn-$v)
		mkdir -p /tmp/cgap/logs
		d0=$(date +%s%N); docker checkpoint create fn-$v cp$r >/dev/null || { echo "dump fail $v"; continue; }; d1=$(date +%s%N)
		touch $ROOT/containers/$id/checkpoints/cp$r/cg-marker # unique content for containerd's store
		sleep 0.3
		t0=$(date +%s%N)
		curl -s --unix-socket $S -X POST "http://d/v1.41/containers/fn-$v/start?checkpoint=cp$r" >/tmp/cgap/start.out
		t1=$(date +%s%N)
		c=""
		for i in $(seq 2000); do c=$(curl -s -m1 http://$ip:8080/count) && [ -n "$c" ] && break; done
		t2=$(date +%s%N)
		echo "$r $v dump=$(((d1 - d0) / 1000000)) start=$(((t1 - t0) / 1000000)) first=$(((t2 - t0) / 1000000)) $(python3 $HERE/restore-gaps.py $wd/restore.log) count=$c load=$(cut -d' ' -f1 /proc/loadavg) $(cat /tmp/cgap/start.out)"
		cp $wd/restore.log /tmp/cgap/logs/$r-$v.log
		docker checkpoint rm fn-$v cp$r >/dev/null 2>&1
	done
	for d in /tmp/ctrd-checkpoint*; do [ -e $d/cg-marker ] && rm -rf $d; done
done
