package beyondidentity

// The life of a fresh token: minted, covered, checked, then kept or
// discarded, whatever fails on the way.

import (
	"context"
	"encoding/base64"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
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

// slowJournal makes every journal write take a few milliseconds, as a
// commit on integrated storage does, and counts them.
type slowJournal struct {
	logical.Storage
	writes atomic.Int32
}

func (s *slowJournal) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.slow(entry.Key)
	return s.Storage.Put(ctx, entry)
}

func (s *slowJournal) Delete(ctx context.Context, key string) error {
	s.slow(key)
	return s.Storage.Delete(ctx, key)
}

func (s *slowJournal) slow(key string) {
	if strings.HasPrefix(key, journal.Prefix) {
		s.writes.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
}

// Credentials issued at once share journal writes: with 16 requests at
// once, far fewer than the two writes per credential a write-ahead entry
// each would cost; and every page is gone when they are done.
func TestConcurrentCredentialsShareJournalWrites(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	slow := &slowJournal{Storage: e.storage}
	e.storage = slow
	const requests = 16
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := e.request(logical.ReadOperation, "creds/sync", nil); err != nil || resp.IsError() {
				t.Errorf("issue: %v %s", err, errorText(resp))
			}
		}()
	}
	wg.Wait()
	if writes := slow.writes.Load(); writes >= requests {
		t.Fatalf("%d journal writes for %d credentials issued at once: they should share writes", writes, requests)
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v", pages)
	}
	// The metrics tell operators the same: every write, every token.
	families := e.scrape()
	commits := value(families, "beyondidentity_journal_commits_total", map[string]string{"op": "cover"}) +
		value(families, "beyondidentity_journal_commits_total", map[string]string{"op": "handover"})
	for _, op := range []string{"cover", "handover"} {
		if tokens := value(families, "beyondidentity_journal_tokens_total", map[string]string{"op": op}); tokens != requests {
			t.Errorf("journal_tokens_total{op=%q} = %v, want %d", op, tokens, requests)
		}
	}
	if commits != float64(slow.writes.Load()) {
		t.Errorf("journal_commits_total = %v, the storage saw %d writes", commits, slow.writes.Load())
	}
	t.Logf("%d credentials issued at once cost %d journal writes", requests, slow.writes.Load())
}

// An opaque token whose introspection shows a later end than its answer
// is covered for that end, and a failed revocation never counts it ended
// before then.
func TestAnOpaqueTokenThatLivesLongerThanItsAnswerSaysStaysOwned(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) {
		app.TokenFormat, app.Outlive = fakebi.Referential, time.Hour
	})
	fake := e.useFakeClock()
	e.writeRole("short", map[string]any{"scopes": "identities:read", "ttl": "2m"})
	// The answer says what was asked; the token lives an hour longer.
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(answer map[string]any) { answer["expires_in"] = 120 }})
	recording := &recordingStorage{Storage: e.storage, prefix: journal.Prefix}
	e.storage = recording
	lease := e.issue("short", nil)
	if recording.puts.Load() != 1 {
		t.Fatalf("%d journal pages for a token that lives an hour: want it covered", recording.puts.Load())
	}
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	fake.Advance(3 * time.Minute)
	if _, err := e.revoke(lease.Secret); err == nil {
		t.Fatal("a failed revocation of a token that lives for another hour counted as done")
	}
	if records := e.revocationRecords(); len(records) != 1 || records[0].revoked() {
		t.Fatal("want the failed revocation recorded and retried")
	}
}

func TestCredsReferentialTokenIntrospectedForID(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	resp := e.issue("sync", nil)
	minted := e.lastToken()
	if resp.Data["token_id"] != minted.ID || !expiresAtMatches(resp.Data["expires_at"], minted.ExpiresAt) {
		t.Fatalf("token_id %v expires_at %v; fake says %s %v", resp.Data["token_id"], resp.Data["expires_at"], minted.ID, minted.ExpiresAt)
	}
	if ops := opsOf(e.fake.Calls()); !reflect.DeepEqual(ops, []string{"token", "introspect"}) {
		t.Fatalf("calls = %v", ops)
	}
	introspect := e.fake.CallsTo(fakebi.OpIntrospect)[0]
	assertBasicAuth(t, introspect)
	if introspect.Form.Get("token") != minted.Value {
		t.Fatal("introspection did not carry the token")
	}
	if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(minted.Value) {
		t.Fatalf("revoking the referential token: %v", err)
	}
}

