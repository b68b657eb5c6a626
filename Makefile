# kneepipe: two commands on a fresh machine.
#   make run    the default pipeline on the bundled sample (no network, no credentials)
#   make test   unit tests, then end-to-end tests through a real S3 server (versitygw)
GO      ?= go
BIN     := bin/kneepipe
OUT     ?= out

include scripts/tools.mk

.PHONY: all build run test unit e2e bench fuzz vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kneepipe

run: build
	./$(BIN) run -f pipeline.yaml --out $(OUT)

vet:
	$(GO) vet ./... ./testdata/gen
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The end-to-end tests start versitygw themselves (scripts/s3server.sh) on
# 127.0.0.1 and stop it when they finish; `tools` builds the pinned binary.
test: tools vet
	$(GO) test -count=1 ./... ./testdata/gen

bench: tools build
	./scripts/bench.sh

clean:
	rm -rf bin $(OUT) .kneepipe
