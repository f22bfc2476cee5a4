# HeliosDB Auth — build, run and test.
# `make run` and `make test` need nothing installed beforehand but Go: the
# test target installs the client tools the acceptance tests drive.

GO        ?= go
BIN       := bin
DATA_DIR  ?= ./data
FUZZTIME  ?= 20s
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(PATH)

.PHONY: all build run test deps vet unit bench bench-load fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/heliosd ./cmd/heliosd
	$(GO) build -o $(BIN)/helios ./cmd/helios

## run: the daemon with its embedded defaults, every listener on loopback,
## with PostgreSQL and MariaDB behind it when they are (or can be) installed.
run: build
	BIN=$(BIN) DATA_DIR=$(DATA_DIR) ./scripts/run.sh

## deps: client tools for the acceptance tests (psql, mariadb, redis-cli, mongosh).
deps:
	./scripts/install-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

## test: everything — vet, unit, integration against the real daemon, fuzz seed corpora.
test: deps vet
	$(GO) test -race -timeout 15m ./...
	@# The allocation proofs once more without the race detector, which
	@# makes sync.Pool drop items and so skips the REST one above.
	$(GO) test -count=1 -run 'Alloc' ./core/... ./issuer/... ./netio/... ./protocols/...

## bench: every package's benchmarks (BENCH selects, e.g. BENCH=Verify; -count with BENCHCOUNT).
BENCH      ?= .
BENCHCOUNT ?= 1
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCHCOUNT) -timeout 30m ./...

## bench-load: make run's stack and PgBouncer beside it, then helios bench's standard
## suite (every protocol × connect/point against the servers themselves, a revoke-storm)
## into a report (OUT=bench-load-report, CELL=15s per endpoint and cell, CLIENTS=8).
bench-load: build
	BIN=$(BIN) ./scripts/bench-load.sh

## fuzz: every fuzz target of every package (fuzz/ and the decoders' own) for FUZZTIME each.
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.tools/' | xargs -n1 dirname | sort -u); do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
