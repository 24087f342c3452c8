package beyondidentity

// The backend: its setup, its cached client, its call bounds, the storage
// it seal-wraps, and clean, which stops everything it started.

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

func TestFactoryReportsVersionAndSealWraps(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	if got := e.b.PluginVersion().Version; got != Version || got == "" {
		t.Fatalf("PluginVersion = %q, want %q", got, Version)
	}
	if e.b.Type() != logical.TypeLogical {
		t.Fatalf("backend type = %v", e.b.Type())
	}
	wrapped := strings.Join(e.b.SpecialPaths().SealWrapStorage, ",")
	if wrapped != "config,roles/,static-roles/,retained/,revocations/,journal/,salt" {
		t.Fatalf("SealWrapStorage = %q: every path holding a secret or a token must be seal-wrapped", wrapped)
	}
	if local := strings.Join(e.b.SpecialPaths().LocalStorage, ","); local != "journal/,revocations/" {
		t.Fatalf("LocalStorage = %q: the journal and failed revocations must stay in the cluster that minted the token", local)
	}
}

func TestInvalidateDropsCachedClient(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	first, err := e.b.client(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.b.client(context.Background(), e.storage)
	if first != again {
		t.Fatal("the client is not cached")
	}
	e.b.invalidate(context.Background(), "roles/x")
	if kept, _ := e.b.client(context.Background(), e.storage); kept != first {
		t.Fatal("invalidating another key dropped the client")
	}
	e.b.invalidate(context.Background(), configPath)
	if rebuilt, _ := e.b.client(context.Background(), e.storage); rebuilt == first {
		t.Fatal("invalidating config kept the old client")
	}
}

func TestClientCacheUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%10 == 0 {
				e.b.reset()
			}
			if _, err := e.b.client(context.Background(), e.storage); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
}

func TestEveryPathAndFieldHasHelp(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, p := range e.b.Paths {
		if strings.TrimSpace(p.HelpSynopsis) == "" || strings.TrimSpace(p.HelpDescription) == "" {
			t.Errorf("path %q lacks help", p.Pattern)
		}
		for name, field := range p.Fields {
			if strings.TrimSpace(field.Description) == "" {
				t.Errorf("field %q of path %q has no description", name, p.Pattern)
			}
		}
		for op, handler := range p.Operations {
			if handler.Properties().Summary == "" {
				t.Errorf("operation %s of path %q has no summary", op, p.Pattern)
			}
		}
	}
	for _, s := range e.b.Secrets {
		for name, field := range s.Fields {
			if strings.TrimSpace(field.Description) == "" {
				t.Errorf("field %q of secret %q has no description", name, s.Type)
			}
		}
	}
	for _, path := range []string{"config", "config/retained/", "config/retained/x", "roles/", "roles/x", "creds/x",
		"static-roles/", "static-roles/x", "static-creds/x", "rotate-role/x"} {
		resp, err := e.request(logical.HelpOperation, path, nil)
		if err != nil || resp == nil || !strings.Contains(resp.Data["help"].(string), "## DESCRIPTION") {
			t.Errorf("path-help of %s: %s %v", path, errorText(resp), err)
		}
	}
}

