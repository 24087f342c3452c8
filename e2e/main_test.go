//go:build e2e

// Package e2e runs the plugin inside a real Vault server and a real Vault
// Agent, against the fake Beyond Identity server in the test process.
//
//	VAULT_BIN=$(scripts/vault.sh) go test -tags e2e ./e2e
//
// make e2e does exactly that, and sets TOFU_BIN and TOFU_VAULT_PROVIDER_BIN
// for the Terraform test from scripts/tofu.sh. Without VAULT_BIN the suite
// looks for the cached build of scripts/vault.sh; when there is none it
// skips, except under CI=true, where it fails. Without TOFU_BIN the
// Terraform test runs scripts/tofu.sh itself, which builds OpenTofu and the
// provider once.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pluginName is the plugin's catalog name; pluginVersion the version the
// suite builds it with and registers it under.
const (
	pluginName    = "vault-plugin-secrets-beyondidentity"
	pluginVersion = "v0.1.0-e2e"
	modulePath    = "github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity"
	vaultVersion  = "v1.21.0"
)

var (
	// vaultBin is the Vault binary every test runs.
	vaultBin string
	// pluginBin is the plugin, built once with the race detector so that
	// Vault's log reports any data race in it.
	pluginBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	vaultBin, err = findVault()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: SKIP: %v\n", err)
		return 0
	}
	buildDir, err := os.MkdirTemp("", "bi-e2e-build-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(buildDir)
	pluginBin = filepath.Join(buildDir, pluginName)
	if err := buildPlugin(pluginBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the plugin:", err)
		return 1
	}
	return m.Run()
}

// buildPlugin builds the plugin into out with the race detector and the
// suite's version, plus any extra -X settings a test needs.
func buildPlugin(out string, extraX ...string) error {
	return buildPluginFrom("..", out, pluginVersion, extraX...)
}

// buildPluginFrom builds the plugin in the source tree src into out, with
// the race detector, reporting version (which must be the version it is
// registered under), plus any extra -X settings.
func buildPluginFrom(src, out, version string, extraX ...string) error {
	ldflags := "-X " + modulePath + ".Version=" + version
	for _, x := range extraX {
		ldflags += " -X " + x
	}
	build := exec.Command("go", "build", "-race", "-o", out, "-ldflags", ldflags, "./cmd/"+pluginName)
	build.Dir = src
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}

// findVault returns VAULT_BIN, or the binary scripts/vault.sh caches.
func findVault() (string, error) {
	if bin := os.Getenv("VAULT_BIN"); bin != "" {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("VAULT_BIN=%s: %w", bin, err)
		}
		return path, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no VAULT_BIN and no cache folder: %w", err)
	}
	cached := filepath.Join(cache, pluginName, "vault-"+vaultVersion)
	if _, err := os.Stat(cached); err != nil {
		return "", fmt.Errorf("no Vault binary: set VAULT_BIN or build one with scripts/vault.sh (make vault); looked for %s", cached)
	}
	return cached, nil
}
