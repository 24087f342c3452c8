package beyondidentity

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

func TestNothingLeftWhenRecordingTheTokenFails(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	prefix := journal.Prefix
	e.withFailingStorage().failPut.Store(&prefix)
	_, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "recording the new token") || !strings.Contains(err.Error(), "the token was revoked") {
		t.Fatalf("err = %v", err)
	}
	if revokes := len(e.fake.CallsTo(fakebi.OpRevoke)); revokes != 1 {
		t.Fatalf("%d revokes, want 1", revokes)
	}
	e.assertNothingLeft()
}

// A handed-over token whose journal entry cannot be removed keeps its
// credential: the removal is tried again, and recovery meanwhile leaves the
// token alone, as its lease holds it.
func TestAHandedOverTokenSurvivesAFailedJournalRemoval(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	prefix := journal.Prefix
	failing := e.withFailingStorage()
	failing.failDelete.Store(&prefix)
	token := e.issue("sync", nil).Data["access_token"].(string)
	e.b.journal.Flush() // the removal fails, and is put back for later
	fake.Advance(journal.MinAge + time.Minute)
	e.rollback() // recovery skips the handed-over entry; its own delete fails too
	if !e.fake.IsActive(token) {
		t.Fatal("the token of a credential was revoked because its journal entry could not be removed")
	}
	if !strings.Contains(e.logs.String(), "deleting a handed-over page of the journal failed") {
		t.Fatal("the failed removal was not logged")
	}
	failing.failDelete.Store(nil)
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left once storage works again: %v", pages)
	}
	if !e.fake.IsActive(token) {
		t.Fatal("the token of a credential was revoked")
	}
}

func TestNothingLeftWhenTheRequestIsCancelledAfterTheMint(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	// The token exists; the request ends while its id is being learned.
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if len(e.fake.CallsTo(fakebi.OpIntrospect)) == 1 {
				return
			}
		}
	}()
	resp, err := e.requestCtx(ctx, logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "ended before its credential was returned") || resp != nil {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	e.assertNothingLeft()
}

func TestNothingLeftWhenTheTokenHasAlreadyExpired(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	past := base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"stale-token-id","exp":1000000000,"scope":"identities:read"}`))
	stale := "eyJhbGciOiJSUzI1NiJ9." + past + ".c2ln"
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 200, Times: 1,
		Body: `{"access_token":"` + stale + `","token_type":"Bearer","expires_in":3600,"scope":"identities:read"}`})
	_, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "expired before it was issued") || !strings.Contains(err.Error(), "the token was revoked") {
		t.Fatalf("err = %v", err)
	}
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 1 || revokes[0].Form.Get("token") != stale {
		t.Fatal("the stale token was not revoked")
	}
}

// When revoking the token of a failed request fails too, the token is
// recorded, and the plugin revokes it once Beyond Identity recovers.
func TestFailedRequestsTokenIsRevokedInTheBackground(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, narrowingScopes)
	fake := e.useFakeClock()
	e.writeRole("too-wide", map[string]any{"scopes": "identities:read,roles:read"})
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`})
	resp, err := e.request(logical.ReadOperation, "creds/too-wide", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "keeps retrying the revocation in the background") {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	token := e.lastToken()
	if !e.fake.IsActive(token.Value) {
		t.Fatal("the fault should have kept the token alive")
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("the journal entry should give way to the revocation record: %v", pages)
	}
	e.fake.ClearFaults()
	fake.Advance(revocationRetryMax)
	e.b.runDue(context.Background(), e.storage)
	e.assertNothingLeft()
	e.assertNoSecretsLogged()
}

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

// An unusable answer that does not say when its token ends is recorded with
// the latest end it can have, so that nothing takes it for expired.
func TestUnusableAnswerIsRecordedWithItsLatestEnd(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	fake := e.useFakeClock()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(body map[string]any) { delete(body, "expires_in") }})
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{}`})
	_, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "no expires_in") || strings.Contains(err.Error(), "0001-01-01") {
		t.Fatalf("err = %v", err)
	}
	records := e.revocationRecords()
	if len(records) != 1 {
		t.Fatalf("%d revocation records", len(records))
	}
	if end := records[0].endsBy(); end.Before(time.Now().Add(time.Hour-time.Minute)) || end.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("the record ends at %v, want an hour from now, the lifetime asked for", end)
	}
	e.fake.ClearFaults()
	fake.Advance(revocationRetryMax)
	e.b.runDue(context.Background(), e.storage)
	e.assertNothingLeft()
}

func TestAnInactiveNewOpaqueTokenIsNotIssued(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Status: 200, Body: `{"active":false}`})
	resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || resp != nil || !strings.Contains(err.Error(), "reports the token it has just issued inactive") {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	if revokes := len(e.fake.CallsTo(fakebi.OpRevoke)); revokes != 1 {
		t.Fatalf("%d revokes", revokes)
	}
	e.assertNothingLeft()
}

// A config write that is refused leaves the mount's bound on concurrent
// calls as it was.
func TestRefusedConfigKeepsTheConcurrencyBound(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	resp, _ := e.request(logical.UpdateOperation, "config", map[string]any{"client_secret": "wrong", "max_concurrent_requests": 50})
	if resp == nil || !resp.IsError() {
		t.Fatal("the wrong secret was accepted")
	}
	if _, err := e.b.client(context.Background(), e.storage); err != nil {
		t.Fatal(err)
	}
	if got := e.b.limits.issue.Ceiling(); got != defaultMaxConcurrent {
		t.Fatalf("the limiter allows up to %d calls, want the stored %d", got, defaultMaxConcurrent)
	}
}

// A token that ends before recovery could act needs no journal entry; a
// longer one always gets one.
func TestJournalEntryOnlyWhereRecoveryCouldAct(t *testing.T) {
	t.Parallel()
	for ttl, wantEntries := range map[string]int32{"5m": 0, "14m": 0, "16m": 1, "1h": 1} {
		t.Run(ttl, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": ttl})
			recording := &recordingStorage{Storage: e.storage, prefix: journal.Prefix}
			e.storage = recording
			e.issue("sync", nil)
			if got := recording.puts.Load(); got != wantEntries {
				t.Fatalf("a %s token wrote %d journal pages, want %d", ttl, got, wantEntries)
			}
			if pages := e.journalPages(); len(pages) != 0 {
				t.Fatalf("journal pages left after issuing: %v", pages)
			}
		})
	}
}
