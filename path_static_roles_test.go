package beyondidentity

// static-roles/ and static-creds/.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestAStaticRoleMovesFromPeriodToScheduleAndBack(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_period": "1h"})
	start := fake.Now()
	e.fake.ResetCalls()
	// Every 6h: the default grace is 36m. The current token, minted for 1h
	// and a 6m grace, ends at 02:06, so it is replaced 36m before that.
	resp := e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"rotation_schedule": "0 */6 * * *"})
	if len(e.fake.Calls()) != 0 || resp.Data["rotation_schedule"] != "0 */6 * * *" || resp.Data["rotation_period"] != nil {
		t.Fatalf("changing to a schedule minted (%v) or answers %v", opsOf(e.fake.Calls()), resp.Data)
	}
	if r := e.staticRecord("cal"); !r.NextRotation.Equal(start.Add(30 * time.Minute)) {
		t.Fatalf("next rotation %s, want before the current token's end less the new grace", r.NextRotation)
	}
	e.advanceTo(fake, start.Add(30*time.Minute))
	r := e.staticRecord("cal")
	six := time.Date(2030, time.January, 4, 6, 0, 0, 0, time.UTC)
	if !r.LastRotation.Equal(start.Add(30*time.Minute)) || !r.NextRotation.Equal(six) {
		t.Fatalf("rotated at %s, next at %s; want now and 06:00", r.LastRotation, r.NextRotation)
	}
	// And back to a period, counted from the last rotation.
	resp = e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"rotation_period": "1h"})
	r = e.staticRecord("cal")
	if resp.Data["rotation_schedule"] != nil || resp.Data["rotation_period"] != int64(3600) || r.RotationSchedule != "" || r.RotationWindow != 0 ||
		!r.NextRotation.Equal(r.LastRotation.Add(time.Hour)) {
		t.Fatalf("back to a period: %v, next at %s", resp.Data, r.NextRotation)
	}
	creds := e.mustOK(logical.ReadOperation, "static-creds/cal", nil)
	if creds.Data["rotation_period"] != int64(3600) || creds.Data["rotation_schedule"] != nil {
		t.Fatalf("static-creds after going back to a period: %v", keysOf(creds.Data))
	}
}

func TestStaticRoleMintsItsFirstTokenAtOnce(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	mints := e.fake.CallsTo(fakebi.OpToken)
	if len(mints) != 1 || mints[0].Form.Get("expiration_time") != "3960" || mints[0].Form.Get("scope") != "identities:read" {
		t.Fatalf("want one mint for the period and its grace (3600+360 s), got %v", opsOf(e.fake.Calls()))
	}
	creds := e.mustOK(logical.ReadOperation, "static-creds/sync", nil)
	minted := e.lastToken()
	want := map[string]any{
		"access_token": minted.Value, "token_type": "Bearer", "token_id": minted.ID, "role": "sync",
		"last_vault_rotation": fake.Now().UTC().Format(time.RFC3339), "rotation_period": int64(3600), "ttl": int64(3600),
		"expires_at": minted.ExpiresAt.UTC().Format(time.RFC3339),
	}
	for field, value := range want {
		if creds.Data[field] != value {
			t.Errorf("static-creds %s = %#v, want %#v", field, creds.Data[field], value)
		}
	}
	if creds.Secret != nil {
		t.Fatal("static-creds created a lease")
	}
	role := e.mustOK(logical.ReadOperation, "static-roles/sync", nil)
	if role.Data["token_id"] != minted.ID || role.Data["grace_period"] != int64(360) || role.Data["last_rotation_error"] != "" ||
		role.Data["next_vault_rotation"] != fake.Now().Add(time.Hour).UTC().Format(time.RFC3339) {
		t.Fatalf("static role reads %v", role.Data)
	}
	for _, value := range role.Data {
		if value == minted.Value {
			t.Fatal("reading the static role shows its token")
		}
	}
}

func TestStaticRoleWhoseFirstMintFailsIsNotStored(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope","error_description":"not allowed"}`})
	resp, err := e.request(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read"})
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid_scope") {
		t.Fatalf("want the refusal as a 400, got %s %v", errorText(resp), err)
	}
	if read, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); read != nil {
		t.Fatal("a static role whose first mint failed was stored")
	}
	if _, counted := e.scrape()["beyondidentity_static_rotations_total"]; counted {
		t.Fatal("a role that was never stored counts a failed rotation: any name would become a label value")
	}
	// A token minted but refused (other scopes) is revoked, and nothing stored.
	e.fake.ClearFaults()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(a map[string]any) { a["scope"] = "identities:read tokens:read" }})
	if resp, _ := e.request(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read"}); resp == nil || !resp.IsError() {
		t.Fatal("a wider grant was accepted")
	}
	if read, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); read != nil || e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("a refused token was stored or left valid")
	}
}

