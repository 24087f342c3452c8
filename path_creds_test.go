package beyondidentity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

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
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	return e, e.issue("sync", nil)
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

func TestCredsIssueExactlyOneMint(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read,groups:read", "ttl": "1h", "max_ttl": "24h"})
	start := time.Now()
	resp := e.issue("sync", nil)

	calls := e.fake.Calls()
	if len(calls) != 1 || calls[0].Op != fakebi.OpToken {
		t.Fatalf("want exactly one token call, got %v", opsOf(calls))
	}
	assertBasicAuth(t, calls[0])
	form := calls[0].Form
	if form.Get("grant_type") != "client_credentials" || form.Get("scope") != "groups:read identities:read" ||
		form.Get("expiration_time") != "86400" || form.Has("custom_claims") {
		t.Fatalf("mint form = %v", form)
	}

	minted := e.lastToken()
	data := resp.Data
	if data["access_token"] != minted.Value || data["token_type"] != "Bearer" || data["token_id"] != minted.ID || data["role"] != "sync" {
		t.Fatalf("response does not describe the minted token: token_id=%v role=%v type=%v", data["token_id"], data["role"], data["token_type"])
	}
	if !reflect.DeepEqual(data["scopes"], []string{"groups:read", "identities:read"}) {
		t.Fatalf("scopes = %v", data["scopes"])
	}
	if !expiresAtMatches(data["expires_at"], minted.ExpiresAt) {
		t.Fatalf("expires_at %v, token ends %v", data["expires_at"], minted.ExpiresAt)
	}
	if minted.ExpiresAt.Sub(minted.IssuedAt) != 24*time.Hour {
		t.Fatalf("token lifetime %v, want the role's max_ttl", minted.ExpiresAt.Sub(minted.IssuedAt))
	}
	if resp.Secret.TTL != time.Hour || !resp.Secret.Renewable {
		t.Fatalf("lease ttl %v renewable %v", resp.Secret.TTL, resp.Secret.Renewable)
	}
	if resp.Secret.MaxTTL > 24*time.Hour || resp.Secret.MaxTTL < 24*time.Hour-time.Since(start)-2*time.Second {
		t.Fatalf("lease max ttl %v, want the token's remaining life", resp.Secret.MaxTTL)
	}
	if len(resp.Warnings) != 0 {
		t.Fatalf("unexpected warnings %v", resp.Warnings)
	}
	e.assertNoSecretsLogged()
}

func TestCredsDefaultRoleIsNinetyDaysAndNotRenewable(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("full", map[string]any{"scopes": "identities:read"})
	resp := e.issue("full", nil)
	if got := e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("expiration_time"); got != "7776000" {
		t.Fatalf("expiration_time = %s", got)
	}
	// A lease that already reaches the token's end cannot be extended.
	if resp.Secret.Renewable || resp.Secret.TTL != resp.Secret.MaxTTL {
		t.Fatalf("ttl %v max %v renewable %v", resp.Secret.TTL, resp.Secret.MaxTTL, resp.Secret.Renewable)
	}
}

func TestCredsCappedByMountCeiling(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("full", map[string]any{"scopes": "identities:read"})
	e.sys.MaxLeaseTTLVal = 768 * time.Hour
	resp := e.issue("full", nil)
	if got := e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("expiration_time"); got != "2764800" {
		t.Fatalf("expiration_time = %s, want the mount's 768h", got)
	}
	if resp.Secret.TTL > 768*time.Hour || resp.Secret.TTL < 768*time.Hour-5*time.Second {
		t.Fatalf("lease ttl %v", resp.Secret.TTL)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "vault secrets tune -max-lease-ttl=2160h beyondidentity/") {
		t.Fatalf("want the tune command in a warning, got %v", resp.Warnings)
	}
}

