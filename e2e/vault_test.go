//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// readyTimeout bounds every wait for a server to come up or go down.
const readyTimeout = vaulttest.ReadyTimeout

// vaultOptions runs the suite's Vault with the race-enabled plugin, at
// trace level so the plugin's own lines reach the log the suite checks, with
// a file audit device, and with every failure message scrubbed of secrets.
// Once each server has stopped, its server log and its audit log are
// checked for any fragment of a secret or token of the run (leaks_test.go):
// over the whole suite, whatever each test checks itself.
func vaultOptions(storage vaulttest.Storage) vaulttest.Options {
	return vaulttest.Options{
		VaultBin: vaultBin,
		Plugin:   vaulttest.Plugin{Bin: pluginBin, Name: pluginName, Version: pluginVersion},
		Storage:  storage,
		Redact:   redactSecrets,
		Audit:    true,
		Inspect:  inspectServer,
	}
}

// startVault starts a fresh Vault server on file storage in dir, initialised
// and unsealed, and stops it when the test ends.
func startVault(t *testing.T, dir string) *vaulttest.Server {
	t.Helper()
	return vaulttest.Start(t, dir, vaultOptions(vaulttest.File))
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
