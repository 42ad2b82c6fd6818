#!/usr/bin/env bash
# Suspend latency of provider builds side by side (bench/tried.md 18).
#
#   scripts/suspend-ab.sh OLD_BIN NEW_BIN [...]
#
# Each build runs as a provider of its own on the engine DOCKER_HOST names
# (a second engine of one's own: scripts/second-engine.sh start NAME), with
# a trivial and a heavy (100 MB, as in make bench) function of the
# checkpoint strategy. Each round times, for every build in turn, the scale
# to zero of each function (curl's total time of POST
# /system/scale-function, which answers once it sleeps), then wakes it and
# checks that its count went on. ROUNDS (default 10) rounds; medians last.
# The builds' order alternates from round to round (A B, B A, ...), so that
# neither always follows the other on a loaded machine. SUBNET_BASE (default
# 200) is the third octet of the first build's subnet, 10.254.SUBNET_BASE.0/24,
# and NET_PREFIX (default suspend-ab) names the networks: set both when
# another session runs this script on its own engine at the same time.
# Not part of make bench: it measures the suspend alone, in a few minutes.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-10}
SUBNET_BASE=${SUBNET_BASE:-200}
NET_PREFIX=${NET_PREFIX:-suspend-ab}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/suspend-ab.XXXXXX)
img=suspend-ab/fixture:latest
declare -A URL AUTH PID
BINS=("$@")

cleanup() {
	for n in "${!URL[@]}"; do
		for k in trivial heavy; do
			curl -s -u "${AUTH[$n]}" -X DELETE "${URL[$n]}/system/functions" -d "{\"functionName\":\"$k\"}" >/dev/null || true
		done
	done
	for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null || true; done
	sleep 1
	for n in "${!URL[@]}"; do docker network rm "$NET_PREFIX-$n" >/dev/null 2>&1 || true; done
	docker rmi "$img" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/img/tmp" && touch "$work/img/tmp/.keep"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$work/img/fn" ./test/fixture)
printf 'FROM scratch\nCOPY fn /fn\nCOPY tmp /tmp\nENTRYPOINT ["/fn"]\n' >"$work/img/Dockerfile"
docker build -q -t "$img" "$work/img" >/dev/null 2>&1

i=0
for b in "${BINS[@]}"; do
	n=$i
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$work/state-$n"
	setsid "$b" serve --port "$port" --state-dir "$work/state-$n" --network "$NET_PREFIX-$n" \
		--subnet "10.254.$((SUBNET_BASE + i)).0/24" --autoscale=false --idle-after 1h --deep-after 0 \
		>"$work/log-$n" 2>&1 </dev/null &
	PID[$n]=$!
	URL[$n]=http://127.0.0.1:$port
	for _ in $(seq 200); do curl -sf "${URL[$n]}/healthz" >/dev/null && break; sleep 0.1; done
	AUTH[$n]="admin:$(cat "$work/state-$n/credentials/basic-auth-password")"
	for k in trivial heavy; do
		env='{}'
		[ $k = heavy ] && env='{"INIT_DELAY":"1.5s","STATE_MB":"100"}'
		curl -sf -u "${AUTH[$n]}" -X POST "${URL[$n]}/system/functions" \
			-d "{\"service\":\"$k\",\"image\":\"$img\",\"envVars\":$env,\"labels\":{\"com.openfaas.criu.strategy\":\"checkpoint\"}}" >/dev/null
	done
	i=$((i + 1))
done
declare -A COUNT
for n in "${!URL[@]}"; do
	for k in trivial heavy; do
		for _ in $(seq 300); do
			c=$(curl -s "${URL[$n]}/function/$k/count" || true)
			[[ $c =~ ^[0-9]+$ ]] && break
			sleep 0.2
		done
		COUNT[$n-$k]=$c
	done
done
for r in $(seq "$ROUNDS"); do
	order=$(seq 0 $((${#BINS[@]} - 1)))
	[ $((r % 2)) = 0 ] && order=$(echo "$order" | tac)
	for n in $order; do
		for k in trivial heavy; do
			t=$(curl -s -o "$work/body" -w '%{http_code} %{time_total}' -u "${AUTH[$n]}" -X POST \
				"${URL[$n]}/system/scale-function/$k" -d "{\"serviceName\":\"$k\",\"replicas\":0}")
			c=$(curl -s "${URL[$n]}/function/$k/count")
			ok=ok
			[ "$c" = $((COUNT[$n-$k] + 1)) ] || ok="STATE-LOST($c)"
			[ "${t%% *}" = 202 ] || [ "${t%% *}" = 200 ] || ok="SCALE-FAILED(${t%% *}: $(head -c 200 "$work/body"))"
			COUNT[$n-$k]=$c
			echo "$r ${BINS[$n]} $k ${t#* } $ok"
			sleep 0.3
		done
	done
done | tee "$work/samples"
python3 - "$work/samples" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    d[(f[1], f[2])].append(float(f[3]) * 1000)
for (b, k), v in sorted(d.items()):
    print(f"{b} {k}: median {statistics.median(v):.0f} ms, min {min(v):.0f}, max {max(v):.0f}, n={len(v)}")
PY
