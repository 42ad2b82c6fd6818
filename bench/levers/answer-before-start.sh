#!/bin/bash
# gap.sh ROUNDS V: when does the restored function answer, against when the engine's start returns?
export DOCKER_HOST=unix:///var/run/faas-criu-engine-wk.sock
S=/var/run/faas-criu-engine-wk.sock; v=$2; ip=$3
for r in $(seq $1); do
  docker checkpoint create fn-$v g$r >/dev/null || exit 1
  sleep 0.3
  rm -f /tmp/wk/gap.first
  python3 /tmp/wk/poll.py $ip /tmp/wk/gap.first &
  poll=$!
  sleep 0.3
  t0=$(date +%s%N)
  curl -s --unix-socket $S -X POST "http://d/v1.41/containers/fn-$v/start?checkpoint=g$r" >/dev/null
  t1=$(date +%s%N)
  wait $poll
  tf=$(cat /tmp/wk/gap.first)
  echo "$r $v start_returned=$(( (t1-t0)/1000000 )) first_answer=$(( (tf-t0)/1000000 )) answer_before_return=$(( (t1-tf)/1000000 ))"
  docker checkpoint rm fn-$v g$r >/dev/null 2>&1
done
