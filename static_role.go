package beyondidentity

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/robfig/cron/v3"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

const (
	defaultRotationPeriod = 24 * time.Hour
	minRotationPeriod     = 10 * time.Second
	// minGracePeriod is the least default grace: consumers such as
	// consul-template re-read a static credential a second after its ttl,
	// and must never hold a token already revoked.
	minGracePeriod    = 10 * time.Second
	minRotationWindow = time.Hour
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
	// between two of its times over a whole cycle of it (scheduleCycle).
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
	storedToken
	TokenType string    `json:"token_type"`
	Scopes    []string  `json:"scopes"`
	RevokeAt  time.Time `json:"revoke_at,omitzero"`
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

// sameTiming reports whether two versions of a role rotate alike.
func (r *staticRole) sameTiming(other *staticRole) bool {
	return r.RotationPeriod == other.RotationPeriod && r.RotationSchedule == other.RotationSchedule &&
		r.RotationWindow == other.RotationWindow && r.GracePeriod == other.GracePeriod
}

// grace is how long a replaced token keeps working.
func (r *staticRole) grace() time.Duration {
	if r.GracePeriod > 0 {
		return r.GracePeriod
	}
	return max(r.interval()/10, minGracePeriod)
}

// rotationSchedule is the role's parsed rotation_schedule; nil for a
// period.
func (r *staticRole) rotationSchedule() cron.Schedule {
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
	if schedule := r.rotationSchedule(); schedule != nil {
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

// maxRetiredTokens bounds the replaced tokens a static role keeps in their
// grace: a burst of rotations revokes the oldest at once, so that neither
// the live tokens nor the role's record grow with the rotations.
const maxRetiredTokens = 3

// cutToken is a replaced token due for revocation at once, and why.
type cutToken struct {
	token  staticToken
	reason string
}

// withNewToken is the role with token as its current one since now, the
// previous current token retired for the grace period. A retired token that
// carries a scope the role no longer has, or beyond the maxRetiredTokens
// newest, is due for revocation now; cut says which and why.
func (r *staticRole) withNewToken(token staticToken, now time.Time) (updated *staticRole, cut []cutToken) {
	role := *r
	role.Retired = slices.Clone(r.Retired)
	if r.Current != nil {
		retired := *r.Current
		retired.RevokeAt = now.Add(r.grace())
		role.Retired = append(role.Retired, retired)
	}
	inGrace := 0
	for i := len(role.Retired) - 1; i >= 0; i-- { // newest first
		t := &role.Retired[i]
		if !t.RevokeAt.After(now) {
			continue
		}
		if dropped := scope.Missing(t.Scopes, role.Scopes); len(dropped) > 0 {
			t.RevokeAt = now
			cut = append(cut, cutToken{*t, fmt.Sprintf("it carries %s, which the role no longer has", strings.Join(dropped, ", "))})
			continue
		}
		if inGrace++; inGrace > maxRetiredTokens {
			t.RevokeAt = now
			cut = append(cut, cutToken{*t, fmt.Sprintf("a static role keeps at most %d replaced tokens", maxRetiredTokens)})
		}
	}
	role.Current = &token
	role.LastRotation = now
	role.LastRotationError, role.FailedRotations = "", 0
	role.scheduleAfterRotation(now)
	return &role, cut
}

// scheduleAfterRotation sets when the token minted now is to be replaced:
// when the next rotation is due. A token that ends before its grace there
// is over is replaced sooner, while it still outlives its grace, when that
// is no sooner than the interval allows (a schedule whose next time is
// further than a token lives); otherwise Beyond Identity gave it a shorter
// life than asked, and rotating sooner would only get another such token,
// at the 5-second floor. Then the role keeps its due time, and
// last_rotation_error says so.
func (r *staticRole) scheduleAfterRotation(now time.Time) {
	due := r.dueAfter(now)
	r.NextRotation, r.RotationDue = due, due
	end := r.Current.expiresAt()
	latest := end.Add(-r.grace())
	if !latest.Before(due.Add(-shortLifeTolerance)) {
		return
	}
	if !latest.Before(now.Add(r.interval())) {
		r.NextRotation = latest
		return
	}
	r.LastRotationError = r.shortTokenNote(now, end, due)
}

// shortTokenNote says that the token minted at minted, which ends at end,
// does not last until its replacement at due and through its grace.
func (r *staticRole) shortTokenNote(minted, end, due time.Time) string {
	what := fmt.Sprintf("it is dead from then until the next rotation, due at %s", rfc3339(due))
	if !end.Before(due) {
		what = fmt.Sprintf("after its replacement, due at %s, it works %s instead of its grace_period (%s)",
			rfc3339(due), seconds(ceilSeconds(end.Sub(due))), seconds(r.grace()))
	}
	return fmt.Sprintf("Beyond Identity issued a token that lives %s, shorter than asked, and ends at %s: %s. The role "+
		"keeps its due time, since rotating sooner would only get another short token, more often than the role's "+
		"interval allows. Give the application's tokens a longer life at Beyond Identity, or rotate more often",
		humanDuration(ceilSeconds(end.Sub(minted))), rfc3339(end), what)
}

// scheduleNext reschedules the current token, which ends at end, after a
// write changed when the role rotates: the rotation due after from (a
// period after it, or the schedule's next time), or sooner if the token,
// minted for the old timing, ends before it could outlive its grace. now
// bounds how soon.
func (r *staticRole) scheduleNext(from, now, end time.Time) {
	due := r.dueAfter(from)
	next := due
	// A token ending within seconds of its plan (whole seconds, the time
	// the call took) keeps the due time.
	if latest := end.Add(-r.grace()); latest.Before(next.Add(-shortLifeTolerance)) {
		next = latest
	}
	if floor := now.Add(minRotationPeriod / 2); next.Before(floor) {
		next = floor
	}
	r.NextRotation, r.RotationDue = next, due
}

// missedWindow reports whether a scheduled role is past the window of its
// due time, and if so the next scheduled time.
func (r *staticRole) missedWindow(now time.Time) (bool, time.Time) {
	if r.RotationSchedule == "" || r.RotationWindow == 0 || r.RotationDue.IsZero() ||
		!now.After(r.RotationDue.Add(r.RotationWindow)) {
		return false, time.Time{}
	}
	return true, r.dueAfter(now)
}

// afterMissedWindow decides what a scheduled role past the window of its
// due time does: wait for the next scheduled time (wait) when its current
// token outlives it, the role then rescheduled; or rotate at once, as a
// dead token helps no one, and say so in the note.
func (r *staticRole) afterMissedWindow(now time.Time) (note string, wait bool) {
	missed, next := r.missedWindow(now)
	if !missed {
		return "", false
	}
	missedWhat := fmt.Sprintf("the rotation due at %s missed its window (until %s)", rfc3339(r.RotationDue),
		rfc3339(r.RotationDue.Add(r.RotationWindow)))
	// Readers come back at the next time: the token must still work then,
	// a little after it.
	if end := r.Current.expiresAt(); end.Before(next.Add(minGracePeriod)) {
		return fmt.Sprintf("%s; rotated at once at %s, since the token then current ended at %s, before the next "+
			"scheduled time %s", missedWhat, rfc3339(now), rfc3339(end), rfc3339(next)), false
	}
	r.LastRotationError = fmt.Sprintf("%s; the next rotation is at the next scheduled time, %s", missedWhat, rfc3339(next))
	r.NextRotation, r.RotationDue, r.FailedRotations = next, next, 0
	return "", true
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
