# smudge: build, test, demo, fuzz and benchmark.
#
#   make build            bin/smudge, the demo binary (static, CGO_ENABLED=0)
#   make test             gofmt check, go vet, go test -race (fuzz seed corpora included,
#                         and the Docker end-to-end tests when a daemon answers)
#   make demo             a five-node cluster on 127.0.0.1, end to end (scripts/demo.sh)
#   make image            the demo image smudge:latest (Dockerfile: FROM scratch + bin/smudge)
#   make e2e              the end-to-end tests across Docker containers, alone (e2e/)
#   make fuzz             every Fuzz target in the module for FUZZTIME each (default 30s)
#   make bench            every go test benchmark, with allocations, then make bench-compare
#   make bench-compare    smudge vs hashicorp/memberlist on real UDP, side by side, judged against
#                         issue #8's targets (bench/, own go.mod; about 30 minutes, 40 at most;
#                         as root in a network namespace of its own, with iptables)
#   make bench-quick      the same at 16 nodes only, short windows, no join series (about 3-4 minutes)
#   make sim-scale        smudge sim at 1,000 and 10,000 nodes, with defaults and 10% loss 200 periods each (up to 25 minutes, 20 GiB)
#   make clean            remove bin/

GO       ?= go
DOCKER   ?= docker
IMAGE    ?= smudge:latest
FUZZTIME ?= 30s
BIN      := bin/smudge

.PHONY: all build test demo image e2e fuzz bench bench-go bench-compare bench-quick sim-scale clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./example

# The race detector needs cgo and a C compiler; without them the tests run
# without it, with a warning.
test:
	@set -eu; \
	echo "==> gofmt -l ."; \
	unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then \
		echo "these files are not gofmt-formatted (run gofmt -w on them):"; \
		echo "$$unformatted" | sed 's/^/    /'; \
		echo "make test: FAILED (gofmt)"; exit 1; \
	fi; \
	echo "==> $(GO) vet ./..."; \
	$(GO) vet ./... || { echo "make test: FAILED (go vet)"; exit 1; }; \
	race=-race; \
	if [ "$$($(GO) env CGO_ENABLED)" != 1 ]; then \
		echo "WARNING: cgo is not available (no C compiler?): running the tests WITHOUT the race detector"; \
		race=; \
	fi; \
	echo "==> $(GO) test $$race -count=1 ./... (but ./e2e/)"; \
	pkgs=$$($(GO) list ./... | grep -v '/e2e$$'); \
	$(GO) test $$race -count=1 $$pkgs || { echo "make test: FAILED (go test)"; exit 1; }; \
	if [ -n "$$race" ]; then \
		echo "==> $(GO) test -count=1 -run '^TestProperties$$' ./sim/ (the property tests at 1,000 nodes, without the race detector, which runs them at 200 above)"; \
		$(GO) test -count=1 -run '^TestProperties$$' ./sim/ || { echo "make test: FAILED (sim property tests at 1,000 nodes)"; exit 1; }; \
	fi; \
	echo "==> $(GO) test $$race -count=1 ./e2e/ (Docker, on its own: its containers load the CPU that timing tests measure; skipped without a daemon, make e2e says why)"; \
	$(GO) test $$race -count=1 ./e2e/ || { echo "make test: FAILED (go test ./e2e/)"; exit 1; }; \
	echo "make test: PASSED (gofmt, go vet, go test $$race)"

demo:
	GO=$(GO) bash scripts/demo.sh

# The image holds the static binary built above and nothing else: Docker
# pulls nothing (FROM scratch) and runs no Go.
image: build
	$(DOCKER) build -t $(IMAGE) .

# The Docker end-to-end tests alone, verbose, with their measurements. They
# are part of `make test` too (./... includes e2e/); without a Docker daemon
# they skip, saying so.
e2e:
	$(GO) test -count=1 -v -timeout 15m ./e2e/

# Fuzz targets are discovered with go test -list, one -fuzz run per target
# (go test fuzzes one target per package at a time).
fuzz:
	@set -eu; \
	list=$$($(GO) test -list '^Fuzz' ./...) || { echo "$$list"; echo "make fuzz: FAILED (go test -list)"; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { names[n++] = $$1; next } \
		/^ok / { for (i = 0; i < n; i++) print $$2 ":" names[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "make fuzz: no Fuzz targets found"; exit 0; fi; \
	for t in $$targets; do \
		pkg=$${t%:*}; name=$${t##*:}; \
		echo "==> fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" || \
			{ echo "make fuzz: FAILED ($$name in $$pkg; a failing input is saved under testdata/fuzz/$$name)"; exit 1; }; \
	done; \
	echo "make fuzz: PASSED ($$(echo $$targets | wc -w) targets, $(FUZZTIME) each)"

bench: bench-go bench-compare

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench/ has its own go.mod (it needs github.com/hashicorp/memberlist, which
# the library must not). Configurations equal-1s, equal-200ms and defaults at
# 16 and 64 nodes, one run each with a traffic window of one memberlist
# push-pull period (30 s at 16 nodes, 60 s at 64), and 10 cluster starts of
# 64 nodes for the join target; the window starts one push-pull period after
# the join (-settle -1). timeout caps a run at 40 minutes (bench's own
# -timeout gives up a little earlier, saying so).
# Run as root, bench enters a network namespace of its own (unshare) for
# iptables counters and slow nodes; otherwise it says what it skips.
bench-compare:
	cd bench && timeout -k 30s 40m $(GO) run . -n 16,64 -configs equal-1s,equal-200ms,defaults -runs 1 -joins 10 -timeout 39m

# A quick end-to-end check of bench/: 16 nodes, the three configurations,
# one run each, 5 s windows (shorter than memberlist's push-pull period, so
# its TCP is under-counted, as the output says), no join series.
bench-quick:
	cd bench && timeout -k 30s 6m $(GO) run . -n 16 -configs equal-1s,equal-200ms,defaults -runs 1 -joins 0 -window 5s -settle 2s -timeout 5m

# The figures of the README's simulator section: 1,000 and 10,000 nodes,
# with defaults and with 10% loss, 200 protocol periods each, each stopped
# after 15 minutes (timeout 900). See the README for what they cost.
sim-scale: build
	timeout 900 $(BIN) sim -n 1000 -join boot -periods 200
	timeout 900 $(BIN) sim -n 1000 -join boot -periods 200 -loss 10%
	timeout 900 $(BIN) sim -n 10000 -periods 200 -progress
	timeout 900 $(BIN) sim -n 10000 -periods 200 -loss 10% -progress

clean:
	rm -rf bin
