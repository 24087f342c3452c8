# vault-plugin-secrets-beyondidentity: build, test and run. `make help` lists the targets.

SHELL   := /bin/bash
MODULE  := github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity
PLUGIN  := vault-plugin-secrets-beyondidentity
VERSION ?= v0.1.0
BIN     := $(CURDIR)/bin
LDFLAGS := -s -w -X $(MODULE).Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the plugin and the fake Beyond Identity server into bin/
	@mkdir -p $(BIN)
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/$(PLUGIN) ./cmd/$(PLUGIN)
	go build -trimpath -o $(BIN)/fake-beyondidentity ./cmd/fake-beyondidentity

.PHONY: vet
vet: ## Check formatting and run go vet
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

.PHONY: unit
unit: ## Run the unit tests (in-process, against the fake over loopback) with the race detector
	go test -race -count=1 ./...

.PHONY: test
test: vet unit ## Run everything CI runs: vet and the race-enabled tests

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
