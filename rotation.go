package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// Backoff between attempts of a failing rotation: short, because the
// current token may be near its end.
const (
	rotationRetryBase = 10 * time.Second
	rotationRetryMax  = time.Minute
)

// maxRetiredTokens bounds the replaced tokens a static role keeps in their
// grace: a burst of rotations revokes the oldest at once, so that neither
// the live tokens nor the role's record grow with the rotations.
const maxRetiredTokens = 3

// maxLiveTokens bounds a static role's tokens alive at once as far as the
// plugin knows: its current one, its retired ones and those whose
// revocation is pending. While Beyond Identity refuses revocations, the
// oldest retired tokens become pending revocations instead of revoked ones:
// without this bound, every rotation would leave one more token alive.
const maxLiveTokens = 5

// lockStaticRole takes the lock of one static role: a write, a rotate-role
// and the background work never work on the same role at once. It is
// held across the mint of a new token, so that a role never gets two; it
// is the role's own, so another role never waits for it.
func (b *backend) lockStaticRole(name string) func() {
	return b.staticRoleLocks.lock(name)
}

// rotate mints a new token for the role and stores it as the current one,
// the previous current token retired to be revoked when its grace ends, or
// at once when it carries a scope the role no longer has or the role holds
// maxRetiredTokens retired ones already. The new token is stored before any
// old one is revoked, so a crash at any point leaves a working token in
// place. A failure leaves the role as it was, the new token discarded, and
// is returned as an error response (the operator's to fix) or an error.
// The caller holds the role's lock.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name string, r *staticRole) (*logical.Response, error) {
	resp, err := b.replaceToken(ctx, s, name, r)
	if err != nil || resp.IsError() {
		if r.LastRotation.IsZero() {
			// A role being created whose first mint fails is not stored:
			// no role, no rotation to count (nor a label value for any name).
			return resp, err
		}
		b.metrics.rotations.WithLabelValues(name, "failed").Inc()
		b.event("static-rotate-failure", append([]string{"role", name}, failureMetadata(resp, err)...)...)
		return resp, err
	}
	b.metrics.rotations.WithLabelValues(name, "rotated").Inc()
	b.event("static-rotate", "role", name, "token_id", r.Current.TokenID, "next_rotation", r.NextRotation.UTC().Format(time.RFC3339))
	return resp, nil
}

// replaceToken is rotate's work, without the counting.
func (b *backend) replaceToken(ctx context.Context, s logical.Storage, name string, r *staticRole) (*logical.Response, error) {
	client, err := b.client(ctx, s)
	if errors.Is(err, errNotConfigured) {
		return logical.ErrorResponse("the mount is not configured: write its config first"), nil
	}
	if err != nil {
		return nil, err
	}
	who := fmt.Sprintf("static role %q", name)
	if err := b.checkLiveTokens(ctx, s, name, r); err != nil {
		return nil, err
	}
	lifetime := r.tokenLifetime(b.clock.Now())
	token, err := mint(ctx, client, biclient.MintRequest{Scopes: r.Scopes, Lifetime: lifetime, CustomClaims: r.CustomClaims})
	if token == nil {
		return upstreamFailure("minting a token for "+who, err)
	}
	minted := issuedFrom(client, token, name)
	minted.Static = true
	if err != nil {
		return b.abandon(ctx, s, minted, entryStatic, journal.Ticket{}, nil, fmt.Errorf("minting a token for %s: %w", who, err))
	}
	want := asked{scopes: r.Scopes, claims: r.CustomClaims, who: who}
	minted, facts, warnings, covered, errResp, err := b.learnAndCover(ctx, s, client, token, minted, want, entryStatic)
	if errResp != nil || err != nil {
		return b.abandon(ctx, s, minted, entryStatic, covered, errResp, err)
	}
	now := b.clock.Now()
	updated, cut := r.withNewToken(staticToken{issuedToken: minted, Token: token.AccessToken.Reveal(),
		TokenType: token.TokenType, Scopes: facts.scopes}, now)
	if errResp, err := b.storeRotated(ctx, s, name, updated, r.Current == nil); errResp != nil || err != nil {
		return b.abandon(ctx, s, minted, entryStatic, covered, errResp, err)
	}
	*r = *updated
	b.journal.HandOver(covered)
	changed, failures := b.revokeRetired(ctx, s, r, now)
	if changed {
		if err := writeStaticRole(ctx, s, name, r); err != nil {
			// The revoked tokens stay listed; the next turn finds them ended.
			b.Logger().Warn("saving a static role after revoking its replaced tokens failed", "role", name, "error", err)
		}
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
	b.Logger().Info("rotated static role", "role", name, "token_id", minted.TokenID, "next_rotation", r.NextRotation)
	return &logical.Response{Warnings: append(warnings, cutWarnings(cut, failures)...)}, nil
}

// checkLiveTokens refuses a rotation that would give the role more than
// maxLiveTokens live tokens, with a 503 naming its pending revocations;
// unless its current token ends before a retry could come, since a dead
// token helps no one.
func (b *backend) checkLiveTokens(ctx context.Context, s logical.Storage, name string, r *staticRole) error {
	if r.Current != nil && r.Current.expiresAt().Before(b.clock.Now().Add(rotationRetryMax)) {
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
	return logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf("static role %q has %d live tokens, the most a "+
		"static role may have: %d it holds (the current one and those replaced in their grace) and %d whose revocation "+
		"Beyond Identity has refused so far, which the plugin keeps retrying (vault list <mount>/revocations/ shows them). "+
		"No new token is minted for it until those revocations succeed", name, held+pending, held, pending))
}

// pendingOfStaticRole counts the pending revocations of a static role's
// tokens, loading them from storage first if the background loop has not.
func (b *backend) pendingOfStaticRole(ctx context.Context, s logical.Storage, name string) (int, error) {
	if n, loaded := b.pendingRevocations.ofStaticRole(name); loaded {
		return n, nil
	}
	keys, err := s.List(ctx, revocationPrefix)
	if err != nil {
		return 0, fmt.Errorf("listing the pending revocations: %w", err)
	}
	for _, key := range keys {
		if record, err := readRevocation(ctx, s, key); err == nil && record != nil && !record.revoked() {
			b.pendingRevocations.add(key, record.staticRoleOf())
		}
	}
	b.pendingRevocations.markLoaded()
	n, _ := b.pendingRevocations.ofStaticRole(name)
	return n, nil
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
		if err := failures[c.token.Token]; err != nil {
			outcome = "was due for revocation now, not after its grace, but revoking it failed (" + err.Error() + ")"
		}
		warnings = append(warnings, fmt.Sprintf("%s %s: %s", name, outcome, c.reason))
	}
	return warnings
}

