package beyondidentity

// Static roles on a calendar (rotation_schedule, rotation_window), walked
// through days on the injected clock.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

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

// advanceTo moves the fake clock to at and runs what is due.
func (e *testEnv) advanceTo(fake *clock.Fake, at time.Time) {
	e.t.Helper()
	e.advance(fake, at.Sub(fake.Now()))
}

func TestAWeekdayScheduleRestsOverTheWeekend(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * 1-5", "rotation_window": "1h"})
	// Weekdays are 24h apart: the default grace is a tenth, 2h24m. The
	// first token lives until the due time (1h), its window and its grace.
	if got := e.lastMintLifetime(); got != "15840" {
		t.Fatalf("the first token was asked for %s s, want 3600+3600+8640", got)
	}
	creds := e.mustOK(logical.ReadOperation, "static-creds/cal", nil)
	if creds.Data["ttl"] != int64(3600) || creds.Data["rotation_schedule"] != "0 2 * * 1-5" ||
		creds.Data["rotation_window"] != int64(3600) || creds.Data["rotation_period"] != nil {
		t.Fatalf("static-creds reads %v", keysOf(creds.Data))
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

// The plugin is down through a whole window, and its token would end
// before the next scheduled time: it rotates at once when it comes back,
// and says the window was missed.
func TestAMissedWindowRotatesAtOnceWhenTheTokenWouldDieFirst(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h"})
	first := e.staticRecord("cal").Current.Token
	fake.Set(friday0100.Add(2*time.Hour + 30*time.Minute)) // 03:30: the window closed at 03:00, nothing ran
	e.advance(fake, 0)
	r := e.staticRecord("cal")
	if e.staticRecord("cal").Current.Token == first || !r.LastRotation.Equal(fake.Now()) {
		t.Fatal("the role did not rotate at once after its window passed, with its token ending before the next time")
	}
	if !strings.Contains(r.LastRotationError, "missed its window") || !strings.Contains(r.LastRotationError, "rotated at once") {
		t.Fatalf("last_rotation_error %q does not say the window was missed", r.LastRotationError)
	}
	saturday0200 := friday0100.Add(25 * time.Hour)
	if !r.NextRotation.Equal(saturday0200) {
		t.Fatalf("next rotation %s, want the next scheduled time", r.NextRotation)
	}
}

// The plugin is down through a whole window, and its token outlives the
// next scheduled time: the role waits for it, and says the window was
// missed.
func TestAMissedWindowWaitsForTheNextTime(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h", "grace_period": "24h"})
	first := e.staticRecord("cal").Current.Token
	fake.Set(friday0100.Add(2*time.Hour + 30*time.Minute))
	e.fake.ResetCalls()
	e.advance(fake, 0)
	r := e.staticRecord("cal")
	saturday0200 := friday0100.Add(25 * time.Hour)
	if len(e.fake.CallsTo(fakebi.OpToken)) != 0 || !r.NextRotation.Equal(saturday0200) {
		t.Fatalf("after a missed window: %v, next at %s; want no mint and the next scheduled time", opsOf(e.fake.Calls()), r.NextRotation)
	}
	if !strings.Contains(r.LastRotationError, "missed its window") || !strings.Contains(r.LastRotationError, "next scheduled time") {
		t.Fatalf("last_rotation_error %q", r.LastRotationError)
	}
	if e.staticRecord("cal").Current.Token != first {
		t.Fatal("static-creds changed token without a rotation")
	}
	e.advanceTo(fake, saturday0200)
	if r := e.staticRecord("cal"); !r.LastRotation.Equal(saturday0200) || r.LastRotationError != "" {
		t.Fatalf("at the next time: rotated at %s, error %q", r.LastRotation, r.LastRotationError)
	}
}

func TestAStaticRoleMovesFromPeriodToScheduleAndBack(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_period": "1h"})
	start := fake.Now()
	e.fake.ResetCalls()
	// Every 6h: the default grace is 36m. The current token, minted for 1h
	// and a 6m grace, ends at 02:06, so it is replaced 36m before that.
	resp := e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"rotation_schedule": "0 */6 * * *"})
	if len(e.fake.Calls()) != 0 || resp.Data["rotation_schedule"] != "0 */6 * * *" || resp.Data["rotation_period"] != int64(0) {
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
	if resp.Data["rotation_schedule"] != "" || r.RotationSchedule != "" || r.RotationWindow != 0 ||
		!r.NextRotation.Equal(r.LastRotation.Add(time.Hour)) {
		t.Fatalf("back to a period: %v, next at %s", resp.Data, r.NextRotation)
	}
	creds := e.mustOK(logical.ReadOperation, "static-creds/cal", nil)
	if creds.Data["rotation_period"] != int64(3600) || creds.Data["rotation_schedule"] != nil {
		t.Fatalf("static-creds after going back to a period: %v", keysOf(creds.Data))
	}
}

func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	for name, tc := range map[string]struct {
		data      map[string]any
		fragments []string
	}{
		"period and schedule": {map[string]any{"rotation_period": "1h", "rotation_schedule": "0 2 * * *"},
			[]string{"'rotation_period' and 'rotation_schedule' are mutually exclusive"}},
		"not cron":           {map[string]any{"rotation_schedule": "every day"}, []string{"'rotation_schedule'", "five-field cron"}},
		"own time zone":      {map[string]any{"rotation_schedule": "TZ=Europe/Paris 0 2 * * *"}, []string{"'rotation_schedule'", "UTC"}},
		"window too short":   {map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "30m"}, []string{"'rotation_window'", "at least 1h"}},
		"window with period": {map[string]any{"rotation_period": "1h", "rotation_window": "2h"}, []string{"'rotation_window'", "only with 'rotation_schedule'"}},
		"grace above interval": {map[string]any{"rotation_schedule": "0 * * * *", "grace_period": "2h"},
			[]string{"'grace_period'", "shortest interval"}},
		"a 2h window every minute": {map[string]any{"rotation_schedule": "* * * * *", "rotation_window": "2h"},
			[]string{"'rotation_window' (2h)", "at most the shortest interval", "(60s)"}},
		"a 90-day window every minute": {map[string]any{"rotation_schedule": "* * * * *", "rotation_window": "2160h"},
			[]string{"'rotation_window' (2160h)", "at most the shortest interval"}},
		"a 2h window every hour": {map[string]any{"rotation_schedule": "@hourly", "rotation_window": "2h"},
			[]string{"'rotation_window' (2h)", "(1h)"}},
		"every ten seconds": {map[string]any{"rotation_schedule": "@every 10s"},
			[]string{"'rotation_schedule'", "not @every", "rotation_period=10s"}},
	} {
		t.Run(name, func(t *testing.T) {
			tc.data["scopes"] = "identities:read"
			status, message := statusOf(e.request(logical.CreateOperation, "static-roles/r", tc.data))
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, message %q", status, message)
			}
			for _, fragment := range tc.fragments {
				if !strings.Contains(message, fragment) {
					t.Fatalf("message %q lacks %q", message, fragment)
				}
			}
		})
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("bad input called Beyond Identity: %v", opsOf(calls))
	}
}

