package beyondidentity

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// Rules of the contract that no other test pins down.

// A grant wider than asked is refused as firmly as a narrower one.
func TestCredsExtraScopesAreRefused(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) { app.WidenScopes = []string{"tokens:read"} })
	resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400, got resp=%s err=%v", errorText(resp), err)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, "missing: none; extra: tokens:read") || !strings.Contains(msg, "the token was revoked") {
		t.Fatalf("error does not name the extra scope and the revocation: %s", msg)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the widened token is still valid")
	}
}

// An opaque token whose introspection is active but gives no jti is issued,
// with an empty token_id and a warning.
func TestCredsIntrospectionWithoutJTI(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, referentialTokens)
	e.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Status: 200, Body: `{"active":true,"scope":"identities:read"}`})
	resp := e.issue("sync", nil)
	if resp.Data["token_id"] != "" || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "did not give the opaque token's jti") {
		t.Fatalf("token_id %q warnings %v", resp.Data["token_id"], resp.Warnings)
	}
	if !e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("the credential should still be issued")
	}
}

// expires_at is RFC 3339 in UTC, whatever the time zone of the host.
func TestCredsExpiresAtIsUTC(t *testing.T) {
	t.Parallel()
	_, resp := newIssuedCredential(t)
	expiresAt := resp.Data["expires_at"].(string)
	parsed, err := time.Parse(time.RFC3339, expiresAt)
	if err != nil || !strings.HasSuffix(expiresAt, "Z") || parsed.Location() != time.UTC {
		t.Fatalf("expires_at %q is not RFC 3339 UTC (%v)", expiresAt, err)
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

// The clocks of Vault and Beyond Identity disagree. Beyond Identity ahead:
// the lease is still as asked, and the token's later end keeps a failed
// revocation alive until that end. Behind: the token ends sooner by Vault's
// clock, and the lease ends with it.
func TestClockSkewBetweenVaultAndBeyondIdentity(t *testing.T) {
	t.Parallel()
	t.Run("Beyond Identity ten minutes ahead", func(t *testing.T) {
		t.Parallel()
		e, resp := newIssuedCredentialWithSkew(t, 10*time.Minute)
		// By Vault's clock, expires_in says the token ends within the
		// hour asked for; only its JWT says later.
		if resp.Secret.TTL != time.Hour || len(resp.Warnings) != 0 {
			t.Fatalf("lease %v warnings %v, want the hour asked for", resp.Secret.TTL, resp.Warnings)
		}
		fake := e.useFakeClock()
		fake.Advance(time.Hour + 2*expiredMargin) // past the lease, not past the token's end
		e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
		if _, err := e.revoke(resp.Secret); err == nil {
			t.Fatal("a token Beyond Identity still holds valid was counted expired")
		}
	})
	t.Run("Beyond Identity ten minutes behind", func(t *testing.T) {
		t.Parallel()
		_, resp := newIssuedCredentialWithSkew(t, -10*time.Minute)
		if resp.Secret.MaxTTL > 50*time.Minute || resp.Secret.MaxTTL < 50*time.Minute-5*time.Second ||
			!strings.Contains(strings.Join(resp.Warnings, " "), "sooner than the 1h asked for") {
			t.Fatalf("lease max %v warnings %v, want it to end with the token, 50 minutes from now", resp.Secret.MaxTTL, resp.Warnings)
		}
	})
}

// newIssuedCredentialWithSkew issues a one-hour credential from a Beyond
// Identity whose clock is off by skew.
func newIssuedCredentialWithSkew(t *testing.T, skew time.Duration) (*testEnv, *logical.Response) {
	t.Helper()
	e := newSyncRoleBackend(t)
	e.fake.SetClock(func() time.Time { return time.Now().Add(skew) })
	return e, e.issue("sync", nil)
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

// Some gateways answer an error with a page that echoes the request: its
// body (a token being revoked or introspected) and its Authorization
// header. No such echo reaches a message.
func TestUpstreamErrorsThatEchoTheRequestAreScrubbed(t *testing.T) {
	t.Parallel()
	for _, op := range []fakebi.Op{fakebi.OpToken, fakebi.OpRevoke, fakebi.OpIntrospect} {
		t.Run(string(op), func(t *testing.T) {
			t.Parallel()
			e := newConfiguredBackend(t, referentialTokens)
			var resp *logical.Response
			if op != fakebi.OpToken {
				resp = e.issue("sync", nil)
			}
			e.fake.SetFault(op, fakebi.Fault{Status: 400, EchoRequest: true})
			var message string
			switch op {
			case fakebi.OpToken:
				resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
				_, message = statusOf(resp, err)
			case fakebi.OpRevoke:
				_, err := e.revoke(resp.Secret)
				message = fmt.Sprint(err)
			case fakebi.OpIntrospect:
				issued := e.issue("sync", nil)
				message = strings.Join(issued.Warnings, " ")
			}
			if !strings.Contains(message, "cannot handle the request") || !strings.Contains(message, "[redacted]") {
				t.Fatalf("the echo did not reach the message, or was not scrubbed, so the test proves nothing: %s", message)
			}
			basic := base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + testClientSecret))
			for _, leaked := range []string{testClientSecret, url.QueryEscape(testClientSecret), basic} {
				if strings.Contains(message, leaked) {
					t.Fatalf("the message echoes the client credentials: %s", message)
				}
			}
			assertNoSecretIn(t, e, message)
			e.assertNoSecretsLogged()
		})
	}
}
