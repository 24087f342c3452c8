package beyondidentity

// config: verified on write, never read back with its secret, serialised
// with its deletes, and refused to delete while static roles exist.

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestConfigWriteVerifiesWithOneMintAndOneRevoke(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp := e.mustOK(logical.CreateOperation, "config", e.configData(nil))
	if resp != nil && len(resp.Warnings) > 0 {
		t.Fatalf("unexpected warnings: %v", resp.Warnings)
	}
	calls := e.fake.Calls()
	if len(calls) != 2 || calls[0].Op != fakebi.OpToken || calls[1].Op != fakebi.OpRevoke {
		t.Fatalf("want exactly one token call then one revoke, got %v", opsOf(calls))
	}
	mint := calls[0]
	assertBasicAuth(t, mint)
	if mint.Form.Get("grant_type") != "client_credentials" || mint.Form.Get("expiration_time") != "60" || mint.Form.Has("scope") {
		t.Fatalf("verification mint sent grant_type=%q expiration_time=%q scope present=%v",
			mint.Form.Get("grant_type"), mint.Form.Get("expiration_time"), mint.Form.Has("scope"))
	}
	if mint.Form.Has("client_secret") || mint.Form.Has("client_id") {
		t.Fatal("credentials were sent in the form as well as in Basic auth")
	}
	tokens := e.fake.Tokens()
	if len(tokens) != 1 || e.fake.IsActive(tokens[0].Value) {
		t.Fatal("the verification token was not revoked")
	}
	assertBasicAuth(t, calls[1])
	if calls[1].Form.Get("token") != tokens[0].Value {
		t.Fatal("the revoke call did not carry the verification token")
	}
	e.assertNoSecretsLogged()
}

func TestConfigReadOmitsSecretAndShowsDefaults(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	want := map[string]any{
		"tenant_id":               testTenant,
		"realm_id":                testRealm,
		"application_id":          testApplication,
		"client_id":               testClientID,
		"auth_url":                e.server.URL,
		"ca_cert":                 "",
		"request_timeout":         int64(30),
		"max_retries":             3,
		"max_concurrent_requests": 64,
		"token_url":               e.server.URL + "/v1/tenants/tenant-1/realms/realm-1/applications/app-1/token",
	}
	for field, value := range want {
		if resp.Data[field] != value {
			t.Errorf("%s = %#v, want %#v", field, resp.Data[field], value)
		}
	}
	if retained, ok := resp.Data["retained_applications"].([]map[string]any); !ok || len(retained) != 0 {
		t.Errorf("retained_applications = %#v, want an empty list", resp.Data["retained_applications"])
	}
	if region, shown := resp.Data["region"]; shown {
		t.Errorf("region = %#v while auth_url overrides it: the read must leave it out", region)
	}
	if len(resp.Data) != len(want)+1 {
		t.Errorf("read returned fields %v, want exactly %d", keysOf(resp.Data), len(want))
	}
	for _, v := range resp.Data {
		if s, ok := v.(string); ok && strings.Contains(s, testClientSecret) {
			t.Fatal("config read returned the client secret")
		}
	}
}

func TestConfigReadBeforeWriteIsEmpty(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp, err := e.request(logical.ReadOperation, "config", nil)
	if err != nil || resp != nil {
		t.Fatalf("read of a missing config = %s, %v", errorText(resp), err)
	}
}

func TestConfigVerifyConnectionFalseMakesNoCall(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"verify_connection": false, "client_secret": "wrong-but-unchecked"}))
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("verify_connection=false still called Beyond Identity: %v", opsOf(calls))
	}
}

func TestConfigRefusesCredentialsThatDoNotWork(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp, err := e.request(logical.CreateOperation, "config", e.configData(map[string]any{"client_secret": "wrong-secret-value"}))
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400 error response, got resp=%s err=%v", errorText(resp), err)
	}
	msg := resp.Error().Error()
	if !strings.Contains(msg, "verify_connection") || !strings.Contains(msg, "invalid_client") || !strings.Contains(msg, "401") {
		t.Fatalf("error does not say what failed: %s", msg)
	}
	if strings.Contains(msg, "wrong-secret-value") {
		t.Fatal("the error echoes the client secret")
	}
	if resp, _ := e.request(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatal("credentials that do not work were saved")
	}
	if len(e.fake.Tokens()) != 0 {
		t.Fatal("a token was minted with wrong credentials")
	}
}