// The standard descriptors are schedules like any other: a daily token
// lives until the next midnight, plus its window, plus its grace.
func TestTheStandardDescriptorsAreSchedules(t *testing.T) {
	t.Parallel()
	e, _ := newScheduledRole(t, map[string]any{"rotation_schedule": "@daily", "rotation_window": "2h"})
	// Friday 01:00 to Saturday 00:00 is 23h; the grace is a tenth of 24h.
	if got := e.lastMintLifetime(); got != "98640" {
		t.Fatalf("the first token was asked for %s s, want 82800+7200+8640", got)
	}
	r := e.staticRecord("cal")
	if !r.NextRotation.Equal(time.Date(2030, time.January, 5, 0, 0, 0, 0, time.UTC)) || r.ScheduleInterval != 24*time.Hour {
		t.Fatalf("@daily: next rotation %s, interval %s", r.NextRotation, r.ScheduleInterval)
	}
	for _, descriptor := range []string{"@yearly", "@annually", "@monthly", "@weekly", "@midnight", "@hourly"} {
		e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"rotation_schedule": descriptor, "rotation_window": "1h"})
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

// Every path that hands out or rotates a credential answers an unknown
// role alike: a 400 naming it. Reading an unknown role's definition stays
// a 404, as in Vault's own engines.
func TestAnUnknownRoleIsA400WhereverACredentialIsAskedFor(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	for _, c := range []struct {
		op   logical.Operation
		path string
	}{{logical.ReadOperation, "creds/nope"}, {logical.ReadOperation, "static-creds/nope"}, {logical.UpdateOperation, "rotate-role/nope"}} {
		status, message := statusOf(e.request(c.op, c.path, nil))
		if status != http.StatusBadRequest || !strings.Contains(message, `"nope" does not exist`) || !strings.Contains(message, "'name'") {
			t.Errorf("%s: %d %q", c.path, status, message)
		}
	}
	for _, path := range []string{"roles/nope", "static-roles/nope"} {
		if resp, err := e.request(logical.ReadOperation, path, nil); resp != nil || err != nil {
			t.Errorf("reading %s: %s %v, want nothing (a 404)", path, errorText(resp), err)
		}
	}
}
