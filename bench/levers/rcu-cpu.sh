#!/bin/bash
# rcu-cpu.sh WINDOW REPS (tried 40; PAIRED=N first): a CPU-bound loop's rate, alone and while a trivial
# function is hibernated and woken in a loop, rcu_expedited 0 and 1 alternated.
set -u
# On a private engine (ENGINE, default rcu) with the bench's fixture tagged IMAGE (rcu-fixture:1);
# ports 39810-39829, network rcu-probe 10.82.50.0/24; OUT (/tmp/rcu) for state and wake lists.
W=$1; REPS=$2
LEVERS=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/rcu}; IMAGE=${IMAGE:-rcu-fixture:1}
export DOCKER_HOST=unix:///var/run/faas-criu-engine-${ENGINE:-rcu}.sock
cd "$LEVERS/../.."
rm -rf $OUT/pstate; mkdir -p $OUT/pstate
PP=
trap 'curl -s -X DELETE -d "{\"functionName\":\"rcu-t\"}" $U/system/functions; kill $PP; wait $PP; echo 1 > /sys/kernel/rcu_expedited; echo restored $(cat /sys/kernel/rcu_expedited)' EXIT
# another session's process holds most loopback ports for moments: try the ports of this task in turn
for port in $(seq 39810 39829); do
	U=http://127.0.0.1:$port
	bin/faas-criu serve --port $port --state-dir $OUT/pstate --network rcu-probe --subnet 10.82.50.0/24 \
		--autoscale=false --basic-auth=false > $OUT/probe-provider.log 2>&1 &
	PP=$!
	for i in $(seq 50); do curl -sf $U/healthz >/dev/null && break; kill -0 $PP 2>/dev/null || break; sleep 0.2; done
	kill -0 $PP 2>/dev/null && break
done
echo "provider on $U"
curl -sf -X POST -d '{"service":"rcu-t","image":"'"$IMAGE"'","labels":{"com.openfaas.criu.strategy":"checkpoint"}}' $U/system/functions || { echo deploy failed; exit 1; }
for i in $(seq 100); do curl -sf $U/function/rcu-t/count >/dev/null && break; sleep 0.2; done
wakeloop() { # runs until killed: scale to zero, then wake; one line per wake: first-byte seconds
	while :; do
		curl -sf -X POST -d '{"serviceName":"rcu-t","replicas":0}' $U/system/scale-function/rcu-t >/dev/null || echo scale-failed
		curl -sf -o /dev/null -w '%{time_starttransfer}\n' $U/function/rcu-t/count || echo wake-failed
	done
}
pid_cpu() { awk '{print $14+$15}' /proc/$1/stat; }
# paired: the value alternates at every wake (scale to zero timed too)
if [ "${PAIRED:-0}" -gt 0 ]; then
	for i in $(seq $PAIRED); do
		v=$(( ((i - 1) % 2 + (i - 1) / 2) % 2 )) # 0 1 1 0 0 1 1 0 ...
		echo $v > /sys/kernel/rcu_expedited
		s=$(curl -sf -o /dev/null -w '%{time_total}' -X POST -d '{"serviceName":"rcu-t","replicas":0}' $U/system/scale-function/rcu-t || echo fail)
		w=$(curl -sf -o /dev/null -w '%{time_starttransfer}' $U/function/rcu-t/count || echo fail)
		echo "$v $s $w"
	done > $OUT/paired.txt
	echo "paired done $(uptime | sed 's/.*load/load/')"
fi
for rep in $(seq $REPS); do
	for v in 0 1; do
		echo $v > /sys/kernel/rcu_expedited
		alone=$(python3 $LEVERS/rcu-spin.py $((W/2)))
		wakeloop > $OUT/wl-$rep-$v.txt 2>&1 & WL=$!
		sleep 1
		busy=$(python3 $LEVERS/rcu-spin.py $W)
		kill $WL; wait $WL 2>/dev/null
		n=$(grep -c '^[0-9]' $OUT/wl-$rep-$v.txt); fails=$(grep -c failed $OUT/wl-$rep-$v.txt)
		med=$(grep '^[0-9]' $OUT/wl-$rep-$v.txt | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]*1000}')
		echo "rep $rep rcu_expedited=$v spin alone ${alone} M/s, with wakes ${busy} M/s; wakes $n (failed $fails) median first byte ${med} ms; $(uptime | sed 's/.*load/load/')"
	done
done
