# faas-criu: two commands for a newcomer.
#   make run    set up Docker and CRIU, build, start the provider on :8080
#   make test   set up Docker and CRIU, run every test
#   make conformance   the real faas-cli through the README's session
# Both run as root (setup installs packages and starts dockerd).

export PATH := /usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin:$(PATH)
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/faas-criu
ARGS    ?=

.PHONY: run test conformance setup build image bench bench-scale soak fuzz vet clean

## run: set up, build, build the example functions, and serve on :8080 (ARGS adds flags)
run: setup build
	$(BIN) build -f examples/stack.yml
	exec $(BIN) serve --stack examples/stack.yml $(ARGS)

## test: set up, then vet, check formatting and run every test (unit and integration)
test: setup
	scripts/test.sh

## conformance: the real faas-cli (on PATH or FAAS_CLI) drives faas-criu through the README's session
conformance: setup
	scripts/conformance.sh

setup:
	@bash scripts/setup.sh

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## image: the provider's own image, FROM scratch with the static binary (offline)
image: build
	DOCKER_BUILDKIT=0 docker build -t faas-criu:$(VERSION) -t faas-criu:latest .

## bench: the benchmark report (bench/REPORT.md)
bench: setup build
	go run ./bench -out bench/REPORT.md

## bench-scale: the scale curve (deploy, list, provider RSS, restart, box memory, wake
## of the newest) at SCALE_SIZES functions, into its section of bench/REPORT.md;
## SCALE_WORKERS deploys at a time. Everything it deployed is removed at the end.
SCALE_SIZES   ?= 10,100,1000
SCALE_WORKERS ?= 6
bench-scale: setup build
	go run ./bench -scale -scale-sizes $(SCALE_SIZES) -scale-workers $(SCALE_WORKERS) -out bench/REPORT.md

## soak: ten minutes of mixed load (SOAK_DURATION overrides)
soak: setup build
	go test -tags integration,soak -count=1 -timeout 30m -run TestSoak -v ./test/integration/

## fuzz: run every fuzz target for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

vet:
	go vet ./...
	go vet -tags integration,soak,conformance ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)

clean:
	rm -rf bin
