package beyondidentity

// creds/: one mint per credential, with the lease the plan says.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

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
	e.sys.MaxLeaseTTLVal = 768 * time.Hour
	e.configure()
	e.writeRole("full", map[string]any{"scopes": "identities:read"})
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

// TestConcurrentIssueAndRevoke issues and revokes hundreds of credentials
// from many goroutines while the config is rewritten (same application,
// other settings), and checks the books: every token the fake minted is
// either leased or revoked, and every revoked lease was revoked upstream
// exactly once.
func TestConcurrentIssueAndRevoke(t *testing.T) {
	t.Parallel()
	const (
		workers   = 16
		perWorker = 20 // 320 credentials
	)
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read,groups:read", "ttl": "1h"})
	// Slow enough that calls overlap unless something serialises them.
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 20 * time.Millisecond})
	e.fake.ResetMaxInFlight()

	type outcome struct {
		token   string
		revoked bool
	}
	results := make(chan outcome, workers*perWorker)
	failures := make(chan error, workers*perWorker+8)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
				if err != nil || resp.IsError() {
					failures <- fmt.Errorf("issue: %w %s", err, errorText(resp))
					continue
				}
				token := resp.Data["access_token"].(string)
				revoke := (w+i)%3 != 0 // revoke two thirds, keep the rest leased
				if revoke {
					if _, err := e.revoke(resp.Secret); err != nil {
						failures <- fmt.Errorf("revoke: %w", err)
						continue
					}
				}
				results <- outcome{token: token, revoked: revoke}
			}
		}(w)
	}
	// Config rewrites in the middle: same application, other settings.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 8; i++ {
			resp, err := e.request(logical.UpdateOperation, "config", map[string]any{
				"request_timeout": fmt.Sprintf("%ds", 10+i), "max_concurrent_requests": 4 + i%3,
			})
			if err != nil || (resp != nil && resp.IsError()) {
				failures <- fmt.Errorf("config rewrite: %w %s", err, errorText(resp))
			}
		}
	}()
	wg.Wait()
	close(results)
	close(failures)
	for err := range failures {
		t.Error(err)
	}

	revokeCalls := map[string]int{}
	for _, call := range e.fake.CallsTo(fakebi.OpRevoke) {
		revokeCalls[call.Form.Get("token")]++
	}
	leased := map[string]bool{}
	issued := 0
	for r := range results {
		issued++
		leased[r.token] = true
		switch {
		case r.revoked && revokeCalls[r.token] != 1:
			t.Errorf("a revoked lease's token was revoked upstream %d times", revokeCalls[r.token])
		case r.revoked && e.fake.IsActive(r.token):
			t.Error("a revoked lease's token is still active")
		case !r.revoked && (revokeCalls[r.token] != 0 || !e.fake.IsActive(r.token)):
			t.Error("a leased token was revoked")
		}
	}
	if issued != workers*perWorker {
		t.Fatalf("%d credentials issued, want %d", issued, workers*perWorker)
	}
	// Every token the fake minted is leased, or was revoked (the config
	// writes' test tokens).
	for _, token := range e.fake.Tokens() {
		if !leased[token.Value] && e.fake.IsActive(token.Value) {
			t.Errorf("token %s is neither leased nor revoked", token.ID)
		}
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Errorf("journal pages left after every request ended: %v", pages)
	}
	if peak := e.fake.MaxInFlight(); peak < 2 {
		t.Errorf("at most %d call was in flight at once: something holds a lock across calls to Beyond Identity", peak)
	}
	e.assertNoSecretsLogged()
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

func TestCredsOnUnconfiguredMountIsA400(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("reader", map[string]any{"scopes": "identities:read"})
	resp, err := e.request(logical.ReadOperation, "creds/reader", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "write beyondidentity/config first") {
		t.Fatalf("resp=%s err=%v", errorText(resp), err)
	}
}
