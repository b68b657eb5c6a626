# kneepipe: two commands on a fresh machine.
#   make run    the default pipeline on the bundled sample (no network, no credentials)
#   make test   unit and end-to-end tests (through real S3 servers, versitygw and MinIO), then fuzzing
#   make fuzz FUZZTIME=10m   longer fuzzing
GO      ?= go
BIN     := bin/kneepipe
OUT     ?= out
# What `kneepipe --version` prints (the commit also comes from Go's build
# info, but GOFLAGS=-buildvcs=false or a tarball leave that empty).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)

include scripts/tools.mk

.PHONY: all build run test bench bench-shard fuzz vet clean chromium torch slurm soak

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/kneepipe

run: build
	./$(BIN) run -f pipeline.yaml --out $(OUT)

vet:
	$(GO) vet ./... ./testdata/gen
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The end-to-end tests start versitygw themselves (scripts/s3server.sh) on
# 127.0.0.1 and stop it when they finish; `tools` builds the pinned binary.
# Each fuzz target then runs for FUZZTIME beyond its seed corpus.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./runner:FuzzParse ./runner:FuzzRun ./stages:FuzzLayout ./internal/source:FuzzListXML ./internal/inflate:FuzzInflate ./internal/table:FuzzReadParquet

test: tools vet chromium torch slurm
	$(GO) test -count=1 ./... ./testdata/gen
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz:
	@GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

# The report's browser test renders report.html in headless Chromium from
# Debian (fonts-dejavu-core: Chromium only recommends fonts).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

# The training-set test reads the exports back with PyTorch from Debian
# (run by /usr/bin/python3, not a pyenv shim): torch pinned to Debian 12's
# version; numpy and PIL take security updates, so they are not pinned.
TORCH_PKGS := python3-torch=1.13.1+dfsg-4 python3-numpy python3-pil
torch:
	@/usr/bin/python3 -c 'import torch, numpy, PIL' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TORCH_PKGS); }

# The sharded-run test brings up a single-node Slurm (e2e/slurm_test.go)
# from Debian's slurm-wlm and munge; it starts the daemons itself, no
# systemd needed.
slurm:
	@command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; }

# The soak test (issue 14; not part of `make test`): SOAK_CYCLES cycles
# over SOAK_OBJECTS objects on a local versitygw, with random faults,
# kill -9 and objects added, deleted and overwritten between cycles.
SOAK_CYCLES  ?= 20
SOAK_OBJECTS ?= 100000
soak: tools
	SOAK_CYCLES=$(SOAK_CYCLES) SOAK_OBJECTS=$(SOAK_OBJECTS) $(GO) test -count=1 -tags soak -run '^TestSoak$$' -timeout 3h -v ./e2e

bench: tools build
	./scripts/bench.sh
	./scripts/bench_shard.sh

# The sharded run against one run alone (scripts/bench_shard.sh).
bench-shard: tools build
	./scripts/bench_shard.sh

clean:
	rm -rf bin $(OUT) .kneepipe
