package beyondidentity

// Test scaffolding: a backend wired to a fake Beyond Identity over
// loopback, and the requests that drive it.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

const (
	testTenant      = "tenant-1"
	testRealm       = "realm-1"
	testApplication = "app-1"
	testClientID    = "client-1"
	// The secret holds characters that form-encoding would change: Beyond
	// Identity compares Basic credentials raw, and so does the fake.
	testClientSecret = "client+secret/Very=Secret%1"
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
	tlsServer *httptest.Server
}

// discardLogger silences a test server's log of handshakes the client
// rightly refuses.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func newTestBackend(t testing.TB) *testEnv {
	t.Helper()
	return newTestBackendWith(t, nil)
}

// newTestBackendWith is newTestBackend with its Vault-side config changed by
// adjust before the backend is built.
func newTestBackendWith(t testing.TB, adjust func(*logical.BackendConfig)) *testEnv {
	t.Helper()
	fake := fakebi.New()
	fake.AddApplication(testApp())
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)

	logs := &testutil.SyncBuffer{}
	// Vault Enterprise, where events can be subscribed to and so are sent.
	sys := &logical.StaticSystemView{DefaultLeaseTTLVal: 768 * time.Hour, MaxLeaseTTLVal: 2160 * time.Hour,
		PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.0", VaultVersionMetadata: "ent"}}
	conf := logical.TestBackendConfig()
	conf.System = sys
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	conf.StorageView = &logical.InmemStorage{}
	if adjust != nil {
		adjust(conf)
	}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	b := raw.(*backend)
	// Retries run through their backoff and Retry-After waits at once.
	b.clientClock = clock.NoWait{}
	return &testEnv{t: t, b: b, storage: conf.StorageView, fake: fake, server: server, sys: sys, logs: logs}
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

// issue reads creds for a role and returns the response, failing on error.
func (e *testEnv) issue(role string, data map[string]any) *logical.Response {
	e.t.Helper()
	var op logical.Operation = logical.ReadOperation
	if data != nil {
		op = logical.UpdateOperation
	}
	resp := e.mustOK(op, "creds/"+role, data)
	if resp == nil || resp.Secret == nil {
		e.t.Fatalf("creds/%s returned no lease", role)
	}
	return resp
}

// newConfiguredBackend returns a backend configured against a fake
// application changed by adjust, with role "sync" (ttl 1h).
func newConfiguredBackend(t testing.TB, adjust func(*fakebi.Application)) *testEnv {
	t.Helper()
	e := newTestBackend(t)
	app := testApp()
	adjust(&app)
	e.fake.AddApplication(app)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	return e
}

// referentialTokens makes the fake application issue opaque tokens.
func referentialTokens(app *fakebi.Application) { app.TokenFormat = fakebi.Referential }

// narrowingScopes makes the fake application drop the scopes it does not
// allow instead of refusing them.
func narrowingScopes(app *fakebi.Application) { app.NarrowScopes = true }

// newIssuedCredential returns a configured backend with role "sync"
// (ttl 1h) and one credential issued from it.
func newIssuedCredential(t *testing.T) (*testEnv, *logical.Response) {
	t.Helper()
	e := newSyncRoleBackend(t)
	return e, e.issue("sync", nil)
}

// newSyncRoleBackend returns a configured backend with role "sync" (ttl 1h).
func newSyncRoleBackend(t testing.TB) *testEnv {
	t.Helper()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	return e
}

// switchToSecondApplication adds another application to the fake and
// points the mount at it.
func (e *testEnv) switchToSecondApplication() *logical.Response {
	e.t.Helper()
	other := testApp()
	other.ID, other.ClientID, other.ClientSecret = "app-2", "client-2", "secret-two"
	e.fake.AddApplication(other)
	return e.mustOK(logical.UpdateOperation, "config", map[string]any{
		"application_id": "app-2", "client_id": "client-2", "client_secret": "secret-two",
	})
}

// lastToken is the token the fake minted last.
func (e *testEnv) lastToken() fakebi.Token {
	e.t.Helper()
	tokens := e.fake.Tokens()
	if len(tokens) == 0 {
		e.t.Fatal("the fake minted no token")
	}
	return tokens[len(tokens)-1]
}

// mintedSinceConfigure counts the tokens minted after configure().
func (e *testEnv) mintedSinceConfigure() int {
	return len(e.fake.Tokens()) - 1
}

// revoke and renew run the lease operations Vault's expiration manager runs.
func (e *testEnv) revoke(secret *logical.Secret) (*logical.Response, error) {
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RevokeOperation, Secret: secret, Storage: e.storage,
	})
}

