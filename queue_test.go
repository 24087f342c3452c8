package beyondidentity

// The one background schedule: what it finds again in storage.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestARecordThatCannotBeDecodedIsSkippedNotAReasonToStop: among the
// failed revocations in storage, one that does not decode is logged and
// skipped, and the records after it are still scheduled.
func TestARecordThatCannotBeDecodedIsSkippedNotAReasonToStop(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	ctx := context.Background()
	next := time.Now().Add(time.Hour)
	for _, key := range []string{"a-first", "c-last"} {
		token := issuedToken{AccessToken: secretOf("token-" + key), Role: "sync", ExpiresAt: next.Unix()}
		record := &revocationRecord{storedToken: stored(token), Kind: kindLease, Attempts: 1, Next: next}
		if err := writeRevocation(ctx, e.storage, key, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.storage.Put(ctx, &logical.StorageEntry{Key: revocationPrefix + "b-garbled", Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	if err := e.b.populateQueue(ctx, e.storage); err != nil {
		t.Fatalf("populateQueue: %v", err)
	}
	for _, key := range []string{"a-first", "c-last"} {
		if !e.b.queue.known(revocationPrefix + key) {
			t.Errorf("record %s is not scheduled", key)
		}
	}
	if e.b.queue.known(revocationPrefix+"b-garbled") || e.b.pendingRevocations.len() != 2 {
		t.Errorf("the garbled record is scheduled, or the pending count is %d, not 2", e.b.pendingRevocations.len())
	}
}

// One storage error while loading the background work does not stop
// static rotations, nor the retries of a retired token's revocation: the
// periodic function finds them again.
func TestAStorageErrorAtLoadStopsNoBackgroundWork(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	// The first token is retired; its revocation fails and is queued.
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	e.advance(fake, 6*time.Minute)
	if len(e.revocationRecords()) != 1 {
		t.Fatal("want the retired token's failed revocation recorded")
	}
	e.fake.ClearFaults()

	// A restart whose load of the background work meets a storage error.
	e.b.Cleanup(context.Background())
	failing := e.withFailingStorage()
	everything := ""
	failing.failList.Store(&everything)
	restarted := e.restartedBackend(fake)
	waiting := fake.TimerCreated()
	if err := restarted.Initialize(context.Background(), &logical.InitializationRequest{Storage: failing}); err != nil {
		t.Fatal(err)
	}
	awaitTimer(t, waiting, "the background loop")
	failing.failList.Store(nil)
	if _, err := restarted.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: failing, Data: map[string]any{"immediate": true}}); err != nil {
		t.Fatal(err)
	}
	before, err := readStaticRole(context.Background(), e.storage, "sync")
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Hour)
	eventuallyTrue(t, func() bool {
		role, err := readStaticRole(context.Background(), e.storage, "sync")
		return err == nil && role.LastRotation.After(before.LastRotation) && !e.fake.IsActive(first)
	})
}

// A revocation that hangs at Beyond Identity holds only its own slot of
// the background work: rotations due meanwhile still run on time.
func TestHangingRevocationsDelayNoRotation(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	var hang sync.Map // set: every revocation waits for release
	release := make(chan struct{})
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, on := hang.Load("on"); on && strings.HasSuffix(r.URL.Path, "/revoke") {
			<-release
		}
		e.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	defer close(release)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": gated.URL}))
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.mustOK(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read", "rotation_period": "10m"})
	// More failed revocations than the background work runs at once.
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	for range 2 * taskSlots[taskRevocation] {
		if _, err := e.revoke(e.issue("sync", nil).Secret); err == nil {
			t.Fatal("a revocation succeeded during the outage")
		}
	}
	e.fake.ClearFaults()
	hang.Store("on", true)
	before, _ := readStaticRole(context.Background(), e.storage, "ci")
	fake.Advance(10 * time.Minute) // the retries and the rotation are due
	e.b.startDue(context.Background(), e.storage)
	eventuallyTrue(t, func() bool {
		role, err := readStaticRole(context.Background(), e.storage, "ci")
		return err == nil && role.LastRotation.After(before.LastRotation)
	})
}
