package beyondidentity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// scheduleCycle is how far ahead a schedule's times must be looked at to
// see every gap between two of them: its times repeat yearly; a schedule
// that names 29 February, only every four years; one that names days of
// the week, only when the calendar's weekdays repeat, every 28 years.
func scheduleCycle(schedule cron.Schedule) time.Duration {
	const year = 365 * 24 * time.Hour
	spec, ok := schedule.(*cron.SpecSchedule)
	switch {
	case !ok:
		return year
	case spec.Dow&cronStarBit == 0:
		return 28 * year
	case spec.Month&(1<<uint(time.February)) != 0 && spec.Dom&(1<<29) != 0:
		return 4 * year
	}
	return year
}

// cronStarBit marks a cron field written as "*" (robfig/cron's starBit):
// a day-of-week field without it names particular days.
const cronStarBit = 1 << 63

// shortestInterval is the shortest time between two times of schedule
// over a whole cycle of it from from (scheduleCycle): the bound of
// rotation_window, and the base of the default grace. Zero when the
// schedule has no time at all (30 February). Every day the schedule names
// has the same times of day, so it looks at the gaps within one such day,
// and then at each day's gap to the next: a few thousand steps, even over
// 28 years.
func shortestInterval(schedule cron.Schedule, from time.Time) time.Duration {
	first := schedule.Next(from.UTC())
	if first.IsZero() {
		return 0
	}
	day := first.Truncate(24 * time.Hour)
	withinDay, lastOfDay := timesOfDay(schedule, day)
	cycle := scheduleCycle(schedule)
	shortest := time.Duration(math.MaxInt64)
	if withinDay > 0 {
		shortest = withinDay
	}
	// A cron schedule's times are whole minutes apart: none is shorter.
	for end := first.Add(cycle); day.Before(end) && shortest > time.Minute; {
		next := schedule.Next(day.Add(24*time.Hour - time.Second)) // the first time of the next day it names
		if next.IsZero() {
			// No time within the five years robfig/cron looks ahead
			// (29 February around 2100): longer than any token lives.
			return min(shortest, cycle)
		}
		shortest = min(shortest, next.Sub(day.Add(lastOfDay)))
		day = next.Truncate(24 * time.Hour)
	}
	return shortest
}

// timesOfDay looks at the times of schedule on day, a day it names: the
// shortest gap between two of them (zero when it names one time a day),
// and the last of them, from the day's start.
func timesOfDay(schedule cron.Schedule, day time.Time) (shortest, last time.Duration) {
	at := schedule.Next(day.Add(-time.Second))
	for next := schedule.Next(at); !next.IsZero() && next.Before(day.Add(24*time.Hour)); next = schedule.Next(at) {
		if gap := next.Sub(at); shortest == 0 || gap < shortest {
			shortest = gap
		}
		at = next
	}
	return shortest, at.Sub(day)
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
		if r.ScheduleInterval = shortestInterval(schedule, now); r.ScheduleInterval == 0 {
			return fmt.Errorf("'rotation_schedule' %q names no time that ever comes, such as 30 February: the role would "+
				"never rotate", biclient.CleanText(r.RotationSchedule, 64))
		}
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
			"'rotation_schedule' over a whole cycle of it (%s), so that a scheduled token never lives much longer than its "+
			"schedule: shorten the window, or leave it out (a late rotation then runs as soon as it can)",
			humanDuration(r.RotationWindow), humanDuration(r.interval()))
	case r.GracePeriod > r.interval():
		return fmt.Errorf("'grace_period' (%s) must not exceed %s (%s)", seconds(r.GracePeriod), what, seconds(r.interval()))
	case r.interval()+r.RotationWindow+r.grace() > biclient.MaxTokenLifetime:
		return r.tooLongForAToken(what)
	}
	return nil
}

// tooLongForAToken refuses timing whose tokens would have to outlive a
// Beyond Identity token: each is minted to last its interval, the window
// and the grace. Capped, it would end before its grace, and the role
// would have to choose between a dead token and rotating more often than
// its interval; the refusal says what to shorten, and to how much.
func (r *staticRole) tooLongForAToken(what string) error {
	parts := what + " (" + humanDuration(r.interval()) + ")"
	if r.RotationWindow > 0 {
		parts += " plus 'rotation_window' (" + humanDuration(r.RotationWindow) + ")"
	}
	grace := "'grace_period' (" + humanDuration(r.grace()) + ")"
	if r.GracePeriod == 0 {
		grace = "the default 'grace_period' (" + humanDuration(r.grace()) + ", a tenth of the interval)"
	}
	return fmt.Errorf("%s plus %s is %s, more than 7776000s (90 days), the longest life of a Beyond Identity token: each "+
		"token must last until the next rotation and through its grace. To fix it, %s", parts, grace,
		humanDuration(r.interval()+r.RotationWindow+r.grace()), strings.Join(r.timingFixes(), ", or "))
}

// timingFixes are the changes that would each bring a role's tokens within
// a Beyond Identity token's life.
func (r *staticRole) timingFixes() []string {
	var fixes []string
	if room := biclient.MaxTokenLifetime - r.interval() - r.RotationWindow; room >= time.Second {
		fixes = append(fixes, "shorten 'grace_period' to at most "+seconds(room))
	}
	if room := biclient.MaxTokenLifetime - r.interval() - r.grace(); r.RotationWindow > 0 && room >= minRotationWindow {
		fixes = append(fixes, "shorten 'rotation_window' to at most "+seconds(room))
	}
	switch longest := longestPeriod(r.GracePeriod); {
	case r.RotationSchedule != "":
		fixes = append(fixes, "choose a 'rotation_schedule' whose times are closer together")
	case longest >= max(minRotationPeriod, r.GracePeriod):
		fixes = append(fixes, "shorten 'rotation_period' to at most "+seconds(longest))
	case len(fixes) == 0:
		fixes = append(fixes, "shorten 'rotation_period' and 'grace_period', which together may be at most 7776000s")
	}
	return fixes
}

// longestPeriod is the longest rotation_period whose tokens, lasting the
// period and the grace, fit in a Beyond Identity token's life: with the
// default grace (zero), a tenth of the period, the period is at most
// ten elevenths of it.
func longestPeriod(grace time.Duration) time.Duration {
	if grace > 0 {
		return biclient.MaxTokenLifetime - grace
	}
	return (biclient.MaxTokenLifetime * 10 / 11).Truncate(time.Second)
}

// sameJSON reports whether two claim sets encode alike, whatever Go types
// their numbers decoded into.
func sameJSON(a, b map[string]any) bool {
	encodedA, _ := json.Marshal(a)
	encodedB, _ := json.Marshal(b)
	return bytes.Equal(encodedA, encodedB)
}
