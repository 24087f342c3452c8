package beyondidentity

// Test scaffolding for the root package: a backend wired to a fake Beyond
// Identity over loopback, and helpers to drive and inspect it.

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
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

// expiresAtMatches reports whether a response's expires_at is the token's
// end, or up to a second before it: the plugin counts a token's life from
// when it sent the request, in whole seconds, and keeps the earlier end.
func expiresAtMatches(expiresAt any, end time.Time) bool {
	got, err := time.Parse(time.RFC3339, fmt.Sprint(expiresAt))
	return err == nil && !got.After(end) && end.Sub(got) <= time.Second
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

// jwtLike is a token shaped like a JWT that ends after life, for answers
// the fake is made to give (the plugin never checks signatures).
func jwtLike(life time.Duration) string {
	claims := fmt.Sprintf(`{"jti":"made-up-%d","exp":%d,"scope":"identities:read"}`, life, time.Now().Add(life).Unix())
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
}

// withExpiry returns a copy of lease internal data with another token end.
func withExpiry(t *testing.T, internal map[string]any, end time.Time) map[string]any {
	t.Helper()
	lease, err := leaseFromInternal(internal)
	if err != nil {
		t.Fatal(err)
	}
	lease.ExpiresAt, lease.EndsBy = end.Unix(), end.Unix()
	data := lease.internalData()
	data["secret_type"] = secretTypeToken
	return data
}

// failingStorage fails writes, deletes or lists of chosen keys, to inject
// storage errors.
type failingStorage struct {
	logical.Storage
	failPut, failDelete, failList atomic.Pointer[string] // key prefix to fail
}

func (s *failingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if failed := s.failList.Load(); failed != nil && strings.HasPrefix(prefix, *failed) {
		return nil, errInjected
	}
	return s.Storage.List(ctx, prefix)
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
// at the fake, and that no write-ahead entry or pending revocation remains.
func (e *testEnv) assertNothingLeft() {
	e.t.Helper()
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			e.t.Errorf("token %s was left valid", token.ID)
		}
	}
	if pages := e.journalPages(); len(pages) != 0 {
		e.t.Errorf("journal pages left: %v", pages)
	}
	for _, record := range e.revocationRecords() {
		if !record.revoked() {
			e.t.Errorf("a revocation of token %s is still pending", record.TokenID)
		}
	}
}

// rollback runs Vault's periodic function now, and then the background
// work it queued: the journal's recovery of the pages older than its
// minimum age, by the backend's clock, among it.
func (e *testEnv) rollback() {
	e.t.Helper()
	_, _ = e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	})
	e.b.runDue(context.Background(), e.storage)
}

// journalPages lists the journal's pages left in storage once the pages of
// tokens handed over are removed, as they are handoverDelay later.
func (e *testEnv) journalPages() []string {
	e.t.Helper()
	e.b.journal.Flush()
	keys, err := e.storage.List(context.Background(), journal.Prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// awaitTimer waits for a timer of the fake clock to be created, as the
// background code creates one before it sleeps; what names that code.
func awaitTimer(t testing.TB, created <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-created:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never waited on the clock", what)
	}
}

// recordingStorage counts the writes under a prefix.
type recordingStorage struct {
	logical.Storage
	prefix string
	puts   atomic.Int32
}

func (s *recordingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if strings.HasPrefix(entry.Key, s.prefix) {
		s.puts.Add(1)
	}
	return s.Storage.Put(ctx, entry)
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

func eventuallyTrue(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// useFakeClock gives the backend, its clients and the fake Beyond Identity
// one clock that moves only when the test says so, starting now.
func (e *testEnv) useFakeClock() *clock.Fake {
	e.b.journal.Close() // its remover reads the clock it was built with
	fake := clock.NewFake(time.Now())
	e.b.clock, e.b.clientClock = fake, skipWaits{fake}
	e.b.journal = e.b.newJournal()
	e.b.reset() // clients are built with the client clock
	e.fake.SetClock(fake.Now)
	return fake
}

// restartedBackend is a new backend on the test's storage and fake clock:
// a plugin reload, a restart or a failover. Vault has yet to initialize it.
func (e *testEnv) restartedBackend(fake *clock.Fake) *backend {
	e.t.Helper()
	conf := logical.TestBackendConfig()
	conf.System = e.sys
	conf.Logger = e.b.Logger()
	conf.StorageView = e.storage
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		e.t.Fatal(err)
	}
	restarted := raw.(*backend)
	restarted.clock, restarted.clientClock = fake, skipWaits{fake}
	restarted.journal.Close()
	restarted.journal = restarted.newJournal()
	e.t.Cleanup(func() { restarted.Cleanup(context.Background()) })
	return restarted
}

// secretOf wraps a token value the fake minted.
func secretOf(value string) biclient.Secret { return biclient.NewSecret(value) }

// withToken encodes v, a value whose JSON omits the access token, as
// decoded JSON plus the revealed token: how lease internal data reads, and
// how earlier versions wrote their write-ahead entries.
func withToken(v any, token biclient.Secret) map[string]any {
	encoded, _ := json.Marshal(v)
	var data map[string]any
	_ = json.Unmarshal(encoded, &data)
	data["access_token"] = token.Reveal()
	return data
}

// skipWaits tells a fake clock's time but fires every timer at once, so
// that a client's retries neither sleep nor wait for the test to advance.
type skipWaits struct{ *clock.Fake }

func (s skipWaits) NewTimer(d time.Duration) clock.Timer { return clock.NoWait{}.NewTimer(d) }

// revocationRecords reads every revocation record in storage.
func (e *testEnv) revocationRecords() []*revocationRecord {
	e.t.Helper()
	keys, err := e.storage.List(context.Background(), revocationPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	var records []*revocationRecord
	for _, key := range keys {
		record, err := readRevocation(context.Background(), e.storage, key)
		if err != nil {
			e.t.Fatal(err)
		}
		records = append(records, record)
	}
	return records
}

func (e *testEnv) assertNoRevocationRecords() {
	e.t.Helper()
	if records := e.revocationRecords(); len(records) != 0 {
		e.t.Fatalf("%d revocation records left", len(records))
	}
}

// failRevocationsNow issues a credential and fails its revocation while
// Beyond Identity answers 503, so that it is left to the background.
func failRevocationsNow(t *testing.T) (*testEnv, *logical.Response, *clock.Fake) {
	t.Helper()
	e, resp := newIssuedCredential(t)
	fake := e.useFakeClock()
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable"}`})
	if _, err := e.revoke(resp.Secret); err == nil {
		t.Fatal("the revocation should fail while Beyond Identity answers 503")
	}
	return e, resp, fake
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
