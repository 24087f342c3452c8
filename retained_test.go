package beyondidentity

// Retained credentials: kept until their retention ends, and no longer.

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestThePeriodicPruneKeepsRetainedCredentialsUntilTheirRetentionEnds: the
// periodic function drops retained credentials the moment their retention
// has run out, and not a second before.
func TestThePeriodicPruneKeepsRetainedCredentialsUntilTheirRetentionEnds(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.switchToSecondApplication()
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 1 {
		t.Fatalf("config/retained lists %v after the move", keys)
	}
	fake.Advance(retention - time.Second)
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 1 {
		t.Fatalf("a second before their retention ends, config/retained lists %v", keys)
	}
	fake.Advance(2 * time.Second)
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 0 {
		t.Fatalf("once their retention has ended, config/retained still lists %v", keys)
	}
}

// retainedIDs lists config/retained.
func (e *testEnv) retainedIDs() []string {
	e.t.Helper()
	keys, _ := e.mustOK(logical.ListOperation, "config/retained/", nil).Data["keys"].([]string)
	return keys
}

// A secret rotation keeps every lease revocable: a lease issued before
// it is revoked with the new secret; after a bogus secret written without
// verification, a lease is revoked with the secret that minted it, which
// was retained, in two calls at most; and one whose minting secret Beyond
// Identity no longer accepts stays a pending revocation until a working
// secret is written again.
func TestASecretRotationKeepsEveryLeaseRevocable(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	before := e.issue("sync", nil)
	earlier := e.issue("sync", nil)
	// Rotated in the Admin Console: Beyond Identity accepts only the new one.
	rotated := testApp()
	rotated.ClientSecret = "rotated-secret"
	e.fake.AddApplication(rotated)
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": "rotated-secret"})
	if _, err := e.revoke(earlier.Secret); err != nil || e.fake.IsActive(earlier.Data["access_token"].(string)) {
		t.Fatalf("a lease issued before the rotation is not revoked with the new secret: %v", err)
	}
	after := e.issue("sync", nil)
	// Someone writes a secret that does not work, unverified.
	resp := e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": "bogus", "verify_connection": false})
	if !strings.Contains(warningsOf(resp), "are kept") {
		t.Fatalf("the bogus write does not say the working secret is kept: %s", warningsOf(resp))
	}
	e.fake.ResetCalls()
	if _, err := e.revoke(after.Secret); err != nil || e.fake.IsActive(after.Data["access_token"].(string)) {
		t.Fatalf("the lease issued after the rotation is not revoked with the retained secret that minted it: %v", err)
	}
	if calls := e.fake.CallsTo(fakebi.OpRevoke); len(calls) != 2 {
		t.Fatalf("%d revoke calls: want the current secret, then the one that minted the token", len(calls))
	}
	// The secret that minted the first lease no longer works anywhere.
	if _, err := e.revoke(before.Secret); err == nil || !e.fake.IsActive(before.Data["access_token"].(string)) {
		t.Fatalf("a revocation whose secrets Beyond Identity refuses counted as done: %v", err)
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": "rotated-secret"})
	if _, err := e.revoke(before.Secret); err != nil || e.fake.IsActive(before.Data["access_token"].(string)) {
		t.Fatalf("once a working secret is written again, the pending lease is not revoked: %v", err)
	}
	e.assertNoSecretsLogged()
}

// After a move from A to B, re-pointing at A with a made-up secret
// keeps A's real one: retained credentials go only by their retention or
// an operator's delete.
func TestAMadeUpSecretNeverDropsARetainedOne(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	lease := e.issue("sync", nil)
	e.switchToSecondApplication()
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"application_id": testApplication, "client_id": testClientID,
		"client_secret": "made-up", "verify_connection": false})
	if _, err := e.revoke(lease.Secret); err != nil {
		t.Fatalf("revoking a lease of A after A was re-pointed with a made-up secret: %v", err)
	}
	if e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatal("the lease's token is still valid")
	}
}

// Beyond Identity answers 200 to a revocation by another application and
// ignores it: an old lease must be revoked with its own application's
// credentials, kept after the config moved.
func TestCredsOldLeaseIsRevokedWithItsOwnApplication(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.switchToSecondApplication()
	e.fake.ResetCalls()

	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoking a lease of the previous application: %v", err)
	}
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 1 || revokes[0].BasicUser != testClientID || revokes[0].BasicPassword != testClientSecret || revokes[0].Status != 200 {
		t.Fatalf("want one revoke with the first application's credentials, got %v", opsOf(e.fake.Calls()))
	}
	if e.fake.IsActive(token) {
		t.Fatal("the token is still active")
	}
}

// The client counts as much as the application: a lease issued to another
// client of the same application is not revoked with this one's
// credentials, which Beyond Identity would ignore.
func TestCredsLeaseOfAnotherClientIsNotRevokedWithThisOne(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	lease, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	lease.ClientID = "client-retired"
	other := *resp.Secret
	other.InternalData = lease.internalData()
	other.InternalData["secret_type"] = secretTypeToken
	e.fake.ResetCalls()
	if _, err := e.revoke(&other); err == nil || !strings.Contains(err.Error(), "to client client-retired") {
		t.Fatalf("revoking another client's token: %v", err)
	}
	if calls := len(e.fake.CallsTo(fakebi.OpRevoke)); calls != 0 {
		t.Fatalf("%d revoke calls made with credentials Beyond Identity would ignore", calls)
	}
}

func TestCredsRevokeAfterConfigDelete(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	e.mustOK(logical.DeleteOperation, "config", nil)
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("a lease issued before the config was deleted must still be revoked: %v", err)
	}
	if e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("the token is still active")
	}
}
