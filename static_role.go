package beyondidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/robfig/cron/v3"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// staticRolePrefix is the storage prefix (and path) of static roles. A
// record holds the role's settings and its tokens, so it is seal-wrapped.
const staticRolePrefix = "static-roles/"

const (
	defaultRotationPeriod = 24 * time.Hour
	minRotationPeriod     = 10 * time.Second
	// minGracePeriod is the least default grace: consumers such as
	// consul-template re-read a static credential a second after its ttl,
	// and must never hold a token already revoked.
	minGracePeriod    = 10 * time.Second
	minRotationWindow = time.Hour
	// scheduleHorizon is how far ahead a schedule's shortest interval, the
	// base of its default grace, is looked for.
	scheduleHorizon = 90 * 24 * time.Hour
)

// staticRole keeps one token for consumers that cannot hold a lease and
// replaces it every RotationPeriod, or at each time of RotationSchedule;
// each replaced token keeps working for the grace period, then is revoked.
type staticRole struct {
	Scopes []string `json:"scopes"`
	// RotationPeriod and RotationSchedule are exclusive: one is set.
	RotationPeriod time.Duration `json:"rotation_period,omitempty"`
	// RotationSchedule is a standard cron expression, in UTC;
	// RotationWindow how long after each of its times a rotation may still
	// run (zero: until it does); ScheduleInterval the shortest interval
	// between two of its times over the 90 days after it was set.
	RotationSchedule string        `json:"rotation_schedule,omitempty"`
	RotationWindow   time.Duration `json:"rotation_window,omitempty"`
	ScheduleInterval time.Duration `json:"schedule_interval,omitempty"`
	// GracePeriod is as set; zero means the default (a tenth of the
	// period or of the schedule's shortest interval, at least 10s), so that
	// it follows the period when that changes.
	GracePeriod  time.Duration  `json:"grace_period"`
	CustomClaims map[string]any `json:"custom_claims,omitempty"`
	Description  string         `json:"description"`

	// Current is the token static-creds hands out; Retired are replaced
	// tokens in their grace, each revoked at its RevokeAt.
	Current *staticToken  `json:"current,omitempty"`
	Retired []staticToken `json:"retired,omitempty"`
	// LastRotation is when Current was minted; NextRotation when it is to
	// be replaced, or, while rotations fail, when to try again;
	// RotationDue, for a schedule, the scheduled time NextRotation is for,
	// from which the window counts.
	LastRotation      time.Time `json:"last_rotation"`
	NextRotation      time.Time `json:"next_rotation"`
	RotationDue       time.Time `json:"rotation_due,omitzero"`
	LastRotationError string    `json:"last_rotation_error,omitempty"`
	FailedRotations   int       `json:"failed_rotations,omitempty"`
}

// staticToken is one token of a static role, as stored.
type staticToken struct {
	issuedToken
	Token     string    `json:"access_token"`
	TokenType string    `json:"token_type"`
	Scopes    []string  `json:"scopes"`
	RevokeAt  time.Time `json:"revoke_at,omitzero"`
}

// issued is what revoking the token takes.
func (t staticToken) issued() issuedToken {
	issued := t.issuedToken
	issued.AccessToken = biclient.NewSecret(t.Token)
	issued.Static = true // also for tokens stored before they said so
	return issued
}

// tokens are every token of the role that may still work.
func (r *staticRole) tokens() []staticToken {
	tokens := slices.Clone(r.Retired)
	if r.Current != nil {
		tokens = append(tokens, *r.Current)
	}
	return tokens
}

// interval is the shortest time between two rotations: the period, or
// the schedule's shortest interval.
func (r *staticRole) interval() time.Duration {
	if r.RotationSchedule != "" {
		return r.ScheduleInterval
	}
	return r.RotationPeriod
}

// grace is how long a replaced token keeps working.
func (r *staticRole) grace() time.Duration {
	if r.GracePeriod > 0 {
		return r.GracePeriod
	}
	return max(r.interval()/10, minGracePeriod)
}

// schedule is the role's parsed rotation_schedule; nil for a period.
func (r *staticRole) schedule() cron.Schedule {
	if r.RotationSchedule == "" {
		return nil
	}
	// Validated on write: a stored schedule parses.
	schedule, _ := parseSchedule(r.RotationSchedule)
	return schedule
}

// dueAfter is the rotation after one at from: a period later, or the
// schedule's next time (in UTC).
func (r *staticRole) dueAfter(from time.Time) time.Time {
	if schedule := r.schedule(); schedule != nil {
		return schedule.Next(from.UTC())
	}
	return from.Add(r.RotationPeriod)
}

// tokenLifetime is the life of a token minted now: until the next
// rotation is due, plus the window, plus the grace, and never longer than
// a Beyond Identity token lives.
func (r *staticRole) tokenLifetime(now time.Time) time.Duration {
	return min(ceilSeconds(r.dueAfter(now).Sub(now))+r.RotationWindow+r.grace(), biclient.MaxTokenLifetime)
}

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

// nextDue is when the background worker must next look at the role: its
// rotation, or the end of a retired token's grace, whichever comes first.
func (r *staticRole) nextDue() time.Time {
	due := r.NextRotation
	for _, t := range r.Retired {
		if t.RevokeAt.Before(due) {
			due = t.RevokeAt
		}
	}
	return due
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

func readStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	r := &staticRole{}
	if found, err := getJSON(ctx, s, staticRolePrefix+name, fmt.Sprintf("static role %q", name), r); !found || err != nil {
		return nil, err
	}
	return r, nil
}

func writeStaticRole(ctx context.Context, s logical.Storage, name string, r *staticRole) error {
	return putJSON(ctx, s, staticRolePrefix+name, fmt.Sprintf("static role %q", name), r)
}
