package beyondidentity

// A token is revoked with the secret that minted it.

import (
	"fmt"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestRetainedSecretsDoNotMultiplyRevokeCalls: however many secrets were
// written since a token was minted, its revocation tries the current
// secret, then the one that minted it, never each retained one.
func TestRetainedSecretsDoNotMultiplyRevokeCalls(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	lease := e.issue("sync", nil)
	for i := range 60 {
		e.mustOK(logical.UpdateOperation, "config", map[string]any{
			"client_secret": fmt.Sprintf("unverified-%d", i), "verify_connection": false})
	}
	e.fake.ResetCalls()
	if _, err := e.revoke(lease.Secret); err != nil {
		t.Fatalf("revoking the lease: %v", err)
	}
	if calls := e.fake.CallsTo(fakebi.OpRevoke); len(calls) > 2 || e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatalf("%d revoke calls after 60 config writes: want at most 2, and the token revoked", len(calls))
	}
}

// TestALeaseFromBeforeFingerprintsTriesEveryRetainedSecret: a lease whose
// data names no secret (written by an earlier version) is revoked with the
// client's retained secrets, newest first, as before.
func TestALeaseFromBeforeFingerprintsTriesEveryRetainedSecret(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	lease := e.issue("sync", nil)
	delete(lease.Secret.InternalData, "secret_fingerprint")
	for i := range 3 {
		e.mustOK(logical.UpdateOperation, "config", map[string]any{
			"client_secret": fmt.Sprintf("unverified-%d", i), "verify_connection": false})
	}
	e.fake.ResetCalls()
	if _, err := e.revoke(lease.Secret); err != nil || e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatalf("revoking a lease without a fingerprint: %v", err)
	}
	if calls := e.fake.CallsTo(fakebi.OpRevoke); len(calls) != 4 {
		t.Fatalf("%d revoke calls: want the current secret and the 3 retained ones, the working one last", len(calls))
	}
}
