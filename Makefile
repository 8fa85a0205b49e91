# Switchboard. `make test` installs the servers the integration tests need (Debian, via apt-get).
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
FUZZTIME ?= 10s
BENCH ?= .
PKGS ?= ./...

.PHONY: build test faults demo fuzz bench vet lint compose-check

build:
	$(GO) build -buildvcs=auto -o bin/switchboard ./cmd/switchboard

test:
	scripts/test-deps.sh
	scripts/browser-deps.sh
	SWITCHBOARD_REQUIRE_SERVERS=1 SWITCHBOARD_BROWSER=1 $(GO) test -race -count=1 -timeout 25m $(PKGS)
	# The store again as a build without a C compiler links it (modernc.org/sqlite; -race needs cgo).
	CGO_ENABLED=0 SWITCHBOARD_REQUIRE_SERVERS=1 $(GO) test -count=1 -timeout 10m ./store
	# Every benchmark once (about half a minute), so that none breaks unseen between the
	# sittings that time them (BenchmarkAddressBook did, when SQLite's C came in).
	SWITCHBOARD_REQUIRE_SERVERS=1 $(GO) test -count=1 -timeout 10m -run '^$$' -bench . -benchtime 1x $(PKGS)

# The fault suite (internal/faults): real processes under load, faults injected, every message tallied.
faults:
	scripts/test-deps.sh
	SWITCHBOARD_REQUIRE_SERVERS=1 $(GO) test -tags faults -count=1 -parallel 4 -timeout 15m -v ./internal/faults

demo:
	scripts/demo.sh

compose-check:
	scripts/compose-check.sh

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(PKGS)

vet:
	$(GO) vet $(PKGS)

lint: vet
	@out=$$(find . -name '*.go' -not -path './demo/*' -not -path './bin/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# End-to-end measurements (BENCHMARKS.md): installs Kannel, Prosody and PostgreSQL if missing.
# e.g. make bench-tool BENCHFLAGS='-mode prosody -n 20000'
BENCHFLAGS ?= -mode component -n 20000 -window 1000 -smpp-window 100 -mo 2000 -kannel
.PHONY: bench-tool bench-sitting pg-floor
bench-tool:
	scripts/bench-deps.sh
	$(GO) build -buildvcs=auto -o bin/switchboard ./cmd/switchboard
	bin/switchboard bench $(BENCHFLAGS)

# Every run of a BENCHMARKS.md sitting, raw output on stdout (about seven minutes).
bench-sitting:
	scripts/bench-sitting.sh

# PostgreSQL's own CPU for the rows of a message's life (pgbench), beside its CPU under Switchboard.
pg-floor:
	scripts/pg-floor.sh
