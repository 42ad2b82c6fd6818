#!/bin/bash
# wake-ab.sh OLD NEW ROUNDS [ENV...]: two providers on one engine, a fixture function each
# (ENV: extra env of the function, JSON object body), hibernated and woken in turn,
# the order swapped every round; prints per wake: build, curl time to first byte.
# Defaults are engine ea's (tried 27); another helper's engine: ENGINE=NAME IMAGE=REF
# PORTS="PA PB" NETS="NA NB" SUBNETS="SA SB" STATE=DIR.
ENGINE=${ENGINE:-ea}; IMAGE=${IMAGE:-ea-fixture:1}; STATE=${STATE:-/tmp/ea}
read pta ptb <<<"${PORTS:-39141 39142}"; read na nb <<<"${NETS:-ea-aba ea-abb}"
read sna snb <<<"${SUBNETS:-10.77.140.0/24 10.77.141.0/24}"
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$ENGINE.sock
rounds=$3; envs=${4:-{\}}
start() { # bin port net subnet
  local st=$(mktemp -d $STATE/st-XXXX)
  $1 serve --port $2 --state-dir $st --network $3 --subnet $4 --autoscale=false > $st.log 2>&1 &
  echo "$! $st"
}
read pa sa < <(start $1 $pta $na $sna)
read pb sb < <(start $2 $ptb $nb $snb)
for port in $pta $ptb; do for i in $(seq 50); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.2; done; done
Aa="admin:$(cat $sa/credentials/basic-auth-password)"; Ab="admin:$(cat $sb/credentials/basic-auth-password)"
dep() { curl -sf -u $1 -X POST localhost:$2/system/functions -d "{\"service\":\"abfn\",\"image\":\"$IMAGE\",\"envVars\":$envs,\"labels\":{\"com.openfaas.criu.strategy\":\"checkpoint\"}}" || echo deploy failed; }
dep $Aa $pta; dep $Ab $ptb
sleep 3
curl -s localhost:$pta/function/abfn/count >/dev/null; curl -s localhost:$ptb/function/abfn/count >/dev/null
wake() { # name auth port
  curl -sf -u $2 -X POST localhost:$3/system/scale-function/abfn -d '{"serviceName":"abfn","replicas":0}' || echo scale failed
  sleep 0.5
  t=$(curl -s -o $STATE/abbody -w '%{time_starttransfer}' localhost:$3/function/abfn/count)
  echo "$1 $(python3 -c "print(round($t*1000,1))") count=$(cat $STATE/abbody) load=$(cut -d' ' -f1 /proc/loadavg)"
  sleep 0.3
}
for r in $(seq $rounds); do
  if [ $((r%2)) = 1 ]; then wake old $Aa $pta; wake new $Ab $ptb; else wake new $Ab $ptb; wake old $Aa $pta; fi
done
curl -sf -u $Aa -X DELETE localhost:$pta/system/functions -d '{"functionName":"abfn"}'
curl -sf -u $Ab -X DELETE localhost:$ptb/system/functions -d '{"functionName":"abfn"}'
kill $pa $pb; wait $pa $pb 2>/dev/null
docker network rm $na $nb >/dev/null 2>&1
rm -rf $sa $sb $sa.log $sb.log
