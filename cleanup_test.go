package beyondidentity

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// failingStorage fails writes or deletes of chosen keys, to inject storage
// errors.
type failingStorage struct {
	logical.Storage
	failPut, failDelete atomic.Pointer[string] // key prefix to fail
}

var errInjected = errors.New("injected storage failure")

func (s *failingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if prefix := s.failPut.Load(); prefix != nil && strings.HasPrefix(entry.Key, *prefix) {
		return errInjected
	}
	return s.Storage.Put(ctx, entry)
}

func (s *failingStorage) Delete(ctx context.Context, key string) error {
	if prefix := s.failDelete.Load(); prefix != nil && strings.HasPrefix(key, *prefix) {
		return errInjected
	}
	return s.Storage.Delete(ctx, key)
}

// withFailingStorage puts a failingStorage in front of the backend's.
func (e *testEnv) withFailingStorage() *failingStorage {
	failing := &failingStorage{Storage: e.storage}
	e.storage = failing
	return failing
}

// assertNothingLeft checks that every token minted since configure is dead
// at the fake, and that no write-ahead entry remains.
func (e *testEnv) assertNothingLeft() {
	e.t.Helper()
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			e.t.Errorf("token %s was left valid", token.ID)
		}
	}
	if keys, err := framework.ListWAL(context.Background(), e.storage); err != nil || len(keys) != 0 {
		e.t.Errorf("write-ahead entries left: %v %v", keys, err)
	}
}

func TestNothingLeftWhenRecordingTheTokenFails(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	prefix := "wal/"
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

func TestNothingLeftWhenClearingTheRecordFails(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	prefix := "wal/"
	failing := e.withFailingStorage()
	failing.failDelete.Store(&prefix)
	_, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "clearing the write-ahead entry") || !strings.Contains(err.Error(), "the token was revoked") {
		t.Fatalf("err = %v", err)
	}
	// The entry could not be deleted either; the rollback revokes the
	// token again, harmlessly, and clears it.
	failing.failDelete.Store(nil)
	e.rollback()
	e.assertNothingLeft()
}

func TestNothingLeftWhenTheRequestIsCancelledAfterTheMint(t *testing.T) {
	e := newConfiguredBackend(t, referentialTokens)
	// The token exists; the request ends while its id is being learned.
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Delay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	resp, err := e.requestCtx(ctx, logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), "ended before its credential was returned") || resp != nil {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	e.assertNothingLeft()
}

func TestNothingLeftWhenTheTokenHasAlreadyExpired(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
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

// When revoking the token of a failed request fails too, its write-ahead
// entry stays, and Vault's rollback revokes it later.
func TestRollbackRevokesWhatAFailedRequestCouldNot(t *testing.T) {
	e := newConfiguredBackend(t, narrowingScopes)
	e.writeRole("too-wide", map[string]any{"scopes": "identities:read,roles:read"})
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`})
	resp, err := e.request(logical.ReadOperation, "creds/too-wide", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "unless Vault's rollback revokes it first") {
		t.Fatalf("resp %s err %v", errorText(resp), err)
	}
	token := e.lastToken()
	if !e.fake.IsActive(token.Value) {
		t.Fatal("the fault should have kept the token alive")
	}
	e.rollback() // still failing: the entry stays
	if keys, _ := framework.ListWAL(context.Background(), e.storage); len(keys) != 1 {
		t.Fatalf("write-ahead entries: %v", keys)
	}
	e.fake.ClearFaults()
	e.rollback()
	e.assertNothingLeft()
	if !strings.Contains(e.logs.String(), "rolled back a token whose request never finished") {
		t.Error("the rollback left no log line")
	}
	e.assertNoSecretsLogged()
}

// rollback runs Vault's periodic rollback now, whatever the entries' age.
func (e *testEnv) rollback() {
	e.t.Helper()
	_, _ = e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	})
}

// An unusable answer's token is recorded before it is revoked, so that a
// failing revocation is retried by the rollback too.
func TestRollbackRevokesAnUnusableTokenWhoseRevocationFailed(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.rewriteTokenAnswers(func(body map[string]any) { body["token_type"] = "DPoP" })
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{}`})
	_, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err == nil || !strings.Contains(err.Error(), `token_type is "DPoP"`) || !strings.Contains(err.Error(), "unless Vault's rollback revokes it first") {
		t.Fatalf("err = %v", err)
	}
	e.fake.ClearFaults()
	e.rollback()
	e.assertNothingLeft()
}

func TestAnInactiveNewOpaqueTokenIsNotIssued(t *testing.T) {
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
	e := newTestBackend(t)
	e.configure()
	resp, _ := e.request(logical.UpdateOperation, "config", map[string]any{"client_secret": "wrong", "max_concurrent_requests": 50})
	if resp == nil || !resp.IsError() {
		t.Fatal("the wrong secret was accepted")
	}
	if _, err := e.b.client(context.Background(), e.storage); err != nil {
		t.Fatal(err)
	}
	if got := e.b.limiter.Capacity(); got != defaultMaxConcurrent {
		t.Fatalf("the limiter allows %d calls, want the stored %d", got, defaultMaxConcurrent)
	}
}
