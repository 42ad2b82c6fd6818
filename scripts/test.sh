#!/usr/bin/env bash
# The test command behind `make test` and .ci/run: vet, formatting, then
# every test (unit and integration) with a summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:/usr/local/sbin:$PATH CGO_ENABLED=0
# The integration tests drive the real, unmodified faas-cli. It is taken from
# $FAAS_CLI or PATH; a clone with ../shared beside it (as CI has) gets
# ../shared/ecosystem/bin put first. Without it those tests fail and say so.
if [ -d ../shared/ecosystem/bin ]; then
	PATH="$(cd ../shared/ecosystem/bin && pwd):$PATH"
fi

# The integration tests (test/integration) need root, Docker and CRIU, so
# they carry the build tag "integration": plain `go test ./...` runs the unit
# tests anywhere, and this script sets the tag so that make test runs them all.
tags=integration
echo "== go vet"
go vet ./... || exit 1
go vet -tags "$tags,soak,conformance" ./... || exit 1
# The provider ships for ARM boards too, and syscall types differ there
# (Statfs_t.Bsize is int32 on 32-bit ARM): build and vet each release
# architecture so such a mistake fails here, not on someone's board.
for arch in "arm GOARM=7" arm64; do
	echo "== go build + vet, GOARCH=$arch"
	# shellcheck disable=SC2086 # $arch is "GOARCH [GOARM=n]", split on purpose
	env GOARCH=$arch go build ./... || exit 1
	env GOARCH=$arch go vet ./... || exit 1
done
echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:"; echo "$unformatted"; exit 1
fi

echo "== go test"
log=$(mktemp)
start=$(date +%s)
go test -tags "$tags" -count=1 -timeout 40m -v ./... 2>&1 | tee "$log" | grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|PASS|FAIL|ok |panic:|\s+\S+_test\.go:[0-9]+:)' | grep -v '^=== RUN'
status=${PIPESTATUS[0]}
elapsed=$(( $(date +%s) - start ))

pass=$(grep -cE '^\s*--- PASS' "$log")
fail=$(grep -cE '^\s*--- FAIL' "$log")
skip=$(grep -cE '^\s*--- SKIP' "$log")
echo
echo "== summary: $pass passed, $fail failed, $skip skipped, in ${elapsed}s"
grep -E '^(ok|FAIL|---)\s' "$log" | grep -E '^(ok|FAIL)\s' | sed 's/^/   /'
# A tag that stopped matching would leave the integration package out of
# ./... without a word: require that it ran.
if ! grep -qE '^(ok|FAIL)\s+\S+/test/integration\s' "$log"; then
	echo "test/integration did not run (build tag \"$tags\" not matched?)"
	status=1
fi
if [ "$skip" -gt 0 ]; then
	echo "skipped tests (a skipped test is not a pass):"; grep -E '^\s*--- SKIP' "$log"
	status=1
fi
rm -f "$log"
exit "$status"
