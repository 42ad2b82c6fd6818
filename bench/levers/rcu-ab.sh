#!/bin/bash
# rcu-ab.sh PHASE VALUE... (tried 40): the bench's PHASE once per VALUE, writing VALUE to
# /sys/kernel/rcu_expedited before each run (e.g. 0 1 1 0), on a private engine; then 1
# again (setup's default). ARGS: more bench flags; OUT: where reports go (/tmp/rcu);
# ENGINE (rcu), NET (rcu), SUBNET (10.82): the engine and the bench's names; TAG: a file tag.
# Prints per run the load average and the function-call IPIs (CAL) of /proc/interrupts.
# The bench binary: go build -o $OUT/bench ./bench (run from the repository).
set -u
phase=$1; shift
cd "$(dirname "$0")/../.." || exit 1 # the bench runs inside the repository
OUT=${OUT:-/tmp/rcu}; ENGINE=${ENGINE:-rcu}
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$ENGINE.sock
cal() { awk '/CAL:/ { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }
i=0
for v in "$@"; do
	i=$((i + 1))
	echo "$v" >/sys/kernel/rcu_expedited
	f=$OUT/$phase${TAG:-}-$i-$v
	echo "=== $phase run $i value $(cat /sys/kernel/rcu_expedited) CAL $(cal) t $(date +%s) start $(uptime | sed 's/.*load/load/')"
	for try in 1 2 3 4 5 6; do # a provider may find its (random) port taken by another session's process
		"$OUT/bench" -phases "$phase" ${ARGS:-} -net-prefix "${NET:-rcu}" -subnet-prefix "${SUBNET:-10.82}" -out "$f.md" >"$f.log" 2>&1
		grep -q "provider exited at start" "$f.log" || break
		echo "retry $try: provider port taken"
	done
	echo "=== $phase run $i value $v CAL $(cal) t $(date +%s) end $(uptime | sed 's/.*load/load/')"
done
echo 1 >/sys/kernel/rcu_expedited
echo "restored rcu_expedited=$(cat /sys/kernel/rcu_expedited)"
