# vault-plugin-secrets-beyondidentity: build, test and run. `make help` lists the targets.

SHELL   := /bin/bash
MODULE  := github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity
PLUGIN  := vault-plugin-secrets-beyondidentity
VERSION ?= v0.1.0
BIN     := $(CURDIR)/bin
LDFLAGS := -s -w -X $(MODULE).Version=$(VERSION)
# The plugin is built static, as released, except with GOFLAGS=-race (the
# end-to-end tests' demo and dev runs): the race detector needs cgo.
PLUGIN_CGO := $(if $(findstring -race,$(GOFLAGS)),1,0)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the plugin (static, as released), the fake Beyond Identity server and bi-introspect into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=$(PLUGIN_CGO) go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/$(PLUGIN) ./cmd/$(PLUGIN)
	go build -trimpath -o $(BIN)/fake-beyondidentity ./cmd/fake-beyondidentity
	go build -trimpath -o $(BIN)/bi-introspect ./cmd/bi-introspect

.PHONY: vet
vet: ## Check formatting and run go vet (end-to-end suite included)
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet -tags e2e ./...

.PHONY: lint
lint: ## Run golangci-lint (pinned in tools/golangci-lint; .golangci.yml says why each linter is on)
	@scripts/lint.sh

.PHONY: unit
unit: ## Run the unit tests (in-process, against the fake over loopback) with the race detector
	go test -race -count=1 ./...

.PHONY: bench
bench: ## Run the benchmarks: the plugin's cost over a bare upstream call, as ratios measured in one run
	go test -run '^$$' -bench . -benchtime 200x .

.PHONY: bench-vault
bench-vault: build ## Benchmark the plugin in a real Vault (dev, Raft, 100ms upstream): rates, p50/p99, ratios, RSS; ~2 min; PROFILE=DIR profiles the plugin
	@vault_bin="$$(scripts/vault.sh)" && \
		go run ./cmd/bench-vault -vault "$$vault_bin" -plugin $(BIN)/$(PLUGIN) -plugin-version $(VERSION) \
			$(if $(LATENCY),-latency $(LATENCY)) $(if $(READERS),-readers $(READERS)) $(if $(DURATION),-duration $(DURATION)) $(if $(SETUPS),-setups $(SETUPS)) $(if $(PROFILE),-profile $(PROFILE))

.PHONY: vault
vault: ## Find a Vault (VAULT_BIN, PATH, cache), else download or build the pinned v1.21.0; print its path
	@scripts/vault.sh

.PHONY: tofu
tofu: ## Build once (then find in the cache) OpenTofu and the Vault provider the Terraform test runs; print their paths
	@scripts/tofu.sh && scripts/tofu.sh vault-provider

.PHONY: e2e
e2e: ## Run the end-to-end suite: the plugin in a real Vault server, Vault Agent, and OpenTofu with the Vault provider
	@vault_bin="$$(scripts/vault.sh)" && tofu_bin="$$(scripts/tofu.sh)" && provider_bin="$$(scripts/tofu.sh vault-provider)" && \
		VAULT_BIN="$$vault_bin" TOFU_BIN="$$tofu_bin" TOFU_VAULT_PROVIDER_BIN="$$provider_bin" \
		go test -tags e2e -count=1 -timeout 30m ./e2e/...

.PHONY: e2e-container
e2e-container: ## Run the containerized-plugin test alone: Vault, a private Docker engine and gVisor's runsc (root; Debian: apt-get install docker.io runsc)
	@vault_bin="$$(scripts/vault.sh)" && VAULT_BIN="$$vault_bin" go test -tags e2e -count=1 -timeout 20m -run '^TestContainerizedPlugin$$' -v ./e2e/

.PHONY: test
test: vet unit release-check e2e ## Run the tests CI runs (after make lint): vet, unit tests, the reproducible-release check, end-to-end suite

.PHONY: release
release: ## Build release archives and SHA256SUMS for linux and darwin (amd64, arm64) into dist/: VERSION=vX.Y.Z
	@VERSION=$(VERSION) scripts/release.sh

.PHONY: image
image: ## Build the plugin's container image NAME:X.Y.Z (reproducible, no base image) and docker load it: VERSION=vX.Y.Z [ARCH=arm64] [LOAD=0]
	@VERSION=$(VERSION) $(if $(ARCH),ARCH=$(ARCH)) $(if $(LOAD),LOAD=$(LOAD)) scripts/image.sh

.PHONY: release-check
release-check: ## Build the release twice into temporary folders and check both give the same SHA256SUMS
	@scripts/release-check.sh

.PHONY: demo
demo: ## The main job end to end: Vault, the plugin, a token, Vault Agent, revocation (fake or real tenant)
	@scripts/demo.sh

.PHONY: dev
dev: ## Leave the demo's environment running for hands-on use (Ctrl-C stops it)
	@scripts/dev.sh

.PHONY: register
register: ## Rebuild the plugin and re-register and reload it in the running make dev environment
	@scripts/register.sh

.PHONY: clean
clean: ## Remove build output (the cached Vault, OpenTofu, provider, GoReleaser and golangci-lint binaries stay; see make vault)
	rm -rf $(BIN) .dev dist
