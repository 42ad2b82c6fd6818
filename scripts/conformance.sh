#!/usr/bin/env bash
# The command behind `make conformance`: the real faas-cli (and the real
# watchdogs, for the function images) drive faas-criu through the README's
# session (test/integration/conformance_test.go, build tag conformance).
# The tools come from PATH or FAAS_CLI/FWATCHDOG/OF_WATCHDOG; CI puts
# ../shared/ecosystem/bin on PATH. Missing tools fail the run; a skipped
# test fails it too.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:/usr/local/sbin:$PATH CGO_ENABLED=0

missing=
for t in faas-cli:FAAS_CLI fwatchdog:FWATCHDOG of-watchdog:OF_WATCHDOG; do
	name=${t%%:*} var=${t##*:}
	if [ -z "${!var:-}" ] && ! command -v "$name" >/dev/null 2>&1; then
		missing="$missing $name"
	fi
done
if [ -n "$missing" ]; then
	echo "conformance: not found:$missing" >&2
	echo "  put the unmodified OpenFaaS builds on PATH, e.g. PATH=\$PWD/../shared/ecosystem/bin:\$PATH make conformance" >&2
	echo "  (CI has them at ../shared/ecosystem/bin; see its README.md), or set FAAS_CLI, FWATCHDOG, OF_WATCHDOG." >&2
	exit 1
fi
# The classic watchdog's image forks busybox commands (as functions/alpine).
if ! [ -x /bin/busybox ] && ! [ -x /usr/bin/busybox ]; then
	echo "conformance: installing busybox-static (for the classic watchdog's image)"
	apt-get -o DPkg::Lock::Timeout=60 install -y busybox-static >/dev/null || {
		echo "conformance: apt-get install busybox-static failed" >&2; exit 1; }
fi

go vet -tags integration,conformance ./test/integration/ || exit 1
start=$(date +%s)
log=$(mktemp)
go test -tags integration,conformance -count=1 -timeout 20m -v -run '^TestConformance(FaasCLI|README)$' ./test/integration/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
skip=$(grep -cE '^\s*--- SKIP' "$log")
ran=$(grep -cE '^\s*--- (PASS|FAIL)' "$log")
rm -f "$log"
echo "== conformance: ${ran} tests, ${skip} skipped, in $(( $(date +%s) - start ))s"
if [ "$skip" -gt 0 ] || [ "$ran" -eq 0 ]; then
	echo "conformance: a skipped (or no) test is not a pass" >&2
	status=1
fi
exit "$status"