func TestConfigRefusesUnknownApplication(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp, err := e.request(logical.CreateOperation, "config", e.configData(map[string]any{"application_id": "no-such-app"}))
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "404") {
		t.Fatalf("want a 400 naming the 404, got resp=%s err=%v", errorText(resp), err)
	}
}

func TestConfigSecretRequiredWhenDestinationChanges(t *testing.T) {
	t.Parallel()
	caPEM := testCAPEM(t)
	changes := map[string]any{
		"tenant_id":      "tenant-2",
		"realm_id":       "realm-2",
		"application_id": "app-2",
		"client_id":      "client-2",
		"region":         "eu",
		"auth_url":       "https://attacker.example.com",
		"ca_cert":        caPEM,
	}
	for field, value := range changes {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			resp, err := e.request(logical.UpdateOperation, "config", map[string]any{field: value, "verify_connection": false})
			if err != nil || resp == nil || !resp.IsError() {
				t.Fatalf("want a 400, got resp=%s err=%v", errorText(resp), err)
			}
			msg := resp.Error().Error()
			if !strings.Contains(msg, "'client_secret' is required") || !strings.Contains(msg, field) {
				t.Fatalf("error does not name client_secret and %s: %s", field, msg)
			}
			if got := e.mustOK(logical.ReadOperation, "config", nil).Data[field]; got == value {
				t.Fatal("the change was saved")
			}
		})
	}
}

func TestConfigUpdateKeepsSecretForOtherFields(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"request_timeout": "10s", "tenant_id": testTenant})
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["request_timeout"] != int64(10) {
		t.Fatalf("request_timeout = %v", resp.Data["request_timeout"])
	}
	// The verification of the update used the stored secret.
	if calls := e.fake.CallsTo(fakebi.OpToken); len(calls) != 1 || calls[0].Status != 200 {
		t.Fatalf("the update's verification did not mint with the stored secret: %v", opsOf(e.fake.Calls()))
	}
}

func TestConfigChangingApplicationKeepsThePreviousCredentials(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	resp := e.switchToSecondApplication()
	read := e.mustOK(logical.ReadOperation, "config", nil)
	retained := read.Data["retained_applications"].([]map[string]any)
	id, _ := retained[0]["id"].(string)
	if resp == nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "are kept, seal-wrapped, until") ||
		!strings.Contains(resp.Warnings[0], "vault delete beyondidentity/config/retained/"+id) {
		t.Fatalf("want a warning naming the kept credentials and how to drop them, got %s", warningsOf(resp))
	}
	if len(retained) != 1 || retained[0]["id"] != id || retained[0]["client_id"] != testClientID ||
		!strings.HasSuffix(retained[0]["token_url"].(string), "/applications/app-1/token") {
		t.Fatalf("config read lists %v", retained)
	}
	keptUntil, err := time.Parse(time.RFC3339, retained[0]["kept_until"].(string))
	if err != nil || keptUntil.Before(time.Now().Add(90*24*time.Hour)) {
		t.Fatalf("kept until %v (%v), want 90 days at least", keptUntil, err)
	}
	if strings.Contains(fmt.Sprint(read.Data), testClientSecret) {
		t.Fatal("the config read shows the retained secret")
	}
	list := e.mustOK(logical.ListOperation, "config/retained/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != id {
		t.Fatalf("config/retained lists %v", keys)
	}
	// Moving back to the first application keeps both: retained
	// credentials go only by their retention or an operator's delete.
	e.mustOK(logical.UpdateOperation, "config", e.configData(nil))
	list = e.mustOK(logical.ListOperation, "config/retained/", nil)
	if keys, _ := list.Data["keys"].([]string); len(keys) != 2 || !slices.Contains(keys, id) {
		t.Fatalf("after moving back, config/retained lists %v: want both applications", keys)
	}
}

