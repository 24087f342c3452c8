package beyondidentity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A static role's rotation: a new token minted through the fresh-token
// flow (fresh.go), stored as the current one before any old one is
// revoked, and the background work's turns on the role.

// Backoff between attempts of a failing rotation: short, because the
// current token may be near its end.
const (
	rotationRetryBase = 10 * time.Second
	rotationRetryMax  = time.Minute
)

// maxLiveTokens bounds a static role's tokens alive at once as far as the
// plugin knows: its current one, its retired ones and those whose
// revocation is pending. While Beyond Identity refuses revocations, the
// oldest retired tokens become pending revocations instead of revoked ones:
// without this bound, every rotation would leave one more token alive.
const maxLiveTokens = 5

// rotate mints a new token for the role and stores it as the current one,
// the previous current token retired to be revoked when its grace ends, or
// at once when it carries a scope the role no longer has or the role holds
// maxRetiredTokens retired ones already. The new token is stored before any
// old one is revoked, so a crash at any point leaves a working token in
// place. A failure leaves the role as it was, the new token discarded. It
// returns the rotation's warnings. The caller holds the role's lock.
//
// A request rotates through rotate: the live-token bound always holds for
// it, whatever the tokens' lifetimes.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name string, r *staticRole) ([]string, error) {
	return b.rotatePassing(ctx, s, name, r, time.Time{})
}

// rotatePassing is rotate, which may pass the live-token bound when the
// current token ends by deadBy (zero: never): the background's rotation,
// whose next retry would come too late, since a dead token helps no one.
func (b *backend) rotatePassing(ctx context.Context, s logical.Storage, name string, r *staticRole, deadBy time.Time) ([]string, error) {
	creating := r.LastRotation.IsZero()
	warnings, err := b.replaceToken(ctx, s, name, r, deadBy)
	// A role being created whose first mint fails is not stored: no role,
	// no rotation to count (nor a label value for any name).
	if err == nil || !creating {
		b.rotated(name, r, err)
	}
	return warnings, err
}

