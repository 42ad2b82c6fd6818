#!/bin/bash
# floor.sh N: CRIU's own dump/restore of the fixture as a plain host process (no container)
cd /tmp/wk/floor
for i in $(seq $1); do
  rm -rf img; mkdir img
  LISTEN=127.0.0.1:18080 setsid /tmp/wk/img/fn </dev/null >/tmp/wk/floor/out.log 2>&1 &
  pid=$!
  for j in $(seq 100); do curl -s -m1 http://127.0.0.1:18080/count >/dev/null && break; sleep 0.05; done
  curl -s http://127.0.0.1:18080/count >/dev/null
  /tmp/wk/criu-kdat dump -t $pid -D img --tcp-established -o dump.log -v4 || { echo dumpfail; tail -5 img/dump.log; exit 1; }
  sleep 0.3
  t0=$(date +%s%N)
  /tmp/wk/criu-kdat restore -D img -d --tcp-established -o restore.log -v4 || { echo restfail; tail -5 img/restore.log; exit 1; }
  t1=$(date +%s%N)
  c=$(curl -s -m1 http://127.0.0.1:18080/count)
  t2=$(date +%s%N)
  echo "$i floor restore=$(( (t1-t0)/1000000 )) first=$(( (t2-t0)/1000000 )) criu=$(tail -1 img/restore.log | sed -n 's/^(\([0-9.]*\)).*/\1/p') count=$c"
  kill -9 $(pgrep -f "^/tmp/wk/img/fn$" | head -5) 2>/dev/null; sleep 0.2
done
