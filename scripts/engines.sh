#!/usr/bin/env bash
# N Docker engines on this machine, standing in for N boxes in the fleet
# tests: engines PREFIX1..PREFIXN, each made by second-engine.sh with its own
# bridge subnet (second-engine.sh derives a subnet from a name's first
# letter alone, so names sharing a prefix would collide).
#
#   scripts/engines.sh start PREFIX N   prints one DOCKER_HOST per line
#   scripts/engines.sh stop|kill|purge PREFIX N
#
# Subnets: 10.252.(40 + 10*(cksum of PREFIX % 20) + i).0/24: the whole
# prefix counts, so that helpers' prefixes sharing a first letter (fa, fo,
# fs) do not share subnets (a clash is still possible: 20 bases).
# FAAS_CRIU_ENGINES_SUBNET_BASE (or its older name FAAS_CRIU_ENGINES_BASE)
# replaces 40 + 10*(...) when two prefixes in use at once still clash.
set -euo pipefail
cmd=${1:-}
prefix=${2:-}
n=${3:-}
if [ -z "$cmd" ] || [ -z "$prefix" ] || ! [ "$n" -ge 1 ] 2>/dev/null || [ "$n" -gt 9 ]; then
	echo "usage: $0 start|stop|kill|purge PREFIX N (N from 1 to 9)" >&2
	exit 2
fi
here=$(dirname "$0")
base=${FAAS_CRIU_ENGINES_SUBNET_BASE:-${FAAS_CRIU_ENGINES_BASE:-$((40 + 10 * ($(printf '%s' "$prefix" | cksum | cut -d' ' -f1) % 20)))}}
for i in $(seq 1 "$n"); do
	FAAS_CRIU_ENGINE_BRIDGE_CIDR=10.252.$((base + i)).1/24 "$here/second-engine.sh" "$cmd" "$prefix$i"
done
