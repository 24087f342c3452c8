package beyondidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

const (
	testTenant       = "tenant-1"
	testRealm        = "realm-1"
	testApplication  = "app-1"
	testClientID     = "client-1"
	testClientSecret = "client-secret-Very-Secret-1"
)

// testApp is the fake application most tests configure the mount with.
func testApp() fakebi.Application {
	return fakebi.Application{
		TenantID: testTenant, RealmID: testRealm, ID: testApplication,
		ClientID: testClientID, ClientSecret: testClientSecret,
		AllowedScopes: []string{"groups:read", "identities:read", "identities:update", "scim:users:read", "tokens:read"},
	}
}

// testEnv is a backend wired to a fake Beyond Identity over real HTTP on
// loopback, with in-memory storage and a trace-level log capture.
type testEnv struct {
	t         testing.TB
	b         *backend
	storage   logical.Storage
	fake      *fakebi.Server
	server    *httptest.Server
	sys       *logical.StaticSystemView
	logs      *testutil.SyncBuffer
	upstream  *upstreamProbe
	tlsServer *httptest.Server
}

// discardLogger silences a test server's log of handshakes the client
// rightly refuses.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func newTestBackend(t testing.TB) *testEnv {
	t.Helper()
	fake := fakebi.New()
	fake.AddApplication(testApp())
	upstream := &upstreamProbe{fake: fake}
	server := httptest.NewServer(upstream)
	t.Cleanup(server.Close)

	logs := &testutil.SyncBuffer{}
	sys := &logical.StaticSystemView{DefaultLeaseTTLVal: 768 * time.Hour, MaxLeaseTTLVal: 2160 * time.Hour}
	conf := logical.TestBackendConfig()
	conf.System = sys
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	conf.StorageView = &logical.InmemStorage{}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	return &testEnv{t: t, b: raw.(*backend), storage: conf.StorageView, fake: fake, server: server, sys: sys, logs: logs, upstream: upstream}
}

// upstreamProbe stands in front of the fake: it counts the calls in flight
// at once, and can rewrite the JSON of real token answers to make Beyond
// Identity answer oddly with a token that really exists.
type upstreamProbe struct {
	fake        *fakebi.Server
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	rewrite     atomic.Pointer[func(map[string]any)]
}

func (p *upstreamProbe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		seen := p.maxInFlight.Load()
		if now <= seen || p.maxInFlight.CompareAndSwap(seen, now) {
			break
		}
	}
	edit := p.rewrite.Load()
	if edit == nil || !strings.HasSuffix(r.URL.Path, "/token") {
		p.fake.ServeHTTP(w, r)
		return
	}
	recorder := httptest.NewRecorder()
	p.fake.ServeHTTP(recorder, r)
	var body map[string]any
	if recorder.Code == http.StatusOK && json.Unmarshal(recorder.Body.Bytes(), &body) == nil {
		(*edit)(body)
		rewritten, _ := json.Marshal(body)
		recorder.Body = bytes.NewBuffer(rewritten)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(recorder.Code)
	_, _ = w.Write(recorder.Body.Bytes())
}

// rewriteTokenAnswers makes every later token answer pass through edit.
func (e *testEnv) rewriteTokenAnswers(edit func(map[string]any)) {
	e.upstream.rewrite.Store(&edit)
}

// request runs one operation against the backend.
func (e *testEnv) request(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	return e.requestCtx(context.Background(), op, path, data)
}

// requestCtx runs one operation with the given context.
func (e *testEnv) requestCtx(ctx context.Context, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(ctx, &logical.Request{
		Operation:  op,
		Path:       path,
		Data:       data,
		Storage:    e.storage,
		MountPoint: "beyondidentity/",
	})
}

// mustOK runs an operation that must succeed without an error response.
func (e *testEnv) mustOK(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	if err != nil || (resp != nil && resp.IsError()) {
		e.t.Fatalf("%s %s: err=%v resp=%s", op, path, err, errorText(resp))
	}
	return resp
}

// warningsOf describes a response's warnings for a failure message.
func warningsOf(resp *logical.Response) string {
	if resp == nil {
		return "no response"
	}
	return strings.Join(resp.Warnings, "; ")
}

// errorText describes a response for a failure message without printing
// its data, which may hold a token.
func errorText(resp *logical.Response) string {
	if resp == nil {
		return "<nil>"
	}
	if resp.IsError() {
		return resp.Error().Error()
	}
	return "ok"
}

// configData is a valid config pointing at the fake.
func (e *testEnv) configData(overrides map[string]any) map[string]any {
	data := map[string]any{
		"tenant_id":      testTenant,
		"realm_id":       testRealm,
		"application_id": testApplication,
		"client_id":      testClientID,
		"client_secret":  testClientSecret,
		"auth_url":       e.server.URL,
	}
	for k, v := range overrides {
		if v == nil {
			delete(data, k)
			continue
		}
		data[k] = v
	}
	return data
}

// configure writes a working config and forgets the calls it made.
func (e *testEnv) configure() {
	e.t.Helper()
	e.mustOK(logical.CreateOperation, "config", e.configData(nil))
	e.fake.ResetCalls()
}

// writeRole creates a role.
func (e *testEnv) writeRole(name string, data map[string]any) *logical.Response {
	e.t.Helper()
	return e.mustOK(logical.CreateOperation, "roles/"+name, data)
}

// assertNoSecretsLogged fails when the client secret or any token the fake
// minted appears in the captured log.
func (e *testEnv) assertNoSecretsLogged() {
	e.t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, testClientSecret) {
		e.t.Error("the client secret appears in the backend's log")
	}
	for _, token := range e.fake.Tokens() {
		if strings.Contains(logs, token.Value) {
			e.t.Errorf("token %s appears in the backend's log", token.ID)
		}
	}
}

func TestFactoryReportsVersionAndSealWraps(t *testing.T) {
	e := newTestBackend(t)
	if got := e.b.PluginVersion().Version; got != Version || got == "" {
		t.Fatalf("PluginVersion = %q, want %q", got, Version)
	}
	if e.b.Type() != logical.TypeLogical {
		t.Fatalf("backend type = %v", e.b.Type())
	}
	wrapped := strings.Join(e.b.SpecialPaths().SealWrapStorage, ",")
	if wrapped != "config,roles/,retained/,revocations/" {
		t.Fatalf("SealWrapStorage = %q: every path holding a secret or a token must be seal-wrapped", wrapped)
	}
	if local := strings.Join(e.b.SpecialPaths().LocalStorage, ","); local != "wal/,revocations/" {
		t.Fatalf("LocalStorage = %q: write-ahead entries and failed revocations must stay in the cluster that minted the token", local)
	}
}

func TestInvalidateDropsCachedClient(t *testing.T) {
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
	for _, path := range []string{"config", "roles/", "roles/x", "creds/x"} {
		resp, err := e.request(logical.HelpOperation, path, nil)
		if err != nil || resp == nil || !strings.Contains(resp.Data["help"].(string), "## DESCRIPTION") {
			t.Errorf("path-help of %s: %s %v", path, errorText(resp), err)
		}
	}
}
