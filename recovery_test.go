package beyondidentity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// When the failed revocation cannot even be recorded, the journal entry
// stays, and recovery takes over: it revokes the token, or records it for
// the background worker once storage works again.
func TestRollbackRevokesWhatCouldNotBeRecorded(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, narrowingScopes)
	fake := e.useFakeClock()
	e.writeRole("too-wide", map[string]any{"scopes": "identities:read,roles:read"})
	failing := e.withFailingStorage()
	prefix := revocationPrefix
	failing.failPut.Store(&prefix)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`})
	resp, err := e.request(logical.ReadOperation, "creds/too-wide", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "the plugin's recovery retries it") {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	fake.Advance(journal.MinAge + time.Minute) // the page is old enough for recovery
	e.rollback()                               // revocation and recording still fail: the entry stays
	if pages := e.journalPages(); len(pages) != 1 {
		t.Fatalf("journal pages: %v", pages)
	}
	failing.failPut.Store(nil)
	e.rollback() // the revocation still fails, but is now recorded
	if pages := e.journalPages(); len(pages) != 0 || len(e.revocationRecords()) != 1 {
		t.Fatalf("journal pages %v, want none and one revocation record", pages)
	}
	if !strings.Contains(e.logs.String(), "recovered a token whose request never finished") {
		t.Error("the rollback left no log line")
	}
	e.fake.ClearFaults()
	fake.Advance(revocationRetryMax)
	e.b.runDue(context.Background(), e.storage)
	e.assertNothingLeft()
	e.assertNoSecretsLogged()
}

// A request that dies after Beyond Identity answered leaves its token in
// the journal; once the page is old enough that no request can still be
// working on it, the background work's recovery revokes the token. A
// static role's token the role holds is left alone.
func TestJournalRecoveryRevokesWhatADeadRequestLeft(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	held, _ := e.fake.TokenByValue(e.staticToken())
	// A role of leases may not share the static role's name.
	e.writeRole("leases", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	// The request's journal entry, and then it dies: its token is never
	// handed over.
	resp := e.issue("leases", nil)
	orphan, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.b.cover(ctx, e.storage, &freshToken{issuedToken: orphan.token()}); err != nil {
		t.Fatal(err)
	}
	heldEntry := orphan.token()
	heldEntry.AccessToken, heldEntry.Role, heldEntry.Static = secretOf(held.Value), "sync", true
	if err := e.b.cover(ctx, e.storage, &freshToken{issuedToken: heldEntry}); err != nil {
		t.Fatal(err)
	}
	if pages := e.journalPages(); len(pages) != 2 {
		t.Fatalf("journal pages %v", pages)
	}

	fake.Advance(journal.MinAge - time.Minute)
	e.rollback()
	if !e.fake.IsActive(orphan.AccessToken.Reveal()) || len(e.journalPages()) != 2 {
		t.Fatal("recovery acted on pages a request could still be working on")
	}
	fake.Advance(2 * time.Minute)
	e.rollback()
	if e.fake.IsActive(orphan.AccessToken.Reveal()) {
		t.Fatal("recovery left the dead request's token valid")
	}
	if !e.fake.IsActive(held.Value) {
		t.Fatal("recovery revoked the token a static role holds")
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left after recovery: %v", pages)
	}
}

// A static role's journal entry never costs it its token: recovery leaves
// a token the role holds alone, and revokes one it does not (a rotation
// that died before storing its token).
func TestRecoveryLeavesAStaticRolesTokenAlone(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	held := e.staticToken()
	minted, _ := e.fake.TokenByValue(held)
	e.mustOK(logical.CreateOperation, "static-roles/other", map[string]any{"scopes": "identities:read"})
	orphan := e.lastToken() // "other"'s, which its role is made to forget below
	if err := e.storage.Delete(context.Background(), staticRolePrefix+"other"); err != nil {
		t.Fatal(err)
	}
	for _, token := range []fakebi.Token{minted, orphan} {
		entry := issuedToken{AccessToken: secretOf(token.Value), TokenID: token.ID, Role: "sync",
			Issuer: e.server.URL + "/v1/tenants/tenant-1/realms/realm-1/applications/app-1", ClientID: testClientID,
			ExpiresAt: token.ExpiresAt.Unix(), EndsBy: token.ExpiresAt.Unix(), Static: true}
		if token.Value == orphan.Value {
			entry.Role = "other"
		}
		if err := e.b.cover(context.Background(), e.storage, &freshToken{issuedToken: entry}); err != nil {
			t.Fatal(err)
		}
	}
	e.fake.ResetCalls()
	fake.Advance(journal.MinAge + time.Minute)
	e.rollback()
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if !e.fake.IsActive(held) || len(revokes) != 1 || revokes[0].Form.Get("token") != orphan.Value {
		t.Fatalf("want only the token no role holds revoked; calls %v", opsOf(e.fake.Calls()))
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v", pages)
	}
}
