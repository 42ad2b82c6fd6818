#!/bin/bash
# mount-ab.sh OLD NEW ROUNDS (issue 13, tried 30 "mounts"): two provider
# builds on a private engine (ENGINE, default "mounts"; fixture image IMG),
# a fixture function each, hibernated (scale to zero, timed by curl: the
# suspend) and woken (curl's time to first byte: the wake) in turn, the
# order swapped every round. Ports 39141-39142 (PORTS_BASE), subnets
# SUBNETS="A B". KEEP=1 keeps
# the providers' state directories and logs.
set -u
ENGINE=${ENGINE:-mounts}
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$ENGINE.sock
IMG=${IMG:-mounts/fixture}
PB=${PORTS_BASE:-39140}
W=$(mktemp -d /tmp/mount-ab-XXXX)
rounds=$3
start() { # bin port net subnet
	local st=$W/st-$2
	mkdir -p $st
	$1 serve --port $2 --state-dir $st --network $3 --subnet $4 --autoscale=false >$st.log 2>&1 &
	echo "$! $st"
}
read sna snb <<<"${SUBNETS:-10.77.150.0/24 10.77.151.0/24}" # another helper's engine: its own
read pa sa < <(start $1 $((PB + 1)) $ENGINE-aba $sna)
read pb sb < <(start $2 $((PB + 2)) $ENGINE-abb $snb)
for port in $((PB + 1)) $((PB + 2)); do for i in $(seq 100); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.2; done; done
Aa="admin:$(cat $sa/credentials/basic-auth-password)"; Ab="admin:$(cat $sb/credentials/basic-auth-password)"
dep() { curl -sf -u $1 -X POST localhost:$2/system/functions -d "{\"service\":\"abfn\",\"image\":\"$IMG\",\"labels\":{\"com.openfaas.criu.strategy\":\"checkpoint\"}}" || echo deploy failed; }
dep $Aa $((PB + 1)); dep $Ab $((PB + 2))
sleep 3
curl -s localhost:$((PB + 1))/function/abfn/count >/dev/null; curl -s localhost:$((PB + 2))/function/abfn/count >/dev/null
wake() { # name auth port
	s=$(curl -sf -o /dev/null -w '%{time_total}' -u $2 -X POST localhost:$3/system/scale-function/abfn -d '{"serviceName":"abfn","replicas":0}' || echo scale failed)
	sleep 0.5
	t=$(curl -s -o $W/body -w '%{time_starttransfer}' localhost:$3/function/abfn/count)
	echo "$1 suspend=$(python3 -c "print(round($s*1000,1))") wake=$(python3 -c "print(round($t*1000,1))") count=$(cat $W/body) load=$(cut -d' ' -f1 /proc/loadavg)"
	sleep 0.3
}
for r in $(seq $rounds); do
	if [ $((r % 2)) = 1 ]; then wake old $Aa $((PB + 1)); wake new $Ab $((PB + 2)); else wake new $Ab $((PB + 2)); wake old $Aa $((PB + 1)); fi
done
curl -sf -u $Aa -X DELETE localhost:$((PB + 1))/system/functions -d '{"functionName":"abfn"}'
curl -sf -u $Ab -X DELETE localhost:$((PB + 2))/system/functions -d '{"functionName":"abfn"}'
kill $pa $pb; wait $pa $pb 2>/dev/null
docker network rm $ENGINE-aba $ENGINE-abb >/dev/null 2>&1
if [ -n "${KEEP:-}" ]; then echo "kept $W (provider logs: $W/st-*.log)"; else rm -rf $W; fi
