# scripts/tools.mk -- pinned external tools for tests and benchmarks.
#
# Included by the top-level Makefile; also usable on its own:
#     make -f scripts/tools.mk tools
#
# Tools are installed into $(TOOLS_BIN) (gitignored .tools/bin) with
# `go install module@version`, which resolves the tool's own module graph and
# never touches this repository's go.mod/go.sum.

# Do not let the rules below become the including Makefile's default goal.
_tools_mk_default_goal := $(.DEFAULT_GOAL)

VERSITYGW_VERSION ?= v1.8.0
VERSITYGW_PKG     := github.com/versity/versitygw/cmd/versitygw
# MinIO, the e2e tests' second S3 implementation (real MD5 and multipart
# ETags, its own pagination and error bodies). MinIO tags no Go module
# versions: this pseudo-version is its commit of 2026-02-12.
MINIO_VERSION     ?= v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_PKG         := github.com/minio/minio

TOOLS_DIR := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin
VERSITYGW := $(TOOLS_BIN)/versitygw
MINIO     := $(TOOLS_BIN)/minio

GO ?= go

# The binary is a plain file target: it is built only when it is missing, or
# when VERSITYGW_VERSION changes (the per-version stamp is then missing and
# newer than the old binary).
$(VERSITYGW): $(TOOLS_DIR)/stamps/versitygw-$(VERSITYGW_VERSION)
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install $(VERSITYGW_PKG)@$(VERSITYGW_VERSION)
	@touch $@

$(TOOLS_DIR)/stamps/versitygw-$(VERSITYGW_VERSION):
	@mkdir -p $(@D)
	@touch $@

# MinIO builds in a few minutes; like versitygw it is built once per
# version and kept in .tools.
$(MINIO): $(TOOLS_DIR)/stamps/minio-$(MINIO_VERSION)
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install $(MINIO_PKG)@$(MINIO_VERSION)
	@touch $@

$(TOOLS_DIR)/stamps/minio-$(MINIO_VERSION):
	@mkdir -p $(@D)
	@touch $@

.PHONY: tools clean-tools
tools: $(VERSITYGW) $(MINIO)

clean-tools:
	rm -rf $(TOOLS_DIR)

.DEFAULT_GOAL := $(_tools_mk_default_goal)