// TestConcurrentCallsAreBounded checks max_concurrent_requests: a burst of
// requests never has more calls in flight than the bound, and a request
// waiting for a slot gives up with its own context.
func TestConcurrentCallsAreBounded(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"max_concurrent_requests": 2}))
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 100 * time.Millisecond})
	e.fake.ResetMaxInFlight()

	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		go func() {
			resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
			if err == nil && resp.IsError() {
				err = resp.Error()
			}
			errs <- err
		}()
	}
	for i := 0; i < 12; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Twelve slow calls reach the bound, and never pass it: no lock
	// serialises them, and no slot is handed out twice.
	if peak := e.fake.MaxInFlight(); peak != 2 {
		t.Fatalf("%d calls were in flight at once, want exactly the bound, 2", peak)
	}

	// One call holds the only slot; a request whose context ends first
	// gives up without reaching Beyond Identity.
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"max_concurrent_requests": 1, "verify_connection": false})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: time.Second})
	e.fake.ResetCalls()
	go func() { _, _ = e.request(logical.ReadOperation, "creds/sync", nil) }()
	eventuallyTrue(t, func() bool { return e.fake.InFlight() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := e.requestCtx(ctx, logical.ReadOperation, "creds/sync", nil)
	if status, message := statusOf(resp, err); status != http.StatusServiceUnavailable || !strings.Contains(message, "max_concurrent_requests") {
		t.Fatalf("a request waiting for a slot past its deadline: %d %s, want 503 naming max_concurrent_requests", status, message)
	}
	if calls := len(e.fake.CallsTo(fakebi.OpToken)); calls != 1 {
		t.Fatalf("%d token calls, want only the one holding the slot", calls)
	}
}

// The bound on concurrent calls follows Beyond Identity: answers let it
// grow, and each 429 or 503 halves it.
func TestThrottlingShrinksTheBoundOnCalls(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	before := e.b.limits.issue.Limit()
	for i := 0; i < 6; i++ {
		e.issue("sync", nil)
	}
	grown := e.b.limits.issue.Limit()
	if grown != before+6 {
		t.Fatalf("after 6 answers the bound is %d, want %d", grown, before+6)
	}
	revokeBound := e.b.limits.revoke.Limit()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`, Times: 2})
	e.issue("sync", nil) // two 429s, then the retry succeeds
	// Halved twice, then one round trip's worth of growth at the most.
	if got := e.b.limits.issue.Limit(); got > grown/4+1 {
		t.Fatalf("after two 429s and an answer the bound is %d, want about a quarter of %d", got, grown)
	}
	if got := e.b.limits.revoke.Limit(); got != revokeBound {
		t.Fatalf("the revocations' bound moved with the mints': %d, was %d", got, revokeBound)
	}
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

// After Clean returns, no goroutine of the plugin runs: not the
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

// Unmounting ends the background worker and closes pooled connections.
func TestCleanStopsTheWorkerAndClosesConnections(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	var closed atomic.Int32
	server := httptest.NewUnstartedServer(e.fake)
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			closed.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": server.URL}))
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.issue("sync", nil)
	closedBefore := closed.Load()
	e.b.Cleanup(context.Background())
	if e.b.background.done != nil {
		t.Fatal("the worker is still running")
	}
	eventuallyTrue(t, func() bool { return closed.Load() > closedBefore })
}

// Everything stored that holds the client secret or a token lies under a
// path Vault seal-wraps.
func TestEverySecretIsStoredSealWrapped(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	recording := &keyRecorder{Storage: e.storage}
	e.storage = recording
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	resp := e.issue("sync", nil)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	_, _ = e.revoke(resp.Secret) // recorded for the background worker
	e.fake.ClearFaults()
	e.switchToSecondApplication() // the first application's credentials are kept
	wrapped := e.b.SpecialPaths().SealWrapStorage
	secrets := []string{testClientSecret, "secret-two"}
	for _, token := range e.fake.Tokens() {
		secrets = append(secrets, token.Value)
	}
	checked := 0
	for key, value := range recording.written() {
		for _, secret := range secrets {
			if !strings.Contains(value, secret) {
				continue
			}
			checked++
			if !underAny(key, wrapped) {
				t.Errorf("%s holds a secret but is not seal-wrapped (%v)", key, wrapped)
			}
		}
	}
	if checked < 4 { // the config, the retained credentials, a journal page, a revocation record
		t.Fatalf("only %d stored secrets seen: the check proves little", checked)
	}
}

func underAny(key string, prefixes []string) bool {
	for _, prefix := range prefixes {
		if key == prefix || (strings.HasSuffix(prefix, "/") && strings.HasPrefix(key, prefix)) {
			return true
		}
	}
	return false
}

// keyRecorder remembers every value written under each key.
type keyRecorder struct {
	logical.Storage
	mu     sync.Mutex
	values map[string][]string
}

func (r *keyRecorder) Put(ctx context.Context, entry *logical.StorageEntry) error {
	r.mu.Lock()
	if r.values == nil {
		r.values = map[string][]string{}
	}
	r.values[entry.Key] = append(r.values[entry.Key], string(entry.Value))
	r.mu.Unlock()
	return r.Storage.Put(ctx, entry)
}

func (r *keyRecorder) written() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := map[string]string{}
	for key, values := range r.values {
		all[key] = strings.Join(values, "\n")
	}
	return all
}
