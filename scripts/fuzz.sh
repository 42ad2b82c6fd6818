#!/usr/bin/env bash
# Run every Go fuzz target in the module, one at a time, for FUZZTIME each
# (`make fuzz` calls this with $(FUZZTIME), 30s by default), then print one
# summary line per target. Exits non-zero if any target fails; its failing
# input is then under <package>/testdata/fuzz/<Target>/ and plain `go test`
# (so `make test`) replays it until it is fixed.
#
#   scripts/fuzz.sh [FUZZTIME] [TARGET-REGEXP]
#
# FUZZTIME is what go test -fuzztime takes: a duration (90s, 2m) or a count
# of executions (10000x). TARGET-REGEXP limits the run to the targets whose
# names match (grep -E), e.g. 'FuzzLoad|FuzzSubstitute'.
# Environment: FUZZ_MINIMIZE (-fuzzminimizetime, default 2s: Go's 60s
# default stalls the run on every new interesting input), FUZZ_PARALLEL
# (-parallel, default GOMAXPROCS), FUZZ_LOGS (keep each target's full
# output in this directory).
# The inputs the fuzzer finds interesting stay in Go's cache (go env
# GOCACHE)/fuzz, where the next run starts from them; the repository keeps
# only inputs that found a bug and a few seeds per target (see
# <package>/testdata/fuzz/README.md), so there is no option to copy the
# cache there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export CGO_ENABLED="${CGO_ENABLED:-0}"

fuzztime=${1:-30s}
filter=${2:-.}
minimize=${FUZZ_MINIMIZE:-2s}
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
logdir=${FUZZ_LOGS:-$tmp}
mkdir -p "$logdir"

# go test -list prints a package's matching names, then "ok  <package>".
if ! go test -list '^Fuzz' ./... >"$tmp/list" 2>&1; then
	cat "$tmp/list" >&2
	echo "fuzz: go test -list failed" >&2
	exit 1
fi
targets=()
pending=()
while read -r first second _; do
	case $first in
	Fuzz*) pending+=("$first") ;;
	ok)
		for name in ${pending[@]+"${pending[@]}"}; do
			targets+=("$second $name")
		done
		pending=()
		;;
	esac
done <"$tmp/list"

selected=()
for t in ${targets[@]+"${targets[@]}"}; do
	if grep -qE -- "$filter" <<<"${t#* }"; then
		selected+=("$t")
	fi
done
if [ ${#selected[@]} -eq 0 ]; then
	echo "fuzz: no fuzz target matches '$filter'" >&2
	exit 1
fi

echo "== fuzzing ${#selected[@]} targets for $fuzztime each (minimize $minimize)"
summary=()
failed=0
for t in "${selected[@]}"; do
	pkg=${t% *}
	name=${t#* }
	log="$logdir/$name.log"
	echo "== $name ($pkg)"
	start=$(date +%s)
	result=ok
	if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
		${parallel[@]+"${parallel[@]}"} "$pkg" >"$log" 2>&1; then
		result=FAIL
		failed=$((failed + 1))
	fi
	elapsed=$(($(date +%s) - start))
	# The last progress line: "fuzz: elapsed: 30s, execs: 1234 (41/sec),
	# new interesting: 3 (total: 40)".
	progress=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$progress")
	corpus=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$progress")
	if [ "$result" = FAIL ]; then
		# Show why: the failure and where the input was written.
		grep -E -- '--- FAIL|Failing input|To re-run|_test\.go:[0-9]+:|panic:|^FAIL|cannot|error' "$log" | head -n 20 | sed 's/^/   /' || true
	fi
	summary+=("$(printf '%-20s %-45s %4ss  execs %-10s corpus %-6s %s' \
		"$name" "$pkg" "$elapsed" "${execs:-?}" "${corpus:-?}" "$result")")
	echo "   ${summary[-1]}"
done

echo
echo "== summary: ${#selected[@]} targets, $failed failed"
printf '   %s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
	echo "failing inputs are under <package>/testdata/fuzz/<Target>/; go test replays them" >&2
	exit 1
fi