func TestCredsWriteNarrowsTTLAndScopes(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read,groups:read", "ttl": "2h", "max_ttl": "24h"})
	resp := e.issue("sync", map[string]any{"ttl": "30m", "scopes": "identities:read"})
	form := e.fake.CallsTo(fakebi.OpToken)[0].Form
	if form.Get("expiration_time") != "1800" || form.Get("scope") != "identities:read" {
		t.Fatalf("mint form = %v", form)
	}
	if resp.Secret.TTL != 30*time.Minute || resp.Secret.Renewable {
		t.Fatalf("lease ttl %v renewable %v", resp.Secret.TTL, resp.Secret.Renewable)
	}
	if !reflect.DeepEqual(resp.Data["scopes"], []string{"identities:read"}) {
		t.Fatalf("scopes = %v", resp.Data["scopes"])
	}
	// A longer ttl than the role's ttl, up to max_ttl, is allowed too.
	resp = e.issue("sync", map[string]any{"ttl": "12h"})
	if resp.Secret.TTL != 12*time.Hour {
		t.Fatalf("lease ttl %v", resp.Secret.TTL)
	}
}

func TestCredsSendsCustomClaims(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	claims := map[string]any{"team": "sre", "ticket": float64(42)}
	e.writeRole("tagged", map[string]any{"scopes": "identities:read", "custom_claims": claims})
	e.issue("tagged", nil)
	var sent map[string]any
	if err := json.Unmarshal([]byte(e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("custom_claims")), &sent); err != nil {
		t.Fatalf("custom_claims is not JSON: %v", err)
	}
	carried, _ := json.Marshal(e.lastToken().CustomClaims)
	if !reflect.DeepEqual(sent, claims) || string(carried) != `{"team":"sre","ticket":42}` {
		t.Fatalf("custom claims sent %v, token carries %v", sent, e.lastToken().CustomClaims)
	}
}

func TestCredsScopeMismatchRevokesAndNamesTheDifference(t *testing.T) {
	e := newConfiguredBackend(t, narrowingScopes)
	e.writeRole("too-wide", map[string]any{"scopes": "identities:read,roles:read"})
	resp, err := e.request(logical.ReadOperation, "creds/too-wide", nil)
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400, got resp=%s err=%v", errorText(resp), err)
	}
	msg := resp.Error().Error()
	if !strings.Contains(msg, "missing: roles:read") || !strings.Contains(msg, "extra: none") || !strings.Contains(msg, "the token was revoked") {
		t.Fatalf("error does not name the difference and the revocation: %s", msg)
	}
	if e.mintedSinceConfigure() != 1 || e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the mismatched token is still valid")
	}
	if ops := opsOf(e.fake.Calls()); !reflect.DeepEqual(ops, []string{"token", "revoke"}) {
		t.Fatalf("calls = %v", ops)
	}
	e.assertNoSecretsLogged()
}

func TestCredsInvalidScopeIsA400WithoutToken(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("unknown-scope", map[string]any{"scopes": "roles:read"})
	resp, err := e.request(logical.ReadOperation, "creds/unknown-scope", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid_scope") {
		t.Fatalf("want a 400 saying invalid_scope, got resp=%s err=%v", errorText(resp), err)
	}
	if e.mintedSinceConfigure() != 0 {
		t.Fatal("a token was minted")
	}
}

func TestCredsReferentialTokenIntrospectedForID(t *testing.T) {
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

func TestCredsShorterTokenCapsTheLease(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 200, Times: 1,
		Body: `{"access_token":"` + jwtLike(600*time.Second) + `","token_type":"Bearer","expires_in":600,"scope":"identities:read"}`})
	resp := e.issue("sync", nil)
	if resp.Secret.TTL > 600*time.Second || resp.Secret.MaxTTL > 600*time.Second || resp.Secret.TTL < 590*time.Second {
		t.Fatalf("lease ttl %v max %v, want capped at the token's 600s", resp.Secret.TTL, resp.Secret.MaxTTL)
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "sooner than the 2h asked for") {
		t.Fatalf("warnings %v", resp.Warnings)
	}
}

