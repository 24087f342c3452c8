package beyondidentity

// What a static-roles/ write may say.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

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
