package beyondidentity

// Tokens the plugin holds outside a lease stay owned: one test per way the
// plugin used to lose track of one (design.md, "Tokens the plugin holds
// outside a lease").

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// 1. Deleting the config while static roles exist is refused, naming them:
// disabling the mount after it would leave their tokens valid, with
// nothing to record them.
func TestConfigDeleteIsRefusedWhileStaticRolesExist(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil) // a retired token too
	status, message := statusOf(e.request(logical.DeleteOperation, "config", nil))
	if status != http.StatusBadRequest || !strings.Contains(message, "static roles exist") ||
		!strings.Contains(message, "vault delete beyondidentity/static-roles/sync") {
		t.Fatalf("config delete with a static role: %d %q", status, message)
	}
	if resp := e.mustOK(logical.ReadOperation, "config", nil); resp == nil {
		t.Fatal("the refused delete removed the config")
	}
	// The README's teardown order leaves nothing valid.
	e.mustOK(logical.DeleteOperation, "static-roles/sync", nil)
	e.mustOK(logical.DeleteOperation, "config", nil)
	e.assertNothingLeft()
}

// 2. A secret rotation keeps every lease revocable: a lease issued before
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

// 2. After a move from A to B, re-pointing at A with a made-up secret
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

// 3. Two config writes at once never lose retained credentials: a write
// that stalls in verify_connection while another moves the config decides
// from the config it finds when it resumes, and keeps that one.
func TestConcurrentConfigWritesKeepEveryRetainedApplication(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	// A second address of the same fake, whose first token call waits for
	// the test: the stalled verification.
	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			once.Do(func() { close(stalled); <-release })
		}
		e.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	slow := make(chan error, 1)
	go func() {
		_, err := e.request(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": gated.URL}))
		slow <- err
	}()
	<-stalled
	// Meanwhile the config moves to the second application, which issues.
	e.switchToSecondApplication()
	lease := e.issue("sync", nil)
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if _, err := e.revoke(lease.Secret); err != nil {
		t.Fatalf("the lease issued between the two writes cannot be revoked: %v", err)
	}
	if e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatal("the lease's token is still valid")
	}
}

// 4. One storage error while loading the background work does not stop
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

// 5. A JWT whose own scope claim grants more than its answer says is not
// issued: Beyond Identity enforces the claim.
func TestAJWTGrantingMoreThanItsAnswerSaysIsRefused(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) { app.WidenScopes = []string{"tokens:delete"} })
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(answer map[string]any) { answer["scope"] = "identities:read" }})
	status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
	if status != http.StatusBadRequest || !strings.Contains(message, "scope claim") || !strings.Contains(message, "extra: tokens:delete") {
		t.Fatalf("a JWT granting tokens:delete beyond its answer: %d %q", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the refused token was left valid")
	}
}

// 6. An opaque token whose introspection shows a later end than its answer
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

// 7. A burst of rotations keeps at most the current token and three
// retired ones alive, and the role's record small.
func TestARotationBurstKeepsAtMostThreeReplacedTokens(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	for range 20 {
		e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	}
	active := 0
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			active++
		}
	}
	if active > 4 {
		t.Fatalf("%d tokens valid after 20 rotations: want the current one and at most 3 retired", active)
	}
	role, err := readStaticRole(context.Background(), e.storage, "sync")
	if err != nil || len(role.Retired) > maxRetiredTokens {
		t.Fatalf("the role keeps %d retired tokens (%v)", len(role.Retired), err)
	}
}

// 7. Narrowing a static role's scopes revokes every token that carries a
// scope it no longer has at once, not after the grace, and says so.
func TestNarrowingAStaticRoleRevokesTheBroaderTokensAtOnce(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	e.mustOK(logical.CreateOperation, "static-roles/wide", map[string]any{"scopes": "identities:read,groups:read"})
	e.mustOK(logical.UpdateOperation, "rotate-role/wide", nil)
	broad := e.fake.Tokens()[len(e.fake.Tokens())-2:]
	resp := e.mustOK(logical.UpdateOperation, "static-roles/wide", map[string]any{"scopes": "identities:read"})
	for _, token := range broad {
		if e.fake.IsActive(token.Value) {
			t.Fatalf("token %s, which grants groups:read, is still valid after the role was narrowed", token.ID)
		}
	}
	if !e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the narrowed role's new token is not valid")
	}
	if !strings.Contains(warningsOf(resp), "revoked now") || !strings.Contains(warningsOf(resp), "groups:read") {
		t.Fatalf("the response does not say the broader tokens were revoked: %s", warningsOf(resp))
	}
}

