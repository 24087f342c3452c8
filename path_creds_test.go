package beyondidentity

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestCredsIssueExactlyOneMint(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read,groups:read", "ttl": "1h", "max_ttl": "24h"})
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
	if resp.Secret.MaxTTL != 24*time.Hour {
		t.Fatalf("lease max ttl %v, want exactly the role's max_ttl", resp.Secret.MaxTTL)
	}
	if len(resp.Warnings) != 0 {
		t.Fatalf("unexpected warnings %v", resp.Warnings)
	}
	e.assertNoSecretsLogged()
}

func TestCredsDefaultRoleIsNinetyDaysAndNotRenewable(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestRenewalAcrossTheLeaseLife renews at 10%, 50%, 75% and 95% of a
// lease's life: each renewal is granted min(increment or ttl, time left to
// the hard end), which counts from the lease's issue.
func TestRenewalAcrossTheLeaseLife(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		ttl, maxTTL, increment time.Duration
	}{
		"40s/60s role renewed by 20s":     {40 * time.Second, 60 * time.Second, 20 * time.Second},
		"40s/60s role without increment":  {40 * time.Second, 60 * time.Second, 0},
		"24h/72h role renewed by 24h":     {24 * time.Hour, 72 * time.Hour, 24 * time.Hour},
		"1h/90d role renewed by 1h":       {time.Hour, 2160 * time.Hour, time.Hour},
		"30m/1h role renewed beyond it":   {30 * time.Minute, time.Hour, 3 * time.Hour},
		"10s/10m role renewed by nothing": {10 * time.Second, 10 * time.Minute, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			e.writeRole("r", map[string]any{"scopes": "identities:read", "ttl": int(tc.ttl.Seconds()), "max_ttl": int(tc.maxTTL.Seconds())})
			resp := e.issue("r", nil)
			for _, fraction := range []float64{0.10, 0.50, 0.75, 0.95} {
				elapsed := time.Duration(fraction * float64(tc.maxTTL)).Truncate(time.Second)
				// The token was minted just now: pretend the lease was
				// issued elapsed ago, and its token minted with it.
				issued := time.Now().Add(-elapsed)
				secret := *resp.Secret
				secret.InternalData = withExpiry(t, resp.Secret.InternalData, issued.Add(tc.maxTTL))
				granted, err := e.vaultRenew(&secret, tc.increment, issued)
				want := tc.increment
				if want == 0 {
					want = tc.ttl
				}
				want = min(want, tc.maxTTL-elapsed)
				if err != nil || granted > want || granted < want-time.Second {
					t.Errorf("at %.0f%% of the lease's life: granted %v (%v), want %v", fraction*100, granted, err, want)
				}
			}
			if calls := e.fake.Calls(); len(calls) != 1 {
				t.Fatalf("renewal must not call Beyond Identity, calls: %v", opsOf(calls))
			}
		})
	}
}

// A renewal never passes the token's end, even when that comes before the
// lease's planned hard end; past it, renewal refuses.
func TestRenewalNeverPassesTheTokenEnd(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "3h"})
	issued := time.Now()
	resp := e.issue("sync", nil)

	early := *resp.Secret
	early.InternalData = withExpiry(t, resp.Secret.InternalData, issued.Add(90*time.Minute))
	granted, err := e.vaultRenew(&early, 2*time.Hour, issued)
	if err != nil || granted > 90*time.Minute || granted < 90*time.Minute-2*time.Second {
		t.Fatalf("renewing a lease whose token ends in 90m by 2h: granted %v (%v)", granted, err)
	}

	expired := *resp.Secret
	expired.InternalData = withExpiry(t, resp.Secret.InternalData, time.Now().Add(-time.Second))
	renewed, err := e.renew(&expired, time.Hour, issued)
	if err != nil || renewed == nil || !renewed.IsError() || !strings.Contains(renewed.Error().Error(), "cannot be renewed") {
		t.Fatalf("renewing an ended token: resp=%s err=%v", errorText(renewed), err)
	}
	if _, err := e.vaultRenew(resp.Secret, time.Hour, issued.Add(-3*time.Hour-time.Second)); err == nil ||
		!strings.Contains(err.Error(), "cannot be renewed") {
		t.Fatalf("renewing past the hard end: %v", err)
	}
}