func (e *testEnv) renew(secret *logical.Secret, increment time.Duration, issued time.Time) (*logical.Response, error) {
	renewal := *secret
	renewal.Increment = increment
	renewal.IssueTime = issued
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation, Secret: &renewal, Storage: e.storage,
	})
}

// vaultRenew renews a lease as Vault's expiration manager does: the
// plugin's answer, then framework.CalculateTTL with the increment and the
// answer's TTL and MaxTTL, counted from the lease's issue time.
func (e *testEnv) vaultRenew(secret *logical.Secret, increment time.Duration, issued time.Time) (time.Duration, error) {
	resp, err := e.renew(secret, increment, issued)
	if err != nil {
		return 0, err
	}
	if resp.IsError() {
		return 0, resp.Error()
	}
	ttl, _, err := framework.CalculateTTL(e.sys, increment, resp.Secret.TTL, 0, resp.Secret.MaxTTL, 0, issued)
	return ttl, err
}

// statusOf is the HTTP status and message Vault would answer with.
func statusOf(resp *logical.Response, err error) (int, string) {
	var coded logical.HTTPCodedError
	switch {
	case errors.As(err, &coded):
		return coded.Code(), err.Error()
	case err != nil:
		return http.StatusInternalServerError, err.Error()
	case resp != nil && resp.IsError():
		return http.StatusBadRequest, resp.Error().Error()
	}
	return http.StatusOK, ""
}

// assertNoSecretIn fails when text carries the client secret or a token.
func assertNoSecretIn(t *testing.T, e *testEnv, text string) {
	t.Helper()
	if strings.Contains(text, testClientSecret) {
		t.Error("the message carries the client secret")
	}
	for _, token := range e.fake.Tokens() {
		if strings.Contains(text, token.Value) {
			t.Errorf("the message carries token %s", token.ID)
		}
	}
}

// closedPortURL is a loopback URL where connections are refused.
func closedPortURL(t testing.TB) string {
	return "http://" + testutil.RefusingAddr(t)
}

// tlsFakeURL serves the same fake over TLS with a certificate no system
// root trusts.
func (e *testEnv) tlsFakeURL() string {
	if e.tlsServer == nil {
		e.tlsServer = httptest.NewUnstartedServer(e.fake)
		e.tlsServer.Config.ErrorLog = discardLogger()
		e.tlsServer.StartTLS()
		e.t.Cleanup(e.tlsServer.Close)
	}
	return e.tlsServer.URL
}

// tlsFakeCA is the PEM certificate of tlsFakeURL's server.
func (e *testEnv) tlsFakeCA() string {
	e.tlsFakeURL()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.tlsServer.Certificate().Raw}))
}

func testCAPEM(t *testing.T) string {
	t.Helper()
	server := httptest.NewTLSServer(nil)
	defer server.Close()
	if _, err := x509.ParseCertificate(server.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}))
}

func assertBasicAuth(t *testing.T, call fakebi.Call) {
	t.Helper()
	if !call.BasicAuth || call.BasicUser != testClientID || call.BasicPassword != testClientSecret {
		t.Fatalf("%s call did not authenticate with HTTP Basic client_id:client_secret", call.Op)
	}
}

func opsOf(calls []fakebi.Call) []string {
	ops := make([]string, len(calls))
	for i, c := range calls {
		ops[i] = string(c.Op)
	}
	return ops
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// manyScopes lists n distinct well-formed scopes.
func manyScopes(n int) []string {
	scopes := make([]string, n)
	for i := range scopes {
		scopes[i] = fmt.Sprintf("resource-%d:read", i)
	}
	return scopes
}

// TestMain runs the tests with more of them at once than the CPUs, unless
// -parallel says otherwise: most of their time is spent waiting, on the
// fake's delays, timeouts and the loopback network, not computing.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0)))
	}
	os.Exit(m.Run())
}