func TestCredsRenewNeverPassesTheTokenEnd(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "3h"})
	issued := time.Now()
	resp := e.issue("sync", nil)

	renewed, err := e.renew(resp.Secret, 0, issued)
	if err != nil || renewed.IsError() || renewed.Secret.TTL != time.Hour {
		t.Fatalf("renew with no increment: ttl %v err %v resp %s", renewed.Secret.TTL, err, errorText(renewed))
	}
	renewed, _ = e.renew(resp.Secret, 2*time.Hour, issued)
	if renewed.Secret.TTL != 2*time.Hour {
		t.Fatalf("renew by 2h: ttl %v", renewed.Secret.TTL)
	}
	renewed, _ = e.renew(resp.Secret, 10*time.Hour, issued)
	if renewed.Secret.TTL > 3*time.Hour || renewed.Secret.TTL < 3*time.Hour-5*time.Second {
		t.Fatalf("renew past the end: ttl %v warnings %v", renewed.Secret.TTL, renewed.Warnings)
	}
	if calls := e.fake.Calls(); len(calls) != 1 {
		t.Fatalf("renewal must not call Beyond Identity, calls: %v", opsOf(calls))
	}

	// Once the token has ended, renewal refuses.
	expired := *resp.Secret
	expired.InternalData = withExpiry(t, resp.Secret.InternalData, time.Now().Add(-time.Second))
	renewed, err = e.renew(&expired, time.Hour, issued)
	if err != nil || renewed == nil || !renewed.IsError() || !strings.Contains(renewed.Error().Error(), "cannot be renewed") {
		t.Fatalf("renewing an ended token: resp=%s err=%v", errorText(renewed), err)
	}
}

func TestCredsRevokeExactlyOnceUpstream(t *testing.T) {
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.fake.ResetCalls()

	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	calls := e.fake.Calls()
	if len(calls) != 1 || calls[0].Op != fakebi.OpRevoke || calls[0].Form.Get("token") != token {
		t.Fatalf("want one revoke carrying the token, got %v", opsOf(calls))
	}
	assertBasicAuth(t, calls[0])
	if e.fake.IsActive(token) {
		t.Fatal("token still active after revocation")
	}
	// Revoking again (Vault retrying) is harmless: Beyond Identity says 200.
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	e.assertNoSecretsLogged()
}

func TestCredsSurviveRoleDeletion(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	issued := time.Now()
	resp := e.issue("sync", nil)
	e.mustOK(logical.DeleteOperation, "roles/sync", nil)
	if !e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("deleting the role revoked its credential")
	}
	if renewed, err := e.renew(resp.Secret, time.Hour, issued); err != nil || renewed.IsError() {
		t.Fatalf("renew after role deletion: %v %s", err, errorText(renewed))
	}
	if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatalf("revoke after role deletion: %v", err)
	}
}