func TestCredsReferentialIntrospectionFailureStillIssues(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"down"}`})
	resp := e.issue("sync", nil)
	if resp.Data["token_id"] != "" || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "token_id is unknown") {
		t.Fatalf("token_id %q warnings %v", resp.Data["token_id"], resp.Warnings)
	}
	if !e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("the credential should still be issued")
	}
}

// An opaque token whose introspection is active but gives no jti is issued,
// with an empty token_id and a warning.
func TestCredsIntrospectionWithoutJTI(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Status: 200, Body: `{"active":true,"scope":"identities:read"}`})
	resp := e.issue("sync", nil)
	if resp.Data["token_id"] != "" || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "did not give the opaque token's jti") {
		t.Fatalf("token_id %q warnings %v", resp.Data["token_id"], resp.Warnings)
	}
	if !e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("the credential should still be issued")
	}
}

// TestIntrospectionNeverMovesATokensLatestEndSooner: an opaque token whose
// introspection says it ends within a minute, while its answer said an
// hour, gets a lease that ends with the minute, but the plugin still counts
// it alive for the hour: a failed revocation ten minutes on is not done.
func TestIntrospectionNeverMovesATokensLatestEndSooner(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	fake := e.useFakeClock()
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Rewrite: func(answer map[string]any) {
		answer["exp"] = fake.Now().Add(time.Minute).Unix()
	}})
	lease := e.issue("sync", nil)
	if lease.Secret.MaxTTL > time.Minute+time.Second {
		t.Fatalf("lease lifetime %s: want the introspected end, the earliest, to cap it", lease.Secret.MaxTTL)
	}
	e.fake.ClearFaults()
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, Body: `{}`})
	fake.Advance(10 * time.Minute)
	if _, err := e.revoke(lease.Secret); err == nil {
		t.Fatal("a failed revocation of a token its answer gave an hour counted as done after ten minutes")
	}
	if records := e.revocationRecords(); len(records) != 1 || records[0].revoked() {
		t.Fatal("want the failed revocation recorded and retried")
	}
}

// TestAnOpaqueTokenIsCoveredBeforeItIsIntrospected: introspection may take
// as long as request_timeout and the node may die meanwhile, so an opaque
// token is in the journal before introspection is asked, with the longest
// life a token may have as its end, whatever its answer said: recovery
// never counts it ended sooner.
func TestAnOpaqueTokenIsCoveredBeforeItIsIntrospected(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	fake := e.useFakeClock()
	var coveredUntil atomic.Int64
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Rewrite: func(map[string]any) {
		coveredUntil.Store(e.latestJournalEnd())
	}})
	e.issue("sync", nil)
	if want := fake.Now().Add(biclient.MaxTokenLifetime).Unix(); coveredUntil.Load() < want {
		t.Fatalf("while introspected, the token was covered until %d, want at least %d (its send time plus %s)",
			coveredUntil.Load(), want, biclient.MaxTokenLifetime)
	}
}

// latestJournalEnd is the latest end of the tokens the journal's pages
// cover now; 0 when there are none.
func (e *testEnv) latestJournalEnd() int64 {
	ctx := context.Background()
	keys, err := e.storage.List(ctx, journal.Prefix)
	if err != nil {
		e.t.Error(err)
		return 0
	}
	var latest int64
	for _, key := range keys {
		entry, err := e.storage.Get(ctx, journal.Prefix+key)
		var page struct {
			Entries map[string]journalEntry `json:"entries"`
		}
		if err != nil || entry == nil || entry.DecodeJSON(&page) != nil {
			continue
		}
		for _, covered := range page.Entries {
			latest = max(latest, covered.EndsBy)
		}
	}
	return latest
}

// A fresh token's id and ends are held once, in issuedToken, in the whole
// seconds its records store: Beyond Identity's ends are whole seconds, so a
// lease's lifetime follows the stored end to the second, at a clock between
// two seconds too, whether the answer, a JWT or introspection said it.
func TestALeaseFollowsItsTokensStoredEndToTheSecond(t *testing.T) {
	t.Parallel()
	for name, app := range map[string]func(*fakebi.Application){"jwt": func(*fakebi.Application) {}, "opaque": referentialTokens} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newConfiguredBackend(t, app)
			e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
			fake := e.useFakeClock()
			fake.Set(fake.Now().Truncate(time.Second).Add(1700 * time.Millisecond))
			// The token ends sooner than asked: the lease ends with it.
			e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(answer map[string]any) { answer["expires_in"] = 1800 }})
			resp := e.issue("sync", nil)
			lease, err := leaseFromInternal(resp.Secret.InternalData)
			if err != nil {
				t.Fatal(err)
			}
			end := lease.expiresAt()
			if want := ceilSeconds(end.Sub(fake.Now())); resp.Secret.MaxTTL != want || resp.Data["expires_at"] != end.Format(time.RFC3339) {
				t.Fatalf("lease lifetime %v, expires_at %v: want %v, to the stored end %v", resp.Secret.MaxTTL, resp.Data["expires_at"], want, end)
			}
			if resp.Data["token_id"] != lease.TokenID || lease.TokenID != e.lastToken().ID {
				t.Fatalf("token_id %v, stored %q, minted %q", resp.Data["token_id"], lease.TokenID, e.lastToken().ID)
			}
		})
	}
}
