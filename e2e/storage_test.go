//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// TestCredsOnDevAndIntegratedStorage runs a credential's life on the two
// servers the benchmark measures, the dev server in memory and one node on
// integrated storage, which a restart must not lose.
func TestCredsOnDevAndIntegratedStorage(t *testing.T) {
	for _, storage := range []vaulttest.Storage{vaulttest.Dev, vaulttest.Raft} {
		t.Run(storage.String(), func(t *testing.T) {
			e := newEnvOn(t, storage)
			e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
			kept, revoked := e.issue("r"), e.issue("r")
			if err := e.vault.Client.Sys().Revoke(revoked.LeaseID); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			eventually(t, 30*time.Second, "the upstream revocation", func() bool { return !e.fake.IsActive(accessToken(revoked)) })
			if storage == vaulttest.Raft {
				e.vault.Restart()
			}
			if err := e.vault.Client.Sys().Revoke(kept.LeaseID); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			eventually(t, 30*time.Second, "the upstream revocation", func() bool { return !e.fake.IsActive(accessToken(kept)) })
			e.assertRevokes(2)
		})
	}
}