func TestConfigDelete(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("reader", map[string]any{"scopes": "identities:read"})
	resp := e.mustOK(logical.DeleteOperation, "config", nil)
	if resp == nil || len(resp.Warnings) != 2 || !strings.Contains(resp.Warnings[0], "no role can issue credentials until a new config is written") ||
		!strings.Contains(resp.Warnings[1], "are kept, seal-wrapped") {
		t.Fatalf("deleting the config should say what stops working and that its credentials are kept, got %s", warningsOf(resp))
	}
	if resp, _ := e.request(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatal("config still readable after delete")
	}
	resp, err := e.request(logical.ReadOperation, "creds/reader", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "not configured") {
		t.Fatalf("creds after config delete: resp=%s err=%v", errorText(resp), err)
	}
}

func TestConfigTLS(t *testing.T) {
	t.Parallel()
	fake := fakebi.New()
	fake.AddApplication(testApp())
	tlsServer := httptest.NewUnstartedServer(fake)
	tlsServer.Config.ErrorLog = discardLogger()
	tlsServer.StartTLS()
	t.Cleanup(tlsServer.Close)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw}))

	e := newTestBackend(t)
	resp, err := e.request(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": tlsServer.URL}))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate must fail the verification with a 5xx-class error, got resp=%s err=%v", errorText(resp), err)
	}
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": tlsServer.URL, "ca_cert": caPEM}))
	if got := len(fake.CallsTo(fakebi.OpRevoke)); got != 1 {
		t.Fatalf("with ca_cert the verification should mint and revoke over TLS, saw %d revokes", got)
	}
}

func TestConfigVerifyRevocationRefusedIsA400(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 401, Body: `{"error":"unauthorized_client","error_description":"not an OAuth2 app"}`})
	resp, err := e.request(logical.CreateOperation, "config", e.configData(nil))
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400, got resp=%s err=%v", errorText(resp), err)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, "revoking it failed") || !strings.Contains(msg, "unauthorized_client") {
		t.Fatalf("message: %s", msg)
	}
}

// Every config write names where the secret went, so that a secret-only
// write after someone re-pointed auth_url shows the new destination.
func TestConfigWriteNamesTheTokenURL(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	tokenURL := e.server.URL + "/v1/tenants/tenant-1/realms/realm-1/applications/app-1/token"
	resp := e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": testClientSecret})
	if resp == nil || resp.Data["token_url"] != tokenURL || resp.Data["verified_connection"] != true {
		t.Fatalf("a verified write answered %v", resp)
	}
	resp = e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": testClientSecret, "verify_connection": false})
	if resp == nil || resp.Data["token_url"] != tokenURL || resp.Data["verified_connection"] != false {
		t.Fatalf("an unverified write answered %v", resp)
	}
	if strings.Contains(fmt.Sprint(resp.Data), testClientSecret) {
		t.Fatal("the write's answer shows the secret")
	}
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

// A region that auth_url overrides does nothing: the write says so.
func TestARegionThatAuthURLOverridesIsWarnedOf(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp := e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"region": "eu"}))
	if !strings.Contains(warningsOf(resp), "'region' (eu) has no effect while 'auth_url' is set") {
		t.Fatalf("warnings: %s", warningsOf(resp))
	}
}

// Deleting the config while static roles exist is refused, naming them:
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

// Two config writes at once never lose retained credentials: a write
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

// verify_connection discards a token that came in an unusable answer, and
// refuses the config.
func TestConfigVerifyDiscardsAnUnusableToken(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(body map[string]any) { body["token_type"] = "DPoP" }})
	resp, err := e.request(logical.CreateOperation, "config", e.configData(nil))
	status, message := statusOf(resp, err)
	if status != 502 || !strings.Contains(message, "verify_connection: minting a test token") ||
		!strings.Contains(message, `token_type is "DPoP"`) || !strings.Contains(message, "the token was revoked") {
		t.Fatalf("status %d: %s", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the test token is still valid")
	}
	if read, _ := e.request(logical.ReadOperation, "config", nil); read != nil {
		t.Fatal("the config was saved")
	}
}