// A lease is exactly as long as asked, even when the token's end, known to
// the second, falls a little before or after the plan: a mint that crosses
// a second boundary must not make a one-hour role issue a 59m59s lease.
func TestCredsLeaseIsExactlyAsAsked(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-1900 * time.Millisecond, -900 * time.Millisecond, 0, 900 * time.Millisecond} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
			e.fake.SetClock(func() time.Time { return time.Now().Add(skew) })
			resp := e.issue("sync", nil)
			if resp.Secret.TTL != time.Hour || resp.Secret.MaxTTL != 2*time.Hour || len(resp.Warnings) != 0 {
				t.Fatalf("Beyond Identity's clock %v off: lease ttl %v max %v warnings %v, want exactly 1h and 2h",
					skew, resp.Secret.TTL, resp.Secret.MaxTTL, resp.Warnings)
			}
		})
	}
}

func TestCredsRevokeExactlyOnceUpstream(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

func TestCredsRevokeRetriesWhatMayPass(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		fault fakebi.Fault
		calls int  // revoke calls the one revocation makes
		fails bool // whether it is returned to Vault to retry later
	}{
		"503 once is retried at once":     {fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable"}`, Times: 1}, 2, false},
		"429 once honours Retry-After":    {fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`, Header: map[string]string{"Retry-After": "1"}, Times: 1}, 2, false},
		"502 once is retried at once":     {fakebi.Fault{Status: 502, Body: "bad gateway", ContentType: "text/plain", Times: 1}, 2, false},
		"500 once is retried at once":     {fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`, Times: 1}, 2, false},
		"a reset once is retried at once": {fakebi.Fault{ResetConnection: true, Times: 1}, 2, false},
		"503 that lasts is left to Vault": {fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"down"}`}, 4, true},
		"html page with 200":              {fakebi.Fault{Status: 200, Body: `<html><body>Sign in</body></html>`, ContentType: "text/html"}, 1, true},
		"redirect":                        {fakebi.Fault{Status: 302, Header: map[string]string{"Location": "https://login.example.com/"}}, 1, true},
		"403 is not retried":              {fakebi.Fault{Status: 403, Body: `{"code":"forbidden"}`}, 1, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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
				e.assertNoRevocationRecords()
				return
			}
			if err == nil || !strings.Contains(err.Error(), "revoke call to Beyond Identity") ||
				!strings.Contains(err.Error(), "keeps retrying the revocation in the background") {
				t.Fatalf("want an error naming the revoke call and the background retry, got %v", err)
			}
			if !e.fake.IsActive(token) {
				t.Fatal("the fault should have left the token active")
			}
			if got := e.revocationRecords(); len(got) != 1 || got[0].Token != token || got[0].Attempts != 1 {
				t.Fatalf("the failed revocation is not recorded for the background worker: %d records", len(got))
			}
			// Vault's later retry succeeds, and the record goes.
			e.fake.ClearFaults()
			if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(token) {
				t.Fatalf("retry: %v", err)
			}
			e.assertNoRevocationRecords()
			e.assertNoSecretsLogged()
		})
	}
}

func TestCredsRevokeOfExpiredTokenSucceedsWhateverHappens(t *testing.T) {
	t.Parallel()
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

// Beyond Identity answers 200 to a revocation by another application and
// ignores it: an old lease must be revoked with its own application's
// credentials, kept after the config moved.
func TestCredsOldLeaseIsRevokedWithItsOwnApplication(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.switchToSecondApplication()
	e.fake.ResetCalls()

	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoking a lease of the previous application: %v", err)
	}
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 1 || revokes[0].BasicUser != testClientID || revokes[0].BasicPassword != testClientSecret || revokes[0].Status != 200 {
		t.Fatalf("want one revoke with the first application's credentials, got %v", opsOf(e.fake.Calls()))
	}
	if e.fake.IsActive(token) {
		t.Fatal("the token is still active")
	}
}

// The client counts as much as the application: a lease issued to another
// client of the same application is not revoked with this one's
// credentials, which Beyond Identity would ignore.
func TestCredsLeaseOfAnotherClientIsNotRevokedWithThisOne(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	lease, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	lease.ClientID = "client-retired"
	other := *resp.Secret
	other.InternalData = lease.internalData()
	other.InternalData["secret_type"] = secretTypeToken
	e.fake.ResetCalls()
	if _, err := e.revoke(&other); err == nil || !strings.Contains(err.Error(), "to client client-retired") {
		t.Fatalf("revoking another client's token: %v", err)
	}
	if calls := len(e.fake.CallsTo(fakebi.OpRevoke)); calls != 0 {
		t.Fatalf("%d revoke calls made with credentials Beyond Identity would ignore", calls)
	}
}

func TestCredsDroppedCredentialsCannotRevoke(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.switchToSecondApplication()
	list := e.mustOK(logical.ListOperation, "config/retained/", nil)
	id := list.Data["keys"].([]string)[0]
	dropped := e.mustOK(logical.DeleteOperation, "config/retained/"+id, nil)
	if len(dropped.Warnings) != 1 || !strings.Contains(dropped.Warnings[0], "can no longer be revoked") {
		t.Fatalf("dropping retained credentials must say what it costs, got %s", warningsOf(dropped))
	}
	e.fake.ResetCalls()

	_, err := e.revoke(resp.Secret)
	if err == nil || !strings.Contains(err.Error(), "no longer kept") || !strings.Contains(err.Error(), "would ignore") {
		t.Fatalf("revoking without the issuing application's credentials must fail, got %v", err)
	}
	if len(e.fake.CallsTo(fakebi.OpRevoke)) != 0 || !e.fake.IsActive(token) {
		t.Fatal("a meaningless revocation was sent or the token was touched")
	}
	e.assertNoRevocationRecords() // nothing could ever complete it
	// Configuring the original application again makes it revocable.
	e.mustOK(logical.UpdateOperation, "config", e.configData(nil))
	if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(token) {
		t.Fatalf("revoke with the original application: %v", err)
	}
}

func TestCredsRevokeAfterConfigDelete(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	e.mustOK(logical.DeleteOperation, "config", nil)
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("a lease issued before the config was deleted must still be revoked: %v", err)
	}
	if e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatal("the token is still active")
	}
}

func TestCredsLongerTokenKeepsThePlannedLease(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
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
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	resp := e.issue("sync", map[string]any{"ttl": 0})
	if resp.Secret.TTL != time.Hour || e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("expiration_time") != "7200" {
		t.Fatalf("lease ttl %v", resp.Secret.TTL)
	}
}

// internalData is built field by field: it must stay leaseData's JSON plus
// the token, whatever fields leaseData gains, and read back as the lease.
func TestLeaseInternalDataIsTheLeaseJSON(t *testing.T) {
	t.Parallel()
	full := leaseData{issuedToken: issuedToken{AccessToken: secretOf("the-token"), TokenID: "id", Role: "sync",
		Issuer: "https://auth.example/v1/tenants/t/realms/r/applications/a", ClientID: "client", ExpiresAt: 1, EndsBy: 2,
		Static: true, SecretFingerprint: "fingerprint"},
		TTL: 3, Lifetime: 4, EntityID: "entity"}
	// Every field is set, so that a field added to leaseData fails here
	// until it is set, and so checked, too.
	fields := reflect.VisibleFields(reflect.TypeOf(full))
	for _, field := range fields {
		if value := reflect.ValueOf(full).FieldByIndex(field.Index); field.IsExported() && value.IsZero() {
			t.Fatalf("set leaseData.%s in this test", field.Name)
		}
	}
	noEnd := full
	noEnd.EndsBy, noEnd.EntityID, noEnd.Static, noEnd.SecretFingerprint = 0, "", false, ""
	for _, lease := range []leaseData{full, noEnd} {
		want := withToken(lease, lease.AccessToken)
		var got map[string]any
		encoded, _ := json.Marshal(lease.internalData())
		if err := json.Unmarshal(encoded, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("internal data %v (%v), want the lease's JSON and its token %v", got, err, want)
		}
		back, err := leaseFromInternal(lease.internalData())
		sameToken := err == nil && back.AccessToken.Reveal() == lease.AccessToken.Reveal()
		back.AccessToken, lease.AccessToken = biclient.Secret{}, biclient.Secret{}
		if !sameToken || back != lease {
			t.Fatalf("read back %+v (%v; same token: %v), want %+v", back, err, sameToken, lease)
		}
	}
}
