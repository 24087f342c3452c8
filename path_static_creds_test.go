package beyondidentity

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// static-creds/.

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

// static-creds' ttl counts to the rotation that replaces the token it is
// returned with, never to a time at which that token stays the same: a
// write that leaves the timing as it was keeps an overdue rotation due
// (Vault's database engine reset it to the next scheduled time), and a
// failing rotation counts to its retry.
func TestStaticCredsTTLCountsToTheRotationThatReplacesTheToken(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h"})
	first := e.staticRecord("cal").Current.AccessToken.Reveal()
	friday0200 := friday0100.Add(time.Hour)
	fake.Set(friday0200) // the rotation is due; the background has yet to run it
	e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"description": "nightly export"})
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/cal", nil).Data["ttl"]; ttl != int64(0) {
		t.Fatalf("ttl %v for a token whose replacement is due now", ttl)
	}
	e.advance(fake, 0)
	if r := e.staticRecord("cal"); r.Current.AccessToken.Reveal() == first || !r.LastRotation.Equal(friday0200) {
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
