#!/bin/bash
# wake-ab.sh OLD NEW ROUNDS [ENV...]: two providers on engine ea, a fixture function each
# (ENV: extra env of the function, JSON object body), hibernated and woken in turn,
# the order swapped every round; prints per wake: build, curl time to first byte.
export DOCKER_HOST=unix:///var/run/faas-criu-engine-ea.sock
rounds=$3; envs=${4:-{\}}
start() { # bin port net subnet
  local st=$(mktemp -d /tmp/ea/st-XXXX)
  $1 serve --port $2 --state-dir $st --network $3 --subnet $4 --autoscale=false > $st.log 2>&1 &
  echo "$! $st"
}
read pa sa < <(start $1 39141 ea-aba 10.77.140.0/24)
read pb sb < <(start $2 39142 ea-abb 10.77.141.0/24)
for port in 39141 39142; do for i in $(seq 50); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.2; done; done
Aa="admin:$(cat $sa/credentials/basic-auth-password)"; Ab="admin:$(cat $sb/credentials/basic-auth-password)"
dep() { curl -sf -u $1 -X POST localhost:$2/system/functions -d "{\"service\":\"abfn\",\"image\":\"ea-fixture:1\",\"envVars\":$envs,\"labels\":{\"com.openfaas.criu.strategy\":\"checkpoint\"}}" || echo deploy failed; }
dep $Aa 39141; dep $Ab 39142
sleep 3
curl -s localhost:39141/function/abfn/count >/dev/null; curl -s localhost:39142/function/abfn/count >/dev/null
wake() { # name auth port
  curl -sf -u $2 -X POST localhost:$3/system/scale-function/abfn -d '{"serviceName":"abfn","replicas":0}' || echo scale failed
  sleep 0.5
  t=$(curl -s -o /tmp/ea/abbody -w '%{time_starttransfer}' localhost:$3/function/abfn/count)
  echo "$1 $(python3 -c "print(round($t*1000,1))") count=$(cat /tmp/ea/abbody) load=$(cut -d' ' -f1 /proc/loadavg)"
  sleep 0.3
}
for r in $(seq $rounds); do
  if [ $((r%2)) = 1 ]; then wake old $Aa 39141; wake new $Ab 39142; else wake new $Ab 39142; wake old $Aa 39141; fi
done
curl -sf -u $Aa -X DELETE localhost:39141/system/functions -d '{"functionName":"abfn"}'
curl -sf -u $Ab -X DELETE localhost:39142/system/functions -d '{"functionName":"abfn"}'
kill $pa $pb; wait $pa $pb 2>/dev/null
docker network rm ea-aba ea-abb >/dev/null 2>&1
rm -rf $sa $sb $sa.log $sb.log
