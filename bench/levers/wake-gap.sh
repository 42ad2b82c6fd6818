#!/bin/bash
# wake-gap.sh BIN ROUNDS (ENVS=JSON env of the function): one provider on engine ea, a trivial fixture hibernated and woken ROUNDS times;
# per wake: curl time to first byte, the record's wake duration, early flag, start call;
# at the end the provider's CPU over the run.
# Another engine: ENGINE=NAME IMAGE=REF STATE=DIR PORT=N NET=NAME SUBNET=CIDR.
ENGINE=${ENGINE:-ea}; IMAGE=${IMAGE:-ea-fixture:1}; STATE=${STATE:-/tmp/ea}; ENVS=${ENVS:-{\}}
port=${PORT:-39137}; net=${NET:-ea-gap}; subnet=${SUBNET:-10.77.139.0/24}
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$ENGINE.sock
bin=$1; rounds=$2; st=$(mktemp -d $STATE/st-XXXX)
$bin serve --port $port --state-dir $st --network $net --subnet $subnet --autoscale=false > $st.log 2>&1 &
pid=$!
for i in $(seq 50); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.2; done
pw=$(cat $st/credentials/basic-auth-password); A="admin:$pw"
curl -sf -u $A -X POST localhost:$port/system/functions -d '{"service":"gapfn","image":"'"$IMAGE"'","envVars":'"$ENVS"',"labels":{"com.openfaas.criu.strategy":"checkpoint"}}' || echo deploy failed
curl -s localhost:$port/function/gapfn/count >/dev/null
for r in $(seq $rounds); do
  curl -sf -u $A -X POST localhost:$port/system/scale-function/gapfn -d '{"serviceName":"gapfn","replicas":0}' || echo scale failed
  sleep 0.5
  t=$(curl -s -o $STATE/body -w '%{time_starttransfer}' localhost:$port/function/gapfn/count)
  sleep 0.4
  python3 - "$st" "$t" "$(cat $STATE/body)" <<'PY'
import json,sys
rec=json.load(open(sys.argv[1]+"/functions/openfaas-fn/gapfn.json"))
w=rec["lastWake"]
print("ttfb_ms=%.1f wake_ms=%.1f early=%s answer_ms=%.1f startcall_ms=%.1f count=%s" % (float(sys.argv[2])*1000, w["duration"]/1e6, w.get("early",False), w["restore"]["duration"]/1e6, w.get("startCall",0)/1e6, sys.argv[3]))
PY
done
# The provider's CPU over the whole run (deploy included), in ms.
echo "provider_cpu_ms=$(awk -v hz=$(getconf CLK_TCK) '{print ($14+$15)*1000/hz}' /proc/$pid/stat) rounds=$rounds"
curl -sf -u $A -X DELETE localhost:$port/system/functions -d '{"functionName":"gapfn"}'
kill $pid; wait $pid 2>/dev/null
docker network rm $net >/dev/null 2>&1
rm -rf $st