func TestStaticCredsReturnsTheSameTokenAndMintsNothing(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	e.fake.ResetCalls()
	for i := 0; i < 5; i++ {
		fake.Advance(10 * time.Minute)
		if e.staticToken() != first {
			t.Fatal("static-creds changed token between rotations")
		}
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("reading static-creds called Beyond Identity: %v", opsOf(calls))
	}
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["ttl"]; ttl != int64(600) {
		t.Fatalf("ttl %v, want the 600 s left until the rotation", ttl)
	}
}

func TestStaticCredsRefusesATokenThatEnded(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{}`})
	for elapsed := time.Duration(0); elapsed <= 66*time.Minute; elapsed += time.Minute {
		e.advance(fake, time.Minute)
	}
	resp, err := e.request(logical.ReadOperation, "static-creds/sync", nil)
	if status, message := statusOf(resp, err); status != 503 || !strings.Contains(message, "rotating it failed") {
		t.Fatalf("reading a static role whose token ended: %d %s", status, message)
	}
}

func TestDeletingAStaticRoleRevokesItsTokens(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	first := e.staticToken()
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	second := e.staticToken()
	e.mustOK(logical.DeleteOperation, "static-roles/sync", nil)
	if e.fake.IsActive(first) || e.fake.IsActive(second) {
		t.Fatal("deleting the static role left a token valid")
	}
	if resp, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); resp != nil {
		t.Fatal("the static role is still there")
	}
}

func TestStaticRoleChanges(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	// Another period reschedules without a new token.
	e.mustOK(logical.UpdateOperation, "static-roles/sync", map[string]any{"rotation_period": "30m", "grace_period": "5m"})
	if e.staticToken() != first {
		t.Fatal("changing the period minted a token")
	}
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["ttl"]; ttl != int64(1800) {
		t.Fatalf("ttl %v after shortening the period to 30m", ttl)
	}
	// Other scopes need another token at once.
	e.mustOK(logical.UpdateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read,groups:read"})
	if e.staticToken() == first || !e.fake.IsActive(first) {
		t.Fatal("changing the scopes must rotate at once, keeping the old token for its grace")
	}
	if got := e.lastToken().Scopes; len(got) != 2 {
		t.Fatalf("the new token carries %v", got)
	}
	e.advance(fake, 5*time.Minute)
	if e.fake.IsActive(first) {
		t.Fatal("the old token outlived the new grace")
	}
}

// static-creds' ttl counts to the rotation that replaces the token it is
// returned with, never to a time at which that token stays the same: a
// write that leaves the timing as it was keeps an overdue rotation due
// (Vault's database engine reset it to the next scheduled time), and a
// failing rotation counts to its retry.
func TestStaticCredsTTLCountsToTheRotationThatReplacesTheToken(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h"})
	first := e.staticRecord("cal").Current.Token
	friday0200 := friday0100.Add(time.Hour)
	fake.Set(friday0200) // the rotation is due; the background has yet to run it
	e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"description": "nightly export"})
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/cal", nil).Data["ttl"]; ttl != int64(0) {
		t.Fatalf("ttl %v for a token whose replacement is due now", ttl)
	}
	e.advance(fake, 0)
	if r := e.staticRecord("cal"); r.Current.Token == first || !r.LastRotation.Equal(friday0200) {
		t.Fatalf("the rotation due at 02:00 ran at %s", r.LastRotation)
	}

	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{}`})
	e.advanceTo(fake, friday0200.Add(24*time.Hour))
	creds := e.mustOK(logical.ReadOperation, "static-creds/cal", nil)
	if creds.Data["ttl"] != int64(rotationRetryBase/time.Second) {
		t.Fatalf("ttl %v while the rotation fails, want the seconds to its retry", creds.Data["ttl"])
	}
}

// A token Beyond Identity made shorter than asked, and which has ended
// before its replacement is due, is a 503 that says when that is and why.
func TestStaticCredsOfAShortTokenSaysWhenItsReplacementComes(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	app := testApp()
	app.CapLifetime = time.Hour
	e.fake.AddApplication(app)
	fake := e.useFakeClock()
	e.configure()
	e.mustOK(logical.CreateOperation, "static-roles/capped", map[string]any{"scopes": "identities:read", "rotation_period": "24h"})
	due := e.staticRecord("capped").NextRotation
	e.advance(fake, time.Hour)
	status, message := statusOf(e.request(logical.ReadOperation, "static-creds/capped", nil))
	if status != http.StatusServiceUnavailable || !strings.Contains(message, "its replacement is due at "+rfc3339(due)) ||
		!strings.Contains(message, "shorter than asked") || strings.Contains(message, "rotating it failed") {
		t.Fatalf("%d %q", status, message)
	}
}
