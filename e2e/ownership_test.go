//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// The tokens the plugin holds outside a lease stay owned through teardown,
// a secret rotation and an outage, in a real Vault, counted at the fake.

// pendingRevocations lists revocations/ through the API (nil when empty:
// Vault answers an empty list with a 404).
func (e *env) pendingRevocations() []any {
	e.t.Helper()
	list, err := e.vault.Client.Logical().List("beyondidentity/revocations")
	if err != nil {
		e.t.Fatalf("list revocations: %s", redactSecrets(err.Error()))
	}
	if list == nil {
		return nil
	}
	keys, _ := list.Data["keys"].([]any)
	return keys
}

// activeTokens lists the ids of the tokens the fake minted that still work.
func (e *env) activeTokens() []string {
	var active []string
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			active = append(active, token.ID)
		}
	}
	return active
}

// TestTeardownInTheDocumentedOrderLeavesNoTokenActive: deleting the config
// is refused while a static role exists, naming it; the teardown order of
// the operator notes (docs/operations.md) then leaves nothing valid
// upstream: dynamic leases, a static role's current and retired tokens.
func TestTeardownInTheDocumentedOrderLeavesNoTokenActive(t *testing.T) {
	e := newEnv(t)
	e.tokensOutliveTheirLeases() // a token dead at the end was revoked, not expired
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	for range 3 {
		e.issue("r")
	}
	e.write("beyondidentity/static-roles/ci", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	e.write("beyondidentity/rotate-role/ci", nil) // a retired token in its grace
	if active := e.activeTokens(); len(active) != 5 {
		t.Fatalf("%d tokens active before the teardown, want 3 leases and the static role's 2", len(active))
	}

	out, err := e.vault.CLI("delete", "beyondidentity/config")
	if err == nil || !strings.Contains(out, "static roles exist") || !strings.Contains(out, "vault delete beyondidentity/static-roles/ci") {
		t.Fatalf("deleting the config with a static role: err %v, output %q", err, redactSecrets(out))
	}
	e.vault.MustCLI("delete", "beyondidentity/static-roles/ci")
	eventually(t, 30*time.Second, "revocations/ empty", func() bool { return len(e.pendingRevocations()) == 0 })
	e.vault.MustCLI("delete", "beyondidentity/config")
	e.vault.MustCLI("secrets", "disable", "beyondidentity")
	if active := e.activeTokens(); len(active) != 0 {
		t.Fatalf("tokens still active upstream after the teardown: %v", active)
	}
	for _, token := range e.fake.Tokens() {
		if !e.revokedNotExpired(token.Value) {
			t.Fatalf("token %s was not revoked", token.ID)
		}
	}
}

// TestLeasesSurviveASecretRotationAndABogusSecret: a lease issued before
// the secret is rotated (Beyond Identity accepting only the new one from
// then on) is revoked upstream; then, after a bogus secret written without
// verification, a lease is revoked with the secret that minted it, the
// bogus one tried first; and a lease whose minting secret Beyond Identity no
// longer accepts stays pending until a working secret is written again.
func TestLeasesSurviveASecretRotationAndABogusSecret(t *testing.T) {
	const rotated, bogus = "rotated+secret/Never%Printed", "bogus-secret-Never-Printed"
	e := newEnv(t)
	t.Cleanup(func() {
		checkVaultLog(t, e.vault.LogText(), []string{rotated, bogus}, e.fake.Tokens())
	})
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	first, kept := e.issue("r"), e.issue("r")

	e.fake.AddApplication(suiteApplication(func(app *fakebi.Application) { app.ClientSecret = rotated }, defaultScopes...))
	e.write("beyondidentity/config", map[string]any{"client_secret": rotated})
	e.fake.ResetCalls()
	e.vault.MustCLI("lease", "revoke", "-sync", first.LeaseID)
	if e.fake.IsActive(accessToken(first)) {
		t.Fatal("a lease issued before the rotation was not revoked upstream")
	}
	second := e.issue("r")

	e.write("beyondidentity/config", map[string]any{"client_secret": bogus, "verify_connection": false})
	e.fake.ResetCalls()
	if out, err := e.vault.CLI("lease", "revoke", "-sync", second.LeaseID); err != nil || e.fake.IsActive(accessToken(second)) {
		t.Fatalf("revoking a lease issued under the rotated secret after a bogus one: %v %s", err, redactSecrets(out))
	}
	// The bogus secret first, then the rotated one that minted the token.
	calls := e.fake.CallsTo(fakebi.OpRevoke)
	if len(calls) != 2 || calls[0].BasicPassword != bogus || calls[0].Status != 401 || calls[1].BasicPassword != rotated || calls[1].Status != 200 {
		t.Fatalf("%d revoke calls: want the bogus secret refused, then the minting one accepted", len(calls))
	}
	if _, err := e.vault.CLI("lease", "revoke", "-sync", kept.LeaseID); err == nil || !e.fake.IsActive(accessToken(kept)) {
		t.Fatal("a lease whose secrets Beyond Identity both refuses counted as revoked")
	}
	e.write("beyondidentity/config", map[string]any{"client_secret": rotated})
	if out, err := e.vault.CLI("lease", "revoke", "-sync", kept.LeaseID); err != nil || e.fake.IsActive(accessToken(kept)) {
		t.Fatalf("once the working secret is written again, the pending lease is not revoked: %v %s", err, redactSecrets(out))
	}
}

// TestRevocationsShowsWhatAnOutageLeavesPending: during an outage, the
// failed revocation is listed (never its token), and the list is empty once
// Beyond Identity is back.
func TestRevocationsShowsWhatAnOutageLeavesPending(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	creds := e.issue("r")
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable"}`})
	if _, err := e.vault.CLI("lease", "revoke", "-sync", creds.LeaseID); err == nil {
		t.Fatal("the revocation succeeded during the outage")
	}
	keys := e.pendingRevocations()
	if len(keys) != 1 {
		t.Fatalf("revocations/ lists %v during the outage, want the one token", keys)
	}
	pending := e.read("beyondidentity/revocations/" + keys[0].(string))
	token, _ := e.fake.TokenByValue(accessToken(creds))
	if pending.Data["token_id"] != token.ID || pending.Data["kind"] != "lease" || pending.Data["role"] != "r" ||
		!strings.Contains(pending.Data["last_error"].(string), "503") {
		t.Fatalf("revocations/%s reads %v", keys[0], pending.Data)
	}
	out := e.vault.MustCLI("list", "-detailed", "beyondidentity/revocations")
	if strings.Contains(out, accessToken(creds)) || !strings.Contains(out, token.ID) {
		t.Fatalf("the CLI's list shows the token, or not its id: %s", redactSecrets(out))
	}
	e.fake.ClearFaults()
	eventually(t, 90*time.Second, "revocations/ empty after the outage", func() bool { return len(e.pendingRevocations()) == 0 })
	if e.fake.IsActive(accessToken(creds)) {
		t.Fatal("the token is still valid after the outage")
	}
}