// replaceToken is rotate's work, without the counting.
func (b *backend) replaceToken(ctx context.Context, s logical.Storage, name string, r *staticRole, deadBy time.Time) ([]string, error) {
	client, err := b.client(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := b.checkLiveTokens(ctx, s, name, r, deadBy); err != nil {
		return nil, err
	}
	o := &order{role: name, static: true, scopes: r.Scopes, claims: r.CustomClaims, lifetime: r.tokenLifetime(b.clock.Now())}
	f, err := b.mintFresh(ctx, s, client, o)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	updated, cut := r.withNewToken(staticToken{storedToken: stored(f.issuedToken),
		TokenType: f.answer.TokenType, Scopes: f.scopes}, now)
	if err := b.storeRotated(ctx, s, name, updated, r.Current == nil); err != nil {
		return nil, b.discard(ctx, s, f, err)
	}
	*r = *updated
	b.keep(f)
	changed, failures := b.revokeRetired(ctx, s, r, now)
	if changed {
		if err := writeStaticRole(ctx, s, name, r); err != nil {
			// The revoked tokens stay listed; the next turn finds them ended.
			b.Logger().Warn("saving a static role after revoking its replaced tokens failed", "role", name, "error", err)
		}
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
	b.Logger().Info("rotated static role", "role", name, "token_id", f.TokenID, "next_rotation", r.NextRotation)
	warnings := append(f.warnings, cutWarnings(cut, failures)...)
	if r.LastRotationError != "" { // the new token is short: scheduleAfterRotation says so
		b.Logger().Warn("static role's new token ends before its grace would be over", "role", name,
			"expires_at", r.Current.expiresAt(), "next_rotation", r.NextRotation)
		warnings = append(warnings, r.LastRotationError)
	}
	return warnings, nil
}

// checkLiveTokens refuses a rotation that would give the role more than
// maxLiveTokens live tokens, with a 503 naming its pending revocations;
// unless its current token ends by deadBy (see rotatePassing).
func (b *backend) checkLiveTokens(ctx context.Context, s logical.Storage, name string, r *staticRole, deadBy time.Time) error {
	if r.Current != nil && !deadBy.IsZero() && !r.Current.expiresAt().After(deadBy) {
		return nil
	}
	pending, err := b.pendingOfStaticRole(ctx, s, name)
	if err != nil {
		return err
	}
	held := len(r.tokens())
	if held+pending < maxLiveTokens {
		return nil
	}
	return refuse(http.StatusServiceUnavailable, "static role %q has %d live tokens, the most a static role may have: %d it "+
		"holds (the current one and those replaced in their grace) and %d whose revocation Beyond Identity has refused so far, "+
		"which the plugin keeps retrying (vault list <mount>/revocations/ shows them). No new token is minted for it until "+
		"those revocations succeed", name, held+pending, held, pending)
}

// cutWarnings says what became of the replaced tokens a rotation revoked
// at once instead of after their grace: cut says why each was, by token,
// and failures how the revocations that did not succeed failed.
func cutWarnings(cut []cutToken, failures map[string]error) []string {
	warnings := make([]string, 0, len(cut))
	for _, c := range cut {
		name := "the replaced token " + c.token.TokenID
		if c.token.TokenID == "" {
			name = "a replaced token (its id is unknown)"
		}
		outcome := "was revoked now, not after its grace"
		if err := failures[c.token.AccessToken.Reveal()]; err != nil {
			outcome = "was due for revocation now, not after its grace, but revoking it failed (" + err.Error() + ")"
		}
		warnings = append(warnings, fmt.Sprintf("%s %s: %s", name, outcome, c.reason))
	}
	return warnings
}

// runStaticRole is the background work's turn on a static role: it revokes
// the retired tokens whose grace has ended and rotates the role when due,
// retrying a failed rotation with backoff.
func (b *backend) runStaticRole(ctx context.Context, s logical.Storage, name string) {
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, s, name)
	switch {
	case err != nil:
		b.Logger().Warn("reading a static role failed; trying again later", "role", name, "error", err)
		b.pushItem(staticRolePrefix+name, b.clock.Now().Add(rotationRetryMax))
		return
	case r == nil:
		return
	}
	now := b.clock.Now()
	changed, _ := b.revokeRetired(ctx, s, r, now)
	if !r.NextRotation.After(now) {
		note, wait := r.afterMissedWindow(now)
		if wait {
			b.Logger().Warn("static role missed its rotation window; waiting for the next scheduled time", "role", name,
				"next_rotation", r.NextRotation)
			b.saveStaticRole(ctx, s, name, r)
			return
		}
		// Past the live-token bound only if the token ends before the
		// retry that would follow a refusal.
		_, err := b.rotatePassing(ctx, s, name, r, now.Add(retryDelay(r.FailedRotations+1)))
		if err == nil {
			if note != "" {
				r.LastRotationError = strings.TrimSuffix(note+"; "+r.LastRotationError, "; ")
				b.saveStaticRole(ctx, s, name, r)
			}
			return // stored and scheduled, retired tokens included
		}
		if ctx.Err() != nil {
			return // the plugin is stopping: the next process rotates it
		}
		r.FailedRotations++
		r.LastRotationError = err.Error()
		r.NextRotation = now.Add(retryDelay(r.FailedRotations))
		changed = true
		b.Logger().Error("static role rotation failed; will retry", "role", name, "attempts", r.FailedRotations,
			"next_attempt", r.NextRotation, "error", r.LastRotationError)
	}
	if changed {
		b.saveStaticRole(ctx, s, name, r)
		return
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
}

// retryDelay is the wait before the next attempt after failed failed
// rotations in a row: rotationRetryBase, doubling to rotationRetryMax.
func retryDelay(failed int) time.Duration {
	return backoff(rotationRetryBase, rotationRetryMax, failed)
}

// saveStaticRole stores a role the background work changed and schedules
// it; a failure is logged, and the role's turn comes again as scheduled.
func (b *backend) saveStaticRole(ctx context.Context, s logical.Storage, name string, r *staticRole) {
	if err := writeStaticRole(ctx, s, name, r); err != nil {
		b.Logger().Error("saving a static role failed", "role", name, "error", err)
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
}

// revokeRetired revokes the retired tokens due by now, and reports whether
// the role changed, and how each revocation that did not succeed failed,
// by token. A revocation that fails is handed to the durable revocation
// records, or, failing that, tried again later.
func (b *backend) revokeRetired(ctx context.Context, s logical.Storage, r *staticRole, now time.Time) (bool, map[string]error) {
	kept := r.Retired[:0:0]
	failures := map[string]error{}
	for _, t := range r.Retired {
		if t.RevokeAt.After(now) {
			kept = append(kept, t)
			continue
		}
		err := b.revokeToken(ctx, s, t.token(), kindStatic)
		if err != nil {
			failures[t.AccessToken.Reveal()] = err
		}
		if !revocationSettled(err) {
			t.RevokeAt = now.Add(revocationRetryMax)
			kept = append(kept, t)
		}
	}
	changed := len(kept) != len(r.Retired)
	r.Retired = kept
	return changed, failures
}

// revokeStaticRoleTokens revokes every token of a static role being deleted.
// A revocation that fails is handed to the durable revocation records; if
// even that fails, the error is returned and the role must stay.
func (b *backend) revokeStaticRoleTokens(ctx context.Context, s logical.Storage, r *staticRole) error {
	for _, t := range r.tokens() {
		err := b.revokeToken(ctx, s, t.token(), kindStatic)
		if !revocationSettled(err) {
			return err
		}
	}
	return nil
}

// storeRotated stores a role with its new token. A role being created is
// stored under the config lock, and only while a config exists: a config
// delete, which is refused while static roles exist, must not miss one
// whose first mint was under way.
func (b *backend) storeRotated(ctx context.Context, s logical.Storage, name string, r *staticRole, creating bool) error {
	if creating {
		defer b.lockConfig()()
		cfg, err := readConfig(ctx, s)
		if err != nil {
			return err
		}
		if cfg == nil {
			return badRequest("the config was deleted while static role %q minted its first token: write a config, then the role", name)
		}
	}
	return writeStaticRole(ctx, s, name, r)
}

// staticRoleDue is when populateQueue schedules a static role found in
// storage.
func (b *backend) staticRoleDue(ctx context.Context, s logical.Storage, name string) (time.Time, bool, error) {
	r, err := readStaticRole(ctx, s, name)
	if err != nil || r == nil {
		return time.Time{}, false, err
	}
	return r.nextDue(), true, nil
}

// rotated counts a static role's rotation, or its failure, and says so in
// an event.
func (b *backend) rotated(name string, r *staticRole, err error) {
	if err != nil {
		b.metrics.rotations.WithLabelValues(name, "failed").Inc()
		b.event("static-rotate-failure", false, append([]string{"role", name}, failureMetadata(err)...)...)
		return
	}
	b.metrics.rotations.WithLabelValues(name, "rotated").Inc()
	b.event("static-rotate", true, "role", name, "token_id", r.Current.TokenID, "next_rotation", rfc3339(r.NextRotation))
}
