package beyondidentity

// The lease: its data, renewals and revocations.

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

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
			if got := e.revocationRecords(); len(got) != 1 || got[0].AccessToken.Reveal() != token || got[0].Attempts != 1 {
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

// internalData is built field by field: it must stay leaseData's JSON, the
// token's among it, whatever fields leaseData gains, and read back as the
// lease.
func TestLeaseInternalDataIsTheLeaseJSON(t *testing.T) {
	t.Parallel()
	full := leaseData{storedToken: stored(issuedToken{AccessToken: secretOf("the-token"), TokenID: "id", Role: "sync",
		Issuer: "https://auth.example/v1/tenants/t/realms/r/applications/a", ClientID: "client", ExpiresAt: 1, EndsBy: 2,
		Static: true, SecretFingerprint: "fingerprint"}),
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
		var got, want map[string]any
		encoded, _ := json.Marshal(lease.internalData())
		wantEncoded, _ := json.Marshal(lease)
		if err := errors.Join(json.Unmarshal(encoded, &got), json.Unmarshal(wantEncoded, &want)); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatal("the internal data is not the lease's JSON") // not printed: both hold the token
		}
		back, err := leaseFromInternal(lease.internalData())
		sameToken := err == nil && back.AccessToken.Reveal() == lease.AccessToken.Reveal()
		back.AccessToken, lease.AccessToken = storedSecret{}, storedSecret{}
		if !sameToken || back != lease {
			t.Fatalf("read back %+v (%v; same token: %v), want %+v", back, err, sameToken, lease)
		}
	}
}

func TestTokenIsNotExpiredBeforeItsLatestEnd(t *testing.T) {
	t.Parallel()
	now := time.Now()
	token := issuedToken{ExpiresAt: now.Add(-time.Hour).Unix(), EndsBy: now.Add(time.Hour).Unix()}
	if token.surelyExpired(now) {
		t.Fatal("a token whose latest end is an hour away was counted expired")
	}
	if !token.surelyExpired(now.Add(time.Hour + expiredMargin + time.Second)) {
		t.Fatal("a token past its latest end and the margin is not counted expired")
	}
	if token.surelyExpired(now.Add(time.Hour + expiredMargin - time.Second)) {
		t.Fatal("the margin for clock skew is not applied")
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