// 8. No lock is held across a revocation's call to Beyond Identity: a
// revocation that hangs there delays no other, even one whose record key
// shares a lock stripe with it.
func TestASlowRevocationDelaysNoOther(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	var held sync.Map // token values whose revocation waits
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/revoke") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if _, ok := held.Load(form.Get("token")); ok {
				arrived <- struct{}{}
				<-release
			}
		}
		e.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	defer close(release)
	e.mustOK(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": gated.URL}))
	slow, other := twoLeasesSharingALockStripe(e)
	held.Store(slow.Data["access_token"], true)
	go func() { _, _ = e.revoke(slow.Secret) }()
	select {
	case <-arrived: // the slow revocation is at Beyond Identity
	case <-time.After(10 * time.Second):
		t.Fatal("the slow revocation never reached Beyond Identity")
	}
	done := make(chan error, 1)
	go func() { _, err := e.revoke(other.Secret); done <- err }()
	select {
	case err := <-done:
		if err != nil || e.fake.IsActive(other.Data["access_token"].(string)) {
			t.Fatalf("the other revocation failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a revocation waited for another one's call to Beyond Identity")
	}
}

// twoLeasesSharingALockStripe issues credentials until two of them would
// share one of 256 striped locks by their revocation record's key: about
// twenty, by the birthday bound.
func twoLeasesSharingALockStripe(e *testEnv) (*logical.Response, *logical.Response) {
	e.t.Helper()
	seen := map[uint8]*logical.Response{}
	for range 200 {
		resp := e.issue("sync", nil)
		stripe := locksutil.LockIndexForKey(revocationKey(secretOf(resp.Data["access_token"].(string))))
		if first, ok := seen[stripe]; ok {
			return first, resp
		}
		seen[stripe] = resp
	}
	e.t.Fatal("no two of 200 tokens share a lock stripe")
	return nil, nil
}

// blockingEvents holds every event until its context ends: a Vault slow to
// take events, so that one is being sent and more wait when Clean comes.
type blockingEvents struct{ sending chan struct{} }

func (b *blockingEvents) SendEvent(ctx context.Context, _ logical.EventType, _ *logical.EventData) error {
	select {
	case b.sending <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// 8. After Clean returns, no goroutine of the plugin runs: not the
// background loop, not the journal's remover with a page waiting, not the
// event sender with an event under way and more queued. (Not parallel: it
// counts goroutines.)
func TestCleanLeavesNoGoroutineRunning(t *testing.T) {
	before := pluginGoroutines()
	events := &blockingEvents{sending: make(chan struct{}, 1)}
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) { conf.EventsSender = events })
	e.configure()
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.issue("sync", nil) // its page waits for the remover
	<-events.sending     // an event is under way, and more wait
	e.writeRole("other", map[string]any{"scopes": "identities:read"})
	if pages, _ := e.storage.List(context.Background(), journal.Prefix); len(pages) != 1 {
		t.Fatalf("want a journal page waiting, got %v", pages)
	}
	if running := pluginGoroutines(); len(running) <= len(before) {
		t.Fatalf("the scenario runs no goroutine of the plugin: %v", running)
	}
	e.b.Cleanup(context.Background())
	// A goroutine that Clean waited for may still be returning from its
	// last deferred call: a moment, never a wait on anything.
	deadline := time.Now().Add(time.Second)
	for running := pluginGoroutines(); len(running) > len(before); running = pluginGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of the plugin still run after Clean:\n%s", strings.Join(running, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pages, _ := e.storage.List(context.Background(), journal.Prefix); len(pages) != 0 {
		t.Fatalf("Clean left the handed-over page %v", pages)
	}
}

// pluginGoroutines are the stacks of the goroutines running the plugin's
// own code (the root package and internal/journal), but for tests' own
// goroutines and the fake Beyond Identity's.
func pluginGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var running []string
	for _, stack := range strings.Split(string(buf), "\n\n") {
		ours := strings.Contains(stack, "vault-plugin-secrets-beyondidentity.") ||
			strings.Contains(stack, "vault-plugin-secrets-beyondidentity/internal/journal.")
		if ours && !strings.Contains(stack, "testing.tRunner") && !strings.Contains(stack, "internal/fakebi.") {
			running = append(running, stack)
		}
	}
	return running
}

// 8. A revocation that hangs at Beyond Identity holds only its own slot of
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
