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

## install: heliosd and helios into $(BINDIR), the example configuration
## ($(SYSCONFDIR)/heliosd/heliosd.toml, kept when it exists), the systemd unit,
## its sysusers.d and tmpfiles.d entries (the heliosd user; $(STATEDIR) 0700),
## all under $(DESTDIR) for packaging. Without DESTDIR, as root on a systemd
## host, it also creates the user and the data directory (systemd-sysusers,
## systemd-tmpfiles) and reloads systemd; a package runs those in postinst.
## uninstall: removes what install wrote (the configuration only while it is
## unchanged), never $(STATEDIR) nor the user that owns it.
PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
SYSCONFDIR    ?= /etc
STATEDIR      ?= /var/lib/heliosd
UNITDIR       ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR   ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR   ?= $(PREFIX)/lib/tmpfiles.d
DEPLOY_SUBST   = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g'

.PHONY: install uninstall
install: build
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/heliosd
	install -d -m 0700 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BIN)/heliosd $(BIN)/helios $(DESTDIR)$(BINDIR)/
	$(DEPLOY_SUBST) deploy/heliosd.service.in > $(DESTDIR)$(UNITDIR)/heliosd.service
	$(DEPLOY_SUBST) deploy/heliosd.sysusers.in > $(DESTDIR)$(SYSUSERSDIR)/heliosd.conf
	$(DEPLOY_SUBST) deploy/heliosd.tmpfiles.in > $(DESTDIR)$(TMPFILESDIR)/heliosd.conf
	chmod 0644 $(DESTDIR)$(UNITDIR)/heliosd.service $(DESTDIR)$(SYSUSERSDIR)/heliosd.conf $(DESTDIR)$(TMPFILESDIR)/heliosd.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml ]; then \
	  echo "keeping $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml"; \
	else \
	  $(DEPLOY_SUBST) deploy/heliosd.toml.in > $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml && \
	  chmod 0640 $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/heliosd.conf && \
	  systemd-tmpfiles --create $(TMPFILESDIR)/heliosd.conf && \
	  chgrp heliosd $(SYSCONFDIR)/heliosd $(SYSCONFDIR)/heliosd/heliosd.toml && \
	  { systemctl daemon-reload 2>/dev/null || true; }; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/heliosd $(DESTDIR)$(BINDIR)/helios $(DESTDIR)$(UNITDIR)/heliosd.service \
	  $(DESTDIR)$(SYSUSERSDIR)/heliosd.conf $(DESTDIR)$(TMPFILESDIR)/heliosd.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml ]; then \
	  if $(DEPLOY_SUBST) deploy/heliosd.toml.in | cmp -s - $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml; \
	  else echo "keeping $(DESTDIR)$(SYSCONFDIR)/heliosd/heliosd.toml: it was changed"; fi; \
	fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/heliosd 2>/dev/null
	@echo "kept $(DESTDIR)$(STATEDIR) (the issuer store) and the heliosd user"
