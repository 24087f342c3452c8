package beyondidentity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/robfig/cron/v3"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// What a write to static-roles/ may say: its fields merged over the role as
// stored, and checked, before anything is minted.

// parseSchedule parses a standard five-field cron expression, or one of
// the standard descriptors (@yearly, @monthly, @weekly, @daily, @hourly and
// their aliases), in UTC: a time zone of its own is refused, so that every
// node agrees on the times, and so is @every, which is a period.
func parseSchedule(expression string) (cron.Schedule, error) {
	trimmed := strings.TrimSpace(expression)
	switch {
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return nil, errors.New("runs in UTC: remove the time zone")
	case strings.HasPrefix(trimmed, "@every"):
		return nil, fmt.Errorf("takes calendar times, not @every: for a token replaced every %s, write "+
			"rotation_period=%s instead", biclient.CleanText(strings.TrimSpace(strings.TrimPrefix(trimmed, "@every")), 32),
			biclient.CleanText(strings.TrimSpace(strings.TrimPrefix(trimmed, "@every")), 32))
	}
	schedule, err := cron.ParseStandard(trimmed)
	if err != nil {
		return nil, fmt.Errorf("must be a standard five-field cron expression (minute hour day-of-month month "+
			"day-of-week, in UTC), such as \"0 2 * * 1-5\", or one of @yearly, @monthly, @weekly, @daily, @hourly: %w", err)
	}
	return schedule, nil
}

// shortestInterval is the shortest time between two times of schedule over
// the horizon from from: the bound of rotation_window, and the base of the
// default grace.
func shortestInterval(schedule cron.Schedule, from time.Time) time.Duration {
	shortest := scheduleHorizon
	at := schedule.Next(from.UTC())
	// A cron schedule's times are whole minutes apart: none is shorter.
	for end := from.Add(scheduleHorizon); !at.IsZero() && at.Before(end) && shortest > time.Minute; {
		next := schedule.Next(at)
		if next.IsZero() {
			break
		}
		shortest = min(shortest, next.Sub(at))
		at = next
	}
	return shortest
}

// staticRoleFromRequest merges the request into a copy of the existing
// static role (or the defaults) and validates it, at now. It also reports
// whether what the token carries changed, which calls for a new token at
// once.
func staticRoleFromRequest(existing *staticRole, d *framework.FieldData, now time.Time) (*staticRole, bool, error) {
	r := &staticRole{RotationPeriod: defaultRotationPeriod}
	if existing != nil {
		copied := *existing
		r = &copied
	}
	changed := false
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !slices.Equal(scopes, r.Scopes)
		r.Scopes = scopes
	}
	if len(r.Scopes) == 0 {
		return nil, false, errors.New("'scopes' is required: list at least one scope, e.g. identities:read")
	}
	if err := r.mergeTiming(d, now); err != nil {
		return nil, false, err
	}
	if raw, ok := d.GetOk("custom_claims"); ok {
		claims, err := parseCustomClaims(raw.(map[string]any))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !sameJSON(claims, r.CustomClaims)
		r.CustomClaims = claims
	}
	if raw, ok := d.GetOk("description"); ok {
		description, err := parseDescription(raw.(string))
		if err != nil {
			return nil, false, err
		}
		r.Description = description
	}
	return r, changed, nil
}

// mergeTiming merges when the role rotates: a period, or a schedule with
// its window, never both; and the grace.
func (r *staticRole) mergeTiming(d *framework.FieldData, now time.Time) error {
	rawPeriod, periodGiven := d.GetOk("rotation_period")
	rawSchedule, scheduleGiven := d.GetOk("rotation_schedule")
	if periodGiven && scheduleGiven && rawSchedule.(string) != "" {
		return errors.New("'rotation_period' and 'rotation_schedule' are mutually exclusive: set one of them " +
			"(writing one replaces the other)")
	}
	switch {
	case periodGiven:
		r.RotationPeriod = time.Duration(rawPeriod.(int)) * time.Second
		r.RotationSchedule, r.RotationWindow, r.ScheduleInterval = "", 0, 0
	case scheduleGiven && rawSchedule.(string) == "":
		r.RotationSchedule, r.RotationWindow, r.ScheduleInterval = "", 0, 0
	case scheduleGiven:
		schedule, err := parseSchedule(rawSchedule.(string))
		if err != nil {
			return fmt.Errorf("'rotation_schedule' %w", err)
		}
		r.RotationSchedule, r.RotationPeriod = strings.TrimSpace(rawSchedule.(string)), 0
		r.ScheduleInterval = shortestInterval(schedule, now)
	}
	if r.RotationPeriod == 0 && r.RotationSchedule == "" {
		r.RotationPeriod = defaultRotationPeriod
	}
	if raw, ok := d.GetOk("rotation_window"); ok {
		if window := time.Duration(raw.(int)) * time.Second; window > 0 && r.RotationSchedule == "" {
			return errors.New("'rotation_window' applies only with 'rotation_schedule': a period has no window")
		}
		r.RotationWindow = time.Duration(raw.(int)) * time.Second
	}
	if raw, ok := d.GetOk("grace_period"); ok {
		r.GracePeriod = time.Duration(raw.(int)) * time.Second
	}
	return r.validateTiming()
}

func (r *staticRole) validateTiming() error {
	what := "'rotation_period'"
	if r.RotationSchedule != "" {
		what = "the shortest interval of 'rotation_schedule'"
	}
	switch {
	case r.RotationSchedule == "" && r.RotationPeriod > biclient.MaxTokenLifetime:
		return fmt.Errorf("'rotation_period' must be at most 7776000s (90 days), the longest life of a Beyond Identity token, got %s",
			seconds(r.RotationPeriod))
	case r.interval() < minRotationPeriod:
		return fmt.Errorf("%s must be at least %s, got %s", what, seconds(minRotationPeriod), seconds(r.interval()))
	case r.RotationWindow != 0 && r.RotationWindow < minRotationWindow:
		return fmt.Errorf("'rotation_window' must be at least %s, got %s", humanDuration(minRotationWindow), seconds(r.RotationWindow))
	case r.RotationWindow > r.interval():
		return fmt.Errorf("'rotation_window' (%s) must be at most the shortest interval between two times of "+
			"'rotation_schedule' over the next 90 days (%s), so that a scheduled token never lives much longer than its "+
			"schedule: shorten the window, or leave it out (a late rotation then runs as soon as it can)",
			humanDuration(r.RotationWindow), humanDuration(r.interval()))
	case r.GracePeriod > r.interval():
		return fmt.Errorf("'grace_period' (%s) must not exceed %s (%s)", seconds(r.GracePeriod), what, seconds(r.interval()))
	}
	return nil
}

// sameJSON reports whether two claim sets encode alike, whatever Go types
// their numbers decoded into.
func sameJSON(a, b map[string]any) bool {
	encodedA, _ := json.Marshal(a)
	encodedB, _ := json.Marshal(b)
	return bytes.Equal(encodedA, encodedB)
}