// storeRotated stores a role with its new token. A role being created is
// stored under the config lock, and only while a config exists: a config
// delete, which is refused while static roles exist, must not miss one
// whose first mint was under way.
func (b *backend) storeRotated(ctx context.Context, s logical.Storage, name string, r *staticRole, creating bool) (*logical.Response, error) {
	if creating {
		defer b.lockConfig()()
		cfg, err := readConfig(ctx, s)
		if err != nil {
			return nil, err
		}
		if cfg == nil {
			return logical.ErrorResponse("the config was deleted while static role %q minted its first token: write a config, then the role", name), nil
		}
	}
	return nil, writeStaticRole(ctx, s, name, r)
}

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
	role.scheduleNext(now, now, token.expiresAt())
	role.LastRotationError, role.FailedRotations = "", 0
	return &role, cut
}

// scheduleNext sets when the current token, which ends at end, is to be
// replaced: the rotation due after from (a period after it, or the
// schedule's next time), or sooner if the token ends before it could
// outlive its grace. now bounds how soon.
func (r *staticRole) scheduleNext(from, now, end time.Time) {
	due := r.dueAfter(from)
	next := due
	// A token ending within seconds of its plan (whole seconds, the time
	// the call took) keeps the due time; one Beyond Identity made
	// materially shorter is replaced while it still outlives its grace.
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
		resp, err := b.rotate(ctx, s, name, r)
		if err == nil && !resp.IsError() {
			if note != "" {
				r.LastRotationError = note
				b.saveStaticRole(ctx, s, name, r)
			}
			return // stored and scheduled, retired tokens included
		}
		if ctx.Err() != nil {
			return // the plugin is stopping: the next process rotates it
		}
		r.FailedRotations++
		r.LastRotationError = failureText(resp, err)
		r.NextRotation = now.Add(min(rotationRetryBase<<min(r.FailedRotations-1, 8), rotationRetryMax))
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

// saveStaticRole stores a role the background work changed and schedules
// it; a failure is logged, and the role's turn comes again as scheduled.
func (b *backend) saveStaticRole(ctx context.Context, s logical.Storage, name string, r *staticRole) {
	if err := writeStaticRole(ctx, s, name, r); err != nil {
		b.Logger().Error("saving a static role failed", "role", name, "error", err)
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
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
		err := b.revokeToken(ctx, s, t.issued(), kindStatic)
		if err != nil {
			failures[t.Token] = err
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

// failureText is the message of a failure given as an error response or an
// error.
func failureText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Error().Error()
}

// revokeStaticRoleTokens revokes every token of a static role being deleted.
// A revocation that fails is handed to the durable revocation records; if
// even that fails, the error is returned and the role must stay.
func (b *backend) revokeStaticRoleTokens(ctx context.Context, s logical.Storage, r *staticRole) error {
	for _, t := range r.tokens() {
		err := b.revokeToken(ctx, s, t.issued(), kindStatic)
		if !revocationSettled(err) {
			return err
		}
	}
	return nil
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
