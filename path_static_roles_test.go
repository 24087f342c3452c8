package beyondidentity

// static-roles/: its fields, what a write may say, and its handlers.

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
		"30 February": {map[string]any{"rotation_schedule": "0 0 30 2 *"}, []string{"'rotation_schedule'", "names no time that ever comes"}},
		// A token lives at most 90 days: it could not last from one time to
		// the next.
		"yearly": {map[string]any{"rotation_schedule": "@yearly"},
			[]string{"'rotation_schedule' (8760h)", "more than 7776000s", "choose a 'rotation_schedule' whose times are closer together"}},
		"every four months": {map[string]any{"rotation_schedule": "0 0 1 */4 *"},
			[]string{"'rotation_schedule' (2880h)", "more than 7776000s", "closer together"}},
	} {
		t.Run(name, func(t *testing.T) { e.refusedStaticRoleWrite(t, tc.data, tc.fragments) })
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
	for _, descriptor := range []string{"@monthly", "@weekly", "@midnight", "@hourly"} {
		e.mustOK(logical.UpdateOperation, "static-roles/cal", map[string]any{"rotation_schedule": descriptor, "rotation_window": "1h"})
	}
}

func TestStaticRoleBadInput(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	for name, tc := range map[string]struct {
		op          logical.Operation
		path        string
		data        map[string]any
		field, rule string
	}{
		"period below 10s":      {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "9s"}, "rotation_period", "at least 10s, got 9s"},
		"no scopes":             {logical.CreateOperation, "static-roles/r", map[string]any{"rotation_period": "1h"}, "scopes", "is required"},
		"grace above period":    {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "1m", "grace_period": "2m"}, "grace_period", "must not exceed 'rotation_period'"},
		"longer than 90 days":   {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "2161h"}, "rotation_period", "at most 7776000s"},
		"malformed scope":       {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "Groups"}, "scopes", "which is not a scope"},
		"unknown role, rotate":  {logical.UpdateOperation, "rotate-role/nope", nil, "name", "must be a static role written at beyondidentity/static-roles/nope"},
		"name too long":         {logical.CreateOperation, "static-roles/" + strings.Repeat("n", 129), map[string]any{"scopes": "a:b"}, "name", "at most 128 characters"},
		"claims not an object":  {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "custom_claims": "x=y"}, "custom_claims", "must be a JSON object"},
		"description too long":  {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "description": strings.Repeat("d", 1025)}, "description", "at most 1024"},
		"negative grace period": {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "grace_period": "-1s"}, "grace_period", "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := e.request(tc.op, tc.path, tc.data)
			if err != nil || resp == nil || !resp.IsError() {
				t.Fatalf("want a 400, got %s %v", errorText(resp), err)
			}
			msg := resp.Error().Error()
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.rule) {
				t.Fatalf("message %q does not name %s and the rule %q", msg, tc.field, tc.rule)
			}
		})
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("bad input called Beyond Identity: %v", opsOf(calls))
	}
	resp, err := e.request(logical.ReadOperation, "static-creds/nope", nil)
	if status, message := statusOf(resp, err); status != 400 || !strings.Contains(message, "'name' must be a static role") {
		t.Fatalf("static-creds of an unknown role: %d %s", status, message)
	}
}

// Each token is minted to last the interval, the window and the grace: a
// role whose sum passes a Beyond Identity token's 90 days is refused, and
// the refusal says what to shorten, and to how much.
func TestTimingATokenCannotLastIsRefused(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.useFakeClock().Set(friday0100)
	e.configure()
	for name, tc := range map[string]struct {
		data      map[string]any
		fragments []string
	}{
		"a 90-day period and a 90-day grace": {map[string]any{"rotation_period": "2160h", "grace_period": "2160h"},
			[]string{"'rotation_period' (2160h) plus 'grace_period' (2160h) is 4320h", "more than 7776000s",
				"shorten 'rotation_period' and 'grace_period'"}},
		"a 90-day period and its default grace": {map[string]any{"rotation_period": "2160h"},
			[]string{"the default 'grace_period' (216h", "shorten 'rotation_period' to at most 7069090s"}},
		"a long grace": {map[string]any{"rotation_period": "1440h", "grace_period": "1000h"},
			[]string{"shorten 'grace_period' to at most 2592000s", "or shorten 'rotation_period' to at most 4176000s"}},
		// Every other month: at least 59 days (1416h) apart in 2030.
		"a long window": {map[string]any{"rotation_schedule": "0 0 1 */2 *", "rotation_window": "600h", "grace_period": "200h"},
			[]string{"(1416h) plus 'rotation_window' (600h) plus 'grace_period' (200h) is 2216h",
				"shorten 'grace_period' to at most 518400s", "shorten 'rotation_window' to at most 1958400s", "closer together"}},
	} {
		t.Run(name, func(t *testing.T) { e.refusedStaticRoleWrite(t, tc.data, tc.fragments) })
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("refused timing called Beyond Identity: %v", opsOf(calls))
	}
	// The longest period the message offers is accepted.
	e.mustOK(logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "identities:read", "rotation_period": "7069090s"})
}

// The window bound looks at a whole cycle of the schedule, not the next 90
// days: written in December, a schedule of April's minutes is every minute.
func TestTheWindowBoundCoversAWholeCycleOfTheSchedule(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	fake.Set(time.Date(2030, time.December, 4, 1, 0, 0, 0, time.UTC)) // 2032 is the next leap year
	e.configure()
	for name, schedule := range map[string]string{
		"April, written in December":        "* * * 4 *",
		"29 February, two years before one": "* * 29 2 *",
	} {
		t.Run(name, func(t *testing.T) {
			status, message := statusOf(e.request(logical.CreateOperation, "static-roles/r", map[string]any{
				"scopes": "identities:read", "rotation_schedule": schedule, "rotation_window": "2160h"}))
			if status != http.StatusBadRequest || !strings.Contains(message, "'rotation_window' (2160h)") ||
				!strings.Contains(message, "whole cycle") || !strings.Contains(message, "(60s)") {
				t.Fatalf("%d %q", status, message)
			}
		})
	}
}

// refusedStaticRoleWrite writes static-roles/r with data and identities:read
// and checks it is a 400 whose message holds every fragment.
func (e *testEnv) refusedStaticRoleWrite(t *testing.T, data map[string]any, fragments []string) {
	t.Helper()
	data["scopes"] = "identities:read"
	status, message := statusOf(e.request(logical.CreateOperation, "static-roles/r", data))
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, message %q", status, message)
	}
	for _, fragment := range fragments {
		if !strings.Contains(message, fragment) {
			t.Fatalf("message %q lacks %q", message, fragment)
		}
	}
}
