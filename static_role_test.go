package beyondidentity

// A static role's record and its timing: the schedule's times and the
// default grace.

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// newStaticRole returns a configured backend on a fake clock with static
// role "sync" (rotation every hour, a six-minute grace) just written.
func newStaticRole(t *testing.T) (*testEnv, *clock.Fake) {
	t.Helper()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.mustOK(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	return e, fake
}

// staticToken reads static-creds/sync and returns the token.
func (e *testEnv) staticToken() string {
	e.t.Helper()
	return e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["access_token"].(string)
}

// friday0100 is a Friday, 01:00 UTC.
var friday0100 = time.Date(2030, time.January, 4, 1, 0, 0, 0, time.UTC)

// newScheduledRole returns a configured backend whose fake clock reads
// Friday 01:00 UTC, with static role "cal" written with data.
func newScheduledRole(t *testing.T, data map[string]any) (*testEnv, *clock.Fake) {
	t.Helper()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	fake.Set(friday0100)
	e.configure()
	data["scopes"] = "identities:read"
	e.mustOK(logical.CreateOperation, "static-roles/cal", data)
	return e, fake
}

// staticRecord reads a static role's record.
func (e *testEnv) staticRecord(name string) *staticRole {
	e.t.Helper()
	r, err := readStaticRole(context.Background(), e.storage, name)
	if err != nil || r == nil {
		e.t.Fatalf("static role %s: %v", name, err)
	}
	return r
}

// lastMintLifetime is the expiration_time the last token call asked for.
func (e *testEnv) lastMintLifetime() string {
	e.t.Helper()
	mints := e.fake.CallsTo(fakebi.OpToken)
	return mints[len(mints)-1].Form.Get("expiration_time")
}

func TestAWeekdayScheduleRestsOverTheWeekend(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * 1-5", "rotation_window": "1h"})
	// Weekdays are 24h apart: the default grace is a tenth, 2h24m. The
	// first token lives until the due time (1h), its window and its grace.
	if got := e.lastMintLifetime(); got != "15840" {
		t.Fatalf("the first token was asked for %s s, want 3600+3600+8640", got)
	}
	// rotation_period is there for Vault Agent and consul-template, which
	// re-read at ttl only when it is: here the hour to the first time.
	creds := e.mustOK(logical.ReadOperation, "static-creds/cal", nil)
	if creds.Data["ttl"] != int64(3600) || creds.Data["rotation_schedule"] != "0 2 * * 1-5" ||
		creds.Data["rotation_window"] != int64(3600) || creds.Data["rotation_period"] != int64(3600) {
		t.Fatalf("static-creds reads %v", creds.Data["rotation_period"])
	}
	if grace := e.mustOK(logical.ReadOperation, "static-roles/cal", nil).Data["grace_period"]; grace != int64(8640) {
		t.Fatalf("default grace %v, want a tenth of the shortest interval (24h)", grace)
	}
	friday := e.staticRecord("cal").LastRotation
	e.advanceTo(fake, friday0100.Add(time.Hour)) // Friday 02:00
	r := e.staticRecord("cal")
	monday0200 := time.Date(2030, time.January, 7, 2, 0, 0, 0, time.UTC)
	if !r.LastRotation.After(friday) || !r.NextRotation.Equal(monday0200) {
		t.Fatalf("after Friday 02:00: rotated at %s, next at %s; want a rotation now and the next on Monday", r.LastRotation, r.NextRotation)
	}
	// Monday 02:00 is 72h away, plus the window and the grace.
	if got := e.lastMintLifetime(); got != "271440" {
		t.Fatalf("Friday's token was asked for %s s, want 259200+3600+8640", got)
	}
	if period := e.mustOK(logical.ReadOperation, "static-creds/cal", nil).Data["rotation_period"]; period != int64(259200) {
		t.Fatalf("static-creds' rotation_period %v after Friday's rotation, want the 72h to Monday's", period)
	}
	for _, day := range []time.Time{monday0200.Add(-48 * time.Hour), monday0200.Add(-24 * time.Hour), monday0200.Add(-time.Second)} {
		e.advanceTo(fake, day)
		if got := e.staticRecord("cal").LastRotation; !got.Equal(r.LastRotation) {
			t.Fatalf("rotated at %s, over the weekend", got)
		}
	}
	e.advanceTo(fake, monday0200)
	if got := e.staticRecord("cal").LastRotation; !got.Equal(monday0200) {
		t.Fatalf("last rotation %s, want Monday 02:00", got)
	}
}

// consul-template re-reads a static credential a second after its ttl:
// the default grace never falls below 10s, whatever the period.
func TestTheDefaultGraceIsAtLeastTenSeconds(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	resp := e.mustOK(logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "identities:read", "rotation_period": "10s"})
	if resp.Data["grace_period"] != int64(10) {
		t.Fatalf("grace_period %v at rotation_period=10s, want 10", resp.Data["grace_period"])
	}
	if got := e.lastMintLifetime(); got != "20" {
		t.Fatalf("the token was asked for %s s, want the period and the grace, 20", got)
	}
}
