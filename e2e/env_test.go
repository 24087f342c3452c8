//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// defaultScopes are the scopes the suite's application allows.
var defaultScopes = []string{"groups:read", "identities:read", "scim:users:read", "tokens:read"}

const (
	tenantID      = "tenant-e2e"
	realmID       = "realm-e2e"
	applicationID = "app-e2e"
	clientID      = "client-e2e"
	// A secret that form-encoding would change: Basic credentials go raw.
	clientSecret = "e2e+client/secret=Never%Printed"
)

// fakes lists every fake Beyond Identity of the run, so that failure output
// can be scrubbed of every token they minted.
var (
	fakesMu sync.Mutex
	fakes   []*fakebi.Server
)

// redactSecrets removes the client secret and every minted token from text
// before it is printed.
func redactSecrets(text string) string {
	text = strings.ReplaceAll(text, clientSecret, "[client secret]")
	fakesMu.Lock()
	defer fakesMu.Unlock()
	for _, fake := range fakes {
		for _, token := range fake.Tokens() {
			text = strings.ReplaceAll(text, token.Value, "[token "+token.ID+"]")
		}
	}
	return text
}

// env is one test's world: a fake Beyond Identity, a Vault server with the
// plugin registered, mounted at beyondidentity/ and configured.
type env struct {
	t     *testing.T
	vault *vaulttest.Server
	fake  *fakebi.Server
	url   string
}

// newFake returns a fake Beyond Identity holding the suite's application
// with the given scopes, registered for redaction.
func newFake(scopes ...string) *fakebi.Server {
	fake := fakebi.New()
	fake.AddApplication(suiteApplication(nil, scopes...))
	fakesMu.Lock()
	fakes = append(fakes, fake)
	fakesMu.Unlock()
	return fake
}

// suiteApplication is the application newFake serves, changed by adjust.
func suiteApplication(adjust func(*fakebi.Application), scopes ...string) fakebi.Application {
	app := fakebi.Application{
		TenantID: tenantID, RealmID: realmID, ID: applicationID,
		ClientID: clientID, ClientSecret: clientSecret, AllowedScopes: scopes,
	}
	if adjust != nil {
		adjust(&app)
	}
	return app
}

// tokensOutliveTheirLeases makes the fake mint every token an hour longer
// than asked, so that a token dead at its lease's end proves a revocation,
// not an expiry.
func (e *env) tokensOutliveTheirLeases() {
	e.fake.AddApplication(suiteApplication(func(app *fakebi.Application) { app.Outlive = time.Hour }, defaultScopes...))
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, vaulttest.File)
}

// newEnvOn is newEnv with the Vault server on the given storage.
func newEnvOn(t *testing.T, storage vaulttest.Storage) *env {
	t.Helper()
	fake := newFake(defaultScopes...)
	e := &env{t: t, fake: fake, url: newLoopbackServer(t, fake)}
	// Cleanups run last-registered first: the folder is removed after the
	// log check, which runs after Vault has stopped and written its last line.
	dir := t.TempDir()
	t.Cleanup(e.assertVaultLogClean)
	e.vault = vaulttest.Start(t, dir, vaultOptions(storage))
	e.vault.RegisterAndMount("beyondidentity")
	e.configure()
	return e
}

// configure writes the mount's config over the HTTP API and forgets the
// verification calls it caused.
func (e *env) configure() {
	e.t.Helper()
	e.write("beyondidentity/config", map[string]any{
		"tenant_id": tenantID, "realm_id": realmID, "application_id": applicationID,
		"client_id": clientID, "client_secret": clientSecret, "auth_url": e.url,
	})
	e.fake.ResetCalls()
}

func (e *env) write(path string, data map[string]any) *api.Secret {
	e.t.Helper()
	secret, err := e.vault.Client.Logical().Write(path, data)
	if err != nil {
		e.t.Fatalf("write %s: %s", path, redactSecrets(err.Error()))
	}
	return secret
}

func (e *env) read(path string) *api.Secret {
	e.t.Helper()
	secret, err := e.vault.Client.Logical().Read(path)
	if err != nil {
		e.t.Fatalf("read %s: %s", path, redactSecrets(err.Error()))
	}
	return secret
}

// issue reads creds for a role and checks the fake minted what it returned.
func (e *env) issue(role string) *api.Secret {
	e.t.Helper()
	secret := e.read("beyondidentity/creds/" + role)
	if secret == nil || secret.LeaseID == "" {
		e.t.Fatalf("creds/%s returned no lease", role)
	}
	if _, ok := e.fake.TokenByValue(accessToken(secret)); !ok {
		e.t.Fatalf("creds/%s returned a token the fake never minted", role)
	}
	return secret
}

func accessToken(secret *api.Secret) string {
	token, _ := secret.Data["access_token"].(string)
	return token
}

// ops lists the operations the fake saw, in order.
func (e *env) ops() []string {
	var ops []string
	for _, call := range e.fake.Calls() {
		ops = append(ops, string(call.Op))
	}
	return ops
}

// countOps counts the fake's calls of one operation.
func (e *env) countOps(op fakebi.Op) int {
	return len(e.fake.CallsTo(op))
}

// assertRevokes checks that the fake saw exactly n revoke calls and
// answered each with 200: a call that failed revoked nothing.
func (e *env) assertRevokes(n int) {
	e.t.Helper()
	calls := e.fake.CallsTo(fakebi.OpRevoke)
	answered := 0
	for _, call := range calls {
		if call.Status == http.StatusOK {
			answered++
		}
	}
	if len(calls) != n || answered != n {
		e.t.Fatalf("%d revoke calls, %d answered 200; want exactly %d, each answered 200 (calls %v)", len(calls), answered, n, e.ops())
	}
}

// assertVaultLogClean checks the log of the test's Vault.
func (e *env) assertVaultLogClean() {
	if e.vault != nil {
		checkVaultLog(e.t, e.vault.LogText(), []string{clientSecret}, e.fake.Tokens())
	}
}

// pluginLogLine is a line the plugin itself logged, as Vault relays it: a
// log that has none proves nothing about what the plugin logs.
var pluginLogLine = regexp.MustCompile(`secrets\.vault-plugin-secrets-beyondidentity\S*: configuration saved`)

// jwtShaped is any JWT, such as a token of a fake run in another process.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}`)

// checkVaultLog fails when a Vault log (which holds the plugin's log) shows
// a secret, a token or anything shaped like one, or a data race found by the
// race-enabled plugin; or when it holds no line of the plugin's own.
func checkVaultLog(t *testing.T, log string, secrets []string, tokens []fakebi.Token) {
	t.Helper()
	if !pluginLogLine.MatchString(log) {
		t.Error("Vault's log holds no line the plugin logged: the hygiene check would prove nothing")
	}
	rememberSecrets(secrets...)
	named := make(map[string]string)
	for i, secret := range secrets {
		named[secret] = fmt.Sprintf("secret #%d", i+1)
	}
	for _, token := range tokens {
		named[withoutJWTHeader(token.Value)] = "token " + token.ID
	}
	if found := newFragmentIndex(named).find(log); len(found) > 0 {
		t.Errorf("Vault's log holds a run of %d or more characters of %s", minFragment, strings.Join(found, ", "))
	}
	if jwtShaped.MatchString(log) {
		t.Error("something shaped like a token appears in Vault's log")
	}
	if strings.Contains(log, "DATA RACE") {
		t.Error("the race detector found a data race in the plugin; see Vault's log")
	}
}
