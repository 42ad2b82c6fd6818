#!/bin/bash
# meas.sh ROUNDS VARIANT... : side-by-side restore timing on engine wk
# each variant V: sandbox sb-V + function fn-V (runtime wk-V, or given by RT_V env)
set -u
export DOCKER_HOST=unix:///var/run/faas-criu-engine-wk.sock
S=/var/run/faas-criu-engine-wk.sock
ROOT=/var/lib/faas-criu-engine-wk
rounds=$1; shift
vars=("$@")
OUT=${OUT:-/tmp/wk/results.txt}
k=0
declare -A IP WD
for v in "${vars[@]}"; do
  case $v in base) k=1;; kdat) k=2;; nft) k=3;; ign) k=4;; mask) k=5;; crun) k=6;; *) k=$((7 + ${#v}));; esac; ip=10.213.155.$((20 + k)); IP[$v]=$ip
  rt=$(eval echo \${RT_$v:-wk-$v}); extra=$(eval echo \${OPT_$v:-})
  docker rm -f fn-$v sb-$v >/dev/null 2>&1
  docker run -d --name sb-$v --network wk-net --ip $ip -e LISTEN=:9 wk/fixture >/dev/null
  if [ -n "$(eval echo \${MASK_$v:-})" ]; then
    curl -s --unix-socket $S -H 'Content-Type: application/json' -X POST "http://d/v1.41/containers/create?name=fn-$v" \
      -d "{\"Image\":\"wk/fixture\",\"HostConfig\":{\"NetworkMode\":\"container:sb-$v\",\"Runtime\":\"$rt\",\"MaskedPaths\":[\"/proc/kcore\",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\"]}}" >/dev/null
    docker start fn-$v >/dev/null
  else
    docker run -d --name fn-$v --network container:sb-$v --runtime $rt $extra ${FNENV:-} wk/fixture >/dev/null
  fi
  for i in $(seq 50); do curl -s -m1 http://$ip:8080/count >/dev/null && break; sleep 0.1; done
done
for r in $(seq $rounds); do
  n=${#vars[@]}
  for j in $(seq 0 $((n-1))); do
    v=${vars[$(( (j + r) % n ))]}; ip=${IP[$v]}
    id=$(docker inspect -f '{{.Id}}' fn-$v)
    d0=$(date +%s%N); docker checkpoint create fn-$v cp$r >/dev/null || { echo "dump fail $v"; continue; }; d1=$(date +%s%N)
    touch $ROOT/containers/$id/checkpoints/cp$r/wk-marker
    sleep 0.3
    u0=$(cat /sys/fs/cgroup/cpuacct/wk-engine/cpuacct.usage 2>/dev/null || echo 0)
    t0=$(date +%s%N)
    curl -s --unix-socket $S -X POST "http://d/v1.41/containers/fn-$v/start?checkpoint=cp$r" >/tmp/wk/start.out
    t1=$(date +%s%N)
    c=""
    for i in $(seq 2000); do c=$(curl -s -m1 http://$ip:8080/count) && [ -n "$c" ] && break; done
    t2=$(date +%s%N)
    u1=$(cat /sys/fs/cgroup/cpuacct/wk-engine/cpuacct.usage 2>/dev/null || echo 0)
    cu=$(cat /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage 2>/dev/null || echo 0)
    wd=$(eval echo \${WD_$v:-})
    crit=""
    [ -n "$wd" ] && crit=$(tail -1 $wd/restore.log | sed -n 's/^(\([0-9.]*\)).*/\1/p')
    echo "$r $v start=$(( (t1-t0)/1000000 )) first=$(( (t2-t0)/1000000 )) criu=$crit count=$c cpu_engine=$(( (u1-u0)/1000000 )) cpu_ct=$(( cu/1000000 )) cpu=$(( (u1-u0+cu)/1000000 )) dump=$(( (d1-d0)/1000000 )) $(cat /tmp/wk/start.out)" | tee -a $OUT
    docker checkpoint rm fn-$v cp$r >/dev/null 2>&1
  done
  for d in /tmp/ctrd-checkpoint*; do [ -e $d/wk-marker ] && rm -rf $d; done
done