func TestCredsRevokeRetriesOnlyWhatCannotHaveHappened(t *testing.T) {
	tests := map[string]struct {
		fault fakebi.Fault
		calls int  // revoke calls the one revocation makes
		fails bool // whether it is returned to Vault to retry later
	}{
		"503 once is retried at once":     {fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable"}`, Times: 1}, 2, false},
		"429 once honours Retry-After":    {fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`, Header: map[string]string{"Retry-After": "1"}, Times: 1}, 2, false},
		"502 once is retried at once":     {fakebi.Fault{Status: 502, Body: "bad gateway", ContentType: "text/plain", Times: 1}, 2, false},
		"503 that lasts is left to Vault": {fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"down"}`}, 4, true},
		"500":                             {fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error","message":"oops"}`}, 1, true},
		"html page with 200":              {fakebi.Fault{Status: 200, Body: `<html><body>Sign in</body></html>`, ContentType: "text/html"}, 1, true},
		"redirect":                        {fakebi.Fault{Status: 302, Header: map[string]string{"Location": "https://login.example.com/"}}, 1, true},
		"connection reset":                {fakebi.Fault{ResetConnection: true}, 1, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, resp := newIssuedCredential(t)
			token := resp.Data["access_token"].(string)
			e.fake.ResetCalls()
			e.fake.SetFault(fakebi.OpRevoke, tc.fault)
			_, err := e.revoke(resp.Secret)
			if calls := len(e.fake.CallsTo(fakebi.OpRevoke)); calls != tc.calls {
				t.Fatalf("%d revoke calls, want %d", calls, tc.calls)
			}
			if !tc.fails {
				if err != nil || e.fake.IsActive(token) {
					t.Fatalf("a transient failure should be retried within the revocation: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "revoke call to Beyond Identity") {
				t.Fatalf("want an error naming the revoke call so Vault retries, got %v", err)
			}
			if !e.fake.IsActive(token) {
				t.Fatal("the fault should have left the token active")
			}
			// Vault's later retry succeeds.
			e.fake.ClearFaults()
			if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(token) {
				t.Fatalf("retry: %v", err)
			}
			e.assertNoSecretsLogged()
		})
	}
}

func TestCredsRevokeOfExpiredTokenSucceedsWhateverHappens(t *testing.T) {
	e, resp := newIssuedCredential(t)
	expired := *resp.Secret
	expired.InternalData = withExpiry(t, resp.Secret.InternalData, time.Now().Add(-2*expiredMargin))
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	if _, err := e.revoke(&expired); err != nil {
		t.Fatalf("an expired token needs no revocation: %v", err)
	}
	e.mustOK(logical.DeleteOperation, "config", nil)
	if _, err := e.revoke(&expired); err != nil {
		t.Fatalf("an expired token needs no revocation, even unconfigured: %v", err)
	}
}

func TestCredsRevokeRefusesAnotherApplicationsSilentSuccess(t *testing.T) {
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)

	e.switchToSecondApplication()
	e.fake.ResetCalls()

	_, err := e.revoke(resp.Secret)
	if err == nil || !strings.Contains(err.Error(), "would ignore") {
		t.Fatalf("revoking with another application's credentials must fail, got %v", err)
	}
	if len(e.fake.CallsTo(fakebi.OpRevoke)) != 0 || !e.fake.IsActive(token) {
		t.Fatal("a meaningless revocation was sent or the token was touched")
	}
	// Configuring the original application again makes it revocable.
	e.mustOK(logical.UpdateOperation, "config", e.configData(nil))
	if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(token) {
		t.Fatalf("revoke with the original application: %v", err)
	}
}

func TestCredsRevokeWithoutConfigIsRetried(t *testing.T) {
	e, resp := newIssuedCredential(t)
	e.mustOK(logical.DeleteOperation, "config", nil)
	if _, err := e.revoke(resp.Secret); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("want an error so Vault retries, got %v", err)
	}
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

func TestCredsLongerTokenKeepsThePlannedLease(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 200, Times: 1,
		Body: `{"access_token":"` + jwtLike(7776000*time.Second) + `","token_type":"Bearer","expires_in":7776000,"scope":"identities:read"}`})
	resp := e.issue("sync", nil)
	if resp.Secret.TTL != time.Hour || resp.Secret.MaxTTL != time.Hour || resp.Secret.Renewable {
		t.Fatalf("lease ttl %v max %v renewable %v, want the planned hour", resp.Secret.TTL, resp.Secret.MaxTTL, resp.Secret.Renewable)
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "later than the 1h asked for") {
		t.Fatalf("warnings %v", resp.Warnings)
	}
	// The recorded end is the token's real one, so a failing revocation is
	// retried until then instead of being taken for an expired token.
	lease, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil || time.Until(lease.expiresAt()) < 2000*time.Hour {
		t.Fatalf("lease data keeps the end %v (%v)", lease.expiresAt(), err)
	}
}

func TestCredsTTLZeroMeansTheRoleDefault(t *testing.T) {
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	resp := e.issue("sync", map[string]any{"ttl": 0})
	if resp.Secret.TTL != time.Hour || e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("expiration_time") != "7200" {
		t.Fatalf("lease ttl %v", resp.Secret.TTL)
	}
}
